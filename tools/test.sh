#!/usr/bin/env bash
# Sets everything up (Debian packages, Release build in build/) and runs every test with ctest:
# unit tests of each library and the whole-broker integration tests in tests/.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
ctest --test-dir build --output-on-failure -j "$(nproc)" "$@"
