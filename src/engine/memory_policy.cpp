#include "engine/memory_policy.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>

namespace nibble::engine {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// Splits "1.5GiB" into the number 1.5 and the unit "gib"; false if there is no leading number.
bool split_number(std::string_view text, double* number, std::string* unit) {
  size_t i = 0;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
  if (i == 0) return false;
  std::string digits(text.substr(0, i));
  if (std::count(digits.begin(), digits.end(), '.') > 1 || digits == ".") return false;
  char* end = nullptr;
  *number = std::strtod(digits.c_str(), &end);
  if (end != digits.c_str() + digits.size()) return false;
  *unit = lower(trim(text.substr(i)));
  return true;
}

std::string read_file_text(const char* path) {
  std::ifstream in(path);
  if (!in) return {};
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int64_t default_margin(const MemoryInfo& info) {
  return std::max<int64_t>(int64_t{1} << 30, info.total_bytes() / 20);
}

constexpr const char* kKvCacheFlagHelp =
    "expected auto, a size like 8GiB or 512M, or a fraction like 0.6 or 60%";

}  // namespace

base::Result<int64_t> parse_byte_size(std::string_view text) {
  double number = 0.0;
  std::string unit;
  if (!split_number(trim(text), &number, &unit))
    return base::invalid_argument("'" + std::string(text) + "' is not a byte size (e.g. 8GiB, 512M)");
  double scale = 0.0;
  if (unit == "b")
    scale = 1.0;
  else if (unit == "k" || unit == "kib")
    scale = 1024.0;
  else if (unit == "m" || unit == "mib")
    scale = 1024.0 * 1024;
  else if (unit == "g" || unit == "gib")
    scale = 1024.0 * 1024 * 1024;
  else if (unit == "t" || unit == "tib")
    scale = 1024.0 * 1024 * 1024 * 1024;
  else if (unit == "kb")
    scale = 1e3;
  else if (unit == "mb")
    scale = 1e6;
  else if (unit == "gb")
    scale = 1e9;
  else if (unit == "tb")
    scale = 1e12;
  else
    return base::invalid_argument(
        "'" + std::string(text) +
        "': unknown or missing unit (use B, K/KiB, M/MiB, G/GiB, T/TiB, KB, MB, GB, TB)");
  const double bytes = number * scale;
  if (!(bytes >= 1.0) || bytes > 1e18)
    return base::invalid_argument("'" + std::string(text) + "': size out of range");
  return static_cast<int64_t>(bytes);
}

base::Result<KvCacheFlag> parse_kv_cache_flag(std::string_view text) {
  const std::string_view t = trim(text);
  const std::string where = "--kv-cache '" + std::string(text) + "': ";
  if (lower(t) == "auto") return KvCacheFlag{};
  double number = 0.0;
  std::string unit;
  if (!split_number(t, &number, &unit)) return base::invalid_argument(where + kKvCacheFlagHelp);
  if (unit.empty() || unit == "%") {
    const double fraction = unit == "%" ? number / 100.0 : number;
    if (unit.empty() && number > 1.0)
      return base::invalid_argument(
          where + "a plain number must be a fraction in (0, 1]; give sizes a unit (e.g. 8GiB)");
    if (!(fraction > 0.0) || fraction > 1.0)
      return base::invalid_argument(where + "the fraction must be in (0, 1]");
    KvCacheFlag flag;
    flag.mode = KvCacheMode::kFraction;
    flag.fraction = fraction;
    return flag;
  }
  auto bytes = parse_byte_size(t);
  if (!bytes.ok()) return base::invalid_argument(where + bytes.status().message() + "; " + kKvCacheFlagHelp);
  KvCacheFlag flag;
  flag.mode = KvCacheMode::kSize;
  flag.size_bytes = *bytes;
  return flag;
}

std::string format_bytes(int64_t num_bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(num_bytes);
  int unit = 0;
  while (std::abs(value) >= 1024.0 && unit < 4) {
    value /= 1024.0;
    ++unit;
  }
  char buf[64];
  if (unit == 0)
    std::snprintf(buf, sizeof buf, "%lld B", static_cast<long long>(num_bytes));
  else
    std::snprintf(buf, sizeof buf, "%.2f %s", value, units[unit]);
  return buf;
}

int64_t MemoryInfo::available_bytes() const {
  int64_t avail = mem_available_bytes;
  if (cgroup_limit_bytes)
    avail = std::min(avail, std::max<int64_t>(0, *cgroup_limit_bytes - cgroup_usage_bytes));
  return avail;
}

int64_t MemoryInfo::total_bytes() const {
  return cgroup_limit_bytes ? std::min(mem_total_bytes, *cgroup_limit_bytes) : mem_total_bytes;
}

std::string MemoryInfo::describe() const {
  std::string s = format_bytes(available_bytes()) + " available (MemAvailable " +
                  format_bytes(mem_available_bytes) + " of " + format_bytes(mem_total_bytes);
  if (cgroup_limit_bytes)
    s +=
        "; cgroup limit " + format_bytes(*cgroup_limit_bytes) + ", using " + format_bytes(cgroup_usage_bytes);
  return s + ")";
}

base::Result<MemoryInfo> parse_meminfo(std::string_view text) {
  MemoryInfo info;
  bool have_total = false, have_available = false;
  std::istringstream in{std::string(text)};
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string key;
    long long kib = 0;
    if (!(fields >> key >> kib)) continue;
    if (key == "MemTotal:") {
      info.mem_total_bytes = kib * 1024;
      have_total = true;
    } else if (key == "MemAvailable:") {
      info.mem_available_bytes = kib * 1024;
      have_available = true;
    }
  }
  if (!have_total || !have_available) return base::corrupt("/proc/meminfo: MemTotal or MemAvailable missing");
  return info;
}

