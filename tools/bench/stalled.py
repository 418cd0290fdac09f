#!/usr/bin/python3
"""A consumer that stops reading must cost the others nothing (issue "Flow control end to end"):
16 publishers send QoS 1 messages (1 KiB, --rate msg/s each) to one live subscriber
(ringmq-bench fan-in 16->1), with and without a second subscriber on the same topics that
never reads (MQTT 3.1.1, QoS 1, 4 KiB receive buffer). Reported per run: what the live subscriber
received and its latency (p50, p99), the broker's peak RSS, and what the stalled session holds
(queued, spilled to disk, dropped).

    tools/bench/stalled.py [--runs 3] [--duration 30] [--rate 2000] [--shards 2] [--mosquitto]

At the defaults 16 x 2000 msg/s x 1 KiB for 30 s is ~1 GiB through the broker, all of it for the
stalled session too: ringmq keeps it (1 MiB in memory, the rest on disk); Mosquitto (--mosquitto,
Debian's package, its defaults) queues 1000 messages and drops the rest. Not run in CI;
doc/performance.md shows a run.
"""
import argparse
import json
import os
import re
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("BUILD", os.path.join(ROOT, "build"))


def start_ringmq(data, shards):
    p = subprocess.Popen([os.path.join(BUILD, "app", "ringmq"), "--listen", "mqtt://127.0.0.1:0",
                          "--rest", "http://127.0.0.1:0", "--data-dir", data, "--shards",
                          str(shards), "--allow-anonymous", "--log-level", "warn"],
                         stdout=subprocess.PIPE, stderr=sys.stderr, text=True)
    port = rest = token = None
    while rest is None:
        line = p.stdout.readline()
        m = re.match(r"listening (\w+)://[^:]+:(\d+)", line)
        if m and m.group(1) == "mqtt":
            port = int(m.group(2))
        elif m and m.group(1) == "http":
            rest = int(m.group(2))
    line = p.stdout.readline()
    if line.startswith("master token: "):
        token = line.split(": ", 1)[1].strip()
    threading.Thread(target=lambda: [None for _ in p.stdout], daemon=True).start()
    return p, port, (rest, token)


def start_mosquitto(data):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    conf = os.path.join(data, "m.conf")
    with open(conf, "w") as f:
        f.write("listener %d 127.0.0.1\nallow_anonymous true\n" % port)
    p = subprocess.Popen(["/usr/sbin/mosquitto", "-c", conf], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    return p, port, None


def metrics(rest):
    if rest is None:
        return {}
    port, token = rest
    req = urllib.request.Request("http://127.0.0.1:%d/metrics" % port,
                                 headers={"Authorization": "FlespiToken %s" % token})
    text = urllib.request.urlopen(req, timeout=10).read().decode()
    out = {}
    for name, labels, value in re.findall(r"^(\w+)(\{[^}]*\})? (\d+)$", text, re.M):
        key = name + ("" if "reason" not in labels else ":" + labels.split('reason="')[1][:-2])
        out[key] = out.get(key, 0) + int(value)
    return out


def stalled_subscriber(port):
    """Connects, subscribes bench/# at QoS 1, and never reads again."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))

    def pkt(b0, body):
        n, rl = len(body), b""
        while True:
            d, n = n % 128, n // 128
            rl += bytes([d | (0x80 if n else 0)])
            if not n:
                return bytes([b0]) + rl + body

    def mstr(x):
        return struct.pack("!H", len(x)) + x
    s.sendall(pkt(0x10, mstr(b"MQTT") + bytes([4, 0x02]) + struct.pack("!H", 600) +
                  mstr(b"stalled")))
    s.recv(4)  # CONNACK
    s.sendall(pkt(0x82, struct.pack("!H", 1) + mstr(b"bench/#") + bytes([1])))
    s.recv(5)  # SUBACK
    return s


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def run(args, stalled):
    data = tempfile.mkdtemp(prefix="ringmq-stalled-")
    if args.mosquitto:
        proc, port, rest = start_mosquitto(data)
    else:
        proc, port, rest = start_ringmq(data, args.shards)
    sock = stalled_subscriber(port) if stalled else None
    peak = [0]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], rss_kib(proc.pid))
            done.wait(0.5)
    threading.Thread(target=sample, daemon=True).start()
    res = subprocess.run([os.path.join(BUILD, "tools", "ringmq-bench"), "fan-in", "-p", str(port),
                          "--pubs", "16", "--subs", "1", "-q", "1", "-s", "1024", "-r",
                          str(args.rate), "-d", str(args.duration), "--drain", "5", "--json",
                          "--quiet", "--no-progress"], capture_output=True, text=True)
    done.set()
    r = json.loads(res.stdout)
    m = metrics(rest)
    if sock:
        sock.close()
    proc.terminate()
    proc.wait(60)
    subprocess.run(["rm", "-rf", data])
    return {"received": r["received"], "sent": r.get("sent", r.get("published")),
            "rate_out": r["rate_out"], "p50": r["latency"]["p50_us"],
            "p99": r["latency"]["p99_us"], "rss_mib": peak[0] / 1024.0,
            "queued": m.get("ringmq_queued_messages"), "spilled": m.get("ringmq_spilled_messages"),
            "disk_mib": (m.get("ringmq_queue_disk_bytes") or 0) / 1048576.0,
            "dropped": m.get("ringmq_dropped_total")}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--duration", type=float, default=30)
    ap.add_argument("--rate", type=int, default=2000)
    ap.add_argument("--shards", type=int, default=2)
    ap.add_argument("--mosquitto", action="store_true")
    args = ap.parse_args()
    rows = {False: [], True: []}
    for i in range(args.runs):
        for stalled in (False, True):  # alternating
            r = run(args, stalled)
            rows[stalled].append(r)
            print(json.dumps({"run": i, "stalled": stalled, **r}), flush=True)
    for stalled in (False, True):
        rs = rows[stalled]

        def med(k):
            vals = [x[k] for x in rs if x[k] is not None]
            return "%.0f (%.0f-%.0f)" % (statistics.median(vals), min(vals), max(vals)) \
                if vals else "-"
        print("%-12s received/s %s  p50 us %s  p99 us %s  peak RSS MiB %s" % (
            "stalled" if stalled else "alone", med("rate_out"), med("p50"), med("p99"),
            med("rss_mib")))


if __name__ == "__main__":
    main()
