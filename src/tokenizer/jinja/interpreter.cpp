#include "tokenizer/jinja/interpreter.h"

#include <algorithm>
#include <cmath>

#include "tokenizer/jinja/utf8.h"

namespace nibble::tokenizer::jinja {

// ---- CallArgs / Scope ----

const Value* CallArgs::get(size_t index, std::string_view name) const {
  if (index < positional.size()) return &positional[index];
  for (const auto& [k, v] : kwargs) {
    if (k == name) return &v;
  }
  return nullptr;
}

Value CallArgs::get_or(size_t index, std::string_view name, Value fallback) const {
  const Value* v = get(index, name);
  return v ? *v : std::move(fallback);
}

void CallArgs::check(const char* fn, std::initializer_list<const char*> names) const {
  if (positional.size() > names.size()) {
    throw TemplateError(std::string(fn) + "() takes at most " + std::to_string(names.size()) +
                            " argument(s) (" + std::to_string(positional.size()) + " given)",
                        pos);
  }
  for (const auto& [k, v] : kwargs) {
    bool known = false;
    size_t idx = 0;
    for (const char* n : names) {
      if (k == n) {
        known = true;
        if (idx < positional.size()) {
          throw TemplateError(std::string(fn) + "() got multiple values for argument '" + k + "'", pos);
        }
      }
      ++idx;
    }
    if (!known)
      throw TemplateError(std::string(fn) + "() got an unexpected keyword argument '" + k + "'", pos);
  }
}

const Value* Scope::find(std::string_view name) const {
  for (const Scope* s = this; s; s = s->parent.get()) {
    for (const auto& [k, v] : s->vars) {
      if (k == name) return &v;
    }
  }
  return nullptr;
}

void Scope::set(const std::string& name, Value value) {
  for (auto& [k, v] : vars) {
    if (k == name) {
      v = std::move(value);
      return;
    }
  }
  vars.emplace_back(name, std::move(value));
}

// ---- Interpreter basics ----

Interpreter::CallGuard::CallGuard(Interpreter& interp) : interp_(interp) {
  if (++interp_.call_depth_ > interp_.limits_.max_call_depth) {
    --interp_.call_depth_;
    interp_.fail("maximum recursion depth exceeded (more than " +
                 std::to_string(interp_.limits_.max_call_depth) + " nested macro calls)");
  }
  interp_.check_stack();
}

Interpreter::~Interpreter() {
  for (auto& scope : tracked_scopes_) {
    auto vars = std::move(scope->vars);
    scope->vars.clear();
  }
  for (auto& object : tracked_objects_) {
    auto attrs = std::move(object->attrs);
    object->attrs.clear();
  }
}

void Interpreter::fail(const std::string& message) const {
  throw TemplateError(message, pos_);
}

void Interpreter::fail_undefined(const Value& undefined) const {
  fail(undefined.undefined_hint());
}

void Interpreter::check_size(size_t num_bytes) const {
  if (num_bytes > limits_.max_output_bytes) {
    fail("output exceeds the limit of " + std::to_string(limits_.max_output_bytes) + " bytes");
  }
}

void Interpreter::count_iterations(int64_t n) {
  iterations_ += n;
  if (n < 0 || iterations_ > limits_.max_loop_iterations) {
    fail("template exceeds the limit of " + std::to_string(limits_.max_loop_iterations) + " loop iterations");
  }
}

void Interpreter::check_stack() {
  const char here = 0;
  const char* p = &here;
  if (stack_base_ && stack_base_ > p && static_cast<size_t>(stack_base_ - p) > limits_.max_stack_bytes) {
    fail("template nests too deeply (evaluation stack limit reached)");
  }
}

void Interpreter::append(std::string& out, std::string_view text) {
  bytes_written_ += text.size();
  // Output is copied upwards through macro calls, so allow a few times the final bound in total.
  if (out.size() + text.size() > limits_.max_output_bytes || bytes_written_ > 4 * limits_.max_output_bytes) {
    check_size(limits_.max_output_bytes + 1);
  }
  out.append(text);
}

std::string Interpreter::render(const StmtList& body, const Dict& context) {
  const char base = 0;
  stack_base_ = &base;
  auto root = std::make_shared<Scope>();
  for (const auto& [k, v] : context.items) {
    if (k.is_string()) root->set(k.as_string(), v);
  }
  scope_ = root;
  std::string out;
  exec_list(body, out);
  scope_.reset();
  return out;
}

std::string Interpreter::run_body(const StmtList& body, ScopePtr scope) {
  ScopePtr saved = scope_;
  scope_ = std::move(scope);
  std::string out;
  try {
    exec_list(body, out);
  } catch (...) {
    scope_ = saved;
    throw;
  }
  scope_ = saved;
  return out;
}

Value Interpreter::lookup(const std::string& name) {
  if (const Value* v = scope_->find(name)) return *v;
  Value g = find_global(name);
  if (!g.is_undefined()) return g;
  return Value::undefined("'" + name + "' is undefined");
}

ValueList Interpreter::iterate(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined:
      return {};
    case Value::Kind::kList:
      return v.as_list();
    case Value::Kind::kDict: {
      ValueList keys;
      keys.reserve(v.as_dict().items.size());
      for (const auto& [k, item] : v.as_dict().items) keys.push_back(k);
      return keys;
    }
    case Value::Kind::kString: {
      ValueList chars;
      for (char32_t cp : decode_utf8(v.as_string())) {
        std::string c;
        append_utf8(c, cp);
        chars.push_back(Value::string(std::move(c)));
      }
      return chars;
    }
    default:
      fail(std::string("'") + v.type_name() + "' object is not iterable");
  }
}

