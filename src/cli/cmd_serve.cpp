// `nibble serve MODEL [--host 127.0.0.1] [--port 8000] [--api-key KEY] [--served-model-name NAME]
//  [--max-num-seqs N] [--max-model-len N] [--kv-cache auto|SIZE|FRACTION] [-t N]`: the
// OpenAI-compatible server (server/server.h) over an engine for MODEL. SIGTERM / SIGINT stop
// accepting, let running requests finish for --shutdown-timeout seconds, then exit 0.
//
// --fake-runner serves MODEL's tokenizer and chat template with the deterministic FakeModelRunner
// instead of the weights: for testing clients and the HTTP layer without a model.
#include <pthread.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "base/log.h"
#include "cli/commands.h"
#include "engine/engine_core.h"
#include "engine/fake_model_runner.h"
#include "server/hf_text_processor.h"
#include "server/server.h"
#include "engine/llm_engine.h"

namespace nibble::cli {
namespace {

struct ServeArgs {
  std::string model_dir;
  std::string host = "127.0.0.1";
  int port = 8000;
  std::string api_key;
  std::vector<std::string> served_model_names;
  int32_t max_num_seqs = 32;
  int32_t max_model_len = 0;  // 0 = the engine's default
  int32_t max_num_waiting = 1024;
  std::string kv_cache = "auto";
  int num_threads = 0;
  int http_threads = 64;
  int64_t max_body_bytes = int64_t{8} << 20;
  int shutdown_timeout_s = 30;
  std::string reasoning_parser = "auto";
  bool fake_runner = false;
};

// What the server needs from a started engine, whichever way it was built.
struct StartedEngine {
  std::shared_ptr<void> owner;  // keeps the engine (and its runner) alive
  engine::EngineCore* core = nullptr;
  int32_t max_model_len = 0;
  engine::SamplingParams default_sampling;
  std::vector<std::string> startup_report;
};

// The one place that turns MODEL + flags into a running engine.
base::Result<StartedEngine> start_engine(const ServeArgs& args, int32_t vocab_size) {
  StartedEngine started;
  if (args.fake_runner) {
    constexpr int32_t kBlock = 16;
    engine::EngineConfig ec;
    ec.scheduler.max_num_seqs = args.max_num_seqs;
    ec.scheduler.max_num_batched_tokens = 2048;
    ec.scheduler.max_model_len = args.max_model_len > 0 ? args.max_model_len : 4096;
    ec.scheduler.max_num_waiting = args.max_num_waiting;
    ec.scheduler.vocab_size = vocab_size;
    ec.kv_cache.block_size = kBlock;
    ec.kv_cache.bytes_per_token = 1;
    ec.kv_cache.bytes_per_block = kBlock;
    ec.kv_cache.initial_num_blocks = ec.kv_cache.max_num_blocks = ec.kv_cache.min_num_blocks = 1 << 14;
    ec.kv_shrink_idle_delay = std::chrono::milliseconds(-1);
    NIBBLE_ASSIGN_OR_RETURN(
        auto core, engine::EngineCore::create(std::move(ec),
                                              std::make_unique<engine::FakeModelRunner>(vocab_size, kBlock)));
    started.core = core.get();
    started.max_model_len = core->config().scheduler.max_model_len;
    started.default_sampling.temperature = 0.0f;
    started.owner = std::shared_ptr<engine::EngineCore>(std::move(core));
    started.startup_report.push_back("fake model runner (deterministic tokens; no weights loaded)");
    return started;
  }
  engine::EngineArgs ea;
  ea.max_num_seqs = args.max_num_seqs;
  ea.max_model_len = args.max_model_len;
  ea.kv_cache = args.kv_cache;
  ea.num_threads = args.num_threads;
  ea.max_num_waiting = args.max_num_waiting;
  NIBBLE_ASSIGN_OR_RETURN(auto llm, engine::LlmEngine::create(args.model_dir, ea));
  started.core = &llm->core();
  started.max_model_len = llm->metadata().max_model_len;
  started.default_sampling = llm->metadata().default_sampling_params;
  started.startup_report = llm->metadata().startup_report;
  started.owner = std::shared_ptr<engine::LlmEngine>(std::move(llm));
  return started;
}

int serve(const ServeArgs& args) {
  // Signals go to one watcher thread: block them here, before any thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto text = server::load_hf_text_processor(args.model_dir, 0);
  if (!text.ok()) return report_error(text.status());
  auto started = start_engine(args, (*text)->vocab_size());
  if (!started.ok()) return report_error(started.status());
  for (const std::string& line : started->startup_report) base::log_info(line);

  server::ServerConfig cfg;
  cfg.host = args.host;
  cfg.port = args.port;
  cfg.api_key = args.api_key;
  if (!args.served_model_names.empty())
    cfg.served_model_names = args.served_model_names;
  else
    cfg.served_model_names = {args.model_dir};
  cfg.model_root = args.model_dir;
  cfg.max_model_len = started->max_model_len;
  cfg.default_sampling = started->default_sampling;
  cfg.harmony = args.reasoning_parser == "harmony" ||
                (args.reasoning_parser == "auto" && (*text)->has_token("<|channel|>") &&
                 (*text)->has_token("<|message|>"));
  cfg.reasoning =
      cfg.harmony || args.reasoning_parser == "qwen3" ||
      (args.reasoning_parser == "auto" && (*text)->has_token("<think>") && (*text)->has_token("</think>"));
  cfg.num_http_threads = args.http_threads;
  cfg.max_body_bytes = static_cast<size_t>(args.max_body_bytes);
  server::Server server(cfg, started->core, text->get());
  if (auto st = server.bind(); !st.ok()) return report_error(st);
  base::log_info("serving " + cfg.served_model_names.front() + " on http://" + args.host + ":" +
                 std::to_string(server.port()) + " (max_model_len " + std::to_string(cfg.max_model_len) +
                 (cfg.harmony ? ", reasoning_content from harmony analysis"
                              : cfg.reasoning ? ", reasoning_content from <think>" : "") +
                 (cfg.api_key.empty() ? "" : ", API key") + ")");
  if (args.host != "127.0.0.1" && args.host != "localhost" && args.host != "::1" && args.api_key.empty())
    base::log_warn("listening beyond loopback without --api-key: anyone who can reach " + args.host +
                   " can use this server");

  std::thread watcher([&server, &signals, grace = args.shutdown_timeout_s] {
    int sig = 0;
    sigwait(&signals, &sig);
    base::log_info(std::string("received ") + (sig == SIGINT ? "SIGINT" : "SIGTERM") +
                   ": not accepting new requests; finishing running ones (up to " + std::to_string(grace) +
                   " s)");
    server.shutdown(std::chrono::seconds(grace));
  });
  server.run();
  watcher.join();
  started->core->shutdown();
  base::log_info("server stopped");
  return 0;
}

}  // namespace

void add_serve(CLI::App& app, CommandFn* run) {
  CLI::App* cmd = app.add_subcommand("serve", "Serve a model over an OpenAI-compatible HTTP API");
  auto args = std::make_shared<ServeArgs>();
  cmd->add_option("MODEL", args->model_dir, "Model folder (config.json, safetensors, tokenizer.json)")
      ->required();
  cmd->add_option("--host", args->host, "Address to listen on (default 127.0.0.1: this machine only)");
  cmd->add_option("--port", args->port, "Port (0 = any free port)")->check(CLI::Range(0, 65535));
  cmd->add_option("--api-key", args->api_key, "Require 'Authorization: Bearer KEY' on /v1/*");
  cmd->add_option("--served-model-name", args->served_model_names,
                  "Model name(s) clients use (default: the MODEL path)");
  cmd->add_option("--max-num-seqs", args->max_num_seqs, "Requests in flight at most")
      ->check(CLI::Range(1, 4096));
  cmd->add_option("--max-model-len", args->max_model_len, "Prompt + output tokens per request")
      ->check(CLI::Range(2, 1 << 24));
  cmd->add_option("--max-num-waiting", args->max_num_waiting, "Queued requests at most (more get 503)")
      ->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--kv-cache", args->kv_cache, "KV cache: auto | SIZE (8GiB) | FRACTION (0.6)");
  cmd->add_option("-t,--threads", args->num_threads, "Threads (default: all available CPUs)")
      ->check(CLI::Range(1, 1024));
  cmd->add_option("--http-threads", args->http_threads, "Connections served at once")
      ->check(CLI::Range(1, 4096));
  cmd->add_option("--max-body-bytes", args->max_body_bytes, "Larger request bodies get 413")
      ->check(CLI::Range(int64_t{1024}, int64_t{1} << 32));
  cmd->add_option("--shutdown-timeout", args->shutdown_timeout_s,
                  "Seconds running requests get to finish after SIGTERM/SIGINT")
      ->check(CLI::Range(0, 3600));
  cmd->add_option("--reasoning-parser", args->reasoning_parser,
                  "Chat reasoning as reasoning_content: auto (harmony when the vocabulary has <|channel|>, "
                  "qwen3 when it has <think>), qwen3, harmony (gpt-oss), none")
      ->check(CLI::IsMember({"auto", "qwen3", "harmony", "none"}));
  cmd->add_flag("--fake-runner", args->fake_runner,
                "Serve a deterministic fake model (tokenizer only; for testing)");
  cmd->callback([run, args] { *run = [args] { return serve(*args); }; });
}

}  // namespace nibble::cli
