// The explicit list of commands (no static self-registration).
#pragma once

#include "cli/cli.h"

namespace nibble::cli {

void add_version_info(CLI::App& app, CommandFn* run);
void add_chat_template(CLI::App& app, CommandFn* run);

inline constexpr AddCommandFn kCommands[] = {
    add_version_info,
    add_chat_template,
};

}  // namespace nibble::cli
