// Compares nibble's tokenizer with goldens written by Hugging Face tokenizers
// (tests/conformance/gen_tokenizer_goldens.py): ids with and without special tokens, decoded text,
// skip_special_tokens, DecodeStream deltas, and decodes of random id sequences.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/file_util.h"
#include "tokenizer/incremental_detokenizer.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace nibble::tokenizer {
namespace {

constexpr int kMaxReported = 8;

std::string show(const std::string& text) {
  std::string out;
  for (const char c : text.substr(0, 120)) {
    if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string show_ids(const std::vector<uint32_t>& ids) {
  std::string out = "[";
  for (size_t i = 0; i < ids.size() && i < 60; ++i) out += (i ? "," : "") + std::to_string(ids[i]);
  return out + (ids.size() > 60 ? ",...]" : "]");
}

class TokenizerGolden : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    const std::string golden_path =
        std::string(NIBBLE_SOURCE_DIR) + "/tests/golden/tokenizers/" + GetParam() + ".json";
    auto text = base::read_file(golden_path);
    ASSERT_TRUE(text.ok()) << text.status().message();
    golden_ = nlohmann::json::parse(*text);
    const std::string source = golden_["source"];
    std::string dir;
    if (source.rfind("shared:", 0) == 0) {
      dir = std::string(NIBBLE_SHARED_DIR) + "/tokenizers/" + source.substr(7);
      if (!base::is_directory(dir)) GTEST_SKIP() << "shared tokenizer folder " << dir << " is absent";
    } else {
      dir = std::string(NIBBLE_SOURCE_DIR) + "/tests/golden/tokenizers/synthetic/" + source.substr(10);
    }
    // Loading a 200k-token vocabulary takes about a second: load each folder once per process.
    static std::map<std::string, std::shared_ptr<Tokenizer>> loaded;
    auto& slot = loaded[dir];
    if (!slot) {
      auto tok = Tokenizer::from_dir(dir);
      ASSERT_TRUE(tok.ok()) << tok.status().message();
      slot = std::move(tok.value());
    }
    tok_ = slot;
  }

  // Runs the incremental detokenizer; checks every delta is valid UTF-8 and, with check_total, that
  // the total (with flush) equals the full decode. Returns the per-step deltas.
  std::vector<std::string> stream(const std::vector<uint32_t>& ids, bool skip_special, bool check_total) {
    IncrementalDetokenizer detok(tok_.get(), skip_special);
    std::vector<std::string> deltas;
    std::string total;
    for (const uint32_t id : ids) {
      deltas.push_back(detok.step(id));
      EXPECT_EQ(find_invalid_utf8(deltas.back()), std::string::npos) << "delta with invalid UTF-8";
      total += deltas.back();
    }
    total += detok.flush();
    if (check_total) {
      EXPECT_EQ(total, tok_->decode(ids, skip_special)) << "deltas + flush != decode for " << show_ids(ids);
    }
    return deltas;
  }

  nlohmann::json golden_;
  std::shared_ptr<Tokenizer> tok_;
};

TEST_P(TokenizerGolden, EncodeDecodeMatchHuggingFace) {
  int failures = 0;
  int roundtrips = 0;
  for (const auto& c : golden_["cases"]) {
    const std::string text = c["text"];
    const auto expected = c["ids"].get<std::vector<uint32_t>>();
    const auto expected_ns = c["ids_no_special"].get<std::vector<uint32_t>>();
    auto ids = tok_->encode(text, true);
    auto ids_ns = tok_->encode(text, false);
    ASSERT_TRUE(ids.ok() && ids_ns.ok()) << ids.status().message();
    if (*ids != expected || *ids_ns != expected_ns) {
      if (++failures <= kMaxReported) {
        ADD_FAILURE() << GetParam() << ": ids differ for \"" << show(text)
                      << "\"\n  nibble: " << show_ids(*ids_ns) << "\n  HF:     " << show_ids(expected_ns);
      }
      continue;
    }
    const std::string decoded = tok_->decode(expected_ns, false);
    EXPECT_EQ(decoded, c["decoded"].get<std::string>())
        << GetParam() << ": decode of \"" << show(text) << "\"";
    EXPECT_EQ(tok_->decode(expected, true), c["decoded_skip_special"].get<std::string>())
        << GetParam() << ": decode(skip_special_tokens) of \"" << show(text) << "\"";
    if (c["roundtrip"].get<bool>()) {
      EXPECT_EQ(decoded, text);
      ++roundtrips;
    }
    if (c.contains("stream")) {
      const auto deltas = stream(expected_ns, false, /*check_total=*/true);
      EXPECT_EQ(deltas, c["stream"].get<std::vector<std::string>>())
          << GetParam() << ": stream of \"" << show(text) << "\"";
    }
  }
  EXPECT_EQ(failures, 0) << GetParam() << ": " << failures << " of " << golden_["cases"].size()
                         << " texts differ";
  EXPECT_GT(roundtrips, 0);
}

TEST_P(TokenizerGolden, RandomIdsDecodeLikeHuggingFace) {
  const auto vocab_size = golden_["vocab_size"].get<size_t>();
  for (const auto& r : golden_["random_ids"]) {
    const auto ids = r["ids"].get<std::vector<uint32_t>>();
    EXPECT_EQ(tok_->decode(ids, false), r["decoded"].get<std::string>()) << show_ids(ids);
    EXPECT_EQ(tok_->decode(ids, true), r["decoded_skip_special"].get<std::string>()) << show_ids(ids);
    std::vector<uint32_t> in_range;
    for (const uint32_t id : ids) {
      if (id < vocab_size) in_range.push_back(id);
    }
    for (const bool skip : {false, true}) {
      // Random ids can split a byte sequence so that a window decodes differently from the whole;
      // DecodeStream then reports InvalidPrefix (null golden) and no total is promised.
      const auto deltas = stream(in_range, skip, /*check_total=*/false);
      const auto& expected = r[skip ? "stream_skip_special" : "stream"];
      if (!expected.is_null()) {
        EXPECT_EQ(deltas, expected.get<std::vector<std::string>>()) << show_ids(in_range);
      }
    }
  }
}

TEST_P(TokenizerGolden, VocabSizeMatches) {
  EXPECT_EQ(tok_->vocab_size(), golden_["vocab_size"].get<size_t>());
}

TEST_P(TokenizerGolden, SpecialTokensMatchTransformers) {
  const auto& config = golden_["config"];
  if (config.empty()) GTEST_SKIP() << "no transformers config recorded for " << GetParam();
  auto check = [&](const char* name, const std::optional<std::string>& token, std::optional<uint32_t> id) {
    const std::string id_key = std::string(name) + "_id";
    if (config[name].is_null()) {
      EXPECT_FALSE(token.has_value()) << name;
    } else {
      EXPECT_EQ(token.value_or("<none>"), config[name].get<std::string>()) << name;
      EXPECT_EQ(id.value_or(~0u), config[id_key].get<uint32_t>()) << name;
    }
  };
  check("bos_token", tok_->config().bos_token, tok_->bos_id());
  check("eos_token", tok_->config().eos_token, tok_->eos_id());
  check("pad_token", tok_->config().pad_token, tok_->pad_id());
  EXPECT_EQ(tok_->config().chat_template.has_value(), config["has_chat_template"].get<bool>());
}

INSTANTIATE_TEST_SUITE_P(All, TokenizerGolden,
                         ::testing::Values("qwen3", "gpt-oss", "deepseek-v3", "synthetic-llama2",
                                           "synthetic-metaspace", "synthetic-bytelevel"),
                         [](const ::testing::TestParamInfo<std::string>& param_info) {
                           std::string name = param_info.param;
                           for (char& c : name) {
                             if (c == '-') c = '_';
                           }
                           return name;
                         });

}  // namespace
}  // namespace nibble::tokenizer
