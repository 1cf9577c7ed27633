#include "engine/engine_core.h"

#include <gtest/gtest.h>

#include <future>
#include <map>
#include <thread>

#include "engine/engine_test_util.h"

namespace nibble::engine {
namespace {

using testing::reference_generate;

constexpr int32_t kVocab = 97;
constexpr int32_t kBlock = 4;

// The fake runner lives inside the engine; tests keep a raw pointer to read its counters after
// the streams they wait on have finished (the stream's mutex orders those reads after the writes).
struct Harness {
  std::unique_ptr<EngineCore> engine;
  FakeModelRunner* runner = nullptr;
};

KvCachePlan fixed_plan(int32_t num_blocks) {
  KvCachePlan p;
  p.block_size = kBlock;
  p.bytes_per_token = 1024;
  p.bytes_per_block = 1024 * kBlock;
  p.initial_num_blocks = p.max_num_blocks = p.min_num_blocks = num_blocks;
  return p;
}

KvCachePlan auto_plan(int32_t chunk, int32_t max_blocks) {
  KvCachePlan p = fixed_plan(chunk);
  p.mode = KvCacheMode::kAuto;
  p.chunk_num_blocks = chunk;
  p.max_num_blocks = max_blocks;
  return p;
}

Harness make_engine(KvCachePlan plan, int32_t max_num_seqs = 8, int32_t budget = 32,
                    std::chrono::milliseconds shrink_delay = std::chrono::milliseconds(-1)) {
  EngineConfig c;
  c.scheduler.max_num_seqs = max_num_seqs;
  c.scheduler.max_num_batched_tokens = budget;
  c.scheduler.max_model_len = 256;
  c.scheduler.vocab_size = kVocab;
  c.scheduler.eos_token_ids = {0};
  c.kv_cache = plan;
  c.kv_shrink_idle_delay = shrink_delay;
  c.memory_probe = [] {
    MemoryInfo m;
    m.mem_total_bytes = m.mem_available_bytes = int64_t{1} << 40;
    return base::Result<MemoryInfo>(m);
  };
  auto runner = std::make_unique<FakeModelRunner>(kVocab, kBlock);
  Harness h;
  h.runner = runner.get();
  auto engine = EngineCore::create(std::move(c), std::move(runner));
  EXPECT_TRUE(engine.ok()) << engine.status().message();
  h.engine = std::move(engine).value();
  return h;
}

// Lets the engine run `free_steps` steps, then holds it at the start of the next one until
// open(): a test can act "while a request is still running" without depending on timing.
class StepGate {
 public:
  StepGate(FakeModelRunner* runner, int free_steps) : released_(release_.get_future().share()) {
    auto released = released_;
    auto steps = std::make_shared<int>(0);
    runner->set_before_step([released, steps, free_steps] {
      if (++*steps > free_steps) released.wait();
    });
  }
  ~StepGate() { open(); }
  void open() {
    if (!opened_) release_.set_value();
    opened_ = true;
  }

