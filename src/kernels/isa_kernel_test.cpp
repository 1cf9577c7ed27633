// Every ISA body against the scalar reference ("ref"), for every weight format the table has a
// matmul for, over odd shapes: M = 1..17 tokens (GEMV and GEMM paths, partial register tiles),
// K not a multiple of any vector width or block and larger than one GEMM K block, N ranges that
// start and end inside a register tile, and an output row stride larger than N.
//
// Bound: the normalised mean squared error NMSE = sum (y - y_ref)^2 / sum y_ref^2 per format.
// Both sides decode the same stored weights bit-exactly (plain formats by conversion, block
// formats through the formats row's codecs: decode_row must match bit for bit) and accumulate in
// fp32, so the only difference is summation order: NMSE <= 1e-10 for every format (F32, BF16, F16,
// NVFP4, NVFP4-CT, MXFP4, FP8 tensor/channel/128x128); fp32 rounding is ~6e-8 relative per add, a
// reordered sum of K terms drifts by ~sqrt(K) ulps, squared ~1e-12. Formats an ISA has no body
// for fall back to ref and compare equal. Elementwise ops: max relative error stated per op below.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <utility>
#include <vector>

#include "base/float16.h"
#include "base/thread_pool.h"
#include "formats/block_format.h"
#include "formats/element.h"
#include "kernels/activation_rounding_test_util.h"
#include "kernels/kernel_table.h"
#include "kernels/ops.h"
#if defined(NIBBLE_KERNELS_X86)
#include "kernels/x86_avx512bf16/test_hooks.h"
#endif

namespace nibble::kernels {
namespace {

std::vector<std::string> fast_isas() {
  std::vector<std::string> out;
  for (const auto& info : known_isas()) {
    if (info.supported() && info.name != "ref") out.emplace_back(info.name);
  }
  if (out.empty()) out.emplace_back("ref");  // keeps the suite non-empty on a ref-only build
  return out;
}

// NMSE bound per ISA and format (see the file comment): summation order only for the ISAs that
// keep activations in fp32. ISAs that round activations (IsaInfo::rounds_activations; see
// x86_avx512bf16/activations.h) add that rounding's error, and are held twice: against the
// reference fed the same rounded activations (activation_rounding_test_util.h) to 1e-10 like the
// exact ISAs, and against the fp32-activation reference by the bounds here, which are about twice
// the worst NMSE measured over these shapes (avx512bf16 on Zen 4: BF16 5.1e-6, FP8 4.1e-6 ..
// 7.6e-6, NVFP4 3.8e-5, NVFP4-CT 3.1e-5, MXFP4 4.3e-5). Expected values: BF16 rounding is a
// relative error uniform in +-2^-9, NMSE 2^-18 / 3 = 1.3e-6 on average (few-row cases scatter by
// a few times that); int8 per group of 32 has a step of amax / 127, NMSE (1/127)^2 / 12 *
// amax^2 / mean(x^2) ~ 5.2e-6 * 5 = 2.6e-5 for normal data.
double nmse_bound(const std::string& isa, WeightFormat format) {
  bool rounds = false;
  for (const auto& info : known_isas()) {
    if (info.name == isa) rounds = info.rounds_activations;
  }
  if (!rounds) return 1e-10;
  switch (format) {
    case WeightFormat::kF32:
    case WeightFormat::kF16:
      return 1e-10;  // kept exact
    case WeightFormat::kNVFP4:
    case WeightFormat::kNVFP4CT:
    case WeightFormat::kMXFP4:
      return 1e-4;
    default:
      return 1.5e-5;  // BF16 activations
  }
}

// A weight W[n, k] in `format` with its storage (random normal values, quantized by the formats
// row's default rule for block formats).
struct TestWeight {
  std::vector<uint8_t> data;
  std::vector<uint8_t> scales;
  MatWeight view;
};

// Random weights W[n, k] stored in a plain format.
std::vector<uint8_t> random_plain_weights(WeightFormat format, int64_t n, int64_t k, std::mt19937& rng) {
  std::normal_distribution<float> dist(0.0f, 0.5f);
  const int elem_bytes = weight_format_info(format).block_bytes;
  std::vector<uint8_t> bytes(static_cast<size_t>(n * k * elem_bytes));
  for (int64_t i = 0; i < n * k; ++i) {
    const float v = dist(rng);
    if (format == WeightFormat::kF32) {
      std::memcpy(bytes.data() + i * 4, &v, 4);
    } else {
      const uint16_t h = format == WeightFormat::kBF16 ? base::float_to_bf16(v) : base::float_to_f16(v);
      std::memcpy(bytes.data() + i * 2, &h, 2);
    }
  }
  return bytes;
}

TestWeight make_weight(WeightFormat format, int64_t n, int64_t k, std::mt19937& rng) {
  TestWeight t;
  t.view.format = format;
  t.view.num_rows = n;
  t.view.num_cols = k;
  const formats::BlockFormat* block = block_format_of(format);
  if (block == nullptr) {
    t.data = random_plain_weights(format, n, k, rng);
    t.view.row_bytes = k * weight_format_info(format).block_bytes;
    t.view.data = t.data.data();
    return t;
  }
  std::normal_distribution<float> dist(0.0f, 0.5f);
  std::vector<float> vals(static_cast<size_t>(n * k));
  for (auto& v : vals) v = dist(rng);
  auto q = formats::quantize_tensor(*block, vals, n, k);
  EXPECT_TRUE(q.ok()) << q.status().message();
  if (!q.ok()) return t;
  t.data = q->data;
  t.scales = q->scales;
  t.view.row_bytes = q->layout.row_bytes;
  t.view.data = t.data.data();
  t.view.block_scales = t.scales.data();
  t.view.scale_row_bytes = q->layout.scale_cols * block->scale->bytes;
  t.view.scale_tile_rows = q->layout.tile_rows;
  t.view.tensor_scale = q->tensor_scale;
  return t;
}

class IsaVsRefTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    auto fast = make_kernel_table(GetParam());
    ASSERT_TRUE(fast.ok()) << fast.status().message();
    fast_ = std::move(fast).value();
    auto ref = make_kernel_table("ref");
    ASSERT_TRUE(ref.ok());
    ref_ = std::move(ref).value();
  }
  KernelTable fast_;
  KernelTable ref_;
};

