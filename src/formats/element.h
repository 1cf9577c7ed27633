// Scalar, bit-exact element codecs: FP4 E2M1, FP8 E4M3FN / E5M2, E8M0 and UE4M3.
//
// Every encoder here takes a float32 and returns a code; every decoder returns the exact float32
// value of a code. Rounding is round-to-nearest-even (RNE) unless a function says otherwise.
// The producer-specific variants (ModelOpt, compressed-tensors) differ only where the producers
// differ; docs/formats.md lists every such difference and the test that pins it.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

namespace nibble::formats {

// What an encoder does with a finite value beyond the largest finite code.
enum class Overflow {
  kSaturate,   // clamp to ±max finite (torch 2.15 float8_e4m3fn cast; also maps ±Inf to ±max)
  kNonFinite,  // NaN for E4M3FN (older torch), ±Inf for E5M2 (IEEE, torch's float8_e5m2 cast)
};

// ---- FP4 E2M1: bit3 sign, bits2..1 exponent (bias 1), bit0 mantissa; no Inf/NaN; max 6 ----
inline constexpr float kE2M1Max = 6.0f;
// The 16 code values; code 8 is -0.0.
inline constexpr float kE2M1Values[16] = {0.0f,  0.5f,  1.0f,  1.5f,  2.0f,  3.0f,  4.0f,  6.0f,
                                          -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f};
inline float e2m1_decode(uint8_t code) {
  return kE2M1Values[code & 0x0F];
}

// ModelOpt NVFP4 `_cast_fp4`: sign = (x < 0), RNE on the code, saturating at 6.
// ±0.0 → code 0; a negative value that rounds to zero → code 8; NaN → code 7 (torch.searchsorted
// sorts NaN last).
uint8_t e2m1_encode_rne(float x);
// compressed-tensors' cast_to_fp4 + pack_fp4_to_uint8 give exactly e2m1_encode_rne (its cast turns
// -0.0 into +0.0 before the pack reads signbit). This variant takes the sign from signbit, so -0.0
// → code 8: what pack_fp4_to_uint8 does when handed a -0.0 directly. NaN → 7 | signbit.
uint8_t e2m1_encode_rne_signbit(float x);
// ModelOpt MXFP4 `cast_fp4`: code = #bounds strictly below |x| (ties go toward zero), saturating;
// the sign bit is set for x <= 0, so ±0.0 → code 8. NaN → 8 (unspecified in ModelOpt).
uint8_t e2m1_encode_ties_to_zero(float x);

// llama.cpp MXFP4 (quantize_row_mxfp4_ref / best_index_mxfp4): the nearest of the 16 code values by
// float32 |value - x|, the lowest code winning ties; so ties go toward zero and a negative value
// rounding to zero gets code 0. NaN → 0.
uint8_t e2m1_encode_nearest_lowest_code(float x);

// ---- FP8 E4M3FN: bias 7, no Inf, NaN = 0x7F/0xFF, max 448 (0x7E), min subnormal 2^-9 ----
inline constexpr float kE4M3Max = 448.0f;
float e4m3_decode(uint8_t code);
// RNE; NaN → 0x7F | sign. kSaturate: |x| > 448 (and ±Inf) → ±448. kNonFinite: results above 448
// after rounding (|x| > 464) and ±Inf → NaN (0x7F | sign); 448 < |x| <= 464 still rounds to 448.
uint8_t e4m3_encode(float x, Overflow overflow = Overflow::kSaturate);

// ---- FP8 E5M2: IEEE-like, bias 15, Inf 0x7C/0xFC, NaN exponent 31 with mantissa != 0, max 57344 ----
inline constexpr float kE5M2Max = 57344.0f;
float e5m2_decode(uint8_t code);
// RNE; NaN → 0x7F | sign. kNonFinite (torch): |x| >= 61440 and ±Inf → ±Inf; kSaturate → ±57344.
uint8_t e5m2_encode(float x, Overflow overflow = Overflow::kNonFinite);

// ---- E8M0: unsigned exponent, value 2^(e-127), 0x00 = 2^-127 (not zero), 0xFF = NaN ----
float e8m0_decode(uint8_t code);
// torch's float8_e8m0fnu cast: the sign is ignored; NaN/±Inf → 0xFF; RNE where the implied
// leading bit is the LSB (so a normal float with mantissa >= 0.5 rounds up, and 2^-128 rounds
// down to 0x00); a value that rounds past 2^127 → 0xFF; 0 → 0x00.
uint8_t e8m0_encode(float x);
// Code for 2^exponent, clamped into [2^-127, 2^127] (0x00..0xFE).
uint8_t e8m0_from_exponent(int exponent);

// ---- UE4M3: llama.cpp's NVFP4 block-scale byte (ggml_ue4m3_to_fp32 / ggml_fp32_to_ue4m3) ----
// bits6..3 exponent (bias 7), bits2..0 mantissa, bit 7 not read; 0x00 and 0x7F decode to 0.0 (0xFF
// is not special-cased and reads as 480). This returns the full value; llama.cpp's decoder returns
// half of it (its E2M1 table is doubled).
float ue4m3_decode(uint8_t code);
// llama.cpp's encoder: NaN and x <= 0 → 0x00; x clamped to 448; round half up on the first dropped
// mantissa bit (not RNE); any x >= 256 → 0x7E (448); subnormals as (int)(x*512 + 0.5), at most 7.
uint8_t ue4m3_encode(float x);

// One row per element codec: what generic code needs to decode and encode it.
struct ElementCodec {
  std::string_view name;  // "e2m1", "e4m3", "e5m2", "e8m0", "ue4m3"
  int bits;               // storage bits per element (4 or 8)
  float max_finite;       // largest finite magnitude
  float (*decode)(uint8_t code);
  uint8_t (*encode)(float x);  // the reference encoder: RNE, saturating where the type is finite
};

extern const ElementCodec kE2M1Codec;
extern const ElementCodec kE4M3Codec;
extern const ElementCodec kE5M2Codec;
extern const ElementCodec kE8M0Codec;
extern const ElementCodec kUE4M3Codec;

// All element codecs, for tests and `nibble info`-style listings.
std::span<const ElementCodec* const> element_codecs();
const ElementCodec* find_element_codec(std::string_view name);

}  // namespace nibble::formats
