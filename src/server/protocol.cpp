#include "server/protocol.h"

#include <cmath>
#include <limits>

namespace nibble::server {
namespace {

constexpr int kMaxJsonDepth = 64;

// Nesting depth of a JSON text, strings skipped; bodies nested deeper are refused before parsing.
int json_depth(std::string_view text) {
  int depth = 0, max_depth = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"')
      in_string = true;
    else if (c == '[' || c == '{')
      max_depth = std::max(max_depth, ++depth);
    else if (c == ']' || c == '}')
      --depth;
  }
  return max_depth;
}

std::optional<Json> parse_object(std::string_view body, ApiError* error) {
  if (json_depth(body) > kMaxJsonDepth) {
    *error = bad_request("the request body nests deeper than " + std::to_string(kMaxJsonDepth) + " levels");
    return std::nullopt;
  }
  Json j = Json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    *error = bad_request("the request body is not valid JSON");
    return std::nullopt;
  }
  if (!j.is_object()) {
    *error = bad_request("the request body must be a JSON object");
    return std::nullopt;
  }
  return j;
}

// Typed access to an object's fields; null counts as absent. Each getter returns false and sets
// the error (naming the field) on a wrong type or range.
class Fields {
 public:
  Fields(const Json& obj, ApiError* error) : obj_(obj), error_(error) {}

  const Json* find(const char* name) const {
    auto it = obj_.find(name);
    if (it == obj_.end() || it->is_null()) return nullptr;
    return &*it;
  }
  bool fail(const std::string& name, const std::string& why) const {
    *error_ = bad_request(name + ": " + why, name);
    return false;
  }
  bool get_bool(const char* name, bool* out) const {
    const Json* v = find(name);
    if (!v) return true;
    if (!v->is_boolean()) return fail(name, "must be a boolean");
    *out = v->get<bool>();
    return true;
  }
  bool get_string(const char* name, std::string* out) const {
    const Json* v = find(name);
    if (!v) return true;
    if (!v->is_string()) return fail(name, "must be a string");
    *out = v->get<std::string>();
    return true;
  }
  // Integers (or integral floats) in [lo, hi].
  bool get_int(const char* name, int64_t lo, int64_t hi, int64_t* out, bool* given = nullptr) const {
    const Json* v = find(name);
    if (!v) return true;
    if (!to_int(*v, lo, hi, out)) {
      return fail(name, "must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    }
    if (given) *given = true;
    return true;
  }
  bool get_float(const char* name, double lo, double hi, float* out, bool* given = nullptr) const {
    const Json* v = find(name);
    if (!v) return true;
    if (!v->is_number()) return fail(name, "must be a number");
    const double d = v->get<double>();
    if (!std::isfinite(d) || d < lo || d > hi) {
      return fail(name, "must be in [" + trim_number(lo) + ", " + trim_number(hi) + "]");
    }
    *out = static_cast<float>(d);
    if (given) *given = true;
    return true;
  }

  static bool to_int(const Json& v, int64_t lo, int64_t hi, int64_t* out) {
    if (v.is_number_unsigned()) {
      const auto u = v.get<uint64_t>();
      if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return false;
      *out = static_cast<int64_t>(u);
    } else if (v.is_number_integer()) {
      *out = v.get<int64_t>();
    } else if (v.is_number_float()) {
      const double d = v.get<double>();
      if (!std::isfinite(d) || d != std::floor(d) || std::fabs(d) > 9.0e15) return false;
      *out = static_cast<int64_t>(d);
    } else {
      return false;
    }
    return *out >= lo && *out <= hi;
  }
  static std::string trim_number(double d) {
    std::string s = std::to_string(d);
    while (!s.empty() && s.back() == '0') s.pop_back();
    if (!s.empty() && s.back() == '.') s.pop_back();
    return s;
  }

 private:
  const Json& obj_;
  ApiError* error_;
};

bool parse_token_ids(const Json& arr, const std::string& name, std::vector<int32_t>* out, ApiError* error) {
  out->reserve(arr.size());
  for (size_t i = 0; i < arr.size(); ++i) {
    int64_t id = 0;
    if (!Fields::to_int(arr[i], 0, std::numeric_limits<int32_t>::max(), &id)) {
      *error = bad_request(name + "[" + std::to_string(i) + "]: must be a token id (a non-negative integer)",
                           name);
      return false;
    }
    out->push_back(static_cast<int32_t>(id));
  }
  return true;
}

bool parse_prompt(const Json& p, const ParseLimits& limits, std::vector<PromptInput>* out, ApiError* error) {
  auto bad = [&](const std::string& why) {
    *error = bad_request("prompt: " + why, "prompt");
    return false;
  };
  if (p.is_string()) {
    out->push_back({p.get<std::string>(), {}});
    return true;
  }
  if (!p.is_array() || p.empty()) return bad("must be a string, an array of strings, or token ids");
  if (p[0].is_number()) {
    PromptInput in;
    if (!parse_token_ids(p, "prompt", &in.token_ids, error)) return false;
    out->push_back(std::move(in));
    return true;
  }
  if (static_cast<int64_t>(p.size()) > limits.max_prompts)
    return bad("at most " + std::to_string(limits.max_prompts) + " prompts per request");
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i].is_string()) {
      out->push_back({p[i].get<std::string>(), {}});
    } else if (p[i].is_array() && !p[i].empty()) {
      PromptInput in;
      if (!parse_token_ids(p[i], "prompt", &in.token_ids, error)) return false;
      out->push_back(std::move(in));
    } else {
      return bad("element " + std::to_string(i) + " must be a string or a non-empty array of token ids");
    }
  }
  return true;
}

