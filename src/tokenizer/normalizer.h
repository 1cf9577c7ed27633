// tokenizer.json "normalizer" components: NFC, NFD, NFKC, NFKD, Lowercase, Prepend, Replace,
// Strip and Sequence, with Hugging Face tokenizers' semantics (offsets are not tracked).
#pragma once

#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>

#include "base/status.h"

namespace nibble::tokenizer {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  // Rewrites `text` (valid UTF-8) in place.
  virtual void normalize(std::string* text) const = 0;
};

// Builds a normalizer from its JSON object; `where` names the field for error messages.
// A null JSON value yields nullptr (no normalizer).
base::Result<std::unique_ptr<Normalizer>> parse_normalizer(const nlohmann::json& spec,
                                                           const std::string& where, int depth = 0);

}  // namespace nibble::tokenizer
