// Python methods on str / dict / list values, and %-formatting.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <memory>

#include "tokenizer/jinja/interpreter.h"
#include "tokenizer/jinja/utf8.h"

namespace nibble::tokenizer::jinja {

// ---- string helpers ----

std::string py_strip(const std::string& s, const Value* chars, bool left, bool right) {
  const std::u32string cps = decode_utf8(s);
  std::u32string set;
  if (chars && chars->is_string()) set = decode_utf8(chars->as_string());
  auto strip_it = [&](char32_t c) { return chars ? set.find(c) != std::u32string::npos : is_py_space(c); };
  size_t b = 0;
  size_t e = cps.size();
  if (left) {
    while (b < e && strip_it(cps[b])) ++b;
  }
  if (right) {
    while (e > b && strip_it(cps[e - 1])) --e;
  }
  return encode_utf8(std::u32string_view(cps).substr(b, e - b));
}

std::string py_replace(Interpreter& interp, const std::string& s, const std::string& old_text,
                       const std::string& new_text, int64_t count) {
  std::string out;
  if (old_text.empty()) {
    // Python inserts `new` before every character and at the end.
    const std::u32string cps = decode_utf8(s);
    int64_t done = 0;
    for (char32_t cp : cps) {
      if (count < 0 || done < count) {
        out += new_text;
        ++done;
      }
      append_utf8(out, cp);
      interp.check_size(out.size());
    }
    if (count < 0 || done < count) out += new_text;
    return out;
  }
  size_t pos = 0;
  int64_t done = 0;
  while (count < 0 || done < count) {
    const size_t hit = s.find(old_text, pos);
    if (hit == std::string::npos) break;
    out.append(s, pos, hit - pos);
    out += new_text;
    interp.check_size(out.size());
    pos = hit + old_text.size();
    ++done;
  }
  out.append(s, pos, std::string::npos);
  return out;
}

std::string py_lower(const std::string& s) {
  std::string out;
  for (char32_t c : decode_utf8(s)) {
    if (c == 0x130) {  // İ lowers to i + combining dot, as in Python
      out += "i\xCC\x87";
    } else {
      append_utf8(out, to_lower_cp(c));
    }
  }
  return out;
}

std::string py_upper(const std::string& s) {
  std::string out;
  for (char32_t c : decode_utf8(s)) {
    // The few full case mappings that expand (Python's str.upper uses them).
    switch (c) {
      case 0xDF:
        out += "SS";
        continue;
      case 0xFB00:
        out += "FF";
        continue;
      case 0xFB01:
        out += "FI";
        continue;
      case 0xFB02:
        out += "FL";
        continue;
      case 0xFB03:
        out += "FFI";
        continue;
      case 0xFB04:
        out += "FFL";
        continue;
      case 0xFB05:
      case 0xFB06:
        out += "ST";
        continue;
      default:
        append_utf8(out, to_upper_cp(c));
    }
  }
  return out;
}

std::string py_capitalize(const std::string& s) {
  std::u32string cps = decode_utf8(s);
  for (size_t i = 0; i < cps.size(); ++i) cps[i] = i == 0 ? to_upper_cp(cps[i]) : to_lower_cp(cps[i]);
  return encode_utf8(cps);
}

std::string to_json_text(Interpreter& interp, const Value& v, const CallArgs& args, size_t first_arg) {
  // transformers: tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False).
  CallArgs rest;
  rest.pos = args.pos;
  rest.positional.assign(args.positional.begin() + static_cast<std::ptrdiff_t>(first_arg),
                         args.positional.end());
  rest.kwargs = args.kwargs;
  rest.check("tojson", {"ensure_ascii", "indent", "separators", "sort_keys"});
  JsonDumpOptions opt;
  opt.ensure_ascii = rest.get_or(0, "ensure_ascii", Value::boolean(false)).truthy();
  const Value indent = rest.get_or(1, "indent", Value::none());
  if (indent.is_string()) {
    opt.indent_string = indent.as_string();
    opt.indent = 0;
  } else if (indent.is_int() || indent.is_bool()) {
    opt.indent = static_cast<int>(std::clamp<int64_t>(indent.as_int(), 0, 64));
  } else if (!indent.is_none()) {
    interp.fail("tojson: indent must be an integer, a string or None");
  }
  const Value separators = rest.get_or(2, "separators", Value::none());
  if (!separators.is_none()) {
    if (!separators.is_list() || separators.as_list().size() != 2 || !separators.as_list()[0].is_string() ||
        !separators.as_list()[1].is_string()) {
      interp.fail("tojson: separators must be a pair of strings");
    }
    opt.has_separators = true;
    opt.item_separator = separators.as_list()[0].as_string();
    opt.key_separator = separators.as_list()[1].as_string();
  }
  opt.sort_keys = rest.get_or(3, "sort_keys", Value::boolean(false)).truthy();
  std::string out;
  std::string error;
  if (!dump_json(v, opt, out, error)) interp.fail(error);
  interp.check_size(out.size());
  return out;
}

std::string py_percent_format(Interpreter& interp, const std::string& fmt, const Value& args) {
  ValueList positional;
  const bool mapping = args.is_dict();
  if (args.is_tuple())
    positional = args.as_list();
  else if (!mapping)
    positional.push_back(args);
  size_t next = 0;
  bool used_mapping = false;
  std::string out;
  for (size_t i = 0; i < fmt.size(); ++i) {
    if (fmt[i] != '%') {
      out.push_back(fmt[i]);
      continue;
    }
    if (++i >= fmt.size()) interp.fail("incomplete format");
    Value arg;
    bool have_arg = false;
    if (fmt[i] == '(') {
      const size_t close = fmt.find(')', i);
      if (close == std::string::npos) interp.fail("incomplete format key");
      if (!mapping) interp.fail("format requires a mapping");
      const Value* v = args.as_dict().find(std::string_view(fmt).substr(i + 1, close - i - 1));
      if (!v) interp.fail("KeyError: '" + fmt.substr(i + 1, close - i - 1) + "'");
      arg = *v;
      have_arg = true;
      used_mapping = true;
      i = close + 1;
    }
    std::string spec = "%";
    while (i < fmt.size() && std::string_view("-+ 0#").find(fmt[i]) != std::string_view::npos)
      spec.push_back(fmt[i++]);
    while (i < fmt.size() && fmt[i] >= '0' && fmt[i] <= '9' && spec.size() < 8) spec.push_back(fmt[i++]);
    if (i < fmt.size() && fmt[i] == '.') {
      spec.push_back(fmt[i++]);
      while (i < fmt.size() && fmt[i] >= '0' && fmt[i] <= '9' && spec.size() < 12) spec.push_back(fmt[i++]);
    }
    if (i >= fmt.size()) interp.fail("incomplete format");
    const char conv = fmt[i];
    if (conv == '%') {
      out.push_back('%');
      continue;
    }
    if (!have_arg) {
      if (mapping) {
        arg = args;
      } else {
        if (next >= positional.size()) interp.fail("not enough arguments for format string");
        arg = positional[next++];
      }
    }
    char buf[512];
    switch (conv) {
      case 's':
      case 'r':
      case 'a': {
        const std::string text = conv == 's' ? arg.str() : arg.repr();
        spec.push_back('s');
        if (spec == "%s") {
          out += text;
        } else {
          std::snprintf(buf, sizeof(buf), spec.c_str(), text.c_str());
          out += buf;
        }
        break;
      }
      case 'd':
      case 'i':
      case 'x':
      case 'X':
      case 'o':
      case 'c': {
        if (!arg.is_number())
          interp.fail(std::string("%") + conv + " format: a real number is required, not " + arg.type_name());
        const double d = arg.as_double();
        if (arg.is_float() && (std::isnan(d) || std::isinf(d) || std::fabs(d) > 9e18))
          interp.fail("cannot convert float to integer");
        const long long v = arg.is_float() ? static_cast<long long>(d) : static_cast<long long>(arg.as_int());
        if (conv == 'c') {
          append_utf8(out, static_cast<char32_t>(v));
          break;
        }
        spec += "ll";
        spec.push_back(conv == 'i' ? 'd' : conv);
        std::snprintf(buf, sizeof(buf), spec.c_str(), v);
        out += buf;
        break;
      }
      case 'f':
      case 'F':
      case 'e':
      case 'E':
      case 'g':
      case 'G': {
        if (!arg.is_number()) interp.fail(std::string("must be real number, not ") + arg.type_name());
        spec.push_back(conv);
        std::snprintf(buf, sizeof(buf), spec.c_str(), arg.as_double());
        out += buf;
        break;
      }
      default:
        interp.fail(std::string("unsupported format character '") + conv + "'");
    }
    interp.check_size(out.size());
  }
  if (!mapping && next < positional.size())
    interp.fail("not all arguments converted during string formatting");
  (void)used_mapping;
  return out;
}

const std::string& str_arg(Interpreter& interp, const Value* v, const char* method) {
  if (!v) interp.fail(std::string(method) + "() missing a required argument");
  if (!v->is_string()) {
    if (v->is_undefined()) interp.fail_undefined(*v);
    interp.fail(std::string(method) + "() argument must be str, not " + v->type_name());
  }
  return v->as_string();
}

int64_t int_arg(Interpreter& interp, const Value& v, const char* method) {
  if (v.is_int() || v.is_bool()) return v.as_int();
  interp.fail(std::string(method) + "() argument must be an integer, not " + v.type_name());
}

namespace {

size_t cp_index(const std::string& s, size_t byte_pos) {
  return utf8_length(std::string_view(s).substr(0, byte_pos));
}

ValueList split_whitespace(const std::string& s, int64_t maxsplit, bool from_right) {
  std::u32string cps = decode_utf8(s);
  ValueList parts;
  if (!from_right) {
    size_t i = 0;
    while (true) {
      while (i < cps.size() && is_py_space(cps[i])) ++i;
      if (i >= cps.size()) break;
      if (maxsplit >= 0 && static_cast<int64_t>(parts.size()) >= maxsplit) {
        parts.push_back(Value::string(encode_utf8(std::u32string_view(cps).substr(i))));
        break;
      }
      size_t j = i;
      while (j < cps.size() && !is_py_space(cps[j])) ++j;
      parts.push_back(Value::string(encode_utf8(std::u32string_view(cps).substr(i, j - i))));
      i = j;
    }
    return parts;
  }
  size_t e = cps.size();
  while (true) {
    while (e > 0 && is_py_space(cps[e - 1])) --e;
    if (e == 0) break;
    if (maxsplit >= 0 && static_cast<int64_t>(parts.size()) >= maxsplit) {
      parts.push_back(Value::string(encode_utf8(std::u32string_view(cps).substr(0, e))));
      break;
    }
    size_t b = e;
    while (b > 0 && !is_py_space(cps[b - 1])) --b;
    parts.push_back(Value::string(encode_utf8(std::u32string_view(cps).substr(b, e - b))));
    e = b;
  }
  std::reverse(parts.begin(), parts.end());
  return parts;
}

ValueList split_sep(const std::string& s, const std::string& sep, int64_t maxsplit, bool from_right) {
  ValueList parts;
  if (!from_right) {
    size_t pos = 0;
    while (maxsplit < 0 || static_cast<int64_t>(parts.size()) < maxsplit) {
      const size_t hit = s.find(sep, pos);
      if (hit == std::string::npos) break;
      parts.push_back(Value::string(s.substr(pos, hit - pos)));
      pos = hit + sep.size();
    }
    parts.push_back(Value::string(s.substr(pos)));
    return parts;
  }
  size_t end = s.size();
  while (maxsplit < 0 || static_cast<int64_t>(parts.size()) < maxsplit) {
    if (end < sep.size()) break;
    const size_t hit = s.rfind(sep, end - sep.size());
    if (hit == std::string::npos) break;
    parts.push_back(Value::string(s.substr(hit + sep.size(), end - hit - sep.size())));
    end = hit;
  }
  parts.push_back(Value::string(s.substr(0, end)));
  std::reverse(parts.begin(), parts.end());
  return parts;
}

bool is_cased(char32_t c) {
  return to_upper_cp(c) != c || to_lower_cp(c) != c;
}

std::string py_title(const std::string& s) {
  std::u32string cps = decode_utf8(s);
  bool prev_cased = false;
  for (char32_t& c : cps) {
    if (is_cased(c)) {
      c = prev_cased ? to_lower_cp(c) : to_upper_cp(c);
      prev_cased = true;
    } else {
      prev_cased = false;
    }
  }
  return encode_utf8(cps);
}

// str.format with {} / {0} / {name} fields (optionally !s / !r); no format specs.
std::string py_format(Interpreter& interp, const std::string& fmt, CallArgs& args) {
  std::string out;
  size_t auto_index = 0;
  for (size_t i = 0; i < fmt.size(); ++i) {
    const char c = fmt[i];
    if (c == '{' && i + 1 < fmt.size() && fmt[i + 1] == '{') {
      out.push_back('{');
      ++i;
    } else if (c == '}' && i + 1 < fmt.size() && fmt[i + 1] == '}') {
      out.push_back('}');
      ++i;
    } else if (c == '{') {
      const size_t close = fmt.find('}', i);
      if (close == std::string::npos) interp.fail("Single '{' encountered in format string");
      std::string field = fmt.substr(i + 1, close - i - 1);
      char conversion = 0;
      const size_t bang = field.find('!');
      if (bang != std::string::npos) {
        conversion = bang + 1 < field.size() ? field[bang + 1] : 0;
        field.resize(bang);
      }
      if (field.find(':') != std::string::npos)
        interp.fail("format specifications are not supported in str.format");
      Value v;
      if (field.empty()) {
        if (auto_index >= args.positional.size())
          interp.fail("Replacement index out of range for positional args");
        v = args.positional[auto_index++];
      } else if (std::all_of(field.begin(), field.end(), [](char d) { return d >= '0' && d <= '9'; })) {
        const size_t idx = field.size() < 9 ? static_cast<size_t>(std::stoul(field)) : SIZE_MAX;
        if (idx >= args.positional.size()) interp.fail("Replacement index out of range for positional args");
        v = args.positional[idx];
      } else {
        const Value* kw = args.get(SIZE_MAX, field);
        if (!kw) interp.fail("KeyError: '" + field + "'");
        v = *kw;
      }
      out += conversion == 'r' ? v.repr() : v.str();
      interp.check_size(out.size());
      i = close;
    } else if (c == '}') {
      interp.fail("Single '}' encountered in format string");
    } else {
      out.push_back(c);
    }
  }
  return out;
}

Value pad(Interpreter& interp, const std::string& s, CallArgs& args, const char* method, int align) {
  const int64_t width = int_arg(interp, args.get_or(0, "width", Value::integer(0)), method);
  const Value fill_v = args.get_or(1, "fillchar", Value::string(" "));
  const std::string fill = fill_v.str();
  if (utf8_length(fill) != 1)
    interp.fail(std::string(method) + "() fill character must be exactly one character");
  const int64_t len = static_cast<int64_t>(utf8_length(s));
  if (width <= len) return Value::string(s);
  interp.check_size(static_cast<size_t>(width) * fill.size());
  const int64_t total = width - len;
  int64_t left = align < 0 ? 0 : align > 0 ? total : total / 2 + (total & width & 1);
  std::string out;
  for (int64_t i = 0; i < left; ++i) out += fill;
  out += s;
  for (int64_t i = left; i < total; ++i) out += fill;
  return Value::string(std::move(out));
}

bool all_chars(const std::string& s, bool (*pred)(char32_t)) {
  const std::u32string cps = decode_utf8(s);
  if (cps.empty()) return false;
  for (char32_t c : cps) {
    if (!pred(c)) return false;
  }
  return true;
}

Value string_method(Interpreter& interp, const std::string& s, const std::string& name, CallArgs& args) {
  auto affix = [&](bool prefix) {
    const Value* arg = args.get(0, prefix ? "prefix" : "suffix");
    if (!arg) interp.fail(name + "() takes at least 1 argument (0 given)");
    ValueList options = arg->is_tuple() ? arg->as_list() : ValueList{*arg};
    for (const Value& o : options) {
      const std::string& a = str_arg(interp, &o, name.c_str());
      if (a.size() <= s.size() &&
          (prefix ? s.compare(0, a.size(), a) == 0 : s.compare(s.size() - a.size(), a.size(), a) == 0)) {
        return Value::boolean(true);
      }
    }
    return Value::boolean(false);
  };
  if (name == "startswith") return affix(true);
  if (name == "endswith") return affix(false);
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    args.check(name.c_str(), {"chars"});
    const Value* chars = args.get(0, "chars");
    if (chars && chars->is_none()) chars = nullptr;
    if (chars) str_arg(interp, chars, name.c_str());
    return Value::string(py_strip(s, chars, name != "rstrip", name != "lstrip"));
  }
  if (name == "split" || name == "rsplit") {
    args.check(name.c_str(), {"sep", "maxsplit"});
    const Value sep = args.get_or(0, "sep", Value::none());
    const int64_t maxsplit = int_arg(interp, args.get_or(1, "maxsplit", Value::integer(-1)), name.c_str());
    if (sep.is_none()) return Value::list(split_whitespace(s, maxsplit, name == "rsplit"));
    const std::string& sep_text = str_arg(interp, &sep, name.c_str());
    if (sep_text.empty()) interp.fail("empty separator");
    return Value::list(split_sep(s, sep_text, maxsplit, name == "rsplit"));
  }
  if (name == "splitlines") {
    ValueList lines;
    for (const Value& v : split_sep(
             py_replace(interp, py_replace(interp, s, "\r\n", "\n", -1), "\r", "\n", -1), "\n", -1, false)) {
      lines.push_back(v);
    }
    if (!lines.empty() && lines.back().as_string().empty()) lines.pop_back();
    return Value::list(std::move(lines));
  }
  if (name == "replace") {
    args.check("replace", {"old", "new", "count"});
    const std::string& old_text = str_arg(interp, args.get(0, "old"), "replace");
    const std::string& new_text = str_arg(interp, args.get(1, "new"), "replace");
    const int64_t count = int_arg(interp, args.get_or(2, "count", Value::integer(-1)), "replace");
    return Value::string(py_replace(interp, s, old_text, new_text, count));
  }
  if (name == "upper") return Value::string(py_upper(s));
  if (name == "lower" || name == "casefold") return Value::string(py_lower(s));
  if (name == "title") return Value::string(py_title(s));
  if (name == "capitalize") return Value::string(py_capitalize(s));
  if (name == "find" || name == "rfind" || name == "index" || name == "rindex") {
    const std::string& sub = str_arg(interp, args.get(0, "sub"), name.c_str());
    const size_t hit = (name == "find" || name == "index") ? s.find(sub) : s.rfind(sub);
    if (hit == std::string::npos) {
      if (name == "index" || name == "rindex") interp.fail("substring not found");
      return Value::integer(-1);
    }
    return Value::integer(static_cast<int64_t>(cp_index(s, hit)));
  }
  if (name == "count") {
    const std::string& sub = str_arg(interp, args.get(0, "sub"), "count");
    if (sub.empty()) return Value::integer(static_cast<int64_t>(utf8_length(s)) + 1);
    int64_t n = 0;
    for (size_t p = s.find(sub); p != std::string::npos; p = s.find(sub, p + sub.size())) ++n;
    return Value::integer(n);
  }
  if (name == "join") {
    const Value* items = args.get(0, "iterable");
    if (!items) interp.fail("join() takes exactly one argument");
    std::string out;
    bool first = true;
    for (const Value& item : interp.iterate(*items)) {
      if (!item.is_string())
        interp.fail(std::string("sequence item: expected str instance, ") + item.type_name() + " found");
      if (!first) out += s;
      first = false;
      out += item.as_string();
      interp.check_size(out.size());
    }
    return Value::string(std::move(out));
  }
  if (name == "format") return Value::string(py_format(interp, s, args));
  if (name == "isdigit" || name == "isnumeric" || name == "isdecimal")
    return Value::boolean(all_chars(s, is_digit_cp));
  if (name == "isalpha") return Value::boolean(all_chars(s, is_alpha_cp));
  if (name == "isalnum") {
    return Value::boolean(all_chars(s, [](char32_t c) { return is_alpha_cp(c) || is_digit_cp(c); }));
  }
  if (name == "isspace") return Value::boolean(all_chars(s, is_py_space));
  if (name == "isupper" || name == "islower") {
    const std::u32string cps = decode_utf8(s);
    bool any_cased = false;
    for (char32_t c : cps) {
      if (!is_cased(c)) continue;
      any_cased = true;
      if (name == "isupper" ? to_upper_cp(c) != c : to_lower_cp(c) != c) return Value::boolean(false);
    }
    return Value::boolean(any_cased);
  }
  if (name == "center") return pad(interp, s, args, "center", 0);
  if (name == "ljust") return pad(interp, s, args, "ljust", -1);
  if (name == "rjust") return pad(interp, s, args, "rjust", 1);
  if (name == "zfill") {
    const int64_t width = int_arg(interp, args.get_or(0, "width", Value::integer(0)), "zfill");
    const int64_t len = static_cast<int64_t>(utf8_length(s));
    if (width <= len) return Value::string(s);
    interp.check_size(static_cast<size_t>(width));
    const size_t sign = !s.empty() && (s[0] == '+' || s[0] == '-') ? 1 : 0;
    return Value::string(s.substr(0, sign) + std::string(static_cast<size_t>(width - len), '0') +
                         s.substr(sign));
  }
  if (name == "partition" || name == "rpartition") {
    const std::string& sep = str_arg(interp, args.get(0, "sep"), name.c_str());
    if (sep.empty()) interp.fail("empty separator");
    const size_t hit = name == "partition" ? s.find(sep) : s.rfind(sep);
    if (hit == std::string::npos) {
      return name == "partition"
                 ? Value::list({Value::string(s), Value::string(""), Value::string("")}, true)
                 : Value::list({Value::string(""), Value::string(""), Value::string(s)}, true);
    }
    return Value::list(
        {Value::string(s.substr(0, hit)), Value::string(sep), Value::string(s.substr(hit + sep.size()))},
        true);
  }
  if (name == "removeprefix" || name == "removesuffix") {
    const std::string& a =
        str_arg(interp, args.get(0, name == "removeprefix" ? "prefix" : "suffix"), name.c_str());
    if (name == "removeprefix" && s.compare(0, a.size(), a) == 0) return Value::string(s.substr(a.size()));
    if (name == "removesuffix" && !a.empty() && a.size() <= s.size() &&
        s.compare(s.size() - a.size(), a.size(), a) == 0) {
      return Value::string(s.substr(0, s.size() - a.size()));
    }
    return Value::string(s);
  }
  interp.fail("'str' object has no attribute '" + name + "'");
}

Value dict_method(Interpreter& interp, const Value& self, const std::string& name, CallArgs& args) {
  const Dict& d = self.as_dict();
  if (name == "get") {
    args.check("get", {"key", "default"});
    const Value* key = args.get(0, "key");
    if (!key) interp.fail("get expected at least 1 argument, got 0");
    if (const Value* v = d.find(*key)) return *v;
    return args.get_or(1, "default", Value::none());
  }
  ValueList out;
  for (const auto& [k, v] : d.items) {
    if (name == "items")
      out.push_back(Value::list({k, v}, true));
    else if (name == "keys")
      out.push_back(k);
    else
      out.push_back(v);
  }
  if (name == "copy") return self;
  return Value::list(std::move(out));
}

Value list_method(Interpreter& interp, const Value& self, const std::string& name, CallArgs& args) {
  const ValueList& items = self.as_list();
  if (name == "copy") return Value::list(items);
  const Value* x = args.get(0, "value");
  if (!x) interp.fail(name + "() takes exactly one argument (0 given)");
  int64_t n = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    if (!values_equal(items[i], *x)) continue;
    if (name == "index") return Value::integer(static_cast<int64_t>(i));
    ++n;
  }
  if (name == "index") interp.fail(x->repr() + " is not in list");
  return Value::integer(n);
}

