// jinja2's builtin filters, with transformers' tojson.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string_view>
#include <unordered_map>

#include "tokenizer/jinja/interpreter.h"
#include "tokenizer/jinja/utf8.h"

namespace nibble::tokenizer::jinja {
namespace {

using FilterFn = Value (*)(Interpreter&, const Value&, CallArgs&);

std::string need_string(Interpreter& interp, const Value& v) {
  if (v.is_undefined()) return "";
  (void)interp;
  return v.str();
}

int64_t need_int(Interpreter& interp, const Value& v, const char* what) {
  if (v.is_int() || v.is_bool()) return v.as_int();
  if (v.is_undefined()) interp.fail_undefined(v);
  interp.fail(std::string(what) + " must be an integer, not " + v.type_name());
}

// Looks up "a.b.0" on an item the way jinja2's make_attrgetter does.
Value get_path(Interpreter& interp, const Value& item, const Value& attribute) {
  if (!attribute.is_string()) return interp.get_item(item, attribute);
  Value cur = item;
  std::string_view path = attribute.as_string();
  while (true) {
    const size_t dot = path.find('.');
    const std::string part(path.substr(0, dot));
    bool numeric =
        !part.empty() && std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; });
    cur = numeric && part.size() < 18 ? interp.get_item(cur, Value::integer(std::atoll(part.c_str())))
                                      : interp.get_item(cur, Value::string(part));
    if (dot == std::string_view::npos) break;
    path.remove_prefix(dot + 1);
  }
  return cur;
}

Value lower_if_string(const Value& v) {
  return v.is_string() ? Value::string(py_lower(v.as_string())) : v;
}

// ---- filters ----

Value f_tojson(Interpreter& interp, const Value& v, CallArgs& args) {
  return Value::string(to_json_text(interp, v, args, 0));
}

Value f_length(Interpreter& interp, const Value& v, CallArgs& args) {
  args.check("length", {});
  switch (v.kind()) {
    case Value::Kind::kUndefined:
      return Value::integer(0);
    case Value::Kind::kString:
      return Value::integer(static_cast<int64_t>(utf8_length(v.as_string())));
    case Value::Kind::kList:
      return Value::integer(static_cast<int64_t>(v.as_list().size()));
    case Value::Kind::kDict:
      return Value::integer(static_cast<int64_t>(v.as_dict().items.size()));
    default:
      interp.fail(std::string("object of type '") + v.type_name() + "' has no len()");
  }
}

Value f_trim(Interpreter& interp, const Value& v, CallArgs& args) {
  args.check("trim", {"chars"});
  const Value* chars = args.get(0, "chars");
  return Value::string(
      py_strip(need_string(interp, v), chars && !chars->is_none() ? chars : nullptr, true, true));
}

Value f_join(Interpreter& interp, const Value& v, CallArgs& args) {
  args.check("join", {"d", "attribute"});
  const std::string sep = args.get_or(0, "d", Value::string("")).str();
  const Value attribute = args.get_or(1, "attribute", Value::none());
  std::string out;
  bool first = true;
  for (const Value& item : interp.iterate(v)) {
    if (!first) out += sep;
    first = false;
    out += attribute.is_none() ? item.str() : get_path(interp, item, attribute).str();
    interp.check_size(out.size());
  }
  return Value::string(std::move(out));
}

Value f_default(Interpreter&, const Value& v, CallArgs& args) {
  args.check("default", {"default_value", "boolean"});
  const Value dflt = args.get_or(0, "default_value", Value::string(""));
  const bool boolean = args.get_or(1, "boolean", Value::boolean(false)).truthy();
  if (v.is_undefined() || (boolean && !v.truthy())) return dflt;
  return v;
}

Value f_map(Interpreter& interp, const Value& v, CallArgs& args) {
  ValueList out;
  const Value* attribute = nullptr;
  Value dflt;
  for (const auto& [k, val] : args.kwargs) {
    if (k == "attribute")
      attribute = &val;
    else if (k == "default")
      dflt = val;
  }
  if (attribute) {
    for (const Value& item : interp.iterate(v)) {
      Value r = get_path(interp, item, *attribute);
      if (r.is_undefined() && !dflt.is_undefined()) r = dflt;
      out.push_back(std::move(r));
    }
    return Value::list(std::move(out));
  }
  if (args.positional.empty()) interp.fail("map requires a filter argument");
  const std::string name = args.positional[0].str();
  CallArgs rest;
  rest.pos = args.pos;
  rest.positional.assign(args.positional.begin() + 1, args.positional.end());
  rest.kwargs = args.kwargs;
  for (const Value& item : interp.iterate(v)) out.push_back(interp.apply_filter(name, item, rest));
  return Value::list(std::move(out));
}

