#include "plan/device.h"

#include <cctype>
#include <cmath>
#include <nlohmann/json.hpp>
#include <sstream>

#include "base/file_util.h"
#include "base/thread_pool.h"
#include "bench/roofline.h"
#include "engine/memory_policy.h"
#include "kernels/kernel_table.h"

namespace nibble::plan {
namespace {

using base::Result;
using nlohmann::json;

// data/devices.json, compiled in by CMake (see CMakeLists.txt).
constexpr const char* kBuiltinDevicesJson =
#include "plan/devices_json.inc"
    ;

Result<DeviceKind> parse_kind(const std::string& text, const std::string& where) {
  if (text == "gpu-unified") return DeviceKind::kGpuUnified;
  if (text == "gpu-discrete") return DeviceKind::kGpuDiscrete;
  if (text == "apple") return DeviceKind::kApple;
  if (text == "cpu") return DeviceKind::kCpu;
  return base::invalid_argument(where + ": kind '" + text +
                                "' is not gpu-unified, gpu-discrete, apple or cpu");
}

// Reads {"value": x, "source": "...", "derived": bool}; records the source under `field`.
Result<double> read_number(const json& obj, const char* key, const std::string& where, bool required,
                           const std::string& field, std::map<std::string, std::string>* sources) {
  if (!obj.contains(key)) {
    if (required) return base::invalid_argument(where + ": field '" + key + "' is missing");
    return 0.0;
  }
  const json& v = obj.at(key);
  if (!v.is_object() || !v.contains("value") || !v["value"].is_number() || !v.contains("source") ||
      !v["source"].is_string()) {
    return base::invalid_argument(where + ": field '" + key + "' needs a numeric 'value' and a 'source'");
  }
  const double value = v["value"].get<double>();
  if (!(value >= 0) || !std::isfinite(value))
    return base::invalid_argument(where + ": field '" + key + "' is negative");
  const bool derived = v.contains("derived") && v["derived"].is_boolean() && v["derived"].get<bool>();
  (*sources)[field] = (derived ? "[derived] " : "") + v["source"].get<std::string>();
  return value;
}

Result<KindConstants> parse_kind_constants(const json& obj, const std::string& where) {
  KindConstants k;
  if (!obj.is_object()) return base::invalid_argument(where + ": not an object");
  NIBBLE_ASSIGN_OR_RETURN(k.decode_efficiency, read_number(obj, "decode_efficiency", where, true,
                                                           "decode_efficiency", &k.sources));
  NIBBLE_ASSIGN_OR_RETURN(k.prefill_efficiency, read_number(obj, "prefill_efficiency", where, true,
                                                            "prefill_efficiency", &k.sources));
  NIBBLE_ASSIGN_OR_RETURN(k.memory_margin_fraction, read_number(obj, "memory_margin_fraction", where, true,
                                                                "memory_margin_fraction", &k.sources));
  NIBBLE_ASSIGN_OR_RETURN(k.runtime_overhead_bytes, read_number(obj, "runtime_overhead_bytes", where, true,
                                                                "runtime_overhead_bytes", &k.sources));
  NIBBLE_ASSIGN_OR_RETURN(k.link_latency_s,
                          read_number(obj, "link_latency_s", where, true, "link_latency_s", &k.sources));
  if (k.decode_efficiency <= 0 || k.decode_efficiency > 1 || k.prefill_efficiency <= 0 ||
      k.prefill_efficiency > 1 || k.memory_margin_fraction >= 1) {
    return base::invalid_argument(where + ": efficiencies must be in (0, 1] and the margin below 1");
  }
  return k;
}

void apply_kind(const KindConstants& k, DeviceProfile* d) {
  d->decode_efficiency = k.decode_efficiency;
  d->prefill_efficiency = k.prefill_efficiency;
  d->memory_margin_fraction = k.memory_margin_fraction;
  d->runtime_overhead_bytes = k.runtime_overhead_bytes;
  d->link_latency_s = k.link_latency_s;
  for (const auto& [field, source] : k.sources) d->sources[field] = source;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// "128GB", "119.7GiB", "273GB/s", "200Gb/s", "500T", "1.2P". `kind` is 'B' (bytes), 'R' (rate), 'F' (flops).
Result<double> parse_quantity(const std::string& key, const std::string& text, char kind) {
  size_t pos = 0;
  double number = 0;
  try {
    number = std::stod(text, &pos);
  } catch (const std::exception&) {
    return base::invalid_argument("--device custom: '" + key + "=" + text + "' does not start with a number");
  }
  if (!(number >= 0) || !std::isfinite(number)) {
    return base::invalid_argument("--device custom: '" + key + "=" + text + "' is not a non-negative number");
  }
  std::string unit = text.substr(pos);
  if (kind == 'R') {
    if (unit.size() >= 2 && unit.compare(unit.size() - 2, 2, "/s") == 0) unit.resize(unit.size() - 2);
  }
  if (kind == 'F') {
    const std::string u = lower(unit);
    if (u.empty() || u == "t" || u == "tf" || u == "tflops") return number * 1e12;
    if (u == "p" || u == "pf" || u == "pflops") return number * 1e15;
    if (u == "g" || u == "gf" || u == "gflops") return number * 1e9;
    return base::invalid_argument("--device custom: unit of '" + key + "=" + text +
                                  "' is not T, P or G (FLOPS)");
  }
  // Bits (lower-case b) before bytes.
  if (unit == "Gb") return number * 1e9 / 8;
  if (unit == "Mb") return number * 1e6 / 8;
  if (unit == "Tb") return number * 1e12 / 8;
  const std::string u = lower(unit);
  if (u.empty() || u == "gb") return number * 1e9;
  if (u == "b") return number;
  if (u == "kb") return number * 1e3;
  if (u == "mb") return number * 1e6;
  if (u == "tb") return number * 1e12;
  if (u == "kib") return number * 1024.0;
  if (u == "mib") return number * 1048576.0;
  if (u == "gib") return number * 1073741824.0;
  if (u == "tib") return number * 1099511627776.0;
  return base::invalid_argument("--device custom: unit of '" + key + "=" + text +
                                "' is not a byte unit (GB, GiB, ...)");
}

}  // namespace

const char* device_kind_name(DeviceKind kind) {
  switch (kind) {
    case DeviceKind::kGpuUnified:
      return "gpu-unified";
    case DeviceKind::kGpuDiscrete:
      return "gpu-discrete";
    case DeviceKind::kApple:
      return "apple";
    case DeviceKind::kCpu:
      return "cpu";
  }
  return "?";
}

double DeviceProfile::peak_flops(ComputeClass compute) const {
  switch (compute) {
    case ComputeClass::kFp4:
      if (peak_fp4_flops > 0) return peak_fp4_flops;
      [[fallthrough]];
    case ComputeClass::kFp8:
      if (peak_fp8_flops > 0) return peak_fp8_flops;
      [[fallthrough]];
    case ComputeClass::kBf16:
      return peak_bf16_flops;
  }
  return peak_bf16_flops;
}

Result<DeviceCatalog> parse_devices_json(const std::string& text, const std::string& source) {
  const json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) return base::corrupt(source + ": not valid JSON");
  if (!doc.contains("kinds") || !doc["kinds"].is_object() || !doc.contains("devices") ||
      !doc["devices"].is_array()) {
    return base::invalid_argument(source + ": needs a 'kinds' object and a 'devices' list");
  }
  DeviceCatalog catalog;
  for (const auto& [name, obj] : doc["kinds"].items()) {
    const std::string where = source + ": kinds." + name;
    NIBBLE_ASSIGN_OR_RETURN(DeviceKind kind, parse_kind(name, where));
    NIBBLE_ASSIGN_OR_RETURN(catalog.kinds[kind], parse_kind_constants(obj, where));
  }
  for (const json& obj : doc["devices"]) {
    if (!obj.is_object() || !obj.contains("name") || !obj["name"].is_string() || !obj.contains("kind") ||
        !obj["kind"].is_string()) {
      return base::invalid_argument(source + ": every device needs a 'name' and a 'kind'");
    }
    DeviceProfile d;
    d.name = obj["name"].get<std::string>();
    d.display_name = obj.contains("display_name") && obj["display_name"].is_string()
                         ? obj["display_name"].get<std::string>()
                         : d.name;
    const std::string where = source + ": device '" + d.name + "'";
    NIBBLE_ASSIGN_OR_RETURN(d.kind, parse_kind(obj["kind"].get<std::string>(), where));
    auto kind_it = catalog.kinds.find(d.kind);
    if (kind_it == catalog.kinds.end())
      return base::invalid_argument(where + ": its kind has no constants in 'kinds'");
    apply_kind(kind_it->second, &d);
    NIBBLE_ASSIGN_OR_RETURN(d.memory_bytes,
                            read_number(obj, "memory_bytes", where, true, "memory_bytes", &d.sources));
    NIBBLE_ASSIGN_OR_RETURN(d.usable_memory_bytes, read_number(obj, "usable_memory_bytes", where, true,
                                                               "usable_memory_bytes", &d.sources));
    NIBBLE_ASSIGN_OR_RETURN(d.bandwidth_bytes_per_s, read_number(obj, "bandwidth_bytes_per_s", where, true,
                                                                 "bandwidth_bytes_per_s", &d.sources));
    NIBBLE_ASSIGN_OR_RETURN(d.link_bytes_per_s, read_number(obj, "link_bytes_per_s", where, false,
                                                            "link_bytes_per_s", &d.sources));
    if (!obj.contains("peak_flops") || !obj["peak_flops"].is_object()) {
      return base::invalid_argument(where + ": field 'peak_flops' is missing");
    }
    const json& peaks = obj["peak_flops"];
    NIBBLE_ASSIGN_OR_RETURN(d.peak_fp4_flops, read_number(peaks, "fp4", where + ".peak_flops", false,
                                                          "peak_fp4_flops", &d.sources));
    NIBBLE_ASSIGN_OR_RETURN(d.peak_fp8_flops, read_number(peaks, "fp8", where + ".peak_flops", false,
                                                          "peak_fp8_flops", &d.sources));
    NIBBLE_ASSIGN_OR_RETURN(d.peak_bf16_flops, read_number(peaks, "bf16", where + ".peak_flops", true,
                                                           "peak_bf16_flops", &d.sources));
    if (d.usable_memory_bytes <= 0 || d.bandwidth_bytes_per_s <= 0 || d.peak_bf16_flops <= 0) {
      return base::invalid_argument(where + ": usable memory, bandwidth and bf16 peak must be > 0");
    }
    catalog.devices.push_back(std::move(d));
  }
  return catalog;
}

Result<DeviceCatalog> builtin_catalog() {
  return parse_devices_json(kBuiltinDevicesJson, "data/devices.json");
}

Result<DeviceProfile> parse_custom_device(const std::string& spec, const DeviceCatalog& catalog) {
  const std::string prefix = "custom:";
  if (spec.rfind(prefix, 0) != 0)
    return base::invalid_argument("--device '" + spec + "' does not start with custom:");
  DeviceProfile d;
  d.name = "custom";
  d.display_name = spec;
  bool have_mem = false, have_bw = false, have_usable = false;
  std::string kind_text = "gpu-discrete";
  std::istringstream items(spec.substr(prefix.size()));
  std::string item;
  const std::string from = "given on the command line (" + spec + ")";
  while (std::getline(items, item, ',')) {
    if (item.empty()) continue;
    const size_t eq = item.find('=');
    if (eq == std::string::npos)
      return base::invalid_argument("--device custom: '" + item + "' is not key=value");
    const std::string key = item.substr(0, eq);
    const std::string value = item.substr(eq + 1);
    if (key == "mem") {
      NIBBLE_ASSIGN_OR_RETURN(d.memory_bytes, parse_quantity(key, value, 'B'));
      have_mem = true;
    } else if (key == "usable") {
      NIBBLE_ASSIGN_OR_RETURN(d.usable_memory_bytes, parse_quantity(key, value, 'B'));
      have_usable = true;
    } else if (key == "bw") {
      NIBBLE_ASSIGN_OR_RETURN(d.bandwidth_bytes_per_s, parse_quantity(key, value, 'R'));
      have_bw = true;
    } else if (key == "link") {
      NIBBLE_ASSIGN_OR_RETURN(d.link_bytes_per_s, parse_quantity(key, value, 'R'));
    } else if (key == "fp4") {
      NIBBLE_ASSIGN_OR_RETURN(d.peak_fp4_flops, parse_quantity(key, value, 'F'));
    } else if (key == "fp8") {
      NIBBLE_ASSIGN_OR_RETURN(d.peak_fp8_flops, parse_quantity(key, value, 'F'));
    } else if (key == "bf16") {
      NIBBLE_ASSIGN_OR_RETURN(d.peak_bf16_flops, parse_quantity(key, value, 'F'));
    } else if (key == "kind") {
      kind_text = value;
    } else if (key == "name") {
      d.name = value;
    } else {
      return base::invalid_argument("--device custom: unknown key '" + key +
                                    "' (mem, usable, bw, link, fp4, fp8, bf16, kind, name)");
    }
  }
  if (!have_mem || !have_bw) return base::invalid_argument("--device custom: needs at least mem= and bw=");
  if (d.memory_bytes <= 0 || d.bandwidth_bytes_per_s <= 0) {
    return base::invalid_argument("--device custom: mem and bw must be > 0");
  }
  if (!have_usable) d.usable_memory_bytes = d.memory_bytes;
  // Without a bf16 figure, assume the low-precision units are the only ones and run bf16 at a
  // quarter of FP4 (or half of FP8), as on current tensor cores.
  if (d.peak_bf16_flops <= 0)
    d.peak_bf16_flops = d.peak_fp8_flops > 0 ? d.peak_fp8_flops / 2 : d.peak_fp4_flops / 4;
  if (d.peak_bf16_flops <= 0)
    return base::invalid_argument("--device custom: give at least one of fp4=, fp8=, bf16=");
  NIBBLE_ASSIGN_OR_RETURN(d.kind, parse_kind(kind_text, "--device custom"));
  auto kind_it = catalog.kinds.find(d.kind);
  if (kind_it == catalog.kinds.end())
    return base::invalid_argument("--device custom: no constants for kind " + kind_text);
  apply_kind(kind_it->second, &d);
  for (const char* field : {"memory_bytes", "usable_memory_bytes", "bandwidth_bytes_per_s",
                            "link_bytes_per_s", "peak_fp4_flops", "peak_fp8_flops", "peak_bf16_flops"}) {
    d.sources[field] = from;
  }
  return d;
}

Result<DeviceProfile> measure_this_cpu(const DeviceCatalog& catalog) {
  DeviceProfile d;
  d.name = "this-cpu";
  d.kind = DeviceKind::kCpu;
  auto kind_it = catalog.kinds.find(DeviceKind::kCpu);
  if (kind_it == catalog.kinds.end())
    return base::invalid_argument("device catalog: no constants for kind cpu");
  apply_kind(kind_it->second, &d);
  // The engine's own view of memory: MemAvailable, lowered to the cgroup's room in a container.
  NIBBLE_ASSIGN_OR_RETURN(engine::MemoryInfo mem, engine::read_memory_info());
  d.memory_bytes = static_cast<double>(mem.total_bytes());
  d.usable_memory_bytes = static_cast<double>(mem.available_bytes());
  d.sources["memory_bytes"] = "measured: MemTotal in /proc/meminfo (or the cgroup limit)";
  d.sources["usable_memory_bytes"] = "measured: MemAvailable in /proc/meminfo (or the cgroup's room)";
  // `nibble bench`'s roofline probes, through the kernel table the model's kernels run from.
  NIBBLE_ASSIGN_OR_RETURN(const kernels::KernelTable* table, kernels::kernel_table());
  base::ThreadPool pool(base::available_cpus());
  const bench::Roofline roof = bench::measure_roofline(*table, pool);
  d.bandwidth_bytes_per_s = roof.read_bytes_per_s;
  d.sources["bandwidth_bytes_per_s"] = "measured: nibble bench's streaming-read probe (" + table->isa + ", " +
                                       std::to_string(roof.num_threads) + " threads)";
  // One matmul peak serves every format on a CPU. ISAs that keep activations in fp32 run at the
  // FMA probe's rate; ISAs that round activations (BF16 / int8 dot products, two or more
  // multiply-adds per fp32 lane per instruction) are counted at twice it: measured on Zen 4,
  // pp512 of the 0.6b preset reached 2.0-2.5x the fp32 FMA peak in every format.
  bool dot_products = false;
  for (const auto& info : kernels::known_isas()) {
    if (info.name == table->isa) dot_products = info.rounds_activations;
  }
  d.peak_bf16_flops = roof.fma_flops_per_s * (dot_products ? 2.0 : 1.0);
  d.sources["peak_bf16_flops"] = "measured: nibble bench's FMA probe (" + table->isa + ", " +
                                 std::to_string(roof.num_threads) + " threads)" +
                                 (dot_products ? " x 2 (BF16/int8 dot products)" : "") +
                                 "; all formats run at this rate on CPU";
  d.display_name = "this CPU (" + std::to_string(roof.num_threads) + " threads, " + table->isa + ")";
  if (d.bandwidth_bytes_per_s <= 0 || d.peak_bf16_flops <= 0)
    return base::internal_error("this-cpu: a probe measured nothing");
  return d;
}

Result<DeviceProfile> resolve_device(const std::string& spec, const std::string& devices_file) {
  DeviceCatalog catalog;
  if (devices_file.empty()) {
    NIBBLE_ASSIGN_OR_RETURN(catalog, builtin_catalog());
  } else {
    NIBBLE_ASSIGN_OR_RETURN(std::string text, base::read_file(devices_file));
    NIBBLE_ASSIGN_OR_RETURN(catalog, parse_devices_json(text, devices_file));
  }
  if (spec == "this-cpu") return measure_this_cpu(catalog);
  if (spec.rfind("custom:", 0) == 0) return parse_custom_device(spec, catalog);
  std::string names;
  for (const DeviceProfile& d : catalog.devices) {
    if (d.name == spec) return d;
    names += (names.empty() ? "" : ", ") + d.name;
  }
  return base::not_found("--device '" + spec + "' is not a known device (" + names +
                         ", this-cpu, custom:...)");
}

}  // namespace nibble::plan
