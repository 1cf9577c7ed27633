// `nibble eval MODEL (--text FILE | --ids-file FILE) [--ctx N] [--base BASE_MODEL] [--json] [-t N]`:
// perplexity in windows and, with --base, KL divergence / top-1 agreement against the base model.
#include <cstdio>
#include <memory>

#include <nlohmann/json.hpp>

#include "base/thread_pool.h"
#include "cli/commands.h"
#include "model/config.h"
#include "quant/calibration.h"
#include "quant/evaluate.h"

namespace nibble::cli {

void add_eval(CLI::App& app, CommandFn* run) {
  struct Args {
    std::string model_dir, text, ids_file, base_dir;
    int64_t ctx = 512;
    bool json = false;
    int num_threads = 0;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("eval", "Perplexity, and KL / top-1 agreement against a base model");
  cmd->add_option("MODEL", args->model_dir, "Model folder")->required();
  CLI::Option* text = cmd->add_option("--text", args->text,
                                      "Evaluation text (until the tokenizer lands: raw bytes as ids, or a "
                                      "file of integers read as ids)");
  CLI::Option* ids = cmd->add_option("--ids-file", args->ids_file, "File of token ids (whitespace/commas)");
  text->excludes(ids);
  cmd->add_option("--ctx", args->ctx, "Window length in tokens (the second half of each is scored)")
      ->check(CLI::Range(int64_t{4}, int64_t{1} << 20));
  cmd->add_option("--base", args->base_dir, "Base model to compare next-token distributions with");
  cmd->add_flag("--json", args->json, "Print the result as JSON");
  cmd->add_option("-t,--threads", args->num_threads, "Threads (default: all cores)");
  cmd->callback([run, args] {
    *run = [args] {
      if (args->text.empty() && args->ids_file.empty()) {
        return report_error(base::invalid_argument("eval: pass --text FILE or --ids-file FILE"));
      }
      auto config = model::load_model_config(args->model_dir);
      if (!config.ok()) return report_error(config.status());
      auto tokens = quant::read_token_file(args->text.empty() ? args->ids_file : args->text, args->model_dir, config->vocab_size);
      if (!tokens.ok()) return report_error(tokens.status());
      const int threads = args->num_threads > 0 ? args->num_threads : base::available_cpus();
      auto r = quant::evaluate(args->model_dir, args->base_dir, *tokens, args->ctx, threads);
      if (!r.ok()) return report_error(r.status());
      if (args->json) {
        nlohmann::json j = {{"model", args->model_dir}, {"ctx", r->ctx},
                            {"windows", r->num_windows}, {"scored_tokens", r->num_scored},
                            {"mean_nll", r->mean_nll},   {"perplexity", r->perplexity}};
        if (r->has_base) {
          j["base"] = args->base_dir;
          j["base_perplexity"] = r->base_perplexity;
          j["mean_kl"] = r->mean_kl;
          j["max_kl"] = r->max_kl;
          j["top1_agreement"] = r->top1_agreement;
        }
        std::printf("%s\n", j.dump(2).c_str());
      } else {
        std::printf("perplexity %.4f over %lld tokens (%lld windows of %lld)\n", r->perplexity,
                    static_cast<long long>(r->num_scored), static_cast<long long>(r->num_windows),
                    static_cast<long long>(r->ctx));
        if (r->has_base) {
          std::printf("base perplexity %.4f\nmean KL %.6f nats, max KL %.6f, top-1 agreement %.2f%%\n",
                      r->base_perplexity, r->mean_kl, r->max_kl, 100.0 * r->top1_agreement);
        }
      }
      return 0;
    };
  });
}

}  // namespace nibble::cli
