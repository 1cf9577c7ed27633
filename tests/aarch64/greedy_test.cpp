// End to end on aarch64 (under qemu-user): greedy generation with NIBBLE_ISA=neon gives the same
// tokens as NIBBLE_ISA=ref, for a random small Qwen3 model (2 layers) in BF16 and quantized to every format
// `nibble quantize` writes (NVFP4, MXFP4, FP8 per-tensor, FP8 128x128), and for a small Llama.
// The prompt is long enough for the GEMM path (prefill); then 32 decode steps (GEMV and
// attention over a growing cache). Weights use init std 0.1 so the greedy path varies token to
// token. The aarch64 twin of tests/isa_greedy_test.cpp, which needs the whole `nibble` binary.
//
// The kernel table is process-wide and built once from NIBBLE_ISA, so each ISA runs in a forked
// child that sends its token ids back through a pipe.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "kernels/kernel_table.h"
#include "model/model.h"
#include "model/random_checkpoint.h"
#include "quant/quantize.h"

namespace nibble {
namespace {

constexpr int kPromptTokens = 21;
constexpr int kDecodeSteps = 32;

// Greedy ids of the prompt 1..21 continued for kDecodeSteps tokens, in this process.
base::Result<std::vector<int32_t>> greedy_here(const std::string& model_dir) {
  model::LoadOptions options;
  options.max_seq_len = 64;
  options.max_batch_tokens = 32;
  options.num_threads = 2;
  NIBBLE_ASSIGN_OR_RETURN(auto m, model::load_model(model_dir, options));
  auto cache = m->new_kv_cache();
  std::vector<int32_t> tokens;
  for (int32_t t = 1; t <= kPromptTokens; ++t) tokens.push_back(t);
  std::vector<int32_t> out;
  int64_t pos = 0;
  for (int step = 0; step < kDecodeSteps; ++step) {
    NIBBLE_ASSIGN_OR_RETURN(auto logits, m->forward(tokens, pos, *cache));
    pos += static_cast<int64_t>(tokens.size());
    int32_t best = 0;
    for (int32_t i = 1; i < static_cast<int32_t>(logits.size()); ++i) {
      if (logits[static_cast<size_t>(i)] > logits[static_cast<size_t>(best)]) best = i;
    }
    out.push_back(best);
    tokens.assign(1, best);
  }
  return out;
}

// The same in a child process with NIBBLE_ISA=isa; empty on any failure (reported on stderr).
std::vector<int32_t> greedy_under(const std::string& isa, const std::string& model_dir) {
  int fds[2];
  if (::pipe(fds) != 0) return {};
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    ::setenv("NIBBLE_ISA", isa.c_str(), 1);
    auto table = kernels::kernel_table();
    if (!table.ok() || (*table)->isa != isa) {
      std::fprintf(stderr, "kernel table for %s: %s\n", isa.c_str(),
                   table.ok() ? (*table)->isa.c_str() : table.status().message().c_str());
      ::_exit(1);
    }
    auto ids = greedy_here(model_dir);
    if (!ids.ok()) {
      std::fprintf(stderr, "%s under %s: %s\n", model_dir.c_str(), isa.c_str(),
                   ids.status().message().c_str());
      ::_exit(1);
    }
    const auto bytes = static_cast<ssize_t>(ids->size() * sizeof(int32_t));
    ::_exit(::write(fds[1], ids->data(), static_cast<size_t>(bytes)) == bytes ? 0 : 1);
  }
  ::close(fds[1]);
  std::vector<int32_t> ids;
  int32_t buf[64];
  ssize_t n;
  while ((n = ::read(fds[0], buf, sizeof(buf))) > 0) ids.insert(ids.end(), buf, buf + n / 4);
  ::close(fds[0]);
  int status = 0;
  if (pid < 0 || ::waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return {};
  return ids;
}

class TempDir {
 public:
  TempDir() {
    path_ = std::filesystem::temp_directory_path() / ("nibble_aarch64_greedy_" + std::to_string(::getpid()));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

void expect_neon_matches_ref(const std::string& model_dir, const std::string& what) {
  const std::vector<int32_t> ref = greedy_under("ref", model_dir);
  ASSERT_EQ(ref.size(), static_cast<size_t>(kDecodeSteps)) << what << " under ref";
  const std::vector<int32_t> neon = greedy_under("neon", model_dir);
  EXPECT_EQ(neon, ref) << what;
}

TEST(Aarch64GreedyTest, NeonGeneratesTheReferenceTokens) {
  const TempDir dir;
  for (const char* arch : {"qwen3", "llama"}) {
    model::RandomModelSpec spec;
    spec.arch = arch;
    spec.preset = "small";
    spec.init_std = 0.1;
    spec.num_hidden_layers = 2;  // half the preset's depth: qemu runs the reference slowly
    const std::string base_dir = dir / arch;
    const base::Status made = model::write_random_checkpoint(base_dir, spec);
    ASSERT_TRUE(made.ok()) << made.message();
    expect_neon_matches_ref(base_dir, std::string(arch) + " bf16");
    if (std::string(arch) != "qwen3") continue;
    for (const char* format : {"nvfp4", "mxfp4", "fp8", "fp8-block"}) {
      quant::QuantizeSpec qspec;
      qspec.format = format;
      qspec.num_threads = 2;
      qspec.progress = false;
      const std::string q_dir = dir / format;
      auto q = quant::quantize_checkpoint(base_dir, q_dir, qspec);
      ASSERT_TRUE(q.ok()) << format << ": " << q.status().message();
      ASSERT_GT(q->num_quantized, 0) << format;
      expect_neon_matches_ref(q_dir, std::string("qwen3 ") + format);
    }
  }
}

}  // namespace
}  // namespace nibble
