// Kernel tests: every ISA this CPU supports against independent fp64 formulas.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "base/float16.h"
#include "base/thread_pool.h"
#include "kernels/activation_rounding_test_util.h"
#include "kernels/kernel_table.h"
#include "kernels/ops.h"

namespace nibble::kernels {
namespace {

std::vector<std::string> supported_isas() {
  std::vector<std::string> out;
  for (const auto& info : known_isas()) {
    if (info.supported()) out.emplace_back(info.name);
  }
  return out;
}

class KernelTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    auto t = make_kernel_table(GetParam());
    ASSERT_TRUE(t.ok()) << t.status().message();
    table_ = std::move(t).value();
  }
  KernelTable table_;
};

// Encodes a float matrix into `format` bytes; returns the decoded values actually stored.
std::vector<float> encode(WeightFormat format, const std::vector<float>& vals, std::vector<uint8_t>* bytes) {
  std::vector<float> stored(vals.size());
  const int elem_bytes = weight_format_info(format).block_bytes;
  bytes->assign(vals.size() * static_cast<size_t>(elem_bytes), 0);
  for (size_t i = 0; i < vals.size(); ++i) {
    if (format == WeightFormat::kF32) {
      std::memcpy(bytes->data() + i * 4, &vals[i], 4);
      stored[i] = vals[i];
    } else {
      const uint16_t h =
          format == WeightFormat::kBF16 ? base::float_to_bf16(vals[i]) : base::float_to_f16(vals[i]);
      std::memcpy(bytes->data() + i * 2, &h, 2);
      stored[i] = format == WeightFormat::kBF16 ? base::bf16_to_float(h) : base::f16_to_float(h);
    }
  }
  return stored;
}

// An ISA that rounds activations (act_rounding != kNone) must match the fp64 product of the
// rounded activations (activation_rounding_test_util.h) on its GEMV and GEMM paths alike.
::testing::AssertionResult expect_matches(float got, double exact, double rounded, double tol,
                                          ActRounding rounding) {
  const bool near_rounded = std::fabs(got - rounded) <= tol;
  const bool near_exact = std::fabs(got - exact) <= tol;
  if (rounding == ActRounding::kNone ? near_exact : near_rounded) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << "got " << got << ", fp64 " << exact << ", fp64 of rounded activations "
                                       << rounded << ", tolerance " << tol;
}

TEST_P(KernelTest, MatmulEveryPlainFormatMatchesFp64) {
  std::mt19937 rng(7);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  base::ThreadPool pool(3);
  for (WeightFormat format : {WeightFormat::kF32, WeightFormat::kBF16, WeightFormat::kF16}) {
    for (int64_t m : {1, 3, 17}) {
      const int64_t n = 37, k = 75;  // odd sizes: tails in every loop
      std::vector<float> x(static_cast<size_t>(m * k)), w(static_cast<size_t>(n * k));
      for (auto& v : x) v = dist(rng);
      for (auto& v : w) v = dist(rng);
      std::vector<uint8_t> bytes;
      const std::vector<float> stored = encode(format, w, &bytes);
      MatWeight mw;
      mw.format = format;
      mw.num_rows = n;
      mw.num_cols = k;
      mw.row_bytes = k * weight_format_info(format).block_bytes;
      mw.data = bytes.data();
      std::vector<float> y(static_cast<size_t>(m * n), -1.0f);
      matmul(table_, pool, x.data(), m, mw, y.data());
      const ActRounding rounding = act_rounding(GetParam(), format);
      const std::vector<double> xr = rounded_activations(rounding, x.data(), m, k);
      for (int64_t i = 0; i < m; ++i) {
        for (int64_t j = 0; j < n; ++j) {
          double ref = 0.0, ref_rounded = 0.0, mag = 0.0;
          for (int64_t kk = 0; kk < k; ++kk) {
            ref += static_cast<double>(x[i * k + kk]) * stored[j * k + kk];
            ref_rounded += xr[i * k + kk] * stored[j * k + kk];
            mag += std::fabs(static_cast<double>(x[i * k + kk]) * stored[j * k + kk]);
          }
          EXPECT_TRUE(expect_matches(y[i * n + j], ref, ref_rounded, 1e-6 * mag + 1e-7, rounding))
              << weight_format_info(format).name << " m=" << m;
        }
      }
      std::vector<float> row(static_cast<size_t>(k));
      table_.decode_row[static_cast<int>(format)](mw, 5, row.data());
      for (int64_t kk = 0; kk < k; ++kk) EXPECT_EQ(row[kk], stored[5 * k + kk]);
    }
  }
}

