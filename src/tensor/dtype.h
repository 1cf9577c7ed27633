// Element types as they appear in checkpoints (safetensors dtype strings) and in memory.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace nibble::tensor {

enum class DType : uint8_t {
  kBool,
  kU8,
  kI8,
  kU16,
  kI16,
  kU32,
  kI32,
  kU64,
  kI64,
  kF16,
  kBF16,
  kF32,
  kF64,
  kC64,
  kF8E4M3,      // float8_e4m3fn: finite + NaN, max 448
  kF8E5M2,      // IEEE-like, has Inf
  kF8E4M3FNUZ,  // bias 8, NaN = 0x80
  kF8E5M2FNUZ,
  kF8E8M0,      // float8_e8m0fnu: unsigned exponent, 0xFF = NaN
  kF6E2M3,      // 6-bit floats, packed
  kF6E3M2,
  kF4,          // float4_e2m1fn_x2: two values per byte
};

inline constexpr int kNumDTypes = static_cast<int>(DType::kF4) + 1;

// Bits per logical element (4 for F4, 6 for F6, 8 for F8, ...).
int dtype_bits(DType dtype);

// The safetensors dtype string ("BF16", "F8_E4M3", ...).
std::string_view dtype_name(DType dtype);

// Parses a safetensors dtype string; nullopt when unknown.
std::optional<DType> parse_dtype(std::string_view name);

// Byte size of num_elems elements, or nullopt when num_elems * bits is not a whole number of bytes.
std::optional<uint64_t> dtype_num_bytes(DType dtype, uint64_t num_elems);

}  // namespace nibble::tensor
