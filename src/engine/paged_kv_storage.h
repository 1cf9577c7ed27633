// The physical KV cache behind the BlockPool: block_id -> memory. Blocks live in chunks of
// chunk_num_blocks (one allocation each), so `--kv-cache auto` grows and shrinks the pool by
// whole chunks without moving a byte of KV that stays (only a last, partial chunk at a cap that is
// not whole chunks is remapped, its contents kept).
//
// One block holds, for every layer, K then V of block_size tokens:
//   [num_layers, 2 (K, V), block_size, num_kv_heads, head_dim] floats
// so one token's K (or V) of one layer is a contiguous [num_kv_heads, head_dim] row, and one
// layer's K of a block is a contiguous [block_size, num_kv_heads, head_dim] tile for attention.
//
// A model runner owns one of these, calls resize() from ModelRunner::set_num_kv_blocks, and hands
// attention a BlockTableView per request (same method names as model::KvCache, so an adapter to
// that interface is a few lines).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "base/status.h"

namespace nibble::engine {

class PagedKvStorage {
 public:
  PagedKvStorage(int32_t num_layers, int32_t num_kv_heads, int32_t head_dim, int32_t block_size,
                 int32_t chunk_num_blocks);

  // Makes blocks [0, num_blocks) addressable: allocates (zeroed and populated, so the memory is
  // really taken now and MemAvailable shows it) or frees whole chunks; the last chunk holds only
  // the blocks asked for (a cap need not be whole chunks). Existing blocks keep their contents. Chunks are
  // anonymous mappings of their own, so a freed chunk leaves the resident set at once whatever its size
  // (malloc would keep chunks under its mmap threshold, which it raises to the size of the last big block
  // freed, in its heap). resource_exhausted if mapping fails.
  base::Status resize(int32_t num_blocks);

  int32_t num_blocks() const { return num_blocks_; }
  int32_t block_size() const { return block_size_; }
  int64_t bytes_per_block() const { return block_floats_ * static_cast<int64_t>(sizeof(float)); }
  // num_blocks * bytes_per_block (each chunk page-rounded). Safe to read from any thread.
  int64_t allocated_bytes() const { return allocated_bytes_.load(std::memory_order_relaxed); }

  // [num_kv_heads, head_dim] of one token (slot `offset` of the block) in one layer.
  float* key(int32_t block_id, int32_t layer, int32_t offset) {
    return block(block_id) + key_offset(layer, offset);
  }
  float* value(int32_t block_id, int32_t layer, int32_t offset) {
    return block(block_id) + key_offset(layer, offset) + layer_floats_ / 2;
  }
  // [block_size, num_kv_heads, head_dim] K (or V) tile of one layer in one block.
  float* key_tile(int32_t block_id, int32_t layer) { return block(block_id) + layer * layer_floats_; }
  float* value_tile(int32_t block_id, int32_t layer) { return key_tile(block_id, layer) + layer_floats_ / 2; }

 private:
  float* block(int32_t block_id) {
    NIBBLE_CHECK(block_id >= 0 && block_id < num_blocks_, "KV block id out of range");
    return chunks_[static_cast<size_t>(block_id / chunk_num_blocks_)].get() +
           static_cast<int64_t>(block_id % chunk_num_blocks_) * block_floats_;
  }
  int64_t key_offset(int32_t layer, int32_t offset) const {
    return layer * layer_floats_ + offset * token_floats_;
  }

  int32_t block_size_;
  int32_t chunk_num_blocks_;
  int64_t token_floats_;  // num_kv_heads * head_dim
  int64_t layer_floats_;  // 2 * block_size * token_floats_
  int64_t block_floats_;  // num_layers * layer_floats_
  int32_t num_blocks_ = 0;
  std::atomic<int64_t> allocated_bytes_{0};  // sum of the chunks' bytes
  struct ChunkUnmapper {
    size_t num_bytes = 0;
    void operator()(float* chunk) const;
  };
  using ChunkPtr = std::unique_ptr<float[], ChunkUnmapper>;
  // [num_chunks][chunk_num_blocks * block_floats_]; the last one may hold fewer blocks.
  std::vector<ChunkPtr> chunks_;
};

// One request's view of the storage through its block table: position p lives in block
// block_ids[p / block_size] at offset p % block_size.
class BlockTableView {
 public:
  BlockTableView(PagedKvStorage* storage, std::span<const int32_t> block_ids)
      : storage_(storage), block_ids_(block_ids) {}

  float* key(int64_t layer, int64_t pos) {
    return storage_->key(block_id(pos), static_cast<int32_t>(layer),
                         static_cast<int32_t>(pos % storage_->block_size()));
  }
  float* value(int64_t layer, int64_t pos) {
    return storage_->value(block_id(pos), static_cast<int32_t>(layer),
                           static_cast<int32_t>(pos % storage_->block_size()));
  }
  int64_t max_positions() const { return static_cast<int64_t>(block_ids_.size()) * storage_->block_size(); }

 private:
  int32_t block_id(int64_t pos) const {
    const auto idx = static_cast<size_t>(pos / storage_->block_size());
    NIBBLE_CHECK(pos >= 0 && idx < block_ids_.size(), "position beyond the block table");
    return block_ids_[idx];
  }

  PagedKvStorage* storage_;
  std::span<const int32_t> block_ids_;
};

}  // namespace nibble::engine
