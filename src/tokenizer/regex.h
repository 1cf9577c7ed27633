// A compiled PCRE2 pattern (UTF + UCP, JIT when available) for the Oniguruma-style patterns found
// in tokenizer.json files: \p{L}, (?i:...), lookahead, possessive-free alternations.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"

namespace nibble::tokenizer {

class Regex {
 public:
  // `what` names the pattern's origin for error messages (e.g. "pre_tokenizer.pretokenizers[0]").
  static base::Result<Regex> compile(const std::string& pattern, const std::string& what);
  // A literal string pattern (tokenizer.json {"String": ...}), escaped and compiled.
  static base::Result<Regex> literal(const std::string& text, const std::string& what);

  // Appends the [begin, end) byte ranges of all non-overlapping matches in `text` (valid UTF-8),
  // left to right. After an empty match the search resumes one character later.
  base::Status find_all(std::string_view text, std::vector<std::pair<size_t, size_t>>* matches) const;

 private:
  struct Code;
  std::shared_ptr<const Code> code_;
  std::string what_;
};

}  // namespace nibble::tokenizer
