// The engine concurrency benchmark behind `nibble bench MODEL -p P -n N --concurrency 1,2,4,8,16,32
// [--json] [engine flags]` (bench/engine_bench.h): that many requests of P prompt and N output
// tokens in flight at once, output tok/s per concurrency and its ratio to the first. Also reachable
// as the hidden alias `nibble bench-engine MODEL ...` (the command's earlier name).
#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>

#include "bench/engine_bench.h"
#include "cli/commands.h"
#include "cli/engine_flags.h"
#include "engine/llm_engine.h"

namespace nibble::cli {
namespace {

struct BenchEngineArgs {
  std::string model_dir;
  int32_t prompt_tokens = 64;
  int32_t output_tokens = 32;
  std::string concurrency = "1,2,4,8,16,32";
  bool json = false;
  engine::EngineArgs engine_args;
  EngineFlagText flag_text;
  bool has_max_num_seqs = false;
};

}  // namespace

int run_bench_engine(const std::string& model_dir, const std::string& concurrency_text, int32_t prompt_tokens,
                     int32_t output_tokens, engine::EngineArgs engine_args, bool json,
                     bool has_max_num_seqs) {
  bench::EngineBenchConfig config;
  config.prompt_tokens = prompt_tokens;
  config.output_tokens = output_tokens;
  auto list = bench::parse_concurrency_list(concurrency_text);
  if (!list.ok()) return report_error(list.status());
  config.concurrency = *list;
  int32_t max_c = 1;
  for (int32_t c : config.concurrency) max_c = std::max(max_c, c);
  if (!has_max_num_seqs) engine_args.max_num_seqs = max_c;
  if (engine_args.max_model_len == 0) engine_args.max_model_len = config.prompt_tokens + config.output_tokens;
  auto created = engine::LlmEngine::create(model_dir, engine_args);
  if (!created.ok()) return report_error(created.status());
  engine::LlmEngine& llm = **created;
  for (const std::string& line : llm.metadata().startup_report) std::fprintf(stderr, "%s\n", line.c_str());
  std::fprintf(stderr, "bench: -p %d -n %d, RSS after load %.1f MiB\n", config.prompt_tokens,
               config.output_tokens, static_cast<double>(bench::read_rss_bytes()) / (1 << 20));
  auto points = bench::run_engine_bench(llm, config);
  if (!points.ok()) return report_error(points.status());
  if (json) {
    std::printf("%s\n", bench::format_engine_bench_json(config, *points).c_str());
  } else {
    std::printf("%s", bench::format_engine_bench_table(*points).c_str());
  }
  return 0;
}

void add_bench_engine(CLI::App& app, CommandFn* run) {
  CLI::App* cmd = app.add_subcommand("bench-engine", "Alias of `bench MODEL --concurrency LIST`");
  cmd->group("");  // hidden from --help: `nibble bench MODEL --concurrency` is the documented form
  auto args = std::make_shared<BenchEngineArgs>();
  cmd->add_option("MODEL", args->model_dir, "Model folder (config.json + safetensors)")->required();
  cmd->add_option("-p,--prompt-tokens", args->prompt_tokens, "Prompt tokens per request")
      ->check(CLI::Range(1, 1 << 20));
  cmd->add_option("-n,--output-tokens", args->output_tokens, "Output tokens per request")
      ->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--concurrency", args->concurrency, "Requests in flight at once, comma-separated");
  cmd->add_flag("--json", args->json, "Print one JSON object");
  add_engine_flags(cmd, &args->engine_args, &args->flag_text);
  cmd->callback([run, args, cmd] {
    args->has_max_num_seqs = cmd->get_option("--max-num-seqs")->count() > 0;
    *run = [args] {
      if (auto st = engine_args_finish(args->flag_text, &args->engine_args); !st.ok())
        return report_error(st);
      return run_bench_engine(args->model_dir, args->concurrency, args->prompt_tokens, args->output_tokens,
                              args->engine_args, args->json, args->has_max_num_seqs);
    };
  });
}

}  // namespace nibble::cli
