#include "engine/request.h"

#include <utility>

namespace nibble::engine {

const char* finish_reason_name(FinishReason reason) {
  switch (reason) {
    case FinishReason::kStop:
      return "stop";
    case FinishReason::kLength:
      return "length";
    case FinishReason::kAbort:
      return "abort";
    case FinishReason::kError:
      return "error";
  }
  return "error";
}

std::optional<FinishReason> finish_reason_of(RequestStatus status) {
  switch (status) {
    case RequestStatus::kFinishedStopped:
      return FinishReason::kStop;
    case RequestStatus::kFinishedLengthCapped:
      return FinishReason::kLength;
    case RequestStatus::kFinishedAborted:
      return FinishReason::kAbort;
    case RequestStatus::kFinishedError:
      return FinishReason::kError;
    default:
      return std::nullopt;
  }
}

Request::Request(EngineCoreRequest core_request, std::vector<int32_t> eos_token_ids, int64_t arrival_seq)
    : request_id_(std::move(core_request.request_id)),
      sampling_params_(std::move(core_request.sampling_params)),
      prompt_token_ids_(std::move(core_request.prompt_token_ids)),
      all_token_ids_(prompt_token_ids_),
      eos_token_ids_(std::move(eos_token_ids)),
      cache_extra_keys_(std::move(core_request.cache_extra_keys)),
      skip_prefix_cache_(core_request.skip_prefix_cache),
      arrival_seq_(arrival_seq) {}

void Request::append_output_token_ids(int32_t token_id) {
  output_token_ids_.push_back(token_id);
  all_token_ids_.push_back(token_id);
}

void Request::update_block_hashes(int32_t block_size) {
  const int32_t num_full_blocks = num_tokens() / block_size;
  for (int32_t i = static_cast<int32_t>(block_hashes_.size()); i < num_full_blocks; ++i) {
    const BlockHash* parent = i > 0 ? &block_hashes_[static_cast<size_t>(i - 1)] : nullptr;
    std::span<const int32_t> tokens(all_token_ids_.data() + static_cast<size_t>(i) * block_size,
                                    static_cast<size_t>(block_size));
    block_hashes_.push_back(hash_block_tokens(parent, tokens, cache_extra_keys_));
  }
}

}  // namespace nibble::engine
