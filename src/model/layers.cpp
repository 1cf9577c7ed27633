#include "model/layers.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "kernels/ops.h"

namespace nibble::model {

std::vector<float> rope_inv_freq(const ModelConfig& config) {
  const int64_t half = config.head_dim / 2;
  std::vector<float> inv_freq(static_cast<size_t>(half));
  // transformers: 1 / theta ** (arange(0, d, 2).float() / d), in fp32.
  for (int64_t i = 0; i < half; ++i) {
    const float exponent = static_cast<float>(2 * i) / static_cast<float>(config.head_dim);
    inv_freq[static_cast<size_t>(i)] = 1.0f / std::pow(static_cast<float>(config.rope_theta), exponent);
  }
  const RopeScaling& rs = config.rope_scaling;
  if (rs.type == RopeScalingType::kLlama3) {
    // Long wavelengths are divided by `factor`, short ones kept, the band between interpolated.
    const float old_len = static_cast<float>(rs.original_max_position_embeddings);
    const float factor = static_cast<float>(rs.factor);
    const float low_f = static_cast<float>(rs.low_freq_factor);
    const float high_f = static_cast<float>(rs.high_freq_factor);
    const float low_freq_wavelen = old_len / low_f;
    const float high_freq_wavelen = old_len / high_f;
    for (float& f : inv_freq) {
      const float wavelen = static_cast<float>(2.0 * std::numbers::pi) / f;
      if (wavelen > low_freq_wavelen) {
        f = f / factor;
      } else if (!(wavelen < high_freq_wavelen)) {
        const float smooth = (old_len / wavelen - low_f) / (high_f - low_f);
        f = (1.0f - smooth) * f / factor + smooth * f;
      }
    }
  }
  if (rs.type == RopeScalingType::kYarn) {
    // transformers _compute_yarn_parameters: blend interpolated (/factor) and extrapolated
    // frequencies with a linear ramp over the dimension range [low, high] (computed in double).
    const double dim = static_cast<double>(config.head_dim);
    const double base = config.rope_theta;
    const double orig = static_cast<double>(rs.original_max_position_embeddings);
    auto correction_dim = [&](double num_rotations) {
      return dim * std::log(orig / (num_rotations * 2.0 * std::numbers::pi)) / (2.0 * std::log(base));
    };
    double low = correction_dim(rs.beta_fast);
    double high = correction_dim(rs.beta_slow);
    if (rs.truncate) {
      low = std::floor(low);
      high = std::ceil(high);
    }
    low = std::max(low, 0.0);
    high = std::min(high, dim - 1.0);
    if (low == high) high += 0.001;  // transformers: prevent a division by zero
    const auto factor = static_cast<float>(rs.factor);
    for (int64_t i = 0; i < half; ++i) {
      const float pos_freq =
          std::pow(static_cast<float>(base), static_cast<float>(2 * i) / static_cast<float>(config.head_dim));
      const float extrapolation = 1.0f / pos_freq;
      const float interpolation = 1.0f / (factor * pos_freq);
      const float ramp = std::clamp(
          (static_cast<float>(i) - static_cast<float>(low)) / static_cast<float>(high - low), 0.0f, 1.0f);
      const float extrapolation_factor = 1.0f - ramp;
      inv_freq[static_cast<size_t>(i)] =
          interpolation * (1.0f - extrapolation_factor) + extrapolation * extrapolation_factor;
    }
  }
  return inv_freq;
}

float rope_attention_scaling(const ModelConfig& config) {
  const RopeScaling& rs = config.rope_scaling;
  if (rs.type != RopeScalingType::kYarn) return 1.0f;
  if (rs.attention_factor > 0) return static_cast<float>(rs.attention_factor);
  if (rs.factor <= 1) return 1.0f;
  return static_cast<float>(0.1 * std::log(rs.factor) + 1.0);
}

DecoderStack::DecoderStack(const ModelConfig& config, const LoadOptions& options,
                           const kernels::KernelTable& kernels, DecoderWeights weights)
    : config_(config),
      options_(options),
      kernels_(kernels),
      pool_(std::make_unique<base::ThreadPool>(options.num_threads)),
      weights_(std::move(weights)) {
  const int64_t half = config.head_dim / 2;
  const std::vector<float> inv_freq = rope_inv_freq(config);
  const float attention_scaling = rope_attention_scaling(config);
  rope_cos_.resize(static_cast<size_t>(options.max_seq_len * half));
  rope_sin_.resize(rope_cos_.size());
  for (int64_t pos = 0; pos < options.max_seq_len; ++pos) {
    for (int64_t i = 0; i < half; ++i) {
      // fp32 angle, like transformers' inv_freq @ position_ids in fp32.
      const float angle = static_cast<float>(pos) * inv_freq[static_cast<size_t>(i)];
      rope_cos_[static_cast<size_t>(pos * half + i)] = std::cos(angle) * attention_scaling;
      rope_sin_[static_cast<size_t>(pos * half + i)] = std::sin(angle) * attention_scaling;
    }
  }
  const auto b = static_cast<size_t>(options.max_batch_tokens);
  const auto r = static_cast<size_t>(options.max_logit_rows);
  const auto hidden = static_cast<size_t>(config.hidden_size);
  const auto q_dim = static_cast<size_t>(config.num_attention_heads * config.head_dim);
  const auto kv_dim = static_cast<size_t>(config.num_key_value_heads * config.head_dim);
  ws_.x.resize(b * hidden);
  ws_.h.resize(b * hidden);
  ws_.q.resize(b * q_dim);
  ws_.k.resize(b * kv_dim);
  ws_.v.resize(b * kv_dim);
  ws_.attn.resize(b * q_dim);
  ws_.gate.resize(b * static_cast<size_t>(config.intermediate_size));
  ws_.up.resize(ws_.gate.size());
  ws_.final.resize(r * hidden);
  ws_.logits.resize(r * static_cast<size_t>(config.vocab_size));
  // Room for the K/V rows of several sequences at once (attend runs them in one pool run).
  const int64_t seqs_per_run = std::clamp<int64_t>(
      options.max_logit_rows, 1, std::max<int64_t>(1, (int64_t{1} << 18) / options.max_seq_len));
  ws_.key_rows.resize(static_cast<size_t>(options.max_seq_len * seqs_per_run));
  ws_.value_rows.resize(ws_.key_rows.size());
  ws_.seq_row_begin.resize(b);
  ws_.seq_token_begin.resize(b);
  ws_.seq_task_begin.resize(b + 1);
  ws_.scores.resize(static_cast<size_t>(pool_->num_threads()) * static_cast<size_t>(options.max_seq_len + 1));
  ws_.positions.resize(b);
  ws_.token_seq.resize(b);
}

base::Status DecoderStack::begin_step(std::span<const int32_t> tokens, std::span<const SeqSlice> seqs,
                                      std::span<const int64_t> logit_rows) {
  const auto num_tokens = static_cast<int64_t>(tokens.size());
  if (num_tokens == 0) return base::invalid_argument("forward: no tokens");
  if (num_tokens > options_.max_batch_tokens) {
    return base::invalid_argument("forward: " + std::to_string(num_tokens) +
                                  " tokens exceed max_batch_tokens " +
                                  std::to_string(options_.max_batch_tokens));
  }
  const auto num_rows = static_cast<int64_t>(logit_rows.size());
  if (num_rows < 1 || num_rows > std::min(num_tokens, options_.max_logit_rows)) {
    return base::invalid_argument("forward: " + std::to_string(num_rows) + " logit rows out of range [1, " +
                                  std::to_string(std::min(num_tokens, options_.max_logit_rows)) + "]");
  }
  for (int64_t row : logit_rows) {
    if (row < 0 || row >= num_tokens)
      return base::invalid_argument("forward: logit row " + std::to_string(row) + " is not a token of the step");
  }
  int64_t t = 0;
  for (size_t s = 0; s < seqs.size(); ++s) {
    const SeqSlice& seq = seqs[s];
    if (seq.cache == nullptr || seq.num_tokens < 1 || seq.num_tokens > num_tokens - t)
      return base::invalid_argument("forward: sequence " + std::to_string(s) + " has a bad token count or no cache");
    const int64_t max_pos = std::min(options_.max_seq_len, seq.cache->max_positions());
    if (seq.start_pos < 0 || seq.start_pos + seq.num_tokens > max_pos) {
      return base::resource_exhausted("forward: positions " + std::to_string(seq.start_pos) + ".." +
                                      std::to_string(seq.start_pos + seq.num_tokens - 1) +
                                      " exceed the context of " + std::to_string(max_pos) + " tokens");
    }
    for (int64_t i = 0; i < seq.num_tokens; ++i, ++t) {
      ws_.positions[static_cast<size_t>(t)] = seq.start_pos + i;
      ws_.token_seq[static_cast<size_t>(t)] = static_cast<int32_t>(s);
    }
  }
  if (t != num_tokens) return base::invalid_argument("forward: the sequences do not cover the tokens");
  for (int32_t id : tokens) {
    if (id < 0 || id >= config_.vocab_size) {
      return base::invalid_argument("token id " + std::to_string(id) + " out of range [0, " +
                                    std::to_string(config_.vocab_size) + ")");
    }
  }
  return base::ok_status();
}

void DecoderStack::embed(std::span<const int32_t> tokens) {
  const auto decode = kernels_.decode_row[static_cast<int>(weights_.embed_tokens.format)];
  for (size_t t = 0; t < tokens.size(); ++t) {
    decode(weights_.embed_tokens, tokens[t], ws_.x.data() + static_cast<int64_t>(t) * config_.hidden_size);
  }
}

void DecoderStack::norm_input(int64_t num_tokens, const std::vector<float>& weight) {
  kernels_.rmsnorm(ws_.x.data(), weight.data(), num_tokens, config_.hidden_size,
                   static_cast<float>(config_.rms_norm_eps), ws_.h.data());
}

void DecoderStack::project_qkv(const DecoderLayerWeights& layer, int64_t num_tokens) {
  kernels::matmul(kernels_, *pool_, ws_.h.data(), num_tokens, layer.q_proj, ws_.q.data());
  kernels::matmul(kernels_, *pool_, ws_.h.data(), num_tokens, layer.k_proj, ws_.k.data());
  kernels::matmul(kernels_, *pool_, ws_.h.data(), num_tokens, layer.v_proj, ws_.v.data());
  if (!layer.q_bias.empty()) {
    const int64_t q_dim = layer.q_proj.num_rows;
    const int64_t kv_dim = layer.k_proj.num_rows;
    for (int64_t t = 0; t < num_tokens; ++t) {
      kernels_.axpy(1.0f, layer.q_bias.data(), q_dim, ws_.q.data() + t * q_dim);
      kernels_.axpy(1.0f, layer.k_bias.data(), kv_dim, ws_.k.data() + t * kv_dim);
      kernels_.axpy(1.0f, layer.v_bias.data(), kv_dim, ws_.v.data() + t * kv_dim);
    }
  }
}

void DecoderStack::norm_heads_qk(const DecoderLayerWeights& layer, int64_t num_tokens) {
  const auto eps = static_cast<float>(config_.rms_norm_eps);
  kernels_.rmsnorm(ws_.q.data(), layer.q_norm.data(), num_tokens * config_.num_attention_heads,
                   config_.head_dim, eps, ws_.q.data());
  kernels_.rmsnorm(ws_.k.data(), layer.k_norm.data(), num_tokens * config_.num_key_value_heads,
                   config_.head_dim, eps, ws_.k.data());
}

void DecoderStack::rope_qk(int64_t num_tokens) {
  const int64_t half = config_.head_dim / 2;
  const int64_t q_dim = config_.num_attention_heads * config_.head_dim;
  const int64_t kv_dim = config_.num_key_value_heads * config_.head_dim;
  for (int64_t t = 0; t < num_tokens; ++t) {
    const int64_t pos = ws_.positions[static_cast<size_t>(t)];
    const float* cos = rope_cos_.data() + pos * half;
    const float* sin = rope_sin_.data() + pos * half;
    kernels_.rope(ws_.q.data() + t * q_dim, config_.num_attention_heads, config_.head_dim, cos, sin);
    kernels_.rope(ws_.k.data() + t * kv_dim, config_.num_key_value_heads, config_.head_dim, cos, sin);
  }
}

void DecoderStack::attend(int64_t layer_idx, int64_t num_tokens, std::span<const SeqSlice> seqs,
                          const std::vector<float>& sinks) {
  const int64_t head_dim = config_.head_dim;
  const int64_t num_heads = config_.num_attention_heads;
  const int64_t kv_dim = config_.num_key_value_heads * head_dim;
  const int64_t q_dim = num_heads * head_dim;
  const int64_t group = num_heads / config_.num_key_value_heads;
  NIBBLE_CHECK(group <= kAttentionTileQueries, "GQA group larger than the attention tile");
  for (int64_t t = 0; t < num_tokens; ++t) {
    KvCache& cache = *seqs[static_cast<size_t>(ws_.token_seq[static_cast<size_t>(t)])].cache;
    const int64_t pos = ws_.positions[static_cast<size_t>(t)];
    std::copy_n(ws_.k.data() + t * kv_dim, kv_dim, cache.key(layer_idx, pos));
    std::copy_n(ws_.v.data() + t * kv_dim, kv_dim, cache.value(layer_idx, pos));
  }
  const auto scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(head_dim)));
  // Sliding-window layers: key j is visible to query position p iff p - window < j <= p.
  const bool sliding = !config_.layer_types.empty() &&
                       config_.layer_types[static_cast<size_t>(layer_idx)] == LayerType::kSlidingAttention &&
                       config_.sliding_window > 0;
  if (sliding || !sinks.empty()) {
    // gpt-oss layers: one task per (token, head) with an explicit score row (window + sink column).
    const int64_t max_seq_len = options_.max_seq_len;
    auto task = [&](int64_t task_idx, int thread_idx) {
      const int64_t t = task_idx / num_heads;
      const int64_t head = task_idx % num_heads;
      const int64_t kv_offset = (head / group) * head_dim;
      KvCache& cache = *seqs[static_cast<size_t>(ws_.token_seq[static_cast<size_t>(t)])].cache;
      const int64_t pos = ws_.positions[static_cast<size_t>(t)];
      const int64_t first_key = sliding ? std::max<int64_t>(0, pos - config_.sliding_window + 1) : 0;
      const int64_t num_keys = pos + 1 - first_key;  // causal: positions first_key..pos
      // One slot past the keys holds the sink logit when the layer has sinks.
      float* scores = ws_.scores.data() + thread_idx * (max_seq_len + 1);
      const float* q = ws_.q.data() + t * q_dim + head * head_dim;
      for (int64_t j = 0; j < num_keys; ++j) {
        scores[j] = kernels_.dot(q, cache.key(layer_idx, first_key + j) + kv_offset, head_dim) * scale;
      }
      if (sinks.empty()) {
        kernels_.softmax(scores, num_keys);
      } else {
        // gpt-oss: softmax over [scores, sink], then the sink's column is dropped.
        scores[num_keys] = sinks[static_cast<size_t>(head)];
        kernels_.softmax(scores, num_keys + 1);
      }
      float* out = ws_.attn.data() + t * q_dim + head * head_dim;
      std::fill_n(out, head_dim, 0.0f);
      for (int64_t j = 0; j < num_keys; ++j)
        kernels_.axpy(scores[j], cache.value(layer_idx, first_key + j) + kv_offset, head_dim, out);
    };
    pool_->run(num_tokens * num_heads, base::TaskFn(task));
    return;
  }
  // Every sequence's K/V row pointers side by side, then ONE pool run over (sequence, token tile,
  // kv head) for all of them: a decode step of many short sequences keeps every thread busy with
  // one hand-off per layer instead of one per sequence. Sequences whose rows do not fit the
  // workspace together go in several runs.
  const int64_t num_kv_heads = config_.num_key_value_heads;
  const int64_t tile_tokens = std::max<int64_t>(1, kAttentionTileQueries / group);
  const auto row_capacity = static_cast<int64_t>(ws_.key_rows.size());
  size_t first_seq = 0;
  int64_t first_token = 0;
  while (first_seq < seqs.size()) {
    int64_t num_rows = 0, num_tasks = 0, token = first_token;
    size_t end_seq = first_seq;
    for (; end_seq < seqs.size(); ++end_seq) {
      const SeqSlice& seq = seqs[end_seq];
      const int64_t num_keys_total = seq.start_pos + seq.num_tokens;
      if (end_seq > first_seq && num_rows + num_keys_total > row_capacity) break;
      KvCache& cache = *seq.cache;
      for (int64_t j = 0; j < num_keys_total; ++j) {
        ws_.key_rows[static_cast<size_t>(num_rows + j)] = cache.key(layer_idx, j);
        ws_.value_rows[static_cast<size_t>(num_rows + j)] = cache.value(layer_idx, j);
      }
      const size_t i = end_seq - first_seq;
      ws_.seq_row_begin[i] = num_rows;
      ws_.seq_token_begin[i] = token;
      ws_.seq_task_begin[i] = num_tasks;
      num_rows += num_keys_total;
      token += seq.num_tokens;
      num_tasks += (seq.num_tokens + tile_tokens - 1) / tile_tokens * num_kv_heads;
    }
    const size_t num_run_seqs = end_seq - first_seq;
    ws_.seq_task_begin[num_run_seqs] = num_tasks;
    auto task = [&](int64_t task_idx, int) {
      // This task's sequence: the last one whose first task is <= task_idx.
      const auto begin = ws_.seq_task_begin.begin();
      const auto i = static_cast<size_t>(
          std::upper_bound(begin, begin + static_cast<std::ptrdiff_t>(num_run_seqs) + 1, task_idx) - begin - 1);
      const SeqSlice& seq = seqs[first_seq + i];
      const int64_t local = task_idx - ws_.seq_task_begin[i];
      const int64_t kv_head = local % num_kv_heads;
      const int64_t t0 = (local / num_kv_heads) * tile_tokens;
      const int64_t t1 = std::min(seq.num_tokens, t0 + tile_tokens);
      const int64_t base_t = ws_.seq_token_begin[i];
      const float* q_rows[kAttentionTileQueries];
      float* out_rows[kAttentionTileQueries];
      int64_t num_keys[kAttentionTileQueries];
      int64_t num_queries = 0;
      for (int64_t t = t0; t < t1; ++t) {
        for (int64_t head = kv_head * group; head < (kv_head + 1) * group; ++head) {
          q_rows[num_queries] = ws_.q.data() + (base_t + t) * q_dim + head * head_dim;
          out_rows[num_queries] = ws_.attn.data() + (base_t + t) * q_dim + head * head_dim;
          num_keys[num_queries] = seq.start_pos + t + 1;
          ++num_queries;
        }
      }
      const auto row0 = static_cast<size_t>(ws_.seq_row_begin[i]);
      kernels_.attention(q_rows, out_rows, num_keys, num_queries, ws_.key_rows.data() + row0,
                         ws_.value_rows.data() + row0, kv_head * head_dim, head_dim, scale);
    };
    pool_->run(num_tasks, base::TaskFn(task));
    first_seq = end_seq;
    first_token = token;
  }
}

