// The model runner over a real decoder (vLLM: GPUModelRunner): every step runs all scheduled
// requests as ONE batch — their new tokens (prefill chunks and decodes mixed) concatenated, so each
// linear layer is a single matmul with M = tokens in the step — with attention per request reading
// and writing K/V through the request's block table in a PagedKvStorage. Then one Sampler per
// request (kept across steps and preemption, so a seeded stream continues) picks the next tokens.
//
// Workspaces are sized at construction from the scheduler's limits; a step allocates nothing but
// its output lists.
#pragma once

#include <cstdint>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/model_runner.h"
#include "engine/paged_kv_storage.h"
#include "engine/sampler.h"
#include "model/model.h"

namespace nibble::engine {

// Where each model layer's K/V lives in a block: its KV cache group (whose block table it reads)
// and its slot among the group's layers. One group (the default): group 0, slot = layer.
struct KvLayerMap {
  std::vector<int32_t> group;  // [num_layers]
  std::vector<int32_t> slot;   // [num_layers]
  int32_t num_groups = 1;
  int32_t layers_per_block = 0;  // the largest group's layer count
  static KvLayerMap make(int32_t num_layers, const std::vector<KVCacheGroupSpec>& groups);
};

inline constexpr int32_t kMaxKvCacheGroups = 4;

// model::KvCache over one request's block tables (what attention reads and writes through).
class PagedKvCache final : public model::KvCache {
 public:
  PagedKvCache(PagedKvStorage* storage, const KvLayerMap* layers, const ScheduledRequest& scheduled);
  float* key(int64_t layer, int64_t pos) override {
    const auto [block_id, slot, offset] = locate(layer, pos);
    return storage_->key(block_id, slot, offset);
  }
  float* value(int64_t layer, int64_t pos) override {
    const auto [block_id, slot, offset] = locate(layer, pos);
    return storage_->value(block_id, slot, offset);
  }
  int64_t max_positions() const override { return max_positions_; }

 private:
  struct Location {
    int32_t block_id, slot, offset;
  };
  Location locate(int64_t layer, int64_t pos) const {
    const auto l = static_cast<size_t>(layer);
    const std::span<const int32_t> table = tables_[static_cast<size_t>(layers_->group[l])];
    const auto idx = static_cast<size_t>(pos / storage_->block_size());
    NIBBLE_CHECK(pos >= 0 && idx < table.size(), "position beyond the block table");
    return {table[idx], layers_->slot[l], static_cast<int32_t>(pos % storage_->block_size())};
  }

  PagedKvStorage* storage_;
  const KvLayerMap* layers_;
  std::span<const int32_t> tables_[kMaxKvCacheGroups];
  int64_t max_positions_ = 0;
};

class LlmModelRunner final : public ModelRunner {
 public:
  // `model` must have been loaded with max_seq_len >= max_model_len, max_batch_tokens >=
  // max_num_batched_tokens and max_logit_rows >= max_num_seqs (see LlmEngine::create).
  // `kv_groups`: the KV cache groups of EngineConfig (empty = one full-attention group).
  LlmModelRunner(std::unique_ptr<model::Model> model, int32_t block_size, int32_t chunk_num_blocks,
                 int32_t max_num_seqs, int32_t max_num_batched_tokens,
                 const std::vector<KVCacheGroupSpec>& kv_groups = {});
  ~LlmModelRunner() override;

  base::Status set_num_kv_blocks(int32_t num_blocks) override;
  base::Result<ModelRunnerOutput> execute_model(const SchedulerOutput& scheduler_output) override;

  const model::Model& model() const { return *model_; }
  const PagedKvStorage& kv_storage() const { return storage_; }
  int64_t num_live_samplers() const { return static_cast<int64_t>(samplers_.size()); }

 private:
  Sampler& sampler_for(const ScheduledRequest& scheduled);
  // Fills `out` with the sampled token's log probability and the top `num_top` alternatives of the
  // raw model distribution `logits` [vocab].
  void compute_logprobs(const float* logits, int32_t token, int32_t num_top, TokenLogprobs& out);

  std::unique_ptr<model::Model> model_;
  int64_t vocab_size_;
  KvLayerMap kv_layers_;
  PagedKvStorage storage_;
  std::unordered_map<std::string, std::unique_ptr<Sampler>> samplers_;
  std::mt19937_64 seed_rng_;  // seeds requests that did not ask for one
  // Per-step workspaces, reserved at construction.
  std::vector<int32_t> tokens_;                 // [max_num_batched_tokens]
  std::vector<model::SeqSlice> seqs_;           // [max_num_seqs]
  std::vector<PagedKvCache> caches_;            // [max_num_seqs]
  std::vector<int64_t> logit_rows_;             // [max_num_seqs]
  std::vector<int32_t> row_request_;            // [max_num_seqs] scheduled index of each logit row
  std::vector<float> logits_;                   // [vocab] the row the sampler may modify
  std::vector<std::pair<float, int32_t>> top_;  // [max top logprobs]
};

}  // namespace nibble::engine
