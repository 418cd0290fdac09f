"""Durability: persistent sessions, their queued messages and retained messages survive a restart
of the broker (clean or SIGKILL), a torn log tail, and a change of the shard count."""
import glob
import os
import shutil
import signal
import tempfile
import time
import unittest

from broker import Broker
from mqtt_raw import RawClient


def drain(c, timeout=1.0):
    got = []
    try:
        while True:
            pkt = c.recv_packet(timeout=timeout)
            if pkt.type == 3:
                topic, payload, qos, pid, _ = c.parse_publish(pkt)
                got.append(payload)
                if qos == 1:
                    c.puback(pid)
    except OSError:
        pass
    return got


class Durability(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="ringmq-durable-")
        self.brokers = []

    def tearDown(self):
        for b in self.brokers:
            b.stop(keep_data=True)
        shutil.rmtree(self.dir, ignore_errors=True)

    def start(self, *extra, shards=None):
        b = Broker(*extra, data_dir=self.dir, shards=shards)
        self.brokers.append(b)
        return b

    def offline_subscriber(self, b, client_id="storage", version=4, filt="data/#"):
        kw = {} if version == 4 else {"SessionExpiryInterval": 3600}
        c = RawClient(b, version=version).connect(client_id, clean=False, **kw)
        c.subscribe(filt, opts=1)
        c.close()

    def publish_acked(self, b, n, prefix=b"m"):
        p = RawClient(b).connect("telemetry")
        for i in range(n):
            p.publish("data/u1/t", prefix + b"%d" % i, qos=1, pid=i % 60000 + 1)
            ack = p.recv_packet()
            self.assertEqual(ack.type, 4)
        p.close()

    def test_clean_restart_keeps_queued_messages_and_retained(self):
        b = self.start()
        self.offline_subscriber(b)
        self.publish_acked(b, 20)
        r = RawClient(b).connect("r")
        r.publish("state/x", b"kept", retain=True)
        r.close()
        time.sleep(0.2)
        self.assertEqual(b.stop(keep_data=True), 0)
        b2 = self.start()
        c = RawClient(b2, version=4).connect("storage", clean=False)
        self.assertEqual(c.session_present, 1)
        self.assertEqual(drain(c), [b"m%d" % i for i in range(20)])
        late = RawClient(b2).connect("late")
        late.subscribe("state/#")
        self.assertEqual(late.parse_publish(late.recv_packet())[1], b"kept")

    def test_sigkill_keeps_acknowledged_messages(self):
        b = self.start("--durability", "sync")
        self.offline_subscriber(b, version=5, client_id="store5")
        self.publish_acked(b, 50)
        time.sleep(0.3)  # PUBACK does not yet wait for the disk; the log is synced each loop turn
        b.proc.send_signal(signal.SIGKILL)
        b.proc.wait()
        b2 = self.start()
        c = RawClient(b2).connect("store5", clean=False, SessionExpiryInterval=3600)
        self.assertEqual(c.session_present, 1)
        got = drain(c)
        self.assertEqual(sorted(set(got)), sorted(b"m%d" % i for i in range(50)))

    def test_torn_tail_is_truncated_and_the_rest_kept(self):
        b = self.start()
        self.offline_subscriber(b)
        self.publish_acked(b, 5)
        time.sleep(0.3)
        b.proc.send_signal(signal.SIGKILL)
        b.proc.wait()
        segments = sorted(glob.glob(os.path.join(self.dir, "wal", "wal-*.log")),
                          key=os.path.getmtime)
        self.assertTrue(segments)
        with open(segments[-1], "ab") as f:
            f.write(b"\x40\x00\x00\x00\x07garbage")  # a record cut off by the crash
        b2 = self.start()
        c = RawClient(b2, version=4).connect("storage", clean=False)
        self.assertEqual(drain(c), [b"m%d" % i for i in range(5)])

    def test_shard_count_change_finds_every_session(self):
        b = self.start(shards=4)
        for i in range(8):
            self.offline_subscriber(b, client_id="s%d" % i)
        self.publish_acked(b, 3)
        self.assertEqual(b.stop(keep_data=True), 0)
        b2 = self.start(shards=1)
        for i in range(8):
            c = RawClient(b2, version=4).connect("s%d" % i, clean=False)
            self.assertEqual(c.session_present, 1, "s%d" % i)
            self.assertEqual(drain(c, 0.5), [b"m0", b"m1", b"m2"])
            c.close()
        self.assertEqual(b2.stop(keep_data=True), 0)
        b3 = self.start(shards=3)
        c = RawClient(b3, version=4).connect("s5", clean=False)
        self.assertEqual(c.session_present, 1)

    def test_session_expiry_counts_across_restarts(self):
        b = self.start()
        c = RawClient(b).connect("short", clean=False, SessionExpiryInterval=2)
        c.subscribe("x")
        c.close()
        time.sleep(0.3)
        self.assertEqual(b.stop(keep_data=True), 0)
        time.sleep(2.5)
        b2 = self.start()
        back = RawClient(b2).connect("short", clean=False, SessionExpiryInterval=2)
        self.assertEqual(back.session_present, 0)

    def test_missing_data_dir_is_created(self):
        nested = os.path.join(self.dir, "a", "b")
        b = Broker(data_dir=nested)
        self.brokers.append(b)
        self.assertTrue(os.path.isdir(os.path.join(nested, "wal")))
        self.assertTrue(os.path.exists(os.path.join(nested, "tokens.json")))

    def test_clean_sessions_are_not_kept(self):
        b = self.start()
        c = RawClient(b, version=4).connect("clean", clean=True)
        c.subscribe("x")
        c.close()
        self.assertEqual(b.stop(keep_data=True), 0)
        b2 = self.start()
        back = RawClient(b2, version=4).connect("clean", clean=False)
        self.assertEqual(back.session_present, 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
