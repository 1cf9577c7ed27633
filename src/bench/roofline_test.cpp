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
