#!/usr/bin/env bash
# Builds nibble and runs the test suite: the `dev` preset (all tests), then the `asan` preset
# (ASan + UBSan, unit tests). Run scripts/setup.sh first on a fresh machine.
#   scripts/test.sh            both
#   scripts/test.sh dev        only the dev preset
set -euo pipefail
cd "$(dirname "$0")/.."

jobs=${NIBBLE_JOBS:-$(nproc)}
presets=("$@")
if [ "${#presets[@]}" -eq 0 ]; then presets=(dev asan); fi

for preset in "${presets[@]}"; do
  echo "=== preset: $preset"
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset" -j "$jobs"
  label_args=()
  if [ "$preset" = "asan" ]; then label_args=(-L unit); fi
  ctest --preset "$preset" -j "$jobs" "${label_args[@]}"
done