// ---- statements ----

Interpreter::Flow Interpreter::exec_list(const StmtList& list, std::string& out) {
  for (const auto& s : list) {
    const Flow f = exec(*s, out);
    if (f != Flow::kNormal) return f;
  }
  return Flow::kNormal;
}

Value Interpreter::eval_in_scope(const Expr& e, ScopePtr scope) {
  ScopePtr saved = scope_;
  scope_ = std::move(scope);
  try {
    Value v = eval(e);
    scope_ = saved;
    return v;
  } catch (...) {
    scope_ = saved;
    throw;
  }
}

namespace {

// A macro, or the body of a {% call %} block (which the macro sees as `caller`).
class MacroCallable : public Callable {
 public:
  MacroCallable(const Stmt* stmt, ScopePtr scope, std::string name)
      : stmt_(stmt), scope_(std::move(scope)), name_(std::move(name)) {}

  Value call(Interpreter& interp, CallArgs& args) override {
    Interpreter::CallGuard guard(interp);
    auto scope = std::make_shared<Scope>();
    scope->parent = scope_;
    const auto& params = stmt_->params;
    if (args.positional.size() > params.size()) {
      interp.fail("macro '" + name_ + "' takes not more than " + std::to_string(params.size()) +
                  " argument(s)");
    }
    for (const auto& [k, v] : args.kwargs) {
      bool known = k == "caller";
      for (const auto& p : params) known = known || p.name == k;
      if (!known) interp.fail("macro '" + name_ + "' takes no keyword argument '" + k + "'");
      if (k == "caller") scope->set("caller", v);
    }
    // Parameters given no value are undefined (jinja2 does not complain about them).
    for (size_t i = 0; i < params.size(); ++i) {
      const Value* given = nullptr;
      if (i < args.positional.size()) {
        given = &args.positional[i];
      } else {
        for (const auto& [k, v] : args.kwargs) {
          if (k == params[i].name) given = &v;
        }
      }
      if (given) {
        scope->set(params[i].name, *given);
      } else if (params[i].default_value) {
        scope->set(params[i].name, interp.eval_in_scope(*params[i].default_value, scope));
      } else {
        scope->set(params[i].name, Value::undefined("'" + params[i].name + "' is undefined"));
      }
    }
    return Value::string(interp.run_body(stmt_->body, std::move(scope)));
  }

  std::string name() const override { return name_; }

 private:
  const Stmt* stmt_;
  ScopePtr scope_;
  std::string name_;
};

// loop.cycle(a, b, ...): the argument at loop.index0 modulo their number.
class CycleCallable : public Callable {
 public:
  explicit CycleCallable(int64_t index0) : index0_(index0) {}
  Value call(Interpreter& interp, CallArgs& args) override {
    if (args.positional.empty()) interp.fail("no items for cycling given");
    return args.positional[static_cast<size_t>(index0_ % static_cast<int64_t>(args.positional.size()))];
  }
  std::string name() const override { return "cycle"; }

