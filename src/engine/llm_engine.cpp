#include "engine/llm_engine.h"

#include <algorithm>
#include <cstdio>
#include <map>

#include "base/thread_pool.h"
#include "engine/model_runner_impl.h"
#include "io/safetensors.h"
#include "model/config.h"
#include "model/model.h"

namespace nibble::engine {
namespace {

std::string describe_weights(const std::vector<std::pair<std::string, int64_t>>& by_format, int64_t total) {
  std::string s = "weights: " + format_bytes(total);
  std::string parts;
  for (const auto& [name, bytes] : by_format)
    parts += (parts.empty() ? "" : ", ") + name + " " + format_bytes(bytes);
  return parts.empty() ? s : s + " (" + parts + ")";
}

// One KV cache group per attention kind when the model mixes full and sliding-window layers
// (gpt-oss); none (= one full-attention group) otherwise.
std::vector<KVCacheGroupSpec> kv_cache_groups_of(const model::ModelConfig& config) {
  std::vector<int32_t> full, sliding;
  for (int64_t l = 0; l < config.num_hidden_layers; ++l) {
    const bool is_sliding = config.sliding_window > 0 && static_cast<size_t>(l) < config.layer_types.size() &&
                            config.layer_types[static_cast<size_t>(l)] == model::LayerType::kSlidingAttention;
    (is_sliding ? sliding : full).push_back(static_cast<int32_t>(l));
  }
  std::vector<KVCacheGroupSpec> groups;
  if (sliding.empty()) return groups;
  if (!full.empty()) groups.push_back({full, AttentionKind::kFullAttention, 0});
  groups.push_back({sliding, AttentionKind::kSlidingWindow, static_cast<int32_t>(config.sliding_window)});
  return groups;
}

}  // namespace

int64_t LlmEngine::num_live_samplers() const {
  return runner_->num_live_samplers();
}

EngineMemoryReport LlmEngine::memory_report() const {
  EngineMemoryReport r;
  r.weight_bytes = static_cast<int64_t>(runner_->model().weight_bytes());
  r.kv_bytes_per_token = metadata_.kv_bytes_per_token;
  r.kv_block_size = runner_->kv_storage().block_size();
  r.kv_num_blocks = runner_->kv_storage().num_blocks();
  r.kv_allocated_bytes = runner_->kv_storage().allocated_bytes();
  return r;
}

int64_t LlmEngine::kv_allocated_bytes() const {
  return runner_->kv_storage().allocated_bytes();
}

base::Result<std::unique_ptr<LlmEngine>> LlmEngine::create(const std::string& model_dir,
                                                           const EngineArgs& args) {
  if (args.max_num_seqs < 1) return base::invalid_argument("--max-num-seqs must be at least 1");
  if (args.max_num_batched_tokens < 1)
    return base::invalid_argument("--max-num-batched-tokens must be at least 1");
  if (args.max_model_len < 0) return base::invalid_argument("--max-model-len must not be negative");
  if (args.block_size < 1) return base::invalid_argument("KV block size must be positive");
  NIBBLE_ASSIGN_OR_RETURN(model::ModelConfig config, model::load_model_config(model_dir));
  NIBBLE_ASSIGN_OR_RETURN(model::GenerationConfig gen, model::load_generation_config(model_dir));
  auto parsed_flag = parse_kv_cache_flag(args.kv_cache);
  if (!parsed_flag.ok()) return parsed_flag.status().with_context("--kv-cache");
  const KvCacheFlag kv_flag = *parsed_flag;

  std::unique_ptr<LlmEngine> engine(new LlmEngine());
  EngineMetadata& md = engine->metadata_;
  md.model_dir = model_dir;
  md.architecture = config.architecture;
  md.vocab_size = static_cast<int32_t>(config.vocab_size);
  md.max_model_len = args.max_model_len > 0
                         ? args.max_model_len
                         : static_cast<int32_t>(std::min<int64_t>(config.max_position_embeddings, 4096));
  if (md.max_model_len > config.max_position_embeddings) {
    return base::invalid_argument("--max-model-len " + std::to_string(md.max_model_len) +
                                  " exceeds the model's max_position_embeddings " +
                                  std::to_string(config.max_position_embeddings) + " (" + model_dir +
                                  "/config.json)");
  }
  md.max_num_seqs = args.max_num_seqs;
  md.max_num_batched_tokens = args.max_num_batched_tokens;
  md.num_threads = args.num_threads > 0 ? args.num_threads : base::available_cpus();
  md.eos_token_ids = gen.eos_token_ids;
  for (int32_t id : config.eos_token_ids)
    if (std::find(md.eos_token_ids.begin(), md.eos_token_ids.end(), id) == md.eos_token_ids.end())
      md.eos_token_ids.push_back(id);
  md.bos_token_id = gen.bos_token_id;
  SamplingParams& sp = md.default_sampling_params;
  sp.temperature = !gen.do_sample.value_or(true) ? 0.0f : gen.temperature.value_or(1.0f);
  sp.top_k = gen.top_k.value_or(0);
  sp.top_p = gen.top_p.value_or(1.0f);
  sp.min_p = gen.min_p.value_or(0.0f);
  sp.repetition_penalty = gen.repetition_penalty.value_or(1.0f);

  // Weight bytes by format, from the checkpoint headers (the tensors are only mapped here).
  {
    NIBBLE_ASSIGN_OR_RETURN(io::Checkpoint checkpoint, io::Checkpoint::open(model_dir));
    std::map<std::string, int64_t> by_format;
    for (const auto& file : checkpoint.files())
      for (const io::TensorInfo& t : file->tensors())
        by_format[std::string(tensor::dtype_name(t.dtype))] += static_cast<int64_t>(t.num_bytes);
    for (const auto& [name, bytes] : by_format) {
      md.weight_bytes_by_format.emplace_back(name, bytes);
      md.weight_bytes += bytes;
    }
  }
  // Activations of one step (layers.h Workspace) plus the per-request logits rows.
  const int64_t b = args.max_num_batched_tokens;
  const int64_t q_dim = config.num_attention_heads * config.head_dim;
  const int64_t kv_dim = config.num_key_value_heads * config.head_dim;
  const int64_t rows = std::min<int64_t>(args.max_num_seqs, b);
  md.workspace_bytes =
      4 * (b * (2 * config.hidden_size + 2 * q_dim + 2 * kv_dim + 2 * config.intermediate_size) +
           rows * (config.hidden_size + config.vocab_size) + int64_t{md.num_threads} * md.max_model_len +
           int64_t{md.max_model_len} * config.head_dim);
  md.kv_cache_groups = kv_cache_groups_of(config);
  size_t layers_per_block = static_cast<size_t>(config.num_hidden_layers);
  if (!md.kv_cache_groups.empty()) {
    layers_per_block = 0;
    for (const KVCacheGroupSpec& g : md.kv_cache_groups)
      layers_per_block = std::max(layers_per_block, g.layer_ids.size());
  }
  // Per token of one block (a block holds one group's layers).
  md.kv_bytes_per_token = kv_bytes_per_token(static_cast<int32_t>(layers_per_block),
                                             static_cast<int32_t>(config.num_key_value_heads),
                                             static_cast<int32_t>(config.head_dim), /*dtype_bytes=*/4);

  MemoryPolicyConfig policy;
  policy.kv_cache = kv_flag;
  policy.kv_bytes_per_token = md.kv_bytes_per_token;
  policy.block_size = args.block_size;
  policy.max_num_seqs = args.max_num_seqs;
  policy.max_model_len = md.max_model_len;
  if (!md.kv_cache_groups.empty())
    policy.blocks_per_seq = max_blocks_per_request(md.kv_cache_groups, args.block_size, md.max_model_len,
                                                   args.max_num_batched_tokens);
  policy.chunk_bytes = args.kv_cache_chunk_bytes;
  policy.safety_margin_bytes = args.safety_margin_bytes;
  NIBBLE_ASSIGN_OR_RETURN(MemoryInfo before_load,
                          args.memory_probe ? args.memory_probe() : read_memory_info());
  const int64_t resident_bytes = md.weight_bytes + md.workspace_bytes;
  NIBBLE_TRY(check_fits_before_load(policy, resident_bytes, before_load).with_context(model_dir));
  NIBBLE_ASSIGN_OR_RETURN(md.kv_cache_plan, plan_kv_cache(policy, resident_bytes, before_load));

  model::LoadOptions options;
  options.max_seq_len = md.max_model_len;
  options.max_batch_tokens = b;
  options.max_logit_rows = rows;
  options.num_threads = md.num_threads;
  NIBBLE_ASSIGN_OR_RETURN(std::unique_ptr<model::Model> model, model::load_model(model_dir, options));

  const KvCachePlan& plan = md.kv_cache_plan;
  const int32_t chunk_num_blocks =
      plan.chunk_num_blocks > 0 ? plan.chunk_num_blocks : plan.initial_num_blocks;
  auto runner =
      std::make_unique<LlmModelRunner>(std::move(model), plan.block_size, chunk_num_blocks, args.max_num_seqs,
                                       args.max_num_batched_tokens, md.kv_cache_groups);
  engine->runner_ = runner.get();

  EngineConfig ec;
  ec.scheduler.max_num_seqs = args.max_num_seqs;
  ec.scheduler.max_num_batched_tokens = args.max_num_batched_tokens;
  ec.scheduler.max_model_len = md.max_model_len;
  ec.scheduler.max_num_waiting = args.max_num_waiting;
  ec.scheduler.vocab_size = md.vocab_size;
  ec.scheduler.eos_token_ids = md.eos_token_ids;
  ec.kv_cache = plan;
  ec.kv_cache_groups = md.kv_cache_groups;
  ec.enable_prefix_caching = args.enable_prefix_caching;
  ec.kv_shrink_idle_delay = args.kv_shrink_idle_delay;
  ec.memory_probe = args.memory_probe;

  md.startup_report.push_back(md.architecture + " from " + model_dir + ", " + std::to_string(md.num_threads) +
                              " threads");
  md.startup_report.push_back(describe_weights(md.weight_bytes_by_format, md.weight_bytes) +
                              "; activations " + format_bytes(md.workspace_bytes));
  if (md.kv_cache_groups.empty()) {
    md.startup_report.push_back("KV bytes per token: " + std::to_string(md.kv_bytes_per_token) + " (" +
                                format_bytes(md.kv_bytes_per_token) + ", fp32)");
  } else {
    std::string line = "KV cache groups (blocks of " + std::to_string(layers_per_block) + " layers, " +
                       format_bytes(md.kv_bytes_per_token) + " per token, fp32):";
    for (const KVCacheGroupSpec& g : md.kv_cache_groups)
      line += " " + std::to_string(g.layer_ids.size()) + " layers " +
              (g.kind == AttentionKind::kSlidingWindow
                   ? "sliding window " + std::to_string(g.sliding_window_tokens) +
                         " tokens (blocks out of the window freed)"
                   : std::string("full attention")) +
              ";";
    md.startup_report.push_back(line + " up to " + std::to_string(policy.blocks_per_seq) +
                                " blocks per sequence");
  }
  md.startup_report.push_back(plan.describe());
  md.startup_report.push_back(
      "cap " + format_bytes(plan.bytes_per_block * plan.max_num_blocks) + ", max concurrent tokens " +
      std::to_string(plan.max_concurrent_tokens()) + "; max-num-seqs " + std::to_string(md.max_num_seqs) +
      ", max-num-batched-tokens " + std::to_string(md.max_num_batched_tokens) + ", max-model-len " +
      std::to_string(md.max_model_len) + "; memory " + before_load.describe());

  NIBBLE_ASSIGN_OR_RETURN(engine->core_, EngineCore::create(std::move(ec), std::move(runner)));
  return engine;
}

}  // namespace nibble::engine
