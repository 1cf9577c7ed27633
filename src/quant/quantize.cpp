#include "quant/quantize.h"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "base/file_util.h"
#include "base/float16.h"
#include "base/log.h"
#include "base/thread_pool.h"
#include "io/json_strict.h"
#include "io/safetensors.h"
#include "model/config.h"
#include "model/quant_config.h"
#include "quant/calibration.h"

namespace nibble::quant {

std::atomic<bool> g_interrupted{false};

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// How each --format is written.
struct OutputLayout {
  std::string_view name;          // --format value
  std::string_view block_format;  // formats row
  std::string_view data_suffix;   // element tensor
  std::string_view scale_suffix;  // block-scale tensor
  std::string_view tensor_scale_suffix;  // "" = none
  float input_bound;              // input_scale = act_amax / input_bound; 0 = no input_scale
  bool mxfp4_blocks;              // data stored [out, in/32, 16]
};

constexpr OutputLayout kLayouts[] = {
    {"nvfp4", "nvfp4", ".weight", ".weight_scale", ".weight_scale_2", 6.0f * 448.0f, false},
    {"fp8", "fp8", ".weight", ".weight_scale", "", 448.0f, false},
    {"fp8-block", "fp8-block", ".weight", ".weight_scale_inv", "", 0.0f, false},
    {"mxfp4", "mxfp4", ".weight_blocks", ".weight_scales", "", 0.0f, true},
};

const OutputLayout* find_layout(std::string_view name) {
  for (const auto& l : kLayouts) {
    if (l.name == name) return &l;
  }
  return nullptr;
}

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// q/k/v and gate/up read the same input: one fusion key per group (ModelOpt shares their
// weight_scale_2 and input_scale; ../shared/docs/formats.md §2.2).
std::string fusion_key(const std::string& module) {
  for (const char* p : {".q_proj", ".k_proj", ".v_proj"}) {
    if (ends_with(module, p)) return module.substr(0, module.size() - 7) + ".qkv";
  }
  for (const char* p : {".gate_proj", ".up_proj"}) {
    if (ends_with(module, p)) return module.substr(0, module.size() - std::strlen(p)) + ".gate_up";
  }
  return module;
}

void to_float(const io::TensorInfo& t, base::ThreadPool& pool, std::vector<float>& out) {
  const int64_t n = t.num_elems();
  out.resize(static_cast<size_t>(n));
  pool.parallel_for(n, 1 << 16, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      uint16_t h = 0;
      switch (t.dtype) {
        case tensor::DType::kF32:
          std::memcpy(&out[static_cast<size_t>(i)], t.data + i * 4, 4);
          break;
        case tensor::DType::kBF16:
          std::memcpy(&h, t.data + i * 2, 2);
          out[static_cast<size_t>(i)] = base::bf16_to_float(h);
          break;
        default:
          std::memcpy(&h, t.data + i * 2, 2);
          out[static_cast<size_t>(i)] = base::f16_to_float(h);
      }
    }
  });
}

float tensor_amax(const std::vector<float>& x, base::ThreadPool& pool) {
  std::vector<float> partial(static_cast<size_t>(pool.num_threads()) * 16, 0.0f);
  std::atomic<int> slot{0};
  pool.parallel_for(static_cast<int64_t>(x.size()), 1 << 16, [&](int64_t begin, int64_t end) {
    float m = 0.0f;
    for (int64_t i = begin; i < end; ++i) m = std::max(m, std::fabs(x[static_cast<size_t>(i)]));
    partial[static_cast<size_t>(slot.fetch_add(1))] = m;
  });
  float m = 0.0f;
  for (float v : partial) m = std::max(m, v);
  return m;
}

class Progress {
 public:
  Progress(bool enabled, uint64_t total_bytes)
      : enabled_(enabled && isatty(2)), total_(total_bytes), t0_(std::chrono::steady_clock::now()) {}
  void advance(uint64_t bytes, const std::string& name) {
    done_ += bytes;
    if (!enabled_) return;
    const double frac = total_ > 0 ? static_cast<double>(done_) / static_cast<double>(total_) : 1.0;
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
    const double eta = frac > 0 ? elapsed * (1.0 - frac) / frac : 0.0;
    constexpr int kWidth = 30;
    const int filled = static_cast<int>(frac * kWidth);
    std::fprintf(stderr, "\r[%.*s%*s] %5.1f%% ETA %4.0fs %-48.48s", filled, "##############################",
                 kWidth - filled, "", frac * 100.0, eta, name.c_str());
    std::fflush(stderr);
  }
  void finish() {
    if (enabled_) std::fprintf(stderr, "\n");
  }

 private:
  bool enabled_;
  uint64_t total_;
  uint64_t done_ = 0;
  std::chrono::steady_clock::time_point t0_;
};

