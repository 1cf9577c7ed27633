#include "plan/estimate.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <map>

namespace nibble::plan {
namespace {

constexpr int kNumClasses = 3;  // ComputeClass values
constexpr int64_t kAttentionTileKeys = 256;
constexpr int64_t kActivationBytes = 4;  // F32 activations
constexpr int kMaxNodes = 64;
constexpr int64_t kMaxContext = int64_t{1} << 31;
constexpr int64_t kMaxPrefillChunks = 1 << 20;

int class_idx(ComputeClass c) {
  return static_cast<int>(c);
}

// Byte counts computed in double (products of user-given sizes), clamped into int64.
int64_t clamp_bytes(double bytes) {
  return static_cast<int64_t>(std::ceil(std::min(bytes, 4e18)));
}

// Everything the speed model needs from the placed tensors.
struct Costs {
  double static_bytes = 0;     // read every step: non-routed tensors, lm_head (or tied table)
  double routed_bytes = 0;     // all routed experts of all layers
  double embed_row_bytes = 0;  // one embedding row, read per token (0 when tied)
  std::array<double, kNumClasses> static_flops{};   // per token, non-routed Linears (no lm_head)
  std::array<double, kNumClasses> routed_flops{};   // per token if every expert ran
  std::array<double, kNumClasses> lm_head_flops{};  // per token that needs logits
  double active_fraction = 1;                       // k / E
  int64_t num_experts = 0;
  int64_t top_k = 0;
};

struct Model {
  const ModelShape& shape;
  KvLayout kv;
  Costs costs;
  int64_t weight_bytes = 0;  // held in memory: checkpoint bytes + the loader's copies
};

double distinct_fraction(const Costs& c, double num_tokens) {
  if (c.num_experts <= 0) return 0;
  return expected_distinct_experts(c.num_experts, c.top_k, static_cast<int64_t>(num_tokens)) /
         static_cast<double>(c.num_experts);
}

// Σ_{i=first+1}^{last} min(i, window): keys each query attends to (window 0: no cap).
double attended_keys(int64_t first, int64_t last, int64_t window) {
  auto prefix = [window](int64_t n) -> double {  // Σ_{i=1}^{n} min(i, w)
    const double nn = static_cast<double>(n);
    if (window <= 0 || n <= window) return nn * (nn + 1) / 2;
    const double w = static_cast<double>(window);
    return w * (w + 1) / 2 + (nn - w) * w;
  };
  return prefix(last) - prefix(first);
}

// Attention FLOPs (QK and PV) of queries at positions (first, last] summed over layers.
double attention_flops(const ModelShape& m, int64_t first, int64_t last, bool decode) {
  double per_key = 0;  // FLOPs per (query, key) pair in one layer
  if (m.mla) {
    const MlaShape& a = *m.mla;
    per_key = decode ? 2.0 * m.num_heads * (2 * a.kv_lora_rank + a.qk_rope_head_dim)  // absorbed
                     : 2.0 * m.num_heads * (a.qk_nope_head_dim + a.qk_rope_head_dim + a.v_head_dim);
  } else {
    per_key = 4.0 * m.num_heads * m.head_dim;
  }
  const int64_t num_sliding =
      m.sliding_window > 0 ? std::count(m.layer_is_sliding.begin(), m.layer_is_sliding.end(), true) : 0;
  const int64_t num_full = m.num_layers - num_sliding;
  return per_key * (static_cast<double>(num_full) * attended_keys(first, last, 0) +
                    static_cast<double>(num_sliding) * attended_keys(first, last, m.sliding_window));
}

// F32 workspace for one step of `step_tokens` tokens and `num_seqs` sequences' logits.
int64_t activation_bytes(const ModelShape& m, int64_t step_tokens, int64_t num_seqs) {
  const int64_t h = m.hidden_size;
  int64_t attn = 0;
  if (m.mla) {
    const MlaShape& a = *m.mla;
    attn = a.q_lora_rank + m.num_heads * (a.qk_nope_head_dim + a.qk_rope_head_dim) + a.kv_lora_rank +
           a.qk_rope_head_dim + m.num_heads * (a.qk_nope_head_dim + a.v_head_dim) +
           m.num_heads * a.v_head_dim;
  } else {
    attn = (m.num_heads + 2 * m.num_kv_heads) * m.head_dim + m.num_heads * m.head_dim;
  }
  const int64_t moe_width = m.moe.num_experts_per_tok * m.moe.expert_intermediate +
                            m.moe.num_shared_experts * m.moe.expert_intermediate;
  const int64_t mlp = 3 * std::max(m.intermediate_size, moe_width) + m.moe.num_experts;
  const int64_t per_token = 2 * h + attn + mlp;
  const int64_t tile = m.num_heads * kAttentionTileKeys;
  const double bytes = (static_cast<double>(step_tokens) * static_cast<double>(per_token + tile) +
                        static_cast<double>(num_seqs) * static_cast<double>(m.vocab_size)) *
                       kActivationBytes;
  return clamp_bytes(bytes);
}

struct Layout {  // how one node holds the model
  int nodes = 1;
  bool tensor_parallel = true;
};

double node_kv_fraction(const ModelShape& m, const Layout& lay) {
  if (lay.nodes <= 1) return 1;
  if (!lay.tensor_parallel) return 1.0 / lay.nodes;
  if (m.mla) return 1;  // the latent cache is not split by heads: every rank holds all of it
  const int64_t heads_per_node = std::max<int64_t>(1, (m.num_kv_heads + lay.nodes - 1) / lay.nodes);
  return static_cast<double>(heads_per_node) / static_cast<double>(m.num_kv_heads);
}

MemoryPlan plan_memory(const Model& model, const DeviceProfile& d, const PlanOptions& o, const Layout& lay,
                       int64_t context, int64_t concurrency) {
  const ModelShape& m = model.shape;
  MemoryPlan p;
  p.usable_bytes = d.usable_memory_bytes;
  p.margin_bytes = d.usable_memory_bytes * d.memory_margin_fraction;
  p.budget_bytes = p.usable_bytes - p.margin_bytes;
  p.weight_bytes = (model.weight_bytes + lay.nodes - 1) / lay.nodes;
  const double kv = static_cast<double>(model.kv.bytes_per_sequence(context)) *
                    static_cast<double>(concurrency) * node_kv_fraction(m, lay);
  p.kv_bytes = clamp_bytes(kv);
  const int64_t step_tokens = std::min(std::max(o.prefill_chunk_tokens, concurrency), concurrency * context);
  p.activation_bytes = activation_bytes(m, step_tokens, concurrency);
  p.overhead_bytes = static_cast<int64_t>(d.runtime_overhead_bytes);
  p.free_bytes =
      p.budget_bytes - (static_cast<double>(p.weight_bytes) + static_cast<double>(p.kv_bytes) +
                        static_cast<double>(p.activation_bytes) + static_cast<double>(p.overhead_bytes));
  p.fits = p.free_bytes >= 0;
  return p;
}

// Time of one forward step over `num_tokens` new tokens on one node holding 1/nodes of the work.
struct StepCost {
  double bytes = 0;
  std::array<double, kNumClasses> flops{};
};

double step_time(const StepCost& c, const DeviceProfile& d, bool* compute_bound) {
  const double t_mem = c.bytes / (d.bandwidth_bytes_per_s * d.decode_efficiency);
  double t_compute = 0;
  for (int k = 0; k < kNumClasses; ++k) {
    if (c.flops[static_cast<size_t>(k)] > 0) {
      t_compute += c.flops[static_cast<size_t>(k)] /
                   (d.peak_flops(static_cast<ComputeClass>(k)) * d.prefill_efficiency);
    }
  }
  if (compute_bound) *compute_bound = t_compute > t_mem;
  return std::max(t_mem, t_compute);
}

// Decode step for `batch` sequences at `context` tokens each, for 1/share of the model.
StepCost decode_cost(const Model& model, int64_t batch, int64_t context, double share, double kv_share) {
  const Costs& c = model.costs;
  StepCost s;
  const double b = static_cast<double>(batch);
  s.bytes = (c.static_bytes + c.routed_bytes * distinct_fraction(c, b) + b * c.embed_row_bytes) / share +
            b * static_cast<double>(model.kv.bytes_read(context)) * kv_share;
  for (int k = 0; k < kNumClasses; ++k) {
    const size_t i = static_cast<size_t>(k);
    s.flops[i] = b * (c.static_flops[i] + c.routed_flops[i] * c.active_fraction + c.lm_head_flops[i]) / share;
  }
  const size_t bf16 = static_cast<size_t>(class_idx(ComputeClass::kBf16));
  s.flops[bf16] += b * attention_flops(model.shape, context - 1, context, /*decode=*/true) / share;
  return s;
}

// Prefill chunk of positions (first, last] of one prompt; `final` chunk computes the logits.
StepCost prefill_cost(const Model& model, int64_t first, int64_t last, bool final_chunk, double share) {
  const Costs& c = model.costs;
  StepCost s;
  const double n = static_cast<double>(last - first);
  s.bytes = (c.static_bytes + c.routed_bytes * distinct_fraction(c, n) + n * c.embed_row_bytes) / share +
            static_cast<double>(model.kv.bytes_read(first)) / share;
  for (int k = 0; k < kNumClasses; ++k) {
    const size_t i = static_cast<size_t>(k);
    s.flops[i] = (n * (c.static_flops[i] + c.routed_flops[i] * c.active_fraction) +
                  (final_chunk ? c.lm_head_flops[i] : 0)) /
                 share;
  }
  const size_t bf16 = static_cast<size_t>(class_idx(ComputeClass::kBf16));
  s.flops[bf16] += attention_flops(model.shape, first, last, /*decode=*/false) / share;
  return s;
}

// Ring all-reduce of `bytes` over `nodes` devices.
double all_reduce_s(const DeviceProfile& d, int nodes, double bytes) {
  if (nodes <= 1) return 0;
  return d.link_latency_s + 2.0 * (nodes - 1) / nodes * bytes / d.link_bytes_per_s;
}

SpeedPlan plan_speed(const Model& model, const DeviceProfile& d, const PlanOptions& o, const Layout& lay) {
  const ModelShape& m = model.shape;
  SpeedPlan s;
  const int k = lay.nodes;
  const double act_bytes_per_token = static_cast<double>(m.hidden_size) * 2;  // BF16 hidden state
  const int64_t context = o.context_tokens;
  const int64_t batch = o.concurrency;
  if (lay.tensor_parallel) {
    const StepCost c = decode_cost(model, batch, context, k, node_kv_fraction(m, lay));
    const double t = step_time(c, d, &s.decode_compute_bound);
    s.comm_s_per_step = 2.0 * static_cast<double>(m.num_layers) *
                        all_reduce_s(d, k, static_cast<double>(batch) * act_bytes_per_token);
    s.decode_step_s = t + s.comm_s_per_step;
    s.decode_bytes_per_step = c.bytes;
    for (double f : c.flops) s.decode_flops_per_step += f;
  } else {
    // Pipeline: min(B, K) micro-batches; a token passes K stages of 1/K of the layers each.
    const int64_t micro = std::min<int64_t>(batch, k);
    const int64_t micro_batch = (batch + micro - 1) / micro;
    const StepCost c = decode_cost(model, micro_batch, context, k, 1.0 / k);
    const double t_stage = step_time(c, d, &s.decode_compute_bound);
    const double hop =
        d.link_latency_s + static_cast<double>(micro_batch) * act_bytes_per_token / d.link_bytes_per_s;
    s.comm_s_per_step = (k - 1) * hop;
    s.decode_step_s = std::max<double>(k, static_cast<double>(micro)) * t_stage + s.comm_s_per_step;
    s.decode_bytes_per_step = c.bytes;
    for (double f : c.flops) s.decode_flops_per_step += f;
  }
  s.decode_tok_s_per_stream = 1.0 / s.decode_step_s;
  s.decode_tok_s_aggregate = static_cast<double>(batch) / s.decode_step_s;

  // Prefill of one context-long prompt in chunks.
  const int64_t chunk = std::max<int64_t>(1, o.prefill_chunk_tokens);
  double total = 0;
  double compute_s = 0;
  double worst_stage = 0;
  int64_t num_chunks = 0;
  for (int64_t first = 0; first < context; first += chunk) {
    const int64_t last = std::min(context, first + chunk);
    bool bound = false;
    const StepCost c = prefill_cost(model, first, last, last == context, k);
    const double t = step_time(c, d, &bound);
    total += t;
    if (bound) compute_s += t;
    worst_stage = std::max(worst_stage, t);
    ++num_chunks;
    if (lay.tensor_parallel) {
      total += 2.0 * static_cast<double>(m.num_layers) *
               all_reduce_s(d, k, static_cast<double>(last - first) * act_bytes_per_token);
    }
  }
  if (!lay.tensor_parallel && k > 1) {
    // Chunks flow through the stages: (chunks + K − 1) stage times plus K − 1 hops.
    const double hop =
        d.link_latency_s + static_cast<double>(chunk) * act_bytes_per_token / d.link_bytes_per_s;
    total = total + (k - 1) * worst_stage + (k - 1) * hop;
  }
  s.prefill_compute_bound = compute_s > total / 2;
  s.ttft_s = total;
  s.prefill_tok_s = total > 0 ? static_cast<double>(context) / total : 0;
  return s;
}

Costs compute_costs(const ModelShape& m, const std::vector<TensorSpec>& tensors, const PlanOptions& o,
                    std::vector<WeightGroupBytes>* groups, int64_t* weight_bytes, int64_t* copy_bytes,
                    int64_t* num_params, int64_t* active_params) {
  Costs c;
  c.num_experts = m.moe.num_experts;
  c.top_k = m.moe.num_experts_per_tok;
  c.active_fraction =
      c.num_experts > 0 ? static_cast<double>(c.top_k) / static_cast<double>(c.num_experts) : 1;
  std::map<std::pair<int, int>, WeightGroupBytes> by_group;
  double active = 0;
  for (const TensorSpec& t : tensors) {
    const WeightFormatId fmt = tensor_format(m, t, o.format);
    const WeightFormat& f = weight_format(fmt);
    const int64_t bytes = tensor_bytes(t, fmt);
    WeightGroupBytes& g = by_group[{static_cast<int>(t.group), static_cast<int>(fmt)}];
    g.group = t.group;
    g.format = fmt;
    g.num_params += t.num_elems();
    g.bytes += bytes;
    g.scale_bytes += t.count * matrix_scale_bytes(f, t.out_dim, t.in_dim);
    *weight_bytes += bytes;
    if (t.out_dim == 1) *copy_bytes += t.num_elems() * kNibbleLoaderVectorBytes;
    *num_params += t.num_elems();
    const size_t cls = static_cast<size_t>(class_idx(f.compute));
    const double flops = 2.0 * static_cast<double>(t.num_elems());
    if (t.embedding) {
      if (m.tie_word_embeddings) {
        c.static_bytes += static_cast<double>(bytes);  // the table is also the lm_head
        c.lm_head_flops[cls] += flops;
        active += static_cast<double>(t.num_elems());
      } else {
        c.embed_row_bytes += static_cast<double>(bytes) / static_cast<double>(t.out_dim);
      }
    } else if (t.group == Group::kLmHead) {
      c.static_bytes += static_cast<double>(bytes);
      c.lm_head_flops[cls] += flops;
      active += static_cast<double>(t.num_elems());
    } else if (t.routed) {
      c.routed_bytes += static_cast<double>(bytes);
      if (t.linear) {
        c.routed_flops[cls] += flops;
        active += static_cast<double>(t.num_elems()) * c.active_fraction;
      }
    } else {
      c.static_bytes += static_cast<double>(bytes);
      if (t.linear || t.group == Group::kRouter) {
        c.static_flops[cls] += flops;
        active += static_cast<double>(t.num_elems());
      }
    }
  }
  for (auto& [key, g] : by_group) groups->push_back(g);
  *active_params = static_cast<int64_t>(std::llround(active));
  return c;
}

// Largest value in [lo, hi] for which fits(value) holds, assuming monotonic; lo - 1 if none.
template <typename F>
int64_t largest_fitting(int64_t lo, int64_t hi, F fits) {
  if (!fits(lo)) return lo - 1;
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo + 1) / 2;
    if (fits(mid)) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  return lo;
}

}  // namespace