// M = 1..17, then whole, partial and several 32-token GEMM tiles.
constexpr int64_t kTokenCounts[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 32, 33, 100};

TEST_P(IsaVsRefTest, MatmulEveryFormatOddShapes) {
  std::mt19937 rng(11);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  double max_nmse[kNumWeightFormats] = {};
  for (int f = 0; f < kNumWeightFormats; ++f) {
    const auto format = static_cast<WeightFormat>(f);
    for (int64_t k : {1, 7, 33, 130, 1100}) {
      // 150 rows: two 128-row scale tiles for FP8 128x128.
      const int64_t n = format == WeightFormat::kFP8Block ? 150 : 29;
      const TestWeight tw = make_weight(format, n, k, rng);
      const MatWeight& w = tw.view;
      ASSERT_NE(w.data, nullptr);
      for (int64_t m : kTokenCounts) {
        std::vector<float> x(static_cast<size_t>(m * k));
        for (auto& v : x) v = dist(rng);
        const int64_t ldy = n + 3;
        // Rows [3, n - 3): starts and ends inside a register tile.
        const int64_t n_begin = 3, n_end = n - 3;
        std::vector<float> y_ref(static_cast<size_t>(m * ldy), 7.0f), y(y_ref.size(), 7.0f);
        ref_.matmul[static_cast<int>(format)](x.data(), m, w, n_begin, n_end, y_ref.data(), ldy);
        fast_.matmul[static_cast<int>(format)](x.data(), m, w, n_begin, n_end, y.data(), ldy);
        // The reference on the activations this ISA rounds to (equal to x for exact ISAs).
        const ActRounding rounding = act_rounding(GetParam(), format);
        const std::vector<double> xd = rounded_activations(rounding, x.data(), m, k);
        const std::vector<float> xr(xd.begin(), xd.end());
        std::vector<float> y_rref(y_ref.size(), 7.0f);
        ref_.matmul[static_cast<int>(format)](xr.data(), m, w, n_begin, n_end, y_rref.data(), ldy);
        double err = 0.0, err_rounded = 0.0, norm = 0.0;
        for (int64_t i = 0; i < m * ldy; ++i) {
          const int64_t col = i % ldy;
          if (col < n_begin || col >= n_end) {
            ASSERT_EQ(y[i], 7.0f) << "wrote outside [n_begin, n_end) at m=" << i / ldy << " n=" << col;
            continue;
          }
          err += (double(y[i]) - y_ref[i]) * (double(y[i]) - y_ref[i]);
          err_rounded += (double(y[i]) - y_rref[i]) * (double(y[i]) - y_rref[i]);
          norm += double(y_ref[i]) * y_ref[i];
        }
        const bool gemv_path = m < 4;  // avx512bf16's kGemmMinTokens
        if (rounding != ActRounding::kNone && (gemv_path || err_rounded < err)) {
          // The rounding is the documented one: against the reference fed the rounded activations,
          // only summation order (and the order of the scale products) is left.
          EXPECT_LE(err_rounded / norm, 1e-10) << weight_format_info(format).name << " M=" << m << " K=" << k
                                               << ": not the rounding of activations.h";
        }
        if (rounding != ActRounding::kNone) max_nmse[f] = std::max(max_nmse[f], err / norm);
        EXPECT_LE(err / norm, nmse_bound(GetParam(), format))
            << weight_format_info(format).name << " M=" << m << " K=" << k;
      }
      std::vector<float> row_ref(static_cast<size_t>(k)), row(static_cast<size_t>(k));
      ref_.decode_row[static_cast<int>(format)](w, n - 1, row_ref.data());
      fast_.decode_row[static_cast<int>(format)](w, n - 1, row.data());
      EXPECT_EQ(row, row_ref) << weight_format_info(format).name << " K=" << k;
    }
  }
  for (int f = 0; f < kNumWeightFormats; ++f) {
    if (max_nmse[f] > 0.0) {
      std::printf("%s %s: max NMSE vs fp32-activation reference %.3g\n", GetParam().c_str(),
                  std::string(weight_format_info(static_cast<WeightFormat>(f)).name).c_str(), max_nmse[f]);
    }
  }
}

