// Quantized checkpoints as other tools ship them: compressed-tensors NVFP4 / FP8 checkpoints built
// by compressed-tensors 0.20 itself (tests/conformance/gen_quant_goldens.py), whose logits must
// match transformers run on compressed-tensors' own dequantization; bad inputs; config parsing.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "base/file_util.h"
#include "io/safetensors.h"
#include "model/model.h"
#include "model/quant_config.h"
#include "../model_test_util.h"

namespace nibble::model {
namespace {

namespace fs = std::filesystem;
using testing_util::TempDir;

const std::string kGolden = std::string(NIBBLE_SOURCE_DIR) + "/tests/golden/quant/";

base::Result<std::vector<float>> run_prompt(const std::string& dir, const std::vector<int32_t>& prompt) {
  LoadOptions opts;
  opts.max_seq_len = 32;
  opts.max_logit_rows = static_cast<int64_t>(prompt.size());
  NIBBLE_ASSIGN_OR_RETURN(auto m, load_model(dir, opts));
  auto cache = m->new_kv_cache();
  NIBBLE_ASSIGN_OR_RETURN(auto l, m->forward(prompt, 0, *cache, static_cast<int64_t>(prompt.size())));
  return std::vector<float>(l.begin(), l.end());
}

class CtGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(CtGolden, LogitsMatchTransformersOnCompressedTensorsDequantization) {
  const std::string dir = kGolden + GetParam();
  const auto golden = nlohmann::json::parse(*base::read_file(dir + "/logits.json"));
  const auto prompt = golden["prompt"].get<std::vector<int32_t>>();
  auto logits = run_prompt(dir, prompt);
  ASSERT_TRUE(logits.ok()) << logits.status().message();
  const auto& rows = golden["logits"];
  const size_t vocab = rows[0].size();
  ASSERT_EQ(logits->size(), rows.size() * vocab);
  double max_diff = 0.0, max_abs = 0.0;
  for (size_t r = 0; r < rows.size(); ++r) {
    for (size_t v = 0; v < vocab; ++v) {
      const double want = rows[r][v].get<double>();
      max_diff = std::max(max_diff, std::fabs((*logits)[r * vocab + v] - want));
      max_abs = std::max(max_abs, std::fabs(want));
    }
  }
  // FP32 forward vs transformers' FP32 eager forward: summation order differs only.
  EXPECT_LE(max_diff, 1e-3 * max_abs) << "max |logit| " << max_abs;  // as tests/model_golden_test.cpp
}

INSTANTIATE_TEST_SUITE_P(Quant, CtGolden, ::testing::Values("ct_nvfp4", "ct_fp8"));

// Copies the golden with one tensor replaced (or dropped when `replace` is null).
struct Mutation {
  std::string name;
  tensor::DType dtype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
  bool drop = false;
};

void write_mutated(const std::string& src, const std::string& dst, const Mutation& mut) {
  auto ckpt = io::Checkpoint::open(src);
  ASSERT_TRUE(ckpt.ok());
  std::vector<io::TensorToWrite> out;
  for (const std::string& name : ckpt->names()) {
    const io::TensorInfo& t = *ckpt->find(name);
    if (name == mut.name) {
      if (!mut.drop) out.push_back({name, mut.dtype, mut.shape, mut.bytes.data(), mut.bytes.size()});
      continue;
    }
    out.push_back({name, t.dtype, t.shape, t.data, t.num_bytes});
  }
  fs::create_directories(dst);
  ASSERT_TRUE(io::write_safetensors(dst + "/model.safetensors", out).ok());
  fs::copy_file(src + "/config.json", dst + "/config.json");
}

std::string load_error(const std::string& dir) {
  auto r = run_prompt(dir, {1, 2});
  return r.ok() ? std::string("(loaded)") : r.status().message();
}

TEST(QuantLoadErrors, NameTheTensorAtFault) {
  const std::string src = kGolden + "ct_nvfp4";
  const std::string p = "model.layers.1.mlp.up_proj";
  TempDir tmp("quant_bad");
  {  // missing scale tensor
    write_mutated(src, tmp / "a", {p + ".weight_global_scale", tensor::DType::kF32, {}, {}, true});
    const std::string e = load_error(tmp / "a");
    EXPECT_NE(e.find(p + ".weight_global_scale"), std::string::npos) << e;
    EXPECT_NE(e.find("missing"), std::string::npos) << e;
  }
  {  // scale of the wrong shape
    write_mutated(src, tmp / "b", {p + ".weight_scale", tensor::DType::kF8E4M3, {128, 3}, std::vector<uint8_t>(384, 0x38)});
    const std::string e = load_error(tmp / "b");
    EXPECT_NE(e.find(p + ".weight_scale'"), std::string::npos) << e;
    EXPECT_NE(e.find("expected shape [128, 4]"), std::string::npos) << e;
  }
  {  // NaN block scale (E4M3 0x7F)
    std::vector<uint8_t> s(128 * 4, 0x38);
    s[77] = 0x7F;
    write_mutated(src, tmp / "c", {p + ".weight_scale", tensor::DType::kF8E4M3, {128, 4}, s});
    const std::string e = load_error(tmp / "c");
    EXPECT_NE(e.find(p + ".weight_scale"), std::string::npos) << e;
    EXPECT_NE(e.find("[19, 1]"), std::string::npos) << e;
  }
  {  // Inf global scale, shape [] accepted as well as [1]
    const float inf = INFINITY;
    std::vector<uint8_t> b(4);
    std::memcpy(b.data(), &inf, 4);
    write_mutated(src, tmp / "d", {p + ".weight_global_scale", tensor::DType::kF32, {}, b});
    const std::string e = load_error(tmp / "d");
    EXPECT_NE(e.find(p + ".weight_global_scale"), std::string::npos) << e;
    EXPECT_NE(e.find("finite"), std::string::npos) << e;
  }
  {  // a scale vector where a scalar belongs
    write_mutated(src, tmp / "e", {p + ".weight_global_scale", tensor::DType::kF32, {2}, std::vector<uint8_t>(8, 0)});
    const std::string e = load_error(tmp / "e");
    EXPECT_NE(e.find("shape [] or [1]"), std::string::npos) << e;
  }
  {  // unknown quant_method
    fs::create_directories(tmp / "f");
    fs::copy_file(src + "/model.safetensors", tmp / "f/model.safetensors");
    auto cfg = nlohmann::json::parse(*base::read_file(src + "/config.json"));
    cfg["quantization_config"]["quant_method"] = "awq";
    ASSERT_TRUE(base::write_file_atomic(tmp / "f/config.json", cfg.dump()).ok());
    const std::string e = load_error(tmp / "f");
    EXPECT_NE(e.find("quant_method 'awq'"), std::string::npos) << e;
  }
  {  // NaN FP8 weight element
    const std::string fsrc = kGolden + "ct_fp8";
    auto ckpt = io::Checkpoint::open(fsrc);
    const io::TensorInfo& w = *ckpt->find(p + ".weight");
    std::vector<uint8_t> b(w.data, w.data + w.num_bytes);
    b[64 * 3 + 5] = 0xFF;
    write_mutated(fsrc, tmp / "g", {p + ".weight", tensor::DType::kF8E4M3, w.shape, b});
    const std::string e = load_error(tmp / "g");
    EXPECT_NE(e.find(p + ".weight'"), std::string::npos) << e;
    EXPECT_NE(e.find("NaN at row 3, column 5"), std::string::npos) << e;
  }
}

TEST(QuantConfig, ParsesEveryLayoutAndMatchesModulesLikeVllm) {
  auto mo = parse_quant_config("{}", "config.json",
                               R"({"producer": {"name": "modelopt"}, "quantization": {"quant_algo": "NVFP4",
                                   "group_size": 16, "kv_cache_quant_algo": null,
                                   "exclude_modules": ["lm_head", "model.layers.0*", "*.mlp.gate"]}})",
                               "hf_quant_config.json");
  ASSERT_TRUE(mo.ok()) << mo.status().message();
  EXPECT_EQ(mo->method, QuantMethod::kModelOpt);
  EXPECT_EQ(module_algo(*mo, "model.layers.1.self_attn.q_proj"), "NVFP4");
  EXPECT_EQ(module_algo(*mo, "model.layers.0.self_attn.q_proj"), "");  // wildcard crosses dots
  EXPECT_EQ(module_algo(*mo, "model.layers.10.mlp.gate"), "");
  EXPECT_EQ(module_algo(*mo, "model.layers.10.mlp.gate_proj"), "NVFP4");
  EXPECT_EQ(module_algo(*mo, "lm_head"), "");
  EXPECT_TRUE(module_matches("model.layers.3.mlp.up_proj", {"model.layers.3"}));  // prefix at a dot
  EXPECT_FALSE(module_matches("model.layers.30.mlp.up_proj", {"model.layers.3"}));
  EXPECT_TRUE(module_matches("model.layers.3.mlp.up_proj", {"re:.*mlp\\.up_proj$"}));

  auto fp8 = parse_quant_config(R"({"quantization_config": {"quant_method": "fp8", "fmt": "e4m3",
                                    "activation_scheme": "dynamic", "weight_block_size": [128, 128]}})",
                                "config.json", "", "");
  ASSERT_TRUE(fp8.ok());
  EXPECT_EQ(fp8->method, QuantMethod::kFp8Block);
  auto bad_block = parse_quant_config(R"({"quantization_config": {"quant_method": "fp8",
                                          "weight_block_size": [64, 64]}})", "config.json", "", "");
  EXPECT_FALSE(bad_block.ok());
  auto mixed = parse_quant_config("", "", R"({"quantization": {"quant_algo": "MIXED_PRECISION",
      "quantized_layers": {"a.q_proj": {"quant_algo": "FP8"}, "a.o_proj": {"quant_algo": "NVFP4"}}}})", "h.json");
  ASSERT_TRUE(mixed.ok()) << mixed.status().message();
  EXPECT_EQ(module_algo(*mixed, "a.q_proj"), "FP8");
  EXPECT_EQ(module_algo(*mixed, "a.o_proj"), "NVFP4");
  EXPECT_EQ(module_algo(*mixed, "a.k_proj"), "");
  auto unknown_algo = parse_quant_config("", "", R"({"quantization": {"quant_algo": "INT4_AWQ"}})", "h.json");
  ASSERT_FALSE(unknown_algo.ok());
  EXPECT_NE(unknown_algo.status().message().find("INT4_AWQ"), std::string::npos);
  auto none = parse_quant_config(R"({"hidden_size": 4})", "config.json", "", "");
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->method, QuantMethod::kNone);
}

}  // namespace
}  // namespace nibble::model
