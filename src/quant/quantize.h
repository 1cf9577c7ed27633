// `nibble quantize`: a BF16/F16/F32 Hugging Face checkpoint -> a low-precision checkpoint in the
// layout the serving stacks load (docs/formats.md §7, ../shared/docs/formats.md §2.4, §4.2):
//   nvfp4     ModelOpt NVFP4 (weight U8, weight_scale F8_E4M3, weight_scale_2 F32 [], input_scale)
//   fp8       ModelOpt FP8 per-tensor (weight F8_E4M3, weight_scale F32 [], input_scale)
//   fp8-block DeepSeek / Qwen3-FP8 (weight F8_E4M3, weight_scale_inv F32 [out/128, in/128])
//   mxfp4     nibble's linear-layer MXFP4 (weight_blocks U8 [out, in/32, 16], weight_scales U8)
// Streams tensor by tensor from the mapped input, writes shards through io::ShardedWriter into a
// temporary folder next to OUT and renames it at the end.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "base/status.h"
#include "formats/block_format.h"

namespace nibble::quant {

struct QuantizeSpec {
  std::string format = "nvfp4";       // nvfp4 | mxfp4 | fp8 | fp8-block
  std::vector<std::string> exclude;   // extra modules kept in BF16 (fnmatch globs, see module_matches)
  formats::ScaleSearch scales = formats::ScaleSearch::kMax;
  std::string calib_data;             // calibration file ("" = none: no input_scale written)
  int64_t calib_tokens = 512;
  bool force = false;                 // replace an existing OUT
  int num_threads = 0;                // 0 = all cores
  uint64_t max_shard_bytes = 5'000'000'000;
  bool progress = true;               // progress bar on stderr
};

struct QuantizeReport {
  int64_t num_quantized = 0;
  int64_t num_kept = 0;
  uint64_t output_bytes = 0;          // sum of tensor bytes written
  double bits_per_weight = 0.0;       // over the quantized linear weights (data + scales)
  std::vector<std::string> warnings;  // modules kept in BF16 because of their shape, ...
};

// Set by a SIGINT handler (see cmd_quantize.cpp); checked between and inside tensors.
extern std::atomic<bool> g_interrupted;

// Activation amax per Linear module (e.g. "model.layers.0.self_attn.q_proj"), from calibration.
using ActivationAmax = std::map<std::string, float>;

base::Result<QuantizeReport> quantize_checkpoint(const std::string& in_dir, const std::string& out_dir,
                                                 const QuantizeSpec& spec);

// Modules never quantized by default: lm_head, embeddings, norms, MoE routers.
bool default_excluded(const std::string& module);

}  // namespace nibble::quant
