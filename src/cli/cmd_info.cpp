// `nibble info`: what this build and this CPU can do.
#include <cstdio>

#include "base/cpu_features.h"
#include "base/thread_pool.h"
#include "cli/commands.h"

namespace nibble::cli {

void add_version_info(CLI::App& app, CommandFn* run) {
  CLI::App* cmd = app.add_subcommand("info", "Show the CPU features and threads nibble will use");
  cmd->callback([run] {
    *run = [] {
      std::printf("nibble 0.1.0\ncpu features: %s\nthreads: %d\n",
                  nibble::base::cpu_features().describe().c_str(), nibble::base::available_cpus());
      return 0;
    };
  });
}

}  // namespace nibble::cli
