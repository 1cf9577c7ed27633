#include "bench/serve_client.h"

#include <httplib.h>

#include <cmath>
#include <sstream>

#include "bench/serve_sse.h"

namespace nibble::bench {

namespace {

// httplib's error names ("Connection", "Read") made into readable reasons.
std::string error_text(httplib::Error err) {
  switch (err) {
    case httplib::Error::Connection:
      return "could not connect (is the server running at --base-url?)";
    case httplib::Error::ConnectionTimeout:
      return "connection timed out";
    case httplib::Error::Read:
      return "reading the response failed or timed out";
    case httplib::Error::Write:
      return "sending the request failed";
    default:
      return httplib::to_string(err);
  }
}

double seconds_since(std::chrono::steady_clock::time_point origin) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - origin).count();
}

std::string short_body(const std::string& body) {
  // vLLM-style error bodies carry {"error": {"message": ...}}; show the message when present.
  const nlohmann::json doc = nlohmann::json::parse(body, nullptr, false);
  if (doc.is_object()) {
    auto err = doc.find("error");
    if (err != doc.end() && err->is_object() && err->contains("message") && (*err)["message"].is_string()) {
      return (*err)["message"].get<std::string>();
    }
    if (doc.contains("message") && doc["message"].is_string()) return doc["message"].get<std::string>();
  }
  return body.size() > 200 ? body.substr(0, 200) + "..." : body;
}

}  // namespace

base::Result<BaseUrl> parse_base_url(const std::string& url) {
  const size_t scheme_end = url.find("://");
  if (scheme_end == std::string::npos) {
    return base::invalid_argument("--base-url '" + url + "' must start with http:// or https://");
  }
  const std::string scheme = url.substr(0, scheme_end);
  if (scheme != "http" && scheme != "https") {
    return base::invalid_argument("--base-url '" + url + "': unsupported scheme '" + scheme + "'");
  }
  const size_t path_start = url.find('/', scheme_end + 3);
  BaseUrl base;
  base.scheme_host_port = url.substr(0, path_start);
  if (base.scheme_host_port.size() <= scheme_end + 3)
    return base::invalid_argument("--base-url '" + url + "' has no host");
  if (path_start != std::string::npos) base.path_prefix = url.substr(path_start);
  while (!base.path_prefix.empty() && base.path_prefix.back() == '/') base.path_prefix.pop_back();
  return base;
}

