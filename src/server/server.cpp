#include "server/server.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <csignal>
#include <cstdlib>
#include <ctime>
#include <random>
#include <thread>

#include "base/log.h"
#include "server/generation.h"

namespace nibble::server {
namespace {

void send_error(httplib::Response& res, const ApiError& e) {
  res.status = e.http_status;
  res.set_content(e.body(), "application/json");
}

// Compares in time that depends only on the lengths (no early exit on the first difference).
bool constant_time_equal(const std::string& a, const std::string& b) {
  const size_t n = std::max(a.size(), b.size());
  unsigned diff = a.size() == b.size() ? 0u : 1u;
  for (size_t i = 0; i < n; ++i) {
    const auto x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0u;
    const auto y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0u;
    diff |= x ^ y;
  }
  return diff == 0;
}

// Debian's httplib build listens with a backlog of 5: a burst of concurrent clients overflows
// the accept queue and some see their connection reset. listen() again on the same socket
// raises the backlog (Linux allows it on a listening socket).
void widen_listen_backlog(int port) {
  DIR* dir = ::opendir("/proc/self/fd");
  if (!dir) return;
  while (dirent* e = ::readdir(dir)) {
    char* end = nullptr;
    const long fd = std::strtol(e->d_name, &end, 10);
    if (end == e->d_name || *end != '\0' || fd < 0) continue;
    int listening = 0;
    socklen_t len = sizeof(listening);
    if (::getsockopt(static_cast<int>(fd), SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || !listening)
      continue;
    sockaddr_storage local{};
    socklen_t local_len = sizeof(local);
    if (::getsockname(static_cast<int>(fd), reinterpret_cast<sockaddr*>(&local), &local_len) != 0) continue;
    int local_port = -1;
    if (local.ss_family == AF_INET)
      local_port = ntohs(reinterpret_cast<const sockaddr_in&>(local).sin_port);
    else if (local.ss_family == AF_INET6)
      local_port = ntohs(reinterpret_cast<const sockaddr_in6&>(local).sin6_port);
    if (local_port == port) ::listen(static_cast<int>(fd), SOMAXCONN);
  }
  ::closedir(dir);
}

const char* kKnownPaths[] = {"/v1/completions", "/v1/chat/completions", "/v1/models", "/health", "/metrics",
                             "/tokenize",       "/detokenize"};

}  // namespace

Server::Server(ServerConfig config, engine::EngineCore* engine, const TextProcessor* text)
    : config_(std::move(config)), engine_(engine), text_(text), http_(std::make_unique<httplib::Server>()) {
  std::random_device rd;
  id_salt_ = (uint64_t{rd()} << 32) ^ rd();
  created_unix_ = static_cast<int64_t>(std::time(nullptr));
  if (config_.served_model_names.empty()) config_.served_model_names.push_back("nibble");
  install_routes();
}

Server::~Server() = default;

base::Status Server::bind() {
  std::signal(SIGPIPE, SIG_IGN);
  http_->set_payload_max_length(config_.max_body_bytes);
  http_->set_read_timeout(config_.read_timeout_s, 0);
  http_->set_write_timeout(config_.write_timeout_s, 0);
  http_->set_keep_alive_timeout(config_.keep_alive_timeout_s);
  const int num_threads = std::max(1, config_.num_http_threads);
  http_->new_task_queue = [num_threads] { return new httplib::ThreadPool(static_cast<size_t>(num_threads)); };
  if (config_.port == 0) {
    port_ = http_->bind_to_any_port(config_.host);
  } else {
    port_ = http_->bind_to_port(config_.host, config_.port) ? config_.port : -1;
  }
  if (port_ >= 0) widen_listen_backlog(port_);
  if (port_ < 0)
    return base::io_error("cannot listen on " + config_.host + ":" + std::to_string(config_.port) +
                          " (in use, or not an address of this machine)");
  return base::ok_status();
}

void Server::run() {
  http_->listen_after_bind();
}

void Server::shutdown(std::chrono::milliseconds grace) {
  draining_ = true;
  http_->stop();  // closes the listening socket; in-flight requests go on
  const auto deadline = std::chrono::steady_clock::now() + grace;
  while (active_.load() > 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  if (active_.load() > 0) {
    base::log_warn("shutdown: " + std::to_string(active_.load()) +
                   " requests still running after the grace period; aborting them");
    aborting_ = true;
  }
}

void Server::install_routes() {
  httplib::Server& h = *http_;

  h.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (!config_.api_key.empty() && req.path.rfind("/v1/", 0) == 0) {
      const std::string got = req.get_header_value("Authorization");
      if (!constant_time_equal(got, "Bearer " + config_.api_key)) {
        send_error(res, ApiError{401, "Invalid or missing API key (send Authorization: Bearer KEY)", ""});
        metrics_.count_http_request(401);
        return httplib::Server::HandlerResponse::Handled;
      }
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  h.set_logger([this](const httplib::Request&, const httplib::Response& res) {
    metrics_.count_http_request(res.status);
  });
  // Fills in a JSON body for statuses httplib sets itself (404, 413, 400 on a bad request line).
  h.set_error_handler(
      httplib::Server::HandlerWithResponse([](const httplib::Request& req, httplib::Response& res) {
        if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
        std::string message;
        switch (res.status) {
          case 404:
            message = "Not found: " + req.path;
            break;
          case 413:
            message = "The request body is too large";
            break;
          default:
            message = "HTTP error " + std::to_string(res.status);
            break;
        }
        send_error(res, ApiError{res.status, message, ""});
        return httplib::Server::HandlerResponse::Handled;
      }));
  h.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "internal error";
    try {
      if (ep) std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    send_error(res, ApiError{500, what, ""});
  });

  auto unavailable = [this](httplib::Response& res) {
    if (!draining_) return false;
    send_error(res, ApiError{503, "The server is shutting down", ""});
    return true;
  };
  auto generate = [this, unavailable](Endpoint endpoint) {
    return [this, unavailable, endpoint](const httplib::Request& req, httplib::Response& res) {
      if (unavailable(res)) return;
      GenerationHandler(this).handle(req, res, endpoint);
    };
  };
  h.Post("/v1/completions", generate(Endpoint::kCompletions));
  h.Post("/v1/chat/completions", generate(Endpoint::kChatCompletions));

  h.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
    Json data = Json::array();
    for (const std::string& name : config_.served_model_names) {
      data.push_back(Json{{"id", name},
                          {"object", "model"},
                          {"created", created_unix_},
                          {"owned_by", "nibble"},
                          {"root", config_.model_root.empty() ? name : config_.model_root},
                          {"parent", nullptr},
                          {"max_model_len", config_.max_model_len},
                          {"permission", Json::array()}});
    }
    res.set_content(dump_json(Json{{"object", "list"}, {"data", std::move(data)}}), "application/json");
  });
  h.Get("/health", [this, unavailable](const httplib::Request&, httplib::Response& res) {
    if (unavailable(res)) return;
    res.status = 200;
  });
  h.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics_.render(engine_->stats(), config_.served_model_names.front()),
                    "text/plain; version=0.0.4; charset=utf-8");
  });
  auto check_model = [this](const std::string& model, httplib::Response& res) {
    if (model.empty() || std::find(config_.served_model_names.begin(), config_.served_model_names.end(),
                                   model) != config_.served_model_names.end())
      return true;
    send_error(res, bad_request("model: the model `" + model + "` does not exist", "model"));
    return false;
  };
  h.Post("/tokenize", [this, check_model](const httplib::Request& req, httplib::Response& res) {
    ApiError error;
    std::optional<TokenizeRequest> r = parse_tokenize_request(req.body, &error);
    if (!r) return send_error(res, error);
    if (!check_model(r->model, res)) return;
    std::string text;
    bool add_special = r->add_special_tokens;
    if (r->prompt) {
      text = *r->prompt;
    } else {
      auto rendered =
          text_->apply_chat_template(r->messages, nullptr, r->add_generation_prompt, r->chat_template_kwargs);
      if (!rendered.ok())
        return send_error(res, bad_request("messages: " + rendered.status().message(), "messages"));
      text = std::move(rendered).value();
      add_special = false;
    }
    auto ids = text_->encode(text, add_special);
    if (!ids.ok()) return send_error(res, bad_request("prompt: " + ids.status().message(), "prompt"));
    Json body = Json::object();
    body["count"] = ids->size();
    body["max_model_len"] = config_.max_model_len;
    body["tokens"] = *ids;
    body["token_strs"] = nullptr;
    res.set_content(dump_json(body), "application/json");
  });
  h.Post("/detokenize", [this, check_model](const httplib::Request& req, httplib::Response& res) {
    ApiError error;
    std::optional<DetokenizeRequest> r = parse_detokenize_request(req.body, &error);
    if (!r) return send_error(res, error);
    if (!check_model(r->model, res)) return;
    for (int32_t id : r->tokens) {
      if (id >= text_->vocab_size())
        return send_error(
            res, bad_request("tokens: token id " + std::to_string(id) + " is outside the vocabulary of " +
                                 std::to_string(text_->vocab_size()),
                             "tokens"));
    }
    res.set_content(dump_json(Json{{"prompt", text_->decode(r->tokens, false)}}), "application/json");
  });

  // Known paths with the wrong method: 405 with Allow.
  for (const char* path : kKnownPaths) {
    const std::string p = path;
    const bool is_post =
        p == "/v1/completions" || p == "/v1/chat/completions" || p == "/tokenize" || p == "/detokenize";
    auto not_allowed = [is_post](const httplib::Request& req, httplib::Response& res) {
      res.set_header("Allow", is_post ? "POST" : "GET");
      send_error(res, ApiError{405, "Method " + req.method + " is not allowed here", ""});
    };
    if (is_post)
      h.Get(p, not_allowed);
    else
      h.Post(p, not_allowed);
    h.Put(p, not_allowed);
    h.Delete(p, not_allowed);
    h.Patch(p, not_allowed);
  }
}

}  // namespace nibble::server
