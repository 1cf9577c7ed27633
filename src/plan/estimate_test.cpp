// The estimator's arithmetic against hand computation and invariants.
#include "plan/estimate.h"

#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

namespace nibble::plan {
namespace {

using nlohmann::json;

ModelShape parse(const json& config) {
  auto shape = parse_model_config(config, "test.json");
  EXPECT_TRUE(shape.ok()) << shape.status().message();
  return *shape;
}

json tiny_dense() {
  return {{"architectures", {"LlamaForCausalLM"}},
          {"hidden_size", 256},
          {"intermediate_size", 512},
          {"num_hidden_layers", 4},
          {"num_attention_heads", 8},
          {"num_key_value_heads", 2},
          {"vocab_size", 1000},
          {"max_position_embeddings", 4096}};
}

// A device whose compute is so fast that every step is memory-bound.
DeviceProfile memory_bound_device() {
  DeviceProfile d;
  d.name = "test";
  d.kind = DeviceKind::kGpuDiscrete;
  d.memory_bytes = d.usable_memory_bytes = 1e9;
  d.bandwidth_bytes_per_s = 100e9;
  d.peak_bf16_flops = 1e30;
  d.link_bytes_per_s = 10e9;
  d.link_latency_s = 1e-5;
  d.decode_efficiency = 0.5;
  d.prefill_efficiency = 0.5;
  d.memory_margin_fraction = 0.1;
  d.runtime_overhead_bytes = 1e6;
  return d;
}

TEST(Experts, ExpectedDistinctExperts) {
  EXPECT_DOUBLE_EQ(expected_distinct_experts(128, 4, 1), 4.0);
  EXPECT_DOUBLE_EQ(expected_distinct_experts(128, 4, 0), 0.0);
  EXPECT_DOUBLE_EQ(expected_distinct_experts(8, 8, 3), 8.0);
  EXPECT_NEAR(expected_distinct_experts(128, 4, 16), 128 * (1 - std::pow(1 - 4.0 / 128, 16)), 1e-9);
  EXPECT_NEAR(expected_distinct_experts(128, 4, 100000), 128.0, 1e-9);
}

TEST(KvCache, GqaSlidingAndMla) {
  json c = tiny_dense();
  const ModelShape dense = parse(c);
  const KvLayout kv = kv_layout(dense, kReferenceKv);
  EXPECT_EQ(kv.bytes_per_token_full, 4 * 2 * 2 * 32 * 2);  // layers × (K,V) × kv heads × head_dim × 2 B
  EXPECT_EQ(kv.bytes_per_sequence(100), 100 * kv.bytes_per_token_full);
  EXPECT_EQ(kv_layout(dense, KvRuntime{KvDtype::kFp8, true, 1}).bytes_per_token_full,
            kv.bytes_per_token_full / 2);

  c["layer_types"] = {"sliding_attention", "full_attention", "sliding_attention", "full_attention"};
  c["sliding_window"] = 16;
  const KvLayout swa = kv_layout(parse(c), kReferenceKv);
  EXPECT_EQ(swa.bytes_per_token_full, 2 * 256);
  EXPECT_EQ(swa.bytes_per_token_sliding, 2 * 256);
  EXPECT_EQ(swa.bytes_per_sequence(10), 10 * 512 + 10 * 512);
  EXPECT_EQ(swa.bytes_per_sequence(1000), 1000 * 512 + 16 * 512);

  const json mla = {{"architectures", {"DeepseekV3ForCausalLM"}},
                    {"hidden_size", 128},
                    {"intermediate_size", 256},
                    {"num_hidden_layers", 3},
                    {"num_attention_heads", 4},
                    {"vocab_size", 100},
                    {"kv_lora_rank", 64},
                    {"q_lora_rank", 32},
                    {"qk_nope_head_dim", 16},
                    {"qk_rope_head_dim", 8},
                    {"v_head_dim", 16},
                    {"n_routed_experts", 4},
                    {"num_experts_per_tok", 2},
                    {"moe_intermediate_size", 32},
                    {"first_k_dense_replace", 1},
                    {"n_shared_experts", 1}};
  const KvLayout latent = kv_layout(parse(mla), kReferenceKv);
  EXPECT_TRUE(latent.mla);
  EXPECT_EQ(latent.bytes_per_token_full, 3 * (64 + 8) * 2);
}

TEST(KvCache, NibbleEngineLayout) {
  // engine/llm_engine.cpp: fp32 K and V for every layer, whole 16-token blocks; a sliding-window
  // layer holds its window's blocks plus the partial one the window starts in.
  json c = tiny_dense();
  c["layer_types"] = {"sliding_attention", "full_attention", "sliding_attention", "full_attention"};
  c["sliding_window"] = 16;
  const KvLayout kv = kv_layout(parse(c), kNibbleKv);
  EXPECT_EQ(kv.bytes_per_token_full + kv.bytes_per_token_sliding, 4 * 2 * 2 * 32 * 4);
  // 2 full layers x 63 blocks of 16, 2 sliding layers x (16 + 16) tokens.
  EXPECT_EQ(kv.bytes_per_sequence(1000), (2 * 1008 + 2 * 32) * 2 * 2 * 32 * 4);
  EXPECT_EQ(kv.bytes_per_sequence(16), 16 * 4 * 2 * 2 * 32 * 4);
}

TEST(Estimate, MemoryAddsUpAndLimitsAreTight) {
  const ModelShape m = parse(tiny_dense());
  const DeviceProfile d = memory_bound_device();
  PlanOptions o;
  o.context_tokens = 1024;
  o.concurrency = 3;
  auto e = estimate(m, d, o);
  ASSERT_TRUE(e.ok()) << e.status().message();
  const MemoryPlan& p = e->memory;
  EXPECT_DOUBLE_EQ(p.budget_bytes, 0.9e9);
  EXPECT_NEAR(p.free_bytes + p.weight_bytes + p.kv_bytes + p.activation_bytes + p.overhead_bytes,
              p.budget_bytes, 1);
  EXPECT_EQ(p.kv_bytes, 3 * 1024 * e->kv.bytes_per_token_full);
  EXPECT_EQ(p.weight_bytes, e->weight_bytes + e->loader_copy_bytes);
  ASSERT_TRUE(e->fits);

  // The largest context fits and one more token does not.
  PlanOptions at_max = o;
  at_max.context_tokens = e->max_context_at_concurrency;
  EXPECT_TRUE(estimate(m, d, at_max)->fits);
  at_max.context_tokens += 1;
  EXPECT_FALSE(estimate(m, d, at_max)->fits);
  PlanOptions wide = o;
  wide.concurrency = e->max_concurrency_at_context;
  EXPECT_TRUE(estimate(m, d, wide)->fits);
  wide.concurrency += 1;
  EXPECT_FALSE(estimate(m, d, wide)->fits);
  EXPECT_EQ(e->min_nodes, 1);
}

TEST(Estimate, DecodeRooflineByHand) {
  const ModelShape m = parse(tiny_dense());
  const DeviceProfile d = memory_bound_device();
  PlanOptions o;
  o.context_tokens = 100;
  o.format = FormatChoice::kBf16;
  auto e = estimate(m, d, o);
  ASSERT_TRUE(e.ok());
  // Bytes per step: all weights but the embedding table, one embedding row, the KV of 100 tokens.
  const double embed = 1000.0 * 256 * 2;
  const double bytes =
      static_cast<double>(e->weight_bytes) - embed + 256 * 2 + 100.0 * e->kv.bytes_per_token_full;
  EXPECT_NEAR(e->speed.decode_bytes_per_step, bytes, 1);
  EXPECT_NEAR(e->speed.decode_tok_s_per_stream, 100e9 * 0.5 / bytes, 1e-6);
  EXPECT_FALSE(e->speed.decode_compute_bound);

  // Compute-bound once the peak is tiny: FLOPs = 2 × active params + attention.
  DeviceProfile slow = d;
  slow.peak_bf16_flops = 1e9;
  auto c = estimate(m, slow, o);
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->speed.decode_compute_bound);
  const double attn = 4.0 * 8 * 32 * 100 * 4;  // 4·heads·head_dim·keys per layer × 4 layers
  const double flops = 2.0 * static_cast<double>(c->active_params_per_token) + attn;
  EXPECT_NEAR(c->speed.decode_flops_per_step, flops, 1);
  EXPECT_NEAR(c->speed.decode_tok_s_per_stream, 1e9 * 0.5 / flops, 1e-9);
}

TEST(Estimate, NodesSplitWeightsAndAddLinkTime) {
  const ModelShape m = parse(tiny_dense());
  const DeviceProfile d = memory_bound_device();
  PlanOptions o;
  o.nodes = 2;
  auto e = estimate(m, d, o);
  ASSERT_TRUE(e.ok());
  ASSERT_TRUE(e->tensor_parallel && e->pipeline_parallel);
  EXPECT_EQ(e->tensor_parallel->memory.weight_bytes, (e->weight_bytes + e->loader_copy_bytes + 1) / 2);
  EXPECT_EQ(e->tensor_parallel->memory.kv_bytes, e->memory.kv_bytes / 2);  // 2 KV heads over 2 nodes
  EXPECT_EQ(e->pipeline_parallel->memory.weight_bytes, (e->weight_bytes + e->loader_copy_bytes + 1) / 2);
  // Tensor parallel: 2 all-reduces per layer of hidden × 2 B each.
  const double ar = 1e-5 + 2.0 * 1 / 2 * 256 * 2 / 10e9;
  EXPECT_NEAR(e->tensor_parallel->speed.comm_s_per_step, 4 * 2 * ar, 1e-12);
  EXPECT_GT(e->tensor_parallel->speed.decode_tok_s_per_stream, e->speed.decode_tok_s_per_stream);
  // Pipeline parallel at batch 1 is no faster than one device.
  EXPECT_LT(e->pipeline_parallel->speed.decode_tok_s_per_stream, e->speed.decode_tok_s_per_stream);

  DeviceProfile no_link = d;
  no_link.link_bytes_per_s = 0;
  EXPECT_FALSE(estimate(m, no_link, o).ok());
}

TEST(Estimate, RejectsBadOptions) {
  const ModelShape m = parse(tiny_dense());
  const DeviceProfile d = memory_bound_device();
  for (auto mutate :
       {+[](PlanOptions& o) { o.context_tokens = 0; }, +[](PlanOptions& o) { o.concurrency = -1; },
        +[](PlanOptions& o) { o.nodes = 0; }, +[](PlanOptions& o) { o.nodes = 1000; },
        +[](PlanOptions& o) { o.prefill_chunk_tokens = 0; }}) {
    PlanOptions o;
    mutate(o);
    const auto e = estimate(m, d, o);
    ASSERT_FALSE(e.ok());
    EXPECT_EQ(e.status().code(), base::ErrorCode::kInvalidArgument);
  }
}

TEST(Estimate, MoeReadsOnlyTheTouchedExperts) {
  const json c = {{"architectures", {"Qwen3MoeForCausalLM"}},
                  {"hidden_size", 128},
                  {"num_hidden_layers", 2},
                  {"num_attention_heads", 4},
                  {"num_key_value_heads", 2},
                  {"head_dim", 32},
                  {"vocab_size", 100},
                  {"num_experts", 16},
                  {"num_experts_per_tok", 2},
                  {"moe_intermediate_size", 64}};
  const ModelShape m = parse(c);
  const DeviceProfile d = memory_bound_device();
  PlanOptions one;
  one.context_tokens = 1;
  one.format = FormatChoice::kBf16;
  PlanOptions many = one;
  many.concurrency = 8;
  auto a = estimate(m, d, one);
  auto b = estimate(m, d, many);
  ASSERT_TRUE(a.ok() && b.ok());
  const double experts = 2.0 * 16 * 3 * 64 * 128 * 2;  // layers × E × 3 matrices × 2 B
  const double kv1 = static_cast<double>(a->kv.bytes_per_token_full);
  const double rest_a = a->speed.decode_bytes_per_step - experts * 2 / 16 - 128 * 2 - kv1;
  const double rest_b = b->speed.decode_bytes_per_step - experts * expected_distinct_experts(16, 2, 8) / 16 -
                        8 * 128 * 2 - 8 * kv1;
  EXPECT_NEAR(rest_a, rest_b, 1e-3);  // everything else is read once per step
  EXPECT_GT(rest_a, 0);
}

}  // namespace
}  // namespace nibble::plan