 private:
  int64_t index0_;
};

}  // namespace

Interpreter::Flow Interpreter::exec(const Stmt& s, std::string& out) {
  pos_ = s.pos;
  switch (s.kind) {
    case StmtKind::kData:
      append(out, s.text);
      return Flow::kNormal;
    case StmtKind::kOutput: {
      const Value v = eval(*s.expr);
      if (v.is_string()) {
        append(out, v.as_string());
      } else {
        append(out, v.str());
      }
      return Flow::kNormal;
    }
    case StmtKind::kIf:
      for (size_t i = 0; i < s.conditions.size(); ++i) {
        if (eval(*s.conditions[i]).truthy()) return exec_list(s.bodies[i], out);
      }
      return exec_list(s.else_body, out);
    case StmtKind::kFor:
      exec_for(s, out);
      return Flow::kNormal;
    case StmtKind::kSet:
      exec_set(s, eval(*s.expr));
      return Flow::kNormal;
    case StmtKind::kSetBlock: {
      auto scope = std::make_shared<Scope>();
      scope->parent = scope_;
      Value body = Value::string(run_body(s.body, scope));
      if (s.expr) {
        auto filter_scope = std::make_shared<Scope>();
        filter_scope->parent = scope_;
        filter_scope->set("__body", body);
        body = eval_in_scope(*s.expr, filter_scope);
      }
      exec_set(s, body);
      return Flow::kNormal;
    }
    case StmtKind::kMacro:
      track(scope_);
      scope_->set(s.text, Value::callable(std::make_shared<MacroCallable>(&s, scope_, s.text)));
      return Flow::kNormal;
    case StmtKind::kCallBlock: {
      CallArgs args = eval_args(*s.expr, 1);
      track(scope_);
      args.kwargs.emplace_back("caller",
                               Value::callable(std::make_shared<MacroCallable>(&s, scope_, "caller")));
      const Value callee = eval(*s.expr->args[0]);
      pos_ = s.pos;
      append(out, call(callee, args).str());
      return Flow::kNormal;
    }
    case StmtKind::kFilterBlock: {
      auto scope = std::make_shared<Scope>();
      scope->parent = scope_;
      const Value body = Value::string(run_body(s.body, scope));
      auto filter_scope = std::make_shared<Scope>();
      filter_scope->parent = scope_;
      filter_scope->set("__body", body);
      append(out, eval_in_scope(*s.expr, filter_scope).str());
      return Flow::kNormal;
    }
    case StmtKind::kWith: {
      auto scope = std::make_shared<Scope>();
      scope->parent = scope_;
      for (const auto& p : s.params) scope->set(p.name, eval(*p.default_value));
      ScopePtr saved = scope_;
      scope_ = scope;
      Flow f = Flow::kNormal;
      try {
        f = exec_list(s.body, out);
      } catch (...) {
        scope_ = saved;
        throw;
      }
      scope_ = saved;
      return f;
    }
    case StmtKind::kBreak:
      return Flow::kBreak;
    case StmtKind::kContinue:
      return Flow::kContinue;
  }
  return Flow::kNormal;
}

namespace {

void bind_targets(Interpreter& interp, Scope& scope, const std::vector<std::string>& targets,
                  const Value& item) {
  if (targets.size() == 1) {
    scope.set(targets[0], item);
    return;
  }
  ValueList parts = interp.iterate(item.is_undefined() ? Value::none() : item);
  if (parts.size() != targets.size()) {
    interp.fail(parts.size() > targets.size()
                    ? "too many values to unpack (expected " + std::to_string(targets.size()) + ")"
                    : "not enough values to unpack (expected " + std::to_string(targets.size()) + ", got " +
                          std::to_string(parts.size()) + ")");
  }
  for (size_t i = 0; i < targets.size(); ++i) scope.set(targets[i], parts[i]);
}

}  // namespace

