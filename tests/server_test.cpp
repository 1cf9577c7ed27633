// The server over real loopback HTTP with the FakeModelRunner: outputs are checked against the
// "run alone" oracle (reference_generate) decoded with the test vocabulary.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <future>
#include <random>
#include <semaphore>
#include <thread>

#include "engine/engine_test_util.h"
#include "server/output_processor.h"
#include "server_test_util.h"

namespace nibble::server {
namespace {

using testing::AsciiTextProcessor;
using testing::TestServer;
using testing::TestServerOptions;

// The text the fake model produces after `prompt` (greedy, eos 0), decoded.
struct Expected {
  std::vector<int32_t> ids;
  std::string text;
  std::string finish_reason;
};
Expected expected_output(const std::string& prompt, int32_t max_tokens, bool ignore_eos = true,
                         int32_t max_model_len = 1024) {
  AsciiTextProcessor t;
  engine::SamplingParams sp;
  sp.max_tokens = max_tokens;
  sp.ignore_eos = ignore_eos;
  auto ref =
      engine::testing::reference_generate(t.encode(prompt, true).value(), sp, {AsciiTextProcessor::kEos},
                                          max_model_len, AsciiTextProcessor::kVocab);
  return {ref.output_token_ids, t.decode(ref.output_token_ids, true),
          ref.finish_reason == engine::FinishReason::kStop ? "stop" : "length"};
}

Json post_json(httplib::Client& c, const std::string& path, const Json& body, int* status) {
  auto res = c.Post(path.c_str(), dump_json(body), "application/json");
  if (!res) {
    *status = -1;
    return nullptr;
  }
  *status = res->status;
  Json j = Json::parse(res->body, nullptr, false);
  return j;
}

// The data payloads of an SSE body.
std::vector<std::string> sse_events(const std::string& body) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < body.size()) {
    const size_t end = body.find("\n\n", pos);
    if (end == std::string::npos) break;
    const std::string ev = body.substr(pos, end - pos);
    if (ev.rfind("data: ", 0) == 0) out.push_back(ev.substr(6));
    pos = end + 2;
  }
  return out;
}

