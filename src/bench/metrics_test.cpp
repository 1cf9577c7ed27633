// Metric math on synthetic timestamps (no network), against values computed by hand with
// numpy's definitions (linear percentiles, population std).
#include "bench/metrics.h"

#include <gtest/gtest.h>

#include <cmath>

namespace nibble::bench {
namespace {

RequestOutput ok_request(double start_s, double ttft_s, std::vector<double> itl_s, int64_t output_tokens,
                         int64_t prompt_len) {
  RequestOutput o;
  o.success = true;
  o.start_time_s = start_s;
  o.ttft_s = ttft_s;
  double latency = ttft_s;
  for (double gap : itl_s) latency += gap;
  o.itl_s = std::move(itl_s);
  o.latency_s = latency;
  o.output_tokens = output_tokens;
  o.prompt_len = prompt_len;
  return o;
}

TEST(Percentile, MatchesNumpyLinear) {
  // np.percentile([1, 2, 3, 4], [0, 50, 90, 99, 100]) = [1, 2.5, 3.7, 3.97, 4]
  const std::vector<double> v = {4, 1, 3, 2};
  EXPECT_DOUBLE_EQ(percentile_linear(v, 0), 1.0);
  EXPECT_DOUBLE_EQ(percentile_linear(v, 50), 2.5);
  EXPECT_NEAR(percentile_linear(v, 90), 3.7, 1e-12);
  EXPECT_NEAR(percentile_linear(v, 99), 3.97, 1e-12);
  EXPECT_DOUBLE_EQ(percentile_linear(v, 100), 4.0);
  EXPECT_DOUBLE_EQ(percentile_linear({7}, 99), 7.0);
  EXPECT_DOUBLE_EQ(percentile_linear({}, 50), 0.0);
  // np.percentile([10, 20, 30, 40, 50], 99.9) = 40 + 0.996 * 10
  EXPECT_NEAR(percentile_linear({10, 20, 30, 40, 50}, 99.9), 49.96, 1e-12);
}

TEST(Stats, MeanAndPopulationStd) {
  // np.std([2, 4, 4, 4, 5, 5, 7, 9]) = 2 (ddof = 0)
  const std::vector<double> v = {2, 4, 4, 4, 5, 5, 7, 9};
  EXPECT_DOUBLE_EQ(mean_of(v), 5.0);
  EXPECT_DOUBLE_EQ(population_std_of(v), 2.0);
  EXPECT_DOUBLE_EQ(mean_of({}), 0.0);
  EXPECT_DOUBLE_EQ(population_std_of({}), 0.0);
  const MetricStats s = summarize_ms({0.002, 0.004, 0.004, 0.004, 0.005, 0.005, 0.007, 0.009}, {50, 99});
  EXPECT_NEAR(s.mean_ms, 5.0, 1e-9);
  EXPECT_NEAR(s.std_ms, 2.0, 1e-9);
  EXPECT_NEAR(s.median_ms, 4.5, 1e-9);
  ASSERT_EQ(s.percentiles_ms.size(), 2u);
  EXPECT_EQ(s.percentiles_ms[1].first, 99);
  EXPECT_NEAR(s.percentiles_ms[1].second, 7 + 0.93 * 2, 1e-9);  // rank 6.93
}

TEST(Metrics, VllmDocExample) {
  // vLLM docs: TTFT 100 ms, two 40 ms chunk gaps, 5 output tokens, E2EL 180 ms.
  // -> mean ITL 40 ms, TPOT = (180 - 100) / (5 - 1) = 20 ms.
  std::vector<RequestOutput> outs = {ok_request(0.0, 0.100, {0.040, 0.040}, 5, 10)};
  outs[0].latency_s = 0.180;
  const BenchmarkMetrics m = compute_metrics(outs, 1.0, {99}, {});
  EXPECT_NEAR(m.itl.mean_ms, 40.0, 1e-9);
  EXPECT_NEAR(m.tpot.mean_ms, 20.0, 1e-9);
  EXPECT_NEAR(m.ttft.mean_ms, 100.0, 1e-9);
  EXPECT_NEAR(m.e2el.mean_ms, 180.0, 1e-9);
}

// The scenario of the scripted-server integration test, on exact timestamps.
std::vector<RequestOutput> scripted_scenario() {
  std::vector<RequestOutput> outs;
  outs.push_back(ok_request(0.000, 0.050, {0.010, 0.010, 0.010, 0.010}, 5, 7));  // e2el 90, tpot 10
  outs.push_back(ok_request(0.100, 0.030, {}, 1, 3));                            // 1 token: no TPOT
  outs.push_back(ok_request(0.200, 0.080, {0.020, 0.020}, 6, 11));               // e2el 120, tpot 8
  RequestOutput failed;
  failed.error = "HTTP 500";
  failed.prompt_len = 99;
  outs.push_back(failed);
  outs.push_back(ok_request(0.400, 0.020, {0.030, 0.030, 0.030}, 4, 8));  // e2el 110, tpot 30
  return outs;
}

TEST(Metrics, HandComputedScenario) {
  const std::vector<RequestOutput> outs = scripted_scenario();
  GoodputSlo slo;
  slo.ttft_ms = 60;
  slo.tpot_ms = 15;
  const BenchmarkMetrics m = compute_metrics(outs, 0.5, {50, 90, 99}, slo);
  EXPECT_EQ(m.completed, 4);
  EXPECT_EQ(m.failed, 1);
  EXPECT_EQ(m.total_input, 7 + 3 + 11 + 8);  // the failed request's 99 is not counted
  EXPECT_EQ(m.total_output, 5 + 1 + 6 + 4);
  EXPECT_EQ(m.output_lens, (std::vector<int64_t>{5, 1, 6, 0, 4}));
  EXPECT_NEAR(m.request_throughput, 4 / 0.5, 1e-9);
  EXPECT_NEAR(m.output_throughput, 16 / 0.5, 1e-9);
  EXPECT_NEAR(m.total_token_throughput, (29 + 16) / 0.5, 1e-9);
  // Good: #0 (ttft 50, tpot 10), #1 (ttft 30, tpot counted as 0); not #2 (ttft 80), not #4 (tpot 30).
  EXPECT_NEAR(m.request_goodput, 2 / 0.5, 1e-9);

  // TTFT [50, 30, 80, 20]: mean 45, median 40, std sqrt(2100/4), p90 = 50 + 0.7*30, p99 = 50 + 0.97*30.
  EXPECT_NEAR(m.ttft.mean_ms, 45.0, 1e-9);
  EXPECT_NEAR(m.ttft.median_ms, 40.0, 1e-9);
  EXPECT_NEAR(m.ttft.std_ms, std::sqrt(525.0), 1e-9);
  EXPECT_NEAR(m.ttft.percentiles_ms[0].second, 40.0, 1e-9);
  EXPECT_NEAR(m.ttft.percentiles_ms[1].second, 71.0, 1e-9);
  EXPECT_NEAR(m.ttft.percentiles_ms[2].second, 79.1, 1e-9);
  // TPOT [10, 8, 30] (the 1-token request excluded): mean 16, median 10, std sqrt(296/3).
  EXPECT_NEAR(m.tpot.mean_ms, 16.0, 1e-9);
  EXPECT_NEAR(m.tpot.median_ms, 10.0, 1e-9);
  EXPECT_NEAR(m.tpot.std_ms, std::sqrt(296.0 / 3), 1e-9);
  EXPECT_NEAR(m.tpot.percentiles_ms[1].second, 26.0, 1e-9);  // rank 1.8 in [8, 10, 30]
  EXPECT_NEAR(m.tpot.percentiles_ms[2].second, 29.6, 1e-9);
  // ITL pooled [10 x4, 20 x2, 30 x3]: mean 170/9, median 20, p90 30.
  EXPECT_NEAR(m.itl.mean_ms, 170.0 / 9, 1e-9);
  EXPECT_NEAR(m.itl.median_ms, 20.0, 1e-9);
  EXPECT_NEAR(m.itl.percentiles_ms[1].second, 30.0, 1e-9);
  const double itl_mean = 170.0 / 9;
  const double itl_var = (4 * (10 - itl_mean) * (10 - itl_mean) + 2 * (20 - itl_mean) * (20 - itl_mean) +
                          3 * (30 - itl_mean) * (30 - itl_mean)) /
                         9;
  EXPECT_NEAR(m.itl.std_ms, std::sqrt(itl_var), 1e-9);
  // E2EL [90, 30, 120, 110]: mean 87.5, median 100.
  EXPECT_NEAR(m.e2el.mean_ms, 87.5, 1e-9);
  EXPECT_NEAR(m.e2el.median_ms, 100.0, 1e-9);
  // Everything lies in the first 1-s bucket: 5 + 1 + 3 + 4 chunks; all 4 requests active in it.
  EXPECT_DOUBLE_EQ(m.max_output_tokens_per_s, 13.0);
  EXPECT_EQ(m.max_concurrent_requests, 4);
}

TEST(Metrics, ClientQueueTimes) {
  std::vector<RequestOutput> outs = scripted_scenario();
  outs[0].queue_time_s = 0.0;
  outs[1].queue_time_s = 0.090;
  outs[2].queue_time_s = 0.120;
  outs[3].queue_time_s = 5.0;  // failed: not counted
  outs[4].queue_time_s = 0.240;
  const BenchmarkMetrics m = compute_metrics(outs, 1.0, {50}, {});
  EXPECT_NEAR(m.client_queue_time.mean_ms, (0 + 90 + 120 + 240) / 4.0, 1e-9);
  EXPECT_NEAR(m.client_queue_time.median_ms, 105.0, 1e-9);
  // E2EL + queue: [90, 120, 240, 350].
  EXPECT_NEAR(m.e2el_including_client_queue.mean_ms, 200.0, 1e-9);
  EXPECT_NEAR(m.e2el_including_client_queue.median_ms, 180.0, 1e-9);
}

TEST(Metrics, GoodputPerSlo) {
  const std::vector<RequestOutput> outs = scripted_scenario();
  GoodputSlo e2el_only;
  e2el_only.e2el_ms = 100;  // 90 and 30 pass, 120 and 110 do not
  EXPECT_NEAR(compute_metrics(outs, 2.0, {99}, e2el_only).request_goodput, 1.0, 1e-12);
  GoodputSlo tpot_tight;
  tpot_tight.tpot_ms = 0;  // only the 1-token request (tpot counted as 0) passes
  EXPECT_NEAR(compute_metrics(outs, 1.0, {99}, tpot_tight).request_goodput, 1.0, 1e-12);
  EXPECT_NEAR(compute_metrics(outs, 1.0, {99}, {}).request_goodput, 0.0, 1e-12);  // no SLO
}

TEST(Metrics, PeakBucketsSpanSeconds) {
  // Request A: start 0, chunks at 0.5, 0.9, 1.2, 2.1; request B: start 1.0, chunks at 1.1, 1.3, 1.4.
  std::vector<RequestOutput> outs = {ok_request(0.0, 0.5, {0.4, 0.3, 0.9}, 4, 1),
                                     ok_request(1.0, 0.1, {0.2, 0.1}, 3, 1)};
  const BenchmarkMetrics m = compute_metrics(outs, 2.1, {99}, {});
  // Buckets: [0,1): 2 chunks, [1,2): 1 + 3 = 4, [2,3): 1.
  EXPECT_DOUBLE_EQ(m.max_output_tokens_per_s, 4.0);
  // A is active in buckets 0..2, B in 1..1: bucket 1 holds both.
  EXPECT_EQ(m.max_concurrent_requests, 2);
}

TEST(Metrics, AllFailedGivesZeros) {
  RequestOutput failed;
  failed.error = "boom";
  const BenchmarkMetrics m = compute_metrics({failed, failed}, 1.0, {99}, {});
  EXPECT_EQ(m.completed, 0);
  EXPECT_EQ(m.failed, 2);
  EXPECT_EQ(m.ttft.mean_ms, 0.0);
  EXPECT_EQ(m.ttft.percentiles_ms[0].second, 0.0);
  EXPECT_EQ(m.max_output_tokens_per_s, 0.0);
}

TEST(Goodput, Parse) {
  auto slo = parse_goodput({"ttft:500", "tpot:50"});
  ASSERT_TRUE(slo.ok());
  EXPECT_EQ(slo->ttft_ms, 500);
  EXPECT_EQ(slo->tpot_ms, 50);
  EXPECT_LT(slo->e2el_ms, 0);
  EXPECT_TRUE(parse_goodput({"e2el:1000.5"}).ok());
  EXPECT_FALSE(parse_goodput({"ttft=5"}).ok());
  EXPECT_FALSE(parse_goodput({"latency:5"}).ok());
  EXPECT_FALSE(parse_goodput({"ttft:-1"}).ok());
  EXPECT_FALSE(parse_goodput({"ttft:abc"}).ok());
  EXPECT_FALSE(parse_goodput({}).value().any());
}

}  // namespace
}  // namespace nibble::bench
