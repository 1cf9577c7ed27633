// Oracles: the bit-layout definitions in ../shared/docs/formats.md §1 (each decoder is checked
// against a formula written here from the spec, for every code), round trips for every non-NaN
// code, and RNE at every midpoint between adjacent codes.
#include "formats/element.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

namespace nibble::formats {

uint8_t e2m1_encode_generic_rne_for_test(float x);  // element.cpp

namespace {

// Spec value of a sign/exponent/mantissa code with the given widths and bias (no specials).
double spec_value(uint32_t code, int exp_bits, int man_bits, int bias) {
  const bool negative = (code >> (exp_bits + man_bits)) & 1u;
  const int e = static_cast<int>((code >> man_bits) & ((1u << exp_bits) - 1));
  const int m = static_cast<int>(code & ((1u << man_bits) - 1));
  const double frac = static_cast<double>(m) / static_cast<double>(1 << man_bits);
  const double v = e == 0 ? std::ldexp(frac, 1 - bias) : std::ldexp(1.0 + frac, e - bias);
  return negative ? -v : v;
}

bool same_float(float a, float b) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  return a == b && std::signbit(a) == std::signbit(b);
}

TEST(E2M1, AllCodesDecodeToSpec) {
  const float expected_magnitudes[8] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f};
  for (uint32_t c = 0; c < 16; ++c) {
    EXPECT_TRUE(same_float(e2m1_decode(static_cast<uint8_t>(c)), static_cast<float>(spec_value(c, 2, 1, 1))))
        << c;
    EXPECT_EQ(std::fabs(e2m1_decode(static_cast<uint8_t>(c))), expected_magnitudes[c & 7]) << c;
  }
}

TEST(E2M1, RoundTripsEveryCode) {
  for (uint8_t c = 0; c < 16; ++c) {
    const float v = e2m1_decode(c);
    // ModelOpt's sign test is (x < 0): -0.0 encodes to +0 (code 0); everything else round-trips.
    EXPECT_EQ(e2m1_encode_rne(v), c == 8 ? 0 : c) << int(c);
    EXPECT_EQ(e2m1_encode_rne_signbit(v), c) << int(c);
    EXPECT_EQ(e2m1_encode_ties_to_zero(v), c == 0 ? 8 : c) << int(c);
  }
}

TEST(E2M1, RneAtEveryMidpoint) {
  for (uint8_t lo = 0; lo < 7; ++lo) {
    const float a = e2m1_decode(lo);
    const float b = e2m1_decode(static_cast<uint8_t>(lo + 1));
    const float mid = (a + b) / 2;
    const uint8_t even = (lo % 2 == 0) ? lo : static_cast<uint8_t>(lo + 1);
    for (float sign : {1.0f, -1.0f}) {
      const uint8_t s = sign < 0 ? 8 : 0;
      EXPECT_EQ(e2m1_encode_rne(sign * mid), s | even) << mid;
      EXPECT_EQ(e2m1_encode_rne(sign * std::nextafter(mid, 0.0f)), s | lo) << mid;
      EXPECT_EQ(e2m1_encode_rne(sign * std::nextafter(mid, 10.0f)), s | (lo + 1)) << mid;
      // ModelOpt's MXFP4 cast sends every tie toward zero.
      EXPECT_EQ(e2m1_encode_ties_to_zero(sign * mid), (sign < 0 ? 8 : 0) | lo) << mid;
    }
  }
  EXPECT_EQ(e2m1_encode_rne(1e30f), 7);
  EXPECT_EQ(e2m1_encode_rne(-7.0f), 15);
  EXPECT_EQ(e2m1_encode_rne(-0.1f), 8);  // a negative value rounding to zero keeps its sign
  EXPECT_EQ(e2m1_encode_rne(NAN), 7);
}

TEST(E2M1, ThresholdEncoderEqualsGenericRne) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> dist(-8.0f, 8.0f);
  for (int i = 0; i < 200000; ++i) {
    const float x = dist(rng);
    ASSERT_EQ(e2m1_encode_rne(x), e2m1_encode_generic_rne_for_test(x)) << x;
  }
  for (float x = -7.0f; x <= 7.0f; x += 0.125f) {
    ASSERT_EQ(e2m1_encode_rne(x), e2m1_encode_generic_rne_for_test(x)) << x;
  }
}

TEST(E4M3, AllCodesDecodeToSpec) {
  for (uint32_t c = 0; c < 256; ++c) {
    const float v = e4m3_decode(static_cast<uint8_t>(c));
    if ((c & 0x7F) == 0x7F) {
      EXPECT_TRUE(std::isnan(v)) << c;
    } else {
      EXPECT_TRUE(same_float(v, static_cast<float>(spec_value(c, 4, 3, 7)))) << c;
    }
  }
  EXPECT_EQ(e4m3_decode(0x7E), 448.0f);
  EXPECT_EQ(e4m3_decode(0x01), 0x1p-9f);
  EXPECT_EQ(e4m3_decode(0x08), 0x1p-6f);
}

