// The memory bar of the engine (issue #6): with `--kv-cache auto` the resident memory after loading
// is the weights + at most 5 % (+ the activations sized at load + the first KV chunk), it grows with
// load by whole chunks up to the cap and is given back when idle; a request that cannot fit is
// queued or rejected cleanly, never a crash or a hang; a KV cache larger than the memory is refused
// at start-up with the numbers; `nibble run` prints the start-up memory report.
//
// Oracles: the kernel's own accounting (VmRSS / VmHWM of /proc/self/status) against the engine's
// metadata and the KV storage's allocated bytes. The RSS scenario runs in a fresh process (this
// binary again, filtered to the one test) so its resident set holds nothing from other tests.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "engine/llm_engine.h"
#include "io/safetensors.h"
#include "model/random_checkpoint.h"
#include "model_test_util.h"

#if defined(__SANITIZE_ADDRESS__)
#define NIBBLE_MEMTEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define NIBBLE_MEMTEST_ASAN 1
#endif
#endif

namespace nibble {
namespace {

using testing_util::TempDir;
using Clock = std::chrono::steady_clock;

constexpr const char* kChildEnv = "NIBBLE_ENGINE_MEMORY_CHILD";  // set in the fresh process
constexpr const char* kModelEnv = "NIBBLE_ENGINE_MEMORY_MODEL";
constexpr const char* kResidentEnv = "NIBBLE_ENGINE_MEMORY_RESIDENT";  // weights + activations, bytes
constexpr int64_t kMiB = int64_t{1} << 20;

struct ProcMemory {
  int64_t rss_bytes = 0;  // VmRSS
  int64_t hwm_bytes = 0;  // VmHWM: the peak of VmRSS
};

ProcMemory read_proc_memory() {
  std::ifstream in("/proc/self/status");
  std::string line;
  ProcMemory m;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) m.rss_bytes = std::stoll(line.substr(6)) * 1024;
    if (line.rfind("VmHWM:", 0) == 0) m.hwm_bytes = std::stoll(line.substr(6)) * 1024;
  }
  return m;
}

double mib(int64_t bytes) {
  return static_cast<double>(bytes) / static_cast<double>(kMiB);
}

bool in_child() {
  return std::getenv(kChildEnv) != nullptr;
}

