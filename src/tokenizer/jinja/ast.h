// The parsed template: expressions and statements as plain tagged structs.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tokenizer/jinja/error.h"
#include "tokenizer/jinja/value.h"

namespace nibble::tokenizer::jinja {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

enum class ExprKind {
  kLiteral,    // literal
  kName,       // name
  kGetAttr,    // args[0].name
  kGetItem,    // args[0][args[1]]
  kSlice,      // args[0][args[1]:args[2]:args[3]] (missing parts are null)
  kCall,       // args[0](args[1..], kwargs)
  kFilter,     // args[0] | name(args[1..], kwargs)
  kTest,       // args[0] is [not] name(args[1..], kwargs); negated = flag
  kUnary,      // name in {"-", "+", "not"} applied to args[0]
  kBinary,     // args[0] name args[1]; name in {+ - * / // % ** ~ and or}
  kCompare,    // args[0] ops[0] args[1] ops[1] args[2] ...
  kCondition,  // args[1] if args[0] else args[2] (args[2] may be null)
  kList,       // [args...]
  kTuple,      // (args...)
  kDict,       // {args[0]: args[1], args[2]: args[3], ...}
};

struct Expr {
  Expr() = default;
  Expr(const Expr&) = delete;
  Expr& operator=(const Expr&) = delete;
  // Frees children with a work list: a long chain such as 1+1+...+1 is a left-deep tree, and
  // recursive destruction could overflow the stack.
  ~Expr() {
    std::vector<ExprPtr> work;
    auto take = [&work](Expr& e) {
      for (auto& a : e.args) {
        if (a) work.push_back(std::move(a));
      }
      for (auto& kv : e.kwargs) {
        if (kv.second) work.push_back(std::move(kv.second));
      }
    };
    take(*this);
    while (!work.empty()) {
      ExprPtr e = std::move(work.back());
      work.pop_back();
      take(*e);
    }
  }

  ExprKind kind = ExprKind::kLiteral;
  SourcePos pos;
  std::string name;
  Value literal;
  std::vector<ExprPtr> args;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  std::vector<std::string> ops;  // kCompare operators
  bool flag = false;
};

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;
using StmtList = std::vector<StmtPtr>;

enum class StmtKind {
  kData,         // text
  kOutput,       // {{ expr }}
  kIf,           // conditions[i] -> bodies[i]; else_body
  kFor,          // for targets in expr [if cond]: body; else_body
  kSet,          // set targets = expr, or set targets[0].attr = expr
  kSetBlock,     // {% set name %}body{% endset %} [| filters via expr]
  kMacro,        // macro name(params) body
  kCallBlock,    // {% call(params) expr %}body{% endcall %}
  kFilterBlock,  // {% filter f %}body{% endfilter %}; expr holds the filter chain over a kName "__body"
  kWith,         // {% with a = 1 %}body{% endwith %}
  kBreak,
  kContinue,
};

struct MacroParam {
  std::string name;
  ExprPtr default_value;  // may be null
};

struct Stmt {
  StmtKind kind = StmtKind::kData;
  SourcePos pos;
  std::string text;                  // kData text; kSet attribute name; kMacro name
  ExprPtr expr;                      // kOutput / kFor iterable / kSet value / kCallBlock call / filters
  ExprPtr cond;                      // kFor filter condition
  std::vector<std::string> targets;  // kFor / kSet / kSetBlock targets
  std::vector<ExprPtr> conditions;   // kIf
  std::vector<StmtList> bodies;      // kIf bodies
  StmtList body;
  StmtList else_body;
  std::vector<MacroParam> params;  // kMacro / kCallBlock params; kWith assignments
  bool recursive = false;          // kFor
};

}  // namespace nibble::tokenizer::jinja