TEST(E4M3, RoundTripsEveryNonNanCode) {
  for (uint32_t c = 0; c < 256; ++c) {
    if ((c & 0x7F) == 0x7F) continue;
    const float v = e4m3_decode(static_cast<uint8_t>(c));
    EXPECT_EQ(e4m3_encode(v, Overflow::kSaturate), c);
    EXPECT_EQ(e4m3_encode(v, Overflow::kNonFinite), c);
  }
}

TEST(E4M3, RneAtEveryMidpoint) {
  for (uint32_t lo = 0; lo < 0x7E; ++lo) {
    const float a = e4m3_decode(static_cast<uint8_t>(lo));
    const float b = e4m3_decode(static_cast<uint8_t>(lo + 1));
    const float mid = (a + b) / 2;  // exact in float32
    const uint32_t even = (lo % 2 == 0) ? lo : lo + 1;
    EXPECT_EQ(e4m3_encode(mid), even) << mid;
    EXPECT_EQ(e4m3_encode(-mid), 0x80 | even) << mid;
    EXPECT_EQ(e4m3_encode(std::nextafter(mid, 0.0f)), lo) << mid;
    EXPECT_EQ(e4m3_encode(std::nextafter(mid, 1000.0f)), lo + 1) << mid;
  }
}

TEST(E4M3, OverflowAndSpecials) {
  EXPECT_EQ(e4m3_encode(464.0f, Overflow::kNonFinite), 0x7E);  // tie rounds to even 448
  EXPECT_EQ(e4m3_encode(464.5f, Overflow::kNonFinite), 0x7F);
  EXPECT_EQ(e4m3_encode(-1e6f, Overflow::kNonFinite), 0xFF);
  EXPECT_EQ(e4m3_encode(1e6f, Overflow::kSaturate), 0x7E);
  EXPECT_EQ(e4m3_encode(-INFINITY, Overflow::kSaturate), 0xFE);  // torch 2.15
  EXPECT_EQ(e4m3_encode(INFINITY, Overflow::kNonFinite), 0x7F);
  EXPECT_EQ(e4m3_encode(NAN), 0x7F);
  EXPECT_EQ(e4m3_encode(-NAN), 0xFF);
  EXPECT_EQ(e4m3_encode(-0.0f), 0x80);
  EXPECT_EQ(e4m3_encode(0x1p-10f), 0x00);  // tie between 0 and 2^-9 → even (0)
  EXPECT_EQ(e4m3_encode(0x1.8p-10f), 0x01);
}

TEST(E5M2, AllCodesDecodeToSpec) {
  for (uint32_t c = 0; c < 256; ++c) {
    const float v = e5m2_decode(static_cast<uint8_t>(c));
    const uint32_t m = c & 0x7F;
    if (m == 0x7C) {
      EXPECT_TRUE(std::isinf(v) && std::signbit(v) == ((c & 0x80) != 0)) << c;
    } else if (m > 0x7C) {
      EXPECT_TRUE(std::isnan(v)) << c;
    } else {
      EXPECT_TRUE(same_float(v, static_cast<float>(spec_value(c, 5, 2, 15)))) << c;
    }
  }
  EXPECT_EQ(e5m2_decode(0x7B), 57344.0f);
}

TEST(E5M2, RoundTripsAndMidpoints) {
  for (uint32_t c = 0; c < 256; ++c) {
    if ((c & 0x7F) > 0x7C) continue;
    EXPECT_EQ(e5m2_encode(e5m2_decode(static_cast<uint8_t>(c))), c);
  }
  for (uint32_t lo = 0; lo < 0x7B; ++lo) {
    const float mid = (e5m2_decode(static_cast<uint8_t>(lo)) + e5m2_decode(static_cast<uint8_t>(lo + 1))) / 2;
    EXPECT_EQ(e5m2_encode(mid), (lo % 2 == 0) ? lo : lo + 1) << mid;
    EXPECT_EQ(e5m2_encode(std::nextafter(mid, 0.0f)), lo) << mid;
    EXPECT_EQ(e5m2_encode(std::nextafter(mid, 1e9f)), lo + 1) << mid;
  }
  EXPECT_EQ(e5m2_encode(61440.0f), 0x7C);  // tie above max rounds to even: Inf
  EXPECT_EQ(e5m2_encode(61439.0f), 0x7B);
  EXPECT_EQ(e5m2_encode(61440.0f, Overflow::kSaturate), 0x7B);
  EXPECT_EQ(e5m2_encode(-INFINITY), 0xFC);
  EXPECT_EQ(e5m2_encode(NAN), 0x7F);
}