namespace {

// `loop(children)` inside `{% for ... recursive %}`: the loop body again, one level deeper.
class RecurseCallable : public Callable {
 public:
  RecurseCallable(const Stmt* stmt, int depth, ScopePtr outer)
      : stmt_(stmt), depth_(depth), outer_(std::move(outer)) {}
  Value call(Interpreter& interp, CallArgs& args) override {
    Interpreter::CallGuard guard(interp);
    if (args.positional.size() != 1 || !args.kwargs.empty()) interp.fail("loop() takes exactly one argument");
    std::string out;
    interp.run_loop(*stmt_, args.positional[0], depth_ + 1, outer_, out);
    return Value::string(std::move(out));
  }
  std::string name() const override { return "loop"; }

 private:
  const Stmt* stmt_;
  int depth_;
  ScopePtr outer_;
};

}  // namespace

void Interpreter::exec_for(const Stmt& s, std::string& out) {
  const Value iterable = eval(*s.expr);
  run_loop(s, iterable, 1, scope_, out);
}

void Interpreter::run_loop(const Stmt& s, const Value& iterable, int depth, const ScopePtr& outer,
                           std::string& out) {
  if (iterable.is_none()) fail("'NoneType' object is not iterable");
  ValueList items = iterate(iterable);
  const ScopePtr saved = scope_;
  if (s.cond) {
    // `for x in xs if cond`: filter first, so loop.length and loop.last count kept items only.
    ValueList kept;
    for (const Value& item : items) {
      count_iterations(1);
      auto scope = std::make_shared<Scope>();
      scope->parent = outer;
      bind_targets(*this, *scope, s.targets, item);
      if (eval_in_scope(*s.cond, scope).truthy()) kept.push_back(item);
    }
    items = std::move(kept);
  }
  if (items.empty()) {
    exec_list(s.else_body, out);
    return;
  }
  const auto length = static_cast<int64_t>(items.size());
  try {
    for (int64_t i = 0; i < length; ++i) {
      count_iterations(1);
      auto scope = std::make_shared<Scope>();
      scope->parent = outer;
      bind_targets(*this, *scope, s.targets, items[static_cast<size_t>(i)]);
      auto loop = std::make_shared<Object>();
      loop->type = Object::Type::kLoop;
      loop->attrs = {
          {"index", Value::integer(i + 1)},
          {"index0", Value::integer(i)},
          {"revindex", Value::integer(length - i)},
          {"revindex0", Value::integer(length - i - 1)},
          {"first", Value::boolean(i == 0)},
          {"last", Value::boolean(i == length - 1)},
          {"length", Value::integer(length)},
          {"depth", Value::integer(depth)},
          {"depth0", Value::integer(depth - 1)},
          {"previtem",
           i > 0 ? items[static_cast<size_t>(i - 1)] : Value::undefined("there is no previous item")},
          {"nextitem",
           i + 1 < length ? items[static_cast<size_t>(i + 1)] : Value::undefined("there is no next item")},
          {"cycle", Value::callable(std::make_shared<CycleCallable>(i))},
      };
      if (s.recursive) {
        loop->attrs.emplace_back("__call__",
                                 Value::callable(std::make_shared<RecurseCallable>(&s, depth, outer)));
      }
      for (const auto& [k, v] : loop->attrs) loop->depth = std::max(loop->depth, v.depth() + 1);
      scope->set("loop", Value::object(std::move(loop)));
      scope_ = scope;
      const Flow f = exec_list(s.body, out);
      scope_ = saved;
      if (f == Flow::kBreak) break;
    }
  } catch (...) {
    scope_ = saved;
    throw;
  }
  scope_ = saved;
}

void Interpreter::exec_set(const Stmt& s, const Value& value) {
  if (!s.text.empty()) {
    // {% set ns.attr = value %}: only namespace objects take attributes.
    const Value target = lookup(s.targets[0]);
    if (!target.is_object() || target.as_object().type != Object::Type::kNamespace) {
      fail("cannot assign attribute on non-namespace object");
    }
    if (s.text[0] == '_') {
      fail("Chat templates cannot store underscore-prefixed attributes on a namespace, but got '" + s.text +
           "'");
    }
    target.as_object().set(s.text, value);
    if (target.depth() > kMaxValueDepth) {
      fail("value nests too deeply (more than " + std::to_string(kMaxValueDepth) + " levels)");
    }
    return;
  }
  bind_targets(*this, *scope_, s.targets, value);
}

// ---- calls ----

