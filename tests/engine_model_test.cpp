// The engine with the real model runner on a tiny random Qwen3 (nibble make-model): batching,
// chunked prefill, preemption and prefix caching must not change a single greedy token. The
// oracle is the model run alone, one sequence per forward call through a contiguous KV cache
// (itself checked against transformers by model_golden_test), plus the transformers goldens.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "engine/llm_engine.h"
#include "model/model.h"
#include "model/random_checkpoint.h"
#include "model_test_util.h"

namespace nibble {
namespace {

using testing_util::TempDir;

struct Case {
  std::vector<int32_t> prompt;
  int32_t max_tokens = 0;
};

// Greedy continuation of `prompt` by the model alone (no engine).
std::vector<int32_t> greedy_alone(model::Model& m, const std::vector<int32_t>& prompt, int32_t max_tokens) {
  auto cache = m.new_kv_cache();
  std::vector<int32_t> out;
  auto logits = m.forward(prompt, 0, *cache, 1);
  EXPECT_TRUE(logits.ok()) << logits.status().message();
  for (int32_t i = 0; i < max_tokens; ++i) {
    const auto token =
        static_cast<int32_t>(std::max_element(logits->begin(), logits->end()) - logits->begin());
    out.push_back(token);
    if (i + 1 == max_tokens) break;
    logits = m.forward({&token, 1}, static_cast<int64_t>(prompt.size()) + i, *cache, 1);
    EXPECT_TRUE(logits.ok()) << logits.status().message();
  }
  return out;
}

engine::SamplingParams greedy(int32_t max_tokens) {
  engine::SamplingParams p;
  p.temperature = 0.0f;
  p.max_tokens = max_tokens;
  p.ignore_eos = true;
  return p;
}

engine::EngineCoreRequest make_request(std::vector<int32_t> prompt, engine::SamplingParams params) {
  engine::EngineCoreRequest r;
  r.prompt_token_ids = std::move(prompt);
  r.sampling_params = std::move(params);
  return r;
}

struct Result {
  std::vector<int32_t> tokens;
  std::optional<engine::FinishReason> finish;
  int32_t num_cached_tokens = 0;
  std::vector<engine::TokenLogprobs> logprobs;
};

Result drain(engine::RequestHandle& h) {
  Result r;
  while (auto out = h.next()) {
    r.tokens.insert(r.tokens.end(), out->new_token_ids.begin(), out->new_token_ids.end());
    r.logprobs.insert(r.logprobs.end(), out->new_logprobs.begin(), out->new_logprobs.end());
    r.num_cached_tokens = std::max(r.num_cached_tokens, out->num_cached_tokens);
    if (out->finished()) {
      r.finish = out->finish_reason;
      break;
    }
  }
  return r;
}

class EngineModelTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir("engine_model");
    model::RandomModelSpec spec;
    spec.arch = "qwen3";
    spec.preset = "tiny";
    spec.seed = 21;
    spec.init_std = 0.08;  // sharper than the default so greedy streams vary
    ASSERT_TRUE(model::write_random_checkpoint(model_dir(), spec).ok());
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static std::string model_dir() { return *dir_ / "m"; }

  // 32 requests: mixed prompt lengths (1..90), half of them sharing a 40-token prefix, mixed lengths.
  static std::vector<Case> mixed_cases() {
    std::vector<Case> cases;
    std::vector<int32_t> shared;
    for (int32_t i = 0; i < 40; ++i) shared.push_back((i * 53 + 7) % 500);
    for (int32_t r = 0; r < 32; ++r) {
      Case c;
      if (r % 2 == 0) c.prompt = shared;
      const int32_t extra = 1 + (r * 17) % 50;
      for (int32_t i = 0; i < extra; ++i) c.prompt.push_back((r * 101 + i * 29 + 3) % 500);
      c.max_tokens = 3 + (r * 7) % 14;
      cases.push_back(std::move(c));
    }
    return cases;
  }