void DecoderStack::output_residual(const DecoderLayerWeights& layer, int64_t num_tokens) {
  kernels::matmul(kernels_, *pool_, ws_.attn.data(), num_tokens, layer.o_proj, ws_.h.data());
  if (!layer.o_bias.empty()) {
    for (int64_t t = 0; t < num_tokens; ++t)
      kernels_.axpy(1.0f, layer.o_bias.data(), config_.hidden_size, ws_.h.data() + t * config_.hidden_size);
  }
  kernels_.axpy(1.0f, ws_.h.data(), num_tokens * config_.hidden_size, ws_.x.data());
}

void DecoderStack::mlp_residual(const DecoderLayerWeights& layer, int64_t num_tokens) {
  kernels::matmul(kernels_, *pool_, ws_.h.data(), num_tokens, layer.gate_proj, ws_.gate.data());
  kernels::matmul(kernels_, *pool_, ws_.h.data(), num_tokens, layer.up_proj, ws_.up.data());
  kernels_.silu_mul(ws_.gate.data(), ws_.up.data(), num_tokens * config_.intermediate_size, ws_.gate.data());
  kernels::matmul(kernels_, *pool_, ws_.gate.data(), num_tokens, layer.down_proj, ws_.h.data());
  kernels_.axpy(1.0f, ws_.h.data(), num_tokens * config_.hidden_size, ws_.x.data());
}

