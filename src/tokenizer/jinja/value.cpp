#include "tokenizer/jinja/value.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

#include "tokenizer/jinja/utf8.h"

namespace nibble::tokenizer::jinja {

const Value* Dict::find(const Value& key) const {
  for (const auto& [k, v] : items) {
    if (values_equal(k, key)) return &v;
  }
  return nullptr;
}

const Value* Dict::find(std::string_view key) const {
  for (const auto& [k, v] : items) {
    if (k.is_string() && k.as_string() == key) return &v;
  }
  return nullptr;
}

void Dict::set(Value key, Value value) {
  for (auto& [k, v] : items) {
    if (values_equal(k, key)) {
      v = std::move(value);
      return;
    }
  }
  items.emplace_back(std::move(key), std::move(value));
}

const Value* Object::find(std::string_view name) const {
  for (const auto& [k, v] : attrs) {
    if (k == name) return &v;
  }
  return nullptr;
}

void Object::set(const std::string& name, Value value) {
  depth = std::max(depth, value.depth() + 1);
  for (auto& [k, v] : attrs) {
    if (k == name) {
      v = std::move(value);
      return;
    }
  }
  attrs.emplace_back(name, std::move(value));
}

bool Value::truthy() const {
  switch (kind_) {
    case Kind::kUndefined:
    case Kind::kNone:
      return false;
    case Kind::kBool:
    case Kind::kInt:
      return int_ != 0;
    case Kind::kFloat:
      return float_ != 0.0;
    case Kind::kString:
      return !as_string().empty();
    case Kind::kList:
      return !as_list().empty();
    case Kind::kDict:
      return !as_dict().items.empty();
    case Kind::kObject:
    case Kind::kCallable:
      return true;
  }
  return false;
}

const char* Value::type_name() const {
  switch (kind_) {
    case Kind::kUndefined:
      return "Undefined";
    case Kind::kNone:
      return "NoneType";
    case Kind::kBool:
      return "bool";
    case Kind::kInt:
      return "int";
    case Kind::kFloat:
      return "float";
    case Kind::kString:
      return "str";
    case Kind::kList:
      return int_ ? "tuple" : "list";
    case Kind::kDict:
      return "dict";
    case Kind::kObject:
      return as_object().type == Object::Type::kNamespace ? "Namespace" : "LoopContext";
    case Kind::kCallable:
      return "function";
  }
  return "object";
}

std::string python_float_repr(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  if (d == 0) return std::signbit(d) ? "-0.0" : "0.0";
  char buf[64];
  // Shortest round-trip digits in scientific form: "-1.2345e+02".
  auto res = std::to_chars(buf, buf + sizeof(buf), d, std::chars_format::scientific);
  std::string sci(buf, res.ptr);
  std::string sign;
  if (sci[0] == '-') {
    sign = "-";
    sci.erase(0, 1);
  }
  const size_t e_pos = sci.find('e');
  std::string digits = sci.substr(0, e_pos);
  digits.erase(std::remove(digits.begin(), digits.end(), '.'), digits.end());
  const int exp10 = std::atoi(sci.c_str() + e_pos + 1);
  // Python's repr: value = 0.d1d2... * 10^decpt; fixed notation when -4 < decpt <= 16.
  const int decpt = exp10 + 1;
  std::string out = sign;
  if (decpt > -4 && decpt <= 16) {
    if (decpt <= 0) {
      out += "0." + std::string(static_cast<size_t>(-decpt), '0') + digits;
    } else if (static_cast<size_t>(decpt) >= digits.size()) {
      out += digits + std::string(static_cast<size_t>(decpt) - digits.size(), '0') + ".0";
    } else {
      out += digits.substr(0, static_cast<size_t>(decpt)) + "." + digits.substr(static_cast<size_t>(decpt));
    }
    return out;
  }
  out += digits.substr(0, 1);
  if (digits.size() > 1) out += "." + digits.substr(1);
  char exp_buf[16];
  std::snprintf(exp_buf, sizeof(exp_buf), "e%c%02d", exp10 < 0 ? '-' : '+', std::abs(exp10));
  out += exp_buf;
  return out;
}

namespace {

void append_repr_string(std::string& out, const std::string& s) {
  const bool has_single = s.find('\'') != std::string::npos;
  const bool has_double = s.find('"') != std::string::npos;
  const char quote = (has_single && !has_double) ? '"' : '\'';
  out.push_back(quote);
  for (char32_t cp : decode_utf8(s)) {
    char buf[16];
    if (cp == static_cast<char32_t>(quote) || cp == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(cp));
    } else if (cp == '\n') {
      out += "\\n";
    } else if (cp == '\r') {
      out += "\\r";
    } else if (cp == '\t') {
      out += "\\t";
    } else if (cp < 0x20 || (cp >= 0x7F && cp <= 0xA0) || cp == 0xAD) {
      std::snprintf(buf, sizeof(buf), "\\x%02x", static_cast<unsigned>(cp));
      out += buf;
    } else if (cp >= 0xDC80 && cp <= 0xDCFF) {
      std::snprintf(buf, sizeof(buf), "\\udc%02x", static_cast<unsigned>(cp - 0xDC00));
      out += buf;
    } else if (cp == 0x2028 || cp == 0x2029) {
      std::snprintf(buf, sizeof(buf), "\\u%04x", static_cast<unsigned>(cp));
      out += buf;
    } else {
      append_utf8(out, cp);
    }
  }
  out.push_back(quote);
}

void append_repr(std::string& out, const Value& v, int depth) {
  if (depth > 200) {
    out += "...";
    return;
  }
  switch (v.kind()) {
    case Value::Kind::kString:
      append_repr_string(out, v.as_string());
      return;
    case Value::Kind::kList: {
      const bool tuple = v.is_tuple();
      out.push_back(tuple ? '(' : '[');
      const auto& items = v.as_list();
      for (size_t i = 0; i < items.size(); ++i) {
        if (i) out += ", ";
        append_repr(out, items[i], depth + 1);
      }
      if (tuple && items.size() == 1) out.push_back(',');
      out.push_back(tuple ? ')' : ']');
      return;
    }
    case Value::Kind::kDict: {
      out.push_back('{');
      bool first = true;
      for (const auto& [k, item] : v.as_dict().items) {
        if (!first) out += ", ";
        first = false;
        append_repr(out, k, depth + 1);
        out += ": ";
        append_repr(out, item, depth + 1);
      }
      out.push_back('}');
      return;
    }
    case Value::Kind::kObject: {
      if (v.as_object().type == Object::Type::kNamespace) {
        out += "<Namespace {";
        bool first = true;
        for (const auto& [k, item] : v.as_object().attrs) {
          if (!first) out += ", ";
          first = false;
          append_repr_string(out, k);
          out += ": ";
          append_repr(out, item, depth + 1);
        }
        out += "}>";
      } else {
        out += "<LoopContext>";
      }
      return;
    }
    default:
      out += v.str();
      return;
  }
}

}  // namespace

