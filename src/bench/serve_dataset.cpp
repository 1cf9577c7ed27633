#include "bench/serve_dataset.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <unordered_set>

#include "base/file_util.h"

namespace nibble::bench {

base::Result<int64_t> num_special_tokens_to_add(PromptTokenizer& tokenizer) {
  NIBBLE_ASSIGN_OR_RETURN(std::vector<int32_t> ids, tokenizer.encode("", /*add_special_tokens=*/true));
  return static_cast<int64_t>(ids.size());
}

namespace {

class FunctionTokenizer final : public PromptTokenizer {
 public:
  explicit FunctionTokenizer(TokenizerFunctions fns) : fns_(std::move(fns)) {}
  base::Result<std::vector<int32_t>> encode(const std::string& text, bool add_special_tokens) override {
    return fns_.encode(text, add_special_tokens);
  }
  base::Result<std::string> decode(const std::vector<int32_t>& ids) override { return fns_.decode(ids); }
  int64_t vocab_size() const override { return fns_.vocab_size; }
  std::vector<int32_t> special_ids() const override { return fns_.special_ids; }
  std::string name() const override { return fns_.name; }

 private:
  TokenizerFunctions fns_;
};

// Uniform integer in [lo, hi] (both inclusive), like numpy's rng.integers(lo, hi + 1).
int64_t uniform_int(std::mt19937_64& rng, int64_t lo, int64_t hi) {
  if (hi <= lo) return lo;
  return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
}

// vLLM's gen_prompt_decode_to_target_len: decode, re-encode (no special tokens) and truncate or
// pad with random ids until the encoding has target_len tokens, at most max_retry times.
base::Status decode_to_target_len(PromptTokenizer& tokenizer, std::vector<int32_t> ids, int64_t target_len,
                                  std::mt19937_64& rng, std::string* prompt, int64_t* final_len,
                                  int64_t* mismatch) {
  constexpr int kMaxRetry = 10;
  int remaining_tries = kMaxRetry;
  *mismatch = 0;
  while (true) {
    NIBBLE_ASSIGN_OR_RETURN(*prompt, tokenizer.decode(ids));
    NIBBLE_ASSIGN_OR_RETURN(ids, tokenizer.encode(*prompt, /*add_special_tokens=*/false));
    const auto num_ids = static_cast<int64_t>(ids.size());
    if (remaining_tries <= 0) {
      if (num_ids != target_len) *mismatch = num_ids - target_len;
      break;
    }
    if (num_ids == target_len) break;
    if (num_ids < target_len) {
      for (int64_t i = num_ids; i < target_len; ++i) {
        ids.push_back(static_cast<int32_t>(uniform_int(rng, 0, tokenizer.vocab_size() - 1)));
      }
    } else {
      ids.resize(static_cast<size_t>(target_len));
    }
    --remaining_tries;
  }
  *final_len = static_cast<int64_t>(ids.size());
  return base::ok_status();
}

}  // namespace

std::unique_ptr<PromptTokenizer> make_function_tokenizer(TokenizerFunctions fns) {
  return std::make_unique<FunctionTokenizer>(std::move(fns));
}

base::Result<std::vector<SampleRequest>> sample_random(PromptTokenizer& tokenizer,
                                                       const RandomDatasetOptions& opts, int64_t num_requests,
                                                       uint64_t seed, DatasetStats* stats) {
  if (!(opts.range_ratio >= 0.0 && opts.range_ratio < 1.0)) {
    return base::invalid_argument("--random-range-ratio must be in [0, 1), got " +
                                  std::to_string(opts.range_ratio));
  }
  if (opts.input_len < 1 || opts.output_len < 1 || opts.prefix_len < 0) {
    return base::invalid_argument(
        "--random-input-len and --random-output-len must be >= 1, --random-prefix-len >= 0");
  }
  const int64_t vocab_size = tokenizer.vocab_size();
  if (vocab_size < 2) return base::invalid_argument("random dataset: tokenizer vocabulary size is unknown");
  NIBBLE_ASSIGN_OR_RETURN(const int64_t num_special, num_special_tokens_to_add(tokenizer));
  const int64_t real_input_len = std::max<int64_t>(0, opts.input_len - num_special);

  const double r = opts.range_ratio;
  const auto input_low = static_cast<int64_t>(std::floor(static_cast<double>(real_input_len) * (1 - r)));
  const auto input_high = static_cast<int64_t>(std::ceil(static_cast<double>(real_input_len) * (1 + r)));
  const auto output_low =
      std::max<int64_t>(1, static_cast<int64_t>(std::floor(static_cast<double>(opts.output_len) * (1 - r))));
  const auto output_high = static_cast<int64_t>(std::ceil(static_cast<double>(opts.output_len) * (1 + r)));
  if (opts.prefix_len + input_low < 1) {
    return base::invalid_argument("--random-input-len is too small: after " + std::to_string(num_special) +
                                  " special tokens and the range ratio, a prompt could have no tokens");
  }

  std::mt19937_64 rng(seed);
  std::vector<int64_t> input_lens, output_lens, offsets;
  for (int64_t i = 0; i < num_requests; ++i) input_lens.push_back(uniform_int(rng, input_low, input_high));
  for (int64_t i = 0; i < num_requests; ++i) output_lens.push_back(uniform_int(rng, output_low, output_high));
  for (int64_t i = 0; i < num_requests; ++i) offsets.push_back(uniform_int(rng, 0, vocab_size - 1));

  const std::vector<int32_t> special = tokenizer.special_ids();
  const std::unordered_set<int32_t> prohibited(special.begin(), special.end());
  std::vector<int32_t> allowed;  // ascending, as numpy's array of the set difference
  allowed.reserve(static_cast<size_t>(vocab_size));
  for (int64_t id = 0; id < vocab_size; ++id) {
    if (!prohibited.count(static_cast<int32_t>(id))) allowed.push_back(static_cast<int32_t>(id));
  }
  if (allowed.empty()) return base::invalid_argument("random dataset: every token id is a special token");
  const auto num_allowed = static_cast<int64_t>(allowed.size());

  std::vector<int32_t> prefix;
  DatasetStats local_stats;
  if (opts.prefix_len > 0) {
    // The prefix itself is decoded and re-encoded to its length first, as vLLM's get_prefix does.
    for (int64_t i = 0; i < opts.prefix_len; ++i) {
      prefix.push_back(allowed[static_cast<size_t>(uniform_int(rng, 0, num_allowed - 1))]);
    }
    std::string prefix_text;
    int64_t prefix_final_len = 0, prefix_mismatch = 0;
    NIBBLE_TRY(decode_to_target_len(tokenizer, prefix, opts.prefix_len, rng, &prefix_text, &prefix_final_len,
                                    &prefix_mismatch)
                   .with_context("random dataset, shared prefix"));
    NIBBLE_ASSIGN_OR_RETURN(prefix, tokenizer.encode(prefix_text, /*add_special_tokens=*/false));
    if (prefix_final_len != static_cast<int64_t>(prefix.size())) {
      return base::internal_error("random dataset: shared prefix changed length on re-encoding");
    }
    local_stats.token_mismatch += prefix_mismatch;
  }

  std::vector<SampleRequest> requests;
  for (int64_t i = 0; i < num_requests; ++i) {
    std::vector<int32_t> ids = prefix;
    for (int64_t k = 0; k < input_lens[static_cast<size_t>(i)]; ++k) {
      ids.push_back(allowed[static_cast<size_t>((offsets[static_cast<size_t>(i)] + i + k) % num_allowed)]);
    }
    const int64_t target_len = opts.prefix_len + input_lens[static_cast<size_t>(i)];
    SampleRequest req;
    int64_t mismatch = 0;
    NIBBLE_TRY(decode_to_target_len(tokenizer, std::move(ids), target_len, rng, &req.prompt, &req.prompt_len,
                                    &mismatch)
                   .with_context("random dataset, prompt " + std::to_string(i)));
    if (mismatch != 0) {
      local_stats.token_mismatch += mismatch;
      ++local_stats.num_mismatched;
    }
    req.expected_output_len = output_lens[static_cast<size_t>(i)];
    requests.push_back(std::move(req));
  }
  if (stats != nullptr) *stats = local_stats;
  return requests;
}

base::Result<std::vector<SampleRequest>> sample_sharegpt(PromptTokenizer& tokenizer, const std::string& path,
                                                         int64_t num_requests, uint64_t seed,
                                                         int64_t fixed_output_len) {
  NIBBLE_ASSIGN_OR_RETURN(std::string text, base::read_file(path));
  const nlohmann::json doc = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_array()) {
    return base::corrupt(path + ": a ShareGPT file must be a JSON array of {\"conversations\": [...]}");
  }
  std::vector<std::pair<std::string, std::string>> pairs;  // (prompt, reference completion)
  for (const nlohmann::json& entry : doc) {
    if (!entry.is_object()) continue;
    auto conv = entry.find("conversations");
    if (conv == entry.end() || !conv->is_array() || conv->size() < 2) continue;
    const nlohmann::json& first = (*conv)[0];
    const nlohmann::json& second = (*conv)[1];
    if (!first.is_object() || !second.is_object() || !first.contains("value") || !second.contains("value") ||
        !first["value"].is_string() || !second["value"].is_string()) {
      continue;
    }
    pairs.emplace_back(first["value"].get<std::string>(), second["value"].get<std::string>());
  }
  std::mt19937_64 rng(seed);
  std::shuffle(pairs.begin(), pairs.end(), rng);

