#include "tokenizer/decoder.h"

#include <nlohmann/json.hpp>
#include <utility>

#include "tokenizer/json_util.h"
#include "tokenizer/regex.h"
#include "tokenizer/unicode.h"

namespace nibble::tokenizer {
namespace {

std::vector<char32_t> code_points(const std::string& text) {
  std::vector<char32_t> cps;
  size_t pos = 0;
  while (pos < text.size()) cps.push_back(next_code_point(text, &pos));
  return cps;
}

// Maps each token's characters back to bytes; a token with a character outside the byte-level
// alphabet (an added token such as "<|im_end|>" is fine, "日本" is not) keeps its own UTF-8 bytes.
// The bytes of all tokens are joined and converted lossily into one string.
class ByteLevelDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>* tokens) const override {
    std::string bytes;
    for (const std::string& token : *tokens) {
      const size_t mark = bytes.size();
      size_t pos = 0;
      bool ok = true;
      while (pos < token.size()) {
        const int b = char_to_byte(next_code_point(token, &pos));
        if (b < 0) {
          ok = false;
          break;
        }
        bytes.push_back(static_cast<char>(b));
      }
      if (!ok) {
        bytes.resize(mark);
        bytes += token;
      }
    }
    tokens->assign(1, utf8_lossy(bytes));
  }
};

class MetaspaceDecoder final : public Decoder {
 public:
  MetaspaceDecoder(char32_t replacement, bool strip_first)
      : replacement_(replacement), strip_first_(strip_first) {}
  void decode_chain(std::vector<std::string>* tokens) const override {
    for (size_t i = 0; i < tokens->size(); ++i) {
      std::string out;
      size_t pos = 0;
      const std::string& token = (*tokens)[i];
      while (pos < token.size()) {
        const size_t begin = pos;
        const char32_t cp = next_code_point(token, &pos);
        if (cp == replacement_) {
          if (!(i == 0 && strip_first_)) out.push_back(' ');
        } else {
          out.append(token, begin, pos - begin);
        }
      }
      (*tokens)[i] = std::move(out);
    }
  }

 private:
  char32_t replacement_;
  bool strip_first_;
};

// Runs of "<0xXX>" tokens become their bytes when those form valid UTF-8, else one U+FFFD per byte.
class ByteFallbackDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>* tokens) const override {
    std::vector<std::string> out;
    std::string pending;
    auto flush = [&] {
      if (pending.empty()) return;
      if (find_invalid_utf8(pending) == std::string::npos) {
        out.push_back(pending);
      } else {
        for (size_t k = 0; k < pending.size(); ++k) out.emplace_back("\xEF\xBF\xBD");
      }
      pending.clear();
    };
    for (std::string& token : *tokens) {
      int byte = -1;
      if (token.size() == 6 && token.compare(0, 3, "<0x") == 0 && token[5] == '>')
        byte = parse_hex_byte(token[3], token[4]);
      if (byte >= 0) {
        pending.push_back(static_cast<char>(byte));
      } else {
        flush();
        out.push_back(std::move(token));
      }
    }
    flush();
    *tokens = std::move(out);
  }

 private:
  static int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }
  static int parse_hex_byte(char hi, char lo) {
    const int h = hex_digit(hi), l = hex_digit(lo);
    return (h < 0 || l < 0) ? -1 : h * 16 + l;
  }
};

class FuseDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>* tokens) const override {
    std::string joined;
    for (const std::string& t : *tokens) joined += t;
    tokens->assign(1, std::move(joined));
  }
};

class StripDecoder final : public Decoder {
 public:
  StripDecoder(char32_t content, size_t start, size_t stop) : content_(content), start_(start), stop_(stop) {}
  void decode_chain(std::vector<std::string>* tokens) const override {
    for (std::string& token : *tokens) {
      const std::vector<char32_t> cps = code_points(token);
      size_t start_cut = 0;
      for (size_t i = 0; i < start_ && i < cps.size() && cps[i] == content_; ++i) start_cut = i + 1;
      size_t stop_cut = cps.size();
      for (size_t i = 0; i < stop_ && i < cps.size(); ++i) {
        const size_t index = cps.size() - i - 1;
        if (cps[index] != content_) break;
        stop_cut = index;
      }
      std::string out;
      for (size_t i = start_cut; i < stop_cut; ++i) append_utf8(&out, cps[i]);
      token = std::move(out);
    }
  }

 private:
  char32_t content_;
  size_t start_, stop_;
};