std::optional<int64_t> parse_cgroup_bytes(std::string_view text) {
  const std::string_view t = trim(text);
  if (t.empty() || t == "max") return std::nullopt;
  int64_t value = 0;
  auto [ptr, ec] = std::from_chars(t.data(), t.data() + t.size(), value);
  if (ec != std::errc() || ptr != t.data() + t.size() || value < 0) return std::nullopt;
  if (value >= (int64_t{1} << 60)) return std::nullopt;  // cgroup v1 "unlimited" is ~2^63 rounded to pages
  return value;
}

CgroupPaths parse_proc_self_cgroup(std::string_view text) {
  CgroupPaths paths;
  std::istringstream in{std::string(text)};
  std::string line;
  while (std::getline(in, line)) {
    // "hierarchy-id:controller-list:path"; the path may itself contain ':'.
    const size_t first = line.find(':');
    const size_t second = first == std::string::npos ? std::string::npos : line.find(':', first + 1);
    if (second == std::string::npos) continue;
    const std::string id = line.substr(0, first);
    const std::string controllers = line.substr(first + 1, second - first - 1);
    const std::string path = line.substr(second + 1);
    if (id == "0" && controllers.empty()) {
      paths.v2 = path;
      continue;
    }
    std::istringstream list(controllers);
    std::string controller;
    while (std::getline(list, controller, ','))
      if (controller == "memory") paths.v1_memory = path;
  }
  return paths;
}

namespace {

// Walks from mount_root/rel_path up to mount_root and keeps the level with the least room
// (limit - usage). Directories that do not exist (a cgroup namespace hides the host's path) are
// skipped, so inside a container the walk ends at the container's own cgroup.
void apply_tightest_cgroup_limit(const std::string& mount_root, std::string rel_path, const char* limit_file,
                                 const char* usage_file, MemoryInfo& info) {
  for (;;) {
    while (!rel_path.empty() && rel_path.back() == '/') rel_path.pop_back();
    const std::string dir = mount_root + rel_path;
    if (auto limit = parse_cgroup_bytes(read_file_text((dir + "/" + limit_file).c_str()))) {
      const int64_t usage = parse_cgroup_bytes(read_file_text((dir + "/" + usage_file).c_str())).value_or(0);
      if (!info.cgroup_limit_bytes || *limit - usage < *info.cgroup_limit_bytes - info.cgroup_usage_bytes) {
        info.cgroup_limit_bytes = *limit;
        info.cgroup_usage_bytes = usage;
      }
    }
    if (rel_path.empty()) return;
    const size_t slash = rel_path.rfind('/');
    rel_path = slash == std::string::npos ? std::string() : rel_path.substr(0, slash);
  }
}

}  // namespace

