// The BPE model of tokenizer.json ("model": {"type": "BPE", ...}): vocab, ranked merges,
// byte_fallback, unk/fuse_unk, ignore_merges, continuing_subword_prefix / end_of_word_suffix.
//
// In byte-level mode (a ByteLevel pre-tokenizer is present) the model consumes the raw bytes of a
// piece: byte b stands for the byte-level alphabet character byte_to_char(b), exactly as if the
// piece had been mapped first, but without building the mapped string.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/status.h"
#include "tokenizer/string_id_map.h"

namespace nibble::tokenizer {

// Open-addressing map from a symbol pair (left_id << 32 | right_id) to its merge rank and result.
class PairMergeMap {
 public:
  struct Merge {
    uint32_t rank;
    uint32_t new_id;
  };
  void reserve(size_t num_pairs);
  // Inserts or overwrites (a later duplicate merge wins, as in tokenizers).
  void insert(uint64_t key, Merge merge);
  const Merge* find(uint64_t key) const {
    size_t slot = hash(key) & mask_;
    while (true) {
      const Entry& e = entries_[slot];
      if (e.key == key) return &e.merge;
      if (e.key == kEmpty) return nullptr;
      slot = (slot + 1) & mask_;
    }
  }

 private:
  static constexpr uint64_t kEmpty = ~uint64_t{0};
  struct Entry {
    uint64_t key = kEmpty;
    Merge merge{};
  };
  static size_t hash(uint64_t key) { return static_cast<size_t>((key * 0x9E3779B97F4A7C15ull) >> 29); }
  std::vector<Entry> entries_ = std::vector<Entry>(1);
  size_t mask_ = 0;
  size_t num_used_ = 0;
};

class BpeModel {
 public:
  static base::Result<std::unique_ptr<BpeModel>> parse(const nlohmann::json& spec, bool byte_level,
                                                       const std::string& where);

  // Appends the ids of one pre-tokenized piece.
  void tokenize(std::string_view piece, std::vector<uint32_t>* ids) const;

  std::optional<uint32_t> token_to_id(std::string_view token) const;
  // nullptr when the model has no token with this id.
  const std::string* id_to_token(uint32_t id) const;
  // 1 + the largest id of the model vocabulary.
  size_t num_ids() const { return id_to_token_.size(); }
  bool byte_level() const { return byte_level_; }

 private:
  BpeModel() = default;
  void initial_symbols(std::string_view piece, std::vector<uint32_t>* symbols) const;
  void merge_symbols(std::vector<uint32_t>* symbols) const;
  void merge_symbols_long(std::vector<uint32_t>* symbols) const;
  std::optional<uint32_t> lookup_piece(std::string_view piece) const;

  bool byte_level_ = false;
  bool byte_fallback_ = false;
  bool fuse_unk_ = false;
  bool ignore_merges_ = false;
  std::optional<uint32_t> unk_id_;
  std::string continuing_subword_prefix_;
  std::string end_of_word_suffix_;

  StringIdMap vocab_;                     // token string -> id
  std::vector<std::string> id_to_token_;  // id -> token string ("" for holes)
  std::vector<bool> id_present_;
  StringIdMap raw_vocab_;      // byte-level: raw bytes -> id
  int64_t byte_ids_[256];      // byte-level: id of each single byte, -1 if none
  int64_t fallback_ids_[256];  // byte_fallback: id of "<0xXX>", -1 if none
  PairMergeMap merges_;

  // Cache of recent pieces (bounded; skipped under contention).
  static constexpr size_t kCacheCapacity = 10000;
  static constexpr size_t kCacheMaxPieceBytes = 256;
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<uint32_t>> cache_;
};

}  // namespace nibble::tokenizer
