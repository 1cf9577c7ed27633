#include "bench/serve_sse.h"

#include <nlohmann/json.hpp>

namespace nibble::bench {

std::vector<std::string> SseSplitter::add(std::string_view bytes) {
  std::vector<std::string> messages;
  for (char c : bytes) {
    if (c != '\r') buffer_.push_back(c);  // CRLF line ends are read as LF
  }
  size_t pos = 0;
  while (true) {
    const size_t blank = buffer_.find("\n\n", pos);
    if (blank == std::string::npos) break;
    std::string message = buffer_.substr(pos, blank - pos);
    pos = blank + 2;
    // Leading newlines (e.g. a stray blank line) do not make empty messages.
    const size_t first = message.find_first_not_of('\n');
    if (first != std::string::npos) messages.push_back(message.substr(first));
  }
  buffer_.erase(0, pos);
  return messages;
}

std::string SseSplitter::take_rest() {
  std::string rest;
  const size_t first = buffer_.find_first_not_of('\n');
  if (first != std::string::npos) {
    rest = buffer_.substr(first);
    while (!rest.empty() && rest.back() == '\n') rest.pop_back();
  }
  buffer_.clear();
  return rest;
}

void StreamAccumulator::on_message(std::string_view message, double now_s) {
  // A message is one or more lines; "data:" lines carry the payload (joined by '\n' per the SSE
  // spec), ':' lines are comments/pings, "error:" is llama-server's mid-stream error field.
  std::string data;
  bool has_data = false;
  size_t pos = 0;
  while (pos <= message.size()) {
    size_t end = message.find('\n', pos);
    if (end == std::string_view::npos) end = message.size();
    std::string_view line = message.substr(pos, end - pos);
    pos = end + 1;
    if (line.empty() || line.front() == ':') continue;
    auto field_value = [&](size_t name_len) {
      std::string_view value = line.substr(name_len);
      if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
      return value;
    };
    if (line.rfind("data:", 0) == 0) {
      if (has_data) data.push_back('\n');
      data.append(field_value(5));
      has_data = true;
    } else if (line.rfind("error:", 0) == 0) {
      if (error_.empty()) error_ = "server sent an error event: " + std::string(field_value(6));
    } else if (line.find(':') == std::string_view::npos && !has_data && line.front() == '{') {
      // A bare JSON line without the "data:" field name: read it as data, as vLLM's
      // removeprefix("data: ") does.
      data.append(line);
      has_data = true;
    }
  }
  if (has_data) on_data(data, now_s);
}

void StreamAccumulator::on_data(std::string_view payload, double now_s) {
  if (payload == "[DONE]") {
    done_ = true;
    return;
  }
  const nlohmann::json chunk = nlohmann::json::parse(payload, nullptr, /*allow_exceptions=*/false);
  if (chunk.is_discarded() || !chunk.is_object()) {
    if (error_.empty()) error_ = "stream message is not JSON: " + std::string(payload.substr(0, 200));
    return;
  }
  if (auto err = chunk.find("error"); err != chunk.end() && !err->is_null()) {
    if (error_.empty()) {
      std::string msg = err->is_object() && err->contains("message") && (*err)["message"].is_string()
                            ? (*err)["message"].get<std::string>()
                            : err->dump();
      error_ = "server sent an error in the stream: " + msg;
    }
    return;
  }
  auto choices = chunk.find("choices");
  if (choices != chunk.end() && choices->is_array() && !choices->empty()) {
    if (!first_chunk_seen_) {
      first_chunk_seen_ = true;
      ttft_s_ = now_s - start_time_s_;
    } else {
      itl_s_.push_back(now_s - last_chunk_time_s_);
    }
    last_chunk_time_s_ = now_s;
    const nlohmann::json& choice = (*choices)[0];
    if (choice.is_object()) {
      auto append_string = [&](const nlohmann::json& obj, const char* key) {
        auto it = obj.find(key);
        if (it != obj.end() && it->is_string()) text_ += it->get<std::string>();
      };
      append_string(choice, "text");  // completions
      // Chat: vLLM keeps only "content"; reasoning text is generated tokens too, so the
      // re-tokenizing fallback (no usage) counts it as well.
      if (auto delta = choice.find("delta"); delta != choice.end() && delta->is_object()) {
        append_string(*delta, "reasoning_content");
        append_string(*delta, "reasoning");
        append_string(*delta, "content");
      }
    }
  }
  // The final usage chunk has empty "choices"; with continuous usage stats every chunk has one
  // and the last one wins either way.
  if (auto usage = chunk.find("usage"); usage != chunk.end() && usage->is_object()) {
    auto read_count = [&](const char* key, int64_t* value) {
      auto it = usage->find(key);
      if (it != usage->end() && it->is_number_integer()) *value = it->get<int64_t>();
    };
    read_count("completion_tokens", &completion_tokens_);
    read_count("prompt_tokens", &prompt_tokens_);
  }
}

void StreamAccumulator::finish(RequestOutput* out) const {
  out->ttft_s = ttft_s_;
  out->itl_s = itl_s_;
  out->generated_text = text_;
  out->latency_s = first_chunk_seen_ ? last_chunk_time_s_ - start_time_s_ : 0;
  out->output_tokens = completion_tokens_ > 0 ? completion_tokens_ : 0;
  out->output_len_from_usage = completion_tokens_ > 0;
  if (prompt_tokens_ > 0) out->prompt_len = prompt_tokens_;
  if (!error_.empty()) {
    out->success = false;
    out->error = error_;
  } else if (!first_chunk_seen_) {
    out->success = false;
    out->error = "Never received a valid chunk to calculate TTFT.";
  } else {
    out->success = true;
  }
}

}  // namespace nibble::bench