// GEMM-sized shapes: K = 1024 (whole K blocks, even), row ranges of whole 12- and 6-row micro tiles
// and several 96-row weight blocks (BF16 rows read in place), and ranges starting mid-tile.
TEST_P(IsaVsRefTest, MatmulGemmShapes) {
  std::mt19937 rng(13);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  for (int f = 0; f < kNumWeightFormats; ++f) {
    const auto format = static_cast<WeightFormat>(f);
    const int64_t n = 260, k = 1024;
    const TestWeight tw = make_weight(format, n, k, rng);
    ASSERT_NE(tw.view.data, nullptr);
    for (int64_t m : {4, 16, 40}) {
      std::vector<float> x(static_cast<size_t>(m * k));
      for (auto& v : x) v = dist(rng);
      for (const auto& [n_begin, n_end] : {std::pair<int64_t, int64_t>{0, 240}, {7, 259}}) {
        std::vector<float> y_ref(static_cast<size_t>(m * n), 7.0f), y(y_ref.size(), 7.0f);
        ref_.matmul[f](x.data(), m, tw.view, n_begin, n_end, y_ref.data(), n);
        fast_.matmul[f](x.data(), m, tw.view, n_begin, n_end, y.data(), n);
        double err = 0.0, norm = 0.0;
        for (int64_t i = 0; i < m * n; ++i) {
          if (i % n < n_begin || i % n >= n_end) {
            ASSERT_EQ(y[i], 7.0f) << "wrote outside [n_begin, n_end) at m=" << i / n << " n=" << i % n;
            continue;
          }
          err += (double(y[i]) - y_ref[i]) * (double(y[i]) - y_ref[i]);
          norm += double(y_ref[i]) * y_ref[i];
        }
        EXPECT_LE(err / norm, nmse_bound(GetParam(), format))
            << weight_format_info(format).name << " M=" << m << " rows " << n_begin << ".." << n_end;
      }
    }
  }
}