base::Result<MemoryInfo> read_memory_info() {
  const std::string meminfo = read_file_text("/proc/meminfo");
  if (meminfo.empty()) return base::io_error("/proc/meminfo: cannot read");
  NIBBLE_ASSIGN_OR_RETURN(MemoryInfo info, parse_meminfo(meminfo));
  const CgroupPaths paths = parse_proc_self_cgroup(read_file_text("/proc/self/cgroup"));
  // cgroup v2 (unified) and v1 (memory controller); on hybrid systems both may apply.
  apply_tightest_cgroup_limit("/sys/fs/cgroup", paths.v2.value_or(""), "memory.max", "memory.current", info);
  apply_tightest_cgroup_limit("/sys/fs/cgroup/memory", paths.v1_memory.value_or(""), "memory.limit_in_bytes",
                              "memory.usage_in_bytes", info);
  return info;
}

int64_t kv_bytes_per_token(int32_t num_layers, int32_t num_kv_heads, int32_t head_dim, int32_t dtype_bytes) {
  return int64_t{2} * num_layers * num_kv_heads * head_dim * dtype_bytes;
}

std::string KvCachePlan::describe() const {
  const char* mode_name = mode == KvCacheMode::kAuto   ? "auto"
                          : mode == KvCacheMode::kSize ? "size"
                                                       : "fraction";
  std::string s = std::string("KV cache (") + mode_name + "): " + format_bytes(bytes_per_token) +
                  " per token, " + std::to_string(block_size) + "-token blocks of " +
                  format_bytes(bytes_per_block) + "; start " + std::to_string(initial_num_blocks) +
                  " blocks (" + format_bytes(bytes_per_block * initial_num_blocks) + ")";
  if (growable())
    s += ", grows by " + std::to_string(chunk_num_blocks) + " blocks up to a cap of " +
         std::to_string(max_num_blocks) + " blocks (" + format_bytes(bytes_per_block * max_num_blocks) + ")";
  return s + "; max concurrent tokens " + std::to_string(max_concurrent_tokens());
}