// Chat messages: content strings, null, or arrays of text parts (joined with "\n" as vLLM does
// for string-content templates). Other keys (tool_calls, name, reasoning_content) pass through.
bool parse_messages(const Json& m, const ParseLimits& limits, Json* out, ApiError* error) {
  auto bad = [&](const std::string& why) {
    *error = bad_request("messages" + why, "messages");
    return false;
  };
  if (!m.is_array() || m.empty()) return bad(": must be a non-empty array of messages");
  if (static_cast<int64_t>(m.size()) > limits.max_messages)
    return bad(": at most " + std::to_string(limits.max_messages) + " messages");
  *out = Json::array();
  for (size_t i = 0; i < m.size(); ++i) {
    const std::string at = "[" + std::to_string(i) + "]";
    const Json& msg = m[i];
    if (!msg.is_object()) return bad(at + ": must be an object");
    auto role = msg.find("role");
    if (role == msg.end() || !role->is_string()) return bad(at + ".role: must be a string");
    Json norm = msg;
    auto content = msg.find("content");
    if (content != msg.end() && content->is_array()) {
      std::string text;
      for (size_t k = 0; k < content->size(); ++k) {
        const Json& part = (*content)[k];
        const std::string pat = at + ".content[" + std::to_string(k) + "]";
        if (!part.is_object()) return bad(pat + ": must be an object");
        auto type = part.find("type");
        if (type == part.end() || !type->is_string() || *type != "text")
          return bad(pat + ".type: only \"text\" parts are supported");
        auto t = part.find("text");
        if (t == part.end() || !t->is_string()) return bad(pat + ".text: must be a string");
        if (!text.empty()) text += "\n";
        text += t->get<std::string>();
      }
      norm["content"] = text;
    } else if (content != msg.end() && !content->is_string() && !content->is_null()) {
      return bad(at + ".content: must be a string, null or an array of text parts");
    }
    out->push_back(std::move(norm));
  }
  return true;
}

bool parse_stop(const Fields& f, const ParseLimits& limits, std::vector<std::string>* out) {
  const Json* v = f.find("stop");
  if (!v) return true;
  std::vector<std::string> all;
  if (v->is_string()) {
    all.push_back(v->get<std::string>());
  } else if (v->is_array()) {
    for (const Json& s : *v) {
      if (!s.is_string()) return f.fail("stop", "must be a string or an array of strings");
      all.push_back(s.get<std::string>());
    }
  } else {
    return f.fail("stop", "must be a string or an array of strings");
  }
  if (static_cast<int64_t>(all.size()) > limits.max_stop_strings)
    return f.fail("stop", "at most " + std::to_string(limits.max_stop_strings) + " stop strings");
  for (std::string& s : all) {
    if (static_cast<int64_t>(s.size()) > limits.max_stop_string_bytes)
      return f.fail(
          "stop", "a stop string is longer than " + std::to_string(limits.max_stop_string_bytes) + " bytes");
    if (!s.empty()) out->push_back(std::move(s));
  }
  return true;
}

}  // namespace

std::string ApiError::type() const {
  switch (http_status) {
    case 400:
      return "invalid_request_error";
    case 401:
      return "authentication_error";
    case 404:
      return "not_found_error";
    case 405:
      return "method_not_allowed_error";
    case 413:
      return "request_too_large_error";
    case 503:
      return "unavailable_error";
    default:
      return http_status >= 500 ? "server_error" : "invalid_request_error";
  }
}

Json ApiError::to_json() const {
  Json e = Json::object();
  e["message"] = message;
  e["type"] = type();
  e["param"] = param.empty() ? Json(nullptr) : Json(param);
  e["code"] = http_status;
  return Json{{"error", std::move(e)}};
}

std::string ApiError::body() const {
  return dump_json(to_json());
}

