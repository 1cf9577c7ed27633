#include "tokenizer/added_tokens.h"

#include <algorithm>

#include "tokenizer/unicode.h"

namespace nibble::tokenizer {
namespace {

// The character that ends text[0, end) (end > 0).
char32_t last_char(std::string_view text, size_t end) {
  size_t start = end - 1;
  while (start > 0 && (static_cast<uint8_t>(text[start]) & 0xC0) == 0x80) --start;
  return next_code_point(text, &start);
}

}  // namespace

void AddedVocabulary::Trie::insert(std::string_view key, size_t token_index) {
  if (key.empty()) return;
  first_byte[static_cast<uint8_t>(key[0])] = true;
  uint32_t node = 0;
  for (const char c : key) {
    const auto b = static_cast<uint8_t>(c);
    uint32_t child = 0;
    for (const auto& [edge, target] : nodes[node].children) {
      if (edge == b) child = target;
    }
    if (child == 0) {
      child = static_cast<uint32_t>(nodes.size());
      nodes[node].children.emplace_back(b, child);
      nodes.emplace_back();
    }
    node = child;
  }
  // tokens_ is in id order; a later token with identical content replaces the earlier one.
  nodes[node].token_index = static_cast<int64_t>(token_index);
}

std::pair<int64_t, size_t> AddedVocabulary::Trie::longest_at(std::string_view text, size_t pos) const {
  std::pair<int64_t, size_t> best{-1, 0};
  uint32_t node = 0;
  for (size_t i = pos; i < text.size(); ++i) {
    const auto b = static_cast<uint8_t>(text[i]);
    uint32_t next = 0;
    for (const auto& [edge, target] : nodes[node].children) {
      if (edge == b) {
        next = target;
        break;
      }
    }
    if (next == 0) break;
    node = next;
    if (nodes[node].token_index >= 0) best = {nodes[node].token_index, i + 1 - pos};
  }
  return best;
}

void AddedVocabulary::build(std::vector<AddedToken> tokens, const Normalizer* normalizer) {
  tokens_ = std::move(tokens);
  std::stable_sort(tokens_.begin(), tokens_.end(),
                   [](const AddedToken& a, const AddedToken& b) { return a.id < b.id; });
  raw_trie_ = Trie();
  normalized_trie_ = Trie();
  by_id_.clear();
  by_content_.clear();
  for (size_t i = 0; i < tokens_.size(); ++i) {
    AddedToken& token = tokens_[i];
    by_id_[token.id] = i;
    by_content_[token.content] = i;
    tokens_[i].decoded = token.content;
    if (token.normalized) {
      if (normalizer != nullptr) normalizer->normalize(&tokens_[i].decoded);
      normalized_trie_.insert(tokens_[i].decoded, i);
    } else {
      raw_trie_.insert(token.content, i);
    }
  }
}

const AddedToken* AddedVocabulary::find_id(uint32_t id) const {
  const auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &tokens_[it->second];
}

const AddedToken* AddedVocabulary::find_content(std::string_view content) const {
  const auto it = by_content_.find(std::string(content));
  return it == by_content_.end() ? nullptr : &tokens_[it->second];
}

void AddedVocabulary::split(const Segment& segment, const Trie& trie, std::vector<Segment>* out) const {
  const std::string_view text = segment.text;
  if (trie.empty() || text.empty()) {
    out->push_back(segment);
    return;
  }
  size_t start_offset = 0;  // end of what has been emitted
  size_t pos = 0;           // where the next search begins
  while (pos < text.size()) {
    if (!trie.first_byte[static_cast<uint8_t>(text[pos])]) {
      ++pos;
      continue;
    }
    const auto [index, length] = trie.longest_at(text, pos);
    if (index < 0) {
      ++pos;
      continue;
    }
    const AddedToken& token = tokens_[static_cast<size_t>(index)];
    size_t start = pos, stop = pos + length;
    pos = stop;
    if (token.single_word) {
      const bool start_space = start == 0 || !is_word_char(last_char(text, start));
      size_t p = stop;
      const bool stop_space = stop == text.size() || !is_word_char(next_code_point(text, &p));
      if (!start_space || !stop_space) continue;
    }
    if (token.lstrip) {
      size_t new_start = start;
      while (new_start > 0) {
        size_t char_start = new_start - 1;
        while (char_start > 0 && (static_cast<uint8_t>(text[char_start]) & 0xC0) == 0x80) --char_start;
        size_t p = char_start;
        if (!is_white_space(next_code_point(text, &p))) break;
        new_start = char_start;
      }
      start = std::max(new_start, start_offset);
    }
    if (token.rstrip) {
      while (stop < text.size()) {
        size_t p = stop;
        if (!is_white_space(next_code_point(text, &p))) break;
        stop = p;
      }
    }
    if (start_offset < start) {
      out->push_back(Segment{std::string(text.substr(start_offset, start - start_offset)), -1,
                             segment.at_start && start_offset == 0});
    }
    out->push_back(
        Segment{std::string(text.substr(start, stop - start)), token.id, segment.at_start && start == 0});
    start_offset = stop;
  }
  if (start_offset == 0) {
    out->push_back(segment);
  } else if (start_offset < text.size()) {
    out->push_back(Segment{std::string(text.substr(start_offset)), -1, false});
  }
}

std::vector<Segment> AddedVocabulary::extract_and_normalize(std::string_view text,
                                                            const Normalizer* normalizer) const {
  std::vector<Segment> first;
  split(Segment{std::string(text), -1, true}, raw_trie_, &first);
  std::vector<Segment> out;
  out.reserve(first.size());
  for (Segment& segment : first) {
    if (segment.id >= 0) {
      out.push_back(std::move(segment));
      continue;
    }
    if (normalizer != nullptr) normalizer->normalize(&segment.text);
    split(segment, normalized_trie_, &out);
  }
  return out;
}

}  // namespace nibble::tokenizer
