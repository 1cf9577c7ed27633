// UTF-8 helpers for Python's code-point view of strings (len, indexing, slicing, isspace).
#pragma once

#include <string>
#include <string_view>

namespace nibble::tokenizer::jinja {

// Decodes UTF-8 into code points. A byte that does not start a valid sequence becomes
// U+DC80+byte (Python's surrogateescape), so encode_utf8(decode_utf8(s)) == s for any bytes.
std::u32string decode_utf8(std::string_view text);
std::string encode_utf8(std::u32string_view code_points);
void append_utf8(std::string& out, char32_t cp);

// Number of code points (what Python's len() gives).
size_t utf8_length(std::string_view text);
bool is_ascii(std::string_view text);

// Python's str.isspace() for one code point.
bool is_py_space(char32_t cp);

// Simple (one-to-one) case mapping of one code point.
char32_t to_upper_cp(char32_t cp);
char32_t to_lower_cp(char32_t cp);
bool is_alpha_cp(char32_t cp);
bool is_digit_cp(char32_t cp);

}  // namespace nibble::tokenizer::jinja