std::string Value::str() const {
  switch (kind_) {
    case Kind::kUndefined:
      return "";
    case Kind::kNone:
      return "None";
    case Kind::kBool:
      return int_ ? "True" : "False";
    case Kind::kInt:
      return std::to_string(int_);
    case Kind::kFloat:
      return python_float_repr(float_);
    case Kind::kString:
      return as_string();
    case Kind::kCallable:
      return "<function " + as_callable().name() + ">";
    default:
      return repr();
  }
}

std::string Value::repr() const {
  if (kind_ == Kind::kUndefined) return "Undefined";
  std::string out;
  append_repr(out, *this, 0);
  return out;
}

bool values_equal(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return a.as_double() == b.as_double();
    return a.as_int() == b.as_int();
  }
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Value::Kind::kUndefined:
    case Value::Kind::kNone:
      return true;
    case Value::Kind::kString:
      return a.as_string() == b.as_string();
    case Value::Kind::kList: {
      const auto& x = a.as_list();
      const auto& y = b.as_list();
      if (a.is_tuple() != b.is_tuple() || x.size() != y.size()) return false;
      for (size_t i = 0; i < x.size(); ++i) {
        if (!values_equal(x[i], y[i])) return false;
      }
      return true;
    }
    case Value::Kind::kDict: {
      const auto& x = a.as_dict().items;
      const auto& y = b.as_dict();
      if (x.size() != y.items.size()) return false;
      for (const auto& [k, v] : x) {
        const Value* other = y.find(k);
        if (!other || !values_equal(v, *other)) return false;
      }
      return true;
    }
    case Value::Kind::kObject:
      return &a.as_object() == &b.as_object();
    case Value::Kind::kCallable:
      return a.identity() == b.identity();
    default:
      return false;
  }
}

