// `nibble <command> ...`: one binary, one file per command.
#include <cstdio>
#include <vector>

#include "base/log.h"
#include "cli/cli.h"
#include "cli/commands.h"

namespace nibble::cli {

int report_error(const base::Status& status) {
  std::fprintf(stderr, "nibble: error: %s\n", status.message().c_str());
  return kExitError;
}

}  // namespace nibble::cli

int main(int argc, char** argv) {
  using namespace nibble::cli;
  CLI::App app{"nibble: run, serve, quantize and benchmark LLMs in NVFP4, MXFP4, FP8 and BF16"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "nibble 0.1.0");
  CommandFn run;
  for (AddCommandFn add : kCommands) add(app, &run);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : kExitError;
  }
  if (!run) return kExitError;
  return run();
}
