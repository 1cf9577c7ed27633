// tokenizer.json "decoder" components: ByteLevel, Metaspace, ByteFallback, Fuse, Strip, Replace
// and Sequence. Each works on the list of token strings, as tokenizers' decode_chain does.
#pragma once

#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "base/status.h"

namespace nibble::tokenizer {

class Decoder {
 public:
  virtual ~Decoder() = default;
  virtual void decode_chain(std::vector<std::string>* tokens) const = 0;
};

// A null spec yields nullptr (tokens are then joined with spaces, as tokenizers does).
base::Result<std::unique_ptr<Decoder>> parse_decoder(const nlohmann::json& spec, const std::string& where,
                                                     int depth = 0);

}  // namespace nibble::tokenizer
