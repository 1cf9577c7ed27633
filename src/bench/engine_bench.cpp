#include "bench/engine_bench.h"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <thread>

namespace nibble::bench {
namespace {

using Clock = std::chrono::steady_clock;

double seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

double process_cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) * 1e-6;
}

}  // namespace

base::Result<std::vector<int32_t>> parse_concurrency_list(const std::string& text) {
  std::vector<int32_t> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    size_t used = 0;
    long v = 0;
    try {
      v = std::stol(item, &used);
    } catch (...) {
      used = 0;
    }
    if (used == 0 || used != item.size() || v < 1 || v > 4096)
      return base::invalid_argument("--concurrency: '" + item + "' is not a count in [1, 4096]");
    out.push_back(static_cast<int32_t>(v));
  }
  if (out.empty()) return base::invalid_argument("--concurrency: empty list");
  return out;
}

int64_t read_rss_bytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6)) * 1024;
  }
  return 0;
}

base::Result<std::vector<EngineBenchPoint>> run_engine_bench(engine::LlmEngine& engine,
                                                             const EngineBenchConfig& config) {
  const engine::EngineMetadata& md = engine.metadata();
  if (config.prompt_tokens < 1 || config.output_tokens < 1)
    return base::invalid_argument("bench: -p and -n must be at least 1");
  std::mt19937_64 rng(config.seed);
  std::uniform_int_distribution<int32_t> token_dist(0, md.vocab_size - 1);
  int64_t request_seq = 0;

  // Runs `count` requests at once; returns (wall, tokens, mean ttft).
  auto run_batch = [&](int32_t count, int32_t prompt_len, int32_t out_len,
                       EngineBenchPoint& point) -> base::Status {
    // Requests are made here (the prompts come from one seeded stream), then each is added by its
    // own consumer thread, which is already reading when its tokens arrive: the first-token and
    // per-token times are taken as they come, not when a late reader drains a finished request.
    std::vector<engine::EngineCoreRequest> requests(static_cast<size_t>(count));
    for (int32_t r = 0; r < count; ++r) {
      engine::EngineCoreRequest& req = requests[static_cast<size_t>(r)];
      req.request_id = "bench-" + std::to_string(request_seq++);
      for (int32_t i = 0; i < prompt_len; ++i) req.prompt_token_ids.push_back(token_dist(rng));
      req.sampling_params.temperature = 0.0f;
      req.sampling_params.max_tokens = out_len;
      req.sampling_params.ignore_eos = true;
    }
    struct Track {
      int64_t tokens = 0;
      double first_s = -1.0;
      double last_s = -1.0;
      std::string error;
    };
    std::vector<Track> tracks(requests.size());
    std::vector<std::thread> consumers;
    consumers.reserve(requests.size());
    const Clock::time_point t0 = Clock::now();
    for (size_t i = 0; i < requests.size(); ++i) {
      consumers.emplace_back([&, i] {
        Track& tr = tracks[i];
        auto handle = engine.add_request(std::move(requests[i]));
        if (!handle.ok()) {
          tr.error = "adding request " + std::to_string(i) + ": " + handle.status().message();
          return;
        }
        while (auto out = handle->next()) {
          if (!out->new_token_ids.empty()) {
            tr.last_s = seconds(Clock::now() - t0);
            if (tr.first_s < 0) tr.first_s = tr.last_s;
          }
          tr.tokens += static_cast<int64_t>(out->new_token_ids.size());
          if (out->finish_reason == engine::FinishReason::kError) tr.error = out->error_message;
          if (out->finished()) break;
        }
      });
    }
    for (std::thread& t : consumers) t.join();
    int64_t tokens = 0;
    double ttft_sum = 0.0, last_first_s = 0.0, tpot_sum = 0.0;
    int64_t num_tpot = 0;
    for (const Track& tr : tracks) {
      if (!tr.error.empty()) return base::internal_error("bench: request failed: " + tr.error);
      tokens += tr.tokens;
      ttft_sum += std::max(tr.first_s, 0.0);
      last_first_s = std::max(last_first_s, tr.first_s);
      if (tr.tokens > 1) {
        tpot_sum += (tr.last_s - tr.first_s) / static_cast<double>(tr.tokens - 1);
        ++num_tpot;
      }
    }
    point.wall_s = seconds(Clock::now() - t0);
    point.output_tokens = tokens;
    point.mean_ttft_s = ttft_sum / count;
    point.mean_tpot_s = num_tpot > 0 ? tpot_sum / static_cast<double>(num_tpot) : 0.0;
    const double decode_s = point.wall_s - last_first_s;
    point.decode_tok_s = decode_s > 0 ? static_cast<double>(tokens - count) / decode_s : 0.0;
    return base::ok_status();
  };

  if (config.warmup) {
    EngineBenchPoint ignored;
    NIBBLE_TRY(run_batch(1, std::min(config.prompt_tokens, 8), 2, ignored));
  }
  std::vector<EngineBenchPoint> points;
  for (int32_t c : config.concurrency) {
    const engine::EngineStats before = engine.stats();
    EngineBenchPoint p;
    p.concurrency = c;
    const double cpu0 = process_cpu_seconds();
    NIBBLE_TRY(run_batch(c, config.prompt_tokens, config.output_tokens, p));
    p.cpu_s = process_cpu_seconds() - cpu0;
    p.output_tok_per_cpu_s = p.cpu_s > 0 ? static_cast<double>(p.output_tokens) / p.cpu_s : 0.0;
    const engine::EngineStats after = engine.stats();
    p.output_tok_s = p.wall_s > 0 ? static_cast<double>(p.output_tokens) / p.wall_s : 0.0;
    p.num_steps = after.num_steps - before.num_steps;
    p.num_preemptions = after.scheduler.num_preemptions - before.scheduler.num_preemptions;
    p.kv_cache_bytes = after.kv_cache_bytes;
    p.rss_bytes = read_rss_bytes();
    points.push_back(p);
  }
  return points;
}

