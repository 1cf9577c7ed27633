#include "engine/memory_policy.h"

#include <gtest/gtest.h>

namespace nibble::engine {
namespace {

constexpr int64_t kGiB = int64_t{1} << 30;
constexpr int64_t kMiB = int64_t{1} << 20;

TEST(KvCacheFlag, ParsesAutoSizesAndFractions) {
  EXPECT_EQ(parse_kv_cache_flag("auto")->mode, KvCacheMode::kAuto);
  EXPECT_EQ(parse_kv_cache_flag(" AUTO ")->mode, KvCacheMode::kAuto);
  auto s = parse_kv_cache_flag("8GiB");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->mode, KvCacheMode::kSize);
  EXPECT_EQ(s->size_bytes, 8 * kGiB);
  EXPECT_EQ(parse_kv_cache_flag("512M")->size_bytes, 512 * kMiB);
  EXPECT_EQ(parse_kv_cache_flag("1.5g")->size_bytes, 3 * kGiB / 2);
  EXPECT_EQ(parse_kv_cache_flag("100MB")->size_bytes, 100'000'000);
  EXPECT_EQ(parse_kv_cache_flag("2 GB")->size_bytes, 2'000'000'000);
  auto f = parse_kv_cache_flag("0.6");
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->mode, KvCacheMode::kFraction);
  EXPECT_DOUBLE_EQ(f->fraction, 0.6);
  EXPECT_DOUBLE_EQ(parse_kv_cache_flag("60%")->fraction, 0.6);
  EXPECT_DOUBLE_EQ(parse_kv_cache_flag("1")->fraction, 1.0);
  for (const char* bad : {"", "fast", "0", "1.5", "2048", "-1G", "8XB", "1..2G", "150%", "0%", ".", "G"}) {
    auto r = parse_kv_cache_flag(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), base::ErrorCode::kInvalidArgument) << bad;
      EXPECT_NE(r.status().message().find("--kv-cache"), std::string::npos) << bad;
    }
  }
}

TEST(MemoryInfo, ParsesMeminfoAndCgroups) {
  const char* text =
      "MemTotal:       131072000 kB\n"
      "MemFree:         1000000 kB\n"
      "MemAvailable:   100000000 kB\n"
      "Buffers:          20000 kB\n";
  auto info = parse_meminfo(text);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->mem_total_bytes, int64_t{131072000} * 1024);
  EXPECT_EQ(info->mem_available_bytes, int64_t{100000000} * 1024);
  EXPECT_EQ(info->available_bytes(), int64_t{100000000} * 1024);
  EXPECT_FALSE(parse_meminfo("MemTotal: 5 kB\n").ok());
  EXPECT_EQ(parse_cgroup_bytes("max\n"), std::nullopt);
  EXPECT_EQ(parse_cgroup_bytes("9223372036854771712\n"), std::nullopt);  // cgroup v1 "unlimited"
  EXPECT_EQ(parse_cgroup_bytes("8589934592\n"), 8 * kGiB);
  EXPECT_EQ(parse_cgroup_bytes("garbage"), std::nullopt);
  MemoryInfo limited = *info;
  limited.cgroup_limit_bytes = 8 * kGiB;
  limited.cgroup_usage_bytes = 3 * kGiB;
  EXPECT_EQ(limited.available_bytes(), 5 * kGiB);
  EXPECT_EQ(limited.total_bytes(), 8 * kGiB);
  EXPECT_NE(limited.describe().find("cgroup limit 8.00 GiB"), std::string::npos) << limited.describe();
}

TEST(MemoryInfo, ParsesProcSelfCgroup) {
  const CgroupPaths hybrid =
      parse_proc_self_cgroup("9:name=systemd:/\n4:memory:/process_api/abc\n3:cpu,cpuacct:/x\n0::/\n");
  EXPECT_EQ(hybrid.v1_memory, "/process_api/abc");
  EXPECT_EQ(hybrid.v2, "/");
  const CgroupPaths v2 = parse_proc_self_cgroup("0::/system.slice/nibble.service\n");
  EXPECT_EQ(v2.v2, "/system.slice/nibble.service");
  EXPECT_EQ(v2.v1_memory, std::nullopt);
  const CgroupPaths v1 = parse_proc_self_cgroup("5:cpuacct,memory,cpu:/docker/id:with:colons\n");
  EXPECT_EQ(v1.v1_memory, "/docker/id:with:colons");
  EXPECT_EQ(parse_proc_self_cgroup("garbage\n").v2, std::nullopt);
}