  std::vector<SampleRequest> requests;
  for (const auto& [prompt, completion] : pairs) {
    if (static_cast<int64_t>(requests.size()) >= num_requests) break;
    NIBBLE_ASSIGN_OR_RETURN(std::vector<int32_t> prompt_ids, tokenizer.encode(prompt, true));
    int64_t output_len = fixed_output_len;
    if (output_len <= 0) {
      NIBBLE_ASSIGN_OR_RETURN(std::vector<int32_t> completion_ids, tokenizer.encode(completion, true));
      output_len = static_cast<int64_t>(completion_ids.size());
    }
    const auto prompt_len = static_cast<int64_t>(prompt_ids.size());
    // vLLM's is_valid_sequence with its defaults.
    if (prompt_len < 4 || (fixed_output_len <= 0 && output_len < 4)) continue;
    if (prompt_len > 1024 || prompt_len + output_len > 2048) continue;
    requests.push_back(SampleRequest{prompt, prompt_len, output_len});
  }
  if (requests.empty())
    return base::invalid_argument(path + ": no ShareGPT conversation passes the length filter");
  // Oversample: duplicate random samples until there are enough.
  const size_t num_valid = requests.size();
  while (static_cast<int64_t>(requests.size()) < num_requests) {
    requests.push_back(
        requests[static_cast<size_t>(uniform_int(rng, 0, static_cast<int64_t>(num_valid) - 1))]);
  }
  return requests;
}

