// What the server needs from a tokenizer and a chat template, as one small interface: the HTTP
// layer stays independent of how text becomes token ids (tests plug in a tiny ASCII vocabulary;
// `nibble serve` plugs in the model folder's tokenizer.json and chat template).
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace nibble::server {

// Streaming detokenization: deltas never end inside a UTF-8 sequence; flush() returns the rest.
class StreamDecoder {
 public:
  virtual ~StreamDecoder() = default;
  virtual std::string step(int32_t token_id) = 0;
  virtual std::string flush() = 0;
};

class TextProcessor {
 public:
  virtual ~TextProcessor() = default;
  // Fails with invalid_argument when `text` cannot be encoded (e.g. invalid UTF-8).
  virtual base::Result<std::vector<int32_t>> encode(std::string_view text, bool add_special_tokens) const = 0;
  virtual std::string decode(const std::vector<int32_t>& token_ids, bool skip_special_tokens) const = 0;
  virtual std::unique_ptr<StreamDecoder> new_stream_decoder(bool skip_special_tokens) const = 0;
  // Renders a conversation (messages: array of {role, content: string}; tools: array or null;
  // kwargs: object) into the prompt text. Template errors are invalid_argument.
  virtual base::Result<std::string> apply_chat_template(const nlohmann::ordered_json& messages,
                                                        const nlohmann::ordered_json& tools,
                                                        bool add_generation_prompt,
                                                        const nlohmann::ordered_json& kwargs) const = 0;
  // Ids are in [0, vocab_size).
  virtual int32_t vocab_size() const = 0;
  // True when `token_text` is one token of the vocabulary (used to detect <think> models).
  virtual bool has_token(std::string_view token_text) const = 0;
};

}  // namespace nibble::server
