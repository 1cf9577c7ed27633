#include "echo_server.h"

#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <vector>

namespace nibble::bench::testing {

struct EchoServer::Impl {
  httplib::Server server;
  std::mutex mutex;
  double max_lateness_ms = 0;
  std::map<std::string, std::chrono::steady_clock::time_point> received;
};

EchoServer::EchoServer() : impl_(std::make_unique<Impl>()) {
  httplib::Server& svr = impl_->server;
  svr.new_task_queue = [] { return new httplib::ThreadPool(8); };
  Impl* impl = impl_.get();
  svr.Post("/v1/chat/completions", [impl](const httplib::Request& req, httplib::Response& res) {
    using Clock = std::chrono::steady_clock;
    const Clock::time_point received = Clock::now();
    {
      std::lock_guard<std::mutex> lock(impl->mutex);
      impl->received[req.get_header_value("x-request-id")] = received;
    }
    const nlohmann::json body = nlohmann::json::parse(req.body, nullptr, false);
    if (body.is_discarded() || !body.contains("messages")) {
      res.status = 400;
      res.set_content(R"({"error":{"message":"messages required","code":400}})", "application/json");
      return;
    }
    std::string prompt;
    const nlohmann::json& content = body["messages"][0]["content"];
    if (content.is_string()) prompt = content.get<std::string>();
    if (content.is_array()) prompt = content[0].value("text", "");
    std::vector<std::string> words;
    std::istringstream in(prompt);
    for (std::string w; in >> w;) words.push_back(w);
    if (words.empty()) words.push_back("?");
    const int n = body.value("max_completion_tokens", 16);
    const int prompt_tokens = static_cast<int>(words.size());
    auto at = [received](double ms) {
      std::this_thread::sleep_until(received + std::chrono::microseconds(static_cast<int64_t>(ms * 1000)));
    };
    res.set_chunked_content_provider("text/event-stream", [=](size_t, httplib::DataSink& sink) {
      auto write = [&](const std::string& s) { sink.write(s.data(), s.size()); };
      auto note_lateness = [&](double scripted_ms) {
        const double late_ms =
            std::chrono::duration<double, std::milli>(Clock::now() - received).count() - scripted_ms;
        std::lock_guard<std::mutex> lock(impl->mutex);
        impl->max_lateness_ms = std::max(impl->max_lateness_ms, late_ms);
      };
      auto event = [](const nlohmann::json& j) { return "data: " + j.dump() + "\r\n\r\n"; };
      at(5);
      write(": ping\r\n\r\n");
      at(20);
      nlohmann::json role_choice = {{"index", 0}, {"delta", {{"role", "assistant"}}}};
      write(event({{"object", "chat.completion.chunk"}, {"choices", nlohmann::json::array({role_choice})}}));
      for (int k = 1; k <= n; ++k) {
        nlohmann::json delta = {{"content", " " + words[static_cast<size_t>(k - 1) % words.size()]}};
        nlohmann::json choice = {{"index", 0}, {"delta", delta}};
        nlohmann::json chunk = {{"object", "chat.completion.chunk"},
                                {"choices", nlohmann::json::array({choice})}};
        const std::string e = event(chunk);
        at(20 + 15.0 * k - 5);
        write(e.substr(0, e.size() / 2));
        at(20 + 15.0 * k);
        note_lateness(20 + 15.0 * k);
        write(e.substr(e.size() / 2));
      }
      at(20 + 15.0 * n + 5);
      write(event({{"object", "chat.completion.chunk"},
                   {"choices", nlohmann::json::array()},
                   {"usage",
                    {{"prompt_tokens", prompt_tokens},
                     {"completion_tokens", n},
                     {"total_tokens", prompt_tokens + n}}}}) +
            "data: [DONE]\r\n\r\n");
      sink.done();
      return true;
    });
  });
  svr.Get("/v1/models", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(R"({"object":"list","data":[{"id":"echo"}]})", "application/json");
  });
  svr.set_tcp_nodelay(true);  // each SSE event leaves at once (no Nagle batching)
  port_ = svr.bind_to_any_port("127.0.0.1");
  thread_ = std::thread([this] { impl_->server.listen_after_bind(); });
  for (int i = 0; i < 500 && !impl_->server.is_running(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
}

double EchoServer::max_lateness_ms() const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  return impl_->max_lateness_ms;
}

std::map<std::string, std::chrono::steady_clock::time_point> EchoServer::received() const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  return impl_->received;
}

EchoServer::~EchoServer() {
  impl_->server.stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace nibble::bench::testing
