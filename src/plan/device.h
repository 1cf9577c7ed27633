// Device profiles: memory, bandwidth, peak throughput per format, interconnect and the efficiency
// constants of the device kind. The built-in profiles come from data/devices.json (compiled in);
// `custom:` strings and `this-cpu` (measured with `nibble bench`'s roofline probes) build one on
// the spot.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "base/status.h"
#include "plan/weights.h"

namespace nibble::plan {

enum class DeviceKind { kGpuUnified, kGpuDiscrete, kApple, kCpu };
const char* device_kind_name(DeviceKind kind);

struct DeviceProfile {
  std::string name;          // "dgx-spark"
  std::string display_name;  // "NVIDIA DGX Spark (GB10)"
  DeviceKind kind = DeviceKind::kGpuDiscrete;
  double memory_bytes = 0;                     // physical memory
  double usable_memory_bytes = 0;              // what a runtime can allocate (before the safety margin)
  double bandwidth_bytes_per_s = 0;            // peak memory bandwidth
  double peak_fp4_flops = 0;                   // dense; 0: no FP4 units
  double peak_fp8_flops = 0;                   // dense; 0: no FP8 units
  double peak_bf16_flops = 0;                  // dense
  double link_bytes_per_s = 0;                 // node-to-node link, per direction
  double link_latency_s = 0;                   // per small all-reduce
  double decode_efficiency = 0;                // fraction of bandwidth a decode step reaches
  double prefill_efficiency = 0;               // fraction of peak FLOPs a prefill reaches
  double memory_margin_fraction = 0;           // of usable memory, kept free
  double runtime_overhead_bytes = 0;           // context, workspaces, graphs
  std::map<std::string, std::string> sources;  // field -> source (derived ones say so)

  // Peak for a format's matmuls: its own units if present, else the next wider ones (weights
  // dequantized on the fly).
  double peak_flops(ComputeClass compute) const;
};

// The efficiency constants shared by every device of a kind.
struct KindConstants {
  double decode_efficiency = 0;
  double prefill_efficiency = 0;
  double memory_margin_fraction = 0;
  double runtime_overhead_bytes = 0;
  double link_latency_s = 0;
  std::map<std::string, std::string> sources;
};

struct DeviceCatalog {
  std::vector<DeviceProfile> devices;
  std::map<DeviceKind, KindConstants> kinds;
};

// The built-in catalog (data/devices.json as compiled in), or another file's.
base::Result<DeviceCatalog> builtin_catalog();
base::Result<DeviceCatalog> parse_devices_json(const std::string& text, const std::string& source);

// "custom:mem=128GB,bw=273GB/s,fp4=500T,fp8=188T,bf16=86T,link=25GB/s,kind=gpu-unified".
// Efficiency constants come from `kind` (default gpu-discrete).
base::Result<DeviceProfile> parse_custom_device(const std::string& spec, const DeviceCatalog& catalog);

// `this-cpu`: memory as the engine sees it (engine::read_memory_info), bandwidth and FMA peak from
// bench::measure_roofline (the probes `nibble bench` compares its speeds with).
base::Result<DeviceProfile> measure_this_cpu(const DeviceCatalog& catalog);

// Resolves `--device`: a built-in name, `custom:...`, or `this-cpu` (runs the probes, < 2 s).
// `devices_file` (may be empty) replaces the built-in catalog.
base::Result<DeviceProfile> resolve_device(const std::string& spec, const std::string& devices_file);

}  // namespace nibble::plan
