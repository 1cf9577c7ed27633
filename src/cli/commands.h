// The explicit list of commands (no static self-registration).
#pragma once

#include "cli/cli.h"

namespace nibble::cli {

void add_version_info(CLI::App& app, CommandFn* run);
void add_make_model(CLI::App& app, CommandFn* run);
void add_run(CLI::App& app, CommandFn* run);
void add_plan(CLI::App& app, CommandFn* run);
void add_bench(CLI::App& app, CommandFn* run);
void add_tokenize(CLI::App& app, CommandFn* run);  // tokenize and detokenize
void add_chat_template(CLI::App& app, CommandFn* run);
void add_serve(CLI::App& app, CommandFn* run);

inline constexpr AddCommandFn kCommands[] = {
    add_version_info,
    add_make_model,
    add_run,
    add_plan,
    add_bench,
    add_tokenize,
    add_chat_template,
    add_serve,
};

}  // namespace nibble::cli
