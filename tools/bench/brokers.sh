# shellcheck shell=bash
# Shared by tools/compare.sh and tools/bench/durability.sh (sourced, not run): starting and stopping
# the broker under test. The caller sets WORK (a scratch directory), QUEUED and INFLIGHT (the same
# queue limits for every broker) and keeps BROKER_PID / PORT.

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start_mosquitto PERSISTENCE(true|false) -> BROKER_PID, PORT. With persistence its database goes
# to $WORK/mosq/.
start_mosquitto() {
  PORT="$(free_port)"
  mkdir -p "$WORK/mosq"
  cat > "$WORK/mosquitto.conf" <<CONF
listener $PORT 127.0.0.1
allow_anonymous true
persistence $1
persistence_location $WORK/mosq/
max_queued_messages $QUEUED
max_inflight_messages $INFLIGHT
max_connections -1
set_tcp_nodelay true
log_dest none
CONF
  mosquitto -c "$WORK/mosquitto.conf" > "$WORK/broker.log" 2>&1 &
  BROKER_PID=$!
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "$(basename "$0"): mosquitto did not start:" >&2; cat "$WORK/broker.log" >&2; exit 1
}

# stop_broker [SIGNAL]: signals the broker (TERM by default) and waits for its exit.
stop_broker() {
  kill "-${1:-TERM}" "$BROKER_PID" 2>/dev/null || true
  wait "$BROKER_PID" 2>/dev/null || true
  BROKER_PID=""
}