// Every block-quantized row: the kernel must equal an fp64 product with the formats codecs'
// dequantized weights (the codecs are golden-checked against ModelOpt / compressed-tensors).
TEST_P(KernelTest, MatmulEveryQuantizedFormatMatchesDequantizedFp64) {
  std::mt19937 rng(11);
  std::normal_distribution<float> dist(0.0f, 0.05f);
  base::ThreadPool pool(3);
  const int64_t n = 200, k = 256;  // two 128-row FP8 tiles, the second one partial
  for (int i = 0; i < kNumWeightFormats; ++i) {
    const auto format = static_cast<WeightFormat>(i);
    const formats::BlockFormat* bf = block_format_of(format);
    if (bf == nullptr) continue;
    std::vector<float> w(static_cast<size_t>(n * k));
    for (float& v : w) v = dist(rng);
    auto q = formats::quantize_tensor(*bf, w, n, k);
    ASSERT_TRUE(q.ok()) << q.status().message();
    std::vector<float> deq(w.size());
    formats::dequantize_tensor(*bf, *q, deq);
    MatWeight mw;
    mw.format = format;
    mw.num_rows = n;
    mw.num_cols = k;
    mw.row_bytes = q->layout.row_bytes;
    mw.data = q->data.data();
    mw.block_scales = q->scales.data();
    mw.scale_tile_rows = q->layout.tile_rows;
    mw.scale_row_bytes = q->layout.scale_cols * bf->scale->bytes;
    mw.tensor_scale = q->tensor_scale;
    for (int64_t m : {1, 5}) {
      std::vector<float> x(static_cast<size_t>(m * k)), y(static_cast<size_t>(m * n));
      for (float& v : x) v = dist(rng) * 20.0f;
      matmul(table_, pool, x.data(), m, mw, y.data());
      const ActRounding rounding = act_rounding(GetParam(), format);
      const std::vector<double> xr = rounded_activations(rounding, x.data(), m, k);
      for (int64_t r = 0; r < m; ++r) {
        for (int64_t c = 0; c < n; ++c) {
          double want = 0.0, want_rounded = 0.0, mag = 0.0;
          for (int64_t j = 0; j < k; ++j) {
            want += static_cast<double>(x[static_cast<size_t>(r * k + j)]) * deq[static_cast<size_t>(c * k + j)];
            want_rounded += xr[static_cast<size_t>(r * k + j)] * deq[static_cast<size_t>(c * k + j)];
            mag += std::fabs(static_cast<double>(x[static_cast<size_t>(r * k + j)]) * deq[static_cast<size_t>(c * k + j)]);
          }
          ASSERT_TRUE(expect_matches(y[static_cast<size_t>(r * n + c)], want, want_rounded, 1e-5 * mag + 1e-7,
                                     rounding))
              << weight_format_info(format).name << " m=" << m << " row " << c;
        }
      }
    }
    std::vector<float> row(static_cast<size_t>(k));
    table_.decode_row[i](mw, 137, row.data());
    for (int64_t j = 0; j < k; ++j) ASSERT_EQ(row[static_cast<size_t>(j)], deq[static_cast<size_t>(137 * k + j)]);
  }
}

