// Which low-precision layout a checkpoint uses, read from config.json `quantization_config` and
// ModelOpt's hf_quant_config.json (../shared/docs/formats.md §2.4, §2.6, §3.3, §4), and which
// modules it leaves unquantized.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace nibble::model {

enum class QuantMethod {
  kNone,               // no quantization_config, no hf_quant_config.json
  kModelOpt,           // quant_method "modelopt" / hf_quant_config.json: NVFP4, FP8, ...
  kCompressedTensors,  // quant_method "compressed-tensors": nvfp4-pack-quantized, float-quantized
  kFp8Block,           // quant_method "fp8" + weight_block_size (DeepSeek-V3 / Qwen3-FP8)
  kMxfp4,              // quant_method "mxfp4" (gpt-oss; nibble's linear-layer layout)
};

struct QuantConfig {
  QuantMethod method = QuantMethod::kNone;
  std::string source;  // the file it was read from, for errors
  // ModelOpt quant_algo ("NVFP4", "FP8", "FP8_PER_CHANNEL_PER_TOKEN", "FP8_PB_WO", "MIXED_PRECISION").
  std::string algo;
  // MIXED_PRECISION: per-layer quant_algo, module name -> algo.
  std::vector<std::pair<std::string, std::string>> layer_algos;
  // compressed-tensors: "format" ("nvfp4-pack-quantized", "float-quantized") and the weights'
  // "strategy" ("tensor_group", "tensor", "channel", "block").
  std::string ct_format;
  std::string ct_strategy;
  std::vector<int64_t> block_size;  // fp8 weight_block_size [rows, cols]
  // Unquantized modules: exclude_modules / ignore / modules_to_not_convert / ignored_layers.
  std::vector<std::string> exclude;
};

// Reads MODEL_DIR/config.json and MODEL_DIR/hf_quant_config.json (either may lack the section).
// An unknown quant_method or quant_algo is an error naming the file and the value.
base::Result<QuantConfig> load_quant_config(const std::string& model_dir);
// Same from the texts (empty text = file absent); paths only name the files in errors.
base::Result<QuantConfig> parse_quant_config(std::string_view config_json, const std::string& config_path,
                                             std::string_view hf_quant_json, const std::string& hf_quant_path);

// Whether `module` (e.g. "model.layers.0.mlp.gate_proj") matches an exclusion pattern the way vLLM
// matches them: fnmatch-style wildcards (`*` crosses dots), an exact name, a prefix ending at a
// dot ("model.layers.0" excludes its children), or a compressed-tensors "re:<regex>" (full match).
bool module_matches(std::string_view module, const std::vector<std::string>& patterns);

// The quant_algo for a module (MIXED_PRECISION looks it up per layer; "" = not quantized).
std::string module_algo(const QuantConfig& config, std::string_view module);

}  // namespace nibble::model
