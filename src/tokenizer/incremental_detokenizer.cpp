#include "tokenizer/incremental_detokenizer.h"

namespace nibble::tokenizer {
namespace {

bool ends_with_replacement(const std::string& text) {
  return text.size() >= 3 && text.compare(text.size() - 3, 3, "\xEF\xBF\xBD") == 0;
}

}  // namespace

std::string IncrementalDetokenizer::step(uint32_t id) {
  if (prefix_.empty() && !ids_.empty()) {
    std::string new_prefix = tokenizer_->decode(ids_, skip_special_tokens_);
    if (!ends_with_replacement(new_prefix)) {
      prefix_ = std::move(new_prefix);
      prefix_index_ = ids_.size();
    }
  }
  ids_.push_back(id);
  const std::string text = tokenizer_->decode(ids_, skip_special_tokens_);
  if (text.size() <= prefix_.size() || ends_with_replacement(text)) return {};
  if (text.compare(0, prefix_.size(), prefix_) != 0) {
    // The window decodes differently from its prefix (a decoder with context); restart from here.
    prefix_.clear();
    ids_.erase(ids_.begin(), ids_.end() - 1);
    prefix_index_ = 0;
    return {};
  }
  std::string delta = text.substr(prefix_.size());
  const size_t new_prefix_index = ids_.size() - prefix_index_;
  ids_.erase(ids_.begin(), ids_.begin() + static_cast<std::ptrdiff_t>(prefix_index_));
  prefix_ = tokenizer_->decode(ids_, skip_special_tokens_);
  prefix_index_ = new_prefix_index;
  return delta;
}

std::string IncrementalDetokenizer::flush() {
  const std::string text = tokenizer_->decode(ids_, skip_special_tokens_);
  std::string rest = text.size() > prefix_.size() && text.compare(0, prefix_.size(), prefix_) == 0
                         ? text.substr(prefix_.size())
                         : std::string();
  ids_.clear();
  prefix_.clear();
  prefix_index_ = 0;
  return rest;
}

}  // namespace nibble::tokenizer
