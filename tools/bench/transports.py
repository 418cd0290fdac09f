#!/usr/bin/env python3
"""ringmq over tcp, tls, ws and wss with ringmq-bench: the same scenarios over each transport.

  tools/bench/transports.py [--build DIR] [--runs 3] [--duration 5] [--conn-clients 5000]

Builds nothing (expects a Release build with app/ringmq and tools/ringmq-bench in --build). For
every run it starts a fresh broker with all four listeners on loopback ports (a throwaway EC P-256
certificate for 127.0.0.1 is made with the openssl command), runs one scenario over one transport
(ringmq-bench --json, TLS verified against that certificate), samples the broker's CPU time
(utime+stime from /proc/PID/stat) over the bench run, stops the broker and checks that it was
still alive. Prints a markdown table of medians with ratios to TCP; every run's JSON goes to
/tmp/ringmq-transports.jsonl. Results: doc/performance.md, section "Transports".
"""
import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time

TRANSPORTS = ["tcp", "tls", "ws", "wss"]
SCHEME = {"tcp": "mqtt", "tls": "mqtts", "ws": "ws", "wss": "wss"}


def cases(d, conn_clients):
    # name, metric, bench arguments
    return [
        ("fan-in 16->1 QoS 0, 16 B, unlimited", "rate",
         f"fan-in --pubs 16 --subs 1 -q 0 -s 16 -d {d} --drain 2"),
        ("p2p 100 pairs QoS 1, 16 B, unlimited", "rate",
         f"p2p -c 100 -q 1 -s 16 -d {d} --drain 2"),
        ("latency: p2p 100 pairs QoS 1, 64 B, 100 msg/s each", "latency",
         f"p2p -c 100 -q 1 -s 64 -r 100 -d {d}"),
        (f"connect rate: {conn_clients} clients, 100 pending", "conn",
         f"conn -c {conn_clients} -d 1 --max-pending 100"),
    ]


def metric(kind, run):
    if kind == "rate":
        return run.get("rate_out", 0)
    if kind == "latency":
        return run.get("latency", {}).get("p99_us", 0)
    return run.get("connect", {}).get("rate", 0)


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def start_broker(build, work):
    data = os.path.join(work, "data")
    os.makedirs(data, exist_ok=True)
    log = open(os.path.join(work, "broker.log"), "w")
    cmd = [os.path.join(build, "app/ringmq"), "--shards", "1", "--rest", "none",
           "--log-level", "warn", "--data-dir", data, "--allow-anonymous",
           "--max-queued-messages", "1000000", "--max-inflight", "1000",
           "--max-session-queue-bytes", "100000000000",
           "--tls-cert", os.path.join(work, "cert.pem"), "--tls-key", os.path.join(work, "key.pem"),
           "--listen", "mqtt://127.0.0.1:0", "--listen", "mqtts://127.0.0.1:0",
           "--listen", "ws://127.0.0.1:0/mqtt", "--listen", "wss://127.0.0.1:0/mqtt"]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True)
    ports = {}
    while len(ports) < 4:
        line = p.stdout.readline()
        if not line:
            sys.exit("broker did not start: " + open(os.path.join(work, "broker.log")).read())
        m = re.match(r"listening (\w+)://[^:]+:(\d+)", line)
        if m:
            ports[m.group(1)] = int(m.group(2))
    return p, ports


def run_once(args, work, transport, bench_args):
    broker, ports = start_broker(args.build, work)
    time.sleep(0.2)
    cmd = [os.path.join(args.build, "tools/ringmq-bench")] + bench_args.split() + [
        "--transport", transport, "-p", str(ports[SCHEME[transport]]),
        "--cafile", os.path.join(work, "cert.pem"), "--json", "--quiet", "--no-progress"]
    c0, t0 = cpu_ticks(broker.pid), time.monotonic()
    r = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    c1, t1 = cpu_ticks(broker.pid), time.monotonic()
    alive = broker.poll() is None
    if not alive:
        print(f"BROKER DIED during {transport}: {' '.join(cmd)}", file=sys.stderr)
        print(open(os.path.join(work, "broker.log")).read(), file=sys.stderr)
    broker.send_signal(signal.SIGTERM)
    try:
        broker.wait(timeout=10)
    except subprocess.TimeoutExpired:
        print(f"broker did not stop after {transport} run; killed", file=sys.stderr)
        broker.kill()
        broker.wait()
    run = json.loads(r.stdout) if r.stdout.strip() else {}
    tck = os.sysconf("SC_CLK_TCK")
    run.update(transport=transport, exit=r.returncode, broker_alive=alive,
               broker_cpu_s=(c1 - c0) / tck, wall_s=t1 - t0, command=" ".join(cmd))
    if r.returncode != 0:
        print(f"  {transport}: ringmq-bench exited {r.returncode}", file=sys.stderr)
    return run


