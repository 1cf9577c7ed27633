#include "server/generation.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "server/output_processor.h"
#include "server/server.h"

namespace nibble::server {
namespace {

using Clock = std::chrono::steady_clock;
using engine::FinishReason;

double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

void send_error(httplib::Response& res, const ApiError& e) {
  res.status = e.http_status;
  res.set_content(e.body(), "application/json");
}

// Maps an engine add_request error to an HTTP error; the engine's messages start with the field.
ApiError engine_error(const base::Status& st) {
  const std::string& m = st.message();
  switch (st.code()) {
    case base::ErrorCode::kInvalidArgument: {
      const size_t colon = m.find(':');
      std::string param = colon == std::string::npos ? "" : m.substr(0, colon);
      if (param.find(' ') != std::string::npos) param.clear();
      return bad_request(m, param);
    }
    case base::ErrorCode::kResourceExhausted:
      // A full queue is temporary (503); a request that can never fit the KV cache is the client's.
      if (m.find("queue is full") != std::string::npos) return ApiError{503, m, ""};
      return bad_request(m, "max_tokens");
    case base::ErrorCode::kCancelled:
      return ApiError{503, m, ""};
    default:
      return ApiError{500, m, ""};
  }
}

Json bytes_of(const std::string& s) {
  Json b = Json::array();
  for (unsigned char c : s) b.push_back(static_cast<int>(c));
  return b;
}

// One engine request = one choice.
struct ChoiceRun {
  int index = 0;
  int prompt_index = 0;
  std::optional<engine::RequestHandle> handle;
  std::unique_ptr<OutputProcessor> proc;
  int32_t num_prompt_tokens = 0;
  int32_t num_cached_tokens = 0;
  bool done = false;
  bool sent_role = false;
  std::string finish_reason;
  Json stop_reason;  // null, a stop string or a stop token id
  std::string error_message;
  Clock::time_point first_token_at, last_output_at;
  bool has_first_token = false;
  // Non-streaming accumulation.
  std::string text, reasoning;
  Json logprobs;  // chat: array of content entries; completions: {tokens, token_logprobs, ...}
};

// What one poll of a choice produced.
struct ChoiceDelta {
  TextDelta text;
  Json logprobs;  // null unless requested and there were tokens
  bool finished = false;
};

class Generation {
 public:
  Generation(Server* server, const ServerConfig& config, const TextProcessor* text, GenerateRequest request,
             std::string id, int64_t created, std::string model)
      : server_(server),
        config_(config),
        text_(text),
        request_(std::move(request)),
        id_(std::move(id)),
        created_(created),
        model_(std::move(model)),
        started_at_(Clock::now()) {}

  bool chat() const { return request_.endpoint == Endpoint::kChatCompletions; }
  std::vector<ChoiceRun>& choices() { return choices_; }
  const GenerateRequest& request() const { return request_; }
  Clock::time_point started_at() const { return started_at_; }

  // Polls every unfinished choice once, spending at most `budget` waiting. Calls `emit(choice,
  // delta)` for each output. Returns false when every choice has finished.
  template <typename Emit>
  bool poll(std::chrono::nanoseconds budget, Emit&& emit) {
    int num_open = 0;
    for (const ChoiceRun& c : choices_) num_open += !c.done;
    if (num_open == 0) return false;
    const auto wait = budget / num_open;
    for (ChoiceRun& c : choices_) {
      if (c.done) continue;
      std::optional<engine::RequestOutput> out = c.handle->next_for(wait);
      if (!out) continue;
      ChoiceDelta d = absorb(c, *out);
      emit(c, d);
    }
    return true;
  }

  void abort_all() {
    for (ChoiceRun& c : choices_) {
      if (c.done) continue;
      c.handle->abort();
      c.done = true;
      c.finish_reason = "abort";
      observe(c);
    }
  }

