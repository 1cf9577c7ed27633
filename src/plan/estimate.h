// `plan::estimate`: memory and roofline speed of a model on a device, from config.json alone.
//
// Memory model (per node):
//   weights      every tensor as its format stores it (weights.h), scales included
//   kv cache     concurrency × kv bytes of one sequence at the context (GQA heads, MLA latent + rope
//                key, kv dtype), laid out as the KV runtime does (kNibbleKv below by default:
//                what nibble's engine allocates; kReferenceKv: llama.cpp / vLLM, sliding-window
//                layers capped at the window)
//   activations  F32 workspace for one step of max(prefill_chunk, concurrency) tokens:
//                residual, norm output, q/k/v, attention output, gate/up/act of the MLP (k experts
//                for MoE), router logits; an attention tile of 256 keys per head; F32 logits for
//                every sequence (see activation_bytes() in estimate.cpp)
//   overhead     the device kind's runtime overhead (CUDA context, workspaces, graphs)
//   margin       memory_margin_fraction of usable memory kept free
//   + loader     nibble's weight loader holds every 1-D tensor (norms, biases, sinks) as an fp32
//                copy beside the mapped checkpoint (model/weights.h)
// Speed model (roofline):
//   decode step  max(bytes moved / (bandwidth · decode_efficiency),
//                    Σ_format FLOPs / (peak(format) · prefill_efficiency))
//                bytes = weights read once (MoE: the expected distinct experts touched by the
//                batch, E·(1−(1−k/E)^B)) + one embedding row per token + every sequence's KV
//   prefill      the prompt (= context) in chunks of prefill_chunk tokens, each chunk as a step
//                with the weights read once and FLOPs = 2·active params per token + attention
//   nodes > 1    tensor parallel: weights and KV heads split K ways (MLA latent replicated), two
//                ring all-reduces of B·hidden BF16 per layer per step over the link; pipeline
//                parallel: layers split K ways, min(B, K) micro-batches, one hop per stage.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "plan/device.h"
#include "plan/model_shape.h"
#include "plan/weights.h"

namespace nibble::plan {

// How a runtime lays out its KV cache.
struct KvRuntime {
  KvDtype dtype = KvDtype::kBf16;
  bool caps_sliding_window = true;  // sliding-window layers hold at most the window
  int64_t block_tokens = 1;         // a sequence holds whole blocks of this many tokens
};

// What nibble's engine allocates today (engine/llm_engine.cpp, engine/kv_cache_utils.cpp): fp32 K
// and V in blocks of 16 tokens; sliding-window layers are their own KV cache group whose blocks
// that fell out of the window are freed, so in decode a sequence holds ceil(W / 16) + 1 blocks of
// them (KvLayout::bytes_for). `--kv-dtype` and the KV memory default to this: change it here (and
// only here) when the engine changes (BF16 KV).
inline constexpr KvRuntime kNibbleKv{KvDtype::kF32, true, 16};
// Bytes per element of the fp32 copy nibble's loader makes of every 1-D tensor (WeightLoader::vector
// and floats: norms, biases, sinks), held beside the mapped checkpoint bytes.
inline constexpr int64_t kNibbleLoaderVectorBytes = 4;
// llama.cpp / vLLM, against which published figures were measured: 16-bit KV, sliding-window
// layers capped at the window, no block rounding.
inline constexpr KvRuntime kReferenceKv{KvDtype::kBf16, true, 1};

struct PlanOptions {
  FormatChoice format = FormatChoice::kAsIs;
  std::optional<KvDtype> kv_dtype;  // unset: kv_runtime.dtype (nibble's engine)
  KvRuntime kv_runtime = kNibbleKv;
  int64_t context_tokens = 4096;        // tokens per sequence (prompt + output)
  int64_t concurrency = 1;              // sequences decoded together
  int nodes = 1;                        // devices of the same profile, linked
  int64_t prefill_chunk_tokens = 2048;  // token budget of one prefill step
};

// Weight bytes of one (group, format) pair.
struct WeightGroupBytes {
  Group group = Group::kAttention;
  WeightFormatId format = WeightFormatId::kBf16;
  int64_t num_params = 0;
  int64_t bytes = 0;        // including scales
  int64_t scale_bytes = 0;  // block scales and per-tensor scalars
};

struct KvLayout {
  KvDtype dtype = KvDtype::kBf16;
  bool mla = false;
  int64_t block_tokens = 1;             // sequences hold whole blocks
  int64_t bytes_per_token_full = 0;     // summed over full-attention layers
  int64_t bytes_per_token_sliding = 0;  // summed over sliding-window layers
  int64_t sliding_window = 0;           // 0: sliding-window layers hold every token (not capped)
  int64_t num_full_layers = 0;
  int64_t num_sliding_layers = 0;
  // KV bytes one sequence of `num_tokens` tokens holds (whole blocks).
  int64_t bytes_per_sequence(int64_t num_tokens) const;
  // KV bytes attention reads for `num_tokens` tokens (the filled slots only).
  int64_t bytes_read(int64_t num_tokens) const;

