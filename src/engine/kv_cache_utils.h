// Prefix-cache hashing and KV cache layout descriptions (vLLM: vllm/v1/core/kv_cache_utils.py,
// vllm/v1/kv_cache_interface.py).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

namespace nibble::engine {

// 128-bit hash of a full block together with everything before it. Two independent 64-bit lanes
// make accidental collisions negligible; it is not a cryptographic hash (vLLM offers sha256 for
// multi-tenant deployments where users could craft collisions on purpose).
struct BlockHash {
  uint64_t hi = 0;
  uint64_t lo = 0;
  bool operator==(const BlockHash&) const = default;
};

struct BlockHashHasher {
  size_t operator()(const BlockHash& h) const {
    return static_cast<size_t>(h.lo ^ (h.hi * 0x9e3779b97f4a7c15ULL));
  }
};

// hash(parent_hash, token ids of the block, extra keys); parent of the first block is nullptr.
BlockHash hash_block_tokens(const BlockHash* parent_hash, std::span<const int32_t> block_token_ids,
                            std::span<const uint64_t> extra_keys);

// Which attention a group of layers uses. Only kFullAttention is implemented; sliding-window
// layers (gpt-oss alternates them) get their own group and manager later (vLLM:
// SlidingWindowManager), meanwhile a model may describe them as full attention (exact, uses more
// memory).
enum class AttentionKind { kFullAttention, kSlidingWindow };

struct KVCacheGroupSpec {
  std::vector<int32_t> layer_ids;
  AttentionKind kind = AttentionKind::kFullAttention;
  int32_t sliding_window_tokens = 0;  // only for kSlidingWindow
};

// How the KV cache is organised: one block pool shared by all groups (vLLM: KVCacheConfig).
struct KVCacheConfig {
  int32_t block_size_tokens = 16;
  int32_t num_blocks = 0;                // initial pool size
  int32_t max_num_blocks = 0;            // the pool may grow up to this (== num_blocks: fixed pool)
  std::vector<KVCacheGroupSpec> groups;  // empty = one full-attention group over all layers
};

inline int32_t cdiv(int32_t a, int32_t b) {
  return (a + b - 1) / b;
}

}  // namespace nibble::engine
