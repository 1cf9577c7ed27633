#include "server/output_processor.h"

#include <algorithm>
#include <cstring>

namespace nibble::server {
namespace {

// Longest suffix of `text` that is a proper prefix of `tag` (a tag that may still be arriving).
size_t partial_tag_suffix(const std::string& text, const char* tag) {
  const size_t tag_bytes = std::strlen(tag);
  for (size_t k = std::min(text.size(), tag_bytes - 1); k > 0; --k) {
    if (text.compare(text.size() - k, k, tag, k) == 0) return k;
  }
  return 0;
}

// Moves `pos` back to the start of a UTF-8 character.
size_t utf8_boundary(const std::string& s, size_t pos) {
  while (pos > 0 && pos < s.size() && (static_cast<unsigned char>(s[pos]) & 0xC0) == 0x80) --pos;
  return pos;
}

}  // namespace

ReasoningSplitter::ReasoningSplitter(bool starts_in_reasoning)
    : state_(starts_in_reasoning ? State::kReasoning : State::kUndecided) {}

void ReasoningSplitter::feed(const std::string& text, bool final, std::string* reasoning,
                             std::string* content) {
  pending_ += text;
  for (;;) {
    if (state_ == State::kUndecided) {
      const size_t start_bytes = std::strlen(kStart);
      if (pending_.size() >= start_bytes) {
        if (pending_.compare(0, start_bytes, kStart) == 0) {
          pending_.erase(0, start_bytes);
          state_ = State::kReasoning;
        } else {
          state_ = State::kContent;
        }
        continue;
      }
      if (!final && pending_.compare(0, pending_.size(), kStart, pending_.size()) == 0) return;
      state_ = State::kContent;
      continue;
    }
    if (state_ == State::kContent) {
      *content += pending_;
      pending_.clear();
      return;
    }
    // Reasoning: up to </think>, holding back a partial end tag.
    const size_t end = pending_.find(kEnd);
    if (end != std::string::npos) {
      *reasoning += pending_.substr(0, end);
      pending_.erase(0, end + std::strlen(kEnd));
      state_ = State::kContent;
      continue;
    }
    const size_t hold = final ? 0 : partial_tag_suffix(pending_, kEnd);
    *reasoning += pending_.substr(0, pending_.size() - hold);
    pending_.erase(0, pending_.size() - hold);
    return;
  }
}

namespace {

bool is_message_end(const std::string& tag) {
  return tag == "<|end|>" || tag == "<|return|>" || tag == "<|call|>";
}

// The channel named in a harmony header ("<|channel|>analysis", "<|channel|>commentary to=...").
std::string header_channel(const std::string& header) {
  const std::string key = "<|channel|>";
  const size_t at = header.rfind(key);
  if (at == std::string::npos) return {};
  size_t begin = at + key.size();
  while (begin < header.size() && header[begin] == ' ') ++begin;
  size_t end = begin;
  while (end < header.size() && header[end] != ' ' && header[end] != '<') ++end;
  return header.substr(begin, end - begin);
}

std::string strip_tags(const std::string& text) {
  std::string out;
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t open = text.find("<|", pos);
    const size_t close = open == std::string::npos ? std::string::npos : text.find("|>", open + 2);
    if (close == std::string::npos) {
      out += text.substr(pos);
      break;
    }
    out += text.substr(pos, open - pos);
    pos = close + 2;
  }
  return out;
}

}  // namespace

