#!/usr/bin/env bash
# A 3-node ringmq cluster on this machine (doc/cluster.md): three nats-server processes clustered
# on loopback with JetStream, and three ringmq nodes joined through them. Prints every node's
# addresses and the master token (the same on every node), then runs until Ctrl-C, which stops
# them all. Data stays in DIR (default ./cluster-data), so a second run finds the same state.
#
#   tools/cluster.sh                  build/app/ringmq, ports 1883-1885 (MQTT), 8083-8085 (ws),
#                                     9080-9082 (REST), 14222-14224 (NATS)
#   DIR=/tmp/c BUILD=build-x tools/cluster.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
DIR=${DIR:-cluster-data}
BIN=$BUILD/app/ringmq
command -v nats-server >/dev/null || { echo "nats-server is missing: run tools/setup.sh" >&2; exit 1; }
[ -x "$BIN" ] || { echo "$BIN is missing: run tools/setup.sh" >&2; exit 1; }
mkdir -p "$DIR"

# One master token given to every node (RINGMQ_MASTER_TOKEN): the tokens live in the cluster's
# JetStream bucket, and a node started with the key finds it there or stores it.
if [ ! -s "$DIR/master-token" ]; then
  openssl rand -hex 32 >"$DIR/master-token"
fi
MASTER=$(cat "$DIR/master-token")

pids=()
stopping=0
stop() {
  trap - INT TERM EXIT
  stopping=1
  echo "stopping the cluster"
  kill "${pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap stop INT TERM EXIT

NATS_URLS=()
for i in 1 2 3; do
  routes=()
  for j in 1 2 3; do [ "$j" = "$i" ] || routes+=("nats-route://127.0.0.1:$((16221 + j))"); done
  cat >"$DIR/nats$i.conf" <<EOF
server_name: nats$i
listen: 127.0.0.1:$((14221 + i))
# A message must fit in one NATS message: above ringmq's max_packet_size (1 MiB by default).
max_payload: 8MB
jetstream { store_dir: "$DIR/nats$i" }
cluster {
  name: ringmq
  listen: 127.0.0.1:$((16221 + i))
  routes: [$(IFS=,; echo "${routes[*]}")]
}
EOF
  nats-server -c "$DIR/nats$i.conf" >"$DIR/nats$i.log" 2>&1 &
  pids+=($!)
  NATS_URLS+=("nats://127.0.0.1:$((14221 + i))")
done
CLUSTER=$(IFS=,; echo "${NATS_URLS[*]}")
# Wait until every NATS server accepts connections.
for i in 1 2 3; do
  for _ in $(seq 100); do
    (exec 3<>/dev/tcp/127.0.0.1/$((14221 + i))) 2>/dev/null && break
    sleep 0.1
  done
done

for i in 1 2 3; do
  RINGMQ_MASTER_TOKEN=$MASTER "$BIN" --node-id "node$i" --cluster "$CLUSTER" \
    --data-dir "$DIR/node$i" --listen "mqtt://0.0.0.0:$((1882 + i))" \
    --listen "ws://0.0.0.0:$((8082 + i))/mqtt" --rest "http://127.0.0.1:$((9079 + i))" \
    >"$DIR/node$i.out" 2>"$DIR/node$i.log" &
  pids+=($!)
done
for i in 1 2 3; do
  for _ in $(seq 100); do
    grep -q '^listening http' "$DIR/node$i.out" 2>/dev/null && break
    if ! kill -0 "${pids[$((2 + i))]}" 2>/dev/null; then
      echo "node$i did not start:" >&2
      cat "$DIR/node$i.log" >&2
      exit 1
    fi
    sleep 0.1
  done
done

echo "NATS:        $CLUSTER (JetStream store in $DIR/nats*)"
for i in 1 2 3; do
  echo "node$i:       mqtt://127.0.0.1:$((1882 + i))  ws://127.0.0.1:$((8082 + i))/mqtt  REST http://127.0.0.1:$((9079 + i))  (log $DIR/node$i.log)"
done
echo "master token: $MASTER"
echo "try:         curl -s -H 'Authorization: FlespiToken $MASTER' http://127.0.0.1:9080/cluster"
echo "Ctrl-C stops the cluster."
wait -n "${pids[@]}" || true
[ "$stopping" = 1 ] || echo "a process of the cluster ended; see $DIR/*.log"
