// The OpenAI request bodies the server accepts, parsed into plain structs (vLLM:
// CompletionRequest / ChatCompletionRequest), and the OpenAI error object.
//
// Rules (as vLLM): unknown fields are ignored; a field set to null counts as absent; a wrong type
// or an out-of-range value is a 400 whose message and `param` name the field. Integers may be
// sent as integral floats (5.0), as pydantic accepts them. Limits (n, stop strings, logprobs) keep
// one request from asking for unbounded work.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/sampling_params.h"

namespace nibble::server {

using Json = nlohmann::ordered_json;

// An HTTP error with an OpenAI-style body: {"error": {"message", "type", "param", "code"}}; like
// vLLM, `code` is the HTTP status as an integer.
struct ApiError {
  int http_status = 400;
  std::string message;
  std::string param;  // empty = null

  std::string type() const;  // "invalid_request_error", "authentication_error", ...
  Json to_json() const;
  std::string body() const;  // to_json() serialised
};

ApiError bad_request(std::string message, std::string param = {});

enum class Endpoint { kCompletions, kChatCompletions };

// One prompt of a completions request: text or token ids.
struct PromptInput {
  std::optional<std::string> text;
  std::vector<int32_t> token_ids;  // used when text is unset
};

struct ParseLimits {
  int32_t max_n = 64;               // choices per prompt
  int32_t max_total_choices = 256;  // prompts x n
  int32_t max_prompts = 64;         // completions batch prompts
  int32_t max_stop_strings = 16;
  int32_t max_stop_string_bytes = 256;
  int32_t max_top_logprobs = 20;
  int32_t max_messages = 4096;
};

struct GenerateRequest {
  Endpoint endpoint = Endpoint::kCompletions;
  std::string model;  // empty = not given
  // Completions.
  std::vector<PromptInput> prompts;
  bool echo = false;
  // Chat.
  Json messages = Json::array();  // normalised: content is a string (text parts joined with "\n")
  Json tools;                     // null when absent
  Json chat_template_kwargs = Json::object();
  bool add_generation_prompt = true;
  // Both.
  engine::SamplingParams sampling;  // n, logprobs filled; defaults applied by the caller
  bool max_tokens_given = false;
  // Which sampling fields the request set (the rest come from the server's defaults).
  bool has_temperature = false, has_top_p = false, has_top_k = false, has_min_p = false,
       has_repetition_penalty = false;
  std::vector<std::string> stop;
  bool include_stop_str_in_output = false;
  bool skip_special_tokens = true;
  bool stream = false;
  bool include_usage = false;     // stream_options.include_usage
  bool continuous_usage = false;  // stream_options.continuous_usage_stats
  bool chat_logprobs = false;     // chat: logprobs (bool); top_logprobs in sampling.logprobs
  std::string request_id;         // client-given request_id (vLLM extra), may be empty
};

// Parses a POST body for `endpoint`. Never throws; errors are 400s naming the field.
// (Returns the request or sets *error.)
std::optional<GenerateRequest> parse_generate_request(std::string_view body, Endpoint endpoint,
                                                      const ParseLimits& limits, ApiError* error);

// POST /tokenize: {"model"?, "prompt": str, "add_special_tokens"?} or {"messages": [...], ...}.
struct TokenizeRequest {
  std::string model;
  std::optional<std::string> prompt;
  Json messages;  // null unless a chat
  Json chat_template_kwargs = Json::object();
  bool add_special_tokens = true;
  bool add_generation_prompt = true;
};
std::optional<TokenizeRequest> parse_tokenize_request(std::string_view body, ApiError* error);

// POST /detokenize: {"model"?, "tokens": [ids]}.
struct DetokenizeRequest {
  std::string model;
  std::vector<int32_t> tokens;
};
std::optional<DetokenizeRequest> parse_detokenize_request(std::string_view body, ApiError* error);

// Serialises with invalid UTF-8 replaced by U+FFFD (a model can emit any bytes).
std::string dump_json(const Json& j);

}  // namespace nibble::server
