// Per-request sampling parameters: plain data, shared by the scheduler (stop conditions), the
// sampler (in the model runner) and the server (which fills it from an OpenAI request).
// Mirrors vLLM's SamplingParams; `n > 1` is expanded by the server into n requests.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "base/status.h"

namespace nibble::engine {

struct SamplingParams {
  // Sampling. temperature == 0 means greedy (top_k/top_p/min_p are then ignored).
  float temperature = 1.0f;
  int32_t top_k = 0;   // 0 (or -1) = no top-k cut
  float top_p = 1.0f;  // nucleus mass in (0, 1]
  float min_p = 0.0f;  // drop tokens with p < min_p * p_max, in [0, 1]
  // Penalties (OpenAI semantics for presence/frequency, HF semantics for repetition).
  float presence_penalty = 0.0f;    // [-2, 2]
  float frequency_penalty = 0.0f;   // [-2, 2]
  float repetition_penalty = 1.0f;  // > 0; 1 = off
  std::optional<uint64_t> seed;     // per-request RNG seed; unset = engine-chosen
  // Length and stop conditions (checked by the Scheduler in update_from_output).
  int32_t max_tokens = 16;              // output tokens at most (>= 1)
  int32_t min_tokens = 0;               // eos / stop token ids are not honoured before this many
  std::vector<int32_t> stop_token_ids;  // extra stop tokens; the sampled stop token is kept in output
  bool ignore_eos = false;              // do not stop on the model's eos token ids
  // Stop strings are matched by the detokenizer layer, which aborts the request when one is hit
  // (vLLM does the same in its output processor); the engine sees only token ids.
  // Log probabilities of the sampled token plus the top `logprobs` alternatives; unset = none.
  std::optional<int32_t> logprobs;
  int32_t n = 1;  // kept for the server's benefit; the engine requires n == 1
};

// Checks ranges; the message names the offending field as the OpenAI API spells it.
base::Status validate_sampling_params(const SamplingParams& params, int32_t vocab_size);

}  // namespace nibble::engine