base::Result<KvCachePlan> plan_kv_cache(const MemoryPolicyConfig& config, int64_t weight_bytes,
                                        const MemoryInfo& before_load) {
  if (config.kv_bytes_per_token <= 0)
    return base::invalid_argument("kv cache: bytes per token must be positive");
  if (config.block_size <= 0 || config.max_num_seqs <= 0 || config.max_model_len <= 0)
    return base::invalid_argument("kv cache: block_size, max_num_seqs and max_model_len must be positive");
  KvCachePlan plan;
  plan.mode = config.kv_cache.mode;
  plan.block_size = config.block_size;
  plan.bytes_per_token = config.kv_bytes_per_token;
  plan.bytes_per_block = config.kv_bytes_per_token * config.block_size;
  plan.group_seq_blocks = config.blocks_per_seq;
  plan.max_model_len = config.max_model_len;
  plan.safety_margin_bytes =
      config.safety_margin_bytes >= 0 ? config.safety_margin_bytes : default_margin(before_load);

  // The most blocks one sequence holds: its max_model_len tokens, or (KV cache groups with sliding
  // windows) what the caller computed.
  const int64_t blocks_per_seq =
      config.blocks_per_seq > 0 ? config.blocks_per_seq
                                : (int64_t{config.max_model_len} + config.block_size - 1) / config.block_size;
  const int64_t useful_blocks = blocks_per_seq * config.max_num_seqs;  // more could never be used
  const int64_t min_kv_bytes = blocks_per_seq * plan.bytes_per_block;
  const int64_t available = before_load.available_bytes();
  const int64_t kv_room = available - weight_bytes - plan.safety_margin_bytes;  // what KV may take
  const std::string needs = "weights " + format_bytes(weight_bytes) + " + KV cache for one " +
                            std::to_string(config.max_model_len) + "-token sequence " +
                            format_bytes(min_kv_bytes) + " + safety margin " +
                            format_bytes(plan.safety_margin_bytes);
  const std::string advice = "; lower --max-model-len, pick a smaller weight format, or free memory";
  if (kv_room < min_kv_bytes)
    return base::resource_exhausted("not enough memory: " + needs + " = " +
                                    format_bytes(weight_bytes + min_kv_bytes + plan.safety_margin_bytes) +
                                    ", but only " + before_load.describe() + advice);

  int64_t num_blocks = 0;
  switch (config.kv_cache.mode) {
    case KvCacheMode::kAuto: {
      const int64_t cap = std::min(useful_blocks, kv_room / plan.bytes_per_block);
      const int64_t chunk = std::clamp<int64_t>(config.chunk_bytes / plan.bytes_per_block, 1, cap);
      plan.max_num_blocks = static_cast<int32_t>(cap);
      plan.chunk_num_blocks = static_cast<int32_t>(chunk);
      plan.initial_num_blocks = static_cast<int32_t>(chunk);
      plan.min_num_blocks = static_cast<int32_t>(chunk);
      return plan;
    }
    case KvCacheMode::kSize: {
      if (config.kv_cache.size_bytes > kv_room)
        return base::resource_exhausted("--kv-cache " + format_bytes(config.kv_cache.size_bytes) +
                                        " does not fit: " + "weights " + format_bytes(weight_bytes) +
                                        " + safety margin " + format_bytes(plan.safety_margin_bytes) +
                                        " leave " + format_bytes(kv_room) + " of " + before_load.describe());
      num_blocks = config.kv_cache.size_bytes / plan.bytes_per_block;
      break;
    }
    case KvCacheMode::kFraction: {
      const auto budget =
          static_cast<int64_t>(config.kv_cache.fraction * static_cast<double>(before_load.total_bytes()));
      if (budget > available)
        return base::resource_exhausted(
            "--kv-cache " + std::to_string(config.kv_cache.fraction) + " asks for " + format_bytes(budget) +
            " of " + format_bytes(before_load.total_bytes()) + " total, but only " + before_load.describe() +
            "; lower the fraction or use --kv-cache auto");
      num_blocks = std::min(budget - weight_bytes, kv_room) / plan.bytes_per_block;
      break;
    }
  }
  if (num_blocks < blocks_per_seq)
    return base::resource_exhausted("--kv-cache gives " + std::to_string(num_blocks) + " blocks but one " +
                                    std::to_string(config.max_model_len) + "-token sequence needs " +
                                    std::to_string(blocks_per_seq) + " (" + needs + ")" + advice);
  num_blocks = std::min(num_blocks, useful_blocks);
  plan.initial_num_blocks = plan.max_num_blocks = plan.min_num_blocks = static_cast<int32_t>(num_blocks);
  return plan;
}

base::Status check_fits_before_load(const MemoryPolicyConfig& config, int64_t weight_bytes,
                                    const MemoryInfo& before_load) {
  auto plan = plan_kv_cache(config, weight_bytes, before_load);
  return plan.ok() ? base::ok_status() : plan.status();
}

int32_t blocks_to_grow(const KvCachePlan& plan, int32_t current_num_blocks, int32_t num_blocks_short,
                       const MemoryInfo& now) {
  if (num_blocks_short <= 0 || plan.chunk_num_blocks <= 0 || current_num_blocks >= plan.max_num_blocks)
    return 0;
  const int64_t chunk = plan.chunk_num_blocks;
  int64_t blocks = (num_blocks_short + chunk - 1) / chunk * chunk;
  blocks = std::min<int64_t>(blocks, plan.max_num_blocks - current_num_blocks);
  const int64_t room_blocks = (now.available_bytes() - plan.safety_margin_bytes) / plan.bytes_per_block;
  if (blocks > room_blocks) blocks = room_blocks / chunk * chunk;  // whole chunks only under pressure
  return static_cast<int32_t>(std::max<int64_t>(0, blocks));
}

int32_t blocks_to_shrink(const KvCachePlan& plan, int32_t current_num_blocks) {
  return std::max(0, current_num_blocks - plan.min_num_blocks);
}

}  // namespace nibble::engine
