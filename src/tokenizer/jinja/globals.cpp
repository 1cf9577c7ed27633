// The globals transformers gives chat templates: range, dict, namespace, raise_exception,
// strftime_now.
#include <ctime>
#include <functional>
#include <memory>

#include "tokenizer/jinja/interpreter.h"

namespace nibble::tokenizer::jinja {

namespace {

class RangeFn : public Callable {
 public:
  Value call(Interpreter& interp, CallArgs& args) override {
    if (!args.kwargs.empty()) interp.fail("range() takes no keyword arguments");
    if (args.positional.empty() || args.positional.size() > 3) interp.fail("range expected 1 to 3 arguments");
    int64_t v[3] = {0, 0, 1};
    for (size_t i = 0; i < args.positional.size(); ++i) v[i] = int_arg(interp, args.positional[i], "range");
    int64_t start = 0, stop = v[0], step = 1;
    if (args.positional.size() >= 2) {
      start = v[0];
      stop = v[1];
      step = v[2];
    }
    if (step == 0) interp.fail("range() arg 3 must not be zero");
    // Count first (in unsigned 64 bits), so a huge range fails before allocating.
    const bool up = step > 0;
    const uint64_t span = (up ? stop > start : start > stop)
                              ? (up ? static_cast<uint64_t>(stop) - static_cast<uint64_t>(start)
                                    : static_cast<uint64_t>(start) - static_cast<uint64_t>(stop))
                              : 0;
    const uint64_t abs_step = up ? static_cast<uint64_t>(step) : static_cast<uint64_t>(-(step + 1)) + 1;
    const uint64_t n = span / abs_step + (span % abs_step != 0 ? 1 : 0);
    if (n > static_cast<uint64_t>(interp.limits().max_loop_iterations)) {
      interp.count_iterations(interp.limits().max_loop_iterations + 1);
    }
    interp.count_iterations(static_cast<int64_t>(n));
    ValueList out;
    out.reserve(static_cast<size_t>(n));
    int64_t x = start;
    for (uint64_t i = 0; i < n; ++i, x += (i < n ? step : 0)) out.push_back(Value::integer(x));
    return Value::list(std::move(out));
  }
  std::string name() const override { return "range"; }
};

void add_pairs(Interpreter& interp, const Value& src, const std::function<void(Value, Value)>& add) {
  if (src.is_dict()) {
    for (const auto& [k, v] : src.as_dict().items) add(k, v);
    return;
  }
  for (const Value& pair : interp.iterate(src)) {
    ValueList kv = interp.iterate(pair);
    if (kv.size() != 2) interp.fail("dictionary update sequence element has wrong length; 2 is required");
    add(kv[0], kv[1]);
  }
}

class DictFn : public Callable {
 public:
  Value call(Interpreter& interp, CallArgs& args) override {
    if (args.positional.size() > 1) interp.fail("dict expected at most 1 argument");
    Dict d;
    if (!args.positional.empty())
      add_pairs(interp, args.positional[0], [&](Value k, Value v) { d.set(std::move(k), std::move(v)); });
    for (const auto& [k, v] : args.kwargs) d.set(Value::string(k), v);
    return Value::dict(std::move(d));
  }
  std::string name() const override { return "dict"; }
};

class NamespaceFn : public Callable {
 public:
  Value call(Interpreter& interp, CallArgs& args) override {
    if (args.positional.size() > 1) interp.fail("namespace expected at most 1 positional argument");
    auto ns = std::make_shared<Object>();
    interp.track(ns);
    auto add = [&](const Value& k, const Value& v) {
      const std::string key = k.str();
      if (k.is_string() && !key.empty() && key[0] == '_') {
        interp.fail("Chat templates cannot store underscore-prefixed attributes on a namespace, but got '" +
                    key + "'");
      }
      ns->set(key, v);
    };
    if (!args.positional.empty()) add_pairs(interp, args.positional[0], add);
    for (const auto& [k, v] : args.kwargs) add(Value::string(k), v);
    return Value::object(std::move(ns));
  }
  std::string name() const override { return "namespace"; }
};

class RaiseExceptionFn : public Callable {
 public:
  Value call(Interpreter& interp, CallArgs& args) override {
    throw RaisedError(args.positional.empty() ? std::string() : args.positional[0].str(),
                      interp.current_pos());
  }
  std::string name() const override { return "raise_exception"; }
};

class StrftimeNowFn : public Callable {
 public:
  Value call(Interpreter& interp, CallArgs& args) override {
    args.check("strftime_now", {"format"});
    const Value* fmt = args.get(0, "format");
    const std::string& f = str_arg(interp, fmt, "strftime_now");
    const std::time_t t = interp.limits().now ? *interp.limits().now : std::time(nullptr);
    std::tm tm{};
    localtime_r(&t, &tm);
    if (f.empty()) return Value::string("");
    std::string buf(256 + f.size() * 8, '\0');
    const size_t n = std::strftime(buf.data(), buf.size(), f.c_str(), &tm);
    if (n == 0) interp.fail("strftime_now: format produced no output or is too long");
    buf.resize(n);
    return Value::string(std::move(buf));
  }
  std::string name() const override { return "strftime_now"; }
};

}  // namespace

Value find_global(const std::string& name) {
  static const auto* range = new Value(Value::callable(std::make_shared<RangeFn>()));
  static const auto* dict = new Value(Value::callable(std::make_shared<DictFn>()));
  static const auto* ns = new Value(Value::callable(std::make_shared<NamespaceFn>()));
  static const auto* raise = new Value(Value::callable(std::make_shared<RaiseExceptionFn>()));
  static const auto* strftime = new Value(Value::callable(std::make_shared<StrftimeNowFn>()));
  if (name == "range") return *range;
  if (name == "dict") return *dict;
  if (name == "namespace") return *ns;
  if (name == "raise_exception") return *raise;
  if (name == "strftime_now") return *strftime;
  return Value();
}

}  // namespace nibble::tokenizer::jinja
