// `nibble quantize IN OUT --format nvfp4|mxfp4|fp8|fp8-block [--exclude GLOB]... [--scales max|mse]
// [--calib-data FILE --calib-tokens N] [--force] [-t N]` (see quant/quantize.h).
#include <csignal>
#include <cstdio>
#include <memory>

#include "cli/commands.h"
#include "quant/quantize.h"

namespace nibble::cli {
namespace {

extern "C" void on_sigint(int /*sig*/) {
  // First Ctrl-C: stop between tensors and remove the temporary folder; a second one kills.
  if (quant::g_interrupted.exchange(true)) std::_Exit(130);
}

}  // namespace

void add_quantize(CLI::App& app, CommandFn* run) {
  CLI::App* cmd = app.add_subcommand("quantize", "Quantize a BF16 checkpoint to NVFP4 / MXFP4 / FP8");
  auto spec = std::make_shared<quant::QuantizeSpec>();
  auto in = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  auto scales = std::make_shared<std::string>("max");
  cmd->add_option("IN", *in, "Input model folder (BF16/F16/F32 safetensors)")->required();
  cmd->add_option("OUT", *out, "Output folder (must not exist unless --force)")->required();
  cmd->add_option("--format", spec->format, "nvfp4 | mxfp4 | fp8 | fp8-block")
      ->required()
      ->check(CLI::IsMember({"nvfp4", "mxfp4", "fp8", "fp8-block"}));
  cmd->add_option("--exclude", spec->exclude, "Keep modules matching this glob in BF16 (repeatable)");
  cmd->add_option("--scales", *scales, "Scale choice: max (ModelOpt's) | mse (searched)")
      ->check(CLI::IsMember({"max", "mse"}));
  cmd->add_option("--calib-data", spec->calib_data,
                  "Calibration file for input_scale (token ids, else raw bytes until the tokenizer lands)");
  cmd->add_option("--calib-tokens", spec->calib_tokens, "Calibration tokens to use")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 30));
  cmd->add_flag("--force", spec->force, "Replace an existing OUT");
  cmd->add_option("-t,--threads", spec->num_threads, "Threads (default: all cores)");
  cmd->callback([run, spec, in, out, scales] {
    spec->scales = *scales == "mse" ? formats::ScaleSearch::kMse : formats::ScaleSearch::kMax;
    *run = [spec, in, out] {
      std::signal(SIGINT, &on_sigint);
      std::signal(SIGTERM, &on_sigint);
      auto report = quant::quantize_checkpoint(*in, *out, *spec);
      std::signal(SIGINT, SIG_DFL);
      std::signal(SIGTERM, SIG_DFL);
      if (!report.ok()) return report_error(report.status());
      std::fprintf(stderr, "wrote %s: %lld linear weights in %s (%.3f bits/weight), %lld tensors kept, %.1f MB\n",
                   out->c_str(), static_cast<long long>(report->num_quantized), spec->format.c_str(),
                   report->bits_per_weight, static_cast<long long>(report->num_kept),
                   static_cast<double>(report->output_bytes) / 1e6);
      return 0;
    };
  });
}

}  // namespace nibble::cli
