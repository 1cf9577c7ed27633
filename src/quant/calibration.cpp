#include "quant/calibration.h"

#include <cmath>
#include <string_view>

#include "base/file_util.h"
#include "base/log.h"
#include "kernels/ops.h"
#include "model/model.h"
#include "model/moe.h"
#include "tokenizer/tokenizer.h"

namespace nibble::quant {
namespace {

// The Linear modules of one Llama / Qwen3 forward in the order DecoderStack multiplies them.
struct Expected {
  std::string module;
  int64_t rows, cols;
};

struct Recorder {
  std::vector<Expected> order;
  size_t next = 0;
  std::map<std::string, float> amax;
  std::string error;
  // Mixture-of-experts layers, in order, and the MoE blocks seen in this forward pass.
  std::vector<int64_t> sparse_layers;
  size_t next_moe = 0;
  std::map<int64_t, std::pair<float, float>> expert_amax;  // layer -> (gate/up input, down input)
};

// Expert inputs (model/moe.h): one amax per layer for gate/up and one for down, which every expert
// of the layer gets (vLLM reduces per-expert input scales to their max anyway).
void observe_moe(void* ctx, bool down, const float* x, int64_t num_rows, int64_t num_cols) {
  auto* r = static_cast<Recorder*>(ctx);
  if (!r->error.empty() || r->sparse_layers.empty()) return;
  const int64_t layer = r->sparse_layers[r->next_moe % r->sparse_layers.size()];
  auto& [gate_up, down_amax] = r->expert_amax[layer];
  float& m = down ? down_amax : gate_up;
  for (int64_t i = 0; i < num_rows * num_cols; ++i) m = std::max(m, std::fabs(x[i]));
  if (down) ++r->next_moe;
}

void observe(void* ctx, const float* x, int64_t num_tokens, const kernels::MatWeight& w) {
  auto* r = static_cast<Recorder*>(ctx);
  if (!r->error.empty()) return;
  const Expected& e = r->order[r->next % r->order.size()];
  ++r->next;
  if (e.rows != w.num_rows || e.cols != w.num_cols) {
    r->error = "calibration: matmul " + std::to_string(w.num_rows) + " x " + std::to_string(w.num_cols) +
               " does not match the expected module '" + e.module + "'";
    return;
  }
  float m = r->amax[e.module];
  for (int64_t i = 0; i < num_tokens * w.num_cols; ++i) m = std::max(m, std::fabs(x[i]));
  r->amax[e.module] = m;
}

}  // namespace

base::Result<std::vector<int32_t>> read_token_file(const std::string& path, const std::string& model_dir,
                                                   int64_t vocab_size) {
  NIBBLE_ASSIGN_OR_RETURN(const std::string text, base::read_file(path));
  std::vector<int32_t> ids;
  bool all_ints = !text.empty();
  size_t i = 0;
  while (i < text.size() && all_ints) {
    const char c = text[i];
    if (c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == ',') {
      ++i;
      continue;
    }
    if (c < '0' || c > '9') {
      all_ints = false;
      break;
    }
    int64_t v = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9' && v < (int64_t{1} << 40)) {
      v = v * 10 + (text[i] - '0');
      ++i;
    }
    if (v >= vocab_size) {
      return base::invalid_argument(path + ": token id " + std::to_string(v) + " >= vocab size " +
                                    std::to_string(vocab_size));
    }
    ids.push_back(static_cast<int32_t>(v));
  }
  if (!all_ints && base::file_exists(base::join_path(model_dir, "tokenizer.json"))) {
    NIBBLE_ASSIGN_OR_RETURN(auto tok, tokenizer::Tokenizer::from_dir(model_dir));
    auto encoded = tok->encode(text, /*add_special_tokens=*/false);
    if (!encoded.ok()) return encoded.status().with_context(path);
    ids.assign(encoded->begin(), encoded->end());
    for (int32_t id : ids) {
      if (id >= vocab_size) {
        return base::invalid_argument(path + ": token id " + std::to_string(id) + " >= the model's vocab size " +
                                      std::to_string(vocab_size));
      }
    }
  } else if (!all_ints) {
    base::log_warn(path + ": " + model_dir + " has no tokenizer.json; reading the text as raw bytes");
    ids.clear();
    for (unsigned char c : text) ids.push_back(static_cast<int32_t>(c % static_cast<unsigned>(vocab_size)));
  }
  if (ids.empty()) return base::invalid_argument(path + ": no tokens");
  return ids;
}

base::Result<std::map<std::string, float>> collect_activation_amax(const std::string& model_dir,
                                                                   const std::vector<int32_t>& tokens,
                                                                   int64_t window, int num_threads) {
  model::LoadOptions opts;
  opts.max_seq_len = window;
  opts.num_threads = num_threads;
  NIBBLE_ASSIGN_OR_RETURN(auto model, model::load_model(model_dir, opts));
  const model::ModelConfig& c = model->config();
  Recorder rec;
  const int64_t q_dim = c.num_attention_heads * c.head_dim, kv_dim = c.num_key_value_heads * c.head_dim;
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    rec.order.push_back({p + "self_attn.q_proj", q_dim, c.hidden_size});
    rec.order.push_back({p + "self_attn.k_proj", kv_dim, c.hidden_size});
    rec.order.push_back({p + "self_attn.v_proj", kv_dim, c.hidden_size});
    rec.order.push_back({p + "self_attn.o_proj", c.hidden_size, q_dim});
    if (model::is_sparse_layer(c, i)) {
      // The router; the experts are reported through the MoE hook.
      rec.order.push_back({p + "mlp.gate", c.moe.num_experts, c.hidden_size});
      rec.sparse_layers.push_back(i);
      continue;
    }
    rec.order.push_back({p + "mlp.gate_proj", c.intermediate_size, c.hidden_size});
    rec.order.push_back({p + "mlp.up_proj", c.intermediate_size, c.hidden_size});
    rec.order.push_back({p + "mlp.down_proj", c.hidden_size, c.intermediate_size});
  }
  rec.order.push_back({"lm_head", c.vocab_size, c.hidden_size});
  if (c.moe.num_experts > 0 && c.architecture != "Qwen3MoeForCausalLM") {
    return base::unsupported(model_dir + ": calibration supports Llama, Qwen3 and Qwen3-MoE, not " + c.architecture);
  }
  kernels::set_matmul_observer(&observe, &rec);
  model::set_moe_observer(&observe_moe, &rec);
  base::Status status;
  for (size_t begin = 0; begin < tokens.size() && status.ok(); begin += static_cast<size_t>(window)) {
    const size_t end = std::min(tokens.size(), begin + static_cast<size_t>(window));
    auto cache = model->new_kv_cache();
    rec.next = 0;
    rec.next_moe = 0;
    auto logits = model->forward(std::span<const int32_t>(tokens.data() + begin, end - begin), 0, *cache, 1);
    if (!logits.ok()) status = logits.status();
    if (!rec.error.empty()) status = base::internal_error(rec.error);
  }
  kernels::set_matmul_observer(nullptr, nullptr);
  model::set_moe_observer(nullptr, nullptr);
  NIBBLE_TRY(status);
  for (const auto& [layer, a] : rec.expert_amax) {
    for (int64_t e = 0; e < c.moe.num_experts; ++e) {
      const std::string p = "model.layers." + std::to_string(layer) + ".mlp.experts." + std::to_string(e) + ".";
      rec.amax[p + "gate_proj"] = a.first;
      rec.amax[p + "up_proj"] = a.first;
      rec.amax[p + "down_proj"] = a.second;
    }
  }
  return rec.amax;
}

}  // namespace nibble::quant
