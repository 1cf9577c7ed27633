#include "engine/kv_cache_utils.h"

#include <algorithm>

namespace nibble::engine {
namespace {

uint64_t mix64(uint64_t x) {  // the splitmix64 finaliser: a bijection with full avalanche
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

// One 64-bit lane: absorbs words through the finaliser, keyed so the two lanes differ.
struct Lane {
  uint64_t state;
  uint64_t key;
  void absorb(uint64_t word) { state = mix64(state ^ (word + key)) + (state << 7 | state >> 57); }
};

}  // namespace

BlockHash hash_block_tokens(const BlockHash* parent_hash, std::span<const int32_t> block_token_ids,
                            std::span<const uint64_t> extra_keys) {
  Lane a{0x6a09e667f3bcc908ULL, 0x243f6a8885a308d3ULL};
  Lane b{0xbb67ae8584caa73bULL, 0x13198a2e03707344ULL};
  auto absorb = [&](uint64_t word) {
    a.absorb(word);
    b.absorb(word);
  };
  // Domain separation: presence of a parent, the counts, then the data.
  absorb(parent_hash ? 1 : 0);
  if (parent_hash) {
    absorb(parent_hash->hi);
    absorb(parent_hash->lo);
  }
  absorb(block_token_ids.size());
  for (int32_t token_id : block_token_ids) absorb(static_cast<uint32_t>(token_id));
  absorb(extra_keys.size());
  for (uint64_t key : extra_keys) absorb(key);
  return BlockHash{mix64(a.state), mix64(b.state ^ a.state)};
}

int64_t max_blocks_per_request(const std::vector<KVCacheGroupSpec>& groups, int32_t block_size,
                               int64_t num_tokens, int64_t max_step_tokens) {
  const int64_t all = (num_tokens + block_size - 1) / block_size;
  if (groups.empty()) return all;
  int64_t total = 0;
  for (const KVCacheGroupSpec& group : groups) {
    if (group.kind == AttentionKind::kSlidingWindow) {
      const int64_t span = group.sliding_window_tokens - 1 + max_step_tokens;
      total += std::min(all, (span + block_size - 1) / block_size + 1);
    } else {
      total += all;
    }
  }
  return total;
}

}  // namespace nibble::engine
