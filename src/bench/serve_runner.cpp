#include "bench/serve_runner.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <map>
#include <mutex>
#include <random>
#include <thread>

namespace nibble::bench {

namespace {

using Clock = std::chrono::steady_clock;

Clock::duration to_duration(double seconds) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}

// Progress on stderr: a redrawn bar on a terminal, a line every 10 % (at most every 5 s) otherwise.
class Progress {
 public:
  Progress(std::FILE* out, int64_t total, bool enabled)
      : out_(out),
        total_(total),
        enabled_(enabled && out != nullptr && total > 0),
        tty_(enabled_ && isatty(fileno(out)) == 1) {}

  void run(const std::atomic<int64_t>& done, const std::atomic<int64_t>& failed, Clock::time_point start) {
    if (!enabled_) return;
    std::unique_lock<std::mutex> lock(mutex_);
    int64_t last_reported = -1;
    auto last_line = Clock::now();
    while (true) {
      const int64_t num_done = done.load();
      const double elapsed_s = std::chrono::duration<double>(Clock::now() - start).count();
      if (tty_) {
        constexpr int kWidth = 30;
        const auto filled = static_cast<int>(kWidth * num_done / total_);
        std::string bar(static_cast<size_t>(filled), '#');
        bar.resize(kWidth, '.');
        std::fprintf(out_, "\r[%s] %lld/%lld requests, %lld failed, %.1f s", bar.c_str(),
                     static_cast<long long>(num_done), static_cast<long long>(total_),
                     static_cast<long long>(failed.load()), elapsed_s);
        std::fflush(out_);
      } else {
        const int64_t step = std::max<int64_t>(1, total_ / 10);
        const bool due = num_done / step != last_reported / step ||
                         (num_done != last_reported && Clock::now() - last_line > std::chrono::seconds(5));
        if (last_reported < 0 || due || num_done == total_) {
          if (num_done != last_reported) {
            std::fprintf(out_, "progress: %lld/%lld requests done (%lld failed), %.1f s\n",
                         static_cast<long long>(num_done), static_cast<long long>(total_),
                         static_cast<long long>(failed.load()), elapsed_s);
            std::fflush(out_);
            last_reported = num_done;
            last_line = Clock::now();
          }
        }
      }
      if (num_done >= total_ || stop_) break;
      wake_.wait_for(lock, std::chrono::milliseconds(tty_ ? 100 : 250));
    }
    if (tty_) std::fprintf(out_, "\n");
  }

  void stop() {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
    wake_.notify_all();
  }

 private:
  std::FILE* out_;
  int64_t total_;
  bool enabled_;
  bool tty_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
};

}  // namespace

std::vector<double> arrival_offsets(int64_t num_requests, double request_rate, double burstiness,
                                    uint64_t seed) {
  std::vector<double> offsets(static_cast<size_t>(std::max<int64_t>(num_requests, 0)), 0.0);
  if (num_requests <= 0 || !(request_rate > 0) || std::isinf(request_rate)) return offsets;
  const double shape = burstiness > 0 ? burstiness : 1.0;
  const double theta = 1.0 / (request_rate * shape);
  std::mt19937_64 rng(seed ^ 0x9e3779b97f4a7c15ULL);
  std::gamma_distribution<double> gap(shape, theta);
  double t = 0;
  for (double& offset : offsets) {
    t += gap(rng);
    offset = t;
  }
  if (offsets.back() > 0) {
    const double scale = (static_cast<double>(num_requests) / request_rate) / offsets.back();
    for (double& offset : offsets) offset *= scale;
  }
  return offsets;
}

