// `nibble bench MODEL [-p 512] [-n 128] [-t N] [-r REPS] [--json]`: prefill (pp) and decode (tg)
// tokens/s like llama-bench, and each as a percentage of this machine's measured roofline.
// Added to the `bench` command group as its default form (no subcommand).
#include <cstdio>
#include <memory>

#include "bench/offline.h"
#include "cli/commands.h"

namespace nibble::cli {

void add_bench_offline(CLI::App* bench, CommandFn* run) {
  auto opts = std::make_shared<bench::OfflineOptions>();
  auto json = std::make_shared<bool>(false);
  CLI::Option* model =
      bench->add_option("MODEL", opts->model_dir, "Model folder: offline pp/tg speed vs the roofline");
  bench->add_option("-p,--n-prompt", opts->num_prompt_tokens, "Prompt tokens per prefill run (0 = skip)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 20));
  bench->add_option("-n,--n-gen", opts->num_gen_tokens, "Generated tokens per decode run (0 = skip)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 20));
  bench->add_option("-t,--threads", opts->num_threads, "Threads (default: all available CPUs)")
      ->check(CLI::Range(1, 1024));
  bench->add_option("-r,--repetitions", opts->num_reps, "Repetitions (mean ± sd)")
      ->check(CLI::Range(1, 1000));
  bench->add_flag("--json", *json, "Print one JSON object");
  bench->callback([bench, model, opts, json, run] {
    if (!bench->get_subcommands().empty()) return;  // `bench serve` and friends
    *run = [model, opts, json] {
      if (model->count() == 0) {
        return report_error(base::invalid_argument("bench: give a MODEL folder or a subcommand"));
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
