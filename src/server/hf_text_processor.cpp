#include "server/hf_text_processor.h"

#include <optional>
#include <vector>

#include "tokenizer/chat_template.h"
#include "tokenizer/incremental_detokenizer.h"
#include "tokenizer/tokenizer.h"

namespace nibble::server {
namespace {

class HfStreamDecoder : public StreamDecoder {
 public:
  HfStreamDecoder(const tokenizer::Tokenizer* tok, bool skip_special) : detok_(tok, skip_special) {}
  std::string step(int32_t token_id) override { return detok_.step(static_cast<uint32_t>(token_id)); }
  std::string flush() override { return detok_.flush(); }

 private:
  tokenizer::IncrementalDetokenizer detok_;
};

class HfTextProcessor : public TextProcessor {
 public:
  HfTextProcessor(std::unique_ptr<tokenizer::Tokenizer> tok, std::optional<tokenizer::ChatTemplate> tmpl,
                  std::string template_error, int32_t vocab_size)
      : tok_(std::move(tok)),
        tmpl_(std::move(tmpl)),
        template_error_(std::move(template_error)),
        vocab_size_(vocab_size) {}

  base::Result<std::vector<int32_t>> encode(std::string_view text, bool add_special_tokens) const override {
    auto ids = tok_->encode(text, add_special_tokens);
    if (!ids.ok()) return base::invalid_argument(ids.status().message());
    return std::vector<int32_t>(ids->begin(), ids->end());
  }
  std::string decode(const std::vector<int32_t>& token_ids, bool skip_special_tokens) const override {
    std::vector<uint32_t> ids;
    ids.reserve(token_ids.size());
    for (int32_t id : token_ids) {
      if (id >= 0) ids.push_back(static_cast<uint32_t>(id));
    }
    return tok_->decode(ids, skip_special_tokens);
  }
  std::unique_ptr<StreamDecoder> new_stream_decoder(bool skip_special_tokens) const override {
    return std::make_unique<HfStreamDecoder>(tok_.get(), skip_special_tokens);
  }
  base::Result<std::string> apply_chat_template(const nlohmann::ordered_json& messages,
                                                const nlohmann::ordered_json& tools,
                                                bool add_generation_prompt,
                                                const nlohmann::ordered_json& kwargs) const override {
    if (!tmpl_) return base::invalid_argument("this model has no chat template (" + template_error_ + ")");
    auto text = tmpl_->render_json(messages, tools, add_generation_prompt, kwargs);
    if (!text.ok()) return base::invalid_argument(text.status().message());
    return std::move(text).value();
  }
  int32_t vocab_size() const override { return vocab_size_; }
  bool has_token(std::string_view token_text) const override {
    return tok_->token_to_id(token_text).has_value();
  }

 private:
  std::unique_ptr<tokenizer::Tokenizer> tok_;
  std::optional<tokenizer::ChatTemplate> tmpl_;
  std::string template_error_;
  int32_t vocab_size_;
};

}  // namespace

base::Result<std::unique_ptr<TextProcessor>> load_hf_text_processor(const std::string& dir,
                                                                    int32_t model_vocab_size) {
  NIBBLE_ASSIGN_OR_RETURN(std::unique_ptr<tokenizer::Tokenizer> tok, tokenizer::Tokenizer::from_dir(dir));
  std::optional<tokenizer::ChatTemplate> tmpl;
  std::string template_error;
  auto loaded = tokenizer::ChatTemplate::from_dir(dir);
  if (loaded.ok())
    tmpl.emplace(std::move(loaded).value());
  else
    template_error = loaded.status().message();
  const auto tok_vocab = static_cast<int32_t>(tok->vocab_size());
  const int32_t vocab = model_vocab_size > 0 ? model_vocab_size : tok_vocab;
  return std::unique_ptr<TextProcessor>(
      std::make_unique<HfTextProcessor>(std::move(tok), std::move(tmpl), std::move(template_error), vocab));
}

}  // namespace nibble::server