double expected_distinct_experts(int64_t num_experts, int64_t top_k, int64_t num_tokens) {
  if (num_experts <= 0 || num_tokens <= 0) return 0;
  const double e = static_cast<double>(num_experts);
  const double miss = 1.0 - static_cast<double>(std::min(top_k, num_experts)) / e;
  return e * (1.0 - std::pow(miss, static_cast<double>(num_tokens)));
}

int64_t KvLayout::bytes_per_sequence(int64_t num_tokens) const {
  return bytes_for(num_tokens, block_tokens);
}

int64_t KvLayout::bytes_read(int64_t num_tokens) const {
  return bytes_for(num_tokens, 1);
}

int64_t KvLayout::bytes_for(int64_t num_tokens, int64_t block_size) const {
  const int64_t block = std::max<int64_t>(1, block_size);
  auto whole_blocks = [block](int64_t n) { return (n + block - 1) / block * block; };
  const int64_t held = whole_blocks(num_tokens);
  // A paged sliding-window group frees only whole blocks, so besides the window's blocks it holds
  // the partial one the window starts in (engine::max_blocks_per_request with a 1-token step).
  const int64_t window_held = block > 1 ? whole_blocks(sliding_window) + block : sliding_window;
  const int64_t sliding_held = sliding_window > 0 ? std::min(held, window_held) : held;
  return bytes_per_token_full * held + bytes_per_token_sliding * sliding_held;
}

