#include "bench/roofline.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <memory>
#include <vector>

#include "model/moe.h"

namespace nibble::bench {
namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

double measure_read_bandwidth(const kernels::KernelTable& table, base::ThreadPool& pool, int64_t buffer_bytes,
                              int num_passes) {
  const int64_t num_floats = buffer_bytes / static_cast<int64_t>(sizeof(float));
  std::unique_ptr<float[]> buffer(new float[static_cast<size_t>(num_floats)]);
  float* data = buffer.get();
  const int num_threads = pool.num_threads();
  const int64_t slice = (num_floats + num_threads - 1) / num_threads;
  // First touch by the thread that will read the slice (page placement on NUMA machines).
  auto touch = [&](int64_t t, int) {
    const int64_t begin = t * slice, end = std::min(num_floats, begin + slice);
    if (begin < end) std::memset(data + begin, 0, static_cast<size_t>(end - begin) * sizeof(float));
  };
  pool.run(num_threads, base::TaskFn(touch));
  std::vector<float> sinks(static_cast<size_t>(num_threads));
  auto read = [&](int64_t t, int) {
    const int64_t begin = t * slice, end = std::min(num_floats, begin + slice);
    if (begin < end) sinks[static_cast<size_t>(t)] = table.read_probe(data + begin, end - begin);
  };
  double best = 0.0;
  for (int pass = 0; pass < num_passes; ++pass) {
    const double t0 = now_s();
    pool.run(num_threads, base::TaskFn(read));
    const double dt = now_s() - t0;
    if (dt > 0) best = std::max(best, static_cast<double>(num_floats) * sizeof(float) / dt);
  }
  return best;
}

double measure_fma_peak(const kernels::KernelTable& table, base::ThreadPool& pool, double seconds) {
  float sink = 0.0f;
  // Calibrate the iterations to `seconds` on one thread, then run them on all at once.
  int64_t iters = 1 << 16;
  for (;;) {
    const double t0 = now_s();
    table.fma_probe(iters, &sink);
    const double dt = now_s() - t0;
    if (dt > seconds / 8 || iters > (int64_t{1} << 40)) {
      iters = static_cast<int64_t>(static_cast<double>(iters) * seconds / dt) + 1;
      break;
    }
    iters *= 4;
  }
  const int num_threads = pool.num_threads();
  std::vector<double> flops(static_cast<size_t>(num_threads));
  std::vector<float> sinks(static_cast<size_t>(num_threads));
  auto run = [&](int64_t t, int) {
    flops[static_cast<size_t>(t)] = table.fma_probe(iters, &sinks[static_cast<size_t>(t)]);
  };
  double best = 0.0;
  for (int pass = 0; pass < 3; ++pass) {
    const double t0 = now_s();
    pool.run(num_threads, base::TaskFn(run));
    const double dt = now_s() - t0;
    double total = 0.0;
    for (double f : flops) total += f;
    if (dt > 0) best = std::max(best, total / dt);
  }
  return best;
}

Roofline measure_roofline(const kernels::KernelTable& table, base::ThreadPool& pool) {
  Roofline r;
  r.num_threads = pool.num_threads();
  r.read_bytes_per_s = measure_read_bandwidth(table, pool);
  r.fma_flops_per_s = measure_fma_peak(table, pool);
  return r;
}

TokenCost token_cost(const model::ModelConfig& config) {
  const double hidden = static_cast<double>(config.hidden_size);
  const double q_dim = static_cast<double>(config.num_attention_heads * config.head_dim);
  const double kv_dim = static_cast<double>(config.num_key_value_heads * config.head_dim);
  const double inter = static_cast<double>(config.intermediate_size);
  const double layers = static_cast<double>(config.num_hidden_layers);
  TokenCost c;
  // q, k, v, o projections and the gated MLP's gate, up, down; a mixture-of-experts layer has a
  // router [E, H] and E experts of gate/up/down [I_e, H] (gpt-oss: gate_up [2 I_e, H]), of which a
  // token multiplies top-k.
  const double attn = hidden * q_dim + 2 * hidden * kv_dim + q_dim * hidden;
  for (int64_t i = 0; i < config.num_hidden_layers; ++i) {
    if (model::is_sparse_layer(config, i)) {
      const double experts = static_cast<double>(config.moe.num_experts);
      const double expert = 3 * hidden * static_cast<double>(config.moe.expert_intermediate_size);
      const double router = experts * hidden;
      c.matmul_params += attn + router + static_cast<double>(config.moe.num_experts_per_tok) * expert;
      c.stored_matmul_params += attn + router + experts * expert;
    } else {
      c.matmul_params += attn + 3 * hidden * inter;
      c.stored_matmul_params += attn + 3 * hidden * inter;
    }
  }
  c.lm_head_params = static_cast<double>(config.vocab_size) * hidden;
  c.kv_bytes_per_pos = layers * 2 * kv_dim * sizeof(float);
  c.attn_flops_per_pos = layers * 4 * q_dim;  // q.k and p.v, 2 FLOPs each per element
  return c;
}

double decode_bytes_per_token(const TokenCost& cost, double weight_bytes_read, double context) {
  return weight_bytes_read + cost.kv_bytes_per_pos * context;
}

double weight_bytes_read_per_token(const model::ModelConfig& config, double weight_bytes) {
  if (config.tie_word_embeddings) return weight_bytes;
  const TokenCost cost = token_cost(config);
  const double hidden = static_cast<double>(config.hidden_size);
  const double total = cost.stored_matmul_params + 2 * cost.lm_head_params +
                       hidden * (2 * static_cast<double>(config.num_hidden_layers) + 1);
  return weight_bytes * (1.0 - cost.lm_head_params / total);
}

double prefill_flops_per_token(const TokenCost& cost, int64_t num_tokens) {
  const double n = static_cast<double>(num_tokens);
  return 2 * cost.matmul_params + cost.attn_flops_per_pos * (n + 1) / 2 + 2 * cost.lm_head_params / n;
}

}  // namespace nibble::bench
