#include "io/json_strict.h"

#include <set>
#include <vector>

namespace nibble::io {

base::Result<nlohmann::json> parse_json_strict(std::string_view text, const std::string& what) {
  using nlohmann::json;
  // One set of seen keys per open object; the top-level key is kept to name the entry at fault.
  std::vector<std::set<std::string>> open_objects;
  std::string top_key;
  std::string duplicate;
  std::string duplicate_under;
  json::parser_callback_t callback = [&](int /*depth*/, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
        open_objects.emplace_back();
        break;
      case json::parse_event_t::object_end:
        if (!open_objects.empty()) open_objects.pop_back();
        break;
      case json::parse_event_t::key: {
        if (open_objects.empty() || !parsed.is_string()) break;
        const std::string& key = parsed.get_ref<const std::string&>();
        if (open_objects.size() == 1) top_key = key;
        if (!open_objects.back().insert(key).second && duplicate.empty()) {
          duplicate = key;
          duplicate_under = open_objects.size() == 1 ? std::string() : top_key;
        }
        break;
      }
      default:
        break;
    }
    return true;
  };
  // nlohmann's lexer takes a NUL byte as the end of input and would ignore whatever follows;
  // raw NUL is never valid JSON, so reject it up front.
  const size_t nul = text.find('\0');
  if (nul != std::string_view::npos) {
    return base::corrupt(what + ": invalid JSON: NUL byte at offset " + std::to_string(nul));
  }
  json value;
  try {
    value = json::parse(text.begin(), text.end(), callback);
  } catch (const json::exception& e) {
    return base::corrupt(what + ": invalid JSON: " + e.what());
  }
  if (!duplicate.empty()) {
    std::string msg = what + ": duplicate key " + quote_name(duplicate);
    if (!duplicate_under.empty()) msg += " inside " + quote_name(duplicate_under);
    return base::corrupt(msg);
  }
  return value;
}

std::string quote_name(std::string_view text) {
  constexpr size_t kMaxBytes = 200;
  if (text.size() <= kMaxBytes) return "\"" + std::string(text) + "\"";
  return "\"" + std::string(text.substr(0, kMaxBytes)) + "...\"";
}

}  // namespace nibble::io
