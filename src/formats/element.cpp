#include "formats/element.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>

namespace nibble::formats {
namespace {

uint32_t bits_of(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof(u));
  return u;
}

// A small IEEE-style binary float without Inf/NaN handling: exp_bits exponent bits with the given
// bias, man_bits mantissa bits, subnormals when the exponent field is 0.
struct MiniFloat {
  int man_bits;
  int bias;
};

// Value of a magnitude code (sign stripped) of a MiniFloat.
float minifloat_value(MiniFloat spec, uint32_t magnitude_code) {
  const uint32_t exp_field = magnitude_code >> spec.man_bits;
  const uint32_t man = magnitude_code & ((1u << spec.man_bits) - 1);
  if (exp_field == 0) return std::ldexp(static_cast<float>(man), 1 - spec.bias - spec.man_bits);
  return std::ldexp(static_cast<float>((1u << spec.man_bits) | man),
                    static_cast<int>(exp_field) - spec.bias - spec.man_bits);
}

// Magnitude code of RNE(a) for finite a >= 0, with no upper limit (the caller compares the code
// against its largest finite code). Division by the power-of-two quantum is exact, so nearbyint
// (default rounding mode: to nearest, ties to even) performs the RNE.
uint32_t minifloat_round(MiniFloat spec, float a) {
  if (a == 0.0f) return 0;
  int frexp_exp = 0;
  std::frexp(a, &frexp_exp);  // a = f * 2^frexp_exp, f in [0.5, 1)
  const int min_exp = 1 - spec.bias;
  int exp = frexp_exp - 1;  // floor(log2(a))
  if (exp < min_exp) exp = min_exp;
  const float quantum = std::ldexp(1.0f, exp - spec.man_bits);
  const uint32_t n = static_cast<uint32_t>(std::nearbyint(a / quantum));  // 0 .. 2^(man_bits+1)
  const uint32_t implicit = 1u << spec.man_bits;
  if (n < implicit) return n;  // subnormal (only reachable when exp == min_exp)
  // n == 2*implicit (a carry) is handled by the arithmetic: it bumps the exponent field.
  return (static_cast<uint32_t>(exp + spec.bias) << spec.man_bits) + (n - implicit);
}

constexpr MiniFloat kE4M3Spec{3, 7};
constexpr MiniFloat kE5M2Spec{2, 15};
constexpr MiniFloat kE2M1Spec{1, 1};

constexpr uint32_t kE4M3MaxCode = 0x7E;
constexpr uint32_t kE5M2MaxCode = 0x7B;

}  // namespace

// ---- E2M1 ----

uint8_t e2m1_encode_rne(float x) {
  if (std::isnan(x)) return 7;
  const uint8_t sign = x < 0.0f ? 8 : 0;
  const float a = std::fabs(x);
  // ModelOpt's bounds: a value equal to a bound takes the lower code, except the bounds whose lower
  // neighbour has an odd code (0.75, 1.75, 3.5), which go up; this is RNE on the code.
  uint8_t code;
  if (a <= 0.25f) {
    code = 0;
  } else if (a < 0.75f) {
    code = 1;
  } else if (a <= 1.25f) {
    code = 2;
  } else if (a < 1.75f) {
    code = 3;
  } else if (a <= 2.5f) {
    code = 4;
  } else if (a < 3.5f) {
    code = 5;
  } else if (a <= 5.0f) {
    code = 6;
  } else {
    code = 7;
  }
  return static_cast<uint8_t>(sign | code);
}

uint8_t e2m1_encode_rne_signbit(float x) {
  const uint8_t sign = std::signbit(x) ? 8 : 0;
  if (std::isnan(x)) return static_cast<uint8_t>(sign | 7);
  return static_cast<uint8_t>(sign | (e2m1_encode_rne(std::fabs(x)) & 7));
}

uint8_t e2m1_encode_ties_to_zero(float x) {
  if (std::isnan(x)) return 8;
  static constexpr std::array<float, 7> kBounds = {0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5.0f};
  const float a = std::fabs(x);
  uint8_t code = 0;
  for (float bound : kBounds) code = static_cast<uint8_t>(code + (a > bound ? 1 : 0));
  const uint8_t sign = x > 0.0f ? 0 : 8;
  return static_cast<uint8_t>(sign | code);
}

uint8_t e2m1_encode_nearest_lowest_code(float x) {
  uint8_t best = 0;
  float best_error = std::fabs(kE2M1Values[0] - x);
  for (uint8_t code = 1; code < 16; ++code) {
    const float error = std::fabs(kE2M1Values[code] - x);
    if (error < best_error) {
      best_error = error;
      best = code;
    }
  }
  return best;
}

// ---- E4M3FN ----

float e4m3_decode(uint8_t code) {
  const uint32_t magnitude = code & 0x7Fu;
  if (magnitude == 0x7Fu) return std::nanf("");
  const float v = minifloat_value(kE4M3Spec, magnitude);
  return (code & 0x80u) ? -v : v;
}

uint8_t e4m3_encode(float x, Overflow overflow) {
  const uint8_t sign = std::signbit(x) ? 0x80 : 0x00;
  if (std::isnan(x)) return static_cast<uint8_t>(sign | 0x7F);
  if (std::isinf(x)) {
    return static_cast<uint8_t>(sign | (overflow == Overflow::kSaturate ? kE4M3MaxCode : 0x7Fu));
  }
  uint32_t magnitude = minifloat_round(kE4M3Spec, std::fabs(x));
  if (magnitude > kE4M3MaxCode) magnitude = overflow == Overflow::kSaturate ? kE4M3MaxCode : 0x7Fu;
  return static_cast<uint8_t>(sign | magnitude);
}

