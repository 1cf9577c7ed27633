// How big the KV cache is, and when it may grow or shrink (`--kv-cache auto|SIZE|FRACTION`).
//
//   auto      start with one chunk (--kv-cache-chunk, default 256 MiB), grow by chunks on demand up
//             to cap = min(what max_num_seqs x max_model_len can use, available memory - weights -
//             safety margin), give chunks back when idle. The default.
//   SIZE      a fixed pool: "8GiB", "512M", "1.5G" (K/M/G/T and KiB/MiB/GiB/TiB are powers of 1024,
//             KB/MB/GB/TB powers of 1000), capped at what max_num_seqs x max_model_len can use.
//   FRACTION  a fixed pool sized like vLLM's --gpu-memory-utilization: weights + KV take this
//             fraction of total memory ("0.6" or "60%"); refused when that much is not available.
//
// Pure logic over injected numbers (MemoryInfo); read_memory_info() gets the real ones.
// "Available" is MemAvailable from /proc/meminfo, lowered to the cgroup's limit - usage when the
// process runs in a memory-limited cgroup (containers), so the engine never plans past the point
// where the kernel's OOM killer would act.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/status.h"

namespace nibble::engine {

enum class KvCacheMode { kAuto, kSize, kFraction };

struct KvCacheFlag {
  KvCacheMode mode = KvCacheMode::kAuto;
  int64_t size_bytes = 0;  // kSize
  double fraction = 0.0;   // kFraction, in (0, 1]
};

base::Result<KvCacheFlag> parse_kv_cache_flag(std::string_view text);
// A byte count with a unit, as accepted by --kv-cache SIZE ("8GiB", "512M", "100MB", "4096B").
base::Result<int64_t> parse_byte_size(std::string_view text);
std::string format_bytes(int64_t num_bytes);  // "1.50 GiB", "512.0 MiB", "96 B"

struct MemoryInfo {
  int64_t mem_total_bytes = 0;                // MemTotal
  int64_t mem_available_bytes = 0;            // MemAvailable
  std::optional<int64_t> cgroup_limit_bytes;  // memory.max / memory.limit_in_bytes; none = unlimited
  int64_t cgroup_usage_bytes = 0;             // memory.current / memory.usage_in_bytes
  // What may still be allocated without swapping or the OOM killer.
  int64_t available_bytes() const;
  // The machine (or cgroup) size that fractions refer to.
  int64_t total_bytes() const;
  std::string describe() const;  // for error messages
};

// Parses /proc/meminfo text (MemTotal and MemAvailable, in kB).
base::Result<MemoryInfo> parse_meminfo(std::string_view text);
// Parses a cgroup memory file: a byte count, or "max" (v2) / a huge value (v1) = unlimited.
std::optional<int64_t> parse_cgroup_bytes(std::string_view text);
// This process's cgroup paths from /proc/self/cgroup: the v2 one ("0::/path") and the v1
// memory controller's ("N:memory:/path", possibly in a comma-separated controller list).
struct CgroupPaths {
  std::optional<std::string> v2;
  std::optional<std::string> v1_memory;
};
CgroupPaths parse_proc_self_cgroup(std::string_view text);
// Reads /proc/meminfo and the memory limits of this process's cgroup and its ancestors (v2 and
// v1), keeping the tightest.
base::Result<MemoryInfo> read_memory_info();

// Bytes of K and V for one token across all layers: 2 x layers x kv_heads x head_dim x dtype bytes.
// With several KV cache groups, a block holds the layers of one group: pass the largest group's.
// (MLA models store a latent instead; they pass their own bytes-per-token.)
int64_t kv_bytes_per_token(int32_t num_layers, int32_t num_kv_heads, int32_t head_dim, int32_t dtype_bytes);

struct MemoryPolicyConfig {
  KvCacheFlag kv_cache;
  int64_t kv_bytes_per_token = 0;
  int32_t block_size = 16;  // tokens per KV block
  int32_t max_num_seqs = 32;
  int32_t max_model_len = 4096;
  // Blocks one max_model_len sequence holds at most; 0 = cdiv(max_model_len, block_size). Models
  // with several KV cache groups pass theirs (a sliding-window group holds only its window).
  int64_t blocks_per_seq = 0;
  int64_t chunk_bytes = int64_t{256} << 20;  // growth step for auto
  // Kept free for the OS, activations and everything else; < 0 = default max(1 GiB, 5 % of total).
  int64_t safety_margin_bytes = -1;
};

struct KvCachePlan {
  KvCacheMode mode = KvCacheMode::kAuto;
  int64_t bytes_per_token = 0;
  int64_t bytes_per_block = 0;
  int32_t block_size = 16;
  int32_t initial_num_blocks = 0;  // allocated at start
  int32_t max_num_blocks = 0;      // the cap; == initial_num_blocks for a fixed pool
  int32_t min_num_blocks = 0;      // never shrink below
  int32_t chunk_num_blocks = 0;    // growth / shrink step (auto); 0 = fixed
  // Several KV cache groups: a max_model_len sequence takes `group_seq_blocks` blocks (0 = one
  // group, block_size tokens per block).
  int64_t group_seq_blocks = 0;
  int32_t max_model_len = 0;
  int64_t safety_margin_bytes = 0;

  bool growable() const { return max_num_blocks > initial_num_blocks; }
  int64_t max_concurrent_tokens() const {
    if (group_seq_blocks > 0) return int64_t{max_num_blocks} * max_model_len / group_seq_blocks;
    return int64_t{max_num_blocks} * block_size;
  }
  // One line for the start-up log: mode, KV bytes per token, start size, cap, max tokens.
  std::string describe() const;
};

// Sizes the KV cache. `before_load` is the memory as it was before the weights were loaded and
// `weight_bytes` what they take: weights are subtracted explicitly because mmap'd weights sit in
// the page cache, which MemAvailable counts as free. Fails with a message naming the numbers when
// the weights plus KV for one max_model_len sequence (plus the safety margin) do not fit.
base::Result<KvCachePlan> plan_kv_cache(const MemoryPolicyConfig& config, int64_t weight_bytes,
                                        const MemoryInfo& before_load);

// The pre-load check: do the weights plus the minimum KV cache fit? Same rules as plan_kv_cache.
base::Status check_fits_before_load(const MemoryPolicyConfig& config, int64_t weight_bytes,
                                    const MemoryInfo& before_load);

// How many blocks to add when the pool (now `current_num_blocks`) is `num_blocks_short` blocks
// short: whole chunks covering the shortfall, but never past the cap, nor past what `now` says is
// available beyond the safety margin. 0 = do not grow.
int32_t blocks_to_grow(const KvCachePlan& plan, int32_t current_num_blocks, int32_t num_blocks_short,
                       const MemoryInfo& now);

// How many blocks to give back when idle: whole chunks down to min_num_blocks.
int32_t blocks_to_shrink(const KvCachePlan& plan, int32_t current_num_blocks);

}  // namespace nibble::engine
