#include "server/metrics.h"

#include <cstdio>

namespace nibble::server {
namespace {

std::string number(double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.17g", v);
  return buf;
}

std::vector<double> token_buckets() {
  std::vector<double> b;
  for (double v = 1; v <= 1 << 20; v *= 2) b.push_back(v);
  return b;
}

void line(std::string* out, const std::string& name, const std::string& labels, double value) {
  *out += name + "{" + labels + "} " + number(value) + "\n";
}

void header(std::string* out, const std::string& name, const char* type, const char* help) {
  *out += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}

std::string escape_label(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

}  // namespace

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::observe(double value) {
  size_t i = 0;
  while (i < bounds_.size() && value > bounds_[i]) ++i;
  ++counts_[i];
  sum_ += value;
  ++count_;
}

void Histogram::render(const std::string& name, const std::string& labels, std::string* out) const {
  int64_t cumulative = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    cumulative += counts_[i];
    const std::string le = i < bounds_.size() ? number(bounds_[i]) : "+Inf";
    *out += name + "_bucket{" + labels + ",le=\"" + le + "\"} " + std::to_string(cumulative) + "\n";
  }
  *out += name + "_sum{" + labels + "} " + number(sum_) + "\n";
  *out += name + "_count{" + labels + "} " + std::to_string(count_) + "\n";
}

// Buckets as vLLM's (vllm/v1/metrics/loggers.py), so dashboards built for it read ours.
ServerMetrics::ServerMetrics()
    : ttft_({0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1,  0.25,  0.5,   0.75,
             1.0,   2.5,   5.0,  7.5,  10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0}),
      itl_({0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0,
            40.0, 80.0}),
      tpot_({0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0,
             40.0, 80.0}),
      e2e_({0.3,  0.5,  0.8,  1.0,  1.5,   2.0,   2.5,   5.0,   10.0,   15.0,  20.0,
            30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0}),
      prompt_tokens_(token_buckets()),
      generation_tokens_(token_buckets()) {}

void ServerMetrics::observe_request(double ttft_s, double e2e_s, int32_t num_prompt_tokens,
                                    int32_t num_output_tokens, const std::string& finish_reason) {
  std::lock_guard lock(mu_);
  if (num_output_tokens > 0) ttft_.observe(ttft_s);
  if (num_output_tokens > 1) tpot_.observe((e2e_s - ttft_s) / (num_output_tokens - 1));
  e2e_.observe(e2e_s);
  prompt_tokens_.observe(num_prompt_tokens);
  generation_tokens_.observe(num_output_tokens);
  if (finish_reason == "stop")
    ++success_stop_;
  else if (finish_reason == "length")
    ++success_length_;
  else if (finish_reason == "abort")
    ++success_abort_;
  else
    ++success_error_;
}

void ServerMetrics::observe_inter_token(double seconds) {
  std::lock_guard lock(mu_);
  itl_.observe(seconds);
}

void ServerMetrics::count_client_disconnect() {
  std::lock_guard lock(mu_);
  ++client_disconnects_;
}

void ServerMetrics::count_http_request(int status) {
  std::lock_guard lock(mu_);
  if (status < 400)
    ++http_2xx_;
  else if (status < 500)
    ++http_4xx_;
  else
    ++http_5xx_;
}

std::string ServerMetrics::render(const engine::EngineStats& stats, const std::string& model_name) const {
  const engine::SchedulerStats& s = stats.scheduler;
  const std::string labels = "model_name=\"" + escape_label(model_name) + "\"";
  std::string out;
  auto gauge = [&](const char* name, const char* help, double v) {
    header(&out, std::string("nibble:") + name, "gauge", help);
    line(&out, std::string("nibble:") + name, labels, v);
  };
  auto counter = [&](const char* name, const char* help, double v) {
    const std::string full = std::string("nibble:") + name + "_total";
    header(&out, full, "counter", help);
    line(&out, full, labels, v);
  };
  gauge("num_requests_running", "Requests in the running batch.", s.num_running);
  gauge("num_requests_waiting", "Requests waiting to be scheduled.", s.num_waiting);
  gauge("kv_cache_usage_perc", "Fraction of KV cache blocks in use (0..1).", s.kv_cache_usage);
  gauge("kv_cache_num_blocks", "KV cache blocks in the pool now.", s.kv_num_blocks);
  gauge("kv_cache_num_free_blocks", "KV cache blocks not referenced by a request.", s.kv_num_free_blocks);
  gauge("kv_cache_bytes", "Bytes of KV cache allocated now.", static_cast<double>(stats.kv_cache_bytes));
  counter("num_preemptions", "Preemptions (requests recomputed to free KV blocks).",
          static_cast<double>(s.num_preemptions));
  counter("prefix_cache_queries", "Prompt tokens looked up in the prefix cache.",
          static_cast<double>(s.prefix_cache.queries));
  counter("prefix_cache_hits", "Prompt tokens found in the prefix cache.",
          static_cast<double>(s.prefix_cache.hits));
  counter("prompt_tokens", "Prompt tokens processed.", static_cast<double>(s.num_prompt_tokens));
  counter("generation_tokens", "Tokens generated.", static_cast<double>(s.num_generation_tokens));
  counter("engine_steps", "Engine steps run.", static_cast<double>(stats.num_steps));

  std::lock_guard lock(mu_);
  header(&out, "nibble:request_success_total", "counter", "Finished requests by finish reason.");
  line(&out, "nibble:request_success_total", labels + ",finished_reason=\"stop\"",
       static_cast<double>(success_stop_));
  line(&out, "nibble:request_success_total", labels + ",finished_reason=\"length\"",
       static_cast<double>(success_length_));
  line(&out, "nibble:request_success_total", labels + ",finished_reason=\"abort\"",
       static_cast<double>(success_abort_));
  line(&out, "nibble:request_success_total", labels + ",finished_reason=\"error\"",
       static_cast<double>(success_error_));
  counter("http_requests_client_disconnected", "Requests aborted because the client went away.",
          static_cast<double>(client_disconnects_));
  header(&out, "nibble:http_requests_total", "counter", "HTTP requests by status class.");
  line(&out, "nibble:http_requests_total", "status=\"2xx\"", static_cast<double>(http_2xx_));
  line(&out, "nibble:http_requests_total", "status=\"4xx\"", static_cast<double>(http_4xx_));
  line(&out, "nibble:http_requests_total", "status=\"5xx\"", static_cast<double>(http_5xx_));
  auto hist = [&](const Histogram& h, const char* name, const char* help) {
    const std::string full = std::string("nibble:") + name;
    header(&out, full, "histogram", help);
    h.render(full, labels, &out);
  };
  hist(ttft_, "time_to_first_token_seconds", "Time to first token.");
  hist(itl_, "inter_token_latency_seconds", "Time between consecutive output chunks.");
  hist(tpot_, "request_time_per_output_token_seconds", "Per request: (e2e - ttft) / (output tokens - 1).");
  hist(e2e_, "e2e_request_latency_seconds", "End-to-end request latency.");
  hist(prompt_tokens_, "request_prompt_tokens", "Prompt tokens per request.");
  hist(generation_tokens_, "request_generation_tokens", "Generated tokens per request.");
  return out;
}

}  // namespace nibble::server
