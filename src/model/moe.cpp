#include "model/moe.h"

#include <algorithm>
#include <cmath>

#include "kernels/ops.h"

namespace nibble::model {
namespace {

const formats::BlockFormat& mxfp4_format() {
  const formats::BlockFormat* f = formats::find_block_format("mxfp4");
  NIBBLE_CHECK(f != nullptr, "formats table has no mxfp4 row");
  return *f;
}

std::string where(const WeightLoader& loader, const std::string& name) {
  return loader.checkpoint().dir() + ": tensor '" + name + "'";
}

// The slices [expert] of a gpt-oss MXFP4 expert tensor pair, blocks [E, N, K/32, 16] and scales
// [E, N, K/32], as kernel-table MXFP4 views: row n of expert e is blocks[e, n] (K/2 bytes, element
// 2j in the low nibble of byte j) with scales[e, n] (one E8M0 per 32 columns).
base::Status load_mxfp4_experts(const ModelConfig& config, WeightLoader& loader, const std::string& prefix,
                                int64_t num_rows, int64_t num_cols, std::vector<ExpertWeights>& experts,
                                kernels::MatWeight ExpertWeights::*member) {
  const int64_t num_experts = config.moe.num_experts;
  const int64_t blocks_per_row = num_cols / 32;
  NIBBLE_ASSIGN_OR_RETURN(
      const io::TensorInfo* blocks,
      loader.raw(prefix + "_blocks", {num_experts, num_rows, blocks_per_row, 16}, tensor::DType::kU8));
  NIBBLE_ASSIGN_OR_RETURN(
      const io::TensorInfo* scales,
      loader.raw(prefix + "_scales", {num_experts, num_rows, blocks_per_row}, tensor::DType::kU8));
  const formats::BlockFormat& f = mxfp4_format();
  NIBBLE_ASSIGN_OR_RETURN(const formats::TensorLayout layout, formats::tensor_layout(f, num_rows, num_cols));
  NIBBLE_CHECK(
      layout.row_bytes == blocks_per_row * 16 && layout.scale_cols == blocks_per_row && layout.tile_rows == 1,
      "mxfp4 layout disagrees with gpt-oss blocks");
  const auto expert_data_bytes = static_cast<size_t>(layout.data_bytes());
  const auto expert_scale_bytes = static_cast<size_t>(layout.num_scales());
  for (int64_t e = 0; e < num_experts; ++e) {
    const uint8_t* expert_scales = scales->data + static_cast<size_t>(e) * expert_scale_bytes;
    const base::Status st = formats::check_block_scales(f, layout, {expert_scales, expert_scale_bytes});
    if (!st.ok()) {
      return base::corrupt(where(loader, prefix + "_scales") + ": expert " + std::to_string(e) + ": " +
                           std::string(st.message()));
    }
    kernels::MatWeight& m = experts[static_cast<size_t>(e)].*member;
    m.format = kernels::WeightFormat::kMXFP4;
    m.num_rows = num_rows;
    m.num_cols = num_cols;
    m.row_bytes = layout.row_bytes;
    m.data = blocks->data + static_cast<size_t>(e) * expert_data_bytes;
    m.block_scales = expert_scales;
    m.scale_row_bytes = layout.scale_cols;  // one byte per E8M0 scale
    m.scale_tile_rows = 1;
    m.tensor_scale = 1.0f;
  }
  return base::ok_status();
}

// Indices of the k largest values of v[n] in descending order (ties: the lower index first, as
// torch.topk returns them on CPU for distinct values).
void top_k(const float* v, int64_t n, int64_t k, int32_t* ids) {
  for (int64_t j = 0; j < k; ++j) {
    int64_t best = -1;
    for (int64_t i = 0; i < n; ++i) {
      bool taken = false;
      for (int64_t p = 0; p < j; ++p) taken = taken || ids[p] == i;
      if (taken) continue;
      if (best < 0 || v[i] > v[best]) best = i;
    }
    ids[j] = static_cast<int32_t>(best);
  }
}

}  // namespace

uint64_t matrix_bytes(const kernels::MatWeight& w) {
  uint64_t bytes = static_cast<uint64_t>(w.row_bytes * w.num_rows);
  if (w.block_scales != nullptr && w.num_rows > 0) {
    const int64_t tile = std::max<int64_t>(1, w.scale_tile_rows);
    bytes += static_cast<uint64_t>((w.num_rows + tile - 1) / tile * w.scale_row_bytes);
  }
  return bytes;
}

uint64_t expert_bytes(const ExpertWeights& e) {
  return matrix_bytes(e.gate_up) + matrix_bytes(e.gate) + matrix_bytes(e.up) + matrix_bytes(e.down);
}

double decode_weight_bytes_per_token(const ModelConfig& config, uint64_t weight_bytes,
                                     const DecoderWeights& dense, const std::vector<MoeLayerWeights>& moe) {
  auto bytes = static_cast<double>(weight_bytes);
  if (!config.tie_word_embeddings) bytes -= static_cast<double>(matrix_bytes(dense.embed_tokens));
  for (const MoeLayerWeights& layer : moe) {
    if (layer.experts.empty()) continue;
    double all = static_cast<double>(layer.expert_bias_bytes);
    for (const ExpertWeights& e : layer.experts) all += static_cast<double>(expert_bytes(e));
    const double active_share =
        static_cast<double>(config.moe.num_experts_per_tok) / static_cast<double>(layer.experts.size());
    bytes -= all * (1.0 - active_share);
  }
  return bytes;
}

namespace {
MoeObserver g_moe_observer = nullptr;
void* g_moe_observer_ctx = nullptr;
}  // namespace

void set_moe_observer(MoeObserver fn, void* ctx) {
  g_moe_observer = fn;
  g_moe_observer_ctx = ctx;
}

bool is_sparse_layer(const ModelConfig& config, int64_t layer_idx) {
  const MoeConfig& m = config.moe;
  if (m.num_experts <= 0) return false;
  if (std::find(m.mlp_only_layers.begin(), m.mlp_only_layers.end(), layer_idx) != m.mlp_only_layers.end())
    return false;
  return (layer_idx + 1) % m.decoder_sparse_step == 0;
}

base::Result<MoeLayerWeights> load_gpt_oss_moe(const ModelConfig& config, WeightLoader& loader,
                                               int64_t layer_idx) {
  const int64_t hidden = config.hidden_size;
  const int64_t inter = config.moe.expert_intermediate_size;
  const int64_t num_experts = config.moe.num_experts;
  const std::string p = "model.layers." + std::to_string(layer_idx) + ".mlp.";
  MoeLayerWeights w;
  NIBBLE_ASSIGN_OR_RETURN(w.router, loader.matrix(p + "router.weight", num_experts, hidden));
  NIBBLE_ASSIGN_OR_RETURN(w.router_bias, loader.vector(p + "router.bias", num_experts));
  w.experts.resize(static_cast<size_t>(num_experts));
  NIBBLE_TRY(load_mxfp4_experts(config, loader, p + "experts.gate_up_proj", 2 * inter, hidden, w.experts,
                                &ExpertWeights::gate_up));
  NIBBLE_TRY(load_mxfp4_experts(config, loader, p + "experts.down_proj", hidden, inter, w.experts,
                                &ExpertWeights::down));
  NIBBLE_ASSIGN_OR_RETURN(std::vector<float> gate_up_bias,
                          loader.floats(p + "experts.gate_up_proj_bias", {num_experts, 2 * inter}));
  NIBBLE_ASSIGN_OR_RETURN(std::vector<float> down_bias,
                          loader.floats(p + "experts.down_proj_bias", {num_experts, hidden}));
  for (const char* bias : {"experts.gate_up_proj_bias", "experts.down_proj_bias"}) {
    const io::TensorInfo* t = loader.checkpoint().find(p + bias);
    if (t != nullptr) w.expert_bias_bytes += t->num_bytes;
  }
  for (int64_t e = 0; e < num_experts; ++e) {
    ExpertWeights& ex = w.experts[static_cast<size_t>(e)];
    ex.gate_up_bias.assign(gate_up_bias.begin() + e * 2 * inter, gate_up_bias.begin() + (e + 1) * 2 * inter);
    ex.down_bias.assign(down_bias.begin() + e * hidden, down_bias.begin() + (e + 1) * hidden);
  }
  return w;
}

base::Result<MoeLayerWeights> load_qwen3_moe_layer(const ModelConfig& config, WeightLoader& loader,
                                                   int64_t layer_idx) {
  const int64_t hidden = config.hidden_size;
  const int64_t inter = config.moe.expert_intermediate_size;
  const int64_t num_experts = config.moe.num_experts;
  const std::string p = "model.layers." + std::to_string(layer_idx) + ".mlp.";
  MoeLayerWeights w;
  NIBBLE_ASSIGN_OR_RETURN(w.router, loader.matrix(p + "gate.weight", num_experts, hidden));
  w.experts.resize(static_cast<size_t>(num_experts));
  for (int64_t e = 0; e < num_experts; ++e) {
    ExpertWeights& ex = w.experts[static_cast<size_t>(e)];
    const std::string q = p + "experts." + std::to_string(e) + ".";
    NIBBLE_ASSIGN_OR_RETURN(ex.gate, loader.matrix(q + "gate_proj.weight", inter, hidden));
    NIBBLE_ASSIGN_OR_RETURN(ex.up, loader.matrix(q + "up_proj.weight", inter, hidden));
    NIBBLE_ASSIGN_OR_RETURN(ex.down, loader.matrix(q + "down_proj.weight", hidden, inter));
  }
  return w;
}

MoeBlock::MoeBlock(const ModelConfig& config, const LoadOptions& options, MoeKind kind, int num_threads)
    : config_(config),
      kind_(kind),
      num_experts_(config.moe.num_experts),
      top_k_(config.moe.num_experts_per_tok),
      inter_(config.moe.expert_intermediate_size) {
  const auto b = static_cast<size_t>(options.max_batch_tokens);
  const auto hidden = static_cast<size_t>(config.hidden_size);
  const auto k = static_cast<size_t>(top_k_);
  router_logits_.resize(b * static_cast<size_t>(num_experts_));
  topk_ids_.resize(b * k);
  topk_weights_.resize(b * k);
  expert_begin_.resize(static_cast<size_t>(num_experts_) + 1);
  assign_token_.resize(b * k);
  assign_weight_.resize(b * k);
  xe_.resize(b * k * hidden);
  gate_up_.resize(b * k * 2 * static_cast<size_t>(inter_));
  act_.resize(b * k * static_cast<size_t>(inter_));
  ye_.resize(b * k * hidden);
  out_.resize(b * hidden);
  jobs_.reserve(2 * static_cast<size_t>(num_experts_));
  // At most a few tasks per thread per job, plus one per job.
  tasks_.reserve(static_cast<size_t>(num_experts_) * 2 * (static_cast<size_t>(num_threads) * 4 + 1));
}

void MoeBlock::route(const MoeLayerWeights& layer, const kernels::KernelTable& kernels,
                     base::ThreadPool& pool, const float* h, int64_t num_tokens) {
  const int64_t num_experts = num_experts_;
  const int64_t k = top_k_;
  // router_logits = h · routerᵀ (+ bias), with fp32 activations: the top-k choice is discrete, and
  // an activation rounding step must not flip an expert on a near tie (the router is tiny).
  kernels::matmul_exact(kernels, pool, h, num_tokens, layer.router, router_logits_.data());
  for (int64_t t = 0; t < num_tokens; ++t) {
    float* logits = router_logits_.data() + t * num_experts;
    if (!layer.router_bias.empty()) kernels.axpy(1.0f, layer.router_bias.data(), num_experts, logits);
    int32_t* ids = topk_ids_.data() + t * k;
    float* weights = topk_weights_.data() + t * k;
    if (kind_ == MoeKind::kGptOss) {
      // GptOssTopKRouter: top-k of the logits, softmax over those k.
      top_k(logits, num_experts, k, ids);
      for (int64_t j = 0; j < k; ++j) weights[j] = logits[ids[j]];
      kernels.softmax(weights, k);
    } else {
      // Qwen3MoeTopKRouter: softmax over all experts (fp32), top-k, optional renormalisation.
      kernels.softmax(logits, num_experts);
      top_k(logits, num_experts, k, ids);
      float sum = 0.0f;
      for (int64_t j = 0; j < k; ++j) {
        weights[j] = logits[ids[j]];
        sum += weights[j];
      }
      if (config_.moe.norm_topk_prob) {
        for (int64_t j = 0; j < k; ++j) weights[j] /= sum;
      }
    }
  }
  // Group the (token, expert) assignments by expert, tokens in order within an expert.
  std::fill(expert_begin_.begin(), expert_begin_.end(), 0);
  for (int64_t i = 0; i < num_tokens * k; ++i) ++expert_begin_[static_cast<size_t>(topk_ids_[i]) + 1];
  for (int64_t e = 0; e < num_experts; ++e) expert_begin_[e + 1] += expert_begin_[e];
  std::vector<int64_t>& next = expert_begin_;  // reused as a cursor below, restored after
  for (int64_t t = 0; t < num_tokens; ++t) {
    for (int64_t j = 0; j < k; ++j) {
      const auto e = static_cast<size_t>(topk_ids_[t * k + j]);
      const int64_t slot = next[e]++;
      assign_token_[slot] = static_cast<int32_t>(t);
      assign_weight_[slot] = topk_weights_[t * k + j];
    }
  }
  // The cursors now hold each expert's end; shift them back to the beginnings.
  for (int64_t e = num_experts; e > 0; --e) next[e] = next[e - 1];
  next[0] = 0;
}

void MoeBlock::run_jobs(const kernels::KernelTable& kernels, base::ThreadPool& pool) {
  // Work of a job ~ rows x tokens; aim at ~4 tasks per thread over the phase, each at least 16 rows
  // (the SIMD bodies work on row groups) and never more than the job's rows.
  double total_work = 0.0;
  for (const Job& j : jobs_) {
    total_work += static_cast<double>(j.w->num_rows) * static_cast<double>(j.num_tokens);
    ++stats_.expert_matrix_reads;
    stats_.expert_bytes_read += matrix_bytes(*j.w);
  }
  const double task_work = total_work / (4.0 * pool.num_threads());
  tasks_.clear();
  for (size_t ji = 0; ji < jobs_.size(); ++ji) {
    const Job& j = jobs_[ji];
    const int64_t num_rows = j.w->num_rows;
    int64_t rows = static_cast<int64_t>(task_work / static_cast<double>(j.num_tokens));
    rows = std::clamp<int64_t>((rows + 15) / 16 * 16, 16, std::max<int64_t>(num_rows, 16));
    for (int64_t n = 0; n < num_rows; n += rows) {
      tasks_.push_back({static_cast<int32_t>(ji), n, std::min(num_rows, n + rows)});
    }
  }
  auto task = [&](int64_t task_idx, int) {
    const Task& t = tasks_[static_cast<size_t>(task_idx)];
    const Job& j = jobs_[static_cast<size_t>(t.job)];
    const kernels::KernelTable::MatmulFn fn = kernels.matmul[static_cast<int>(j.w->format)];
    fn(j.x, j.num_tokens, *j.w, t.n_begin, t.n_end, j.y, j.ldy);
  };
  if (tasks_.size() == 1) {
    task(0, 0);
  } else if (!tasks_.empty()) {
    pool.run(static_cast<int64_t>(tasks_.size()), base::TaskFn(task));
  }
}

void MoeBlock::forward(const MoeLayerWeights& layer, const kernels::KernelTable& kernels,
                       base::ThreadPool& pool, const float* h, int64_t num_tokens, float* x) {
  const int64_t hidden = config_.hidden_size;
  const int64_t inter = inter_;
  const bool gpt_oss = kind_ == MoeKind::kGptOss;
  route(layer, kernels, pool, h, num_tokens);
  const int64_t num_assign = num_tokens * top_k_;
  if (g_moe_observer != nullptr) g_moe_observer(g_moe_observer_ctx, false, h, num_tokens, hidden);
  // Gather each assignment's input row: xe_[slot] = h[token of slot], grouped by expert.
  for (int64_t i = 0; i < num_assign; ++i) {
    std::copy_n(h + static_cast<int64_t>(assign_token_[static_cast<size_t>(i)]) * hidden, hidden,
                xe_.data() + i * hidden);
  }
  // Phase 1: gate_up (gpt-oss) or gate and up (Qwen3-MoE) of every chosen expert, all in one pool
  // region; experts no token chose are not read at all.
  const int64_t gu_stride = gpt_oss ? 2 * inter : inter;
  jobs_.clear();
  for (int64_t e = 0; e < num_experts_; ++e) {
    const int64_t begin = expert_begin_[static_cast<size_t>(e)];
    const int64_t m = expert_begin_[static_cast<size_t>(e) + 1] - begin;
    if (m == 0) continue;
    const ExpertWeights& ex = layer.experts[static_cast<size_t>(e)];
    ++stats_.experts_run;
    stats_.expert_tokens += static_cast<uint64_t>(m);
    const float* xe = xe_.data() + begin * hidden;
    if (gpt_oss) {
      jobs_.push_back({&ex.gate_up, xe, m, gate_up_.data() + begin * gu_stride, gu_stride});
    } else {
      jobs_.push_back({&ex.gate, xe, m, gate_up_.data() + begin * gu_stride, gu_stride});
      jobs_.push_back({&ex.up, xe, m, act_.data() + begin * inter, inter});
    }
  }
  run_jobs(kernels, pool);
  // Activation of every assignment.
  if (gpt_oss) {
    // GptOssExperts: gate_up = x·W1ᵀ + b1; gate = gate_up[::2] clamped to <= limit, up =
    // gate_up[1::2] clamped to [-limit, limit]; act = gate·sigmoid(alpha·gate)·(up + 1).
    const auto limit = static_cast<float>(config_.moe.swiglu_limit);
    const auto alpha = static_cast<float>(config_.moe.swiglu_alpha);
    for (int64_t e = 0; e < num_experts_; ++e) {
      const int64_t begin = expert_begin_[static_cast<size_t>(e)];
      const int64_t end = expert_begin_[static_cast<size_t>(e) + 1];
      const ExpertWeights& ex = layer.experts[static_cast<size_t>(e)];
      for (int64_t i = begin; i < end; ++i) {
        float* gu = gate_up_.data() + i * gu_stride;
        kernels.axpy(1.0f, ex.gate_up_bias.data(), 2 * inter, gu);
        float* a = act_.data() + i * inter;
        for (int64_t j = 0; j < inter; ++j) {
          const float gate = std::min(gu[2 * j], limit);
          const float up = std::clamp(gu[2 * j + 1], -limit, limit);
          const float glu = gate * (1.0f / (1.0f + std::exp(-(gate * alpha))));
          a[j] = (up + 1.0f) * glu;
        }
      }
    }
  } else {
    // Qwen3MoeExperts: act = silu(x·gateᵀ) * (x·upᵀ).
    kernels.silu_mul(gate_up_.data(), act_.data(), num_assign * inter, act_.data());
  }
  if (g_moe_observer != nullptr) g_moe_observer(g_moe_observer_ctx, true, act_.data(), num_assign, inter);
  // Phase 2: down of every chosen expert.
  jobs_.clear();
  for (int64_t e = 0; e < num_experts_; ++e) {
    const int64_t begin = expert_begin_[static_cast<size_t>(e)];
    const int64_t m = expert_begin_[static_cast<size_t>(e) + 1] - begin;
    if (m == 0) continue;
    jobs_.push_back({&layer.experts[static_cast<size_t>(e)].down, act_.data() + begin * inter, m,
                     ye_.data() + begin * hidden, hidden});
  }
  run_jobs(kernels, pool);
  // Weighted sum per token, experts in ascending order (as the reference's loop over experts).
  std::fill_n(out_.data(), num_tokens * hidden, 0.0f);
  for (int64_t e = 0; e < num_experts_; ++e) {
    const int64_t begin = expert_begin_[static_cast<size_t>(e)];
    const int64_t end = expert_begin_[static_cast<size_t>(e) + 1];
    const ExpertWeights& ex = layer.experts[static_cast<size_t>(e)];
    for (int64_t i = begin; i < end; ++i) {
      float* y = ye_.data() + i * hidden;
      if (!ex.down_bias.empty()) kernels.axpy(1.0f, ex.down_bias.data(), hidden, y);
      kernels.axpy(assign_weight_[static_cast<size_t>(i)], y, hidden,
                   out_.data() + static_cast<int64_t>(assign_token_[static_cast<size_t>(i)]) * hidden);
    }
  }
  kernels.axpy(1.0f, out_.data(), num_tokens * hidden, x);
}

}  // namespace nibble::model
