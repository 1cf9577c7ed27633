// The parser's class, shared by parser.cpp (statements) and parser_expr.cpp (expressions).
// Internal to the engine: use parse_template() from parser.h.
#pragma once

#include <algorithm>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "tokenizer/jinja/ast.h"
#include "tokenizer/jinja/lexer.h"
#include "tokenizer/jinja/parser.h"

namespace nibble::tokenizer::jinja {

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
      if (++parser.depth_ > kMaxParseDepth)
        parser.fail("template nests too deeply (limit " + std::to_string(kMaxParseDepth) + ")");
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
      case TokenType::kEof:
        return "end of template";
      case TokenType::kVarBegin:
        return "begin of print statement";
      case TokenType::kVarEnd:
        return "end of print statement";
      case TokenType::kBlockBegin:
        return "begin of statement block";
      case TokenType::kBlockEnd:
        return "end of statement block";
      case TokenType::kData:
        return "template data";
      case TokenType::kString:
        return "string";
      default:
        return t.value;
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

  StmtList subparse(std::initializer_list<const char*> end_names);
  StmtPtr new_stmt(StmtKind kind, SourcePos pos);
  StmtPtr parse_statement();
  StmtPtr parse_if();
  std::vector<std::string> parse_targets(const char* end_name);
  StmtPtr parse_for();
  StmtPtr parse_set();
  void parse_params(std::vector<MacroParam>& params);
  StmtPtr parse_macro();
  StmtPtr parse_call_block();
  StmtPtr parse_filter_block();
  StmtPtr parse_with();

  // ---- expressions ----

  // Unknown filter or test names at compile time.
  struct UnknownNameError : TemplateError {
    using TemplateError::TemplateError;
  };
  ExprPtr parse_expression(bool with_condexpr);
  ExprPtr parse_condexpr();
  ExprPtr binary(const std::string& op, ExprPtr left, ExprPtr right, SourcePos pos);
  ExprPtr parse_or();
  ExprPtr parse_and();
  ExprPtr parse_not();
  ExprPtr parse_compare();
  ExprPtr parse_math1();
  ExprPtr parse_concat();
  ExprPtr parse_math2();
  ExprPtr parse_pow();
  ExprPtr parse_unary(bool with_filter);
  ExprPtr parse_primary();
  ExprPtr parse_list();
  ExprPtr parse_dict();

  // A comma-separated sequence: a tuple if a comma appears, else the single expression.
  ExprPtr parse_tuple(bool simplified, bool with_condexpr, bool explicit_parens,
                      const char* extra_end = nullptr);
  ExprPtr parse_postfix(ExprPtr node);
  ExprPtr parse_subscript(ExprPtr node);
  void parse_call_args(Expr& e);
  ExprPtr parse_call(ExprPtr node);
  std::string parse_dotted_name();
  ExprPtr parse_filter(ExprPtr node, bool consume_pipe);
  ExprPtr parse_filter_chain(ExprPtr node, bool first_has_pipe = true);
  ExprPtr parse_test(ExprPtr node);
  ExprPtr parse_filter_expr(ExprPtr node);

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

}  // namespace nibble::tokenizer::jinja