// Removes a temporary output folder unless released.
class TempDir {
 public:
  explicit TempDir(std::string path) : path_(std::move(path)) {}
  ~TempDir() {
    if (!path_.empty()) {
      std::error_code ec;
      fs::remove_all(path_, ec);
    }
  }
  void release() { path_.clear(); }

 private:
  std::string path_;
};

base::Status check_interrupt() {
  if (g_interrupted.load()) return base::cancelled("interrupted: the partial output was removed");
  return base::ok_status();
}

json quant_config_json(const QuantizeSpec& spec, const std::vector<std::string>& ignore, bool calibrated) {
  const json producer = {{"name", "nibble"}, {"version", "0.1"}};
  if (spec.format == "nvfp4" || spec.format == "fp8") {
    const bool fp4 = spec.format == "nvfp4";
    json args = {{"dynamic", false}, {"num_bits", fp4 ? 4 : 8}, {"type", "float"}};
    if (fp4) args["group_size"] = 16;
    json group = {{"weights", args}, {"targets", json::array({"Linear"})}};
    group["input_activations"] = calibrated ? args : json(nullptr);
    return {{"config_groups", {{"group_0", group}}},
            {"ignore", ignore},
            {"quant_algo", fp4 ? "NVFP4" : "FP8"},
            {"producer", producer},
            {"quant_method", "modelopt"}};
  }
  if (spec.format == "fp8-block") {
    return {{"quant_method", "fp8"},
            {"fmt", "e4m3"},
            {"activation_scheme", "dynamic"},
            {"weight_block_size", {128, 128}},
            {"ignored_layers", ignore},
            {"modules_to_not_convert", ignore}};
  }
  return {{"quant_method", "mxfp4"}, {"modules_to_not_convert", ignore}};
}

}  // namespace

bool default_excluded(const std::string& module) {
  static const std::vector<std::string> kPatterns = {"lm_head", "*embed_tokens*", "*norm*", "*mlp.gate",
                                                     "*router*"};
  return model::module_matches(module, kPatterns);
}

