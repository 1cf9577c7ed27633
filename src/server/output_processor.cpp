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

OutputProcessor::OutputProcessor(const TextProcessor* text, std::vector<std::string> stop,
                                 bool include_stop_str, bool skip_special_tokens, bool reasoning,
                                 bool starts_in_reasoning)
    : text_(text),
      decoder_(text->new_stream_decoder(skip_special_tokens)),
      stop_(std::move(stop)),
      include_stop_str_(include_stop_str) {
  for (const std::string& s : stop_) max_stop_bytes_ = std::max(max_stop_bytes_, s.size());
  if (reasoning) splitter_.emplace(starts_in_reasoning);
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
  if (splitter_) {
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
