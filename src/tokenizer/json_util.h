// Checked accessors for tokenizer.json fields: every failure names the field at fault.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "base/status.h"
#include "tokenizer/regex.h"

namespace nibble::tokenizer {

// How deeply Sequence components may nest (real files use one level).
inline constexpr int kMaxSequenceDepth = 8;

// spec["type"] of a component object.
base::Result<std::string> json_type(const nlohmann::json& spec, const std::string& where);
// A required string field.
base::Result<std::string> json_string(const nlohmann::json& spec, const char* key, const std::string& where);
// An optional string field (missing or null -> fallback).
base::Result<std::string> json_string_or(const nlohmann::json& spec, const char* key,
                                         const std::string& where, const std::string& fallback);
// An optional bool field (missing or null -> fallback).
base::Result<bool> json_bool(const nlohmann::json& spec, const char* key, const std::string& where,
                             bool fallback);
// An optional unsigned integer field (missing or null -> fallback).
base::Result<uint64_t> json_uint(const nlohmann::json& spec, const char* key, const std::string& where,
                                 uint64_t fallback);
// A required array field.
base::Result<const nlohmann::json*> json_array(const nlohmann::json& spec, const char* key,
                                               const std::string& where);
// spec["pattern"] given as {"String": s} (literal) or {"Regex": r}.
base::Result<Regex> json_pattern(const nlohmann::json& spec, const std::string& where);

}  // namespace nibble::tokenizer