CallArgs Interpreter::eval_args(const Expr& e, size_t first_arg) {
  CallArgs args;
  args.pos = e.pos;
  for (size_t i = first_arg; i < e.args.size(); ++i) args.positional.push_back(eval(*e.args[i]));
  for (const auto& [k, v] : e.kwargs) args.kwargs.emplace_back(k, eval(*v));
  return args;
}

Value Interpreter::call(const Value& callee, CallArgs& args) {
  if (callee.is_undefined()) fail_undefined(callee);
  if (callee.is_object()) {
    const Value* fn = callee.as_object().find("__call__");
    if (fn && fn->is_callable()) return fn->as_callable().call(*this, args);
  }
  if (!callee.is_callable()) fail(std::string("'") + callee.type_name() + "' object is not callable");
  return callee.as_callable().call(*this, args);
}

Value Interpreter::apply_filter(const std::string& name, const Value& input, CallArgs& args) {
  return run_filter(*this, name, input, args);
}

bool Interpreter::apply_test(const std::string& name, const Value& input, CallArgs& args) {
  return run_test(*this, name, input, args);
}

// ---- attribute and item access ----

namespace {

std::string object_type_repr(const Value& obj) {
  if (obj.is_none()) return "None";
  return std::string(obj.type_name()) + " object";
}

}  // namespace

Value Interpreter::get_attr(const Value& obj, const std::string& name) {
  switch (obj.kind()) {
    case Value::Kind::kUndefined:
      fail_undefined(obj);
    case Value::Kind::kObject: {
      // Underscore names are private, as in the sandbox (loop's __call__ included).
      if (name.empty() || name[0] != '_') {
        if (const Value* v = obj.as_object().find(name)) return *v;
      }
      break;
    }
    case Value::Kind::kDict: {
      // Python attributes (methods) win over keys for `.name`, as in jinja2.
      Value m = find_method(*this, obj, name);
      if (!m.is_undefined()) return m;
      if (const Value* v = obj.as_dict().find(std::string_view(name))) return *v;
      break;
    }
    default: {
      Value m = find_method(*this, obj, name);
      if (!m.is_undefined()) return m;
      break;
    }
  }
  return Value::undefined("'" + object_type_repr(obj) + "' has no attribute '" + name + "'");
}

namespace {

// Python index normalisation; false when out of range.
bool normalize_index(int64_t& idx, size_t size) {
  const auto n = static_cast<int64_t>(size);
  if (idx < 0) idx += n;
  return idx >= 0 && idx < n;
}

}  // namespace

Value Interpreter::get_item(const Value& obj, const Value& key) {
  switch (obj.kind()) {
    case Value::Kind::kUndefined:
      fail_undefined(obj);
    case Value::Kind::kDict:
      if (const Value* v = obj.as_dict().find(key)) return *v;
      break;
    case Value::Kind::kList:
      if (key.is_int() || key.is_bool()) {
        int64_t idx = key.as_int();
        if (normalize_index(idx, obj.as_list().size())) return obj.as_list()[static_cast<size_t>(idx)];
        return Value::undefined("'" + object_type_repr(obj) + "' has no element " + key.repr());
      }
      break;
    case Value::Kind::kString:
      if (key.is_int() || key.is_bool()) {
        const std::string& s = obj.as_string();
        int64_t idx = key.as_int();
        if (is_ascii(s)) {
          if (normalize_index(idx, s.size()))
            return Value::string(std::string(1, s[static_cast<size_t>(idx)]));
        } else {
          const std::u32string cps = decode_utf8(s);
          if (normalize_index(idx, cps.size())) {
            std::string c;
            append_utf8(c, cps[static_cast<size_t>(idx)]);
            return Value::string(std::move(c));
          }
        }
        return Value::undefined("'str object' has no element " + key.repr());
      }
      break;
    default:
      break;
  }
  if (key.is_string()) {
    // jinja2 falls back to attribute lookup for string subscripts.
    if (obj.is_dict()) {
      Value m = find_method(*this, obj, key.as_string());
      if (!m.is_undefined()) return m;
      return Value::undefined("'dict object' has no attribute '" + key.as_string() + "'");
    }
    return get_attr(obj, key.as_string());
  }
  return Value::undefined("'" + object_type_repr(obj) + "' has no element " + key.repr());
}

}  // namespace nibble::tokenizer::jinja
