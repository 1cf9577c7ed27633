// Expression parsing, following jinja2's precedence: conditional, or, and, not, comparisons,
// + -, ~, * / // %, **, unary, then primaries with postfix (attribute, subscript, call),
// filters and tests.
#include <cerrno>
#include <cstdlib>

#include "tokenizer/jinja/interpreter.h"
#include "tokenizer/jinja/parser_impl.h"

namespace nibble::tokenizer::jinja {

ExprPtr Parser::parse_expression(bool with_condexpr) {
  DepthGuard guard(*this);
  if (!with_condexpr) return parse_or();
  if (soft_) return parse_condexpr();
  // jinja2 resolves filters and tests inside a conditional expression lazily (a "soft frame"):
  // when an unknown name stops the first parse, parse again leniently, and keep that only if
  // the expression is indeed conditional.
  const size_t start = pos_;
  try {
    return parse_condexpr();
  } catch (const UnknownNameError&) {
    const size_t failed_at = pos_;
    pos_ = start;
    SoftScope soft(*this, true);
    ExprPtr r = parse_condexpr();
    if (r->kind == ExprKind::kCondition) return r;
    pos_ = failed_at;
    throw;
  }
}

ExprPtr Parser::parse_condexpr() {
  DepthGuard guard(*this);
  ExprPtr expr1 = parse_or();
  while (is_name("if")) {
    auto cond = make(ExprKind::kCondition, cur().pos);
    next();
    SoftScope soft(*this, true);
    ExprPtr expr2 = parse_or();
    ExprPtr expr3;
    if (is_name("else")) {
      next();
      expr3 = parse_condexpr();
    }
    cond->args.push_back(std::move(expr2));
    cond->args.push_back(std::move(expr1));
    cond->args.push_back(std::move(expr3));
    expr1 = std::move(cond);
  }
  return expr1;
}

ExprPtr Parser::binary(const std::string& op, ExprPtr left, ExprPtr right, SourcePos pos) {
  auto e = make(ExprKind::kBinary, pos);
  e->name = op;
  e->args.push_back(std::move(left));
  e->args.push_back(std::move(right));
  return e;
}

ExprPtr Parser::parse_or() {
  ExprPtr left = parse_and();
  while (is_name("or")) {
    const SourcePos pos = next().pos;
    left = binary("or", std::move(left), parse_and(), pos);
  }
  return left;
}

ExprPtr Parser::parse_and() {
  ExprPtr left = parse_not();
  while (is_name("and")) {
    const SourcePos pos = next().pos;
    left = binary("and", std::move(left), parse_not(), pos);
  }
  return left;
}

ExprPtr Parser::parse_not() {
  if (is_name("not")) {
    DepthGuard guard(*this);
    auto e = make(ExprKind::kUnary, next().pos);
    e->name = "not";
    e->args.push_back(parse_not());
    return e;
  }
  return parse_compare();
}

ExprPtr Parser::parse_compare() {
  ExprPtr expr = parse_math1();
  ExprPtr cmp;
  while (true) {
    std::string op;
    if (cur().type == TokenType::kOperator &&
        (cur().value == "==" || cur().value == "!=" || cur().value == "<" || cur().value == ">" ||
         cur().value == "<=" || cur().value == ">=")) {
      op = next().value;
    } else if (is_name("in")) {
      next();
      op = "in";
    } else if (is_name("not") && peek().type == TokenType::kName && peek().value == "in") {
      next();
      next();
      op = "not in";
    } else {
      break;
    }
    if (!cmp) {
      cmp = make(ExprKind::kCompare, expr->pos);
      cmp->args.push_back(std::move(expr));
    }
    cmp->ops.push_back(op);
    cmp->args.push_back(parse_math1());
  }
  return cmp ? std::move(cmp) : std::move(expr);
}

ExprPtr Parser::parse_math1() {
  ExprPtr left = parse_concat();
  while (is_op("+") || is_op("-")) {
    const Token& t = next();
    left = binary(t.value, std::move(left), parse_concat(), t.pos);
  }
  return left;
}

ExprPtr Parser::parse_concat() {
  ExprPtr left = parse_math2();
  while (is_op("~")) {
    const SourcePos pos = next().pos;
    left = binary("~", std::move(left), parse_math2(), pos);
  }
  return left;
}

ExprPtr Parser::parse_math2() {
  ExprPtr left = parse_pow();
  while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
    const Token& t = next();
    left = binary(t.value, std::move(left), parse_pow(), t.pos);
  }
  return left;
}