// select / reject / selectattr / rejectattr.
Value select_impl(Interpreter& interp, const Value& v, CallArgs& args, bool by_attr, bool keep) {
  size_t next = 0;
  Value attribute;
  if (by_attr) {
    if (args.positional.empty()) interp.fail("Missing parameter for attribute name");
    attribute = args.positional[next++];
  }
  std::string test;
  if (next < args.positional.size()) test = args.positional[next++].str();
  CallArgs rest;
  rest.pos = args.pos;
  rest.positional.assign(args.positional.begin() + static_cast<std::ptrdiff_t>(next), args.positional.end());
  rest.kwargs = args.kwargs;
  ValueList out;
  for (const Value& item : interp.iterate(v)) {
    const Value subject = by_attr ? get_path(interp, item, attribute) : item;
    const bool r = test.empty() ? subject.truthy() : interp.apply_test(test, subject, rest);
    if (r == keep) out.push_back(item);
  }
  return Value::list(std::move(out));
}

Value f_select(Interpreter& i, const Value& v, CallArgs& a) {
  return select_impl(i, v, a, false, true);
}
Value f_reject(Interpreter& i, const Value& v, CallArgs& a) {
  return select_impl(i, v, a, false, false);
}
Value f_selectattr(Interpreter& i, const Value& v, CallArgs& a) {
  return select_impl(i, v, a, true, true);
}
Value f_rejectattr(Interpreter& i, const Value& v, CallArgs& a) {
  return select_impl(i, v, a, true, false);
}

Value f_first(Interpreter& interp, const Value& v, CallArgs& args) {
  args.check("first", {});
  ValueList items = interp.iterate(v);
  if (items.empty()) return Value::undefined("No first item, sequence was empty.");
  return items.front();
}

Value f_last(Interpreter& interp, const Value& v, CallArgs& args) {
  args.check("last", {});
  ValueList items = interp.iterate(v);
  if (items.empty()) return Value::undefined("No last item, sequence was empty.");
  return items.back();
}

Value f_list(Interpreter& interp, const Value& v, CallArgs& args) {
  args.check("list", {});
  return Value::list(interp.iterate(v));
}

Value f_string(Interpreter&, const Value& v, CallArgs& args) {
  args.check("string", {});
  return v.is_string() ? v : Value::string(v.str());
}

// Python's int(str, base): optional sign, underscores between digits, surrounding whitespace.
bool parse_py_int(const std::string& text, int base, int64_t& out) {
  std::string s = py_strip(text, nullptr, true, true);
  bool neg = false;
  size_t i = 0;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) neg = s[i++] == '-';
  if (i == s.size()) return false;
  int64_t v = 0;
  bool prev_digit = false;
  for (; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '_' && prev_digit && i + 1 < s.size()) {
      prev_digit = false;
      continue;
    }
    int d = -1;
    if (c >= '0' && c <= '9')
      d = c - '0';
    else if (c >= 'a' && c <= 'z')
      d = c - 'a' + 10;
    else if (c >= 'A' && c <= 'Z')
      d = c - 'A' + 10;
    if (d < 0 || d >= base) return false;
    if (__builtin_mul_overflow(v, base, &v) || __builtin_add_overflow(v, d, &v)) return false;
    prev_digit = true;
  }
  if (!prev_digit) return false;
  out = neg ? -v : v;
  return true;
}

bool parse_py_float(const std::string& text, double& out) {
  std::string s = py_strip(text, nullptr, true, true);
  s.erase(std::remove(s.begin(), s.end(), '_'), s.end());
  if (s.empty()) return false;
  char* end = nullptr;
  out = std::strtod(s.c_str(), &end);
  return end == s.c_str() + s.size();
}

