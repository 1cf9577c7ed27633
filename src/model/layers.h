// Layer building blocks shared by the Llama-family architecture files (llama.cpp, qwen3.cpp).
// Each architecture file spells out its forward pass in Hugging Face's order by calling these.
//
// All activations and accumulations are fp32. Workspaces are sized at load from the config and
// LoadOptions; nothing here allocates during a forward pass.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "base/thread_pool.h"
#include "kernels/kernel_table.h"
#include "model/config.h"
#include "model/kv_cache.h"
#include "model/model.h"
#include "model/weights.h"

namespace nibble::model {

// The RoPE inverse frequencies, [head_dim / 2], computed in fp32 as transformers does: default
// theta^(-2i/d), then the llama3 rescaling (formats.md §7.2) or YaRN's NTK-by-parts blend (§7.3).
std::vector<float> rope_inv_freq(const ModelConfig& config);
// The multiplier transformers applies to cos and sin (YaRN's attention factor; 1 otherwise).
float rope_attention_scaling(const ModelConfig& config);

// Per-step activations of up to max_batch_tokens tokens (B). Shapes use the names of DecoderLayerWeights.
struct Workspace {
  std::vector<float> x;       // [B, H] the residual stream
  std::vector<float> h;       // [B, H] normed input of a sub-block, then its output
  std::vector<float> q;       // [B, nh*hd]
  std::vector<float> k;       // [B, nkv*hd]
  std::vector<float> v;       // [B, nkv*hd]
  std::vector<float> attn;    // [B, nh*hd]
  std::vector<float> gate;    // [B, I]
  std::vector<float> up;      // [B, I]
  std::vector<float> final;   // [R, H] final-normed rows for the lm_head (R = max_logit_rows)
  std::vector<float> logits;  // [R, V]
  // This layer's K (V) row of each position of several sequences side by side (cache rows):
  // [max_seq_len x min(max_logit_rows, 2^18 / max_seq_len)], at least max_seq_len.
  std::vector<const float*> key_rows;
  std::vector<const float*> value_rows;
  std::vector<int64_t> seq_row_begin;    // [B] first key_rows entry of each sequence of an attention run
  std::vector<int64_t> seq_token_begin;  // [B] first token (of the step) of each sequence of the run
  std::vector<int64_t> seq_task_begin;   // [B + 1] first pool task of each sequence of the run
  std::vector<float> scores;  // [num_threads, max_seq_len] attention probabilities, per thread
  std::vector<int64_t> positions;  // [B] position of each token of the step
  std::vector<int32_t> token_seq;  // [B] which SeqSlice each token belongs to
};

// Queries per attention task (a GQA group times consecutive tokens); groups up to this size.
inline constexpr int64_t kAttentionTileQueries = 32;

// The state a Llama-style decoder needs to run: weights, RoPE tables, kernels, threads, workspace.
class DecoderStack {
 public:
  DecoderStack(const ModelConfig& config, const LoadOptions& options, const kernels::KernelTable& kernels,
               DecoderWeights weights);

  const DecoderWeights& weights() const { return weights_; }

  // Checks a forward call's arguments against the limits (user input: returns errors), then
  // records each token's position and sequence for rope_qk and attend.
  base::Status begin_step(std::span<const int32_t> tokens, std::span<const SeqSlice> seqs,
                          std::span<const int64_t> logit_rows);

  // x[t] = embed_tokens[tokens[t]]
  void embed(std::span<const int32_t> tokens);
  // h = RMSNorm(x) with `weight` [H]
  void norm_input(int64_t num_tokens, const std::vector<float>& weight);
  // q, k, v = h · {q,k,v}_projᵀ (+ biases when the layer has them)
  void project_qkv(const DecoderLayerWeights& layer, int64_t num_tokens);
  // Per-head RMSNorm of q and k over head_dim (Qwen3Attention.q_norm / k_norm).
  void norm_heads_qk(const DecoderLayerWeights& layer, int64_t num_tokens);
  // Rotate-half RoPE on q and k at each token's position (from begin_step).
  void rope_qk(int64_t num_tokens);
  // Appends each sequence's k, v to its cache, then attn = softmax(q·Kᵀ / sqrt(hd) + causal mask)
  // · V per token and head over that token's sequence (GQA: query head i reads kv head i / (nh / nkv)).
  // Sliding-window layers (config.layer_types) see only the last sliding_window keys; a layer with
  // `sinks` adds one learned logit per head to the softmax's denominator (gpt-oss), which takes
  // probability mass and adds no value.
  void attend(int64_t layer_idx, int64_t num_tokens, std::span<const SeqSlice> seqs,
              const std::vector<float>& sinks = {});
  // x += attn · o_projᵀ (+ o_bias)
  void output_residual(const DecoderLayerWeights& layer, int64_t num_tokens);
  // Mutable state for blocks built outside this class (the MoE block in moe.h).
  Workspace& workspace() { return ws_; }
  base::ThreadPool& pool() { return *pool_; }
  const kernels::KernelTable& kernels() const { return kernels_; }

  // x += down_proj(silu(gate_proj(h)) * up_proj(h)) where h = RMSNorm(x) was computed by norm_input.
  void mlp_residual(const DecoderLayerWeights& layer, int64_t num_tokens);
  // logits[r] = lm_head(RMSNorm(x[logit_rows[r]])).
  std::span<const float> final_logits(std::span<const int64_t> logit_rows);

 private:
  const ModelConfig& config_;
  LoadOptions options_;
  const kernels::KernelTable& kernels_;
  std::unique_ptr<base::ThreadPool> pool_;
  DecoderWeights weights_;
  std::vector<float> rope_cos_;  // [max_seq_len, hd/2]
  std::vector<float> rope_sin_;  // [max_seq_len, hd/2]
  Workspace ws_;
};

// Loads the tensors shared by Llama-style checkpoints (Hugging Face names); `qk_norm` adds
// Qwen3's self_attn.{q,k}_norm.weight.
base::Result<DecoderWeights> load_decoder_weights(const ModelConfig& config, WeightLoader& loader,
                                                  bool qk_norm);

// What a decoder checkpoint holds beyond Llama's tensors. q/k/v/o biases follow config.attention_bias.
struct DecoderLoadOptions {
  bool qk_norm = false;  // self_attn.{q,k}_norm.weight (Qwen3)
  bool sinks = false;    // self_attn.sinks (gpt-oss)
  // Layers whose MLP is a mixture of experts (no mlp.{gate,up,down}_proj); null = all dense.
  bool (*is_sparse)(const ModelConfig& config, int64_t layer_idx) = nullptr;
};
base::Result<DecoderWeights> load_decoder_weights(const ModelConfig& config, WeightLoader& loader,
                                                  const DecoderLoadOptions& options);

}  // namespace nibble::model
