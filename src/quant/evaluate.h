// `nibble eval`: perplexity over a token stream in windows (llama-perplexity's scheme: each window
// of ctx tokens is run from scratch and only its second half is scored), and with a base model the
// KL divergence KL(P_base || P_model) of the next-token distributions, top-1 agreement and max KL.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"

namespace nibble::quant {

struct EvalResult {
  int64_t ctx = 0;
  int64_t num_windows = 0;
  int64_t num_scored = 0;         // predictions scored (per model)
  double mean_nll = 0.0;          // nats per token
  double perplexity = 0.0;        // exp(mean_nll)
  bool has_base = false;
  double base_perplexity = 0.0;
  double mean_kl = 0.0;           // nats, KL(P_base || P_model) averaged over scored positions
  double max_kl = 0.0;
  double top1_agreement = 0.0;    // fraction of positions where both argmaxes agree
};

// base_dir empty: perplexity only. Windows of `ctx` tokens (the last partial window is dropped;
// fewer than ctx tokens in all is an error).
base::Result<EvalResult> evaluate(const std::string& model_dir, const std::string& base_dir,
                                  const std::vector<int32_t>& tokens, int64_t ctx, int num_threads);

// log-softmax statistics of one logits row, in double: KL(p || q) for p = softmax(base),
// q = softmax(model), and the NLL of `target` under each.
struct RowStats {
  double kl = 0.0;
  double nll_model = 0.0;
  double nll_base = 0.0;
  bool top1_equal = false;
};
RowStats compare_rows(const float* model_logits, const float* base_logits, int64_t vocab, int32_t target);
double row_nll(const float* logits, int64_t vocab, int32_t target);

}  // namespace nibble::quant
