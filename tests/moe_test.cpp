// Mixture-of-experts execution: grouped experts read each chosen expert's weights once per step
// (counted by Model::expert_weight_reads), batched prefill agrees with token-by-token decode, and
// bad MXFP4 expert tensors are load errors naming the tensor.
#include "model/moe.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "base/thread_pool.h"
#include "formats/block_format.h"
#include "io/safetensors.h"
#include "kernels/kernel_table.h"
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

// MoeBlock on hand-made weights: a router that is the identity on the first E hidden columns, so
// each token's two chosen experts are set by its input, experts in MXFP4 (gpt-oss) or F32
// (Qwen3-MoE). Oracle: the same block written out with formats::dequantize_row and scalar loops.
class MoeBlockTest : public ::testing::TestWithParam<std::tuple<model::MoeKind, int64_t>> {
 protected:
  static constexpr int64_t kHidden = 96, kInter = 64, kExperts = 8, kTopK = 2;

  void SetUp() override {
    kind_ = std::get<0>(GetParam());
    config_.hidden_size = kHidden;
    config_.moe.num_experts = kExperts;
    config_.moe.num_experts_per_tok = kTopK;
    config_.moe.expert_intermediate_size = kInter;
    config_.moe.norm_topk_prob = true;
    auto table = kernels::kernel_table();
    ASSERT_TRUE(table.ok()) << table.status().message();
    table_ = *table;
    router_.assign(kExperts * kHidden, 0.0f);
    for (int64_t e = 0; e < kExperts; ++e) router_[static_cast<size_t>(e * kHidden + e)] = 1.0f;
    layer_.router = f32_view(router_.data(), kExperts, kHidden);
    layer_.experts.resize(kExperts);
    const bool gpt_oss = kind_ == model::MoeKind::kGptOss;
    storage_.reserve(kExperts * 8);
    for (int64_t e = 0; e < kExperts; ++e) {
      model::ExpertWeights& ex = layer_.experts[static_cast<size_t>(e)];
      if (gpt_oss) {
        ex.gate_up = make_matrix(2 * kInter, kHidden);
        ex.down = make_matrix(kHidden, kInter);
        for (int64_t i = 0; i < 2 * kInter; ++i) ex.gate_up_bias.push_back(uniform() * 0.1f);
        for (int64_t i = 0; i < kHidden; ++i) ex.down_bias.push_back(uniform() * 0.1f);
      } else {
        ex.gate = make_matrix(kInter, kHidden);
        ex.up = make_matrix(kInter, kHidden);
        ex.down = make_matrix(kHidden, kInter);
      }
    }
  }

  float uniform() {
    seed_ = seed_ * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<float>(static_cast<double>(seed_ >> 11) / 9007199254740992.0 * 2.0 - 1.0);
  }

  static kernels::MatWeight f32_view(const float* data, int64_t rows, int64_t cols) {
    kernels::MatWeight w;
    w.format = kernels::WeightFormat::kF32;
    w.num_rows = rows;
    w.num_cols = cols;
    w.row_bytes = cols * 4;
    w.data = reinterpret_cast<const uint8_t*>(data);
    return w;
  }

  // MXFP4 (gpt-oss layout) for gpt-oss, F32 for Qwen3-MoE; random codes and scales near 2^-3.
  kernels::MatWeight make_matrix(int64_t rows, int64_t cols) {
    if (kind_ != model::MoeKind::kGptOss) {
      std::vector<uint8_t>& buf = storage_.emplace_back(static_cast<size_t>(rows * cols * 4));
      for (int64_t i = 0; i < rows * cols; ++i) {
        const float v = uniform() * 0.2f;
        std::memcpy(buf.data() + i * 4, &v, 4);
      }
      return f32_view(reinterpret_cast<const float*>(buf.data()), rows, cols);
    }
    std::vector<uint8_t>& data = storage_.emplace_back(static_cast<size_t>(rows * cols / 2));
    std::vector<uint8_t>& scales = storage_.emplace_back(static_cast<size_t>(rows * cols / 32));
    for (auto& b : data) b = static_cast<uint8_t>((uniform() + 1.0f) * 127.9f);
    for (auto& b : scales) b = static_cast<uint8_t>(122 + static_cast<int>((uniform() + 1.0f) * 1.9f));
    kernels::MatWeight w;
    w.format = kernels::WeightFormat::kMXFP4;
    w.num_rows = rows;
    w.num_cols = cols;
    w.row_bytes = cols / 2;
    w.data = data.data();
    w.block_scales = scales.data();
    w.scale_row_bytes = cols / 32;
    return w;
  }

