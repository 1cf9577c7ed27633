// Prometheus metrics in the text exposition format, named like vLLM's V1 metrics under a
// `nibble:` prefix (nibble:num_requests_running, nibble:time_to_first_token_seconds, ...).
// Engine-side numbers (queues, KV usage, prefix cache, token counters) are read from
// EngineStats when scraped; latencies are observed by the HTTP layer per engine request.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "engine/engine_core.h"

namespace nibble::server {

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void observe(double value);
  // Appends `name`_bucket/_sum/_count lines with the given label text (`model_name="x"`).
  void render(const std::string& name, const std::string& labels, std::string* out) const;

 private:
  std::vector<double> bounds_;
  std::vector<int64_t> counts_;  // [bounds + 1], the last is +Inf
  double sum_ = 0.0;
  int64_t count_ = 0;
};

class ServerMetrics {
 public:
  ServerMetrics();

  // One engine request finished (any reason); times in seconds. num_output_tokens may be 0.
  void observe_request(double ttft_s, double e2e_s, int32_t num_prompt_tokens, int32_t num_output_tokens,
                       const std::string& finish_reason);
  void observe_inter_token(double seconds);
  void count_client_disconnect();
  void count_http_request(int status);

  std::string render(const engine::EngineStats& stats, const std::string& model_name) const;

 private:
  mutable std::mutex mu_;
  Histogram ttft_, itl_, tpot_, e2e_, prompt_tokens_, generation_tokens_;
  int64_t success_stop_ = 0, success_length_ = 0, success_abort_ = 0, success_error_ = 0;
  int64_t client_disconnects_ = 0;
  int64_t http_2xx_ = 0, http_4xx_ = 0, http_5xx_ = 0;
};

}  // namespace nibble::server
