// The printed summary and JSON keys against vLLM's layout (serving.md §1.5, §1.6), written out by
// hand from Python's format rules: "{:<40} {:<10}" / "{:<10.2f}", 50-wide centred rules.
#include "bench/serve_report.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "bench/serve_plot.h"
#include "bench/serve_runner.h"

namespace nibble::bench {
namespace {

BenchmarkMetrics sample_metrics() {
  BenchmarkMetrics m;
  m.completed = 4;
  m.failed = 1;
  m.total_input = 29;
  m.total_output = 16;
  m.request_throughput = 8;
  m.request_goodput = 4;
  m.output_throughput = 32;
  m.total_token_throughput = 90;
  m.max_output_tokens_per_s = 13;
  m.max_concurrent_requests = 2;
  m.ttft = {45, 40, 22.9128784747792, {{50, 40}, {99.9, 79.91}}};
  m.tpot = {16, 10, 9.93, {{50, 10}, {99.9, 29.96}}};
  m.itl = {18.888888, 20, 8.7, {{50, 20}, {99.9, 30}}};
  m.e2el = {87.5, 100, 35.1, {{50, 100}, {99.9, 119.97}}};
  return m;
}

TEST(Summary, MatchesVllmLayout) {
  ReportContext ctx;
  ctx.max_concurrency = 2;
  ctx.request_rate = 10;
  ctx.goodput = true;
  ctx.percentile_metrics = {"ttft", "tpot", "itl", "e2el"};
  ctx.percentiles = {50, 99.9};
  const std::string expected =
      "============ Serving Benchmark Result ============\n"
      "Successful requests:                     4         \n"
      "Failed requests:                         1         \n"
      "Maximum request concurrency:             2         \n"
      "Request rate configured (RPS):           10.00     \n"
      "Benchmark duration (s):                  0.50      \n"
      "Total input tokens:                      29        \n"
      "Total generated tokens:                  16        \n"
      "Request throughput (req/s):              8.00      \n"
      "Request goodput (req/s):                 4.00      \n"
      "Output token throughput (tok/s):         32.00     \n"
      "Peak output token throughput (tok/s):    13.00     \n"
      "Peak concurrent requests:                2.00      \n"
      "Total token throughput (tok/s):          90.00     \n"
      "---------------Time to First Token----------------\n"
      "Mean TTFT (ms):                          45.00     \n"
      "Median TTFT (ms):                        40.00     \n"
      "P50 TTFT (ms):                           40.00     \n"
      "P99.9 TTFT (ms):                         79.91     \n"
      "-----Time per Output Token (excl. 1st token)------\n"
      "Mean TPOT (ms):                          16.00     \n"
      "Median TPOT (ms):                        10.00     \n"
      "P50 TPOT (ms):                           10.00     \n"
      "P99.9 TPOT (ms):                         29.96     \n"
      "---------------Inter-token Latency----------------\n"
      "Mean ITL (ms):                           18.89     \n"
      "Median ITL (ms):                         20.00     \n"
      "P50 ITL (ms):                            20.00     \n"
      "P99.9 ITL (ms):                          30.00     \n"
      "----------------End-to-end Latency----------------\n"
      "Mean E2EL (ms):                          87.50     \n"
      "Median E2EL (ms):                        100.00    \n"
      "P50 E2EL (ms):                           100.00    \n"
      "P99.9 E2EL (ms):                         119.97    \n"
      "==================================================\n";
  EXPECT_EQ(format_summary(sample_metrics(), 0.5, ctx), expected);
}

TEST(Summary, ClientQueueSectionsAsVllm) {
  BenchmarkMetrics m = sample_metrics();
  m.client_queue_time = {3, 2, 1, {{99, 9}}};
  m.e2el_including_client_queue = {90.5, 102, 36, {{99, 129}}};
  ReportContext ctx;
  ctx.percentile_metrics = {"client_queue_time", "e2el_including_client_queue"};
  ctx.max_concurrency = 4;
  ctx.request_rate = 5;
  const std::string s = format_summary(m, 0.5, ctx);
  EXPECT_NE(s.find("---------------Client-side Queueing---------------\n"
                   "Mean Client Queue Time (ms):             3.00      \n"
                   "Median Client Queue Time (ms):           2.00      \n"
                   "P99 Client Queue Time (ms):              9.00      \n"),
            std::string::npos)
      << s;
  EXPECT_NE(s.find("--------Queue-inclusive End-to-end Latency--------\n"
                   "Mean E2EL incl. Client Queue (ms):       90.50     \n"),
            std::string::npos)
      << s;
  const auto j = result_json(m, RunResult{}, ctx, false);
  EXPECT_EQ(j["p99_client_queue_time_ms"], 9.0);
  EXPECT_EQ(j["mean_e2el_including_client_queue_ms"], 90.5);
  // Without a concurrency limit vLLM has no queue statistics; with an infinite rate no
  // queue-inclusive E2EL.
  ctx.request_rate = std::numeric_limits<double>::infinity();
  EXPECT_EQ(format_summary(m, 0.5, ctx).find("Queue-inclusive"), std::string::npos);
  ctx.max_concurrency = 0;
  EXPECT_EQ(format_summary(m, 0.5, ctx).find("Client-side Queueing"), std::string::npos);
}

TEST(Summary, OptionalLinesOff) {
  ReportContext ctx;  // no concurrency limit, infinite rate, no goodput, default metrics (no e2el)
  ctx.request_rate = std::numeric_limits<double>::infinity();
  const std::string s = format_summary(sample_metrics(), 0.5, ctx);
  EXPECT_EQ(s.find("Maximum request concurrency"), std::string::npos);
  EXPECT_EQ(s.find("Request rate configured"), std::string::npos);
  EXPECT_EQ(s.find("goodput"), std::string::npos);
  EXPECT_EQ(s.find("E2EL"), std::string::npos);
  EXPECT_NE(s.find("Inter-token Latency"), std::string::npos);
}

TEST(ResultJson, VllmKeys) {
  ReportContext ctx;
  ctx.model_id = "Qwen/Qwen3-0.6B";
  ctx.date = "20260101-120000";
  ctx.num_prompts = 5;
  ctx.request_rate = std::numeric_limits<double>::infinity();
  ctx.percentiles = {50, 99.9};
  ctx.percentile_metrics = {"ttft", "tpot", "itl", "e2el"};
  RunResult run;
  run.duration_s = 0.5;
  run.outputs.resize(5);
  const auto j = result_json(sample_metrics(), run, ctx, /*detailed=*/false);
  EXPECT_EQ(j["request_rate"], "inf");
  EXPECT_TRUE(j["max_concurrency"].is_null());
  EXPECT_TRUE(j["request_goodput"].is_null());
  EXPECT_EQ(j["label"], "openai");
  for (const char* key : {"date",
                          "endpoint_type",
                          "backend",
                          "model_id",
                          "tokenizer_id",
                          "num_prompts",
                          "burstiness",
                          "duration",
                          "completed",
                          "failed",
                          "total_input_tokens",
                          "total_output_tokens",
                          "request_throughput",
                          "output_throughput",
                          "total_token_throughput",
                          "max_output_tokens_per_s",
                          "max_concurrent_requests",
                          "rtfx",
                          "latencies",
                          "queue_times",
                          "mean_ttft_ms",
                          "median_ttft_ms",
                          "std_ttft_ms",
                          "p50_ttft_ms",
                          "p99.9_ttft_ms",
                          "mean_tpot_ms",
                          "p99.9_tpot_ms",
                          "mean_itl_ms",
                          "p99.9_itl_ms",
                          "mean_e2el_ms",
                          "p99.9_e2el_ms"}) {
    EXPECT_TRUE(j.contains(key)) << key;
  }
  EXPECT_FALSE(j.contains("ttfts"));
  EXPECT_DOUBLE_EQ(j["p99.9_ttft_ms"].get<double>(), 79.91);
  // vLLM's key order: setup, then the benchmark fields, then the metric statistics.
  std::vector<std::string> keys;
  for (auto it = j.begin(); it != j.end(); ++it) keys.push_back(it.key());
  EXPECT_EQ(keys[0], "date");
  EXPECT_EQ(keys[10], "duration");
  EXPECT_TRUE(result_json(sample_metrics(), run, ctx, true).contains("itls"));
  const auto row = sweep_row(j);
  EXPECT_FALSE(row.contains("latencies"));
  EXPECT_TRUE(row.contains("mean_tpot_ms"));
  EXPECT_EQ(default_result_filename(ctx), "openai-infqps-Qwen3-0.6B-20260101-120000.json");
  ctx.request_rate = 10;
  ctx.max_concurrency = 8;
  EXPECT_EQ(default_result_filename(ctx), "openai-10.0qps-concurrency8-Qwen3-0.6B-20260101-120000.json");
  ctx.request_rate = 2.5;
  EXPECT_EQ(default_sweep_filename(ctx), "sweep-openai-2.5qps-Qwen3-0.6B-20260101-120000.json");
}

TEST(PercentileWord, PythonSpelling) {
  EXPECT_EQ(percentile_word(99), "99");
  EXPECT_EQ(percentile_word(99.9), "99.9");
  EXPECT_EQ(percentile_word(50), "50");
  EXPECT_EQ(percentile_word(99.99), "99.99");
}

TEST(Arrivals, InfiniteRateAndRescaling) {
  for (double v : arrival_offsets(5, std::numeric_limits<double>::infinity(), 1.0, 0)) EXPECT_EQ(v, 0.0);
  // Finite rate: increasing, and the last arrival lands exactly at n / rate.
  for (double burstiness : {0.5, 1.0, 4.0}) {
    const auto t = arrival_offsets(200, 20.0, burstiness, 7);
    ASSERT_EQ(t.size(), 200u);
    for (size_t i = 1; i < t.size(); ++i) EXPECT_GE(t[i], t[i - 1]);
    EXPECT_NEAR(t.back(), 10.0, 1e-9);
  }
  // Burstier arrivals have more spread gaps: coefficient of variation ~ 1/sqrt(shape).
  auto cv = [](const std::vector<double>& t) {
    std::vector<double> gaps = {t[0]};
    for (size_t i = 1; i < t.size(); ++i) gaps.push_back(t[i] - t[i - 1]);
    double mean = 0, var = 0;
    for (double g : gaps) mean += g / static_cast<double>(gaps.size());
    for (double g : gaps) var += (g - mean) * (g - mean) / static_cast<double>(gaps.size());
    return std::sqrt(var) / mean;
  };
  EXPECT_GT(cv(arrival_offsets(4000, 10.0, 0.25, 1)), 1.6);  // 1/sqrt(0.25) = 2
  EXPECT_LT(cv(arrival_offsets(4000, 10.0, 16.0, 1)), 0.4);  // 1/sqrt(16) = 0.25
}

TEST(Plot, SvgHasPanelsSeriesAndLegend) {
  SweepSeries a{"bf16", {{2, 100, 20, 50}, {4, 180, 22, 60}, {8, 300, 27, 90}}};
  SweepSeries b{"nvfp4 & co", {{2, 150, 13, 40}, {4, 260, 15, 45}, {8, 420, 19, 70}}};
  const std::string svg = render_sweep_svg({a, b}, "Qwen3 <0.6B>");
  EXPECT_EQ(svg.rfind("<?xml", 0), 0u);
  EXPECT_NE(svg.find("<svg"), std::string::npos);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
  EXPECT_NE(svg.find("Qwen3 &lt;0.6B&gt;"), std::string::npos);
  EXPECT_NE(svg.find("nvfp4 &amp; co"), std::string::npos);
  size_t polylines = 0;
  for (size_t pos = svg.find("<polyline"); pos != std::string::npos; pos = svg.find("<polyline", pos + 1))
    ++polylines;
  EXPECT_EQ(polylines, 6u);  // 2 series x 3 panels
  // One point: bars, no lines.
  const std::string one = render_sweep_svg({{"x", {{4, 100, 20, 50}}}}, "t");
  EXPECT_EQ(one.find("<polyline"), std::string::npos);
  EXPECT_NE(one.find("<rect x="), std::string::npos);
}

TEST(Plot, SeriesFromJson) {
  nlohmann::json sweep = {{"rows",
                           {{{"max_concurrency", 4}, {"output_throughput", 10.0}, {"median_tpot_ms", 5.0}},
                            {{"max_concurrency", 2}, {"output_throughput", 6.0}, {"median_tpot_ms", 4.0}}}}};
  auto s = series_from_json(sweep, "a").value();
  ASSERT_EQ(s.points.size(), 2u);
  EXPECT_EQ(s.points[0].concurrency, 2);  // sorted
  EXPECT_EQ(s.points[1].output_throughput, 10.0);
  nlohmann::json single = {
      {"max_concurrency", nullptr}, {"max_concurrent_requests", 7}, {"output_throughput", 1.0}};
  EXPECT_EQ(series_from_json(single, "b").value().points[0].concurrency, 7);
  EXPECT_FALSE(series_from_json(nlohmann::json::array(), "c").ok());
  EXPECT_FALSE(series_from_json(nlohmann::json{{"rows", {{{"x", 1}}}}}, "d").ok());
}

}  // namespace
}  // namespace nibble::bench
