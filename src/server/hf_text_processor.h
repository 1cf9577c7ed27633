// The TextProcessor of a Hugging Face model folder: tokenizer.json (+ tokenizer_config.json) and
// its chat template (chat_template.jinja or tokenizer_config.json's chat_template).
#pragma once

#include <memory>
#include <string>

#include "base/status.h"
#include "server/text_processor.h"

namespace nibble::server {

// `model_vocab_size` (config.json's vocab_size, may exceed the tokenizer's) bounds token ids;
// 0 = the tokenizer's. A folder without a chat template still serves /v1/completions.
base::Result<std::unique_ptr<TextProcessor>> load_hf_text_processor(const std::string& dir,
                                                                    int32_t model_vocab_size);

}  // namespace nibble::server
