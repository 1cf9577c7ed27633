// Expression evaluation: operators, comparisons, slicing (Python semantics).
#include <cmath>

#include "tokenizer/jinja/interpreter.h"
#include "tokenizer/jinja/utf8.h"

namespace nibble::tokenizer::jinja {

// ---- expressions ----

namespace {

[[noreturn]] void unsupported_operands(Interpreter& interp, const std::string& op, const Value& a,
                                       const Value& b) {
  if (a.is_undefined()) interp.fail_undefined(a);
  if (b.is_undefined()) interp.fail_undefined(b);
  interp.fail("unsupported operand type(s) for " + op + ": '" + a.type_name() + "' and '" + b.type_name() +
              "'");
}

int64_t checked(Interpreter& interp, bool overflow, int64_t v) {
  if (overflow) interp.fail("integer overflow");
  return v;
}

Value repeat(Interpreter& interp, const Value& seq, int64_t times) {
  if (times < 0) times = 0;
  if (seq.is_string()) {
    const std::string& s = seq.as_string();
    if (!s.empty()) interp.check_size(s.size() * static_cast<uint64_t>(std::min<int64_t>(times, INT32_MAX)));
    std::string out;
    for (int64_t i = 0; i < times && !s.empty(); ++i) out += s;
    return Value::string(std::move(out));
  }
  const ValueList& items = seq.as_list();
  if (!items.empty()) {
    interp.check_size(items.size() * static_cast<uint64_t>(std::min<int64_t>(times, INT32_MAX)));
    interp.count_iterations(static_cast<int64_t>(items.size()) * std::min<int64_t>(times, INT32_MAX));
  }
  ValueList out;
  for (int64_t i = 0; i < times && !items.empty(); ++i) out.insert(out.end(), items.begin(), items.end());
  return Value::list(std::move(out), seq.is_tuple());
}

}  // namespace

Value Interpreter::eval_binary(const Expr& e) {
  const std::string& op = e.name;
  if (op == "and") {
    Value a = eval(*e.args[0]);
    return a.truthy() ? eval(*e.args[1]) : a;
  }
  if (op == "or") {
    Value a = eval(*e.args[0]);
    return a.truthy() ? a : eval(*e.args[1]);
  }
  const Value a = eval(*e.args[0]);
  const Value b = eval(*e.args[1]);
  pos_ = e.pos;
  if (op == "~") {
    std::string s = a.str();
    s += b.str();
    check_size(s.size());
    return Value::string(std::move(s));
  }
  const bool numbers = a.is_number() && b.is_number();
  const bool ints = numbers && !a.is_float() && !b.is_float();
  int64_t r = 0;
  if (op == "+") {
    if (ints) {
      const bool overflow = __builtin_add_overflow(a.as_int(), b.as_int(), &r);
      return Value::integer(checked(*this, overflow, r));
    }
    if (numbers) return Value::number(a.as_double() + b.as_double());
    if (a.is_string() && b.is_string()) {
      check_size(a.as_string().size() + b.as_string().size());
      return Value::string(a.as_string() + b.as_string());
    }
    if (a.is_list() && b.is_list() && a.is_tuple() == b.is_tuple()) {
      ValueList items = a.as_list();
      items.insert(items.end(), b.as_list().begin(), b.as_list().end());
      check_size(items.size());
      return Value::list(std::move(items), a.is_tuple());
    }
    unsupported_operands(*this, op, a, b);
  }
  if (op == "-") {
    if (ints) {
      const bool overflow = __builtin_sub_overflow(a.as_int(), b.as_int(), &r);
      return Value::integer(checked(*this, overflow, r));
    }
    if (numbers) return Value::number(a.as_double() - b.as_double());
    unsupported_operands(*this, op, a, b);
  }
  if (op == "*") {
    if (ints) {
      const bool overflow = __builtin_mul_overflow(a.as_int(), b.as_int(), &r);
      return Value::integer(checked(*this, overflow, r));
    }
    if (numbers) return Value::number(a.as_double() * b.as_double());
    if ((a.is_string() || a.is_list()) && (b.is_int() || b.is_bool())) return repeat(*this, a, b.as_int());
    if ((b.is_string() || b.is_list()) && (a.is_int() || a.is_bool())) return repeat(*this, b, a.as_int());
    unsupported_operands(*this, op, a, b);
  }
  if (op == "%" && a.is_string()) return Value::string(py_percent_format(*this, a.as_string(), b));
  if (!numbers) unsupported_operands(*this, op, a, b);
  if (op == "/") {
    if (b.as_double() == 0) fail("division by zero");
    return Value::number(a.as_double() / b.as_double());
  }
  if (op == "//" || op == "%") {
    if (ints) {
      const int64_t x = a.as_int();
      const int64_t y = b.as_int();
      if (y == 0) fail(op == "//" ? "integer division or modulo by zero" : "integer modulo by zero");
      if (x == INT64_MIN && y == -1) fail("integer overflow");
      int64_t q = x / y;
      int64_t m = x % y;
      if (m != 0 && ((m < 0) != (y < 0))) {
        --q;
        m += y;
      }
      return Value::integer(op == "//" ? q : m);
    }
    const double x = a.as_double();
    const double y = b.as_double();
    if (y == 0) fail("float division by zero");
    double m = std::fmod(x, y);
    if (m != 0 && ((m < 0) != (y < 0))) m += y;
    if (op == "%") return Value::number(m);
    return Value::number(std::floor((x - m) / y + 0.5 - 0.5));
  }
  if (op == "**") {
    if (ints && b.as_int() >= 0) {
      int64_t base = a.as_int();
      int64_t exp = b.as_int();
      int64_t result = 1;
      while (exp > 0) {
        if ((exp & 1) && __builtin_mul_overflow(result, base, &result)) fail("integer overflow");
        exp >>= 1;
        if (exp > 0 && __builtin_mul_overflow(base, base, &base)) fail("integer overflow");
      }
      return Value::integer(result);
    }
    if (a.as_double() == 0 && b.as_double() < 0) fail("0.0 cannot be raised to a negative power");
    return Value::number(std::pow(a.as_double(), b.as_double()));
  }
  fail("unknown operator " + op);
}

int compare_values(Interpreter& interp, const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (!a.is_float() && !b.is_float())
      return a.as_int() < b.as_int() ? -1 : (a.as_int() > b.as_int() ? 1 : 0);
    const double x = a.as_double();
    const double y = b.as_double();
    return x < y ? -1 : (x > y ? 1 : 0);
  }
  if (a.is_string() && b.is_string()) {
    // UTF-8 byte order is code point order.
    const int c = a.as_string().compare(b.as_string());
    return c < 0 ? -1 : (c > 0 ? 1 : 0);
  }
  if (a.is_list() && b.is_list() && a.is_tuple() == b.is_tuple()) {
    const ValueList& x = a.as_list();
    const ValueList& y = b.as_list();
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (values_equal(x[i], y[i])) continue;
      return compare_values(interp, x[i], y[i]);
    }
    return x.size() < y.size() ? -1 : (x.size() > y.size() ? 1 : 0);
  }
  if (a.is_undefined()) interp.fail_undefined(a);
  if (b.is_undefined()) interp.fail_undefined(b);
  interp.fail(std::string("'<' not supported between instances of '") + a.type_name() + "' and '" +
              b.type_name() + "'");
}

