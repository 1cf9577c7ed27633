#include "model/random_checkpoint.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <numbers>
#include <vector>

#include "base/file_util.h"
#include "base/float16.h"
#include "formats/block_format.h"
#include "io/safetensors.h"
#include "model/config.h"

namespace nibble::model {

uint64_t NormalRng::next_u64() {
  // splitmix64
  uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

double NormalRng::next_uniform() {
  // 53 random bits, shifted off zero so log() is finite.
  return (static_cast<double>(next_u64() >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

double NormalRng::next_normal() {
  if (has_spare_) {
    has_spare_ = false;
    return spare_;
  }
  const double u1 = next_uniform();
  const double u2 = next_uniform();
  const double radius = std::sqrt(-2.0 * std::log(u1));
  const double angle = 2.0 * std::numbers::pi * u2;
  spare_ = radius * std::sin(angle);
  has_spare_ = true;
  return radius * std::cos(angle);
}

namespace {

using Json = nlohmann::ordered_json;

struct Shapes {
  int64_t hidden, layers, heads, kv_heads, head_dim, inter, vocab, max_pos;
  bool tie;
  int64_t experts = 0, top_k = 0, moe_inter = 0;  // mixture-of-experts archs
};

base::Result<Shapes> preset_shapes(const RandomModelSpec& spec) {
  const bool qwen3 = spec.arch == "qwen3";
  Shapes s{};
  if (spec.arch == "gpt-oss") {
    // gpt-oss-shaped: head_dim 64 (16 for tiny), GQA 8:1 (2:1 tiny), intermediate = hidden, top-4.
    if (spec.preset == "tiny") {
      s = {64, 4, 4, 2, 16, 64, 512, 131072, false, 8, 4, 64};
    } else if (spec.preset == "small") {
      s = {512, 6, 8, 1, 64, 512, 8192, 131072, false, 32, 4, 512};
    } else {
      return base::invalid_argument("--preset '" + spec.preset + "' is not one of tiny, small for gpt-oss");
    }
  } else if (spec.arch == "qwen3-moe") {
    // Qwen3-30B-A3B-shaped: small expert MLPs (moe_intermediate_size), top-8 of 128 scaled down.
    if (spec.preset == "tiny") {
      s = {64, 3, 4, 2, 32, 128, 512, 4096, false, 8, 2, 32};
    } else if (spec.preset == "small") {
      s = {512, 6, 8, 2, 64, 1536, 8192, 8192, false, 32, 4, 256};
    } else {
      return base::invalid_argument("--preset '" + spec.preset + "' is not one of tiny, small for qwen3-moe");
    }
  } else if (spec.preset == "tiny") {
    s = {64, 2, 4, 2, qwen3 ? 32 : 16, 128, 512, 4096, qwen3};
  } else if (spec.preset == "small") {
    s = {256, 4, 8, 4, qwen3 ? 64 : 32, 768, 4096, 8192, qwen3};
  } else if (spec.preset == "0.6b") {
    s = {1024, 28, 16, 8, 128, 3072, 151936, 40960, true};
  } else {
    return base::invalid_argument("--preset '" + spec.preset + "' is not one of tiny, small, 0.6b");
  }
  if (spec.hidden_size) s.hidden = *spec.hidden_size;
  if (spec.num_hidden_layers) s.layers = *spec.num_hidden_layers;
  if (spec.num_attention_heads) s.heads = *spec.num_attention_heads;
  if (spec.num_key_value_heads) s.kv_heads = *spec.num_key_value_heads;
  if (spec.head_dim) s.head_dim = *spec.head_dim;
  if (spec.intermediate_size) s.inter = *spec.intermediate_size;
  if (spec.vocab_size) s.vocab = *spec.vocab_size;
  if (spec.tie_word_embeddings) s.tie = *spec.tie_word_embeddings;
  if (spec.num_experts) s.experts = *spec.num_experts;
  if (spec.num_experts_per_tok) s.top_k = *spec.num_experts_per_tok;
  if (spec.arch == "gpt-oss") s.moe_inter = s.inter;
  if (s.experts > 0 && (s.top_k <= 0 || s.top_k > s.experts))
    return base::invalid_argument("--experts-per-tok must be in [1, --num-experts]");
  if (spec.arch == "gpt-oss" && (s.hidden % 32 != 0 || s.inter % 32 != 0))
    return base::invalid_argument("gpt-oss: --hidden-size and --intermediate-size must be multiples of 32");
  if (spec.rope_scaling == "llama3") s.max_pos = 131072;
  for (int64_t v : {s.hidden, s.layers, s.heads, s.kv_heads, s.head_dim, s.inter, s.vocab}) {
    if (v <= 0 || v > (int64_t{1} << 24)) return base::invalid_argument("model sizes must be in [1, 2^24]");
  }
  if (s.heads % s.kv_heads != 0)
    return base::invalid_argument("--num-kv-heads must divide the number of heads");
  if (s.head_dim % 2 != 0) return base::invalid_argument("--head-dim must be even");
  return s;
}

// Token ids from the tokenizer files: size (max id + 1) and the ids of special tokens by content.
struct TokenizerInfo {
  int64_t size = 0;
  std::optional<int32_t> bos, eos, pad;
};

std::optional<std::string> special_token_content(const nlohmann::json& config, const char* key) {
  auto it = config.find(key);
  if (it == config.end() || it->is_null()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content") && (*it)["content"].is_string()) {
    return (*it)["content"].get<std::string>();
  }
  return std::nullopt;
}

base::Result<TokenizerInfo> read_tokenizer_info(const std::string& dir) {
  const std::string path = base::join_path(dir, "tokenizer.json");
  NIBBLE_ASSIGN_OR_RETURN(std::string text, base::read_file(path));
  nlohmann::json tok = nlohmann::json::parse(text, nullptr, false);
  if (tok.is_discarded() || !tok.is_object()) return base::corrupt(path + ": not valid JSON");
  TokenizerInfo info;
  std::map<std::string, int32_t> by_content;
  auto note = [&](const std::string& content, int64_t id) {
    info.size = std::max(info.size, id + 1);
    by_content.emplace(content, static_cast<int32_t>(id));
  };
  if (auto m = tok.find("model"); m != tok.end() && m->is_object()) {
    if (auto v = m->find("vocab"); v != m->end()) {
      if (v->is_object()) {
        for (auto& [content, id] : v->items()) {
          if (id.is_number_integer()) note(content, id.get<int64_t>());
        }
      } else if (v->is_array()) {  // unigram: [[piece, score], ...]
        info.size = std::max<int64_t>(info.size, static_cast<int64_t>(v->size()));
      }
    }
  }
  if (auto a = tok.find("added_tokens"); a != tok.end() && a->is_array()) {
    for (const auto& t : *a) {
      if (t.is_object() && t.contains("id") && t["id"].is_number_integer() && t.contains("content") &&
          t["content"].is_string()) {
        note(t["content"].get<std::string>(), t["id"].get<int64_t>());
      }
    }
  }
  if (info.size == 0) return base::corrupt(path + ": no vocabulary found (model.vocab / added_tokens)");
  const std::string config_path = base::join_path(dir, "tokenizer_config.json");
  if (base::file_exists(config_path)) {
    NIBBLE_ASSIGN_OR_RETURN(std::string ctext, base::read_file(config_path));
    nlohmann::json cfg = nlohmann::json::parse(ctext, nullptr, false);
    if (cfg.is_discarded() || !cfg.is_object()) return base::corrupt(config_path + ": not valid JSON");
    auto lookup = [&](const char* key) -> std::optional<int32_t> {
      auto content = special_token_content(cfg, key);
      if (!content) return std::nullopt;
      auto it = by_content.find(*content);
      if (it == by_content.end()) return std::nullopt;
      return it->second;
    };
    info.bos = lookup("bos_token");
    info.eos = lookup("eos_token");
    info.pad = lookup("pad_token");
  }
  return info;
}

base::Status copy_tokenizer_files(const std::string& from, const std::string& to) {
  bool copied_any = false;
  for (const char* name : {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json",
                           "merges.txt", "tokenizer.model", "chat_template.jinja"}) {
    const std::string src = base::join_path(from, name);
    if (!base::file_exists(src)) continue;
    NIBBLE_ASSIGN_OR_RETURN(std::string bytes, base::read_file(src));
    NIBBLE_TRY(base::write_file_atomic(base::join_path(to, name), bytes));
    copied_any = true;
  }
  if (!copied_any) return base::not_found(from + ": no tokenizer files (tokenizer.json, ...)");
  return base::ok_status();
}

// A harmony-format chat template for random gpt-oss checkpoints whose tokenizer folder has none
// (written for nibble; gpt-oss ships its own with the weights). It frames messages as gpt-oss does:
// <|start|>ROLE<|message|>TEXT<|end|>, assistant turns in the analysis / final channels, and the
// generation prompt "<|start|>assistant" (the model then writes <|channel|>NAME<|message|>...).
constexpr const char* kHarmonyTemplate = R"TPL({#- Harmony-format chat template written by nibble make-model. -#}
{%- set effort = reasoning_effort if reasoning_effort is defined else 'medium' -%}
<|start|>system<|message|>Reasoning: {{ effort }}

# Valid channels: analysis, final. Channel must be included for every message.<|end|>
{%- for m in messages -%}
{%- if m.role == 'system' or m.role == 'developer' -%}
<|start|>developer<|message|># Instructions

{{ m.content }}<|end|>
{%- elif m.role == 'user' -%}
<|start|>user<|message|>{{ m.content }}<|end|>
{%- elif m.role == 'assistant' -%}
{%- if loop.last and m.reasoning_content is defined and m.reasoning_content -%}
<|start|>assistant<|channel|>analysis<|message|>{{ m.reasoning_content }}<|end|>
{%- endif -%}
<|start|>assistant<|channel|>final<|message|>{{ m.content }}{{ '<|return|>' if loop.last and not add_generation_prompt else '<|end|>' }}
{%- endif -%}
{%- endfor -%}
{%- if add_generation_prompt -%}
<|start|>assistant
{%- endif -%}
)TPL";

bool has_chat_template(const std::string& dir) {
  if (base::file_exists(base::join_path(dir, "chat_template.jinja"))) return true;
  auto text = base::read_file(base::join_path(dir, "tokenizer_config.json"));
  return text.ok() && text->find("\"chat_template\"") != std::string::npos;
}

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

// One tensor's values: mean + std * N(0,1), from a stream seeded by (seed, name).
// (With `with_data` false only the name, shape, dtype and byte count are filled in.)
struct TensorBytes {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
  tensor::DType dtype = tensor::DType::kF32;
  uint64_t num_bytes = 0;
};

TensorBytes make_tensor(const std::string& name, std::vector<int64_t> shape, double mean, double std_dev,
                        uint64_t seed, tensor::DType dtype, bool with_data) {
  int64_t num_elems = 1;
  for (int64_t d : shape) num_elems *= d;
  NormalRng rng(seed ^ fnv1a(name));
  TensorBytes t{name, std::move(shape), {}, dtype};
  const int elem_bytes = tensor::dtype_bits(dtype) / 8;
  t.num_bytes = static_cast<uint64_t>(num_elems * elem_bytes);
  if (!with_data) return t;
  t.bytes.resize(static_cast<size_t>(num_elems * elem_bytes));
  for (int64_t i = 0; i < num_elems; ++i) {
    const auto v = static_cast<float>(mean + std_dev * rng.next_normal());
    uint8_t* dst = t.bytes.data() + i * elem_bytes;
    if (dtype == tensor::DType::kF32) {
      std::memcpy(dst, &v, 4);
    } else {
      const uint16_t h = dtype == tensor::DType::kBF16 ? base::float_to_bf16(v) : base::float_to_f16(v);
      std::memcpy(dst, &h, 2);
    }
  }
  return t;
}

// gpt-oss MXFP4 experts: E matrices [N, K] ~ N(0, std), each quantized with formats' default
// MXFP4 writer rule, stored as blocks [E, N, K/32, 16] and scales [E, N, K/32].
base::Status make_mxfp4_experts(const std::string& prefix, int64_t num_experts, int64_t rows, int64_t cols,
                                double std_dev, uint64_t seed, bool with_data,
                                std::vector<TensorBytes>& out) {
  const formats::BlockFormat* f = formats::find_block_format("mxfp4");
  NIBBLE_CHECK(f != nullptr, "formats table has no mxfp4 row");
  TensorBytes blocks{prefix + "_blocks", {num_experts, rows, cols / 32, 16}, {}, tensor::DType::kU8};
  TensorBytes scales{prefix + "_scales", {num_experts, rows, cols / 32}, {}, tensor::DType::kU8};
  blocks.num_bytes = static_cast<uint64_t>(num_experts * rows * (cols / 32) * 16);
  scales.num_bytes = static_cast<uint64_t>(num_experts * rows * (cols / 32));
  if (!with_data) {
    out.push_back(std::move(blocks));
    out.push_back(std::move(scales));
    return base::ok_status();
  }
  NormalRng rng(seed ^ fnv1a(blocks.name));
  std::vector<float> w(static_cast<size_t>(rows * cols));
  for (int64_t e = 0; e < num_experts; ++e) {
    for (float& v : w) v = static_cast<float>(std_dev * rng.next_normal());
    NIBBLE_ASSIGN_OR_RETURN(formats::QuantizedTensor q, formats::quantize_tensor(*f, w, rows, cols));
    blocks.bytes.insert(blocks.bytes.end(), q.data.begin(), q.data.end());
    scales.bytes.insert(scales.bytes.end(), q.scales.begin(), q.scales.end());
  }
  out.push_back(std::move(blocks));
  out.push_back(std::move(scales));
  return base::ok_status();
}

// config.json fields and tensors of gpt-oss (GptOssForCausalLM) and Qwen3-MoE (Qwen3MoeForCausalLM).
base::Status build_moe(const RandomModelSpec& spec, const Shapes& s, tensor::DType dtype, bool with_data,
                       Json& config, std::vector<TensorBytes>& tensors) {
  const bool gpt_oss = spec.arch == "gpt-oss";
  const double kStd = spec.init_std, kNormNoise = 0.05;
  const uint64_t seed = spec.seed;
  // gpt-oss keeps norms in F32 (the HF converter's "only ones in float32"); others in --dtype.
  const tensor::DType norm_dtype = gpt_oss ? tensor::DType::kF32 : dtype;
  if (gpt_oss) {
    config["attention_bias"] = true;
    config["attention_dropout"] = 0.0;
    config["experts_per_token"] = s.top_k;
    config["initial_context_length"] = 4096;
    Json layer_types = Json::array();
    for (int64_t i = 0; i < s.layers; ++i)
      layer_types.push_back(i % 2 == 0 ? "sliding_attention" : "full_attention");
    config["layer_types"] = layer_types;
    config["num_local_experts"] = s.experts;
    config["output_router_logits"] = false;
    config["quantization_config"] = {
        {"modules_to_not_convert",
         {"model.layers.*.self_attn", "model.layers.*.mlp.router", "model.embed_tokens", "lm_head"}},
        {"quant_method", "mxfp4"}};
    config["rope_scaling"] = {{"beta_fast", 32.0},   {"beta_slow", 1.0},
                              {"factor", 32.0},      {"original_max_position_embeddings", 4096},
                              {"rope_type", "yarn"}, {"truncate", false}};
    config["rope_theta"] = 150000.0;
    config["rms_norm_eps"] = 1e-5;
    config["router_aux_loss_coef"] = 0.9;
    config["sliding_window"] = 128;
    config["swiglu_limit"] = 7.0;
  } else {
    config["attention_bias"] = false;
    config["decoder_sparse_step"] = 1;
    // One dense layer in the middle exercises mlp_only_layers (real Qwen3-MoE lists none).
    config["mlp_only_layers"] = s.layers > 2 ? Json::array({1}) : Json::array();
    config["moe_intermediate_size"] = s.moe_inter;
    config["norm_topk_prob"] = true;
    config["num_experts"] = s.experts;
    config["rms_norm_eps"] = 1e-6;
    config["rope_scaling"] = nullptr;
    config["rope_theta"] = 1000000.0;
    config["router_aux_loss_coef"] = 0.001;
    config["sliding_window"] = nullptr;
    config["use_sliding_window"] = false;
  }
  config["num_experts_per_tok"] = s.top_k;

  tensors.push_back(
      make_tensor("model.embed_tokens.weight", {s.vocab, s.hidden}, 0.0, kStd, seed, dtype, with_data));
  for (int64_t i = 0; i < s.layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    auto add = [&](const std::string& name, std::vector<int64_t> shape, double mean, double std_dev,
                   tensor::DType dt) {
      tensors.push_back(make_tensor(p + name, std::move(shape), mean, std_dev, seed, dt, with_data));
    };
    const int64_t q_dim = s.heads * s.head_dim, kv_dim = s.kv_heads * s.head_dim;
    add("input_layernorm.weight", {s.hidden}, 1.0, kNormNoise, norm_dtype);
    add("self_attn.q_proj.weight", {q_dim, s.hidden}, 0.0, kStd, dtype);
    add("self_attn.k_proj.weight", {kv_dim, s.hidden}, 0.0, kStd, dtype);
    add("self_attn.v_proj.weight", {kv_dim, s.hidden}, 0.0, kStd, dtype);
    add("self_attn.o_proj.weight", {s.hidden, q_dim}, 0.0, kStd, dtype);
    if (gpt_oss) {
      add("self_attn.q_proj.bias", {q_dim}, 0.0, kStd, dtype);
      add("self_attn.k_proj.bias", {kv_dim}, 0.0, kStd, dtype);
      add("self_attn.v_proj.bias", {kv_dim}, 0.0, kStd, dtype);
      add("self_attn.o_proj.bias", {s.hidden}, 0.0, kStd, dtype);
      // Sinks around 0: comparable to the QK logits, so they take a visible share of the mass.
      add("self_attn.sinks", {s.heads}, 0.0, 1.0, dtype);
    } else {
      add("self_attn.q_norm.weight", {s.head_dim}, 1.0, kNormNoise, dtype);
      add("self_attn.k_norm.weight", {s.head_dim}, 1.0, kNormNoise, dtype);
    }
    add("post_attention_layernorm.weight", {s.hidden}, 1.0, kNormNoise, norm_dtype);
    if (gpt_oss) {
      // The router sees a normed input (|h| ~ 1 per element): std 1/sqrt(H)-ish logits spread
      // experts; a bias breaks ties between layers.
      add("mlp.router.weight", {s.experts, s.hidden}, 0.0, kStd * 5, dtype);
      add("mlp.router.bias", {s.experts}, 0.0, kStd, dtype);
      NIBBLE_TRY(make_mxfp4_experts(p + "mlp.experts.gate_up_proj", s.experts, 2 * s.moe_inter, s.hidden,
                                    kStd, seed, with_data, tensors));
      // Wide gate/up biases (std 3) push ~2% of the pre-activations past the SwiGLU clamp (±7),
      // so the clamp is exercised as in the real model.
      add("mlp.experts.gate_up_proj_bias", {s.experts, 2 * s.moe_inter}, 0.0, 3.0, dtype);
      NIBBLE_TRY(make_mxfp4_experts(p + "mlp.experts.down_proj", s.experts, s.hidden, s.moe_inter, kStd, seed,
                                    with_data, tensors));
      add("mlp.experts.down_proj_bias", {s.experts, s.hidden}, 0.0, kStd, dtype);
    } else if (i == 1 && s.layers > 2) {
      add("mlp.gate_proj.weight", {s.inter, s.hidden}, 0.0, kStd, dtype);
      add("mlp.up_proj.weight", {s.inter, s.hidden}, 0.0, kStd, dtype);
      add("mlp.down_proj.weight", {s.hidden, s.inter}, 0.0, kStd, dtype);
    } else {
      add("mlp.gate.weight", {s.experts, s.hidden}, 0.0, kStd * 5, dtype);
      for (int64_t e = 0; e < s.experts; ++e) {
        const std::string q = "mlp.experts." + std::to_string(e) + ".";
        add(q + "gate_proj.weight", {s.moe_inter, s.hidden}, 0.0, kStd, dtype);
        add(q + "up_proj.weight", {s.moe_inter, s.hidden}, 0.0, kStd, dtype);
        add(q + "down_proj.weight", {s.hidden, s.moe_inter}, 0.0, kStd, dtype);
      }
    }
  }
  tensors.push_back(
      make_tensor("model.norm.weight", {s.hidden}, 1.0, kNormNoise, seed, norm_dtype, with_data));
  if (!s.tie)
    tensors.push_back(make_tensor("lm_head.weight", {s.vocab, s.hidden}, 0.0, kStd, seed, dtype, with_data));
  return base::ok_status();
}

// Everything write_random_checkpoint writes, built in memory (tensor values only `with_data`).
struct Generated {
  std::string config_text;
  std::string generation_config_text;
  std::vector<TensorBytes> tensors;
};

base::Result<Generated> generate(const std::string& out_dir, const RandomModelSpec& spec, bool with_data) {
  const bool moe = spec.arch == "gpt-oss" || spec.arch == "qwen3-moe";
  if (spec.arch != "qwen3" && spec.arch != "llama" && !moe) {
    return base::invalid_argument("--arch '" + spec.arch +
                                  "' is not one of qwen3, llama, gpt-oss, qwen3-moe");
  }
  if (moe && !spec.rope_scaling.empty())
    return base::invalid_argument("--rope-scaling is not supported for " + spec.arch);
  if (!spec.rope_scaling.empty() && spec.rope_scaling != "llama3") {
    return base::invalid_argument("--rope-scaling '" + spec.rope_scaling +
                                  "' is not supported (supported: llama3)");
  }
  tensor::DType dtype;
  std::string torch_dtype;
  if (spec.dtype == "bf16") {
    dtype = tensor::DType::kBF16;
    torch_dtype = "bfloat16";
  } else if (spec.dtype == "f16") {
    dtype = tensor::DType::kF16;
    torch_dtype = "float16";
  } else if (spec.dtype == "f32") {
    dtype = tensor::DType::kF32;
    torch_dtype = "float32";
  } else {
    return base::invalid_argument("--dtype '" + spec.dtype + "' is not one of bf16, f16, f32");
  }
  if (!(spec.init_std > 0.0 && spec.init_std <= 1.0))
    return base::invalid_argument("--init-std must be in (0, 1]");
  NIBBLE_ASSIGN_OR_RETURN(Shapes s, preset_shapes(spec));

  TokenizerInfo tok;
  if (!spec.tokenizer_dir.empty()) {
    NIBBLE_ASSIGN_OR_RETURN(tok, read_tokenizer_info(spec.tokenizer_dir));
    if (spec.vocab_size && *spec.vocab_size < tok.size) {
      return base::invalid_argument("--vocab-size " + std::to_string(*spec.vocab_size) +
                                    " is smaller than the tokenizer's " + std::to_string(tok.size) +
                                    " tokens");
    }
    if (s.vocab < tok.size) s.vocab = (tok.size + 127) / 128 * 128;
  }
  const int32_t bos = tok.bos.value_or(tok.pad.value_or(1));
  const int32_t eos = tok.eos.value_or(2);
  std::vector<int32_t> eos_ids = {eos};
  if (tok.pad && *tok.pad != eos) eos_ids.push_back(*tok.pad);
  if (bos >= s.vocab || eos >= s.vocab)
    return base::invalid_argument("vocab size too small for the bos/eos ids");

  const bool qwen3 = spec.arch == "qwen3";
  const bool llama = spec.arch == "llama";
  Json config;
  if (spec.arch == "gpt-oss") {
    config["architectures"] = {"GptOssForCausalLM"};
    config["model_type"] = "gpt_oss";
  } else if (spec.arch == "qwen3-moe") {
    config["architectures"] = {"Qwen3MoeForCausalLM"};
    config["model_type"] = "qwen3_moe";
  } else {
    config["architectures"] = {qwen3 ? "Qwen3ForCausalLM" : "LlamaForCausalLM"};
    config["model_type"] = qwen3 ? "qwen3" : "llama";
  }
  config["attention_bias"] = false;
  config["bos_token_id"] = bos;
  config["eos_token_id"] = eos;
  config["head_dim"] = s.head_dim;
  config["hidden_act"] = "silu";
  config["hidden_size"] = s.hidden;
  config["initializer_range"] = 0.02;
  config["intermediate_size"] = s.inter;
  config["max_position_embeddings"] = s.max_pos;
  if (llama) config["mlp_bias"] = false;
  config["num_attention_heads"] = s.heads;
  config["num_hidden_layers"] = s.layers;
  config["num_key_value_heads"] = s.kv_heads;
  config["rms_norm_eps"] = qwen3 ? 1e-6 : 1e-5;
  config["rope_theta"] = qwen3 ? 1000000.0 : 500000.0;
  if (spec.rope_scaling == "llama3") {
    config["rope_scaling"] = {{"factor", 8.0},
                              {"high_freq_factor", 4.0},
                              {"low_freq_factor", 1.0},
                              {"original_max_position_embeddings", 8192},
                              {"rope_type", "llama3"}};
  } else {
    config["rope_scaling"] = nullptr;
  }
  config["tie_word_embeddings"] = s.tie;
  config["torch_dtype"] = torch_dtype;
  config["use_cache"] = true;
  if (qwen3) config["use_sliding_window"] = false;
  config["vocab_size"] = s.vocab;
  std::vector<TensorBytes> tensors;
  if (moe) NIBBLE_TRY(build_moe(spec, s, dtype, with_data, config, tensors));
  // Check what we wrote with our own parser: make-model never writes a checkpoint nibble rejects.
  const std::string config_text = config.dump(2) + "\n";
  NIBBLE_TRY(parse_model_config(config_text, base::join_path(out_dir, "config.json")).status());

  Json gen;
  gen["bos_token_id"] = bos;
  gen["eos_token_id"] = eos_ids;
  gen["do_sample"] = true;
  gen["temperature"] = 0.6;
  gen["top_p"] = qwen3 ? 0.95 : 0.9;
  if (qwen3) gen["top_k"] = 20;

  // Tensors, in Hugging Face names. Linear and embedding std init_std (0.02); norms 1 + 0.05 * N(0,1).
  const double kStd = spec.init_std, kNormNoise = 0.05;
  if (!moe) {
    tensors.push_back(make_tensor("model.embed_tokens.weight", {s.vocab, s.hidden}, 0.0, kStd, spec.seed,
                                  dtype, with_data));
  }
  for (int64_t i = 0; i < s.layers && !moe; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    auto linear = [&](const std::string& name, int64_t rows, int64_t cols) {
      tensors.push_back(make_tensor(p + name, {rows, cols}, 0.0, kStd, spec.seed, dtype, with_data));
    };
    auto norm = [&](const std::string& name, int64_t dim) {
      tensors.push_back(make_tensor(p + name, {dim}, 1.0, kNormNoise, spec.seed, dtype, with_data));
    };
    norm("input_layernorm.weight", s.hidden);
    linear("self_attn.q_proj.weight", s.heads * s.head_dim, s.hidden);
    linear("self_attn.k_proj.weight", s.kv_heads * s.head_dim, s.hidden);
    linear("self_attn.v_proj.weight", s.kv_heads * s.head_dim, s.hidden);
    linear("self_attn.o_proj.weight", s.hidden, s.heads * s.head_dim);
    if (qwen3) {
      norm("self_attn.q_norm.weight", s.head_dim);
      norm("self_attn.k_norm.weight", s.head_dim);
    }
    norm("post_attention_layernorm.weight", s.hidden);
    linear("mlp.gate_proj.weight", s.inter, s.hidden);
    linear("mlp.up_proj.weight", s.inter, s.hidden);
    linear("mlp.down_proj.weight", s.hidden, s.inter);
  }
  if (!moe) {
    tensors.push_back(
        make_tensor("model.norm.weight", {s.hidden}, 1.0, kNormNoise, spec.seed, dtype, with_data));
    if (!s.tie)
      tensors.push_back(
          make_tensor("lm_head.weight", {s.vocab, s.hidden}, 0.0, kStd, spec.seed, dtype, with_data));
  }
  return Generated{config_text, gen.dump(2) + "\n", std::move(tensors)};
}

}  // namespace

base::Status write_random_checkpoint(const std::string& out_dir, const RandomModelSpec& spec) {
  NIBBLE_ASSIGN_OR_RETURN(Generated g, generate(out_dir, spec, /*with_data=*/true));
  std::error_code ec;
  std::filesystem::create_directories(out_dir, ec);
  if (ec) return base::io_error(out_dir + ": cannot create folder: " + ec.message());
  std::vector<io::TensorToWrite> to_write;
  for (const auto& t : g.tensors)
    to_write.push_back({t.name, t.dtype, t.shape, t.bytes.data(), t.bytes.size()});
  NIBBLE_TRY(
      io::write_safetensors(base::join_path(out_dir, "model.safetensors"), to_write, {{"format", "pt"}}));
  NIBBLE_TRY(base::write_file_atomic(base::join_path(out_dir, "config.json"), g.config_text));
  NIBBLE_TRY(
      base::write_file_atomic(base::join_path(out_dir, "generation_config.json"), g.generation_config_text));
  if (!spec.tokenizer_dir.empty()) {
    NIBBLE_TRY(copy_tokenizer_files(spec.tokenizer_dir, out_dir));
    if (spec.arch == "gpt-oss" && !has_chat_template(out_dir)) {
      NIBBLE_TRY(base::write_file_atomic(base::join_path(out_dir, "chat_template.jinja"), kHarmonyTemplate));
    }
  }
  return base::ok_status();
}

base::Result<RandomCheckpointLayout> random_checkpoint_layout(const RandomModelSpec& spec) {
  NIBBLE_ASSIGN_OR_RETURN(Generated g, generate("(layout)", spec, /*with_data=*/false));
  RandomCheckpointLayout layout;
  layout.config_text = std::move(g.config_text);
  for (const TensorBytes& t : g.tensors) layout.tensors.push_back({t.name, t.shape, t.dtype, t.num_bytes});
  return layout;
}

}  // namespace nibble::model
