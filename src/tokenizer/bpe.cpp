#include "tokenizer/bpe.h"

#include <algorithm>
#include <cstdio>
#include <limits>
#include <nlohmann/json.hpp>
#include <queue>

#include "tokenizer/json_util.h"
#include "tokenizer/unicode.h"

namespace nibble::tokenizer {

void PairMergeMap::reserve(size_t num_pairs) {
  size_t capacity = 16;
  while (capacity < num_pairs * 2 + 2) capacity *= 2;
  entries_.assign(capacity, Entry{});
  mask_ = capacity - 1;
  num_used_ = 0;
}

void PairMergeMap::insert(uint64_t key, Merge merge) {
  if ((num_used_ + 1) * 2 > entries_.size()) {
    std::vector<Entry> old = std::move(entries_);
    reserve(old.size());
    for (const Entry& e : old) {
      if (e.key != kEmpty) insert(e.key, e.merge);
    }
  }
  size_t slot = hash(key) & mask_;
  while (entries_[slot].key != kEmpty && entries_[slot].key != key) slot = (slot + 1) & mask_;
  if (entries_[slot].key == kEmpty) ++num_used_;
  entries_[slot] = Entry{key, merge};
}

namespace {

uint64_t pair_key(uint32_t left, uint32_t right) {
  return (uint64_t{left} << 32) | right;
}

// Splits a merge entry ("a b" or ["a", "b"]) into its two tokens.
base::Status merge_parts(const nlohmann::json& entry, const std::string& where, std::string* a,
                         std::string* b) {
  if (entry.is_string()) {
    const std::string& s = entry.get_ref<const std::string&>();
    const size_t space = s.find(' ');
    if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos) {
      return base::corrupt(where + ": expected \"left right\" with exactly one space");
    }
    a->assign(s, 0, space);
    b->assign(s, space + 1, std::string::npos);
    return base::ok_status();
  }
  if (entry.is_array() && entry.size() == 2 && entry[0].is_string() && entry[1].is_string()) {
    *a = entry[0].get_ref<const std::string&>();
    *b = entry[1].get_ref<const std::string&>();
    return base::ok_status();
  }
  return base::corrupt(where + ": expected a \"left right\" string or a [left, right] pair");
}

}  // namespace

