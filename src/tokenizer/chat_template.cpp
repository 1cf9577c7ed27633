#include "tokenizer/chat_template.h"

#include <algorithm>
#include <filesystem>
#include <system_error>

#include "base/file_util.h"

namespace nibble::tokenizer {
namespace {

using Json = nlohmann::ordered_json;

constexpr const char* kSpecialTokenNames[] = {"bos_token", "eos_token", "unk_token", "sep_token",
                                              "pad_token", "cls_token", "mask_token"};

// A special token given as "text" or as an AddedToken dict {"content": "text", ...}.
bool token_text(const Json& v, std::string& out) {
  if (v.is_string()) {
    out = v.get<std::string>();
    return true;
  }
  if (v.is_object() && v.contains("content") && v["content"].is_string()) {
    out = v["content"].get<std::string>();
    return true;
  }
  return false;
}

base::Result<Json> read_json(const std::string& path) {
  NIBBLE_ASSIGN_OR_RETURN(std::string text, base::read_file(path));
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return base::corrupt(path + ": not valid JSON");
  return j;
}

base::Result<Json> parse_json_arg(const std::string& text, const char* what) {
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return base::invalid_argument(std::string(what) + ": not valid JSON");
  return j;
}

base::Status to_value(const Json& j, jinja::Value& out, const char* what) {
  std::string error;
  if (!jinja::value_from_json(j, out, error)) return base::invalid_argument(std::string(what) + ": " + error);
  return base::ok_status();
}

}  // namespace

base::Result<ChatTemplate> ChatTemplate::from_string(
    const std::string& source, std::vector<std::pair<std::string, std::string>> special_tokens) {
  ChatTemplate t;
  auto compiled = jinja::Template::parse(source);
  if (!compiled.ok()) return compiled.status().with_context("chat template");
  t.templates_.emplace("default", Named{source, std::move(compiled).value()});
  t.special_tokens_ = std::move(special_tokens);
  t.origin_ = "chat template";
  return t;
}

base::Result<ChatTemplate> ChatTemplate::from_dir(const std::string& dir) {
  ChatTemplate t;
  const std::string config_path = base::join_path(dir, "tokenizer_config.json");
  const std::string jinja_path = base::join_path(dir, "chat_template.jinja");
  Json config = Json::object();
  if (base::file_exists(config_path)) {
    NIBBLE_ASSIGN_OR_RETURN(config, read_json(config_path));
    if (!config.is_object()) return base::corrupt(config_path + ": expected a JSON object");
  }
  // Special tokens: tokenizer_config.json first, special_tokens_map.json for the rest.
  Json tokens_map = Json::object();
  const std::string map_path = base::join_path(dir, "special_tokens_map.json");
  if (base::file_exists(map_path)) {
    auto m = read_json(map_path);
    if (m.ok() && m->is_object()) tokens_map = std::move(m).value();
  }
  std::vector<std::string> names(std::begin(kSpecialTokenNames), std::end(kSpecialTokenNames));
  if (config.contains("extra_special_tokens") && config["extra_special_tokens"].is_object()) {
    for (const auto& [k, v] : config["extra_special_tokens"].items()) names.push_back(k);
  }
  for (const std::string& name : names) {
    std::string text;
    if (config.contains(name) && token_text(config[name], text)) {
      t.special_tokens_.emplace_back(name, text);
    } else if (config.contains("extra_special_tokens") && config["extra_special_tokens"].is_object() &&
               config["extra_special_tokens"].contains(name) &&
               token_text(config["extra_special_tokens"][name], text)) {
      t.special_tokens_.emplace_back(name, text);
    } else if (tokens_map.contains(name) && token_text(tokens_map[name], text)) {
      t.special_tokens_.emplace_back(name, text);
    }
  }
  auto add = [&](const std::string& name, const std::string& source,
                 const std::string& origin) -> base::Status {
    auto compiled = jinja::Template::parse(source);
    if (!compiled.ok()) return compiled.status().with_context(origin);
    t.templates_.insert_or_assign(name, Named{source, std::move(compiled).value()});
    return base::ok_status();
  };
  // Template files (transformers 5): chat_template.jinja is "default"; each
  // additional_chat_templates/<name>.jinja is a named template. Files replace the config's.
  bool from_files = false;
  if (base::file_exists(jinja_path)) {
    NIBBLE_ASSIGN_OR_RETURN(std::string source, base::read_file(jinja_path));
    NIBBLE_TRY(add("default", source, jinja_path));
    t.origin_ = jinja_path;
    from_files = true;
  }
  const std::filesystem::path extra_dir = std::filesystem::path(dir) / "additional_chat_templates";
  std::error_code ec;
  if (std::filesystem::is_directory(extra_dir, ec)) {
    std::vector<std::filesystem::path> files;
    for (const auto& entry : std::filesystem::directory_iterator(extra_dir, ec)) {
      if (entry.path().extension() == ".jinja") files.push_back(entry.path());
    }
    std::sort(files.begin(), files.end());
    for (const auto& path : files) {
      NIBBLE_ASSIGN_OR_RETURN(std::string source, base::read_file(path.string()));
      NIBBLE_TRY(add(path.stem().string(), source, path.string()));
      if (!from_files) t.origin_ = extra_dir.string();
      from_files = true;
    }
  }
  if (from_files) return t;
  if (!config.contains("chat_template") || config["chat_template"].is_null()) {
    return base::not_found(dir + ": no chat_template.jinja and no chat_template in tokenizer_config.json");
  }
  const Json& ct = config["chat_template"];
  t.origin_ = config_path;
  if (ct.is_string()) {
    NIBBLE_TRY(add("default", ct.get<std::string>(), config_path + ": chat_template"));
  } else if (ct.is_array()) {
    for (const Json& entry : ct) {
      if (!entry.is_object() || !entry.contains("name") || !entry["name"].is_string() ||
          !entry.contains("template") || !entry["template"].is_string()) {
        return base::corrupt(config_path +
                             ": chat_template list entries must be {\"name\": str, \"template\": str}");
      }
      const std::string name = entry["name"].get<std::string>();
      NIBBLE_TRY(
          add(name, entry["template"].get<std::string>(), config_path + ": chat_template '" + name + "'"));
    }
    if (t.templates_.empty()) return base::corrupt(config_path + ": chat_template is an empty list");
  } else {
    return base::corrupt(config_path + ": chat_template must be a string or a list of {name, template}");
  }
  return t;
}

const ChatTemplate::Named* ChatTemplate::pick(bool with_tools) const {
  if (templates_.size() == 1 && templates_.count("default")) return &templates_.at("default");
  if (with_tools && templates_.count("tool_use")) return &templates_.at("tool_use");
  if (templates_.count("default")) return &templates_.at("default");
  return nullptr;
}

const std::string& ChatTemplate::source(bool with_tools) const {
  static const std::string kEmpty;
  const Named* n = pick(with_tools);
  return n ? n->source : kEmpty;
}

base::Result<std::string> ChatTemplate::render(const std::string& messages_json,
                                               const std::string& tools_json, bool add_generation_prompt,
                                               const std::string& extra_kwargs_json) const {
  NIBBLE_ASSIGN_OR_RETURN(Json messages, parse_json_arg(messages_json, "messages"));
  Json tools = nullptr;
  if (!tools_json.empty()) {
    NIBBLE_ASSIGN_OR_RETURN(tools, parse_json_arg(tools_json, "tools"));
  }
  Json kwargs = Json::object();
  if (!extra_kwargs_json.empty()) {
    NIBBLE_ASSIGN_OR_RETURN(kwargs, parse_json_arg(extra_kwargs_json, "kwargs"));
  }
  return render_json(messages, tools, add_generation_prompt, kwargs);
}

base::Result<std::string> ChatTemplate::render_json(const Json& messages, const Json& tools,
                                                    bool add_generation_prompt, const Json& extra_kwargs,
                                                    const jinja::RenderLimits& limits) const {
  const Named* tmpl = pick(!tools.is_null());
  if (!tmpl) {
    std::string names;
    for (const auto& [k, v] : templates_) names += (names.empty() ? "" : ", ") + k;
    return base::invalid_argument(origin_ + ": several chat templates (" + names +
                                  ") and none named 'default'; cannot pick one");
  }
  if (!messages.is_array())
    return base::invalid_argument("messages: expected a JSON array of message objects");
  if (messages.empty())
    return base::invalid_argument("messages: cannot apply a chat template to an empty conversation");
  if (!tools.is_null() && !tools.is_array()) return base::invalid_argument("tools: expected a JSON array");
  if (!extra_kwargs.is_object()) return base::invalid_argument("kwargs: expected a JSON object");

  // Messages as transformers normalises them: null-valued keys dropped, reasoning aliased.
  jinja::ValueList message_values;
  for (size_t i = 0; i < messages.size(); ++i) {
    const Json& m = messages[i];
    const std::string what = "messages[" + std::to_string(i) + "]";
    if (!m.is_object()) return base::invalid_argument(what + ": chat messages must be objects");
    Json cleaned = Json::object();
    for (const auto& [k, v] : m.items()) {
      if (!v.is_null()) cleaned[k] = v;
    }
    const Json* reasoning = nullptr;
    for (const char* field : {"reasoning_content", "thinking", "reasoning"}) {
      if (cleaned.contains(field)) {
        reasoning = &cleaned[field];
        break;
      }
    }
    if (reasoning) {
      Json aliased = Json::object();
      aliased["thinking"] = *reasoning;
      for (const auto& [k, v] : cleaned.items()) aliased[k] = v;
      aliased["reasoning_content"] = *reasoning;
      cleaned = std::move(aliased);
    }
    jinja::Value v;
    NIBBLE_TRY(to_value(cleaned, v, what.c_str()));
    message_values.push_back(std::move(v));
  }

  jinja::Dict context;
  context.set(jinja::Value::string("messages"), jinja::Value::list(std::move(message_values)));
  jinja::Value tools_value = jinja::Value::none();
  if (!tools.is_null()) {
    for (size_t i = 0; i < tools.size(); ++i) {
      if (!tools[i].is_object()) {
        return base::invalid_argument("tools[" + std::to_string(i) + "]: tools must be JSON schema objects");
      }
    }
    NIBBLE_TRY(to_value(tools, tools_value, "tools"));
  }
  context.set(jinja::Value::string("tools"), std::move(tools_value));
  context.set(jinja::Value::string("documents"), jinja::Value::none());
  context.set(jinja::Value::string("add_generation_prompt"), jinja::Value::boolean(add_generation_prompt));
  for (const auto& [name, text] : special_tokens_) {
    context.set(jinja::Value::string(name), jinja::Value::string(text));
  }
  for (const auto& [k, v] : extra_kwargs.items()) {
    jinja::Value value;
    NIBBLE_TRY(to_value(v, value, ("kwargs." + k).c_str()));
    context.set(jinja::Value::string(k), std::move(value));
  }
  auto out = tmpl->compiled.render(context, limits);
  if (!out.ok()) return out.status().with_context(origin_);
  return out;
}

}  // namespace nibble::tokenizer