base::Result<StreamApi> api_for_endpoint(const std::string& endpoint) {
  auto ends_with = [&](const std::string& suffix) {
    return endpoint.size() >= suffix.size() &&
           endpoint.compare(endpoint.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  if (ends_with("chat/completions")) return StreamApi::kChat;
  if (ends_with("completions")) return StreamApi::kCompletions;
  return base::invalid_argument("--endpoint '" + endpoint +
                                "' must end with 'completions' or 'chat/completions' (e.g. /v1/completions)");
}

nlohmann::json build_request_body(StreamApi api, const RequestSpec& spec) {
  nlohmann::json body;
  body["model"] = spec.model;
  if (api == StreamApi::kCompletions) {
    body["prompt"] = spec.prompt;
    body["repetition_penalty"] = 1.0;
    body["max_tokens"] = spec.max_tokens;
  } else {
    body["messages"] = nlohmann::json::array(
        {{{"role", "user"},
          {"content", nlohmann::json::array({{{"type", "text"}, {"text", spec.prompt}}})}}});
    body["max_completion_tokens"] = spec.max_tokens;
  }
  body["stream"] = true;
  body["stream_options"] = {{"include_usage", true}};
  if (spec.ignore_eos) body["ignore_eos"] = true;
  return body;
}

struct OpenAiClient::Impl {
  explicit Impl(const std::string& scheme_host_port) : http(scheme_host_port) {}
  httplib::Client http;
};

OpenAiClient::OpenAiClient(ClientConfig config, BaseUrl base, std::unique_ptr<Impl> impl)
    : config_(std::move(config)), base_(std::move(base)), impl_(std::move(impl)) {}
OpenAiClient::~OpenAiClient() = default;

base::Result<std::unique_ptr<OpenAiClient>> OpenAiClient::create(const ClientConfig& config) {
  NIBBLE_ASSIGN_OR_RETURN(BaseUrl base, parse_base_url(config.base_url));
  auto impl = std::make_unique<Impl>(base.scheme_host_port);
  if (!impl->http.is_valid())
    return base::invalid_argument("--base-url '" + config.base_url + "' is not usable");
  const auto timeout_s = static_cast<time_t>(std::max(1.0, config.timeout_s));
  impl->http.set_connection_timeout(timeout_s, 0);
  impl->http.set_read_timeout(timeout_s, 0);
  impl->http.set_write_timeout(timeout_s, 0);
  impl->http.set_keep_alive(true);
  impl->http.set_tcp_nodelay(true);  // the request leaves in one go, not after a delayed ACK
  if (!config.api_key.empty()) impl->http.set_bearer_token_auth(config.api_key);
  return std::unique_ptr<OpenAiClient>(new OpenAiClient(config, std::move(base), std::move(impl)));
}

RequestOutput OpenAiClient::stream_request(StreamApi api, const RequestSpec& spec,
                                           std::chrono::steady_clock::time_point bench_start) {
  RequestOutput out;
  out.prompt_len = spec.prompt_len;

  httplib::Request req;
  req.method = "POST";
  req.path = base_.path_prefix + config_.endpoint;
  req.body = build_request_body(api, spec).dump();
  req.set_header("Content-Type", "application/json");
  req.set_header("Accept", "text/event-stream");
  if (!spec.request_id.empty()) req.set_header("x-request-id", spec.request_id);

  int status = -1;
  std::string reason, error_body;
  SseSplitter splitter;
  out.start_time_s = seconds_since(bench_start);  // st: just before the POST
  StreamAccumulator acc(out.start_time_s);
  req.response_handler = [&](const httplib::Response& res) {
    status = res.status;
    reason = res.reason;
    return true;
  };
  req.content_receiver = [&](const char* data, size_t num_bytes, uint64_t, uint64_t) {
    const double now_s = seconds_since(bench_start);
    if (status != 200) {
      if (error_body.size() < 4096) error_body.append(data, num_bytes);
      return true;
    }
    for (const std::string& message : splitter.add(std::string_view(data, num_bytes))) {
      acc.on_message(message, now_s);
    }
    return true;
  };
  httplib::Response res;
  httplib::Error err = httplib::Error::Success;
  const bool sent = impl_->http.send(req, res, err);
  const double end_s = seconds_since(bench_start);
  if (status == 200) {
    const std::string rest = splitter.take_rest();
    if (!rest.empty()) acc.on_message(rest, end_s);
  }
  acc.finish(&out);
  if (!sent || err != httplib::Error::Success) {
    out.success = false;
    out.error = "HTTP request failed: " + error_text(err);
  } else if (status != 200) {
    out.success = false;
    out.error = "HTTP " + std::to_string(status) + " " + reason;
    if (!error_body.empty()) out.error += ": " + short_body(error_body);
  }
  return out;
}

base::Result<nlohmann::json> OpenAiClient::get_json(const std::string& path) {
  NIBBLE_ASSIGN_OR_RETURN(std::string text, get_text(path));
  nlohmann::json doc = nlohmann::json::parse(text, nullptr, false);
  if (doc.is_discarded()) return base::corrupt("GET " + path + ": the response is not JSON");
  return doc;
}

base::Result<std::string> OpenAiClient::get_text(const std::string& path) {
  auto res = impl_->http.Get(base_.path_prefix + path);
  if (!res)
    return base::io_error("GET " + base_.scheme_host_port + base_.path_prefix + path + ": " +
                          error_text(res.error()));
  if (res->status != 200) {
    return base::not_found("GET " + path + ": HTTP " + std::to_string(res->status) + " " +
                           short_body(res->body));
  }
  return res->body;
}

base::Result<nlohmann::json> OpenAiClient::post_json(const std::string& path, const nlohmann::json& body) {
  auto res = impl_->http.Post(base_.path_prefix + path, body.dump(), "application/json");
  if (!res)
    return base::io_error("POST " + base_.scheme_host_port + base_.path_prefix + path + ": " +
                          error_text(res.error()));
  if (res->status != 200) {
    return base::invalid_argument("POST " + path + ": HTTP " + std::to_string(res->status) + " " +
                                  short_body(res->body));
  }
  nlohmann::json doc = nlohmann::json::parse(res->body, nullptr, false);
  if (doc.is_discarded()) return base::corrupt("POST " + path + ": the response is not JSON");
  return doc;
}

base::Result<std::string> first_served_model(OpenAiClient& client) {
  NIBBLE_ASSIGN_OR_RETURN(nlohmann::json doc, client.get_json("/v1/models"));
  if (!doc.is_object() || !doc.contains("data") || !doc["data"].is_array() || doc["data"].empty() ||
      !doc["data"][0].is_object() || !doc["data"][0].contains("id") || !doc["data"][0]["id"].is_string()) {
    return base::corrupt("GET /v1/models: expected {\"data\": [{\"id\": ...}]}; pass --model");
  }
  return doc["data"][0]["id"].get<std::string>();
}

double sum_prometheus_counter(const std::string& metrics_text, const std::string& name_part, bool* found) {
  *found = false;
  double total = 0;
  std::istringstream lines(metrics_text);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty() || line[0] == '#') continue;
    const size_t name_end = line.find_first_of(" {");
    if (name_end == std::string::npos) continue;
    const std::string name = line.substr(0, name_end);
    if (name.find(name_part) == std::string::npos || name.find("_created") != std::string::npos) continue;
    size_t value_start = name_end;
    if (line[name_end] == '{') {
      const size_t close = line.find('}', name_end);
      if (close == std::string::npos) continue;
      value_start = close + 1;
    }
    std::istringstream value_stream(line.substr(value_start));
    double value = 0;
    if (value_stream >> value && std::isfinite(value)) {
      total += value;
      *found = true;
    }
  }
  return total;
}

