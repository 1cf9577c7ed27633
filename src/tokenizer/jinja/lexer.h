// Splits template text into data and tag tokens the way jinja2's lexer does with
// transformers' settings: trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False.
#pragma once

#include <string>
#include <vector>

#include "tokenizer/jinja/error.h"

namespace nibble::tokenizer::jinja {

enum class TokenType {
  kData,        // literal template text (also the inside of {% raw %})
  kVarBegin,    // {{
  kVarEnd,      // }}
  kBlockBegin,  // {%
  kBlockEnd,    // %}
  kName,
  kString,  // value already unescaped
  kInteger,
  kFloat,
  kOperator,
  kEof,
};

struct Token {
  TokenType type = TokenType::kEof;
  std::string value;
  SourcePos pos;
};

// Throws TemplateError (with line and column) on malformed input.
std::vector<Token> tokenize(const std::string& source);

}  // namespace nibble::tokenizer::jinja
