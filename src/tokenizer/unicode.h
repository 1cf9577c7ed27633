// UTF-8 and Unicode helpers for the tokenizer: validation, decoding, the GPT-2 byte-level alphabet,
// Rust-compatible lossy conversion and the character classes Hugging Face tokenizers relies on.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace nibble::tokenizer {

inline constexpr char32_t kReplacementChar = 0xFFFD;

// Byte offset of the first byte that does not start a well-formed UTF-8 sequence, or npos when
// `text` is valid UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF).
size_t find_invalid_utf8(std::string_view text);

// Decodes the code point at text[*pos] (which must be valid UTF-8) and advances *pos past it.
char32_t next_code_point(std::string_view text, size_t* pos);

// Number of bytes of the UTF-8 sequence that starts with lead byte `b` (1 for invalid leads).
inline size_t utf8_seq_len(uint8_t b) {
  if (b < 0x80) return 1;
  if ((b & 0xE0) == 0xC0) return 2;
  if ((b & 0xF0) == 0xE0) return 3;
  if ((b & 0xF8) == 0xF0) return 4;
  return 1;
}

void append_utf8(std::string* out, char32_t cp);

// Like Rust's String::from_utf8_lossy: every maximal invalid subpart becomes one U+FFFD.
std::string utf8_lossy(std::string_view bytes);

// GPT-2's reversible byte <-> printable code point alphabet used by the ByteLevel components.
char32_t byte_to_char(uint8_t b);
// The byte a byte-level character stands for, or -1 when `cp` is not in the alphabet.
int char_to_byte(char32_t cp);

// Rust's char::is_whitespace (the Unicode White_Space property).
bool is_white_space(char32_t cp);
// Rust regex's Unicode \w (approximated by general category: letters, marks, Nd, Nl, Pc, ZWJ/ZWNJ).
bool is_word_char(char32_t cp);
// Punctuation as tokenizers' Punctuation pre-tokenizer sees it: ASCII punctuation or general
// category P*, by the (older) Unicode tables tokenizers uses.
bool is_punctuation(char32_t cp);
// Unicode general category N*.
bool is_numeric(char32_t cp);

}  // namespace nibble::tokenizer
