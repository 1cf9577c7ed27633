// Qwen3-MoE, mirroring Hugging Face `Qwen3MoeForCausalLM` (models/qwen3_moe/modeling_qwen3_moe.py):
// Qwen3's attention (q_norm / k_norm, no biases) and, in layers where
// (i + 1) % decoder_sparse_step == 0 and i is not in mlp_only_layers, a Qwen3MoeSparseMoeBlock
// (softmax router over all experts, top-k, renormalised when norm_topk_prob; SiLU experts
// `experts.N.{gate,up,down}_proj`); the other layers keep a dense Qwen3MoeMLP (intermediate_size).
#include <memory>

#include "kernels/kernel_table.h"
#include "model/layers.h"
#include "model/moe.h"
#include "model/registry.h"

namespace nibble::model {
namespace {

class Qwen3MoeModel final : public Model {
 public:
  Qwen3MoeModel(ModelConfig config, io::Checkpoint checkpoint, const LoadOptions& options,
                const kernels::KernelTable& kernels, DecoderWeights weights, std::vector<MoeLayerWeights> moe,
                uint64_t weight_bytes)
      : Model(std::move(config), options),
        checkpoint_(std::move(checkpoint)),
        weight_bytes_(weight_bytes),
        stack_(config_, options_, kernels, std::move(weights)),
        moe_weights_(std::move(moe)),
        moe_(config_, options_, MoeKind::kQwen3Moe, stack_.pool().num_threads()) {}

  base::Result<std::span<const float>> forward_batch(std::span<const int32_t> tokens, std::span<const SeqSlice> seqs,
                                                     std::span<const int64_t> logit_rows) override {
    NIBBLE_TRY(stack_.begin_step(tokens, seqs, logit_rows));
    const auto num_tokens = static_cast<int64_t>(tokens.size());
    moe_.reset_stats();
    Workspace& ws = stack_.workspace();
    stack_.embed(tokens);
    for (int64_t i = 0; i < config_.num_hidden_layers; ++i) {
      const DecoderLayerWeights& layer = stack_.weights().layers[static_cast<size_t>(i)];
      // Qwen3MoeDecoderLayer: hidden += self_attn(input_layernorm(hidden))
      stack_.norm_input(num_tokens, layer.input_layernorm);
      stack_.project_qkv(layer, num_tokens);
      stack_.norm_heads_qk(layer, num_tokens);
      stack_.rope_qk(num_tokens);
      stack_.attend(i, num_tokens, seqs);
      stack_.output_residual(layer, num_tokens);
      // hidden += mlp(post_attention_layernorm(hidden)): sparse MoE block or dense MLP
      stack_.norm_input(num_tokens, layer.post_attention_layernorm);
      const MoeLayerWeights& moe = moe_weights_[static_cast<size_t>(i)];
      if (moe.experts.empty()) {
        stack_.mlp_residual(layer, num_tokens);
      } else {
        moe_.forward(moe, stack_.kernels(), stack_.pool(), ws.h.data(), num_tokens, ws.x.data());
      }
    }
    return stack_.final_logits(logit_rows);
  }

  uint64_t weight_bytes() const override { return weight_bytes_; }
  uint64_t expert_weight_reads() const override { return moe_.stats().expert_matrix_reads; }
  uint64_t expert_bytes_read() const override { return moe_.stats().expert_bytes_read; }
  uint64_t experts_run() const override { return moe_.stats().experts_run; }
  double decode_weight_bytes_per_token() const override {
    return model::decode_weight_bytes_per_token(config_, weight_bytes_, stack_.weights(), moe_weights_);
  }

 private:
  io::Checkpoint checkpoint_;  // owns the mapped bytes the weights point into
  uint64_t weight_bytes_;
  DecoderStack stack_;
  std::vector<MoeLayerWeights> moe_weights_;  // [num_layers]; no experts in dense layers
  MoeBlock moe_;
};

}  // namespace

base::Result<std::unique_ptr<Model>> load_qwen3_moe(ModelConfig config, io::Checkpoint checkpoint,
                                                    const LoadOptions& options) {
  NIBBLE_ASSIGN_OR_RETURN(const kernels::KernelTable* kernels, kernels::kernel_table());
  WeightLoader loader(checkpoint);
  DecoderLoadOptions load;
  load.qk_norm = true;
  load.is_sparse = &is_sparse_layer;
  NIBBLE_ASSIGN_OR_RETURN(DecoderWeights weights, load_decoder_weights(config, loader, load));
  std::vector<MoeLayerWeights> moe(static_cast<size_t>(config.num_hidden_layers));
  for (int64_t i = 0; i < config.num_hidden_layers; ++i) {
    if (!is_sparse_layer(config, i)) continue;
    NIBBLE_ASSIGN_OR_RETURN(moe[static_cast<size_t>(i)], load_qwen3_moe_layer(config, loader, i));
  }
  const uint64_t weight_bytes = loader.bytes_held();
  return std::unique_ptr<Model>(std::make_unique<Qwen3MoeModel>(std::move(config), std::move(checkpoint),
                                                                options, *kernels, std::move(weights),
                                                                std::move(moe), weight_bytes));
}

}  // namespace nibble::model
