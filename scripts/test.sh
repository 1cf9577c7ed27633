#!/usr/bin/env bash
# Builds nibble and runs the test suite: the `dev` preset (all tests), then the `asan` preset
# (ASan + UBSan, unit tests), then the aarch64 cross build of the kernel tests under qemu-aarch64.
# Run scripts/setup.sh first on a fresh machine.
#   scripts/test.sh                 all three
#   scripts/test.sh dev             only the dev preset (any of: dev asan aarch64)
set -euo pipefail
cd "$(dirname "$0")/.."

jobs=${NIBBLE_JOBS:-$(nproc)}
presets=("$@")
if [ "${#presets[@]}" -eq 0 ]; then presets=(dev asan aarch64); fi

for preset in "${presets[@]}"; do
  echo "=== preset: $preset"
  if [ "$preset" = "aarch64" ]; then
    JOBS=$jobs scripts/test_aarch64.sh
    continue
  fi
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset" -j "$jobs"
  label_args=()
  if [ "$preset" = "asan" ]; then label_args=(-L unit); fi
  ctest --preset "$preset" -j "$jobs" "${label_args[@]}"
done