ExprPtr Parser::parse_pow() {
  ExprPtr left = parse_unary(true);
  while (is_op("**")) {
    const SourcePos pos = next().pos;
    left = binary("**", std::move(left), parse_unary(true), pos);
  }
  return left;
}

ExprPtr Parser::parse_unary(bool with_filter) {
  DepthGuard guard(*this);
  ExprPtr node;
  if (is_op("-") || is_op("+")) {
    node = make(ExprKind::kUnary, cur().pos);
    node->name = next().value;
    node->args.push_back(parse_unary(false));
  } else {
    node = parse_primary();
  }
  node = parse_postfix(std::move(node));
  if (with_filter) node = parse_filter_expr(std::move(node));
  return node;
}

ExprPtr Parser::parse_primary() {
  const Token& t = cur();
  switch (t.type) {
    case TokenType::kName: {
      next();
      if (t.value == "true" || t.value == "True" || t.value == "false" || t.value == "False") {
        auto e = make(ExprKind::kLiteral, t.pos);
        e->literal = Value::boolean(t.value[0] == 't' || t.value[0] == 'T');
        return e;
      }
      if (t.value == "none" || t.value == "None") {
        auto e = make(ExprKind::kLiteral, t.pos);
        e->literal = Value::none();
        return e;
      }
      auto e = make(ExprKind::kName, t.pos);
      e->name = t.value;
      return e;
    }
    case TokenType::kString: {
      auto e = make(ExprKind::kLiteral, t.pos);
      std::string s = next().value;
      while (cur().type == TokenType::kString) s += next().value;
      e->literal = Value::string(std::move(s));
      return e;
    }
    case TokenType::kInteger: {
      auto e = make(ExprKind::kLiteral, t.pos);
      errno = 0;
      const long long v = std::strtoll(t.value.c_str(), nullptr, 10);
      if (errno == ERANGE) fail("integer literal too large");
      e->literal = Value::integer(v);
      next();
      return e;
    }
    case TokenType::kFloat: {
      auto e = make(ExprKind::kLiteral, t.pos);
      e->literal = Value::number(std::strtod(t.value.c_str(), nullptr));
      next();
      return e;
    }
    case TokenType::kOperator:
      if (t.value == "(") {
        next();
        ExprPtr e = parse_tuple(false, true, true);
        expect_op(")");
        return e;
      }
      if (t.value == "[") return parse_list();
      if (t.value == "{") return parse_dict();
      break;
    default:
      break;
  }
  fail("unexpected '" + describe(t) + "'");
}

ExprPtr Parser::parse_list() {
  auto e = make(ExprKind::kList, next().pos);
  while (!is_op("]")) {
    if (!e->args.empty()) expect_op(",");
    if (is_op("]")) break;
    e->args.push_back(parse_expression(true));
  }
  next();
  return e;
}

ExprPtr Parser::parse_dict() {
  auto e = make(ExprKind::kDict, next().pos);
  while (!is_op("}")) {
    if (!e->args.empty()) expect_op(",");
    if (is_op("}")) break;
    e->args.push_back(parse_expression(true));
    expect_op(":");
    e->args.push_back(parse_expression(true));
  }
  next();
  return e;
}

ExprPtr Parser::parse_postfix(ExprPtr node) {
  while (true) {
    if (is_op(".")) {
      const SourcePos pos = next().pos;
      if (cur().type == TokenType::kName) {
        auto e = make(ExprKind::kGetAttr, pos);
        e->name = next().value;
        e->args.push_back(std::move(node));
        node = std::move(e);
      } else if (cur().type == TokenType::kInteger) {
        auto e = make(ExprKind::kGetItem, pos);
        e->args.push_back(std::move(node));
        e->args.push_back(parse_primary());
        node = std::move(e);
      } else {
        fail("expected name or number after '.'");
      }
    } else if (is_op("[")) {
      node = parse_subscript(std::move(node));
    } else if (is_op("(")) {
      node = parse_call(std::move(node));
    } else {
      return node;
    }
  }
}

ExprPtr Parser::parse_subscript(ExprPtr node) {
  const SourcePos pos = next().pos;
  ExprPtr parts[3];
  bool is_slice = false;
  int part = 0;
  while (!is_op("]")) {
    if (is_op(":")) {
      if (part >= 2) fail("too many ':' in slice");
      next();
      ++part;
      is_slice = true;
      continue;
    }
    if (parts[part]) fail("expected ']' or ':' in subscript");
    parts[part] = parse_expression(true);
    if (is_op(",")) fail("tuple subscripts are not supported");
  }
  next();
  if (!is_slice) {
    if (!parts[0]) fail("expected subscript expression");
    auto e = make(ExprKind::kGetItem, pos);
    e->args.push_back(std::move(node));
    e->args.push_back(std::move(parts[0]));
    return e;
  }
  auto e = make(ExprKind::kSlice, pos);
  e->args.push_back(std::move(node));
  for (auto& p : parts) e->args.push_back(std::move(p));
  return e;
}