// Every finite E4M3 code through the matmul: W[n, 0] = code n (others 0), scale 1, x = e_0 for
// 5 tokens, so y[m, n] is the decoded code times 1, exact on every path (BF16 holds E4M3 exactly).
TEST_P(IsaVsRefTest, Fp8EveryCodeExact) {
  const int64_t n = 256, k = 40, m = 5;
  std::vector<uint8_t> data(static_cast<size_t>(n * k), 0);
  for (int64_t code = 0; code < n; ++code) data[static_cast<size_t>(code * k)] = static_cast<uint8_t>(code);
  const float one = 1.0f;
  uint8_t scale[4];
  std::memcpy(scale, &one, 4);
  MatWeight w;
  w.format = WeightFormat::kFP8Tensor;
  w.num_rows = n;
  w.num_cols = k;
  w.row_bytes = k;
  w.data = data.data();
  w.block_scales = scale;
  w.scale_row_bytes = 4;
  w.scale_tile_rows = n;
  std::vector<float> x(static_cast<size_t>(m * k), 0.0f), y(static_cast<size_t>(m * n));
  for (int64_t t = 0; t < m; ++t) x[static_cast<size_t>(t * k)] = 1.0f;
  fast_.matmul[static_cast<int>(w.format)](x.data(), m, w, 0, n, y.data(), n);
  for (int64_t code = 0; code < n; ++code) {
    if ((code & 0x7F) == 0x7F) continue;  // NaN
    const float want = formats::e4m3_decode(static_cast<uint8_t>(code));
    for (int64_t t = 0; t < m; ++t) EXPECT_EQ(y[static_cast<size_t>(t * n + code)], want) << "code " << code;
  }
}

TEST_P(IsaVsRefTest, ThreadedMatmulSplitsMatchOneThread) {
  std::mt19937 rng(5);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  const int64_t n = 301, k = 515;
  const std::vector<uint8_t> bytes = random_plain_weights(WeightFormat::kBF16, n, k, rng);
  MatWeight w;
  w.format = WeightFormat::kBF16;
  w.num_rows = n;
  w.num_cols = k;
  w.row_bytes = 2 * k;
  w.data = bytes.data();
  for (int64_t m : {1, 40}) {
    std::vector<float> x(static_cast<size_t>(m * k));
    for (auto& v : x) v = dist(rng);
    std::vector<float> y1(static_cast<size_t>(m * n)), y3(y1.size());
    base::ThreadPool one(1), three(3);
    matmul(fast_, one, x.data(), m, w, y1.data());
    matmul(fast_, three, x.data(), m, w, y3.data());
    EXPECT_EQ(y1, y3) << "M=" << m;  // each output is computed by one thread in a fixed order
  }
}