std::string format_engine_bench_table(const std::vector<EngineBenchPoint>& points) {
  std::string s =
      "concurrency  out tok/s  speed-up  decode tok/s  speed-up  tok/CPU-s  wall s  mean TTFT s  mean TPOT "
      "ms  "
      "steps  "
      "preempt  KV MiB  "
      "RSS MiB\n";
  const double base = points.empty() ? 0.0 : points.front().output_tok_s;
  const double decode_base = points.empty() ? 0.0 : points.front().decode_tok_s;
  char line[256];
  for (const EngineBenchPoint& p : points) {
    std::snprintf(
        line, sizeof(line),
        "%11d  %9.2f  %7.2fx  %12.2f  %7.2fx  %9.2f  %6.2f  %11.3f  %12.2f  %5lld  %7lld  %6.1f  %7.1f\n",
        p.concurrency, p.output_tok_s, base > 0 ? p.output_tok_s / base : 0.0, p.decode_tok_s,
        decode_base > 0 ? p.decode_tok_s / decode_base : 0.0, p.output_tok_per_cpu_s, p.wall_s, p.mean_ttft_s,
        p.mean_tpot_s * 1e3, static_cast<long long>(p.num_steps), static_cast<long long>(p.num_preemptions),
        static_cast<double>(p.kv_cache_bytes) / (1 << 20), static_cast<double>(p.rss_bytes) / (1 << 20));
    s += line;
  }
  return s;
}

std::string format_engine_bench_json(const EngineBenchConfig& config,
                                     const std::vector<EngineBenchPoint>& points) {
  nlohmann::json j;
  j["prompt_tokens"] = config.prompt_tokens;
  j["output_tokens"] = config.output_tokens;
  j["points"] = nlohmann::json::array();
  const double base = points.empty() ? 0.0 : points.front().output_tok_s;
  for (const EngineBenchPoint& p : points) {
    j["points"].push_back({{"concurrency", p.concurrency},
                           {"output_tok_s", p.output_tok_s},
                           {"wall_s", p.wall_s},
                           {"output_tokens", p.output_tokens},
                           {"mean_ttft_s", p.mean_ttft_s},
                           {"mean_tpot_s", p.mean_tpot_s},
                           {"speedup", base > 0 ? p.output_tok_s / base : 0.0},
                           {"decode_tok_s", p.decode_tok_s},
                           {"cpu_s", p.cpu_s},
                           {"output_tok_per_cpu_s", p.output_tok_per_cpu_s},
                           {"num_steps", p.num_steps},
                           {"num_preemptions", p.num_preemptions},
                           {"kv_cache_bytes", p.kv_cache_bytes},
                           {"rss_bytes", p.rss_bytes}});
  }
  return j.dump();
}

}  // namespace nibble::bench
