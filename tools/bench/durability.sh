#!/usr/bin/env bash
# Durability benchmark: QoS 1 fan-in into ONE persistent session, so that every message goes
# through the broker's persistence, with the same load generator (ringmq-bench) against
#   ringmq --durability sync | batch | none   (WAL in a temp data dir; doc/wal-format.md)
#   Mosquitto with `persistence true`          (temp persistence_location)
# and the recovery time of an offline persistent session holding --fill queued QoS 1 messages.
# Builds nothing: expects a Release build in build/ (or BUILD=dir). Run by hand, not in CI; about
# 5-8 minutes with the defaults. How to read the output: doc/performance.md, "Durability".
#
#   tools/bench/durability.sh [--runs N] [--duration S] [--pubs N] [--rate R] [--fill N]
#                             [--no-mosquitto] [--no-recovery] [--no-fanin]
#
# Fan-in: --pubs publishers (8, clean sessions) -> 1 subscriber with a persistent session (MQTT
# 3.1.1 clean session 0, fixed client id: ringmq-bench --sub-persistent), QoS 1, 16-byte payloads,
# a fresh broker and data directory per run; two loads, as tools/compare.sh does: closed loop
# (unlimited rate, QoS 1 window 64 per publisher: saturation) and open loop (--rate msg/s per
# publisher: latency under a moderate load). --runs runs each (3), medians reported. For ringmq
# also the WAL's fdatasyncs per second and records / messages per fdatasync, from the broker's
# /metrics (ringmq_wal_syncs_total, ringmq_wal_records_total) read before and after each run.
#
# Recovery: ringmq (--durability none for a fast fill: the log holds the same records in every
# mode) gets a persistent subscriber, which goes offline, then --fill QoS 1 messages (1,000,000)
# from 8 ringmq-bench publishers; SIGKILL; the time from exec to the `listening` lines is the
# recovery from the log. Then SIGTERM (the broker writes a snapshot) and a second restart: the
# recovery from a snapshot. The page cache is warm (nothing is dropped), so this is the CPU cost of
# replaying, not the disk's read speed. Queued counts are checked over the REST API after each
# restart.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BUILD="${BUILD:-$ROOT/build}"
BENCH="$BUILD/tools/ringmq-bench"
RINGMQ="$BUILD/app/ringmq"
RUNS=3
DURATION=5
PUBS=8
RATE=1000
FILL=1000000
MOSQUITTO=1
RECOVERY=1
FANIN=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --runs) RUNS="$2"; shift 2 ;;
    --duration) DURATION="$2"; shift 2 ;;
    --pubs) PUBS="$2"; shift 2 ;;
    --rate) RATE="$2"; shift 2 ;;
    --fill) FILL="$2"; shift 2 ;;
    --no-mosquitto) MOSQUITTO=0; shift ;;
    --no-recovery) RECOVERY=0; shift ;;
    --no-fanin) FANIN=0; shift ;;
    -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
    *) echo "durability.sh: unknown argument $1" >&2; exit 1 ;;
  esac
done

for tool in "$BENCH" "$RINGMQ"; do
  [[ -x "$tool" ]] || { echo "durability.sh: $tool missing; build Release into $BUILD first" >&2; exit 1; }
done
for tool in jq curl python3; do
  command -v "$tool" >/dev/null || { echo "durability.sh: $tool missing (apt-get install $tool)" >&2; exit 1; }
done
if (( MOSQUITTO )) && ! command -v mosquitto >/dev/null; then
  echo "durability.sh: mosquitto missing (apt-get install mosquitto), or --no-mosquitto" >&2; exit 1
fi