void HarmonySplitter::feed(const std::string& text, bool final, std::string* reasoning,
                           std::string* content) {
  pending_ += text;
  auto is_name_char = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; };
  for (;;) {
    // The next complete tag <|name|>, or where a tag may still be arriving (held back).
    size_t open = std::string::npos, close = std::string::npos;
    size_t hold_from = pending_.size();
    for (size_t search = 0;;) {
      const size_t o = pending_.find("<|", search);
      if (o == std::string::npos) {
        if (!pending_.empty() && pending_.back() == '<') hold_from = pending_.size() - 1;
        break;
      }
      size_t k = o + 2;
      while (k < pending_.size() && is_name_char(pending_[k]) && k - o < 32) ++k;
      if (k == pending_.size() || (pending_[k] == '|' && k + 1 == pending_.size())) {
        hold_from = o;  // "<|nam" or "<|name|" so far
        break;
      }
      if (pending_[k] == '|' && pending_[k + 1] == '>' && k > o + 2) {
        open = o;
        close = k;
        break;
      }
      search = o + 2;  // "<|" followed by something else is plain text
    }
    if (open == std::string::npos) {
      const size_t keep = final ? pending_.size() : hold_from;
      const std::string plain = pending_.substr(0, keep);
      pending_.erase(0, keep);
      if (state_ == State::kBody) {
        *(reasoning_channel_ ? reasoning : content) += plain;
      } else {
        header_ += plain;
      }
      break;
    }
    const std::string before = pending_.substr(0, open);
    const std::string tag = pending_.substr(open, close + 2 - open);
    pending_.erase(0, close + 2);
    if (state_ == State::kBody) {
      *(reasoning_channel_ ? reasoning : content) += before;
      if (is_message_end(tag) || tag == "<|start|>") {
        state_ = State::kHeader;
        header_.clear();
      }
      continue;  // other tags inside a body are dropped
    }
    header_ += before;
    if (tag == "<|message|>") {
      reasoning_channel_ = header_channel(header_) == "analysis";
      saw_message_ = true;
      state_ = State::kBody;
    } else if (tag == "<|start|>") {
      header_.clear();
    } else if (!is_message_end(tag)) {
      header_ += tag;
    }
  }
  if (final && state_ == State::kHeader && !saw_message_) {
    *content += strip_tags(header_);
    header_.clear();
  }
}

OutputProcessor::OutputProcessor(const TextProcessor* text, std::vector<std::string> stop,
                                 bool include_stop_str, bool skip_special_tokens, bool reasoning,
                                 bool starts_in_reasoning, bool harmony)
    : text_(text),
      decoder_(text->new_stream_decoder(harmony ? false : skip_special_tokens)),
      stop_(std::move(stop)),
      include_stop_str_(include_stop_str) {
  for (const std::string& s : stop_) max_stop_bytes_ = std::max(max_stop_bytes_, s.size());
  if (harmony) {
    harmony_.emplace();
  } else if (reasoning) {
    splitter_.emplace(starts_in_reasoning);
  }
}

TextDelta OutputProcessor::add(const std::vector<int32_t>& token_ids, bool finished) {
  TextDelta delta;
  if (stopped()) return delta;
  for (int32_t id : token_ids) {
    output_ += decoder_->step(id);
    ++num_tokens_;
    ++delta.num_tokens;
    if (!stop_.empty() && max_stop_bytes_ > 0) {
      // Check after every token so that tokens past the stop string are not counted.
      const size_t from =
          searched_bytes_ >= max_stop_bytes_ - 1 ? searched_bytes_ - (max_stop_bytes_ - 1) : 0;
      size_t best = std::string::npos, best_len = 0;
      for (const std::string& s : stop_) {
        const size_t at = output_.find(s, from);
        if (at != std::string::npos && at < best) {
          best = at;
          best_len = s.size();
        }
      }
      searched_bytes_ = output_.size();
      if (best != std::string::npos) {
        stop_matched_ = output_.substr(best, best_len);
        output_.resize(include_stop_str_ ? best + best_len : best);
        break;
      }
    }
  }
  const bool done = finished || stopped();
  if (done && !stopped()) output_ += decoder_->flush();
  std::string piece = take_emittable(done);
  if (harmony_) {
    harmony_->feed(piece, done, &delta.reasoning, &delta.text);
  } else if (splitter_) {
    splitter_->feed(piece, done, &delta.reasoning, &delta.text);
  } else {
    delta.text = std::move(piece);
  }
  return delta;
}

std::string OutputProcessor::take_emittable(bool finished) {
  size_t end = output_.size();
  if (!finished && !stop_.empty() && !include_stop_str_ && max_stop_bytes_ > 1) {
    end = output_.size() > max_stop_bytes_ - 1 ? output_.size() - (max_stop_bytes_ - 1) : 0;
    end = utf8_boundary(output_, end);
  }
  if (end <= emitted_bytes_) return {};
  std::string piece = output_.substr(emitted_bytes_, end - emitted_bytes_);
  emitted_bytes_ = end;
  return piece;
}

}  // namespace nibble::server
