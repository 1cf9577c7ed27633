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

enum class RopeScalingType { kNone, kLlama3 };

// rope_scaling / rope_parameters. Only "llama3" is supported besides none/"default".
struct RopeScaling {
  RopeScalingType type = RopeScalingType::kNone;
  double factor = 1.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 1.0;
  int64_t original_max_position_embeddings = 0;
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
