#include "tokenizer/normalizer.h"

#include <utf8proc.h>

#include <cstdlib>
#include <nlohmann/json.hpp>
#include <utility>
#include <vector>

#include "tokenizer/json_util.h"
#include "tokenizer/regex.h"
#include "tokenizer/unicode.h"

namespace nibble::tokenizer {
namespace {

bool is_ascii(const std::string& text) {
  for (const char c : text) {
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  }
  return true;
}

class UnicodeNormalizer final : public Normalizer {
 public:
  explicit UnicodeNormalizer(int options) : options_(options) {}
  void normalize(std::string* text) const override {
    if (is_ascii(*text)) return;  // ASCII is invariant under every normalization form
    utf8proc_uint8_t* out = nullptr;
    const utf8proc_ssize_t num_bytes = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text->data()),
                                                    static_cast<utf8proc_ssize_t>(text->size()), &out,
                                                    static_cast<utf8proc_option_t>(options_));
    if (num_bytes >= 0 && out != nullptr) text->assign(reinterpret_cast<const char*>(out), num_bytes);
    std::free(out);
  }

 private:
  int options_;
};

class LowercaseNormalizer final : public Normalizer {
 public:
  void normalize(std::string* text) const override {
    std::string out;
    out.reserve(text->size());
    size_t pos = 0;
    while (pos < text->size()) {
      const char32_t cp = next_code_point(*text, &pos);
      append_utf8(&out, static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(cp))));
    }
    *text = std::move(out);
  }
};

class PrependNormalizer final : public Normalizer {
 public:
  explicit PrependNormalizer(std::string prefix) : prefix_(std::move(prefix)) {}
  void normalize(std::string* text) const override {
    if (!text->empty()) text->insert(0, prefix_);
  }

 private:
  std::string prefix_;
};

class ReplaceNormalizer final : public Normalizer {
 public:
  ReplaceNormalizer(Regex pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void normalize(std::string* text) const override {
    std::vector<std::pair<size_t, size_t>> matches;
    if (!pattern_.find_all(*text, &matches).ok() || matches.empty()) return;
    std::string out;
    size_t prev = 0;
    for (const auto& [begin, end] : matches) {
      out.append(*text, prev, begin - prev);
      out += content_;
      prev = end;
    }
    out.append(*text, prev, std::string::npos);
    *text = std::move(out);
  }

 private:
  Regex pattern_;
  std::string content_;
};

class StripNormalizer final : public Normalizer {
 public:
  StripNormalizer(bool left, bool right) : left_(left), right_(right) {}
  void normalize(std::string* text) const override {
    size_t begin = 0, end = text->size();
    if (left_) {
      while (begin < end) {
        size_t pos = begin;
        if (!is_white_space(next_code_point(*text, &pos))) break;
        begin = pos;
      }
    }
    if (right_) {
      while (end > begin) {
        size_t start = end - 1;
        while (start > begin && (static_cast<uint8_t>((*text)[start]) & 0xC0) == 0x80) --start;
        size_t pos = start;
        if (!is_white_space(next_code_point(*text, &pos))) break;
        end = start;
      }
    }
    *text = text->substr(begin, end - begin);
  }

 private:
  bool left_, right_;
};

class SequenceNormalizer final : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> parts) : parts_(std::move(parts)) {}
  void normalize(std::string* text) const override {
    for (const auto& part : parts_) part->normalize(text);
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> parts_;
};

}  // namespace

base::Result<std::unique_ptr<Normalizer>> parse_normalizer(const nlohmann::json& spec,
                                                           const std::string& where, int depth) {
  if (spec.is_null()) return std::unique_ptr<Normalizer>();
  NIBBLE_ASSIGN_OR_RETURN(const std::string type, json_type(spec, where));
  if (type == "NFC")
    return std::unique_ptr<Normalizer>(new UnicodeNormalizer(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
  if (type == "NFD")
    return std::unique_ptr<Normalizer>(new UnicodeNormalizer(UTF8PROC_STABLE | UTF8PROC_DECOMPOSE));
  if (type == "NFKC") {
    return std::unique_ptr<Normalizer>(
        new UnicodeNormalizer(UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT));
  }
  if (type == "NFKD") {
    return std::unique_ptr<Normalizer>(
        new UnicodeNormalizer(UTF8PROC_STABLE | UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT));
  }
  if (type == "Lowercase") return std::unique_ptr<Normalizer>(new LowercaseNormalizer());
  if (type == "Prepend") {
    NIBBLE_ASSIGN_OR_RETURN(std::string prefix, json_string(spec, "prepend", where));
    return std::unique_ptr<Normalizer>(new PrependNormalizer(std::move(prefix)));
  }
  if (type == "Replace") {
    NIBBLE_ASSIGN_OR_RETURN(Regex pattern, json_pattern(spec, where));
    NIBBLE_ASSIGN_OR_RETURN(std::string content, json_string(spec, "content", where));
    return std::unique_ptr<Normalizer>(new ReplaceNormalizer(std::move(pattern), std::move(content)));
  }
  if (type == "Strip") {
    NIBBLE_ASSIGN_OR_RETURN(const bool left, json_bool(spec, "strip_left", where, false));
    NIBBLE_ASSIGN_OR_RETURN(const bool right, json_bool(spec, "strip_right", where, false));
    return std::unique_ptr<Normalizer>(new StripNormalizer(left, right));
  }
  if (type == "Sequence") {
    if (depth >= kMaxSequenceDepth) return base::corrupt(where + ": Sequence nested too deeply");
    NIBBLE_ASSIGN_OR_RETURN(const nlohmann::json* items, json_array(spec, "normalizers", where));
    std::vector<std::unique_ptr<Normalizer>> parts;
    for (size_t i = 0; i < items->size(); ++i) {
      NIBBLE_ASSIGN_OR_RETURN(
          auto part,
          parse_normalizer((*items)[i], where + ".normalizers[" + std::to_string(i) + "]", depth + 1));
      if (part) parts.push_back(std::move(part));
    }
    return std::unique_ptr<Normalizer>(new SequenceNormalizer(std::move(parts)));
  }
  return base::unsupported(where + ": unsupported normalizer type \"" + type + "\"");
}

}  // namespace nibble::tokenizer
