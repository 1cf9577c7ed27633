// End to end: `nibble serve` and `nibble run --chat` on tiny random gpt-oss and Qwen3-MoE
// checkpoints with their real tokenizers (../shared/tokenizers/{gpt-oss,qwen3}). Completions and
// chat, streaming and not, through the HTTP API; gpt-oss chat goes through a harmony template and
// the harmony output parser (reasoning_content present). The weights are random, so the checks are
// the API's invariants: status 200, streamed text == non-streamed text, usage counts.
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "model/random_checkpoint.h"
#include "model_test_util.h"

extern char** environ;

namespace nibble {
namespace {

using Json = nlohmann::json;
using testing_util::TempDir;

const std::string kTokenizers = std::string(NIBBLE_SHARED_DIR) + "/tokenizers";

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}

// `nibble serve DIR` as a child process, stopped with SIGTERM.
class ServeProcess {
 public:
  ServeProcess(const std::string& model_dir, int port) {
    std::vector<std::string> args = {
        NIBBLE_BINARY,     "serve", model_dir, "--port", std::to_string(port), "--served-model-name", "m",
        "--max-model-len", "512",   "-t",      "1"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    if (::posix_spawn(&pid_, NIBBLE_BINARY, nullptr, nullptr, argv.data(), environ) != 0) pid_ = -1;
  }
  ~ServeProcess() { stop(); }
  int stop() {
    if (pid_ <= 0) return -1;
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  bool running() const { return pid_ > 0; }

 private:
  pid_t pid_ = -1;
};

Json post(httplib::Client& c, const std::string& path, const Json& body, int* status) {
  auto r = c.Post(path, body.dump(), "application/json");
  *status = r ? r->status : -1;
  if (!r) return Json();
  return Json::parse(r->body, nullptr, false);
}

// Concatenates a streamed response's deltas: choices[0].text (completions) or
// choices[0].delta.{content,reasoning_content} (chat); returns false on a malformed stream.
bool read_stream(httplib::Client& c, const std::string& path, const Json& body, std::string* text,
                 std::string* reasoning, int64_t* completion_tokens) {
  auto r = c.Post(path, body.dump(), "application/json");
  if (!r || r->status != 200) return false;
  bool done = false;
  size_t pos = 0;
  const std::string& s = r->body;
  while (pos < s.size()) {
    const size_t end = s.find('\n', pos);
    const std::string line = s.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
    pos = end == std::string::npos ? s.size() : end + 1;
    if (line.rfind("data: ", 0) != 0) continue;
    const std::string data = line.substr(6);
    if (data == "[DONE]") {
      done = true;
      continue;
    }
    const Json j = Json::parse(data, nullptr, false);
    if (j.is_discarded()) return false;
    if (j.contains("usage") && j["usage"].is_object()) *completion_tokens = j["usage"]["completion_tokens"];
    for (const Json& ch : j.value("choices", Json::array())) {
      if (ch.contains("text") && ch["text"].is_string()) *text += ch["text"].get<std::string>();
      if (ch.contains("delta")) {
        const Json& d = ch["delta"];
        if (d.contains("content") && d["content"].is_string()) *text += d["content"].get<std::string>();
        if (d.contains("reasoning_content") && d["reasoning_content"].is_string())
          *reasoning += d["reasoning_content"].get<std::string>();
      }
    }
  }
  return done;
}

struct ServeCase {
  std::string arch;
  std::string tokenizer;
};

class MoeServeTest : public ::testing::TestWithParam<ServeCase> {};

TEST_P(MoeServeTest, CompletionsAndChatStreamingAndNot) {
  const ServeCase& sc = GetParam();
  const std::string tok_dir = kTokenizers + "/" + sc.tokenizer;
  if (!std::filesystem::exists(tok_dir + "/tokenizer.json")) GTEST_SKIP() << tok_dir << " is absent";
  TempDir dir("moe_serve");
  model::RandomModelSpec spec;
  spec.arch = sc.arch;
  spec.preset = "tiny";
  spec.tokenizer_dir = tok_dir;
  ASSERT_TRUE(model::write_random_checkpoint(dir.path(), spec).ok());

  // `nibble run --chat` renders the model's chat template (harmony for gpt-oss) and generates.
  const auto run = testing_util::run_nibble(
      {"run", dir.path(), "--chat", "-p", "hi", "-n", "6", "--temp", "0", "-t", "1", "--ignore-eos"}, true);
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("decode: 5 tokens"), std::string::npos) << run.output;

  const int port = free_port();
  ASSERT_GT(port, 0);
  ServeProcess server(dir.path(), port);
  ASSERT_TRUE(server.running());
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(120, 0);
  bool healthy = false;
  for (int i = 0; i < 600 && !healthy; ++i) {
    auto r = c.Get("/health");
    healthy = r && r->status == 200;
    if (!healthy) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(healthy) << "nibble serve did not become healthy";

  const Json completion = {{"model", "m"},
                           {"prompt", "Once upon a time"},
                           {"max_tokens", 12},
                           {"temperature", 0},
                           {"ignore_eos", true}};
  int status = 0;
  Json r = post(c, "/v1/completions", completion, &status);
  ASSERT_EQ(status, 200) << r.dump();
  EXPECT_EQ(r["usage"]["completion_tokens"], 12);
  const std::string text = r["choices"][0]["text"];
  Json streamed = completion;
  streamed["stream"] = true;
  streamed["stream_options"] = {{"include_usage", true}};
  std::string stext, sreasoning;
  int64_t stokens = 0;
  ASSERT_TRUE(read_stream(c, "/v1/completions", streamed, &stext, &sreasoning, &stokens));
  EXPECT_EQ(stext, text);
  EXPECT_EQ(stokens, 12);

  const Json chat = {{"model", "m"},
                     {"messages", Json::array({Json{{"role", "user"}, {"content", "Say hello"}}})},
                     {"max_tokens", 12},
                     {"temperature", 0},
                     {"ignore_eos", true}};
  r = post(c, "/v1/chat/completions", chat, &status);
  ASSERT_EQ(status, 200) << r.dump();
  const Json& message = r["choices"][0]["message"];
  EXPECT_EQ(message["role"], "assistant");
  EXPECT_EQ(r["usage"]["completion_tokens"], 12);
  // Both models have a reasoning parser: <think> (Qwen3 vocabulary) or harmony (gpt-oss).
  EXPECT_TRUE(message.contains("reasoning_content")) << message.dump();
  const std::string content = message["content"].is_string() ? message["content"].get<std::string>() : "";
  const std::string reasoning =
      message["reasoning_content"].is_string() ? message["reasoning_content"].get<std::string>() : "";
  if (sc.arch == "gpt-oss") {
    // Harmony tags never reach the client.
    EXPECT_EQ(content.find("<|"), std::string::npos) << content;
    EXPECT_EQ(reasoning.find("<|"), std::string::npos) << reasoning;
  }
  Json chat_streamed = chat;
  chat_streamed["stream"] = true;
  chat_streamed["stream_options"] = {{"include_usage", true}};
  stext.clear();
  sreasoning.clear();
  stokens = 0;
  ASSERT_TRUE(read_stream(c, "/v1/chat/completions", chat_streamed, &stext, &sreasoning, &stokens));
  EXPECT_EQ(stext, content);
  EXPECT_EQ(sreasoning, reasoning);
  EXPECT_EQ(stokens, 12);
  EXPECT_EQ(server.stop(), 0);
}

INSTANTIATE_TEST_SUITE_P(Archs, MoeServeTest,
                         ::testing::Values(ServeCase{"gpt-oss", "gpt-oss"}, ServeCase{"qwen3-moe", "qwen3"}),
                         [](const auto& param_info) {
                           return param_info.param.arch == "gpt-oss" ? "GptOss" : "Qwen3Moe";
                         });

}  // namespace
}  // namespace nibble
