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

#include "tensor/dtype.h"

namespace nibble::kernels {

enum class WeightFormat : uint8_t {
  kF32,
  kBF16,
  kF16,
};

inline constexpr int kNumWeightFormats = static_cast<int>(WeightFormat::kF16) + 1;

struct WeightFormatInfo {
  WeightFormat format;
  std::string_view name;        // as printed in errors and `nibble info`
  tensor::DType storage_dtype;  // dtype of the main tensor in a checkpoint
  int block_elems;              // values per block along K (1 for plain formats)
  int block_bytes;              // bytes per block of the main tensor
  bool has_block_scales;        // a second tensor of per-block scales
};

const WeightFormatInfo& weight_format_info(WeightFormat format);

// The plain (unscaled) format whose main tensor has this dtype, if any.
std::optional<WeightFormat> plain_format_for_dtype(tensor::DType dtype);

// Non-owning view of a matmul weight W[num_rows = N, num_cols = K] in its checkpoint format.
// The bytes live in the mapped checkpoint (or a load-time repacked buffer).
struct MatWeight {
  WeightFormat format = WeightFormat::kF32;
  int64_t num_rows = 0;                   // N
  int64_t num_cols = 0;                   // K
  int64_t row_bytes = 0;                  // bytes of one row of `data`
  const uint8_t* data = nullptr;          // [N, row_bytes]
  const uint8_t* block_scales = nullptr;  // format-specific; null for plain formats
  int64_t scale_row_bytes = 0;            // bytes of one row of block_scales
  float tensor_scale = 1.0f;              // global scale (quantized formats); 1 for plain formats
};

}  // namespace nibble::kernels
