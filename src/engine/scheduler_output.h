// What the Scheduler hands the model runner each step, and what comes back (vLLM:
// vllm/v1/core/sched/output.py, vllm/v1/outputs.py, EngineCoreOutput). No tensors: the runner
// builds its input tensors from these lists.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "engine/request.h"

namespace nibble::engine {

// One request's work in a step: run `token_ids` at `positions`, writing their KV into the slots
// positions[i] of the block table (slot p lives in block block_ids[p / block_size] at offset
// p % block_size), attending to all positions < positions[i] of the same request.
struct ScheduledRequest {
  const Request* request = nullptr;  // valid during execute_model: sampling params, prompt, outputs
  std::vector<int32_t> token_ids;    // [num_scheduled_tokens]
  std::vector<int32_t> positions;    // [num_scheduled_tokens] = num_computed_tokens + i
  std::vector<int32_t> block_ids;    // [num_blocks] the request's whole block table (group 0)
  // With several KV cache groups (full + sliding-window layers): one table per group, in the
  // order of KVCacheConfig::groups (block_ids == group_block_ids[0]); kNullBlockId marks blocks a
  // sliding window freed. Empty with a single group.
  std::vector<std::vector<int32_t>> group_block_ids;
  int32_t num_computed_tokens = 0;  // KV already in the cache before this step (incl. prefix hits)
  bool is_new = false;              // first step since admission or resumption after preemption
  bool resumed = false;             // is_new after a preemption (the runner may keep sampler state)
  // True when this step reaches the end of the known tokens: the runner must sample the next
  // token from the last position's logits. False for a non-final chunk of a chunked prefill.
  bool sample = false;

  const std::string& request_id() const { return request->request_id(); }
  int32_t num_scheduled_tokens() const { return static_cast<int32_t>(token_ids.size()); }
};

struct SchedulerOutput {
  // Decodes and continuing prefills of running requests first, then newly admitted ones.
  std::vector<ScheduledRequest> scheduled;
  int32_t total_num_scheduled_tokens = 0;
  int32_t block_size = 0;
  int32_t num_kv_blocks = 0;  // pool size this step: every block id is < this
  // Requests that left since the previous step (finished, aborted or preempted): the runner drops
  // or parks their per-request state. Preempted ones come back later with is_new && resumed.
  std::vector<std::string> finished_req_ids;
  std::vector<std::string> preempted_req_ids;

  bool empty() const { return scheduled.empty(); }
};

struct Logprob {
  int32_t token_id = 0;
  float logprob = 0.0f;
};

// The sampled token's log probability and the top alternatives (SamplingParams::logprobs).
struct TokenLogprobs {
  Logprob sampled;
  std::vector<Logprob> top;  // [num_top_logprobs], most likely first
};

// Index-aligned with SchedulerOutput::scheduled.
struct ModelRunnerOutput {
  // Tokens sampled for each scheduled request (one today; more with speculative decoding);
  // empty where ScheduledRequest::sample is false.
  std::vector<std::vector<int32_t>> sampled_token_ids;
  // Same shape as sampled_token_ids when any request asked for logprobs; else may be empty.
  std::vector<std::vector<TokenLogprobs>> logprobs;
};

// A per-request output delta produced by update_from_output (and by aborts).
struct EngineCoreOutput {
  std::string request_id;
  std::vector<int32_t> new_token_ids;
  std::vector<TokenLogprobs> new_logprobs;  // empty unless logprobs were requested
  std::optional<FinishReason> finish_reason;
  std::optional<int32_t> stop_reason;  // the stop token id that ended it (not for eos)
  int32_t num_prompt_tokens = 0;
  int32_t num_cached_tokens = 0;  // prompt tokens served from the prefix cache
  std::string error_message;      // with FinishReason::kError

  bool finished() const { return finish_reason.has_value(); }
};

}  // namespace nibble::engine