WORK="$(mktemp -d /tmp/ringmq-durability.XXXXXX)"
BROKER_PID=""
cleanup() {
  if [[ -n "$BROKER_PID" ]]; then kill -KILL "$BROKER_PID" 2>/dev/null || true; fi
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
# The REST API (for /metrics and the session's queue length) with a known master token.
RINGMQ_MASTER_TOKEN="durability-bench-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')"
export RINGMQ_MASTER_TOKEN
QUEUED=2000000  # both brokers: nothing dropped for a full queue
(( FILL < QUEUED )) || QUEUED=$((FILL * 2))
INFLIGHT=1000

# shellcheck source-path=SCRIPTDIR source=brokers.sh
source "$(dirname "$0")/brokers.sh"
now_ns() { date +%s%N; }

# start_ringmq DATA_DIR DURABILITY -> BROKER_PID, PORT, REST_PORT; sets START_NS / READY_NS
# (exec to both `listening` lines, polled every 2 ms).
start_ringmq() {
  local data="$1" durability="$2"
  : > "$WORK/broker.out"
  START_NS="$(now_ns)"
  "$RINGMQ" --listen mqtt://127.0.0.1:0 --rest http://127.0.0.1:0 --shards 1 --log-level info \
    --allow-anonymous \
    --data-dir "$data" --durability "$durability" --max-queued-messages "$QUEUED" \
    --max-session-queue-bytes 100000000000 \
    --max-inflight "$INFLIGHT" > "$WORK/broker.out" 2> "$WORK/broker.log" &
  BROKER_PID=$!
  for _ in $(seq 30000); do  # 60 s at most (a large log takes a while to replay)
    if grep -q '^listening http://' "$WORK/broker.out"; then
      READY_NS="$(now_ns)"
      PORT="$(sed -n 's#^listening mqtt://.*:\([0-9][0-9]*\)$#\1#p' "$WORK/broker.out" | head -1)"
      REST_PORT="$(sed -n 's#^listening http://.*:\([0-9][0-9]*\)$#\1#p' "$WORK/broker.out" | head -1)"
      return 0
    fi
    kill -0 "$BROKER_PID" 2>/dev/null || break
    sleep 0.002
  done
  echo "durability.sh: ringmq did not start:" >&2; tail -20 "$WORK/broker.log" >&2; exit 1
}

rest() { curl -sf -H "Authorization: Bearer $RINGMQ_MASTER_TOKEN" "http://127.0.0.1:$REST_PORT$1"; }

# wal_counters -> "records syncs", summed over the shards.
wal_counters() {
  rest /metrics | awk '/^ringmq_wal_records_total/ {r += $2} /^ringmq_wal_syncs_total/ {s += $2}
                       END {printf "%d %d\n", r, s}'
}

queued_of() {  # queued_of CLIENT_ID -> the session's queue length (REST)
  rest "/mqtt/sessions/$1" | jq -r '.result[0].queued // "none"'
}

# ---- Fan-in into a persistent session ------------------------------------------------------------

# run_once KIND LOAD ARGS... -> one JSON line: the bench's JSON + broker, load, wal_records,
# wal_syncs (deltas over the run; -1 for Mosquitto).
run_once() {
  local kind="$1" load="$2"; shift 2
  local data="$WORK/data" json rc=0 before="-1 -1" after="-1 -1"
  rm -rf "$data" "$WORK/mosq"
  if [[ "$kind" == mosquitto ]]; then
    start_mosquitto true
  else
    start_ringmq "$data" "${kind#ringmq-}"
    before="$(wal_counters)"
  fi
  json="$("$BENCH" "$@" -p "$PORT" --json --quiet --no-progress)" || rc=$?
  if ! kill -0 "$BROKER_PID" 2>/dev/null; then
    echo "durability.sh: $kind DIED during: ringmq-bench $*" >&2
    tail -20 "$WORK/broker.log" >&2
  elif [[ "$kind" != mosquitto ]]; then
    after="$(wal_counters)"
  fi
  stop_broker
  [[ -n "$json" ]] || json='{}'
  (( rc == 0 )) || echo "durability.sh: $kind: ringmq-bench $* exited $rc" >&2
  read -r r0 s0 <<< "$before"
  read -r r1 s1 <<< "$after"
  jq -c --arg kind "$kind" --arg load "$load" --argjson rc "$rc" \
    --argjson rec "$(( r0 < 0 ? -1 : r1 - r0 ))" --argjson syn "$(( s0 < 0 ? -1 : s1 - s0 ))" \
    '. + {broker: $kind, load: $load, exit: $rc, wal_records: $rec, wal_syncs: $syn}' <<< "$json"
}

if (( FANIN )); then
  KINDS=(ringmq-sync ringmq-batch ringmq-none)
  (( MOSQUITTO )) && KINDS+=(mosquitto)
  COMMON=(fan-in --pubs "$PUBS" --subs 1 --sub-persistent -q 1 -s 16 -d "$DURATION" --drain 5)
  LOADS=("closed loop, window 64|"
         "open loop, $((PUBS * RATE)) msg/s|-r $RATE")
  : > "$WORK/runs.jsonl"
  for load in "${LOADS[@]}"; do
    IFS='|' read -r name extra <<< "$load"
    for kind in "${KINDS[@]}"; do
      for i in $(seq "$RUNS"); do
        echo "== $kind, $name, run $i/$RUNS" >&2
        # shellcheck disable=SC2086
        run_once "$kind" "$name" "${COMMON[@]}" $extra >> "$WORK/runs.jsonl"
      done
    done
  done
fi

# ---- Recovery of a large offline session ----------------------------------------------------------

if (( RECOVERY )); then
  echo "== recovery: filling an offline persistent session with $FILL QoS 1 messages" >&2
  data="$WORK/recovery"
  rm -rf "$data"
  start_ringmq "$data" none
  "$BENCH" sub -p "$PORT" -c 1 --sub-persistent --prefix durfill- -q 1 --topic dur/fill -d 0.5 \
    --quiet --no-progress
  per=$(( (FILL + 7) / 8 ))
  fill_t0="$(now_ns)"
  "$BENCH" pub -p "$PORT" -c 8 -q 1 -s 16 --topic dur/fill -L "$per" --drain 30 --quiet \
    --no-progress || echo "durability.sh: the fill reported losses or errors" >&2
  fill_s="$(echo "($(now_ns) - $fill_t0) / 1000000000" | bc -l)"
  filled="$(queued_of durfill-s0)"
  sleep 1  # `none` hands every turn's records to the kernel: they survive the SIGKILL below
  stop_broker KILL
  size_kill="$(du -sb "$data/wal" | cut -f1)"
  start_ringmq "$data" none
  t_kill="$(echo "($READY_NS - $START_NS) / 1000000" | bc -l)"
  replayed_kill="$(sed -n 's/.*WAL shard 0: \([0-9]*\) records replayed.*/\1/p' "$WORK/broker.log" | head -1)"
  after_kill="$(queued_of durfill-s0)"
  stop_broker TERM  # writes the shutdown snapshot
  size_term="$(du -sb "$data/wal" | cut -f1)"
  start_ringmq "$data" none
  t_term="$(echo "($READY_NS - $START_NS) / 1000000" | bc -l)"
  replayed_term="$(sed -n 's/.*WAL shard 0: \([0-9]*\) records replayed.*/\1/p' "$WORK/broker.log" | head -1)"
  after_term="$(queued_of durfill-s0)"
  rss_kb="$(awk '/^VmRSS:/ {print $2}' "/proc/$BROKER_PID/status")"
  stop_broker TERM
fi

# ---- Tables --------------------------------------------------------------------------------------

echo
echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), Linux $(uname -r); data dir on $(df -T /tmp | awk 'NR==2 {print $2}')"
if (( FANIN )); then
  echo "Fan-in: $PUBS publishers -> 1 persistent subscriber (MQTT 3.1.1, clean session 0), QoS 1, 16 B, ${DURATION}s; ringmq --shards 1; median of $RUNS runs (fresh broker each)"
  (( MOSQUITTO )) && echo "Mosquitto $(mosquitto -h 2>/dev/null | head -1 | awk '{print $3}'), persistence true (its default autosave: an in-memory database written out every 1800 s and at exit; no per-message fsync)"
  echo
  jq -s -r '
    def median: sort | .[(length - 1) / 2 | floor];
    def k(x): if x >= 1000000 then "\((x / 10000 | floor) / 100)M" elif x >= 1000 then "\((x / 10 | floor) / 100)k" else "\(x | floor)" end;
    def r1: (. * 10 | round) / 10;
    "| broker | load | msgs/s out | p99 latency | fsyncs/s | records/fsync | msgs/fsync | lost | runs (msgs/s) |",
    "|---|---|---|---|---|---|---|---|---|",
    def order: {"ringmq-sync": 0, "ringmq-batch": 1, "ringmq-none": 2, "mosquitto": 3}[.] // 4;
    (group_by(.load + "/" + .broker) | sort_by(.[0].load, (.[0].broker | order)) | .[]
     | . as $g | $g[0] as $f
     | ($g | map(select(.wal_syncs >= 0 and .run_s > 0))) as $w
     | "| \($f.broker) | \($f.load) | \(k($g | map(.rate_out // 0) | median)) | \($g | map(.latency.p99_us // 0) | median / 1000 | r1) ms | "
       + (if ($w | length) == 0 then "— | — | — "
          else "\($w | map(.wal_syncs / .run_s) | median | round) | "
               + (if ($w | map(.wal_syncs) | median) == 0 then "no fsync | no fsync "
                  else "\($w | map(.wal_records / (if .wal_syncs > 0 then .wal_syncs else 1 end)) | median | r1) | \($w | map(.received / (if .wal_syncs > 0 then .wal_syncs else 1 end)) | median | r1) " end) end)
       + "| \($g | map(.lost // 0) | add) | \($g | map(k(.rate_out // 0)) | join(" / ")) |")
  ' "$WORK/runs.jsonl"
  cp "$WORK/runs.jsonl" "${RESULTS_JSONL:-/tmp/ringmq-durability-runs.jsonl}"
  echo
  echo "Raw runs (one JSON object per run): ${RESULTS_JSONL:-/tmp/ringmq-durability-runs.jsonl}"
fi
if (( RECOVERY )); then
  mib() { echo "$(( $1 / 1048576 )).$(( ($1 % 1048576) * 10 / 1048576 )) MiB"; }
  echo
  echo "Recovery: one offline persistent session, $FILL QoS 1 messages of 16 B queued (filled in $(printf '%.1f' "$fill_s") s; queue length $filled), ringmq --shards 1, page cache warm"
  echo
  echo "| restart after | WAL on disk | records replayed | exec -> listening | queue after restart |"
  echo "|---|---|---|---|---|"
  echo "| SIGKILL (log replay) | $(mib "$size_kill") | $replayed_kill | $(printf '%.0f' "$t_kill") ms | $after_kill |"
  echo "| SIGTERM (snapshot) | $(mib "$size_term") | $replayed_term | $(printf '%.0f' "$t_term") ms | $after_term |"
  echo
  echo "Broker RSS with the $FILL messages queued: $(( rss_kb / 1024 )) MiB"
fi
