#include "plan/model_shape.h"

#include <algorithm>

#include "base/file_util.h"

namespace nibble::plan {
namespace {

using base::Result;
using base::Status;
using nlohmann::json;

// Any single dimension beyond this is not a real model; the cap keeps every product in range.
constexpr int64_t kMaxDim = int64_t{1} << 24;
constexpr int64_t kMaxLayers = 4096;
constexpr double kMaxParams = 1e14;  // 100 T parameters
constexpr int64_t kMaxKvBytesPerToken = int64_t{1} << 30;

// Field readers: every message names the file and the key at fault.
class ConfigReader {
 public:
  ConfigReader(const json& j, std::string source) : j_(j), source_(std::move(source)) {}

  bool has(const char* key) const { return j_.contains(key) && !j_.at(key).is_null(); }

  Result<int64_t> get_int(const char* key) const {
    if (!has(key)) return base::invalid_argument(source_ + ": field '" + key + "' is missing");
    const json& v = j_.at(key);
    if (!v.is_number_integer())
      return base::invalid_argument(source_ + ": field '" + key + "' is not an integer");
    return v.get<int64_t>();
  }
  Result<int64_t> get_positive(const char* key) const {
    NIBBLE_ASSIGN_OR_RETURN(int64_t v, get_int(key));
    if (v <= 0 || v > kMaxDim) {
      return base::invalid_argument(source_ + ": field '" + key + "' = " + std::to_string(v) +
                                    " is out of range");
    }
    return v;
  }
  Result<int64_t> get_int_or(const char* key, int64_t fallback) const {
    if (!has(key)) return fallback;
    NIBBLE_ASSIGN_OR_RETURN(int64_t v, get_int(key));
    if (v < 0 || v > kMaxDim) {
      return base::invalid_argument(source_ + ": field '" + key + "' = " + std::to_string(v) +
                                    " is out of range");
    }
    return v;
  }
  bool get_bool_or(const char* key, bool fallback) const {
    if (!has(key) || !j_.at(key).is_boolean()) return fallback;
    return j_.at(key).get<bool>();
  }
  std::string get_string_or(const char* key, const std::string& fallback) const {
    if (!has(key) || !j_.at(key).is_string()) return fallback;
    return j_.at(key).get<std::string>();
  }
  const json& at(const char* key) const { return j_.at(key); }
  const std::string& source() const { return source_; }