std::span<const float> DecoderStack::final_logits(std::span<const int64_t> logit_rows) {
  const auto num_rows = static_cast<int64_t>(logit_rows.size());
  for (int64_t r = 0; r < num_rows; ++r) {
    kernels_.rmsnorm(ws_.x.data() + logit_rows[static_cast<size_t>(r)] * config_.hidden_size, weights_.norm.data(), 1,
                     config_.hidden_size, static_cast<float>(config_.rms_norm_eps),
                     ws_.final.data() + r * config_.hidden_size);
  }
  kernels::matmul(kernels_, *pool_, ws_.final.data(), num_rows, weights_.lm_head, ws_.logits.data());
  return {ws_.logits.data(), static_cast<size_t>(num_rows * config_.vocab_size)};
}

base::Result<DecoderWeights> load_decoder_weights(const ModelConfig& config, WeightLoader& loader,
                                                  bool qk_norm) {
  DecoderLoadOptions options;
  options.qk_norm = qk_norm;
  return load_decoder_weights(config, loader, options);
}

base::Result<DecoderWeights> load_decoder_weights(const ModelConfig& config, WeightLoader& loader,
                                                  const DecoderLoadOptions& options) {
  const bool qk_norm = options.qk_norm;
  const int64_t hidden = config.hidden_size;
  const int64_t q_dim = config.num_attention_heads * config.head_dim;
  const int64_t kv_dim = config.num_key_value_heads * config.head_dim;
  const int64_t inter = config.intermediate_size;
  DecoderWeights w;
  NIBBLE_ASSIGN_OR_RETURN(w.embed_tokens,
                          loader.matrix("model.embed_tokens.weight", config.vocab_size, hidden));
  w.layers.resize(static_cast<size_t>(config.num_hidden_layers));
  for (int64_t i = 0; i < config.num_hidden_layers; ++i) {
    DecoderLayerWeights& l = w.layers[static_cast<size_t>(i)];
    const std::string p = "model.layers." + std::to_string(i) + ".";
    NIBBLE_ASSIGN_OR_RETURN(l.input_layernorm, loader.vector(p + "input_layernorm.weight", hidden));
    NIBBLE_ASSIGN_OR_RETURN(l.q_proj, loader.matrix(p + "self_attn.q_proj.weight", q_dim, hidden));
    NIBBLE_ASSIGN_OR_RETURN(l.k_proj, loader.matrix(p + "self_attn.k_proj.weight", kv_dim, hidden));
    NIBBLE_ASSIGN_OR_RETURN(l.v_proj, loader.matrix(p + "self_attn.v_proj.weight", kv_dim, hidden));
    NIBBLE_ASSIGN_OR_RETURN(l.o_proj, loader.matrix(p + "self_attn.o_proj.weight", hidden, q_dim));
    if (config.attention_bias) {
      NIBBLE_ASSIGN_OR_RETURN(l.q_bias, loader.vector(p + "self_attn.q_proj.bias", q_dim));
      NIBBLE_ASSIGN_OR_RETURN(l.k_bias, loader.vector(p + "self_attn.k_proj.bias", kv_dim));
      NIBBLE_ASSIGN_OR_RETURN(l.v_bias, loader.vector(p + "self_attn.v_proj.bias", kv_dim));
      NIBBLE_ASSIGN_OR_RETURN(l.o_bias, loader.vector(p + "self_attn.o_proj.bias", hidden));
    }
    if (options.sinks) {
      NIBBLE_ASSIGN_OR_RETURN(l.sinks, loader.vector(p + "self_attn.sinks", config.num_attention_heads));
    }
    if (qk_norm) {
      NIBBLE_ASSIGN_OR_RETURN(l.q_norm, loader.vector(p + "self_attn.q_norm.weight", config.head_dim));
      NIBBLE_ASSIGN_OR_RETURN(l.k_norm, loader.vector(p + "self_attn.k_norm.weight", config.head_dim));
    }
    NIBBLE_ASSIGN_OR_RETURN(l.post_attention_layernorm,
                            loader.vector(p + "post_attention_layernorm.weight", hidden));
    if (!options.is_sparse || !options.is_sparse(config, i)) {
      NIBBLE_ASSIGN_OR_RETURN(l.gate_proj, loader.matrix(p + "mlp.gate_proj.weight", inter, hidden));
      NIBBLE_ASSIGN_OR_RETURN(l.up_proj, loader.matrix(p + "mlp.up_proj.weight", inter, hidden));
      NIBBLE_ASSIGN_OR_RETURN(l.down_proj, loader.matrix(p + "mlp.down_proj.weight", hidden, inter));
    }
  }
  NIBBLE_ASSIGN_OR_RETURN(w.norm, loader.vector("model.norm.weight", hidden));
  if (config.tie_word_embeddings) {
    w.lm_head = w.embed_tokens;
  } else {
    NIBBLE_ASSIGN_OR_RETURN(w.lm_head, loader.matrix("lm_head.weight", config.vocab_size, hidden));
  }
  w.owned = loader.owned_buffers();
  return w;
}

}  // namespace nibble::model
