#!/usr/bin/env bash
# Sets everything up (Debian packages, Release build) and starts the broker with sensible defaults:
# MQTT on 0.0.0.0:1883 and WebSockets on 0.0.0.0:8083, the REST API and web page on
# 127.0.0.1:9080, data in ./data. Arguments replace the listeners and are passed to the broker.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
if [ ! -x build/app/ringmq ]; then
  echo "run: the build did not produce build/app/ringmq (see the build output above)."
  exit 1
fi
mkdir -p data
# Without arguments: MQTT on 1883, MQTT over WebSockets on 8083 (the web page at
# http://127.0.0.1:9080/ connects there), the REST API on 127.0.0.1:9080.
[ $# -eq 0 ] && set -- --listen mqtt://0.0.0.0:1883 --listen ws://0.0.0.0:8083/mqtt
# MQTT clients need a token (anonymous clients are refused unless --allow-anonymous is passed).
cat >&2 <<'EOF'
run: MQTT clients authenticate with a token. The first start prints "master token: KEY" once
run: (keep it). Mint a token for a client with it, then connect with the new key as user name:
run:   curl -s -H "Authorization: FlespiToken $MASTER" -d '{"ttl":3600,"access":{"type":0}}' \
run:     http://127.0.0.1:9080/platform/tokens
run:   mosquitto_sub -h 127.0.0.1 -u "$KEY" -t '#' -v
EOF
exec build/app/ringmq --data-dir data "$@"
