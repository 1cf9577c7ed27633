// Oracle: the hardware/compiler conversions of _Float16 where available, and hand-picked
// values from the IEEE-754 binary16 / bfloat16 definitions.
#include "base/float16.h"

#include <gtest/gtest.h>

#include <cmath>

namespace nibble::base {
namespace {

TEST(Float16, KnownValues) {
  EXPECT_EQ(float_to_f16(1.0f), 0x3c00);
  EXPECT_EQ(float_to_f16(-2.0f), 0xc000);
  EXPECT_EQ(float_to_f16(65504.0f), 0x7bff);
  EXPECT_EQ(float_to_f16(65520.0f), 0x7c00);  // rounds to inf
  EXPECT_EQ(float_to_f16(std::ldexp(1.0f, -24)), 0x0001);
  EXPECT_EQ(float_to_f16(std::ldexp(1.0f, -25)), 0x0000);  // tie to even -> 0
  EXPECT_EQ(float_to_f16(std::ldexp(3.0f, -25)), 0x0002);  // 1.5 ulp -> 2
  EXPECT_FLOAT_EQ(f16_to_float(0x3555), 0.33325195f);
  EXPECT_TRUE(std::isnan(f16_to_float(0x7e00)));
}

TEST(Float16, RoundTripsAllHalfs) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = f16_to_float(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    EXPECT_EQ(float_to_f16(f), h) << std::hex << h;
  }
}

#if defined(__FLT16_MAX__) && defined(__x86_64__)
TEST(Float16, MatchesCompilerFloat16) {
  uint32_t state = 12345;
  for (int i = 0; i < 200000; ++i) {
    state = state * 1664525u + 1013904223u;
    const float f = bits_float((state & 0x8fffffffu) | 0x30000000u) * 0.001f;
    const _Float16 h = static_cast<_Float16>(f);
    uint16_t bits;
    std::memcpy(&bits, &h, 2);
    EXPECT_EQ(float_to_f16(f), bits) << f;
  }
}
#endif

TEST(BFloat16, RoundNearestEven) {
  EXPECT_EQ(float_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(float_to_bf16(bits_float(0x3f808000u)), 0x3f80);  // tie, even stays
  EXPECT_EQ(float_to_bf16(bits_float(0x3f818000u)), 0x3f82);  // tie, odd rounds up
  EXPECT_EQ(float_to_bf16(bits_float(0x3f808001u)), 0x3f81);
  EXPECT_TRUE(std::isnan(bf16_to_float(float_to_bf16(NAN))));
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = bf16_to_float(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    EXPECT_EQ(float_to_bf16(f), h);
  }
}

}  // namespace
}  // namespace nibble::base