int64_t kv_dtype_bytes(KvDtype dtype) {
  switch (dtype) {
    case KvDtype::kF32:
      return 4;
    case KvDtype::kBf16:
      return 2;
    case KvDtype::kFp8:
      return 1;
  }
  return 2;
}

KvLayout kv_layout(const ModelShape& m, const KvRuntime& runtime) {
  KvLayout kv;
  kv.dtype = runtime.dtype;
  kv.mla = m.mla.has_value();
  kv.block_tokens = runtime.block_tokens;
  kv.sliding_window = runtime.caps_sliding_window ? m.sliding_window : 0;
  const int64_t elem_bytes = kv_dtype_bytes(runtime.dtype);
  // MLA caches the compressed latent and the shared rope key; otherwise K and V per KV head.
  const int64_t per_layer = m.mla ? (m.mla->kv_lora_rank + m.mla->qk_rope_head_dim) * elem_bytes
                                  : 2 * m.num_kv_heads * m.head_dim * elem_bytes;
  for (int64_t l = 0; l < m.num_layers; ++l) {
    if (m.layer_is_sliding[static_cast<size_t>(l)] && m.sliding_window > 0) {
      kv.bytes_per_token_sliding += per_layer;
      ++kv.num_sliding_layers;
    } else {
      kv.bytes_per_token_full += per_layer;
      ++kv.num_full_layers;
    }
  }
  return kv;
}