Value f_int(Interpreter& interp, const Value& v, CallArgs& args) {
  args.check("int", {"default", "base"});
  const Value dflt = args.get_or(0, "default", Value::integer(0));
  const int64_t base = need_int(interp, args.get_or(1, "base", Value::integer(10)), "base");
  if (v.is_int() || v.is_bool()) return Value::integer(v.as_int());
  if (v.is_float()) {
    const double d = v.as_double();
    if (std::isnan(d) || std::isinf(d) || std::fabs(d) >= 9.2e18) return dflt;
    return Value::integer(static_cast<int64_t>(d));
  }
  if (v.is_string()) {
    int64_t i = 0;
    if (base >= 2 && base <= 36 && parse_py_int(v.as_string(), static_cast<int>(base), i))
      return Value::integer(i);
    double d = 0;
    if (parse_py_float(v.as_string(), d) && !std::isnan(d) && !std::isinf(d) && std::fabs(d) < 9.2e18) {
      return Value::integer(static_cast<int64_t>(d));
    }
  }
  return dflt;
}

Value f_float(Interpreter&, const Value& v, CallArgs& args) {
  args.check("float", {"default"});
  const Value dflt = args.get_or(0, "default", Value::number(0.0));
  if (v.is_number()) return Value::number(v.as_double());
  double d = 0;
  if (v.is_string() && parse_py_float(v.as_string(), d)) return Value::number(d);
  return dflt;
}

Value f_upper(Interpreter& interp, const Value& v, CallArgs&) {
  return Value::string(py_upper(need_string(interp, v)));
}
Value f_lower(Interpreter& interp, const Value& v, CallArgs&) {
  return Value::string(py_lower(need_string(interp, v)));
}
Value f_capitalize(Interpreter& interp, const Value& v, CallArgs&) {
  return Value::string(py_capitalize(need_string(interp, v)));
}

// jinja2's title: words start after runs of '-', whitespace, or one of "({[<".
Value f_title(Interpreter& interp, const Value& v, CallArgs&) {
  const std::u32string cps = decode_utf8(need_string(interp, v));
  std::u32string out;
  bool word_start = true;
  for (char32_t cp : cps) {
    const bool delim = cp == '-' || is_py_space(cp) || cp == '(' || cp == '{' || cp == '[' || cp == '<';
    if (delim) {
      out.push_back(cp);
      word_start = true;
    } else {
      out.push_back(word_start ? to_upper_cp(cp) : to_lower_cp(cp));
      word_start = false;
    }
  }
  return Value::string(encode_utf8(out));
}

Value f_replace(Interpreter& interp, const Value& v, CallArgs& args) {
  args.check("replace", {"old", "new", "count"});
  const Value* old_text = args.get(0, "old");
  const Value* new_text = args.get(1, "new");
  if (!old_text || !new_text) interp.fail("replace() missing required arguments 'old' and 'new'");
  const Value count = args.get_or(2, "count", Value::none());
  return Value::string(py_replace(interp, need_string(interp, v), old_text->str(), new_text->str(),
                                  count.is_none() ? -1 : need_int(interp, count, "count")));
}

ValueList dict_items(const Value& v) {
  ValueList out;
  for (const auto& [k, item] : v.as_dict().items) out.push_back(Value::list({k, item}, true));
  return out;
}

Value f_items(Interpreter& interp, const Value& v, CallArgs& args) {
  args.check("items", {});
  if (v.is_undefined()) return Value::list({});
  if (!v.is_dict()) interp.fail("Can only get item pairs from a mapping.");
  return Value::list(dict_items(v));
}

void sort_values(Interpreter& interp, ValueList& items, bool reverse,
                 const std::function<Value(const Value&)>& key) {
  std::vector<std::pair<Value, Value>> keyed;
  keyed.reserve(items.size());
  for (Value& item : items) keyed.emplace_back(key(item), std::move(item));
  std::stable_sort(keyed.begin(), keyed.end(), [&](const auto& a, const auto& b) {
    return reverse ? compare_values(interp, b.first, a.first) < 0
                   : compare_values(interp, a.first, b.first) < 0;
  });
  items.clear();
  for (auto& [k, item] : keyed) items.push_back(std::move(item));
}

