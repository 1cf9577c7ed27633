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

// A slice [expert] of a gpt-oss MXFP4 expert tensor pair: blocks [E, N, K/32, 16], scales [E, N, K/32].
base::Status load_mxfp4_experts(const ModelConfig& config, WeightLoader& loader, const std::string& prefix,
                                int64_t num_rows, int64_t num_cols, std::vector<ExpertWeights>& experts,
                                ExpertMatrix ExpertWeights::*member) {
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
  NIBBLE_CHECK(layout.row_bytes == blocks_per_row * 16 && layout.scale_cols == blocks_per_row,
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
    ExpertMatrix& m = experts[static_cast<size_t>(e)].*member;
    m.num_rows = num_rows;
    m.num_cols = num_cols;
    m.mxfp4_blocks = blocks->data + static_cast<size_t>(e) * expert_data_bytes;
    m.mxfp4_scales = expert_scales;
    m.mxfp4_layout = layout;
  }
  return base::ok_status();
}

ExpertMatrix plain_expert(const kernels::MatWeight& w) {
  ExpertMatrix m;
  m.num_rows = w.num_rows;
  m.num_cols = w.num_cols;
  m.plain = w;
  return m;
}

// Decode tables for gpt-oss MXFP4: both E2M1 values of each byte (low nibble first) and every
// E8M0 scale 2^(code - 127) (0xFF, NaN, is rejected at load).
struct Mxfp4Tables {
  float pair[256][2];
  float scale[256];
};

const Mxfp4Tables& mxfp4_tables() {
  static const Mxfp4Tables tables = [] {
    static constexpr float kE2M1[8] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f};
    auto value = [](int code) { return (code & 8) != 0 ? -kE2M1[code & 7] : kE2M1[code & 7]; };
    Mxfp4Tables t{};
    for (int b = 0; b < 256; ++b) {
      t.pair[b][0] = value(b & 0x0F);
      t.pair[b][1] = value(b >> 4);
      t.scale[b] = std::ldexp(1.0f, b - 127);
    }
    return t;
  }();
  return tables;
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

void decode_mxfp4_row(const uint8_t* blocks, const uint8_t* scales, int64_t num_cols, float* out) {
  const Mxfp4Tables& t = mxfp4_tables();
  for (int64_t b = 0; b < num_cols / 32; ++b) {
    const float scale = t.scale[scales[b]];
    const uint8_t* block = blocks + b * 16;
    float* dst = out + b * 32;
    for (int j = 0; j < 16; ++j) {
      dst[2 * j] = t.pair[block[j]][0] * scale;  // exact: E2M1 times a power of two
      dst[2 * j + 1] = t.pair[block[j]][1] * scale;
    }
  }
}

namespace {

// sum_k x[k] * W[k] for one MXFP4 row without materialising it (decode tokens): each block's sum
// runs over the raw E2M1 values and is scaled once; scaling by a power of two is exact, so this
// differs from decode-then-dot only in summation order.
float dot_mxfp4_row(const float* x, const uint8_t* blocks, const uint8_t* scales, int64_t num_cols) {
  const Mxfp4Tables& t = mxfp4_tables();
  float total = 0.0f;
  for (int64_t b = 0; b < num_cols / 32; ++b) {
    const uint8_t* block = blocks + b * 16;
    const float* xb = x + b * 32;
    float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
    for (int j = 0; j < 16; j += 2) {
      const float* p = t.pair[block[j]];
      const float* q = t.pair[block[j + 1]];
      s0 += xb[2 * j] * p[0];
      s1 += xb[2 * j + 1] * p[1];
      s2 += xb[2 * j + 2] * q[0];
      s3 += xb[2 * j + 3] * q[1];
    }
    total += ((s0 + s1) + (s2 + s3)) * t.scale[scales[b]];
  }
  return total;
}

}  // namespace

uint64_t ExpertMatrix::num_bytes() const {
  if (is_mxfp4()) return static_cast<uint64_t>(mxfp4_layout.data_bytes() + mxfp4_layout.num_scales());
  return static_cast<uint64_t>(plain.row_bytes * plain.num_rows);
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
    NIBBLE_ASSIGN_OR_RETURN(auto gate, loader.matrix(q + "gate_proj.weight", inter, hidden));
    NIBBLE_ASSIGN_OR_RETURN(auto up, loader.matrix(q + "up_proj.weight", inter, hidden));
    NIBBLE_ASSIGN_OR_RETURN(auto down, loader.matrix(q + "down_proj.weight", hidden, inter));
    ex.gate = plain_expert(gate);
    ex.up = plain_expert(up);
    ex.down = plain_expert(down);
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
  xe_.resize(b * hidden);
  gate_up_.resize(b * 2 * static_cast<size_t>(inter_));
  act_.resize(b * static_cast<size_t>(inter_));
  ye_.resize(b * hidden);
  out_.resize(b * hidden);
  row_buffer_stride_ = std::max(config.hidden_size, inter_);
  row_buffer_.resize(static_cast<size_t>(num_threads) * static_cast<size_t>(row_buffer_stride_));
}

