#include "bench/serve_report.h"

#include <cmath>
#include <cstdio>
#include <ctime>

namespace nibble::bench {

namespace {

bool is_inf_rate(double rate) {
  return !(rate > 0) || std::isinf(rate);
}

std::string pad_right(std::string s, size_t width) {
  if (s.size() < width) s.resize(width, ' ');
  return s;
}

std::string line_int(const std::string& label, int64_t value) {
  return pad_right(label, 40) + " " + pad_right(std::to_string(value), 10) + "\n";
}

std::string line_float(const std::string& label, double value) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.2f", value);
  return pad_right(label, 40) + " " + pad_right(buf, 10) + "\n";
}

// Python's "{s:{c}^{n}}": centred, the odd padding character goes to the right.
std::string centered(const std::string& text, char fill, size_t width) {
  if (text.size() >= width) return text + "\n";
  const size_t pad = width - text.size();
  return std::string(pad / 2, fill) + text + std::string(pad - pad / 2, fill) + "\n";
}

bool selected(const ReportContext& ctx, const std::string& metric) {
  for (const std::string& m : ctx.percentile_metrics) {
    if (m == metric) return true;
  }
  return false;
}

struct MetricSection {
  const char* key;     // ttft
  const char* name;    // TTFT
  const char* header;  // Time to First Token
  const MetricStats* stats;
};

bool is_finite_rate(const ReportContext& ctx) {
  return !is_inf_rate(ctx.request_rate);
}

// The metric sections in vLLM's order; the client-queue ones exist only with a concurrency limit
// (and, for the queue-inclusive E2EL, a finite request rate), as in vLLM.
std::vector<MetricSection> sections(const BenchmarkMetrics& m, const ReportContext& ctx) {
  std::vector<MetricSection> all = {{"ttft", "TTFT", "Time to First Token", &m.ttft},
                                    {"tpot", "TPOT", "Time per Output Token (excl. 1st token)", &m.tpot},
                                    {"itl", "ITL", "Inter-token Latency", &m.itl},
                                    {"e2el", "E2EL", "End-to-end Latency", &m.e2el}};
  if (ctx.max_concurrency > 0) {
    all.push_back({"client_queue_time", "Client Queue Time", "Client-side Queueing", &m.client_queue_time});
    if (is_finite_rate(ctx)) {
      all.push_back({"e2el_including_client_queue", "E2EL incl. Client Queue",
                     "Queue-inclusive End-to-end Latency", &m.e2el_including_client_queue});
    }
  }
  return all;
}

// Python's str(float) for the rates in file names: "inf", "10.0", "2.5".
std::string rate_word(double rate) {
  if (is_inf_rate(rate)) return "inf";
  char buf[64];
  if (rate == std::floor(rate) && std::fabs(rate) < 1e15) {
    std::snprintf(buf, sizeof(buf), "%.1f", rate);
  } else {
    std::snprintf(buf, sizeof(buf), "%.17g", rate);
    // Shortest representation that round-trips, as Python prints floats.
    for (int precision = 1; precision <= 17; ++precision) {
      char trial[64];
      std::snprintf(trial, sizeof(trial), "%.*g", precision, rate);
      if (std::strtod(trial, nullptr) == rate) {
        std::snprintf(buf, sizeof(buf), "%s", trial);
        break;
      }
    }
  }
  return buf;
}

std::string model_basename(const std::string& model_id) {
  const size_t slash = model_id.find_last_of('/');
  std::string base = slash == std::string::npos ? model_id : model_id.substr(slash + 1);
  return base.empty() ? "model" : base;
}

}  // namespace

std::string percentile_word(double p) {
  if (p == std::floor(p)) return std::to_string(static_cast<int64_t>(p));
  char buf[64];
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof(buf), "%.*g", precision, p);
    if (std::strtod(buf, nullptr) == p) break;
  }
  return buf;
}

std::string format_summary(const BenchmarkMetrics& m, double duration_s, const ReportContext& ctx) {
  std::string s = centered(" Serving Benchmark Result ", '=', 50);
  s += line_int("Successful requests:", m.completed);
  s += line_int("Failed requests:", m.failed);
  if (ctx.max_concurrency > 0) s += line_int("Maximum request concurrency:", ctx.max_concurrency);
  if (!is_inf_rate(ctx.request_rate)) s += line_float("Request rate configured (RPS):", ctx.request_rate);
  s += line_float("Benchmark duration (s):", duration_s);
  s += line_int("Total input tokens:", m.total_input);
  s += line_int("Total generated tokens:", m.total_output);
  s += line_float("Request throughput (req/s):", m.request_throughput);
  if (ctx.goodput) s += line_float("Request goodput (req/s):", m.request_goodput);
  s += line_float("Output token throughput (tok/s):", m.output_throughput);
  s += line_float("Peak output token throughput (tok/s):", m.max_output_tokens_per_s);
  s += line_float("Peak concurrent requests:", static_cast<double>(m.max_concurrent_requests));
  s += line_float("Total token throughput (tok/s):", m.total_token_throughput);
  for (const MetricSection& sec : sections(m, ctx)) {
    if (!selected(ctx, sec.key)) continue;
    s += centered(sec.header, '-', 50);
    s += line_float(std::string("Mean ") + sec.name + " (ms):", sec.stats->mean_ms);
    s += line_float(std::string("Median ") + sec.name + " (ms):", sec.stats->median_ms);
    for (const auto& [p, value] : sec.stats->percentiles_ms) {
      s += line_float("P" + percentile_word(p) + " " + sec.name + " (ms):", value);
    }
  }
  s += std::string(50, '=') + "\n";
  return s;
}

