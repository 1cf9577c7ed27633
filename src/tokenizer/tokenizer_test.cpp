// Unit tests with small synthetic tokenizer.json documents. Expected values come from the
// tokenizers library's documented behaviour (see each test); the golden comparison against real
// tokenizers lives in tests/tokenizer_golden_test.cpp.
#include "tokenizer/tokenizer.h"

#include <gtest/gtest.h>

#include "tokenizer/incremental_detokenizer.h"
#include "tokenizer/unicode.h"

namespace nibble::tokenizer {
namespace {

TEST(Unicode, LossyMatchesRust) {
  // Rust's from_utf8_lossy replaces each maximal invalid subpart by one U+FFFD.
  EXPECT_EQ(utf8_lossy("a\xF0\x9F\x98"), "a\xEF\xBF\xBD");
  EXPECT_EQ(utf8_lossy("\xC0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(utf8_lossy("\xE0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(utf8_lossy("\xED\xA0\x80x"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBDx");
  EXPECT_EQ(utf8_lossy("\xE6\x97"), "\xEF\xBF\xBD");
  EXPECT_EQ(find_invalid_utf8("ok \xE6\x97\xA5 \xFF"), 7u);
  EXPECT_EQ(find_invalid_utf8("ok"), std::string_view::npos);
}

TEST(Unicode, ByteLevelAlphabet) {
  EXPECT_EQ(byte_to_char(' '), char32_t{0x120});   // "Ġ"
  EXPECT_EQ(byte_to_char('\n'), char32_t{0x10A});  // "Ċ"
  EXPECT_EQ(byte_to_char('a'), char32_t{'a'});
  for (int b = 0; b < 256; ++b) EXPECT_EQ(char_to_byte(byte_to_char(static_cast<uint8_t>(b))), b);
}

}  // namespace
}  // namespace nibble::tokenizer
