// JSON parsing for untrusted files: no exceptions escape, and duplicate object keys are an error
// (nlohmann::json silently keeps the last one, which would hide a tensor listed twice).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "base/status.h"

namespace nibble::io {

// Parses `text` as one JSON value (surrounding whitespace allowed, nesting at most 64 deep).
// Errors are kCorrupt and start with `what` (e.g. "model.safetensors: header"); a duplicate key
// names the key and the top-level key it sits under.
base::Result<nlohmann::json> parse_json_strict(std::string_view text, const std::string& what);

// `"text"` for an error message, cut to 200 bytes (names come from untrusted files).
std::string quote_name(std::string_view text);

}  // namespace nibble::io