nlohmann::ordered_json result_json(const BenchmarkMetrics& m, const RunResult& run, const ReportContext& ctx,
                                   bool detailed) {
  nlohmann::ordered_json j;
  j["date"] = ctx.date;
  j["endpoint_type"] = ctx.backend;
  j["backend"] = ctx.backend;
  j["label"] = ctx.label.empty() ? ctx.backend : ctx.label;
  j["model_id"] = ctx.model_id;
  j["tokenizer_id"] = ctx.tokenizer_id;
  j["num_prompts"] = ctx.num_prompts;
  if (is_inf_rate(ctx.request_rate)) {
    j["request_rate"] = "inf";
  } else {
    j["request_rate"] = ctx.request_rate;
  }
  j["burstiness"] = ctx.burstiness;
  j["max_concurrency"] =
      ctx.max_concurrency > 0 ? nlohmann::ordered_json(ctx.max_concurrency) : nlohmann::ordered_json();
  j["duration"] = run.duration_s;
  j["completed"] = m.completed;
  j["failed"] = m.failed;
  j["total_input_tokens"] = m.total_input;
  j["total_output_tokens"] = m.total_output;
  j["request_throughput"] = m.request_throughput;
  j["request_goodput"] = ctx.goodput ? nlohmann::ordered_json(m.request_goodput) : nlohmann::ordered_json();
  j["output_throughput"] = m.output_throughput;
  j["total_token_throughput"] = m.total_token_throughput;
  // Per-request arrays in vLLM's order; without `detailed` only latencies and queue_times stay.
  auto per_request = [&](auto field) {
    nlohmann::ordered_json arr = nlohmann::ordered_json::array();
    for (const RequestOutput& o : run.outputs) arr.push_back(field(o));
    return arr;
  };
  if (detailed) {
    j["input_lens"] = per_request([](const RequestOutput& o) { return o.prompt_len; });
    j["output_lens"] = m.output_lens;
    j["ttfts"] = per_request([](const RequestOutput& o) { return o.ttft_s; });
    j["itls"] = per_request([](const RequestOutput& o) { return o.itl_s; });
  }
  j["latencies"] = per_request([](const RequestOutput& o) { return o.latency_s; });
  if (detailed) j["start_times"] = per_request([](const RequestOutput& o) { return o.start_time_s; });
  j["queue_times"] = per_request([](const RequestOutput& o) { return o.queue_time_s; });
  if (detailed) {
    j["generated_texts"] = per_request([](const RequestOutput& o) { return o.generated_text; });
    j["errors"] = per_request([](const RequestOutput& o) { return o.error; });
  }
  j["max_output_tokens_per_s"] = m.max_output_tokens_per_s;
  j["max_concurrent_requests"] = m.max_concurrent_requests;
  j["rtfx"] = 0.0;  // audio input seconds per second; always 0 for text
  for (const MetricSection& sec : sections(m, ctx)) {
    if (!selected(ctx, sec.key)) continue;
    const std::string key = sec.key;
    j["mean_" + key + "_ms"] = sec.stats->mean_ms;
    j["median_" + key + "_ms"] = sec.stats->median_ms;
    j["std_" + key + "_ms"] = sec.stats->std_ms;
    for (const auto& [p, value] : sec.stats->percentiles_ms)
      j["p" + percentile_word(p) + "_" + key + "_ms"] = value;
  }
  return j;
}

nlohmann::ordered_json sweep_row(const nlohmann::ordered_json& result) {
  nlohmann::ordered_json row = nlohmann::ordered_json::object();
  for (auto it = result.begin(); it != result.end(); ++it) {
    if (!it.value().is_array()) row[it.key()] = it.value();
  }
  return row;
}

std::string default_result_filename(const ReportContext& ctx) {
  std::string name =
      (ctx.label.empty() ? ctx.backend : ctx.label) + "-" + rate_word(ctx.request_rate) + "qps";
  if (ctx.max_concurrency > 0) name += "-concurrency" + std::to_string(ctx.max_concurrency);
  return name + "-" + model_basename(ctx.model_id) + "-" + ctx.date + ".json";
}

std::string default_sweep_filename(const ReportContext& ctx) {
  return "sweep-" + (ctx.label.empty() ? ctx.backend : ctx.label) + "-" + rate_word(ctx.request_rate) +
         "qps-" + model_basename(ctx.model_id) + "-" + ctx.date + ".json";
}

std::string date_stamp() {
  const std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y%m%d-%H%M%S", &local);
  return buf;
}

}  // namespace nibble::bench