// ---- E5M2 ----

float e5m2_decode(uint8_t code) {
  const uint32_t magnitude = code & 0x7Fu;
  const bool negative = (code & 0x80u) != 0;
  if (magnitude == 0x7Cu) return negative ? -INFINITY : INFINITY;
  if (magnitude > 0x7Cu) return std::nanf("");
  const float v = minifloat_value(kE5M2Spec, magnitude);
  return negative ? -v : v;
}

uint8_t e5m2_encode(float x, Overflow overflow) {
  const uint8_t sign = std::signbit(x) ? 0x80 : 0x00;
  if (std::isnan(x)) return static_cast<uint8_t>(sign | 0x7F);
  const uint32_t limit = overflow == Overflow::kSaturate ? kE5M2MaxCode : 0x7Cu;
  if (std::isinf(x)) return static_cast<uint8_t>(sign | limit);
  uint32_t magnitude = minifloat_round(kE5M2Spec, std::fabs(x));
  if (magnitude > kE5M2MaxCode) magnitude = limit;
  return static_cast<uint8_t>(sign | magnitude);
}

// ---- E8M0 ----

float e8m0_decode(uint8_t code) {
  if (code == 0xFF) return std::nanf("");
  return std::ldexp(1.0f, static_cast<int>(code) - 127);
}

uint8_t e8m0_encode(float x) {
  const uint32_t u = bits_of(x);
  uint32_t exp_field = (u >> 23) & 0xFFu;
  if (exp_field == 0xFFu) return 0xFF;
  // The E8M0 value keeps only float32's exponent field; the implied leading bit (1 for normal
  // floats, 0 for subnormals) plays the role of the least significant kept bit.
  const uint32_t mantissa = u & 0x7FFFFFu;
  const bool half = (mantissa & 0x400000u) != 0;  // first dropped bit
  const bool rest = (mantissa & 0x3FFFFFu) != 0;  // any later dropped bit
  const bool lsb = exp_field != 0;
  if (half && (rest || lsb)) ++exp_field;  // 0xFE + 1 = 0xFF (NaN) on overflow
  return static_cast<uint8_t>(exp_field);
}

uint8_t e8m0_from_exponent(int exponent) {
  int code = exponent + 127;
  if (code < 0) code = 0;
  if (code > 0xFE) code = 0xFE;
  return static_cast<uint8_t>(code);
}

// ---- UE4M3 ----

float ue4m3_decode(uint8_t code) {
  if (code == 0x7F) return 0.0f;
  return minifloat_value(kE4M3Spec, code & 0x7Fu);
}

uint8_t ue4m3_encode(float x) {
  if (!(x > 0.0f)) return 0x00;
  if (x > 448.0f) x = 448.0f;
  const uint32_t u = bits_of(x);
  int exp = static_cast<int>((u >> 23) & 0xFFu) - 127 + 7;
  if (exp <= 0) {  // below 2^-6: multiples of 2^-9, rounded half up
    const int man = static_cast<int>(x * 512.0f + 0.5f);
    return static_cast<uint8_t>(man < 1 ? 0 : std::min(man, 7));
  }
  if (exp >= 15) return 0x7E;
  int man = static_cast<int>((u >> 20) & 0x7u) + static_cast<int>((u >> 19) & 0x1u);
  if (man > 7) {
    man = 0;
    if (++exp >= 15) return 0x7E;
  }
  return static_cast<uint8_t>((exp << 3) | man);
}

// ---- codec rows ----

namespace {
uint8_t e4m3_encode_saturating(float x) {
  return e4m3_encode(x, Overflow::kSaturate);
}
uint8_t e5m2_encode_ieee(float x) {
  return e5m2_encode(x, Overflow::kNonFinite);
}
}  // namespace

const ElementCodec kE2M1Codec{"e2m1", 4, kE2M1Max, e2m1_decode, e2m1_encode_rne};
const ElementCodec kE4M3Codec{"e4m3", 8, kE4M3Max, e4m3_decode, e4m3_encode_saturating};
const ElementCodec kE5M2Codec{"e5m2", 8, kE5M2Max, e5m2_decode, e5m2_encode_ieee};
const ElementCodec kE8M0Codec{"e8m0", 8, 0x1p127f, e8m0_decode, e8m0_encode};
const ElementCodec kUE4M3Codec{"ue4m3", 8, kE4M3Max, ue4m3_decode, ue4m3_encode};

std::span<const ElementCodec* const> element_codecs() {
  static const ElementCodec* const kAll[] = {&kE2M1Codec, &kE4M3Codec, &kE5M2Codec, &kE8M0Codec,
                                             &kUE4M3Codec};
  return kAll;
}

const ElementCodec* find_element_codec(std::string_view name) {
  for (const ElementCodec* codec : element_codecs()) {
    if (codec->name == name) return codec;
  }
  return nullptr;
}

// Exposed for the unit test that checks the threshold E2M1 encoder against generic RNE.
uint8_t e2m1_encode_generic_rne_for_test(float x) {
  const uint8_t sign = x < 0.0f ? 8 : 0;
  uint32_t magnitude = minifloat_round(kE2M1Spec, std::fabs(x));
  if (magnitude > 7) magnitude = 7;
  return static_cast<uint8_t>(sign | magnitude);
}

}  // namespace nibble::formats
