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
void add_quantize(CLI::App& app, CommandFn* run);
void add_eval(CLI::App& app, CommandFn* run);
void add_bench_engine(CLI::App& app, CommandFn* run);
void add_serve(CLI::App& app, CommandFn* run);
// The default form of the `bench` group (cmd_bench_offline.cpp), called by add_bench.
void add_bench_offline(CLI::App* bench, CommandFn* run);

inline constexpr AddCommandFn kCommands[] = {
    add_version_info,
    add_make_model,
    add_run,
    add_plan,
    add_bench,
    add_tokenize,
    add_chat_template,
    add_quantize,
    add_eval,
    add_bench_engine,
    add_serve,
};

}  // namespace nibble::cli
