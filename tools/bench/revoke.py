#!/usr/bin/env python3
"""Revoke latency across the nodes of a cluster (doc/cluster.md "Tokens", doc/performance.md).

Starts one nats-server (JetStream on) and two ringmq nodes A and B joined through it (defaults,
one master token). Each round mints an ACL token on A, connects an MQTT 5 client with it to B
(or, for the baseline, to A), deletes the token over REST on A and times, on the client's
socket, the DISCONNECT (reason 0x87) that B sends: from the moment the REST answer arrived
(what the issue asks for), and from the moment the DELETE was sent. Prints p50/p99/max in ms
for both, across nodes and on the same node, over ROUNDS rounds (default 200).
Builds nothing: expects a Release build in build/ (or BUILD=dir). Run by hand, not in CI.

    tools/bench/revoke.py [ROUNDS]
"""
import http.client
import json
import os
import secrets
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("BUILD", os.path.join(ROOT, "build"))
RINGMQ = os.path.join(BUILD, "app", "ringmq")
MASTER = secrets.token_hex(32)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_node(name, nats_url, work):
    d = os.path.join(work, name)
    os.mkdir(d)
    out = open(os.path.join(d, "out"), "w+")
    p = subprocess.Popen([RINGMQ, "--listen", "mqtt://127.0.0.1:0", "--rest", "http://127.0.0.1:0",
                          "--data-dir", d, "--log-level", "warn", "--cluster", nats_url,
                          "--node-id", name],
                         stdout=out, stderr=open(os.path.join(d, "err"), "w"),
                         env=dict(os.environ, RINGMQ_MASTER_TOKEN=MASTER))
    ports = {}
    for _ in range(200):
        out.seek(0)
        for line in out:
            if line.startswith("listening "):
                scheme, addr = line.strip()[len("listening "):].split("://")
                ports[scheme] = int(addr.rsplit(":", 1)[1])
        if "http" in ports:
            return p, ports["mqtt"], ports["http"]
        time.sleep(0.1)
    raise RuntimeError("%s did not start" % name)


def rest(port, method, path, body=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request(method, path, json.dumps(body) if body is not None else None,
                 {"Authorization": "FlespiToken " + MASTER, "Content-Type": "application/json"})
    r = conn.getresponse()
    data = json.loads(r.read())
    conn.close()
    if r.status != 200:
        raise RuntimeError("%s %s: %d %s" % (method, path, r.status, data))
    return data["result"]


def mqtt_string(s):
    b = s.encode()
    return struct.pack("!H", len(b)) + b


def connect(port, client_id, username):
    """An MQTT 5 connection that is accepted (CONNACK 0), as a socket."""
    body = (mqtt_string("MQTT") + bytes([5, 0x82]) + struct.pack("!H", 60) + b"\x00" +
            mqtt_string(client_id) + mqtt_string(username))
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(bytes([0x10, len(body)]) + body)
    ack = s.recv(64)
    if len(ack) < 4 or ack[0] != 0x20 or ack[3] != 0:
        raise RuntimeError("CONNACK refused: %r" % ack)
    return s


def one_round(rest_a, mqtt_port, i):
    token = rest(rest_a, "POST", "/platform/tokens",
                 {"info": "revoke %d" % i, "ttl": 600,
                  "access": {"type": 2, "acl": [{"uri": "mqtt", "topic": "r/%d/#" % i,
                                                 "actions": ["subscribe"]}]}})[0]
    s = connect(mqtt_port, "r%d" % i, token["key"])
    got = {}

    def reader():
        data = s.recv(16)
        got["t"] = time.perf_counter()
        got["data"] = data

    th = threading.Thread(target=reader)
    th.start()
    sent = time.perf_counter()
    rest(rest_a, "DELETE", "/platform/tokens/%d" % token["id"])
    answered = time.perf_counter()
    th.join(10)
    s.close()
    if "t" not in got or not got["data"] or got["data"][0] != 0xE0:
        raise RuntimeError("no DISCONNECT: %r" % got)
    return (got["t"] - answered) * 1000, (got["t"] - sent) * 1000


def pct(values, q):
    v = sorted(values)
    return v[min(len(v) - 1, int(q * len(v)))]


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    nats = shutil.which("nats-server")
    work = tempfile.mkdtemp(prefix="ringmq-revoke-")
    nport = free_port()
    ns = subprocess.Popen([nats, "-a", "127.0.0.1", "-p", str(nport), "-js", "-sd",
                           os.path.join(work, "nats")],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs = [ns]
    try:
        time.sleep(0.5)
        url = "nats://127.0.0.1:%d" % nport
        a, a_mqtt, a_rest = start_node("A", url, work)
        procs.append(a)
        b, b_mqtt, _ = start_node("B", url, work)
        procs.append(b)
        print("revoke latency, %d rounds: DELETE on node A, DISCONNECT 0x87 from node ..." % rounds)
        print("| client on | from REST answer p50 / p99 / max (ms) | from request sent p50 / p99 / max (ms) |")
        print("|---|---|---|")
        for name, port in (("B (across nodes)", b_mqtt), ("A (same node)", a_mqtt)):
            after, total = [], []
            for i in range(rounds):
                x, y = one_round(a_rest, port, i + (0 if port == b_mqtt else rounds))
                after.append(x)
                total.append(y)
            print("| %s | %.2f / %.2f / %.2f | %.2f / %.2f / %.2f |" % (
                name, statistics.median(after), pct(after, 0.99), max(after),
                statistics.median(total), pct(total, 0.99), max(total)))
    finally:
        for p in reversed(procs):
            p.terminate()
            p.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