TEST(E8M0, AllCodesDecodeToSpec) {
  for (uint32_t c = 0; c < 255; ++c) {
    EXPECT_EQ(e8m0_decode(static_cast<uint8_t>(c)), std::ldexp(1.0f, static_cast<int>(c) - 127)) << c;
  }
  EXPECT_TRUE(std::isnan(e8m0_decode(0xFF)));
  EXPECT_GT(e8m0_decode(0x00), 0.0f);  // 2^-127: there is no zero
}

TEST(E8M0, EncodeFollowsTorch) {
  for (uint32_t c = 0; c < 255; ++c) EXPECT_EQ(e8m0_encode(e8m0_decode(static_cast<uint8_t>(c))), c);
  EXPECT_EQ(e8m0_encode(1.5f), 128);  // a normal float's midpoint rounds up
  EXPECT_EQ(e8m0_encode(1.49f), 127);
  EXPECT_EQ(e8m0_encode(3.0f), 129);
  EXPECT_EQ(e8m0_encode(-1.0f), 127);  // sign ignored
  EXPECT_EQ(e8m0_encode(0.0f), 0);
  EXPECT_EQ(e8m0_encode(0x1p-128f), 0);  // subnormal tie rounds down (implied bit 0)
  EXPECT_EQ(e8m0_encode(0x1.8p-127f), 1);
  EXPECT_EQ(e8m0_encode(3e38f), 0xFF);  // rounds past 2^127
  EXPECT_EQ(e8m0_encode(INFINITY), 0xFF);
  EXPECT_EQ(e8m0_encode(NAN), 0xFF);
  EXPECT_EQ(e8m0_from_exponent(-200), 0x00);
  EXPECT_EQ(e8m0_from_exponent(200), 0xFE);
  EXPECT_EQ(e8m0_from_exponent(0), 127);
}

TEST(UE4M3, LlamaCppReading) {
  for (uint32_t c = 0; c < 256; ++c) {
    const float v = ue4m3_decode(static_cast<uint8_t>(c));
    if (c == 0x7F) {
      EXPECT_EQ(v, 0.0f);
    } else {
      EXPECT_EQ(v, static_cast<float>(spec_value(c & 0x7F, 4, 3, 7))) << c;  // bit 7 not read
    }
  }
  EXPECT_EQ(ue4m3_decode(0xFF), 480.0f);  // not special-cased by ggml_ue4m3_to_fp32
  // Codes below 2^8 round-trip; llama.cpp's encoder sends everything from 256 up to 0x7E.
  for (uint32_t c = 0; c < 0x78; ++c) EXPECT_EQ(ue4m3_encode(ue4m3_decode(static_cast<uint8_t>(c))), c);
  EXPECT_EQ(ue4m3_encode(256.0f), 0x7E);
  EXPECT_EQ(ue4m3_encode(1.0625f), 0x39);   // half up, where RNE would give 0x38
  EXPECT_EQ(ue4m3_encode(0x1p-10f), 0x01);  // (int)(0.5 + 0.5)
  EXPECT_EQ(ue4m3_encode(-1.0f), 0);
  EXPECT_EQ(ue4m3_encode(NAN), 0);
  EXPECT_EQ(ue4m3_encode(1e9f), 0x7E);
}

TEST(E2M1, NearestLowestCodeIsTiesTowardZero) {
  for (uint8_t lo = 0; lo < 7; ++lo) {
    const float mid = (e2m1_decode(lo) + e2m1_decode(static_cast<uint8_t>(lo + 1))) / 2;
    EXPECT_EQ(e2m1_encode_nearest_lowest_code(mid), lo) << mid;
    EXPECT_EQ(e2m1_encode_nearest_lowest_code(-mid), lo == 0 ? 0 : 8 | lo) << mid;
  }
  for (uint8_t c = 0; c < 16; ++c) EXPECT_EQ(e2m1_encode_nearest_lowest_code(e2m1_decode(c)), c == 8 ? 0 : c);
  EXPECT_EQ(e2m1_encode_nearest_lowest_code(-0.1f), 0);
  EXPECT_EQ(e2m1_encode_nearest_lowest_code(100.0f), 7);
}

TEST(ElementCodecs, TableIsConsistent) {
  for (const ElementCodec* codec : element_codecs()) {
    EXPECT_EQ(find_element_codec(codec->name), codec);
    EXPECT_TRUE(codec->bits == 4 || codec->bits == 8);
    // The max finite value round-trips through the reference encoder.
    EXPECT_EQ(codec->decode(codec->encode(codec->max_finite)), codec->max_finite) << codec->name;
  }
  EXPECT_EQ(find_element_codec("nope"), nullptr);
}

}  // namespace
}  // namespace nibble::formats
