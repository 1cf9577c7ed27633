// Datasets over a toy word tokenizer (token n <-> word "t<n>", id 0 = BOS "<s>"), checked against
// vLLM's rules: exact lengths after decode -> re-encode, range-ratio bounds, shared prefix,
// special tokens excluded and subtracted, ShareGPT filters.
#include "bench/serve_dataset.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>

namespace nibble::bench {
namespace {

constexpr int64_t kVocab = 1000;

// drop_multiples_of: ids divisible by it decode to nothing (like skipped special tokens), so
// re-encoding shrinks the sequence and the padding loop has work to do (0 = never).
std::unique_ptr<PromptTokenizer> toy_tokenizer(int drop_multiples_of = 0) {
  TokenizerFunctions fns;
  fns.encode = [](const std::string& text, bool add_special) -> base::Result<std::vector<int32_t>> {
    std::vector<int32_t> ids;
    if (add_special) ids.push_back(0);
    std::istringstream words(text);
    std::string w;
    while (words >> w) {
      if (w == "<s>") {
        ids.push_back(0);
      } else if (w == "x") {
        ids.push_back(kVocab - 1);
      } else if (w.size() > 1 && w[0] == 't') {
        ids.push_back(static_cast<int32_t>(std::stoi(w.substr(1))));
      } else {
        return base::invalid_argument("toy tokenizer: unknown word " + w);
      }
    }
    return ids;
  };
  fns.decode = [drop_multiples_of](const std::vector<int32_t>& ids) -> base::Result<std::string> {
    std::string text;
    for (int32_t id : ids) {
      if (drop_multiples_of > 0 && id > 0 && id % drop_multiples_of == 0) continue;
      if (!text.empty()) text += ' ';
      if (id == 0) {
        text += "<s>";
      } else if (id == kVocab - 1) {
        text += "x";
      } else {
        text += "t" + std::to_string(id);
      }
    }
    return text;
  };
  fns.vocab_size = kVocab;
  fns.special_ids = {0};
  fns.name = "toy";
  return make_function_tokenizer(std::move(fns));
}

int64_t count_tokens(PromptTokenizer& tok, const std::string& text) {
  return static_cast<int64_t>(tok.encode(text, false)->size());
}

TEST(RandomDataset, ExactLengthsSpecialsSubtracted) {
  auto tok = toy_tokenizer();
  ASSERT_EQ(num_special_tokens_to_add(*tok).value(), 1);
  RandomDatasetOptions opts;
  opts.input_len = 33;
  opts.output_len = 7;
  auto reqs = sample_random(*tok, opts, 20, /*seed=*/1);
  ASSERT_TRUE(reqs.ok()) << reqs.status().message();
  ASSERT_EQ(reqs->size(), 20u);
  std::set<std::string> prompts;
  for (const SampleRequest& r : *reqs) {
    EXPECT_EQ(r.prompt_len, 32);  // 33 minus the BOS the server adds
    EXPECT_EQ(count_tokens(*tok, r.prompt), 32);
    EXPECT_EQ(r.expected_output_len, 7);
    EXPECT_EQ(r.prompt.find("<s>"), std::string::npos);  // special ids are never drawn
    prompts.insert(r.prompt);
  }
  EXPECT_EQ(prompts.size(), 20u);  // offsets differ per request
  // Same seed -> same prompts; another seed -> others.
  EXPECT_EQ(sample_random(*tok, opts, 20, 1).value()[5].prompt, (*reqs)[5].prompt);
  EXPECT_NE(sample_random(*tok, opts, 20, 2).value()[5].prompt, (*reqs)[5].prompt);
}

TEST(RandomDataset, ConsecutiveIdsFromOffset) {
  auto tok = toy_tokenizer();
  RandomDatasetOptions opts;
  opts.input_len = 6;
  auto reqs = sample_random(*tok, opts, 3, 5).value();
  for (size_t i = 0; i < reqs.size(); ++i) {
    // allowed = [1, 999]; ids are allowed[(offset + i + k) % 999]: consecutive modulo the wrap.
    auto ids = tok->encode(reqs[i].prompt, false).value();
    ASSERT_EQ(ids.size(), 5u);
    for (size_t k = 1; k < ids.size(); ++k) {
      EXPECT_TRUE(ids[k] == ids[k - 1] + 1 || (ids[k - 1] == kVocab - 1 && ids[k] == 1)) << reqs[i].prompt;
    }
  }
}

TEST(RandomDataset, RangeRatioBoundsAndPrefix) {
  auto tok = toy_tokenizer();
  RandomDatasetOptions opts;
  opts.input_len = 101;  // 100 after the BOS
  opts.output_len = 50;
  opts.range_ratio = 0.5;
  opts.prefix_len = 9;
  auto reqs = sample_random(*tok, opts, 200, 3).value();
  std::set<int64_t> input_lens;
  for (const SampleRequest& r : reqs) {
    // input in [floor(100*0.5), ceil(100*1.5)] plus the prefix; output in [25, 75].
    EXPECT_GE(r.prompt_len, 9 + 50);
    EXPECT_LE(r.prompt_len, 9 + 150);
    EXPECT_GE(r.expected_output_len, 25);
    EXPECT_LE(r.expected_output_len, 75);
    EXPECT_EQ(count_tokens(*tok, r.prompt), r.prompt_len);
    input_lens.insert(r.prompt_len);
    // All prompts start with the same 9 prefix tokens.
    EXPECT_EQ(tok->encode(r.prompt, false).value()[0], tok->encode(reqs[0].prompt, false).value()[0]);
    auto a = tok->encode(r.prompt, false).value(), b = tok->encode(reqs[0].prompt, false).value();
    EXPECT_TRUE(std::equal(a.begin(), a.begin() + 9, b.begin()));
  }
  EXPECT_GT(input_lens.size(), 20u);  // lengths really vary
  opts.range_ratio = 1.0;
  EXPECT_FALSE(sample_random(*tok, opts, 1, 0).ok());
}

TEST(RandomDataset, DecodeReencodeAdjustsLength) {
  auto tok = toy_tokenizer(/*drop_multiples_of=*/7);
  RandomDatasetOptions opts;
  opts.input_len = 41;
  DatasetStats stats;
  auto reqs = sample_random(*tok, opts, 30, 11, &stats).value();
  int64_t exact = 0;
  for (const SampleRequest& r : reqs) {
    EXPECT_EQ(count_tokens(*tok, r.prompt), r.prompt_len);  // always self-consistent
    if (r.prompt_len == 40) ++exact;
  }
  EXPECT_EQ(exact + stats.num_mismatched, 30);
  EXPECT_EQ(exact, 30);  // padding with random ids converges well within 10 tries here
}

std::string temp_path(const std::string& name) {
  return ::testing::TempDir() + "/nibble_bench_" + name;
}

TEST(ShareGptDataset, FiltersAsVllm) {
  const std::string path = temp_path("sharegpt.json");
  auto words = [](int n) {
    std::string s;
    for (int i = 1; i <= n; ++i) s += (i > 1 ? " t" : "t") + std::to_string(i);
    return s;
  };
  std::ofstream(path) << R"([
    {"id": "one-turn", "conversations": [{"from": "human", "value": ")"
                      << words(10) << R"("}]},
    {"id": "short-prompt", "conversations": [{"from": "human", "value": ")"
                      << words(2) << R"("}, {"from": "gpt", "value": ")" << words(10) << R"("}]},
    {"id": "short-output", "conversations": [{"from": "human", "value": ")"
                      << words(10) << R"("}, {"from": "gpt", "value": ")" << words(1) << R"("}]},
    {"id": "long-prompt", "conversations": [{"from": "human", "value": ")"
                      << words(1030) << R"("}, {"from": "gpt", "value": ")" << words(10) << R"("}]},
    {"id": "long-total", "conversations": [{"from": "human", "value": ")"
                      << words(1000) << R"("}, {"from": "gpt", "value": ")" << words(1100) << R"("}]},
    {"id": "ok-a", "conversations": [{"from": "human", "value": ")"
                      << words(20) << R"("}, {"from": "gpt", "value": ")" << words(30) << R"("}]},
    {"id": "ok-b", "conversations": [{"from": "human", "value": ")"
                      << words(5) << R"("}, {"from": "gpt", "value": ")" << words(8)
                      << R"("}, {"from": "human", "value": "t1"}]}
  ])";
  auto tok = toy_tokenizer();
  auto reqs = sample_sharegpt(*tok, path, 2, 0, 0);
  ASSERT_TRUE(reqs.ok()) << reqs.status().message();
  std::set<std::pair<int64_t, int64_t>> lens;
  for (const SampleRequest& r : *reqs) lens.insert({r.prompt_len, r.expected_output_len});
  // Token counts include the BOS, as tokenizer(prompt) does by default.
  EXPECT_EQ(lens, (std::set<std::pair<int64_t, int64_t>>{{21, 31}, {6, 9}}));
  // Oversampling duplicates the two valid ones; a fixed output length keeps "short-output".
  EXPECT_EQ(sample_sharegpt(*tok, path, 7, 0, 0).value().size(), 7u);
  auto fixed = sample_sharegpt(*tok, path, 10, 0, 3).value();
  std::set<int64_t> prompt_lens;
  for (const SampleRequest& r : fixed) {
    EXPECT_EQ(r.expected_output_len, 3);
    prompt_lens.insert(r.prompt_len);
  }
  // "long-total" (1001 + 3 <= 2048) passes once the output length is fixed.
  EXPECT_EQ(prompt_lens, (std::set<int64_t>{6, 11, 21, 1001}));
  std::remove(path.c_str());
}

