// The shape of a model as `nibble plan` needs it, read from a Hugging Face config.json alone.
//
// plan reads config.json itself (not through io/) because it covers more architectures than the
// runtime runs: Qwen3 dense (Qwen3ForCausalLM), Qwen3-MoE (Qwen3MoeForCausalLM), Llama 3
// (LlamaForCausalLM), gpt-oss (GptOssForCausalLM) and DeepSeek-V3 MLA/MoE (DeepseekV3ForCausalLM).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"

namespace nibble::plan {

enum class Arch { kQwen3, kQwen3Moe, kLlama, kGptOss, kDeepseekV3 };
const char* arch_name(Arch arch);

// How a weight tensor is stored. One row per id in weights.cpp's format table.
enum class WeightFormatId { kF32, kBf16, kF16, kFp8, kFp8Channel, kFp8Block, kNvfp4, kMxfp4 };

enum class KvDtype { kF32, kBf16, kFp8 };

struct MoeShape {
  int64_t num_experts = 0;          // routed experts per MoE layer (0: dense model)
  int64_t num_experts_per_tok = 0;  // top-k
  int64_t expert_intermediate = 0;  // intermediate width of one routed expert
  int64_t num_shared_experts = 0;   // DeepSeek: always-on experts of the same width
};

// DeepSeek-V3 multi-head latent attention (HF DeepseekV3Attention).
struct MlaShape {
  int64_t q_lora_rank = 0;  // 0: no q compression (q_proj directly)
  int64_t kv_lora_rank = 0;
  int64_t qk_nope_head_dim = 0;
  int64_t qk_rope_head_dim = 0;
  int64_t v_head_dim = 0;
};

// What quantization_config (or hf_quant_config.json) says about the stored weights.
struct QuantScheme {
  std::string method;  // "" (none), "modelopt", "compressed-tensors", "fp8", "mxfp4"
  WeightFormatId linear_format = WeightFormatId::kBf16;  // format of the quantized Linear weights
  std::vector<std::string> ignore;  // module patterns kept unquantized (fnmatch, or "re:" regex)
  std::optional<KvDtype> kv_dtype;  // set when the checkpoint ships an FP8 KV-cache scheme
};

struct ModelShape {
  Arch arch = Arch::kQwen3;
  std::string architecture;  // architectures[0] as written in config.json
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;  // dense MLP width
  int64_t num_layers = 0;
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t max_position_embeddings = 0;
  bool tie_word_embeddings = false;
  bool attention_bias = false;
  bool mlp_bias = false;
  bool qk_norm = false;                // Qwen3 q_norm/k_norm
  bool attention_sinks = false;        // gpt-oss sinks [num_heads]
  int64_t sliding_window = 0;          // tokens; 0 when no layer slides
  std::vector<bool> layer_is_sliding;  // [num_layers]
  std::vector<bool> layer_is_moe;      // [num_layers]
  MoeShape moe;
  std::optional<MlaShape> mla;
  WeightFormatId stored_dtype = WeightFormatId::kBf16;  // torch_dtype of unquantized tensors
  QuantScheme quant;
};

// Parses a config.json document. `source` names the file in error messages.
base::Result<ModelShape> parse_model_config(const nlohmann::json& config, const std::string& source);

// Parses the quantization_config object (or hf_quant_config.json's "quantization" object).
base::Result<QuantScheme> parse_quant_config(const nlohmann::json& quant, const std::string& source);

// Loads MODEL_DIR/config.json (plus MODEL_DIR/hf_quant_config.json for old ModelOpt exports) or a
// config.json path.
base::Result<ModelShape> load_model_shape(const std::string& path);

}  // namespace nibble::plan
