// jinja2's builtin tests (`x is defined`, `n is divisibleby 3`, ...).
#include <string>
#include <unordered_map>

#include "tokenizer/jinja/interpreter.h"

namespace nibble::tokenizer::jinja {
namespace {

using TestFn = bool (*)(Interpreter&, const Value&, CallArgs&);

bool t_defined(Interpreter&, const Value& v, CallArgs&) {
  return !v.is_undefined();
}
bool t_undefined(Interpreter&, const Value& v, CallArgs&) {
  return v.is_undefined();
}
bool t_none(Interpreter&, const Value& v, CallArgs&) {
  return v.is_none();
}
bool t_boolean(Interpreter&, const Value& v, CallArgs&) {
  return v.is_bool();
}
bool t_true(Interpreter&, const Value& v, CallArgs&) {
  return v.is_bool() && v.as_bool();
}
bool t_false(Interpreter&, const Value& v, CallArgs&) {
  return v.is_bool() && !v.as_bool();
}
bool t_integer(Interpreter&, const Value& v, CallArgs&) {
  return v.is_int();
}
bool t_float(Interpreter&, const Value& v, CallArgs&) {
  return v.is_float();
}
bool t_number(Interpreter&, const Value& v, CallArgs&) {
  return v.is_number();
}
bool t_string(Interpreter&, const Value& v, CallArgs&) {
  return v.is_string();
}
bool t_mapping(Interpreter&, const Value& v, CallArgs&) {
  return v.is_dict();
}
bool t_iterable(Interpreter&, const Value& v, CallArgs&) {
  return v.is_string() || v.is_list() || v.is_dict() || v.is_undefined();
}
bool t_sequence(Interpreter&, const Value& v, CallArgs&) {
  return v.is_string() || v.is_list() || v.is_dict();
}
bool t_callable(Interpreter&, const Value& v, CallArgs&) {
  return v.is_callable();
}
bool t_escaped(Interpreter&, const Value&, CallArgs&) {
  return false;
}

const Value& test_arg(Interpreter& interp, CallArgs& args, const char* test) {
  if (args.positional.empty()) {
    if (!args.kwargs.empty()) return args.kwargs[0].second;
    interp.fail(std::string("test '") + test + "' requires an argument");
  }
  return args.positional[0];
}

bool t_sameas(Interpreter& interp, const Value& v, CallArgs& args) {
  const Value& other = test_arg(interp, args, "sameas");
  if (v.kind() != other.kind()) return false;
  if (v.is_none() || v.is_bool()) return values_equal(v, other);
  if (v.is_object()) return &v.as_object() == &other.as_object();
  return false;
}
bool t_eq(Interpreter& interp, const Value& v, CallArgs& args) {
  return values_equal(v, test_arg(interp, args, "eq"));
}
bool t_ne(Interpreter& interp, const Value& v, CallArgs& args) {
  return !values_equal(v, test_arg(interp, args, "ne"));
}
bool t_lt(Interpreter& interp, const Value& v, CallArgs& args) {
  return compare_values(interp, v, test_arg(interp, args, "lt")) < 0;
}
bool t_le(Interpreter& interp, const Value& v, CallArgs& args) {
  return compare_values(interp, v, test_arg(interp, args, "le")) <= 0;
}
bool t_gt(Interpreter& interp, const Value& v, CallArgs& args) {
  return compare_values(interp, v, test_arg(interp, args, "gt")) > 0;
}
bool t_ge(Interpreter& interp, const Value& v, CallArgs& args) {
  return compare_values(interp, v, test_arg(interp, args, "ge")) >= 0;
}
bool t_in(Interpreter& interp, const Value& v, CallArgs& args) {
  const Value& seq = test_arg(interp, args, "in");
  if (seq.is_string()) {
    if (!v.is_string()) interp.fail("'in <string>' requires string as left operand");
    return seq.as_string().find(v.as_string()) != std::string::npos;
  }
  if (seq.is_dict()) return seq.as_dict().find(v) != nullptr;
  for (const Value& item : interp.iterate(seq)) {
    if (values_equal(item, v)) return true;
  }
  return false;
}

int64_t int_operand(Interpreter& interp, const Value& v, const char* test) {
  if (v.is_int() || v.is_bool()) return v.as_int();
  if (v.is_undefined()) interp.fail_undefined(v);
  interp.fail(std::string("test '") + test + "' needs an integer, not " + v.type_name());
}

bool t_odd(Interpreter& interp, const Value& v, CallArgs&) {
  return (int_operand(interp, v, "odd") & 1) != 0;
}
bool t_even(Interpreter& interp, const Value& v, CallArgs&) {
  return (int_operand(interp, v, "even") & 1) == 0;
}
bool t_divisibleby(Interpreter& interp, const Value& v, CallArgs& args) {
  const int64_t d = int_operand(interp, test_arg(interp, args, "divisibleby"), "divisibleby");
  if (d == 0) interp.fail("integer modulo by zero");
  if (d == -1) return true;
  return int_operand(interp, v, "divisibleby") % d == 0;
}
bool t_lower(Interpreter&, const Value& v, CallArgs&) {
  return v.is_string() && py_lower(v.as_string()) == v.as_string() &&
         py_upper(v.as_string()) != v.as_string();
}
bool t_upper(Interpreter&, const Value& v, CallArgs&) {
  return v.is_string() && py_upper(v.as_string()) == v.as_string() &&
         py_lower(v.as_string()) != v.as_string();
}
bool t_filter(Interpreter& interp, const Value& v, CallArgs&) {
  (void)interp;
  return v.is_string() && has_filter(v.as_string());
}
bool t_test(Interpreter& interp, const Value& v, CallArgs&) {
  (void)interp;
  return v.is_string() && has_test(v.as_string());
}

const std::unordered_map<std::string, TestFn>& tests() {
  static const auto* table = new std::unordered_map<std::string, TestFn>{
      {"defined", t_defined},
      {"undefined", t_undefined},
      {"none", t_none},
      {"boolean", t_boolean},
      {"true", t_true},
      {"false", t_false},
      {"integer", t_integer},
      {"float", t_float},
      {"number", t_number},
      {"string", t_string},
      {"mapping", t_mapping},
      {"iterable", t_iterable},
      {"sequence", t_sequence},
      {"callable", t_callable},
      {"escaped", t_escaped},
      {"sameas", t_sameas},
      {"eq", t_eq},
      {"equalto", t_eq},
      {"==", t_eq},
      {"ne", t_ne},
      {"!=", t_ne},
      {"lt", t_lt},
      {"lessthan", t_lt},
      {"<", t_lt},
      {"le", t_le},
      {"<=", t_le},
      {"gt", t_gt},
      {"greaterthan", t_gt},
      {">", t_gt},
      {"ge", t_ge},
      {">=", t_ge},
      {"in", t_in},
      {"odd", t_odd},
      {"even", t_even},
      {"divisibleby", t_divisibleby},
      {"lower", t_lower},
      {"upper", t_upper},
      {"filter", t_filter},
      {"test", t_test},
  };
  return *table;
}

}  // namespace

bool has_test(const std::string& name) {
  return tests().count(name) != 0;
}

bool run_test(Interpreter& interp, const std::string& name, const Value& input, CallArgs& args) {
  const auto it = tests().find(name);
  if (it == tests().end()) interp.fail("No test named '" + name + "'.");
  return it->second(interp, input, args);
}

}  // namespace nibble::tokenizer::jinja