TEST(JsonlDataset, ReadsAndValidates) {
  const std::string path = temp_path("prompts.jsonl");
  std::ofstream(path) << "{\"prompt\": \"t1 t2 t3\", \"output_len\": 4}\n\n{\"prompt\": \"t9\", "
                         "\"output_len\": 2, \"prompt_len\": 77}\n";
  auto tok = toy_tokenizer();
  auto reqs = sample_jsonl(tok.get(), path, 3).value();
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_EQ(reqs[0].prompt_len, 4);  // with BOS
  EXPECT_EQ(reqs[0].expected_output_len, 4);
  EXPECT_EQ(reqs[1].prompt_len, 2);
  EXPECT_EQ(reqs[2].prompt, "t1 t2 t3");                                // cycles
  EXPECT_EQ(sample_jsonl(nullptr, path, 2).value()[1].prompt_len, 77);  // no tokenizer: the file's count
  std::ofstream(path) << "{\"prompt\": 5, \"output_len\": 4}\n";
  auto bad = sample_jsonl(nullptr, path, 1);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find(":1:"), std::string::npos);
  std::ofstream(path) << "{\"prompt\": \"a\"}\n";
  EXPECT_FALSE(sample_jsonl(nullptr, path, 1).ok());
  EXPECT_FALSE(sample_jsonl(nullptr, temp_path("missing.jsonl"), 1).ok());
  std::remove(path.c_str());
}

}  // namespace
}  // namespace nibble::bench