  static std::vector<std::vector<int32_t>> expected(const std::vector<Case>& cases) {
    model::LoadOptions options;
    options.max_seq_len = 160;
    options.num_threads = 2;
    auto m = model::load_model(model_dir(), options);
    EXPECT_TRUE(m.ok()) << m.status().message();
    std::vector<std::vector<int32_t>> want;
    for (const Case& c : cases) want.push_back(greedy_alone(**m, c.prompt, c.max_tokens));
    return want;
  }

  static engine::EngineArgs small_args() {
    engine::EngineArgs a;
    a.max_num_seqs = 32;
    a.max_num_batched_tokens = 64;  // forces chunked prefill mixed with decodes
    a.max_model_len = 160;
    a.num_threads = 2;
    a.kv_cache_chunk_bytes = int64_t{64} << 10;
    return a;
  }

  static void expect_no_leaks(engine::LlmEngine& e) {
    // The engine publishes stats after each step; wait for the step that finished the last request.
    for (int i = 0; i < 200 && e.stats().scheduler.num_running + e.stats().scheduler.num_waiting > 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    const engine::EngineStats s = e.stats();
    EXPECT_EQ(s.scheduler.num_running, 0);
    EXPECT_EQ(s.scheduler.num_waiting, 0);
    EXPECT_EQ(s.scheduler.kv_num_free_blocks, s.scheduler.kv_num_blocks) << "KV blocks leaked";
  }

  static TempDir* dir_;
};

TempDir* EngineModelTest::dir_ = nullptr;

TEST_F(EngineModelTest, ConcurrentGreedyMatchesEachRequestAlone) {
  const std::vector<Case> cases = mixed_cases();
  const auto want = expected(cases);
  std::set<int32_t> distinct;
  for (const auto& w : want) distinct.insert(w.begin(), w.end());
  ASSERT_GE(distinct.size(), 8u) << "the random model is too flat for a meaningful test";

  auto e = engine::LlmEngine::create(model_dir(), small_args());
  ASSERT_TRUE(e.ok()) << e.status().message();
  std::vector<engine::RequestHandle> handles;
  for (const Case& c : cases) {
    auto h = (*e)->add_request(make_request(c.prompt, greedy(c.max_tokens)));
    ASSERT_TRUE(h.ok()) << h.status().message();
    handles.push_back(std::move(h).value());
  }
  for (size_t i = 0; i < cases.size(); ++i) {
    const Result r = drain(handles[i]);
    EXPECT_EQ(r.tokens, want[i]) << "request " << i;
    EXPECT_EQ(r.finish, engine::FinishReason::kLength);
  }
  const engine::EngineStats s = (*e)->stats();
  EXPECT_GT(s.scheduler.prefix_cache.hits, 0) << "the shared 40-token prefix should hit the cache";
  // --kv-cache auto started at one 64 KiB chunk (4 blocks) and grew with the load.
  EXPECT_EQ((*e)->metadata().kv_cache_plan.initial_num_blocks, 4);
  EXPECT_GT(s.num_kv_grows, 0);
  EXPECT_GT(s.kv_cache_bytes, int64_t{64} << 10);
  expect_no_leaks(**e);
}

TEST_F(EngineModelTest, EachRequestAloneThroughTheEngineMatchesTheModel) {
  std::vector<Case> cases = mixed_cases();
  cases.resize(6);
  const auto want = expected(cases);
  engine::EngineArgs args = small_args();
  args.max_num_seqs = 1;
  auto e = engine::LlmEngine::create(model_dir(), args);
  ASSERT_TRUE(e.ok()) << e.status().message();
  for (size_t i = 0; i < cases.size(); ++i) {
    auto h = (*e)->add_request(make_request(cases[i].prompt, greedy(cases[i].max_tokens)));
    ASSERT_TRUE(h.ok()) << h.status().message();
    EXPECT_EQ(drain(*h).tokens, want[i]) << "request " << i;
  }
  expect_no_leaks(**e);
}

TEST_F(EngineModelTest, PreemptionWithATinyKvPoolKeepsTokens) {
  const std::vector<Case> cases = mixed_cases();
  const auto want = expected(cases);
  engine::EngineArgs args = small_args();
  // 1 KiB per token (tiny preset): 24 blocks of 16 tokens = 384 tokens for 32 requests of up to 106.
  args.kv_cache = "384KiB";
  auto e = engine::LlmEngine::create(model_dir(), args);
  ASSERT_TRUE(e.ok()) << e.status().message();
  std::vector<engine::RequestHandle> handles;
  for (const Case& c : cases) {
    auto h = (*e)->add_request(make_request(c.prompt, greedy(c.max_tokens)));
    ASSERT_TRUE(h.ok()) << h.status().message();
    handles.push_back(std::move(h).value());
  }
  for (size_t i = 0; i < cases.size(); ++i) EXPECT_EQ(drain(handles[i]).tokens, want[i]) << "request " << i;
  EXPECT_GT((*e)->stats().scheduler.num_preemptions, 0) << "the pool was meant to be too small";
  expect_no_leaks(**e);
}

TEST_F(EngineModelTest, PrefixCacheHitIsReported) {
  auto e = engine::LlmEngine::create(model_dir(), small_args());
  ASSERT_TRUE(e.ok()) << e.status().message();
  std::vector<int32_t> a, b;
  for (int32_t i = 0; i < 50; ++i) a.push_back((i * 31 + 5) % 500);
  b.assign(a.begin(), a.begin() + 40);
  b.push_back(7);
  auto ha = (*e)->add_request(make_request(a, greedy(2)));
  ASSERT_TRUE(ha.ok());
  EXPECT_EQ(drain(*ha).num_cached_tokens, 0);
  auto hb = (*e)->add_request(make_request(b, greedy(2)));
  ASSERT_TRUE(hb.ok());
  const Result rb = drain(*hb);
  EXPECT_EQ(rb.num_cached_tokens, 32) << "two full 16-token blocks of the shared 40 tokens";
  model::LoadOptions options;
  options.max_seq_len = 64;
  auto m = model::load_model(model_dir(), options);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(rb.tokens, greedy_alone(**m, b, 2));
  expect_no_leaks(**e);
}

TEST_F(EngineModelTest, AbortFreesBlocks) {
  auto e = engine::LlmEngine::create(model_dir(), small_args());
  ASSERT_TRUE(e.ok()) << e.status().message();
  std::vector<int32_t> prompt(60, 9);
  auto h = (*e)->add_request(make_request(prompt, greedy(90)));
  ASSERT_TRUE(h.ok());
  auto first = h->next();  // at least one token: the request holds blocks
  ASSERT_TRUE(first.has_value());
  h->abort();
  // On a slow (loaded) machine the engine may finish all 90 tokens before this thread reads the
  // first output; the merged delta then already carries the final finish reason.
  Result r = first->finished() ? Result{} : drain(*h);
  if (first->finished()) r.finish = first->finish_reason;
  ASSERT_TRUE(r.finish.has_value());
  EXPECT_TRUE(r.finish == engine::FinishReason::kAbort || r.finish == engine::FinishReason::kLength)
      << "finish reason " << static_cast<int>(*r.finish) << " after " << r.tokens.size() << " tokens";
  expect_no_leaks(**e);
}

// A pool smaller than one max_model_len sequence is refused at start-up with a message; a request
// longer than max_model_len is refused at add_request; requests that fit one at a time but not
// together wait for blocks (queued) and still finish. Never a crash.
TEST_F(EngineModelTest, RequestsThatCannotFitAreRejectedOrQueued) {
  engine::EngineArgs args = small_args();
  args.kv_cache = "128KiB";  // 8 blocks of 16 tokens (1 KiB each) < one 160-token sequence
  auto refused = engine::LlmEngine::create(model_dir(), args);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), base::ErrorCode::kResourceExhausted);
  EXPECT_NE(refused.status().message().find("--kv-cache"), std::string::npos) << refused.status().message();

