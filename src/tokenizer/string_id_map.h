// An open-addressing hash map from strings to token ids, for vocabularies of a few hundred
// thousand entries: one flat slot array (hash tag + index) and the keys in one vector, so lookups
// touch two cache lines instead of chasing std::unordered_map nodes.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace nibble::tokenizer {

class StringIdMap {
 public:
  static constexpr int64_t kMissing = -1;

  void reserve(size_t num_keys) {
    size_t capacity = 16;
    while (capacity < num_keys * 2) capacity *= 2;
    if (capacity <= slots_.size()) return;
    slots_.assign(capacity, Slot{});
    mask_ = capacity - 1;
    for (size_t i = 0; i < keys_.size(); ++i) place(hash(keys_[i]), static_cast<uint32_t>(i));
    keys_.reserve(num_keys);
    ids_.reserve(num_keys);
  }

  // Inserts `key`, or gives an existing key the new id.
  void insert_or_assign(std::string_view key, uint32_t id) {
    if ((keys_.size() + 1) * 2 > slots_.size()) reserve(keys_.size() * 2 + 8);
    const uint64_t h = hash(key);
    if (const int64_t index = find_index(key, h); index >= 0) {
      ids_[static_cast<size_t>(index)] = id;
      return;
    }
    keys_.emplace_back(key);
    ids_.push_back(id);
    place(h, static_cast<uint32_t>(keys_.size() - 1));
  }

  // The id of `key`, or kMissing.
  int64_t find(std::string_view key) const {
    if (slots_.empty()) return kMissing;
    const int64_t index = find_index(key, hash(key));
    return index < 0 ? kMissing : ids_[static_cast<size_t>(index)];
  }

  size_t size() const { return keys_.size(); }
  const std::string& key_at(size_t i) const { return keys_[i]; }
  uint32_t id_at(size_t i) const { return ids_[i]; }

 private:
  struct Slot {
    uint32_t tag = 0;           // upper hash bits, to skip most string compares
    uint32_t index_plus_1 = 0;  // 0 = empty
  };
  static uint64_t hash(std::string_view key) { return std::hash<std::string_view>{}(key); }
  void place(uint64_t h, uint32_t index) {
    size_t slot = h & mask_;
    while (slots_[slot].index_plus_1 != 0) slot = (slot + 1) & mask_;
    slots_[slot] = Slot{static_cast<uint32_t>(h >> 32), index + 1};
  }
  int64_t find_index(std::string_view key, uint64_t h) const {
    const auto tag = static_cast<uint32_t>(h >> 32);
    size_t slot = h & mask_;
    while (true) {
      const Slot& s = slots_[slot];
      if (s.index_plus_1 == 0) return -1;
      if (s.tag == tag && keys_[s.index_plus_1 - 1] == key) return s.index_plus_1 - 1;
      slot = (slot + 1) & mask_;
    }
  }

  std::vector<Slot> slots_;
  std::vector<std::string> keys_;
  std::vector<uint32_t> ids_;
  size_t mask_ = 0;
};

}  // namespace nibble::tokenizer
