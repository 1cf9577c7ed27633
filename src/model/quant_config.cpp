#include "model/quant_config.h"

#include <fnmatch.h>

#include <regex>

#include "base/file_util.h"
#include "io/json_strict.h"

namespace nibble::model {
namespace {

using nlohmann::json;

base::Result<std::vector<std::string>> string_list(const json& j, const std::string& where) {
  std::vector<std::string> out;
  if (j.is_null()) return out;
  if (!j.is_array()) return base::invalid_argument(where + ": expected a list of module names");
  for (const auto& item : j) {
    if (!item.is_string()) return base::invalid_argument(where + ": expected a list of module names");
    out.push_back(item.get<std::string>());
  }
  return out;
}

std::string get_string(const json& obj, const char* key) {
  auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : std::string();
}

base::Status check_modelopt_algo(const std::string& algo, const std::string& where) {
  static const char* kAlgos[] = {"NVFP4", "W4A16_NVFP4", "FP8", "FP8_PER_CHANNEL_PER_TOKEN", "FP8_PB_WO", "MIXED_PRECISION"};
  for (const char* a : kAlgos) {
    if (algo == a) return base::ok_status();
  }
  return base::unsupported(where + ": quant_algo '" + algo +
                           "' is not supported (nibble reads NVFP4, W4A16_NVFP4, FP8, FP8_PER_CHANNEL_PER_TOKEN, "
                           "FP8_PB_WO, MIXED_PRECISION)");
}

// ModelOpt's {"quantization": {...}} (hf_quant_config.json) or config.json's modelopt section.
base::Status read_modelopt(const json& q, const std::string& where, QuantConfig& out) {
  out.method = QuantMethod::kModelOpt;
  out.algo = get_string(q, "quant_algo");
  if (out.algo.empty()) return base::invalid_argument(where + ": quant_algo is missing");
  NIBBLE_TRY(check_modelopt_algo(out.algo, where));
  for (const char* key : {"exclude_modules", "ignore"}) {
    if (q.contains(key)) {
      NIBBLE_ASSIGN_OR_RETURN(auto list, string_list(q[key], where + ": " + key));
      out.exclude.insert(out.exclude.end(), list.begin(), list.end());
    }
  }
  if (auto it = q.find("quantized_layers"); it != q.end() && it->is_object()) {
    for (const auto& [name, layer] : it->items()) {
      const std::string algo = layer.is_object() ? get_string(layer, "quant_algo") : std::string();
      NIBBLE_TRY(check_modelopt_algo(algo, where + ": quantized_layers." + name));
      out.layer_algos.emplace_back(name, algo);
    }
  }
  return base::ok_status();
}

base::Status read_config_section(const json& qc, const std::string& where, QuantConfig& out) {
  if (!qc.is_object()) return base::invalid_argument(where + ": quantization_config is not an object");
  const std::string method = get_string(qc, "quant_method");
  if (method.rfind("modelopt", 0) == 0) return read_modelopt(qc, where, out);
  if (method == "compressed-tensors") {
    out.method = QuantMethod::kCompressedTensors;
    out.ct_format = get_string(qc, "format");
    if (out.ct_format != "nvfp4-pack-quantized" && out.ct_format != "float-quantized") {
      return base::unsupported(where + ": compressed-tensors format '" + out.ct_format +
                               "' is not supported (nibble reads nvfp4-pack-quantized, float-quantized)");
    }
    if (auto groups = qc.find("config_groups"); groups != qc.end() && groups->is_object()) {
      for (const auto& [name, group] : groups->items()) {
        if (group.is_object() && group.contains("weights") && group["weights"].is_object()) {
          out.ct_strategy = get_string(group["weights"], "strategy");
        }
      }
    }
    if (qc.contains("ignore")) {
      NIBBLE_ASSIGN_OR_RETURN(out.exclude, string_list(qc["ignore"], where + ": ignore"));
    }
    return base::ok_status();
  }
  if (method == "fp8") {
    out.method = QuantMethod::kFp8Block;
    auto it = qc.find("weight_block_size");
    if (it == qc.end() || !it->is_array() || it->size() != 2 || !(*it)[0].is_number_integer() ||
        !(*it)[1].is_number_integer()) {
      return base::unsupported(where + ": quant_method fp8 without weight_block_size [rows, cols] "
                               "(per-tensor fp8 without scales is not supported)");
    }
    out.block_size = {(*it)[0].get<int64_t>(), (*it)[1].get<int64_t>()};
    if (out.block_size[0] != 128 || out.block_size[1] != 128) {
      return base::unsupported(where + ": weight_block_size [" + std::to_string(out.block_size[0]) + ", " +
                               std::to_string(out.block_size[1]) + "] is not supported (only [128, 128])");
    }
    for (const char* key : {"ignored_layers", "modules_to_not_convert"}) {
      if (qc.contains(key)) {
        NIBBLE_ASSIGN_OR_RETURN(auto list, string_list(qc[key], where + ": " + key));
        out.exclude.insert(out.exclude.end(), list.begin(), list.end());
      }
    }
    return base::ok_status();
  }
  if (method == "mxfp4") {
    out.method = QuantMethod::kMxfp4;
    if (qc.contains("modules_to_not_convert")) {
      NIBBLE_ASSIGN_OR_RETURN(out.exclude,
                              string_list(qc["modules_to_not_convert"], where + ": modules_to_not_convert"));
    }
    return base::ok_status();
  }
  return base::unsupported(where + ": quantization_config.quant_method '" + method +
                           "' is not supported (nibble reads modelopt, compressed-tensors, fp8, mxfp4)");
}

}  // namespace

base::Result<QuantConfig> parse_quant_config(std::string_view config_json, const std::string& config_path,
                                             std::string_view hf_quant_json, const std::string& hf_quant_path) {
  QuantConfig out;
  if (!hf_quant_json.empty()) {
    NIBBLE_ASSIGN_OR_RETURN(json hq, io::parse_json_strict(hf_quant_json, hf_quant_path));
    if (!hq.is_object() || !hq.contains("quantization") || !hq["quantization"].is_object()) {
      return base::invalid_argument(hf_quant_path + ": no \"quantization\" object");
    }
    out.source = hf_quant_path;
    NIBBLE_TRY(read_modelopt(hq["quantization"], hf_quant_path, out));
    return out;  // ModelOpt's own file wins over the config.json copy (vLLM reads it first)
  }
  if (config_json.empty()) return out;
  NIBBLE_ASSIGN_OR_RETURN(json config, io::parse_json_strict(config_json, config_path));
  if (!config.is_object()) return out;
  auto it = config.find("quantization_config");
  if (it == config.end() || it->is_null()) return out;
  out.source = config_path;
  NIBBLE_TRY(read_config_section(*it, config_path, out));
  return out;
}

base::Result<QuantConfig> load_quant_config(const std::string& model_dir) {
  const std::string config_path = base::join_path(model_dir, "config.json");
  const std::string hf_path = base::join_path(model_dir, "hf_quant_config.json");
  std::string config_text, hf_text;
  if (base::file_exists(config_path)) {
    NIBBLE_ASSIGN_OR_RETURN(config_text, base::read_file(config_path));
  }
  if (base::file_exists(hf_path)) {
    NIBBLE_ASSIGN_OR_RETURN(hf_text, base::read_file(hf_path));
  }
  return parse_quant_config(config_text, config_path, hf_text, hf_path);
}

bool module_matches(std::string_view module, const std::vector<std::string>& patterns) {
  const std::string name(module);
  for (const std::string& p : patterns) {
    if (p.rfind("re:", 0) == 0) {
      try {
        if (std::regex_match(name, std::regex(p.substr(3)))) return true;
      } catch (const std::regex_error&) {
        continue;  // an invalid pattern matches nothing
      }
      continue;
    }
    if (name == p) return true;
    if (fnmatch(p.c_str(), name.c_str(), 0) == 0) return true;
    if (name.size() > p.size() && name.compare(0, p.size(), p) == 0 && name[p.size()] == '.') return true;
  }
  return false;
}

std::string module_algo(const QuantConfig& config, std::string_view module) {
  if (config.method == QuantMethod::kNone || module_matches(module, config.exclude)) return "";
  if (config.method == QuantMethod::kModelOpt && config.algo == "MIXED_PRECISION") {
    for (const auto& [name, algo] : config.layer_algos) {
      if (name == module) return algo;
    }
    return "";
  }
  return config.algo.empty() ? std::string("quantized") : config.algo;
}

}  // namespace nibble::model
