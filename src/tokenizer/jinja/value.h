// The value model of the Jinja interpreter: Python's objects as jinja2 sees them inside
// transformers' ImmutableSandboxedEnvironment (lists and dicts cannot be mutated, so they are
// shared immutable data; only namespace() objects are mutable).
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace nibble::tokenizer::jinja {

class Value;
class Interpreter;
struct CallArgs;

using ValueList = std::vector<Value>;

// A Python dict: insertion-ordered (key order matters for tojson and for loops).
struct Dict {
  std::vector<std::pair<Value, Value>> items;
  const Value* find(const Value& key) const;
  const Value* find(std::string_view key) const;
  void set(Value key, Value value);  // replaces an existing key in place, else appends
};

// An object with named attributes: namespace() (mutable) and the `loop` variable.
struct Object {
  enum class Type { kNamespace, kLoop };
  Type type = Type::kNamespace;
  int depth = 1;  // nesting depth of the values held (grows with set(); an upper bound)
  std::vector<std::pair<std::string, Value>> attrs;
  const Value* find(std::string_view name) const;
  void set(const std::string& name, Value value);
};

// Something callable: a builtin global, a bound method, a macro, loop.cycle.
class Callable {
 public:
  virtual ~Callable() = default;
  virtual Value call(Interpreter& interp, CallArgs& args) = 0;
  virtual std::string name() const = 0;
};

class Value {
 public:
  enum class Kind { kUndefined, kNone, kBool, kInt, kFloat, kString, kList, kDict, kObject, kCallable };

  Value() = default;  // undefined
  static Value undefined(std::string hint) {
    Value v;
    v.ptr_ = std::make_shared<const std::string>(std::move(hint));
    return v;
  }
  static Value none() {
    Value v;
    v.kind_ = Kind::kNone;
    return v;
  }
  static Value boolean(bool b) {
    Value v;
    v.kind_ = Kind::kBool;
    v.int_ = b ? 1 : 0;
    return v;
  }
  static Value integer(int64_t i) {
    Value v;
    v.kind_ = Kind::kInt;
    v.int_ = i;
    return v;
  }
  static Value number(double d) {
    Value v;
    v.kind_ = Kind::kFloat;
    v.float_ = d;
    return v;
  }
  static Value string(std::string s) {
    Value v;
    v.kind_ = Kind::kString;
    v.ptr_ = std::make_shared<const std::string>(std::move(s));
    return v;
  }
  static Value list(ValueList items, bool is_tuple = false) {
    Value v;
    v.kind_ = Kind::kList;
    v.int_ = is_tuple ? 1 : 0;
    for (const Value& item : items) v.depth_ = std::max(v.depth_, item.depth() + 1);
    v.ptr_ = std::make_shared<const ValueList>(std::move(items));
    return v;
  }
  static Value dict(Dict d) {
    Value v;
    v.kind_ = Kind::kDict;
    for (const auto& [k, item] : d.items) v.depth_ = std::max({v.depth_, k.depth() + 1, item.depth() + 1});
    v.ptr_ = std::make_shared<const Dict>(std::move(d));
    return v;
  }
  static Value object(std::shared_ptr<Object> o) {
    Value v;
    v.kind_ = Kind::kObject;
    v.ptr_ = std::move(o);
    return v;
  }
  static Value callable(std::shared_ptr<Callable> c) {
    Value v;
    v.kind_ = Kind::kCallable;
    v.ptr_ = std::move(c);
    return v;
  }

  Kind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == Kind::kUndefined; }
  bool is_none() const { return kind_ == Kind::kNone; }
  bool is_bool() const { return kind_ == Kind::kBool; }
  bool is_int() const { return kind_ == Kind::kInt; }
  bool is_float() const { return kind_ == Kind::kFloat; }
  bool is_number() const { return kind_ == Kind::kInt || kind_ == Kind::kFloat || kind_ == Kind::kBool; }
  bool is_string() const { return kind_ == Kind::kString; }
  bool is_list() const { return kind_ == Kind::kList; }
  bool is_tuple() const { return kind_ == Kind::kList && int_ == 1; }
  bool is_dict() const { return kind_ == Kind::kDict; }
  bool is_object() const { return kind_ == Kind::kObject; }
  bool is_callable() const { return kind_ == Kind::kCallable; }

  // How deeply containers nest inside this value (0 for scalars). The interpreter bounds it so
  // that equality, repr, JSON and destruction, which recurse, stay within the stack.
  int depth() const { return kind_ == Kind::kObject ? as_object().depth : depth_; }

  bool as_bool() const { return int_ != 0; }
  int64_t as_int() const { return int_; }  // also for bool
  double as_double() const { return kind_ == Kind::kFloat ? float_ : static_cast<double>(int_); }
  const std::string& as_string() const { return *static_cast<const std::string*>(ptr_.get()); }
  const ValueList& as_list() const { return *static_cast<const ValueList*>(ptr_.get()); }
  const Dict& as_dict() const { return *static_cast<const Dict*>(ptr_.get()); }
  // Objects and callables are stored non-const; the const_cast undoes shared_ptr<const void>.
  Object& as_object() const { return *static_cast<Object*>(const_cast<void*>(ptr_.get())); }
  Callable& as_callable() const { return *static_cast<Callable*>(const_cast<void*>(ptr_.get())); }
  // Identity of the shared payload (for `sameas` and callable equality).
  const void* identity() const { return ptr_.get(); }
  // For undefined values: what was undefined ("'x' is undefined", "'dict object' has no attribute 'y'").
  std::string undefined_hint() const { return ptr_ ? as_string() : std::string("value is undefined"); }

  // Python truthiness (undefined is false).
  bool truthy() const;
  // Python's type name as jinja2 puts it in messages ("str", "int", "dict", ...).
  const char* type_name() const;
  // str(value) as Python prints it; undefined prints as "".
  std::string str() const;
  // repr(value) as Python prints it (how lists and dicts render their items).
  std::string repr() const;

 private:
  Kind kind_ = Kind::kUndefined;
  int depth_ = 0;
  int64_t int_ = 0;
  double float_ = 0;
  // The payload for strings (and undefined hints), lists, dicts, objects and callables. One
  // type-erased pointer keeps a Value at 40 bytes.
  std::shared_ptr<const void> ptr_;
};

// Python ==: 1 == 1.0 == True, lists and dicts compare elementwise, undefined equals undefined.
bool values_equal(const Value& a, const Value& b);

// Python repr() of a float: the shortest digits that round-trip, "1.0", "1e-05", "1e+16", "inf".
std::string python_float_repr(double d);

// json.dumps(value, ensure_ascii, indent, separators, sort_keys) as transformers' tojson calls it.
struct JsonDumpOptions {
  bool ensure_ascii = false;
  int indent = -1;             // < 0: no indent (a single line)
  std::string indent_string;   // used when set (indent given as a string)
  std::string item_separator;  // empty: Python's default for the indent mode
  std::string key_separator;
  bool has_separators = false;
  bool sort_keys = false;
};
// Appends the JSON text to `out`; returns false with a message in `error` for values JSON
// cannot hold (undefined, callables, non-string dict keys that Python would reject).
bool dump_json(const Value& value, const JsonDumpOptions& options, std::string& out, std::string& error);

// Converts parsed JSON into template values (objects keep their key order). `max_depth` bounds
// nesting; deeper input gives an error string.
bool value_from_json(const nlohmann::ordered_json& json, Value& out, std::string& error, int max_depth = 256);

}  // namespace nibble::tokenizer::jinja
