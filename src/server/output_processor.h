// Turns one engine request's token stream into the text a client sees (vLLM: the output
// processor's detokenizer + stop checker, and the Qwen3 reasoning parser):
//   token ids -> incremental detokenizer -> stop strings -> <think>...</think> split.
//
// Stop strings are matched on the detokenized text, across token boundaries. While stop strings
// are set, the last (longest stop - 1) bytes are held back so that no text past a stop string
// is ever streamed; the output ends just before the stop string (after it with
// include_stop_str_in_output).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "server/text_processor.h"

namespace nibble::server {

// Splits Qwen3 / DeepSeek-R1 style output "<think>reasoning</think>content" into the two parts,
// incrementally. When the prompt already opened the think block, output starts as reasoning.
class ReasoningSplitter {
 public:
  explicit ReasoningSplitter(bool starts_in_reasoning);
  // Feeds text; appends the parts that are certain to *reasoning and *content. `final` flushes
  // any held-back partial tag.
  void feed(const std::string& text, bool final, std::string* reasoning, std::string* content);

  static constexpr const char* kStart = "<think>";
  static constexpr const char* kEnd = "</think>";

 private:
  enum class State { kUndecided, kReasoning, kContent };
  State state_;
  std::string pending_;  // text not yet classified (a possible partial tag)
};

// Splits gpt-oss harmony output into reasoning (the `analysis` channel) and content (`final`, and
// any other channel), incrementally. The chat template's generation prompt ends with
// "<|start|>assistant", so output begins inside a message header, e.g.
//   <|channel|>analysis<|message|>THOUGHTS<|end|><|start|>assistant<|channel|>final<|message|>ANSWER<|return|>
// The tags must reach the splitter (detokenize without skipping special tokens); they are never
// emitted. Output that never opens a message (not harmony at all) is flushed as content at the end.
class HarmonySplitter {
 public:
  void feed(const std::string& text, bool final, std::string* reasoning, std::string* content);

 private:
  enum class State { kHeader, kBody };
  State state_ = State::kHeader;
  std::string header_;   // the current message header's text, tags included
  bool reasoning_channel_ = false;
  bool saw_message_ = false;
  std::string pending_;  // text not yet classified (a possible partial tag)
};

struct TextDelta {
  std::string text;        // content (all text when there is no reasoning split)
  std::string reasoning;   // reasoning_content
  int32_t num_tokens = 0;  // tokens consumed by this delta
};

class OutputProcessor {
 public:
  // reasoning: split <think> blocks; starts_in_reasoning: the prompt ended inside one.
  // harmony: split gpt-oss harmony channels instead (special tokens are then always detokenized,
  // for the splitter, which drops them).
  OutputProcessor(const TextProcessor* text, std::vector<std::string> stop, bool include_stop_str,
                  bool skip_special_tokens, bool reasoning, bool starts_in_reasoning, bool harmony = false);

  // Adds newly generated tokens; `finished` = the engine finished the request with them.
  // Returns what may be shown now. After a stop string matched, stopped() is true and
  // later tokens are ignored.
  TextDelta add(const std::vector<int32_t>& token_ids, bool finished);

  bool stopped() const { return stop_matched_.has_value(); }
  const std::optional<std::string>& stop_matched() const { return stop_matched_; }
  // Tokens accepted (those after a stop-string match are not counted).
  int32_t num_tokens() const { return num_tokens_; }

 private:
  std::string take_emittable(bool finished);

  const TextProcessor* text_;
  std::unique_ptr<StreamDecoder> decoder_;
  std::vector<std::string> stop_;
  size_t max_stop_bytes_ = 0;
  bool include_stop_str_;
  std::optional<ReasoningSplitter> splitter_;
  std::optional<HarmonySplitter> harmony_;
  std::string output_;         // all detokenized text so far (truncated at a stop string)
  size_t emitted_bytes_ = 0;   // output_[0, emitted_bytes_) has been handed out
  size_t searched_bytes_ = 0;  // stop strings cannot start before this - (max_stop_bytes_ - 1)
  std::optional<std::string> stop_matched_;
  int32_t num_tokens_ = 0;
};

}  // namespace nibble::server