namespace {

void append_json_string(std::string& out, const std::string& s, bool ensure_ascii) {
  out.push_back('"');
  char buf[16];
  auto escape_unit = [&](unsigned unit) {
    std::snprintf(buf, sizeof(buf), "\\u%04x", unit);
    out += buf;
  };
  for (char32_t cp : decode_utf8(s)) {
    switch (cp) {
      case '"':
        out += "\\\"";
        continue;
      case '\\':
        out += "\\\\";
        continue;
      case '\n':
        out += "\\n";
        continue;
      case '\r':
        out += "\\r";
        continue;
      case '\t':
        out += "\\t";
        continue;
      case '\b':
        out += "\\b";
        continue;
      case '\f':
        out += "\\f";
        continue;
      default:
        break;
    }
    if (cp < 0x20) {
      escape_unit(static_cast<unsigned>(cp));
    } else if (ensure_ascii && cp >= 0x7F && cp != 0x7F) {
      if (cp >= 0x10000 && !(cp >= 0xDC80 && cp <= 0xDCFF)) {
        const char32_t v = cp - 0x10000;
        escape_unit(static_cast<unsigned>(0xD800 + (v >> 10)));
        escape_unit(static_cast<unsigned>(0xDC00 + (v & 0x3FF)));
      } else {
        escape_unit(static_cast<unsigned>(cp));
      }
    } else {
      append_utf8(out, cp);
    }
  }
  out.push_back('"');
}

std::string json_float(double d) {
  if (std::isnan(d)) return "NaN";
  if (std::isinf(d)) return d > 0 ? "Infinity" : "-Infinity";
  return python_float_repr(d);
}

struct JsonWriter {
  const JsonDumpOptions& opt;
  std::string& out;
  std::string& error;
  std::string item_sep;
  std::string key_sep;
  bool indented;

  void newline(int level) {
    out.push_back('\n');
    for (int i = 0; i < level; ++i) {
      if (!opt.indent_string.empty())
        out += opt.indent_string;
      else
        out.append(static_cast<size_t>(opt.indent), ' ');
    }
  }

  bool key_text(const Value& k, std::string& text) {
    switch (k.kind()) {
      case Value::Kind::kString:
        text = k.as_string();
        return true;
      case Value::Kind::kNone:
        text = "null";
        return true;
      case Value::Kind::kBool:
        text = k.as_bool() ? "true" : "false";
        return true;
      case Value::Kind::kInt:
        text = std::to_string(k.as_int());
        return true;
      case Value::Kind::kFloat:
        text = json_float(k.as_double());
        return true;
      default:
        error = std::string("keys must be str, int, float, bool or None, not ") + k.type_name();
        return false;
    }
  }

