#!/usr/bin/python3
"""A storage service's outage (issue "Flow control end to end"): a persistent QoS 1 subscriber on
`data/#` goes away while publishers send at a steady rate, then comes back and must get every
message, in order, none twice, while the broker's memory stays bounded (its queue spills to disk).

    tools/bench/outage.py [--minutes 10] [--rate 10000] [--publishers 8] [--restart]
                          [--shards 2] [--out DIR] [--mosquitto | --mosquitto-unlimited]

Debian's mosquitto clients do the MQTT: `mosquitto_pub -l -q 1` per publisher (this script paces
the lines: --rate msg/s in all, payloads of 16-64 bytes: a sequence number and padding), and
`mosquitto_sub -c -q 1` for the storage service. With --restart the broker is restarted (SIGTERM,
then started again on the same data folder) half way: the publishers finish what they sent (their
PUBACKs), stop, and new ones go on with the next sequence numbers once it is back. Every 2 s the
broker's RSS, its spill-file bytes (ringmq_queue_disk_bytes), the data folder's size and the
queue length are sampled into DIR/samples.csv; DIR/outage.png plots them (gnuplot, if present).
At the end the subscriber drains the queue (the drain rate is printed) and every topic's sequence
is checked: 0, 1, 2 ... without gap or repeat. --mosquitto runs Debian's mosquitto instead (its
defaults: a 1000-message queue; the point of comparison for what it keeps), --mosquitto-unlimited
with its queue limits lifted (max_queued_messages 0: it then keeps the queue in memory).

Not run in CI (it takes --minutes and then the drain); doc/performance.md shows a run.
"""
import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("BUILD", os.path.join(ROOT, "build"))


def payload(seq):
    # 16-64 bytes: 8 digits, a dash, 7-54 bytes of padding.
    return "%08d-%s" % (seq, "x" * (7 + seq % 48))


class RingmqBroker:
    token = None  # the master token printed at the first start (for /metrics)

    def __init__(self, data_dir, shards):
        self.proc = subprocess.Popen(
            [os.path.join(BUILD, "app", "ringmq"), "--listen", "mqtt://127.0.0.1:0",
             "--rest", "http://127.0.0.1:0", "--data-dir", data_dir, "--shards", str(shards),
             "--allow-anonymous", "--log-level", "warn"],
            stdout=subprocess.PIPE, stderr=sys.stderr, text=True)
        self.port = self.rest_port = None
        while self.rest_port is None:
            line = self.proc.stdout.readline()
            if not line:
                raise SystemExit("outage.py: ringmq did not start")
            m = re.match(r"listening (\w+)://[^:]+:(\d+)", line)
            if m and m.group(1) == "mqtt":
                self.port = int(m.group(2))
            elif m and m.group(1) == "http":
                self.rest_port = int(m.group(2))
        if RingmqBroker.token is None:
            line = self.proc.stdout.readline()
            if line.startswith("master token: "):
                RingmqBroker.token = line.split(": ", 1)[1].strip()
        threading.Thread(target=lambda: [None for _ in self.proc.stdout], daemon=True).start()

    def metric(self, name):
        try:
            req = urllib.request.Request("http://127.0.0.1:%d/metrics" % self.rest_port,
                                         headers={"Authorization": "FlespiToken %s" % self.token})
            text = urllib.request.urlopen(req, timeout=10).read().decode()
        except OSError:
            return None
        return sum(int(v) for v in re.findall(r"^%s(?:\{[^}]*\})? (\d+)$" % name, text, re.M))

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(120)


class MosquittoBroker:
    unlimited = False  # --mosquitto-unlimited: no queue limit (it keeps the queue in memory)

    def __init__(self, data_dir, shards):
        import socket
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        conf = os.path.join(data_dir, "mosquitto.conf")
        with open(conf, "w") as f:
            f.write("listener %d 127.0.0.1\nallow_anonymous true\npersistence true\n"
                    "persistence_location %s/\n" % (self.port, data_dir))
            if self.unlimited:
                f.write("max_queued_messages 0\nmax_queued_bytes 0\n")
        self.proc = subprocess.Popen(["/usr/sbin/mosquitto", "-c", conf],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)

    def metric(self, name):
        return None

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(120)


