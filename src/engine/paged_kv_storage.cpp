#include "engine/paged_kv_storage.h"

#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
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

void PagedKvStorage::ChunkUnmapper::operator()(float* chunk) const {
  if (chunk != nullptr) ::munmap(chunk, num_bytes);
}

base::Status PagedKvStorage::resize(int32_t num_blocks) {
  if (num_blocks < 0) return base::invalid_argument("KV cache: negative block count");
  const auto num_chunks = static_cast<size_t>((num_blocks + chunk_num_blocks_ - 1) / chunk_num_blocks_);
  const int64_t chunk_bytes = int64_t{chunk_num_blocks_} * bytes_per_block();
  while (chunks_.size() > num_chunks) chunks_.pop_back();
  allocated_bytes_.store(static_cast<int64_t>(chunks_.size()) * chunk_bytes, std::memory_order_relaxed);
  while (chunks_.size() < num_chunks) {
    const auto num_bytes = static_cast<size_t>(chunk_bytes);
    int flags = MAP_PRIVATE | MAP_ANONYMOUS;
#ifdef MAP_POPULATE
    flags |= MAP_POPULATE;  // zero pages faulted in now: the memory is taken at growth, not later
#endif
    void* chunk = ::mmap(nullptr, num_bytes, PROT_READ | PROT_WRITE, flags, -1, 0);
    if (chunk == MAP_FAILED) {
      const int err = errno;
      num_blocks_ = std::min<int32_t>(num_blocks_, static_cast<int32_t>(chunks_.size()) * chunk_num_blocks_);
      return base::resource_exhausted("KV cache: cannot allocate " + std::to_string(num_bytes) +
                                      " bytes for " + std::to_string(chunk_num_blocks_) +
                                      " more blocks: " + std::strerror(err));
    }
    chunks_.emplace_back(static_cast<float*>(chunk), ChunkUnmapper{num_bytes});
    allocated_bytes_.store(static_cast<int64_t>(chunks_.size()) * chunk_bytes, std::memory_order_relaxed);
  }
  num_blocks_ = num_blocks;
  return base::ok_status();
}

}  // namespace nibble::engine
