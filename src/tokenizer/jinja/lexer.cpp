#include "tokenizer/jinja/lexer.h"

#include <algorithm>
#include <cstring>

#include "tokenizer/jinja/utf8.h"

namespace nibble::tokenizer::jinja {
namespace {

// Maps byte offsets of the (newline-normalised) source to line and column.
class PosMap {
 public:
  explicit PosMap(const std::string& s) {
    line_starts_.push_back(0);
    for (size_t i = 0; i < s.size(); ++i) {
      if (s[i] == '\n') line_starts_.push_back(i + 1);
    }
  }
  SourcePos at(size_t offset) const {
    auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), offset);
    const size_t line_idx = static_cast<size_t>(it - line_starts_.begin()) - 1;
    return {static_cast<int>(line_idx + 1), static_cast<int>(offset - line_starts_[line_idx] + 1)};
  }

 private:
  std::vector<size_t> line_starts_;
};

// Python's `\s` for the byte at `i` (decodes multi-byte whitespace such as U+3000).
size_t space_len_at(const std::string& s, size_t i) {
  const auto b = static_cast<unsigned char>(s[i]);
  if (b < 0x80) return is_py_space(b) ? 1 : 0;
  const std::u32string cp = decode_utf8(std::string_view(s).substr(i, std::min<size_t>(4, s.size() - i)));
  if (cp.empty() || !is_py_space(cp[0])) return 0;
  std::string enc;
  append_utf8(enc, cp[0]);
  return enc.size();
}

size_t skip_spaces(const std::string& s, size_t i) {
  while (i < s.size()) {
    const size_t n = space_len_at(s, i);
    if (n == 0) break;
    i += n;
  }
  return i;
}

std::string rstrip_py(const std::string& text) {
  std::u32string cps = decode_utf8(text);
  while (!cps.empty() && is_py_space(cps.back())) cps.pop_back();
  return encode_utf8(cps);
}

bool all_space(const std::string& s, size_t from) {
  return skip_spaces(s, from) == s.size();
}

bool is_name_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool is_name_char(char c) {
  return is_name_start(c) || (c >= '0' && c <= '9');
}
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Python's "unicode-escape" decoding of a string literal body.
std::string unescape(const std::string& body) {
  std::string out;
  for (size_t i = 0; i < body.size(); ++i) {
    const char c = body[i];
    if (c != '\\' || i + 1 >= body.size()) {
      out.push_back(c);
      continue;
    }
    const char e = body[++i];
    switch (e) {
      case '\n':
        break;
      case '\\':
        out.push_back('\\');
        break;
      case '\'':
        out.push_back('\'');
        break;
      case '"':
        out.push_back('"');
        break;
      case 'a':
        out.push_back('\a');
        break;
      case 'b':
        out.push_back('\b');
        break;
      case 'f':
        out.push_back('\f');
        break;
      case 'n':
        out.push_back('\n');
        break;
      case 'r':
        out.push_back('\r');
        break;
      case 't':
        out.push_back('\t');
        break;
      case 'v':
        out.push_back('\v');
        break;
      case 'x':
      case 'u':
      case 'U': {
        const size_t digits = e == 'x' ? 2 : (e == 'u' ? 4 : 8);
        char32_t cp = 0;
        bool ok = i + digits < body.size();
        for (size_t k = 1; ok && k <= digits; ++k) {
          const int h = hex_value(body[i + k]);
          if (h < 0)
            ok = false;
          else
            cp = cp * 16 + static_cast<char32_t>(h);
        }
        if (!ok || cp > 0x10FFFF)
          throw TemplateError("invalid \\" + std::string(1, e) + " escape in string literal", {});
        append_utf8(out, cp);
        i += digits;
        break;
      }
      default:
        if (e >= '0' && e <= '7') {
          char32_t cp = static_cast<char32_t>(e - '0');
          for (int k = 0; k < 2 && i + 1 < body.size() && body[i + 1] >= '0' && body[i + 1] <= '7'; ++k) {
            cp = cp * 8 + static_cast<char32_t>(body[++i] - '0');
          }
          append_utf8(out, cp);
        } else {
          out.push_back('\\');
          out.push_back(e);
        }
    }
  }
  return out;
}

class Lexer {
 public:
  explicit Lexer(std::string source) : src_(std::move(source)), map_(src_) {}

  std::vector<Token> run() {
    bool line_starting = true;
    while (pos_ < src_.size()) {
      const size_t start = find_tag_start(pos_);
      if (start == std::string::npos) {
        emit(TokenType::kData, src_.substr(pos_), pos_);
        break;
      }
      const char kind = src_[start + 1];
      size_t after = start + 2;
      char sign = 0;
      if (after < src_.size() && (src_[after] == '-' || src_[after] == '+')) sign = src_[after++];
      std::string text = src_.substr(pos_, start - pos_);
      // Whitespace control on the text before the tag.
      if (sign == '-') {
        text = rstrip_py(text);
      } else if (sign != '+' && kind != '{') {
        const size_t nl = text.rfind('\n');
        const size_t l_pos = nl == std::string::npos ? 0 : nl + 1;
        if ((l_pos > 0 || line_starting) && all_space(text, l_pos)) text.resize(l_pos);
      }
      if (!text.empty()) emit(TokenType::kData, text, pos_);
      if (kind == '#') {
        line_starting = lex_comment(start, after);
      } else if (kind == '%' && is_raw_begin(after)) {
        line_starting = lex_raw(after);
      } else {
        line_starting = lex_tag(kind, start, after);
      }
    }
    tokens_.push_back({TokenType::kEof, "", map_.at(src_.size())});
    return std::move(tokens_);
  }

