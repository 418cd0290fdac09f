#!/usr/bin/env bash
# Side-by-side comparison of ringmq and Mosquitto 2 with the same load generator (tools/ringmq-bench)
# on loopback. Builds nothing: expects a Release build in build/ (or BUILD=dir). Run by hand, not in CI;
# the whole comparison takes a few minutes. Results and how to read them: doc/performance.md.
#
#   tools/compare.sh [--runs N] [--duration S] [--bench-threads N] [--shards N] [--no-shards2]
#
# For every scenario and broker it starts a fresh broker on an ephemeral loopback port, runs the
# scenario N times (median reported), samples the broker's CPU time (utime+stime from /proc/PID/stat)
# and RSS (VmRSS, max over the run) and prints one markdown table with ratios (ringmq / Mosquitto;
# for latency Mosquitto / ringmq, so > 1 always means ringmq is better).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${BUILD:-$ROOT/build}"
BENCH="$BUILD/tools/ringmq-bench"
RINGMQ="$BUILD/app/ringmq"
RUNS=3
DURATION=5
BENCH_THREADS=1
SHARDS=1
SHARDS2=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --runs) RUNS="$2"; shift 2 ;;
    --duration) DURATION="$2"; shift 2 ;;
    --bench-threads) BENCH_THREADS="$2"; shift 2 ;;
    --shards) SHARDS="$2"; shift 2 ;;
    --no-shards2) SHARDS2=0; shift ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "compare.sh: unknown argument $1" >&2; exit 1 ;;
  esac
done

for tool in "$BENCH" "$RINGMQ"; do
  [[ -x "$tool" ]] || { echo "compare.sh: $tool missing; build Release into $BUILD first" >&2; exit 1; }
done
command -v mosquitto >/dev/null || { echo "compare.sh: mosquitto missing (apt-get install mosquitto)" >&2; exit 1; }
command -v jq >/dev/null || { echo "compare.sh: jq missing (apt-get install jq)" >&2; exit 1; }

# 10k idle connections need 10k descriptors on each side.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if (( $(ulimit -n) < 12000 )); then
  echo "compare.sh: ulimit -n is $(ulimit -n); the 10k connection scenario needs >= 12000" >&2
fi

