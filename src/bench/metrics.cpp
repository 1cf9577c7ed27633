#include "bench/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <sstream>

namespace nibble::bench {

double percentile_linear(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  // numpy 'linear': virtual index = p/100 * (n - 1), interpolate between its neighbours.
  const double rank = p / 100.0 * static_cast<double>(values.size() - 1);
  const double lo_f = std::floor(rank);
  const size_t lo = static_cast<size_t>(lo_f);
  const size_t hi = std::min(lo + 1, values.size() - 1);
  const double frac = rank - lo_f;
  return values[lo] + (values[hi] - values[lo]) * frac;
}

double mean_of(const std::vector<double>& values) {
  if (values.empty()) return 0;
  double sum = 0;
  for (double v : values) sum += v;
  return sum / static_cast<double>(values.size());
}

double population_std_of(const std::vector<double>& values) {
  if (values.empty()) return 0;
  const double mean = mean_of(values);
  double sum_sq = 0;
  for (double v : values) sum_sq += (v - mean) * (v - mean);
  return std::sqrt(sum_sq / static_cast<double>(values.size()));
}

MetricStats summarize_ms(const std::vector<double>& values_s, const std::vector<double>& percentiles) {
  MetricStats stats;
  stats.mean_ms = mean_of(values_s) * 1000.0;
  stats.median_ms = percentile_linear(values_s, 50.0) * 1000.0;
  stats.std_ms = population_std_of(values_s) * 1000.0;
  for (double p : percentiles) stats.percentiles_ms.emplace_back(p, percentile_linear(values_s, p) * 1000.0);
  return stats;
}

namespace {

// vLLM's peak statistics over 1-s buckets counted from the earliest start of a successful
// request: the most chunks streamed in one bucket ("Peak output token throughput"; chunks are
// rebuilt as start + ttft + cumsum(itl), so it counts chunks, not tokens) and the most requests
// active in one bucket ("Peak concurrent requests"; a request is active in every bucket from the
// one holding its start to the one holding its end, both included).
void peak_per_second(const std::vector<const RequestOutput*>& ok, double* max_chunks_per_s,
                     int64_t* max_concurrent) {
  *max_chunks_per_s = 0;
  *max_concurrent = 0;
  if (ok.empty()) return;
  double min_start = ok[0]->start_time_s, max_end = ok[0]->start_time_s + ok[0]->latency_s;
  for (const RequestOutput* o : ok) {
    min_start = std::min(min_start, o->start_time_s);
    max_end = std::max(max_end, o->start_time_s + o->latency_s);
  }
  const int64_t num_buckets = static_cast<int64_t>(std::ceil(max_end - min_start)) + 1;
  std::vector<int64_t> chunks(static_cast<size_t>(num_buckets), 0),
      active(static_cast<size_t>(num_buckets), 0);
  auto bucket_of = [&](double time_s) {
    return static_cast<int64_t>(time_s - min_start);
  };  // int() truncation
  for (const RequestOutput* o : ok) {
    double t = o->start_time_s + o->ttft_s;
    auto add = [&](double time_s) {
      const int64_t b = bucket_of(time_s);
      if (b >= 0 && b < num_buckets) ++chunks[static_cast<size_t>(b)];
    };
    add(t);
    for (double gap : o->itl_s) {
      t += gap;
      add(t);
    }
    const int64_t first = bucket_of(o->start_time_s), last = bucket_of(o->start_time_s + o->latency_s);
    for (int64_t b = std::max<int64_t>(first, 0); b <= last && b < num_buckets; ++b)
      ++active[static_cast<size_t>(b)];
  }
  *max_chunks_per_s = static_cast<double>(*std::max_element(chunks.begin(), chunks.end()));
  *max_concurrent = *std::max_element(active.begin(), active.end());
}

}  // namespace

BenchmarkMetrics compute_metrics(const std::vector<RequestOutput>& outputs, double dur_s,
                                 const std::vector<double>& percentiles, const GoodputSlo& slo) {
  BenchmarkMetrics m;
  std::vector<double> ttfts, tpots, all_tpots, itls, e2els, queue_times, e2els_with_queue;
  std::vector<const RequestOutput*> ok;
  for (const RequestOutput& o : outputs) {
    if (!o.success) {
      m.output_lens.push_back(0);
      ++m.failed;
      continue;
    }
    ok.push_back(&o);
    const int64_t output_len = o.output_tokens;
    m.output_lens.push_back(output_len);
    m.total_output += output_len;
    m.total_input += o.prompt_len;
    double tpot = 0;  // 1-token outputs: excluded from TPOT stats, counted as 0 for goodput
    if (output_len > 1) {
      tpot = (o.latency_s - o.ttft_s) / static_cast<double>(output_len - 1);
      tpots.push_back(tpot);
    }
    all_tpots.push_back(tpot);
    itls.insert(itls.end(), o.itl_s.begin(), o.itl_s.end());
    ttfts.push_back(o.ttft_s);
    e2els.push_back(o.latency_s);
    queue_times.push_back(o.queue_time_s);
    e2els_with_queue.push_back(o.latency_s + o.queue_time_s);
    ++m.completed;
  }

  int64_t good = 0;
  if (slo.any()) {
    for (size_t i = 0; i < ttfts.size(); ++i) {
      bool is_good = true;
      if (slo.ttft_ms >= 0 && !(slo.ttft_ms / 1000.0 >= ttfts[i])) is_good = false;
      if (slo.tpot_ms >= 0 && !(slo.tpot_ms / 1000.0 >= all_tpots[i])) is_good = false;
      if (slo.e2el_ms >= 0 && !(slo.e2el_ms / 1000.0 >= e2els[i])) is_good = false;
      if (is_good) ++good;
    }
  }

  const double dur = dur_s > 0 ? dur_s : 1e-9;
  m.request_throughput = static_cast<double>(m.completed) / dur;
  m.request_goodput = static_cast<double>(good) / dur;
  m.output_throughput = static_cast<double>(m.total_output) / dur;
  m.total_token_throughput = static_cast<double>(m.total_input + m.total_output) / dur;
  peak_per_second(ok, &m.max_output_tokens_per_s, &m.max_concurrent_requests);
  m.ttft = summarize_ms(ttfts, percentiles);
  m.tpot = summarize_ms(tpots, percentiles);
  m.itl = summarize_ms(itls, percentiles);
  m.e2el = summarize_ms(e2els, percentiles);
  m.client_queue_time = summarize_ms(queue_times, percentiles);
  m.e2el_including_client_queue = summarize_ms(e2els_with_queue, percentiles);
  return m;
}

base::Result<GoodputSlo> parse_goodput(const std::vector<std::string>& items) {
  GoodputSlo slo;
  for (const std::string& item_group : items) {
    std::string spaced = item_group;
    std::replace(spaced.begin(), spaced.end(), ',', ' ');
    std::istringstream words(spaced);
    std::string item;
    while (words >> item) {
      const size_t colon = item.find(':');
      if (colon == std::string::npos) {
        return base::invalid_argument("--goodput: '" + item + "' is not NAME:MILLISECONDS (e.g. ttft:500)");
      }
      const std::string name = item.substr(0, colon), value_str = item.substr(colon + 1);
      char* end = nullptr;
      const double value = std::strtod(value_str.c_str(), &end);
      if (value_str.empty() || end == nullptr || *end != '\0' || !(value >= 0) || !std::isfinite(value)) {
        return base::invalid_argument("--goodput: '" + item +
                                      "' needs a non-negative number of milliseconds");
      }
      if (name == "ttft") {
        slo.ttft_ms = value;
      } else if (name == "tpot") {
        slo.tpot_ms = value;
      } else if (name == "e2el") {
        slo.e2el_ms = value;
      } else {
        return base::invalid_argument("--goodput: unknown metric '" + name + "' (use ttft, tpot or e2el)");
      }
    }
  }
  return slo;
}

}  // namespace nibble::bench
