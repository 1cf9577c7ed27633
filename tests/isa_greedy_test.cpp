// End to end: greedy generation is identical under NIBBLE_ISA=ref and every faster ISA this CPU
// runs, for both architectures, with a prompt long enough for the GEMM path (prefill) and 64
// decode steps (GEMV and attention over a growing cache), for the plain formats and every
// block-quantized format. The weights use --init-std 0.1 so the greedy path varies token to token
// instead of repeating one id.
//
// ISAs that keep activations in fp32 must give the reference's tokens exactly. An ISA that rounds
// activations (IsaInfo::rounds_activations) may flip near ties, so its tokens are either identical
// or each one it chose is a near-best choice of the reference: the reference, fed the ISA's tokens
// (teacher forcing, in this process under NIBBLE_ISA=ref), must rank every chosen token within
// kRoundedLogitTolerance * max|logit| of its own top logit at that step (the same bound as the
// fast_isa model goldens, from the measured logit error of the rounding).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "kernels/kernel_table.h"
#include "model/model.h"
#include "model_test_util.h"

namespace nibble {
namespace {

using testing_util::run_nibble;
using testing_util::TempDir;

std::string greedy_ids(const std::string& isa, const std::string& model_dir) {
  ::setenv("NIBBLE_ISA", isa.c_str(), 1);
  auto r =
      run_nibble({"run", model_dir, "--prompt-ids", "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21",
                  "-n", "64", "--temp", "0", "--print-ids", "--ignore-eos", "-t", "2"},
                 false);
  ::unsetenv("NIBBLE_ISA");
  EXPECT_EQ(r.exit_code, 0) << isa;
  return r.output;
}

constexpr double kRoundedLogitTolerance = 4e-2;
const std::vector<int32_t> kPrompt = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21};

// The reference kernels' logits along `ids` (prompt, then the ISA's tokens): true if every token
// is within the bound of the reference's best at its step. Reports the steps that were not the
// reference's argmax.
::testing::AssertionResult near_best_under_ref(const std::string& model_dir, const std::string& ids_json,
                                               const std::string& label) {
  ::setenv("NIBBLE_ISA", "ref", 1);
  auto table = kernels::kernel_table();  // built once per process: must be the reference
  ::unsetenv("NIBBLE_ISA");
  if (!table.ok() || (*table)->isa != "ref") return ::testing::AssertionFailure() << "no ref kernel table";
  const auto ids = nlohmann::json::parse(ids_json).get<std::vector<int32_t>>();
  model::LoadOptions options;
  options.max_seq_len = static_cast<int64_t>(kPrompt.size() + ids.size());
  options.max_batch_tokens = static_cast<int64_t>(kPrompt.size());
  options.num_threads = 2;
  auto loaded = model::load_model(model_dir, options);
  if (!loaded.ok()) return ::testing::AssertionFailure() << loaded.status().message();
  model::Model& m = **loaded;
  auto cache = m.new_kv_cache();
  auto logits = m.forward(kPrompt, 0, *cache, 1);
  std::string flips;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (!logits.ok()) return ::testing::AssertionFailure() << logits.status().message();
    const std::span<const float> l = *logits;
    const float best = *std::max_element(l.begin(), l.end());
    double max_abs = 0.0;
    for (float v : l) max_abs = std::max(max_abs, std::fabs(double(v)));
    const double gap = double(best) - l[static_cast<size_t>(ids[i])];
    if (gap > kRoundedLogitTolerance * max_abs) {
      return ::testing::AssertionFailure() << "step " << i << ": token " << ids[i] << " is " << gap
                                           << " below the reference's best logit (bound "
                                           << kRoundedLogitTolerance * max_abs << ")";
    }
    if (gap > 0.0) flips += " step " + std::to_string(i) + " (gap " + std::to_string(gap) + ")";
    logits = m.forward({&ids[i], 1}, static_cast<int64_t>(kPrompt.size() + i), *cache, 1);
  }
  std::printf("%s: not the reference's argmax, within the bound:%s\n", label.c_str(), flips.c_str());
  return ::testing::AssertionSuccess();
}

void expect_same_or_near_best(const kernels::IsaInfo& info, const std::string& got, const std::string& ref,
                              const std::string& model_dir, const std::string& what) {
  if (!info.rounds_activations || got == ref) {
    EXPECT_EQ(got, ref) << what << " under " << info.name;
    return;
  }
  const std::string label = what + " under " + std::string(info.name);
  EXPECT_TRUE(near_best_under_ref(model_dir, got, label)) << label;
}

TEST(IsaGreedyTest, EveryIsaGeneratesTheReferenceTokens) {
  for (const char* arch : {"qwen3", "llama"}) {
    TempDir dir(std::string("isa_greedy_") + arch);
    const std::string model_dir = dir / "m";
    auto made =
        run_nibble({"make-model", model_dir, "--arch", arch, "--preset", "small", "--init-std", "0.1"}, true);
    ASSERT_EQ(made.exit_code, 0) << made.output;
    const std::string ref = greedy_ids("ref", model_dir);
    ASSERT_GT(ref.size(), 64u);
    for (const auto& info : kernels::known_isas()) {
      if (!info.supported() || info.name == "ref") continue;
      expect_same_or_near_best(info, greedy_ids(std::string(info.name), model_dir), ref, model_dir, arch);
    }
  }
}

// The same for the block-quantized formats (`nibble quantize` of the small qwen3 model).
TEST(IsaGreedyTest, QuantizedFormatsGenerateTheReferenceTokens) {
  TempDir dir("isa_greedy_quant");
  const std::string base_dir = dir / "base";
  auto made =
      run_nibble({"make-model", base_dir, "--arch", "qwen3", "--preset", "small", "--init-std", "0.1"}, true);
  ASSERT_EQ(made.exit_code, 0) << made.output;
  for (const char* format : {"nvfp4", "mxfp4", "fp8", "fp8-block"}) {
    const std::string model_dir = dir / format;
    auto q = run_nibble({"quantize", base_dir, model_dir, "--format", format, "-t", "2"}, true);
    ASSERT_EQ(q.exit_code, 0) << q.output;
    const std::string ref = greedy_ids("ref", model_dir);
    ASSERT_GT(ref.size(), 64u);
    for (const auto& info : kernels::known_isas()) {
      if (!info.supported() || info.name == "ref") continue;
      expect_same_or_near_best(info, greedy_ids(std::string(info.name), model_dir), ref, model_dir, format);
    }
  }
}

}  // namespace
}  // namespace nibble