namespace {

bool contains(Interpreter& interp, const Value& container, const Value& item) {
  switch (container.kind()) {
    case Value::Kind::kString:
      if (!item.is_string()) {
        if (item.is_undefined()) interp.fail_undefined(item);
        interp.fail(std::string("'in <string>' requires string as left operand, not ") + item.type_name());
      }
      return container.as_string().find(item.as_string()) != std::string::npos;
    case Value::Kind::kList:
      for (const Value& v : container.as_list()) {
        if (values_equal(v, item)) return true;
      }
      return false;
    case Value::Kind::kDict:
      return container.as_dict().find(item) != nullptr;
    case Value::Kind::kUndefined:
      return false;
    default:
      interp.fail(std::string("argument of type '") + container.type_name() + "' is not iterable");
  }
}

}  // namespace

Value Interpreter::eval_compare(const Expr& e) {
  Value left = eval(*e.args[0]);
  for (size_t i = 0; i < e.ops.size(); ++i) {
    Value right = eval(*e.args[i + 1]);
    pos_ = e.pos;
    const std::string& op = e.ops[i];
    bool r = false;
    if (op == "==")
      r = values_equal(left, right);
    else if (op == "!=")
      r = !values_equal(left, right);
    else if (op == "in")
      r = contains(*this, right, left);
    else if (op == "not in")
      r = !contains(*this, right, left);
    else {
      const int c = compare_values(*this, left, right);
      if (op == "<")
        r = c < 0;
      else if (op == "<=")
        r = c <= 0;
      else if (op == ">")
        r = c > 0;
      else
        r = c >= 0;
    }
    if (!r) return Value::boolean(false);
    left = std::move(right);
  }
  return Value::boolean(true);
}