 private:
  size_t find_tag_start(size_t from) const {
    for (size_t i = src_.find('{', from); i != std::string::npos; i = src_.find('{', i + 1)) {
      if (i + 1 < src_.size() && (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#')) return i;
    }
    return std::string::npos;
  }

  void emit(TokenType type, std::string value, size_t offset) {
    tokens_.push_back({type, std::move(value), map_.at(offset)});
  }

  [[noreturn]] void fail(const std::string& msg, size_t offset) const {
    throw TemplateError(msg, map_.at(offset));
  }

  // After `%}`: trim_blocks eats one newline; `-%}` eats all whitespace. Returns the new
  // position and whether the consumed text ended in a newline.
  bool finish_block_end(size_t end_pos, char sign) {
    size_t p = end_pos;
    if (sign == '-') {
      p = skip_spaces(src_, p);
    } else if (sign != '+' && p < src_.size() && src_[p] == '\n') {
      ++p;
    }
    pos_ = p;
    return p > 0 && src_[p - 1] == '\n';
  }

  bool lex_comment(size_t start, size_t body_start) {
    const size_t end = src_.find("#}", body_start);
    if (end == std::string::npos) fail("Missing end of comment tag", start);
    char sign = 0;
    if (end > body_start && (src_[end - 1] == '-' || src_[end - 1] == '+')) sign = src_[end - 1];
    return finish_block_end(end + 2, sign);
  }

  bool is_raw_begin(size_t after) const {
    size_t p = skip_spaces(src_, after);
    if (src_.compare(p, 3, "raw") != 0) return false;
    p = skip_spaces(src_, p + 3);
    return src_.compare(p, 2, "%}") == 0 || src_.compare(p, 3, "-%}") == 0;
  }

  bool lex_raw(size_t after) {
    // Skip the `{% raw %}` tag itself (its end takes no trim_blocks newline, as in jinja2).
    size_t p = src_.find("%}", after);
    const bool strip_after = src_[p - 1] == '-';
    p += 2;
    if (strip_after) p = skip_spaces(src_, p);
    // Find `{%[-+]? endraw [-+]?%}`.
    size_t search = p;
    while (true) {
      const size_t open = src_.find("{%", search);
      if (open == std::string::npos) fail("Missing end of raw directive", after);
      size_t q = open + 2;
      char sign = 0;
      if (q < src_.size() && (src_[q] == '-' || src_[q] == '+')) sign = src_[q++];
      q = skip_spaces(src_, q);
      if (src_.compare(q, 6, "endraw") != 0) {
        search = open + 2;
        continue;
      }
      q = skip_spaces(src_, q + 6);
      char end_sign = 0;
      if (q < src_.size() && (src_[q] == '-' || src_[q] == '+')) end_sign = src_[q++];
      if (src_.compare(q, 2, "%}") != 0) {
        search = open + 2;
        continue;
      }
      std::string text = src_.substr(p, open - p);
      if (sign == '-') {
        text = rstrip_py(text);
      } else if (sign != '+') {
        const size_t nl = text.rfind('\n');
        const size_t l_pos = nl == std::string::npos ? 0 : nl + 1;
        if (l_pos > 0 && all_space(text, l_pos)) text.resize(l_pos);
      }
      if (!text.empty()) emit(TokenType::kData, text, p);
      return finish_block_end(q + 2, end_sign);
    }
  }

  bool lex_tag(char kind, size_t start, size_t after) {
    const bool is_block = kind == '%';
    emit(is_block ? TokenType::kBlockBegin : TokenType::kVarBegin, "", start);
    std::string balance;
    size_t p = after;
    while (true) {
      if (p >= src_.size())
        fail(is_block ? "unexpected end of template inside a block tag"
                      : "unexpected end of template inside a variable tag",
             start);
      if (balance.empty()) {
        if (is_block) {
          if (src_.compare(p, 3, "+%}") == 0 || src_.compare(p, 3, "-%}") == 0) {
            emit(TokenType::kBlockEnd, "", p);
            return finish_block_end(p + 3, src_[p]);
          }
          if (src_.compare(p, 2, "%}") == 0) {
            emit(TokenType::kBlockEnd, "", p);
            return finish_block_end(p + 2, 0);
          }
        } else {
          if (src_.compare(p, 3, "-}}") == 0) {
            emit(TokenType::kVarEnd, "", p);
            pos_ = skip_spaces(src_, p + 3);
            return pos_ > 0 && src_[pos_ - 1] == '\n';
          }
          if (src_.compare(p, 2, "}}") == 0) {
            emit(TokenType::kVarEnd, "", p);
            pos_ = p + 2;
            return false;
          }
        }
      }
      const size_t ws = skip_spaces(src_, p);
      if (ws != p) {
        p = ws;
        continue;
      }
      const char c = src_[p];
      if (is_digit(c)) {
        p = lex_number(p);
      } else if (is_name_start(c)) {
        size_t q = p;
        while (q < src_.size() && is_name_char(src_[q])) ++q;
        emit(TokenType::kName, src_.substr(p, q - p), p);
        p = q;
      } else if (c == '\'' || c == '"') {
        size_t q = p + 1;
        while (q < src_.size() && src_[q] != c) q += src_[q] == '\\' ? 2 : 1;
        if (q >= src_.size()) fail(std::string("unexpected char '") + c + "' (unterminated string)", p);
        std::string value;
        try {
          value = unescape(src_.substr(p + 1, q - p - 1));
        } catch (const TemplateError& e) {
          fail(e.what(), p);
        }
        emit(TokenType::kString, std::move(value), p);
        p = q + 1;
      } else {
        static const char* const kOps[] = {"//", "**", "==", "!=", ">=", "<=", "+", "-", "/",
                                           "*",  "%",  "~",  "[",  "]",  "(",  ")", "{", "}",
                                           ">",  "<",  "=",  ".",  ":",  "|",  ",", ";"};
        const char* op = nullptr;
        for (const char* candidate : kOps) {
          if (src_.compare(p, std::strlen(candidate), candidate) == 0) {
            op = candidate;
            break;
          }
        }
        if (!op) fail(std::string("unexpected char '") + c + "'", p);
        const std::string o(op);
        if (o == "(" || o == "[" || o == "{") {
          balance.push_back(o == "(" ? ')' : (o == "[" ? ']' : '}'));
        } else if (o == ")" || o == "]" || o == "}") {
          if (balance.empty()) fail("unexpected '" + o + "'", p);
          if (balance.back() != o[0])
            fail("unexpected '" + o + "', expected '" + std::string(1, balance.back()) + "'", p);
          balance.pop_back();
        }
        emit(TokenType::kOperator, o, p);
        p += o.size();
      }
    }
  }

  // Integers (with `_` separators, 0b/0o/0x) and floats (`1.5`, `1e3`, `1.5e-3`).
  size_t lex_number(size_t p) {
    const size_t start = p;
    auto digits = [&](size_t q, auto pred) {
      size_t r = q;
      while (r < src_.size() &&
             (pred(src_[r]) || (src_[r] == '_' && r + 1 < src_.size() && pred(src_[r + 1]) && r > q)))
        ++r;
      return r;
    };
    auto dec = [](char c) { return is_digit(c); };
    if (src_[p] == '0' && p + 1 < src_.size() && std::strchr("bBoOxX", src_[p + 1]) && src_[p + 1] != 0) {
      const char base_char = static_cast<char>(src_[p + 1] | 0x20);
      const int base = base_char == 'b' ? 2 : (base_char == 'o' ? 8 : 16);
      const size_t q = digits(p + 2, [base](char c) {
        const int h = hex_value(c);
        return h >= 0 && h < base;
      });
      if (q > p + 2) {
        int64_t v = 0;
        for (size_t i = p + 2; i < q; ++i) {
          if (src_[i] == '_') continue;
          if (__builtin_mul_overflow(v, base, &v) || __builtin_add_overflow(v, hex_value(src_[i]), &v)) {
            fail("integer literal too large", start);
          }
        }
        emit(TokenType::kInteger, std::to_string(v), start);
        return q;
      }
    }
    size_t q = digits(p, dec);
    bool is_float = false;
    if (q + 1 < src_.size() && src_[q] == '.' && is_digit(src_[q + 1]) &&
        !(start > 0 && src_[start - 1] == '.')) {
      q = digits(q + 1, dec);
      is_float = true;
    }
    if (q < src_.size() && (src_[q] == 'e' || src_[q] == 'E') && !(start > 0 && src_[start - 1] == '.')) {
      size_t r = q + 1;
      if (r < src_.size() && (src_[r] == '+' || src_[r] == '-')) ++r;
      if (r < src_.size() && is_digit(src_[r])) {
        q = digits(r, dec);
        is_float = true;
      }
    }
    std::string text;
    for (size_t i = start; i < q; ++i) {
      if (src_[i] != '_') text.push_back(src_[i]);
    }
    emit(is_float ? TokenType::kFloat : TokenType::kInteger, text, start);
    return q;
  }

  std::string src_;
  PosMap map_;
  size_t pos_ = 0;
  std::vector<Token> tokens_;
};

// jinja2 treats \r\n, \r and \n as line breaks, joins lines with \n and (keep_trailing_newline
// off) drops one final newline.
std::string normalize_newlines(const std::string& source) {
  std::string out;
  out.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      out.push_back('\n');
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      out.push_back(source[i]);
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

}  // namespace

std::vector<Token> tokenize(const std::string& source) {
  return Lexer(normalize_newlines(source)).run();
}

}  // namespace nibble::tokenizer::jinja