  Json usage() const {
    int64_t prompt = 0, completion = 0, cached = 0;
    for (const ChoiceRun& c : choices_) {
      completion += c.proc->num_tokens();
      if (c.index % request_.sampling.n == 0) {
        prompt += c.num_prompt_tokens;
        cached += c.num_cached_tokens;
      }
    }
    Json u = Json::object();
    u["prompt_tokens"] = prompt;
    u["completion_tokens"] = completion;
    u["total_tokens"] = prompt + completion;
    u["prompt_tokens_details"] = Json{{"cached_tokens", cached}};
    return u;
  }

  Json base_object(const char* object) const {
    Json j = Json::object();
    j["id"] = id_;
    j["object"] = object;
    j["created"] = created_;
    j["model"] = model_;
    return j;
  }

 private:
  ChoiceDelta absorb(ChoiceRun& c, const engine::RequestOutput& out) {
    ChoiceDelta d;
    const Clock::time_point now = Clock::now();
    if (!out.new_token_ids.empty()) {
      if (!c.has_first_token) {
        c.has_first_token = true;
        c.first_token_at = now;
      } else {
        server_->metrics().observe_inter_token(seconds_between(c.last_output_at, now));
      }
      c.last_output_at = now;
    }
    if (out.num_cached_tokens > 0) c.num_cached_tokens = out.num_cached_tokens;
    const bool engine_finished = out.finished();
    d.text = c.proc->add(out.new_token_ids, engine_finished);
    if (request_.sampling.logprobs && d.text.num_tokens > 0)
      d.logprobs = logprobs_json(c, out, d.text.num_tokens);
    if (c.proc->stopped()) {
      if (!engine_finished) c.handle->finish(FinishReason::kStop);
      c.finish_reason = "stop";
      c.stop_reason = *c.proc->stop_matched();
      finish(c);
      d.finished = true;
    } else if (engine_finished) {
      switch (*out.finish_reason) {
        case FinishReason::kStop:
          c.finish_reason = "stop";
          break;
        case FinishReason::kLength:
          c.finish_reason = "length";
          break;
        case FinishReason::kAbort:
          c.finish_reason = "abort";
          break;
        case FinishReason::kError:
          c.finish_reason = "error";
          c.error_message = out.error_message.empty() ? "the engine failed this request" : out.error_message;
          break;
      }
      if (out.stop_reason) c.stop_reason = *out.stop_reason;
      finish(c);
      d.finished = true;
    }
    return d;
  }

  void finish(ChoiceRun& c) {
    c.done = true;
    observe(c);
  }

  void observe(const ChoiceRun& c) {
    const Clock::time_point now = Clock::now();
    const double ttft = c.has_first_token ? seconds_between(started_at_, c.first_token_at) : 0.0;
    server_->metrics().observe_request(ttft, seconds_between(started_at_, now), c.num_prompt_tokens,
                                       c.proc->num_tokens(), c.finish_reason);
  }

  Json logprobs_json(const ChoiceRun& c, const engine::RequestOutput& out, int32_t num_tokens) const {
    (void)c;
    const auto n = std::min<size_t>(static_cast<size_t>(num_tokens), out.new_logprobs.size());
    auto token_text = [&](int32_t id) { return text_->decode({id}, false); };
    if (chat()) {
      Json content = Json::array();
      for (size_t i = 0; i < n; ++i) {
        const engine::TokenLogprobs& lp = out.new_logprobs[i];
        const std::string tok = token_text(lp.sampled.token_id);
        Json top = Json::array();
        for (const engine::Logprob& t : lp.top) {
          const std::string s = token_text(t.token_id);
          top.push_back(Json{{"token", s}, {"logprob", t.logprob}, {"bytes", bytes_of(s)}});
        }
        content.push_back(Json{{"token", tok},
                               {"logprob", lp.sampled.logprob},
                               {"bytes", bytes_of(tok)},
                               {"top_logprobs", std::move(top)}});
      }
      return Json{{"content", std::move(content)}};
    }
    Json tokens = Json::array(), token_logprobs = Json::array(), top_logprobs = Json::array();
    for (size_t i = 0; i < n; ++i) {
      const engine::TokenLogprobs& lp = out.new_logprobs[i];
      tokens.push_back(token_text(lp.sampled.token_id));
      token_logprobs.push_back(lp.sampled.logprob);
      Json top = Json::object();
      for (const engine::Logprob& t : lp.top) top[token_text(t.token_id)] = t.logprob;
      top_logprobs.push_back(std::move(top));
    }
    return Json{{"tokens", std::move(tokens)},
                {"token_logprobs", std::move(token_logprobs)},
                {"top_logprobs", std::move(top_logprobs)},
                {"text_offset", Json::array()}};
  }

