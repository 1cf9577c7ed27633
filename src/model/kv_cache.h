// The KV cache seam. Attention reads and writes K/V only through this interface, so the engine
// can swap the contiguous cache for a paged one (block tables) without touching the layers.
#pragma once

#include <cstdint>
#include <vector>

namespace nibble::model {

class KvCache {
 public:
  virtual ~KvCache() = default;
  // K and V of one token of one sequence: [num_kv_heads, head_dim] fp32, writable.
  virtual float* key(int64_t layer, int64_t pos) = 0;
  virtual float* value(int64_t layer, int64_t pos) = 0;
  // The number of positions this cache holds.
  virtual int64_t max_positions() const = 0;
};

// One sequence, all positions in one buffer: [num_layers, max_positions, num_kv_heads, head_dim].
class ContiguousKvCache final : public KvCache {
 public:
  ContiguousKvCache(int64_t num_layers, int64_t max_positions, int64_t num_kv_heads, int64_t head_dim)
      : max_positions_(max_positions),
        token_floats_(num_kv_heads * head_dim),
        keys_(static_cast<size_t>(num_layers * max_positions * token_floats_)),
        values_(keys_.size()) {}

  float* key(int64_t layer, int64_t pos) override { return keys_.data() + offset(layer, pos); }
  float* value(int64_t layer, int64_t pos) override { return values_.data() + offset(layer, pos); }
  int64_t max_positions() const override { return max_positions_; }

 private:
  size_t offset(int64_t layer, int64_t pos) const {
    return static_cast<size_t>((layer * max_positions_ + pos) * token_floats_);
  }

  int64_t max_positions_;
  int64_t token_floats_;
  std::vector<float> keys_;    // [num_layers, max_positions, num_kv_heads, head_dim]
  std::vector<float> values_;  // [num_layers, max_positions, num_kv_heads, head_dim]
};

}  // namespace nibble::model