class MethodCallable : public Callable {
 public:
  MethodCallable(Value self, std::string name) : self_(std::move(self)), name_(std::move(name)) {}
  Value call(Interpreter& interp, CallArgs& args) override {
    if (self_.is_string()) return string_method(interp, self_.as_string(), name_, args);
    if (self_.is_dict()) return dict_method(interp, self_, name_, args);
    return list_method(interp, self_, name_, args);
  }
  std::string name() const override { return std::string(self_.type_name()) + "." + name_; }

 private:
  Value self_;
  std::string name_;
};

bool in_list(const std::string& name, std::initializer_list<const char*> names) {
  for (const char* n : names) {
    if (name == n) return true;
  }
  return false;
}

}  // namespace

Value find_method(Interpreter& interp, const Value& obj, const std::string& name) {
  (void)interp;
  bool known = false;
  bool unsafe = false;
  if (obj.is_string()) {
    known = in_list(
        name, {"startswith",   "endswith",    "strip",     "lstrip",  "rstrip",   "split",     "rsplit",
               "splitlines",   "replace",     "upper",     "lower",   "casefold", "title",     "capitalize",
               "find",         "rfind",       "index",     "rindex",  "count",    "join",      "format",
               "isdigit",      "isnumeric",   "isdecimal", "isalpha", "isalnum",  "isspace",   "isupper",
               "islower",      "center",      "ljust",     "rjust",   "zfill",    "partition", "rpartition",
               "removeprefix", "removesuffix"});
  } else if (obj.is_dict()) {
    known = in_list(name, {"get", "items", "keys", "values", "copy"});
    unsafe = in_list(name, {"pop", "popitem", "setdefault", "update", "clear"});
  } else if (obj.is_list()) {
    known = in_list(name, {"index", "count"}) || (!obj.is_tuple() && name == "copy");
    unsafe = !obj.is_tuple() &&
             in_list(name, {"append", "extend", "insert", "pop", "remove", "reverse", "sort", "clear"});
  }
  if (unsafe) {
    return Value::undefined("access to attribute '" + name + "' of '" + obj.type_name() +
                            "' object is unsafe.");
  }
  if (!known) return Value();
  return Value::callable(std::make_shared<MethodCallable>(obj, name));
}

}  // namespace nibble::tokenizer::jinja
