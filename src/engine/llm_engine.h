// A model folder -> a running EngineCore, the one start-up path `nibble run`, `nibble serve` and
// `nibble bench` share (vLLM: LLMEngine / AsyncLLM construction from EngineArgs).
//
//   auto engine = LlmEngine::create(model_dir, args);          // checks memory, loads, starts
//   for (auto& line : (*engine)->metadata().startup_report) log(line);
//   auto handle = (*engine)->core().add_request({.prompt_token_ids = ids, .sampling_params = sp});
//
// The metadata is tokenizer-free plain data (no model/ or kernels/ types), so the server can use
// it without including the model layer.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/status.h"
#include "engine/engine_core.h"
#include "engine/memory_policy.h"
#include "engine/sampling_params.h"

namespace nibble::engine {

struct EngineArgs {
  int32_t max_num_seqs = 32;  // --max-num-seqs
  int32_t max_num_batched_tokens =
      512;  // --max-num-batched-tokens (tokens per step; CPU matmuls saturate well below 2048)
  int32_t max_model_len = 0;      // --max-model-len; 0 = min(max_position_embeddings, 4096)
  std::string kv_cache = "auto";  // --kv-cache auto|SIZE|FRACTION
  int64_t kv_cache_chunk_bytes = int64_t{256} << 20;  // --kv-cache-chunk: growth step of auto
  int64_t safety_margin_bytes = -1;                   // < 0 = the memory policy's default
  int32_t block_size = 16;                            // tokens per KV block
  int num_threads = 0;                                // -t; 0 = all available CPUs
  bool enable_prefix_caching = true;                  // --no-prefix-caching turns it off
  int32_t max_num_waiting = 0;                        // queue bound; 0 = unbounded
  std::chrono::milliseconds kv_shrink_idle_delay{10'000};
  // Memory now; unset = read_memory_info(). Tests inject numbers.
  std::function<base::Result<MemoryInfo>()> memory_probe;
};

struct EngineMetadata {
  std::string model_dir;
  std::string architecture;  // config.json architectures[0]
  int32_t vocab_size = 0;
  int32_t max_model_len = 0;
  int32_t max_num_seqs = 0;
  int32_t max_num_batched_tokens = 0;
  int num_threads = 0;
  std::vector<int32_t> eos_token_ids;  // config.json and generation_config.json merged
  std::optional<int32_t> bos_token_id;
  // Defaults from generation_config.json (temperature 0 when do_sample is false); the rest of the
  // fields keep SamplingParams' defaults.
  SamplingParams default_sampling_params;
  int64_t weight_bytes = 0;
  std::vector<std::pair<std::string, int64_t>> weight_bytes_by_format;  // ("BF16", bytes), ...
  int64_t workspace_bytes = 0;     // activations sized at load (estimate)
  int64_t kv_bytes_per_token = 0;  // per token of one KV block (all layers, or one group's)
  // Empty = one full-attention group; else one per attention kind (sliding-window models).
  std::vector<KVCacheGroupSpec> kv_cache_groups;
  KvCachePlan kv_cache_plan;
  std::vector<std::string> startup_report;  // lines for the start-up log
};

class LlmModelRunner;

// What the engine holds in memory now (for `nibble plan`'s checks and load reports).
struct EngineMemoryReport {
  int64_t weight_bytes = 0;        // the loaded model's weights: mapped tensors + load-time copies
  int64_t kv_bytes_per_token = 0;  // K and V of one token, all layers (fp32 today)
  int32_t kv_block_size = 0;       // tokens per KV block
  int32_t kv_num_blocks = 0;       // blocks addressable now
  int64_t kv_allocated_bytes = 0;  // the KV pool's allocations (whole chunks)
};

class LlmEngine {
 public:
  // Reads the config, checks that weights + the minimum KV cache fit in available memory
  // (refusing with a message naming the numbers otherwise), loads the weights, plans the KV
  // cache and starts the engine thread. Errors name the file or flag at fault.
  static base::Result<std::unique_ptr<LlmEngine>> create(const std::string& model_dir,
                                                         const EngineArgs& args);

  EngineCore& core() { return *core_; }
  const EngineMetadata& metadata() const { return metadata_; }
  // Shortcut for core().add_request.
  base::Result<RequestHandle> add_request(EngineCoreRequest request) {
    return core_->add_request(std::move(request));
  }
  EngineStats stats() const { return core_->stats(); }
  // Samplers the runner still holds (for leak tests; read while the engine is idle).
  int64_t num_live_samplers() const;
  // Weights and KV pool as allocated (read while the engine is idle: the pool may grow in a step).
  EngineMemoryReport memory_report() const;
  // Bytes the KV storage really holds (whole chunks); may be read while the engine runs.
  int64_t kv_allocated_bytes() const;

 private:
  LlmEngine() = default;
  EngineMetadata metadata_;
  LlmModelRunner* runner_ = nullptr;  // owned by core_
  std::unique_ptr<EngineCore> core_;
};

}  // namespace nibble::engine
