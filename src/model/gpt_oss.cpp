// gpt-oss, mirroring Hugging Face `GptOssForCausalLM` (models/gpt_oss/modeling_gpt_oss.py):
// Llama's layout with q/k/v/o biases, learned attention sinks (one logit per head), sliding-window
// (even layers by default, config.layer_types) and full attention layers, YaRN RoPE, and a
// mixture-of-experts MLP in every layer (GptOssMLP: router with bias, top-k then softmax, clamped
// SwiGLU experts with biases, MXFP4 expert weights kept in MXFP4). formats.md §3.3 and §7.3.
//
// GptOssRMSNorm multiplies by the weight in fp32 before casting back; on nibble's fp32 path that is
// the same RMSNorm as Llama's.
#include <memory>

#include "kernels/kernel_table.h"
#include "model/layers.h"
#include "model/moe.h"
#include "model/registry.h"

namespace nibble::model {
namespace {

class GptOssModel final : public Model {
 public:
  GptOssModel(ModelConfig config, io::Checkpoint checkpoint, const LoadOptions& options,
              const kernels::KernelTable& kernels, DecoderWeights weights, std::vector<MoeLayerWeights> moe,
              uint64_t weight_bytes)
      : Model(std::move(config), options),
        checkpoint_(std::move(checkpoint)),
        weight_bytes_(weight_bytes),
        stack_(config_, options_, kernels, std::move(weights)),
        moe_weights_(std::move(moe)),
        moe_(config_, options_, MoeKind::kGptOss, stack_.pool().num_threads()) {}

  base::Result<std::span<const float>> forward_batch(std::span<const int32_t> tokens, std::span<const SeqSlice> seqs,
                                                     std::span<const int64_t> logit_rows) override {
    NIBBLE_TRY(stack_.begin_step(tokens, seqs, logit_rows));
    const auto num_tokens = static_cast<int64_t>(tokens.size());
    moe_.reset_stats();
    Workspace& ws = stack_.workspace();
    // GptOssModel.forward: hidden = embed_tokens(input_ids)
    stack_.embed(tokens);
    for (int64_t i = 0; i < config_.num_hidden_layers; ++i) {
      const DecoderLayerWeights& layer = stack_.weights().layers[static_cast<size_t>(i)];
      // GptOssDecoderLayer: hidden += self_attn(input_layernorm(hidden)) with sinks and, on
      // sliding_attention layers, the 128-key window
      stack_.norm_input(num_tokens, layer.input_layernorm);
      stack_.project_qkv(layer, num_tokens);
      stack_.rope_qk(num_tokens);
      stack_.attend(i, num_tokens, seqs, layer.sinks);
      stack_.output_residual(layer, num_tokens);
      // hidden += mlp(post_attention_layernorm(hidden)), mlp = router + experts
      stack_.norm_input(num_tokens, layer.post_attention_layernorm);
      moe_.forward(moe_weights_[static_cast<size_t>(i)], stack_.kernels(), stack_.pool(), ws.h.data(),
                   num_tokens, ws.x.data());
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
  std::vector<MoeLayerWeights> moe_weights_;  // [num_layers]
  MoeBlock moe_;
};

bool all_sparse(const ModelConfig& /*config*/, int64_t /*layer_idx*/) {
  return true;
}

}  // namespace

base::Result<std::unique_ptr<Model>> load_gpt_oss(ModelConfig config, io::Checkpoint checkpoint,
                                                  const LoadOptions& options) {
  NIBBLE_ASSIGN_OR_RETURN(const kernels::KernelTable* kernels, kernels::kernel_table());
  WeightLoader loader(checkpoint);
  DecoderLoadOptions load;
  load.sinks = true;
  load.is_sparse = &all_sparse;
  NIBBLE_ASSIGN_OR_RETURN(DecoderWeights weights, load_decoder_weights(config, loader, load));
  std::vector<MoeLayerWeights> moe;
  for (int64_t i = 0; i < config.num_hidden_layers; ++i) {
    NIBBLE_ASSIGN_OR_RETURN(MoeLayerWeights w, load_gpt_oss_moe(config, loader, i));
    moe.push_back(std::move(w));
  }
  const uint64_t weight_bytes = loader.bytes_held();
  return std::unique_ptr<Model>(std::make_unique<GptOssModel>(std::move(config), std::move(checkpoint),
                                                              options, *kernels, std::move(weights),
                                                              std::move(moe), weight_bytes));
}

}  // namespace nibble::model
