// compute_metrics against vLLM's own calculate_metrics on the same synthetic outputs
// (tests/golden/bench/vllm_metrics.json, made by tests/conformance/gen_bench_serve.py).
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "base/file_util.h"
#include "bench/metrics.h"
#include "bench/serve_runner.h"

namespace nibble::bench {
namespace {

void expect_close(double actual, double expected, const std::string& what) {
  EXPECT_NEAR(actual, expected, 1e-9 * std::max(1.0, std::fabs(expected))) << what;
}

void expect_stats(const MetricStats& s, const nlohmann::json& e, const std::string& name) {
  expect_close(s.mean_ms, e["mean_" + name + "_ms"].get<double>(), "mean " + name);
  expect_close(s.median_ms, e["median_" + name + "_ms"].get<double>(), "median " + name);
  expect_close(s.std_ms, e["std_" + name + "_ms"].get<double>(), "std " + name);
  const nlohmann::json& ps = e["percentiles_" + name + "_ms"];
  ASSERT_EQ(s.percentiles_ms.size(), ps.size());
  for (size_t i = 0; i < ps.size(); ++i) {
    EXPECT_EQ(s.percentiles_ms[i].first, ps[i][0].get<double>());
    expect_close(s.percentiles_ms[i].second, ps[i][1].get<double>(), "p" + ps[i][0].dump() + " " + name);
  }
}

TEST(MetricsGolden, MatchesVllmCalculateMetrics) {
  const std::string path = std::string(NIBBLE_SOURCE_DIR) + "/tests/golden/bench/vllm_metrics.json";
  auto text = base::read_file(path);
  ASSERT_TRUE(text.ok()) << text.status().message();
  const nlohmann::json doc = nlohmann::json::parse(*text);
  ASSERT_GE(doc["cases"].size(), 4u);
  for (const nlohmann::json& c : doc["cases"]) {
    SCOPED_TRACE("case with " + std::to_string(c["outputs"].size()) + " requests");
    std::vector<RequestOutput> outs;
    for (const nlohmann::json& o : c["outputs"]) {
      RequestOutput r;
      r.success = o["success"].get<bool>();
      if (!r.success) r.error = "HTTP 500";
      r.prompt_len = o["prompt_len"].get<int64_t>();
      r.output_tokens = o["output_tokens"].get<int64_t>();
      r.ttft_s = o["ttft"].get<double>();
      r.itl_s = o["itl"].get<std::vector<double>>();
      r.latency_s = o["latency"].get<double>();
      r.start_time_s = o["start_time"].get<double>();
      outs.push_back(std::move(r));
    }
    resolve_output_lens(&outs, nullptr);  // vLLM without a tokenizer counts a usage-less output as 1
    GoodputSlo slo;
    const nlohmann::json& g = c["goodput"];
    if (g.contains("ttft")) slo.ttft_ms = g["ttft"].get<double>();
    if (g.contains("tpot")) slo.tpot_ms = g["tpot"].get<double>();
    if (g.contains("e2el")) slo.e2el_ms = g["e2el"].get<double>();
    const BenchmarkMetrics m =
        compute_metrics(outs, c["dur_s"].get<double>(), c["percentiles"].get<std::vector<double>>(), slo);
    const nlohmann::json& e = c["expected"];
    EXPECT_EQ(m.completed, e["completed"].get<int64_t>());
    EXPECT_EQ(m.failed, e["failed"].get<int64_t>());
    EXPECT_EQ(m.total_input, e["total_input"].get<int64_t>());
    EXPECT_EQ(m.total_output, e["total_output"].get<int64_t>());
    EXPECT_EQ(m.output_lens, e["actual_output_lens"].get<std::vector<int64_t>>());
    expect_close(m.request_throughput, e["request_throughput"].get<double>(), "request_throughput");
    expect_close(m.request_goodput, e["request_goodput"].get<double>(), "request_goodput");
    expect_close(m.output_throughput, e["output_throughput"].get<double>(), "output_throughput");
    expect_close(m.total_token_throughput, e["total_token_throughput"].get<double>(),
                 "total_token_throughput");
    EXPECT_EQ(m.max_output_tokens_per_s, e["max_output_tokens_per_s"].get<double>());
    EXPECT_EQ(m.max_concurrent_requests, e["max_concurrent_requests"].get<int64_t>());
    expect_stats(m.ttft, e, "ttft");
    expect_stats(m.tpot, e, "tpot");
    expect_stats(m.itl, e, "itl");
    expect_stats(m.e2el, e, "e2el");
  }
}

}  // namespace
}  // namespace nibble::bench
