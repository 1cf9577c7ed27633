// `nibble run MODEL (-p TEXT | --prompt-ids a,b,c) [-n N] [sampling flags] [--print-ids] [-t N]`:
// one request through the engine (LlmEngine): batched prefill of the prompt, then token-by-token
// decode, streaming the tokens to stdout.
// Load time, prefill and decode speeds go to stderr.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>

#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "base/thread_pool.h"
#include "cli/commands.h"
#include "engine/llm_engine.h"
#include "model/config.h"
#include "model/model.h"
#include "server/output_processor.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/incremental_detokenizer.h"
#include "tokenizer/tokenizer.h"

namespace nibble::cli {
namespace {

struct RunArgs {
  std::string model_dir;
  std::string prompt_text;
  std::string prompt_ids;
  int64_t max_new_tokens = 64;
  float temperature = 1.0f;
  int32_t top_k = 0;
  float top_p = 1.0f;
  float min_p = 0.0f;
  float repetition_penalty = 1.0f;
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  uint64_t seed = 0;
  bool print_ids = false;
  bool ignore_eos = false;
  int num_threads = 0;
  std::string kv_cache = "auto";
  bool chat = false;         // wrap -p TEXT with the model's chat template
  bool no_thinking = false;  // enable_thinking=false for the template (Qwen3)
  // Which sampling flags were given (the rest come from generation_config.json).
  bool has_temperature = false, has_top_k = false, has_top_p = false, has_min_p = false, has_rep = false,
       has_seed = false;
};

base::Result<std::vector<int32_t>> parse_ids(const std::string& text) {
  std::vector<int32_t> ids;
  size_t pos = 0;
  while (pos <= text.size()) {
    const size_t comma = std::min(text.find(',', pos), text.size());
    const std::string item = text.substr(pos, comma - pos);
    size_t used = 0;
    long long v = -1;
    try {
      v = std::stoll(item, &used);
    } catch (...) {
      used = 0;
    }
    if (used == 0 || used != item.size() || v < 0 || v > INT32_MAX) {
      return base::invalid_argument("--prompt-ids: '" + item + "' is not a token id");
    }
    ids.push_back(static_cast<int32_t>(v));
    pos = comma + 1;
  }
  return ids;
}

// Text -> ids with MODEL_DIR's tokenizer. With --chat the text becomes one user message wrapped
// by the model's chat template (as transformers' apply_chat_template with add_generation_prompt;
// the template supplies the special tokens, so none are added on top).
base::Result<std::vector<int32_t>> encode_prompt(const tokenizer::Tokenizer& tok, const RunArgs& args) {
  std::string text = args.prompt_text;
  bool add_special_tokens = true;
  if (args.chat) {
    NIBBLE_ASSIGN_OR_RETURN(tokenizer::ChatTemplate chat, tokenizer::ChatTemplate::from_dir(args.model_dir));
    const nlohmann::ordered_json messages = nlohmann::ordered_json::array(
        {nlohmann::ordered_json{{"role", "user"}, {"content", args.prompt_text}}});
    nlohmann::ordered_json kwargs = nlohmann::ordered_json::object();
    if (args.no_thinking) kwargs["enable_thinking"] = false;
    NIBBLE_ASSIGN_OR_RETURN(text, chat.render(messages.dump(), "", /*add_generation_prompt=*/true, kwargs.dump()));
    add_special_tokens = false;
  }
  NIBBLE_ASSIGN_OR_RETURN(std::vector<uint32_t> ids, tok.encode(text, add_special_tokens));
  return std::vector<int32_t>(ids.begin(), ids.end());
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

int run_model(const RunArgs& args) {
  std::vector<int32_t> prompt;
  // With -p TEXT the output is text too (streamed through the incremental detokenizer).
  std::unique_ptr<tokenizer::Tokenizer> tok;
  if (args.prompt_ids.empty()) {
    auto loaded = tokenizer::Tokenizer::from_dir(args.model_dir);
    if (!loaded.ok()) return report_error(loaded.status().with_context("-p TEXT needs the model's tokenizer"));
    tok = std::move(loaded).value();
  }
  if (!args.prompt_ids.empty()) {
    auto ids = parse_ids(args.prompt_ids);
    if (!ids.ok()) return report_error(ids.status());
    prompt = std::move(ids).value();
  } else {
    auto ids = encode_prompt(*tok, args);
    if (!ids.ok()) return report_error(ids.status());
    prompt = std::move(ids).value();
  }
  if (prompt.empty()) return report_error(base::invalid_argument("the prompt is empty"));

  auto config = model::load_model_config(args.model_dir);
  if (!config.ok()) return report_error(config.status());
  auto gen = model::load_generation_config(args.model_dir);
  if (!gen.ok()) return report_error(gen.status());

  const auto prompt_len = static_cast<int64_t>(prompt.size());
  if (prompt_len + args.max_new_tokens > config->max_position_embeddings) {
    return report_error(base::invalid_argument(
        "prompt (" + std::to_string(prompt_len) + " tokens) + -n " + std::to_string(args.max_new_tokens) +
        " exceeds max_position_embeddings " + std::to_string(config->max_position_embeddings)));
  }

  engine::SamplingParams params;
  const bool sample_default = gen->do_sample.value_or(true);
  params.temperature = args.has_temperature ? args.temperature
                       : !sample_default    ? 0.0f
                                            : gen->temperature.value_or(1.0f);
  params.top_k = args.has_top_k ? args.top_k : gen->top_k.value_or(0);
  params.top_p = args.has_top_p ? args.top_p : gen->top_p.value_or(1.0f);
  params.min_p = args.has_min_p ? args.min_p : gen->min_p.value_or(0.0f);
  params.repetition_penalty = args.has_rep ? args.repetition_penalty : gen->repetition_penalty.value_or(1.0f);
  params.presence_penalty = args.presence_penalty;
  params.frequency_penalty = args.frequency_penalty;
  params.seed = args.has_seed ? args.seed : std::random_device{}();
  params.max_tokens = std::max(1, static_cast<int32_t>(args.max_new_tokens));
  if (auto st = engine::validate_sampling_params(params, static_cast<int32_t>(config->vocab_size)); !st.ok()) return report_error(st);

  // One request through the engine (the same path as `nibble serve`): the whole prompt is one
  // prefill chunk, then one decode step per token.
  engine::EngineArgs engine_args;
  engine_args.max_num_seqs = 1;
  engine_args.max_model_len = static_cast<int32_t>(prompt_len + std::max<int64_t>(args.max_new_tokens, 1));
  engine_args.max_num_batched_tokens = static_cast<int32_t>(std::max<int64_t>(prompt_len, 1));
  engine_args.num_threads = args.num_threads;
  engine_args.kv_cache = args.kv_cache;
  const auto t_load = std::chrono::steady_clock::now();
  auto created = engine::LlmEngine::create(args.model_dir, engine_args);
  if (!created.ok()) return report_error(created.status());
  std::unique_ptr<engine::LlmEngine> llm = std::move(created).value();
  const engine::EngineMetadata& md = llm->metadata();
  std::fprintf(stderr, "load: %.3f s (%s, %.1f MB of weights, %d threads)\n", seconds_since(t_load),
               md.architecture.c_str(), static_cast<double>(md.weight_bytes) / 1e6, md.num_threads);
  for (const std::string& line : md.startup_report) std::fprintf(stderr, "  %s\n", line.c_str());

  params.ignore_eos = args.ignore_eos;
  engine::EngineCoreRequest request;
  request.prompt_token_ids = prompt;
  request.sampling_params = params;
  const auto t_prefill = std::chrono::steady_clock::now();
  auto handle = llm->add_request(std::move(request));
  if (!handle.ok()) return report_error(handle.status());
  std::vector<int32_t> output;
  output.reserve(static_cast<size_t>(args.max_new_tokens));
  double prefill_s = 0.0;
  std::chrono::steady_clock::time_point t_first;
  std::string error_message;
  std::optional<tokenizer::IncrementalDetokenizer> detok;
  // gpt-oss chat: the harmony channels are split, the analysis channel to stderr and the final
  // answer to stdout (the special tokens are detokenized for the splitter, which drops them).
  std::optional<server::HarmonySplitter> harmony;
  if (tok && args.chat && tok->token_to_id("<|channel|>") && tok->token_to_id("<|message|>")) harmony.emplace();
  if (tok && !args.print_ids) detok.emplace(tok.get(), /*skip_special_tokens=*/!harmony.has_value());
  auto emit = [&](const std::string& piece, bool final) {
    if (!harmony) {
      std::fwrite(piece.data(), 1, piece.size(), stdout);
      std::fflush(stdout);
      return;
    }
    std::string reasoning, content;
    harmony->feed(piece, final, &reasoning, &content);
    std::fwrite(reasoning.data(), 1, reasoning.size(), stderr);
    std::fwrite(content.data(), 1, content.size(), stdout);
    std::fflush(stdout);
  };
  while (auto delta = handle->next()) {
    for (int32_t token : delta->new_token_ids) {
      if (output.empty()) {
        prefill_s = seconds_since(t_prefill);
        t_first = std::chrono::steady_clock::now();
      }
      if (detok) {
        emit(detok->step(static_cast<uint32_t>(token)), false);
      } else if (!args.print_ids) {
        std::printf("%s%d", output.empty() ? "" : " ", token);
        std::fflush(stdout);
      }
      output.push_back(token);
    }
    if (delta->finish_reason == engine::FinishReason::kError) error_message = delta->error_message;
    if (delta->finished()) break;
  }
  const double decode_s = output.empty() ? 0.0 : seconds_since(t_first);
  const auto num_decoded = static_cast<int64_t>(output.size()) - 1;
  if (args.print_ids) {
    std::printf("[");
    for (size_t i = 0; i < output.size(); ++i) std::printf("%s%d", i == 0 ? "" : ", ", output[i]);
    std::printf("]\n");
  } else {
    if (detok) emit(detok->flush(), true);
    std::printf("\n");
  }
  std::fflush(stdout);
  if (!error_message.empty()) return report_error(base::internal_error(error_message));
  std::fprintf(stderr, "prefill: %lld tokens in %.3f s, %.2f tok/s\n", static_cast<long long>(prompt_len),
               prefill_s, static_cast<double>(prompt_len) / prefill_s);
  if (num_decoded > 0) {
    std::fprintf(stderr, "decode: %lld tokens in %.3f s, %.2f tok/s\n", static_cast<long long>(num_decoded),
                 decode_s, static_cast<double>(num_decoded) / decode_s);
  }
  return 0;
}

}  // namespace

void add_run(CLI::App& app, CommandFn* run) {
  CLI::App* cmd = app.add_subcommand("run", "Generate tokens from a prompt on the CPU");
  auto args = std::make_shared<RunArgs>();
  cmd->add_option("MODEL", args->model_dir, "Model folder (config.json + safetensors)")->required();
  CLI::Option* text = cmd->add_option("-p,--prompt", args->prompt_text, "Prompt text (encoded with the model's tokenizer; the output is text)");
  CLI::Option* ids = cmd->add_option("--prompt-ids", args->prompt_ids, "Prompt token ids, comma-separated");
  text->excludes(ids);
  cmd->add_option("-n,--max-tokens", args->max_new_tokens, "Tokens to generate")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  CLI::Option* temp = cmd->add_option("--temp", args->temperature, "Temperature (0 = greedy)");
  CLI::Option* top_k = cmd->add_option("--top-k", args->top_k, "Top-k (0 = off)");
  CLI::Option* top_p = cmd->add_option("--top-p", args->top_p, "Top-p");
  CLI::Option* min_p = cmd->add_option("--min-p", args->min_p, "Min-p");
  CLI::Option* rep = cmd->add_option("--repetition-penalty", args->repetition_penalty, "Repetition penalty");
  cmd->add_option("--presence-penalty", args->presence_penalty, "Presence penalty");
  cmd->add_option("--frequency-penalty", args->frequency_penalty, "Frequency penalty");
  CLI::Option* seed = cmd->add_option("--seed", args->seed, "Sampling seed (reproducible streams)");
  cmd->add_flag("--print-ids", args->print_ids, "Print the generated ids as one JSON array");
  cmd->add_flag("--ignore-eos", args->ignore_eos, "Do not stop at EOS tokens");
  cmd->add_option("-t,--threads", args->num_threads, "Threads (default: all available CPUs)")
      ->check(CLI::Range(1, 1024));
  cmd->add_flag("--chat", args->chat, "Wrap -p TEXT as a user message with the model's chat template");
  cmd->add_flag("--no-thinking", args->no_thinking, "With --chat: enable_thinking=false (Qwen3 templates)");
  cmd->add_option("--kv-cache", args->kv_cache, "KV cache size: auto | SIZE (8GiB) | FRACTION (0.6)");
  cmd->callback([run, args, text, ids, temp, top_k, top_p, min_p, rep, seed] {
    args->has_temperature = temp->count() > 0;
    args->has_top_k = top_k->count() > 0;
    args->has_top_p = top_p->count() > 0;
    args->has_min_p = min_p->count() > 0;
    args->has_rep = rep->count() > 0;
    args->has_seed = seed->count() > 0;
    const bool has_prompt = text->count() > 0 || ids->count() > 0;
    *run = [args, has_prompt] {
      if (!has_prompt)
        return report_error(base::invalid_argument("run: give a prompt with -p TEXT or --prompt-ids"));
      return run_model(*args);
    };
  });
}

}  // namespace nibble::cli