Value f_dictsort(Interpreter& interp, const Value& v, CallArgs& args) {
  args.check("dictsort", {"case_sensitive", "by", "reverse"});
  if (!v.is_dict()) interp.fail("dictsort expects a mapping");
  const bool case_sensitive = args.get_or(0, "case_sensitive", Value::boolean(false)).truthy();
  const std::string by = args.get_or(1, "by", Value::string("key")).str();
  const bool reverse = args.get_or(2, "reverse", Value::boolean(false)).truthy();
  if (by != "key" && by != "value") interp.fail("You can only sort by either \"key\" or \"value\"");
  const size_t idx = by == "key" ? 0 : 1;
  ValueList items = dict_items(v);
  sort_values(interp, items, reverse, [&](const Value& item) {
    const Value& part = item.as_list()[idx];
    return case_sensitive ? part : lower_if_string(part);
  });
  return Value::list(std::move(items));
}

Value f_sort(Interpreter& interp, const Value& v, CallArgs& args) {
  args.check("sort", {"reverse", "case_sensitive", "attribute"});
  const bool reverse = args.get_or(0, "reverse", Value::boolean(false)).truthy();
  const bool case_sensitive = args.get_or(1, "case_sensitive", Value::boolean(false)).truthy();
  const Value attribute = args.get_or(2, "attribute", Value::none());
  ValueList items = interp.iterate(v);
  sort_values(interp, items, reverse, [&](const Value& item) {
    const Value k = attribute.is_none() ? item : get_path(interp, item, attribute);
    return case_sensitive ? k : lower_if_string(k);
  });
  return Value::list(std::move(items));
}

Value f_unique(Interpreter& interp, const Value& v, CallArgs& args) {
  args.check("unique", {"case_sensitive", "attribute"});
  const bool case_sensitive = args.get_or(0, "case_sensitive", Value::boolean(false)).truthy();
  const Value attribute = args.get_or(1, "attribute", Value::none());
  ValueList out;
  ValueList seen;
  for (const Value& item : interp.iterate(v)) {
    Value k = attribute.is_none() ? item : get_path(interp, item, attribute);
    if (!case_sensitive) k = lower_if_string(k);
    bool dup = false;
    for (const Value& s : seen) dup = dup || values_equal(s, k);
    if (!dup) {
      seen.push_back(k);
      out.push_back(item);
    }
  }
  return Value::list(std::move(out));
}

Value minmax(Interpreter& interp, const Value& v, CallArgs& args, bool want_max) {
  args.check(want_max ? "max" : "min", {"case_sensitive", "attribute"});
  const bool case_sensitive = args.get_or(0, "case_sensitive", Value::boolean(false)).truthy();
  const Value attribute = args.get_or(1, "attribute", Value::none());
  ValueList items = interp.iterate(v);
  if (items.empty()) return Value::undefined(std::string("No aggregated item, sequence was empty."));
  auto key = [&](const Value& item) {
    const Value k = attribute.is_none() ? item : get_path(interp, item, attribute);
    return case_sensitive ? k : lower_if_string(k);
  };
  Value best = items[0];
  Value best_key = key(best);
  for (size_t i = 1; i < items.size(); ++i) {
    Value k = key(items[i]);
    const int c = compare_values(interp, k, best_key);
    if (want_max ? c > 0 : c < 0) {
      best = items[i];
      best_key = k;
    }
  }
  return best;
}

Value f_min(Interpreter& i, const Value& v, CallArgs& a) {
  return minmax(i, v, a, false);
}
Value f_max(Interpreter& i, const Value& v, CallArgs& a) {
  return minmax(i, v, a, true);
}

Value f_sum(Interpreter& interp, const Value& v, CallArgs& args) {
  args.check("sum", {"attribute", "start"});
  const Value attribute = args.get_or(0, "attribute", Value::none());
  Value total = args.get_or(1, "start", Value::integer(0));
  for (const Value& item : interp.iterate(v)) {
    const Value x = attribute.is_none() ? item : get_path(interp, item, attribute);
    if (!x.is_number() || !total.is_number()) interp.fail("unsupported operand type(s) for +");
    if (x.is_float() || total.is_float()) {
      total = Value::number(total.as_double() + x.as_double());
    } else {
      int64_t r = 0;
      if (__builtin_add_overflow(total.as_int(), x.as_int(), &r)) interp.fail("integer overflow");
      total = Value::integer(r);
    }
  }
  return total;
}

