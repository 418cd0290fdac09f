#!/usr/bin/env bash
# Memory per idle connection: N clients connect (ringmq-bench `conn`, or `sub` for one
# subscription each) and hold; the broker's RSS once every connection is established, minus its
# RSS before, divided by N. Also the kernel's TCP memory (/proc/net/sockstat, pages) before and
# during, and the generator's connect rate. Same generator against ringmq (defaults plus
# --allow-anonymous) and Mosquitto (Debian's, allow_anonymous, max_connections -1).
# Builds nothing: expects a Release build in build/ (or BUILD=dir). Run by hand, not in CI.
# How to read the output: doc/performance.md, "Idle connections".
#
#   tools/bench/idle.sh [CLIENTS] [SHARDS...]     e.g. tools/bench/idle.sh 19000 1 2
#
# One process holds one descriptor per client: CLIENTS must stay below `ulimit -Hn` (the script
# and both programs raise their soft limit to it). Clients go to 127.0.0.2 so that they do not
# share the port range of other loopback traffic; above ~28,000 clients split them over several
# destination addresses (one ephemeral port range each), which this script does not do.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BUILD="${BUILD:-$ROOT/build}"
BENCH="$BUILD/tools/ringmq-bench"
N="${1:-19000}"
shift || true
SHARDS=("${@:-1 2}")
ulimit -n "$(ulimit -Hn)"

rss_kb() { awk '/VmRSS/{print $2}' "/proc/$1/status"; }
tcp_pages() { awk '/^TCP:/{print $NF}' /proc/net/sockstat; }

# run KIND SHARDS SCENARIO: prints one line.
run() {
  local kind=$1 shards=$2 scenario=$3 dir pid port
  dir=$(mktemp -d)
  if [ "$kind" = ringmq ]; then
    "$BUILD/app/ringmq" --listen mqtt://0.0.0.0:0 --rest http://127.0.0.1:0 --data-dir "$dir" \
      --shards "$shards" --allow-anonymous --log-level warn >"$dir/out" 2>"$dir/err" &
    pid=$!
    for _ in $(seq 100); do grep -q "^listening http" "$dir/out" && break; sleep 0.1; done
    port=$(grep -m1 "^listening mqtt" "$dir/out" | sed 's/.*://')
  else
    port=$((20000 + RANDOM % 10000))
    printf "listener %s 0.0.0.0\nallow_anonymous true\nmax_connections -1\n" "$port" >"$dir/m.conf"
    mosquitto -c "$dir/m.conf" >"$dir/out" 2>&1 &
    pid=$!
  fi
  sleep 1
  local r0 t0 r1 t1 established=0
  r0=$(rss_kb "$pid")
  t0=$(tcp_pages)
  "$BENCH" "$scenario" -H 127.0.0.2 -p "$port" -c "$N" --max-pending 1000 -d 6 --json \
    --no-progress >"$dir/res" 2>"$dir/bench.err" &
  local bench=$!
  for _ in $(seq 600); do
    established=$(ss -Htn state established "( sport = :$port )" | wc -l)
    [ "$established" -ge "$N" ] && break
    sleep 0.1
  done
  sleep 1
  r1=$(rss_kb "$pid")
  t1=$(tcp_pages)
  wait "$bench" || true
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  local rate
  rate=$(grep -o '"connect":{[^}]*}' "$dir/res" | sed 's/.*"rate":\([0-9.]*\).*/\1/')
  printf "%-9s shards=%s %-4s established=%s bytes/conn=%s connects/s=%s tcp_pages %s -> %s\n" \
    "$kind" "$shards" "$scenario" "$established" $(((r1 - r0) * 1024 / N)) "$rate" "$t0" "$t1"
  rm -rf "$dir"
}

for scenario in conn sub; do
  if command -v mosquitto >/dev/null; then run mosquitto 1 "$scenario"; fi
  for shards in ${SHARDS[@]}; do run ringmq "$shards" "$scenario"; done
done
