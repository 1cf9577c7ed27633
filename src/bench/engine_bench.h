// Offline concurrency benchmark through the engine (`nibble bench MODEL -p P -n N --concurrency
// 1,2,4,...`): for each concurrency C, C requests of P prompt tokens and N output tokens (greedy,
// ignore_eos, distinct random prompts so the prefix cache does not help) are put in flight at
// once; the point reports output tokens per second over the wall time until the last one ends.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "engine/llm_engine.h"

namespace nibble::bench {

struct EngineBenchConfig {
  int32_t prompt_tokens = 64;                               // -p
  int32_t output_tokens = 32;                               // -n
  std::vector<int32_t> concurrency = {1, 2, 4, 8, 16, 32};  // --concurrency
  uint64_t seed = 1;                                        // prompt token ids
  bool warmup = true;                                       // one short request first
};

struct EngineBenchPoint {
  int32_t concurrency = 0;
  double wall_s = 0.0;
  int64_t output_tokens = 0;
  double output_tok_s = 0.0;
  double mean_ttft_s = 0.0;  // submit -> first token, averaged over the requests
  // (last token - first token) / (output tokens - 1), averaged over requests with 2+ tokens (vLLM's TPOT).
  double mean_tpot_s = 0.0;
  // Output tokens after each request's first, over the time from the last first token to the
  // end: the steady decode rate once every request is decoding (prefill excluded).
  double decode_tok_s = 0.0;
  double cpu_s = 0.0;  // process CPU time (user + sys) of the point: robust on a shared machine
  double output_tok_per_cpu_s = 0.0;
  int64_t num_steps = 0;  // engine steps taken
  int64_t num_preemptions = 0;
  int64_t kv_cache_bytes = 0;  // pool size at the end of the point
  int64_t rss_bytes = 0;       // VmRSS at the end of the point
};

// "1,2,4" -> {1, 2, 4}; errors name the bad item.
base::Result<std::vector<int32_t>> parse_concurrency_list(const std::string& text);

// Runs every point; the engine needs max_num_seqs >= the largest concurrency and max_model_len
// >= P + N. An error output (or a request the engine refuses) fails the run with its message.
base::Result<std::vector<EngineBenchPoint>> run_engine_bench(engine::LlmEngine& engine,
                                                             const EngineBenchConfig& config);

// A table with one row per concurrency and the speed-up over the first row.
std::string format_engine_bench_table(const std::vector<EngineBenchPoint>& points);
// {"prompt_tokens":P,"output_tokens":N,"points":[{"concurrency":..,"output_tok_s":..,...}]}
std::string format_engine_bench_json(const EngineBenchConfig& config,
                                     const std::vector<EngineBenchPoint>& points);

// VmRSS of this process from /proc/self/status, in bytes (0 when unreadable).
int64_t read_rss_bytes();

}  // namespace nibble::bench
