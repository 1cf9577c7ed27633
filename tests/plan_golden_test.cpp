// plan::estimate's weight bytes against the tensor lists transformers builds for the golden
// configs (tests/golden/plan/*/tensors.json, from tests/conformance/gen_plan_tensors.py), with
// each format's bytes computed here from formats.md's checkpoint layouts — independently of the
// tensor enumeration in src/plan/weights.cpp.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "plan/estimate.h"
#include "plan/model_shape.h"

namespace nibble::plan {
namespace {

using nlohmann::json;

const std::string kGoldenDir = std::string(NIBBLE_SOURCE_DIR) + "/tests/golden/plan/";

json load(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return json::parse(ss.str());
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

// Bytes of an [out, in] Linear weight stored in a format, per formats.md.
int64_t linear_bytes(const std::string& format, int64_t out, int64_t in) {
  const int64_t n = out * in;
  if (format == "bf16") return 2 * n;
  if (format == "fp8") return n + 4 + 4;  // §4.1 weight_scale, input_scale
  if (format == "fp8-block") return n + 4 * ceil_div(out, 128) * ceil_div(in, 128);  // §4.2 weight_scale_inv
  if (format == "nvfp4") return n / 2 + out * ceil_div(in, 16) + 4 + 4;  // §2.4 U8, E4M3, two F32 scalars
  if (format == "mxfp4") return n / 2 + out * ceil_div(in, 32);          // §3.3 blocks, E8M0 scales
  ADD_FAILURE() << "format " << format;
  return 0;
}

// Expected bytes of a golden model in `format` ("as-is" picks the checkpoint's own scheme).
int64_t expected_bytes(const std::string& model, const json& tensors, const std::string& format) {
  const bool gpt_oss = model.find("gpt-oss") != std::string::npos;
  int64_t total = 0;
  for (const json& t : tensors["tensors"]) {
    const std::string name = t["name"];
    const std::vector<int64_t> shape = t["shape"];
    const int64_t count = t["count"];
    int64_t elems = 1;
    for (int64_t d : shape) elems *= d;
    const bool fused_experts =
        ends_with(name, "experts.gate_up_proj") || ends_with(name, "experts.down_proj");
    const bool linear =
        (ends_with(name, "_proj.weight") || ends_with(name, "_proj_with_mqa.weight") || fused_experts) &&
        name != "lm_head.weight";
    std::string f = format;
    if (format == "as-is") {
      if (gpt_oss) {
        f = fused_experts ? "mxfp4" : "bf16";  // §3.3: only the experts are MXFP4
      } else if (model == "deepseek-v3") {
        f = "fp8-block";  // §4.2 DeepSeek-V3 checkpoint: every Linear but the router and lm_head
      } else {
        f = "bf16";
      }
    }
    int64_t bytes = 0;
    if (!linear || f == "bf16") {
      // e_score_correction_bias is F32 in the DeepSeek-V3 checkpoint; everything else BF16.
      bytes = elems * (ends_with(name, "e_score_correction_bias") ? 4 : 2);
    } else if (fused_experts && gpt_oss) {
      // HF GptOssExperts params are [E, in, out]; the checkpoint stores [E, out, in/32, 16].
      bytes = shape[0] * linear_bytes(f, shape[2], shape[1]);
    } else if (fused_experts && ends_with(name, "gate_up_proj")) {
      // transformers fuses [E, 2I, H]; checkpoints store gate_proj and up_proj [I, H] per expert.
      bytes = shape[0] * 2 * linear_bytes(f, shape[1] / 2, shape[2]);
    } else if (fused_experts) {
      bytes = shape[0] * linear_bytes(f, shape[1], shape[2]);
    } else {
      bytes = linear_bytes(f, shape[0], shape[1]);
    }
    total += count * bytes;
  }
  return total;
}

class PlanGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(PlanGolden, WeightBytesEqualTheTensorListSum) {
  const std::string model = GetParam();
  const json tensors = load(kGoldenDir + model + "/tensors.json");
  auto shape = load_model_shape(kGoldenDir + model);
  ASSERT_TRUE(shape.ok()) << shape.status().message();
  DeviceProfile device;
  device.name = "big";
  device.memory_bytes = device.usable_memory_bytes = 1e15;
  device.bandwidth_bytes_per_s = 1e12;
  device.peak_bf16_flops = 1e15;
  device.decode_efficiency = device.prefill_efficiency = 1;
  for (const char* format : {"as-is", "bf16", "fp8", "fp8-block", "nvfp4", "mxfp4"}) {
    PlanOptions options;
    options.format = *parse_format_choice(format);
    options.context_tokens = 16;
    auto e = estimate(*shape, device, options);
    ASSERT_TRUE(e.ok()) << e.status().message();
    EXPECT_EQ(e->num_params, tensors["num_params"].get<int64_t>()) << model;
    EXPECT_EQ(e->weight_bytes, expected_bytes(model, tensors, format)) << model << " " << format;
  }
}

INSTANTIATE_TEST_SUITE_P(Models, PlanGolden,
                         ::testing::Values("tiny-qwen3", "tiny-qwen3-tied", "tiny-qwen3-moe", "tiny-gpt-oss",
                                           "qwen3-0.6b", "qwen3-32b", "qwen3-30b-a3b", "llama-3.3-70b",
                                           "gpt-oss-120b", "gpt-oss-20b", "deepseek-v3"),
                         [](const auto& param_info) {
                           std::string n = param_info.param;
                           for (char& c : n) c = (c == '-' || c == '.') ? '_' : c;
                           return n;
                         });

}  // namespace
}  // namespace nibble::plan
