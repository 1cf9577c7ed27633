// `nibble bench serve` against servers on 127.0.0.1 that stream at known times: every metric is
// compared with the value computed by hand from the script (within 1 ms, or 0.1 % for
// throughputs), including the TPOT exclusion of 1-token requests and goodput. All request loops
// are bounded (a handful of requests, each finishing within ~150 ms of scripted time).
//
// The servers time their scripts from the moment a request reaches the handler, so the hand
// values of TTFT and E2EL are offset by the measured time from the client's send to that moment
// (connection and dispatch on the server: not part of the script). On a busy host the servers
// can also send late (sleep_until overshoots); each measures its own lateness behind the script
// and the 1 ms tolerance is widened by exactly that. The CLI tests, which run in another process,
// check the metrics made of chunk gaps (TPOT, ITL) against the script.
// A scenario is tried up to kAttempts times (a fresh server each time) so that one scheduling
// hiccup on a shared machine does not fail the suite; every attempt's checks are the same.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "base/file_util.h"
#include "bench/metrics.h"
#include "bench/serve_client.h"
#include "bench/serve_runner.h"
#include "echo_server.h"
#include "scripted_server.h"

namespace nibble::bench {
namespace {

using testing::EchoServer;
using testing::ScriptedServer;

constexpr double kTolMs = 1.0;
constexpr int kAttempts = 5;

// Collects check failures so that a timing scenario can be retried before reporting them.
struct Checker {
  std::vector<std::string> failures;
  void near(const std::string& what, double actual, double expected, double tol) {
    if (!(std::fabs(actual - expected) <= tol)) {
      failures.push_back(what + ": " + std::to_string(actual) + " vs hand value " + std::to_string(expected) +
                         " (tolerance " + std::to_string(tol) + ")");
    }
  }
  void check(const std::string& what, bool ok) {
    if (!ok) failures.push_back(what);
  }
};

// Runs attempt(checker) until one passes (at most kAttempts times); reports the last failures.
template <typename F>
void with_retries(F attempt) {
  std::vector<std::string> failures;
  for (int i = 0; i < kAttempts; ++i) {
    Checker c;
    attempt(c);
    if (c.failures.empty()) {
      if (i > 0) std::printf("passed on attempt %d of %d\n", i + 1, kAttempts);
      return;
    }
    failures = c.failures;
    std::printf("attempt %d of %d: %zu checks off, first: %s\n", i + 1, kAttempts, failures.size(),
                failures[0].c_str());
  }
  for (const std::string& f : failures) ADD_FAILURE() << f;
}

// A scratch directory under the test temp dir, removed (with its files) when it goes out of scope.
class ScratchDir {
 public:
  explicit ScratchDir(const std::string& name)
      : path_(::testing::TempDir() + "/nibble_bench_serve_" + name + "_" + std::to_string(getpid())) {
    const std::string cmd = "mkdir -p '" + path_ + "'";
    EXPECT_EQ(std::system(cmd.c_str()), 0);
  }
  ~ScratchDir() {
    const std::string cmd = "rm -rf '" + path_ + "'";
    if (std::system(cmd.c_str()) != 0) std::fprintf(stderr, "could not remove %s\n", path_.c_str());
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Six scripted requests. By hand (ms): (TTFT, ITLs, E2EL, TPOT, output tokens, prompt tokens)
//   0: 50, [10 x4], 90, (90-50)/4 = 10, 5 (usage), 7
//   1: 30, [], 30, excluded (1 token), 1, 3
//   2: 80, [20 x2], 120, (120-80)/5 = 8, 6 (usage: chunks carry several tokens), 11
//   3: HTTP 500 -> failed
//   4: 20, [30 x3], 110, 90/3 = 30, 4 (no usage: re-tokenized " w0 w1 w2 w3"),
//      7 (no usage: the dataset's count, 6 words + BOS from the server's /tokenize)
//   5: mid-stream error after the first chunk -> failed
const char* kScriptLines[] = {
    R"({"prompt": "script ttft=50 gap=10 chunks=5 usage=5 prompt=7", "output_len": 5})",
    R"({"prompt": "script ttft=30 chunks=1 usage=1 prompt=3", "output_len": 1})",
    R"({"prompt": "script ttft=80 gap=20 chunks=3 usage=6 prompt=11", "output_len": 6})",
    R"({"prompt": "script status=500", "output_len": 3})",
    R"({"prompt": "script ttft=20 gap=30 chunks=4 usage=-1 prompt=5", "output_len": 4})",
    R"({"prompt": "script ttft=10 chunks=3 error=1", "output_len": 3})",
};

std::string write_script_jsonl(const std::string& dir) {
  const std::string path = dir + "/scripts.jsonl";
  std::ofstream out(path);
  for (const char* line : kScriptLines) out << line << "\n";
  return path;
}

// dispatch_ms[i]: measured time from request i's send to its handler start (0 when unknown).
void check_hand_values(Checker& c, const std::vector<RequestOutput>& outs, const BenchmarkMetrics& m,
                       double duration_s, double tol_ms, const std::vector<double>& dispatch_ms) {
  c.check("6 outputs", outs.size() == 6u);
  if (outs.size() != 6u) return;
  c.check("completed == 4", m.completed == 4);
  c.check("failed == 2", m.failed == 2);
  c.check("request 3 fails with HTTP 500: " + outs[3].error,
          !outs[3].success && outs[3].error.find("HTTP 500") != std::string::npos &&
              outs[3].error.find("scripted failure") != std::string::npos);
  c.check("request 5 fails mid-stream: " + outs[5].error,
          !outs[5].success && outs[5].error.find("scripted mid-stream failure") != std::string::npos);
  c.check("output lens [5, 1, 6, 0, 4, 0]", m.output_lens == std::vector<int64_t>{5, 1, 6, 0, 4, 0});
  c.check("total output 16", m.total_output == 16);
  c.check("total input 28", m.total_input == 7 + 3 + 11 + 7);
  c.check("request 0 counted from usage", outs[0].output_len_from_usage);
  c.check("request 4 re-tokenized", !outs[4].output_len_from_usage);

  // Per request.
  const double ttft[] = {50, 30, 80, 0, 20, 0}, e2el[] = {90, 30, 120, 0, 110, 0},
               gap[] = {10, 0, 20, 0, 30, 0};
  const size_t num_itl[] = {4, 0, 2, 0, 3, 0};
  for (size_t i : {0u, 1u, 2u, 4u}) {
    const std::string r = "request " + std::to_string(i) + " ";
    c.near(r + "TTFT ms", outs[i].ttft_s * 1000, ttft[i] + dispatch_ms[i], tol_ms);
    c.near(r + "E2EL ms", outs[i].latency_s * 1000, e2el[i] + dispatch_ms[i], tol_ms);
    c.check(r + "ITL count", outs[i].itl_s.size() == num_itl[i]);
    for (double itl : outs[i].itl_s) c.near(r + "ITL ms", itl * 1000, gap[i], tol_ms);
  }
  // Aggregates (hand values as in metrics_test.cpp's HandComputedScenario); the TTFT and E2EL
  // statistics widen by the largest dispatch offset.
  const double max_dispatch_ms = *std::max_element(dispatch_ms.begin(), dispatch_ms.end());
  const double tol_abs_ms = tol_ms + max_dispatch_ms;
  c.near("mean TTFT", m.ttft.mean_ms, 45.0, tol_abs_ms);
  c.near("median TTFT", m.ttft.median_ms, 40.0, tol_abs_ms);
  c.near("std TTFT", m.ttft.std_ms, std::sqrt(525.0), tol_abs_ms);
  c.near("p90 TTFT", m.ttft.percentiles_ms[1].second, 71.0, tol_abs_ms);
  c.near("p99 TTFT", m.ttft.percentiles_ms[2].second, 79.1, tol_abs_ms);
  c.near("mean TPOT ([10, 8, 30]; the 1-token request excluded)", m.tpot.mean_ms, 16.0, tol_ms);
  c.near("median TPOT", m.tpot.median_ms, 10.0, tol_ms);
  c.near("p99 TPOT", m.tpot.percentiles_ms[2].second, 29.6, tol_ms);
  c.near("mean ITL", m.itl.mean_ms, 170.0 / 9, tol_ms);
  c.near("median ITL", m.itl.median_ms, 20.0, tol_ms);
  c.near("mean E2EL", m.e2el.mean_ms, 87.5, tol_abs_ms);
  c.near("median E2EL", m.e2el.median_ms, 100.0, tol_abs_ms);
  // Throughputs over the measured wall time (0.1 %), goodput with ttft:60 tpot:15 -> #0 and #1.
  c.near("output throughput", m.output_throughput, 16 / duration_s, 16 / duration_s * 1e-3);
  c.near("total token throughput", m.total_token_throughput, 44 / duration_s, 44 / duration_s * 1e-3);
  c.near("request throughput", m.request_throughput, 4 / duration_s, 4 / duration_s * 1e-3);
  c.near("request goodput", m.request_goodput, 2 / duration_s, 2 / duration_s * 1e-3);
  c.near("peak chunks/s (5 + 1 + 3 + 4, all in one second)", m.max_output_tokens_per_s, 13.0, 0);
  // vLLM counts the requests active in each 1-s bucket: all four share the first one.
  c.check("peak concurrent requests 4", m.max_concurrent_requests == 4);
}

struct Scenario {
  std::vector<RequestOutput> outputs;
  BenchmarkMetrics metrics;
  double duration_s = 0;
  std::vector<double> dispatch_ms;  // per request: send -> handler start
};

// Time from each request's send (client clock) to its handler start (server record), in ms.
template <typename ReceivedMap>
std::vector<double> dispatch_offsets(const RunResult& run, const ReceivedMap& received_by_id) {
  std::vector<double> offsets(run.outputs.size(), 0.0);
  for (size_t i = 0; i < run.outputs.size(); ++i) {
    auto it = received_by_id.find("nibble-bench-" + std::to_string(i));
    if (it == received_by_id.end()) continue;
    const auto sent = run.start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                      std::chrono::duration<double>(run.outputs[i].start_time_s));
    offsets[i] = std::max(0.0, std::chrono::duration<double, std::milli>(it->second - sent).count());
  }
  return offsets;
}

Scenario run_scripted(ScriptedServer& server, StreamApi api, int64_t concurrency) {
  const ScratchDir scratch("lib");
  const std::string& dir = scratch.path();
  ClientConfig cfg;
  cfg.base_url = server.base_url();
  cfg.endpoint = api == StreamApi::kChat ? "/v1/chat/completions" : "/v1/completions";
  cfg.timeout_s = 10;
  auto tok = ServerTokenizer::create(cfg, "scripted-model", 0);
  EXPECT_TRUE(tok.ok()) << tok.status().message();
  if (!tok.ok()) return {};
  EXPECT_EQ((*tok)->vocab_size(), ScriptedServer::kVocabSize);  // probed through /detokenize
  auto requests = sample_jsonl(tok->get(), write_script_jsonl(dir), 6);
  EXPECT_TRUE(requests.ok());
  RunOptions opts;
  opts.client = cfg;
  opts.api = api;
  opts.model = "scripted-model";
  opts.max_concurrency = concurrency;
  opts.progress = false;
  Scenario s;
  // One unmeasured warm-up request (like --num-warmups): first-use costs stay out of the timings.
  run_requests(opts, {{"script ttft=1 chunks=1", 1, 1}});
  RunResult run = run_requests(opts, *requests);
  resolve_output_lens(&run.outputs, tok->get());
  GoodputSlo slo;
  slo.ttft_ms = 60;
  slo.tpot_ms = 15;
  s.metrics = compute_metrics(run.outputs, run.duration_s, {50, 90, 99}, slo);
  std::map<std::string, std::chrono::steady_clock::time_point> received;
  for (const auto& [id, rec] : server.records()) received[id] = rec.received;
  s.dispatch_ms = dispatch_offsets(run, received);
  s.outputs = std::move(run.outputs);
  s.duration_s = run.duration_s;
  return s;
}

TEST(BenchServeScripted, CompletionsSequential) {
  with_retries([](Checker& c) {
    ScriptedServer server;
    c.check("server listening", server.port() > 0);
    const Scenario s = run_scripted(server, StreamApi::kCompletions, 1);
    const double tol_ms = kTolMs + server.max_lateness_ms();
    check_hand_values(c, s.outputs, s.metrics, s.duration_s, tol_ms, s.dispatch_ms);
    // Sequential: the wall time covers at least the scripted times of all six requests.
    c.check("duration covers the script", s.duration_s >= (90 + 30 + 120 + 110 + 10) / 1000.0);
    // The client's chunk gaps equal the server's recorded send gaps (same clock) within 1 ms.
    const auto records = server.records();
    for (size_t i : {0u, 2u, 4u}) {
      const auto& rec = records.at("nibble-bench-" + std::to_string(i));
      if (rec.chunk_sent.size() != s.outputs[i].itl_s.size() + 1) {
        c.check("chunk count matches the server's", false);
        continue;
      }
      for (size_t k = 0; k < s.outputs[i].itl_s.size(); ++k) {
        const double server_gap_ms =
            std::chrono::duration<double, std::milli>(rec.chunk_sent[k + 1] - rec.chunk_sent[k]).count();
        c.near("ITL vs the server's send gap", s.outputs[i].itl_s[k] * 1000, server_gap_ms, kTolMs);
      }
    }
  });
}

TEST(BenchServeScripted, RequestBodiesAreVllms) {
  ScriptedServer server;
  const Scenario s = run_scripted(server, StreamApi::kCompletions, 2);
  EXPECT_EQ(s.metrics.completed, 4);
  const auto records = server.records();
  ASSERT_EQ(records.size(), 6u);
  const nlohmann::json body = nlohmann::json::parse(records.at("nibble-bench-2").body);
  EXPECT_EQ(body["stream"], true);
  EXPECT_EQ(body["stream_options"]["include_usage"], true);
  EXPECT_EQ(body["model"], "scripted-model");
  EXPECT_EQ(body["prompt"], "script ttft=80 gap=20 chunks=3 usage=6 prompt=11");
  EXPECT_EQ(body["max_tokens"], 6);
  EXPECT_FALSE(body.contains("ignore_eos"));
}

TEST(BenchServeScripted, ChatConcurrent) {
  with_retries([](Checker& c) {
    ScriptedServer server;
    const Scenario s = run_scripted(server, StreamApi::kChat, 3);
    check_hand_values(c, s.outputs, s.metrics, s.duration_s, kTolMs + server.max_lateness_ms(),
                      s.dispatch_ms);
    const auto records = server.records();
    const nlohmann::json body = nlohmann::json::parse(records.at("nibble-bench-0").body);
    c.check("chat message",
            body["messages"][0]["content"][0]["text"] == "script ttft=50 gap=10 chunks=5 usage=5 prompt=7");
    c.check("max_completion_tokens", body["max_completion_tokens"] == 5);
  });
}

TEST(BenchServeEcho, IndependentServerWithOtherChunking) {
  with_retries([](Checker& c) {
    EchoServer server;
    ClientConfig cfg;
    cfg.base_url = server.base_url();
    cfg.endpoint = "/v1/chat/completions";
    cfg.timeout_s = 10;
    std::vector<SampleRequest> requests = {
        {"alpha beta gamma", 0, 4}, {"one two", 0, 4}, {"x y z w v", 0, 2}};
    RunOptions opts;
    opts.client = cfg;
    opts.api = StreamApi::kChat;
    opts.model = "echo";
    opts.max_concurrency = 2;
    opts.progress = false;
    run_requests(opts, {{"warm up", 0, 1}});  // unmeasured, like --num-warmups
    RunResult run = run_requests(opts, requests);
    c.check("usage present everywhere", resolve_output_lens(&run.outputs, nullptr) == 0);
    const BenchmarkMetrics m = compute_metrics(run.outputs, run.duration_s, {99}, {});
    c.check("3 completed: " + run.outputs[0].error, m.completed == 3);
    if (m.completed != 3) return;
    const double tol_ms = kTolMs + server.max_lateness_ms();
    const std::vector<double> dispatch_ms = dispatch_offsets(run, server.received());
    // By hand (plus the measured dispatch offset for TTFT and E2EL): TTFT 20 (the role-only chunk counts),
    // ITL 15 per content event, E2EL 20 + 15 n, TPOT 15 n / (n - 1): n = 4 -> 80 ms and 20 ms; n = 2 -> 50 ms
    // and 30 ms.
    for (size_t i = 0; i < 3; ++i) {
      const std::string r = "request " + std::to_string(i) + " ";
      const int64_t n = requests[i].expected_output_len;
      c.near(r + "TTFT", run.outputs[i].ttft_s * 1000, 20 + dispatch_ms[i], tol_ms);
      c.near(r + "E2EL", run.outputs[i].latency_s * 1000, 20 + 15.0 * static_cast<double>(n) + dispatch_ms[i],
             tol_ms);
      c.check(r + "ITL count", run.outputs[i].itl_s.size() == static_cast<size_t>(n));
      for (double itl : run.outputs[i].itl_s) c.near(r + "ITL", itl * 1000, 15, tol_ms);
      c.check(r + "output tokens from usage", run.outputs[i].output_tokens == n);
    }
    c.check("echoed text", run.outputs[0].generated_text == " alpha beta gamma alpha");
    c.check("prompt_len from usage", run.outputs[1].prompt_len == 2);
    c.near("mean TPOT", m.tpot.mean_ms, (20 + 20 + 30) / 3.0, tol_ms);
    c.near("mean TTFT", m.ttft.mean_ms, 20 + (dispatch_ms[0] + dispatch_ms[1] + dispatch_ms[2]) / 3, tol_ms);
    c.check("total output 10", m.total_output == 10);
    c.check("total input 10", m.total_input == 3 + 2 + 5);
  });
}

TEST(BenchServeErrors, UnreachableServerFailsEveryRequestWithoutCrashing) {
  // A port nobody listens on: bind a server, remember its port, stop it.
  int port = 0;
  {
    ScriptedServer gone;
    port = gone.port();
  }
  RunOptions opts;
  opts.client.base_url = "http://127.0.0.1:" + std::to_string(port);
  opts.client.timeout_s = 2;
  opts.model = "m";
  opts.max_concurrency = 2;
  opts.progress = false;
  const RunResult run = run_requests(opts, {{"a", 1, 1}, {"b", 1, 1}, {"c", 1, 1}});
  const BenchmarkMetrics m = compute_metrics(run.outputs, run.duration_s, {99}, {});
  EXPECT_EQ(m.failed, 3);
  const auto lines = summarize_errors(run.outputs, 5);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].rfind("3 x HTTP request failed", 0), 0u) << lines[0];
}

// ---- The command line, end to end --------------------------------------------------------

struct CliRun {
  int rc = -1;
  std::string out;
};

CliRun run_cli(const std::string& args, const std::string& dir) {
  const std::string out_path = dir + "/stdout.txt";
  const std::string cmd = std::string(NIBBLE_BINARY) + " bench serve " + args + " > '" + out_path + "' 2> '" +
                          dir + "/stderr.txt'";
  CliRun r;
  r.rc = std::system(cmd.c_str());
  r.out = base::read_file(out_path).value();
  return r;
}

nlohmann::json read_json(const std::string& path) {
  return nlohmann::json::parse(base::read_file(path).value());
}

std::vector<std::string> list_dir(const std::string& dir, const std::string& prefix) {
  std::vector<std::string> names;
  const std::string cmd = "ls '" + dir + "' > '" + dir + "/ls.txt'";
  if (std::system(cmd.c_str()) != 0) return names;
  std::istringstream in(base::read_file(dir + "/ls.txt").value());
  for (std::string name; std::getline(in, name);) {
    if (name.rfind(prefix, 0) == 0) names.push_back(name);
  }
  return names;
}

TEST(BenchServeCli, SweepWritesSummaryJsonSweepAndSvg) {
  int attempt = 0;
  with_retries([&](Checker& c) {
    ScriptedServer server;
    const ScratchDir scratch("cli" + std::to_string(attempt++));
    const std::string& dir = scratch.path();
    const CliRun r = run_cli(
        "--base-url " + server.base_url() + " --dataset jsonl --dataset-path " + write_script_jsonl(dir) +
            " --num-prompts 6 --max-concurrency 1,2 --percentile-metrics ttft,tpot,itl,e2el"
            " --metric-percentiles 50,90,99 --goodput ttft:60 tpot:15 --save-result"
            " --result-dir " +
            dir + " --plot " + dir + "/sweep.svg --disable-progress",
        dir);
    const std::string err = base::read_file(dir + "/stderr.txt").value();
    c.check("exit 0: " + err, r.rc == 0);
    if (r.rc != 0) return;
    for (const char* line :
         {"============ Serving Benchmark Result ============\n",
          "Successful requests:                     4         \n",
          "Failed requests:                         2         \n",
          "Maximum request concurrency:             2         \n",
          "Total generated tokens:                  16        \n",
          "Total input tokens:                      28        \n", "Request goodput (req/s):",
          "P90 TPOT (ms):", "----------------End-to-end Latency----------------\n"}) {
      c.check(std::string("summary has: ") + line, r.out.find(line) != std::string::npos);
    }
    c.check("failures summarised: " + err,
            err.find("2 requests failed") != std::string::npos && err.find("HTTP 500") != std::string::npos);
    const auto results = list_dir(dir, "openai-infqps-concurrency");
    c.check("two result files", results.size() == 2u);
    if (results.size() != 2u) return;
    const double tol_ms = kTolMs + server.max_lateness_ms();
    for (const std::string& name : results) {
      const nlohmann::json one = read_json(dir + "/" + name);
      c.check("completed 4", one["completed"] == 4);
      c.check("failed 2", one["failed"] == 2);
      c.check("total_output_tokens 16", one["total_output_tokens"] == 16);
      c.check("model_id", one["model_id"] == "scripted-model");
      c.near("mean_tpot_ms", one["mean_tpot_ms"].get<double>(), 16.0, tol_ms);
      c.near("p99_tpot_ms", one["p99_tpot_ms"].get<double>(), 29.6, tol_ms);
      c.near("mean_itl_ms", one["mean_itl_ms"].get<double>(), 170.0 / 9, tol_ms);
      c.near("median_itl_ms", one["median_itl_ms"].get<double>(), 20.0, tol_ms);
      c.near("output_throughput x duration",
             one["output_throughput"].get<double>() * one["duration"].get<double>(), 16.0, 16e-3);
      c.near("request_goodput x duration",
             one["request_goodput"].get<double>() * one["duration"].get<double>(), 2.0, 2e-3);
    }
    const auto sweeps = list_dir(dir, "sweep-openai-infqps-scripted-model-");
    c.check("one sweep file", sweeps.size() == 1u);
    if (sweeps.size() != 1u) return;
    const nlohmann::json sweep = read_json(dir + "/" + sweeps[0]);
    c.check("two sweep rows", sweep["rows"].size() == 2u && sweep["rows"][0]["max_concurrency"] == 1 &&
                                  sweep["rows"][1]["max_concurrency"] == 2);
    const std::string svg = base::read_file(dir + "/sweep.svg").value();
    c.check("svg written",
            svg.find("<svg") != std::string::npos && svg.find("<polyline") != std::string::npos);
  });
}

TEST(BenchServeCli, RandomDatasetThroughServerTokenizerChat) {
  ScriptedServer server;
  const ScratchDir scratch("random");
  const std::string& dir = scratch.path();
  const CliRun r =
      run_cli("--base-url " + server.base_url() +
                  " --endpoint /v1/chat/completions --dataset random --random-input-len 32"
                  " --random-output-len 4 --num-prompts 3 --max-concurrency 3 --seed 5 --disable-progress",
              dir);
  ASSERT_EQ(r.rc, 0) << base::read_file(dir + "/stderr.txt").value();
  EXPECT_NE(r.out.find("Successful requests:                     3"), std::string::npos) << r.out;
  const auto records = server.records();
  ASSERT_EQ(records.size(), 3u);
  for (const auto& [id, rec] : records) {
    const nlohmann::json body = nlohmann::json::parse(rec.body);
    const std::string prompt = body["messages"][0]["content"][0]["text"];
    std::istringstream words(prompt);
    int64_t num_words = 0;
    for (std::string w; words >> w;) ++num_words;
    EXPECT_EQ(num_words, 31) << id;  // 32 minus the BOS the server's tokenizer adds
    EXPECT_EQ(body["max_completion_tokens"], 4);
    EXPECT_EQ(body["ignore_eos"], true);  // forced for random, as vLLM does
  }
}

TEST(BenchServeCli, EchoServerWithoutTokenizeEndpoint) {
  int attempt = 0;
  with_retries([&](Checker& c) {
    EchoServer server;
    const ScratchDir scratch("echo" + std::to_string(attempt++));
    const std::string& dir = scratch.path();
    { std::ofstream(dir + "/p.jsonl") << "{\"prompt\": \"a b c\", \"output_len\": 4}\n"; }
    const CliRun r =
        run_cli("--base-url " + server.base_url() +
                    " --endpoint /v1/chat/completions --dataset jsonl"
                    " --dataset-path " +
                    dir +
                    "/p.jsonl --num-prompts 3 --max-concurrency 3"
                    " --percentile-metrics itl,tpot --disable-progress --save-result --result-dir " +
                    dir + "/new/results",
                dir);
    c.check("exit 0", r.rc == 0);
    if (r.rc != 0) return;
    c.check("12 tokens generated: " + r.out,
            r.out.find("Total generated tokens:                  12        \n") != std::string::npos);
    c.check("9 input tokens",
            r.out.find("Total input tokens:                      9         \n") != std::string::npos);
    c.check("no TTFT section", r.out.find("Time to First Token") == std::string::npos);
    const std::string result_dir = dir + "/new/results";  // created by the command, as vLLM does
    const auto results = list_dir(result_dir, "openai-chat-infqps-concurrency3-echo-");
    c.check("one result", results.size() == 1u);
    if (results.size() != 1u) return;
    const nlohmann::json j = read_json(result_dir + "/" + results[0]);
    const double tol_ms = kTolMs + server.max_lateness_ms();
    c.near("mean_itl_ms", j["mean_itl_ms"].get<double>(), 15.0, tol_ms);
    c.near("mean_tpot_ms", j["mean_tpot_ms"].get<double>(), 20.0, tol_ms);  // 15 * 4 / 3
    c.check("no ttft keys", !j.contains("mean_ttft_ms"));
  });
}

TEST(BenchServeCli, BadFlagsAreErrors) {
  const ScratchDir scratch("bad");
  const std::string& dir = scratch.path();
  EXPECT_NE(run_cli("--base-url ftp://x --disable-progress", dir).rc, 0);
  EXPECT_NE(run_cli("--base-url http://127.0.0.1:1 --endpoint /v1/embeddings --disable-progress", dir).rc, 0);
  EXPECT_NE(run_cli("--base-url http://127.0.0.1:1 --goodput latency:5 --disable-progress", dir).rc, 0);
}

}  // namespace
}  // namespace nibble::bench
