// Mixture-of-experts MLP blocks shared by gpt_oss.cpp (GptOssMLP) and qwen3_moe.cpp
// (Qwen3MoeSparseMoeBlock): a router picks top-k experts per token, then the experts run grouped:
// every token routed to expert e is gathered into one [m_e, H] matrix, so each expert's weights
// are read once per step for all its tokens (M = m_e matmuls), not once per token.
//
// Expert weights stay in their checkpoint format (gpt-oss MXFP4 blocks/scales; Qwen3-MoE BF16 or the
// NVFP4 / MXFP4 / FP8 layouts `nibble quantize` writes) and run through the kernel table's matmuls.
#pragma once

#include <cstdint>
#include <vector>

#include "base/status.h"
#include "base/thread_pool.h"
#include "formats/block_format.h"
#include "kernels/kernel_table.h"
#include "model/config.h"
#include "model/model.h"
#include "model/weights.h"

namespace nibble::model {

// One expert's MLP; every matrix is a kernels::MatWeight view in its checkpoint format (gpt-oss
// MXFP4 `*_blocks` / `*_scales` slices are WeightFormat::kMXFP4 views: element 2j in the low nibble
// of byte j and one E8M0 scale per 32 columns is exactly the kernel table's MXFP4 row layout), so
// experts run through the table's SIMD matmul bodies like every other linear layer.
// gpt-oss: gate_up [2I, H] with gate rows 0,2,4,... and up rows 1,3,5,... (interleaved), biases.
// Qwen3-MoE: gate [I, H], up [I, H], no biases.
struct ExpertWeights {
  kernels::MatWeight gate_up;       // [2I, H] (gpt-oss)
  kernels::MatWeight gate;          // [I, H] (Qwen3-MoE)
  kernels::MatWeight up;            // [I, H] (Qwen3-MoE)
  kernels::MatWeight down;          // [H, I]
  std::vector<float> gate_up_bias;  // [2I] (gpt-oss; empty otherwise)
  std::vector<float> down_bias;     // [H]  (gpt-oss; empty otherwise)
};

// Bytes one pass over W reads: element rows plus block scales (0 for an empty view).
uint64_t matrix_bytes(const kernels::MatWeight& w);
// Bytes one pass over all of an expert's matrices reads.
uint64_t expert_bytes(const ExpertWeights& e);

struct MoeLayerWeights {
  kernels::MatWeight router;       // [E, H]
  std::vector<float> router_bias;  // [E] (gpt-oss; empty otherwise)
  std::vector<ExpertWeights> experts;
  uint64_t expert_bias_bytes = 0;  // checkpoint bytes of all experts' biases (gpt-oss)
};

// Weight bytes one decode token reads from a model with these MoE layers (empty entries = dense
// layers): weight_bytes (all loaded tensors) less every expert, plus top_k experts per MoE layer
// at the layer's mean expert size, less an untied embedding table (one row is gathered).
double decode_weight_bytes_per_token(const ModelConfig& config, uint64_t weight_bytes,
                                     const DecoderWeights& dense, const std::vector<MoeLayerWeights>& moe);

enum class MoeKind {
  kGptOss,    // logits -> top-k -> softmax over the k; clamped SwiGLU on interleaved gate/up
  kQwen3Moe,  // softmax over all experts -> top-k (-> renormalise if norm_topk_prob); SiLU(gate)*up
};

// Is layer `layer_idx` a mixture-of-experts layer (Qwen3MoeDecoderLayer's rule; every gpt-oss layer)?
bool is_sparse_layer(const ModelConfig& config, int64_t layer_idx);

// Loaders, in Hugging Face names under model.layers.N.mlp.
base::Result<MoeLayerWeights> load_gpt_oss_moe(const ModelConfig& config, WeightLoader& loader,
                                               int64_t layer_idx);
base::Result<MoeLayerWeights> load_qwen3_moe_layer(const ModelConfig& config, WeightLoader& loader,
                                                   int64_t layer_idx);

// Calibration hook (nibble quantize --calib-data): when set, every MoeBlock::forward reports the
// inputs of its expert projections, x [num_rows, num_cols]: down = false for gate/up (the block's
// input, every token), down = true for down_proj (the activations of every (token, expert)
// assignment). Blocks run in layer order. Process-wide, like kernels::set_matmul_observer; set it
// only while one model runs single-request calibration, and clear it (nullptr) afterwards.
using MoeObserver = void (*)(void* ctx, bool down, const float* x, int64_t num_rows, int64_t num_cols);
void set_moe_observer(MoeObserver fn, void* ctx);

// Counters of one forward call (summed over layers), for tests and benchmarks.
struct MoeStats {
  uint64_t experts_run = 0;          // distinct experts chosen by the step's tokens, per layer, summed
  uint64_t expert_matrix_reads = 0;  // expert weight matrices streamed (gate_up/gate/up/down passes)
  uint64_t expert_bytes_read = 0;    // their bytes
  uint64_t expert_tokens = 0;        // (token, expert) assignments executed
};

// Runs the MoE MLP. Workspaces are sized at construction from the config and the load limits.
class MoeBlock {
 public:
  MoeBlock(const ModelConfig& config, const LoadOptions& options, MoeKind kind, int num_threads);

  // x[t] += moe(h[t]) for t < num_tokens; h, x: [num_tokens, H].
  void forward(const MoeLayerWeights& layer, const kernels::KernelTable& kernels, base::ThreadPool& pool,
               const float* h, int64_t num_tokens, float* x);

  void reset_stats() { stats_ = {}; }
  const MoeStats& stats() const { return stats_; }

 private:
  void route(const MoeLayerWeights& layer, const kernels::KernelTable& kernels, base::ThreadPool& pool,
             const float* h, int64_t num_tokens);
  // One expert matmul of a phase: y[m, N] (row stride ldy) = x[m, K] · Wᵀ.
  struct Job {
    const kernels::MatWeight* w;
    const float* x;
    int64_t num_tokens;
    float* y;
    int64_t ldy;
  };
  // Runs every job of a phase in one pool region: each job's output rows are cut into tasks of
  // about equal work (rows x tokens), so a decode step's few experts are split across all threads
  // and a prefill's many experts share them. Each job's weight is read once (counted).
  void run_jobs(const kernels::KernelTable& kernels, base::ThreadPool& pool);

  const ModelConfig& config_;
  MoeKind kind_;
  int64_t num_experts_;
  int64_t top_k_;
  int64_t inter_;  // expert intermediate size I
  MoeStats stats_;
  // Workspaces; B = max_batch_tokens, E = experts, k = top-k.
  std::vector<float> router_logits_;   // [B, E]
  std::vector<int32_t> topk_ids_;      // [B, k]
  std::vector<float> topk_weights_;    // [B, k]
  std::vector<int64_t> expert_begin_;  // [E + 1] offsets into the assignment lists, grouped by expert
  std::vector<int32_t> assign_token_;  // [B * k] token of each assignment, grouped by expert
  std::vector<float> assign_weight_;   // [B * k] its routing weight
  std::vector<float> xe_;              // [B * k, H] inputs gathered by assignment (grouped by expert)
  std::vector<float> gate_up_;         // [B * k, 2I]
  std::vector<float> act_;             // [B * k, I]
  std::vector<float> ye_;              // [B * k, H]
  std::vector<float> out_;             // [B, H] the block's output before the residual add
  std::vector<Job> jobs_;              // [2E] one phase's matmuls
  struct Task {
    int32_t job;
    int64_t n_begin, n_end;
  };
  std::vector<Task> tasks_;  // one phase's row ranges
};

}  // namespace nibble::model
