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
};

base::Result<Shapes> preset_shapes(const RandomModelSpec& spec) {
  const bool qwen3 = spec.arch == "qwen3";
  Shapes s{};
  if (spec.preset == "tiny") {
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

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

// One tensor's values: mean + std * N(0,1), from a stream seeded by (seed, name).
struct TensorBytes {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};

TensorBytes make_tensor(const std::string& name, std::vector<int64_t> shape, double mean, double std_dev,
                        uint64_t seed, tensor::DType dtype) {
  int64_t num_elems = 1;
  for (int64_t d : shape) num_elems *= d;
  NormalRng rng(seed ^ fnv1a(name));
  TensorBytes t{name, std::move(shape), {}};
  const int elem_bytes = tensor::dtype_bits(dtype) / 8;
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

}  // namespace

base::Status write_random_checkpoint(const std::string& out_dir, const RandomModelSpec& spec) {
  if (spec.arch != "qwen3" && spec.arch != "llama") {
    return base::invalid_argument("--arch '" + spec.arch + "' is not one of qwen3, llama");
  }
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

  std::error_code ec;
  std::filesystem::create_directories(out_dir, ec);
  if (ec) return base::io_error(out_dir + ": cannot create folder: " + ec.message());

  const bool qwen3 = spec.arch == "qwen3";
  Json config;
  config["architectures"] = {qwen3 ? "Qwen3ForCausalLM" : "LlamaForCausalLM"};
  config["model_type"] = qwen3 ? "qwen3" : "llama";
  config["attention_bias"] = false;
  config["bos_token_id"] = bos;
  config["eos_token_id"] = eos;
  config["head_dim"] = s.head_dim;
  config["hidden_act"] = "silu";
  config["hidden_size"] = s.hidden;
  config["initializer_range"] = 0.02;
  config["intermediate_size"] = s.inter;
  config["max_position_embeddings"] = s.max_pos;
  if (!qwen3) config["mlp_bias"] = false;
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
  std::vector<TensorBytes> tensors;
  const double kStd = spec.init_std, kNormNoise = 0.05;
  tensors.push_back(
      make_tensor("model.embed_tokens.weight", {s.vocab, s.hidden}, 0.0, kStd, spec.seed, dtype));
  for (int64_t i = 0; i < s.layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    auto linear = [&](const std::string& name, int64_t rows, int64_t cols) {
      tensors.push_back(make_tensor(p + name, {rows, cols}, 0.0, kStd, spec.seed, dtype));
    };
    auto norm = [&](const std::string& name, int64_t dim) {
      tensors.push_back(make_tensor(p + name, {dim}, 1.0, kNormNoise, spec.seed, dtype));
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
  tensors.push_back(make_tensor("model.norm.weight", {s.hidden}, 1.0, kNormNoise, spec.seed, dtype));
  if (!s.tie)
    tensors.push_back(make_tensor("lm_head.weight", {s.vocab, s.hidden}, 0.0, kStd, spec.seed, dtype));

  std::vector<io::TensorToWrite> to_write;
  for (const auto& t : tensors) to_write.push_back({t.name, dtype, t.shape, t.bytes.data(), t.bytes.size()});
  NIBBLE_TRY(
      io::write_safetensors(base::join_path(out_dir, "model.safetensors"), to_write, {{"format", "pt"}}));
  NIBBLE_TRY(base::write_file_atomic(base::join_path(out_dir, "config.json"), config_text));
  NIBBLE_TRY(base::write_file_atomic(base::join_path(out_dir, "generation_config.json"), gen.dump(2) + "\n"));
  if (!spec.tokenizer_dir.empty()) NIBBLE_TRY(copy_tokenizer_files(spec.tokenizer_dir, out_dir));
  return base::ok_status();
}

}  // namespace nibble::model
