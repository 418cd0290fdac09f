"""Flow control with default settings: a consumer that keeps up on average loses nothing, whatever
the shard count (issue: "Flow control end to end").

Four Debian mosquitto_pub processes pour lines into one mosquitto_sub, as a new user would try
it. Between shards the broker holds publishers back (their input pauses while an outbox to another
shard is full) instead of dropping. RINGMQ_SHARDS picks the shard count (1 and 4 in ctest); the
2-shard case runs too, because two shards is where the loss was first seen.
"""
import subprocess
import unittest

from broker import Broker, SHARDS, wait_until

PUBLISHERS = 4
PER_PUBLISHER = 50_000


class FanInTest(unittest.TestCase):
    def fan_in(self, shards, qos):
        b = Broker(shards=shards, log_level="info")
        try:
            total = PUBLISHERS * PER_PUBLISHER
            sub = subprocess.Popen(
                ["mosquitto_sub", "-h", b.host, "-p", str(b.port), "-t", "fanin/#", "-q", str(qos),
                 "-C", str(total), "-i", "fanin-sub", "-v"],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            self.assertTrue(wait_until(lambda: b.metric("ringmq_subscriptions") == 1),
                            "the subscriber never subscribed")
            lines = "".join("%d\n" % i for i in range(PER_PUBLISHER))
            pubs = [subprocess.Popen(
                ["mosquitto_pub", "-h", b.host, "-p", str(b.port), "-l", "-q", str(qos),
                 "-t", "fanin/%d" % p, "-i", "fanin-pub%d" % p],
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                for p in range(PUBLISHERS)]
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

    def test_qos0_fan_in_loses_nothing(self):
        self.fan_in(SHARDS, 0)

    def test_qos0_fan_in_two_shards_loses_nothing(self):
        if SHARDS != 1:
            self.skipTest("run once, in the 1-shard suite")
        self.fan_in(2, 0)


if __name__ == "__main__":
    unittest.main()
