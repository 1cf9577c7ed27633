// A pool of fixed-size KV blocks with ref counts and a prefix cache (vLLM:
// vllm/v1/core/block_pool.py). The pool owns only bookkeeping; the KV tensors live in the model
// runner, addressed by block_id.
//
// Every block is either referenced (ref_cnt > 0, held by one or more requests' block tables) or
// in the free queue (ref_cnt == 0). A free block may still carry a block hash: its KV is valid
// and reusable by a prefix-cache hit until the block is handed out again (eviction). The free
// queue is in eviction order: its front is the least recently freed block.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

#include "engine/kv_cache_utils.h"

namespace nibble::engine {

struct KVCacheBlock {
  int32_t block_id = 0;
  int32_t ref_cnt = 0;
  std::optional<BlockHash> block_hash;  // set while the block is registered in the prefix cache
  // Intrusive links of the free queue (null when not in it, or at an end).
  KVCacheBlock* prev_free = nullptr;
  KVCacheBlock* next_free = nullptr;
  bool in_free_queue = false;
};

// Doubly-linked list of free blocks: O(1) pop from the front, append, and removal from the middle
// (a prefix-cache hit on a free block takes it out of the queue).
class FreeKVCacheBlockQueue {
 public:
  int32_t num_free_blocks() const { return num_free_blocks_; }
  KVCacheBlock* popleft();
  void remove(KVCacheBlock* block);
  void append(KVCacheBlock* block);
  void appendleft(KVCacheBlock* block);
  std::vector<KVCacheBlock*> get_all_free_blocks() const;  // front to back

 private:
  KVCacheBlock* head_ = nullptr;
  KVCacheBlock* tail_ = nullptr;
  int32_t num_free_blocks_ = 0;
};

class BlockPool {
 public:
  BlockPool(int32_t num_blocks, bool enable_caching);
  BlockPool(const BlockPool&) = delete;
  BlockPool& operator=(const BlockPool&) = delete;

  int32_t num_blocks() const { return static_cast<int32_t>(blocks_.size()); }
  int32_t get_num_free_blocks() const { return free_block_queue_.num_free_blocks(); }
  // Fraction of blocks referenced by requests, in [0, 1]. Cached-but-free blocks count as free.
  double get_usage() const;
  bool enable_caching() const { return enable_caching_; }

  // Takes `num_blocks` blocks from the front of the free queue (evicting their cached hashes),
  // each with ref_cnt 1. Requires num_blocks <= get_num_free_blocks().
  std::vector<KVCacheBlock*> get_new_blocks(int32_t num_blocks);
  // Drops one reference from each block; blocks reaching 0 are appended to the free queue in the
  // given order (callers pass a request's blocks tail first so its tail is evicted first).
  void free_blocks(std::span<KVCacheBlock* const> ordered_blocks);
  // Adds one reference to each block (prefix-cache hit), taking free ones out of the free queue.
  void touch(std::span<KVCacheBlock* const> blocks);
  // The cached block holding `block_hash`, or null.
  KVCacheBlock* get_cached_block(const BlockHash& block_hash) const;
  // Registers blocks[num_cached_blocks, num_full_blocks) of a request under block_hashes[i].
  // Blocks already carrying a hash, and hashes already cached by another block, are skipped.
  void cache_full_blocks(std::span<KVCacheBlock* const> blocks, std::span<const BlockHash> block_hashes,
                         int32_t num_cached_blocks, int32_t num_full_blocks);
  // Forgets every cached hash; fails (returns false) while any block is referenced.
  bool reset_prefix_cache();

  // Growth for `--kv-cache auto`: appends `num_blocks` fresh blocks (ids continue after the last)
  // at the front of the free queue, so they are used before any cached block is evicted.
  void grow(int32_t num_blocks);
  // How many blocks at the tail (highest ids) are free, i.e. could be removed by shrink().
  int32_t num_free_tail_blocks() const;
  // Removes the highest `num_blocks` block ids; they must all be free. Their cached hashes go.
  void shrink(int32_t num_blocks);

  // For tests and invariant checks.
  const KVCacheBlock& block(int32_t block_id) const { return blocks_[static_cast<size_t>(block_id)]; }
  int32_t num_cached_blocks() const { return static_cast<int32_t>(cached_block_hash_to_block_.size()); }
  std::vector<KVCacheBlock*> free_queue_snapshot() const { return free_block_queue_.get_all_free_blocks(); }

 private:
  void maybe_evict_cached_block(KVCacheBlock* block);

  bool enable_caching_;
  std::deque<KVCacheBlock> blocks_;  // [num_blocks]; a deque keeps addresses stable on grow/shrink
  FreeKVCacheBlockQueue free_block_queue_;
  std::unordered_map<BlockHash, KVCacheBlock*, BlockHashHasher> cached_block_hash_to_block_;
};

}  // namespace nibble::engine
