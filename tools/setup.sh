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
  libcli11-dev libtomlplusplus-dev libxxhash-dev libhttp-parser-dev libspdlog-dev
  libnats-dev nats-server
  mosquitto mosquitto-clients python3 python3-paho-mqtt python3-prometheus-client openssl chromium
)

# Node.js runs MQTT.js for the WebSocket tests; a machine that already has node (with its npm)
# keeps it, a fresh Debian 12 gets Debian's nodejs and npm.
command -v npm >/dev/null 2>&1 || PACKAGES+=(nodejs npm)

missing=()
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# The Debian mosquitto package (installed for benchmarks and its clients) starts a system broker on
# :1883, the port ringmq uses by default. When this script installed it, stop that service again.
if printf '%s\n' "${missing[@]}" | grep -qx mosquitto && command -v systemctl >/dev/null &&
  systemctl is-active --quiet mosquitto 2>/dev/null; then
  echo "setup: stopping and disabling the mosquitto system service (it would hold port 1883)"
  $SUDO systemctl disable --now mosquitto >/dev/null 2>&1 || true
fi

# MQTT.js for the WebSocket tests (tests/js, versions pinned by package-lock.json).
if [ ! -d tests/js/node_modules ]; then
  (cd tests/js && npm ci --no-audit --no-fund --loglevel=error)
fi

[ "${1:-}" = "--no-build" ] && exit 0
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build build
