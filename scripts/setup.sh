#!/usr/bin/env bash
# Installs every build and test dependency of nibble from the distribution's packages
# (Debian 12 / Ubuntu 24.04). Safe to run again. Needs root or sudo.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

packages=(
  build-essential g++ cmake ninja-build pkg-config git ca-certificates
  clang clang-format
  libgtest-dev libgmock-dev libbenchmark-dev
  nlohmann-json3-dev libcli11-dev libcpp-httplib-dev
  libpcre2-dev libutf8proc-dev
  python3 curl
  g++-aarch64-linux-gnu qemu-user
)

# libFuzzer's runtime ships with clang's compiler-rt package, named after the clang version.
clang_major=""
if command -v clang >/dev/null 2>&1; then
  clang_major=$(clang --version | sed -n 's/.*clang version \([0-9]*\).*/\1/p' | head -n1)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
if [ -z "$clang_major" ]; then
  clang_major=$(clang --version | sed -n 's/.*clang version \([0-9]*\).*/\1/p' | head -n1)
fi
rt="libclang-rt-${clang_major}-dev"
if ! dpkg-query -W -f='${Status}' "$rt" 2>/dev/null | grep -q "install ok installed"; then
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$rt" || \
    echo "setup: $rt not available; fuzz targets will not build (tests are unaffected)" >&2
fi
echo "setup: all build and test dependencies are installed"