TEST(MemoryInfo, ReadsThisMachine) {
  auto info = read_memory_info();
  ASSERT_TRUE(info.ok()) << info.status().message();
  EXPECT_GT(info->mem_total_bytes, 0);
  EXPECT_GT(info->available_bytes(), 0);
  EXPECT_LE(info->available_bytes(), info->mem_total_bytes);
}

TEST(MemoryPolicy, KvBytesPerToken) {
  // Qwen3-0.6B: 28 layers, 8 KV heads of 128, bf16 -> 112 KiB per token.
  EXPECT_EQ(kv_bytes_per_token(28, 8, 128, 2), 114688);
}

MemoryInfo machine(int64_t total, int64_t available) {
  MemoryInfo m;
  m.mem_total_bytes = total;
  m.mem_available_bytes = available;
  return m;
}

MemoryPolicyConfig qwen_config(KvCacheFlag flag) {
  MemoryPolicyConfig c;
  c.kv_cache = flag;
  c.kv_bytes_per_token = 114688;  // 1.75 MiB per 16-token block
  c.block_size = 16;
  c.max_num_seqs = 32;
  c.max_model_len = 4096;  // 256 blocks = 448 MiB per sequence
  c.chunk_bytes = 256 * kMiB;
  c.safety_margin_bytes = 2 * kGiB;
  return c;
}

TEST(MemoryPolicy, AutoStartsWithOneChunkAndCapsAtUsefulSize) {
  auto plan = plan_kv_cache(qwen_config({}), 1 * kGiB, machine(128 * kGiB, 120 * kGiB));
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  EXPECT_EQ(plan->bytes_per_block, 1835008);
  EXPECT_EQ(plan->chunk_num_blocks, 146);  // 256 MiB / 1.75 MiB
  EXPECT_EQ(plan->initial_num_blocks, 146);
  EXPECT_EQ(plan->min_num_blocks, 146);
  EXPECT_EQ(plan->max_num_blocks, 32 * 256);  // max_num_seqs x max_model_len, not all memory
  EXPECT_TRUE(plan->growable());
  EXPECT_EQ(plan->max_concurrent_tokens(), 32 * 4096);
  EXPECT_NE(plan->describe().find("112.00 KiB per token"), std::string::npos) << plan->describe();
}

TEST(MemoryPolicy, AutoCapIsMemoryBoundWhenMemoryIsShort) {
  // 10 GiB available - 1 GiB weights - 2 GiB margin = 7 GiB = 4096 blocks of 1.75 MiB.
  auto plan = plan_kv_cache(qwen_config({}), 1 * kGiB, machine(16 * kGiB, 10 * kGiB));
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->max_num_blocks, 4096);
  // A cgroup limit lowers it further: 6 GiB - 1 GiB used.
  MemoryInfo limited = machine(16 * kGiB, 10 * kGiB);
  limited.cgroup_limit_bytes = 6 * kGiB;
  limited.cgroup_usage_bytes = 1 * kGiB;
  auto plan2 = plan_kv_cache(qwen_config({}), 1 * kGiB, limited);
  ASSERT_TRUE(plan2.ok());
  EXPECT_EQ(plan2->max_num_blocks, static_cast<int32_t>(2 * kGiB / 1835008));
}

TEST(MemoryPolicy, RefusesWhenWeightsAndOneSequenceDoNotFit) {
  // 4 GiB available: 3.5 GiB weights + 448 MiB KV + 2 GiB margin do not fit.
  const MemoryInfo m = machine(8 * kGiB, 4 * kGiB);
  auto st = check_fits_before_load(qwen_config({}), 3 * kGiB + kGiB / 2, m);
  EXPECT_EQ(st.code(), base::ErrorCode::kResourceExhausted);
  EXPECT_NE(st.message().find("weights 3.50 GiB"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("--max-model-len"), std::string::npos) << st.message();
  EXPECT_TRUE(check_fits_before_load(qwen_config({}), 1 * kGiB, m).ok());
}

TEST(MemoryPolicy, FixedSizeIsCappedAndChecked) {
  KvCacheFlag size{KvCacheMode::kSize, 4 * kGiB, 0.0};
  auto plan = plan_kv_cache(qwen_config(size), 1 * kGiB, machine(128 * kGiB, 120 * kGiB));
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->initial_num_blocks, static_cast<int32_t>(4 * kGiB / 1835008));
  EXPECT_FALSE(plan->growable());
  EXPECT_EQ(plan->min_num_blocks, plan->initial_num_blocks);
  KvCacheFlag huge{KvCacheMode::kSize, 100 * kGiB, 0.0};
  auto capped = plan_kv_cache(qwen_config(huge), 1 * kGiB, machine(128 * kGiB, 120 * kGiB));
  ASSERT_TRUE(capped.ok());
  EXPECT_EQ(capped->initial_num_blocks, 32 * 256);
  auto too_big = plan_kv_cache(qwen_config(huge), 1 * kGiB, machine(64 * kGiB, 50 * kGiB));
  EXPECT_EQ(too_big.status().code(), base::ErrorCode::kResourceExhausted);
  KvCacheFlag tiny{KvCacheMode::kSize, 100 * kMiB, 0.0};  // less than one 4096-token sequence
  EXPECT_EQ(plan_kv_cache(qwen_config(tiny), 1 * kGiB, machine(128 * kGiB, 120 * kGiB)).status().code(),
            base::ErrorCode::kResourceExhausted);
}

