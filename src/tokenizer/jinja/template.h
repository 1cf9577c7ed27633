// A compiled Jinja template: parse once, render many times (thread-safe: rendering only reads).
//
// Behaves like jinja2's ImmutableSandboxedEnvironment as transformers configures it for chat
// templates: trim_blocks and lstrip_blocks on, loop controls, transformers' tojson,
// raise_exception, strftime_now, dict and namespace. Errors carry the line and column.
#pragma once

#include <memory>
#include <string>

#include "base/status.h"
#include "tokenizer/jinja/interpreter.h"
#include "tokenizer/jinja/value.h"

namespace nibble::tokenizer::jinja {

class Template {
 public:
  // Syntax errors come back as kInvalidArgument: "line L, column C: message".
  static base::Result<Template> parse(const std::string& source);

  // Renders with `context` (a dict of variable name -> value). Runtime errors, raise_exception()
  // and exceeded limits come back as kInvalidArgument with the line and column.
  base::Result<std::string> render(const Dict& context, const RenderLimits& limits = {}) const;

 private:
  std::shared_ptr<const StmtList> body_;
};

}  // namespace nibble::tokenizer::jinja
