// A second, independent OpenAI-style streaming server for protocol-generality tests. Chat only
// (POST /v1/chat/completions); it echoes the prompt's words back, max_completion_tokens of them,
// and streams differently from the scripted server: CRLF line ends, an SSE ping comment, a
// role-only first chunk, every content event split across two writes 5 ms apart, and the usage
// chunk and [DONE] in one write. No /tokenize.
//
// Timing (ms from receipt): role chunk at 20; content event k (1..n) completes at 20 + 15 k;
// usage + [DONE] at 20 + 15 n + 5.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <thread>

namespace nibble::bench::testing {

class EchoServer {
 public:
  EchoServer();
  ~EchoServer();
  EchoServer(const EchoServer&) = delete;
  EchoServer& operator=(const EchoServer&) = delete;
  std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  // Largest delay (ms) of a completed event behind its scripted time (the server's own lateness).
  double max_lateness_ms() const;
  // When each request reached the handler (the origin of the scripted times), by x-request-id.
  std::map<std::string, std::chrono::steady_clock::time_point> received() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::thread thread_;
  int port_ = -1;
};

}  // namespace nibble::bench::testing