WORK="$(mktemp -d /tmp/ringmq-compare.XXXXXX)"
BROKER_PID=""
SAMPLER_PID=""
cleanup() {
  [[ -n "$SAMPLER_PID" ]] && kill "$SAMPLER_PID" 2>/dev/null || true
  [[ -n "$BROKER_PID" ]] && kill "$BROKER_PID" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
CLK_TCK="$(getconf CLK_TCK)"

# shellcheck source-path=SCRIPTDIR source=bench/brokers.sh
source "$(dirname "$0")/bench/brokers.sh"

# Same limits for both brokers, so that neither drops QoS 1/2 because of a small default queue
# (ringmq's queue limit in bytes is lifted: the count is the limit both share).
QUEUED=1000000
INFLIGHT=1000

# start_broker KIND -> sets BROKER_PID and PORT. KIND: mosquitto | ringmq1 | ringmq2 ...
start_broker() {
  local kind="$1"
  if [[ "$kind" == mosquitto ]]; then
    start_mosquitto false
  else
    local shards="${kind#ringmq}"
    : > "$WORK/broker.out"
    "$RINGMQ" --listen mqtt://127.0.0.1:0 --shards "$shards" --log-level warn --allow-anonymous \
      --data-dir "$WORK/data" --max-queued-messages "$QUEUED" --max-inflight "$INFLIGHT" \
      --max-session-queue-bytes 100000000000 \
      > "$WORK/broker.out" 2> "$WORK/broker.log" &
    BROKER_PID=$!
    for _ in $(seq 100); do
      PORT="$(sed -n 's#^listening mqtt://.*:\([0-9][0-9]*\)$#\1#p' "$WORK/broker.out" | head -1)"
      [[ -n "$PORT" ]] && return 0
      kill -0 "$BROKER_PID" 2>/dev/null || break
      sleep 0.05
    done
    echo "compare.sh: ringmq did not start:" >&2; cat "$WORK/broker.log" >&2; exit 1
  fi
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# Samples the broker's RSS every 100 ms; the max goes to $WORK/rss.max.
start_sampler() {
  local pid="$1"
  echo 0 > "$WORK/rss.max"
  (
    max=0
    while kill -0 "$pid" 2>/dev/null; do
      r="$(rss_kb "$pid" 2>/dev/null || echo 0)"
      (( r > max )) && { max=$r; echo "$max" > "$WORK/rss.max"; }
      sleep 0.1
    done
  ) &
  SAMPLER_PID=$!
}
stop_sampler() { kill "$SAMPLER_PID" 2>/dev/null || true; wait "$SAMPLER_PID" 2>/dev/null || true; SAMPLER_PID=""; }

# run_once KIND ARGS... -> one JSON line: the bench's JSON plus broker_cpu_s, broker_cpu_pct,
# broker_rss_kb (max), broker_rss0_kb (before the run), wall_s.
run_once() {
  local kind="$1"; shift
  start_broker "$kind"
  sleep 0.2
  local rss0 c0 t0 c1 t1 json rc=0
  rss0="$(rss_kb "$BROKER_PID")"
  start_sampler "$BROKER_PID"
  c0="$(cpu_ticks "$BROKER_PID")"; t0="$(date +%s.%N)"
  json="$("$BENCH" "$@" -p "$PORT" -t "$BENCH_THREADS" --json --quiet --no-progress)" || rc=$?
  c1="$(cpu_ticks "$BROKER_PID" 2>/dev/null || echo "$c0")"; t1="$(date +%s.%N)"
  stop_sampler
  if ! kill -0 "$BROKER_PID" 2>/dev/null; then
    echo "compare.sh: $kind DIED during: ringmq-bench $*" >&2
    cat "$WORK/broker.log" >&2
  fi
  stop_broker
  if [[ -z "$json" ]]; then json='{}'; fi
  if (( rc != 0 )); then echo "compare.sh: $kind: ringmq-bench $* exited $rc" >&2; fi
  jq -c --argjson cpu "$(echo "($c1 - $c0) / $CLK_TCK" | bc -l)" \
        --argjson wall "$(echo "$t1 - $t0" | bc -l)" \
        --argjson rss "$(cat "$WORK/rss.max")" --argjson rss0 "$rss0" --argjson rc "$rc" \
        '. + {broker_cpu_s: $cpu, wall_s: $wall, broker_cpu_pct: (100 * $cpu / $wall),
              broker_rss_kb: $rss, broker_rss0_kb: $rss0, exit: $rc}' <<< "$json"
}

# The metric each scenario is judged by (a jq expression over one run's JSON).
metric_expr() {
  case "$1" in
    rate) echo '.rate_out' ;;
    conn) echo '.connect.rate' ;;
    latency) echo '.latency.p99_us' ;;
  esac
}

