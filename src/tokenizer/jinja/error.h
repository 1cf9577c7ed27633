// The template engine's internal error type. It never leaves the engine: Template::parse and
// Template::render catch it and return a Status naming the line and column.
#pragma once

#include <stdexcept>
#include <string>

namespace nibble::tokenizer::jinja {

struct SourcePos {
  int line = 0;    // 1-based; 0 when unknown
  int column = 0;  // 1-based, in bytes
};

class TemplateError : public std::runtime_error {
 public:
  TemplateError(const std::string& message, SourcePos pos) : std::runtime_error(message), pos_(pos) {}
  const SourcePos& pos() const { return pos_; }
  void set_pos_if_unknown(SourcePos pos) {
    if (pos_.line == 0) pos_ = pos;
  }

 private:
  SourcePos pos_;
};

// raise_exception() from the template: its message is passed on as is.
class RaisedError : public TemplateError {
 public:
  using TemplateError::TemplateError;
};

}  // namespace nibble::tokenizer::jinja