Value f_reverse(Interpreter& interp, const Value& v, CallArgs&) {
  if (v.is_string()) {
    std::u32string cps = decode_utf8(v.as_string());
    std::reverse(cps.begin(), cps.end());
    return Value::string(encode_utf8(cps));
  }
  ValueList items = interp.iterate(v);
  std::reverse(items.begin(), items.end());
  return Value::list(std::move(items));
}

Value f_abs(Interpreter& interp, const Value& v, CallArgs&) {
  if (v.is_float()) return Value::number(std::fabs(v.as_double()));
  if (v.is_int() || v.is_bool()) {
    if (v.as_int() == INT64_MIN) interp.fail("integer overflow");
    return Value::integer(v.as_int() < 0 ? -v.as_int() : v.as_int());
  }
  if (v.is_undefined()) interp.fail_undefined(v);
  interp.fail(std::string("bad operand type for abs(): '") + v.type_name() + "'");
}

Value f_round(Interpreter& interp, const Value& v, CallArgs& args) {
  args.check("round", {"precision", "method"});
  const int64_t precision = need_int(interp, args.get_or(0, "precision", Value::integer(0)), "precision");
  const std::string method = args.get_or(1, "method", Value::string("common")).str();
  if (!v.is_number()) {
    if (v.is_undefined()) interp.fail_undefined(v);
    interp.fail(std::string("type ") + v.type_name() + " doesn't define __round__ method");
  }
  if (method != "common" && method != "ceil" && method != "floor") {
    interp.fail("method must be common, ceil or floor");
  }
  if (method == "common" && !v.is_float() && precision >= 0) return Value::integer(v.as_int());
  const double scale = std::pow(10.0, static_cast<double>(std::clamp<int64_t>(precision, -300, 300)));
  const double x = v.as_double() * scale;
  double r = method == "ceil" ? std::ceil(x) : method == "floor" ? std::floor(x) : std::nearbyint(x);
  return Value::number(std::isfinite(x) ? r / scale : v.as_double());
}

Value f_safe(Interpreter&, const Value& v, CallArgs&) {
  return v;
}

Value f_escape(Interpreter&, const Value& v, CallArgs&) {
  std::string out;
  for (char c : v.str()) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&#34;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out.push_back(c);
    }
  }
  return Value::string(std::move(out));
}

// Python's str.splitlines() on code points.
std::vector<std::u32string> splitlines(const std::u32string& s) {
  std::vector<std::u32string> lines;
  std::u32string cur;
  for (size_t i = 0; i < s.size(); ++i) {
    const char32_t c = s[i];
    if (c == '\n' || c == '\r' || c == 0x0B || c == 0x0C || c == 0x1C || c == 0x1D || c == 0x1E ||
        c == 0x85 || c == 0x2028 || c == 0x2029) {
      if (c == '\r' && i + 1 < s.size() && s[i + 1] == '\n') ++i;
      lines.push_back(std::move(cur));
      cur.clear();
    } else {
      cur.push_back(c);
    }
  }
  if (!cur.empty()) lines.push_back(std::move(cur));
  return lines;
}

Value f_indent(Interpreter& interp, const Value& v, CallArgs& args) {
  args.check("indent", {"width", "first", "blank"});
  const Value width = args.get_or(0, "width", Value::integer(4));
  const bool first = args.get_or(1, "first", Value::boolean(false)).truthy();
  const bool blank = args.get_or(2, "blank", Value::boolean(false)).truthy();
  std::string indention;
  if (width.is_string()) {
    indention = width.as_string();
  } else {
    const int64_t n = need_int(interp, width, "width");
    interp.check_size(static_cast<size_t>(std::max<int64_t>(n, 0)));
    indention.assign(static_cast<size_t>(std::max<int64_t>(n, 0)), ' ');
  }
  const std::u32string text = decode_utf8(need_string(interp, v) + "\n");
  std::vector<std::u32string> lines = splitlines(text);
  std::string rv;
  if (blank) {
    for (size_t i = 0; i < lines.size(); ++i) {
      if (i) rv += "\n" + indention;
      rv += encode_utf8(lines[i]);
    }
  } else {
    rv = lines.empty() ? std::string() : encode_utf8(lines[0]);
    for (size_t i = 1; i < lines.size(); ++i) {
      rv += "\n";
      if (!lines[i].empty()) rv += indention;
      rv += encode_utf8(lines[i]);
    }
  }
  if (first) rv = indention + rv;
  interp.check_size(rv.size());
  return Value::string(std::move(rv));
}

