// Weights as they sit in the checkpoint: matmul weights keep their format (kernels::MatWeight
// views into the mapped file, no dequantized copy); small vectors (norm weights) are read to fp32.
// Every tensor is checked at load: missing, wrong shape or unsupported dtype is an error naming it.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "io/safetensors.h"
#include "kernels/weight_format.h"
#include "model/quant_config.h"

namespace nibble::model {

class WeightLoader {
 public:
  explicit WeightLoader(const io::Checkpoint& checkpoint) : checkpoint_(checkpoint) {}

  // A matmul weight W[num_rows, num_cols] in any format the kernels support. `name` is the
  // unquantized name ("P.weight"); quantized checkpoints store P's tensors under the names of their
  // layout (P.weight + P.weight_scale + ..., P.weight_packed, P.weight_blocks, ...), chosen by the
  // checkpoint's quantization config (read from the checkpoint's folder on first use).
  base::Result<kernels::MatWeight> matrix(const std::string& name, int64_t num_rows, int64_t num_cols);
  // A vector of `num_elems` values (F32/BF16/F16), converted to fp32.
  base::Result<std::vector<float>> vector(const std::string& name, int64_t num_elems);
  // A small tensor of any shape (F32/BF16/F16, e.g. per-expert biases [E, N]), converted to fp32.
  base::Result<std::vector<float>> floats(const std::string& name, const std::vector<int64_t>& shape);
  // A tensor checked for shape and dtype, for formats read outside the kernels (MXFP4 experts).
  base::Result<const io::TensorInfo*> raw(const std::string& name, const std::vector<int64_t>& shape,
                                          tensor::DType dtype);
  const io::Checkpoint& checkpoint() const { return checkpoint_; }

  // Checkpoint bytes of every tensor read so far (they stay mapped).
  uint64_t bytes_loaded() const { return bytes_loaded_; }
  // Bytes the loader made at load: fp32 copies returned by vector()/floats() and owned_buffers().
  uint64_t bytes_copied() const { return bytes_copied_; }
  // What the loaded weights hold in memory: the mapped tensors plus the load-time copies.
  uint64_t bytes_held() const { return bytes_loaded_ + bytes_copied_; }
  // Buffers made at load (scales converted to F32) that returned views point into; keep alive.
  std::shared_ptr<const void> owned_buffers() const { return owned_; }
  const QuantConfig* quant_config() const { return quant_ ? &*quant_ : nullptr; }

 private:
  base::Result<const io::TensorInfo*> get_checked(const std::string& name, const std::vector<int64_t>& shape);
  // quant_weights.cpp
  base::Result<kernels::MatWeight> quantized_matrix(const std::string& module, int64_t num_rows,
                                                    int64_t num_cols);
  base::Result<const uint8_t*> f32_scales(const io::TensorInfo& t, const std::string& where);
  base::Result<float> scalar_scale(const std::string& name, bool required, bool inverted);

  const io::Checkpoint& checkpoint_;
  uint64_t bytes_loaded_ = 0;
  uint64_t bytes_copied_ = 0;
  std::optional<QuantConfig> quant_;
  std::shared_ptr<std::deque<std::vector<uint8_t>>> owned_ = std::make_shared<std::deque<std::vector<uint8_t>>>();
};

// One decoder layer (Hugging Face LlamaDecoderLayer / Qwen3DecoderLayer). nh = num_attention_heads,
// nkv = num_key_value_heads, hd = head_dim, H = hidden_size, I = intermediate_size.
struct DecoderLayerWeights {
  std::vector<float> input_layernorm;           // [H]
  kernels::MatWeight q_proj;                    // [nh*hd, H]
  kernels::MatWeight k_proj;                    // [nkv*hd, H]
  kernels::MatWeight v_proj;                    // [nkv*hd, H]
  kernels::MatWeight o_proj;                    // [H, nh*hd]
  std::vector<float> q_norm;                    // [hd] (Qwen3 only; empty otherwise)
  std::vector<float> k_norm;                    // [hd] (Qwen3 only; empty otherwise)
  std::vector<float> q_bias;                    // [nh*hd] (attention_bias; empty otherwise)
  std::vector<float> k_bias;                    // [nkv*hd]
  std::vector<float> v_bias;                    // [nkv*hd]
  std::vector<float> o_bias;                    // [H]
  std::vector<float> sinks;                     // [nh] learned attention sinks (gpt-oss; empty otherwise)
  std::vector<float> post_attention_layernorm;  // [H]
  // Dense MLP; absent (num_rows == 0) in mixture-of-experts layers (see model/moe.h).
  kernels::MatWeight gate_proj;  // [I, H]
  kernels::MatWeight up_proj;    // [I, H]
  kernels::MatWeight down_proj;  // [H, I]
};

struct DecoderWeights {
  kernels::MatWeight embed_tokens;  // [V, H]
  std::vector<DecoderLayerWeights> layers;
  std::vector<float> norm;     // [H]
  kernels::MatWeight lm_head;  // [V, H]; the same view as embed_tokens when tied
  std::shared_ptr<const void> owned;  // load-time buffers (converted scales) views point into
};

std::string shape_string(const std::vector<int64_t>& shape);

}  // namespace nibble::model