  // Row n of W in fp32, decoded by the formats layer (the reference codec).
  static std::vector<float> row_of(const kernels::MatWeight& w, int64_t n) {
    std::vector<float> out(static_cast<size_t>(w.num_cols));
    if (w.format == kernels::WeightFormat::kF32) {
      std::memcpy(out.data(), w.data + n * w.row_bytes, out.size() * 4);
      return out;
    }
    const formats::BlockFormat& f = *formats::find_block_format("mxfp4");
    auto layout = formats::tensor_layout(f, w.num_rows, w.num_cols);
    formats::dequantize_row(f, *layout, w.data + n * w.row_bytes, w.block_scales + n * w.scale_row_bytes,
                            1.0f, out.data());
    return out;
  }

  static std::vector<double> matvec(const kernels::MatWeight& w, const float* x) {
    std::vector<double> y(static_cast<size_t>(w.num_rows));
    for (int64_t n = 0; n < w.num_rows; ++n) {
      const std::vector<float> row = row_of(w, n);
      double s = 0;
      for (int64_t k = 0; k < w.num_cols; ++k) s += static_cast<double>(row[static_cast<size_t>(k)]) * x[k];
      y[static_cast<size_t>(n)] = s;
    }
    return y;
  }

  // moe(h) for one token whose chosen experts and weights the caller gives.
  std::vector<double> reference(const float* h, const int32_t* ids, const double* weights) const {
    std::vector<double> out(kHidden, 0.0);
    for (int64_t j = 0; j < kTopK; ++j) {
      const model::ExpertWeights& ex = layer_.experts[static_cast<size_t>(ids[j])];
      std::vector<float> act(kInter);
      if (kind_ == model::MoeKind::kGptOss) {
        const std::vector<double> gu = matvec(ex.gate_up, h);
        for (int64_t i = 0; i < kInter; ++i) {
          const double g =
              std::min(gu[static_cast<size_t>(2 * i)] + ex.gate_up_bias[static_cast<size_t>(2 * i)], 7.0);
          const double u =
              std::clamp(gu[static_cast<size_t>(2 * i + 1)] + ex.gate_up_bias[static_cast<size_t>(2 * i + 1)],
                         -7.0, 7.0);
          act[static_cast<size_t>(i)] = static_cast<float>((u + 1.0) * g / (1.0 + std::exp(-1.702 * g)));
        }
      } else {
        const std::vector<double> g = matvec(ex.gate, h), u = matvec(ex.up, h);
        for (int64_t i = 0; i < kInter; ++i) {
          const double gi = g[static_cast<size_t>(i)];
          act[static_cast<size_t>(i)] =
              static_cast<float>(gi / (1.0 + std::exp(-gi)) * u[static_cast<size_t>(i)]);
        }
      }
      const std::vector<double> y = matvec(ex.down, act.data());
      for (int64_t c = 0; c < kHidden; ++c) {
        const double b = ex.down_bias.empty() ? 0.0 : ex.down_bias[static_cast<size_t>(c)];
        out[static_cast<size_t>(c)] += weights[j] * (y[static_cast<size_t>(c)] + b);
      }
    }
    return out;
  }

  model::MoeKind kind_{};
  model::ModelConfig config_;
  const kernels::KernelTable* table_ = nullptr;
  std::vector<float> router_;
  model::MoeLayerWeights layer_;
  std::vector<std::vector<uint8_t>> storage_;
  uint64_t seed_ = 12345;
};