class ReplaceDecoder final : public Decoder {
 public:
  ReplaceDecoder(Regex pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void decode_chain(std::vector<std::string>* tokens) const override {
    std::vector<std::pair<size_t, size_t>> matches;
    for (std::string& token : *tokens) {
      matches.clear();
      if (!pattern_.find_all(token, &matches).ok() || matches.empty()) continue;
      std::string out;
      size_t prev = 0;
      for (const auto& [begin, end] : matches) {
        out.append(token, prev, begin - prev);
        out += content_;
        prev = end;
      }
      out.append(token, prev, std::string::npos);
      token = std::move(out);
    }
  }

 private:
  Regex pattern_;
  std::string content_;
};

class SequenceDecoder final : public Decoder {
 public:
  explicit SequenceDecoder(std::vector<std::unique_ptr<Decoder>> parts) : parts_(std::move(parts)) {}
  void decode_chain(std::vector<std::string>* tokens) const override {
    for (const auto& part : parts_) part->decode_chain(tokens);
  }

 private:
  std::vector<std::unique_ptr<Decoder>> parts_;
};

base::Result<char32_t> single_char(const nlohmann::json& spec, const char* key, const std::string& where,
                                   const std::string& fallback) {
  NIBBLE_ASSIGN_OR_RETURN(const std::string text, json_string_or(spec, key, where, fallback));
  size_t pos = 0;
  if (text.empty() || find_invalid_utf8(text) != std::string::npos) {
    return base::corrupt(where + "." + key + ": must be exactly one character");
  }
  const char32_t cp = next_code_point(text, &pos);
  if (pos != text.size()) return base::corrupt(where + "." + key + ": must be exactly one character");
  return cp;
}

}  // namespace

base::Result<std::unique_ptr<Decoder>> parse_decoder(const nlohmann::json& spec, const std::string& where,
                                                     int depth) {
  if (spec.is_null()) return std::unique_ptr<Decoder>();
  NIBBLE_ASSIGN_OR_RETURN(const std::string type, json_type(spec, where));
  if (type == "ByteLevel") return std::unique_ptr<Decoder>(new ByteLevelDecoder());
  if (type == "Metaspace") {
    NIBBLE_ASSIGN_OR_RETURN(const char32_t replacement,
                            single_char(spec, "replacement", where, "\xE2\x96\x81"));
    NIBBLE_ASSIGN_OR_RETURN(const std::string scheme, json_string_or(spec, "prepend_scheme", where, ""));
    bool strip_first = true;
    if (scheme.empty()) {
      NIBBLE_ASSIGN_OR_RETURN(strip_first, json_bool(spec, "add_prefix_space", where, true));
    } else if (scheme == "never") {
      strip_first = false;
    } else if (scheme != "always" && scheme != "first") {
      return base::unsupported(where + ".prepend_scheme: unsupported value \"" + scheme + "\"");
    }
    return std::unique_ptr<Decoder>(new MetaspaceDecoder(replacement, strip_first));
  }
  if (type == "ByteFallback") return std::unique_ptr<Decoder>(new ByteFallbackDecoder());
  if (type == "Fuse") return std::unique_ptr<Decoder>(new FuseDecoder());
  if (type == "Strip") {
    NIBBLE_ASSIGN_OR_RETURN(const char32_t content, single_char(spec, "content", where, " "));
    NIBBLE_ASSIGN_OR_RETURN(const uint64_t start, json_uint(spec, "start", where, 0));
    NIBBLE_ASSIGN_OR_RETURN(const uint64_t stop, json_uint(spec, "stop", where, 0));
    return std::unique_ptr<Decoder>(new StripDecoder(content, start, stop));
  }
  if (type == "Replace") {
    NIBBLE_ASSIGN_OR_RETURN(Regex pattern, json_pattern(spec, where));
    NIBBLE_ASSIGN_OR_RETURN(std::string content, json_string(spec, "content", where));
    return std::unique_ptr<Decoder>(new ReplaceDecoder(std::move(pattern), std::move(content)));
  }
  if (type == "Sequence") {
    if (depth >= kMaxSequenceDepth) return base::corrupt(where + ": Sequence nested too deeply");
    NIBBLE_ASSIGN_OR_RETURN(const nlohmann::json* items, json_array(spec, "decoders", where));
    std::vector<std::unique_ptr<Decoder>> parts;
    for (size_t i = 0; i < items->size(); ++i) {
      NIBBLE_ASSIGN_OR_RETURN(
          auto part, parse_decoder((*items)[i], where + ".decoders[" + std::to_string(i) + "]", depth + 1));
      if (part) parts.push_back(std::move(part));
    }
    return std::unique_ptr<Decoder>(new SequenceDecoder(std::move(parts)));
  }
  return base::unsupported(where + ": unsupported decoder type \"" + type + "\"");
}

}  // namespace nibble::tokenizer
