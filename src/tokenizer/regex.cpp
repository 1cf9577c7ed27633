#include "tokenizer/regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "tokenizer/unicode.h"

namespace nibble::tokenizer {

struct Regex::Code {
  pcre2_code* code = nullptr;
  bool jit = false;
  ~Code() { pcre2_code_free(code); }
};

namespace {

std::string pcre2_message(int error_code) {
  PCRE2_UCHAR buffer[256];
  pcre2_get_error_message(error_code, buffer, sizeof(buffer));
  return reinterpret_cast<const char*>(buffer);
}

// Per-thread match state: one match-data block (only group 0 is needed) and a JIT stack big
// enough for patterns such as \s+(?!\S) over very long whitespace runs.
struct ThreadMatchState {
  pcre2_match_data* match_data = nullptr;
  pcre2_match_context* context = nullptr;
  pcre2_jit_stack* jit_stack = nullptr;
  ThreadMatchState() {
    match_data = pcre2_match_data_create(1, nullptr);
    context = pcre2_match_context_create(nullptr);
    jit_stack = pcre2_jit_stack_create(64 * 1024, 512 * 1024 * 1024, nullptr);
    if (context != nullptr && jit_stack != nullptr) pcre2_jit_stack_assign(context, nullptr, jit_stack);
  }
  ~ThreadMatchState() {
    pcre2_jit_stack_free(jit_stack);
    pcre2_match_context_free(context);
    pcre2_match_data_free(match_data);
  }
  ThreadMatchState(const ThreadMatchState&) = delete;
  ThreadMatchState& operator=(const ThreadMatchState&) = delete;
};

ThreadMatchState& thread_match_state() {
  thread_local ThreadMatchState state;
  return state;
}

}  // namespace

namespace {

// Oniguruma's \s (what tokenizers uses) is exactly the Unicode White_Space property. PCRE2's \s
// with UCP differs: it lacks U+0085 (NEXT LINE) and includes U+180E (MONGOLIAN VOWEL SEPARATOR).
// Rewrites \s (and \S outside classes) to the explicit White_Space set.
constexpr const char* kWhiteSpaceSet =
    "\\t\\n\\x{0b}\\f\\r\\x{20}\\x{85}\\x{a0}\\x{1680}\\x{2000}-\\x{200a}\\x{2028}\\x{2029}\\x{202f}\\x{205f}"
    "\\x{3000}";

std::string onig_compatible(const std::string& pattern) {
  std::string out;
  out.reserve(pattern.size() + 16);
  bool in_class = false;
  size_t class_start = 0;  // index just after "[" or "[^", where a "]" is still literal
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      const char e = pattern[i + 1];
      if (e == 'Q') {  // \Q...\E quotes literally
        const size_t close = pattern.find("\\E", i + 2);
        const size_t end = close == std::string::npos ? pattern.size() : close + 2;
        out.append(pattern, i, end - i);
        i = end - 1;
        continue;
      }
      if (e == 's') {
        out += in_class ? std::string(kWhiteSpaceSet) : "[" + std::string(kWhiteSpaceSet) + "]";
      } else if (e == 'S' && !in_class) {
        out += "[^" + std::string(kWhiteSpaceSet) + "]";
      } else {
        out += c;
        out += e;
      }
      ++i;
      continue;
    }
    if (!in_class && c == '[') {
      in_class = true;
      out += c;
      if (i + 1 < pattern.size() && pattern[i + 1] == '^') out += pattern[++i];
      class_start = i + 1;
      continue;
    }
    if (in_class && c == '[' && i + 1 < pattern.size() && pattern[i + 1] == ':') {
      const size_t close = pattern.find(":]", i + 2);
      if (close != std::string::npos) {
        out.append(pattern, i, close + 2 - i);
        i = close + 1;
        continue;
      }
    }
    if (in_class && c == ']' && i != class_start) in_class = false;
    out += c;
  }
  return out;
}

}  // namespace

base::Result<Regex> Regex::compile(const std::string& onig_pattern, const std::string& what) {
  int error_code = 0;
  PCRE2_SIZE error_offset = 0;
  const std::string pattern = onig_compatible(onig_pattern);
  pcre2_code* code =
      pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                    PCRE2_UTF | PCRE2_UCP | PCRE2_NEVER_BACKSLASH_C, &error_code, &error_offset, nullptr);
  if (code == nullptr) {
    return base::invalid_argument(what + ": cannot compile regex at offset " + std::to_string(error_offset) +
                                  ": " + pcre2_message(error_code));
  }
  auto holder = std::make_shared<Code>();
  holder->code = code;
  holder->jit = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
  Regex regex;
  regex.code_ = std::move(holder);
  regex.what_ = what;
  return regex;
}

base::Result<Regex> Regex::literal(const std::string& text, const std::string& what) {
  std::string pattern = "\\Q";
  for (size_t i = 0; i < text.size(); ++i) {
    // \Q...\E cannot contain \E itself; close and reopen around it.
    if (text[i] == '\\' && i + 1 < text.size() && text[i + 1] == 'E') {
      pattern += "\\E\\\\\\QE";
      ++i;
    } else {
      pattern += text[i];
    }
  }
  pattern += "\\E";
  return compile(pattern, what);
}

base::Status Regex::find_all(std::string_view text, std::vector<std::pair<size_t, size_t>>* matches) const {
  ThreadMatchState& state = thread_match_state();
  if (state.match_data == nullptr)
    return base::resource_exhausted(what_ + ": cannot allocate regex match data");
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t start = 0;
  while (start <= text.size()) {
    const int rc = code_->jit ? pcre2_jit_match(code_->code, subject, text.size(), start, 0, state.match_data,
                                                state.context)
                              : pcre2_match(code_->code, subject, text.size(), start, PCRE2_NO_UTF_CHECK,
                                            state.match_data, state.context);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) return base::resource_exhausted(what_ + ": regex match failed: " + pcre2_message(rc));
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(state.match_data);
    const size_t begin = ovector[0], end = ovector[1];
    matches->emplace_back(begin, end);
    if (end > begin) {
      start = end;
    } else {
      if (end >= text.size()) break;
      start = end + utf8_seq_len(static_cast<uint8_t>(text[end]));
    }
  }
  return base::ok_status();
}

}  // namespace nibble::tokenizer
