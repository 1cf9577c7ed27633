// Next-token sampling with vLLM's semantics (v1 Sampler): penalties on the raw logits, then greedy
// (temperature 0) or temperature -> min-p -> top-k -> top-p -> a draw from a per-request seeded RNG,
// so a request with a seed gives the same stream on every run.
#pragma once

#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "base/status.h"
#include "engine/sampling_params.h"

namespace nibble::engine {

// xoshiro256** seeded through splitmix64: small, fast, the same on every platform.
class SamplerRng {
 public:
  explicit SamplerRng(uint64_t seed);
  uint64_t next_u64();
  double next_uniform();  // [0, 1)

 private:
  uint64_t s_[4];
};

// One per request: holds its RNG and vocabulary-sized workspaces (allocated here, not per step).
class Sampler {
 public:
  Sampler(int64_t vocab_size, const SamplingParams& params);

  // The distribution the next token is drawn from, over the whole vocabulary (0 for filtered
  // tokens; one-hot for greedy). Modifies `logits` [vocab_size] in place (penalties, temperature).
  std::span<const float> distribution(std::span<float> logits, std::span<const int32_t> prompt_ids,
                                      std::span<const int32_t> output_ids);

  // Picks the next token: distribution() then one draw from the RNG (no draw when greedy).
  int32_t sample(std::span<float> logits, std::span<const int32_t> prompt_ids,
                 std::span<const int32_t> output_ids);

  const SamplingParams& params() const { return params_; }
  bool is_greedy() const;

 private:
  void apply_penalties(std::span<float> logits, std::span<const int32_t> prompt_ids,
                       std::span<const int32_t> output_ids);
  // Penalties, then greedy or filter(): fills kept_[0, num_kept_).
  void select(std::span<float> logits, std::span<const int32_t> prompt_ids,
              std::span<const int32_t> output_ids);
  // Fills kept_ with the kept tokens' normalised probabilities (descending when top-p cut them or
  // at most 4096 are kept; in id order otherwise); returns the kept count. Never sorts more of
  // the vocabulary than top-k / top-p need.
  int64_t filter(std::span<float> logits);

  int64_t vocab_size_;
  SamplingParams params_;
  SamplerRng rng_;
  std::vector<int32_t> output_counts_;           // [vocab] scratch, zero between calls
  std::vector<uint8_t> seen_;                    // [vocab] scratch, zero between calls
  std::vector<std::pair<float, int32_t>> kept_;  // [vocab] (prob or logit, token id)
  std::vector<float> probs_;                     // [vocab] distribution()'s output only
  int64_t num_kept_ = 0;
};

}  // namespace nibble::engine
