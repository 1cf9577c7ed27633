#!/usr/bin/env bash
# Cross-builds the base, formats, tensor, kernel, io and model tests for aarch64 and runs them under
# qemu-aarch64 (every ISA the emulated CPU reports: ref and neon), plus an end-to-end check that
# greedy generation under neon equals ref for BF16, NVFP4, MXFP4, FP8 and FP8-block models. Needs g++-aarch64-linux-gnu and qemu-user
# (scripts/setup.sh installs both). Usage: scripts/test_aarch64.sh [build dir]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build/aarch64}
cmake -S "$root/tests/aarch64" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_TOOLCHAIN_FILE="$root/cmake/aarch64-linux-gnu.cmake"
cmake --build "$build" --target kernels_test base_test tensor_test formats_test io_test model_test greedy_test \
  -j"${JOBS:-2}"
ctest --test-dir "$build" --output-on-failure -j"${JOBS:-2}"
