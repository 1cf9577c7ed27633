// `nibble plan MODEL_DIR|config.json --device NAME`: will this model fit on this machine, with how
// much context, and how fast? Works from config.json alone; see plan/estimate.h for the models.
#include <cstdio>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "plan/device.h"
#include "plan/estimate.h"
#include "plan/model_shape.h"
#include "plan/report.h"

namespace nibble::cli {
namespace {

struct PlanFlags {
  std::string model;
  std::string device;
  std::string devices_file;
  std::string format = "as-is";
  std::string kv_dtype;
  std::string kv_layout = "nibble";
  int64_t context = 4096;
  int64_t concurrency = 1;
  int nodes = 1;
  int64_t prefill_chunk = 2048;
  bool json = false;
};

// The last path component that is not "config.json", for the report's title.
std::string model_name(const std::string& path) {
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  const std::string suffix = "/config.json";
  if (p.size() > suffix.size() && p.compare(p.size() - suffix.size(), suffix.size(), suffix) == 0) {
    p.resize(p.size() - suffix.size());
  }
  const size_t slash = p.rfind('/');
  return slash == std::string::npos ? p : p.substr(slash + 1);
}

int run_plan(const PlanFlags& f) {
  auto shape = plan::load_model_shape(f.model);
  if (!shape.ok()) return report_error(shape.status());
  auto device = plan::resolve_device(f.device, f.devices_file);
  if (!device.ok()) return report_error(device.status());
  auto format = plan::parse_format_choice(f.format);
  if (!format.ok()) return report_error(format.status());
  plan::PlanOptions options;
  options.format = *format;
  if (f.kv_layout == "reference") {
    options.kv_runtime = plan::kReferenceKv;
  } else if (f.kv_layout != "nibble") {
    return report_error(
        base::invalid_argument("--kv-layout '" + f.kv_layout + "' is not nibble or reference"));
  }
  if (f.kv_dtype == "f32") {
    options.kv_dtype = plan::KvDtype::kF32;
  } else if (f.kv_dtype == "bf16") {
    options.kv_dtype = plan::KvDtype::kBf16;
  } else if (f.kv_dtype == "fp8") {
    options.kv_dtype = plan::KvDtype::kFp8;
  } else if (!f.kv_dtype.empty()) {
    return report_error(base::invalid_argument("--kv-dtype '" + f.kv_dtype + "' is not f32, bf16 or fp8"));
  }
  options.context_tokens = f.context;
  options.concurrency = f.concurrency;
  options.nodes = f.nodes;
  options.prefill_chunk_tokens = f.prefill_chunk;
  auto est = plan::estimate(*shape, *device, options);
  if (!est.ok()) return report_error(est.status());
  const std::string name = model_name(f.model);
  if (f.json) {
    std::printf("%s\n", plan::to_json(*est, *device, name).dump(2).c_str());
  } else {
    std::printf("%s", plan::format_table(*est, *device, name).c_str());
  }
  return 0;
}

}  // namespace

void add_plan(CLI::App& app, CommandFn* run) {
  auto flags = std::make_shared<PlanFlags>();
  CLI::App* cmd = app.add_subcommand(
      "plan", "Predict whether a model fits on a device, with how much context, and how fast");
  cmd->add_option("model", flags->model, "MODEL_DIR or config.json")->required();
  cmd->add_option("--device", flags->device,
                  "dgx-spark, rtx-5090, rtx-pro-6000, h200, m4-max, ryzen-ai-max-395, this-cpu, or "
                  "custom:mem=128GB,bw=273GB/s,fp4=500T,fp8=188T,bf16=86T[,link=25GB/s,kind=gpu-unified]")
      ->required();
  cmd->add_option("--devices", flags->devices_file,
                  "device profile file replacing the built-in data/devices.json");
  cmd->add_option("--format", flags->format, "bf16, fp8, fp8-block, nvfp4, mxfp4 or as-is (default)");
  cmd->add_option("--kv-dtype", flags->kv_dtype,
                  "f32, bf16 or fp8 (default: what nibble's engine allocates, f32 today)");
  cmd->add_option("--kv-layout", flags->kv_layout,
                  "nibble (default: as nibble's engine allocates: every layer in full, 16-token blocks) or "
                  "reference (llama.cpp / vLLM: bf16, sliding-window layers capped at the window)");
  cmd->add_option("--context", flags->context, "tokens per sequence (default 4096)");
  cmd->add_option("--concurrency", flags->concurrency, "sequences decoded together (default 1)");
  cmd->add_option("--nodes", flags->nodes, "devices linked together (default 1)");
  cmd->add_option("--prefill-chunk", flags->prefill_chunk, "tokens per prefill step (default 2048)");
  cmd->add_flag("--json", flags->json, "print JSON instead of the table");
  cmd->callback([run, flags] { *run = [flags] { return run_plan(*flags); }; });
}

}  // namespace nibble::cli
