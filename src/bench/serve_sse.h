// OpenAI streaming responses (server-sent events) folded into per-request timings, the way
// vLLM's benchmark clients read them (../shared/docs/serving.md §1.2, §2.3): messages are split on
// blank lines, ':' comment lines (pings) are skipped, "data: [DONE]" ends the stream, and every
// JSON message with a non-empty "choices" array is one timed chunk.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "bench/metrics.h"

namespace nibble::bench {

// Splits a byte stream into SSE messages on blank lines. Bytes may arrive in any pieces.
class SseSplitter {
 public:
  // Appends bytes and returns the messages completed by them (without the blank line).
  std::vector<std::string> add(std::string_view bytes);
  // What is left after the stream ended (a last message without its blank line), then clears.
  std::string take_rest();

 private:
  std::string buffer_;
};

// Accumulates the SSE messages of one streamed completion into a RequestOutput.
class StreamAccumulator {
 public:
  explicit StreamAccumulator(double start_time_s) : start_time_s_(start_time_s) {}

  // Handles one complete SSE message that arrived at time now_s (same clock as start_time_s).
  void on_message(std::string_view message, double now_s);
  bool done() const { return done_; }  // "[DONE]" seen
  bool has_error() const { return !error_.empty(); }

  // Fills success, error, ttft, itl, latency, text and the usage counts of `out`.
  // prompt_len is replaced by usage.prompt_tokens when the server sent it.
  void finish(RequestOutput* out) const;

 private:
  void on_data(std::string_view payload, double now_s);

  double start_time_s_;
  bool first_chunk_seen_ = false;
  bool done_ = false;
  double ttft_s_ = 0;
  double last_chunk_time_s_ = 0;
  std::vector<double> itl_s_;
  std::string text_;
  int64_t completion_tokens_ = 0;
  int64_t prompt_tokens_ = 0;
  std::string error_;
};

}  // namespace nibble::bench
