// Oracle: the dtype strings and widths of safetensors' `Dtype` enum (see shared/docs/formats.md §6).
#include "tensor/dtype.h"

#include <gtest/gtest.h>

namespace nibble::tensor {
namespace {

TEST(DType, NamesRoundTrip) {
  const char* names[] = {"BOOL", "F4", "F6_E2M3", "F6_E3M2", "U8", "I8", "F8_E5M2", "F8_E4M3",
                         "F8_E8M0", "F8_E4M3FNUZ", "F8_E5M2FNUZ", "I16", "U16", "F16", "BF16",
                         "I32", "U32", "F32", "C64", "F64", "I64", "U64"};
  for (const char* name : names) {
    auto d = parse_dtype(name);
    ASSERT_TRUE(d.has_value()) << name;
    EXPECT_EQ(dtype_name(*d), name);
  }
  EXPECT_FALSE(parse_dtype("bf16").has_value());
  EXPECT_FALSE(parse_dtype("F8").has_value());
}

TEST(DType, ByteSizes) {
  EXPECT_EQ(dtype_num_bytes(DType::kBF16, 10).value(), 20u);
  EXPECT_EQ(dtype_num_bytes(DType::kF4, 10).value(), 5u);
  EXPECT_FALSE(dtype_num_bytes(DType::kF4, 3).has_value());
  EXPECT_EQ(dtype_num_bytes(DType::kF6E2M3, 4).value(), 3u);
  EXPECT_FALSE(dtype_num_bytes(DType::kF64, UINT64_MAX / 2).has_value());
  EXPECT_EQ(dtype_num_bytes(DType::kF32, 0).value(), 0u);
}

}  // namespace
}  // namespace nibble::tensor