RunResult run_requests(const RunOptions& opts, const std::vector<SampleRequest>& requests) {
  RunResult result;
  const auto num_requests = static_cast<int64_t>(requests.size());
  result.outputs.resize(requests.size());
  if (num_requests == 0) return result;
  const std::vector<double> offsets =
      arrival_offsets(num_requests, opts.request_rate, opts.burstiness, opts.seed);
  const int64_t limit = opts.max_concurrency > 0 ? opts.max_concurrency : kMaxWorkerThreads;
  const int64_t num_workers = std::min(num_requests, limit);

  std::atomic<int64_t> next{0}, done{0}, failed{0};
  Progress progress(opts.progress_out, num_requests, opts.progress);
  const Clock::time_point start = Clock::now();
  result.start = start;

  // Each worker takes the next request in arrival order, waits for its arrival time, sends it and
  // streams the reply: at most num_workers requests are in flight (the concurrency limit), and a
  // request that arrives while all are busy waits (its wait is its queue time).
  auto worker = [&]() {
    auto client_or = OpenAiClient::create(opts.client);
    while (true) {
      const int64_t i = next.fetch_add(1);
      if (i >= num_requests) break;
      const auto idx = static_cast<size_t>(i);
      const Clock::time_point arrival = start + to_duration(offsets[idx]);
      std::this_thread::sleep_until(arrival);
      RequestOutput out;
      if (!client_or.ok()) {
        out.error = client_or.status().message();
        out.start_time_s = std::chrono::duration<double>(Clock::now() - start).count();
      } else {
        RequestSpec spec;
        spec.model = opts.model;
        spec.prompt = requests[idx].prompt;
        spec.prompt_len = requests[idx].prompt_len;
        spec.max_tokens = requests[idx].expected_output_len;
        spec.ignore_eos = opts.ignore_eos;
        spec.request_id = "nibble-bench-" + std::to_string(i);
        out = (*client_or)->stream_request(opts.api, spec, start);
      }
      out.queue_time_s = std::max(0.0, out.start_time_s - offsets[idx]);
      if (!out.success) failed.fetch_add(1);
      result.outputs[idx] = std::move(out);
      done.fetch_add(1);
    }
  };
  std::thread progress_thread([&] { progress.run(done, failed, start); });
  std::vector<std::thread> workers;
  workers.reserve(static_cast<size_t>(num_workers));
  for (int64_t w = 0; w < num_workers; ++w) workers.emplace_back(worker);
  for (std::thread& t : workers) t.join();
  result.duration_s = std::chrono::duration<double>(Clock::now() - start).count();
  progress.stop();
  progress_thread.join();
  return result;
}

int64_t resolve_output_lens(std::vector<RequestOutput>* outputs, PromptTokenizer* tokenizer) {
  int64_t num_filled = 0;
  for (RequestOutput& o : *outputs) {
    if (!o.success || o.output_tokens > 0) continue;
    int64_t count = 1;  // vLLM counts 1 when it has no tokenizer
    if (tokenizer != nullptr) {
      auto ids = tokenizer->encode(o.generated_text, /*add_special_tokens=*/false);
      if (ids.ok()) count = static_cast<int64_t>(ids->size());
    }
    o.output_tokens = count;
    o.output_len_from_usage = false;
    ++num_filled;
  }
  return num_filled;
}

std::vector<std::string> summarize_errors(const std::vector<RequestOutput>& outputs, size_t max_lines) {
  std::map<std::string, int64_t> counts;
  std::vector<std::string> first_seen;
  for (const RequestOutput& o : outputs) {
    if (o.success) continue;
    const std::string msg = o.error.empty() ? "unknown error" : o.error;
    if (counts[msg]++ == 0) first_seen.push_back(msg);
  }
  std::stable_sort(first_seen.begin(), first_seen.end(),
                   [&](const std::string& a, const std::string& b) { return counts[a] > counts[b]; });
  std::vector<std::string> lines;
  for (size_t i = 0; i < first_seen.size() && i < max_lines; ++i) {
    lines.push_back(std::to_string(counts[first_seen[i]]) + " x " + first_seen[i]);
  }
  if (first_seen.size() > max_lines) {
    lines.push_back("... and " + std::to_string(first_seen.size() - max_lines) + " other distinct errors");
  }
  return lines;
}

}  // namespace nibble::bench