def k(x):
    if x >= 1e6:
        return f"{x / 1e6:.2f}M"
    if x >= 1e3:
        return f"{x / 1e3:.1f}k"
    return f"{x:.0f}"


def main():
    ap = argparse.ArgumentParser()
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ap.add_argument("--build", default=os.path.join(root, "build"))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--duration", type=float, default=5)
    ap.add_argument("--conn-clients", type=int, default=5000)
    ap.add_argument("--only", default="", help="comma-separated case numbers (0-based)")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="ringmq-transports.")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", f"{work}/key.pem", "-out",
                    f"{work}/cert.pem", "-days", "2", "-subj", "/CN=localhost", "-addext",
                    "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, stderr=subprocess.DEVNULL)
    raw = open("/tmp/ringmq-transports.jsonl", "w")
    table = []
    selected = cases(args.duration, args.conn_clients)
    if args.only:
        selected = [selected[int(i)] for i in args.only.split(",")]
    for name, kind, bench_args in selected:
        row = {}
        for t in TRANSPORTS:
            runs = []
            for i in range(args.runs):
                print(f"== {name} / {t} run {i + 1}/{args.runs}", file=sys.stderr)
                run = run_once(args, work, t, bench_args)
                run["case"] = name
                raw.write(json.dumps(run) + "\n")
                raw.flush()
                runs.append(run)
            runs.sort(key=lambda r: metric(kind, r))
            med = runs[len(runs) // 2]
            med["all"] = [metric(kind, r) for r in runs]
            row[t] = med
        table.append((name, kind, row))

    print(f"\nMachine: {os.cpu_count()} cores, Linux {os.uname().release}; ringmq --shards 1, "
          f"ringmq-bench --threads 1; {args.runs} runs, median; {args.duration:g} s\n")
    print("| scenario | " + " | ".join(TRANSPORTS) + " |")
    print("|---" * (len(TRANSPORTS) + 1) + "|")
    for name, kind, row in table:
        base = metric(kind, row["tcp"]) or 1
        cells = []
        for t in TRANSPORTS:
            r = row[t]
            m = metric(kind, r)
            cpu = r["broker_cpu_s"]
            problems = ""
            if r.get("lost") and kind != "rate" or r.get("exit") or not r.get("broker_alive"):
                problems = f", exit {r.get('exit')}, lost {r.get('lost')}"
            if kind == "rate":
                ratio = m / base
                out = r.get("unique", r.get("received", 0))
                cells.append(f"{k(m)} msg/s ({ratio:.0%}), broker CPU {cpu / r['wall_s']:.0%} · "
                             f"{k(out / cpu if cpu else 0)} msg/CPU-s, lost {r.get('lost', 0)}"
                             f"{problems}")
            elif kind == "latency":
                lat = r.get("latency", {})
                cells.append(f"p50 {lat.get('p50_us', 0):.0f} us, p99 {lat.get('p99_us', 0):.0f} us"
                             f", broker CPU {cpu / r['wall_s']:.0%}{problems}")
            else:
                n = r.get("connect", {}).get("clients", 0)
                cells.append(f"{k(m)} conn/s ({m / base:.0%}), broker {k(n / cpu if cpu else 0)} "
                             f"conn/CPU-s, bench CPU {r.get('cpu_total_s', 0):.2f} s{problems}")
        print(f"| {name} | " + " | ".join(cells) + " |")
    print("\nAll runs (the metric: msg/s out, p99 us or conn/s):")
    for name, kind, row in table:
        print(f"- {name}: " + "; ".join(
            f"{t} " + " / ".join(k(x) for x in row[t]["all"]) for t in TRANSPORTS))
    print("\nRaw runs: /tmp/ringmq-transports.jsonl")


if __name__ == "__main__":
    main()
