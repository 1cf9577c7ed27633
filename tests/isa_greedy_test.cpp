// End to end: greedy generation is identical under NIBBLE_ISA=ref and every faster ISA this CPU
// runs, for both architectures, with a prompt long enough for the GEMM path (prefill) and 64
// decode steps (GEMV and attention over a growing cache), for the plain formats and every
// block-quantized format. The weights use --init-std 0.1 so the greedy path varies token to token
// instead of repeating one id. ISAs that round activations (BF16 / int8, IsaInfo::rounds_activations)
// are left out: on a random-init model near-tied logits flip within a few tokens under that
// rounding; kernels_test bounds their matmul error against the reference instead.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "kernels/kernel_table.h"
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
      if (!info.supported() || info.name == "ref" || info.rounds_activations) continue;
      EXPECT_EQ(greedy_ids(std::string(info.name), model_dir), ref) << arch << " under " << info.name;
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
      if (!info.supported() || info.name == "ref" || info.rounds_activations) continue;
      EXPECT_EQ(greedy_ids(std::string(info.name), model_dir), ref) << format << " under " << info.name;
    }
  }
}

}  // namespace
}  // namespace nibble