  bool write(const Value& v, int level) {
    if (level > 512) {
      error = "maximum nesting depth exceeded while serializing to JSON";
      return false;
    }
    switch (v.kind()) {
      case Value::Kind::kNone:
        out += "null";
        return true;
      case Value::Kind::kBool:
        out += v.as_bool() ? "true" : "false";
        return true;
      case Value::Kind::kInt:
        out += std::to_string(v.as_int());
        return true;
      case Value::Kind::kFloat:
        out += json_float(v.as_double());
        return true;
      case Value::Kind::kString:
        append_json_string(out, v.as_string(), opt.ensure_ascii);
        return true;
      case Value::Kind::kList: {
        const auto& items = v.as_list();
        if (items.empty()) {
          out += "[]";
          return true;
        }
        out.push_back('[');
        for (size_t i = 0; i < items.size(); ++i) {
          if (i) out += item_sep;
          if (indented) newline(level + 1);
          if (!write(items[i], level + 1)) return false;
        }
        if (indented) newline(level);
        out.push_back(']');
        return true;
      }
      case Value::Kind::kDict: {
        const auto& items = v.as_dict().items;
        if (items.empty()) {
          out += "{}";
          return true;
        }
        std::vector<std::pair<std::string, const Value*>> entries;
        entries.reserve(items.size());
        for (const auto& [k, item] : items) {
          std::string text;
          if (!key_text(k, text)) return false;
          entries.emplace_back(std::move(text), &item);
        }
        if (opt.sort_keys) {
          std::stable_sort(entries.begin(), entries.end(),
                           [](const auto& a, const auto& b) { return a.first < b.first; });
        }
        out.push_back('{');
        for (size_t i = 0; i < entries.size(); ++i) {
          if (i) out += item_sep;
          if (indented) newline(level + 1);
          append_json_string(out, entries[i].first, opt.ensure_ascii);
          out += key_sep;
          if (!write(*entries[i].second, level + 1)) return false;
        }
        if (indented) newline(level);
        out.push_back('}');
        return true;
      }
      default:
        error = std::string("Object of type ") + v.type_name() + " is not JSON serializable";
        return false;
    }
  }
};

}  // namespace

bool dump_json(const Value& value, const JsonDumpOptions& options, std::string& out, std::string& error) {
  const bool indented = options.indent >= 0 || !options.indent_string.empty();
  JsonWriter w{options, out, error, indented ? "," : ", ", ": ", indented};
  if (options.has_separators) {
    w.item_sep = options.item_separator;
    w.key_sep = options.key_separator;
  }
  return w.write(value, 0);
}

bool value_from_json(const nlohmann::ordered_json& json, Value& out, std::string& error, int max_depth) {
  if (max_depth < 0) {
    error = "JSON input nested too deeply";
    return false;
  }
  using J = nlohmann::ordered_json;
  switch (json.type()) {
    case J::value_t::null:
      out = Value::none();
      return true;
    case J::value_t::boolean:
      out = Value::boolean(json.get<bool>());
      return true;
    case J::value_t::number_integer:
      out = Value::integer(json.get<int64_t>());
      return true;
    case J::value_t::number_unsigned: {
      const auto u = json.get<uint64_t>();
      if (u > static_cast<uint64_t>(INT64_MAX)) {
        out = Value::number(static_cast<double>(u));
      } else {
        out = Value::integer(static_cast<int64_t>(u));
      }
      return true;
    }
    case J::value_t::number_float:
      out = Value::number(json.get<double>());
      return true;
    case J::value_t::string:
      out = Value::string(json.get<std::string>());
      return true;
    case J::value_t::array: {
      ValueList items;
      items.reserve(json.size());
      for (const auto& item : json) {
        Value v;
        if (!value_from_json(item, v, error, max_depth - 1)) return false;
        items.push_back(std::move(v));
      }
      out = Value::list(std::move(items));
      return true;
    }
    case J::value_t::object: {
      Dict d;
      d.items.reserve(json.size());
      for (const auto& [k, item] : json.items()) {
        Value v;
        if (!value_from_json(item, v, error, max_depth - 1)) return false;
        d.items.emplace_back(Value::string(k), std::move(v));
      }
      out = Value::dict(std::move(d));
      return true;
    }
    default:
      error = "unsupported JSON value (binary or discarded)";
      return false;
  }
}

}  // namespace nibble::tokenizer::jinja
