#include "model/registry.h"

#include <algorithm>

#include "base/file_util.h"

namespace nibble::model {

const std::vector<Architecture>& architectures() {
  static const std::vector<Architecture> kArchitectures = {
      {"GptOssForCausalLM", &load_gpt_oss},
      {"LlamaForCausalLM", &load_llama},
      {"Qwen3ForCausalLM", &load_qwen3},
      {"Qwen3MoeForCausalLM", &load_qwen3_moe},
  };
  return kArchitectures;
}

const Architecture* find_architecture(std::string_view name) {
  for (const auto& arch : architectures()) {
    if (arch.name == name) return &arch;
  }
  return nullptr;
}

std::string supported_architecture_names() {
  std::string out;
  for (const auto& arch : architectures()) {
    if (!out.empty()) out += ", ";
    out += arch.name;
  }
  return out;
}

std::unique_ptr<KvCache> Model::new_kv_cache() const {
  return std::make_unique<ContiguousKvCache>(config_.num_hidden_layers, options_.max_seq_len,
                                             config_.num_key_value_heads, config_.head_dim);
}

base::Result<std::span<const float>> Model::forward(std::span<const int32_t> tokens, int64_t start_pos,
                                                    KvCache& cache, int64_t num_logit_rows) {
  const auto num_tokens = static_cast<int64_t>(tokens.size());
  if (num_logit_rows < 1 || num_logit_rows > std::min(num_tokens, options_.max_logit_rows)) {
    return base::invalid_argument("forward: num_logit_rows " + std::to_string(num_logit_rows) +
                                  " out of range [1, " +
                                  std::to_string(std::min(num_tokens, options_.max_logit_rows)) + "]");
  }
  for (int64_t r = 0; r < num_logit_rows; ++r) rows_[static_cast<size_t>(r)] = num_tokens - num_logit_rows + r;
  const SeqSlice seq{num_tokens, start_pos, &cache};
  return forward_batch(tokens, {&seq, 1}, {rows_.data(), static_cast<size_t>(num_logit_rows)});
}

base::Result<std::unique_ptr<Model>> load_model(const std::string& model_dir, const LoadOptions& options) {
  if (!base::is_directory(model_dir)) return base::not_found(model_dir + ": model folder not found");
  NIBBLE_ASSIGN_OR_RETURN(ModelConfig config, load_model_config(model_dir));
  const Architecture* arch = find_architecture(config.architecture);
  NIBBLE_CHECK(arch != nullptr, "parse_model_config accepted an unregistered architecture");
  if (!base::file_exists(base::join_path(model_dir, "model.safetensors")) &&
      !base::file_exists(base::join_path(model_dir, "model.safetensors.index.json"))) {
    return base::not_found(model_dir + ": no weights (model.safetensors or model.safetensors.index.json)");
  }
  NIBBLE_ASSIGN_OR_RETURN(io::Checkpoint checkpoint, io::Checkpoint::open(model_dir));
  LoadOptions resolved = options;
  if (resolved.max_seq_len <= 0)
    resolved.max_seq_len = std::min<int64_t>(config.max_position_embeddings, 4096);
  if (resolved.max_batch_tokens <= 0) resolved.max_batch_tokens = resolved.max_seq_len;
  if (resolved.max_logit_rows <= 0) resolved.max_logit_rows = 1;
  resolved.max_logit_rows = std::min(resolved.max_logit_rows, resolved.max_batch_tokens);
  if (resolved.num_threads <= 0) resolved.num_threads = 1;
  return arch->load(std::move(config), std::move(checkpoint), resolved);
}

}  // namespace nibble::model