std::string self_exe() {
  char buf[4096];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

// Runs `suite.name` of this binary in a fresh process with `env` set (and a 5-minute limit, so a
// hang fails instead of blocking ctest); returns its exit status and output.
testing_util::CommandResult run_in_fresh_process(
    const std::vector<std::pair<std::string, std::string>>& env) {
  const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string cmd = std::string(kChildEnv) + "=1";
  for (const auto& [k, v] : env) cmd += " " + k + "=" + testing_util::shell_quote(v);
  cmd += " timeout 300 " + testing_util::shell_quote(self_exe()) + " " +
         testing_util::shell_quote(std::string("--gtest_filter=") + info->test_suite_name() + "." +
                                   info->name()) +
         " 2>&1";
  return testing_util::run_command(cmd);
}

engine::EngineCoreRequest make_request(int32_t seed, int32_t prompt_len, int32_t max_tokens, int32_t vocab) {
  engine::EngineCoreRequest r;
  for (int32_t i = 0; i < prompt_len; ++i) r.prompt_token_ids.push_back((seed * 7919 + i * 31 + 1) % vocab);
  r.sampling_params.temperature = 0.0f;
  r.sampling_params.max_tokens = max_tokens;
  r.sampling_params.ignore_eos = true;
  return r;
}

struct Drained {
  int32_t num_tokens = 0;
  std::optional<engine::FinishReason> finish;
  std::string error_message;
  bool timed_out = false;
};

// Reads a request's stream to its end, giving up (and aborting it) at `deadline`: a hang fails
// the test instead of blocking it.
Drained drain(engine::RequestHandle& h, Clock::time_point deadline) {
  Drained d;
  while (!h.done()) {
    if (Clock::now() >= deadline) {
      d.timed_out = true;
      h.abort();
      break;
    }
    auto out = h.next_for(std::chrono::milliseconds(100));
    if (!out) continue;
    d.num_tokens += static_cast<int32_t>(out->new_token_ids.size());
    if (out->finished()) {
      d.finish = out->finish_reason;
      d.error_message = out->error_message;
    }
  }
  return d;
}

// Waits until `pred(stats)` holds or `timeout` passes; returns the last stats.
engine::EngineStats wait_for(engine::LlmEngine& e,
                             const std::function<bool(const engine::EngineStats&)>& pred,
                             std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  engine::EngineStats s = e.stats();
  while (!pred(s) && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    s = e.stats();
  }
  return s;
}

// ---------------------------------------------------------------------------------------------
// Resident memory: a ~70 MB BF16 model (qwen3, hidden 512, 8 layers, tied embeddings, so one
// forward reads every weight page), 16 KiB of fp32 KV per token, 256 KiB blocks, 1 MiB chunks.

class EngineMemoryRssTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (in_child()) {
      model_dir_ = std::getenv(kModelEnv) ? std::getenv(kModelEnv) : "";
      return;
    }
    dir_ = new TempDir("engine_memory_rss");
    model_dir_ = *dir_ / "m";
    model::RandomModelSpec spec;
    spec.arch = "qwen3";
    spec.preset = "small";
    spec.seed = 5;
    spec.hidden_size = 512;
    spec.num_hidden_layers = 8;
    spec.num_attention_heads = 8;
    spec.num_key_value_heads = 4;
    spec.head_dim = 64;
    spec.intermediate_size = 2048;
    spec.vocab_size = 8192;
    ASSERT_TRUE(model::write_random_checkpoint(model_dir_, spec).ok());
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }

  static constexpr int64_t kChunkBytes = kMiB;  // 4 blocks of 16 tokens
  // 26 blocks (6.5 chunks): what the (injected) memory allows; not whole chunks, so the last one
  // must be partial.
  static constexpr int64_t kCapBytes = 6 * kMiB + kMiB / 2;
  static constexpr int64_t kMarginBytes = 64 * kMiB;  // the safety margin

  static engine::EngineArgs args() {
    engine::EngineArgs a;
    a.max_num_seqs = 8;
    a.max_num_batched_tokens = 128;
    a.max_model_len = 128;  // useful blocks: 8 x 8 = 64, so the memory cap (26) is the binding one
    a.num_threads = 2;
    a.kv_cache = "auto";
    a.kv_cache_chunk_bytes = kChunkBytes;
    a.safety_margin_bytes = kMarginBytes;
    a.kv_shrink_idle_delay = std::chrono::milliseconds(100);
    return a;
  }

  static TempDir* dir_;
  static std::string model_dir_;
};

TempDir* EngineMemoryRssTest::dir_ = nullptr;
std::string EngineMemoryRssTest::model_dir_;

