// Statement parsing (if, for, set, macro, call, filter, with, ...).
#include "tokenizer/jinja/parser.h"

#include "tokenizer/jinja/parser_impl.h"

namespace nibble::tokenizer::jinja {

// Parses until a block tag whose first name is in `end_names`; leaves the stream at that name.
StmtList Parser::subparse(std::initializer_list<const char*> end_names) {
  DepthGuard guard(*this);
  StmtList body;
  while (true) {
    const Token& t = cur();
    if (t.type == TokenType::kEof) {
      if (end_names.size() > 0) {
        std::string expected;
        for (const char* n : end_names) expected += (expected.empty() ? "'" : " or '") + std::string(n) + "'";
        fail("unexpected end of template; jinja was looking for " + expected);
      }
      return body;
    }
    if (t.type == TokenType::kData) {
      auto s = std::make_unique<Stmt>();
      s->kind = StmtKind::kData;
      s->pos = t.pos;
      s->text = t.value;
      body.push_back(std::move(s));
      next();
    } else if (t.type == TokenType::kVarBegin) {
      next();
      auto s = std::make_unique<Stmt>();
      s->kind = StmtKind::kOutput;
      s->pos = t.pos;
      s->expr = parse_tuple(false, true, false);
      if (cur().type != TokenType::kVarEnd)
        fail("expected end of print statement, got '" + describe(cur()) + "'");
      next();
      body.push_back(std::move(s));
    } else if (t.type == TokenType::kBlockBegin) {
      next();
      if (cur().type == TokenType::kName) {
        for (const char* n : end_names) {
          if (cur().value == n) return body;
        }
      }
      body.push_back(parse_statement());
    } else {
      fail("unexpected '" + describe(t) + "'");
    }
  }
}

StmtPtr Parser::new_stmt(StmtKind kind, SourcePos pos) {
  auto s = std::make_unique<Stmt>();
  s->kind = kind;
  s->pos = pos;
  return s;
}

StmtPtr Parser::parse_statement() {
  if (cur().type != TokenType::kName) fail("tag name expected");
  const std::string tag = cur().value;
  const SourcePos pos = cur().pos;
  if (tag == "if") return parse_if();
  if (tag == "for") return parse_for();
  if (tag == "set") return parse_set();
  if (tag == "macro") return parse_macro();
  if (tag == "call") return parse_call_block();
  if (tag == "filter") return parse_filter_block();
  if (tag == "with") return parse_with();
  if (tag == "generation") {
    // transformers' {% generation %} marks assistant text for masks; it renders its body as is.
    next();
    expect_block_end();
    auto s = new_stmt(StmtKind::kWith, pos);
    s->body = subparse({"endgeneration"});
    next();
    expect_block_end();
    return s;
  }
  if (tag == "break" || tag == "continue") {
    if (loop_depth_ == 0) fail("'" + tag + "' outside of a loop");
    next();
    expect_block_end();
    return new_stmt(tag == "break" ? StmtKind::kBreak : StmtKind::kContinue, pos);
  }
  if (tag == "include" || tag == "import" || tag == "from" || tag == "extends" || tag == "block") {
    fail("'" + tag + "' is not supported in chat templates (no template loader)");
  }
  fail("Encountered unknown tag '" + tag + "'");
}

StmtPtr Parser::parse_if() {
  SoftScope soft(*this, true);
  auto s = new_stmt(StmtKind::kIf, cur().pos);
  next();
  while (true) {
    s->conditions.push_back(parse_tuple(false, true, false));
    expect_block_end();
    s->bodies.push_back(subparse({"elif", "else", "endif"}));
    const std::string t = next().value;
    if (t == "elif") continue;
    if (t == "else") {
      expect_block_end();
      s->else_body = subparse({"endif"});
      next();
    }
    break;
  }
  expect_block_end();
  return s;
}

std::vector<std::string> Parser::parse_targets(const char* end_name) {
  std::vector<std::string> names;
  const bool parens = is_op("(");
  if (parens) next();
  while (true) {
    names.push_back(expect_name());
    if (!is_op(",")) break;
    next();
    if ((parens && is_op(")")) || (!parens && is_name(end_name))) break;
  }
  if (parens) expect_op(")");
  return names;
}

StmtPtr Parser::parse_for() {
  auto s = new_stmt(StmtKind::kFor, cur().pos);
  next();
  s->targets = parse_targets("in");
  for (const auto& n : s->targets) {
    if (n == "loop") fail("'loop' cannot be used as a loop variable");
  }
  expect_name("in");
  s->expr = parse_tuple(false, false, false, "recursive");
  if (is_name("if")) {
    next();
    SoftScope hard(*this, false);
    s->cond = parse_expression(true);
  }
  if (is_name("recursive")) {
    next();
    s->recursive = true;
  }
  expect_block_end();
  ++loop_depth_;
  {
    SoftScope hard(*this, false);
    s->body = subparse({"endfor", "else"});
  }
  --loop_depth_;
  if (next().value == "else") {
    expect_block_end();
    s->else_body = subparse({"endfor"});
    next();
  }
  expect_block_end();
  return s;
}

StmtPtr Parser::parse_set() {
  const SourcePos pos = cur().pos;
  next();
  std::vector<std::string> targets;
  std::string attr;
  const std::string first = expect_name();
  targets.push_back(first);
  if (is_op(".")) {
    next();
    attr = expect_name();
  } else {
    while (is_op(",")) {
      next();
      if (is_op("=")) break;
      targets.push_back(expect_name());
    }
  }
  if (is_op("=")) {
    next();
    auto s = new_stmt(StmtKind::kSet, pos);
    s->targets = std::move(targets);
    s->text = attr;
    s->expr = parse_tuple(false, true, false);
    expect_block_end();
    return s;
  }
  if (targets.size() != 1) fail("expected '='");
  auto s = new_stmt(StmtKind::kSetBlock, pos);
  s->targets = std::move(targets);
  s->text = attr;
  if (is_op("|")) {
    auto body_ref = make(ExprKind::kName, cur().pos);
    body_ref->name = "__body";
    s->expr = parse_filter_chain(std::move(body_ref));
  }
  expect_block_end();
  {
    SoftScope hard(*this, false);
    s->body = subparse({"endset"});
  }
  next();
  expect_block_end();
  return s;
}

void Parser::parse_params(std::vector<MacroParam>& params) {
  expect_op("(");
  while (!is_op(")")) {
    if (!params.empty()) expect_op(",");
    if (is_op(")")) break;
    MacroParam p;
    p.name = expect_name();
    if (is_op("=")) {
      next();
      p.default_value = parse_expression(true);
    } else if (!params.empty() && params.back().default_value) {
      fail("non-default argument follows default argument");
    }
    params.push_back(std::move(p));
  }
  next();
}

StmtPtr Parser::parse_macro() {
  auto s = new_stmt(StmtKind::kMacro, cur().pos);
  next();
  s->text = expect_name();
  parse_params(s->params);
  expect_block_end();
  const int saved_loop_depth = loop_depth_;
  loop_depth_ = 0;
  {
    SoftScope hard(*this, false);
    s->body = subparse({"endmacro"});
  }
  loop_depth_ = saved_loop_depth;
  next();
  if (cur().type == TokenType::kName) next();
  expect_block_end();
  return s;
}

StmtPtr Parser::parse_call_block() {
  auto s = new_stmt(StmtKind::kCallBlock, cur().pos);
  next();
  if (is_op("(")) parse_params(s->params);
  s->expr = parse_expression(true);
  if (s->expr->kind != ExprKind::kCall) fail("expected call");
  expect_block_end();
  {
    SoftScope hard(*this, false);
    s->body = subparse({"endcall"});
  }
  next();
  expect_block_end();
  return s;
}

StmtPtr Parser::parse_filter_block() {
  auto s = new_stmt(StmtKind::kFilterBlock, cur().pos);
  next();
  auto body_ref = make(ExprKind::kName, cur().pos);
  body_ref->name = "__body";
  s->expr = parse_filter_chain(std::move(body_ref), /*first_has_pipe=*/false);
  expect_block_end();
  {
    SoftScope hard(*this, false);
    s->body = subparse({"endfilter"});
  }
  next();
  expect_block_end();
  return s;
}

StmtPtr Parser::parse_with() {
  auto s = new_stmt(StmtKind::kWith, cur().pos);
  next();
  while (!is_block_end()) {
    if (!s->params.empty()) expect_op(",");
    MacroParam p;
    p.name = expect_name();
    expect_op("=");
    p.default_value = parse_expression(true);
    s->params.push_back(std::move(p));
  }
  expect_block_end();
  {
    SoftScope hard(*this, false);
    s->body = subparse({"endwith"});
  }
  next();
  expect_block_end();
  return s;
}

StmtList parse_template(const std::vector<Token>& tokens) {
  return Parser(tokens).parse();
}

}  // namespace nibble::tokenizer::jinja
