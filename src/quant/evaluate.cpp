#include "quant/evaluate.h"

#include <algorithm>
#include <cmath>

#include "model/model.h"

namespace nibble::quant {
namespace {

// log(sum(exp(x))) in double, max subtracted.
double log_sum_exp(const float* x, int64_t n, double max_val) {
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += std::exp(static_cast<double>(x[i]) - max_val);
  return max_val + std::log(sum);
}

int64_t argmax(const float* x, int64_t n) {
  return std::max_element(x, x + n) - x;
}

}  // namespace

double row_nll(const float* logits, int64_t vocab, int32_t target) {
  const double lse = log_sum_exp(logits, vocab, logits[argmax(logits, vocab)]);
  return lse - static_cast<double>(logits[target]);
}

RowStats compare_rows(const float* model_logits, const float* base_logits, int64_t vocab, int32_t target) {
  RowStats s;
  const int64_t am = argmax(model_logits, vocab), ab = argmax(base_logits, vocab);
  const double lse_m = log_sum_exp(model_logits, vocab, model_logits[am]);
  const double lse_b = log_sum_exp(base_logits, vocab, base_logits[ab]);
  double kl = 0.0;
  for (int64_t i = 0; i < vocab; ++i) {
    const double lp = static_cast<double>(base_logits[i]) - lse_b;
    const double lq = static_cast<double>(model_logits[i]) - lse_m;
    kl += std::exp(lp) * (lp - lq);
  }
  s.kl = std::max(0.0, kl);
  s.nll_model = lse_m - static_cast<double>(model_logits[target]);
  s.nll_base = lse_b - static_cast<double>(base_logits[target]);
  s.top1_equal = am == ab;
  return s;
}

base::Result<EvalResult> evaluate(const std::string& model_dir, const std::string& base_dir,
                                  const std::vector<int32_t>& tokens, int64_t ctx, int num_threads) {
  if (ctx < 4) return base::invalid_argument("--ctx " + std::to_string(ctx) + ": needs at least 4 tokens");
  const int64_t num_windows = static_cast<int64_t>(tokens.size()) / ctx;
  if (num_windows == 0) {
    return base::invalid_argument("the text has " + std::to_string(tokens.size()) +
                                  " tokens, fewer than one window of --ctx " + std::to_string(ctx));
  }
  const int64_t first = ctx / 2;  // positions [first, ctx - 1) are scored
  model::LoadOptions opts;
  opts.max_seq_len = ctx;
  opts.max_batch_tokens = ctx;
  opts.max_logit_rows = ctx - first;
  opts.num_threads = num_threads;
  NIBBLE_ASSIGN_OR_RETURN(auto model, model::load_model(model_dir, opts));
  std::unique_ptr<model::Model> base;
  if (!base_dir.empty()) {
    NIBBLE_ASSIGN_OR_RETURN(base, model::load_model(base_dir, opts));
    if (base->config().vocab_size != model->config().vocab_size) {
      return base::invalid_argument(base_dir + ": vocab size " + std::to_string(base->config().vocab_size) +
                                    " differs from " + model_dir + "'s " +
                                    std::to_string(model->config().vocab_size));
    }
  }
  const int64_t vocab = model->config().vocab_size;
  for (int32_t t : tokens) {
    if (t < 0 || t >= vocab) return base::invalid_argument("token id " + std::to_string(t) + " out of range");
  }
  // Runs one window: the first half for context only, the second half returning its logits.
  auto run_window = [&](model::Model& m, const int32_t* w) -> base::Result<std::vector<float>> {
    auto cache = m.new_kv_cache();
    NIBBLE_TRY(m.forward(std::span<const int32_t>(w, static_cast<size_t>(first)), 0, *cache, 1).status());
    NIBBLE_ASSIGN_OR_RETURN(auto logits, m.forward(std::span<const int32_t>(w + first, static_cast<size_t>(ctx - first)),
                                                   first, *cache, ctx - first));
    return std::vector<float>(logits.begin(), logits.end());
  };
  EvalResult r;
  r.ctx = ctx;
  r.num_windows = num_windows;
  r.has_base = base != nullptr;
  double nll = 0.0, nll_base = 0.0, kl = 0.0;
  int64_t agree = 0;
  for (int64_t wi = 0; wi < num_windows; ++wi) {
    const int32_t* w = tokens.data() + wi * ctx;
    NIBBLE_ASSIGN_OR_RETURN(std::vector<float> lm, run_window(*model, w));
    std::vector<float> lb;
    if (base) {
      NIBBLE_ASSIGN_OR_RETURN(lb, run_window(*base, w));
    }
    for (int64_t j = 0; j + 1 < ctx - first; ++j) {  // row j = position first + j
      const int32_t target = w[first + j + 1];
      const float* row = lm.data() + j * vocab;
      if (base) {
        const RowStats s = compare_rows(row, lb.data() + j * vocab, vocab, target);
        nll += s.nll_model;
        nll_base += s.nll_base;
        kl += s.kl;
        r.max_kl = std::max(r.max_kl, s.kl);
        agree += s.top1_equal ? 1 : 0;
      } else {
        nll += row_nll(row, vocab, target);
      }
      ++r.num_scored;
    }
  }
  const auto n = static_cast<double>(r.num_scored);
  r.mean_nll = nll / n;
  r.perplexity = std::exp(r.mean_nll);
  if (base) {
    r.base_perplexity = std::exp(nll_base / n);
    r.mean_kl = kl / n;
    r.top1_agreement = static_cast<double>(agree) / n;
  }
  return r;
}

}  // namespace nibble::quant
