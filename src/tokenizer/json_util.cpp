#include "tokenizer/json_util.h"

namespace nibble::tokenizer {

base::Result<std::string> json_type(const nlohmann::json& spec, const std::string& where) {
  if (!spec.is_object()) return base::corrupt(where + ": expected an object");
  const auto it = spec.find("type");
  if (it == spec.end() || !it->is_string()) return base::corrupt(where + ".type: missing or not a string");
  return it->get<std::string>();
}

base::Result<std::string> json_string(const nlohmann::json& spec, const char* key, const std::string& where) {
  const auto it = spec.find(key);
  if (it == spec.end() || !it->is_string()) {
    return base::corrupt(where + "." + key + ": missing or not a string");
  }
  return it->get<std::string>();
}

base::Result<std::string> json_string_or(const nlohmann::json& spec, const char* key,
                                         const std::string& where, const std::string& fallback) {
  const auto it = spec.find(key);
  if (it == spec.end() || it->is_null()) return fallback;
  if (!it->is_string()) return base::corrupt(where + "." + key + ": not a string");
  return it->get<std::string>();
}

base::Result<bool> json_bool(const nlohmann::json& spec, const char* key, const std::string& where,
                             bool fallback) {
  const auto it = spec.find(key);
  if (it == spec.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) return base::corrupt(where + "." + key + ": not a boolean");
  return it->get<bool>();
}

base::Result<uint64_t> json_uint(const nlohmann::json& spec, const char* key, const std::string& where,
                                 uint64_t fallback) {
  const auto it = spec.find(key);
  if (it == spec.end() || it->is_null()) return fallback;
  if (it->is_number_unsigned()) return it->get<uint64_t>();
  if (it->is_number_integer() && it->get<int64_t>() >= 0) return static_cast<uint64_t>(it->get<int64_t>());
  return base::corrupt(where + "." + key + ": not an unsigned integer");
}

base::Result<const nlohmann::json*> json_array(const nlohmann::json& spec, const char* key,
                                               const std::string& where) {
  const auto it = spec.find(key);
  if (it == spec.end() || !it->is_array())
    return base::corrupt(where + "." + key + ": missing or not an array");
  return &*it;
}

base::Result<Regex> json_pattern(const nlohmann::json& spec, const std::string& where) {
  const auto it = spec.find("pattern");
  if (it == spec.end() || !it->is_object())
    return base::corrupt(where + ".pattern: missing or not an object");
  if (const auto s = it->find("String"); s != it->end() && s->is_string()) {
    return Regex::literal(s->get<std::string>(), where + ".pattern.String");
  }
  if (const auto r = it->find("Regex"); r != it->end() && r->is_string()) {
    return Regex::compile(r->get<std::string>(), where + ".pattern.Regex");
  }
  return base::corrupt(where + ".pattern: expected {\"String\": ...} or {\"Regex\": ...}");
}

}  // namespace nibble::tokenizer
