#include "model/config.h"

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "base/file_util.h"
#include "model/registry.h"

namespace nibble::model {
namespace {

using Json = nlohmann::json;

std::string type_name(const Json& v) {
  return v.type_name();
}

base::Status field_error(const std::string& path, std::string_view field, const std::string& what) {
  return base::invalid_argument(path + ": field '" + std::string(field) + "' " + what);
}

// Reads an integer field; nullopt when absent or null.
base::Result<std::optional<int64_t>> opt_int(const Json& obj, std::string_view field,
                                             const std::string& path) {
  auto it = obj.find(field);
  if (it == obj.end() || it->is_null()) return std::optional<int64_t>();
  if (!it->is_number_integer()) return field_error(path, field, "must be an integer, got " + type_name(*it));
  return std::optional<int64_t>(it->get<int64_t>());
}

base::Result<std::optional<double>> opt_number(const Json& obj, std::string_view field,
                                               const std::string& path) {
  auto it = obj.find(field);
  if (it == obj.end() || it->is_null()) return std::optional<double>();
  if (!it->is_number()) return field_error(path, field, "must be a number, got " + type_name(*it));
  return std::optional<double>(it->get<double>());
}

base::Result<std::optional<bool>> opt_bool(const Json& obj, std::string_view field, const std::string& path) {
  auto it = obj.find(field);
  if (it == obj.end() || it->is_null()) return std::optional<bool>();
  if (!it->is_boolean()) return field_error(path, field, "must be true or false, got " + type_name(*it));
  return std::optional<bool>(it->get<bool>());
}

base::Result<int64_t> req_positive_int(const Json& obj, std::string_view field, const std::string& path) {
  NIBBLE_ASSIGN_OR_RETURN(auto v, opt_int(obj, field, path));
  if (!v) return field_error(path, field, "is missing");
  if (*v <= 0) return field_error(path, field, "must be positive, got " + std::to_string(*v));
  return *v;
}

base::Result<int32_t> token_id(const Json& v, std::string_view field, const std::string& path) {
  if (!v.is_number_integer())
    return field_error(path, field, "must be a token id (integer), got " + type_name(v));
  const int64_t id = v.get<int64_t>();
  if (id < 0 || id > std::numeric_limits<int32_t>::max()) {
    return field_error(path, field, "token id out of range: " + std::to_string(id));
  }
  return static_cast<int32_t>(id);
}

// `eos_token_id`: absent/null, an int, or a list of ints.
base::Result<std::vector<int32_t>> token_id_list(const Json& obj, std::string_view field,
                                                 const std::string& path) {
  std::vector<int32_t> ids;
  auto it = obj.find(field);
  if (it == obj.end() || it->is_null()) return ids;
  if (it->is_array()) {
    for (const Json& v : *it) {
      NIBBLE_ASSIGN_OR_RETURN(int32_t id, token_id(v, field, path));
      ids.push_back(id);
    }
    return ids;
  }
  NIBBLE_ASSIGN_OR_RETURN(int32_t id, token_id(*it, field, path));
  ids.push_back(id);
  return ids;
}

base::Result<std::optional<int32_t>> opt_token_id(const Json& obj, std::string_view field,
                                                  const std::string& path) {
  auto it = obj.find(field);
  if (it == obj.end() || it->is_null()) return std::optional<int32_t>();
  NIBBLE_ASSIGN_OR_RETURN(int32_t id, token_id(*it, field, path));
  return std::optional<int32_t>(id);
}

base::Result<Json> parse_json_object(std::string_view text, const std::string& path) {
  Json j = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return base::corrupt(path + ": not valid JSON");
  if (!j.is_object()) return base::corrupt(path + ": expected a JSON object at the top level");
  return j;
}

// rope_scaling (classic) or rope_parameters (transformers v5); both carry rope_type (or legacy `type`).
base::Status parse_rope(const Json& config, const std::string& path, ModelConfig* out) {
  const Json* rope = nullptr;
  std::string field = "rope_scaling";
  if (auto it = config.find("rope_scaling"); it != config.end() && !it->is_null()) {
    rope = &*it;
  } else if (auto it2 = config.find("rope_parameters"); it2 != config.end() && !it2->is_null()) {
    rope = &*it2;
    field = "rope_parameters";
  }
  NIBBLE_ASSIGN_OR_RETURN(auto theta, opt_number(config, "rope_theta", path));
  if (rope != nullptr) {
    if (!rope->is_object()) return field_error(path, field, "must be an object, got " + type_name(*rope));
    if (!theta) {
      NIBBLE_ASSIGN_OR_RETURN(theta, opt_number(*rope, "rope_theta", path + ": " + field));
    }
    std::string type = "default";
    for (const char* key : {"rope_type", "type"}) {
      auto it = rope->find(key);
      if (it == rope->end() || it->is_null()) continue;
      if (!it->is_string())
        return field_error(path, field + "." + key, "must be a string, got " + type_name(*it));
      type = it->get<std::string>();
      break;
    }
    if (type == "llama3") {
      const std::string sub = path + ": " + field;
      RopeScaling& rs = out->rope_scaling;
      rs.type = RopeScalingType::kLlama3;
      NIBBLE_ASSIGN_OR_RETURN(auto factor, opt_number(*rope, "factor", sub));
      NIBBLE_ASSIGN_OR_RETURN(auto low, opt_number(*rope, "low_freq_factor", sub));
      NIBBLE_ASSIGN_OR_RETURN(auto high, opt_number(*rope, "high_freq_factor", sub));
      NIBBLE_ASSIGN_OR_RETURN(auto orig, opt_int(*rope, "original_max_position_embeddings", sub));
      if (!factor) return field_error(path, field + ".factor", "is missing (required by rope_type llama3)");
      if (!low)
        return field_error(path, field + ".low_freq_factor", "is missing (required by rope_type llama3)");
      if (!high)
        return field_error(path, field + ".high_freq_factor", "is missing (required by rope_type llama3)");
      if (!orig) {
        return field_error(path, field + ".original_max_position_embeddings",
                           "is missing (required by rope_type llama3)");
      }
      if (!(*factor > 0) || !(*low > 0) || !(*high > *low) || *orig <= 0) {
        return field_error(
            path, field,
            "has invalid llama3 values (need factor > 0, high_freq_factor > low_freq_factor > 0, "
            "original_max_position_embeddings > 0)");
      }
      rs.factor = *factor;
      rs.low_freq_factor = *low;
      rs.high_freq_factor = *high;
      rs.original_max_position_embeddings = *orig;
    } else if (type == "yarn") {
      const std::string sub = path + ": " + field;
      RopeScaling& rs = out->rope_scaling;
      rs.type = RopeScalingType::kYarn;
      NIBBLE_ASSIGN_OR_RETURN(auto factor, opt_number(*rope, "factor", sub));
      NIBBLE_ASSIGN_OR_RETURN(auto orig, opt_int(*rope, "original_max_position_embeddings", sub));
      NIBBLE_ASSIGN_OR_RETURN(auto beta_fast, opt_number(*rope, "beta_fast", sub));
      NIBBLE_ASSIGN_OR_RETURN(auto beta_slow, opt_number(*rope, "beta_slow", sub));
      NIBBLE_ASSIGN_OR_RETURN(auto attention_factor, opt_number(*rope, "attention_factor", sub));
      NIBBLE_ASSIGN_OR_RETURN(auto truncate, opt_bool(*rope, "truncate", sub));
      if (!factor) return field_error(path, field + ".factor", "is missing (required by rope_type yarn)");
      if (!orig) {
        return field_error(path, field + ".original_max_position_embeddings",
                           "is missing (required by rope_type yarn)");
      }
      // transformers: `beta_fast or 32`, `beta_slow or 1` (a 0 falls back to the default too).
      if (beta_fast && *beta_fast != 0) rs.beta_fast = *beta_fast;
      if (beta_slow && *beta_slow != 0) rs.beta_slow = *beta_slow;
      if (!(*factor >= 1) || *orig <= 0 || !(rs.beta_fast > 0) || !(rs.beta_slow > 0) ||
          (attention_factor && !(*attention_factor > 0))) {
        return field_error(path, field,
                           "has invalid yarn values (need factor >= 1, original_max_position_embeddings > 0, "
                           "beta_fast, beta_slow, attention_factor > 0)");
      }
      rs.factor = *factor;
      rs.original_max_position_embeddings = *orig;
      rs.truncate = truncate.value_or(true);
      rs.attention_factor = attention_factor.value_or(0.0);
    } else if (type != "default") {
      return base::unsupported(path + ": " + field + " type '" + type +
                               "' is not supported (supported: llama3, yarn)");
    }
  }
  if (theta) {
    if (!(*theta > 0)) return field_error(path, "rope_theta", "must be positive");
    out->rope_theta = *theta;
  }
  return base::ok_status();
}

// Sliding-window layers and mixture-of-experts fields (GptOssConfig, Qwen3MoeConfig).
base::Status parse_moe(const Json& j, const std::string& path, ModelConfig* c) {
  const bool gpt_oss = c->architecture == "GptOssForCausalLM";
  const bool qwen3_moe = c->architecture == "Qwen3MoeForCausalLM";
  const auto num_layers = static_cast<size_t>(c->num_hidden_layers);
  NIBBLE_ASSIGN_OR_RETURN(auto window, opt_int(j, "sliding_window", path));
  NIBBLE_ASSIGN_OR_RETURN(auto use_window, opt_bool(j, "use_sliding_window", path));
  // Qwen3 / Qwen3-MoE ignore sliding_window unless use_sliding_window (nibble rejects that case).
  if (use_window.value_or(false)) {
    return base::unsupported(path + ": field 'use_sliding_window' = true is not supported");
  }
  c->layer_types.assign(num_layers, LayerType::kFullAttention);
  if (gpt_oss) {
    if (!window || *window <= 0) return field_error(path, "sliding_window", "must be a positive integer");
    c->sliding_window = *window;
    auto it = j.find("layer_types");
    if (it == j.end() || it->is_null()) {
      // GptOssConfig default: even layers slide, odd layers attend fully.
      for (size_t i = 0; i < num_layers; ++i)
        c->layer_types[i] = i % 2 == 0 ? LayerType::kSlidingAttention : LayerType::kFullAttention;
    } else {
      if (!it->is_array() || it->size() != num_layers) {
        return field_error(
            path, "layer_types",
            "must be a list of num_hidden_layers (" + std::to_string(num_layers) + ") strings");
      }
      for (size_t i = 0; i < num_layers; ++i) {
        const Json& v = (*it)[i];
        if (v == "sliding_attention") {
          c->layer_types[i] = LayerType::kSlidingAttention;
        } else if (v != "full_attention") {
          return field_error(path, "layer_types",
                             "entries must be \"sliding_attention\" or \"full_attention\", got " + v.dump());
        }
      }
    }
  }
  if (!gpt_oss && !qwen3_moe) return base::ok_status();
  MoeConfig& m = c->moe;
  NIBBLE_ASSIGN_OR_RETURN(m.num_experts,
                          req_positive_int(j, gpt_oss ? "num_local_experts" : "num_experts", path));
  NIBBLE_ASSIGN_OR_RETURN(m.num_experts_per_tok, req_positive_int(j, "num_experts_per_tok", path));
  if (m.num_experts_per_tok > m.num_experts) {
    return field_error(path, "num_experts_per_tok",
                       "must not exceed the number of experts (" + std::to_string(m.num_experts) + ")");
  }
  if (m.num_experts > 65536) return field_error(path, "num_experts", "must be at most 65536");
  if (gpt_oss) {
    m.expert_intermediate_size = c->intermediate_size;
    NIBBLE_ASSIGN_OR_RETURN(auto limit, opt_number(j, "swiglu_limit", path));
    NIBBLE_ASSIGN_OR_RETURN(auto alpha, opt_number(j, "swiglu_alpha", path));
    if (limit) m.swiglu_limit = *limit;
    if (alpha) m.swiglu_alpha = *alpha;
    if (!(m.swiglu_limit > 0)) return field_error(path, "swiglu_limit", "must be positive");
    if (!std::isfinite(m.swiglu_alpha)) return field_error(path, "swiglu_alpha", "must be finite");
    if (c->hidden_size % 32 != 0 || c->intermediate_size % 32 != 0) {
      return field_error(path, "hidden_size",
                         "and intermediate_size must be multiples of 32 (the MXFP4 block) for gpt-oss");
    }
    return base::ok_status();
  }
  NIBBLE_ASSIGN_OR_RETURN(m.expert_intermediate_size, req_positive_int(j, "moe_intermediate_size", path));
  NIBBLE_ASSIGN_OR_RETURN(auto norm_topk, opt_bool(j, "norm_topk_prob", path));
  m.norm_topk_prob = norm_topk.value_or(false);
  NIBBLE_ASSIGN_OR_RETURN(auto step, opt_int(j, "decoder_sparse_step", path));
  m.decoder_sparse_step = step.value_or(1);
  if (m.decoder_sparse_step <= 0) return field_error(path, "decoder_sparse_step", "must be positive");
  if (auto it = j.find("mlp_only_layers"); it != j.end() && !it->is_null()) {
    if (!it->is_array()) return field_error(path, "mlp_only_layers", "must be a list of layer indices");
    for (const Json& v : *it) {
      if (!v.is_number_integer())
        return field_error(path, "mlp_only_layers", "must be a list of layer indices");
      m.mlp_only_layers.push_back(v.get<int64_t>());
    }
  }
  return base::ok_status();
}

}  // namespace

base::Result<ModelConfig> parse_model_config(std::string_view json_text, const std::string& path) {
  NIBBLE_ASSIGN_OR_RETURN(Json j, parse_json_object(json_text, path));
  ModelConfig c;
  auto arch_it = j.find("architectures");
  if (arch_it == j.end() || !arch_it->is_array() || arch_it->empty() || !(*arch_it)[0].is_string()) {
    return field_error(
        path, "architectures",
        "must be a non-empty list of strings (supported: " + supported_architecture_names() + ")");
  }
  c.architecture = (*arch_it)[0].get<std::string>();
  if (find_architecture(c.architecture) == nullptr) {
    return base::unsupported(path + ": architecture '" + c.architecture +
                             "' is not supported (supported: " + supported_architecture_names() + ")");
  }
  NIBBLE_ASSIGN_OR_RETURN(c.vocab_size, req_positive_int(j, "vocab_size", path));
  NIBBLE_ASSIGN_OR_RETURN(c.hidden_size, req_positive_int(j, "hidden_size", path));
  NIBBLE_ASSIGN_OR_RETURN(c.intermediate_size, req_positive_int(j, "intermediate_size", path));
  NIBBLE_ASSIGN_OR_RETURN(c.num_hidden_layers, req_positive_int(j, "num_hidden_layers", path));
  NIBBLE_ASSIGN_OR_RETURN(c.num_attention_heads, req_positive_int(j, "num_attention_heads", path));
  NIBBLE_ASSIGN_OR_RETURN(auto kv_heads, opt_int(j, "num_key_value_heads", path));
  c.num_key_value_heads = kv_heads.value_or(c.num_attention_heads);
  if (c.num_key_value_heads <= 0 || c.num_attention_heads % c.num_key_value_heads != 0) {
    return field_error(path, "num_key_value_heads",
                       "must be positive and divide num_attention_heads (" +
                           std::to_string(c.num_attention_heads) + "), got " +
                           std::to_string(c.num_key_value_heads));
  }
  NIBBLE_ASSIGN_OR_RETURN(auto head_dim, opt_int(j, "head_dim", path));
  if (head_dim) {
    c.head_dim = *head_dim;
  } else {
    if (c.hidden_size % c.num_attention_heads != 0) {
      return field_error(path, "head_dim",
                         "is missing and hidden_size is not a multiple of num_attention_heads");
    }
    c.head_dim = c.hidden_size / c.num_attention_heads;
  }
  if (c.head_dim <= 0 || c.head_dim % 2 != 0) {
    return field_error(path, "head_dim", "must be positive and even, got " + std::to_string(c.head_dim));
  }
  NIBBLE_ASSIGN_OR_RETURN(auto eps, opt_number(j, "rms_norm_eps", path));
  if (eps) c.rms_norm_eps = *eps;
  if (!(c.rms_norm_eps > 0)) return field_error(path, "rms_norm_eps", "must be positive");
  NIBBLE_TRY(parse_rope(j, path, &c));
  NIBBLE_ASSIGN_OR_RETURN(c.max_position_embeddings, req_positive_int(j, "max_position_embeddings", path));
  NIBBLE_ASSIGN_OR_RETURN(auto tie, opt_bool(j, "tie_word_embeddings", path));
  c.tie_word_embeddings = tie.value_or(false);
  const bool gpt_oss = c.architecture == "GptOssForCausalLM";
  NIBBLE_ASSIGN_OR_RETURN(auto attention_bias, opt_bool(j, "attention_bias", path));
  c.attention_bias = attention_bias.value_or(false);
  if (c.attention_bias && !gpt_oss) {
    return base::unsupported(path + ": field 'attention_bias' = true is not supported for " + c.architecture);
  }
  NIBBLE_ASSIGN_OR_RETURN(auto mlp_bias, opt_bool(j, "mlp_bias", path));
  if (mlp_bias.value_or(false)) return base::unsupported(path + ": field 'mlp_bias' = true is not supported");
  NIBBLE_TRY(parse_moe(j, path, &c));
  if (auto it = j.find("hidden_act"); it != j.end() && !it->is_null()) {
    if (!it->is_string() || it->get<std::string>() != "silu") {
      return base::unsupported(path + ": field 'hidden_act' must be \"silu\", got " + it->dump());
    }
  }
  for (const char* field : {"torch_dtype", "dtype"}) {
    auto it = j.find(field);
    if (it == j.end() || it->is_null()) continue;
    if (!it->is_string()) return field_error(path, field, "must be a string, got " + type_name(*it));
    c.torch_dtype = it->get<std::string>();
    break;
  }
  NIBBLE_ASSIGN_OR_RETURN(c.bos_token_id, opt_token_id(j, "bos_token_id", path));
  NIBBLE_ASSIGN_OR_RETURN(c.eos_token_ids, token_id_list(j, "eos_token_id", path));
  return c;
}

base::Result<ModelConfig> load_model_config(const std::string& model_dir) {
  const std::string path = base::join_path(model_dir, "config.json");
  if (!base::file_exists(path))
    return base::not_found(path + ": not found (is '" + model_dir + "' a model folder?)");
  NIBBLE_ASSIGN_OR_RETURN(std::string text, base::read_file(path));
  return parse_model_config(text, path);
}

base::Result<GenerationConfig> parse_generation_config(std::string_view json_text, const std::string& path) {
  NIBBLE_ASSIGN_OR_RETURN(Json j, parse_json_object(json_text, path));
  GenerationConfig g;
  NIBBLE_ASSIGN_OR_RETURN(g.do_sample, opt_bool(j, "do_sample", path));
  NIBBLE_ASSIGN_OR_RETURN(auto temperature, opt_number(j, "temperature", path));
  NIBBLE_ASSIGN_OR_RETURN(auto top_p, opt_number(j, "top_p", path));
  NIBBLE_ASSIGN_OR_RETURN(auto top_k, opt_int(j, "top_k", path));
  NIBBLE_ASSIGN_OR_RETURN(auto min_p, opt_number(j, "min_p", path));
  NIBBLE_ASSIGN_OR_RETURN(auto rep, opt_number(j, "repetition_penalty", path));
  NIBBLE_ASSIGN_OR_RETURN(g.max_new_tokens, opt_int(j, "max_new_tokens", path));
  if (temperature) {
    if (!(*temperature >= 0)) return field_error(path, "temperature", "must be >= 0");
    g.temperature = static_cast<float>(*temperature);
  }
  if (top_p) {
    if (!(*top_p > 0 && *top_p <= 1)) return field_error(path, "top_p", "must be in (0, 1]");
    g.top_p = static_cast<float>(*top_p);
  }
  if (top_k) {
    if (*top_k < 0 || *top_k > std::numeric_limits<int32_t>::max())
      return field_error(path, "top_k", "must be >= 0");
    g.top_k = static_cast<int32_t>(*top_k);
  }
  if (min_p) {
    if (!(*min_p >= 0 && *min_p <= 1)) return field_error(path, "min_p", "must be in [0, 1]");
    g.min_p = static_cast<float>(*min_p);
  }
  if (rep) {
    if (!(*rep > 0)) return field_error(path, "repetition_penalty", "must be positive");
    g.repetition_penalty = static_cast<float>(*rep);
  }
  NIBBLE_ASSIGN_OR_RETURN(g.bos_token_id, opt_token_id(j, "bos_token_id", path));
  NIBBLE_ASSIGN_OR_RETURN(g.eos_token_ids, token_id_list(j, "eos_token_id", path));
  return g;
}

base::Result<GenerationConfig> load_generation_config(const std::string& model_dir) {
  const std::string path = base::join_path(model_dir, "generation_config.json");
  if (!base::file_exists(path)) return GenerationConfig{};
  NIBBLE_ASSIGN_OR_RETURN(std::string text, base::read_file(path));
  return parse_generation_config(text, path);
}

}  // namespace nibble::model
