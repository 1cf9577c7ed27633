// `nibble plan`'s memory against what nibble itself allocates. Two independent sources per model:
// the engine's own report after loading (the weights as the loader holds them, the KV pool it
// allocated for `concurrency` sequences of `context` tokens) and plan's arithmetic from
// config.json alone. The bar: within 3 %.
//
// gpt-oss-120b is too big to write, so its tensor list comes from make-model's layout table
// (model::random_checkpoint_layout: the names, shapes and dtypes the loader reads, checked here
// against a loaded tiny gpt-oss) and is compared with plan's bytes per group, within 1 %.
#include <gtest/gtest.h>

#include <algorithm>

#include <cmath>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "engine/llm_engine.h"
#include "model/random_checkpoint.h"
#include "model_test_util.h"
#include "plan/estimate.h"
#include "plan/model_shape.h"
#include "quant/quantize.h"

namespace nibble {
namespace {

using testing_util::TempDir;

constexpr int64_t kContext = 100;  // not a multiple of the 16-token KV block
constexpr int64_t kConcurrency = 3;
constexpr double kGiB = 1073741824.0;

plan::DeviceProfile big_device() {
  plan::DeviceProfile d;
  d.name = "big";
  d.memory_bytes = d.usable_memory_bytes = 1e15;
  d.bandwidth_bytes_per_s = 1e12;
  d.peak_bf16_flops = 1e15;
  d.decode_efficiency = d.prefill_efficiency = 1;
  return d;
}

struct Case {
  std::string name;
  std::string arch;
  std::string preset;
  std::string quant;        // "" or nibble quantize's --format
  int64_t num_experts = 0;  // 0: the preset's
};

void PrintTo(const Case& c, std::ostream* os) {
  *os << c.name;
}

class PlanVsEngine : public ::testing::TestWithParam<Case> {};

TEST_P(PlanVsEngine, WeightsAndKvWithinThreePercent) {
  const Case& c = GetParam();
  TempDir tmp("plan_engine");
  model::RandomModelSpec spec;
  spec.arch = c.arch;
  spec.preset = c.preset;
  if (c.num_experts > 0) spec.num_experts = c.num_experts;
  const std::string bf16_dir = tmp / "bf16";
  ASSERT_TRUE(model::write_random_checkpoint(bf16_dir, spec).ok());
  std::string dir = bf16_dir;
  if (!c.quant.empty()) {
    quant::QuantizeSpec q;
    q.format = c.quant;
    q.progress = false;
    q.num_threads = 1;
    dir = tmp / c.quant;
    auto report = quant::quantize_checkpoint(bf16_dir, dir, q);
    ASSERT_TRUE(report.ok()) << report.status().message();
  }

  // The engine: a fixed pool capped at what kConcurrency x kContext can use, on a machine that
  // claims plenty of memory (so the cap, not the machine, sizes it).
  engine::EngineArgs args;
  args.max_num_seqs = kConcurrency;
  args.max_model_len = kContext;
  args.kv_cache = "1TiB";
  args.safety_margin_bytes = 0;
  args.num_threads = 1;
  args.memory_probe = [] {
    engine::MemoryInfo m;
    m.mem_total_bytes = m.mem_available_bytes = int64_t{4} << 40;
    return base::Result<engine::MemoryInfo>(m);
  };
  auto eng = engine::LlmEngine::create(dir, args);
  ASSERT_TRUE(eng.ok()) << eng.status().message();
  const engine::EngineMemoryReport actual = (*eng)->memory_report();

  // plan, from config.json alone.
  auto shape = plan::load_model_shape(dir);
  ASSERT_TRUE(shape.ok()) << shape.status().message();
  plan::PlanOptions o;
  o.context_tokens = kContext;
  o.concurrency = kConcurrency;
  auto e = plan::estimate(*shape, big_device(), o);
  ASSERT_TRUE(e.ok()) << e.status().message();

  const double w_plan = static_cast<double>(e->memory.weight_bytes);
  const double w_real = static_cast<double>(actual.weight_bytes);
  const double kv_plan = static_cast<double>(e->memory.kv_bytes);
  const double kv_real = static_cast<double>(actual.kv_allocated_bytes);
  std::printf("%-22s weights plan %10.0f engine %10.0f (%+.2f%%)   kv plan %9.0f engine %9.0f (%+.2f%%)\n",
              c.name.c_str(), w_plan, w_real, 100 * (w_plan / w_real - 1), kv_plan, kv_real,
              100 * (kv_plan / kv_real - 1));
  EXPECT_LE(std::fabs(w_plan - w_real), 0.03 * w_real) << "weights";
  EXPECT_LE(std::fabs(kv_plan - kv_real), 0.03 * kv_real) << "kv";
  // The engine's figure is per token of one block, and a block holds the layers of one KV cache
  // group: all layers, or (full + sliding-window models) the larger group's.
  const int64_t per_block_token = e->kv.bytes_per_token_sliding > 0
                                      ? std::max(e->kv.bytes_per_token_full, e->kv.bytes_per_token_sliding)
                                      : e->kv.bytes_per_token_full;
  EXPECT_EQ(per_block_token, actual.kv_bytes_per_token);
}

INSTANTIATE_TEST_SUITE_P(Models, PlanVsEngine,
                         ::testing::Values(Case{"qwen3_tiny", "qwen3", "tiny", ""},
                                           Case{"qwen3_small", "qwen3", "small", ""},
                                           Case{"llama_tiny", "llama", "tiny", ""},
                                           Case{"llama_small", "llama", "small", ""},
                                           Case{"qwen3_moe_tiny", "qwen3-moe", "tiny", ""},
                                           Case{"qwen3_moe_small", "qwen3-moe", "small", "", 8},
                                           Case{"gpt_oss_tiny", "gpt-oss", "tiny", ""},
                                           Case{"gpt_oss_small", "gpt-oss", "small", "", 8},
                                           Case{"qwen3_small_nvfp4", "qwen3", "small", "nvfp4"},
                                           Case{"qwen3_small_mxfp4", "qwen3", "small", "mxfp4"},
                                           Case{"qwen3_small_fp8", "qwen3", "small", "fp8"},
                                           Case{"llama_small_nvfp4", "llama", "small", "nvfp4"},
                                           Case{"qwen3_moe_tiny_nvfp4", "qwen3-moe", "tiny", "nvfp4"},
                                           Case{"qwen3_moe_tiny_mxfp4", "qwen3-moe", "tiny", "mxfp4"}),
                         [](const auto& param_info) { return param_info.param.name; });

// Tensors nibble's loader reads into fp32 copies (WeightLoader::vector / floats): norms, biases,
// sinks. Everything else is used where it is mapped.
bool copied_to_f32(const std::string& name) {
  auto ends = [&](const std::string& s) {
    return name.size() >= s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0;
  };
  return ends("norm.weight") || ends("bias") || ends("sinks");
}

// Bytes the loader holds for a layout: every tensor mapped, plus fp32 copies of the vectors.
int64_t held_bytes(const model::RandomCheckpointLayout& layout) {
  int64_t total = 0;
  for (const auto& t : layout.tensors) {
    total += static_cast<int64_t>(t.num_bytes);
    if (copied_to_f32(t.name)) {
      int64_t n = 1;
      for (int64_t d : t.shape) n *= d;
      total += 4 * n;
    }
  }
  return total;
}

TEST(PlanGptOss, LayoutTableIsWhatTheLoaderHolds) {
  // The layout table against a real load: a tiny gpt-oss written from the same table.
  model::RandomModelSpec spec;
  spec.arch = "gpt-oss";
  spec.preset = "tiny";
  auto layout = model::random_checkpoint_layout(spec);
  ASSERT_TRUE(layout.ok()) << layout.status().message();
  TempDir tmp("plan_gpt_oss");
  ASSERT_TRUE(model::write_random_checkpoint(tmp.path(), spec).ok());
  engine::EngineArgs args;
  args.max_num_seqs = 1;
  args.max_model_len = 64;
  args.num_threads = 1;
  auto eng = engine::LlmEngine::create(tmp.path(), args);
  ASSERT_TRUE(eng.ok()) << eng.status().message();
  EXPECT_EQ((*eng)->memory_report().weight_bytes, held_bytes(*layout));
}

plan::Group group_of(const std::string& name) {
  if (name == "model.embed_tokens.weight") return plan::Group::kEmbedding;
  if (name == "lm_head.weight") return plan::Group::kLmHead;
  if (name.find(".mlp.experts.") != std::string::npos) return plan::Group::kExperts;
  if (name.find(".mlp.router.") != std::string::npos) return plan::Group::kRouter;
  if (name.find(".self_attn.") != std::string::npos) return plan::Group::kAttention;
  return plan::Group::kNorm;
}

TEST(PlanGptOss, Gpt120bWeightsMatchTheLoaderTensorList) {
  // gpt-oss-120b's shapes (../shared/docs/formats.md §3.3; tests/golden/plan/gpt-oss-120b/config.json
  // is the published config.json) through make-model's gpt-oss table.
  model::RandomModelSpec spec;
  spec.arch = "gpt-oss";
  spec.preset = "small";
  spec.hidden_size = 2880;
  spec.num_hidden_layers = 36;
  spec.num_attention_heads = 64;
  spec.num_key_value_heads = 8;
  spec.head_dim = 64;
  spec.intermediate_size = 2880;
  spec.vocab_size = 201088;
  spec.num_experts = 128;
  spec.num_experts_per_tok = 4;
  spec.tie_word_embeddings = false;
  auto layout = model::random_checkpoint_layout(spec);
  ASSERT_TRUE(layout.ok()) << layout.status().message();

  // The table's config describes the same model as the published one.
  const std::string golden = std::string(NIBBLE_SOURCE_DIR) + "/tests/golden/plan/gpt-oss-120b";
  auto real = plan::load_model_shape(golden);
  ASSERT_TRUE(real.ok()) << real.status().message();
  auto made = plan::parse_model_config(nlohmann::json::parse(layout->config_text), "layout config.json");
  ASSERT_TRUE(made.ok()) << made.status().message();
  EXPECT_EQ(made->hidden_size, real->hidden_size);
  EXPECT_EQ(made->num_layers, real->num_layers);
  EXPECT_EQ(made->num_heads, real->num_heads);
  EXPECT_EQ(made->num_kv_heads, real->num_kv_heads);
  EXPECT_EQ(made->head_dim, real->head_dim);
  EXPECT_EQ(made->vocab_size, real->vocab_size);
  EXPECT_EQ(made->moe.num_experts, real->moe.num_experts);
  EXPECT_EQ(made->moe.num_experts_per_tok, real->moe.num_experts_per_tok);
  EXPECT_EQ(made->moe.expert_intermediate, real->moe.expert_intermediate);
  EXPECT_EQ(made->sliding_window, real->sliding_window);
  EXPECT_EQ(made->layer_is_sliding, real->layer_is_sliding);

  std::map<plan::Group, int64_t> table_bytes;
  int64_t table_total = 0;
  for (const auto& t : layout->tensors) {
    table_bytes[group_of(t.name)] += static_cast<int64_t>(t.num_bytes);
    table_total += static_cast<int64_t>(t.num_bytes);
  }
  auto e = plan::estimate(*real, big_device(), plan::PlanOptions{});
  ASSERT_TRUE(e.ok()) << e.status().message();
  std::map<plan::Group, int64_t> plan_bytes;
  for (const plan::WeightGroupBytes& g : e->weight_groups) plan_bytes[g.group] += g.bytes;
  for (plan::Group g : {plan::Group::kEmbedding, plan::Group::kAttention, plan::Group::kRouter,
                        plan::Group::kExperts, plan::Group::kLmHead}) {
    const double want = static_cast<double>(table_bytes[g]);
    EXPECT_LE(std::fabs(static_cast<double>(plan_bytes[g]) - want), 0.01 * want) << plan::group_name(g);
  }
  const double held = static_cast<double>(held_bytes(*layout));
  std::printf(
      "gpt-oss-120b: table %.3f GiB (held by the loader %.3f GiB), plan %.3f GiB (with copies %.3f GiB)\n",
      table_total / kGiB, held / kGiB, e->weight_bytes / kGiB, e->memory.weight_bytes / kGiB);
  EXPECT_LE(std::fabs(static_cast<double>(e->weight_bytes) - table_total), 0.01 * table_total);
  EXPECT_LE(std::fabs(static_cast<double>(e->memory.weight_bytes) - held), 0.01 * held);
  // The bar: 60-61 GiB (../shared/docs/devices.md: 59.0 GiB as llama.cpp's GGUF, ~61 GB
  // resident in vLLM).
  EXPECT_GE(table_total / kGiB, 60.0);
  EXPECT_LE(table_total / kGiB, 61.0);
  EXPECT_GE(e->weight_bytes / kGiB, 60.0);
  EXPECT_LE(e->weight_bytes / kGiB, 61.0);
}

}  // namespace
}  // namespace nibble
