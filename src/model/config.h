// Hugging Face config.json and generation_config.json for the decoder-only architectures nibble
// runs (Qwen3ForCausalLM, LlamaForCausalLM). Every error names the file and the field.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace nibble::model {

enum class RopeScalingType { kNone, kLlama3, kYarn };

// rope_scaling / rope_parameters: none/"default", "llama3" (formats.md §7.2) or "yarn" (§7.3).
struct RopeScaling {
  RopeScalingType type = RopeScalingType::kNone;
  double factor = 1.0;
  double low_freq_factor = 1.0;   // llama3
  double high_freq_factor = 1.0;  // llama3
  int64_t original_max_position_embeddings = 0;
  double beta_fast = 32.0;        // yarn
  double beta_slow = 1.0;         // yarn
  bool truncate = true;           // yarn: floor/ceil the correction range
  double attention_factor = 0.0;  // yarn: cos/sin multiplier; 0 = 0.1 ln(factor) + 1
};

enum class LayerType { kFullAttention, kSlidingAttention };

// Mixture-of-experts fields (GptOssConfig, Qwen3MoeConfig); num_experts == 0 for dense models.
struct MoeConfig {
  int64_t num_experts = 0;               // num_local_experts (gpt-oss) / num_experts (Qwen3-MoE)
  int64_t num_experts_per_tok = 0;       // top-k
  int64_t expert_intermediate_size = 0;  // moe_intermediate_size (Qwen3-MoE) / intermediate_size (gpt-oss)
  bool norm_topk_prob = false;           // Qwen3-MoE: renormalise the top-k probabilities
  int64_t decoder_sparse_step = 1;       // Qwen3-MoE: layer i is sparse iff (i + 1) % step == 0 ...
  std::vector<int64_t> mlp_only_layers;  // ... and i is not listed here
  double swiglu_limit = 7.0;             // gpt-oss clamped SwiGLU
  double swiglu_alpha = 1.702;
};

struct ModelConfig {
  std::string architecture;  // "Qwen3ForCausalLM", ...
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;
  int64_t head_dim = 0;  // explicit `head_dim`, else hidden_size / num_attention_heads
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  int64_t max_position_embeddings = 0;
  bool tie_word_embeddings = false;
  bool attention_bias = false;         // q/k/v/o biases (gpt-oss)
  int64_t sliding_window = 0;          // keys per sliding-window query, itself included; 0 = none
  std::vector<LayerType> layer_types;  // [num_hidden_layers]; all full attention unless configured
  MoeConfig moe;
  std::string torch_dtype;  // "bfloat16", ... ("" when absent); informational
  std::optional<int32_t> bos_token_id;
  std::vector<int32_t> eos_token_ids;  // `eos_token_id`: an int or a list
};

// Sampling defaults from generation_config.json; absent fields stay empty.
struct GenerationConfig {
  std::optional<bool> do_sample;
  std::optional<float> temperature;
  std::optional<float> top_p;
  std::optional<int32_t> top_k;
  std::optional<float> min_p;
  std::optional<float> repetition_penalty;
  std::optional<int64_t> max_new_tokens;
  std::optional<int32_t> bos_token_id;
  std::vector<int32_t> eos_token_ids;
};

// Parses config.json text; `path` names the file in errors. Checks the architecture against the
// model registry and the values for consistency (heads divide, sizes positive, ...).
base::Result<ModelConfig> parse_model_config(std::string_view json_text, const std::string& path);
// Reads MODEL_DIR/config.json.
base::Result<ModelConfig> load_model_config(const std::string& model_dir);

base::Result<GenerationConfig> parse_generation_config(std::string_view json_text, const std::string& path);
// Reads MODEL_DIR/generation_config.json; a missing file gives an empty GenerationConfig.
base::Result<GenerationConfig> load_generation_config(const std::string& model_dir);

}  // namespace nibble::model