base::Result<std::unique_ptr<BpeModel>> BpeModel::parse(const nlohmann::json& spec, bool byte_level,
                                                        const std::string& where) {
  std::unique_ptr<BpeModel> model(new BpeModel());
  model->byte_level_ = byte_level;
  NIBBLE_ASSIGN_OR_RETURN(model->byte_fallback_, json_bool(spec, "byte_fallback", where, false));
  NIBBLE_ASSIGN_OR_RETURN(model->fuse_unk_, json_bool(spec, "fuse_unk", where, false));
  NIBBLE_ASSIGN_OR_RETURN(model->ignore_merges_, json_bool(spec, "ignore_merges", where, false));
  NIBBLE_ASSIGN_OR_RETURN(model->continuing_subword_prefix_,
                          json_string_or(spec, "continuing_subword_prefix", where, ""));
  NIBBLE_ASSIGN_OR_RETURN(model->end_of_word_suffix_, json_string_or(spec, "end_of_word_suffix", where, ""));
  if (const auto it = spec.find("dropout"); it != spec.end() && !it->is_null()) {
    if (!it->is_number() || it->get<double>() != 0.0) {
      return base::unsupported(where + ".dropout: BPE dropout is not supported");
    }
  }
  if (byte_level && (!model->continuing_subword_prefix_.empty() || !model->end_of_word_suffix_.empty())) {
    return base::unsupported(where + ": continuing_subword_prefix/end_of_word_suffix with ByteLevel");
  }

  const auto vocab_it = spec.find("vocab");
  if (vocab_it == spec.end() || !vocab_it->is_object())
    return base::corrupt(where + ".vocab: missing or not an object");
  // Ids index a dense table: check them all, and refuse ids far sparser than any real vocabulary,
  // before allocating it.
  uint64_t max_id = 0;
  for (const auto& [token, id_json] : vocab_it->items()) {
    if (!id_json.is_number_unsigned()) {
      return base::corrupt(where + ".vocab[\"" + token + "\"]: id must be an unsigned integer");
    }
    max_id = std::max<uint64_t>(max_id, id_json.get<uint64_t>());
  }
  if (!vocab_it->empty() && max_id >= 4 * vocab_it->size() + 65536) {
    return base::corrupt(where + ".vocab: ids are too sparse (largest id " + std::to_string(max_id) +
                         " for " + std::to_string(vocab_it->size()) + " tokens)");
  }
  const size_t num_ids = vocab_it->empty() ? 0 : static_cast<size_t>(max_id) + 1;
  model->id_to_token_.resize(num_ids);
  model->id_present_.assign(num_ids, false);
  model->vocab_.reserve(vocab_it->size());
  for (const auto& [token, id_json] : vocab_it->items()) {
    const auto id = static_cast<uint32_t>(id_json.get<uint64_t>());
    model->vocab_.insert_or_assign(token, id);
    model->id_to_token_[id] = token;
    model->id_present_[id] = true;
  }
  std::fill(std::begin(model->byte_ids_), std::end(model->byte_ids_), -1);
  std::fill(std::begin(model->fallback_ids_), std::end(model->fallback_ids_), -1);
  if (byte_level) {
    model->raw_vocab_.reserve(model->vocab_.size());
    for (size_t k = 0; k < model->vocab_.size(); ++k) {
      const std::string& token = model->vocab_.key_at(k);
      const uint32_t id = model->vocab_.id_at(k);
      std::string raw;
      bool ok = true;
      size_t pos = 0;
      if (find_invalid_utf8(token) != std::string::npos) continue;
      while (pos < token.size()) {
        const int b = char_to_byte(next_code_point(token, &pos));
        if (b < 0) {
          ok = false;
          break;
        }
        raw.push_back(static_cast<char>(b));
      }
      if (!ok) continue;
      if (raw.size() == 1) model->byte_ids_[static_cast<uint8_t>(raw[0])] = id;
      model->raw_vocab_.insert_or_assign(raw, id);
    }
  }
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    model->fallback_ids_[b] = model->vocab_.find(name);
  }

  NIBBLE_ASSIGN_OR_RETURN(const std::string unk, json_string_or(spec, "unk_token", where, ""));
  if (!unk.empty()) {
    const int64_t unk_id = model->vocab_.find(unk);
    if (unk_id < 0) return base::corrupt(where + ".unk_token: \"" + unk + "\" is not in the vocab");
    model->unk_id_ = static_cast<uint32_t>(unk_id);
  }

  NIBBLE_ASSIGN_OR_RETURN(const nlohmann::json* merges, json_array(spec, "merges", where));
  model->merges_.reserve(merges->size());
  const size_t prefix_len = model->continuing_subword_prefix_.size();
  std::string a, b, merged;
  for (size_t i = 0; i < merges->size(); ++i) {
    const std::string item_where = where + ".merges[" + std::to_string(i) + "]";
    NIBBLE_TRY(merge_parts((*merges)[i], item_where, &a, &b));
    const int64_t a_id = model->vocab_.find(a);
    const int64_t b_id = model->vocab_.find(b);
    if (a_id < 0) return base::corrupt(item_where + ": token \"" + a + "\" is not in the vocab");
    if (b_id < 0) return base::corrupt(item_where + ": token \"" + b + "\" is not in the vocab");
    merged = a;
    if (prefix_len > 0 && b.compare(0, prefix_len, model->continuing_subword_prefix_) == 0) {
      merged.append(b, prefix_len, std::string::npos);
    } else {
      merged += b;
    }
    const int64_t merged_id = model->vocab_.find(merged);
    if (merged_id < 0) {
      return base::corrupt(item_where + ": merged token \"" + merged + "\" is not in the vocab");
    }
    model->merges_.insert(pair_key(static_cast<uint32_t>(a_id), static_cast<uint32_t>(b_id)),
                          PairMergeMap::Merge{static_cast<uint32_t>(i), static_cast<uint32_t>(merged_id)});
  }
  return model;
}