TEST_F(EngineMemoryRssTest, AutoKvCacheResidentMemoryGrowsWithLoadAndIsGivenBack) {
#ifdef NIBBLE_MEMTEST_ASAN
  GTEST_SKIP() << "RSS is not the program's under AddressSanitizer (shadow memory, quarantine)";
#endif
  if (!in_child()) {
    // Weights + activations, from an engine made the same way, so the fresh process can inject a
    // memory probe that leaves room for exactly kCapBytes of KV.
    auto probe_engine = engine::LlmEngine::create(model_dir_, args());
    ASSERT_TRUE(probe_engine.ok()) << probe_engine.status().message();
    const engine::EngineMetadata& md = (*probe_engine)->metadata();
    const int64_t resident = md.weight_bytes + md.workspace_bytes;
    probe_engine->reset();
    const auto r = run_in_fresh_process({{kModelEnv, model_dir_}, {kResidentEnv, std::to_string(resident)}});
    // The numbers for the log.
    size_t pos = 0;
    while ((pos = r.output.find("[mem]", pos)) != std::string::npos) {
      const size_t end = r.output.find('\n', pos);
      std::printf("%s\n", r.output.substr(pos, end - pos).c_str());
      pos = end;
    }
    EXPECT_EQ(r.exit_code, 0) << "the fresh process failed, crashed or hung:\n" << r.output;
    return;
  }

  // ---- In the fresh process. ----
  ASSERT_NE(std::getenv(kResidentEnv), nullptr);
  const int64_t resident = std::stoll(std::getenv(kResidentEnv));
  engine::EngineArgs a = args();
  a.memory_probe = [resident]() -> base::Result<engine::MemoryInfo> {
    engine::MemoryInfo info;
    info.mem_total_bytes = int64_t{64} << 30;
    // Half a block over, so rounding down leaves exactly kCapBytes.
    info.mem_available_bytes = resident + kMarginBytes + kCapBytes + 128 * 1024;
    return info;
  };
  const ProcMemory baseline = read_proc_memory();
  auto created = engine::LlmEngine::create(model_dir_, a);
  ASSERT_TRUE(created.ok()) << created.status().message();
  engine::LlmEngine& e = **created;
  const engine::EngineMetadata& md = e.metadata();
  const engine::KvCachePlan& plan = md.kv_cache_plan;
  ASSERT_EQ(md.weight_bytes + md.workspace_bytes, resident);
  const int64_t weights = md.weight_bytes;
  const int64_t workspace = md.workspace_bytes;
  const int32_t chunk_blocks = plan.chunk_num_blocks;
  const int64_t chunk_bytes = int64_t{chunk_blocks} * plan.bytes_per_block;
  const int64_t cap_bytes = int64_t{plan.max_num_blocks} * plan.bytes_per_block;
  ASSERT_EQ(plan.bytes_per_block, 16 * 16 * 1024) << "16 tokens x 16 KiB";
  ASSERT_EQ(chunk_blocks, 4);
  ASSERT_EQ(chunk_bytes, kChunkBytes);
  ASSERT_EQ(cap_bytes, kCapBytes);
  ASSERT_EQ(plan.initial_num_blocks, chunk_blocks) << "auto starts with one chunk";
  const ProcMemory after_create = read_proc_memory();
  EXPECT_EQ(e.kv_allocated_bytes(), chunk_bytes) << "the KV storage holds exactly one chunk at start";
  EXPECT_EQ(e.stats().kv_cache_bytes, chunk_bytes);

  // 1. After a short warm-up request (every weight page read through the mmap).
  const auto deadline = Clock::now() + std::chrono::minutes(3);
  {
    auto h = e.add_request(make_request(0, 8, 4, md.vocab_size));
    ASSERT_TRUE(h.ok()) << h.status().message();
    const Drained d = drain(*h, deadline);
    ASSERT_EQ(d.finish, engine::FinishReason::kLength) << d.error_message;
  }
  const ProcMemory warm = read_proc_memory();
  const int64_t bar = baseline.rss_bytes + weights + weights / 20 + workspace + chunk_bytes;
  std::printf(
      "[mem] baseline %.1f MiB; after create %.1f; after warm-up %.1f (+%.1f); weights %.1f MiB, "
      "+5%% %.1f, activations %.1f, first KV chunk %.1f => bar %.1f MiB\n",
      mib(baseline.rss_bytes), mib(after_create.rss_bytes), mib(warm.rss_bytes),
      mib(warm.rss_bytes - baseline.rss_bytes), mib(weights), mib(weights / 20), mib(workspace),
      mib(chunk_bytes), mib(bar));
  EXPECT_LE(warm.rss_bytes, bar)
      << "resident memory after loading exceeds weights + 5% + activations + one chunk";
  EXPECT_GE(warm.rss_bytes, baseline.rss_bytes + weights * 9 / 10)
      << "the weights were not all read: the bar above would be vacuous";
  EXPECT_EQ(e.kv_allocated_bytes(), chunk_bytes) << "a short request fits the first chunk";

  // 2. Load, twice (the second time the allocator has seen a chunk freed): a long "keeper" request
  // keeps the engine busy so the grown pool can be measured before the idle shrink; 8 requests of
  // 64 tokens (4 blocks each) want more than the 26-block cap.
  for (int cycle = 0; cycle < 2; ++cycle) {
    SCOPED_TRACE("load cycle " + std::to_string(cycle));
    const ProcMemory before_load = read_proc_memory();
    const int64_t shrinks_before = e.stats().num_kv_shrinks;
    std::atomic<bool> stop_sampling{false};
    std::atomic<int32_t> max_blocks_seen{0}, bad_sizes{0};
    std::atomic<int64_t> max_allocated_seen{0};
    std::thread sampler([&] {
      while (!stop_sampling.load()) {
        const engine::EngineStats s = e.stats();
        const int32_t n = s.scheduler.kv_num_blocks;
        if (n > max_blocks_seen.load()) max_blocks_seen.store(n);
        if (n % chunk_blocks != 0 && n != plan.max_num_blocks) bad_sizes.fetch_add(1);
        const int64_t allocated = e.kv_allocated_bytes();
        if (allocated > max_allocated_seen.load()) max_allocated_seen.store(allocated);
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
    });
    auto keeper = e.add_request(make_request(1000 + cycle, 4, 120, md.vocab_size));
    ASSERT_TRUE(keeper.ok()) << keeper.status().message();
    std::vector<engine::RequestHandle> load;
    for (int32_t r = 0; r < 8; ++r) {
      auto h = e.add_request(make_request(100 * (cycle + 1) + r, 56, 8, md.vocab_size));
      ASSERT_TRUE(h.ok()) << h.status().message();
      load.push_back(std::move(h).value());
    }
    for (auto& h : load) {
      const Drained d = drain(h, deadline);
      EXPECT_FALSE(d.timed_out);
      EXPECT_EQ(d.finish, engine::FinishReason::kLength) << d.error_message;
      EXPECT_EQ(d.num_tokens, 8);
    }
    const engine::EngineStats loaded = e.stats();
    const int64_t loaded_allocated = e.kv_allocated_bytes();
    const ProcMemory at_load = read_proc_memory();
    stop_sampling.store(true);
    sampler.join();
    ASSERT_EQ(loaded.num_kv_shrinks, shrinks_before)
        << "the keeper request was meant to keep the engine busy";
    ASSERT_GE(loaded.scheduler.num_running, 1);
    EXPECT_GT(loaded.num_kv_grows, 0);
    EXPECT_EQ(loaded.scheduler.kv_num_blocks, plan.max_num_blocks) << "the load wants more than the cap";
    EXPECT_EQ(max_blocks_seen.load(), plan.max_num_blocks) << "the pool went past the cap";
    EXPECT_LE(max_allocated_seen.load(), cap_bytes);
    EXPECT_EQ(bad_sizes.load(), 0) << "the pool grew by something other than whole chunks";
    EXPECT_EQ(loaded_allocated, cap_bytes);
    const int64_t grown = loaded_allocated - chunk_bytes;
    const int64_t rss_grown = at_load.rss_bytes - before_load.rss_bytes;
    std::printf(
        "[mem] cycle %d: KV pool %.1f -> %.1f MiB (cap %.1f, %lld grows); RSS %.1f -> %.1f MiB (+%.1f), "
        "peak %.1f MiB\n",
        cycle, mib(chunk_bytes), mib(loaded_allocated), mib(cap_bytes),
        static_cast<long long>(loaded.num_kv_grows), mib(before_load.rss_bytes), mib(at_load.rss_bytes),
        mib(rss_grown), mib(at_load.hwm_bytes));
    // The pool's pages are really taken (zeroed at allocation), and little else grew: at most the
    // activation pages a large batch touches for the first time.
    EXPECT_GE(rss_grown, grown * 9 / 10) << "RSS did not grow with the KV pool";
    EXPECT_LE(rss_grown, grown + workspace + 2 * kMiB) << "RSS grew by more than the KV pool";
    // + 2 MiB: the matmul kernels' per-thread scratch (activations packed to BF16 / int8 for a
    // batch of up to max-num-batched-tokens rows), which the workspace estimate does not count.
    EXPECT_LE(at_load.hwm_bytes, baseline.rss_bytes + weights + weights / 20 + workspace + cap_bytes + 2 * kMiB)
        << "peak resident memory beyond weights + 5% + activations + the KV cap + kernel scratch";

    // 3. Idle: the pool shrinks back to one chunk and the memory goes back to the system.
    keeper->abort();
    EXPECT_FALSE(drain(*keeper, deadline).timed_out);
    const engine::EngineStats idle = wait_for(
        e, [&](const engine::EngineStats& s) { return s.num_kv_shrinks > shrinks_before; },
        std::chrono::seconds(30));
    ASSERT_GT(idle.num_kv_shrinks, shrinks_before) << "no idle shrink";
    EXPECT_EQ(idle.kv_cache_bytes, chunk_bytes);
    EXPECT_EQ(e.kv_allocated_bytes(), chunk_bytes);
    const ProcMemory after_idle = read_proc_memory();
    std::printf("[mem] cycle %d: idle: KV pool %.1f MiB, RSS %.1f MiB (-%.1f)\n", cycle,
                mib(e.kv_allocated_bytes()), mib(after_idle.rss_bytes),
                mib(at_load.rss_bytes - after_idle.rss_bytes));
    EXPECT_GE(at_load.rss_bytes - after_idle.rss_bytes, grown * 9 / 10)
        << "the KV chunks given back did not leave the resident set";
  }
}

// ---------------------------------------------------------------------------------------------
// Limits: the `small` preset (qwen3, 4 layers, 4 KV heads of 64: 8 KiB of fp32 KV per token,
// 128 KiB blocks of 16 tokens).

class EngineMemoryLimitsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir("engine_memory_limits");
    model::RandomModelSpec spec;
    spec.arch = "qwen3";
    spec.preset = "small";
    spec.seed = 9;
    ASSERT_TRUE(model::write_random_checkpoint(model_dir(), spec).ok());
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static std::string model_dir() { return *dir_ / "m"; }
  static engine::EngineArgs args() {
    engine::EngineArgs a;
    a.max_num_seqs = 4;
    a.max_num_batched_tokens = 64;
    a.max_model_len = 64;
    a.num_threads = 2;
    return a;
  }
  static TempDir* dir_;
};

