// One generation request as the engine core sees it (vLLM: vllm/v1/request.py).
//
// Token bookkeeping: all_token_ids = prompt + outputs. num_computed_tokens counts the tokens
// whose KV is (or is being, this step) written into the request's blocks; the Scheduler
// advances it right after schedule(). Preemption by recompute resets it to 0.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "engine/kv_cache_utils.h"
#include "engine/sampling_params.h"

namespace nibble::engine {

enum class RequestStatus {
  kWaiting,
  kRunning,
  kPreempted,
  kFinishedStopped,       // eos or a stop token id (or a stop string, via abort from the detokenizer)
  kFinishedLengthCapped,  // max_tokens or max_model_len
  kFinishedAborted,       // abort(request_id)
  kFinishedError,         // the engine could not serve it (e.g. KV cache cannot grow)
};

inline bool is_finished(RequestStatus status) {
  return status >= RequestStatus::kFinishedStopped;
}

// OpenAI finish_reason values.
enum class FinishReason { kStop, kLength, kAbort, kError };
const char* finish_reason_name(FinishReason reason);  // "stop", "length", "abort", "error"
std::optional<FinishReason> finish_reason_of(RequestStatus status);

// What a caller submits to the engine (vLLM: EngineCoreRequest).
struct EngineCoreRequest {
  std::string request_id;                 // unique among live requests; empty = engine assigns one
  std::vector<int32_t> prompt_token_ids;  // [num_prompt_tokens]
  SamplingParams sampling_params;
  // Mixed into every block hash: requests with different extra keys never share prefix-cache
  // blocks (vLLM's cache_salt / LoRA id / multimodal hashes).
  std::vector<uint64_t> cache_extra_keys;
  bool skip_prefix_cache = false;  // do not read from the prefix cache (still writes to it)
};

class Request {
 public:
  Request(EngineCoreRequest core_request, std::vector<int32_t> eos_token_ids, int64_t arrival_seq);

  const std::string& request_id() const { return request_id_; }
  const SamplingParams& sampling_params() const { return sampling_params_; }
  const std::vector<int32_t>& prompt_token_ids() const { return prompt_token_ids_; }
  const std::vector<int32_t>& output_token_ids() const { return output_token_ids_; }
  const std::vector<int32_t>& all_token_ids() const { return all_token_ids_; }
  int32_t num_prompt_tokens() const { return static_cast<int32_t>(prompt_token_ids_.size()); }
  int32_t num_output_tokens() const { return static_cast<int32_t>(output_token_ids_.size()); }
  int32_t num_tokens() const { return static_cast<int32_t>(all_token_ids_.size()); }
  const std::vector<int32_t>& eos_token_ids() const { return eos_token_ids_; }
  const std::vector<uint64_t>& cache_extra_keys() const { return cache_extra_keys_; }
  bool skip_prefix_cache() const { return skip_prefix_cache_; }
  int64_t arrival_seq() const { return arrival_seq_; }  // FCFS order; larger = later

  void append_output_token_ids(int32_t token_id);

  // Hashes of the full blocks of all_token_ids (grown lazily by update_block_hashes).
  const std::vector<BlockHash>& block_hashes() const { return block_hashes_; }
  void update_block_hashes(int32_t block_size);

  // Mutable scheduling state, owned by the Scheduler.
  RequestStatus status = RequestStatus::kWaiting;
  int32_t num_computed_tokens = 0;
  int32_t num_cached_tokens = -1;  // prefix-cache hit at first admission; -1 = not yet scheduled
  int32_t num_preemptions = 0;
  std::optional<int32_t> stop_reason;  // the stop token id that finished it, if any
  std::string error_message;           // set with kFinishedError

 private:
  std::string request_id_;
  SamplingParams sampling_params_;
  std::vector<int32_t> prompt_token_ids_;  // [num_prompt_tokens]
  std::vector<int32_t> output_token_ids_;  // [num_output_tokens]
  std::vector<int32_t> all_token_ids_;     // [num_tokens]
  std::vector<int32_t> eos_token_ids_;
  std::vector<uint64_t> cache_extra_keys_;
  bool skip_prefix_cache_ = false;
  int64_t arrival_seq_ = 0;
  std::vector<BlockHash> block_hashes_;  // [num_full_blocks]
};

}  // namespace nibble::engine
