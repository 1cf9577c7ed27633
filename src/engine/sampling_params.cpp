#include "engine/sampling_params.h"

#include <cmath>
#include <string>

namespace nibble::engine {

base::Status validate_sampling_params(const SamplingParams& p, int32_t vocab_size) {
  using base::invalid_argument;
  auto bad = [](const char* field, const std::string& why) {
    return invalid_argument(std::string(field) + ": " + why);
  };
  if (!std::isfinite(p.temperature) || p.temperature < 0.0f) return bad("temperature", "must be >= 0");
  if (p.top_k < -1) return bad("top_k", "must be -1, 0 (off) or a positive count");
  if (!std::isfinite(p.top_p) || p.top_p <= 0.0f || p.top_p > 1.0f) return bad("top_p", "must be in (0, 1]");
  if (!std::isfinite(p.min_p) || p.min_p < 0.0f || p.min_p > 1.0f) return bad("min_p", "must be in [0, 1]");
  if (!std::isfinite(p.presence_penalty) || p.presence_penalty < -2.0f || p.presence_penalty > 2.0f)
    return bad("presence_penalty", "must be in [-2, 2]");
  if (!std::isfinite(p.frequency_penalty) || p.frequency_penalty < -2.0f || p.frequency_penalty > 2.0f)
    return bad("frequency_penalty", "must be in [-2, 2]");
  if (!std::isfinite(p.repetition_penalty) || p.repetition_penalty <= 0.0f)
    return bad("repetition_penalty", "must be > 0");
  if (p.max_tokens < 1) return bad("max_tokens", "must be >= 1");
  if (p.min_tokens < 0) return bad("min_tokens", "must be >= 0");
  if (p.min_tokens > p.max_tokens) return bad("min_tokens", "must be <= max_tokens");
  for (int32_t id : p.stop_token_ids) {
    if (id < 0 || (vocab_size > 0 && id >= vocab_size))
      return bad("stop_token_ids", "token id " + std::to_string(id) + " is outside the vocabulary");
  }
  if (p.logprobs && (*p.logprobs < 0 || *p.logprobs > 20)) return bad("logprobs", "must be in [0, 20]");
  if (p.n != 1) return bad("n", "the engine takes n == 1; the server expands n > 1 into n requests");
  return base::ok_status();
}

}  // namespace nibble::engine
