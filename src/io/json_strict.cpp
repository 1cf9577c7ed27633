#include "io/json_strict.h"

#include <utility>
#include <vector>

namespace nibble::io {
namespace {

using nlohmann::json;

// Deeper nesting than any checkpoint header or index needs; bounds memory and work on hostile input.
constexpr size_t kMaxDepth = 64;

// Builds the DOM like nlohmann's own parser, but stops at the first duplicate key or at nesting
// deeper than kMaxDepth (returning false from a SAX event aborts the parse at once).
class StrictBuilder final : public nlohmann::json_sax<json> {
 public:
  bool null() override { return add(json(nullptr)); }
  bool boolean(bool value) override { return add(json(value)); }
  bool number_integer(number_integer_t value) override { return add(json(value)); }
  bool number_unsigned(number_unsigned_t value) override { return add(json(value)); }
  bool number_float(number_float_t value, const string_t& /*text*/) override { return add(json(value)); }
  bool string(string_t& value) override { return add(json(std::move(value))); }
  bool binary(binary_t& /*value*/) override {
    error_ = "binary values are not JSON";
    return false;
  }
  bool start_object(std::size_t /*num_elems*/) override { return open(json::object()); }
  bool start_array(std::size_t /*num_elems*/) override { return open(json::array()); }
  bool end_object() override { return close(); }
  bool end_array() override { return close(); }

  bool key(string_t& key) override {
    if (stack_.size() == 1) top_key_ = key;
    if (stack_.back()->contains(key)) {
      error_ = "duplicate key " + quote_name(key);
      if (stack_.size() > 1) error_ += " inside " + quote_name(top_key_);
      return false;
    }
    pending_key_ = std::move(key);
    return true;
  }

  bool parse_error(std::size_t /*position*/, const std::string& /*last_token*/,
                   const nlohmann::detail::exception& ex) override {
    error_ = std::string("invalid JSON: ") + ex.what();
    return false;
  }

  json& root() { return root_; }
  const std::string& error() const { return error_; }

 private:
  // Puts `value` into the open container (or makes it the root); returns where it now lives.
  // Pointers on stack_ stay valid: a container only grows while it is the innermost open one.
  json* place(json&& value) {
    if (stack_.empty()) {
      root_ = std::move(value);
      return &root_;
    }
    json& parent = *stack_.back();
    if (parent.is_array()) {
      parent.push_back(std::move(value));
      return &parent.back();
    }
    auto& object = parent.get_ref<json::object_t&>();
    return &object.emplace(std::move(pending_key_), std::move(value)).first->second;
  }
  bool add(json&& value) {
    place(std::move(value));
    return true;
  }
  bool open(json&& container) {
    if (stack_.size() >= kMaxDepth) {
      error_ = "nesting deeper than " + std::to_string(kMaxDepth) + " levels";
      return false;
    }
    stack_.push_back(place(std::move(container)));
    return true;
  }
  bool close() {
    stack_.pop_back();
    return true;
  }

  json root_;
  std::vector<json*> stack_;  // open containers, innermost last
  std::string pending_key_;
  std::string top_key_;
  std::string error_;
};

}  // namespace

base::Result<nlohmann::json> parse_json_strict(std::string_view text, const std::string& what) {
  // nlohmann's lexer takes a NUL byte as the end of input and would ignore whatever follows;
  // raw NUL is never valid JSON, so reject it up front.
  const size_t nul = text.find('\0');
  if (nul != std::string_view::npos) {
    return base::corrupt(what + ": invalid JSON: NUL byte at offset " + std::to_string(nul));
  }
  StrictBuilder builder;
  bool ok = false;
  try {
    ok = json::sax_parse(text.begin(), text.end(), &builder);
  } catch (const json::exception& e) {
    return base::corrupt(what + ": invalid JSON: " + e.what());
  }
  if (!ok) {
    return base::corrupt(what + ": " + (builder.error().empty() ? "invalid JSON" : builder.error()));
  }
  return std::move(builder.root());
}

std::string quote_name(std::string_view text) {
  constexpr size_t kMaxBytes = 200;
  if (text.size() <= kMaxBytes) return "\"" + std::string(text) + "\"";
  return "\"" + std::string(text.substr(0, kMaxBytes)) + "...\"";
}

}  // namespace nibble::io
