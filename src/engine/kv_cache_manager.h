// Per-request KV block tables over a BlockPool, with prefix caching (vLLM:
// vllm/v1/core/kv_cache_manager.py and single_type_kv_cache_manager.py FullAttentionManager).
//
// Flow per request: get_computed_blocks() once when it leaves the waiting queue (prefix-cache
// lookup), then allocate_slots() every step it is scheduled, cache_blocks() after the step's KV
// was written, and free() when it finishes, is aborted or preempted.
//
// Prefix-cache registration happens after the step ran (cache_blocks), not inside
// allocate_slots as in vLLM: a block is only shared once its KV is really written, so the model
// runner may process a batch's requests in any order.
//
// Several KV cache groups (a model mixing full and sliding-window attention): each request has one
// block table per group; allocate_slots gives every group the blocks the step needs, and in a
// sliding-window group first frees the blocks no query of this step or later can see (their
// entries become null). Prefix caching needs a single full-attention group and is off otherwise.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "base/status.h"
#include "engine/block_pool.h"
#include "engine/kv_cache_utils.h"
#include "engine/request.h"

namespace nibble::engine {

// The blocks of one KV cache group's table; null where a sliding window freed the block.
using KVCacheBlocks = std::vector<KVCacheBlock*>;

struct PrefixCacheStats {
  int64_t requests = 0;  // lookups: one per admitted request (resumptions after preemption excluded)
  int64_t queries = 0;   // tokens looked up
  int64_t hits = 0;      // tokens found in the cache
};

class KVCacheManager {
 public:
  // Asked for more blocks when allocate_slots finds too few free; returns how many blocks the
  // model runner now backs beyond the pool's current size (0 = cannot grow). The manager then
  // grows the pool by that many. Unset = fixed pool.
  using GrowFn = std::function<int32_t(int32_t current_num_blocks, int32_t num_blocks_short)>;

  static base::Result<std::unique_ptr<KVCacheManager>> create(const KVCacheConfig& config,
                                                              int32_t max_model_len, bool enable_caching);

  void set_grow_fn(GrowFn fn) { grow_fn_ = std::move(fn); }

  // The longest run of cached full blocks at the start of the request's tokens, and the number of
  // tokens they hold. Never covers the whole sequence: the last token is always recomputed, since
  // its logits are needed.
  std::pair<KVCacheBlocks, int32_t> get_computed_blocks(Request& request);
  // Counts a lookup in the prefix-cache stats; the Scheduler calls it once per request, when it
  // is first admitted (not while it waits for room, nor when it resumes after preemption).
  void record_prefix_cache_lookup(const Request& request, int32_t num_hit_tokens);

  // Makes room for `num_new_tokens` more tokens after request.num_computed_tokens (+ the
  // `num_new_computed_tokens` of `new_computed_blocks` from get_computed_blocks, which are
  // claimed here). Returns the newly allocated blocks, or nullopt when the pool (after trying to
  // grow) has too few free blocks; nothing changes then.
  std::optional<KVCacheBlocks> allocate_slots(Request& request, int32_t num_new_tokens,
                                              int32_t num_new_computed_tokens = 0,
                                              const KVCacheBlocks& new_computed_blocks = {});

  // Registers the request's full blocks whose KV is written (first `num_computed_tokens` tokens).
  void cache_blocks(Request& request, int32_t num_computed_tokens);

  // Returns all of the request's blocks to the pool (tail first, so the tail is evicted first).
  void free(Request& request);

  // The request's block table of group 0 (block ids in order); empty if it holds none.
  std::vector<int32_t> get_block_ids(const std::string& request_id) const;
  // Every group's table (kNullBlockId where a sliding window freed the block); empty if none.
  std::vector<std::vector<int32_t>> get_group_block_ids(const std::string& request_id) const;
  const KVCacheBlocks* get_blocks(const std::string& request_id, int32_t group = 0) const;
  int32_t num_groups() const { return static_cast<int32_t>(groups_.size()); }
  const std::vector<KVCacheGroupSpec>& groups() const { return groups_; }
  // The most blocks one request of `num_tokens` tokens holds at once when a step computes at most
  // `max_step_tokens` of them (sliding-window groups hold only the window and the step's tokens).
  int64_t max_blocks_per_request(int64_t num_tokens, int64_t max_step_tokens) const;
  int32_t num_requests_with_blocks() const { return static_cast<int32_t>(req_to_blocks_.size()); }

  // Fraction of the current pool held by requests.
  double usage() const { return block_pool_.get_usage(); }
  // Takes the counters accumulated since the last call.
  PrefixCacheStats make_prefix_cache_stats();
  bool reset_prefix_cache() { return block_pool_.reset_prefix_cache(); }

  int32_t block_size() const { return block_size_; }
  int32_t max_num_blocks() const { return max_num_blocks_; }
  BlockPool& block_pool() { return block_pool_; }
  const BlockPool& block_pool() const { return block_pool_; }

  // Removes up to `max_blocks_to_remove` free blocks from the pool's tail, but keeps at least
  // `min_num_blocks`. Returns how many were removed (the caller then releases their memory).
  int32_t shrink(int32_t max_blocks_to_remove, int32_t min_num_blocks);

 private:
  KVCacheManager(const KVCacheConfig& config, int32_t max_model_len, bool enable_caching);

  // Frees the blocks of a sliding-window group's table that no query at a position >=
  // `first_query_pos` can see.
  void free_out_of_window(KVCacheBlocks& table, const KVCacheGroupSpec& group, int32_t first_query_pos);

  int32_t block_size_;
  int32_t max_model_len_;
  int32_t max_num_blocks_;
  std::vector<KVCacheGroupSpec> groups_;  // >= 1 (a single full-attention group by default)
  bool enable_caching_;
  BlockPool block_pool_;
  GrowFn grow_fn_;
  std::unordered_map<std::string, std::vector<KVCacheBlocks>> req_to_blocks_;  // [num_groups] tables
  std::unordered_map<std::string, int32_t> num_cached_block_;  // blocks already registered per request
  PrefixCacheStats prefix_cache_stats_;
};

}  // namespace nibble::engine
