// This machine's roofline for `nibble bench`: read bandwidth from a streaming-read probe over a
// buffer much larger than the caches (all pool threads, each over its own first-touched slice),
// and fp32 FMA peak from independent FMA chains on every pool thread. Both use the kernel table's
// probes, so they run in the same ISA as the model's kernels.
#pragma once

#include <cstdint>

#include "base/thread_pool.h"
#include "kernels/kernel_table.h"
#include "model/config.h"

namespace nibble::bench {

struct Roofline {
  double read_bytes_per_s = 0;  // best pass of the streaming read
  double fma_flops_per_s = 0;   // fp32 FLOP/s (an FMA counts 2), all threads
  int num_threads = 0;
};

// Reads a buffer of buffer_bytes `num_passes` times; returns the best pass's bytes/s.
double measure_read_bandwidth(const kernels::KernelTable& table, base::ThreadPool& pool,
                              int64_t buffer_bytes = int64_t{512} << 20, int num_passes = 5);

// Runs the FMA probe on every pool thread for about `seconds`; returns FLOP/s.
double measure_fma_peak(const kernels::KernelTable& table, base::ThreadPool& pool, double seconds = 0.3);

Roofline measure_roofline(const kernels::KernelTable& table, base::ThreadPool& pool);

// What one token costs a Llama-style decoder (model/layers.h), for the roofline ratios.
struct TokenCost {
  double matmul_params = 0;       // weights multiplied per token (all layers' projections; for
                                  // mixture-of-experts layers the router and top-k experts only)
  double stored_matmul_params = 0;  // projections in the checkpoint (every expert)
  double lm_head_params = 0;      // vocab_size x hidden_size
  double kv_bytes_per_pos = 0;    // K and V of one position, all layers (fp32 cache)
  double attn_flops_per_pos = 0;  // q.k and p.v FLOPs per (query, key) pair, all layers
};
TokenCost token_cost(const model::ModelConfig& config);

// Decode: bytes read per token = the weight bytes a token reads (every projection and the lm_head
// once; of a mixture-of-experts layer only the top-k experts it is routed to) + the KV cache of
// `context` positions.
double decode_bytes_per_token(const TokenCost& cost, double weight_bytes_read, double context);

// The weight bytes one decode step reads, from the checkpoint's loaded bytes: all of them when the
// lm_head is tied to the embeddings (norms are noise), else all but the embedding table (one row
// is gathered), taking the embedding's share of the bytes as its share of the parameters (exact
// when every tensor has the same format).
double weight_bytes_read_per_token(const model::ModelConfig& config, double weight_bytes);

// Prefill of num_tokens from position 0: FLOPs per token = 2 x projections + causal attention
// (mean context (num_tokens + 1) / 2) + the lm_head of the last token spread over the prompt.
double prefill_flops_per_token(const TokenCost& cost, int64_t num_tokens);

}  // namespace nibble::bench
