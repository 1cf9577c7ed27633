#include "engine/block_pool.h"

#include "base/status.h"

namespace nibble::engine {

KVCacheBlock* FreeKVCacheBlockQueue::popleft() {
  KVCacheBlock* block = head_;
  NIBBLE_CHECK(block != nullptr, "popleft from an empty free block queue");
  remove(block);
  return block;
}

void FreeKVCacheBlockQueue::remove(KVCacheBlock* block) {
  NIBBLE_CHECK(block->in_free_queue,
               "block " + std::to_string(block->block_id) + " is not in the free queue");
  if (block->prev_free)
    block->prev_free->next_free = block->next_free;
  else
    head_ = block->next_free;
  if (block->next_free)
    block->next_free->prev_free = block->prev_free;
  else
    tail_ = block->prev_free;
  block->prev_free = block->next_free = nullptr;
  block->in_free_queue = false;
  --num_free_blocks_;
}

void FreeKVCacheBlockQueue::append(KVCacheBlock* block) {
  NIBBLE_CHECK(!block->in_free_queue, "block " + std::to_string(block->block_id) + " is already free");
  block->prev_free = tail_;
  block->next_free = nullptr;
  if (tail_)
    tail_->next_free = block;
  else
    head_ = block;
  tail_ = block;
  block->in_free_queue = true;
  ++num_free_blocks_;
}

void FreeKVCacheBlockQueue::appendleft(KVCacheBlock* block) {
  NIBBLE_CHECK(!block->in_free_queue, "block " + std::to_string(block->block_id) + " is already free");
  block->prev_free = nullptr;
  block->next_free = head_;
  if (head_)
    head_->prev_free = block;
  else
    tail_ = block;
  head_ = block;
  block->in_free_queue = true;
  ++num_free_blocks_;
}

std::vector<KVCacheBlock*> FreeKVCacheBlockQueue::get_all_free_blocks() const {
  std::vector<KVCacheBlock*> out;
  out.reserve(static_cast<size_t>(num_free_blocks_));
  for (KVCacheBlock* b = head_; b; b = b->next_free) out.push_back(b);
  return out;
}

BlockPool::BlockPool(int32_t num_blocks, bool enable_caching) : enable_caching_(enable_caching) {
  NIBBLE_CHECK(num_blocks >= 0, "negative block count");
  grow(num_blocks);
}

double BlockPool::get_usage() const {
  if (blocks_.empty()) return 0.0;
  return 1.0 - static_cast<double>(get_num_free_blocks()) / static_cast<double>(blocks_.size());
}

void BlockPool::maybe_evict_cached_block(KVCacheBlock* block) {
  if (!block->block_hash) return;
  auto it = cached_block_hash_to_block_.find(*block->block_hash);
  if (it != cached_block_hash_to_block_.end() && it->second == block) cached_block_hash_to_block_.erase(it);
  block->block_hash.reset();
}

std::vector<KVCacheBlock*> BlockPool::get_new_blocks(int32_t num_blocks) {
  NIBBLE_CHECK(num_blocks >= 0 && num_blocks <= get_num_free_blocks(),
               "get_new_blocks(" + std::to_string(num_blocks) + ") with " +
                   std::to_string(get_num_free_blocks()) + " free");
  std::vector<KVCacheBlock*> out;
  out.reserve(static_cast<size_t>(num_blocks));
  for (int32_t i = 0; i < num_blocks; ++i) {
    KVCacheBlock* block = free_block_queue_.popleft();
    NIBBLE_CHECK(block->ref_cnt == 0, "free block with references");
    maybe_evict_cached_block(block);
    block->ref_cnt = 1;
    out.push_back(block);
  }
  return out;
}

void BlockPool::free_blocks(std::span<KVCacheBlock* const> ordered_blocks) {
  for (KVCacheBlock* block : ordered_blocks) {
    NIBBLE_CHECK(block->ref_cnt > 0, "double free of block " + std::to_string(block->block_id));
    if (--block->ref_cnt == 0) free_block_queue_.append(block);
  }
}

void BlockPool::touch(std::span<KVCacheBlock* const> blocks) {
  for (KVCacheBlock* block : blocks) {
    if (block->ref_cnt == 0) free_block_queue_.remove(block);
    ++block->ref_cnt;
  }
}

KVCacheBlock* BlockPool::get_cached_block(const BlockHash& block_hash) const {
  auto it = cached_block_hash_to_block_.find(block_hash);
  return it == cached_block_hash_to_block_.end() ? nullptr : it->second;
}

void BlockPool::cache_full_blocks(std::span<KVCacheBlock* const> blocks,
                                  std::span<const BlockHash> block_hashes, int32_t num_cached_blocks,
                                  int32_t num_full_blocks) {
  if (!enable_caching_) return;
  NIBBLE_CHECK(num_full_blocks <= static_cast<int32_t>(blocks.size()) &&
                   num_full_blocks <= static_cast<int32_t>(block_hashes.size()),
               "cache_full_blocks beyond the request's blocks or hashes");
  for (int32_t i = num_cached_blocks; i < num_full_blocks; ++i) {
    KVCacheBlock* block = blocks[static_cast<size_t>(i)];
    if (block->block_hash) continue;  // a prefix-cache hit: already registered
    const BlockHash& hash = block_hashes[static_cast<size_t>(i)];
    // Another request computed the same block first (same step); keep that one, this stays private.
    if (cached_block_hash_to_block_.contains(hash)) continue;
    block->block_hash = hash;
    cached_block_hash_to_block_.emplace(hash, block);
  }
}

bool BlockPool::reset_prefix_cache() {
  if (get_num_free_blocks() != num_blocks()) return false;
  cached_block_hash_to_block_.clear();
  for (KVCacheBlock& block : blocks_) block.block_hash.reset();
  return true;
}

void BlockPool::grow(int32_t num_blocks) {
  NIBBLE_CHECK(num_blocks >= 0, "grow by a negative count");
  const int32_t first_id = this->num_blocks();
  for (int32_t i = 0; i < num_blocks; ++i) {
    blocks_.push_back(KVCacheBlock{});
    blocks_.back().block_id = first_id + i;
  }
  // Front of the queue, lowest id first: fresh blocks are used before cached ones are evicted.
  for (int32_t i = num_blocks - 1; i >= 0; --i)
    free_block_queue_.appendleft(&blocks_[static_cast<size_t>(first_id + i)]);
}

int32_t BlockPool::num_free_tail_blocks() const {
  int32_t count = 0;
  for (auto it = blocks_.rbegin(); it != blocks_.rend() && it->ref_cnt == 0; ++it) ++count;
  return count;
}

void BlockPool::shrink(int32_t num_blocks) {
  NIBBLE_CHECK(num_blocks >= 0 && num_blocks <= num_free_tail_blocks(),
               "shrink(" + std::to_string(num_blocks) + ") but only " +
                   std::to_string(num_free_tail_blocks()) + " tail blocks are free");
  for (int32_t i = 0; i < num_blocks; ++i) {
    KVCacheBlock* block = &blocks_.back();
    free_block_queue_.remove(block);
    maybe_evict_cached_block(block);
    blocks_.pop_back();
  }
}

}  // namespace nibble::engine
