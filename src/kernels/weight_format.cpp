#include "kernels/weight_format.h"

#include <array>

namespace nibble::kernels {
namespace {

// One row per format; the order matches the enum.
constexpr std::array<WeightFormatInfo, kNumWeightFormats> kFormats = {{
    {WeightFormat::kF32, "F32", tensor::DType::kF32, 1, 4, false},
    {WeightFormat::kBF16, "BF16", tensor::DType::kBF16, 1, 2, false},
    {WeightFormat::kF16, "F16", tensor::DType::kF16, 1, 2, false},
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

}  // namespace nibble::kernels
