// tokenizer.json "pre_tokenizer" components: Split, ByteLevel, Metaspace, Digits, Punctuation,
// Whitespace, WhitespaceSplit and Sequence, following Hugging Face tokenizers' splitting rules.
#pragma once

#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "base/status.h"

namespace nibble::tokenizer {

// One piece of text on its way to the model.
struct Piece {
  std::string text;
  bool at_start = false;  // begins at offset 0 of the original input (Metaspace prepend_scheme "first")
};

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Splits every piece further; pieces that become empty are dropped.
  virtual base::Status pre_tokenize(std::vector<Piece>* pieces) const = 0;
};

struct ParsedPreTokenizer {
  std::unique_ptr<PreTokenizer> pre_tokenizer;  // nullptr when the spec is null
  // A ByteLevel component is present (it must be the last one): the model then consumes raw bytes,
  // which stand for the byte-level alphabet's characters.
  bool byte_level = false;
};

base::Result<ParsedPreTokenizer> parse_pre_tokenizer(const nlohmann::json& spec, const std::string& where);

}  // namespace nibble::tokenizer
