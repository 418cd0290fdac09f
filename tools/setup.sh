#!/usr/bin/env bash
# Installs every Debian 12 package that ringmq's build, tests and tools need, then configures and
# builds. Idempotent: apt-get update runs only when a package is missing.
#
#   tools/setup.sh            install packages, Release build in build/
#   tools/setup.sh --no-build install packages only
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  clang clang-format clang-tidy lld libclang-rt-dev
  liburing-dev libssl-dev libsimdjson-dev libmimalloc-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libcli11-dev libtomlplusplus-dev libxxhash-dev libhttp-parser-dev libwslay-dev libspdlog-dev
  mosquitto mosquitto-clients python3 python3-paho-mqtt
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# The Debian mosquitto package starts a system broker on :1883; ringmq's tests and benchmarks start
# their own on ephemeral ports, so a running system broker is harmless but unused.

[ "${1:-}" = "--no-build" ] && exit 0
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build build
