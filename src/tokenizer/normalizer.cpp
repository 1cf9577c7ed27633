#include "tokenizer/normalizer.h"

#include <utf8proc.h>

#include <cstdlib>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string_view>
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

// Code points whose normalization data tokenizers does not have (its normalization tables predate
// them): it leaves them as they are, as starters that decompose into nothing and block reordering.
// utf8proc knows them; they are kept out of its way. Derived by comparing tokenizers' NFC/NFD/NFKC/
// NFKD with Python's unicodedata for every assigned code point, single and after "a" before U+0334
// (tests/conformance/gen_tokenizer_goldens.py --normalizer-table prints it).
constexpr char32_t kUnknownToHf[][2] = {
    {0x7FD, 0x7FD},     {0x898, 0x89F},     {0x8CA, 0x8D3},     {0x9FE, 0x9FE},     {0xC3C, 0xC3C},
    {0xD3B, 0xD3C},     {0xEBA, 0xEBA},     {0x1715, 0x1715},   {0x1ABF, 0x1ACE},   {0x1DF6, 0x1DFA},
    {0x32FF, 0x32FF},   {0xA7F2, 0xA7F4},   {0xA82C, 0xA82C},   {0xAB69, 0xAB69},   {0x10781, 0x10785},
    {0x10787, 0x107B0}, {0x107B2, 0x107BA}, {0x10D24, 0x10D27}, {0x10EAB, 0x10EAC}, {0x10F46, 0x10F50},
    {0x10F82, 0x10F85}, {0x11070, 0x11070}, {0x1133B, 0x1133B}, {0x1145E, 0x1145E}, {0x11839, 0x1183A},
    {0x11938, 0x11938}, {0x1193D, 0x1193E}, {0x11943, 0x11943}, {0x119E0, 0x119E0}, {0x11A34, 0x11A34},
    {0x11A47, 0x11A47}, {0x11A99, 0x11A99}, {0x11D42, 0x11D42}, {0x11D44, 0x11D45}, {0x11D97, 0x11D97},
    {0x16FF0, 0x16FF1}, {0x1E130, 0x1E136}, {0x1E2AE, 0x1E2AE}, {0x1E2EC, 0x1E2EF}, {0x1F16C, 0x1F16C},
    {0x1FBF0, 0x1FBF9}};

bool unknown_to_hf(char32_t cp) {
  size_t lo = 0, hi = std::size(kUnknownToHf);
  while (lo < hi) {
    const size_t mid = (lo + hi) / 2;
    if (cp < kUnknownToHf[mid][0]) {
      hi = mid;
    } else if (cp > kUnknownToHf[mid][1]) {
      lo = mid + 1;
    } else {
      return true;
    }
  }
  return false;
}

class UnicodeNormalizer final : public Normalizer {
 public:
  explicit UnicodeNormalizer(int options)
      : options_(options), nfc_((options & UTF8PROC_COMPOSE) != 0 && (options & UTF8PROC_COMPAT) == 0) {}
  void normalize(std::string* text) const override {
    if (is_ascii(*text)) return;  // ASCII is invariant under every normalization form
    if (nfc_ && nfc_inert(*text)) return;
    // Normalize the stretches between code points unknown to tokenizers; keep those verbatim.
    std::string out;
    out.reserve(text->size());
    size_t start = 0, pos = 0;
    while (pos < text->size()) {
      const size_t begin = pos;
      if (static_cast<uint8_t>((*text)[pos]) < 0x80) {
        ++pos;
        continue;
      }
      if (!unknown_to_hf(next_code_point(*text, &pos))) continue;
      append_normalized(std::string_view(*text).substr(start, begin - start), &out);
      out.append(*text, begin, pos - begin);
      start = pos;
    }
    append_normalized(std::string_view(*text).substr(start), &out);
    *text = std::move(out);
  }

 private:
  void append_normalized(std::string_view part, std::string* out) const {
    if (part.empty()) return;
    utf8proc_uint8_t* mapped = nullptr;
    const utf8proc_ssize_t num_bytes = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(part.data()),
                                                    static_cast<utf8proc_ssize_t>(part.size()), &mapped,
                                                    static_cast<utf8proc_option_t>(options_));
    if (num_bytes >= 0 && mapped != nullptr) {
      out->append(reinterpret_cast<const char*>(mapped), static_cast<size_t>(num_bytes));
    } else {
      out->append(part);
    }
    std::free(mapped);
  }

  // True when NFC cannot change `text`: every code point is below U+0300 (nothing there has
  // NFC_Quick_Check=No, and the marks that could compose with it start at U+0300) or a CJK unified
  // ideograph U+4E00..U+9FFF (no decomposition, never composes). Saves utf8proc on most text.
  static bool nfc_inert(const std::string& text) {
    size_t pos = 0;
    while (pos < text.size()) {
      if (static_cast<uint8_t>(text[pos]) < 0x80) {
        ++pos;
        continue;
      }
      const char32_t cp = next_code_point(text, &pos);
      if (cp >= 0x300 && (cp < 0x4E00 || cp > 0x9FFF)) return false;
    }
    return true;
  }

  int options_;
  bool nfc_;
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