// A batch of T tokens whose routes cover a set S of experts reads exactly |S| experts' bytes (each
// once, however many of the T tokens chose it), and every token's output matches the oracle.
TEST_P(MoeBlockTest, ReadsEachChosenExpertOnceAndMatchesReference) {
  const int64_t num_tokens = std::get<1>(GetParam());
  model::LoadOptions options;
  options.max_batch_tokens = num_tokens;
  base::ThreadPool pool(2);
  model::MoeBlock block(config_, options, kind_, pool.num_threads());
  // Token t picks experts a = (t % 3) and b = 3 + (t % 2) (logits 2 and 1): S = {0,1,2,3,4}
  // once T >= 3, fewer for smaller batches. Columns >= E carry random values.
  std::vector<float> h(static_cast<size_t>(num_tokens * kHidden));
  std::vector<int32_t> ids(static_cast<size_t>(num_tokens * kTopK));
  std::set<int32_t> chosen;
  for (int64_t t = 0; t < num_tokens; ++t) {
    float* row = h.data() + t * kHidden;
    for (int64_t c = kExperts; c < kHidden; ++c) row[c] = uniform();
    const auto a = static_cast<int32_t>(t % 3), b = static_cast<int32_t>(3 + t % 2);
    row[a] = 2.0f;
    row[b] = 1.0f;
    ids[static_cast<size_t>(t * kTopK)] = a;
    ids[static_cast<size_t>(t * kTopK + 1)] = b;
    chosen.insert(a);
    chosen.insert(b);
  }
  std::vector<float> x(h.size(), 0.0f);
  block.forward(layer_, *table_, pool, h.data(), num_tokens, x.data());

  const auto num_chosen = static_cast<uint64_t>(chosen.size());
  // Bytes of one expert by the spec: MXFP4 is 16 bytes + 1 scale per 32 weights; F32 4 per weight.
  const double per_weight = kind_ == model::MoeKind::kGptOss ? 17.0 / 32.0 : 4.0;
  const auto one_expert = static_cast<uint64_t>(3 * kHidden * kInter * per_weight);
  EXPECT_EQ(block.stats().experts_run, num_chosen);
  EXPECT_EQ(block.stats().expert_bytes_read, num_chosen * one_expert);
  EXPECT_EQ(block.stats().expert_tokens, static_cast<uint64_t>(num_tokens * kTopK));
  const uint64_t matrices = kind_ == model::MoeKind::kGptOss ? 2 : 3;
  EXPECT_EQ(block.stats().expert_matrix_reads, num_chosen * matrices);

  // Routing weights: gpt-oss softmax over the two chosen logits (2, 1); Qwen3-MoE softmax over all
  // eight then renormalised over the two, which is the same pair.
  const double w0 = 1.0 / (1.0 + std::exp(-1.0));
  const double weights[kTopK] = {w0, 1.0 - w0};
  double max_abs = 0.0, max_diff = 0.0;
  for (int64_t t = 0; t < num_tokens; ++t) {
    const std::vector<double> want = reference(h.data() + t * kHidden, ids.data() + t * kTopK, weights);
    for (int64_t c = 0; c < kHidden; ++c) {
      max_abs = std::max(max_abs, std::fabs(want[static_cast<size_t>(c)]));
      max_diff = std::max(max_diff,
                          std::fabs(want[static_cast<size_t>(c)] - x[static_cast<size_t>(t * kHidden + c)]));
    }
  }
  ASSERT_GT(max_abs, 0.0);
  // Table ISAs that round activations to BF16 / int8 are within ~1e-2 relative; fp32 ISAs ~1e-6.
  EXPECT_LE(max_diff, 2e-2 * max_abs) << "max|ref| " << max_abs;
}

INSTANTIATE_TEST_SUITE_P(
    KindsAndBatches, MoeBlockTest,
    ::testing::Combine(::testing::Values(model::MoeKind::kGptOss, model::MoeKind::kQwen3Moe),
                       ::testing::Values<int64_t>(1, 2, 5, 48)),
    [](const auto& param_info) {
      return std::string(std::get<0>(param_info.param) == model::MoeKind::kGptOss ? "GptOss" : "Qwen3Moe") +
             "_T" + std::to_string(std::get<1>(param_info.param));
    });

}  // namespace
}  // namespace nibble
