#include "engine/paged_kv_storage.h"

#include <algorithm>
#include <new>
#include <string>

namespace nibble::engine {

PagedKvStorage::PagedKvStorage(int32_t num_layers, int32_t num_kv_heads, int32_t head_dim, int32_t block_size,
                               int32_t chunk_num_blocks)
    : block_size_(block_size),
      chunk_num_blocks_(chunk_num_blocks),
      token_floats_(int64_t{num_kv_heads} * head_dim),
      layer_floats_(2 * int64_t{block_size} * token_floats_),
      block_floats_(int64_t{num_layers} * layer_floats_) {
  NIBBLE_CHECK(num_layers > 0 && num_kv_heads > 0 && head_dim > 0 && block_size > 0 && chunk_num_blocks > 0,
               "PagedKvStorage dimensions must be positive");
}

int64_t PagedKvStorage::allocated_bytes() const {
  return static_cast<int64_t>(chunks_.size()) * chunk_num_blocks_ * bytes_per_block();
}

base::Status PagedKvStorage::resize(int32_t num_blocks) {
  if (num_blocks < 0) return base::invalid_argument("KV cache: negative block count");
  const auto num_chunks = static_cast<size_t>((num_blocks + chunk_num_blocks_ - 1) / chunk_num_blocks_);
  while (chunks_.size() > num_chunks) chunks_.pop_back();
  while (chunks_.size() < num_chunks) {
    const auto chunk_floats = static_cast<size_t>(chunk_num_blocks_) * static_cast<size_t>(block_floats_);
    float* chunk = new (std::nothrow) float[chunk_floats]();  // zeroed: the pages are taken now
    if (!chunk) {
      num_blocks_ = std::min<int32_t>(num_blocks_, static_cast<int32_t>(chunks_.size()) * chunk_num_blocks_);
      return base::resource_exhausted("KV cache: cannot allocate " +
                                      std::to_string(chunk_floats * sizeof(float)) + " bytes for " +
                                      std::to_string(chunk_num_blocks_) + " more blocks");
    }
    chunks_.emplace_back(chunk);
  }
  num_blocks_ = num_blocks;
  return base::ok_status();
}

}  // namespace nibble::engine