  Server* server_;
  const ServerConfig& config_;
  const TextProcessor* text_;
  GenerateRequest request_;
  std::string id_;
  int64_t created_;
  std::string model_;
  Clock::time_point started_at_;
  std::vector<ChoiceRun> choices_;

 public:
  std::shared_ptr<void> active_guard;  // counts this generation in Server::active_ while it lives
};

// Appends the logprobs of a delta to a choice's accumulated logprobs (non-streaming).
void append_logprobs(bool chat, Json* acc, const Json& delta) {
  if (delta.is_null()) return;
  if (acc->is_null()) {
    *acc = delta;
    return;
  }
  if (chat) {
    for (const Json& e : delta["content"]) (*acc)["content"].push_back(e);
    return;
  }
  for (const char* k : {"tokens", "token_logprobs", "top_logprobs"}) {
    for (const Json& e : delta[k]) (*acc)[k].push_back(e);
  }
}

std::string sse(const Json& j) {
  return "data: " + dump_json(j) + "\n\n";
}

}  // namespace

PeerWatch::PeerWatch(int local_port, const std::string& remote_addr, int remote_port) {
  if (local_port <= 0 || remote_port <= 0) return;
  DIR* dir = ::opendir("/proc/self/fd");
  if (!dir) return;
  while (dirent* e = ::readdir(dir)) {
    char* end = nullptr;
    const long fd = std::strtol(e->d_name, &end, 10);
    if (end == e->d_name || *end != '\0' || fd < 0) continue;
    struct stat st {};
    if (::fstat(static_cast<int>(fd), &st) != 0 || !S_ISSOCK(st.st_mode)) continue;
    sockaddr_storage local{}, peer{};
    socklen_t local_len = sizeof(local), peer_len = sizeof(peer);
    if (::getsockname(static_cast<int>(fd), reinterpret_cast<sockaddr*>(&local), &local_len) != 0) continue;
    if (::getpeername(static_cast<int>(fd), reinterpret_cast<sockaddr*>(&peer), &peer_len) != 0) continue;
    auto port_of = [](const sockaddr_storage& a) {
      if (a.ss_family == AF_INET)
        return static_cast<int>(ntohs(reinterpret_cast<const sockaddr_in&>(a).sin_port));
      if (a.ss_family == AF_INET6)
        return static_cast<int>(ntohs(reinterpret_cast<const sockaddr_in6&>(a).sin6_port));
      return -1;
    };
    char addr[INET6_ADDRSTRLEN] = {0};
    if (peer.ss_family == AF_INET)
      ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in&>(peer).sin_addr, addr, sizeof(addr));
    else if (peer.ss_family == AF_INET6)
      ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6&>(peer).sin6_addr, addr, sizeof(addr));
    if (port_of(local) == local_port && port_of(peer) == remote_port && remote_addr == addr) {
      fd_ = static_cast<int>(fd);
      break;
    }
  }
  ::closedir(dir);
}

