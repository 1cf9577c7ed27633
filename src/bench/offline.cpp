#include "bench/offline.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <vector>

#include "base/thread_pool.h"
#include "bench/roofline.h"
#include "kernels/kernel_table.h"
#include "model/model.h"

namespace nibble::bench {
namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

MeanStd mean_std(const std::vector<double>& v) {
  MeanStd r;
  if (v.empty()) return r;
  for (double x : v) r.mean += x;
  r.mean /= static_cast<double>(v.size());
  if (v.size() > 1) {
    double ss = 0;
    for (double x : v) ss += (x - r.mean) * (x - r.mean);
    r.std = std::sqrt(ss / static_cast<double>(v.size() - 1));
  }
  return r;
}

}  // namespace

base::Result<OfflineResult> run_offline_bench(const OfflineOptions& options) {
  if (options.num_prompt_tokens < 0 || options.num_gen_tokens < 0 ||
      options.num_prompt_tokens + options.num_gen_tokens == 0) {
    return base::invalid_argument("bench: -p and -n must be >= 0 and not both 0");
  }
  if (options.num_reps < 1) return base::invalid_argument("bench: -r must be >= 1");
  NIBBLE_ASSIGN_OR_RETURN(model::ModelConfig config, model::load_model_config(options.model_dir));
  NIBBLE_ASSIGN_OR_RETURN(const kernels::KernelTable* table, kernels::kernel_table());

  model::LoadOptions load;
  load.max_seq_len = std::max<int64_t>({options.num_prompt_tokens, options.num_gen_tokens, 1});
  if (load.max_seq_len > config.max_position_embeddings) {
    return base::invalid_argument(
        "bench: -p/-n of " + std::to_string(load.max_seq_len) + " tokens exceed max_position_embeddings " +
        std::to_string(config.max_position_embeddings) + " of " + options.model_dir);
  }
  load.max_batch_tokens = std::max<int64_t>(options.num_prompt_tokens, 1);
  load.max_logit_rows = 1;
  load.num_threads = options.num_threads > 0 ? options.num_threads : base::available_cpus();
  NIBBLE_ASSIGN_OR_RETURN(std::unique_ptr<model::Model> m, model::load_model(options.model_dir, load));

  OfflineResult r;
  r.model_dir = options.model_dir;
  r.architecture = config.architecture;
  r.isa = table->isa;
  r.num_threads = load.num_threads;
  r.num_reps = options.num_reps;
  r.num_prompt_tokens = options.num_prompt_tokens;
  r.num_gen_tokens = options.num_gen_tokens;
  r.weight_bytes = static_cast<double>(m->weight_bytes());

  std::mt19937 rng(1234);
  std::uniform_int_distribution<int32_t> token(0, static_cast<int32_t>(config.vocab_size - 1));
  std::unique_ptr<model::KvCache> cache = m->new_kv_cache();

  // Like llama-bench: pp = one forward of p random tokens from position 0; tg = n single-token
  // forwards from position 0. One unmeasured warm-up of each first (page-in of the weights).
  std::vector<double> pp, tg;
  for (int rep = -1; rep < options.num_reps; ++rep) {
    if (options.num_prompt_tokens > 0) {
      std::vector<int32_t> prompt(static_cast<size_t>(options.num_prompt_tokens));
      for (auto& t : prompt) t = token(rng);
      const double t0 = now_s();
      NIBBLE_TRY(m->forward(prompt, 0, *cache, 1).status());
      const double dt = now_s() - t0;
      if (rep >= 0) pp.push_back(static_cast<double>(options.num_prompt_tokens) / dt);
    }
    if (options.num_gen_tokens > 0) {
      int32_t next = token(rng);
      const int64_t steps = rep < 0 ? std::min<int64_t>(options.num_gen_tokens, 8) : options.num_gen_tokens;
      const double t0 = now_s();
      for (int64_t i = 0; i < steps; ++i) {
        NIBBLE_ASSIGN_OR_RETURN(std::span<const float> logits, m->forward({&next, 1}, i, *cache, 1));
        next = static_cast<int32_t>(i + static_cast<int64_t>(logits[0] > 0)) %
               static_cast<int32_t>(config.vocab_size);
      }
      const double dt = now_s() - t0;
      if (rep >= 0) tg.push_back(static_cast<double>(steps) / dt);
    }
  }
  r.prefill_tok_s = mean_std(pp);
  r.decode_tok_s = mean_std(tg);

  base::ThreadPool pool(load.num_threads);
  const Roofline roof = measure_roofline(*table, pool);
  r.read_bytes_per_s = roof.read_bytes_per_s;
  r.fma_flops_per_s = roof.fma_flops_per_s;
  const TokenCost cost = token_cost(config);
  // Parameters in the checkpoint: projections, embeddings (and an untied lm_head), norms.
  const double hidden = static_cast<double>(config.hidden_size);
  const double total_params = cost.stored_matmul_params +
                              cost.lm_head_params * (config.tie_word_embeddings ? 1 : 2) +
                              hidden * (2 * static_cast<double>(config.num_hidden_layers) + 1);
  r.bytes_per_param = r.weight_bytes / total_params;
  // Mixture-of-experts models say what a token reads (top-k experts, not all); dense ones are
  // estimated from the config.
  const double model_bytes = m->decode_weight_bytes_per_token();
  const double weights_read = model_bytes > 0 ? model_bytes : weight_bytes_read_per_token(config, r.weight_bytes);
  r.decode_bytes_per_token = decode_bytes_per_token(cost, weights_read, static_cast<double>(options.num_gen_tokens) / 2);
  r.prefill_flops_per_token = prefill_flops_per_token(cost, std::max<int64_t>(options.num_prompt_tokens, 1));
  r.decode_roofline_tok_s = r.read_bytes_per_s / r.decode_bytes_per_token;
  r.prefill_roofline_tok_s = r.fma_flops_per_s / r.prefill_flops_per_token;
  return r;
}

