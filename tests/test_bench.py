"""The load generator against the real broker: what ringmq-bench reports adds up (its numbers are
what doc/performance.md is made of). Counts only: tests never time things.
"""
import json
import os
import subprocess
import unittest

from broker import Broker

BENCH = os.environ.get("RINGMQ_BENCH_BIN", "build/tools/ringmq-bench")


class BenchTest(unittest.TestCase):
    def run_bench(self, b, *args):
        p = subprocess.run([BENCH, *args, "-p", str(b.port), "--json", "--quiet", "--no-progress"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        return json.loads(p.stdout)

    def test_every_acknowledgement_is_timed(self):
        # ack_latency: one sample per PUBACK (QoS 1) or PUBCOMP (QoS 2), as durability = sync
        # shows in it; none for QoS 0, which has no acknowledgement.
        b = Broker(log_level="info")
        try:
            for qos, version in ((1, "4"), (2, "5"), (0, "4")):
                r = self.run_bench(b, "p2p", "-c", "4", "-q", str(qos), "-V", version, "-L", "500",
                                   "--drain", "5")
                self.assertEqual(r["received"], 2000, r)
                acks = r["ack_latency"]["count"]
                self.assertEqual(acks, 2000 if qos > 0 else 0, (qos, r["ack_latency"]))
                if qos > 0:
                    self.assertGreater(r["ack_latency"]["max_us"], 0)
        finally:
            b.stop()


if __name__ == "__main__":
    unittest.main()
