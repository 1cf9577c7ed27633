// A scripted OpenAI-compatible streaming server for the serving-benchmark tests. It listens on
// 127.0.0.1 on a free port and answers each request by the script written in its prompt:
//
//   "script ttft=50 gap=10 chunks=5 usage=5 prompt=7"
//
// ttft   ms from receiving the request to the first chunk          (default 50)
// gap    ms between later chunks                                    (default 10)
// chunks number of chunks with non-empty "choices"                  (default 5)
// usage  completion_tokens in the final usage chunk; -1 = no usage  (default = chunks)
// prompt prompt_tokens in the usage chunk                           (default 7)
// status HTTP status; not 200 sends an OpenAI error body instead    (default 200)
// error  1: send a mid-stream {"error": ...} after the first chunk   (default 0)
//
// Chunks are sent at absolute deadlines (receipt + ttft + k * gap), so delays never accumulate,
// and the actual send times are recorded per x-request-id. It also serves /v1/models, /metrics,
// and /tokenize + /detokenize for a toy tokenizer: token id n <-> word "t<n>" (vocab 5000,
// id 0 = "<s>" added as BOS when add_special_tokens is true, other words map to 4000 + len).
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace nibble::bench::testing {

struct RequestRecord {
  std::chrono::steady_clock::time_point received;
  std::vector<std::chrono::steady_clock::time_point> chunk_sent;  // one per choices chunk
  std::string body;
};

class ScriptedServer {
 public:
  static constexpr int kVocabSize = 5000;

  ScriptedServer();
  ~ScriptedServer();
  ScriptedServer(const ScriptedServer&) = delete;
  ScriptedServer& operator=(const ScriptedServer&) = delete;

  int port() const { return port_; }
  std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::map<std::string, RequestRecord> records() const;  // by x-request-id
  // Largest delay (ms) of an actual chunk send behind its scripted time: the server's own
  // scheduling error on a busy host, which no client can measure below.
  double max_lateness_ms() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::thread thread_;
  int port_ = -1;
};

}  // namespace nibble::bench::testing
