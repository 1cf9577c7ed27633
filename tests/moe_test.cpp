// Mixture-of-experts execution: grouped experts read each chosen expert's weights once per step
// (counted by Model::expert_weight_reads), batched prefill agrees with token-by-token decode, and
// bad MXFP4 expert tensors are load errors naming the tensor.
#include "model/moe.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "formats/block_format.h"
#include "io/safetensors.h"
#include "model/model.h"
#include "model/random_checkpoint.h"
#include "model_test_util.h"

namespace nibble {
namespace {

using testing_util::TempDir;
namespace fs = std::filesystem;

struct MoeCase {
  std::string arch;
  int64_t num_layers;         // preset tiny
  int64_t num_sparse_layers;  // layers with experts
  int64_t num_experts;
  int64_t top_k;
  int64_t matrices_per_expert;  // gate_up + down (gpt-oss) or gate + up + down (Qwen3-MoE)
};

class MoeExecutionTest : public ::testing::TestWithParam<MoeCase> {
 protected:
  void SetUp() override {
    model::RandomModelSpec spec;
    spec.arch = GetParam().arch;
    spec.preset = "tiny";
    spec.seed = 31;
    spec.init_std = 0.1;
    ASSERT_TRUE(model::write_random_checkpoint(dir_.path(), spec).ok());
  }
  TempDir dir_{"moe"};
};

std::vector<int32_t> test_prompt(int n) {
  std::vector<int32_t> prompt;
  for (int32_t i = 0; i < n; ++i) prompt.push_back((i * 53 + 7) % 500);
  return prompt;
}

// A 64-token prefill routes 64 * k (token, expert) pairs per layer; executed per token that would be
// 64 * k reads of each expert matrix per layer, grouped it is at most one read per expert.
TEST_P(MoeExecutionTest, EachExpertReadOncePerStep) {
  const MoeCase& c = GetParam();
  model::LoadOptions options;
  options.max_seq_len = 128;
  options.max_logit_rows = 1;
  options.num_threads = 2;
  auto m = model::load_model(dir_.path(), options);
  ASSERT_TRUE(m.ok()) << m.status().message();
  auto cache = (*m)->new_kv_cache();
  const std::vector<int32_t> prompt = test_prompt(64);
  ASSERT_TRUE((*m)->forward(prompt, 0, *cache, 1).ok());
  const uint64_t prefill_reads = (*m)->expert_weight_reads();
  const auto per_token_reads =
      static_cast<uint64_t>(64 * c.top_k * c.num_sparse_layers * c.matrices_per_expert);
  const auto max_grouped = static_cast<uint64_t>(c.num_experts * c.num_sparse_layers * c.matrices_per_expert);
  EXPECT_LE(prefill_reads, max_grouped) << "per-token execution would read " << per_token_reads;
  EXPECT_GE(prefill_reads, static_cast<uint64_t>(c.top_k * c.num_sparse_layers * c.matrices_per_expert));
  // Decode: one token chooses exactly k distinct experts per sparse layer.
  const int32_t token = 42;
  ASSERT_TRUE((*m)->forward({&token, 1}, 64, *cache, 1).ok());
  EXPECT_EQ((*m)->expert_weight_reads(),
            static_cast<uint64_t>(c.top_k * c.num_sparse_layers * c.matrices_per_expert));
}

// Grouping tokens by expert must not change any token's result: the batched prefill's logits equal
// those of feeding the same tokens one at a time through the KV cache.
TEST_P(MoeExecutionTest, BatchedPrefillMatchesTokenByToken) {
  model::LoadOptions options;
  options.max_seq_len = 160;
  options.max_logit_rows = 150;
  options.num_threads = 2;
  auto m = model::load_model(dir_.path(), options);
  ASSERT_TRUE(m.ok()) << m.status().message();
  const std::vector<int32_t> prompt = test_prompt(150);  // longer than gpt-oss's 128-token window
  auto batched_cache = (*m)->new_kv_cache();
  auto batched = (*m)->forward(prompt, 0, *batched_cache, 150);
  ASSERT_TRUE(batched.ok()) << batched.status().message();
  const std::vector<float> all(batched->begin(), batched->end());
  const int64_t vocab = (*m)->config().vocab_size;
  auto cache = (*m)->new_kv_cache();
  double max_abs = 0.0, max_diff = 0.0;
  for (int64_t t = 0; t < 150; ++t) {
    auto step = (*m)->forward({&prompt[static_cast<size_t>(t)], 1}, t, *cache, 1);
    ASSERT_TRUE(step.ok()) << step.status().message();
    for (int64_t v = 0; v < vocab; ++v) {
      const double want = all[static_cast<size_t>(t * vocab + v)];
      max_abs = std::max(max_abs, std::fabs(want));
      max_diff = std::max(max_diff, std::fabs((*step)[static_cast<size_t>(v)] - want));
    }
  }
  EXPECT_LE(max_diff, 1e-5 * max_abs);
}

INSTANTIATE_TEST_SUITE_P(Archs, MoeExecutionTest,
                         ::testing::Values(MoeCase{"gpt-oss", 4, 4, 8, 4, 2},
                                           MoeCase{"qwen3-moe", 3, 2, 8, 2, 3}),
                         [](const auto& param_info) {
                           return param_info.param.arch == "gpt-oss" ? "GptOss" : "Qwen3Moe";
                         });

// A NaN E8M0 scale (0xFF) in an expert tensor is a load error naming that tensor.
TEST(MoeLoadErrorsTest, NanMxfp4ScaleNamesTensor) {
  TempDir good("moe_good");
  TempDir bad("moe_bad");
  model::RandomModelSpec spec;
  spec.arch = "gpt-oss";
  spec.preset = "tiny";
  ASSERT_TRUE(model::write_random_checkpoint(good.path(), spec).ok());
  fs::copy_file(good / "config.json", fs::path(bad.path()) / "config.json");
  auto ckpt = io::Checkpoint::open(good.path());
  ASSERT_TRUE(ckpt.ok()) << ckpt.status().message();
  const std::string target = "model.layers.1.mlp.experts.down_proj_scales";
  std::vector<uint8_t> patched;
  std::vector<io::TensorToWrite> tensors;
  for (const auto& name : ckpt->names()) {
    const io::TensorInfo* t = ckpt->find(name);
    if (name == target) {
      patched.assign(t->data, t->data + t->num_bytes);
      patched[patched.size() / 2] = 0xFF;
      tensors.push_back({t->name, t->dtype, t->shape, patched.data(), patched.size()});
    } else {
      tensors.push_back({t->name, t->dtype, t->shape, t->data, t->num_bytes});
    }
  }
  ASSERT_FALSE(patched.empty());
  ASSERT_TRUE(io::write_safetensors((fs::path(bad.path()) / "model.safetensors").string(), tensors).ok());
  auto m = model::load_model(bad.path(), {});
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find(target), std::string::npos) << m.status().message();
}

}  // namespace
}  // namespace nibble

