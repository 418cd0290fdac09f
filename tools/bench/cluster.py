#!/usr/bin/env python3
"""The cost of the NATS hop in cluster mode (doc/cluster.md, doc/performance.md "Cluster").

Starts one nats-server (JetStream on), two ringmq nodes A and B joined through it, and a
standalone ringmq S without --cluster (each: defaults plus --allow-anonymous, --shards 1 unless
SHARDS is set). Each scenario runs three times per round: publishers and subscribers on S
(standalone), both on A (one node of a cluster), publishers on A and subscribers on B (across
nodes); ringmq-bench as two processes (sub, then pub), the same generator for all. Reports what
the subscribers received (msg/s, lost, latency from the publisher's timestamp) and the CPU of
the broker(s) involved and of nats-server, in seconds per million delivered messages and in % of
a core. Medians over ROUNDS rounds (min-max for msg/s and p99).
Builds nothing: expects a Release build in build/ (or BUILD=dir). Run by hand, not in CI.

    tools/bench/cluster.py [ROUNDS]        e.g. ROUNDS=3, SHARDS=1
"""
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("BUILD", os.path.join(ROOT, "build"))
RINGMQ = os.path.join(BUILD, "app", "ringmq")
BENCH = os.path.join(BUILD, "tools", "ringmq-bench")
SHARDS = os.environ.get("SHARDS", "1")
DURATION = float(os.environ.get("DURATION", "5"))

# name, subscriber args, publisher args
SCENARIOS_ALL = [
    ("fan-in 16->1 QoS 1, 16 B, 200k msg/s offered",
     ["-c", "1", "--filter", "bench/in/+", "-q", "1"],
     ["-c", "16", "--topic", "bench/in/%i", "-q", "1", "-s", "16", "-r", "12500"]),
    ("fan-in 16->1 QoS 1, 16 B, unlimited",
     ["-c", "1", "--filter", "bench/in/+", "-q", "1"],
     ["-c", "16", "--topic", "bench/in/%i", "-q", "1", "-s", "16"]),
    ("fan-out 1->100 QoS 0, 16 B, 2k msg/s offered",
     ["-c", "100", "--filter", "bench/out", "-q", "0"],
     ["-c", "1", "--topic", "bench/out", "-q", "0", "-s", "16", "-r", "2000"]),
    ("p2p 100 pairs QoS 1, 64 B, 100 msg/s each (latency)",
     ["-c", "100", "--topic", "bench/p2p/%i", "-q", "1"],
     ["-c", "100", "--topic", "bench/p2p/%i", "-q", "1", "-s", "64", "-r", "100"]),
]


SCENARIOS = [s for s in SCENARIOS_ALL if os.environ.get("ONLY", "") in s[0]]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_node(name, nats_url, work):
    d = os.path.join(work, name)
    os.mkdir(d)
    out = open(os.path.join(d, "out"), "w+")
    cluster = ["--cluster", nats_url, "--node-id", name] if nats_url else []
    p = subprocess.Popen([RINGMQ, "--listen", "mqtt://127.0.0.1:0", "--rest", "none",
                          "--data-dir", d, "--shards", SHARDS, "--allow-anonymous",
                          "--log-level", "warn", *cluster],
                         stdout=out, stderr=open(os.path.join(d, "err"), "w"))
    for _ in range(100):
        out.seek(0)
        for line in out:
            if line.startswith("listening mqtt://"):
                return p, int(line.strip().rsplit(":", 1)[1])
        time.sleep(0.1)
    raise RuntimeError("%s did not start" % name)


def run(sub_port, pub_port, sub_args, pub_args, pids):
    common = ["--json", "--quiet", "--no-progress"]
    before = [cpu_s(p) for p in pids]
    start = time.time()
    sub = subprocess.Popen([BENCH, "sub", "-p", str(sub_port), "-d", str(DURATION + 2),
                            "--drain", "5", *sub_args, *common], stdout=subprocess.PIPE, text=True)
    time.sleep(1)  # the subscribers are connected and subscribed; the route takes a round trip
    pub = subprocess.run([BENCH, "pub", "-p", str(pub_port), "-d", str(DURATION), *pub_args,
                          *common], stdout=subprocess.PIPE, text=True, check=True)
    s = json.loads(sub.communicate()[0])
    p = json.loads(pub.stdout)
    after = [cpu_s(p) for p in pids]
    wall = time.time() - start
    cpu = [a - b for a, b in zip(after, before)]
    got = max(s["received"], 1)
    return {"rate": s["rate_out"], "lost": s["lost"],
            "p50": s["latency"]["p50_us"], "p99": s["latency"]["p99_us"],
            "cpu_per_m": [c * 1e6 / got for c in cpu], "cpu_pct": [100 * c / wall for c in cpu]}


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    work = tempfile.mkdtemp(prefix="ringmq-cluster-bench-")
    nats_port = free_port()
    nats = subprocess.Popen(["nats-server", "-a", "127.0.0.1", "-p", str(nats_port), "-js",
                             "-sd", os.path.join(work, "js")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    url = "nats://127.0.0.1:%d" % nats_port
    a, a_port = start_node("A", url, work)
    b, b_port = start_node("B", url, work)
    st, s_port = start_node("S", None, work)
    pids = [st.pid, a.pid, b.pid, nats.pid]
    # mode: (subscribers' port, publishers' port, which of pids are the broker(s))
    modes = {"standalone": (s_port, s_port, [0]), "one node": (a_port, a_port, [1]),
             "across nodes": (b_port, a_port, [1, 2])}
    try:
        print("ringmq %s shard(s) per node, %g s per run, median of %d rounds (min-max)" %
              (SHARDS, DURATION, rounds))
        for name, sub_args, pub_args in SCENARIOS:
            results = {m: [] for m in modes}
            for _ in range(rounds):
                for mode, (sp, pp, _) in modes.items():
                    results[mode].append(run(sp, pp, sub_args, pub_args, pids))
            print("\n" + name)
            for mode, rs in results.items():
                def med(key, i=None):
                    v = [r[key] if i is None else r[key][i] for r in rs]
                    return statistics.median(v), min(v), max(v)
                rate, p50, p99, lost = med("rate"), med("p50"), med("p99"), med("lost")
                brokers = modes[mode][2]
                per_m = " + ".join("%.2f" % med("cpu_per_m", i)[0] for i in brokers)
                pct = " + ".join("%.0f%%" % med("cpu_pct", i)[0] for i in brokers)
                nats_part = "" if mode == "standalone" else ", nats-server %.2f s/M %.0f%%" % (
                    med("cpu_per_m", 3)[0], med("cpu_pct", 3)[0])
                print("  %-13s %9.0f msg/s (%.0f-%.0f) lost %d  p50 %.0f us  p99 %.0f us "
                      "(%.0f-%.0f)  broker CPU %s s/M, %s%s" % (
                          mode, rate[0], rate[1], rate[2], lost[2], p50[0], p99[0], p99[1],
                          p99[2], per_m, pct, nats_part))
    finally:
        for p in (st, a, b, nats):
            p.terminate()
            p.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