std::string format_offline_text(const OfflineResult& r) {
  char buf[512];
  std::string out;
  std::snprintf(buf, sizeof(buf),
                "model: %s (%s, %.1f MB of weights, %.2f bytes/param)  isa: %s  threads: %d  reps: %d\n",
                r.model_dir.c_str(), r.architecture.c_str(), r.weight_bytes / 1e6, r.bytes_per_param,
                r.isa.c_str(), r.num_threads, r.num_reps);
  out += buf;
  out += "| test   |             t/s |  roofline t/s | of roofline |\n";
  out += "| ------ | --------------: | ------------: | ----------: |\n";
  if (r.num_prompt_tokens > 0) {
    std::snprintf(buf, sizeof(buf), "| pp%-4lld | %8.2f ± %5.2f | %13.2f | %10.1f%% |\n",
                  static_cast<long long>(r.num_prompt_tokens), r.prefill_tok_s.mean, r.prefill_tok_s.std,
                  r.prefill_roofline_tok_s, 100.0 * r.prefill_tok_s.mean / r.prefill_roofline_tok_s);
    out += buf;
  }
  if (r.num_gen_tokens > 0) {
    std::snprintf(buf, sizeof(buf), "| tg%-4lld | %8.2f ± %5.2f | %13.2f | %10.1f%% |\n",
                  static_cast<long long>(r.num_gen_tokens), r.decode_tok_s.mean, r.decode_tok_s.std,
                  r.decode_roofline_tok_s, 100.0 * r.decode_tok_s.mean / r.decode_roofline_tok_s);
    out += buf;
  }
  std::snprintf(
      buf, sizeof(buf),
      "roofline: read bandwidth %.2f GB/s, fp32 FMA peak %.1f GFLOP/s (%d threads); decode %.1f MB/token "
      "(weights + KV), prefill %.3f GFLOP/token\n",
      r.read_bytes_per_s / 1e9, r.fma_flops_per_s / 1e9, r.num_threads, r.decode_bytes_per_token / 1e6,
      r.prefill_flops_per_token / 1e9);
  out += buf;
  return out;
}

std::string format_offline_json(const OfflineResult& r) {
  nlohmann::ordered_json j;
  j["model"] = r.model_dir;
  j["architecture"] = r.architecture;
  j["isa"] = r.isa;
  j["threads"] = r.num_threads;
  j["reps"] = r.num_reps;
  j["weight_bytes"] = r.weight_bytes;
  j["bytes_per_param"] = r.bytes_per_param;
  j["read_bytes_per_s"] = r.read_bytes_per_s;
  j["fma_flops_per_s"] = r.fma_flops_per_s;
  if (r.num_prompt_tokens > 0) {
    j["pp"] = {{"n_prompt", r.num_prompt_tokens},
               {"avg_ts", r.prefill_tok_s.mean},
               {"stddev_ts", r.prefill_tok_s.std},
               {"flops_per_token", r.prefill_flops_per_token},
               {"roofline_ts", r.prefill_roofline_tok_s},
               {"fraction_of_roofline", r.prefill_tok_s.mean / r.prefill_roofline_tok_s}};
  }
  if (r.num_gen_tokens > 0) {
    j["tg"] = {{"n_gen", r.num_gen_tokens},
               {"avg_ts", r.decode_tok_s.mean},
               {"stddev_ts", r.decode_tok_s.std},
               {"bytes_per_token", r.decode_bytes_per_token},
               {"roofline_ts", r.decode_roofline_tok_s},
               {"fraction_of_roofline", r.decode_tok_s.mean / r.decode_roofline_tok_s}};
  }
  return j.dump(2) + "\n";
}

}  // namespace nibble::bench
