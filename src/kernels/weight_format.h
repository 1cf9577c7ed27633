// Weight formats as data: one row per format, read by the loader and the kernel table.
//
// A matmul weight is a matrix W[N, K] (N output features, K input features, row-major as in a
// Hugging Face checkpoint) stored in some format. Plain formats (F32/BF16/F16) hold one element
// per value; block-quantized formats (NVFP4, MXFP4, FP8 with scales — added by the formats issue)
// hold blocks of `block_elems` values in `block_bytes` bytes plus scales. Generic code reads these
// rows and never switches on a format's name.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "formats/block_format.h"
#include "tensor/dtype.h"

namespace nibble::kernels {

enum class WeightFormat : uint8_t {
  kF32,
  kBF16,
  kF16,
  // Block-quantized formats; each names its formats::BlockFormat row (src/formats/format_table.cpp),
  // whose dequantize_row is the reference decode.
  kNVFP4,       // ModelOpt NVFP4: E2M1 x E4M3 per 16 x F32 S2 (tensor_scale = weight_scale_2)
  kNVFP4CT,     // compressed-tensors NVFP4: multiplier E4M3 / G (tensor_scale = weight_global_scale)
  kMXFP4,       // MXFP4: E2M1 x E8M0 per 32
  kFP8Tensor,   // E4M3 weight, one F32 scale (block_scales -> 4 bytes)
  kFP8Channel,  // E4M3 weight, one F32 scale per output row
  kFP8Block,    // E4M3 weight, one F32 scale per 128 x 128 tile (DeepSeek weight_scale_inv)
};

inline constexpr int kNumWeightFormats = static_cast<int>(WeightFormat::kFP8Block) + 1;

struct WeightFormatInfo {
  WeightFormat format;
  std::string_view name;        // as printed in errors and `nibble info`
  tensor::DType storage_dtype;  // dtype of the main tensor in a checkpoint
  int block_elems;              // values per block along K (1 for plain formats)
  int block_bytes;              // bytes per block of the main tensor
  bool has_block_scales;        // a second tensor of per-block scales
  // The formats row with the bit-exact codec ("nvfp4", "mxfp4", "fp8-block", ...); empty for plain.
  std::string_view block_format;
};

const WeightFormatInfo& weight_format_info(WeightFormat format);

// The plain (unscaled) format whose main tensor has this dtype, if any.
std::optional<WeightFormat> plain_format_for_dtype(tensor::DType dtype);

// The formats row of a block-quantized format (nullptr for plain formats).
const formats::BlockFormat* block_format_of(WeightFormat format);

// Non-owning view of a matmul weight W[num_rows = N, num_cols = K] in its checkpoint format.
// The bytes live in the mapped checkpoint (or a load-time buffer owned by the model).
//
// Quantized formats: row n of `data` holds the packed element codes of W[n, :] exactly as stored
// (4-bit: element 2j in the low nibble of byte j; rows padded to the block as formats' TensorLayout
// says). Its scales are the scale row block_scales + (n / scale_tile_rows) * scale_row_bytes, one
// scale per `block_elems` columns, each in the formats row's scale codec (E4M3 / E8M0 byte, or
// little-endian F32). Nothing is aligned: read through memcpy.
struct MatWeight {
  WeightFormat format = WeightFormat::kF32;
  int64_t num_rows = 0;                   // N
  int64_t num_cols = 0;                   // K
  int64_t row_bytes = 0;                  // bytes of one row of `data`
  const uint8_t* data = nullptr;          // [N, row_bytes]
  const uint8_t* block_scales = nullptr;  // [ceil(N / scale_tile_rows), scale_row_bytes]; null if plain
  int64_t scale_row_bytes = 0;            // bytes of one row of block_scales
  int64_t scale_tile_rows = 1;            // weight rows sharing one scale row (128 for FP8 block, N for
                                          // FP8 per-tensor)
  float tensor_scale = 1.0f;              // per-tensor scale as stored (S2, G); 1 when the format has none
  // Static activation scale from the checkpoint (ModelOpt input_scale; CT 1/input_global_scale);
  // 0 = none. Kept for reporting and W4A4 kernels; the ref kernels keep activations in fp32.
  float input_scale = 0.0f;
};

}  // namespace nibble::kernels