namespace nibble {
namespace {

// The table-driven MXFP4 row decoder equals formats' bit-exact dequantize_row on every byte value
// and every finite scale.
TEST(Mxfp4DecodeTest, MatchesFormatsDequantizeRowForAllBytesAndScales) {
  const formats::BlockFormat* f = formats::find_block_format("mxfp4");
  ASSERT_NE(f, nullptr);
  constexpr int64_t kCols = 255 * 32;  // one block per scale code 0x00..0xFE
  std::vector<uint8_t> blocks(kCols / 2), scales(kCols / 32);
  for (size_t i = 0; i < blocks.size(); ++i) blocks[i] = static_cast<uint8_t>(i * 7 + i / 256);
  for (size_t b = 0; b < scales.size(); ++b) scales[b] = static_cast<uint8_t>(b);
  auto layout = formats::tensor_layout(*f, 1, kCols);
  ASSERT_TRUE(layout.ok());
  std::vector<float> want(kCols), got(kCols);
  formats::dequantize_row(*f, *layout, blocks.data(), scales.data(), 1.0f, want.data());
  model::decode_mxfp4_row(blocks.data(), scales.data(), kCols, got.data());
  for (int64_t c = 0; c < kCols; ++c) {
    uint32_t w_bits, g_bits;
    std::memcpy(&w_bits, &want[static_cast<size_t>(c)], 4);
    std::memcpy(&g_bits, &got[static_cast<size_t>(c)], 4);
    ASSERT_EQ(g_bits, w_bits) << "column " << c;
  }
}

}  // namespace
}  // namespace nibble