void MoeBlock::route(const MoeLayerWeights& layer, const kernels::KernelTable& kernels,
                     base::ThreadPool& pool, const float* h, int64_t num_tokens) {
  const int64_t num_experts = num_experts_;
  const int64_t k = top_k_;
  // router_logits = h · routerᵀ (+ bias)
  kernels::matmul(kernels, pool, h, num_tokens, layer.router, router_logits_.data());
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

void MoeBlock::expert_matmul(const ExpertMatrix& w, const kernels::KernelTable& kernels,
                             base::ThreadPool& pool, const float* x, int64_t m, float* y) {
  ++stats_.expert_matrix_reads;
  stats_.expert_bytes_read += w.num_bytes();
  if (!w.is_mxfp4()) {
    kernels::matmul(kernels, pool, x, m, w.plain, y);
    return;
  }
  // Decode each weight row once into this thread's buffer, then use it for all m tokens.
  const int64_t num_rows = w.num_rows;
  const int64_t num_cols = w.num_cols;
  const int64_t row_bytes = w.mxfp4_layout.row_bytes;
  const int64_t scale_cols = w.mxfp4_layout.scale_cols;
  constexpr int64_t kRowsPerTask = 16;
  // Up to this many tokens the row is decoded inside the dot product; more amortise a decoded row.
  constexpr int64_t kFusedMaxTokens = 2;
  const int64_t num_tasks = (num_rows + kRowsPerTask - 1) / kRowsPerTask;
  auto task = [&](int64_t task_idx, int thread_idx) {
    float* row = row_buffer_.data() + thread_idx * row_buffer_stride_;
    const int64_t end = std::min(num_rows, (task_idx + 1) * kRowsPerTask);
    for (int64_t n = task_idx * kRowsPerTask; n < end; ++n) {
      if (m <= kFusedMaxTokens) {
        for (int64_t t = 0; t < m; ++t) {
          y[t * num_rows + n] = dot_mxfp4_row(x + t * num_cols, w.mxfp4_blocks + n * row_bytes,
                                              w.mxfp4_scales + n * scale_cols, num_cols);
        }
        continue;
      }
      decode_mxfp4_row(w.mxfp4_blocks + n * row_bytes, w.mxfp4_scales + n * scale_cols, num_cols, row);
      for (int64_t t = 0; t < m; ++t) y[t * num_rows + n] = kernels.dot(x + t * num_cols, row, num_cols);
    }
  };
  pool.run(num_tasks, base::TaskFn(task));
}

void MoeBlock::forward(const MoeLayerWeights& layer, const kernels::KernelTable& kernels,
                       base::ThreadPool& pool, const float* h, int64_t num_tokens, float* x) {
  const int64_t hidden = config_.hidden_size;
  const int64_t inter = inter_;
  route(layer, kernels, pool, h, num_tokens);
  std::fill_n(out_.data(), num_tokens * hidden, 0.0f);
  const auto limit = static_cast<float>(config_.moe.swiglu_limit);
  const auto alpha = static_cast<float>(config_.moe.swiglu_alpha);
  for (int64_t e = 0; e < num_experts_; ++e) {
    const int64_t begin = expert_begin_[static_cast<size_t>(e)];
    const int64_t m = expert_begin_[static_cast<size_t>(e) + 1] - begin;
    if (m == 0) continue;  // experts no token chose are not read at all
    const ExpertWeights& ex = layer.experts[static_cast<size_t>(e)];
    stats_.expert_tokens += static_cast<uint64_t>(m);
    for (int64_t i = 0; i < m; ++i)
      std::copy_n(h + assign_token_[begin + i] * hidden, hidden, xe_.data() + i * hidden);
    if (kind_ == MoeKind::kGptOss) {
      // GptOssExperts: gate_up = x·W1ᵀ + b1; gate = gate_up[::2] clamped to <= limit, up =
      // gate_up[1::2] clamped to [-limit, limit]; act = gate·sigmoid(alpha·gate)·(up + 1).
      expert_matmul(ex.gate_up, kernels, pool, xe_.data(), m, gate_up_.data());
      for (int64_t i = 0; i < m; ++i) {
        float* gu = gate_up_.data() + i * 2 * inter;
        kernels.axpy(1.0f, ex.gate_up_bias.data(), 2 * inter, gu);
        float* a = act_.data() + i * inter;
        for (int64_t j = 0; j < inter; ++j) {
          const float gate = std::min(gu[2 * j], limit);
          const float up = std::clamp(gu[2 * j + 1], -limit, limit);
          const float glu = gate * (1.0f / (1.0f + std::exp(-(gate * alpha))));
          a[j] = (up + 1.0f) * glu;
        }
      }
    } else {
      // Qwen3MoeExperts: act = silu(x·gateᵀ) * (x·upᵀ).
      expert_matmul(ex.gate, kernels, pool, xe_.data(), m, gate_up_.data());
      expert_matmul(ex.up, kernels, pool, xe_.data(), m, act_.data());
      kernels.silu_mul(gate_up_.data(), act_.data(), m * inter, act_.data());
    }
    expert_matmul(ex.down, kernels, pool, act_.data(), m, ye_.data());
    for (int64_t i = 0; i < m; ++i) {
      float* y = ye_.data() + i * hidden;
      if (!ex.down_bias.empty()) kernels.axpy(1.0f, ex.down_bias.data(), hidden, y);
      kernels.axpy(assign_weight_[begin + i], y, hidden, out_.data() + assign_token_[begin + i] * hidden);
    }
  }
  kernels.axpy(1.0f, out_.data(), num_tokens * hidden, x);
}

}  // namespace nibble::model
