// A model's chat template, loaded and rendered the way transformers' apply_chat_template(...,
// tokenize=False) does it.
//
// Loading (as transformers 5): `chat_template.jinja` (and additional_chat_templates/*.jinja,
// named by file) in the model folder win; otherwise
// tokenizer_config.json's `chat_template`, a string or a list of {name, template} (the template
// named "tool_use" is used when tools are given and it exists, else "default"). Special tokens
// (bos_token, eos_token, unk_token, sep_token, pad_token, cls_token, mask_token) come from
// tokenizer_config.json as strings or AddedToken dicts, with special_tokens_map.json filling gaps.
//
// Rendering passes: messages (keys whose value is null dropped; reasoning_content / thinking /
// reasoning aliased as transformers does), tools (None when absent), documents (None),
// add_generation_prompt, the special tokens, then extra kwargs (which win over special tokens).
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "base/status.h"
#include "tokenizer/jinja/template.h"

namespace nibble::tokenizer {

class ChatTemplate {
 public:
  // Reads `dir`/chat_template.jinja or `dir`/tokenizer_config.json.
  static base::Result<ChatTemplate> from_dir(const std::string& dir);
  // A single template with the given special tokens (name -> text, e.g. {"bos_token", "<s>"}).
  static base::Result<ChatTemplate> from_string(
      const std::string& source, std::vector<std::pair<std::string, std::string>> special_tokens = {});

  // JSON texts: messages is an array of message objects; tools is an array or empty/"null" for
  // none; extra_kwargs is an object or empty. Returns the rendered prompt.
  base::Result<std::string> render(const std::string& messages_json, const std::string& tools_json,
                                   bool add_generation_prompt, const std::string& extra_kwargs_json) const;
  // The same with parsed JSON (tools: null for none), and render limits (fixed clock for tests).
  base::Result<std::string> render_json(const nlohmann::ordered_json& messages,
                                        const nlohmann::ordered_json& tools, bool add_generation_prompt,
                                        const nlohmann::ordered_json& extra_kwargs,
                                        const jinja::RenderLimits& limits = {}) const;

  const std::vector<std::pair<std::string, std::string>>& special_tokens() const { return special_tokens_; }
  // The template text that render() would use with or without tools.
  const std::string& source(bool with_tools = false) const;

 private:
  struct Named {
    std::string source;
    jinja::Template compiled;
  };
  const Named* pick(bool with_tools) const;

  std::map<std::string, Named> templates_;  // "default", "tool_use", ... ; one entry for a single template
  std::vector<std::pair<std::string, std::string>> special_tokens_;
  std::string origin_;  // where the template came from, for error messages
};

}  // namespace nibble::tokenizer
