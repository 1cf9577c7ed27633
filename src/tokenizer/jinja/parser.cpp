#include "tokenizer/jinja/parser.h"

#include "tokenizer/jinja/interpreter.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <initializer_list>

namespace nibble::tokenizer::jinja {
namespace {

class Parser {
 public:
  explicit Parser(const std::vector<Token>& tokens) : tokens_(tokens) {}

  StmtList parse() {
    StmtList body = subparse({});
    if (cur().type != TokenType::kEof) fail("unexpected '" + describe(cur()) + "'");
    return body;
  }

 private:
  // Keeps recursion bounded: every nested expression or block passes through one of these.
  struct DepthGuard {
    explicit DepthGuard(Parser& p) : parser(p) {
      if (++parser.depth_ > kMaxParseDepth) parser.fail("template nests too deeply (limit " + std::to_string(kMaxParseDepth) + ")");
    }
    ~DepthGuard() { --parser.depth_; }
    Parser& parser;
  };

  const Token& cur() const { return tokens_[pos_]; }
  const Token& peek(size_t n = 1) const { return tokens_[std::min(pos_ + n, tokens_.size() - 1)]; }
  const Token& next() {
    const Token& t = tokens_[pos_];
    if (pos_ + 1 < tokens_.size()) ++pos_;
    return t;
  }

  static std::string describe(const Token& t) {
    switch (t.type) {
      case TokenType::kEof: return "end of template";
      case TokenType::kVarBegin: return "begin of print statement";
      case TokenType::kVarEnd: return "end of print statement";
      case TokenType::kBlockBegin: return "begin of statement block";
      case TokenType::kBlockEnd: return "end of statement block";
      case TokenType::kData: return "template data";
      case TokenType::kString: return "string";
      default: return t.value;
    }
  }

  [[noreturn]] void fail(const std::string& msg) const { throw TemplateError(msg, cur().pos); }

  bool is_op(const char* op) const { return cur().type == TokenType::kOperator && cur().value == op; }
  bool is_name(const char* name) const { return cur().type == TokenType::kName && cur().value == name; }
  bool is_block_end() const { return cur().type == TokenType::kBlockEnd; }

  void expect_op(const char* op) {
    if (!is_op(op)) fail(std::string("expected '") + op + "', got '" + describe(cur()) + "'");
    next();
  }
  std::string expect_name() {
    if (cur().type != TokenType::kName) fail("expected a name, got '" + describe(cur()) + "'");
    return next().value;
  }
  void expect_name(const char* name) {
    if (!is_name(name)) fail(std::string("expected '") + name + "', got '" + describe(cur()) + "'");
    next();
  }
  void expect_block_end() {
    if (!is_block_end()) fail("expected end of statement block, got '" + describe(cur()) + "'");
    next();
  }

  static ExprPtr make(ExprKind kind, SourcePos pos) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->pos = pos;
    return e;
  }

  // ---- statements ----