# run_case NAME KIND TYPE ARGS... -> appends the median run (by the metric) to $WORK/results.jsonl.
run_case() {
  local name="$1" kind="$2" type="$3"; shift 3
  local expr; expr="$(metric_expr "$type")"
  : > "$WORK/runs.jsonl"
  for i in $(seq "$RUNS"); do
    echo "  $name / $kind run $i/$RUNS" >&2
    run_once "$kind" "$@" >> "$WORK/runs.jsonl"
  done
  jq -s -c --arg name "$name" --arg kind "$kind" --arg type "$type" \
    "sort_by($expr // 0) | .[(length - 1) / 2 | floor] + {case: \$name, broker: \$kind, type: \$type,
       all: [.[] | ($expr // 0)]}" "$WORK/runs.jsonl" >> "$WORK/results.jsonl"
}

D="$DURATION"
# name | type | bench arguments
CASES=(
  "fan-in 16->1 QoS 0, 16 B, unlimited|rate|fan-in --pubs 16 --subs 1 -q 0 -s 16 -d $D --drain 2"
  "fan-in 16->1 QoS 1, 16 B, unlimited|rate|fan-in --pubs 16 --subs 1 -q 1 -s 16 -d $D --drain 2"
  "fan-out 1->100 QoS 0, 16 B, unlimited|rate|fan-out --pubs 1 --subs 100 -q 0 -s 16 -d $D --drain 2"
  "p2p 100 pairs QoS 1, 16 B, unlimited|rate|p2p -c 100 -q 1 -s 16 -d $D --drain 2"
  "10k idle connections|conn|conn -c 10000 -d 2"
  "latency: p2p 100 pairs QoS 1, 64 B, 100 msg/s each|latency|p2p -c 100 -q 1 -s 64 -r 100 -d $D"
)

: > "$WORK/results.jsonl"
for c in "${CASES[@]}"; do
  IFS='|' read -r name type args <<< "$c"
  echo "== $name" >&2
  # shellcheck disable=SC2086
  run_case "$name" mosquitto "$type" $args
  # shellcheck disable=SC2086
  run_case "$name" "ringmq$SHARDS" "$type" $args
done
if (( SHARDS2 )); then
  IFS='|' read -r name type args <<< "${CASES[0]}"
  echo "== $name (ringmq 2 shards)" >&2
  # shellcheck disable=SC2086
  run_case "$name" ringmq2 "$type" $args
fi

# ---- The table ----------------------------------------------------------------------------------
echo
echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), Linux $(uname -r)"
echo "Mosquitto $(mosquitto -h 2>/dev/null | head -1 | awk '{print $3}'); ringmq --shards $SHARDS; ringmq-bench --threads $BENCH_THREADS; $RUNS runs, median shown; duration ${D}s"
echo
jq -s -r --arg shards "$SHARDS" '
  def r0: . * 1 | floor;
  def k(x): if x >= 1000000 then "\((x / 10000 | floor) / 100)M" elif x >= 1000 then "\((x / 10 | floor) / 100)k" else "\(x | r0)" end;
  def mb: "\((. / 102.4 | floor) / 10) MiB";
  def show:
    if .type == "rate" then "\(k(.rate_out)) msg/s out (p99 \((.latency.p99_us / 1000 * 10 | floor) / 10) ms, lost \(.lost))"
    elif .type == "conn" then "\(k(.connect.rate)) conn/s, \(((.broker_rss_kb - .broker_rss0_kb) * 1024 / 10000) | r0) B/conn"
    else "p50 \(.latency.p50_us | r0) us, p99 \(.latency.p99_us | r0) us" end;
  def metric: if .type == "rate" then .rate_out elif .type == "conn" then .connect.rate else .latency.p99_us end;
  def percore: if .type == "rate" and .broker_cpu_s > 0 then " · \(k(.received / .broker_cpu_s)) msg/CPU-s" else "" end;
  def side: "\(show)<br>broker CPU \(.broker_cpu_pct | r0)%\(percore), RSS \(.broker_rss_kb | mb); bench CPU \(.cpu_run_s * 100 / (if .run_s > 0 then .run_s else 1 end) | r0)%";
  . as $all
  | (reduce .[] as $x ([]; if index([$x.case]) != null then . else . + [$x.case] end)) as $names
  | "| scenario | Mosquitto | ringmq (\($shards) shard) | ringmq / Mosquitto |",
    "|---|---|---|---|",
    ( $names[] as $n
      | ($all | map(select(.case == $n))) as $g
      | ($g | map(select(.broker == "mosquitto")) | .[0]) as $m
      | ($g | map(select(.broker != "mosquitto")))[] as $r
      | (if $r.type == "latency" then ($m | metric) / ($r | metric) else ($r | metric) / ($m | metric) end) as $ratio
      | "| \($r.case)\(if $r.broker != "ringmq\($shards)" then " — **\($r.broker | sub("ringmq"; "ringmq ")) shards**" else "" end) | \($m | side) | \($r | side) | **\(($ratio * 100 | floor) / 100)×** |" )
' "$WORK/results.jsonl"
cp "$WORK/results.jsonl" "${RESULTS_JSONL:-/tmp/ringmq-compare-results.jsonl}"
echo
echo "Raw results (one JSON object per scenario and broker): ${RESULTS_JSONL:-/tmp/ringmq-compare-results.jsonl}"