TempDir* EngineMemoryLimitsTest::dir_ = nullptr;

// A fixed pool that holds exactly one max_model_len sequence: a prompt that leaves no room is
// rejected up front; prompt + max_tokens past max_model_len stops there; requests that each need
// most of the pool are queued and served one after another.
TEST_F(EngineMemoryLimitsTest, FixedPoolQueuesWhatFitsAloneAndRejectsTheRest) {
  engine::EngineArgs a = args();
  a.kv_cache = "512KiB";  // 4 blocks of 16 tokens = one 64-token sequence
  auto e = engine::LlmEngine::create(model_dir(), a);
  ASSERT_TRUE(e.ok()) << e.status().message();
  ASSERT_EQ((*e)->metadata().kv_cache_plan.max_num_blocks, 4);
  const int32_t vocab = (*e)->metadata().vocab_size;
  const auto deadline = Clock::now() + std::chrono::minutes(2);

  auto too_long = (*e)->add_request(make_request(1, 64, 4, vocab));
  ASSERT_FALSE(too_long.ok());
  EXPECT_EQ(too_long.status().code(), base::ErrorCode::kInvalidArgument);
  EXPECT_NE(too_long.status().message().find("max_model_len 64"), std::string::npos)
      << too_long.status().message();

  auto capped = (*e)->add_request(make_request(2, 40, 1000, vocab));
  ASSERT_TRUE(capped.ok()) << capped.status().message();
  const Drained dc = drain(*capped, deadline);
  EXPECT_EQ(dc.finish, engine::FinishReason::kLength);
  EXPECT_EQ(dc.num_tokens, 24) << "stops at max_model_len";

  std::vector<engine::RequestHandle> handles;
  for (int32_t r = 0; r < 3; ++r) {
    auto h = (*e)->add_request(make_request(10 + r, 40, 20, vocab));
    ASSERT_TRUE(h.ok()) << h.status().message();
    handles.push_back(std::move(h).value());
  }
  for (auto& h : handles) {
    const Drained d = drain(h, deadline);
    EXPECT_FALSE(d.timed_out) << "hang";
    EXPECT_EQ(d.finish, engine::FinishReason::kLength) << d.error_message;
    EXPECT_EQ(d.num_tokens, 20);
  }
  const engine::EngineStats s = wait_for(
      **e,
      [](const engine::EngineStats& st) {
        return st.scheduler.num_running == 0 && st.scheduler.num_waiting == 0;
      },
      std::chrono::seconds(10));
  EXPECT_EQ(s.scheduler.kv_num_free_blocks, s.scheduler.kv_num_blocks) << "KV blocks leaked";
  EXPECT_EQ(s.kv_cache_bytes, 4 * 128 * 1024);
}