bool PeerWatch::closed() const {
  if (fd_ < 0) return false;
  pollfd p{fd_, POLLIN | POLLRDHUP, 0};
  if (::poll(&p, 1, 0) <= 0) return false;
  if (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) return true;
  if (p.revents & POLLIN) {
    char c;
    const ssize_t n = ::recv(fd_, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0;
  }
  return false;
}

void GenerationHandler::handle(const httplib::Request& req, httplib::Response& res, Endpoint endpoint) {
  Server& s = *server_;
  const ServerConfig& cfg = s.config_;
  ApiError error;
  std::optional<GenerateRequest> parsed = parse_generate_request(req.body, endpoint, cfg.limits, &error);
  if (!parsed) return send_error(res, error);
  GenerateRequest& r = *parsed;
  if (!r.model.empty() && std::find(cfg.served_model_names.begin(), cfg.served_model_names.end(), r.model) ==
                              cfg.served_model_names.end()) {
    return send_error(res, bad_request("model: the model `" + r.model + "` does not exist", "model"));
  }
  const bool chat = endpoint == Endpoint::kChatCompletions;

  // Prompts -> token ids.
  std::vector<std::vector<int32_t>> prompts;
  bool starts_in_reasoning = false;
  const char* prompt_param = chat ? "messages" : "prompt";
  if (chat) {
    Json kwargs = r.chat_template_kwargs;
    base::Result<std::string> rendered =
        s.text_->apply_chat_template(r.messages, r.tools, r.add_generation_prompt, kwargs);
    if (!rendered.ok())
      return send_error(res, bad_request("messages: " + rendered.status().message(), "messages"));
    if (cfg.reasoning) {
      std::string tail = *rendered;
      while (!tail.empty() && (tail.back() == '\n' || tail.back() == ' ')) tail.pop_back();
      const std::string start = ReasoningSplitter::kStart;
      starts_in_reasoning =
          tail.size() >= start.size() && tail.compare(tail.size() - start.size(), start.size(), start) == 0;
    }
    auto ids = s.text_->encode(*rendered, /*add_special_tokens=*/false);
    if (!ids.ok()) return send_error(res, bad_request("messages: " + ids.status().message(), "messages"));
    prompts.push_back(std::move(ids).value());
  } else {
    for (const PromptInput& p : r.prompts) {
      if (p.text) {
        auto ids = s.text_->encode(*p.text, /*add_special_tokens=*/true);
        if (!ids.ok()) return send_error(res, bad_request("prompt: " + ids.status().message(), "prompt"));
        prompts.push_back(std::move(ids).value());
      } else {
        for (int32_t id : p.token_ids) {
          if (id >= s.text_->vocab_size())
            return send_error(
                res, bad_request("prompt: token id " + std::to_string(id) + " is outside the vocabulary of " +
                                     std::to_string(s.text_->vocab_size()),
                                 "prompt"));
        }
        prompts.push_back(p.token_ids);
      }
    }
  }

  // Sampling parameters: request fields, else the model's defaults.
  engine::SamplingParams sp = r.sampling;
  const engine::SamplingParams& def = cfg.default_sampling;
  if (!r.has_temperature) sp.temperature = def.temperature;
  if (!r.has_top_p) sp.top_p = def.top_p;
  if (!r.has_top_k) sp.top_k = def.top_k;
  if (!r.has_min_p) sp.min_p = def.min_p;
  if (!r.has_repetition_penalty) sp.repetition_penalty = def.repetition_penalty;
  const int32_t n = sp.n;
  sp.n = 1;
  const int64_t max_len = cfg.max_model_len;
  for (const auto& ids : prompts) {
    const auto len = static_cast<int64_t>(ids.size());
    if (len == 0)
      return send_error(res, bad_request(std::string(prompt_param) + ": the prompt is empty", prompt_param));
    if (len >= max_len)
      return send_error(res, bad_request("This model's maximum context length is " + std::to_string(max_len) +
                                             " tokens. However, your request has " + std::to_string(len) +
                                             " input tokens. Please reduce the length of the input.",
                                         prompt_param));
    if (r.max_tokens_given && len + sp.max_tokens > max_len)
      return send_error(
          res, bad_request("This model's maximum context length is " + std::to_string(max_len) +
                               " tokens. However, you requested " + std::to_string(len + sp.max_tokens) +
                               " tokens (" + std::to_string(len) + " in the input, " +
                               std::to_string(sp.max_tokens) +
                               " in the completion). Please reduce the length of the input or completion.",
                           chat ? "max_completion_tokens" : "max_tokens"));
  }
  if (auto st = engine::validate_sampling_params(sp, s.text_->vocab_size()); !st.ok())
    return send_error(res, engine_error(st));

  const uint64_t serial = s.next_id_.fetch_add(1);
  char hex[40];
  std::snprintf(hex, sizeof(hex), "%016llx%08llx", static_cast<unsigned long long>(s.id_salt_),
                static_cast<unsigned long long>(serial));
  const std::string id =
      (chat ? "chatcmpl-" : "cmpl-") + (r.request_id.empty() ? std::string(hex) : r.request_id);
  const std::string model = r.model.empty() ? cfg.served_model_names.front() : r.model;
  auto gen =
      std::make_shared<Generation>(&s, cfg, s.text_, r, id, static_cast<int64_t>(std::time(nullptr)), model);
  s.active_.fetch_add(1);
  gen->active_guard = std::shared_ptr<void>(nullptr, [&s](void*) { s.active_.fetch_sub(1); });

  // n engine requests per prompt.
  for (size_t p = 0; p < prompts.size(); ++p) {
    const auto len = static_cast<int32_t>(prompts[p].size());
    for (int32_t i = 0; i < n; ++i) {
      engine::EngineCoreRequest er;
      er.request_id = std::string(hex) + "-" + std::to_string(p) + "-" + std::to_string(i);
      er.prompt_token_ids = prompts[p];
      er.sampling_params = sp;
      if (!r.max_tokens_given) {
        er.sampling_params.max_tokens =
            chat ? cfg.max_model_len - len : std::min<int32_t>(16, cfg.max_model_len - len);
        er.sampling_params.min_tokens =
            std::min(er.sampling_params.min_tokens, er.sampling_params.max_tokens);
      }
      if (sp.seed) er.sampling_params.seed = *sp.seed + static_cast<uint64_t>(i);
      base::Result<engine::RequestHandle> handle = s.engine_->add_request(std::move(er));
      if (!handle.ok()) return send_error(res, engine_error(handle.status()));
      ChoiceRun c;
      c.index = static_cast<int>(p) * n + i;
      c.prompt_index = static_cast<int>(p);
      c.num_prompt_tokens = len;
      c.handle.emplace(std::move(handle).value());
      c.proc = std::make_unique<OutputProcessor>(s.text_, r.stop, r.include_stop_str_in_output,
                                                 r.skip_special_tokens, chat && cfg.reasoning,
                                                 starts_in_reasoning, chat && cfg.harmony);
      gen->choices().push_back(std::move(c));
    }
  }

  auto watch = std::make_shared<PeerWatch>(req.local_port, req.remote_addr, req.remote_port);
  const auto poll_budget = std::chrono::duration_cast<std::chrono::nanoseconds>(cfg.disconnect_poll);
  auto client_gone = [&s, watch] { return watch->closed() || s.aborting_.load(); };

  if (!r.stream) {
    bool gone = false;
    while (gen->poll(poll_budget, [&](ChoiceRun& c, const ChoiceDelta& d) {
      c.text += d.text.text;
      c.reasoning += d.text.reasoning;
      append_logprobs(chat, &c.logprobs, d.logprobs);
    })) {
      if (client_gone()) {
        gone = true;
        break;
      }
    }
    if (gone) {
      gen->abort_all();
      s.metrics().count_client_disconnect();
      return send_error(res, ApiError{499, "Client disconnected", ""});
    }
    Json choices = Json::array();
    for (ChoiceRun& c : gen->choices()) {
      if (c.finish_reason == "error") return send_error(res, ApiError{500, c.error_message, ""});
      Json choice = Json::object();
      choice["index"] = c.index;
      if (chat) {
        Json message = Json::object();
        message["role"] = "assistant";
        message["content"] = c.text.empty() && !c.reasoning.empty() ? Json(nullptr) : Json(c.text);
        if (cfg.reasoning)
          message["reasoning_content"] = c.reasoning.empty() ? Json(nullptr) : Json(c.reasoning);
        message["tool_calls"] = Json::array();
        choice["message"] = std::move(message);
      } else {
        choice["text"] = c.text;
      }
      choice["logprobs"] = c.logprobs;
      choice["finish_reason"] = c.finish_reason;
      choice["stop_reason"] = c.stop_reason;
      choices.push_back(std::move(choice));
    }
    gen->active_guard.reset();
    Json body = gen->base_object(chat ? "chat.completion" : "text_completion");
    body["choices"] = std::move(choices);
    body["usage"] = gen->usage();
    res.status = 200;
    res.set_content(dump_json(body), "application/json");
    return;
  }

  // Streaming: the whole generation runs inside the first call of the content provider.
  auto metrics = &s.metrics();
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(
      "text/event-stream", [gen, client_gone, poll_budget, chat, metrics](size_t, httplib::DataSink& sink) {
        const GenerateRequest& rq = gen->request();
        const char* object = chat ? "chat.completion.chunk" : "text_completion";
        bool write_failed = false;
        auto write = [&](const std::string& data) {
          if (!write_failed && !sink.write(data.data(), data.size())) write_failed = true;
          return !write_failed;
        };
        auto chunk = [&](const ChoiceRun& c, const Json& delta_or_text, const Json& logprobs, bool final) {
          Json choice = Json::object();
          choice["index"] = c.index;
          if (chat)
            choice["delta"] = delta_or_text;
          else
            choice["text"] = delta_or_text;
          choice["logprobs"] = logprobs;
          choice["finish_reason"] = final ? Json(c.finish_reason) : Json(nullptr);
          choice["stop_reason"] = final ? c.stop_reason : Json(nullptr);
          Json j = gen->base_object(object);
          j["choices"] = Json::array({std::move(choice)});
          if (rq.continuous_usage) j["usage"] = gen->usage();
          return write(sse(j));
        };
        // Chat: the first chunk of every choice carries the role.
        if (chat) {
          for (ChoiceRun& c : gen->choices()) {
            c.sent_role = true;
            chunk(c, Json{{"role", "assistant"}, {"content", ""}}, nullptr, false);
          }
        }
        std::string error_message;
        while (!write_failed && gen->poll(poll_budget, [&](ChoiceRun& c, const ChoiceDelta& d) {
          if (c.finish_reason == "error") {
            error_message = c.error_message;
            return;
          }
          const bool has_text = !d.text.text.empty() || !d.text.reasoning.empty();
          if (!has_text && !d.finished && d.logprobs.is_null()) return;
          if (chat) {
            Json delta = Json::object();
            if (!d.text.reasoning.empty()) delta["reasoning_content"] = d.text.reasoning;
            if (!d.text.text.empty()) delta["content"] = d.text.text;
            chunk(c, delta, d.logprobs, d.finished);
          } else {
            chunk(c, d.text.text, d.logprobs, d.finished);
          }
        })) {
          if (!error_message.empty()) break;
          if (client_gone()) {
            write_failed = true;
            break;
          }
        }
        if (write_failed) {
          gen->abort_all();
          metrics->count_client_disconnect();
          return false;
        }
        if (!error_message.empty()) {
          gen->abort_all();
          write(sse(ApiError{500, error_message, ""}.to_json()));
          write("data: [DONE]\n\n");
          sink.done();
          return true;
        }
        if (rq.include_usage) {
          Json j = gen->base_object(object);
          j["choices"] = Json::array();
          j["usage"] = gen->usage();
          write(sse(j));
        }
        write("data: [DONE]\n\n");
        sink.done();
        gen->active_guard.reset();
        return !write_failed;
      });
}

}  // namespace nibble::server