base::Result<Estimate> estimate(const ModelShape& shape, const DeviceProfile& d, const PlanOptions& o) {
  if (o.context_tokens <= 0 || o.context_tokens > kMaxContext) {
    return base::invalid_argument("--context must be in [1, 2^31], got " + std::to_string(o.context_tokens));
  }
  if (o.prefill_chunk_tokens > 0 && o.context_tokens / o.prefill_chunk_tokens > kMaxPrefillChunks) {
    return base::invalid_argument("--prefill-chunk " + std::to_string(o.prefill_chunk_tokens) +
                                  " splits the context into more than " + std::to_string(kMaxPrefillChunks) +
                                  " chunks");
  }
  if (o.concurrency <= 0 || o.concurrency > (int64_t{1} << 20)) {
    return base::invalid_argument("--concurrency must be in [1, 2^20], got " + std::to_string(o.concurrency));
  }
  if (o.nodes <= 0 || o.nodes > kMaxNodes) {
    return base::invalid_argument("--nodes must be in [1, " + std::to_string(kMaxNodes) + "], got " +
                                  std::to_string(o.nodes));
  }
  if (o.prefill_chunk_tokens <= 0) return base::invalid_argument("prefill chunk must be > 0");
  if (o.nodes > 1 && d.link_bytes_per_s <= 0) {
    return base::invalid_argument("--nodes " + std::to_string(o.nodes) + ": device '" + d.name +
                                  "' has no link bandwidth");
  }
  if (o.format == FormatChoice::kAsIs && !shape.quant.method.empty() &&
      shape.quant.linear_format == WeightFormatId::kBf16) {
    return base::internal_error("quantization scheme without a format");
  }
  if (static_cast<int64_t>(shape.layer_is_sliding.size()) != shape.num_layers ||
      static_cast<int64_t>(shape.layer_is_moe.size()) != shape.num_layers) {
    return base::internal_error("model shape: per-layer lists do not match num_layers");
  }

  Estimate e;
  e.architecture = shape.architecture;
  e.device = d.name;
  e.options = o;
  e.kv_dtype = o.kv_dtype.value_or(o.kv_runtime.dtype);
  e.model_max_context = shape.max_position_embeddings;
  KvRuntime kv_runtime = o.kv_runtime;
  kv_runtime.dtype = e.kv_dtype;

  Model model{shape, kv_layout(shape, kv_runtime), {}, 0};
  const std::vector<TensorSpec> tensors = enumerate_tensors(shape);
  model.costs = compute_costs(shape, tensors, o, &e.weight_groups, &model.weight_bytes, &e.loader_copy_bytes,
                              &e.num_params, &e.active_params_per_token);
  e.weight_bytes = model.weight_bytes;
  model.weight_bytes += e.loader_copy_bytes;  // what the loaded model holds
  e.kv = model.kv;
  e.kv_bytes_per_sequence = model.kv.bytes_per_sequence(o.context_tokens);

  const Layout single{1, true};
  e.memory = plan_memory(model, d, o, single, o.context_tokens, o.concurrency);
  e.speed = plan_speed(model, d, o, single);
  Layout chosen = single;
  if (o.nodes > 1) {
    for (bool tp : {true, false}) {
      const Layout lay{o.nodes, tp};
      ParallelPlan p;
      p.nodes = o.nodes;
      p.memory = plan_memory(model, d, o, lay, o.context_tokens, o.concurrency);
      p.speed = plan_speed(model, d, o, lay);
      (tp ? e.tensor_parallel : e.pipeline_parallel) = p;
    }
    chosen = Layout{o.nodes, true};
  }
  e.fits = chosen.nodes > 1 ? e.tensor_parallel->memory.fits : e.memory.fits;

  e.max_context_at_concurrency = largest_fitting(
      1, kMaxContext, [&](int64_t ctx) { return plan_memory(model, d, o, chosen, ctx, o.concurrency).fits; });
  if (e.max_context_at_concurrency < 0) e.max_context_at_concurrency = 0;
  e.max_concurrency_at_context = largest_fitting(1, int64_t{1} << 20, [&](int64_t b) {
    return plan_memory(model, d, o, chosen, o.context_tokens, b).fits;
  });
  if (e.max_concurrency_at_context < 0) e.max_concurrency_at_context = 0;
  for (int k = 1; k <= kMaxNodes; ++k) {
    if (plan_memory(model, d, o, Layout{k, true}, o.context_tokens, o.concurrency).fits) {
      e.min_nodes = k;
      break;
    }
  }

  e.assumptions = {
      "decode at the full context: every sequence reads its whole KV cache each step",
      "MoE experts chosen uniformly and independently: distinct experts per step = E(1-(1-k/E)^B)",
      "prefill = one prompt of --context tokens in chunks of " + std::to_string(o.prefill_chunk_tokens) +
          " tokens; TTFT = that prefill alone on the device",
      "activations in F32 for max(chunk, concurrency) tokens; attention tiles of 256 keys",
  };
  const bool nibble_kv = o.kv_runtime.dtype == kNibbleKv.dtype &&
                         o.kv_runtime.caps_sliding_window == kNibbleKv.caps_sliding_window &&
                         o.kv_runtime.block_tokens == kNibbleKv.block_tokens;
  std::string kv_note = std::string("KV cache in ") + (e.kv_dtype == KvDtype::kF32   ? "f32"
                                                       : e.kv_dtype == KvDtype::kFp8 ? "fp8"
                                                                                     : "bf16");
  kv_note += o.kv_dtype ? " (--kv-dtype)" : nibble_kv ? " (what nibble's engine allocates)" : "";
  kv_note += ", " + std::to_string(o.kv_runtime.block_tokens) + "-token blocks; sliding-window layers ";
  kv_note +=
      o.kv_runtime.caps_sliding_window ? "hold at most the window (freed blocks)" : "hold every token";
  e.assumptions.push_back(kv_note);
  if (shape.quant.kv_dtype && !o.kv_dtype)
    e.assumptions.push_back("the checkpoint ships an FP8 KV scheme; nibble's engine does not use it");
  if (shape.arch == Arch::kDeepseekV3)
    e.assumptions.push_back("DeepSeek-V3 MTP layer not loaded (as for plain decoding)");
  if (d.kind == DeviceKind::kCpu)
    e.assumptions.push_back("CPU: one matmul peak for every format (the kernels decode every format in registers)");
  return e;
}

}  // namespace nibble::plan