  // Parses until a block tag whose first name is in `end_names`; leaves the stream at that name.
  StmtList subparse(std::initializer_list<const char*> end_names) {
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
        if (cur().type != TokenType::kVarEnd) fail("expected end of print statement, got '" + describe(cur()) + "'");
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

  StmtPtr new_stmt(StmtKind kind, SourcePos pos) {
    auto s = std::make_unique<Stmt>();
    s->kind = kind;
    s->pos = pos;
    return s;
  }

  StmtPtr parse_statement() {
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

  StmtPtr parse_if() {
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

  std::vector<std::string> parse_targets(const char* end_name) {
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

  StmtPtr parse_for() {
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

  StmtPtr parse_set() {
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

  void parse_params(std::vector<MacroParam>& params) {
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

  StmtPtr parse_macro() {
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

  StmtPtr parse_call_block() {
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

  StmtPtr parse_filter_block() {
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

  StmtPtr parse_with() {
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

  // ---- expressions ----

  // Unknown filter or test names at compile time.
  struct UnknownNameError : TemplateError {
    using TemplateError::TemplateError;
  };

  ExprPtr parse_expression(bool with_condexpr) {
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

  ExprPtr parse_condexpr() {
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

  ExprPtr binary(const std::string& op, ExprPtr left, ExprPtr right, SourcePos pos) {
    auto e = make(ExprKind::kBinary, pos);
    e->name = op;
    e->args.push_back(std::move(left));
    e->args.push_back(std::move(right));
    return e;
  }

  ExprPtr parse_or() {
    ExprPtr left = parse_and();
    while (is_name("or")) {
      const SourcePos pos = next().pos;
      left = binary("or", std::move(left), parse_and(), pos);
    }
    return left;
  }

  ExprPtr parse_and() {
    ExprPtr left = parse_not();
    while (is_name("and")) {
      const SourcePos pos = next().pos;
      left = binary("and", std::move(left), parse_not(), pos);
    }
    return left;
  }

  ExprPtr parse_not() {
    if (is_name("not")) {
      DepthGuard guard(*this);
      auto e = make(ExprKind::kUnary, next().pos);
      e->name = "not";
      e->args.push_back(parse_not());
      return e;
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
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

  ExprPtr parse_math1() {
    ExprPtr left = parse_concat();
    while (is_op("+") || is_op("-")) {
      const Token& t = next();
      left = binary(t.value, std::move(left), parse_concat(), t.pos);
    }
    return left;
  }

  ExprPtr parse_concat() {
    ExprPtr left = parse_math2();
    while (is_op("~")) {
      const SourcePos pos = next().pos;
      left = binary("~", std::move(left), parse_math2(), pos);
    }
    return left;
  }

  ExprPtr parse_math2() {
    ExprPtr left = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      const Token& t = next();
      left = binary(t.value, std::move(left), parse_pow(), t.pos);
    }
    return left;
  }

  ExprPtr parse_pow() {
    ExprPtr left = parse_unary(true);
    while (is_op("**")) {
      const SourcePos pos = next().pos;
      left = binary("**", std::move(left), parse_unary(true), pos);
    }
    return left;
  }

  ExprPtr parse_unary(bool with_filter) {
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

  ExprPtr parse_primary() {
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
      default: break;
    }
    fail("unexpected '" + describe(t) + "'");
  }

  ExprPtr parse_list() {
    auto e = make(ExprKind::kList, next().pos);
    while (!is_op("]")) {
      if (!e->args.empty()) expect_op(",");
      if (is_op("]")) break;
      e->args.push_back(parse_expression(true));
    }
    next();
    return e;
  }

  ExprPtr parse_dict() {
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

  // A comma-separated sequence: a tuple if a comma appears, else the single expression.
  ExprPtr parse_tuple(bool simplified, bool with_condexpr, bool explicit_parens, const char* extra_end = nullptr) {
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
      if (is_op(",")) is_tuple = true;
      else break;
    }
    if (!is_tuple) {
      if (!items.empty()) return std::move(items[0]);
      if (!explicit_parens) fail("expected an expression, got '" + describe(cur()) + "'");
    }
    auto e = make(ExprKind::kTuple, pos);
    e->args = std::move(items);
    return e;
  }

  ExprPtr parse_postfix(ExprPtr node) {
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

  ExprPtr parse_subscript(ExprPtr node) {
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

  void parse_call_args(Expr& e) {
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

  ExprPtr parse_call(ExprPtr node) {
    auto e = make(ExprKind::kCall, cur().pos);
    e->args.push_back(std::move(node));
    parse_call_args(*e);
    return e;
  }

  std::string parse_dotted_name() {
    std::string name = expect_name();
    while (is_op(".")) {
      next();
      name += "." + expect_name();
    }
    return name;
  }

  ExprPtr parse_filter(ExprPtr node, bool consume_pipe) {
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

  ExprPtr parse_filter_chain(ExprPtr node, bool first_has_pipe = true) {
    node = parse_filter(std::move(node), first_has_pipe);
    while (is_op("|")) node = parse_filter(std::move(node), true);
    return node;
  }

  ExprPtr parse_test(ExprPtr node) {
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
                cur().type == TokenType::kInteger || cur().type == TokenType::kFloat || is_op("(") || is_op("[") ||
                is_op("{")) &&
               !is_name("else") && !is_name("or") && !is_name("and")) {
      if (is_name("is")) fail("You cannot chain multiple tests with is");
      e->args.push_back(parse_postfix(parse_primary()));
    }
    return e;
  }

  ExprPtr parse_filter_expr(ExprPtr node) {
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

  const std::vector<Token>& tokens_;
  size_t pos_ = 0;
  int depth_ = 0;
  int loop_depth_ = 0;
  bool soft_ = false;  // inside an if statement or conditional expression (jinja2's soft frame)

  // Sets soft_ for a scope and restores it after.
  struct SoftScope {
    SoftScope(Parser& p, bool soft) : parser(p), saved(p.soft_) { parser.soft_ = soft; }
    ~SoftScope() { parser.soft_ = saved; }
    Parser& parser;
    bool saved;
  };
};

}  // namespace

StmtList parse_template(const std::vector<Token>& tokens) { return Parser(tokens).parse(); }

}  // namespace nibble::tokenizer::jinja
