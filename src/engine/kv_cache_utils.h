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

// Which attention a group of layers uses (vLLM: FullAttentionSpec / SlidingWindowSpec). A model
// that mixes both (gpt-oss alternates them) gets one group per kind: every request then has one
// block table per group over the shared pool, and a sliding-window group frees the blocks whose
// positions have all fallen out of the window (their table entries become null, id -1).
inline constexpr int32_t kNullBlockId = -1;  // a block table entry whose block was freed

enum class AttentionKind { kFullAttention, kSlidingWindow };

struct KVCacheGroupSpec {
  std::vector<int32_t> layer_ids;
  AttentionKind kind = AttentionKind::kFullAttention;
  int32_t sliding_window_tokens = 0;  // only for kSlidingWindow: keys per query, itself included
};

// How the KV cache is organised: one block pool shared by all groups (vLLM: KVCacheConfig). A
// block holds block_size tokens of as many layers as the largest group has, so a block can serve
// any group.
struct KVCacheConfig {
  int32_t block_size_tokens = 16;
  int32_t num_blocks = 0;                // initial pool size
  int32_t max_num_blocks = 0;            // the pool may grow up to this (== num_blocks: fixed pool)
  std::vector<KVCacheGroupSpec> groups;  // empty = one full-attention group over all layers
};

inline int32_t cdiv(int32_t a, int32_t b) {
  return (a + b - 1) / b;
}

// The most blocks one request of `num_tokens` tokens holds at once over all `groups` (empty = one
// full-attention group) when a step computes at most `max_step_tokens` of its tokens: a
// full-attention group holds all of them, a sliding-window group the window before the step's
// first query, the step's tokens and one partial block.
int64_t max_blocks_per_request(const std::vector<KVCacheGroupSpec>& groups, int32_t block_size,
                               int64_t num_tokens, int64_t max_step_tokens);

}  // namespace nibble::engine
