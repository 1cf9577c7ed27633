// Recursive-descent parser for jinja2's template grammar (the subset chat templates use).
#pragma once

#include <string>
#include <vector>

#include "tokenizer/jinja/ast.h"
#include "tokenizer/jinja/lexer.h"

namespace nibble::tokenizer::jinja {

// How deeply expressions and blocks may nest before parsing stops with an error: bounds the
// parser's and the interpreter's recursion on hostile input.
inline constexpr int kMaxParseDepth = 128;

// Throws TemplateError on a syntax error.
StmtList parse_template(const std::vector<Token>& tokens);

}  // namespace nibble::tokenizer::jinja
