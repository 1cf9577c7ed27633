#include "engine/scheduler.h"

#include <gtest/gtest.h>

#include <map>
#include <numeric>

#include "engine/engine_test_util.h"

namespace nibble::engine {
namespace {

using testing::check_invariants;
using testing::collect;
using testing::Collected;
using testing::make_scheduler;
using testing::reference_generate;

constexpr int32_t kVocab = 50;
constexpr int32_t kBlock = 4;

std::vector<int32_t> tokens(int32_t n, int32_t seed) {
  std::vector<int32_t> v(static_cast<size_t>(n));
  for (int32_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = 1 + (seed * 7 + i * 13) % (kVocab - 1);
  return v;
}

EngineCoreRequest req(const std::string& id, std::vector<int32_t> prompt, int32_t max_tokens,
                      bool ignore_eos = true) {
  EngineCoreRequest r;
  r.request_id = id;
  r.prompt_token_ids = std::move(prompt);
  r.sampling_params.max_tokens = max_tokens;
  r.sampling_params.ignore_eos = ignore_eos;
  return r;
}

SchedulerConfig config(int32_t max_num_seqs = 8, int32_t budget = 64, int32_t max_model_len = 128) {
  SchedulerConfig c;
  c.max_num_seqs = max_num_seqs;
  c.max_num_batched_tokens = budget;
  c.max_model_len = max_model_len;
  c.vocab_size = kVocab;
  c.eos_token_ids = {0};
  return c;
}

// Runs until every request finished, checking invariants each step.
std::map<std::string, Collected> run_all(Scheduler& s, FakeModelRunner& runner, int max_steps = 10000) {
  std::map<std::string, Collected> got;
  for (int i = 0; i < max_steps && s.has_unfinished_requests(); ++i) {
    collect(got, testing::step(s, runner));
    const std::string violation = check_invariants(s);
    EXPECT_EQ(violation, "") << "step " << i;
    if (!violation.empty()) break;
  }
  EXPECT_FALSE(s.has_unfinished_requests());
  EXPECT_EQ(runner.errors(), std::vector<std::string>{});
  return got;
}

void expect_all_blocks_free(const Scheduler& s) {
  const BlockPool& pool = s.kv_cache_manager().block_pool();
  EXPECT_EQ(pool.get_num_free_blocks(), pool.num_blocks());
  for (int32_t i = 0; i < pool.num_blocks(); ++i) EXPECT_EQ(pool.block(i).ref_cnt, 0);
}

TEST(Scheduler, RejectsBadRequestsUpFront) {
  auto s = make_scheduler(config(8, 64, 32), 16, kBlock);
  auto st = s->add_request(req("a", tokens(32, 1), 4));
  EXPECT_EQ(st.code(), base::ErrorCode::kInvalidArgument);
  EXPECT_NE(st.message().find("max_model_len 32"), std::string::npos) << st.message();
  EXPECT_EQ(s->add_request(req("b", {}, 4)).code(), base::ErrorCode::kInvalidArgument);
  EXPECT_EQ(s->add_request(req("c", {1, kVocab}, 4)).code(), base::ErrorCode::kInvalidArgument);
  EXPECT_EQ(s->add_request(req("d", {1, 2}, 0)).code(), base::ErrorCode::kInvalidArgument);
  EXPECT_TRUE(s->add_request(req("e", {1, 2}, 4)).ok());
  EXPECT_EQ(s->add_request(req("e", {1, 2}, 4)).code(), base::ErrorCode::kInvalidArgument);
  EXPECT_EQ(s->add_request(req("", {1, 2}, 4)).code(), base::ErrorCode::kInvalidArgument);
  // 16 blocks of 4 = 64 tokens, but max_model_len 32 always fits; a smaller pool does not.
  auto small = make_scheduler(config(8, 64, 128), 4, kBlock);
  auto too_big = small->add_request(req("f", tokens(10, 1), 20));  // 30 tokens > 16
  EXPECT_EQ(too_big.code(), base::ErrorCode::kResourceExhausted);
  EXPECT_NE(too_big.message().find("KV"), std::string::npos);
  EXPECT_TRUE(small->add_request(req("g", tokens(10, 1), 6)).ok());
}

TEST(Scheduler, SingleRequestMatchesReference) {
  auto s = make_scheduler(config(), 32, kBlock);
  FakeModelRunner runner(kVocab, kBlock);
  ASSERT_TRUE(runner.set_num_kv_blocks(32).ok());
  const auto prompt = tokens(11, 3);
  ASSERT_TRUE(s->add_request(req("a", prompt, 9)).ok());
  auto got = run_all(*s, runner);
  const auto ref = reference_generate(prompt, req("a", prompt, 9).sampling_params, {0}, 128, kVocab);
  EXPECT_EQ(got["a"].tokens, ref.output_token_ids);
  EXPECT_EQ(got["a"].finish_reason, FinishReason::kLength);
  expect_all_blocks_free(*s);
  const SchedulerStats st = s->make_stats();
  EXPECT_EQ(st.num_generation_tokens, 9);
  EXPECT_EQ(st.num_prompt_tokens, 11);
  EXPECT_EQ(st.num_finished_length, 1);
}

TEST(Scheduler, ChunkedPrefillRunsDecodesFirst) {
  auto s = make_scheduler(config(8, 8, 128), 32, kBlock);
  FakeModelRunner runner(kVocab, kBlock);
  ASSERT_TRUE(runner.set_num_kv_blocks(32).ok());
  ASSERT_TRUE(s->add_request(req("a", tokens(3, 1), 5)).ok());
  SchedulerOutput first = s->schedule();
  ASSERT_EQ(first.scheduled.size(), 1u);
  EXPECT_TRUE(first.scheduled[0].is_new);
  EXPECT_TRUE(first.scheduled[0].sample);
  s->update_from_output(first, runner.execute_model(first).value());
  ASSERT_TRUE(s->add_request(req("b", tokens(20, 2), 5)).ok());
  // Budget 8: a's decode (1 token) first, then 7 tokens of b's 20-token prompt, no sampling for b.
  SchedulerOutput so = s->schedule();
  ASSERT_EQ(so.scheduled.size(), 2u);
  EXPECT_EQ(so.scheduled[0].request_id(), "a");
  EXPECT_EQ(so.scheduled[0].num_scheduled_tokens(), 1);
  EXPECT_EQ(so.scheduled[0].positions[0], 3);
  EXPECT_FALSE(so.scheduled[0].is_new);
  EXPECT_EQ(so.scheduled[1].request_id(), "b");
  EXPECT_EQ(so.scheduled[1].num_scheduled_tokens(), 7);
  EXPECT_FALSE(so.scheduled[1].sample);
  EXPECT_EQ(so.total_num_scheduled_tokens, 8);
  auto outs = s->update_from_output(so, runner.execute_model(so).value());
  ASSERT_EQ(outs.size(), 1u);  // only a produced a token
  EXPECT_EQ(outs[0].request_id, "a");
  SchedulerOutput so2 = s->schedule();
  ASSERT_EQ(so2.scheduled.size(), 2u);
  EXPECT_EQ(so2.scheduled[1].num_computed_tokens, 7);
  EXPECT_EQ(so2.scheduled[1].positions.front(), 7);
  s->update_from_output(so2, runner.execute_model(so2).value());
  auto got = run_all(*s, runner);
  EXPECT_EQ(runner.errors(), std::vector<std::string>{});
  expect_all_blocks_free(*s);
}

TEST(Scheduler, MaxNumSeqsCapsRunning) {
  auto s = make_scheduler(config(2, 64, 128), 64, kBlock);
  FakeModelRunner runner(kVocab, kBlock);
  ASSERT_TRUE(runner.set_num_kv_blocks(64).ok());
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(s->add_request(req("r" + std::to_string(i), tokens(5, i), 3)).ok());
  SchedulerOutput so = s->schedule();
  EXPECT_EQ(so.scheduled.size(), 2u);
  EXPECT_EQ(s->num_running(), 2);
  EXPECT_EQ(s->num_waiting(), 3);
  std::map<std::string, Collected> got;
  collect(got, s->update_from_output(so, runner.execute_model(so).value()));
  for (auto& [id, c] : run_all(*s, runner)) {
    got[id].tokens.insert(got[id].tokens.end(), c.tokens.begin(), c.tokens.end());
  }
  for (int i = 0; i < 5; ++i) {
    const std::string id = "r" + std::to_string(i);
    const auto prompt = tokens(5, i);
    auto ref = reference_generate(prompt, req(id, prompt, 3).sampling_params, {0}, 128, kVocab);
    EXPECT_EQ(got[id].tokens, ref.output_token_ids) << id;
  }
}

TEST(Scheduler, PreemptsLatestAndRecomputesWhenBlocksRunOut) {
  // 12 blocks of 4 tokens; three requests that each grow to 16 tokens (4 blocks) contend.
  auto s = make_scheduler(config(8, 64, 128), 10, kBlock);
  FakeModelRunner runner(kVocab, kBlock);
  ASSERT_TRUE(runner.set_num_kv_blocks(10).ok());
  std::map<std::string, std::vector<int32_t>> prompts;
  for (int i = 0; i < 3; ++i) {
    const std::string id = "p" + std::to_string(i);
    prompts[id] = tokens(6, 10 + i);
    ASSERT_TRUE(s->add_request(req(id, prompts[id], 10)).ok());
  }
  auto got = run_all(*s, runner);
  EXPECT_GT(s->make_stats().num_preemptions, 0);
  for (const auto& [id, prompt] : prompts) {
    auto ref = reference_generate(prompt, req(id, prompt, 10).sampling_params, {0}, 128, kVocab);
    EXPECT_EQ(got[id].tokens, ref.output_token_ids) << id;
    EXPECT_EQ(got[id].finish_reason, FinishReason::kLength);
  }
  expect_all_blocks_free(*s);
}

TEST(Scheduler, PreemptedRequestGoesToTheFrontWithNothingComputed) {
  auto s = make_scheduler(config(8, 64, 128), 4, kBlock);
  FakeModelRunner runner(kVocab, kBlock);
  ASSERT_TRUE(runner.set_num_kv_blocks(4).ok());
  ASSERT_TRUE(s->add_request(req("a", tokens(8, 1), 8)).ok());  // 2 blocks, grows to 4
  ASSERT_TRUE(s->add_request(req("b", tokens(8, 2), 8)).ok());
  auto first = s->schedule();
  ASSERT_EQ(first.scheduled.size(), 2u);
  s->update_from_output(first, runner.execute_model(first).value());  // both at 9 tokens, 2 blocks each
  auto second = s->schedule();                                        // a needs a 3rd block: b is preempted
  ASSERT_EQ(second.preempted_req_ids, std::vector<std::string>{"b"});
  ASSERT_EQ(second.scheduled.size(), 1u);
  EXPECT_EQ(s->waiting().front()->request_id(), "b");
  EXPECT_EQ(s->waiting().front()->num_computed_tokens, 0);
  EXPECT_EQ(s->waiting().front()->status, RequestStatus::kPreempted);
  EXPECT_EQ(check_invariants(*s), "");
  s->update_from_output(second, runner.execute_model(second).value());
  auto rest = run_all(*s, runner);
  expect_all_blocks_free(*s);
}

TEST(Scheduler, AbortFreesBlocksAtOnce) {
  auto s = make_scheduler(config(1, 64, 128), 16, kBlock);
  FakeModelRunner runner(kVocab, kBlock);
  ASSERT_TRUE(runner.set_num_kv_blocks(16).ok());
  ASSERT_TRUE(s->add_request(req("run", tokens(9, 1), 50)).ok());
  ASSERT_TRUE(s->add_request(req("wait", tokens(9, 2), 50)).ok());
  auto so = s->schedule();
  s->update_from_output(so, runner.execute_model(so).value());
  EXPECT_EQ(s->num_running(), 1);
  EXPECT_LT(s->kv_cache_manager().block_pool().get_num_free_blocks(), 16);
  auto outs = s->finish_requests({"run", "wait", "unknown"}, RequestStatus::kFinishedAborted);
  ASSERT_EQ(outs.size(), 2u);
  EXPECT_EQ(outs[0].finish_reason, FinishReason::kAbort);
  EXPECT_EQ(outs[1].finish_reason, FinishReason::kAbort);
  EXPECT_FALSE(s->has_unfinished_requests());
  expect_all_blocks_free(*s);
  EXPECT_EQ(check_invariants(*s), "");
  auto next = s->schedule();
  EXPECT_EQ(next.finished_req_ids, (std::vector<std::string>{"run", "wait"}));
  EXPECT_EQ(s->make_stats().num_finished_abort, 2);
}

TEST(Scheduler, StopConditions) {
  // Find a prompt whose reference output contains a token early, then use it as a stop token.
  const auto prompt = tokens(6, 5);
  SamplingParams free_run;
  free_run.max_tokens = 20;
  free_run.ignore_eos = true;
  const auto ref = reference_generate(prompt, free_run, {}, 128, kVocab).output_token_ids;
  const int32_t stop_tok = ref[3];
  const auto first_at = std::find(ref.begin(), ref.end(), stop_tok) - ref.begin();

  struct Case {
    std::string name;
    SamplingParams params;
    std::vector<int32_t> eos;
    size_t expect_len;
    FinishReason reason;
    std::optional<int32_t> stop_reason;
  };
  SamplingParams stop_id = free_run;
  stop_id.stop_token_ids = {stop_tok};
  SamplingParams min_tokens = stop_id;
  min_tokens.min_tokens = static_cast<int32_t>(first_at) + 2;
  SamplingParams eos_honoured = free_run;
  eos_honoured.ignore_eos = false;
  SamplingParams max4 = free_run;
  max4.max_tokens = 4;
  const std::vector<Case> cases = {
      {"stop_token_ids", stop_id, {0}, static_cast<size_t>(first_at) + 1, FinishReason::kStop, stop_tok},
      // The early stop token is ignored; the length then depends on where it recurs (0 = unchecked).
      {"min_tokens", min_tokens, {0}, 0, FinishReason::kStop, stop_tok},
      {"eos", eos_honoured, {stop_tok}, static_cast<size_t>(first_at) + 1, FinishReason::kStop, std::nullopt},
      {"ignore_eos", free_run, {stop_tok}, 20, FinishReason::kLength, std::nullopt},
      {"max_tokens", max4, {0}, 4, FinishReason::kLength, std::nullopt},
  };
  for (const Case& c : cases) {
    SchedulerConfig cfg = config();
    cfg.eos_token_ids = c.eos;
    auto s = make_scheduler(cfg, 32, kBlock);
    FakeModelRunner runner(kVocab, kBlock);
    ASSERT_TRUE(runner.set_num_kv_blocks(32).ok());
    EngineCoreRequest r = req("x", prompt, 0);
    r.sampling_params = c.params;
    ASSERT_TRUE(s->add_request(r).ok()) << c.name;
    std::optional<int32_t> stop_reason;
    std::map<std::string, Collected> got;
    while (s->has_unfinished_requests()) {
      auto outs = testing::step(*s, runner);
      for (const auto& o : outs)
        if (o.finished()) stop_reason = o.stop_reason;
      collect(got, outs);
    }
    const auto expected = reference_generate(prompt, c.params, c.eos, 128, kVocab);
    EXPECT_EQ(got["x"].tokens, expected.output_token_ids) << c.name;
    EXPECT_EQ(got["x"].finish_reason, expected.finish_reason) << c.name;
    EXPECT_GE(got["x"].tokens.size(), static_cast<size_t>(c.params.min_tokens)) << c.name;
    if (c.expect_len > 0) {
      EXPECT_EQ(got["x"].tokens.size(), c.expect_len) << c.name;
      EXPECT_EQ(got["x"].finish_reason, c.reason) << c.name;
      EXPECT_EQ(stop_reason, c.stop_reason) << c.name;
    }
    expect_all_blocks_free(*s);
  }
}

TEST(Scheduler, MaxModelLenCapsOutput) {
  auto s = make_scheduler(config(8, 64, 16), 8, kBlock);
  FakeModelRunner runner(kVocab, kBlock);
  ASSERT_TRUE(runner.set_num_kv_blocks(8).ok());
  ASSERT_TRUE(s->add_request(req("a", tokens(10, 1), 100)).ok());
  auto got = run_all(*s, runner);
  EXPECT_EQ(got["a"].tokens.size(), 6u);  // 10 + 6 = max_model_len 16
  EXPECT_EQ(got["a"].finish_reason, FinishReason::kLength);
}

TEST(Scheduler, PrefixCacheHitsAreCountedPerRequest) {
  auto s = make_scheduler(config(8, 64, 128), 32, kBlock);
  FakeModelRunner runner(kVocab, kBlock);
  ASSERT_TRUE(runner.set_num_kv_blocks(32).ok());
  std::vector<int32_t> shared = tokens(12, 9);  // three full blocks
  auto with_tail = [&](int32_t tail_seed) {
    auto p = shared;
    auto tail = tokens(3, tail_seed);
    p.insert(p.end(), tail.begin(), tail.end());
    return p;
  };
  ASSERT_TRUE(s->add_request(req("first", with_tail(1), 2)).ok());
  auto got = run_all(*s, runner);
  EXPECT_EQ(got["first"].num_cached_tokens, 0);
  // Two later requests share the 12-token prefix: each hits 12 tokens.
  ASSERT_TRUE(s->add_request(req("second", with_tail(2), 2)).ok());
  ASSERT_TRUE(s->add_request(req("third", with_tail(3), 2)).ok());
  auto got2 = run_all(*s, runner);
  EXPECT_EQ(got2["second"].num_cached_tokens, 12);
  EXPECT_EQ(got2["third"].num_cached_tokens, 12);
  for (const char* id : {"second", "third"}) {
    const auto prompt = with_tail(id == std::string("second") ? 2 : 3);
    auto ref = reference_generate(prompt, req(id, prompt, 2).sampling_params, {0}, 128, kVocab);
    EXPECT_EQ(got2[id].tokens, ref.output_token_ids) << id;
  }
  const SchedulerStats st = s->make_stats();
  EXPECT_EQ(st.prefix_cache.requests, 3);
  EXPECT_EQ(st.prefix_cache.queries, 45);
  EXPECT_EQ(st.prefix_cache.hits, 24);
  expect_all_blocks_free(*s);
}

TEST(Scheduler, GrowsThePoolBeforePreempting) {
  SchedulerConfig cfg = config(8, 64, 128);
  KVCacheConfig kvc;
  kvc.block_size_tokens = kBlock;
  kvc.num_blocks = 2;
  kvc.max_num_blocks = 40;
  auto manager = KVCacheManager::create(kvc, cfg.max_model_len, true).value();
  FakeModelRunner runner(kVocab, kBlock);
  ASSERT_TRUE(runner.set_num_kv_blocks(2).ok());
  manager->set_grow_fn([&](int32_t current, int32_t short_by) {
    const int32_t add = std::min(40 - current, (short_by + 3) / 4 * 4);
    return runner.set_num_kv_blocks(current + add).ok() ? add : 0;
  });
  Scheduler s(cfg, std::move(manager));
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(s.add_request(req("g" + std::to_string(i), tokens(9, i), 12)).ok());
  auto got = run_all(s, runner);
  EXPECT_EQ(s.make_stats().num_preemptions, 0);
  EXPECT_GT(s.kv_cache_manager().block_pool().num_blocks(), 2);
  for (int i = 0; i < 4; ++i) {
    const std::string id = "g" + std::to_string(i);
    auto ref = reference_generate(tokens(9, i), req(id, tokens(9, i), 12).sampling_params, {0}, 128, kVocab);
    EXPECT_EQ(got[id].tokens, ref.output_token_ids);
  }
}

}  // namespace
}  // namespace nibble::engine
