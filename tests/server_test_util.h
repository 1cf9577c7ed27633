// Test helpers for the server: a tiny ASCII vocabulary behind TextProcessor, and an engine with
// the FakeModelRunner plus a Server on a free loopback port.
#pragma once

#include <httplib.h>

#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "engine/engine_core.h"
#include "engine/fake_model_runner.h"
#include "server/server.h"
#include "server/text_processor.h"

namespace nibble::server::testing {

// Ids: 0 "<|endoftext|>" (special, eos), 1 "<think>", 2 "</think>", 3..97 the printable ASCII
// characters 32..126, 98 "\n". Bytes outside that set do not encode (like invalid UTF-8).
class AsciiTextProcessor : public TextProcessor {
 public:
  static constexpr int32_t kVocab = 99;
  static constexpr int32_t kEos = 0;

  base::Result<std::vector<int32_t>> encode(std::string_view text,
                                            bool /*add_special_tokens*/) const override {
    std::vector<int32_t> ids;
    for (size_t i = 0; i < text.size();) {
      bool matched = false;
      for (int32_t id = 0; id < 3; ++id) {
        const std::string& sp = special(id);
        if (text.compare(i, sp.size(), sp) == 0) {
          ids.push_back(id);
          i += sp.size();
          matched = true;
          break;
        }
      }
      if (matched) continue;
      const auto c = static_cast<unsigned char>(text[i]);
      if (c == '\n')
        ids.push_back(98);
      else if (c >= 32 && c <= 126)
        ids.push_back(static_cast<int32_t>(c) - 29);
      else
        return base::invalid_argument("byte " + std::to_string(c) + " at offset " + std::to_string(i) +
                                      " is not in the test vocabulary");
      ++i;
    }
    return ids;
  }
  std::string decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const override {
    std::string out;
    for (int32_t id : ids) {
      if (id == kEos && skip_special_tokens) continue;
      out += piece(id);
    }
    return out;
  }
  std::unique_ptr<StreamDecoder> new_stream_decoder(bool skip_special_tokens) const override {
    struct Decoder : StreamDecoder {
      const AsciiTextProcessor* t;
      bool skip;
      std::string step(int32_t id) override { return t->decode({id}, skip); }
      std::string flush() override { return {}; }
    };
    auto d = std::make_unique<Decoder>();
    d->t = this;
    d->skip = skip_special_tokens;
    return d;
  }
  // "role: content\n" per message, then "assistant:" (+ an empty think block when
  // enable_thinking is false, as Qwen3's template does). Unknown roles are a template error.
  base::Result<std::string> apply_chat_template(const nlohmann::ordered_json& messages,
                                                const nlohmann::ordered_json& /*tools*/,
                                                bool add_generation_prompt,
                                                const nlohmann::ordered_json& kwargs) const override {
    std::string out;
    for (const auto& m : messages) {
      const std::string role = m["role"].get<std::string>();
      if (role != "system" && role != "user" && role != "assistant" && role != "tool")
        return base::invalid_argument("template error: unknown role '" + role + "'");
      const auto content = m.find("content");
      out += role + ": " + (content != m.end() && content->is_string() ? content->get<std::string>() : "") +
             "\n";
    }
    if (add_generation_prompt) {
      out += "assistant:";
      const auto think = kwargs.find("enable_thinking");
      if (think != kwargs.end() && think->is_boolean() && !think->get<bool>())
        out += "<think>\n\n</think>\n\n";
    }
    return out;
  }
  int32_t vocab_size() const override { return kVocab; }
  bool has_token(std::string_view t) const override { return t == "<think>" || t == "</think>"; }

  static std::string piece(int32_t id) {
    if (id < 3) return special(id);
    if (id == 98) return "\n";
    return std::string(1, static_cast<char>(id + 29));
  }

 private:
  static const std::string& special(int32_t id) {
    static const std::string kSpecial[3] = {"<|endoftext|>", "<think>", "</think>"};
    return kSpecial[id];
  }
};

struct TestServerOptions {
  int32_t num_blocks = 512;
  int32_t block_size = 16;
  int32_t max_model_len = 1024;
  int32_t max_num_seqs = 32;
  int32_t max_num_waiting = 0;
};

// Engine (FakeModelRunner) + Server on 127.0.0.1:<free port>, served from a background thread.
class TestServer {
 public:
  explicit TestServer(ServerConfig config = {}, TestServerOptions opt = {}) {
    engine::EngineConfig ec;
    ec.scheduler.max_num_seqs = opt.max_num_seqs;
    ec.scheduler.max_num_batched_tokens = 512;
    ec.scheduler.max_model_len = opt.max_model_len;
    ec.scheduler.max_num_waiting = opt.max_num_waiting;
    ec.scheduler.vocab_size = AsciiTextProcessor::kVocab;
    ec.scheduler.eos_token_ids = {AsciiTextProcessor::kEos};
    ec.kv_cache.block_size = opt.block_size;
    ec.kv_cache.bytes_per_token = 1024;
    ec.kv_cache.bytes_per_block = 1024 * opt.block_size;
    ec.kv_cache.initial_num_blocks = ec.kv_cache.max_num_blocks = ec.kv_cache.min_num_blocks = opt.num_blocks;
    ec.kv_shrink_idle_delay = std::chrono::milliseconds(-1);
    ec.memory_probe = [] {
      engine::MemoryInfo m;
      m.mem_total_bytes = m.mem_available_bytes = int64_t{1} << 40;
      return base::Result<engine::MemoryInfo>(m);
    };
    auto runner = std::make_unique<engine::FakeModelRunner>(AsciiTextProcessor::kVocab, opt.block_size);
    runner_ = runner.get();
    engine_ = std::move(engine::EngineCore::create(std::move(ec), std::move(runner))).value();
    config.host = "127.0.0.1";
    config.port = 0;
    config.max_model_len = opt.max_model_len;
    config.default_sampling.temperature = 0.0f;
    server_ = std::make_unique<Server>(std::move(config), engine_.get(), &text_);
    base::Status st = server_->bind();
    if (!st.ok()) throw std::runtime_error(st.message());
    thread_ = std::thread([this] { server_->run(); });
  }
  ~TestServer() { stop(std::chrono::milliseconds(0)); }

  void stop(std::chrono::milliseconds grace) {
    if (stopped_) return;
    stopped_ = true;
    server_->shutdown(grace);
    thread_.join();
    engine_->shutdown();
  }

  httplib::Client client() const {
    httplib::Client c("127.0.0.1", server_->port());
    c.set_read_timeout(120, 0);
    c.set_write_timeout(30, 0);
    return c;
  }
  int port() const { return server_->port(); }
  Server& server() { return *server_; }
  engine::EngineCore& engine() { return *engine_; }
  engine::FakeModelRunner& runner() { return *runner_; }
  const AsciiTextProcessor& text() const { return text_; }

 private:
  AsciiTextProcessor text_;
  engine::FakeModelRunner* runner_ = nullptr;
  std::unique_ptr<engine::EngineCore> engine_;
  std::unique_ptr<Server> server_;
  std::thread thread_;
  bool stopped_ = false;
};

}  // namespace nibble::server::testing