  args.kv_cache = "160KiB";  // exactly one 160-token sequence
  auto e = engine::LlmEngine::create(model_dir(), args);
  ASSERT_TRUE(e.ok()) << e.status().message();
  auto too_long = (*e)->add_request(make_request(std::vector<int32_t>(200, 4), greedy(4)));
  ASSERT_FALSE(too_long.ok());
  EXPECT_EQ(too_long.status().code(), base::ErrorCode::kInvalidArgument) << too_long.status().message();
  std::vector<engine::RequestHandle> handles;
  for (int32_t r = 0; r < 3; ++r) {
    auto h = (*e)->add_request(make_request(std::vector<int32_t>(100, 4 + r), greedy(8)));
    ASSERT_TRUE(h.ok()) << h.status().message();
    handles.push_back(std::move(h).value());
  }
  for (auto& h : handles) {
    const Result r = drain(h);
    EXPECT_EQ(r.tokens.size(), 8u);
    EXPECT_EQ(r.finish, engine::FinishReason::kLength);
  }
  expect_no_leaks(**e);
}

TEST_F(EngineModelTest, MinTokensBlocksStopIdsAndLogprobsMatchTheModel) {
  std::vector<int32_t> prompt;
  for (int32_t i = 0; i < 20; ++i) prompt.push_back((i * 41 + 2) % 500);
  model::LoadOptions options;
  options.max_seq_len = 64;
  auto m = model::load_model(model_dir(), options);
  ASSERT_TRUE(m.ok());
  auto cache = (*m)->new_kv_cache();
  auto logits = (*m)->forward(prompt, 0, *cache, 1);
  ASSERT_TRUE(logits.ok());
  const std::vector<float> row(logits->begin(), logits->end());
  const auto first = static_cast<int32_t>(std::max_element(row.begin(), row.end()) - row.begin());

  auto e = engine::LlmEngine::create(model_dir(), small_args());
  ASSERT_TRUE(e.ok()) << e.status().message();
  // The greedy first token is a stop id: without min_tokens the request ends at once.
  engine::SamplingParams stop = greedy(8);
  stop.stop_token_ids = {first};
  auto h1 = (*e)->add_request(make_request(prompt, stop));
  ASSERT_TRUE(h1.ok());
  EXPECT_EQ(drain(*h1).tokens, std::vector<int32_t>{first});
  // With min_tokens 3 it cannot be sampled for the first three tokens.
  stop.min_tokens = 3;
  stop.logprobs = 4;
  auto h2 = (*e)->add_request(make_request(prompt, stop));
  ASSERT_TRUE(h2.ok());
  const Result r2 = drain(*h2);
  ASSERT_GE(r2.tokens.size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_NE(r2.tokens[i], first) << "token " << i;
  // Logprobs are of the raw model distribution: the first top entry is `first` (blocked, not sampled).
  ASSERT_EQ(r2.logprobs.size(), r2.tokens.size());
  const engine::TokenLogprobs& lp = r2.logprobs[0];
  ASSERT_EQ(lp.top.size(), 4u);
  EXPECT_EQ(lp.top[0].token_id, first);
  double z = 0.0;
  const float mx = row[static_cast<size_t>(first)];
  for (float l : row) z += std::exp(static_cast<double>(l - mx));
  EXPECT_NEAR(lp.top[0].logprob, -std::log(z), 1e-4);
  EXPECT_NEAR(lp.sampled.logprob, row[static_cast<size_t>(r2.tokens[0])] - mx - std::log(z), 1e-4);
  for (size_t i = 1; i < lp.top.size(); ++i) EXPECT_GE(lp.top[i - 1].logprob, lp.top[i].logprob);
  expect_no_leaks(**e);
}

TEST_F(EngineModelTest, MatchesTransformersGoldenAmongOtherRequests) {
  std::ifstream in(std::string(NIBBLE_SOURCE_DIR) + "/tests/golden/models/qwen3_gqa4_long.json");
  ASSERT_TRUE(in.good());
  const nlohmann::json golden = nlohmann::json::parse(in);
  TempDir tmp("engine_golden");
  std::vector<std::string> make = {"make-model", tmp / "m"};
  for (const auto& a : golden["make_model_args"]) make.push_back(a.get<std::string>());
  const auto made = testing_util::run_nibble(make, true);
  ASSERT_EQ(made.exit_code, 0) << made.output;
  const auto prompt = golden["prompt_ids"].get<std::vector<int32_t>>();
  const auto want = golden["greedy_ids"].get<std::vector<int32_t>>();
  engine::EngineArgs ea = small_args();
  ea.max_model_len = 400;
  auto e = engine::LlmEngine::create(tmp / "m", ea);
  ASSERT_TRUE(e.ok()) << e.status().message();
  std::vector<engine::RequestHandle> others;
  for (int32_t r = 0; r < 8; ++r) {
    std::vector<int32_t> p(prompt.begin(), prompt.begin() + 10 + r * 20);
    auto h = (*e)->add_request(make_request(p, greedy(20)));
    ASSERT_TRUE(h.ok());
    others.push_back(std::move(h).value());
  }
  auto h = (*e)->add_request(make_request(prompt, greedy(static_cast<int32_t>(want.size()))));
  ASSERT_TRUE(h.ok()) << h.status().message();
  EXPECT_EQ(drain(*h).tokens, want);
  for (auto& o : others) drain(o);
  expect_no_leaks(**e);
}

TEST_F(EngineModelTest, BenchConcurrencyRunsThroughTheEngine) {
  // `nibble bench MODEL -p P -n N --concurrency LIST --json`: one point per concurrency, each with
  // every request's N tokens; the alias `bench-engine` gives the same form.
  for (const std::string& form : {std::string("bench"), std::string("bench-engine")}) {
    const auto r = testing_util::run_nibble(
        {form, model_dir(), "-p", "12", "-n", "5", "--concurrency", "1,3", "--json", "-t", "2"}, false);
    ASSERT_EQ(r.exit_code, 0) << form << ": " << r.output;
    const nlohmann::json j = nlohmann::json::parse(r.output);
    EXPECT_EQ(j["prompt_tokens"], 12);
    EXPECT_EQ(j["output_tokens"], 5);
    ASSERT_EQ(j["points"].size(), 2u);
    EXPECT_EQ(j["points"][0]["concurrency"], 1);
    EXPECT_EQ(j["points"][0]["output_tokens"], 5);
    EXPECT_EQ(j["points"][1]["concurrency"], 3);
    EXPECT_EQ(j["points"][1]["output_tokens"], 15);
    EXPECT_EQ(j["points"][0]["speedup"], 1.0);
    EXPECT_GT(j["points"][1]["output_tok_s"].get<double>(), 0.0);
    // >= 0, not > 0: on a loaded machine a request of a tiny model can finish before its consumer
    // thread first reads, and then all its tokens arrive in one delta (TPOT measured as 0).
    EXPECT_GE(j["points"][1]["mean_tpot_s"].get<double>(), 0.0);
  }
  const auto bad = testing_util::run_nibble({"bench", model_dir(), "--concurrency", "1,x"}, true);
  EXPECT_EQ(bad.exit_code, 2) << bad.output;
  EXPECT_NE(bad.output.find("--concurrency"), std::string::npos) << bad.output;
}

// gpt-oss alternates sliding-window (128) and full attention layers: the engine gives each kind its
// own KV cache group and frees sliding-window blocks that fall out of the window. Prompts longer
// than the window, run concurrently with chunked prefill, must give exactly the greedy tokens of
// the model alone (contiguous cache, nothing freed), and every block must come back.
TEST_F(EngineModelTest, GptOssSlidingWindowBlocksFreedWithoutChangingTokens) {
  TempDir tmp("engine_gpt_oss");
  model::RandomModelSpec spec;
  spec.arch = "gpt-oss";
  spec.preset = "tiny";
  spec.seed = 5;
  spec.init_std = 0.08;
  ASSERT_TRUE(model::write_random_checkpoint(tmp / "m", spec).ok());
  std::vector<Case> cases;
  for (int32_t r = 0; r < 6; ++r) {
    Case c;
    for (int32_t i = 0; i < 100 + r * 30; ++i) c.prompt.push_back((r * 71 + i * 37 + 5) % 500);
    c.max_tokens = 20 + r * 6;  // up to 300 tokens in all: well past the 128-token window
    cases.push_back(std::move(c));
  }
  model::LoadOptions options;
  options.max_seq_len = 320;
  options.num_threads = 2;
  auto m = model::load_model(tmp / "m", options);
  ASSERT_TRUE(m.ok()) << m.status().message();
  ASSERT_EQ((*m)->config().sliding_window, 128);
  std::vector<std::vector<int32_t>> want;
  for (const Case& c : cases) want.push_back(greedy_alone(**m, c.prompt, c.max_tokens));

  engine::EngineArgs args = small_args();
  args.max_model_len = 320;
  auto e = engine::LlmEngine::create(tmp / "m", args);
  ASSERT_TRUE(e.ok()) << e.status().message();
  const auto& groups = (*e)->metadata().kv_cache_groups;
  ASSERT_EQ(groups.size(), 2u);
  EXPECT_EQ(groups[1].kind, engine::AttentionKind::kSlidingWindow);
  EXPECT_EQ(groups[1].sliding_window_tokens, 128);
  std::vector<engine::RequestHandle> handles;
  for (const Case& c : cases) {
    auto h = (*e)->add_request(make_request(c.prompt, greedy(c.max_tokens)));
    ASSERT_TRUE(h.ok()) << h.status().message();
    handles.push_back(std::move(h).value());
  }
  for (size_t i = 0; i < cases.size(); ++i) EXPECT_EQ(drain(handles[i]).tokens, want[i]) << "request " << i;
  expect_no_leaks(**e);

  // One request alone, 300 tokens long: the sliding group holds at most the window and a step's
  // tokens, so its blocks peak well below two full tables (2 x 19 blocks of 16 tokens).
  args.max_num_seqs = 1;
  auto alone = engine::LlmEngine::create(tmp / "m", args);
  ASSERT_TRUE(alone.ok()) << alone.status().message();
  int32_t peak_used = 0;
  auto h = (*alone)->add_request(make_request(cases.back().prompt, greedy(cases.back().max_tokens)));
  ASSERT_TRUE(h.ok());
  Result r;
  while (auto out = h->next()) {
    const engine::EngineStats s = (*alone)->stats();
    peak_used = std::max(peak_used, s.scheduler.kv_num_blocks - s.scheduler.kv_num_free_blocks);
    r.tokens.insert(r.tokens.end(), out->new_token_ids.begin(), out->new_token_ids.end());
    if (out->finished()) break;
  }
  EXPECT_EQ(r.tokens, want.back());
  const int32_t full_blocks =
      (static_cast<int32_t>(cases.back().prompt.size()) + cases.back().max_tokens + 15) / 16;
  EXPECT_GT(peak_used, full_blocks);
  EXPECT_LT(peak_used, 2 * full_blocks - 5) << "sliding-window blocks were not freed";
  expect_no_leaks(**alone);
}

}  // namespace
}  // namespace nibble
