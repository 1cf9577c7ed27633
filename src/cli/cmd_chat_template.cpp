// `nibble chat-template MODEL --messages conv.json ...`: renders a model's chat template exactly
// as transformers' apply_chat_template(..., tokenize=False) would, and prints it as is.
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "base/file_util.h"
#include "cli/commands.h"
#include "tokenizer/chat_template.h"

namespace nibble::cli {
namespace {

struct ChatTemplateFlags {
  std::string model;
  std::string messages_path;
  std::string tools_path;
  std::string kwargs_json;
  bool add_generation_prompt = false;
  bool no_thinking = false;
};

int run_chat_template(const ChatTemplateFlags& f) {
  using Json = nlohmann::ordered_json;
  auto tmpl = tokenizer::ChatTemplate::from_dir(f.model);
  if (!tmpl.ok()) return report_error(tmpl.status());
  auto messages_text = base::read_file(f.messages_path);
  if (!messages_text.ok()) return report_error(messages_text.status());
  Json messages = Json::parse(*messages_text, nullptr, false);
  if (messages.is_discarded())
    return report_error(base::invalid_argument(f.messages_path + ": not valid JSON"));
  Json tools = nullptr;
  // A file holding {"messages": [...], "tools": [...]} works too.
  if (messages.is_object() && messages.contains("messages")) {
    if (messages.contains("tools")) tools = messages["tools"];
    Json inner = messages["messages"];
    messages = std::move(inner);
  }
  if (!f.tools_path.empty()) {
    auto tools_text = base::read_file(f.tools_path);
    if (!tools_text.ok()) return report_error(tools_text.status());
    tools = Json::parse(*tools_text, nullptr, false);
    if (tools.is_discarded()) return report_error(base::invalid_argument(f.tools_path + ": not valid JSON"));
  }
  Json kwargs = Json::object();
  if (!f.kwargs_json.empty()) {
    kwargs = Json::parse(f.kwargs_json, nullptr, false);
    if (kwargs.is_discarded() || !kwargs.is_object()) {
      return report_error(base::invalid_argument("--kwargs: expected a JSON object"));
    }
  }
  if (f.no_thinking) kwargs["enable_thinking"] = false;
  auto text = tmpl->render_json(messages, tools, f.add_generation_prompt, kwargs);
  if (!text.ok()) return report_error(text.status());
  std::fwrite(text->data(), 1, text->size(), stdout);
  std::fflush(stdout);
  return 0;
}

}  // namespace

void add_chat_template(CLI::App& app, CommandFn* run) {
  auto flags = std::make_shared<ChatTemplateFlags>();
  CLI::App* cmd = app.add_subcommand("chat-template", "Render a model's chat template for a conversation");
  cmd->add_option("model", flags->model, "Model folder (tokenizer_config.json or chat_template.jinja)")
      ->required();
  cmd->add_option("--messages", flags->messages_path, "JSON file: an array of messages")->required();
  cmd->add_option("--tools", flags->tools_path, "JSON file: an array of tool schemas");
  cmd->add_flag("--add-generation-prompt", flags->add_generation_prompt, "Append the assistant turn header");
  cmd->add_flag("--no-thinking", flags->no_thinking, "Pass enable_thinking=false");
  cmd->add_option("--kwargs", flags->kwargs_json, "Extra template variables as a JSON object");
  cmd->callback([run, flags] { *run = [flags] { return run_chat_template(*flags); }; });
}

}  // namespace nibble::cli