 private:
  std::promise<void> release_;
  std::shared_future<void> released_;
  bool opened_ = false;
};

std::vector<int32_t> prompt_of(int32_t n, int32_t seed) {
  std::vector<int32_t> v(static_cast<size_t>(n));
  for (int32_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = 1 + (seed * 31 + i * 17) % (kVocab - 1);
  return v;
}

EngineCoreRequest request(std::vector<int32_t> prompt, int32_t max_tokens, std::string id = {}) {
  EngineCoreRequest r;
  r.request_id = std::move(id);
  r.prompt_token_ids = std::move(prompt);
  r.sampling_params.max_tokens = max_tokens;
  r.sampling_params.ignore_eos = true;
  return r;
}

struct Drained {
  std::vector<int32_t> tokens;
  std::optional<FinishReason> finish_reason;
  int32_t num_cached_tokens = 0;
  int num_outputs = 0;
};

Drained drain(RequestHandle& h) {
  Drained d;
  while (auto out = h.next()) {
    ++d.num_outputs;
    d.tokens.insert(d.tokens.end(), out->new_token_ids.begin(), out->new_token_ids.end());
    d.finish_reason = out->finish_reason;
    d.num_cached_tokens = out->num_cached_tokens;
  }
  return d;
}

TEST(EngineCore, ConcurrentRequestsMatchRunningAlone) {
  Harness h = make_engine(fixed_plan(64), 8, 16);
  std::vector<RequestHandle> handles;
  std::vector<std::vector<int32_t>> prompts;
  for (int i = 0; i < 12; ++i) {
    prompts.push_back(prompt_of(3 + i * 5, i));
    auto handle = h.engine->add_request(request(prompts.back(), 4 + i));
    ASSERT_TRUE(handle.ok()) << handle.status().message();
    handles.push_back(std::move(handle).value());
  }
  for (int i = 0; i < 12; ++i) {
    Drained d = drain(handles[static_cast<size_t>(i)]);
    SamplingParams p = request({}, 4 + i).sampling_params;
    EXPECT_EQ(d.tokens,
              reference_generate(prompts[static_cast<size_t>(i)], p, {0}, 256, kVocab).output_token_ids);
    EXPECT_EQ(d.finish_reason, FinishReason::kLength);
    EXPECT_TRUE(handles[static_cast<size_t>(i)].done());
  }
  EXPECT_EQ(h.runner->errors(), std::vector<std::string>{});
  h.engine->shutdown();
  const EngineStats st = h.engine->stats();
  EXPECT_EQ(st.scheduler.num_running, 0);
  EXPECT_EQ(st.scheduler.num_waiting, 0);
  EXPECT_EQ(st.scheduler.kv_num_free_blocks, st.scheduler.kv_num_blocks);
  EXPECT_EQ(st.scheduler.num_finished_length, 12);
  EXPECT_EQ(st.scheduler.num_generation_tokens, 12 * 4 + 66);
}

// The bar with the fake model: 32 concurrent greedy requests of mixed lengths with shared
// prefixes, on a pool small enough to preempt, give the same tokens as each run alone.
TEST(EngineCore, ThirtyTwoConcurrentEqualSoloRuns) {
  std::vector<std::vector<int32_t>> prompts;
  for (int i = 0; i < 32; ++i) {
    std::vector<int32_t> p = prompt_of(8 * (i % 3), 100 + i % 3);  // three shared prefixes (or none)
    auto tail = prompt_of(1 + (i * 7) % 23, i);
    p.insert(p.end(), tail.begin(), tail.end());
    prompts.push_back(p);
  }
  auto max_tokens = [](int i) { return 3 + (i * 5) % 17; };
  std::vector<std::vector<int32_t>> solo;
  {
    Harness h = make_engine(fixed_plan(64), 1, 64);
    for (int i = 0; i < 32; ++i) {
      auto handle = h.engine->add_request(request(prompts[static_cast<size_t>(i)], max_tokens(i))).value();
      solo.push_back(drain(handle).tokens);
    }
  }
  Harness h = make_engine(fixed_plan(40), 32, 48);
  std::vector<RequestHandle> handles;
  for (int i = 0; i < 32; ++i)
    handles.push_back(h.engine->add_request(request(prompts[static_cast<size_t>(i)], max_tokens(i))).value());
  for (int i = 0; i < 32; ++i) {
    Drained d = drain(handles[static_cast<size_t>(i)]);
    EXPECT_EQ(d.tokens, solo[static_cast<size_t>(i)]) << i;
    EXPECT_EQ(d.tokens.size(), static_cast<size_t>(max_tokens(i)));
  }
  h.engine->shutdown();
  EXPECT_EQ(h.runner->errors(), std::vector<std::string>{});
  const EngineStats st = h.engine->stats();
  EXPECT_GT(st.scheduler.num_preemptions, 0);
  EXPECT_GT(st.scheduler.prefix_cache.hits, 0);
  EXPECT_EQ(st.scheduler.kv_num_free_blocks, st.scheduler.kv_num_blocks);
}

TEST(EngineCore, AddRequestValidatesSynchronously) {
  Harness h = make_engine(fixed_plan(16));
  // Hold the engine in its first step so "same" stays live while the duplicate arrives.
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  h.runner->set_before_step([released] { released.wait(); });
  auto too_long = h.engine->add_request(request(prompt_of(300, 1), 4));
  ASSERT_FALSE(too_long.ok());
  EXPECT_EQ(too_long.status().code(), base::ErrorCode::kInvalidArgument);
  EngineCoreRequest bad = request(prompt_of(4, 1), 4);
  bad.sampling_params.top_p = 0.0f;
  auto bad_param = h.engine->add_request(bad);
  ASSERT_FALSE(bad_param.ok());
  EXPECT_NE(bad_param.status().message().find("top_p"), std::string::npos);
  auto never_fits = h.engine->add_request(request(prompt_of(60, 1), 10));  // 70 tokens > 64
  EXPECT_EQ(never_fits.status().code(), base::ErrorCode::kResourceExhausted);
  auto a = h.engine->add_request(request(prompt_of(4, 1), 40, "same"));
  ASSERT_TRUE(a.ok());
  auto dup = h.engine->add_request(request(prompt_of(4, 1), 4, "same"));
  EXPECT_EQ(dup.status().code(), base::ErrorCode::kInvalidArgument);
  auto named = h.engine->add_request(request(prompt_of(4, 2), 2));
  ASSERT_TRUE(named.ok());
  EXPECT_EQ(named->request_id().rfind("req-", 0), 0u);
  release.set_value();
  EXPECT_EQ(drain(*a).finish_reason, FinishReason::kLength);
  // Once finished, the id may be used again.
  auto again = h.engine->add_request(request(prompt_of(4, 1), 4, "same"));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(drain(*again).finish_reason, FinishReason::kLength);
}

TEST(EngineCore, AbortAndDroppedHandlesFreeBlocks) {
  Harness h = make_engine(fixed_plan(64), 4, 8);
  StepGate gate(h.runner, 1);
  auto a = h.engine->add_request(request(prompt_of(4, 1), 200)).value();
  auto b = h.engine->add_request(request(prompt_of(4, 2), 200)).value();
  ASSERT_TRUE(a.next().has_value());  // it runs
  h.engine->abort(a.request_id());
  {
    RequestHandle dropped = std::move(b);  // goes out of scope unfinished: aborts
  }
  gate.open();
  Drained da = drain(a);
  EXPECT_EQ(da.finish_reason, FinishReason::kAbort);
  // A third request runs to completion after both are gone; by then their blocks are free.
  auto c = h.engine->add_request(request(prompt_of(5, 3), 3)).value();
  EXPECT_EQ(drain(c).finish_reason, FinishReason::kLength);
  for (int i = 0;
       i < 1000 && h.engine->stats().scheduler.num_running + h.engine->stats().scheduler.num_waiting > 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  const EngineStats st = h.engine->stats();
  EXPECT_EQ(st.scheduler.num_finished_abort, 2);
  EXPECT_EQ(st.scheduler.kv_num_free_blocks, st.scheduler.kv_num_blocks);
}

TEST(EngineCore, StopStringHookEndsWithStop) {
  Harness h = make_engine(fixed_plan(64), 4, 8);
  StepGate gate(h.runner, 1);
  auto a = h.engine->add_request(request(prompt_of(6, 1), 200)).value();
  ASSERT_TRUE(a.next().has_value());
  a.finish(FinishReason::kStop);  // as the detokenizer does when a stop string appears
  gate.open();
  Drained d = drain(a);
  EXPECT_EQ(d.finish_reason, FinishReason::kStop);
  h.engine->shutdown();
  EXPECT_EQ(h.engine->stats().scheduler.num_finished_stop, 1);
  EXPECT_EQ(h.engine->stats().scheduler.num_finished_abort, 0);
}

TEST(EngineCore, NextForTimesOutWithoutLosingOutput) {
  Harness h = make_engine(fixed_plan(64));
  auto a = h.engine->add_request(request(prompt_of(4, 1), 5)).value();
  std::vector<int32_t> got;
  while (!a.done()) {
    if (auto out = a.next_for(std::chrono::milliseconds(1)))
      got.insert(got.end(), out->new_token_ids.begin(), out->new_token_ids.end());
  }
  EXPECT_EQ(
      got,
      reference_generate(prompt_of(4, 1), request({}, 5).sampling_params, {0}, 256, kVocab).output_token_ids);
  EXPECT_FALSE(a.next().has_value());
}

TEST(EngineCore, PrefixCacheHitsReported) {
  Harness h = make_engine(fixed_plan(64));
  auto base_prompt = prompt_of(16, 7);
  auto a = h.engine->add_request(request(base_prompt, 2)).value();
  EXPECT_EQ(drain(a).num_cached_tokens, 0);
  auto longer = base_prompt;
  longer.push_back(5);
  auto b = h.engine->add_request(request(longer, 2)).value();
  Drained db = drain(b);
  EXPECT_EQ(db.num_cached_tokens, 16);
  EXPECT_EQ(db.tokens,
            reference_generate(longer, request({}, 2).sampling_params, {0}, 256, kVocab).output_token_ids);
  h.engine->shutdown();
  EXPECT_EQ(h.engine->stats().scheduler.prefix_cache.hits, 16);
  EXPECT_EQ(h.engine->stats().scheduler.prefix_cache.queries, 33);
}

TEST(EngineCore, AutoPoolGrowsUnderLoadAndShrinksWhenIdle) {
  Harness h = make_engine(auto_plan(4, 64), 8, 64, std::chrono::milliseconds(0));
  std::vector<RequestHandle> handles;
  for (int i = 0; i < 6; ++i) handles.push_back(h.engine->add_request(request(prompt_of(20, i), 8)).value());
  for (auto& handle : handles) EXPECT_EQ(drain(handle).finish_reason, FinishReason::kLength);
  // Idle with a zero delay: the pool goes back to one chunk.
  EngineStats st;
  for (int i = 0; i < 2000; ++i) {
    st = h.engine->stats();
    if (st.num_kv_shrinks > 0 && st.scheduler.kv_num_blocks == 4) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_GT(st.num_kv_grows, 0);
  EXPECT_GT(st.num_kv_shrinks, 0);
  EXPECT_EQ(st.scheduler.kv_num_blocks, 4);
  EXPECT_EQ(st.kv_cache_bytes, 4 * 4096);
  h.engine->shutdown();
  EXPECT_EQ(h.runner->num_blocks(), 4);
  EXPECT_EQ(h.runner->errors(), std::vector<std::string>{});
}

TEST(EngineCore, RequestThatCannotGetMemoryFailsCleanly) {
  Harness h = make_engine(auto_plan(2, 64));
  h.runner->set_max_backed_blocks(2);  // the runner cannot allocate more: growth fails
  auto big = h.engine->add_request(request(prompt_of(30, 1), 4)).value();
  Drained d = drain(big);
  EXPECT_EQ(d.finish_reason, FinishReason::kError);
  auto small = h.engine->add_request(request(prompt_of(3, 2), 2)).value();
  EXPECT_EQ(drain(small).finish_reason, FinishReason::kLength);
}

TEST(EngineCore, ModelFailureFailsTheBatchOnly) {
  Harness h = make_engine(fixed_plan(64));
  h.runner->fail_next_step();
  auto a = h.engine->add_request(request(prompt_of(3, 1), 2)).value();
  auto out = drain(a);
  EXPECT_EQ(out.finish_reason, FinishReason::kError);
  auto b = h.engine->add_request(request(prompt_of(3, 1), 2)).value();
  EXPECT_EQ(drain(b).finish_reason, FinishReason::kLength);
}

TEST(EngineCore, ShutdownEndsEveryStream) {
  Harness h = make_engine(fixed_plan(64), 1, 8);
  StepGate gate(h.runner, 1);
  auto a = h.engine->add_request(request(prompt_of(3, 1), 200)).value();
  auto b = h.engine->add_request(request(prompt_of(3, 2), 200)).value();
  ASSERT_TRUE(a.next().has_value());  // the engine is now held inside its second step
  std::thread stopper([&] { h.engine->shutdown(); });
  // Once the engine refuses new work it is stopping; let the held step finish.
  while (h.engine->add_request(request(prompt_of(3, 3), 2)).status().code() != base::ErrorCode::kCancelled)
    std::this_thread::yield();
  gate.open();
  stopper.join();
  EXPECT_EQ(drain(a).finish_reason, FinishReason::kAbort);
  EXPECT_EQ(drain(b).finish_reason, FinishReason::kAbort);
}

}  // namespace
}  // namespace nibble::engine
