// A Hugging Face tokenizer loaded from tokenizer.json (+ tokenizer_config.json): encode and decode
// with the same ids and text as the `tokenizers` library.
//
//   NIBBLE_ASSIGN_OR_RETURN(auto tok, Tokenizer::from_dir("models/qwen3"));
//   NIBBLE_ASSIGN_OR_RETURN(std::vector<uint32_t> ids, tok->encode("Hello", /*add_special_tokens=*/true));
//   std::string text = tok->decode(ids, /*skip_special_tokens=*/false);
//
// A Tokenizer is immutable after loading; encode and decode may be called from many threads.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "tokenizer/added_tokens.h"
#include "tokenizer/bpe.h"
#include "tokenizer/decoder.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/pre_tokenizer.h"

namespace nibble::tokenizer {

// What tokenizer_config.json says (all optional).
struct TokenizerConfig {
  std::optional<std::string> bos_token;
  std::optional<std::string> eos_token;
  std::optional<std::string> pad_token;
  std::optional<std::string> unk_token;
  std::optional<std::string> chat_template;  // the "default" one when several are named
  bool add_bos_token = false;
  bool add_eos_token = false;
};

class Tokenizer {
 public:
  // Loads DIR/tokenizer.json and, when present, DIR/tokenizer_config.json.
  static base::Result<std::unique_ptr<Tokenizer>> from_dir(const std::string& dir);
  // Loads a tokenizer.json document; `origin` names it in error messages.
  static base::Result<std::unique_ptr<Tokenizer>> from_json_string(
      std::string_view json, const std::string& origin = "tokenizer.json");
  // Adds tokenizer_config.json's contents (special token names, chat template).
  base::Status load_config_json(std::string_view json, const std::string& origin);

  // Text -> ids. Fails (naming the byte offset) when `text` is not valid UTF-8. With
  // add_special_tokens the post-processor's tokens (e.g. BOS) are added; special-token text inside
  // `text` is always recognised, as in tokenizers.
  base::Result<std::vector<uint32_t>> encode(std::string_view text, bool add_special_tokens) const;

  // Ids -> text. Unknown ids are skipped, as in tokenizers.
  std::string decode(const std::vector<uint32_t>& ids, bool skip_special_tokens) const;

  std::optional<uint32_t> token_to_id(std::string_view token) const;
  std::optional<std::string> id_to_token(uint32_t id) const;
  // 1 + the largest id of the model vocabulary and the added tokens.
  size_t vocab_size() const;
  bool is_special(uint32_t id) const;
  const std::vector<AddedToken>& added_tokens() const { return added_.tokens(); }

  const TokenizerConfig& config() const { return config_; }
  std::optional<uint32_t> bos_id() const;
  std::optional<uint32_t> eos_id() const;
  std::optional<uint32_t> pad_id() const;

 private:
  Tokenizer() = default;
  std::optional<uint32_t> config_token_id(const std::optional<std::string>& token) const;

  std::unique_ptr<Normalizer> normalizer_;
  std::unique_ptr<PreTokenizer> pre_tokenizer_;
  std::unique_ptr<BpeModel> model_;
  std::unique_ptr<Decoder> decoder_;
  AddedVocabulary added_;
  // Post-processor for a single sequence: ids = prefix + ids + suffix.
  std::vector<uint32_t> post_prefix_;
  std::vector<uint32_t> post_suffix_;
  TokenizerConfig config_;
};

}  // namespace nibble::tokenizer
