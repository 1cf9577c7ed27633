// Roofline arithmetic against hand-computed values, and the probes' invariants.
#include "bench/roofline.h"

#include <gtest/gtest.h>

#include <vector>

namespace nibble::bench {
namespace {

TEST(RooflineTest, TokenCostOfQwen3_0_6B) {
  model::ModelConfig c;
  c.vocab_size = 151936;
  c.hidden_size = 1024;
  c.intermediate_size = 3072;
  c.num_hidden_layers = 28;
  c.num_attention_heads = 16;
  c.num_key_value_heads = 8;
  c.head_dim = 128;
  const TokenCost cost = token_cost(c);
  // Per layer: q 1024x2048, k and v 1024x1024 each, o 2048x1024, gate/up/down 3 x 1024x3072.
  EXPECT_DOUBLE_EQ(cost.matmul_params, 28.0 * (2097152 + 2 * 1048576 + 2097152 + 3 * 3145728));
  EXPECT_DOUBLE_EQ(cost.lm_head_params, 151936.0 * 1024);
  EXPECT_DOUBLE_EQ(cost.kv_bytes_per_pos, 28.0 * 2 * 1024 * 4);
  EXPECT_DOUBLE_EQ(cost.attn_flops_per_pos, 28.0 * 4 * 2048);
  // 1e9 weight bytes read, 10 positions of context.
  EXPECT_DOUBLE_EQ(decode_bytes_per_token(cost, 1e9, 10.0), 1e9 + 10.0 * cost.kv_bytes_per_pos);
  // Tied: every byte is read; untied: all but the embedding table's share.
  c.tie_word_embeddings = true;
  EXPECT_DOUBLE_EQ(weight_bytes_read_per_token(c, 1e9), 1e9);
  c.tie_word_embeddings = false;
  const double total = cost.matmul_params + 2 * cost.lm_head_params + 1024.0 * 57;
  EXPECT_DOUBLE_EQ(weight_bytes_read_per_token(c, 1e9), 1e9 * (1 - cost.lm_head_params / total));
  // One token: 2 FLOPs per projection weight, attention over itself, the whole lm_head.
  EXPECT_DOUBLE_EQ(prefill_flops_per_token(cost, 1),
                   2 * cost.matmul_params + cost.attn_flops_per_pos + 2 * cost.lm_head_params);
}

// Mixture of experts (Qwen3-30B-A3B shapes): a token multiplies the router and its top-8 experts,
// the checkpoint stores all 128; a layer in mlp_only_layers stays dense.
TEST(RooflineTest, TokenCostOfMoeCountsActiveExperts) {
  model::ModelConfig c;
  c.vocab_size = 151936;
  c.hidden_size = 2048;
  c.intermediate_size = 6144;
  c.num_hidden_layers = 3;
  c.num_attention_heads = 32;
  c.num_key_value_heads = 4;
  c.head_dim = 128;
  c.moe.num_experts = 128;
  c.moe.num_experts_per_tok = 8;
  c.moe.expert_intermediate_size = 768;
  c.moe.mlp_only_layers = {1};
  const TokenCost cost = token_cost(c);
  // Attention: q 2048x4096, k and v 2048x512 each, o 4096x2048.
  const double attn = 2.0 * 2048 * 4096 + 2.0 * 2048 * 512;
  const double expert = 3.0 * 2048 * 768, router = 128.0 * 2048, dense = 3.0 * 2048 * 6144;
  EXPECT_DOUBLE_EQ(cost.matmul_params, 3 * attn + 2 * (router + 8 * expert) + dense);
  EXPECT_DOUBLE_EQ(cost.stored_matmul_params, 3 * attn + 2 * (router + 128 * expert) + dense);
}

TEST(RooflineTest, ProbesOfEveryIsaDoTheirWork) {
  for (const auto& info : kernels::known_isas()) {
    if (!info.supported()) continue;
    auto table = kernels::make_kernel_table(info.name);
    ASSERT_TRUE(table.ok());
    std::vector<float> x(1003);
    for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i % 7);
    double expect = 0;
    for (float v : x) expect += v;
    EXPECT_FLOAT_EQ(table->read_probe(x.data(), static_cast<int64_t>(x.size())), static_cast<float>(expect))
        << info.name;
    float sink = 0;
    const double flops = table->fma_probe(1000, &sink);
    EXPECT_GT(flops, 1000.0 * 2) << info.name;
    EXPECT_GT(sink, 0.0f) << info.name;
    base::ThreadPool pool(2);
    EXPECT_GT(measure_read_bandwidth(*table, pool, int64_t{1} << 20, 1), 0.0) << info.name;
  }
}

}  // namespace
}  // namespace nibble::bench
