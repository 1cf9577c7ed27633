// `nibble bench ...`: the benchmark command group. Its default form (`nibble bench MODEL`) is the
// offline speed benchmark in cmd_bench_offline.cpp; subcommands (serving) join the group.
#include "cli/commands.h"

namespace nibble::cli {

void add_bench(CLI::App& app, CommandFn* run) {
  CLI::App* bench = app.add_subcommand("bench", "Benchmarks: `bench MODEL` measures offline pp/tg speed");
  add_bench_offline(bench, run);
}

}  // namespace nibble::cli
