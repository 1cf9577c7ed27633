// Weight storage as data: one row per format (element bits, scale blocks, scalars), the tensor
// list of each architecture (named as in the Hugging Face checkpoint), and the format each tensor
// gets for a `--format` choice.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "plan/model_shape.h"

namespace nibble::plan {

// Which peak throughput a format's matmuls run at (falls back to a wider one when absent).
enum class ComputeClass { kFp4, kFp8, kBf16 };

// A storage format. Bytes of an [out, in] matrix:
//   ceil(out·in·elem_bits/8) + ceil(out/block_rows)·ceil(in/block_cols)·scale_bytes + num_f32_scalars·4
// where a block dimension of 0 means "the whole dimension" and scale_bytes 0 means no block scale.
struct WeightFormat {
  WeightFormatId id;
  const char* name;  // as `--format` spells it
  int elem_bits;
  int64_t block_rows;
  int64_t block_cols;
  int scale_bytes;          // bytes per block scale
  const char* scale_dtype;  // "E4M3", "E8M0", "F32", "" (none)
  int num_f32_scalars;      // per-tensor F32 scalars (weight_scale, input_scale, ...)
  ComputeClass compute;
  const char* layout;  // where the layout is documented
};

const WeightFormat& weight_format(WeightFormatId id);
const std::vector<WeightFormat>& weight_formats();

// Bytes of one [out_dim, in_dim] matrix stored in `format` (per formats.md §2.4, §3.3, §4).
int64_t matrix_bytes(const WeightFormat& format, int64_t out_dim, int64_t in_dim);
int64_t matrix_scale_bytes(const WeightFormat& format, int64_t out_dim, int64_t in_dim);

// The `--format` choice: as the checkpoint stores it, or every Linear weight in one format.
enum class FormatChoice { kAsIs, kBf16, kFp8, kFp8Block, kNvfp4, kMxfp4 };
base::Result<FormatChoice> parse_format_choice(std::string_view text);
const char* format_choice_name(FormatChoice choice);

enum class Group { kEmbedding, kAttention, kMlp, kExperts, kSharedExperts, kRouter, kNorm, kLmHead };
const char* group_name(Group group);

// One tensor (or `count` identical tensors, e.g. the routed experts of one layer).
struct TensorSpec {
  std::string name;    // checkpoint name, e.g. "model.layers.3.self_attn.q_proj.weight"
  std::string module;  // module path matched against ignore lists, e.g. "model.layers.3.self_attn.q_proj"
  Group group = Group::kAttention;
  int64_t out_dim = 1;  // rows; 1-D tensors have out_dim 1
  int64_t in_dim = 1;   // columns
  int64_t count = 1;
  bool linear = false;     // a Linear weight a format may quantize
  bool routed = false;     // belongs to a routed expert (only the selected experts are read)
  bool embedding = false;  // a lookup table: one row is read per token
  WeightFormatId unquantized = WeightFormatId::kBf16;  // storage when not quantized
  int64_t num_elems() const { return out_dim * in_dim * count; }
};

// Every weight tensor of the model (per layer; the MTP layer of DeepSeek-V3 is not counted,
// matching what transformers and vLLM load for plain decoding).
std::vector<TensorSpec> enumerate_tensors(const ModelShape& model);

// True if the module matches one of the ignore patterns (exact, parent module, fnmatch, or a
// "re:" regex anchored at the start, as compressed-tensors and vLLM match them).
bool module_ignored(const std::string& module, const std::vector<std::string>& patterns);

// The format a tensor is stored in under `choice`.
WeightFormatId tensor_format(const ModelShape& model, const TensorSpec& tensor, FormatChoice choice);

// Bytes of one tensor spec (all `count` copies) in a format.
int64_t tensor_bytes(const TensorSpec& tensor, WeightFormatId format);

}  // namespace nibble::plan
