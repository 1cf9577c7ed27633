// Prompts for the serving benchmark (../shared/docs/serving.md §1.7): the `random` dataset built
// from token ids as vLLM builds it, ShareGPT files filtered as vLLM filters them, and JSON-lines
// files of {"prompt", "output_len"}.
//
// Exact input lengths need the model's tokenizer. PromptTokenizer is the small interface the
// datasets use; ServerTokenizer (serve_client.h) implements it over a server's /tokenize and
// /detokenize, and make_function_tokenizer() adapts any local tokenizer given as functions.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"

namespace nibble::bench {

class PromptTokenizer {
 public:
  virtual ~PromptTokenizer() = default;
  virtual base::Result<std::vector<int32_t>> encode(const std::string& text, bool add_special_tokens) = 0;
  virtual base::Result<std::string> decode(const std::vector<int32_t>& ids) = 0;
  // Token ids are drawn from [0, vocab_size()) minus special_ids().
  virtual int64_t vocab_size() const = 0;
  virtual std::vector<int32_t> special_ids() const = 0;
  // Shown as tokenizer_id in the result JSON.
  virtual std::string name() const = 0;
};

// How many tokens encode() adds around any text when add_special_tokens is true (e.g. a BOS):
// the length of the encoding of "" with special tokens.
base::Result<int64_t> num_special_tokens_to_add(PromptTokenizer& tokenizer);

// The seam for a local tokenizer (e.g. nibble::tokenizer::Tokenizer::from_dir): pass its
// operations as functions; `special_ids` may be empty.
struct TokenizerFunctions {
  std::function<base::Result<std::vector<int32_t>>(const std::string& text, bool add_special_tokens)> encode;
  std::function<base::Result<std::string>(const std::vector<int32_t>& ids)> decode;
  int64_t vocab_size = 0;
  std::vector<int32_t> special_ids;
  std::string name;
};
std::unique_ptr<PromptTokenizer> make_function_tokenizer(TokenizerFunctions fns);

// Opens the local tokenizer in a directory (tokenizer.json etc.). Wired by the CLI.
using LocalTokenizerLoader =
    std::function<base::Result<std::unique_ptr<PromptTokenizer>>(const std::string& dir)>;

// One benchmark request.
struct SampleRequest {
  std::string prompt;
  int64_t prompt_len = 0;           // tokens as counted by the tokenizer (0 = unknown)
  int64_t expected_output_len = 0;  // sent as max_tokens / max_completion_tokens
};

struct RandomDatasetOptions {
  int64_t input_len = 1024;
  int64_t output_len = 128;
  double range_ratio = 0.0;  // lengths uniform in [floor(L*(1-r)), ceil(L*(1+r))], 0 <= r < 1
  int64_t prefix_len = 0;    // one random prefix shared by all prompts
};

struct DatasetStats {
  int64_t token_mismatch = 0;  // sum over prompts of (re-encoded length - target length)
  int64_t num_mismatched = 0;  // prompts whose length could not be matched exactly
};

// vLLM's RandomDataset: per request, prefix + allowed_ids[(offset + index + arange(L)) % n],
// then decode -> re-encode, truncating or padding with random ids up to 10 times.
base::Result<std::vector<SampleRequest>> sample_random(PromptTokenizer& tokenizer,
                                                       const RandomDatasetOptions& opts, int64_t num_requests,
                                                       uint64_t seed, DatasetStats* stats = nullptr);

// vLLM's ShareGPT sampling: entries with >= 2 turns, shuffled with the seed; prompt = turn 0,
// output length = token count of turn 1 (or fixed_output_len if > 0); keeps prompt_len >= 4,
// output_len >= 4 (unless fixed), prompt_len <= 1024, prompt_len + output_len <= 2048;
// duplicates random samples when too few remain.
base::Result<std::vector<SampleRequest>> sample_sharegpt(PromptTokenizer& tokenizer, const std::string& path,
                                                         int64_t num_requests, uint64_t seed,
                                                         int64_t fixed_output_len);

// One JSON object per line: {"prompt": str, "output_len": int[, "prompt_len": int]}. Prompt
// lengths come from the tokenizer when one is given, else from "prompt_len" (or 0). Lines are
// used in order, cycling when num_requests is larger than the file.
base::Result<std::vector<SampleRequest>> sample_jsonl(PromptTokenizer* tokenizer, const std::string& path,
                                                      int64_t num_requests);

}  // namespace nibble::bench
