"""Logging never stalls the broker (base/log.h, doc/configuration.md "Logs"): with stderr a pipe
that nobody reads, clients still get their CONNACKs and SUBACKs, /metrics counts the dropped
lines, SIGTERM still ends the broker, and a client's 65,535-byte topic filter is cut in the log.

Run by ctest with 1 and 4 shards."""
import os
import re
import shutil
import signal
import struct
import subprocess
import tempfile
import threading
import unittest

from broker import BROKER, SHARDS, wait_until
from mqtt_raw import RawClient, props, s

TOPIC_FILTER_INVALID = 0x8F
F_SETPIPE_SZ = 1031  # fcntl.F_SETPIPE_SZ (Python >= 3.10 has it by name)


class UnreadStderr:
    """A broker whose stderr is a pipe that is not read until read_log() is called; stdout is read
    for the "listening ..." lines only. Quacks like broker.Broker for RawClient and metric()."""

    def __init__(self):
        self.data_dir = tempfile.mkdtemp(prefix="ringmq-test-")
        self.err_r, err_w = os.pipe()
        try:
            import fcntl
            fcntl.fcntl(err_w, F_SETPIPE_SZ, 4096)  # the smallest pipe: it fills at once
        except OSError:
            pass
        self.proc = subprocess.Popen(
            [BROKER, "--listen", "mqtt://127.0.0.1:0", "--rest", "http://127.0.0.1:0",
             "--data-dir", self.data_dir, "--shards", str(SHARDS), "--log-level", "debug",
             "--allow-anonymous"],
            stdout=subprocess.PIPE, stderr=err_w, text=True)
        os.close(err_w)
        self.log = b""
        self._reader = None
        self.master_token = None
        while True:
            line = self.proc.stdout.readline()
            if not line.startswith("listening "):
                self.proc.kill()
                raise RuntimeError("broker did not start: %r" % line)
            scheme, rest = line.strip()[len("listening "):].split("://", 1)
            host, port = rest.rsplit(":", 1)
            if scheme == "mqtt":
                self.host, self.port = host, int(port)
            if scheme == "http":
                self.rest_port = int(port)
                break
        line = self.proc.stdout.readline()
        if line.startswith("master token: "):
            self.master_token = line.strip()[len("master token: "):]

    def metric(self, name):
        import http.client
        conn = http.client.HTTPConnection("127.0.0.1", self.rest_port, timeout=5)
        conn.request("GET", "/metrics", headers={"Authorization": "FlespiToken " +
                                                 self.master_token})
        resp = conn.getresponse()
        text = resp.read().decode()
        conn.close()
        assert resp.status == 200, text
        m = re.search(r"^%s(?:\{\})? (\d+)$" % name, text, re.M)
        assert m, "no %s in /metrics" % name
        return int(m.group(1))

    def read_log(self):
        """Starts draining stderr into self.log (until the broker exits)."""
        def drain():
            while True:
                chunk = os.read(self.err_r, 65536)
                if not chunk:
                    return
                self.log += chunk
        self._reader = threading.Thread(target=drain, daemon=True)
        self._reader.start()

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self._reader is None:
            self.read_log()
        self._reader.join(5)
        os.close(self.err_r)
        self.proc.stdout.close()
        shutil.rmtree(self.data_dir, ignore_errors=True)


def subscribe_many(c, filters, pid):
    """One SUBSCRIBE with many filters; returns the SUBACK's reason codes."""
    body = struct.pack("!H", pid) + props()
    for f in filters:
        body += s(f) + bytes([0])
    c.send(0x82, body)
    ack = c.recv_packet()
    assert ack.type == 9, ack.type
    return list(ack.body[3:])


class UnreadStderrTest(unittest.TestCase):
    def setUp(self):
        self.broker = UnreadStderr()

    def tearDown(self):
        self.broker.close()

    def flood(self, client_id):
        """Makes the broker log far more than the pipe and the 4 MiB queue hold: every refused
        filter is one line."""
        b = self.broker
        c = RawClient(b, version=5).connect(client_id)
        huge = "#" + "a" * 65534  # '#' not alone in its level: invalid, refused and logged
        for pid in range(1, 21):
            self.assertEqual(c.subscribe(huge, pid=pid), [TOPIC_FILTER_INVALID])
        many = ["#%05d" % i + "b" * 300 for i in range(3000)]  # ~1 MB, 3000 log lines
        for pid in range(21, 26):
            self.assertEqual(subscribe_many(c, many, pid), [TOPIC_FILTER_INVALID] * len(many))
        return c

    def test_shards_go_on_when_nobody_reads_the_log(self):
        b = self.broker
        c = self.flood("logger")
        # New clients are still accepted, on whatever shard they land.
        for i in range(8):
            RawClient(b, version=5).connect("late-%d" % i).close()
        self.assertGreater(b.metric("ringmq_log_lines_dropped_total"), 0)
        c.close()
        # A reader appears: once a line fits again, the drops are reported before it.
        b.read_log()
        marker = None
        for i in range(200):
            RawClient(b, version=5).connect("marker-%d" % i).close()
            if wait_until(lambda: b"client_id=marker-" in b.log, timeout=0.1):
                marker = i
                break
        self.assertIsNotNone(marker, "no line got out after the reader came")
        log = b.log.decode(errors="replace")
        report = re.search(r"(\d+) log line\(s\) dropped", log)
        self.assertTrue(report, log[-2000:])
        self.assertLess(report.start(), log.index("client_id=marker-"))
        # SIGTERM ends the broker, and its last lines get out.
        b.proc.send_signal(signal.SIGTERM)
        self.assertEqual(b.proc.wait(5), 0)
        b._reader.join(5)
        self.assertIn("shutting down", b.log.decode(errors="replace"))

    def test_sigterm_with_a_full_pipe(self):
        b = self.broker
        self.flood("filler")
        # Nobody ever reads: the clean shutdown's flush is bounded.
        b.proc.send_signal(signal.SIGTERM)
        self.assertEqual(b.proc.wait(5), 0)


class CutFilterTest(unittest.TestCase):
    def test_a_long_filter_is_cut_in_the_log(self):
        from broker import Broker
        b = Broker(log_level="info")
        try:
            c = RawClient(b, version=5).connect("cutter")
            self.assertEqual(c.subscribe("#" + "c" * 65534), [TOPIC_FILTER_INVALID])
            c.close()
        finally:
            self.assertEqual(b.stop(), 0)
        lines = [line for line in b.err_lines if "SUBSCRIBE" in line and "refused" in line]
        self.assertEqual(len(lines), 1, lines)
        self.assertLess(len(lines[0]), 1024, "a line of %d bytes" % len(lines[0]))
        self.assertIn("#" + "c" * 255 + "...[cut, 65535 bytes]", lines[0])


if __name__ == "__main__":
    unittest.main()
