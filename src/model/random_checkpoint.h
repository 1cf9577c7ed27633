// `nibble make-model`: a complete Hugging Face checkpoint folder with random weights at a realistic
// scale (linear std 0.02, norm weights 1 + noise), deterministic on every machine (own PRNG and
// Box-Muller, no std::normal_distribution). Used by tests, goldens and benchmarks.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "tensor/dtype.h"

namespace nibble::model {

struct RandomModelSpec {
  std::string arch = "qwen3";   // qwen3 | llama | gpt-oss | qwen3-moe
  std::string preset = "tiny";  // tiny | small | 0.6b
  uint64_t seed = 0;
  std::string dtype = "bf16";  // bf16 | f16 | f32: the stored weight dtype
  std::string rope_scaling;    // "" | "llama3" (Llama 3.1 factors)
  std::string tokenizer_dir;   // copy tokenizer files from here; vocab_size >= tokenizer size
  double init_std = 0.02;      // std of linear and embedding weights (tests raise it to sharpen attention)
  // Overrides of the preset's shapes.
  std::optional<bool> tie_word_embeddings;
  std::optional<int64_t> hidden_size;
  std::optional<int64_t> num_hidden_layers;
  std::optional<int64_t> num_attention_heads;
  std::optional<int64_t> num_key_value_heads;
  std::optional<int64_t> head_dim;
  std::optional<int64_t> intermediate_size;
  std::optional<int64_t> vocab_size;
  std::optional<int64_t> num_experts;          // gpt-oss / qwen3-moe
  std::optional<int64_t> num_experts_per_tok;  // gpt-oss / qwen3-moe
};

// Writes OUT_DIR/{config.json, generation_config.json, model.safetensors, tokenizer files}.
// gpt-oss checkpoints use the real Hugging Face layout: MXFP4 experts as U8 `*_blocks` [E, N, K/32, 16]
// and E8M0 `*_scales` [E, N, K/32] (quantized from normal weights with formats' default MXFP4 rule),
// F32 norms, BF16 (--dtype) elsewhere, and a quantization_config {"quant_method": "mxfp4"}.
// Creates OUT_DIR if needed. Every file is written atomically.
base::Status write_random_checkpoint(const std::string& out_dir, const RandomModelSpec& spec);

// The config.json and tensor list write_random_checkpoint would write, without making any tensor
// data: for checking sizes of real-scale shapes (e.g. gpt-oss-120b) that are too big to write.
struct RandomTensorSpec {
  std::string name;            // checkpoint name
  std::vector<int64_t> shape;  // as stored
  tensor::DType dtype = tensor::DType::kF32;
  uint64_t num_bytes = 0;
};
struct RandomCheckpointLayout {
  std::string config_text;  // config.json
  std::vector<RandomTensorSpec> tensors;
};
base::Result<RandomCheckpointLayout> random_checkpoint_layout(const RandomModelSpec& spec);

// The deterministic generator: splitmix64 seeded per tensor, Box-Muller in double.
class NormalRng {
 public:
  explicit NormalRng(uint64_t seed) : state_(seed) {}
  uint64_t next_u64();
  double next_uniform();  // in (0, 1)
  double next_normal();   // N(0, 1)

 private:
  uint64_t state_;
  bool has_spare_ = false;
  double spare_ = 0.0;
};

}  // namespace nibble::model