base::Result<QuantizeReport> quantize_checkpoint(const std::string& in_dir, const std::string& out_dir,
                                                 const QuantizeSpec& spec) {
  const OutputLayout* out_layout = find_layout(spec.format);
  if (out_layout == nullptr) {
    return base::invalid_argument("--format '" + spec.format + "': expected nvfp4, mxfp4, fp8 or fp8-block");
  }
  const formats::BlockFormat& bf = *formats::find_block_format(out_layout->block_format);
  if (!base::is_directory(in_dir)) return base::not_found(in_dir + ": model folder not found");
  NIBBLE_ASSIGN_OR_RETURN(const model::QuantConfig in_quant, model::load_quant_config(in_dir));
  if (in_quant.method != model::QuantMethod::kNone) {
    return base::invalid_argument(in_dir + ": already quantized (" + in_quant.source +
                                  "); quantize a BF16/F16/F32 checkpoint");
  }
  NIBBLE_ASSIGN_OR_RETURN(const model::ModelConfig config, model::load_model_config(in_dir));
  std::error_code ec;
  const bool out_exists = fs::exists(out_dir, ec);
  if (out_exists && !spec.force) {
    return base::invalid_argument(out_dir + ": already exists (pass --force to replace it)");
  }
  NIBBLE_ASSIGN_OR_RETURN(io::Checkpoint ckpt, io::Checkpoint::open(in_dir));
  const int num_threads = spec.num_threads > 0 ? spec.num_threads : base::available_cpus();
  base::ThreadPool pool(std::max(1, num_threads));

  // Which tensors become quantized, and why the others stay.
  QuantizeReport report;
  std::map<std::string, bool> quantize;  // tensor name -> quantized
  std::vector<std::string> ignore = {"lm_head"};
  for (const std::string& name : ckpt.names()) {
    const io::TensorInfo& t = *ckpt.find(name);
    const bool float_dtype = t.dtype == tensor::DType::kBF16 || t.dtype == tensor::DType::kF16 ||
                             t.dtype == tensor::DType::kF32;
    bool q = false;
    if (ends_with(name, ".weight") && t.shape.size() == 2 && float_dtype) {
      const std::string module = name.substr(0, name.size() - 7);
      const bool excluded = default_excluded(module) || model::module_matches(module, spec.exclude);
      const int64_t rows = t.shape[0], cols = t.shape[1];
      const bool divisible = (bf.block_cols <= 1 || cols % bf.block_cols == 0) &&
                             (bf.block_rows <= 1 || rows % bf.block_rows == 0);
      q = !excluded && divisible;
      if (!excluded && !divisible) {
        report.warnings.push_back(module + ": shape [" + std::to_string(rows) + ", " + std::to_string(cols) +
                                  "] is not divisible by the " + std::string(bf.name) + " block; kept in " +
                                  std::string(tensor::dtype_name(t.dtype)));
      }
      if (!q && module != "lm_head" && module.find("embed_tokens") == std::string::npos) ignore.push_back(module);
    }
    quantize[name] = q;
  }
  for (const auto& w : report.warnings) base::log_warn(w);

  // Calibration: input amax per module (shared over fused groups).
  std::map<std::string, float> group_act_amax;
  const bool calibrate = !spec.calib_data.empty();
  if (calibrate && out_layout->input_bound > 0.0f) {
    NIBBLE_ASSIGN_OR_RETURN(std::vector<int32_t> tokens, read_token_file(spec.calib_data, in_dir, config.vocab_size));
    if (spec.calib_tokens > 0 && static_cast<int64_t>(tokens.size()) > spec.calib_tokens) {
      tokens.resize(static_cast<size_t>(spec.calib_tokens));
    }
    NIBBLE_ASSIGN_OR_RETURN(auto amax, collect_activation_amax(in_dir, tokens, 512, pool.num_threads()));
    for (const auto& [module, a] : amax) {
      float& g = group_act_amax[fusion_key(module)];
      g = std::max(g, a);
    }
  } else if (calibrate) {
    base::log_warn("--calib-data: format " + spec.format + " has dynamic activation scales; no calibration needed");
  }

  // Weight amax shared by fused groups (only formats with a per-tensor scale use it).
  std::map<std::string, float> group_w_amax;
  std::vector<float> x;
  if (bf.has_tensor_scale) {
    for (const auto& [name, q] : quantize) {
      if (!q) continue;
      to_float(*ckpt.find(name), pool, x);
      float& g = group_w_amax[fusion_key(name.substr(0, name.size() - 7))];
      g = std::max(g, tensor_amax(x, pool));
      NIBBLE_TRY(check_interrupt());
    }
  }

  // Output into a temporary sibling folder.
  const fs::path out_path = fs::absolute(fs::path(out_dir)).lexically_normal();
  const std::string tmp_dir = (out_path.parent_path() / ("." + out_path.filename().string() + ".nibble-tmp-" +
                                                         std::to_string(getpid())))
                                  .string();
  fs::remove_all(tmp_dir, ec);
  if (!fs::create_directories(tmp_dir, ec) || ec) {
    return base::io_error(tmp_dir + ": cannot create the temporary output folder: " + ec.message());
  }
  TempDir tmp_guard(tmp_dir);
  NIBBLE_ASSIGN_OR_RETURN(auto writer,
                          io::ShardedWriter::create(tmp_dir, spec.max_shard_bytes, {{"format", "pt"}}));

  Progress progress(spec.progress, ckpt.total_bytes());
  formats::QuantizeOptions qopts;
  qopts.search = spec.scales;
  uint64_t quant_bytes = 0, quant_weights = 0;
  for (const auto& [name, q] : quantize) {
    NIBBLE_TRY(check_interrupt());
    const io::TensorInfo& t = *ckpt.find(name);
    if (!q) {
      NIBBLE_TRY(writer->add({name, t.dtype, t.shape, t.data, t.num_bytes}));
      ++report.num_kept;
      progress.advance(t.num_bytes, name);
      continue;
    }
    const std::string module = name.substr(0, name.size() - 7);
    const std::string key = fusion_key(module);
    const int64_t rows = t.shape[0], cols = t.shape[1];
    to_float(t, pool, x);
    formats::QuantizeOptions opts = qopts;
    if (bf.has_tensor_scale) opts.tensor_amax = group_w_amax[key];
    auto prepared = formats::prepare_quantized_tensor(bf, x, rows, cols, opts);
    if (!prepared.ok()) return prepared.status().with_context(in_dir + ": tensor '" + name + "'");
    formats::QuantizedTensor qt = std::move(prepared).value();
    const int64_t tile_rows = qt.layout.tile_rows;
    const int64_t num_tiles = (rows + tile_rows - 1) / tile_rows;
    pool.parallel_for(num_tiles, 1, [&](int64_t begin, int64_t end) {
      formats::quantize_rows(bf, x, begin * tile_rows, std::min(rows, end * tile_rows), opts, qt);
    });
    std::vector<int64_t> data_shape = {rows, qt.layout.row_bytes};
    if (out_layout->mxfp4_blocks) data_shape = {rows, qt.layout.scale_cols, 16};
    const tensor::DType data_dtype = bf.element->bits == 4 ? tensor::DType::kU8 : tensor::DType::kF8E4M3;
    tensor::DType scale_dtype = tensor::DType::kF32;
    if (bf.scale == &formats::kScaleE4M3) scale_dtype = tensor::DType::kF8E4M3;
    if (bf.scale == &formats::kScaleE8M0) scale_dtype = tensor::DType::kU8;
    std::vector<int64_t> scale_shape = {qt.layout.scale_rows, qt.layout.scale_cols};
    if (bf.block_rows == formats::kWholeDim && bf.block_cols == formats::kWholeDim) scale_shape = {};
    NIBBLE_TRY(writer->add({module + std::string(out_layout->data_suffix), data_dtype, data_shape, qt.data.data(),
                            qt.data.size()}));
    NIBBLE_TRY(writer->add({module + std::string(out_layout->scale_suffix), scale_dtype, scale_shape,
                            qt.scales.data(), qt.scales.size()}));
    quant_bytes += qt.data.size() + qt.scales.size();
    if (!out_layout->tensor_scale_suffix.empty()) {
      NIBBLE_TRY(writer->add({module + std::string(out_layout->tensor_scale_suffix), tensor::DType::kF32, {},
                              &qt.tensor_scale, 4}));
      quant_bytes += 4;
    }
    if (calibrate && out_layout->input_bound > 0.0f) {
      auto it = group_act_amax.find(key);
      if (it == group_act_amax.end()) {
        return base::internal_error("calibration recorded no activations for module '" + module + "'");
      }
      // ModelOpt: input_scale = act_amax / (maxbound * 448) (NVFP4) or act_amax / 448 (FP8).
      float input_scale = it->second / out_layout->input_bound;
      if (!(input_scale > 0.0f)) input_scale = 1.0f / out_layout->input_bound;
      NIBBLE_TRY(writer->add({module + ".input_scale", tensor::DType::kF32, {}, &input_scale, 4}));
    }
    quant_weights += static_cast<uint64_t>(rows * cols);
    ++report.num_quantized;
    progress.advance(t.num_bytes, name);
  }
  NIBBLE_TRY(check_interrupt());
  NIBBLE_TRY(writer->finish());
  progress.finish();
  report.output_bytes = writer->total_bytes();
  report.bits_per_weight = quant_weights > 0 ? 8.0 * static_cast<double>(quant_bytes) / static_cast<double>(quant_weights) : 0.0;

  // config.json with quantization_config; hf_quant_config.json for ModelOpt layouts.
  NIBBLE_ASSIGN_OR_RETURN(const std::string config_text, base::read_file(base::join_path(in_dir, "config.json")));
  NIBBLE_ASSIGN_OR_RETURN(json config_json, io::parse_json_strict(config_text, in_dir + "/config.json"));
  const bool calibrated = calibrate && out_layout->input_bound > 0.0f;
  config_json["quantization_config"] = quant_config_json(spec, ignore, calibrated);
  NIBBLE_TRY(base::write_file_atomic(base::join_path(tmp_dir, "config.json"), config_json.dump(2) + "\n"));
  if (spec.format == "nvfp4" || spec.format == "fp8") {
    json quantization = {{"quant_algo", spec.format == "nvfp4" ? "NVFP4" : "FP8"},
                         {"kv_cache_quant_algo", nullptr},
                         {"exclude_modules", ignore}};
    if (spec.format == "nvfp4") quantization["group_size"] = 16;
    const json hq = {{"producer", {{"name", "nibble"}, {"version", "0.1"}}}, {"quantization", quantization}};
    NIBBLE_TRY(base::write_file_atomic(base::join_path(tmp_dir, "hf_quant_config.json"), hq.dump(4) + "\n"));
  }
  // Everything else in the folder (generation_config.json, tokenizer files, chat template, ...).
  for (const auto& entry : fs::directory_iterator(in_dir, ec)) {
    const std::string fname = entry.path().filename().string();
    if (!entry.is_regular_file() || fname == "config.json" || fname == "hf_quant_config.json" ||
        ends_with(fname, ".safetensors") || fname == "model.safetensors.index.json" || fname[0] == '.') {
      continue;
    }
    fs::copy_file(entry.path(), fs::path(tmp_dir) / fname, fs::copy_options::overwrite_existing, ec);
    if (ec) return base::io_error(entry.path().string() + ": copy failed: " + ec.message());
  }
  NIBBLE_TRY(check_interrupt());

  // Publish: move an old OUT aside (--force), rename the temporary folder, drop the old one.
  std::string old_dir;
  if (fs::exists(out_path, ec)) {
    old_dir = tmp_dir + ".old";
    fs::rename(out_path, old_dir, ec);
    if (ec) return base::io_error(out_dir + ": cannot replace: " + ec.message());
  }
  fs::rename(tmp_dir, out_path, ec);
  if (ec) {
    std::error_code restore_ec;
    if (!old_dir.empty()) fs::rename(old_dir, out_path, restore_ec);  // put the old OUT back
    return base::io_error(out_dir + ": rename from " + tmp_dir + " failed: " + ec.message());
  }
  tmp_guard.release();
  if (!old_dir.empty()) fs::remove_all(old_dir, ec);
  return report;
}

}  // namespace nibble::quant
