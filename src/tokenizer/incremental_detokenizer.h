// Streaming detokenization: feed generated ids one at a time, get text deltas that never end in
// a broken UTF-8 sequence. Follows tokenizers' DecodeStream (which vLLM uses) exactly: a delta is
// emitted once the decoded window grows and does not end in U+FFFD; flush() returns what is held
// back at the end of a stream, so that all deltas together equal decode(all ids).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace nibble::tokenizer {

class IncrementalDetokenizer {
 public:
  IncrementalDetokenizer(const Tokenizer* tokenizer, bool skip_special_tokens)
      : tokenizer_(tokenizer), skip_special_tokens_(skip_special_tokens) {}

  // Adds one id; returns the new text (possibly empty).
  std::string step(uint32_t id);
  // Ends the stream: returns the remaining text, even if it ends in an incomplete character.
  std::string flush();

 private:
  const Tokenizer* tokenizer_;
  bool skip_special_tokens_;
  std::vector<uint32_t> ids_;  // the window: ids from the previous emission point on
  std::string prefix_;         // decode of ids_[0, prefix_index_)
  size_t prefix_index_ = 0;
};

}  // namespace nibble::tokenizer
