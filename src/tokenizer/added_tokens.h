// Added tokens (tokenizer.json "added_tokens"): found in the input before anything else and
// never passed to the model, with the special / normalized / lstrip / rstrip / single_word rules
// of tokenizers' AddedVocabulary (leftmost-longest matching).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/normalizer.h"

namespace nibble::tokenizer {

struct AddedToken {
  uint32_t id = 0;
  std::string content;
  // What decode and id_to_token show: the content, normalized when `normalized` is set (as
  // tokenizers does).
  std::string decoded;
  bool special = false;
  bool normalized = true;
  bool lstrip = false;
  bool rstrip = false;
  bool single_word = false;
};

// A stretch of input after added-token extraction: either an added token (id >= 0) or text for
// the pre-tokenizer and model (already normalized).
struct Segment {
  std::string text;
  int64_t id = -1;
  bool at_start = false;  // starts at offset 0 of the original input
};

class AddedVocabulary {
 public:
  // `normalizer` (may be null) is applied to the content of normalized tokens, as tokenizers does.
  void build(std::vector<AddedToken> tokens, const Normalizer* normalizer);

  // Splits `text` around non-normalized tokens, normalizes the rest, then splits it around
  // normalized tokens.
  std::vector<Segment> extract_and_normalize(std::string_view text, const Normalizer* normalizer) const;

  const AddedToken* find_id(uint32_t id) const;
  const AddedToken* find_content(std::string_view content) const;
  const std::vector<AddedToken>& tokens() const { return tokens_; }

 private:
  // A byte trie over token contents for leftmost-longest matching.
  struct Trie {
    struct Node {
      std::vector<std::pair<uint8_t, uint32_t>> children;
      int64_t token_index = -1;  // index into tokens_ when a token ends here
    };
    std::vector<Node> nodes = std::vector<Node>(1);
    bool first_byte[256] = {};
    void insert(std::string_view key, size_t token_index);
    // Longest token starting at text[pos]: (token index, length) or (-1, 0).
    std::pair<int64_t, size_t> longest_at(std::string_view text, size_t pos) const;
    bool empty() const { return nodes.size() == 1; }
  };
  void split(const Segment& segment, const Trie& trie, std::vector<Segment>* out) const;

  std::vector<AddedToken> tokens_;
  std::unordered_map<uint32_t, size_t> by_id_;
  std::unordered_map<std::string, size_t> by_content_;
  Trie raw_trie_;         // tokens with normalized == false
  Trie normalized_trie_;  // tokens with normalized == true (content normalized)
};

}  // namespace nibble::tokenizer
