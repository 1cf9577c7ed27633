#include "kernels/weight_format.h"

#include <array>

namespace nibble::kernels {
namespace {

// One row per format; the order matches the enum.
constexpr std::array<WeightFormatInfo, kNumWeightFormats> kFormats = {{
    {WeightFormat::kF32, "F32", tensor::DType::kF32, 1, 4, false, ""},
    {WeightFormat::kBF16, "BF16", tensor::DType::kBF16, 1, 2, false, ""},
    {WeightFormat::kF16, "F16", tensor::DType::kF16, 1, 2, false, ""},
    {WeightFormat::kNVFP4, "NVFP4", tensor::DType::kU8, 16, 8, true, "nvfp4"},
    {WeightFormat::kNVFP4CT, "NVFP4 (compressed-tensors)", tensor::DType::kU8, 16, 8, true, "nvfp4-ct"},
    {WeightFormat::kMXFP4, "MXFP4", tensor::DType::kU8, 32, 16, true, "mxfp4"},
    {WeightFormat::kFP8Tensor, "FP8 (per-tensor)", tensor::DType::kF8E4M3, 1, 1, true, "fp8"},
    {WeightFormat::kFP8Channel, "FP8 (per-channel)", tensor::DType::kF8E4M3, 1, 1, true, "fp8-channel"},
    {WeightFormat::kFP8Block, "FP8 (128x128 blocks)", tensor::DType::kF8E4M3, 128, 128, true, "fp8-block"},
}};

constexpr bool formats_match_enum() {
  for (int i = 0; i < kNumWeightFormats; ++i) {
    if (static_cast<int>(kFormats[static_cast<size_t>(i)].format) != i) return false;
  }
  return true;
}
static_assert(formats_match_enum(), "kFormats must follow the WeightFormat enum order");

}  // namespace

const WeightFormatInfo& weight_format_info(WeightFormat format) {
  return kFormats[static_cast<size_t>(format)];
}

std::optional<WeightFormat> plain_format_for_dtype(tensor::DType dtype) {
  for (const auto& row : kFormats) {
    if (!row.has_block_scales && row.block_elems == 1 && row.storage_dtype == dtype) return row.format;
  }
  return std::nullopt;
}

const formats::BlockFormat* block_format_of(WeightFormat format) {
  const WeightFormatInfo& info = weight_format_info(format);
  if (info.block_format.empty()) return nullptr;
  const formats::BlockFormat* f = formats::find_block_format(info.block_format);
  NIBBLE_CHECK(f != nullptr, "weight format row names an unknown formats row");
  return f;
}

}  // namespace nibble::kernels