TEST(ServerTest, CompletionMatchesTheModel) {
  TestServer ts;
  auto c = ts.client();
  int status = 0;
  Json r = post_json(c, "/v1/completions",
                     {{"model", "nibble"}, {"prompt", "Hello"}, {"max_tokens", 12}, {"ignore_eos", true}},
                     &status);
  ASSERT_EQ(status, 200) << r.dump();
  const Expected e = expected_output("Hello", 12);
  EXPECT_EQ(r["object"], "text_completion");
  ASSERT_EQ(r["choices"].size(), 1u);
  EXPECT_EQ(r["choices"][0]["text"], e.text);
  EXPECT_EQ(r["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(r["usage"]["prompt_tokens"], 5);
  EXPECT_EQ(r["usage"]["completion_tokens"], 12);
  EXPECT_EQ(r["usage"]["total_tokens"], 17);
  EXPECT_TRUE(r["usage"]["prompt_tokens_details"].contains("cached_tokens"));
}

TEST(ServerTest, CompletionDefaultsToSixteenTokensAndTokenIdPrompts) {
  TestServer ts;
  auto c = ts.client();
  int status = 0;
  AsciiTextProcessor t;
  Json ids = t.encode("Hi there", true).value();
  Json r = post_json(c, "/v1/completions", {{"prompt", ids}, {"ignore_eos", true}}, &status);
  ASSERT_EQ(status, 200) << r.dump();
  EXPECT_EQ(r["choices"][0]["text"], expected_output("Hi there", 16).text);
  EXPECT_EQ(r["usage"]["completion_tokens"], 16);
}

TEST(ServerTest, ChatMatchesTheModelOnTheRenderedPrompt) {
  TestServer ts;
  auto c = ts.client();
  int status = 0;
  Json messages = Json::array({Json{{"role", "system"}, {"content", "Be brief."}},
                               Json{{"role", "user"},
                                    {"content", Json::array({Json{{"type", "text"}, {"text", "a"}},
                                                             Json{{"type", "text"}, {"text", "b"}}})}}});
  Json r = post_json(c, "/v1/chat/completions",
                     {{"messages", messages}, {"max_completion_tokens", 9}, {"ignore_eos", true}}, &status);
  ASSERT_EQ(status, 200) << r.dump();
  const Expected e = expected_output("system: Be brief.\nuser: a\nb\nassistant:", 9);
  EXPECT_EQ(r["object"], "chat.completion");
  EXPECT_EQ(r["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(r["choices"][0]["message"]["content"], e.text);
  EXPECT_EQ(r["usage"]["completion_tokens"], 9);
}

TEST(ServerTest, StreamingWithUsageEqualsNonStreaming) {
  TestServer ts;
  auto c = ts.client();
  for (const char* path : {"/v1/completions", "/v1/chat/completions"}) {
    const bool chat = std::string(path) == "/v1/chat/completions";
    Json body = {{"max_tokens", 20},
                 {"ignore_eos", true},
                 {"stream", true},
                 {"stream_options", {{"include_usage", true}}}};
    if (chat)
      body["messages"] = Json::array({Json{{"role", "user"}, {"content", "Tell me"}}});
    else
      body["prompt"] = "Tell me";
    auto res = c.Post(path, dump_json(body), "application/json");
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 200) << res->body;
    EXPECT_NE(res->get_header_value("Content-Type").find("text/event-stream"), std::string::npos);
    const std::vector<std::string> events = sse_events(res->body);
    ASSERT_GE(events.size(), 3u);
    EXPECT_EQ(events.back(), "[DONE]");
    std::string text, finish;
    for (size_t i = 0; i + 2 < events.size(); ++i) {
      Json j = Json::parse(events[i]);
      EXPECT_EQ(j["object"], chat ? "chat.completion.chunk" : "text_completion");
      ASSERT_EQ(j["choices"].size(), 1u);
      const Json& ch = j["choices"][0];
      if (chat) {
        if (i == 0) {
          EXPECT_EQ(ch["delta"]["role"], "assistant");
        }
        if (ch["delta"].contains("content")) text += ch["delta"]["content"].get<std::string>();
      } else {
        text += ch["text"].get<std::string>();
      }
      if (!ch["finish_reason"].is_null()) finish = ch["finish_reason"];
    }
    Json usage_chunk = Json::parse(events[events.size() - 2]);
    EXPECT_TRUE(usage_chunk["choices"].empty());
    EXPECT_EQ(usage_chunk["usage"]["completion_tokens"], 20);
    const std::string prompt = chat ? "user: Tell me\nassistant:" : "Tell me";
    EXPECT_EQ(text, expected_output(prompt, 20).text) << path;
    EXPECT_EQ(finish, "length");
  }
}

TEST(ServerTest, StopStringsTruncateAcrossTokens) {
  TestServer ts;
  auto c = ts.client();
  const Expected e = expected_output("Stop me", 60);
  // A 3-character stop string from the middle of the output: it spans three tokens.
  const std::string stop = e.text.substr(20, 3);
  const size_t at = e.text.find(stop);
  ASSERT_LE(at, 20u);
  for (bool stream : {false, true}) {
    Json body = {{"prompt", "Stop me"},
                 {"max_tokens", 60},
                 {"ignore_eos", true},
                 {"stop", Json::array({stop, "never-appears"})},
                 {"stream", stream}};
    if (stream) body["stream_options"] = {{"include_usage", true}};
    auto res = c.Post("/v1/completions", dump_json(body), "application/json");
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 200) << res->body;
    std::string text, finish;
    Json stop_reason, usage;
    if (stream) {
      for (const std::string& ev : sse_events(res->body)) {
        if (ev == "[DONE]") continue;
        Json j = Json::parse(ev);
        if (j.contains("usage") && !j["usage"].is_null()) usage = j["usage"];
        if (j["choices"].empty()) continue;
        text += j["choices"][0]["text"].get<std::string>();
        if (!j["choices"][0]["finish_reason"].is_null()) {
          finish = j["choices"][0]["finish_reason"];
          stop_reason = j["choices"][0]["stop_reason"];
        }
      }
    } else {
      Json j = Json::parse(res->body);
      text = j["choices"][0]["text"];
      finish = j["choices"][0]["finish_reason"];
      stop_reason = j["choices"][0]["stop_reason"];
      usage = j["usage"];
    }
    EXPECT_EQ(text, e.text.substr(0, at)) << "stream=" << stream;
    EXPECT_EQ(finish, "stop");
    EXPECT_EQ(stop_reason, stop);
    // The tokens up to the one completing the stop string, none after.
    int num_tokens = 0;
    for (std::string seen; seen.size() < at + stop.size(); ++num_tokens)
      seen += AsciiTextProcessor().decode({e.ids[static_cast<size_t>(num_tokens)]}, true);
    EXPECT_EQ(usage["completion_tokens"], num_tokens);
  }
  // include_stop_str_in_output keeps it.
  int status = 0;
  Json r = post_json(c, "/v1/completions",
                     {{"prompt", "Stop me"},
                      {"max_tokens", 60},
                      {"ignore_eos", true},
                      {"stop", stop},
                      {"include_stop_str_in_output", true}},
                     &status);
  ASSERT_EQ(status, 200);
  EXPECT_EQ(r["choices"][0]["text"], e.text.substr(0, at + stop.size()));
}

TEST(ServerTest, StopTokenIdsAndEos) {
  TestServer ts;
  auto c = ts.client();
  const Expected e = expected_output("eos?", 200, /*ignore_eos=*/false);
  int status = 0;
  Json r = post_json(c, "/v1/completions", {{"prompt", "eos?"}, {"max_tokens", 200}}, &status);
  ASSERT_EQ(status, 200);
  EXPECT_EQ(r["choices"][0]["text"], e.text);
  EXPECT_EQ(r["choices"][0]["finish_reason"], e.finish_reason);
  const Expected all = expected_output("eos?", 30);
  const int32_t stop_id = all.ids[10];
  r = post_json(c, "/v1/completions",
                {{"prompt", "eos?"}, {"max_tokens", 30}, {"ignore_eos", true}, {"stop_token_ids", {stop_id}}},
                &status);
  ASSERT_EQ(status, 200);
  EXPECT_EQ(r["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(r["choices"][0]["stop_reason"], stop_id);
  const size_t first =
      static_cast<size_t>(std::find(all.ids.begin(), all.ids.end(), stop_id) - all.ids.begin());
  EXPECT_EQ(r["usage"]["completion_tokens"], static_cast<int>(first + 1));
}

TEST(ServerTest, NGreaterThanOneExpandsIntoChoices) {
  TestServer ts;
  auto c = ts.client();
  int status = 0;
  Json r = post_json(
      c, "/v1/completions",
      {{"prompt", Json::array({"one", "two"})}, {"n", 3}, {"max_tokens", 7}, {"ignore_eos", true}}, &status);
  ASSERT_EQ(status, 200) << r.dump();
  ASSERT_EQ(r["choices"].size(), 6u);
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(r["choices"][i]["index"], i);
    EXPECT_EQ(r["choices"][i]["text"], expected_output(i < 3 ? "one" : "two", 7).text);
  }
  EXPECT_EQ(r["usage"]["prompt_tokens"], 6);
  EXPECT_EQ(r["usage"]["completion_tokens"], 42);
  // Streaming chat with n = 2: every choice gets its role chunk and a finish.
  auto res = c.Post("/v1/chat/completions",
                    dump_json({{"messages", Json::array({Json{{"role", "user"}, {"content", "x"}}})},
                               {"n", 2},
                               {"max_tokens", 5},
                               {"ignore_eos", true},
                               {"stream", true}}),
                    "application/json");
  ASSERT_TRUE(res);
  std::string text[2];
  int finishes = 0;
  for (const std::string& ev : sse_events(res->body)) {
    if (ev == "[DONE]") continue;
    Json j = Json::parse(ev);
    const int idx = j["choices"][0]["index"];
    if (j["choices"][0]["delta"].contains("content"))
      text[idx] += j["choices"][0]["delta"]["content"].get<std::string>();
    finishes += !j["choices"][0]["finish_reason"].is_null();
  }
  EXPECT_EQ(finishes, 2);
  EXPECT_EQ(text[0], expected_output("user: x\nassistant:", 5).text);
  EXPECT_EQ(text[1], text[0]);
}

TEST(ServerTest, LogprobsHaveOneEntryPerToken) {
  TestServer ts;
  auto c = ts.client();
  int status = 0;
  Json r = post_json(c, "/v1/chat/completions",
                     {{"messages", Json::array({Json{{"role", "user"}, {"content", "lp"}}})},
                      {"max_tokens", 6},
                      {"ignore_eos", true},
                      {"logprobs", true},
                      {"top_logprobs", 2}},
                     &status);
  ASSERT_EQ(status, 200) << r.dump();
  const Json& content = r["choices"][0]["logprobs"]["content"];
  ASSERT_EQ(content.size(), 6u);
  const Expected e = expected_output("user: lp\nassistant:", 6);
  for (size_t i = 0; i < content.size(); ++i)
    EXPECT_EQ(content[i]["token"], AsciiTextProcessor::piece(e.ids[i]));
  EXPECT_EQ(content[0]["logprob"], -0.5);  // what the fake runner reports
  r = post_json(c, "/v1/completions",
                {{"prompt", "lp"}, {"max_tokens", 4}, {"ignore_eos", true}, {"logprobs", 1}}, &status);
  ASSERT_EQ(status, 200);
  EXPECT_EQ(r["choices"][0]["logprobs"]["tokens"].size(), 4u);
}

TEST(ServerTest, ErrorStatuses) {
  ServerConfig cfg;
  cfg.max_body_bytes = 4096;
  TestServer ts(cfg, TestServerOptions{.max_model_len = 64});
  auto c = ts.client();
  auto expect_error = [&](const std::string& method, const std::string& path, const std::string& body,
                          int want_status, const std::string& want_param) {
    httplib::Result res =
        method == "GET" ? c.Get(path.c_str()) : c.Post(path.c_str(), body, "application/json");
    ASSERT_TRUE(res) << path;
    EXPECT_EQ(res->status, want_status) << path << " " << body << " -> " << res->body;
    Json j = Json::parse(res->body, nullptr, false);
    ASSERT_TRUE(j.is_object() && j.contains("error")) << res->body;
    EXPECT_EQ(j["error"]["code"], want_status);
    EXPECT_TRUE(j["error"]["message"].is_string());
    EXPECT_TRUE(j["error"]["type"].is_string());
    if (want_param.empty())
      EXPECT_TRUE(j["error"]["param"].is_null()) << res->body;
    else
      EXPECT_EQ(j["error"]["param"], want_param) << res->body;
  };
  expect_error("POST", "/v1/completions", "{not json", 400, "");
  expect_error("POST", "/v1/completions", "[1, 2]", 400, "");
  expect_error("POST", "/v1/completions", R"({"max_tokens": 3})", 400, "prompt");
  expect_error("POST", "/v1/completions", R"({"prompt": "x", "temperature": "hot"})", 400, "temperature");
  expect_error("POST", "/v1/completions", R"({"prompt": "x", "top_p": 2})", 400, "top_p");
  expect_error("POST", "/v1/completions", R"({"prompt": "x", "max_tokens": 1e30})", 400, "max_tokens");
  expect_error("POST", "/v1/completions", R"({"prompt": "x", "n": 0})", 400, "n");
  expect_error("POST", "/v1/completions", R"({"prompt": "x", "stop": 5})", 400, "stop");
  expect_error("POST", "/v1/completions", R"({"prompt": "x", "model": "gpt-9"})", 400, "model");
  expect_error("POST", "/v1/completions", R"({"prompt": [1, 2, 100000]})", 400, "prompt");
  expect_error("POST", "/v1/completions", R"({"prompt": "caf\u00e9"})", 400, "prompt");  // not in the vocab
  expect_error("POST", "/v1/completions", dump_json({{"prompt", std::string(80, 'a')}}), 400, "prompt");
  expect_error("POST", "/v1/completions", R"({"prompt": "x", "max_tokens": 100})", 400, "max_tokens");
  expect_error("POST", "/v1/chat/completions", R"({"messages": []})", 400, "messages");
  expect_error("POST", "/v1/chat/completions", R"({"messages": [{"role": "wizard", "content": "x"}]})", 400,
               "messages");
  expect_error("POST", "/v1/chat/completions",
               R"({"messages": [{"role": "user", "content": "x"}], "top_logprobs": 3})", 400, "top_logprobs");
  expect_error("POST", "/v1/completions", dump_json({{"prompt", std::string(5000, 'a')}}), 413, "");
  expect_error("GET", "/v1/nothing", "", 404, "");
  expect_error("GET", "/v1/completions", "", 405, "");
  expect_error("POST", "/health", "{}", 405, "");
  // Unknown fields are ignored, nulls are absent (vLLM).
  int status = 0;
  Json r = post_json(c, "/v1/completions",
                     {{"prompt", "x"}, {"max_tokens", 2}, {"frobnicate", 1}, {"seed", nullptr}}, &status);
  EXPECT_EQ(status, 200) << r.dump();
}

TEST(ServerTest, ApiKeyIsRequiredOnV1) {
  ServerConfig cfg;
  cfg.api_key = "sekrit";
  TestServer ts(cfg);
  auto c = ts.client();
  const std::string body = dump_json({{"prompt", "x"}, {"max_tokens", 2}});
  auto res = c.Post("/v1/completions", body, "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 401);
  EXPECT_EQ(Json::parse(res->body)["error"]["code"], 401);
  res = c.Post("/v1/completions", {{"Authorization", "Bearer sekrit2"}}, body, "application/json");
  EXPECT_EQ(res->status, 401);
  res = c.Post("/v1/completions", {{"Authorization", "Bearer sekrit"}}, body, "application/json");
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(c.Get("/v1/models")->status, 401);
  EXPECT_EQ(c.Get("/health")->status, 200);  // public, as vLLM
}

TEST(ServerTest, QueueFullIs503) {
  TestServer ts({}, TestServerOptions{.max_num_seqs = 1, .max_num_waiting = 1});
  // Each engine step signals `entered` and then takes one permit: the test decides exactly how far
  // the engine gets. The guard lets the engine run freely again whatever happens below.
  auto permits = std::make_shared<std::counting_semaphore<1 << 20>>(0);
  auto entered = std::make_shared<std::counting_semaphore<1 << 20>>(0);
  ts.runner().set_before_step([permits, entered] {
    entered->release();
    permits->acquire();
  });
  struct Release {
    std::shared_ptr<std::counting_semaphore<1 << 20>> p;
    ~Release() { p->release(1 << 19); }
  } release_on_exit{permits};
  engine::EngineCoreRequest a;
  a.prompt_token_ids = {5, 6};
  a.sampling_params.max_tokens = 100;
  engine::EngineCoreRequest b = a;
  auto ha = ts.engine().add_request(a);
  ASSERT_TRUE(ha.ok());
  entered->acquire();  // a is running, the engine holds in step 1
  auto hb = ts.engine().add_request(b);
  ASSERT_TRUE(hb.ok()) << hb.status().message();
  permits->release(1);
  entered->acquire();  // step 2 started: b was taken in and waits (max_num_seqs 1)
  permits->release(1);
  entered->acquire();  // step 3 started: step 2's stats (one waiting) are published
  ASSERT_EQ(ts.engine().stats().scheduler.num_waiting, 1);
  auto c = ts.client();
  auto res = c.Post("/v1/completions", dump_json({{"prompt", "x"}, {"max_tokens", 2}}), "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 503) << res->body;
  EXPECT_EQ(Json::parse(res->body)["error"]["code"], 503);
}

TEST(ServerTest, EngineFailureMidStreamIsAnSseErrorThenDone) {
  TestServer ts;
  auto c = ts.client();
  ts.runner().fail_next_step();  // the engine is idle: its next step is this request's first
  auto res = c.Post("/v1/chat/completions",
                    dump_json({{"messages", Json::array({Json{{"role", "user"}, {"content", "x"}}})},
                               {"max_tokens", 5},
                               {"stream", true}}),
                    "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  const auto events = sse_events(res->body);
  ASSERT_GE(events.size(), 2u);
  EXPECT_EQ(events.back(), "[DONE]");
  Json err = Json::parse(events[events.size() - 2]);
  EXPECT_TRUE(err.contains("error")) << res->body;
  // Non-streaming: a 500 error object.
  ts.runner().fail_next_step();
  res = c.Post("/v1/completions", dump_json({{"prompt", "x"}, {"max_tokens", 5}}), "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 500);
  EXPECT_EQ(Json::parse(res->body)["error"]["code"], 500);
}

TEST(ServerTest, ModelsHealthTokenizeDetokenize) {
  ServerConfig cfg;
  cfg.served_model_names = {"tiny", "alias"};
  TestServer ts(cfg);
  auto c = ts.client();
  auto res = c.Get("/health");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  res = c.Get("/v1/models");
  Json models = Json::parse(res->body);
  EXPECT_EQ(models["object"], "list");
  EXPECT_EQ(models["data"][0]["id"], "tiny");
  EXPECT_EQ(models["data"][0]["max_model_len"], 1024);
  int status = 0;
  Json t = post_json(c, "/tokenize", {{"model", "tiny"}, {"prompt", "abc"}}, &status);
  ASSERT_EQ(status, 200) << t.dump();
  EXPECT_EQ(t["tokens"], ts.text().encode("abc", true).value());
  EXPECT_EQ(t["count"], 3);
  EXPECT_EQ(t["max_model_len"], 1024);
  Json d = post_json(c, "/detokenize", {{"model", "alias"}, {"tokens", t["tokens"]}}, &status);
  ASSERT_EQ(status, 200);
  EXPECT_EQ(d["prompt"], "abc");
  post_json(c, "/tokenize", {{"model", "nope"}, {"prompt", "abc"}}, &status);
  EXPECT_EQ(status, 400);
  post_json(c, "/detokenize", {{"tokens", {1, -1}}}, &status);
  EXPECT_EQ(status, 400);
}

int connect_loopback(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

void send_all(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    const ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return;
    off += static_cast<size_t>(n);
  }
}

int count_of(const std::string& s, const std::string& needle) {
  int n = 0;
  for (size_t at = s.find(needle); at != std::string::npos; at = s.find(needle, at + 1)) ++n;
  return n;
}

double metric(const std::string& text, const std::string& name) {
  const size_t at = text.find("\n" + name + "{");
  if (at == std::string::npos) return -1;
  const size_t sp = text.find("} ", at);
  return std::stod(text.substr(sp + 2, text.find('\n', sp) - sp - 2));
}

TEST(ServerTest, MetricsCountRequestsAndTokens) {
  TestServer ts;
  auto c = ts.client();
  int status = 0;
  post_json(c, "/v1/completions", {{"prompt", "metrics"}, {"max_tokens", 10}, {"ignore_eos", true}}, &status);
  ASSERT_EQ(status, 200);
  auto res = c.Get("/metrics");
  ASSERT_TRUE(res);
  const std::string& m = res->body;
  for (const char* name :
       {"nibble:num_requests_running", "nibble:num_requests_waiting", "nibble:kv_cache_usage_perc",
        "nibble:num_preemptions_total", "nibble:prefix_cache_queries_total", "nibble:prefix_cache_hits_total",
        "nibble:prompt_tokens_total", "nibble:generation_tokens_total",
        "nibble:time_to_first_token_seconds_count", "nibble:inter_token_latency_seconds_count",
        "nibble:e2e_request_latency_seconds_count", "nibble:request_time_per_output_token_seconds_count"})
    EXPECT_GE(metric(m, name), 0) << name << "\n" << m;
  EXPECT_EQ(metric(m, "nibble:generation_tokens_total"), 10);
  EXPECT_EQ(metric(m, "nibble:prompt_tokens_total"), 7);
  EXPECT_EQ(metric(m, "nibble:e2e_request_latency_seconds_count"), 1);
  EXPECT_EQ(metric(m, "nibble:num_requests_running"), 0);
}

// A client that goes away mid-stream: its request is aborted and its KV blocks freed.
TEST(ServerTest, DisconnectAbortsAndFreesKv) {
  TestServer ts;
  // Slow steps so that the request is still running when the client leaves.
  ts.runner().set_before_step([] { std::this_thread::sleep_for(std::chrono::milliseconds(20)); });
  std::atomic<int64_t> steps_at_close{-1};
  std::thread client([&] {
    const int fd = connect_loopback(ts.port());
    ASSERT_GE(fd, 0);
    const std::string body =
        dump_json({{"prompt", "long"}, {"max_tokens", 500}, {"ignore_eos", true}, {"stream", true}});
    send_all(
        fd, "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
                std::to_string(body.size()) + "\r\n\r\n" + body);
    std::string got;
    char buf[4096];
    while (count_of(got, "data: ") < 4) {
      const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
      if (n <= 0) break;
      got.append(buf, static_cast<size_t>(n));
    }
    steps_at_close = ts.engine().stats().num_steps;
    ::close(fd);
  });
  client.join();
  ASSERT_GE(steps_at_close.load(), 0);
  // Wait (bounded) for the engine to report the request gone and every block free.
  engine::EngineStats st;
  for (int i = 0; i < 1000; ++i) {
    st = ts.engine().stats();
    if (st.scheduler.num_running == 0 && st.scheduler.kv_cache_usage == 0.0 &&
        st.scheduler.num_finished_abort == 1)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(st.scheduler.num_running, 0);
  EXPECT_EQ(st.scheduler.kv_cache_usage, 0.0);
  EXPECT_EQ(st.scheduler.num_finished_abort, 1);
  EXPECT_LT(st.scheduler.num_generation_tokens, 500);
  // Detection polls every 10 ms while a step takes 20 ms: freed within a step or two of the close.
  std::printf("disconnect: KV freed %lld engine steps after the client closed\n",
              static_cast<long long>(st.num_steps - steps_at_close.load()));
  EXPECT_LE(st.num_steps - steps_at_close.load(), 3);
  auto c = ts.client();
  auto res = c.Get("/metrics");
  EXPECT_EQ(metric(res->body, "nibble:http_requests_client_disconnected_total"), 1);
  EXPECT_EQ(metric(res->body, "nibble:kv_cache_usage_perc"), 0);
}

TEST(ServerTest, DisconnectDuringNonStreamingRequestAborts) {
  TestServer ts;
  ts.runner().set_before_step([] { std::this_thread::sleep_for(std::chrono::milliseconds(20)); });
  {
    auto c = ts.client();
    c.set_read_timeout(0, 200'000);  // gives up after 200 ms and closes the socket
    auto res =
        c.Post("/v1/completions", dump_json({{"prompt", "long"}, {"max_tokens", 500}, {"ignore_eos", true}}),
               "application/json");
    EXPECT_FALSE(res);
  }
  engine::EngineStats st;
  for (int i = 0; i < 1000; ++i) {
    st = ts.engine().stats();
    if (st.scheduler.num_finished_abort == 1 && st.scheduler.kv_cache_usage == 0.0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(st.scheduler.num_finished_abort, 1);
  EXPECT_EQ(st.scheduler.kv_cache_usage, 0.0);
  EXPECT_LT(st.scheduler.num_generation_tokens, 500);
}

// shutdown(): new connections are refused, the running request still completes.
TEST(ServerTest, ShutdownLetsRunningRequestsFinish) {
  TestServer ts;
  ts.runner().set_before_step([] { std::this_thread::sleep_for(std::chrono::milliseconds(5)); });
  auto pending = std::async(std::launch::async, [&] {
    auto c = ts.client();
    int status = 0;
    return std::make_pair(post_json(c, "/v1/completions",
                                    {{"prompt", "bye"}, {"max_tokens", 40}, {"ignore_eos", true}}, &status),
                          status);
  });
  for (int i = 0; i < 1000 && ts.server().active_generations() == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  ASSERT_EQ(ts.server().active_generations(), 1);
  ts.stop(std::chrono::seconds(60));
  auto [body, status] = pending.get();
  EXPECT_EQ(status, 200);
  EXPECT_EQ(body["choices"][0]["text"], expected_output("bye", 40).text);
  httplib::Client c("127.0.0.1", ts.port());
  EXPECT_FALSE(c.Get("/health"));
}

// 200 requests at concurrency 32: no failures, each output equal to the request run alone.
TEST(ServerTest, ConcurrentLoadMatchesSequential) {
  TestServer ts;
  constexpr int kRequests = 200, kConcurrency = 32;
  std::atomic<int> next{0}, failures{0}, mismatches{0};
  std::vector<std::thread> workers;
  for (int w = 0; w < kConcurrency; ++w) {
    workers.emplace_back([&] {
      auto c = ts.client();
      for (int i = next++; i < kRequests; i = next++) {
        const std::string prompt =
            "request number " + std::to_string(i % 50);  // shared prefixes hit the cache
        const int max_tokens = 5 + i % 23;
        const bool stream = i % 3 == 0;
        Json body = {
            {"prompt", prompt}, {"max_tokens", max_tokens}, {"ignore_eos", true}, {"stream", stream}};
        auto res = c.Post("/v1/completions", dump_json(body), "application/json");
        if (!res || res->status != 200) {
          if (res)
            std::printf("load: HTTP %d %s\n", res->status, res->body.c_str());
          else
            std::printf("load: %s stream=%d\n", httplib::to_string(res.error()).c_str(), stream);
          ++failures;
          continue;
        }
        std::string text;
        if (stream) {
          for (const std::string& ev : sse_events(res->body))
            if (ev != "[DONE]") text += Json::parse(ev)["choices"][0]["text"].get<std::string>();
        } else {
          text = Json::parse(res->body)["choices"][0]["text"];
        }
        if (text != expected_output(prompt, max_tokens).text) ++mismatches;
      }
    });
  }
  for (auto& t : workers) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(mismatches.load(), 0);
  EXPECT_TRUE(ts.runner().errors().empty());
}

// Malformed requests of many kinds: every reply is a 4xx JSON error and the server stays up.
TEST(ServerTest, GarbageRequestsGetFourHundreds) {
  ServerConfig cfg;
  cfg.max_body_bytes = 1 << 16;
  TestServer ts(cfg);
  auto c = ts.client();
  std::mt19937 rng(1234);
  const std::vector<std::string> seeds = {
      R"({"prompt": "x", "max_tokens": 4})",
      R"({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4, "stream": true})",
      R"({"prompt": [1, 2, 3], "n": 2, "stop": ["a", "b"], "logprobs": 2})"};
  const std::vector<std::string> bad_values = {
      "null", "-1",   "1e309", "18446744073709551616", "\"\\ud800\"", "[]",
      "{}",   "true", "\"x\"", "-9223372036854775809", "0.5",         "[[[[]]]]"};
  const std::vector<std::string> fields = {"prompt",      "messages",       "max_tokens",
                                           "temperature", "top_p",          "top_k",
                                           "n",           "stop",           "seed",
                                           "logprobs",    "stream",         "stream_options",
                                           "min_p",       "stop_token_ids", "presence_penalty",
                                           "model",       "top_logprobs"};
  int num_4xx = 0, num_200 = 0, num_other = 0;
  constexpr int kRuns = 3000;
  for (int i = 0; i < kRuns; ++i) {
    std::string body = seeds[rng() % seeds.size()];
    switch (rng() % 5) {
      case 0:
        body = body.substr(0, rng() % body.size());
        break;  // truncated
      case 1:
        body[rng() % body.size()] = static_cast<char>(rng() % 256);
        break;   // a random byte
      case 2: {  // a field set to a bad value
        const std::string& f = fields[rng() % fields.size()];
        body = "{\"" + f + "\": " + bad_values[rng() % bad_values.size()] +
               (rng() % 2 ? ", \"prompt\": \"x\"}"
                          : ", \"messages\": [{\"role\": \"user\", \"content\": \"x\"}]}");
        break;
      }
      case 3:
        body = std::string(rng() % 200, '[') + "1";
        break;  // deep nesting
      default:
        body.insert(rng() % body.size(), "\xff\xfe");
        break;  // invalid UTF-8
    }
    const char* path = rng() % 2 ? "/v1/completions" : "/v1/chat/completions";
    auto res = c.Post(path, body, "application/json");
    if (!res) {
      ++num_other;
      continue;
    }
    if (res->status == 200) {
      ++num_200;  // a mutation can leave a valid request
      continue;
    }
    Json j = Json::parse(res->body, nullptr, false);
    if (res->status >= 400 && res->status < 500 && j.is_object() && j.contains("error"))
      ++num_4xx;
    else {
      ++num_other;
      ADD_FAILURE() << res->status << " for " << body << " -> " << res->body;
    }
  }
  std::printf("garbage: %d requests, %d 4xx, %d 200, %d other\n", kRuns, num_4xx, num_200, num_other);
  EXPECT_EQ(num_other, 0);
  EXPECT_GT(num_4xx, kRuns / 2);
  EXPECT_EQ(c.Get("/health")->status, 200);
}

TEST(ReasoningSplitterTest, SplitsThinkBlocksIncrementally) {
  const std::string out = "<think>\nLet me think.\n</think>\n\nThe answer.";
  for (size_t chunk = 1; chunk <= out.size(); ++chunk) {
    ReasoningSplitter s(false);
    std::string reasoning, content;
    for (size_t i = 0; i < out.size(); i += chunk) s.feed(out.substr(i, chunk), false, &reasoning, &content);
    s.feed("", true, &reasoning, &content);
    EXPECT_EQ(reasoning, "\nLet me think.\n") << chunk;
    EXPECT_EQ(content, "\n\nThe answer.") << chunk;
  }
  // No think block: all content. Prompt opened the block: reasoning until </think>.
  std::string reasoning, content;
  ReasoningSplitter plain(false);
  plain.feed("<th", false, &reasoning, &content);
  plain.feed("e answer", true, &reasoning, &content);
  EXPECT_EQ(content, "<the answer");
  EXPECT_EQ(reasoning, "");
  ReasoningSplitter opened(true);
  reasoning.clear();
  content.clear();
  opened.feed("hmm</thi", false, &reasoning, &content);
  opened.feed("nk>ok", true, &reasoning, &content);
  EXPECT_EQ(reasoning, "hmm");
  EXPECT_EQ(content, "ok");
}

// gpt-oss harmony output (the template's generation prompt ends with "<|start|>assistant"): the
// analysis channel is reasoning, the final channel content; tags split across any chunk size.
TEST(HarmonySplitterTest, SplitsChannelsIncrementally) {
  const std::string out =
      "<|channel|>analysis<|message|>User says hi. Reply <b>kindly</b>.<|end|>"
      "<|start|>assistant<|channel|>final<|message|>Hello! a<|b is fine<|return|>";
  for (size_t chunk = 1; chunk <= out.size(); ++chunk) {
    HarmonySplitter s;
    std::string reasoning, content;
    for (size_t i = 0; i < out.size(); i += chunk) s.feed(out.substr(i, chunk), false, &reasoning, &content);
    s.feed("", true, &reasoning, &content);
    EXPECT_EQ(reasoning, "User says hi. Reply <b>kindly</b>.") << chunk;
    EXPECT_EQ(content, "Hello! a<|b is fine") << chunk;
  }
  // A commentary channel with a recipient is content; output that is not harmony at all is
  // flushed as content at the end, without tags.
  std::string reasoning, content;
  HarmonySplitter tool;
  tool.feed("<|channel|>commentary to=functions.f <|constrain|>json<|message|>{\"a\":1}<|call|>", true,
            &reasoning, &content);
  EXPECT_EQ(reasoning, "");
  EXPECT_EQ(content, "{\"a\":1}");
  HarmonySplitter plain;
  content.clear();
  plain.feed("just text <|end|>more", false, &reasoning, &content);
  EXPECT_EQ(content, "");
  plain.feed("", true, &reasoning, &content);
  EXPECT_EQ(content, "just text more");
}

TEST(ServerTest, ChatReasoningContent) {
  ServerConfig cfg;
  cfg.reasoning = true;
  TestServer ts(cfg);
  // Find a prompt whose fake output contains "</think>" (id 2) early: the text before it is
  // reasoning. Search deterministically over a few prompts.
  AsciiTextProcessor t;
  std::string user;
  size_t end_pos = 0;
  Expected e;
  for (int i = 0; i < 5000 && user.empty(); ++i) {
    const std::string u = "q" + std::to_string(i);
    e = expected_output("user: " + u + "\nassistant:", 40);
    const auto it = std::find(e.ids.begin(), e.ids.end(), 2);
    if (it != e.ids.end() && std::find(e.ids.begin(), it, 1) == it && e.ids[0] != 1) {
      user = u;
      end_pos = e.text.find("</think>");
    }
  }
  ASSERT_FALSE(user.empty());
  (void)end_pos;
  // Output not starting with <think> is content only (the prompt did not open a think block).
  auto c = ts.client();
  int status = 0;
  Json r = post_json(c, "/v1/chat/completions",
                     {{"messages", Json::array({Json{{"role", "user"}, {"content", user}}})},
                      {"max_tokens", 40},
                      {"ignore_eos", true}},
                     &status);
  ASSERT_EQ(status, 200) << r.dump();
  EXPECT_EQ(r["choices"][0]["message"]["content"], e.text);
  EXPECT_TRUE(r["choices"][0]["message"]["reasoning_content"].is_null());
}

}  // namespace
}  // namespace nibble::server