base::Result<double> prefix_cache_hits(OpenAiClient& client) {
  NIBBLE_ASSIGN_OR_RETURN(std::string text, client.get_text("/metrics"));
  bool found = false;
  const double hits = sum_prometheus_counter(text, "prefix_cache_hits", &found);
  if (!found) return base::not_found("/metrics has no prefix_cache_hits counter");
  return hits;
}

base::Result<std::unique_ptr<ServerTokenizer>> ServerTokenizer::create(const ClientConfig& config,
                                                                       const std::string& model,
                                                                       int64_t vocab_size) {
  NIBBLE_ASSIGN_OR_RETURN(std::unique_ptr<OpenAiClient> client, OpenAiClient::create(config));
  std::unique_ptr<ServerTokenizer> tok(new ServerTokenizer(std::move(client), model));
  // Check that /tokenize answers before anything depends on it.
  NIBBLE_TRY(tok->encode("hello", false).status().with_context("the server's /tokenize endpoint"));
  if (vocab_size > 0) {
    tok->vocab_size_ = vocab_size;
  } else {
    NIBBLE_ASSIGN_OR_RETURN(tok->vocab_size_, tok->probe_vocab_size());
  }
  return tok;
}

base::Result<std::vector<int32_t>> ServerTokenizer::encode(const std::string& text, bool add_special_tokens) {
  std::lock_guard<std::mutex> lock(mutex_);
  NIBBLE_ASSIGN_OR_RETURN(
      nlohmann::json doc,
      client_->post_json("/tokenize",
                         {{"model", model_}, {"prompt", text}, {"add_special_tokens", add_special_tokens}}));
  if (!doc.is_object() || !doc.contains("tokens") || !doc["tokens"].is_array()) {
    return base::corrupt("POST /tokenize: expected {\"tokens\": [...]}");
  }
  std::vector<int32_t> ids;
  for (const nlohmann::json& id : doc["tokens"]) {
    if (!id.is_number_integer()) return base::corrupt("POST /tokenize: a token id is not an integer");
    ids.push_back(id.get<int32_t>());
  }
  return ids;
}

base::Result<std::string> ServerTokenizer::decode(const std::vector<int32_t>& ids) {
  std::lock_guard<std::mutex> lock(mutex_);
  NIBBLE_ASSIGN_OR_RETURN(nlohmann::json doc,
                          client_->post_json("/detokenize", {{"model", model_}, {"tokens", ids}}));
  if (!doc.is_object() || !doc.contains("prompt") || !doc["prompt"].is_string()) {
    return base::corrupt("POST /detokenize: expected {\"prompt\": \"...\"}");
  }
  return doc["prompt"].get<std::string>();
}

base::Result<int64_t> ServerTokenizer::probe_vocab_size() {
  // Largest id that /detokenize accepts, by binary search; ids are assumed valid below it.
  auto accepted = [&](int64_t id) { return decode({static_cast<int32_t>(id)}).ok(); };
  if (!accepted(0)) return base::unsupported("POST /detokenize rejects token id 0; pass --random-vocab-size");
  constexpr int64_t kLimit = int64_t{1} << 24;
  if (accepted(kLimit - 1)) {
    return base::unsupported(
        "POST /detokenize accepts any token id, so the vocabulary size is unknown; "
        "pass --random-vocab-size or --tokenizer");
  }
  int64_t lo = 0, hi = kLimit - 1;  // accepted(lo), !accepted(hi)
  while (hi - lo > 1) {
    const int64_t mid = lo + (hi - lo) / 2;
    (accepted(mid) ? lo : hi) = mid;
  }
  return lo + 1;
}

}  // namespace nibble::bench
