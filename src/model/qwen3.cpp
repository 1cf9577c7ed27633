// Qwen3 dense decoder, mirroring Hugging Face `Qwen3ForCausalLM` (models/qwen3/modeling_qwen3.py):
// Llama's layout plus a per-head RMSNorm on q and k (`q_norm`, `k_norm`) after the projections and
// before RoPE, and an explicit head_dim (q_proj's output may differ from hidden_size).
#include <memory>

#include "kernels/kernel_table.h"
#include "model/layers.h"
#include "model/registry.h"

namespace nibble::model {
namespace {

class Qwen3Model final : public Model {
 public:
  Qwen3Model(ModelConfig config, io::Checkpoint checkpoint, const LoadOptions& options,
             const kernels::KernelTable& kernels, DecoderWeights weights, uint64_t weight_bytes)
      : Model(std::move(config), options),
        checkpoint_(std::move(checkpoint)),
        weight_bytes_(weight_bytes),
        stack_(config_, options_, kernels, std::move(weights)) {}

  base::Result<std::span<const float>> forward_batch(std::span<const int32_t> tokens, std::span<const SeqSlice> seqs,
                                                     std::span<const int64_t> logit_rows) override {
    NIBBLE_TRY(stack_.begin_step(tokens, seqs, logit_rows));
    const auto num_tokens = static_cast<int64_t>(tokens.size());
    // Qwen3Model.forward: hidden = embed_tokens(input_ids)
    stack_.embed(tokens);
    for (int64_t i = 0; i < config_.num_hidden_layers; ++i) {
      const DecoderLayerWeights& layer = stack_.weights().layers[static_cast<size_t>(i)];
      // Qwen3DecoderLayer: hidden += self_attn(input_layernorm(hidden))
      stack_.norm_input(num_tokens, layer.input_layernorm);
      stack_.project_qkv(layer, num_tokens);
      stack_.norm_heads_qk(layer, num_tokens);  // Qwen3Attention: q_norm / k_norm before RoPE
      stack_.rope_qk(num_tokens);
      stack_.attend(i, num_tokens, seqs);
      stack_.output_residual(layer, num_tokens);
      // hidden += mlp(post_attention_layernorm(hidden))
      stack_.norm_input(num_tokens, layer.post_attention_layernorm);
      stack_.mlp_residual(layer, num_tokens);
    }
    // logits = lm_head(norm(hidden)) for the rows asked for
    return stack_.final_logits(logit_rows);
  }

  uint64_t weight_bytes() const override { return weight_bytes_; }

 private:
  io::Checkpoint checkpoint_;  // owns the mapped bytes the weights point into
  uint64_t weight_bytes_;
  DecoderStack stack_;
};

}  // namespace

base::Result<std::unique_ptr<Model>> load_qwen3(ModelConfig config, io::Checkpoint checkpoint,
                                                const LoadOptions& options) {
  NIBBLE_ASSIGN_OR_RETURN(const kernels::KernelTable* kernels, kernels::kernel_table());
  WeightLoader loader(checkpoint);
  NIBBLE_ASSIGN_OR_RETURN(DecoderWeights weights, load_decoder_weights(config, loader, /*qk_norm=*/true));
  const uint64_t weight_bytes = loader.bytes_held();
  return std::unique_ptr<Model>(std::make_unique<Qwen3Model>(
      std::move(config), std::move(checkpoint), options, *kernels, std::move(weights), weight_bytes));
}

}  // namespace nibble::model
