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

namespace {

// Fresh zeroed memory, faulted in now (so the memory is taken at growth, not at first use).
void* map_chunk(size_t num_bytes) {
  int flags = MAP_PRIVATE | MAP_ANONYMOUS;
#ifdef MAP_POPULATE
  flags |= MAP_POPULATE;
#endif
  void* p = ::mmap(nullptr, num_bytes, PROT_READ | PROT_WRITE, flags, -1, 0);
  return p == MAP_FAILED ? nullptr : p;
}

}  // namespace

base::Status PagedKvStorage::resize(int32_t num_blocks) {
  if (num_blocks < 0) return base::invalid_argument("KV cache: negative block count");
  const auto num_chunks = static_cast<size_t>((num_blocks + chunk_num_blocks_ - 1) / chunk_num_blocks_);
  // Chunk i holds blocks [i * chunk_num_blocks_, ...): all but the last are full; the last holds
  // only the blocks asked for, so a cap that is not a whole number of chunks is not overshot.
  auto chunk_bytes_for = [&](size_t i) {
    const int64_t blocks =
        std::min<int64_t>(chunk_num_blocks_, num_blocks - static_cast<int64_t>(i) * chunk_num_blocks_);
    return static_cast<size_t>(blocks * bytes_per_block());
  };
  auto publish = [&] {
    int64_t total = 0;
    for (const auto& c : chunks_) total += static_cast<int64_t>(c.get_deleter().num_bytes);
    allocated_bytes_.store(total, std::memory_order_relaxed);
  };
  auto fail = [&](size_t num_bytes) {
    const int err = errno;
    num_blocks_ = std::min<int32_t>(num_blocks_, static_cast<int32_t>(chunks_.size()) * chunk_num_blocks_);
    publish();
    return base::resource_exhausted("KV cache: cannot allocate " + std::to_string(num_bytes) + " bytes for " +
                                    std::to_string(chunk_num_blocks_) +
                                    " more blocks: " + std::strerror(err));
  };
  while (chunks_.size() > num_chunks) chunks_.pop_back();
  // The last chunk kept may be partial (at a cap) and need to change size: remap it, keeping its
  // contents (blocks in use stay where their ids say; nothing holds their addresses across steps).
  if (!chunks_.empty()) {
    const size_t i = chunks_.size() - 1;
    const size_t old_bytes = chunks_[i].get_deleter().num_bytes;
    const size_t new_bytes = chunk_bytes_for(i);
    if (new_bytes != old_bytes) {
      void* p = ::mremap(chunks_[i].get(), old_bytes, new_bytes, MREMAP_MAYMOVE);
      if (p == MAP_FAILED) return fail(new_bytes - std::min(new_bytes, old_bytes));
      chunks_[i].release();
      chunks_[i] = ChunkPtr(static_cast<float*>(p), ChunkUnmapper{new_bytes});
      // Take the new pages now (they read as zeros either way).
      if (new_bytes > old_bytes) std::memset(static_cast<char*>(p) + old_bytes, 0, new_bytes - old_bytes);
    }
  }
  while (chunks_.size() < num_chunks) {
    const size_t num_bytes = chunk_bytes_for(chunks_.size());
    void* chunk = map_chunk(num_bytes);
    if (chunk == nullptr) return fail(num_bytes);
    chunks_.emplace_back(static_cast<float*>(chunk), ChunkUnmapper{num_bytes});
  }
  publish();
  num_blocks_ = num_blocks;
  return base::ok_status();
}

}  // namespace nibble::engine
