// Fuzzes the engine's text parsers: --kv-cache values, byte sizes, /proc/meminfo, cgroup files.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "engine/memory_policy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)nibble::engine::parse_kv_cache_flag(text);
  (void)nibble::engine::parse_byte_size(text);
  (void)nibble::engine::parse_meminfo(text);
  (void)nibble::engine::parse_cgroup_bytes(text);
  (void)nibble::engine::parse_proc_self_cgroup(text);
  return 0;
}