std::optional<uint32_t> BpeModel::token_to_id(std::string_view token) const {
  const int64_t id = vocab_.find(token);
  if (id < 0) return std::nullopt;
  return static_cast<uint32_t>(id);
}

const std::string* BpeModel::id_to_token(uint32_t id) const {
  if (id >= id_to_token_.size() || !id_present_[id]) return nullptr;
  return &id_to_token_[id];
}

std::optional<uint32_t> BpeModel::lookup_piece(std::string_view piece) const {
  const auto& map = byte_level_ ? raw_vocab_ : vocab_;
  const int64_t id = map.find(piece);
  if (id < 0) return std::nullopt;
  return static_cast<uint32_t>(id);
}

void BpeModel::initial_symbols(std::string_view piece, std::vector<uint32_t>* symbols) const {
  // Unknown characters: byte fallback first, else (fused) unk, else dropped - as tokenizers does.
  int64_t pending_unk = -1;  // an unk id not yet emitted (for fuse_unk)
  std::string unit;
  size_t pos = 0;
  while (pos < piece.size()) {
    const size_t begin = pos;
    int64_t id = -1;
    unit.clear();
    if (byte_level_) {
      const auto b = static_cast<uint8_t>(piece[pos++]);
      id = byte_ids_[b];
      if (id < 0) append_utf8(&unit, byte_to_char(b));
    } else {
      pos += utf8_seq_len(static_cast<uint8_t>(piece[pos]));
      if (pos > piece.size()) pos = piece.size();
      if (begin > 0) unit += continuing_subword_prefix_;
      unit.append(piece.substr(begin, pos - begin));
      if (pos == piece.size()) unit += end_of_word_suffix_;
      id = vocab_.find(unit);
    }
    if (id >= 0) {
      if (pending_unk >= 0) symbols->push_back(static_cast<uint32_t>(pending_unk));
      pending_unk = -1;
      symbols->push_back(static_cast<uint32_t>(id));
      continue;
    }
    if (byte_fallback_) {
      bool all = true;
      for (const char c : unit) all = all && fallback_ids_[static_cast<uint8_t>(c)] >= 0;
      if (all) {
        if (pending_unk >= 0) symbols->push_back(static_cast<uint32_t>(pending_unk));
        pending_unk = -1;
        for (const char c : unit)
          symbols->push_back(static_cast<uint32_t>(fallback_ids_[static_cast<uint8_t>(c)]));
        continue;
      }
    }
    if (unk_id_) {
      if (pending_unk >= 0 && !fuse_unk_) symbols->push_back(static_cast<uint32_t>(pending_unk));
      pending_unk = *unk_id_;
    }
  }
  if (pending_unk >= 0) symbols->push_back(static_cast<uint32_t>(pending_unk));
}

void BpeModel::merge_symbols(std::vector<uint32_t>* symbols) const {
  std::vector<uint32_t>& s = *symbols;
  if (s.size() < 2) return;
  if (s.size() > 64) {
    merge_symbols_long(symbols);
    return;
  }
  // Short pieces: keep the rank of every adjacent pair and merge the lowest (leftmost on ties).
  constexpr uint32_t kNone = std::numeric_limits<uint32_t>::max();
  uint32_t ranks[64], new_ids[64];
  size_t n = s.size();
  auto fill = [&](size_t i) {
    const PairMergeMap::Merge* m = merges_.find(pair_key(s[i], s[i + 1]));
    ranks[i] = m ? m->rank : kNone;
    new_ids[i] = m ? m->new_id : 0;
  };
  for (size_t i = 0; i + 1 < n; ++i) fill(i);
  while (n > 1) {
    size_t best = 0;
    uint32_t best_rank = kNone;
    for (size_t i = 0; i + 1 < n; ++i) {
      if (ranks[i] < best_rank) {
        best_rank = ranks[i];
        best = i;
      }
    }
    if (best_rank == kNone) break;
    s[best] = new_ids[best];
    for (size_t i = best + 1; i + 1 < n; ++i) s[i] = s[i + 1];
    for (size_t i = best + 1; i + 2 < n; ++i) {
      ranks[i] = ranks[i + 1];
      new_ids[i] = new_ids[i + 1];
    }
    --n;
    if (best + 1 < n) fill(best);
    if (best > 0) fill(best - 1);
  }
  s.resize(n);
}

