// Every element code of every block-quantized format through every ISA's decode_row and matmul,
// against the scalar reference ("ref"). The random weights of isa_kernel_test.cpp only reach the
// codes a quantizer writes; here row 0 of each weight cycles through all codes (for E4M3 also the
// NaN codes 0x7F / 0xFF, which a corrupt checkpoint can hold), so a fast path that decodes codes
// by bit conversion instead of the codec's table is checked on each of them.
//
// Oracles: decode_row must equal ref bit for bit (NaN for NaN); matmul must give NaN exactly
// where ref does, and elsewhere agree to summation order (|y - y_ref| <= 1e-5 * sum |w * x|).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "formats/block_format.h"
#include "kernels/kernel_table.h"

namespace nibble::kernels {
namespace {

std::vector<std::string> fast_isa_names() {
  std::vector<std::string> out;
  for (const auto& info : known_isas()) {
    if (info.supported() && info.name != "ref" && !info.rounds_activations) out.emplace_back(info.name);
  }
  if (out.empty()) out.emplace_back("ref");
  return out;
}

bool same_value(float a, float b) {
  return (std::isnan(a) && std::isnan(b)) || std::memcmp(&a, &b, sizeof(float)) == 0;
}

// W[num_rows, num_cols] in `format`: row 0 holds code (c % num_codes) at column c (every code,
// NaN codes included); the other rows hold pseudo-random non-NaN codes. Block scales are codes
// whose values lie in [1/16, 16], so no product overflows.
struct CodeWeight {
  std::vector<uint8_t> data;
  std::vector<uint8_t> scales;
  MatWeight view;
};

CodeWeight make_code_weight(WeightFormat format, int64_t num_rows, int64_t num_cols) {
  const formats::BlockFormat& bf = *block_format_of(format);
  auto layout = formats::tensor_layout(bf, num_rows, num_cols);
  EXPECT_TRUE(layout.ok()) << layout.status().message();
  CodeWeight cw;
  if (!layout.ok()) return cw;
  const int bits = bf.element->bits;
  const int num_codes = 1 << bits;
  std::mt19937 rng(17);
  cw.data.assign(static_cast<size_t>(layout->data_bytes()), 0);
  for (int64_t r = 0; r < num_rows; ++r) {
    for (int64_t c = 0; c < num_cols; ++c) {
      int code = r == 0 ? static_cast<int>(c % num_codes) : static_cast<int>(rng() % num_codes);
      if (r != 0 && std::isnan(bf.element->decode(static_cast<uint8_t>(code)))) code = 1;
      uint8_t* row = cw.data.data() + r * layout->row_bytes;
      if (bits == 4) {
        row[c / 2] = static_cast<uint8_t>(row[c / 2] | (code << (4 * (c % 2))));
      } else {
        row[c] = static_cast<uint8_t>(code);
      }
    }
  }
  std::vector<uint32_t> scale_codes;
  if (bf.scale->bytes == 1) {
    for (uint32_t code = bf.scale->min_code; code <= bf.scale->max_code; ++code) {
      const float v = bf.scale->value(code);
      if (v >= 1.0f / 16 && v <= 16.0f) scale_codes.push_back(code);
    }
  } else {
    for (float v : {0.0625f, 0.3f, 1.0f, 2.5f, 15.0f}) {
      uint32_t code;
      std::memcpy(&code, &v, sizeof(code));
      scale_codes.push_back(code);
    }
  }
  EXPECT_FALSE(scale_codes.empty());
  cw.scales.assign(static_cast<size_t>(layout->num_scales() * bf.scale->bytes), 0);
  for (int64_t i = 0; i < layout->num_scales(); ++i) {
    bf.scale->store(scale_codes[static_cast<size_t>(i * 7) % scale_codes.size()],
                    cw.scales.data() + i * bf.scale->bytes);
  }
  cw.view.format = format;
  cw.view.num_rows = num_rows;
  cw.view.num_cols = num_cols;
  cw.view.row_bytes = layout->row_bytes;
  cw.view.data = cw.data.data();
  cw.view.block_scales = cw.scales.data();
  cw.view.scale_row_bytes = layout->scale_cols * bf.scale->bytes;
  cw.view.scale_tile_rows = layout->tile_rows;
  cw.view.tensor_scale = bf.has_tensor_scale ? 0.75f : 1.0f;
  return cw;
}

class IsaCodesTest : public ::testing::TestWithParam<std::string> {};

TEST_P(IsaCodesTest, EveryCodeDecodesAndMultipliesLikeRef) {
  auto fast = make_kernel_table(GetParam());
  ASSERT_TRUE(fast.ok()) << fast.status().message();
  auto ref = make_kernel_table("ref");
  ASSERT_TRUE(ref.ok());
  std::mt19937 rng(3);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  for (int f = 0; f < kNumWeightFormats; ++f) {
    const auto format = static_cast<WeightFormat>(f);
    if (block_format_of(format) == nullptr) continue;
    const std::string name(weight_format_info(format).name);
    // 2 x 256 codes plus a tail that is not a multiple of any vector width.
    const int64_t num_rows = 5, num_cols = 523;
    const CodeWeight cw = make_code_weight(format, num_rows, num_cols);
    ASSERT_NE(cw.view.data, nullptr) << name;
    for (int64_t r = 0; r < num_rows; ++r) {
      std::vector<float> row_ref(static_cast<size_t>(num_cols)), row(row_ref.size());
      ref->decode_row[f](cw.view, r, row_ref.data());
      fast->decode_row[f](cw.view, r, row.data());
      for (int64_t c = 0; c < num_cols; ++c) {
        ASSERT_TRUE(same_value(row[c], row_ref[c]))
            << name << " row " << r << " col " << c << ": " << row[c] << " vs " << row_ref[c];
      }
    }
    for (int64_t m : {1, 2, 3, 4, 9, 41}) {  // 41: more than one GEMM token group
      std::vector<float> x(static_cast<size_t>(m * num_cols));
      for (auto& v : x) v = dist(rng);
      std::vector<float> y_ref(static_cast<size_t>(m * num_rows)), y(y_ref.size());
      ref->matmul[f](x.data(), m, cw.view, 0, num_rows, y_ref.data(), num_rows);
      fast->matmul[f](x.data(), m, cw.view, 0, num_rows, y.data(), num_rows);
      std::vector<float> w_row(static_cast<size_t>(num_cols));
      for (int64_t r = 0; r < num_rows; ++r) {
        ref->decode_row[f](cw.view, r, w_row.data());
        for (int64_t i = 0; i < m; ++i) {
          const float got = y[i * num_rows + r], want = y_ref[i * num_rows + r];
          ASSERT_EQ(std::isnan(got), std::isnan(want)) << name << " M=" << m << " row " << r;
          if (std::isnan(want)) continue;
          double mag = 0.0;
          for (int64_t c = 0; c < num_cols; ++c) mag += std::fabs(double(w_row[c]) * x[i * num_cols + c]);
          EXPECT_NEAR(got, want, 1e-5 * mag) << name << " M=" << m << " row " << r;
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(FastIsas, IsaCodesTest, ::testing::ValuesIn(fast_isa_names()),
                         [](const auto& param_info) { return param_info.param; });

}  // namespace
}  // namespace nibble::kernels
