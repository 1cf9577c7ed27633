// The engine flags shared by `nibble serve` and `nibble bench` (EngineArgs in engine/llm_engine.h).
#pragma once

#include <memory>
#include <string>

#include "cli/cli.h"
#include "engine/llm_engine.h"

namespace nibble::cli {

// --max-num-seqs, --max-num-batched-tokens, --max-model-len, --kv-cache, --kv-cache-chunk,
// -t/--threads, --no-prefix-caching. `kv_chunk_text` receives --kv-cache-chunk, which the caller
// converts with engine_args_finish() after parsing.
struct EngineFlagText {
  std::string kv_cache_chunk;
  bool no_prefix_caching = false;
};

// `with_threads` = false leaves -t/--threads to the caller (`nibble bench MODEL` has its own).
inline void add_engine_flags(CLI::App* cmd, engine::EngineArgs* args, EngineFlagText* text,
                             bool with_threads = true) {
  cmd->add_option("--max-num-seqs", args->max_num_seqs, "Requests in flight at most")
      ->check(CLI::Range(1, 4096));
  cmd->add_option("--max-num-batched-tokens", args->max_num_batched_tokens, "Tokens per engine step at most")
      ->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--max-model-len", args->max_model_len,
                  "Prompt + output tokens per request (default min(max_position_embeddings, 4096))")
      ->check(CLI::Range(2, 1 << 24));
  cmd->add_option("--kv-cache", args->kv_cache, "KV cache: auto | SIZE (8GiB) | FRACTION (0.6)");
  cmd->add_option("--kv-cache-chunk", text->kv_cache_chunk,
                  "Growth step of --kv-cache auto (default 256MiB)");
  if (with_threads) {
    cmd->add_option("-t,--threads", args->num_threads, "Threads (default: all available CPUs)")
        ->check(CLI::Range(1, 1024));
  }
  cmd->add_flag("--no-prefix-caching", text->no_prefix_caching, "Turn prefix caching off");
}

inline base::Status engine_args_finish(const EngineFlagText& text, engine::EngineArgs* args) {
  if (!text.kv_cache_chunk.empty()) {
    auto bytes = engine::parse_byte_size(text.kv_cache_chunk);
    if (!bytes.ok()) return bytes.status().with_context("--kv-cache-chunk");
    args->kv_cache_chunk_bytes = *bytes;
  }
  args->enable_prefix_caching = !text.no_prefix_caching;
  return base::ok_status();
}

// `nibble bench MODEL --concurrency LIST` (and its alias `bench-engine`): the engine concurrency
// benchmark (cmd_bench_engine.cpp). max_num_seqs defaults to the largest concurrency unless
// `has_max_num_seqs`, max_model_len to P + N.
int run_bench_engine(const std::string& model_dir, const std::string& concurrency_text, int32_t prompt_tokens,
                     int32_t output_tokens, engine::EngineArgs engine_args, bool json, bool has_max_num_seqs);

}  // namespace nibble::cli
