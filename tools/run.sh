#!/usr/bin/env bash
# Sets everything up (Debian packages, Release build) and starts the broker with sensible defaults:
# MQTT on 0.0.0.0:1883, data in ./data. Extra arguments are passed to the broker.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
if [ ! -x build/core/ringmq ]; then
  echo "run: the broker binary is not built yet: only the codec exists so far (see README.md)."
  exit 1
fi
mkdir -p data
exec build/core/ringmq --data-dir data "$@"
