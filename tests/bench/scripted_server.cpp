#include "scripted_server.h"

#include <httplib.h>

#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

namespace nibble::bench::testing {

namespace {

using Clock = std::chrono::steady_clock;

struct Script {
  double ttft_ms = 50;
  double gap_ms = 10;
  int chunks = 5;
  int usage = -2;  // -2: same as chunks; -1: no usage chunk
  int prompt_tokens = 7;
  int status = 200;
  bool mid_error = false;
};

Script parse_script(const std::string& prompt) {
  Script s;
  std::istringstream words(prompt);
  std::string word;
  while (words >> word) {
    const size_t eq = word.find('=');
    if (eq == std::string::npos) continue;
    const std::string key = word.substr(0, eq);
    const double value = std::atof(word.c_str() + eq + 1);
    if (key == "ttft") s.ttft_ms = value;
    if (key == "gap") s.gap_ms = value;
    if (key == "chunks") s.chunks = static_cast<int>(value);
    if (key == "usage") s.usage = static_cast<int>(value);
    if (key == "prompt") s.prompt_tokens = static_cast<int>(value);
    if (key == "status") s.status = static_cast<int>(value);
    if (key == "error") s.mid_error = value != 0;
  }
  if (s.usage == -2) s.usage = s.chunks;
  return s;
}

std::string prompt_of(const nlohmann::json& body) {
  if (body.contains("prompt") && body["prompt"].is_string()) return body["prompt"].get<std::string>();
  if (body.contains("messages") && body["messages"].is_array() && !body["messages"].empty()) {
    const nlohmann::json& content = body["messages"][0]["content"];
    if (content.is_string()) return content.get<std::string>();
    if (content.is_array() && !content.empty() && content[0].contains("text"))
      return content[0]["text"].get<std::string>();
  }
  return "";
}

std::vector<int> toy_encode(const std::string& text, bool add_special) {
  std::vector<int> ids;
  if (add_special) ids.push_back(0);
  std::istringstream words(text);
  std::string w;
  while (words >> w) {
    if (w == "<s>") {
      ids.push_back(0);
    } else if (w.size() > 1 && w[0] == 't' && w.find_first_not_of("0123456789", 1) == std::string::npos &&
               w.size() < 8 && std::atoi(w.c_str() + 1) < ScriptedServer::kVocabSize) {
      ids.push_back(std::atoi(w.c_str() + 1));
    } else {
      ids.push_back(4000 + static_cast<int>(w.size() % 900));
    }
  }
  return ids;
}

void send_event(httplib::DataSink& sink, const nlohmann::json& j) {
  const std::string s = "data: " + j.dump() + "\n\n";
  sink.write(s.data(), s.size());
}

}  // namespace

struct ScriptedServer::Impl {
  httplib::Server server;
  mutable std::mutex mutex;
  std::map<std::string, RequestRecord> records;
  std::set<std::string> seen_prompts;
  int64_t prefix_hits = 0;
  double max_lateness_ms = 0;
};

ScriptedServer::ScriptedServer() : impl_(std::make_unique<Impl>()) {
  httplib::Server& svr = impl_->server;
  Impl* impl = impl_.get();
  svr.new_task_queue = [] { return new httplib::ThreadPool(16); };

  auto completion = [impl](const httplib::Request& req, httplib::Response& res, bool chat) {
    const Clock::time_point received = Clock::now();
    const nlohmann::json body = nlohmann::json::parse(req.body, nullptr, false);
    if (body.is_discarded() || body.value("stream", false) != true) {
      res.status = 400;
      res.set_content(R"({"error":{"message":"scripted server: need a streamed JSON request","code":400}})",
                      "application/json");
      return;
    }
    const std::string prompt = prompt_of(body);
    const Script script = parse_script(prompt);
    const std::string request_id = req.get_header_value("x-request-id");
    {
      std::lock_guard<std::mutex> lock(impl->mutex);
      RequestRecord& rec = impl->records[request_id];
      rec = RequestRecord{};  // a repeated id (e.g. after a warm-up) starts a fresh record
      rec.received = received;
      rec.body = req.body;
      if (!impl->seen_prompts.insert(prompt).second) ++impl->prefix_hits;
    }
    if (script.status != 200) {
      res.status = script.status;
      res.set_content(R"({"error":{"message":"scripted failure","type":"BadRequestError","code":)" +
                          std::to_string(script.status) + "}}",
                      "application/json");
      return;
    }
    res.set_chunked_content_provider("text/event-stream", [impl, script, chat, received, request_id](
                                                              size_t, httplib::DataSink& sink) {
      const char* object = chat ? "chat.completion.chunk" : "text_completion";
      for (int k = 0; k < script.chunks; ++k) {
        const double at_ms = script.ttft_ms + script.gap_ms * k;
        std::this_thread::sleep_until(received +
                                      std::chrono::microseconds(static_cast<int64_t>(at_ms * 1000)));
        nlohmann::json choice = {{"index", 0}, {"finish_reason", nullptr}};
        if (k + 1 == script.chunks) choice["finish_reason"] = "length";
        const std::string word = " w" + std::to_string(k);
        if (chat) {
          choice["delta"] = k == 0 ? nlohmann::json{{"role", "assistant"}, {"content", word}}
                                   : nlohmann::json{{"content", word}};
        } else {
          choice["text"] = word;
        }
        const Clock::time_point now = Clock::now();
        send_event(sink,
                   {{"id", "cmpl-1"}, {"object", object}, {"choices", nlohmann::json::array({choice})}});
        {
          std::lock_guard<std::mutex> lock(impl->mutex);
          impl->records[request_id].chunk_sent.push_back(now);
          const double late_ms = std::chrono::duration<double, std::milli>(now - received).count() - at_ms;
          impl->max_lateness_ms = std::max(impl->max_lateness_ms, late_ms);
        }
        if (k == 0 && script.mid_error) {
          send_event(sink, {{"error", {{"message", "scripted mid-stream failure"}, {"code", 500}}}});
          break;
        }
      }
      if (script.usage >= 0) {
        send_event(sink, {{"id", "cmpl-1"},
                          {"object", object},
                          {"choices", nlohmann::json::array()},
                          {"usage",
                           {{"prompt_tokens", script.prompt_tokens},
                            {"completion_tokens", script.usage},
                            {"total_tokens", script.prompt_tokens + script.usage}}}});
      }
      const std::string done = "data: [DONE]\n\n";
      sink.write(done.data(), done.size());
      sink.done();
      return true;
    });
  };
  svr.Post("/v1/completions", [completion](const httplib::Request& req, httplib::Response& res) {
    completion(req, res, false);
  });
  svr.Post("/v1/chat/completions",
           [completion](const httplib::Request& req, httplib::Response& res) { completion(req, res, true); });
  svr.Get("/v1/models", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(R"({"object":"list","data":[{"id":"scripted-model","object":"model"}]})",
                    "application/json");
  });
  svr.Get("/metrics", [impl](const httplib::Request&, httplib::Response& res) {
    std::lock_guard<std::mutex> lock(impl->mutex);
    res.set_content(
        "# TYPE vllm:prefix_cache_hits "
        "counter\nvllm:prefix_cache_hits_total{model_name=\"scripted-model\"} " +
            std::to_string(impl->prefix_hits) + ".0\n",
        "text/plain");
  });
  svr.Post("/tokenize", [](const httplib::Request& req, httplib::Response& res) {
    const nlohmann::json body = nlohmann::json::parse(req.body, nullptr, false);
    if (body.is_discarded() || !body.contains("prompt") || !body["prompt"].is_string()) {
      res.status = 400;
      return;
    }
    const std::vector<int> ids =
        toy_encode(body["prompt"].get<std::string>(), body.value("add_special_tokens", true));
    res.set_content(nlohmann::json({{"tokens", ids}, {"count", ids.size()}, {"max_model_len", 4096}}).dump(),
                    "application/json");
  });
  svr.Post("/detokenize", [](const httplib::Request& req, httplib::Response& res) {
    const nlohmann::json body = nlohmann::json::parse(req.body, nullptr, false);
    if (body.is_discarded() || !body.contains("tokens") || !body["tokens"].is_array()) {
      res.status = 400;
      return;
    }
    std::string text;
    for (const auto& id : body["tokens"]) {
      const int v = id.get<int>();
      if (v < 0 || v >= kVocabSize) {
        res.status = 400;
        res.set_content(R"({"error":{"message":"token id out of range","code":400}})", "application/json");
        return;
      }
      if (!text.empty()) text += " ";
      text += v == 0 ? "<s>" : "t" + std::to_string(v);
    }
    res.set_content(nlohmann::json({{"prompt", text}}).dump(), "application/json");
  });
  svr.set_tcp_nodelay(true);  // each SSE event leaves at once (no Nagle batching)
  port_ = svr.bind_to_any_port("127.0.0.1");
  thread_ = std::thread([this] { impl_->server.listen_after_bind(); });
  // Bounded wait for the listener thread (at most 5 s).
  for (int i = 0; i < 500 && !impl_->server.is_running(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
}

ScriptedServer::~ScriptedServer() {
  impl_->server.stop();
  if (thread_.joinable()) thread_.join();
}

double ScriptedServer::max_lateness_ms() const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  return impl_->max_lateness_ms;
}

std::map<std::string, RequestRecord> ScriptedServer::records() const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  return impl_->records;
}

}  // namespace nibble::bench::testing
