// Short hardware probes for `nibble plan --device this-cpu` (and later `nibble bench`): memory
// bandwidth by a multi-threaded streaming read, FMA peak by independent FMA chains, and the
// memory the OS reports. Each probe runs well under a second.
#pragma once

#include <cstdint>
#include <string>

#include "base/status.h"
#include "base/thread_pool.h"

namespace nibble::plan::probe {

struct MemoryInfo {
  int64_t total_bytes = 0;      // MemTotal
  int64_t available_bytes = 0;  // MemAvailable
};

// Parses the text of /proc/meminfo ("MemTotal:  131072 kB" lines).
base::Result<MemoryInfo> parse_meminfo(const std::string& text);
base::Result<MemoryInfo> read_meminfo(const std::string& path = "/proc/meminfo");

struct BandwidthResult {
  double bytes_per_s = 0;  // best pass
  int64_t buffer_bytes = 0;
  int num_threads = 0;
  int num_passes = 0;
};

// Reads a buffer of `buffer_bytes` (≥ 1 GiB by default, so no cache holds it) with every pool
// thread, each over its own first-touched slice; returns the best of `num_passes` passes.
base::Result<BandwidthResult> measure_read_bandwidth(base::ThreadPool& pool,
                                                     int64_t buffer_bytes = int64_t{1} << 30,
                                                     int num_passes = 3);

struct FlopsResult {
  double flops_per_s = 0;  // FP32, all threads
  std::string isa;         // "avx512", "avx2", "neon", "generic"
  int num_threads = 0;
};

// Runs independent FP32 FMA chains on every pool thread for about `seconds`.
FlopsResult measure_fma_peak(base::ThreadPool& pool, double seconds = 0.2);

// Per-ISA FMA loops (probe_fma_<isa>.cpp, compiled with their own flags). Each runs `iters`
// iterations and returns the FLOPs it performed; `sink` keeps the result alive.
namespace detail {
double fma_loop_generic(int64_t iters, float* sink);
#if defined(__x86_64__)
double fma_loop_avx2(int64_t iters, float* sink);
double fma_loop_avx512(int64_t iters, float* sink);
#endif
}  // namespace detail

}  // namespace nibble::plan::probe
