// Fuzzes `nibble plan`'s config.json reader and the estimator behind it: any bytes must give
// either an error Status or an estimate, never a crash.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "plan/estimate.h"
#include "plan/model_shape.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace nibble::plan;
  const nlohmann::json config = nlohmann::json::parse(std::string(reinterpret_cast<const char*>(data), size),
                                                      nullptr, /*allow_exceptions=*/false);
  if (config.is_discarded()) return 0;
  auto shape = parse_model_config(config, "fuzz.json");
  if (!shape.ok()) return 0;
  DeviceProfile device;
  device.name = "fuzz";
  device.memory_bytes = device.usable_memory_bytes = 128e9;
  device.bandwidth_bytes_per_s = 273e9;
  device.peak_bf16_flops = 86e12;
  device.link_bytes_per_s = 25e9;
  device.decode_efficiency = device.prefill_efficiency = 0.5;
  for (FormatChoice format : {FormatChoice::kAsIs, FormatChoice::kNvfp4}) {
    PlanOptions options;
    options.format = format;
    options.context_tokens = 4096;
    options.concurrency = 4;
    options.nodes = 2;
    (void)estimate(*shape, device, options);
  }
  return 0;
}
