// `nibble serve`'s HTTP server: the OpenAI API (vLLM's shapes) over the engine's request API.
//
//   Server server(config, engine.get(), text.get());
//   NIBBLE_TRY(server.bind());            // port 0 picks a free port: server.port()
//   std::thread t([&] { server.run(); });  // blocks until shutdown()
//   server.shutdown(std::chrono::seconds(30));
//
// Endpoints: POST /v1/completions, POST /v1/chat/completions (streaming and not), GET /v1/models,
// GET /health, GET /metrics, POST /tokenize, POST /detokenize. Every failure is an OpenAI error
// object with its HTTP status. A client that goes away aborts its engine requests (their KV
// blocks are freed before the next engine step): the connection is polled while waiting on the
// engine, and a failed write during streaming does the same.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "engine/engine_core.h"
#include "server/metrics.h"
#include "server/protocol.h"
#include "server/text_processor.h"

namespace httplib {
class Server;
}

namespace nibble::server {

struct ServerConfig {
  std::string host = "127.0.0.1";  // loopback unless asked otherwise
  int port = 8000;                 // 0 = any free port
  std::string api_key;             // empty = no authentication; else "Authorization: Bearer KEY" on /v1/*
  std::vector<std::string> served_model_names = {"nibble"};  // the first is reported by /v1/models
  std::string model_root;                                    // the model folder (ModelCard.root)
  int32_t max_model_len = 4096;                              // prompt + output tokens
  // Sampling defaults for fields a request leaves out (from generation_config.json).
  engine::SamplingParams default_sampling;
  bool reasoning = false;  // split <think>...</think> into reasoning_content (chat)
  bool harmony = false;    // gpt-oss harmony channels: analysis -> reasoning_content, final -> content (chat)
  ParseLimits limits;
  // Transport limits.
  size_t max_body_bytes = size_t{8} << 20;  // larger bodies get 413
  int num_http_threads = 64;                // connections served at once (the rest wait)
  int read_timeout_s = 30;                  // slow clients are dropped after this
  int write_timeout_s = 30;
  int keep_alive_timeout_s = 5;
  std::chrono::milliseconds disconnect_poll{10};  // how often a waiting handler checks its client
};

class Server {
 public:
  // `engine` and `text` must outlive the server.
  Server(ServerConfig config, engine::EngineCore* engine, const TextProcessor* text);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds the listening socket (SIGPIPE is ignored from here on: writes to gone clients fail).
  base::Status bind();
  int port() const { return port_; }
  // Serves until shutdown(); returns after in-flight requests have ended.
  void run();
  // Stops accepting, lets running generations finish for up to `grace`, then aborts the rest.
  // Thread-safe; may be called from a signal-watching thread. run() returns afterwards.
  void shutdown(std::chrono::milliseconds grace);

  const ServerConfig& config() const { return config_; }
  ServerMetrics& metrics() { return metrics_; }
  int active_generations() const { return active_.load(); }

 private:
  friend class GenerationHandler;
  void install_routes();

  ServerConfig config_;
  engine::EngineCore* engine_;
  const TextProcessor* text_;
  std::unique_ptr<httplib::Server> http_;
  ServerMetrics metrics_;
  std::atomic<int> active_{0};
  std::atomic<bool> draining_{false};
  std::atomic<bool> aborting_{false};  // grace over: generations stop at their next poll
  std::atomic<uint64_t> next_id_{0};
  uint64_t id_salt_ = 0;
  int64_t created_unix_ = 0;
  int port_ = -1;
};

}  // namespace nibble::server