Value Interpreter::eval_slice(const Expr& e) {
  const Value obj = eval(*e.args[0]);
  int64_t bounds[3] = {0, 0, 1};
  bool given[3] = {false, false, false};
  for (int i = 0; i < 3; ++i) {
    if (!e.args[static_cast<size_t>(i) + 1]) continue;
    const Value v = eval(*e.args[static_cast<size_t>(i) + 1]);
    if (v.is_none()) continue;
    if (!v.is_int() && !v.is_bool()) {
      if (v.is_undefined()) fail_undefined(v);
      fail("slice indices must be integers or None");
    }
    bounds[i] = v.as_int();
    given[i] = true;
  }
  pos_ = e.pos;
  const int64_t step = bounds[2];
  if (step == 0) fail("slice step cannot be zero");
  if (obj.is_undefined()) fail_undefined(obj);
  std::u32string cps;
  const ValueList* items = nullptr;
  if (obj.is_string())
    cps = decode_utf8(obj.as_string());
  else if (obj.is_list())
    items = &obj.as_list();
  else
    fail(std::string("'") + obj.type_name() + "' object is not subscriptable");
  const int64_t n = static_cast<int64_t>(items ? items->size() : cps.size());
  // Python's slice.indices().
  auto adjust = [&](int64_t v, bool is_given, int64_t dflt) {
    if (!is_given) return dflt;
    if (v < 0) {
      v += n;
      if (v < 0) v = step < 0 ? -1 : 0;
    } else if (v >= n) {
      v = step < 0 ? n - 1 : n;
    }
    return v;
  };
  const int64_t start = adjust(bounds[0], given[0], step < 0 ? n - 1 : 0);
  const int64_t stop = adjust(bounds[1], given[1], step < 0 ? -1 : n);
  std::vector<size_t> picked;
  for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) picked.push_back(static_cast<size_t>(i));
  if (items) {
    ValueList out;
    out.reserve(picked.size());
    for (size_t i : picked) out.push_back((*items)[i]);
    return Value::list(std::move(out), obj.is_tuple());
  }
  std::u32string out;
  for (size_t i : picked) out.push_back(cps[i]);
  return Value::string(encode_utf8(out));
}

Value Interpreter::eval(const Expr& e) {
  Value v = eval_unchecked(e);
  if (v.depth() > kMaxValueDepth) {
    pos_ = e.pos;
    fail("value nests too deeply (more than " + std::to_string(kMaxValueDepth) + " levels)");
  }
  return v;
}

Value Interpreter::eval_unchecked(const Expr& e) {
  check_stack();
  pos_ = e.pos;
  switch (e.kind) {
    case ExprKind::kLiteral:
      return e.literal;
    case ExprKind::kName:
      return lookup(e.name);
    case ExprKind::kGetAttr: {
      const Value obj = eval(*e.args[0]);
      pos_ = e.pos;
      return get_attr(obj, e.name);
    }
    case ExprKind::kGetItem: {
      const Value obj = eval(*e.args[0]);
      const Value key = eval(*e.args[1]);
      pos_ = e.pos;
      return get_item(obj, key);
    }
    case ExprKind::kSlice:
      return eval_slice(e);
    case ExprKind::kCall: {
      const Value callee = eval(*e.args[0]);
      CallArgs args = eval_args(e, 1);
      pos_ = e.pos;
      return call(callee, args);
    }
    case ExprKind::kFilter: {
      const Value input = eval(*e.args[0]);
      CallArgs args = eval_args(e, 1);
      pos_ = e.pos;
      return run_filter(*this, e.name, input, args);
    }
    case ExprKind::kTest: {
      const Value input = eval(*e.args[0]);
      CallArgs args = eval_args(e, 1);
      pos_ = e.pos;
      const bool r = run_test(*this, e.name, input, args);
      return Value::boolean(e.flag ? !r : r);
    }
    case ExprKind::kUnary: {
      const Value v = eval(*e.args[0]);
      pos_ = e.pos;
      if (e.name == "not") return Value::boolean(!v.truthy());
      if (!v.is_number()) {
        if (v.is_undefined()) fail_undefined(v);
        fail("bad operand type for unary " + e.name + ": '" + v.type_name() + "'");
      }
      if (e.name == "+") return v.is_bool() ? Value::integer(v.as_int()) : v;
      if (v.is_float()) return Value::number(-v.as_double());
      if (v.as_int() == INT64_MIN) fail("integer overflow");
      return Value::integer(-v.as_int());
    }
    case ExprKind::kBinary:
      return eval_binary(e);
    case ExprKind::kCompare:
      return eval_compare(e);
    case ExprKind::kCondition:
      if (eval(*e.args[0]).truthy()) return eval(*e.args[1]);
      if (e.args[2]) return eval(*e.args[2]);
      return Value::undefined("the inline if-expression on line " + std::to_string(e.pos.line) +
                              " evaluated to false and no else section was defined.");
    case ExprKind::kList:
    case ExprKind::kTuple: {
      ValueList items;
      items.reserve(e.args.size());
      for (const auto& a : e.args) items.push_back(eval(*a));
      return Value::list(std::move(items), e.kind == ExprKind::kTuple);
    }
    case ExprKind::kDict: {
      Dict d;
      for (size_t i = 0; i + 1 < e.args.size(); i += 2) {
        Value k = eval(*e.args[i]);
        Value v = eval(*e.args[i + 1]);
        if (k.is_list() && !k.is_tuple()) fail("unhashable type: 'list'");
        if (k.is_dict()) fail("unhashable type: 'dict'");
        d.set(std::move(k), std::move(v));
      }
      return Value::dict(std::move(d));
    }
  }
  fail("unknown expression");
}

}  // namespace nibble::tokenizer::jinja