 private:
  int64_t bytes_for(int64_t num_tokens, int64_t block_size) const;
};

struct MemoryPlan {  // one node
  double usable_bytes = 0;
  double margin_bytes = 0;
  double budget_bytes = 0;   // usable − margin
  int64_t weight_bytes = 0;  // checkpoint bytes + loader copies, this node's share
  int64_t kv_bytes = 0;
  int64_t activation_bytes = 0;
  int64_t overhead_bytes = 0;
  double free_bytes = 0;  // budget − everything above (negative: does not fit)
  bool fits = false;
};

struct SpeedPlan {
  double decode_step_s = 0;
  double decode_tok_s_per_stream = 0;
  double decode_tok_s_aggregate = 0;
  bool decode_compute_bound = false;
  double decode_bytes_per_step = 0;  // per node
  double decode_flops_per_step = 0;  // per node
  double comm_s_per_step = 0;        // all-reduces / hops per decode step
  double prefill_tok_s = 0;
  double ttft_s = 0;  // prefill of a context-long prompt, alone on the device
  bool prefill_compute_bound = false;
};

struct ParallelPlan {
  int nodes = 1;
  MemoryPlan memory;  // per node
  SpeedPlan speed;
};

struct Estimate {
  std::string architecture;
  std::string device;
  PlanOptions options;
  KvDtype kv_dtype = KvDtype::kBf16;
  int64_t num_params = 0;
  int64_t active_params_per_token = 0;  // Linear weights a token passes through (k experts)
  std::vector<WeightGroupBytes> weight_groups;
  int64_t weight_bytes = 0;       // whole model, as the checkpoint stores it
  int64_t loader_copy_bytes = 0;  // nibble's loader's fp32 copies of 1-D tensors (memory adds these)
  KvLayout kv;
  int64_t kv_bytes_per_sequence = 0;              // at options.context_tokens
  MemoryPlan memory;                              // one device
  SpeedPlan speed;                                // one device
  std::optional<ParallelPlan> tensor_parallel;    // nodes > 1
  std::optional<ParallelPlan> pipeline_parallel;  // nodes > 1
  bool fits = false;                              // on `nodes` devices (tensor parallel when > 1)
  int64_t max_context_at_concurrency = 0;         // tokens per sequence (0: not even one token)
  int64_t max_concurrency_at_context = 0;
  int64_t model_max_context = 0;  // max_position_embeddings
  int min_nodes = 0;              // fewest tensor-parallel devices that fit (0: > 64)
  std::vector<std::string> assumptions;
};

base::Result<Estimate> estimate(const ModelShape& model, const DeviceProfile& device,
                                const PlanOptions& options);

// Expected number of distinct experts touched by `num_tokens` tokens choosing k of E uniformly.
double expected_distinct_experts(int64_t num_experts, int64_t top_k, int64_t num_tokens);

// KV layout of the model under a runtime's KV layout.
KvLayout kv_layout(const ModelShape& model, const KvRuntime& runtime);

int64_t kv_dtype_bytes(KvDtype dtype);

}  // namespace nibble::plan
