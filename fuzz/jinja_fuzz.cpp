// libFuzzer target: parse and render arbitrary template text with a fixed chat context.
// Any input must give either text or an error Status: no crash, hang or unbounded growth.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "tokenizer/jinja/template.h"

namespace {

using nibble::tokenizer::jinja::Dict;
using nibble::tokenizer::jinja::RenderLimits;
using nibble::tokenizer::jinja::Template;
using nibble::tokenizer::jinja::Value;

const Dict& context() {
  static const Dict* ctx = [] {
    const auto json = nlohmann::ordered_json::parse(R"({
      "messages": [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "héllo <think>x</think> 台北"},
        {"role": "assistant", "content": "ok", "reasoning_content": "r",
         "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": {"a": [1, 2.5, null, true]}}}]},
        {"role": "tool", "content": "{\"r\": 1}"}
      ],
      "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object",
                 "properties": {"a": {"type": "array", "items": {"type": "integer"}}}, "required": ["a"]}}}],
      "documents": null, "add_generation_prompt": true, "enable_thinking": false,
      "bos_token": "<s>", "eos_token": "</s>"
    })");
    Value v;
    std::string error;
    nibble::tokenizer::jinja::value_from_json(json, v, error);
    return new Dict(v.as_dict());
  }();
  return *ctx;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 64 * 1024) return 0;
  const std::string source(reinterpret_cast<const char*>(data), size);
  auto tmpl = Template::parse(source);
  if (!tmpl.ok()) return 0;
  RenderLimits limits;
  limits.max_output_bytes = 1 << 20;
  limits.max_loop_iterations = 100'000;
  limits.max_call_depth = 32;
  limits.now = 1773576000;
  auto out = tmpl->render(context(), limits);
  (void)out;
  return 0;
}
