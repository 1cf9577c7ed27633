#include "tokenizer/jinja/template.h"

#include <new>

#include "tokenizer/jinja/lexer.h"
#include "tokenizer/jinja/parser.h"

namespace nibble::tokenizer::jinja {
namespace {

std::string where(const SourcePos& pos) {
  if (pos.line == 0) return "";
  return "line " + std::to_string(pos.line) + ", column " + std::to_string(pos.column) + ": ";
}

}  // namespace

base::Result<Template> Template::parse(const std::string& source) {
  try {
    Template t;
    t.body_ = std::make_shared<const StmtList>(parse_template(tokenize(source)));
    return t;
  } catch (const TemplateError& e) {
    return base::invalid_argument("template syntax error at " + where(e.pos()) + e.what());
  } catch (const std::bad_alloc&) {
    return base::resource_exhausted("out of memory while parsing the template");
  }
}

base::Result<std::string> Template::render(const Dict& context, const RenderLimits& limits) const {
  if (!body_) return base::internal_error("render() on a template that was not parsed");
  try {
    Interpreter interp(limits);
    return interp.render(*body_, context);
  } catch (const RaisedError& e) {
    return base::invalid_argument("template raised an exception at " + where(e.pos()) + e.what());
  } catch (const TemplateError& e) {
    return base::invalid_argument("template error at " + where(e.pos()) + e.what());
  } catch (const std::bad_alloc&) {
    return base::resource_exhausted("out of memory while rendering the template");
  } catch (const std::length_error&) {
    return base::resource_exhausted("string too long while rendering the template");
  }
}

}  // namespace nibble::tokenizer::jinja