void Parser::parse_call_args(Expr& e) {
  expect_op("(");
  bool first = true;
  while (!is_op(")")) {
    if (!first) expect_op(",");
    first = false;
    if (is_op(")")) break;
    if (is_op("*") || is_op("**")) fail("*args and **kwargs calls are not supported");
    if (cur().type == TokenType::kName && peek().type == TokenType::kOperator && peek().value == "=") {
      std::string key = next().value;
      next();
      e.kwargs.emplace_back(std::move(key), parse_expression(true));
    } else {
      if (!e.kwargs.empty()) fail("positional argument after keyword argument");
      e.args.push_back(parse_expression(true));
    }
  }
  next();
}

ExprPtr Parser::parse_call(ExprPtr node) {
  auto e = make(ExprKind::kCall, cur().pos);
  e->args.push_back(std::move(node));
  parse_call_args(*e);
  return e;
}

std::string Parser::parse_dotted_name() {
  std::string name = expect_name();
  while (is_op(".")) {
    next();
    name += "." + expect_name();
  }
  return name;
}

ExprPtr Parser::parse_filter(ExprPtr node, bool consume_pipe) {
  if (consume_pipe) next();
  auto e = make(ExprKind::kFilter, cur().pos);
  e->name = parse_dotted_name();
  // Like jinja2: unknown filters fail at compile time unless inside an if or a conditional
  // expression, where they fail only when evaluated.
  if (!soft_ && !has_filter(e->name)) throw UnknownNameError("No filter named '" + e->name + "'.", e->pos);
  e->args.push_back(std::move(node));
  if (is_op("(")) parse_call_args(*e);
  return e;
}

ExprPtr Parser::parse_filter_chain(ExprPtr node, bool first_has_pipe) {
  node = parse_filter(std::move(node), first_has_pipe);
  while (is_op("|")) node = parse_filter(std::move(node), true);
  return node;
}

ExprPtr Parser::parse_test(ExprPtr node) {
  const SourcePos pos = next().pos;
  auto e = make(ExprKind::kTest, pos);
  if (is_name("not")) {
    next();
    e->flag = true;
  }
  const SourcePos name_pos = cur().pos;
  e->name = parse_dotted_name();
  if (!soft_ && !has_test(e->name)) throw UnknownNameError("No test named '" + e->name + "'.", name_pos);
  e->args.push_back(std::move(node));
  if (is_op("(")) {
    parse_call_args(*e);
  } else if ((cur().type == TokenType::kName || cur().type == TokenType::kString ||
              cur().type == TokenType::kInteger || cur().type == TokenType::kFloat || is_op("(") ||
              is_op("[") || is_op("{")) &&
             !is_name("else") && !is_name("or") && !is_name("and")) {
    if (is_name("is")) fail("You cannot chain multiple tests with is");
    e->args.push_back(parse_postfix(parse_primary()));
  }
  return e;
}

ExprPtr Parser::parse_filter_expr(ExprPtr node) {
  while (true) {
    if (is_op("|")) {
      node = parse_filter(std::move(node), true);
    } else if (is_name("is")) {
      node = parse_test(std::move(node));
    } else if (is_op("(")) {
      node = parse_call(std::move(node));
    } else {
      return node;
    }
  }
}

ExprPtr Parser::parse_tuple(bool simplified, bool with_condexpr, bool explicit_parens,
                            const char* extra_end) {
  const SourcePos pos = cur().pos;
  std::vector<ExprPtr> items;
  bool is_tuple = false;
  while (true) {
    if (!items.empty()) expect_op(",");
    if (cur().type == TokenType::kVarEnd || cur().type == TokenType::kBlockEnd || is_op(")") ||
        (extra_end && is_name(extra_end)) || (!explicit_parens && is_name("if") && !with_condexpr)) {
      break;
    }
    items.push_back(simplified ? parse_primary() : parse_expression(with_condexpr));
    if (is_op(","))
      is_tuple = true;
    else
      break;
  }
  if (!is_tuple) {
    if (!items.empty()) return std::move(items[0]);
    if (!explicit_parens) fail("expected an expression, got '" + describe(cur()) + "'");
  }
  auto e = make(ExprKind::kTuple, pos);
  e->args = std::move(items);
  return e;
}

}  // namespace nibble::tokenizer::jinja
