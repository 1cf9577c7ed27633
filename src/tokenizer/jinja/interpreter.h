// Tree-walking evaluator for parsed templates, with jinja2's scoping and Undefined rules and
// hard bounds on output size, loop iterations and recursion depth.
#pragma once

#include <cstdint>
#include <ctime>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tokenizer/jinja/ast.h"
#include "tokenizer/jinja/error.h"
#include "tokenizer/jinja/value.h"

namespace nibble::tokenizer::jinja {

// How deeply values (lists, dicts, namespaces) may nest; matches the JSON input bound.
inline constexpr int kMaxValueDepth = 256;

struct RenderLimits {
  size_t max_output_bytes = size_t{32} << 20;  // the rendered text, and any one string built on the way
  int64_t max_loop_iterations = 1'000'000;     // all loop iterations and range() / repeat items together
  int max_call_depth = 64;                     // nested macro / caller() calls
  size_t max_stack_bytes = size_t{1} << 20;    // C stack the evaluator may use below its entry
  std::optional<std::time_t> now;              // fixed clock for strftime_now (tests); else the real time
};

// Arguments of a call, filter or test, bound Python-style by position or keyword.
struct CallArgs {
  ValueList positional;
  std::vector<std::pair<std::string, Value>> kwargs;
  SourcePos pos;

  // positional[index] if given, else the keyword `name`, else null.
  const Value* get(size_t index, std::string_view name) const;
  Value get_or(size_t index, std::string_view name, Value fallback) const;
  // Rejects extra positional arguments and unknown keywords for a function `fn` whose
  // parameters, in order, are `names`.
  void check(const char* fn, std::initializer_list<const char*> names) const;
};

struct Scope {
  std::shared_ptr<Scope> parent;
  std::vector<std::pair<std::string, Value>> vars;
  const Value* find(std::string_view name) const;
  void set(const std::string& name, Value value);
};
using ScopePtr = std::shared_ptr<Scope>;

class Interpreter {
 public:
  explicit Interpreter(const RenderLimits& limits) : limits_(limits) {}
  // Breaks the reference cycles templates can build (a macro stored in the scope it captures,
  // a namespace holding itself) so that nothing outlives the render.
  ~Interpreter();
  Interpreter(const Interpreter&) = delete;
  Interpreter& operator=(const Interpreter&) = delete;

  // Registers a scope captured by a macro, or a namespace object, for the cleanup above.
  void track(ScopePtr scope) { tracked_scopes_.push_back(std::move(scope)); }
  void track(std::shared_ptr<Object> object) { tracked_objects_.push_back(std::move(object)); }

  // Renders `body` with `context` as the template's variables. Throws TemplateError.
  std::string render(const StmtList& body, const Dict& context);

  // Pieces the builtins use.
  [[noreturn]] void fail(const std::string& message) const;
  [[noreturn]] void fail_undefined(const Value& undefined) const;
  Value call(const Value& callee, CallArgs& args);
  Value get_attr(const Value& obj, const std::string& name);
  Value get_item(const Value& obj, const Value& key);
  Value apply_filter(const std::string& name, const Value& input, CallArgs& args);
  bool apply_test(const std::string& name, const Value& input, CallArgs& args);
  // Python iteration: list items, dict keys, string characters; undefined is empty.
  ValueList iterate(const Value& v);
  // Raises when a string or list would pass the output bound.
  void check_size(size_t num_bytes) const;
  void count_iterations(int64_t n);
  const RenderLimits& limits() const { return limits_; }
  SourcePos current_pos() const { return pos_; }

  // Renders a macro or caller body into a string, in a new scope below `parent`.
  std::string run_body(const StmtList& body, ScopePtr scope);
  Value eval(const Expr& e);
  // Runs the body of `for` statement `s` over `iterable` (depth > 1 for `loop(...)` recursion);
  // iteration scopes sit below `outer`.
  void run_loop(const Stmt& s, const Value& iterable, int depth, const ScopePtr& outer, std::string& out);
  Value eval_in_scope(const Expr& e, ScopePtr scope);

  // RAII bound on nested calls (macros, caller(), filters that call back).
  class CallGuard {
   public:
    explicit CallGuard(Interpreter& interp);
    ~CallGuard() { --interp_.call_depth_; }
    CallGuard(const CallGuard&) = delete;
    CallGuard& operator=(const CallGuard&) = delete;

   private:
    Interpreter& interp_;
  };

 private:
  enum class Flow { kNormal, kBreak, kContinue };

  Flow exec_list(const StmtList& list, std::string& out);
  Flow exec(const Stmt& s, std::string& out);
  void exec_for(const Stmt& s, std::string& out);
  void exec_set(const Stmt& s, const Value& value);
  void append(std::string& out, std::string_view text);
  void check_stack();
  Value lookup(const std::string& name);
  Value eval_unchecked(const Expr& e);
  Value eval_binary(const Expr& e);
  Value eval_compare(const Expr& e);
  Value eval_slice(const Expr& e);
  CallArgs eval_args(const Expr& e, size_t first_arg);

  const RenderLimits& limits_;
  ScopePtr scope_;
  SourcePos pos_;
  int64_t iterations_ = 0;
  int call_depth_ = 0;
  size_t bytes_written_ = 0;
  const char* stack_base_ = nullptr;
  std::vector<ScopePtr> tracked_scopes_;
  std::vector<std::shared_ptr<Object>> tracked_objects_;
};

// Python-style ordering for sort/min/max and < <= > >= (numbers, strings, sequences);
// fails through `interp` on types that do not compare.
int compare_values(Interpreter& interp, const Value& a, const Value& b);

// Builtins (filters.cpp, methods.cpp).
bool has_filter(const std::string& name);
bool has_test(const std::string& name);
Value run_filter(Interpreter& interp, const std::string& name, const Value& input, CallArgs& args);
bool run_test(Interpreter& interp, const std::string& name, const Value& input, CallArgs& args);
// A bound method for `obj.name` (str, dict and list methods), or undefined when there is none.
Value find_method(Interpreter& interp, const Value& obj, const std::string& name);
// The globals transformers provides: range, dict, namespace, raise_exception, strftime_now.
Value find_global(const std::string& name);

// Small string helpers shared by filters and methods.
std::string py_strip(const std::string& s, const Value* chars, bool left, bool right);
std::string py_replace(Interpreter& interp, const std::string& s, const std::string& old_text,
                       const std::string& new_text, int64_t count);
std::string py_lower(const std::string& s);
std::string py_upper(const std::string& s);
std::string py_capitalize(const std::string& s);
// Argument checks for builtins: a str (fails on anything else), an int (or bool).
const std::string& str_arg(Interpreter& interp, const Value* v, const char* method);
int64_t int_arg(Interpreter& interp, const Value& v, const char* method);
// Python's `fmt % args` (args: a tuple, a dict for %(name)s, or a single value).
std::string py_percent_format(Interpreter& interp, const std::string& fmt, const Value& args);
std::string to_json_text(Interpreter& interp, const Value& v, const CallArgs& args, size_t first_arg);

}  // namespace nibble::tokenizer::jinja