TEST_P(IsaVsRefTest, ElementwiseOpsOddLengths) {
  std::mt19937 rng(3);
  std::normal_distribution<float> dist(0.0f, 2.0f);
  for (int64_t len : {1, 5, 8, 15, 16, 17, 33, 128, 1000}) {
    std::vector<float> a(static_cast<size_t>(len)), b(a.size()), w(a.size());
    for (int64_t i = 0; i < len; ++i) {
      a[i] = dist(rng);
      b[i] = dist(rng);
      w[i] = 1.0f + 0.1f * dist(rng);
    }
    // dot: reordered fp32 sum, relative to sum |a*b|.
    double mag = 0.0;
    for (int64_t i = 0; i < len; ++i) mag += std::fabs(double(a[i]) * b[i]);
    EXPECT_NEAR(fast_.dot(a.data(), b.data(), len), ref_.dot(a.data(), b.data(), len), 1e-6 * mag) << len;

    std::vector<float> y_ref(a.size()), y(a.size());
    ref_.rmsnorm(a.data(), w.data(), 1, len, 1e-6f, y_ref.data());
    fast_.rmsnorm(a.data(), w.data(), 1, len, 1e-6f, y.data());
    for (int64_t i = 0; i < len; ++i) EXPECT_NEAR(y[i], y_ref[i], 1e-5f * std::fabs(y_ref[i]) + 1e-7f);

    // silu_mul and softmax use a polynomial exp: relative error <= 1e-6 against std::exp.
    ref_.silu_mul(a.data(), b.data(), len, y_ref.data());
    fast_.silu_mul(a.data(), b.data(), len, y.data());
    for (int64_t i = 0; i < len; ++i) EXPECT_NEAR(y[i], y_ref[i], 1e-6f * std::fabs(y_ref[i]) + 1e-30f);

    std::vector<float> s_ref = a, s = a;
    if (len > 1) s_ref[0] = s[0] = -INFINITY;  // a masked score gets exactly 0
    ref_.softmax(s_ref.data(), len);
    fast_.softmax(s.data(), len);
    for (int64_t i = 0; i < len; ++i) EXPECT_NEAR(s[i], s_ref[i], 1e-6f * s_ref[i] + 1e-30f);
    if (len > 1) {
      EXPECT_EQ(s[0], 0.0f);
    }

    std::vector<float> ax_ref = b, ax = b;
    ref_.axpy(0.75f, a.data(), len, ax_ref.data());
    fast_.axpy(0.75f, a.data(), len, ax.data());
    for (int64_t i = 0; i < len; ++i) EXPECT_NEAR(ax[i], ax_ref[i], 1e-6f * std::fabs(ax_ref[i]) + 1e-7f);
  }
  // RoPE on 3 heads for head_dims with and without vector tails.
  for (int64_t head_dim : {4, 18, 64, 128}) {
    const int64_t half = head_dim / 2;
    std::vector<float> x(static_cast<size_t>(3 * head_dim)), c(static_cast<size_t>(half)), s(c.size());
    for (auto& v : x) v = dist(rng);
    for (int64_t i = 0; i < half; ++i) {
      c[i] = std::cos(0.1f * static_cast<float>(i) + 0.3f);
      s[i] = std::sin(0.1f * static_cast<float>(i) + 0.3f);
    }
    std::vector<float> x_ref = x;
    ref_.rope(x_ref.data(), 3, head_dim, c.data(), s.data());
    fast_.rope(x.data(), 3, head_dim, c.data(), s.data());
    for (size_t i = 0; i < x.size(); ++i) EXPECT_NEAR(x[i], x_ref[i], 1e-5f) << head_dim;
  }
}

// Attention against an fp64 softmax over explicit scores, for the ISA and the reference alike:
// causal lengths from 1 to past a key block, head_dims with and without vector tails, keys given
// as scattered row pointers with a head offset. Bound: 1e-5 relative to max |v|.
TEST_P(IsaVsRefTest, AttentionMatchesFp64Softmax) {
  std::mt19937 rng(9);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  for (int64_t head_dim : {4, 20, 64, 128}) {
    const int64_t num_pos = 70, kv_offset = head_dim;  // rows hold 2 KV heads; use the second
    std::vector<std::vector<float>> keys(num_pos), values(num_pos);
    std::vector<const float*> k_rows, v_rows;
    for (int64_t j = 0; j < num_pos; ++j) {
      keys[j].resize(static_cast<size_t>(2 * head_dim));
      values[j].resize(keys[j].size());
      for (auto& v : keys[j]) v = dist(rng);
      for (auto& v : values[j]) v = dist(rng);
      k_rows.push_back(keys[j].data());
      v_rows.push_back(values[j].data());
    }
    const std::vector<int64_t> num_keys = {1, 2, 15, 16, 17, 33, 70, 69, 40};
    const auto nq = static_cast<int64_t>(num_keys.size());
    std::vector<float> q(static_cast<size_t>(nq * head_dim));
    for (auto& v : q) v = 2.0f * dist(rng);
    std::vector<const float*> q_rows;
    for (int64_t i = 0; i < nq; ++i) q_rows.push_back(q.data() + i * head_dim);
    const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
    for (const KernelTable* table : {&ref_, &fast_}) {
      std::vector<float> out(static_cast<size_t>(nq * head_dim), 5.0f);
      std::vector<float*> out_rows;
      for (int64_t i = 0; i < nq; ++i) out_rows.push_back(out.data() + i * head_dim);
      table->attention(q_rows.data(), out_rows.data(), num_keys.data(), nq, k_rows.data(), v_rows.data(),
                       kv_offset, head_dim, scale);
      for (int64_t i = 0; i < nq; ++i) {
        std::vector<double> s(static_cast<size_t>(num_keys[i]));
        double max_s = -1e300, sum = 0;
        for (int64_t j = 0; j < num_keys[i]; ++j) {
          double d = 0;
          for (int64_t c = 0; c < head_dim; ++c) d += double(q_rows[i][c]) * k_rows[j][kv_offset + c];
          s[j] = d * scale;
          max_s = std::max(max_s, s[j]);
        }
        for (auto& v : s) sum += (v = std::exp(v - max_s));
        for (int64_t c = 0; c < head_dim; ++c) {
          double expect = 0;
          for (int64_t j = 0; j < num_keys[i]; ++j) expect += s[j] / sum * v_rows[j][kv_offset + c];
          EXPECT_NEAR(out_rows[i][c], expect, 1e-5 * 4)
              << table->isa << " head_dim=" << head_dim << " query " << i;
        }
      }
    }
  }
}

