#include "plan/probe.h"

#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <vector>

#include "base/cpu_features.h"

namespace nibble::plan::probe {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

using LoopFn = double (*)(int64_t, float*);

LoopFn pick_loop(std::string* isa) {
#if defined(__x86_64__)
  const base::CpuFeatures& f = base::cpu_features();
  if (f.avx512f) {
    *isa = "avx512";
    return detail::fma_loop_avx512;
  }
  if (f.avx2 && f.fma) {
    *isa = "avx2";
    return detail::fma_loop_avx2;
  }
#endif
#if defined(__aarch64__)
  *isa = "neon";
#else
  *isa = "generic";
#endif
  return detail::fma_loop_generic;
}

}  // namespace

namespace detail {

double fma_loop_generic(int64_t iters, float* sink) {
  constexpr int kChains = 16;
  float acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = 0.001f * static_cast<float>(i);
  for (int64_t it = 0; it < iters; ++it) {
    for (int i = 0; i < kChains; ++i) acc[i] = std::fma(acc[i], 0.999999f, 1e-7f);
  }
  float sum = 0;
  for (float a : acc) sum += a;
  *sink = sum;
  return static_cast<double>(iters) * kChains * 2;
}

}  // namespace detail

base::Result<MemoryInfo> parse_meminfo(const std::string& text) {
  MemoryInfo info;
  std::istringstream in(text);
  std::string line;
  bool have_total = false;
  bool have_available = false;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string key;
    int64_t value_kb = 0;
    std::string unit;
    if (!(fields >> key >> value_kb)) continue;
    fields >> unit;
    if (unit != "kB" || value_kb < 0) continue;
    if (key == "MemTotal:") {
      info.total_bytes = value_kb * 1024;
      have_total = true;
    } else if (key == "MemAvailable:") {
      info.available_bytes = value_kb * 1024;
      have_available = true;
    }
  }
  if (!have_total || !have_available) {
    return base::corrupt("meminfo: MemTotal or MemAvailable line missing");
  }
  return info;
}

base::Result<MemoryInfo> read_meminfo(const std::string& path) {
  // Read with a stream: /proc files report size 0, so mapping them yields nothing.
  std::ifstream in(path);
  if (!in) return base::not_found(path + ": cannot open");
  std::stringstream text;
  text << in.rdbuf();
  auto info = parse_meminfo(text.str());
  if (!info.ok()) return info.status().with_context(path);
  return info;
}

base::Result<BandwidthResult> measure_read_bandwidth(base::ThreadPool& pool, int64_t buffer_bytes,
                                                     int num_passes) {
  const int64_t num_words = buffer_bytes / static_cast<int64_t>(sizeof(uint64_t));
  if (num_words <= 0 || num_passes <= 0)
    return base::invalid_argument("bandwidth probe: empty buffer or no passes");
  const size_t map_bytes = static_cast<size_t>(num_words) * sizeof(uint64_t);
  void* map = ::mmap(nullptr, map_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (map == MAP_FAILED) {
    return base::resource_exhausted("bandwidth probe: cannot map " + std::to_string(buffer_bytes) + " bytes");
  }
  std::unique_ptr<void, std::function<void(void*)>> unmap(map,
                                                          [map_bytes](void* p) { ::munmap(p, map_bytes); });
  uint64_t* words = static_cast<uint64_t*>(map);
  const int num_threads = pool.num_threads();
  const int64_t slice = (num_words + num_threads - 1) / num_threads;
  // First touch by the thread that will read the slice (NUMA placement): one write per 4 KiB page
  // faults it in (the kernel zeroes it); no MADV_HUGEPAGE, whose compaction can stall for seconds.
  constexpr int64_t kWordsPerPage = 4096 / sizeof(uint64_t);
  auto touch = [&](int64_t task_idx, int) {
    const int64_t begin = task_idx * slice;
    const int64_t end = std::min(num_words, begin + slice);
    for (int64_t i = begin; i < end; i += kWordsPerPage) words[i] = static_cast<uint64_t>(i);
  };
  pool.run(num_threads, base::TaskFn(touch));

  std::vector<uint64_t> sums(static_cast<size_t>(num_threads), 0);
  auto read = [&](int64_t task_idx, int) {
    const int64_t begin = task_idx * slice;
    const int64_t end = std::min(num_words, begin + slice);
    uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;  // independent chains so loads overlap
    int64_t i = begin;
    for (; i + 4 <= end; i += 4) {
      a0 += words[i];
      a1 ^= words[i + 1];
      a2 += words[i + 2];
      a3 ^= words[i + 3];
    }
    for (; i < end; ++i) a0 += words[i];
    sums[static_cast<size_t>(task_idx)] = a0 + a1 + a2 + a3;
  };
  double best_s = 0;
  int passes_done = 0;
  const auto probe_start = Clock::now();
  for (int pass = 0; pass < num_passes; ++pass) {
    const auto start = Clock::now();
    pool.run(num_threads, base::TaskFn(read));
    const double s = seconds_since(start);
    if (pass == 0 || s < best_s) best_s = s;
    ++passes_done;
    if (seconds_since(probe_start) > 0.8) break;  // keep the whole probe well under 2 s on a busy machine
  }
  uint64_t check = 0;
  for (uint64_t v : sums) check += v;
  volatile uint64_t sink = check;
  (void)sink;
  BandwidthResult r;
  r.buffer_bytes = num_words * static_cast<int64_t>(sizeof(uint64_t));
  r.bytes_per_s = best_s > 0 ? static_cast<double>(r.buffer_bytes) / best_s : 0;
  r.num_threads = num_threads;
  r.num_passes = passes_done;
  return r;
}

FlopsResult measure_fma_peak(base::ThreadPool& pool, double seconds) {
  FlopsResult r;
  const LoopFn loop = pick_loop(&r.isa);
  r.num_threads = pool.num_threads();
  float sink = 0;
  // Calibrate on one thread: how many iterations take about 10 ms.
  int64_t iters = 1 << 14;
  for (;;) {
    const auto start = Clock::now();
    loop(iters, &sink);
    const double s = seconds_since(start);
    if (s > 0.01 || iters > (int64_t{1} << 40)) {
      iters = std::max<int64_t>(
          1, static_cast<int64_t>(static_cast<double>(iters) * seconds / std::max(s, 1e-9)));
      break;
    }
    iters *= 4;
  }
  std::vector<double> flops(static_cast<size_t>(r.num_threads), 0);
  std::vector<float> sinks(static_cast<size_t>(r.num_threads), 0);
  auto work = [&](int64_t task_idx, int) {
    flops[static_cast<size_t>(task_idx)] = loop(iters, &sinks[static_cast<size_t>(task_idx)]);
  };
  const auto start = Clock::now();
  pool.run(r.num_threads, base::TaskFn(work));
  const double s = seconds_since(start);
  double total = 0;
  for (double f : flops) total += f;
  volatile float keep = sinks[0] + sink;
  (void)keep;
  r.flops_per_s = s > 0 ? total / s : 0;
  return r;
}

}  // namespace nibble::plan::probe
