// HTTP side of the serving benchmark: one streamed OpenAI completion or chat request per call,
// timed with steady_clock at every SSE message (../shared/docs/serving.md §1.2), plus the small
// JSON calls around it (/v1/models, /tokenize, /detokenize, /metrics).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>

#include "base/status.h"
#include "bench/metrics.h"
#include "bench/serve_dataset.h"

namespace nibble::bench {

enum class StreamApi { kCompletions, kChat };

struct ClientConfig {
  std::string base_url;                      // "http://127.0.0.1:8000" (an optional path prefix is kept)
  std::string endpoint = "/v1/completions";  // appended to base_url
  std::string api_key;                       // sent as "Authorization: Bearer <key>" when set
  double timeout_s = 6 * 3600;               // per read and per connect, like vLLM's 6 h total
};

// "http://host:port/prefix" -> ("http://host:port", "/prefix").
struct BaseUrl {
  std::string scheme_host_port;
  std::string path_prefix;
};
base::Result<BaseUrl> parse_base_url(const std::string& url);

// Which API an endpoint speaks; vLLM requires it to end in "completions" / "chat/completions".
base::Result<StreamApi> api_for_endpoint(const std::string& endpoint);

struct RequestSpec {
  std::string model;
  std::string prompt;
  int64_t prompt_len = 0;
  int64_t max_tokens = 0;
  bool ignore_eos = false;
  std::string request_id;  // sent as x-request-id when not empty
};

// The JSON body vLLM's benchmark clients send (stream with usage; ignore_eos only when set).
nlohmann::json build_request_body(StreamApi api, const RequestSpec& spec);

// One connection's worth of client; not thread-safe (use one per worker thread).
class OpenAiClient {
 public:
  static base::Result<std::unique_ptr<OpenAiClient>> create(const ClientConfig& config);
  ~OpenAiClient();

  // Sends one streamed request. start_time_s of the result is measured from `bench_start`.
  // Never throws: transport errors and non-200 statuses come back as a failed RequestOutput.
  RequestOutput stream_request(StreamApi api, const RequestSpec& spec,
                               std::chrono::steady_clock::time_point bench_start);

  base::Result<nlohmann::json> get_json(const std::string& path);
  base::Result<nlohmann::json> post_json(const std::string& path, const nlohmann::json& body);
  base::Result<std::string> get_text(const std::string& path);

  const BaseUrl& base() const { return base_; }

 private:
  struct Impl;
  OpenAiClient(ClientConfig config, BaseUrl base, std::unique_ptr<Impl> impl);
  ClientConfig config_;
  BaseUrl base_;
  std::unique_ptr<Impl> impl_;
};

// The first model of GET /v1/models (data[0].id), as vLLM picks it when --model is not given.
base::Result<std::string> first_served_model(OpenAiClient& client);

// Sum of the Prometheus counter(s) whose name contains "prefix_cache_hits" (vLLM's
// vllm:prefix_cache_hits_total and friends); not-found when the server exports none.
base::Result<double> prefix_cache_hits(OpenAiClient& client);
double sum_prometheus_counter(const std::string& metrics_text, const std::string& name_part, bool* found);

// A PromptTokenizer over the server's POST /tokenize ({"model", "prompt", "add_special_tokens"} ->
// {"tokens": [...]}) and POST /detokenize ({"model", "tokens"} -> {"prompt"}) endpoints.
// The server does not say its vocabulary size; it is probed with /detokenize when not given.
class ServerTokenizer final : public PromptTokenizer {
 public:
  static base::Result<std::unique_ptr<ServerTokenizer>> create(const ClientConfig& config,
                                                               const std::string& model, int64_t vocab_size);
  base::Result<std::vector<int32_t>> encode(const std::string& text, bool add_special_tokens) override;
  base::Result<std::string> decode(const std::vector<int32_t>& ids) override;
  int64_t vocab_size() const override { return vocab_size_; }
  std::vector<int32_t> special_ids() const override { return {}; }
  std::string name() const override { return model_ + " (server /tokenize)"; }

 private:
  ServerTokenizer(std::unique_ptr<OpenAiClient> client, std::string model)
      : client_(std::move(client)), model_(std::move(model)) {}
  base::Result<int64_t> probe_vocab_size();

  std::mutex mutex_;
  std::unique_ptr<OpenAiClient> client_;
  std::string model_;
  int64_t vocab_size_ = 0;
};

}  // namespace nibble::bench
