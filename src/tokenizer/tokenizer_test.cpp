// Unit tests on small synthetic inputs. Expected values are the examples documented in Hugging
// Face tokenizers (split behaviours, Metaspace, Digits, Whitespace, ByteFallback), Rust's
// from_utf8_lossy rules and the Unicode normalization forms. The golden comparison against real
// tokenizers lives in tests/tokenizer_golden_test.cpp.
#include "tokenizer/tokenizer.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "tokenizer/decoder.h"
#include "tokenizer/incremental_detokenizer.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/unicode.h"

namespace nibble::tokenizer {
namespace {

using nlohmann::json;

TEST(Unicode, LossyMatchesRust) {
  // Rust's from_utf8_lossy replaces each maximal invalid subpart by one U+FFFD.
  EXPECT_EQ(utf8_lossy("a\xF0\x9F\x98"), "a\xEF\xBF\xBD");
  EXPECT_EQ(utf8_lossy("\xC0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(utf8_lossy("\xE0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(utf8_lossy("\xED\xA0\x80x"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBDx");
  EXPECT_EQ(utf8_lossy("\xE6\x97"), "\xEF\xBF\xBD");
  EXPECT_EQ(find_invalid_utf8("ok \xE6\x97\xA5 \xFF"), 7u);
  EXPECT_EQ(find_invalid_utf8("\xF4\x90\x80\x80"), 0u);  // above U+10FFFF
  EXPECT_EQ(find_invalid_utf8("ok"), std::string_view::npos);
}

TEST(Unicode, ByteLevelAlphabet) {
  EXPECT_EQ(byte_to_char(' '), char32_t{0x120});   // "Ġ"
  EXPECT_EQ(byte_to_char('\n'), char32_t{0x10A});  // "Ċ"
  EXPECT_EQ(byte_to_char('a'), char32_t{'a'});
  for (int b = 0; b < 256; ++b) EXPECT_EQ(char_to_byte(byte_to_char(static_cast<uint8_t>(b))), b);
}

std::vector<std::string> pre_tokenize(const json& spec, const std::string& text) {
  auto parsed = parse_pre_tokenizer(spec, "test");
  EXPECT_TRUE(parsed.ok()) << parsed.status().message();
  if (!parsed.ok()) return {};
  std::vector<Piece> pieces{Piece{text, true}};
  EXPECT_TRUE(parsed->pre_tokenizer->pre_tokenize(&pieces).ok());
  std::vector<std::string> out;
  for (const Piece& p : pieces) out.push_back(p.text);
  return out;
}

json split_on_dash(const char* behavior, bool invert = false) {
  return json{{"type", "Split"}, {"pattern", {{"String", "-"}}}, {"behavior", behavior}, {"invert", invert}};
}

TEST(PreTokenizer, SplitBehaviorsAsDocumented) {
  // The examples in tokenizers' NormalizedString::split documentation (empty pieces are dropped).
  const std::string text = "the-final--countdown";
  using V = std::vector<std::string>;
  EXPECT_EQ(pre_tokenize(split_on_dash("Removed"), text), (V{"the", "final", "countdown"}));
  EXPECT_EQ(pre_tokenize(split_on_dash("Isolated"), text), (V{"the", "-", "final", "-", "-", "countdown"}));
  EXPECT_EQ(pre_tokenize(split_on_dash("MergedWithPrevious"), text), (V{"the-", "final-", "-", "countdown"}));
  EXPECT_EQ(pre_tokenize(split_on_dash("MergedWithNext"), text), (V{"the", "-final", "-", "-countdown"}));
  EXPECT_EQ(pre_tokenize(split_on_dash("Contiguous"), text), (V{"the", "-", "final", "--", "countdown"}));
  EXPECT_EQ(pre_tokenize(split_on_dash("Removed", true), text), (V{"-", "-", "-"}));
}

TEST(PreTokenizer, RegexSplitWithLookahead) {
  // GPT-2 style: trailing spaces before a word stay apart from it.
  const json spec = {
      {"type", "Split"}, {"pattern", {{"Regex", R"( ?\p{L}+|\s+(?!\S)|\s+)"}}}, {"behavior", "Isolated"}};
  EXPECT_EQ(pre_tokenize(spec, "a   b"), (std::vector<std::string>{"a", "  ", " b"}));
}

TEST(PreTokenizer, WhitespaceClassIsUnicodeWhiteSpace) {
  // Oniguruma's \s includes U+0085 (NEXT LINE), which PCRE2's UCP \s does not; the pattern is
  // rewritten so that both agree with the White_Space property.
  const json spec = {{"type", "Split"}, {"pattern", {{"Regex", R"(\s+|[^\s]+)"}}}, {"behavior", "Isolated"}};
  EXPECT_EQ(pre_tokenize(spec, "a\xC2\x85 b"), (std::vector<std::string>{"a", "\xC2\x85 ", "b"}));
  // ... and excludes U+180E, which PCRE2 counts as horizontal space.
  EXPECT_EQ(pre_tokenize(spec, "a\xE1\xA0\x8E b"), (std::vector<std::string>{"a\xE1\xA0\x8E", " ", "b"}));
  const json literal = {{"type", "Split"}, {"pattern", {{"String", "\\s"}}}, {"behavior", "Isolated"}};
  EXPECT_EQ(pre_tokenize(literal, "x\\sy"), (std::vector<std::string>{"x", "\\s", "y"}));
}

TEST(PreTokenizer, DocumentedComponents) {
  using V = std::vector<std::string>;
  EXPECT_EQ(
      pre_tokenize({{"type", "Metaspace"}, {"replacement", "\xE2\x96\x81"}, {"prepend_scheme", "always"}},
                   "Hey friend!"),
      (V{"\xE2\x96\x81Hey",
         "\xE2\x96\x81"
         "friend!"}));
  EXPECT_EQ(pre_tokenize({{"type", "Digits"}, {"individual_digits", true}}, "Call 123 please"),
            (V{"Call ", "1", "2", "3", " please"}));
  EXPECT_EQ(pre_tokenize({{"type", "Digits"}, {"individual_digits", false}}, "Call 123 please"),
            (V{"Call ", "123", " please"}));
  EXPECT_EQ(pre_tokenize({{"type", "Whitespace"}}, "Hey friend!"), (V{"Hey", "friend", "!"}));
  EXPECT_EQ(pre_tokenize({{"type", "WhitespaceSplit"}}, "Hey friend!"), (V{"Hey", "friend!"}));
  EXPECT_EQ(pre_tokenize({{"type", "Punctuation"}}, "Hey, you!"), (V{"Hey", ",", " you", "!"}));
}

TEST(Normalizer, UnicodeFormsAndEdits) {
  auto run = [](const json& spec, std::string text) {
    auto n = parse_normalizer(spec, "test");
    EXPECT_TRUE(n.ok()) << n.status().message();
    (*n)->normalize(&text);
    return text;
  };
  EXPECT_EQ(run({{"type", "NFC"}}, "cafe\xCC\x81"), "caf\xC3\xA9");  // e + U+0301 -> é
  EXPECT_EQ(run({{"type", "NFKC"}}, "\xEF\xAC\x81"), "fi");          // U+FB01 ligature
  EXPECT_EQ(run({{"type", "NFD"}}, "caf\xC3\xA9"), "cafe\xCC\x81");
  EXPECT_EQ(run({{"type", "Prepend"}, {"prepend", "_"}}, ""), "");  // only non-empty input
  EXPECT_EQ(run({{"type", "Prepend"}, {"prepend", "_"}}, "a"), "_a");
  EXPECT_EQ(run({{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "_"}}, "a b  c"), "a_b__c");
  EXPECT_EQ(run({{"type", "Sequence"}, {"normalizers", json::array({json{{"type", "Lowercase"}}})}}, "AbC"),
            "abc");
}

TEST(Decoder, ByteFallbackFuseStrip) {
  auto parsed = parse_decoder(
      json{{"type", "Sequence"},
           {"decoders", json::array({json{{"type", "ByteFallback"}}, json{{"type", "Fuse"}},
                                     json{{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}})}},
      "test");
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  // A valid byte run becomes its text; an invalid one becomes one U+FFFD per byte.
  std::vector<std::string> tokens{" <0x61>", "<0xE6>", "<0x97>", "<0xA5>", "x", "<0xE6>", "<0x97>", "y"};
  (*parsed)->decode_chain(&tokens);
  ASSERT_EQ(tokens.size(), 1u);
  EXPECT_EQ(tokens[0], "<0x61>\xE6\x97\xA5x\xEF\xBF\xBD\xEF\xBF\xBDy");
}

// A tiny byte-level tokenizer: every byte is a token, plus the merges "a b" -> "ab", "ab c" -> "abc".
std::string tiny_tokenizer_json(const json& extra_added = json::array()) {
  json vocab = json::object();
  for (int b = 0; b < 256; ++b) {
    std::string token;
    append_utf8(&token, byte_to_char(static_cast<uint8_t>(b)));
    vocab[token] = b;
  }
  vocab["ab"] = 256;
  vocab["abc"] = 257;
  json added =
      json::array({json{{"id", 258}, {"content", "<|end|>"}, {"special", true}, {"normalized", false}}});
  for (const auto& t : extra_added) added.push_back(t);
  json doc = {
      {"version", "1.0"},
      {"added_tokens", added},
      {"normalizer", nullptr},
      {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
      {"post_processor", nullptr},
      {"decoder", {{"type", "ByteLevel"}}},
      {"model",
       {{"type", "BPE"}, {"vocab", vocab}, {"merges", json::array({"a b", json::array({"ab", "c"})})}}}};
  return doc.dump();
}

TEST(Tokenizer, TinyByteLevelEncodeDecode) {
  auto tok = Tokenizer::from_json_string(tiny_tokenizer_json());
  ASSERT_TRUE(tok.ok()) << tok.status().message();
  auto ids = (*tok)->encode("abc ab<|end|>x", true);
  ASSERT_TRUE(ids.ok());
  // "abc" | " ab" (space is byte 32) | <|end|> | "x"
  EXPECT_EQ(*ids, (std::vector<uint32_t>{257, 32, 256, 258, 'x'}));
  EXPECT_EQ((*tok)->decode(*ids, false), "abc ab<|end|>x");
  EXPECT_EQ((*tok)->decode(*ids, true), "abc abx");
  EXPECT_EQ((*tok)->vocab_size(), 259u);
  EXPECT_EQ((*tok)->token_to_id("<|end|>"), 258u);
  EXPECT_EQ((*tok)->id_to_token(256), "ab");
  EXPECT_TRUE((*tok)->is_special(258));
}

TEST(Tokenizer, LongPiecesUseTheSameMerges) {
  // Pieces longer than the short-path limit go through the heap merger; results must agree.
  auto tok = Tokenizer::from_json_string(tiny_tokenizer_json());
  ASSERT_TRUE(tok.ok());
  std::string text;
  for (int i = 0; i < 100; ++i) text += "abc";
  auto ids = (*tok)->encode(text, false);
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(*ids, std::vector<uint32_t>(100, 257));
}

TEST(Tokenizer, AddedTokenStripAndSingleWord) {
  const json added = json::array(
      {json{{"id", 259}, {"content", "<m>"}, {"lstrip", true}, {"rstrip", true}, {"normalized", false}},
       json{{"id", 260}, {"content", "w"}, {"single_word", true}, {"normalized", false}}});
  auto tok = Tokenizer::from_json_string(tiny_tokenizer_json(added));
  ASSERT_TRUE(tok.ok()) << tok.status().message();
  // lstrip/rstrip swallow the spaces around <m>; "w" only matches as a whole word.
  auto ids = (*tok)->encode("a  <m>  b w xw", false);
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(*ids, (std::vector<uint32_t>{'a', 259, 'b', ' ', 260, ' ', 'x', 'w'}));
}

TEST(Tokenizer, InvalidUtf8NamesTheOffset) {
  auto tok = Tokenizer::from_json_string(tiny_tokenizer_json());
  ASSERT_TRUE(tok.ok());
  auto ids = (*tok)->encode("abc\xC3(", false);
  ASSERT_FALSE(ids.ok());
  EXPECT_NE(ids.status().message().find("byte offset 3"), std::string::npos) << ids.status().message();
}

TEST(Tokenizer, ErrorsNameTheComponent) {
  json doc = json::parse(tiny_tokenizer_json());
  doc["pre_tokenizer"] = {{"type", "BertPreTokenizer"}};
  auto tok = Tokenizer::from_json_string(doc.dump(), "x/tokenizer.json");
  ASSERT_FALSE(tok.ok());
  EXPECT_NE(tok.status().message().find("unsupported pre_tokenizer type \"BertPreTokenizer\""),
            std::string::npos)
      << tok.status().message();

  doc = json::parse(tiny_tokenizer_json());
  doc["model"]["type"] = "WordPiece";
  tok = Tokenizer::from_json_string(doc.dump());
  ASSERT_FALSE(tok.ok());
  EXPECT_NE(tok.status().message().find("\"WordPiece\""), std::string::npos);

  doc = json::parse(tiny_tokenizer_json());
  doc["model"]["merges"].push_back("zz q");
  tok = Tokenizer::from_json_string(doc.dump());
  ASSERT_FALSE(tok.ok());
  EXPECT_NE(tok.status().message().find("merges[2]"), std::string::npos) << tok.status().message();

  EXPECT_FALSE(Tokenizer::from_json_string("{not json").ok());
  EXPECT_FALSE(Tokenizer::from_json_string("[]").ok());
  EXPECT_FALSE(Tokenizer::from_dir("/nonexistent-dir").ok());
}

TEST(IncrementalDetokenizer, HoldsBackIncompleteCharacters) {
  auto tok = Tokenizer::from_json_string(tiny_tokenizer_json());
  ASSERT_TRUE(tok.ok());
  IncrementalDetokenizer detok(tok->get(), false);
  // "日" is E6 97 A5: nothing is emitted until the character is complete.
  EXPECT_EQ(detok.step('a'), "a");
  EXPECT_EQ(detok.step(0xE6), "");
  EXPECT_EQ(detok.step(0x97), "");
  EXPECT_EQ(detok.step(0xA5), "\xE6\x97\xA5");
  EXPECT_EQ(detok.step(0xE6), "");
  EXPECT_EQ(detok.flush(), "\xEF\xBF\xBD");  // the stream ended inside a character
}

TEST(Tokenizer, ConcurrentEncodesAgree) {
  auto tok = Tokenizer::from_json_string(tiny_tokenizer_json());
  ASSERT_TRUE(tok.ok());
  const std::string text = "abc abcab cab  \n\t abcabc xyz";
  const auto expected = (*tok)->encode(text, false).value();
  std::vector<std::thread> threads;
  std::vector<int> mismatches(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        if ((*tok)->encode(text, false).value() != expected) ++mismatches[static_cast<size_t>(t)];
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches, std::vector<int>(4, 0));
}

}  // namespace
}  // namespace nibble::tokenizer