// Memory runs short after start-up (the probe says so): the auto pool cannot grow past its first
// chunk (2 blocks). A request that fits is served; one that needs more is queued while the other
// runs, then ended with a clear error, never a crash or a livelock — also when chunked prefill
// lets it start before it runs out of blocks.
TEST_F(EngineMemoryLimitsTest, AutoPoolThatCannotGrowEndsWhatNeverFits) {
  struct Variant {
    int32_t batched_tokens;
    bool prefix_caching;
  };
  for (const Variant v : {Variant{64, true}, Variant{16, true}, Variant{16, false}}) {
    SCOPED_TRACE("max_num_batched_tokens " + std::to_string(v.batched_tokens) + ", prefix caching " +
                 (v.prefix_caching ? "on" : "off"));
    auto num_probes = std::make_shared<std::atomic<int>>(0);
    engine::EngineArgs a = args();
    a.max_num_batched_tokens = v.batched_tokens;
    a.enable_prefix_caching = v.prefix_caching;
    a.kv_cache_chunk_bytes = 256 * 1024;  // 2 blocks
    a.safety_margin_bytes = 64 * kMiB;
    a.memory_probe = [num_probes]() -> base::Result<engine::MemoryInfo> {
      engine::MemoryInfo info;
      info.mem_total_bytes = int64_t{64} << 30;
      info.mem_available_bytes = num_probes->fetch_add(1) == 0 ? int64_t{32} << 30 : 0;
      return info;
    };
    auto e = engine::LlmEngine::create(model_dir(), a);
    ASSERT_TRUE(e.ok()) << e.status().message();
    ASSERT_EQ((*e)->metadata().kv_cache_plan.initial_num_blocks, 2);
    const int32_t vocab = (*e)->metadata().vocab_size;
    const auto deadline = Clock::now() + std::chrono::seconds(60);
    auto fits = (*e)->add_request(make_request(20, 10, 8, vocab));     // 18 tokens: 2 blocks
    auto too_big = (*e)->add_request(make_request(21, 50, 4, vocab));  // 54 tokens: 4 blocks
    ASSERT_TRUE(fits.ok() && too_big.ok());
    const Drained df = drain(*fits, deadline);
    EXPECT_EQ(df.finish, engine::FinishReason::kLength) << df.error_message;
    EXPECT_EQ(df.num_tokens, 8);
    const Drained db = drain(*too_big, deadline);
    EXPECT_FALSE(db.timed_out) << "the request that can never fit was neither served nor ended";
    EXPECT_EQ(db.finish, engine::FinishReason::kError);
    EXPECT_NE(db.error_message.find("KV cache"), std::string::npos) << db.error_message;
    const engine::EngineStats s = wait_for(
        **e,
        [](const engine::EngineStats& st) {
          return st.scheduler.num_running == 0 && st.scheduler.num_waiting == 0;
        },
        std::chrono::seconds(10));
    EXPECT_EQ(s.scheduler.num_waiting, 0);
    EXPECT_EQ(s.scheduler.kv_num_blocks, 2) << "the pool grew although memory was short";
    EXPECT_EQ(s.scheduler.kv_num_free_blocks, s.scheduler.kv_num_blocks) << "KV blocks leaked";
    EXPECT_EQ((*e)->kv_allocated_bytes(), 2 * 128 * 1024);
    // The engine still serves what fits.
    auto again = (*e)->add_request(make_request(22, 10, 4, vocab));
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(drain(*again, Clock::now() + std::chrono::seconds(60)).num_tokens, 4);
  }
}