base::Result<std::vector<SampleRequest>> sample_jsonl(PromptTokenizer* tokenizer, const std::string& path,
                                                      int64_t num_requests) {
  std::ifstream in(path);
  if (!in) return base::not_found(path + ": cannot open the JSON-lines dataset");
  std::vector<SampleRequest> lines;
  std::string line;
  int64_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = path + ":" + std::to_string(line_no);
    const nlohmann::json obj = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (obj.is_discarded() || !obj.is_object()) return base::corrupt(where + ": not a JSON object");
    if (!obj.contains("prompt") || !obj["prompt"].is_string()) {
      return base::corrupt(where + ": needs a string field \"prompt\"");
    }
    if (!obj.contains("output_len") || !obj["output_len"].is_number_integer() ||
        obj["output_len"].get<int64_t>() < 1) {
      return base::corrupt(where + ": needs an integer field \"output_len\" >= 1");
    }
    SampleRequest req;
    req.prompt = obj["prompt"].get<std::string>();
    req.expected_output_len = obj["output_len"].get<int64_t>();
    if (tokenizer != nullptr) {
      NIBBLE_ASSIGN_OR_RETURN(std::vector<int32_t> ids, tokenizer->encode(req.prompt, true));
      req.prompt_len = static_cast<int64_t>(ids.size());
    } else if (obj.contains("prompt_len") && obj["prompt_len"].is_number_integer()) {
      req.prompt_len = obj["prompt_len"].get<int64_t>();
    }
    lines.push_back(std::move(req));
  }
  if (lines.empty()) return base::invalid_argument(path + ": the JSON-lines dataset has no requests");
  std::vector<SampleRequest> requests;
  for (int64_t i = 0; i < num_requests; ++i) requests.push_back(lines[static_cast<size_t>(i) % lines.size()]);
  return requests;
}

}  // namespace nibble::bench