def rss_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def dir_bytes(path):
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_blocks * 512
            except OSError:
                pass
    return total


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--rate", type=int, default=10000, help="messages per second, all publishers")
    ap.add_argument("--publishers", type=int, default=8)
    ap.add_argument("--shards", type=int, default=2)
    ap.add_argument("--restart", action="store_true")
    ap.add_argument("--mosquitto", action="store_true")
    ap.add_argument("--mosquitto-unlimited", action="store_true")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    out = args.out or tempfile.mkdtemp(prefix="ringmq-outage-")
    os.makedirs(out, exist_ok=True)
    data = tempfile.mkdtemp(prefix="ringmq-outage-data-")
    MosquittoBroker.unlimited = args.mosquitto_unlimited
    kind = MosquittoBroker if args.mosquitto or args.mosquitto_unlimited else RingmqBroker
    state = {"broker": kind(data, args.shards), "phase": "outage", "queued": 0}
    t0 = time.monotonic()
    samples = []
    done = threading.Event()

    def sample():
        while not done.is_set():
            b = state["broker"]
            samples.append((time.monotonic() - t0, rss_kib(b.proc.pid),
                            b.metric("ringmq_queue_disk_bytes"), dir_bytes(data),
                            b.metric("ringmq_queued_messages"), state["phase"]))
            done.wait(2)

    def port():
        return str(state["broker"].port)

    subprocess.run(["mosquitto_sub", "-p", port(), "-c", "-i", "store", "-q", "1", "-t", "data/#",
                    "-E"], check=True, timeout=30, stdout=subprocess.DEVNULL)
    threading.Thread(target=sample, daemon=True).start()
    seq = [0] * args.publishers

    def publish(seconds, generation):
        pubs = [subprocess.Popen(["mosquitto_pub", "-p", port(), "-q", "1", "-l", "-t",
                                  "data/u%d/temp" % k, "-i", "pub%d-%d" % (k, generation)],
                                 stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
                for k in range(args.publishers)]
        per_tick = args.rate / 100.0 / args.publishers  # every 10 ms
        owed = 0.0
        start = time.monotonic()
        tick = 0
        while time.monotonic() - start < seconds:
            owed += per_tick
            n = int(owed)
            owed -= n
            for k, p in enumerate(pubs):
                p.stdin.write("".join(payload(seq[k] + i) + "\n" for i in range(n)))
                p.stdin.flush()
                seq[k] += n
            tick += 1
            delay = start + tick * 0.01 - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        for p in pubs:
            p.stdin.close()
        for p in pubs:
            p.wait(300)  # every line sent and acknowledged
        return time.monotonic() - start

    total_s = args.minutes * 60
    halves = [total_s / 2, total_s / 2] if args.restart else [total_s]
    restart_s = None
    for g, seconds in enumerate(halves):
        if g == 1:
            state["phase"] = "restart"
            r0 = time.monotonic()
            state["broker"].stop()
            state["broker"] = kind(data, args.shards)
            restart_s = time.monotonic() - r0
            state["phase"] = "outage"
        took = publish(seconds, g)
        print("published %d messages in %.0f s" % (sum(seq), took), flush=True)
    sent = sum(seq)
    queued = state["broker"].metric("ringmq_queued_messages")
    state["phase"] = "drain"
    d0 = time.monotonic()
    # (No -W: it is a timeout of the whole run, and mosquitto_sub 2.0.11 can hang when it fires
    # while messages stream in.)
    received_path = os.path.join(out, "received.txt")
    with open(received_path, "w") as f:
        sub = subprocess.Popen(["mosquitto_sub", "-p", port(), "-c", "-i", "store", "-q", "1",
                                "-t", "data/#", "-C", str(sent), "-F", "%t %p"], stdout=f)
        last = (0, time.monotonic())  # stops when nothing more comes for 15 s (a lossy broker)
        while sub.poll() is None:
            time.sleep(1)
            size = os.path.getsize(received_path)
            if size != last[0]:
                last = (size, time.monotonic())
            elif time.monotonic() - last[1] > 15:
                sub.terminate()
                sub.wait()
                d0 += 15  # (not part of the drain)
    drain_s = time.monotonic() - d0
    time.sleep(2)
    done.set()
    got = {}
    bad = received = 0
    with open(received_path) as f:
        for line in f:
            received += 1
            topic, p = line.rstrip("\n").split(" ", 1)
            k = int(topic.split("/")[1][1:])
            n = int(p.split("-", 1)[0])
            if n != got.get(k, 0) or p != payload(n):
                bad += 1
            got[k] = n + 1
    os.remove(received_path)
    complete = all(got.get(k, 0) == seq[k] for k in range(args.publishers))
    peak = {}
    for t, rss, disk, du, q, phase in samples:
        if rss is not None:
            peak[phase] = max(peak.get(phase, 0), rss)
    state["broker"].stop()
    with open(os.path.join(out, "samples.csv"), "w") as f:
        f.write("seconds,rss_mib,spill_mib,data_dir_mib,queued,phase\n")
        for t, rss, disk, du, q, phase in samples:
            f.write("%.1f,%.1f,%s,%.1f,%s,%s\n" % (
                t, (rss or 0) / 1024.0, "" if disk is None else "%.1f" % (disk / 1048576.0),
                du / 1048576.0, "" if q is None else q, phase))
    print("sent %d, queued at the end %s, received %d (%s), out of order or repeated %d" % (
        sent, queued, received, "all, in order" if complete and bad == 0 else "NOT complete",
        bad))
    print("drain: %.1f s, %.0f msg/s" % (drain_s, received / drain_s if drain_s else 0))
    if restart_s is not None:
        print("restart (stop + start with the queue): %.1f s" % restart_s)
    print("peak RSS by phase (MiB): " + ", ".join(
        "%s %.0f" % (k, v / 1024.0) for k, v in sorted(peak.items())))
    print("samples: %s" % os.path.join(out, "samples.csv"))
    if shutil.which("gnuplot"):
        png = os.path.join(out, "outage.png")
        subprocess.run(["gnuplot"], input="""
set terminal pngcairo size 900,450
set output '%s'
set datafile separator ','
set key top left
set xlabel 'seconds'
set ylabel 'MiB'
set title 'Storage-service outage: %d msg/s into a persistent QoS 1 session%s'
plot '%s' every ::1 using 1:2 with lines lw 2 title 'broker RSS', \\
     '' every ::1 using 1:3 with lines lw 2 title 'spill files', \\
     '' every ::1 using 1:4 with lines lw 2 title 'write-ahead log and snapshots'
""" % (png, args.rate, ", restart half way" if args.restart else "",
       os.path.join(out, "samples.csv")), text=True, check=False)
        print("plot: %s" % png)
    shutil.rmtree(data, ignore_errors=True)
    return 0 if complete and bad == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
