// `nibble bench MODEL`: offline prefill (pp) and decode (tg) speed like llama-bench, set against
// this machine's roofline (bench/roofline.h).
#pragma once

#include <cstdint>
#include <string>

#include "base/status.h"

namespace nibble::bench {

struct OfflineOptions {
  std::string model_dir;
  int64_t num_prompt_tokens = 512;  // -p; 0 skips prefill
  int64_t num_gen_tokens = 128;     // -n; 0 skips decode
  int num_threads = 0;              // -t; 0 = all available CPUs
  int num_reps = 5;                 // -r
};

struct MeanStd {
  double mean = 0;
  double std = 0;  // sample standard deviation over reps (0 for one rep)
};

struct OfflineResult {
  std::string model_dir;
  std::string architecture;
  std::string isa;  // kernel table in use
  int num_threads = 0;
  int num_reps = 0;
  int64_t num_prompt_tokens = 0;
  int64_t num_gen_tokens = 0;
  double weight_bytes = 0;
  double bytes_per_param = 0;
  MeanStd prefill_tok_s;  // pp
  MeanStd decode_tok_s;   // tg
  double read_bytes_per_s = 0;
  double fma_flops_per_s = 0;
  double decode_bytes_per_token = 0;  // weights + KV at the mean decode context
  double prefill_flops_per_token = 0;
  double decode_roofline_tok_s = 0;   // read_bytes_per_s / decode_bytes_per_token
  double prefill_roofline_tok_s = 0;  // fma_flops_per_s / prefill_flops_per_token
};

base::Result<OfflineResult> run_offline_bench(const OfflineOptions& options);

// llama-bench-like table (one row for pp, one for tg) plus the roofline lines.
std::string format_offline_text(const OfflineResult& r);
std::string format_offline_json(const OfflineResult& r);

}  // namespace nibble::bench