void BpeModel::merge_symbols_long(std::vector<uint32_t>* symbols) const {
  // Long pieces: a doubly linked list plus a min-heap of (rank, position) candidates; stale heap
  // entries are recognised by re-checking the pair.
  std::vector<uint32_t>& s = *symbols;
  const size_t n = s.size();
  std::vector<int64_t> prev(n), next(n);
  std::vector<bool> alive(n, true);
  for (size_t i = 0; i < n; ++i) {
    prev[i] = static_cast<int64_t>(i) - 1;
    next[i] = i + 1 < n ? static_cast<int64_t>(i + 1) : -1;
  }
  struct Candidate {
    uint32_t rank;
    size_t pos;
    uint32_t new_id;
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> heap;
  auto push = [&](size_t i) {
    if (next[i] < 0) return;
    if (const auto* m = merges_.find(pair_key(s[i], s[static_cast<size_t>(next[i])])))
      heap.push({m->rank, i, m->new_id});
  };
  for (size_t i = 0; i + 1 < n; ++i) push(i);
  while (!heap.empty()) {
    const Candidate top = heap.top();
    heap.pop();
    if (!alive[top.pos] || next[top.pos] < 0) continue;
    const auto right = static_cast<size_t>(next[top.pos]);
    const auto* m = merges_.find(pair_key(s[top.pos], s[right]));
    if (m == nullptr || m->new_id != top.new_id || m->rank != top.rank) continue;
    s[top.pos] = top.new_id;
    alive[right] = false;
    next[top.pos] = next[right];
    if (next[right] >= 0) prev[static_cast<size_t>(next[right])] = static_cast<int64_t>(top.pos);
    if (prev[top.pos] >= 0) push(static_cast<size_t>(prev[top.pos]));
    push(top.pos);
  }
  std::vector<uint32_t> out;
  for (int64_t i = 0; i >= 0; i = next[static_cast<size_t>(i)]) out.push_back(s[static_cast<size_t>(i)]);
  s = std::move(out);
}

void BpeModel::tokenize(std::string_view piece, std::vector<uint32_t>* ids) const {
  if (piece.empty()) return;
  if (ignore_merges_) {
    if (const auto id = lookup_piece(piece)) {
      ids->push_back(*id);
      return;
    }
  }
  const bool cacheable = piece.size() <= kCacheMaxPieceBytes;
  if (cacheable) {
    std::unique_lock<std::mutex> lock(cache_mutex_, std::try_to_lock);
    if (lock.owns_lock()) {
      if (const auto it = cache_.find(std::string(piece)); it != cache_.end()) {
        ids->insert(ids->end(), it->second.begin(), it->second.end());
        return;
      }
    }
  }
  std::vector<uint32_t> symbols;
  symbols.reserve(piece.size());
  initial_symbols(piece, &symbols);
  merge_symbols(&symbols);
  ids->insert(ids->end(), symbols.begin(), symbols.end());
  if (cacheable) {
    std::unique_lock<std::mutex> lock(cache_mutex_, std::try_to_lock);
    if (lock.owns_lock() && cache_.size() < kCacheCapacity)
      cache_.emplace(std::string(piece), std::move(symbols));
  }
}

}  // namespace nibble::tokenizer