TEST_P(KernelTest, RmsnormRopeSoftmaxSiluMatchFormulas) {
  const int64_t dim = 13;
  std::vector<float> x(2 * dim), w(dim), y(2 * dim);
  for (int64_t i = 0; i < 2 * dim; ++i) x[i] = 0.1f * static_cast<float>(i) - 0.7f;
  for (int64_t i = 0; i < dim; ++i) w[i] = 1.0f + 0.01f * static_cast<float>(i);
  table_.rmsnorm(x.data(), w.data(), 2, dim, 1e-6f, y.data());
  for (int r = 0; r < 2; ++r) {
    double ss = 0;
    for (int64_t i = 0; i < dim; ++i) ss += double(x[r * dim + i]) * x[r * dim + i];
    const double inv = 1.0 / std::sqrt(ss / dim + 1e-6);
    for (int64_t i = 0; i < dim; ++i) EXPECT_NEAR(y[r * dim + i], w[i] * x[r * dim + i] * inv, 1e-6);
  }

  // RoPE on 2 heads of head_dim 4: pairs (0,2) and (1,3) rotate by the given angles.
  std::vector<float> q = {1, 2, 3, 4, 5, 6, 7, 8};
  const float cosv[2] = {std::cos(0.5f), std::cos(0.25f)};
  const float sinv[2] = {std::sin(0.5f), std::sin(0.25f)};
  table_.rope(q.data(), 2, 4, cosv, sinv);
  const float in[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  for (int h = 0; h < 2; ++h) {
    for (int i = 0; i < 2; ++i) {
      const double a = i == 0 ? 0.5 : 0.25;
      const double x1 = in[h * 4 + i], x2 = in[h * 4 + i + 2];
      EXPECT_NEAR(q[h * 4 + i], x1 * std::cos(a) - x2 * std::sin(a), 1e-6);
      EXPECT_NEAR(q[h * 4 + i + 2], x2 * std::cos(a) + x1 * std::sin(a), 1e-6);
    }
  }

  std::vector<float> s = {1.0f, 2.0f, 3.0f, 1000.0f};
  table_.softmax(s.data(), 3);
  const double z = std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
  EXPECT_NEAR(s[0], std::exp(1.0) / z, 1e-7);
  EXPECT_NEAR(s[2], std::exp(3.0) / z, 1e-7);
  EXPECT_EQ(s[3], 1000.0f);  // untouched past n

  const float g[3] = {-2.0f, 0.0f, 3.0f}, u[3] = {1.5f, 2.0f, -1.0f};
  float o[3];
  table_.silu_mul(g, u, 3, o);
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(o[i], g[i] / (1.0 + std::exp(-double(g[i]))) * u[i], 1e-6);

  std::vector<float> a(19), b(19), acc(19, 1.0f);
  double ref = 0;
  for (int i = 0; i < 19; ++i) {
    a[i] = 0.3f * i;
    b[i] = 1.0f - 0.1f * i;
    ref += double(a[i]) * b[i];
  }
  EXPECT_NEAR(table_.dot(a.data(), b.data(), 19), ref, 1e-5);
  table_.axpy(2.0f, a.data(), 19, acc.data());
  for (int i = 0; i < 19; ++i) EXPECT_FLOAT_EQ(acc[i], 1.0f + 2.0f * a[i]);
}

INSTANTIATE_TEST_SUITE_P(AllIsas, KernelTest, ::testing::ValuesIn(supported_isas()),
                         [](const auto& param_info) { return param_info.param; });

TEST(KernelTableTest, UnknownIsaIsAnErrorListingTheAvailableOnes) {
  auto t = make_kernel_table("sse1");
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("NIBBLE_ISA=sse1"), std::string::npos);
  EXPECT_NE(t.status().message().find("ref"), std::string::npos);
}

TEST(KernelTableTest, FormatTableRowsAreConsistent) {
  for (int i = 0; i < kNumWeightFormats; ++i) {
    const auto& row = weight_format_info(static_cast<WeightFormat>(i));
    EXPECT_EQ(static_cast<int>(row.format), i);
    // Quantized rows: element bits come from the formats row (4-bit codes are packed into U8).
    const formats::BlockFormat* bf = block_format_of(row.format);
    const int elem_bits = bf != nullptr ? bf->element->bits : tensor::dtype_bits(row.storage_dtype);
    EXPECT_EQ(row.block_bytes * 8, row.block_elems * elem_bits) << row.name;
    EXPECT_EQ(bf != nullptr, row.has_block_scales) << row.name;
  }
  EXPECT_EQ(plain_format_for_dtype(tensor::DType::kBF16), WeightFormat::kBF16);
  EXPECT_FALSE(plain_format_for_dtype(tensor::DType::kI32).has_value());
}

}  // namespace
}  // namespace nibble::kernels
