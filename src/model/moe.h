// Mixture-of-experts MLP blocks shared by gpt_oss.cpp (GptOssMLP) and qwen3_moe.cpp
// (Qwen3MoeSparseMoeBlock): a router picks top-k experts per token, then the experts run grouped:
// every token routed to expert e is gathered into one [m_e, H] matrix, so each expert's weights
// are read once per step for all its tokens (M = m_e matmuls), not once per token.
//
// Expert weights stay in their checkpoint format: BF16/F16/F32 through the kernel table, MXFP4
// (gpt-oss `*_blocks` / `*_scales`) decoded row by row with formats' bit-exact dequantize_row.
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

// One expert matrix W[num_rows = N, num_cols = K].
struct ExpertMatrix {
  int64_t num_rows = 0;
  int64_t num_cols = 0;
  kernels::MatWeight plain;  // plain formats; unused (num_rows == 0) when MXFP4
  // MXFP4 as gpt-oss stores it: blocks [N, K/32, 16] U8 (element 2j in the low nibble of byte j),
  // scales [N, K/32] E8M0. Views into the mapped checkpoint.
  const uint8_t* mxfp4_blocks = nullptr;
  const uint8_t* mxfp4_scales = nullptr;
  formats::TensorLayout mxfp4_layout;

  bool is_mxfp4() const { return mxfp4_blocks != nullptr; }
  uint64_t num_bytes() const;  // weight bytes read by one pass over the matrix
};

// One expert's MLP. gpt-oss: gate_up [2I, H] with gate rows 0,2,4,... and up rows 1,3,5,...
// (interleaved), biases. Qwen3-MoE: gate [I, H], up [I, H], no biases.
struct ExpertWeights {
  ExpertMatrix gate_up;             // [2I, H] (gpt-oss)
  ExpertMatrix gate;                // [I, H] (Qwen3-MoE)
  ExpertMatrix up;                  // [I, H] (Qwen3-MoE)
  ExpertMatrix down;                // [H, I]
  std::vector<float> gate_up_bias;  // [2I] (gpt-oss; empty otherwise)
  std::vector<float> down_bias;     // [H]  (gpt-oss; empty otherwise)
};

struct MoeLayerWeights {
  kernels::MatWeight router;       // [E, H]
  std::vector<float> router_bias;  // [E] (gpt-oss; empty otherwise)
  std::vector<ExpertWeights> experts;
};

enum class MoeKind {
  kGptOss,    // logits -> top-k -> softmax over the k; clamped SwiGLU on interleaved gate/up
  kQwen3Moe,  // softmax over all experts -> top-k (-> renormalise if norm_topk_prob); SiLU(gate)*up
};

// Decodes one gpt-oss MXFP4 row of num_cols values (a multiple of 32): blocks [num_cols / 2] bytes,
// element 2j in the low nibble of byte j; scales [num_cols / 32] E8M0. Bit-identical to formats'
// dequantize_row for the "mxfp4" row, table-driven for speed. (Belongs in the kernel table's MXFP4
// row once that exists.)
void decode_mxfp4_row(const uint8_t* blocks, const uint8_t* scales, int64_t num_cols, float* out);

// Is layer `layer_idx` a mixture-of-experts layer (Qwen3MoeDecoderLayer's rule; every gpt-oss layer)?
bool is_sparse_layer(const ModelConfig& config, int64_t layer_idx);

// Loaders, in Hugging Face names under model.layers.N.mlp.
base::Result<MoeLayerWeights> load_gpt_oss_moe(const ModelConfig& config, WeightLoader& loader,
                                               int64_t layer_idx);
base::Result<MoeLayerWeights> load_qwen3_moe_layer(const ModelConfig& config, WeightLoader& loader,
                                                   int64_t layer_idx);

// Counters of one forward call, for tests and benchmarks.
struct MoeStats {
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
  // y[m, N] = x[m, K] · Wᵀ for one expert matrix (counted as one read of W).
  void expert_matmul(const ExpertMatrix& w, const kernels::KernelTable& kernels, base::ThreadPool& pool,
                     const float* x, int64_t m, float* y);

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
  std::vector<float> xe_;              // [B, H] gathered inputs of one expert
  std::vector<float> gate_up_;         // [B, 2I]
  std::vector<float> act_;             // [B, I]
  std::vector<float> ye_;              // [B, H]
  std::vector<float> out_;             // [B, H] the block's output before the residual add
  std::vector<float> row_buffer_;      // [num_threads, max(H, I)] decoded MXFP4 rows
  int64_t row_buffer_stride_ = 0;
};

}  // namespace nibble::model