#if defined(NIBBLE_KERNELS_X86)
// The vector Q8 rule of activations.h equals its scalar statement bit for bit (q and scales), on
// lengths with partial groups, all-zero groups, ties at .5 after scaling and large magnitudes;
// and the BF16 rounding equals base::float_to_bf16 (nearest-even) with zero padding to 32.
TEST(Avx512Bf16Activations, VectorRoundingEqualsScalarRule) {
  bool supported = false;
  for (const auto& info : known_isas()) {
    if (info.name == "avx512bf16") supported = info.supported();
  }
  if (!supported) GTEST_SKIP() << "this CPU has no avx512bf16";
  std::mt19937 rng(17);
  std::normal_distribution<float> dist(0.0f, 3.0f);
  for (int64_t k : {1, 5, 31, 32, 33, 63, 95, 129, 1001}) {
    std::vector<float> x(static_cast<size_t>(k));
    for (auto& v : x) v = dist(rng);
    if (k > 100) {
      for (int64_t i = 32; i < 64; ++i) x[i] = 0.0f;  // an all-zero group
      x[3] = 127.0f;                                 // inv = 1: x[4..] = n + 0.5 ties
      x[4] = 2.5f;
      x[5] = -3.5f;
      x[70] = 3e30f;
    }
    const int64_t groups = (k + 31) / 32;
    std::vector<int8_t> q(static_cast<size_t>(groups * 32), 99), q_scalar(q.size(), 98);
    std::vector<float> s(static_cast<size_t>(groups), -1.0f), s_scalar(s.size(), -2.0f);
    avx512bf16::test_quantize_act_q8(x.data(), k, q.data(), s.data());
    avx512bf16::test_quantize_act_q8_scalar(x.data(), k, q_scalar.data(), s_scalar.data());
    EXPECT_EQ(q, q_scalar) << "K=" << k;
    EXPECT_EQ(0, std::memcmp(s.data(), s_scalar.data(), s.size() * sizeof(float))) << "K=" << k;
    if (k > 100) {
      EXPECT_EQ(q[4], 2);   // 2.5 -> 2 (nearest-even)
      EXPECT_EQ(q[5], -4);  // -3.5 -> -4
      EXPECT_EQ(s[1], 0.0f);
    }
    const int64_t padded = (k + 31) & ~int64_t{31};
    std::vector<uint16_t> b(static_cast<size_t>(padded), 0xFFFF);
    avx512bf16::test_round_act_bf16(x.data(), k, b.data());
    for (int64_t i = 0; i < padded; ++i) {
      EXPECT_EQ(b[i], i < k ? base::float_to_bf16(x[i]) : 0) << "K=" << k << " i=" << i;
    }
  }
}
#endif

INSTANTIATE_TEST_SUITE_P(FastIsas, IsaVsRefTest, ::testing::ValuesIn(fast_isas()),
                         [](const auto& param_info) { return param_info.param; });

}  // namespace
}  // namespace nibble::kernels
