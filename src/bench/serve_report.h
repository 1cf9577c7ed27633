// The serving benchmark's printed summary and result JSON, laid out as vLLM's `vllm bench serve`
// prints and saves them (../shared/docs/serving.md §1.5, §1.6), plus the sweep file (one row
// per --max-concurrency value).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench/metrics.h"
#include "bench/serve_runner.h"

namespace nibble::bench {

struct ReportContext {
  std::string backend = "openai";  // "openai" for /v1/completions, "openai-chat" for chat
  std::string label;               // defaults to backend
  std::string model_id;
  std::string tokenizer_id;
  int64_t num_prompts = 0;
  double request_rate = 0;  // <= 0 or inf: printed/saved as "inf"
  double burstiness = 1.0;
  int64_t max_concurrency = 0;  // 0: none (null in JSON, line not printed)
  std::vector<std::string> percentile_metrics = {"ttft", "tpot", "itl"};
  std::vector<double> percentiles = {99};
  bool goodput = false;  // --goodput given
  std::string date;      // %Y%m%d-%H%M%S
};

// "99" for 99, "99.9" for 99.9 (vLLM's P-label and JSON key spelling).
std::string percentile_word(double p);

// The summary block, byte for byte as vLLM prints it (each line "{:<40} {:<10}").
std::string format_summary(const BenchmarkMetrics& m, double duration_s, const ReportContext& ctx);

// vLLM's result JSON. With `detailed`, the per-request arrays (input_lens, output_lens, ttfts,
// itls, start_times, generated_texts, errors) are kept.
nlohmann::ordered_json result_json(const BenchmarkMetrics& m, const RunResult& run, const ReportContext& ctx,
                                   bool detailed);

// One sweep row: the scalar fields of a result JSON (no per-request arrays).
nlohmann::ordered_json sweep_row(const nlohmann::ordered_json& result);

// vLLM's automatic name: "{label}-{rate}qps[-concurrency{N}]-{model basename}-{date}.json".
std::string default_result_filename(const ReportContext& ctx);
// "sweep-{label}-{rate}qps-{model basename}-{date}.json".
std::string default_sweep_filename(const ReportContext& ctx);

// Current local time as %Y%m%d-%H%M%S.
std::string date_stamp();

}  // namespace nibble::bench
