// The serving-benchmark driver: schedules requests (all at once, Poisson or gamma arrivals as
// vLLM does, ../shared/docs/serving.md §1.3), runs at most max_concurrency of them at a time on
// worker threads, shows progress, and returns per-request outputs with the measured wall time.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "bench/metrics.h"
#include "bench/serve_client.h"
#include "bench/serve_dataset.h"

namespace nibble::bench {

// Threads used when no --max-concurrency is given and all requests arrive at once.
inline constexpr int64_t kMaxWorkerThreads = 1024;

struct RunOptions {
  ClientConfig client;
  StreamApi api = StreamApi::kCompletions;
  std::string model;
  bool ignore_eos = false;
  double request_rate = 0;      // requests/s; <= 0 or inf: all at t = 0
  double burstiness = 1.0;      // gamma shape; 1 = Poisson
  int64_t max_concurrency = 0;  // 0 = unlimited (bounded by kMaxWorkerThreads)
  uint64_t seed = 0;
  bool progress = true;  // live progress on stderr (a bar on a tty, periodic lines otherwise)
  std::FILE* progress_out = stderr;
};

struct RunResult {
  std::vector<RequestOutput> outputs;           // same order as the requests
  double duration_s = 0;                        // first scheduling to last completion
  std::chrono::steady_clock::time_point start;  // origin of every start_time_s
};

// Arrival offsets in seconds for n requests: zeros for an infinite rate, else cumulative
// Gamma(shape = burstiness, scale = 1 / (rate * burstiness)) gaps rescaled so the last arrival
// is at n / rate.
std::vector<double> arrival_offsets(int64_t num_requests, double request_rate, double burstiness,
                                    uint64_t seed);

// Runs the requests (warm-ups are the caller's: call run_requests on them and drop the result).
RunResult run_requests(const RunOptions& opts, const std::vector<SampleRequest>& requests);

// Fills output_tokens of successful outputs whose server sent no usage by re-tokenizing the
// generated text (vLLM's fallback; 1 when there is no tokenizer). Returns how many were filled.
int64_t resolve_output_lens(std::vector<RequestOutput>* outputs, PromptTokenizer* tokenizer);

// "<count> x <message>" lines for the distinct errors of failed requests, most frequent first.
std::vector<std::string> summarize_errors(const std::vector<RequestOutput>& outputs, size_t max_lines);

}  // namespace nibble::bench