TEST(MemoryPolicy, FractionFollowsVllmSemantics) {
  KvCacheFlag frac{KvCacheMode::kFraction, 0, 0.25};
  // 0.25 x 32 GiB = 8 GiB for weights + KV; 1 GiB weights -> 7 GiB KV = 4096 blocks.
  auto plan = plan_kv_cache(qwen_config(frac), 1 * kGiB, machine(32 * kGiB, 30 * kGiB));
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  EXPECT_EQ(plan->initial_num_blocks, 4096);
  // Refused when that much is not free (vLLM's start-up check).
  auto refused = plan_kv_cache(qwen_config(frac), 1 * kGiB, machine(32 * kGiB, 6 * kGiB));
  EXPECT_EQ(refused.status().code(), base::ErrorCode::kResourceExhausted);
}

TEST(MemoryPolicy, DefaultMarginIsFivePercentOrOneGiB) {
  MemoryPolicyConfig c = qwen_config({});
  c.safety_margin_bytes = -1;
  EXPECT_EQ(plan_kv_cache(c, kGiB, machine(128 * kGiB, 120 * kGiB))->safety_margin_bytes, 128 * kGiB / 20);
  EXPECT_EQ(plan_kv_cache(c, kGiB, machine(8 * kGiB, 7 * kGiB))->safety_margin_bytes, kGiB);
}

TEST(MemoryPolicy, GrowsInChunksWithinCapAndAvailableMemory) {
  KvCachePlan plan;
  plan.bytes_per_block = kMiB;
  plan.block_size = 16;
  plan.chunk_num_blocks = 100;
  plan.initial_num_blocks = plan.min_num_blocks = 100;
  plan.max_num_blocks = 450;
  plan.safety_margin_bytes = 1 * kGiB;
  const MemoryInfo plenty = machine(64 * kGiB, 32 * kGiB);
  EXPECT_EQ(blocks_to_grow(plan, 100, 1, plenty), 100);
  EXPECT_EQ(blocks_to_grow(plan, 100, 150, plenty), 200);
  EXPECT_EQ(blocks_to_grow(plan, 400, 80, plenty), 50);  // the cap
  EXPECT_EQ(blocks_to_grow(plan, 450, 1, plenty), 0);
  EXPECT_EQ(blocks_to_grow(plan, 100, 0, plenty), 0);
  // Only 1 GiB + 250 MiB available: margin leaves 250 blocks -> two whole chunks.
  EXPECT_EQ(blocks_to_grow(plan, 100, 300, machine(64 * kGiB, kGiB + 250 * kMiB)), 200);
  EXPECT_EQ(blocks_to_grow(plan, 100, 1, machine(64 * kGiB, kGiB + 50 * kMiB)), 0);
  EXPECT_EQ(blocks_to_shrink(plan, 450), 350);
  EXPECT_EQ(blocks_to_shrink(plan, 100), 0);
  KvCachePlan fixed = plan;
  fixed.chunk_num_blocks = 0;
  EXPECT_EQ(blocks_to_grow(fixed, 100, 5, plenty), 0);
}

TEST(MemoryPolicy, FormatsBytes) {
  EXPECT_EQ(format_bytes(96), "96 B");
  EXPECT_EQ(format_bytes(1536), "1.50 KiB");
  EXPECT_EQ(format_bytes(3 * kGiB / 2), "1.50 GiB");
}

}  // namespace
}  // namespace nibble::engine
