#include "tensor/dtype.h"

#include <array>

namespace nibble::tensor {
namespace {

struct DTypeRow {
  DType dtype;
  std::string_view name;
  int bits;
};

// One row per dtype; the order matches the enum.
constexpr std::array<DTypeRow, kNumDTypes> kRows = {{
    {DType::kBool, "BOOL", 8},
    {DType::kU8, "U8", 8},
    {DType::kI8, "I8", 8},
    {DType::kU16, "U16", 16},
    {DType::kI16, "I16", 16},
    {DType::kU32, "U32", 32},
    {DType::kI32, "I32", 32},
    {DType::kU64, "U64", 64},
    {DType::kI64, "I64", 64},
    {DType::kF16, "F16", 16},
    {DType::kBF16, "BF16", 16},
    {DType::kF32, "F32", 32},
    {DType::kF64, "F64", 64},
    {DType::kC64, "C64", 64},
    {DType::kF8E4M3, "F8_E4M3", 8},
    {DType::kF8E5M2, "F8_E5M2", 8},
    {DType::kF8E4M3FNUZ, "F8_E4M3FNUZ", 8},
    {DType::kF8E5M2FNUZ, "F8_E5M2FNUZ", 8},
    {DType::kF8E8M0, "F8_E8M0", 8},
    {DType::kF6E2M3, "F6_E2M3", 6},
    {DType::kF6E3M2, "F6_E3M2", 6},
    {DType::kF4, "F4", 4},
}};

constexpr bool rows_match_enum() {
  for (int i = 0; i < kNumDTypes; ++i) {
    if (static_cast<int>(kRows[static_cast<size_t>(i)].dtype) != i) return false;
  }
  return true;
}
static_assert(rows_match_enum(), "kRows must follow the DType enum order");

}  // namespace

int dtype_bits(DType dtype) { return kRows[static_cast<size_t>(dtype)].bits; }

std::string_view dtype_name(DType dtype) { return kRows[static_cast<size_t>(dtype)].name; }

std::optional<DType> parse_dtype(std::string_view name) {
  for (const auto& row : kRows) {
    if (row.name == name) return row.dtype;
  }
  return std::nullopt;
}

std::optional<uint64_t> dtype_num_bytes(DType dtype, uint64_t num_elems) {
  const uint64_t bits = static_cast<uint64_t>(dtype_bits(dtype));
  if (num_elems != 0 && bits > UINT64_MAX / num_elems) return std::nullopt;
  const uint64_t total_bits = num_elems * bits;
  if (total_bits % 8 != 0) return std::nullopt;
  return total_bits / 8;
}

}  // namespace nibble::tensor