 private:
  const json& j_;
  std::string source_;
};

Result<Arch> detect_arch(const ConfigReader& r, std::string* architecture) {
  std::string model_type = r.get_string_or("model_type", "");
  *architecture = model_type;
  if (r.has("architectures") && r.at("architectures").is_array() && !r.at("architectures").empty() &&
      r.at("architectures")[0].is_string()) {
    *architecture = r.at("architectures")[0].get<std::string>();
  }
  const std::string& a = *architecture;
  if (a == "Qwen3ForCausalLM" || model_type == "qwen3") return Arch::kQwen3;
  if (a == "Qwen3MoeForCausalLM" || model_type == "qwen3_moe") return Arch::kQwen3Moe;
  if (a == "LlamaForCausalLM" || model_type == "llama") return Arch::kLlama;
  if (a == "GptOssForCausalLM" || model_type == "gpt_oss") return Arch::kGptOss;
  if (a == "DeepseekV3ForCausalLM" || model_type == "deepseek_v3") return Arch::kDeepseekV3;
  return base::unsupported(r.source() + ": architecture '" + a + "' (model_type '" + model_type +
                           "') is not one plan knows (Qwen3, Qwen3-MoE, Llama, gpt-oss, DeepSeek-V3)");
}

Result<std::vector<std::string>> string_list(const json& j, const std::string& what) {
  std::vector<std::string> out;
  if (j.is_null()) return out;
  if (!j.is_array()) return base::invalid_argument(what + " is not a list");
  for (const json& item : j) {
    if (!item.is_string()) return base::invalid_argument(what + " holds a non-string entry");
    out.push_back(item.get<std::string>());
  }
  return out;
}

Status read_layer_types(const ConfigReader& r, ModelShape* m) {
  m->layer_is_sliding.assign(static_cast<size_t>(m->num_layers), false);
  if (!r.has("layer_types")) return base::ok_status();
  const json& types = r.at("layer_types");
  if (!types.is_array() || static_cast<int64_t>(types.size()) != m->num_layers) {
    return base::invalid_argument(r.source() + ": field 'layer_types' must list num_hidden_layers entries");
  }
  for (size_t i = 0; i < types.size(); ++i) {
    if (!types[i].is_string())
      return base::invalid_argument(r.source() + ": field 'layer_types' holds a non-string");
    m->layer_is_sliding[i] = types[i].get<std::string>() == "sliding_attention";
  }
  return base::ok_status();
}

Status read_sliding(const ConfigReader& r, ModelShape* m) {
  NIBBLE_TRY(read_layer_types(r, m));
  const bool any_sliding =
      std::find(m->layer_is_sliding.begin(), m->layer_is_sliding.end(), true) != m->layer_is_sliding.end();
  // Qwen2/3 style: use_sliding_window with max_window_layers (layers from that index slide).
  if (!any_sliding && r.get_bool_or("use_sliding_window", false) && r.has("sliding_window")) {
    NIBBLE_ASSIGN_OR_RETURN(int64_t first, r.get_int_or("max_window_layers", m->num_layers));
    for (int64_t i = first; i < m->num_layers; ++i) m->layer_is_sliding[static_cast<size_t>(i)] = true;
  }
  const bool sliding_now =
      std::find(m->layer_is_sliding.begin(), m->layer_is_sliding.end(), true) != m->layer_is_sliding.end();
  if (sliding_now) {
    NIBBLE_ASSIGN_OR_RETURN(m->sliding_window, r.get_positive("sliding_window"));
  }
  return base::ok_status();
}

WeightFormatId dtype_from_torch(const std::string& torch_dtype) {
  if (torch_dtype == "float32") return WeightFormatId::kF32;
  if (torch_dtype == "float16") return WeightFormatId::kF16;
  return WeightFormatId::kBf16;
}

// Rejects shapes no real model has, so that byte counts stay far inside int64.
Status check_plausible(const ModelShape& m, const std::string& source) {
  if (m.moe.num_experts > 0 && m.moe.num_experts_per_tok > m.moe.num_experts) {
    return base::invalid_argument(
        source + ": num_experts_per_tok (" + std::to_string(m.moe.num_experts_per_tok) +
        ") exceeds the number of experts (" + std::to_string(m.moe.num_experts) + ")");
  }
  const double h = static_cast<double>(m.hidden_size);
  const double attn = 4.0 * h * static_cast<double>(std::max(m.num_heads, m.num_kv_heads) * m.head_dim);
  const double mlp =
      3.0 * h *
      static_cast<double>(m.intermediate_size +
                          (m.moe.num_experts + m.moe.num_shared_experts) * m.moe.expert_intermediate);
  const double params =
      static_cast<double>(m.num_layers) * (attn + mlp) + 2.0 * h * static_cast<double>(m.vocab_size);
  if (params > kMaxParams) {
    return base::invalid_argument(source +
                                  ": the shape adds up to more than 1e14 parameters; not a real model");
  }
  const double kv_per_token =
      static_cast<double>(m.num_layers) * 2 * 2 *
      static_cast<double>(m.num_kv_heads * m.head_dim + (m.mla ? m.mla->kv_lora_rank : 0));
  if (kv_per_token > static_cast<double>(kMaxKvBytesPerToken)) {
    return base::invalid_argument(source + ": more than 1 GiB of KV cache per token; not a real model");
  }
  return base::ok_status();
}

}  // namespace

const char* arch_name(Arch arch) {
  switch (arch) {
    case Arch::kQwen3:
      return "qwen3";
    case Arch::kQwen3Moe:
      return "qwen3_moe";
    case Arch::kLlama:
      return "llama";
    case Arch::kGptOss:
      return "gpt_oss";
    case Arch::kDeepseekV3:
      return "deepseek_v3";
  }
  return "?";
}

Result<QuantScheme> parse_quant_config(const json& quant, const std::string& source) {
  QuantScheme q;
  if (!quant.is_object()) return base::invalid_argument(source + ": quantization_config is not an object");
  const ConfigReader r(quant, source + ": quantization_config");
  q.method = r.get_string_or("quant_method", "");
  if (q.method.empty() && r.has("quant_algo")) q.method = "modelopt";  // hf_quant_config.json "quantization"
  const std::string& m = q.method;
  if (m == "mxfp4") {
    q.linear_format = WeightFormatId::kMxfp4;
    if (r.has("modules_to_not_convert")) {
      NIBBLE_ASSIGN_OR_RETURN(
          q.ignore, string_list(r.at("modules_to_not_convert"), r.source() + ".modules_to_not_convert"));
    }
  } else if (m == "fp8") {
    q.linear_format = WeightFormatId::kFp8;
    if (r.has("weight_block_size")) {
      const json& b = r.at("weight_block_size");
      if (!b.is_array() || b.size() != 2 || b[0] != 128 || b[1] != 128) {
        return base::unsupported(r.source() + ".weight_block_size: only [128, 128] is supported");
      }
      q.linear_format = WeightFormatId::kFp8Block;
    }
    if (r.has("modules_to_not_convert")) {
      NIBBLE_ASSIGN_OR_RETURN(
          q.ignore, string_list(r.at("modules_to_not_convert"), r.source() + ".modules_to_not_convert"));
    }
  } else if (m.rfind("modelopt", 0) == 0) {
    const std::string algo = r.get_string_or("quant_algo", "");
    if (algo == "NVFP4") {
      q.linear_format = WeightFormatId::kNvfp4;
    } else if (algo == "FP8") {
      q.linear_format = WeightFormatId::kFp8;
    } else if (algo == "FP8_PER_CHANNEL_PER_TOKEN") {
      q.linear_format = WeightFormatId::kFp8Channel;
    } else if (algo == "FP8_PB_WO") {
      q.linear_format = WeightFormatId::kFp8Block;
    } else {
      return base::unsupported(r.source() + ".quant_algo '" + algo + "' is not supported by plan");
    }
    for (const char* key : {"ignore", "exclude_modules"}) {
      if (r.has(key)) {
        NIBBLE_ASSIGN_OR_RETURN(auto list, string_list(r.at(key), r.source() + "." + key));
        q.ignore.insert(q.ignore.end(), list.begin(), list.end());
      }
    }
    if (r.get_string_or("kv_cache_quant_algo", "") == "FP8") q.kv_dtype = KvDtype::kFp8;
  } else if (m == "compressed-tensors") {
    const std::string format = r.get_string_or("format", "");
    if (format == "nvfp4-pack-quantized") {
      q.linear_format = WeightFormatId::kNvfp4;
    } else if (format == "mxfp4-pack-quantized") {
      q.linear_format = WeightFormatId::kMxfp4;
    } else if (format == "float-quantized") {
      std::string strategy = "tensor";
      if (r.has("config_groups") && r.at("config_groups").is_object()) {
        for (const auto& [name, group] : r.at("config_groups").items()) {
          if (group.is_object() && group.contains("weights") && group["weights"].is_object() &&
              group["weights"].contains("strategy") && group["weights"]["strategy"].is_string()) {
            strategy = group["weights"]["strategy"].get<std::string>();
          }
        }
      }
      if (strategy == "tensor") {
        q.linear_format = WeightFormatId::kFp8;
      } else if (strategy == "channel") {
        q.linear_format = WeightFormatId::kFp8Channel;
      } else if (strategy == "block") {
        q.linear_format = WeightFormatId::kFp8Block;
      } else {
        return base::unsupported(r.source() + ": float-quantized weight strategy '" + strategy + "'");
      }
    } else {
      return base::unsupported(r.source() + ".format '" + format + "' is not supported by plan");
    }
    if (r.has("ignore")) {
      NIBBLE_ASSIGN_OR_RETURN(q.ignore, string_list(r.at("ignore"), r.source() + ".ignore"));
    }
    if (r.has("kv_cache_scheme") && r.at("kv_cache_scheme").is_object()) {
      const json& kv = r.at("kv_cache_scheme");
      if (kv.contains("num_bits") && kv["num_bits"] == 8) q.kv_dtype = KvDtype::kFp8;
    }
  } else {
    return base::unsupported(r.source() + ".quant_method '" + m + "' is not supported by plan");
  }
  if (m.rfind("modelopt", 0) == 0 && r.has("kv_cache_scheme") && r.at("kv_cache_scheme").is_object()) {
    const json& kv = r.at("kv_cache_scheme");
    if (kv.contains("num_bits") && kv["num_bits"] == 8) q.kv_dtype = KvDtype::kFp8;
  }
  return q;
}

Result<ModelShape> parse_model_config(const json& config, const std::string& source) {
  if (!config.is_object()) return base::invalid_argument(source + ": not a JSON object");
  const ConfigReader r(config, source);
  ModelShape m;
  NIBBLE_ASSIGN_OR_RETURN(m.arch, detect_arch(r, &m.architecture));
  NIBBLE_ASSIGN_OR_RETURN(m.vocab_size, r.get_positive("vocab_size"));
  NIBBLE_ASSIGN_OR_RETURN(m.hidden_size, r.get_positive("hidden_size"));
  NIBBLE_ASSIGN_OR_RETURN(m.num_layers, r.get_positive("num_hidden_layers"));
  NIBBLE_ASSIGN_OR_RETURN(m.num_heads, r.get_positive("num_attention_heads"));
  NIBBLE_ASSIGN_OR_RETURN(m.num_kv_heads, r.get_int_or("num_key_value_heads", m.num_heads));
  if (m.num_kv_heads <= 0)
    return base::invalid_argument(source + ": field 'num_key_value_heads' must be > 0");
  if (m.num_layers > kMaxLayers) {
    return base::invalid_argument(source + ": field 'num_hidden_layers' = " + std::to_string(m.num_layers) +
                                  " is out of range");
  }
  NIBBLE_ASSIGN_OR_RETURN(m.head_dim, r.get_int_or("head_dim", m.hidden_size / m.num_heads));
  if (m.head_dim <= 0) {
    return base::invalid_argument(source +
                                  ": field 'head_dim' (or hidden_size / num_attention_heads) must be > 0");
  }
  NIBBLE_ASSIGN_OR_RETURN(m.max_position_embeddings, r.get_int_or("max_position_embeddings", 0));
  m.tie_word_embeddings = r.get_bool_or("tie_word_embeddings", false);
  m.attention_bias = r.get_bool_or("attention_bias", false);
  m.mlp_bias = r.get_bool_or("mlp_bias", false);
  m.stored_dtype = dtype_from_torch(r.get_string_or("torch_dtype", r.get_string_or("dtype", "bfloat16")));
  m.layer_is_moe.assign(static_cast<size_t>(m.num_layers), false);
  NIBBLE_TRY(read_sliding(r, &m));

  switch (m.arch) {
    case Arch::kQwen3:
    case Arch::kLlama: {
      NIBBLE_ASSIGN_OR_RETURN(m.intermediate_size, r.get_positive("intermediate_size"));
      m.qk_norm = m.arch == Arch::kQwen3;
      break;
    }
    case Arch::kQwen3Moe: {
      m.qk_norm = true;
      NIBBLE_ASSIGN_OR_RETURN(m.intermediate_size, r.get_int_or("intermediate_size", 0));
      NIBBLE_ASSIGN_OR_RETURN(m.moe.num_experts, r.get_int_or("num_experts", 0));
      NIBBLE_ASSIGN_OR_RETURN(int64_t step, r.get_int_or("decoder_sparse_step", 1));
      std::vector<int64_t> mlp_only;
      if (r.has("mlp_only_layers")) {
        const json& list = r.at("mlp_only_layers");
        if (!list.is_array())
          return base::invalid_argument(source + ": field 'mlp_only_layers' is not a list");
        for (const json& v : list) {
          if (!v.is_number_integer())
            return base::invalid_argument(source + ": field 'mlp_only_layers' holds a non-integer");
          mlp_only.push_back(v.get<int64_t>());
        }
      }
      for (int64_t i = 0; i < m.num_layers; ++i) {
        const bool dense = std::find(mlp_only.begin(), mlp_only.end(), i) != mlp_only.end();
        m.layer_is_moe[static_cast<size_t>(i)] =
            !dense && m.moe.num_experts > 0 && step > 0 && (i + 1) % step == 0;
      }
      if (m.moe.num_experts > 0) {
        NIBBLE_ASSIGN_OR_RETURN(m.moe.num_experts_per_tok, r.get_positive("num_experts_per_tok"));
        NIBBLE_ASSIGN_OR_RETURN(m.moe.expert_intermediate, r.get_positive("moe_intermediate_size"));
      }
      break;
    }
    case Arch::kGptOss: {
      m.attention_sinks = true;
      NIBBLE_ASSIGN_OR_RETURN(m.moe.num_experts, r.get_positive("num_local_experts"));
      if (r.has("num_experts_per_tok")) {
        NIBBLE_ASSIGN_OR_RETURN(m.moe.num_experts_per_tok, r.get_positive("num_experts_per_tok"));
      } else {
        NIBBLE_ASSIGN_OR_RETURN(m.moe.num_experts_per_tok, r.get_positive("experts_per_token"));
      }
      NIBBLE_ASSIGN_OR_RETURN(m.moe.expert_intermediate, r.get_positive("intermediate_size"));
      m.layer_is_moe.assign(static_cast<size_t>(m.num_layers), true);
      break;
    }
    case Arch::kDeepseekV3: {
      MlaShape mla;
      NIBBLE_ASSIGN_OR_RETURN(mla.q_lora_rank, r.get_int_or("q_lora_rank", 0));
      NIBBLE_ASSIGN_OR_RETURN(mla.kv_lora_rank, r.get_positive("kv_lora_rank"));
      NIBBLE_ASSIGN_OR_RETURN(mla.qk_nope_head_dim, r.get_positive("qk_nope_head_dim"));
      NIBBLE_ASSIGN_OR_RETURN(mla.qk_rope_head_dim, r.get_positive("qk_rope_head_dim"));
      NIBBLE_ASSIGN_OR_RETURN(mla.v_head_dim, r.get_positive("v_head_dim"));
      m.mla = mla;
      m.head_dim = mla.qk_nope_head_dim + mla.qk_rope_head_dim;
      NIBBLE_ASSIGN_OR_RETURN(m.intermediate_size, r.get_positive("intermediate_size"));
      NIBBLE_ASSIGN_OR_RETURN(m.moe.num_experts, r.get_int_or("n_routed_experts", 0));
      if (m.moe.num_experts > 0) {
        NIBBLE_ASSIGN_OR_RETURN(m.moe.num_experts_per_tok, r.get_positive("num_experts_per_tok"));
        NIBBLE_ASSIGN_OR_RETURN(m.moe.expert_intermediate, r.get_positive("moe_intermediate_size"));
        NIBBLE_ASSIGN_OR_RETURN(m.moe.num_shared_experts, r.get_int_or("n_shared_experts", 0));
        NIBBLE_ASSIGN_OR_RETURN(int64_t first_dense, r.get_int_or("first_k_dense_replace", 0));
        NIBBLE_ASSIGN_OR_RETURN(int64_t freq, r.get_int_or("moe_layer_freq", 1));
        for (int64_t i = 0; i < m.num_layers; ++i) {
          m.layer_is_moe[static_cast<size_t>(i)] = i >= first_dense && freq > 0 && i % freq == 0;
        }
      }
      break;
    }
  }

  if (r.has("quantization_config")) {
    NIBBLE_ASSIGN_OR_RETURN(m.quant, parse_quant_config(r.at("quantization_config"), source));
  }
  NIBBLE_TRY(check_plausible(m, source));
  return m;
}

Result<ModelShape> load_model_shape(const std::string& path) {
  std::string config_path = path;
  std::string dir;
  if (base::is_directory(path)) {
    dir = path;
    config_path = base::join_path(path, "config.json");
  }
  NIBBLE_ASSIGN_OR_RETURN(std::string text, base::read_file(config_path));
  json config = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (config.is_discarded()) return base::corrupt(config_path + ": not valid JSON");
  NIBBLE_ASSIGN_OR_RETURN(ModelShape shape, parse_model_config(config, config_path));
  // Old ModelOpt exports (0.23) carry the scheme only in hf_quant_config.json.
  if (shape.quant.method.empty() && !dir.empty()) {
    const std::string hf_quant = base::join_path(dir, "hf_quant_config.json");
    if (base::file_exists(hf_quant)) {
      NIBBLE_ASSIGN_OR_RETURN(std::string qtext, base::read_file(hf_quant));
      json q = json::parse(qtext, nullptr, false);
      if (q.is_discarded() || !q.is_object() || !q.contains("quantization")) {
        return base::corrupt(hf_quant + ": not valid JSON with a 'quantization' object");
      }
      NIBBLE_ASSIGN_OR_RETURN(shape.quant, parse_quant_config(q["quantization"], hf_quant));
    }
  }
  return shape;
}

}  // namespace nibble::plan
