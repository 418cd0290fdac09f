"""Flow control with default settings: a consumer that keeps up on average loses nothing, whatever
the shard count (issue: "Flow control end to end").

Four Debian mosquitto_pub processes pour lines into one mosquitto_sub, as a new user would try
it. Between shards the broker holds publishers back (their input pauses while an outbox to another
shard is full) instead of dropping; at QoS 1 the subscriber's session queue absorbs the burst. RINGMQ_SHARDS picks the shard count (1 and 4 in ctest); the
2-shard case runs too, because two shards is where the loss was first seen.
"""
import os
import socket
import subprocess
import unittest

from broker import Broker, SHARDS, wait_until
from mqtt_raw import RawClient

PUBLISHERS = 4
PER_PUBLISHER = 50_000


class FanInTest(unittest.TestCase):
    def fan_in(self, shards, qos):
        b = Broker(shards=shards, log_level="info")
        try:
            total = PUBLISHERS * PER_PUBLISHER
            sub = mosquitto_sub(b, qos, "-C", str(total))
            self.assertTrue(wait_until(lambda: b.metric("ringmq_subscriptions") == 1),
                            "the subscriber never subscribed")
            lines = "".join("%d\n" % i for i in range(PER_PUBLISHER))
            pubs = mosquitto_pubs(b, qos)
            for p in pubs:
                p.stdin.write(lines)
                p.stdin.close()
            for p in pubs:
                self.assertEqual(p.wait(timeout=120), 0, p.stderr.read())
            try:
                out, err = sub.communicate(timeout=120)
            except subprocess.TimeoutExpired:
                sub.kill()
                out, err = sub.communicate()
            got = out.splitlines()
            self.assertEqual(len(got), total, "delivered %d of %d; dropped: %d" % (
                len(got), total, b.metric("ringmq_dropped_total")))
            # Each publisher's lines arrive complete and in order.
            per_topic = {}
            for line in got:
                topic, payload = line.split(" ", 1)
                per_topic.setdefault(topic, []).append(int(payload))
            for p in range(PUBLISHERS):
                self.assertEqual(per_topic.get("fanin/%d" % p), list(range(PER_PUBLISHER)))
            self.assertEqual(b.metric("ringmq_dropped_total"), 0)
        finally:
            b.stop()

    # QoS 1: the subscriber's session queue holds what the consumer has not taken yet (bounded by
    # max_session_queue_bytes, 64 MiB by default), where a limit of 10,000 messages dropped 60%.
    def test_fan_in_loses_nothing(self):
        for qos in (0, 1):
            with self.subTest(qos=qos):
                self.fan_in(SHARDS, qos)

    def test_fan_in_on_two_shards_loses_nothing(self):
        if SHARDS != 1:
            self.skipTest("run once, in the 1-shard suite")
        for qos in (0, 1):
            with self.subTest(qos=qos):
                self.fan_in(2, qos)

    def test_a_consumer_that_stops_reading_costs_the_others_nothing(self):
        # Two clients subscribe to everything, QoS 0 and QoS 1, with a small receive buffer, and
        # never read again. Four publishers send 80 MB (8,000 messages of 10 KB) in rounds that
        # the mosquitto_sub beside the stalled clients takes as they come (so its own queue stays
        # small): it gets every message, in order. The stalled QoS 1 session keeps all of them:
        # its queue past queue_memory_bytes (1 MiB) is on disk, so the broker's memory stays
        # bounded; the stalled QoS 0 client loses what exceeds its output limit
        # (max_output_bytes), counted.
        b = Broker(shards=SHARDS, log_level="info")
        try:
            rss_before = rss_kib(b.proc.pid)
            stalled = []
            for qos in (0, 1):
                c = RawClient(b, version=5)
                c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                c.connect("stalled-%d" % qos)
                self.assertEqual(c.subscribe("fanin/#", opts=qos), [qos])
                stalled.append(c)
            sub = mosquitto_sub(b, 1)
            self.assertTrue(wait_until(lambda: b.metric("ringmq_subscriptions") == 3))
            pubs = mosquitto_pubs(b, 1)
            rounds, per_round, pad = 20, 100, "x" * 10_000
            next_seq = {"fanin/%d" % p: 0 for p in range(PUBLISHERS)}
            for r in range(rounds):
                for p in pubs:
                    p.stdin.write("".join("%d %s\n" % (r * per_round + i, pad)
                                          for i in range(per_round)))
                    p.stdin.flush()
                for _ in range(PUBLISHERS * per_round):
                    topic, seq, _ = sub.stdout.readline().split(" ", 2)
                    self.assertEqual(int(seq), next_seq[topic], topic)
                    next_seq[topic] += 1
            for p in pubs:
                p.stdin.close()
                self.assertEqual(p.wait(timeout=60), 0)
            sub.kill()
            sub.wait()
            self.assertEqual(b.metric("ringmq_dropped_total", reason="queue_full"), 0)
            self.assertGreater(b.metric("ringmq_dropped_total", reason="qos0_output_full"), 0)
            # All 8,000 held for the stalled QoS 1 session (a few in flight), most on disk.
            self.assertEqual(b.metric("ringmq_queued_messages") +
                             b.metric("ringmq_inflight_messages"), rounds * per_round * PUBLISHERS)
            self.assertGreater(b.metric("ringmq_spilled_messages"), 7000)
            self.assertGreater(b.metric("ringmq_queue_disk_bytes"), 70 << 20)
            # The bound; a sanitizer's shadow memory and quarantine make RSS meaningless.
            if not os.environ.get("RINGMQ_SANITIZED"):
                self.assertLess(rss_kib(b.proc.pid) - rss_before, 256 << 10)
            for c in stalled:
                c.close()
        finally:
            b.stop()


def mosquitto_sub(b, qos, *extra):
    """mosquitto_sub on fanin/#, printing "topic payload" lines."""
    return subprocess.Popen(
        ["mosquitto_sub", "-h", b.host, "-p", str(b.port), "-t", "fanin/#", "-q", str(qos),
         "-i", "fanin-sub", "-v", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def mosquitto_pubs(b, qos):
    """PUBLISHERS mosquitto_pub -l, publisher p on fanin/p: write lines to their stdin."""
    return [subprocess.Popen(
        ["mosquitto_pub", "-h", b.host, "-p", str(b.port), "-l", "-q", str(qos),
         "-t", "fanin/%d" % p, "-i", "fanin-pub%d" % p],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for p in range(PUBLISHERS)]


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


if __name__ == "__main__":
    unittest.main()
