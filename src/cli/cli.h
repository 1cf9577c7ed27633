// Shared pieces of the `nibble` command line: each command lives in its own cmd_<name>.cpp and
// registers itself in main.cpp's explicit command list.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>

#include "base/status.h"

namespace nibble::cli {

// What a command does once its flags are parsed; returns the process exit status.
using CommandFn = std::function<int()>;

// Adds a subcommand to `app`; when the user picks it, *run is set to its action.
using AddCommandFn = void (*)(CLI::App& app, CommandFn* run);

// Prints "nibble: error: <message>" to stderr and returns the exit status for errors (2).
int report_error(const base::Status& status);

inline constexpr int kExitError = 2;

}  // namespace nibble::cli