// Start-up refuses, before loading any weight, a KV cache the memory cannot hold, naming the numbers.
TEST_F(EngineMemoryLimitsTest, StartupRefusesWhatMemoryCannotHold) {
  auto probe = [](int64_t total, int64_t available) {
    return [total, available]() -> base::Result<engine::MemoryInfo> {
      engine::MemoryInfo info;
      info.mem_total_bytes = total;
      info.mem_available_bytes = available;
      return info;
    };
  };
  engine::EngineArgs a = args();
  a.kv_cache = "8GiB";
  a.memory_probe = probe(int64_t{16} << 30, int64_t{4} << 30);
  auto refused = engine::LlmEngine::create(model_dir(), a);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), base::ErrorCode::kResourceExhausted);
  const std::string m1 = refused.status().message();
  for (const char* want :
       {"--kv-cache 8.00 GiB does not fit", "weights", "safety margin", "4.00 GiB available"})
    EXPECT_NE(m1.find(want), std::string::npos) << "missing '" << want << "' in: " << m1;

  a.kv_cache = "auto";
  a.memory_probe = probe(int64_t{16} << 30, 512 * kMiB);  // less than the 1 GiB default margin
  refused = engine::LlmEngine::create(model_dir(), a);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), base::ErrorCode::kResourceExhausted);
  const std::string m2 = refused.status().message();
  for (const char* want : {"not enough memory", "weights", "64-token sequence", "512.00 MiB available"})
    EXPECT_NE(m2.find(want), std::string::npos) << "missing '" << want << "' in: " << m2;

  a.kv_cache = "0.9";
  a.memory_probe = probe(int64_t{16} << 30, int64_t{8} << 30);
  refused = engine::LlmEngine::create(model_dir(), a);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("8.00 GiB available"), std::string::npos)
      << refused.status().message();
}

// `nibble run` prints the start-up memory report: weight bytes by format, KV bytes per token, the
// cap and the max concurrent tokens; and refuses a --kv-cache larger than the memory.
TEST_F(EngineMemoryLimitsTest, RunPrintsTheStartupMemoryReport) {
  const auto r = testing_util::run_nibble(
      {"run", model_dir(), "--prompt-ids", "1,2,3", "-n", "2", "-t", "1", "--kv-cache", "auto"}, true);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* want : {"weights: ", "(BF16 ", "KV bytes per token: 8192", "KV cache (auto)", "cap ",
                           "max concurrent tokens "})
    EXPECT_NE(r.output.find(want), std::string::npos) << "missing '" << want << "' in:\n" << r.output;
  const auto big = testing_util::run_nibble(
      {"run", model_dir(), "--prompt-ids", "1,2,3", "-n", "2", "-t", "1", "--kv-cache", "900TiB"}, true);
  EXPECT_EQ(big.exit_code, 2) << big.output;
  EXPECT_NE(big.output.find("does not fit"), std::string::npos) << big.output;
  EXPECT_NE(big.output.find("available"), std::string::npos) << big.output;
}

}  // namespace
}  // namespace nibble