ApiError bad_request(std::string message, std::string param) {
  return ApiError{400, std::move(message), std::move(param)};
}

std::string dump_json(const Json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::optional<GenerateRequest> parse_generate_request(std::string_view body, Endpoint endpoint,
                                                      const ParseLimits& limits, ApiError* error) {
  std::optional<Json> parsed = parse_object(body, error);
  if (!parsed) return std::nullopt;
  const Json& j = *parsed;
  const Fields f(j, error);
  GenerateRequest r;
  r.endpoint = endpoint;
  engine::SamplingParams& sp = r.sampling;
  if (!f.get_string("model", &r.model)) return std::nullopt;

  if (endpoint == Endpoint::kCompletions) {
    const Json* p = f.find("prompt");
    if (!p) {
      *error = bad_request("prompt: is required", "prompt");
      return std::nullopt;
    }
    if (!parse_prompt(*p, limits, &r.prompts, error)) return std::nullopt;
    if (!f.get_bool("echo", &r.echo)) return std::nullopt;
    if (r.echo) {
      *error = bad_request("echo: is not supported", "echo");
      return std::nullopt;
    }
    if (f.find("suffix")) {
      *error = bad_request("suffix: is not supported", "suffix");
      return std::nullopt;
    }
    int64_t logprobs = -1;
    bool has_logprobs = false;
    if (!f.get_int("logprobs", 0, limits.max_top_logprobs, &logprobs, &has_logprobs)) return std::nullopt;
    if (has_logprobs) sp.logprobs = static_cast<int32_t>(logprobs);
  } else {
    const Json* m = f.find("messages");
    if (!m) {
      *error = bad_request("messages: is required", "messages");
      return std::nullopt;
    }
    if (!parse_messages(*m, limits, &r.messages, error)) return std::nullopt;
    if (const Json* tools = f.find("tools")) {
      if (!tools->is_array()) {
        f.fail("tools", "must be an array");
        return std::nullopt;
      }
      if (!tools->empty()) r.tools = *tools;
    }
    if (const Json* kw = f.find("chat_template_kwargs")) {
      if (!kw->is_object()) {
        f.fail("chat_template_kwargs", "must be an object");
        return std::nullopt;
      }
      r.chat_template_kwargs = *kw;
    }
    if (!f.get_bool("add_generation_prompt", &r.add_generation_prompt)) return std::nullopt;
    if (!f.get_bool("logprobs", &r.chat_logprobs)) return std::nullopt;
    int64_t top = 0;
    bool has_top = false;
    if (!f.get_int("top_logprobs", 0, limits.max_top_logprobs, &top, &has_top)) return std::nullopt;
    if (has_top && !r.chat_logprobs) {
      f.fail("top_logprobs", "needs logprobs set to true");
      return std::nullopt;
    }
    if (r.chat_logprobs) sp.logprobs = static_cast<int32_t>(top);
    if (const Json* rf = f.find("response_format")) {
      const Json::const_iterator type = rf->is_object() ? rf->find("type") : rf->end();
      if (!rf->is_object() || type == rf->end() || *type != "text") {
        f.fail("response_format", "only {\"type\": \"text\"} is supported");
        return std::nullopt;
      }
    }
  }

  // max_completion_tokens wins over the deprecated max_tokens (OpenAI).
  int64_t max_tokens = 0;
  if (!f.get_int("max_tokens", 1, std::numeric_limits<int32_t>::max(), &max_tokens, &r.max_tokens_given))
    return std::nullopt;
  if (endpoint == Endpoint::kChatCompletions &&
      !f.get_int("max_completion_tokens", 1, std::numeric_limits<int32_t>::max(), &max_tokens,
                 &r.max_tokens_given))
    return std::nullopt;
  if (r.max_tokens_given) sp.max_tokens = static_cast<int32_t>(max_tokens);
  int64_t min_tokens = 0;
  if (!f.get_int("min_tokens", 0, std::numeric_limits<int32_t>::max(), &min_tokens)) return std::nullopt;
  sp.min_tokens = static_cast<int32_t>(min_tokens);

  if (!f.get_float("temperature", 0.0, 100.0, &sp.temperature, &r.has_temperature)) return std::nullopt;
  if (!f.get_float("top_p", 1e-9, 1.0, &sp.top_p, &r.has_top_p)) return std::nullopt;
  int64_t top_k = 0;
  if (!f.get_int("top_k", -1, std::numeric_limits<int32_t>::max(), &top_k, &r.has_top_k)) return std::nullopt;
  sp.top_k = static_cast<int32_t>(top_k);
  if (!f.get_float("min_p", 0.0, 1.0, &sp.min_p, &r.has_min_p)) return std::nullopt;
  if (!f.get_float("presence_penalty", -2.0, 2.0, &sp.presence_penalty)) return std::nullopt;
  if (!f.get_float("frequency_penalty", -2.0, 2.0, &sp.frequency_penalty)) return std::nullopt;
  if (!f.get_float("repetition_penalty", 1e-6, 100.0, &sp.repetition_penalty, &r.has_repetition_penalty))
    return std::nullopt;
  int64_t seed = 0;
  bool has_seed = false;
  if (!f.get_int("seed", std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max(), &seed,
                 &has_seed))
    return std::nullopt;
  if (has_seed) sp.seed = static_cast<uint64_t>(seed);
  if (!f.get_bool("ignore_eos", &sp.ignore_eos)) return std::nullopt;
  int64_t n = 1;
  if (!f.get_int("n", 1, limits.max_n, &n)) return std::nullopt;
  sp.n = static_cast<int32_t>(n);
  const int64_t num_prompts = endpoint == Endpoint::kCompletions ? static_cast<int64_t>(r.prompts.size()) : 1;
  if (n * num_prompts > limits.max_total_choices) {
    f.fail("n", "prompts x n must be at most " + std::to_string(limits.max_total_choices));
    return std::nullopt;
  }
  if (const Json* ids = f.find("stop_token_ids")) {
    if (!ids->is_array() || static_cast<int64_t>(ids->size()) > 1024) {
      f.fail("stop_token_ids", "must be an array of at most 1024 token ids");
      return std::nullopt;
    }
    if (!parse_token_ids(*ids, "stop_token_ids", &sp.stop_token_ids, error)) return std::nullopt;
  }
  if (!parse_stop(f, limits, &r.stop)) return std::nullopt;
  if (!f.get_bool("include_stop_str_in_output", &r.include_stop_str_in_output)) return std::nullopt;
  if (!f.get_bool("skip_special_tokens", &r.skip_special_tokens)) return std::nullopt;
  if (!f.get_bool("stream", &r.stream)) return std::nullopt;
  if (const Json* so = f.find("stream_options")) {
    if (!so->is_object()) {
      f.fail("stream_options", "must be an object");
      return std::nullopt;
    }
    const Fields sf(*so, error);
    if (!sf.get_bool("include_usage", &r.include_usage) ||
        !sf.get_bool("continuous_usage_stats", &r.continuous_usage)) {
      error->message = "stream_options." + error->message;
      error->param = "stream_options." + error->param;
      return std::nullopt;
    }
    if (!r.stream) {
      f.fail("stream_options", "is only allowed when stream is true");
      return std::nullopt;
    }
  }
  if (!f.get_string("request_id", &r.request_id)) return std::nullopt;
  if (r.request_id.size() > 128) {
    f.fail("request_id", "at most 128 bytes");
    return std::nullopt;
  }
  return r;
}

std::optional<TokenizeRequest> parse_tokenize_request(std::string_view body, ApiError* error) {
  std::optional<Json> parsed = parse_object(body, error);
  if (!parsed) return std::nullopt;
  const Fields f(*parsed, error);
  TokenizeRequest r;
  if (!f.get_string("model", &r.model) || !f.get_bool("add_special_tokens", &r.add_special_tokens) ||
      !f.get_bool("add_generation_prompt", &r.add_generation_prompt))
    return std::nullopt;
  if (const Json* p = f.find("prompt")) {
    if (!p->is_string()) {
      f.fail("prompt", "must be a string");
      return std::nullopt;
    }
    r.prompt = p->get<std::string>();
  } else if (const Json* m = f.find("messages")) {
    if (!parse_messages(*m, ParseLimits{}, &r.messages, error)) return std::nullopt;
    if (const Json* kw = f.find("chat_template_kwargs")) {
      if (!kw->is_object()) {
        f.fail("chat_template_kwargs", "must be an object");
        return std::nullopt;
      }
      r.chat_template_kwargs = *kw;
    }
  } else {
    *error = bad_request("prompt: is required (or messages)", "prompt");
    return std::nullopt;
  }
  return r;
}

std::optional<DetokenizeRequest> parse_detokenize_request(std::string_view body, ApiError* error) {
  std::optional<Json> parsed = parse_object(body, error);
  if (!parsed) return std::nullopt;
  const Fields f(*parsed, error);
  DetokenizeRequest r;
  if (!f.get_string("model", &r.model)) return std::nullopt;
  const Json* t = f.find("tokens");
  if (!t || !t->is_array()) {
    *error = bad_request("tokens: must be an array of token ids", "tokens");
    return std::nullopt;
  }
  if (!parse_token_ids(*t, "tokens", &r.tokens, error)) return std::nullopt;
  return r;
}

}  // namespace nibble::server
