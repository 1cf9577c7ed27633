// Serving-benchmark metrics, computed exactly as vLLM's `vllm bench serve` computes them
// (../shared/docs/serving.md §1.4): TTFT, TPOT (excl. the first token), ITL per streamed chunk,
// E2EL, throughputs over the measured wall time, goodput, and numpy-style statistics.
//
// Everything here is pure arithmetic on per-request timestamps: no clocks, no network.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "base/status.h"

namespace nibble::bench {

// What one request produced, as measured by the client. Times are seconds on one steady clock;
// start_time_s is relative to the benchmark start.
struct RequestOutput {
  bool success = false;
  std::string error;                   // first failure reason when !success
  int64_t prompt_len = 0;              // dataset token count, overridden by usage.prompt_tokens
  int64_t output_tokens = 0;           // usage.completion_tokens (0 = not reported; see output_len_source)
  std::string generated_text;          // concatenated text/content of all chunks
  double start_time_s = 0;             // when the request was sent (just before the POST)
  double ttft_s = 0;                   // first chunk with non-empty "choices" minus start
  std::vector<double> itl_s;           // gaps between consecutive chunks with non-empty "choices"
  double latency_s = 0;                // last chunk with non-empty "choices" minus start (E2EL)
  double queue_time_s = 0;             // client-side wait between scheduled arrival and send
  bool output_len_from_usage = false;  // false: output_tokens came from re-tokenizing the text
};

// Mean, median, population std and percentiles of one metric, in milliseconds.
struct MetricStats {
  double mean_ms = 0;
  double median_ms = 0;
  double std_ms = 0;
  std::vector<std::pair<double, double>> percentiles_ms;  // (p, value) in the order requested
};

// Service-level objectives for goodput, in milliseconds; a negative value means "not set".
struct GoodputSlo {
  double ttft_ms = -1;
  double tpot_ms = -1;
  double e2el_ms = -1;
  bool any() const { return ttft_ms >= 0 || tpot_ms >= 0 || e2el_ms >= 0; }
};

struct BenchmarkMetrics {
  int64_t completed = 0;
  int64_t failed = 0;
  int64_t total_input = 0;              // sum of prompt_len over successful requests
  int64_t total_output = 0;             // sum of output lengths over successful requests
  double request_throughput = 0;        // completed / dur_s
  double request_goodput = 0;           // good / dur_s
  double output_throughput = 0;         // total_output / dur_s
  double total_token_throughput = 0;    // (total_input + total_output) / dur_s
  double max_output_tokens_per_s = 0;   // most chunks seen in one 1-s bucket
  int64_t max_concurrent_requests = 0;  // most requests active in one 1-s bucket
  MetricStats ttft, tpot, itl, e2el;
  // Over successful requests: client-side wait for a concurrency slot, and E2EL plus that wait
  // (vLLM reports them only with --max-concurrency, the second only with a finite rate).
  MetricStats client_queue_time, e2el_including_client_queue;
  std::vector<int64_t> output_lens;  // per request (0 for failed ones), same order as the input
};

// numpy.percentile(values, p) with the default 'linear' method; 0 for an empty list.
double percentile_linear(std::vector<double> values, double p);
double mean_of(const std::vector<double>& values);            // 0 for an empty list
double population_std_of(const std::vector<double>& values);  // ddof = 0; 0 for an empty list

// Statistics of `values_s` (seconds) in milliseconds, with the given percentiles (0..100).
MetricStats summarize_ms(const std::vector<double>& values_s, const std::vector<double>& percentiles);

// All aggregates over `outputs` (successful ones only, like vLLM). dur_s is the wall time from
// just before the first request was scheduled to the completion of the last one.
// Output lengths: output_tokens as given (the caller resolves the tokenizer fallback first).
BenchmarkMetrics compute_metrics(const std::vector<RequestOutput>& outputs, double dur_s,
                                 const std::vector<double>& percentiles, const GoodputSlo& slo);

// Parses "ttft:500 tpot:50" style SLO items (one per element) into a GoodputSlo.
base::Result<GoodputSlo> parse_goodput(const std::vector<std::string>& items);

}  // namespace nibble::bench
