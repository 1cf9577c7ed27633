// Rendering a plan::Estimate: a readable table for people and JSON for scripts.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "plan/device.h"
#include "plan/estimate.h"

namespace nibble::plan {

std::string format_table(const Estimate& e, const DeviceProfile& device, const std::string& model_name);
nlohmann::json to_json(const Estimate& e, const DeviceProfile& device, const std::string& model_name);

const char* kv_dtype_name(KvDtype dtype);

}  // namespace nibble::plan
