// Oracle: tests/golden/formats/, written by tests/conformance/gen_format_goldens.py from torch's
// float8 casts and from ModelOpt's and compressed-tensors' own quantize functions. Every byte must
// match; docs/formats.md records the producer versions and the (documented) exceptions.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "formats/block_format.h"
#include "formats/element.h"

namespace nibble::formats {
namespace {

const std::string kGoldenDir = std::string(NIBBLE_SOURCE_DIR) + "/tests/golden/formats/";

nlohmann::json load_json(const std::string& name) {
  std::ifstream in(kGoldenDir + name);
  NIBBLE_CHECK(in.good(), "missing golden " + kGoldenDir + name);
  return nlohmann::json::parse(in);
}

std::vector<uint8_t> load_bytes(const std::string& name) {
  std::ifstream in(kGoldenDir + name, std::ios::binary);
  NIBBLE_CHECK(in.good(), "missing golden " + kGoldenDir + name);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

uint32_t parse_hex32(const std::string& s) {
  return static_cast<uint32_t>(std::stoul(s, nullptr, 16));
}
float hex_float(const std::string& s) {
  const uint32_t u = parse_hex32(s);
  float f;
  std::memcpy(&f, &u, sizeof(f));
  return f;
}
uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof(u));
  return u;
}

// Same float32 bits, or both NaN with the same sign.
bool same_value(float got, float want) {
  if (std::isnan(want)) return std::isnan(got) && std::signbit(got) == std::signbit(want);
  return float_bits(got) == float_bits(want);
}

TEST(FormatsGolden, DecodeTablesMatchTorch) {
  const auto j = load_json("elements.json");
  struct Table {
    const char* key;
    float (*decode)(uint8_t);
  } tables[] = {{"e4m3_decode", e4m3_decode},
                {"e5m2_decode", e5m2_decode},
                {"e8m0_decode", e8m0_decode},
                {"ue4m3_decode", ue4m3_decode}};
  for (const Table& t : tables) {
    const auto& want = j.at(t.key);
    ASSERT_EQ(want.size(), 256u);
    for (int c = 0; c < 256; ++c) {
      const float w = hex_float(want[c].get<std::string>());
      const float g = t.decode(static_cast<uint8_t>(c));
      // torch's NaN decodes keep no sign for E8M0 0xFF; only NaN-ness is compared there.
      if (std::isnan(w)) {
        EXPECT_TRUE(std::isnan(g)) << t.key << " code " << c;
      } else {
        EXPECT_EQ(float_bits(g), float_bits(w)) << t.key << " code " << c << ": " << g << " vs " << w;
      }
    }
  }
}

TEST(FormatsGolden, EncodesMatchTorchAndProducers) {
  const auto j = load_json("elements.json");
  const auto& inputs = j.at("inputs");
  struct Encoder {
    const char* key;
    uint8_t (*encode)(float);
  } encoders[] = {
      {"e4m3_encode", [](float x) { return e4m3_encode(x, Overflow::kSaturate); }},
      {"e5m2_encode", [](float x) { return e5m2_encode(x, Overflow::kNonFinite); }},
      {"e8m0_encode", e8m0_encode},
      {"e2m1_modelopt", e2m1_encode_rne},
      {"e2m1_ct", e2m1_encode_rne},
      {"ue4m3_encode", ue4m3_encode},
  };
  for (const Encoder& e : encoders) {
    const auto& want = j.at(e.key);
    ASSERT_EQ(want.size(), inputs.size()) << e.key;
    int mismatches = 0;
    for (size_t i = 0; i < inputs.size(); ++i) {
      const int w = want[i].get<int>();
      if (w < 0) continue;  // not produced (NaN into compressed-tensors' FP4 cast)
      const float x = hex_float(inputs[i].get<std::string>());
      const int g = e.encode(x);
      if (g != w && ++mismatches <= 10) {
        ADD_FAILURE() << e.key << " input " << inputs[i].get<std::string>() << " (" << x << "): got " << g
                      << ", want " << w;
      }
    }
    EXPECT_EQ(mismatches, 0) << e.key;
  }
}

TEST(FormatsGolden, QuantizationMatchesProducers) {
  const auto j = load_json("quant.json");
  for (const auto& c : j.at("cases")) {
    const std::string name = c.at("name");
    SCOPED_TRACE(name + " (" + c.at("producer").get<std::string>() + ")");
    const BlockFormat* format = find_block_format(c.at("format").get<std::string>());
    ASSERT_NE(format, nullptr);
    const ScaleRule* rule = find_scale_rule(*format, c.at("rule").get<std::string>());
    ASSERT_NE(rule, nullptr);
    const int64_t rows = c.at("rows"), cols = c.at("cols");
    const std::vector<uint8_t> x_bytes = load_bytes(c.at("input").get<std::string>() + ".x.f32");
    ASSERT_EQ(static_cast<int64_t>(x_bytes.size()), rows * cols * 4);
    std::vector<float> x(static_cast<size_t>(rows * cols));
    std::memcpy(x.data(), x_bytes.data(), x_bytes.size());

    auto q = quantize_tensor(*format, x, rows, cols, {.rule = rule});
    ASSERT_TRUE(q.ok()) << q.status().message();
    const std::vector<uint8_t> want_data = load_bytes(name + ".data.u8");
    const std::vector<uint8_t> want_scales = load_bytes(name + ".scales.bin");
    if (c.at("nibble_order") == "halves") {  // llama.cpp order: compare through the converter
      std::vector<uint8_t> converted(q->data.size());
      convert_nibble_order(q->data, converted, format->block_cols, NibbleOrder::kPairs, NibbleOrder::kHalves);
      q->data = converted;
    }
    ASSERT_EQ(q->data.size(), want_data.size());
    ASSERT_EQ(q->scales.size(), want_scales.size());
    int data_diffs = 0, scale_diffs = 0;
    for (size_t i = 0; i < want_data.size(); ++i) {
      if (q->data[i] != want_data[i] && ++data_diffs <= 5) {
        ADD_FAILURE() << "data byte " << i << " (row " << static_cast<int64_t>(i) / q->layout.row_bytes
                      << "): got 0x" << std::hex << int(q->data[i]) << ", want 0x" << int(want_data[i]);
      }
    }
    for (size_t i = 0; i < want_scales.size(); ++i) {
      if (q->scales[i] != want_scales[i] && ++scale_diffs <= 5) {
        ADD_FAILURE() << "scale byte " << i << ": got 0x" << std::hex << int(q->scales[i]) << ", want 0x"
                      << int(want_scales[i]);
      }
    }
    EXPECT_EQ(data_diffs, 0);
    EXPECT_EQ(scale_diffs, 0);
    if (c.contains("dequant")) {  // the producer's own dequantization, bit for bit
      const std::vector<uint8_t> deq_bytes = load_bytes(c.at("dequant").get<std::string>());
      ASSERT_EQ(static_cast<int64_t>(deq_bytes.size()), rows * cols * 4);
      std::vector<float> want(static_cast<size_t>(rows * cols)), got(want.size());
      std::memcpy(want.data(), deq_bytes.data(), deq_bytes.size());
      dequantize_tensor(*format, *q, got);
      // Values must be bit-identical, except that ModelOpt's NVFP4 dequant table holds +0 at code 8
      // where nibble (and the spec) decode -0.0; docs/formats.md §6.
      int deq_diffs = 0;
      for (size_t i = 0; i < want.size(); ++i) {
        const bool both_zero = got[i] == 0.0f && want[i] == 0.0f && name.rfind("mo_nvfp4", 0) == 0;
        if (float_bits(got[i]) != float_bits(want[i]) && !both_zero && ++deq_diffs <= 5) {
          ADD_FAILURE() << "dequant " << i << ": got " << got[i] << ", want " << want[i];
        }
      }
      EXPECT_EQ(deq_diffs, 0);
    }
    if (c.contains("tensor_scale")) {
      EXPECT_TRUE(same_value(q->tensor_scale, hex_float(c.at("tensor_scale").get<std::string>())))
          << q->tensor_scale << " vs " << hex_float(c.at("tensor_scale").get<std::string>());
    }
  }
}

// The BF16 variant of compressed-tensors' rule is needed: the float32 rule on the same BF16 values
// gives different bytes (compressed-tensors rounds its intermediates to the observer's BF16).
TEST(FormatsGolden, Bf16VariantOfCompressedTensorsMatters) {
  const auto j = load_json("quant.json");
  for (const auto& c : j.at("cases")) {
    if (c.at("name") != "ct_nvfp4_bf16") continue;
    const BlockFormat& format = *find_block_format("nvfp4-ct");
    const int64_t rows = c.at("rows"), cols = c.at("cols");
    const std::vector<uint8_t> x_bytes = load_bytes(c.at("input").get<std::string>() + ".x.f32");
    std::vector<float> x(static_cast<size_t>(rows * cols));
    std::memcpy(x.data(), x_bytes.data(), x_bytes.size());
    auto q = quantize_tensor(format, x, rows, cols, {.rule = find_scale_rule(format, "compressed-tensors")});
    ASSERT_TRUE(q.ok());
    EXPECT_NE(q->scales, load_bytes("ct_nvfp4_bf16.scales.bin"));
    return;
  }
  FAIL() << "case ct_nvfp4_bf16 missing";
}

}  // namespace
}  // namespace nibble::formats
