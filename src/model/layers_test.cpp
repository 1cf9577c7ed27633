// RoPE frequencies (formats.md §7.2 worked by hand) and make-model determinism.
#include "model/layers.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numbers>

#include "model/random_checkpoint.h"

namespace nibble::model {
namespace {

TEST(RopeTest, DefaultInvFreqIsThetaPower) {
  ModelConfig c;
  c.head_dim = 8;
  c.rope_theta = 10000.0;
  const auto f = rope_inv_freq(c);
  ASSERT_EQ(f.size(), 4u);
  for (int i = 0; i < 4; ++i)
    EXPECT_NEAR(f[i], std::pow(10000.0, -2.0 * i / 8), 1e-6 * std::pow(10000.0, -2.0 * i / 8));
}

// gpt-oss (formats.md §7.3): d_half 32, base 150000, L 4096, beta 32 / 1, truncate false give the
// ramp bounds low = 8.0928, high = 17.3980 and a cos/sin multiplier 0.1 ln 32 + 1 = 1.34657.
TEST(RopeTest, YarnBlendsInterpolationAndExtrapolationAsGptOss) {
  ModelConfig c;
  c.head_dim = 64;
  c.rope_theta = 150000.0;
  c.rope_scaling.type = RopeScalingType::kYarn;
  c.rope_scaling.factor = 32.0;
  c.rope_scaling.original_max_position_embeddings = 4096;
  c.rope_scaling.beta_fast = 32.0;
  c.rope_scaling.beta_slow = 1.0;
  c.rope_scaling.truncate = false;
  const auto f = rope_inv_freq(c);
  ASSERT_EQ(f.size(), 32u);
  // low/high = d_half · ln(L / (beta · 2π)) / ln(base), to full precision (formats.md rounds them).
  const double low = 32.0 * std::log(4096.0 / (32.0 * 2.0 * std::numbers::pi)) / std::log(150000.0);
  const double high = 32.0 * std::log(4096.0 / (1.0 * 2.0 * std::numbers::pi)) / std::log(150000.0);
  EXPECT_NEAR(low, 8.0928, 1e-4);
  EXPECT_NEAR(high, 17.3980, 1e-4);
  for (int i = 0; i < 32; ++i) {
    const double theta_i = std::pow(150000.0, 2.0 * i / 64);
    const double ramp = std::clamp((i - low) / (high - low), 0.0, 1.0);
    const double want = (1.0 / (32.0 * theta_i)) * ramp + (1.0 / theta_i) * (1.0 - ramp);
    EXPECT_NEAR(f[static_cast<size_t>(i)], want, 2e-5 * want) << "i = " << i;
  }
  EXPECT_NEAR(rope_attention_scaling(c), 1.34657, 1e-5);
  c.rope_scaling.attention_factor = 2.0;
  EXPECT_EQ(rope_attention_scaling(c), 2.0f);
}

TEST(RopeTest, Llama3RescalesLowFrequenciesAndInterpolatesTheBand) {
  ModelConfig c;
  c.head_dim = 128;
  c.rope_theta = 500000.0;
  c.rope_scaling = {RopeScalingType::kLlama3, 8.0, 1.0, 4.0, 8192};
  ModelConfig plain = c;
  plain.rope_scaling = {};
  const auto scaled = rope_inv_freq(c);
  const auto base = rope_inv_freq(plain);
  int num_high = 0, num_low = 0, num_mid = 0;
  for (size_t i = 0; i < base.size(); ++i) {
    const double wavelen = 2 * std::numbers::pi / base[i];
    if (wavelen < 8192.0 / 4.0) {  // high frequency: unchanged
      EXPECT_EQ(scaled[i], base[i]);
      ++num_high;
    } else if (wavelen > 8192.0 / 1.0) {  // low frequency: divided by the factor
      EXPECT_NEAR(scaled[i], base[i] / 8.0, 1e-6 * base[i]);
      ++num_low;
    } else {  // smooth = (L / wavelen - low) / (high - low)
      const double smooth = (8192.0 / wavelen - 1.0) / 3.0;
      EXPECT_NEAR(scaled[i], (1 - smooth) * base[i] / 8.0 + smooth * base[i], 1e-5 * base[i]);
      ++num_mid;
    }
  }
  EXPECT_GT(num_high, 0);
  EXPECT_GT(num_low, 0);
  EXPECT_GT(num_mid, 0);
}

TEST(NormalRngTest, DeterministicAndStandardNormal) {
  NormalRng a(42), b(42);
  double sum = 0, sum_sq = 0;
  const int n = 200000;
  for (int i = 0; i < n; ++i) {
    const double x = a.next_normal();
    ASSERT_EQ(x, b.next_normal());
    sum += x;
    sum_sq += x * x;
  }
  EXPECT_NEAR(sum / n, 0.0, 0.01);
  EXPECT_NEAR(sum_sq / n, 1.0, 0.01);
  // Pinned first outputs: changing the generator changes every checkpoint (and the goldens).
  NormalRng c(0);
  EXPECT_EQ(c.next_u64(), 0xe220a8397b1dcdafull);  // splitmix64(0), first output
}

}  // namespace
}  // namespace nibble::model
