// `nibble bench MODEL [-p 512] [-n 128] [-t N] [-r REPS] [--json]`: prefill (pp) and decode (tg)
// tokens/s like llama-bench, and each as a percentage of this machine's measured roofline.
// `nibble bench MODEL -p P -n N --concurrency 1,2,4,8,16,32 [--json] [engine flags]`: throughput
// through the engine with that many requests in flight (cmd_bench_engine.cpp).
// Added to the `bench` command group as its default form (no subcommand).
#include <cstdio>
#include <memory>

#include "bench/offline.h"
#include "cli/commands.h"
#include "cli/engine_flags.h"

namespace nibble::cli {
namespace {

struct BenchEngineFlags {
  std::string concurrency;
  engine::EngineArgs engine_args;
  EngineFlagText flag_text;
};

}  // namespace

void add_bench_offline(CLI::App* bench, CommandFn* run) {
  auto opts = std::make_shared<bench::OfflineOptions>();
  auto json = std::make_shared<bool>(false);
  auto eng = std::make_shared<BenchEngineFlags>();
  CLI::Option* model =
      bench->add_option("MODEL", opts->model_dir, "Model folder: offline pp/tg speed vs the roofline");
  CLI::Option* n_prompt =
      bench
          ->add_option(
              "-p,--n-prompt", opts->num_prompt_tokens,
              "Prompt tokens per prefill run (0 = skip); per request with --concurrency (default 64)")
          ->check(CLI::Range(int64_t{0}, int64_t{1} << 20));
  CLI::Option* n_gen =
      bench
          ->add_option(
              "-n,--n-gen", opts->num_gen_tokens,
              "Generated tokens per decode run (0 = skip); per request with --concurrency (default 32)")
          ->check(CLI::Range(int64_t{0}, int64_t{1} << 20));
  bench->add_option("-t,--threads", opts->num_threads, "Threads (default: all available CPUs)")
      ->check(CLI::Range(1, 1024));
  bench->add_option("-r,--repetitions", opts->num_reps, "Repetitions (mean ± sd)")
      ->check(CLI::Range(1, 1000));
  bench->add_flag("--json", *json, "Print one JSON object");
  CLI::Option* concurrency = bench->add_option("--concurrency", eng->concurrency,
                                               "Run requests through the engine, this many in flight at once "
                                               "(comma-separated list, e.g. 1,2,4,8,16,32)");
  add_engine_flags(bench, &eng->engine_args, &eng->flag_text, /*with_threads=*/false);
  CLI::Option* max_num_seqs = bench->get_option("--max-num-seqs");
  bench->callback([bench, model, opts, json, run, eng, concurrency, n_prompt, n_gen, max_num_seqs] {
    if (!bench->get_subcommands().empty()) return;  // `bench serve` and friends
    const bool engine_mode = concurrency->count() > 0;
    const bool has_prompt = n_prompt->count() > 0, has_gen = n_gen->count() > 0;
    const bool has_max_num_seqs = max_num_seqs->count() > 0;
    *run = [model, opts, json, eng, engine_mode, has_prompt, has_gen, has_max_num_seqs] {
      if (model->count() == 0) {
        return report_error(base::invalid_argument("bench: give a MODEL folder or a subcommand"));
      }
      if (engine_mode) {
        const int64_t p = has_prompt ? opts->num_prompt_tokens : 64;
        const int64_t n = has_gen ? opts->num_gen_tokens : 32;
        if (p < 1 || n < 1)
          return report_error(base::invalid_argument("bench --concurrency: -p and -n must be at least 1"));
        if (auto st = engine_args_finish(eng->flag_text, &eng->engine_args); !st.ok())
          return report_error(st);
        eng->engine_args.num_threads = opts->num_threads;
        return run_bench_engine(opts->model_dir, eng->concurrency, static_cast<int32_t>(p),
                                static_cast<int32_t>(n), eng->engine_args, *json, has_max_num_seqs);
      }
      auto result = bench::run_offline_bench(*opts);
      if (!result.ok()) return report_error(result.status());
      const std::string text =
          *json ? bench::format_offline_json(*result) : bench::format_offline_text(*result);
      std::fputs(text.c_str(), stdout);
      return 0;
    };
  });
}

}  // namespace nibble::cli