Value f_center(Interpreter& interp, const Value& v, CallArgs& args) {
  args.check("center", {"width"});
  const int64_t width = need_int(interp, args.get_or(0, "width", Value::integer(80)), "width");
  const std::string s = need_string(interp, v);
  const int64_t len = static_cast<int64_t>(utf8_length(s));
  if (width <= len) return Value::string(s);
  interp.check_size(static_cast<size_t>(width));
  const int64_t pad = width - len;
  // Python's str.center puts the odd space on the left when the width is odd.
  const int64_t left = pad / 2 + (pad & width & 1);
  return Value::string(std::string(static_cast<size_t>(left), ' ') + s +
                       std::string(static_cast<size_t>(pad - left), ' '));
}

Value f_wordcount(Interpreter& interp, const Value& v, CallArgs&) {
  int64_t n = 0;
  bool in_word = false;
  for (char32_t cp : decode_utf8(need_string(interp, v))) {
    const bool word = is_alpha_cp(cp) || is_digit_cp(cp) || cp == '_';
    if (word && !in_word) ++n;
    in_word = word;
  }
  return Value::integer(n);
}

Value f_attr(Interpreter& interp, const Value& v, CallArgs& args) {
  args.check("attr", {"name"});
  const Value* name = args.get(0, "name");
  if (!name) interp.fail("attr() missing argument 'name'");
  return interp.get_attr(v, name->str());
}

Value f_format(Interpreter& interp, const Value& v, CallArgs& args) {
  if (!args.positional.empty() && !args.kwargs.empty()) {
    interp.fail("can't handle positional and keyword arguments at the same time");
  }
  Value params;
  if (!args.kwargs.empty()) {
    Dict d;
    for (const auto& [k, val] : args.kwargs) d.set(Value::string(k), val);
    params = Value::dict(std::move(d));
  } else {
    params = Value::list(args.positional, true);
  }
  return Value::string(py_percent_format(interp, v.str(), params));
}

const std::unordered_map<std::string, FilterFn>& filters() {
  static const auto* table = new std::unordered_map<std::string, FilterFn>{
      {"tojson", f_tojson},
      {"length", f_length},
      {"count", f_length},
      {"trim", f_trim},
      {"join", f_join},
      {"default", f_default},
      {"d", f_default},
      {"map", f_map},
      {"select", f_select},
      {"reject", f_reject},
      {"selectattr", f_selectattr},
      {"rejectattr", f_rejectattr},
      {"first", f_first},
      {"last", f_last},
      {"list", f_list},
      {"string", f_string},
      {"int", f_int},
      {"float", f_float},
      {"upper", f_upper},
      {"lower", f_lower},
      {"title", f_title},
      {"capitalize", f_capitalize},
      {"replace", f_replace},
      {"items", f_items},
      {"dictsort", f_dictsort},
      {"sort", f_sort},
      {"unique", f_unique},
      {"min", f_min},
      {"max", f_max},
      {"sum", f_sum},
      {"reverse", f_reverse},
      {"abs", f_abs},
      {"round", f_round},
      {"safe", f_safe},
      {"escape", f_escape},
      {"e", f_escape},
      {"forceescape", f_escape},
      {"indent", f_indent},
      {"center", f_center},
      {"wordcount", f_wordcount},
      {"attr", f_attr},
      {"format", f_format},
  };
  return *table;
}

}  // namespace

bool has_filter(const std::string& name) {
  return filters().count(name) != 0;
}

Value run_filter(Interpreter& interp, const std::string& name, const Value& input, CallArgs& args) {
  const auto it = filters().find(name);
  if (it == filters().end()) interp.fail("No filter named '" + name + "'.");
  Interpreter::CallGuard guard(interp);
  return it->second(interp, input, args);
}

}  // namespace nibble::tokenizer::jinja