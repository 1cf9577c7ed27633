// `nibble tokenize DIR (--text T | --file F) [--no-special]` prints the ids as a JSON array;
// `nibble detokenize DIR --ids 1,2,3 [--skip-special-tokens]` prints the text.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "base/file_util.h"
#include "cli/commands.h"
#include "tokenizer/tokenizer.h"

namespace nibble::cli {
namespace {

struct TokenizeArgs {
  std::string dir;
  std::string text;
  std::string file;
  bool no_special = false;
};

struct DetokenizeArgs {
  std::string dir;
  std::string ids;
  bool skip_special = false;
};

base::Result<std::vector<uint32_t>> parse_ids(const std::string& list) {
  std::vector<uint32_t> ids;
  size_t pos = 0;
  while (pos <= list.size()) {
    size_t end = list.find(',', pos);
    if (end == std::string::npos) end = list.size();
    std::string item = list.substr(pos, end - pos);
    while (!item.empty() && item.front() == ' ') item.erase(item.begin());
    while (!item.empty() && item.back() == ' ') item.pop_back();
    if (item.empty() && end == list.size() && ids.empty()) break;  // "--ids ''"
    if (item.empty() || item.size() > 10 || item.find_first_not_of("0123456789") != std::string::npos ||
        std::stoull(item) > 0xFFFFFFFFull) {
      return base::invalid_argument("--ids: \"" + item + "\" is not a token id (expected e.g. 1,2,3)");
    }
    ids.push_back(static_cast<uint32_t>(std::stoull(item)));
    pos = end + 1;
  }
  return ids;
}

int run_tokenize(const TokenizeArgs& args) {
  auto tok = tokenizer::Tokenizer::from_dir(args.dir);
  if (!tok.ok()) return report_error(tok.status());
  std::string text = args.text;
  if (!args.file.empty()) {
    auto contents = base::read_file(args.file);
    if (!contents.ok()) return report_error(contents.status());
    text = std::move(contents.value());
  }
  auto ids = (*tok)->encode(text, !args.no_special);
  if (!ids.ok()) {
    return report_error(ids.status().with_context(args.file.empty() ? std::string("--text") : args.file));
  }
  std::string out = "[";
  for (size_t i = 0; i < ids->size(); ++i) {
    if (i > 0) out += ",";
    out += std::to_string((*ids)[i]);
  }
  out += "]\n";
  std::fwrite(out.data(), 1, out.size(), stdout);
  return 0;
}

int run_detokenize(const DetokenizeArgs& args) {
  auto tok = tokenizer::Tokenizer::from_dir(args.dir);
  if (!tok.ok()) return report_error(tok.status());
  auto ids = parse_ids(args.ids);
  if (!ids.ok()) return report_error(ids.status());
  const std::string text = (*tok)->decode(*ids, args.skip_special);
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fputc('\n', stdout);
  return 0;
}

}  // namespace

void add_tokenize(CLI::App& app, CommandFn* run) {
  auto args = std::make_shared<TokenizeArgs>();
  CLI::App* cmd = app.add_subcommand("tokenize", "Print the token ids of a text as a JSON array");
  cmd->add_option("dir", args->dir, "Model or tokenizer folder (with tokenizer.json)")->required();
  auto* text = cmd->add_option("--text", args->text, "Text to tokenize");
  auto* file = cmd->add_option("--file", args->file, "File whose contents to tokenize");
  text->excludes(file);
  cmd->add_flag("--no-special", args->no_special,
                "Do not add the post-processor's special tokens (e.g. BOS)");
  cmd->callback([run, args, text, file] {
    if (text->count() == 0 && file->count() == 0) throw CLI::RequiredError("--text or --file");
    *run = [args] { return run_tokenize(*args); };
  });

  auto dargs = std::make_shared<DetokenizeArgs>();
  CLI::App* dcmd = app.add_subcommand("detokenize", "Print the text of comma-separated token ids");
  dcmd->add_option("dir", dargs->dir, "Model or tokenizer folder (with tokenizer.json)")->required();
  dcmd->add_option("--ids", dargs->ids, "Token ids, e.g. 9707,11,1879")->required();
  dcmd->add_flag("--skip-special-tokens", dargs->skip_special, "Leave out special tokens");
  dcmd->callback([run, dargs] { *run = [dargs] { return run_detokenize(*dargs); }; });
}

}  // namespace nibble::cli
