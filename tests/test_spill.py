"""Session queues on disk (issue: "Flow control end to end", part 2): past queue_memory_bytes a
session's queue goes to a spill file and comes back in order, across a restart too; the disk
budget (max_queue_disk_bytes) refuses, counts and logs what it cannot take.

Debian's mosquitto clients, as a storage service would use them: a persistent QoS 1 session
(`mosquitto_sub -c`) that goes away while a publisher (`mosquitto_pub -l`) sends.
"""
import os
import shutil
import signal
import struct
import subprocess
import tempfile
import unittest

from broker import Broker, SHARDS, wait_until
from mqtt_raw import RawClient

TOTAL = 30_000
LOG_LEVEL = os.environ.get("LOG_LEVEL", "info")
MEMORY = "65536"  # bytes of a queue kept in memory: most of the 30,000 messages spill


def subscribe_then_leave(b, client_id="store", topic="data/#"):
    """A persistent QoS 1 session on `topic`, offline once this returns."""
    subprocess.run(["mosquitto_sub", "-h", b.host, "-p", str(b.port), "-c", "-i", client_id,
                    "-q", "1", "-t", topic, "-E"], check=True, timeout=10,
                   stdout=subprocess.DEVNULL)


def publish_lines(b, topic, lines, chunk=5000):
    # In chunks, one mosquitto_pub after the other (the order holds): 2.0.11's -l has been seen
    # to DISCONNECT before the end of a large input given all at once.
    for i in range(0, len(lines), chunk):
        p = subprocess.run(["mosquitto_pub", "-h", b.host, "-p", str(b.port), "-q", "1", "-l",
                            "-t", topic], input="".join(l + "\n" for l in lines[i:i + chunk]),
                           text=True, capture_output=True, timeout=120)
        assert p.returncode == 0, p.stderr


def receive(b, count, client_id="store", topic="data/#"):
    """Resumes the session and returns the payloads of `count` messages."""
    p = subprocess.run(["mosquitto_sub", "-h", b.host, "-p", str(b.port), "-c", "-i", client_id,
                        "-q", "1", "-t", topic, "-C", str(count), "-W", "60"],
                       capture_output=True, text=True, timeout=90)
    return p.stdout.splitlines()


def payloads(n):
    # 16-64 bytes, as telemetry is: a sequence number and padding.
    return ["%08d-%s" % (i, "x" * (8 + i % 48)) for i in range(n)]


def connect_elsewhere(b, shard, **kwargs):
    """A connected RawClient on another shard than `shard` (on it when there is only one)."""
    for i in range(64):
        c = RawClient(b, **kwargs).connect("elsewhere%d" % i)
        if SHARDS == 1 or b.shard_of("elsewhere%d" % i) != shard:
            return c
        c.close()
    raise AssertionError("every client landed on shard %d" % shard)


class SpillTest(unittest.TestCase):
    def start(self, *extra, data_dir=None):
        return Broker("--queue-memory-bytes", MEMORY, *extra, data_dir=data_dir,
                      shards=SHARDS, log_level=LOG_LEVEL)

    def spill_then(self, stop_signal, *extra):
        b = self.start(*extra)
        b2 = None
        try:
            subscribe_then_leave(b)
            sent = payloads(TOTAL)
            publish_lines(b, "data/u1/temp", sent)
            self.assertTrue(b.wait_metric("ringmq_queued_messages", TOTAL))
            self.assertGreater(b.metric("ringmq_spilled_messages"), TOTAL // 2)
            self.assertGreater(b.metric("ringmq_queue_disk_bytes"), 0)
            b.stop(sig=stop_signal, keep_data=True)
            b2 = self.start(*extra, data_dir=b.data_dir)
            # Restored from the log, the queue spills again as it is rebuilt.
            self.assertEqual(b2.metric("ringmq_queued_messages"), TOTAL)
            self.assertGreater(b2.metric("ringmq_spilled_messages"), TOTAL // 2)
            got = receive(b2, TOTAL)
            self.assertEqual(len(got), TOTAL)
            self.assertEqual(got, sent)  # in order, none twice
            self.assertTrue(b2.wait_metric("ringmq_queued_messages", 0))
            self.assertEqual(b2.metric("ringmq_spilled_messages"), 0)
            # The file emptied (a background snapshot may hold it a moment longer).
            self.assertTrue(b2.wait_metric("ringmq_queue_disk_bytes", 0))
            self.assertEqual(b2.metric("ringmq_dropped_total"), 0)
        finally:
            if b2 is not None:
                b2.stop()
            b.stop()  # (removes the data folder)

    def test_spilled_queue_survives_a_clean_restart(self):
        # SIGTERM: the shutdown snapshot reads the spilled queue back from its file.
        self.spill_then(signal.SIGTERM)

    def test_spilled_queue_survives_a_crash_after_background_snapshots(self):
        # A snapshot every ~100 KB of log while the queue spills: the background thread reads
        # the spilled part from the pinned file while the shard goes on appending; then SIGKILL,
        # and the restart replays that snapshot and the segments after it.
        with tempfile.NamedTemporaryFile("w", suffix=".toml") as f:
            f.write("snapshot_log_bytes = 100000\n")
            f.flush()
            self.spill_then(signal.SIGKILL, "--config", f.name)

    def test_live_slow_consumer_gets_everything_in_order(self):
        # Online but not reading yet: the queue behind its window spills, then drains as it reads.
        b = self.start()
        try:
            subscribe_then_leave(b)
            sent = payloads(TOTAL)
            publish_lines(b, "data/u2/temp", sent[:TOTAL // 2])
            sub = subprocess.Popen(
                ["mosquitto_sub", "-h", b.host, "-p", str(b.port), "-c", "-i", "store", "-q", "1",
                 "-t", "data/#", "-C", str(TOTAL), "-W", "60"],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            publish_lines(b, "data/u2/temp", sent[TOTAL // 2:])  # while it drains
            out, _ = sub.communicate(timeout=90)
            self.assertEqual(out.splitlines(), sent)
            self.assertEqual(b.metric("ringmq_dropped_total"), 0)
        finally:
            b.stop()

    def test_many_queues_share_the_memory_bound(self):
        # Four offline sessions of 5,000 messages each (~1.2 MB): each may keep 64 KiB in
        # memory, all of them together 100 KB (max_queue_memory_bytes); the rest is on disk, and
        # every queue comes back whole and in order.
        b = self.start("--max-queue-memory-bytes", "100000")
        try:
            sent = payloads(5000)
            for k in range(4):
                subscribe_then_leave(b, client_id="store%d" % k, topic="data/u%d/#" % k)
            for k in range(4):
                publish_lines(b, "data/u%d/temp" % k, sent)
            self.assertTrue(b.wait_metric("ringmq_queued_messages", 20000))
            held = b.metric("ringmq_queue_memory_bytes")
            self.assertGreater(held, 0)
            self.assertLessEqual(held, 100000 + 4 * 200)  # plus the oldest of a queue past it
            self.assertGreater(b.metric("ringmq_spilled_messages"), 20000 - 100000 // 50)
            for k in range(4):
                self.assertEqual(receive(b, 5000, client_id="store%d" % k,
                                         topic="data/u%d/#" % k), sent)
            self.assertTrue(b.wait_metric("ringmq_queue_memory_bytes", 0))
            self.assertEqual(b.metric("ringmq_dropped_total"), 0)
        finally:
            b.stop()

    def test_disk_budget_refuses_counts_and_logs(self):
        b = self.start("--max-queue-disk-bytes", "200000")
        try:
            subscribe_then_leave(b)
            sent = payloads(5000)  # ~0.5 MB queued: 64 KiB in memory, 200 KB on disk
            publish_lines(b, "data/u3/temp", sent)
            refused = b.metric("ringmq_dropped_total", reason="queue_disk_full")
            self.assertGreater(refused, 0)
            self.assertTrue(b.wait_log("cannot spill", "max_queue_disk_bytes"))
            self.assertLessEqual(b.metric("ringmq_queue_disk_bytes"), 200000 + 70000)
            kept = 5000 - refused
            self.assertEqual(b.metric("ringmq_queued_messages"), kept)
            # What was taken arrives in order: the oldest, the newest were refused.
            self.assertEqual(receive(b, kept), sent[:kept])
            # Room again: the next messages spill as before.
            self.assertTrue(b.wait_metric("ringmq_queue_disk_bytes", 0))
        finally:
            b.stop()

    def test_full_disk_refuses_counts_logs_and_recovers(self):
        # A real ENOSPC, far below the budget: the spill folder is a 256 KiB tmpfs. Needs mount
        # (root, as CI runs); elsewhere the budget test above and spill_test's /dev/full stand in.
        data = tempfile.mkdtemp(prefix="ringmq-test-")
        spill = os.path.join(data, "spill")
        os.mkdir(spill)
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", spill],
                          capture_output=True).returncode != 0:
            shutil.rmtree(data)
            self.skipTest("cannot mount a tmpfs here")
        b = None
        try:
            b = self.start(data_dir=data)
            subscribe_then_leave(b)
            sent = payloads(10000)  # ~0.5 MB queued: 64 KiB in memory, at most 256 KiB on disk
            publish_lines(b, "data/u4/temp", sent)
            refused = b.metric("ringmq_dropped_total", reason="queue_disk_full")
            self.assertGreater(refused, 0)
            self.assertTrue(b.wait_log("cannot spill", "No space left on device"))
            kept = 10000 - refused
            self.assertEqual(b.metric("ringmq_queued_messages"), kept)
            self.assertEqual(receive(b, kept), sent[:kept])  # the oldest, in order
            self.assertTrue(b.wait_metric("ringmq_queue_disk_bytes", 0))
            # Space again: the same session spills and drains as before.
            publish_lines(b, "data/u4/temp", sent[:3000])
            self.assertEqual(b.metric("ringmq_dropped_total", reason="queue_disk_full"), refused)
            self.assertGreater(b.metric("ringmq_spilled_messages"), 0)
            self.assertEqual(receive(b, 3000), sent[:3000])
        finally:
            if b is not None:
                b.stop()
            subprocess.run(["umount", spill], check=False)
            shutil.rmtree(data, ignore_errors=True)

    def test_byte_limit_under_drop_oldest_keeps_the_newest_in_order(self):
        # max_session_queue_bytes counts memory and disk together; drop-oldest makes room for
        # each new message, and what is left arrives in order.
        b = self.start("--max-session-queue-bytes", "500000", "--queue-full-policy",
                       "drop-oldest")
        try:
            subscribe_then_leave(b)
            sent = payloads(20000)  # ~120 queued bytes each: ~2.4 MB against 500 KB
            publish_lines(b, "data/u5/temp", sent)
            dropped = b.metric("ringmq_dropped_total", reason="queue_full")
            self.assertGreater(dropped, 10000)
            kept = 20000 - dropped
            self.assertEqual(b.metric("ringmq_queued_messages"), kept)
            self.assertGreater(b.metric("ringmq_spilled_messages"), 0)  # the bound spans both
            # The file's space is given back behind the reader in steps of 1 MiB (spill.h).
            self.assertLessEqual(b.metric("ringmq_queue_disk_bytes"), 500000 + (1 << 20))
            self.assertEqual(receive(b, kept), sent[dropped:])
        finally:
            b.stop()

    def test_byte_limit_under_disconnect_closes_the_consumer_with_0x97(self):
        # A live MQTT 5 consumer that takes nothing: once its window and then its queue are full,
        # the disconnect policy closes it with DISCONNECT 0x97 Quota exceeded.
        b = self.start("--max-session-queue-bytes", "5000", "--queue-full-policy", "disconnect")
        try:
            c = RawClient(b, version=5).connect("slow")
            c.subscribe("data/#", opts=1)
            publish_lines(b, "data/u6/temp", payloads(2000))
            types = []
            while True:
                pkt = c.recv_packet(timeout=10)
                types.append(pkt.type)
                if pkt.type != 3:  # anything but PUBLISH (never acknowledged)
                    break
            self.assertEqual(types[-1], 14)  # DISCONNECT
            self.assertEqual(pkt.body[0], 0x97)
            self.assertGreater(len(types), 1)  # its window was filled first
            self.assertGreater(b.metric("ringmq_dropped_total", reason="queue_full"), 0)
        finally:
            b.stop()

    def test_mqtt5_publisher_is_told_when_a_queue_refuses(self):
        # A queue limit under drop-new: an MQTT 5 QoS 1 publisher's PUBACK says Quota exceeded
        # (0x97) for each message the offline session refused. QoS 2 keeps 0x00 in PUBREC (a
        # negative one releases the packet id, and a resend would then reach the subscribers
        # that took it twice) and MQTT 3.1.1 has no way to say it: both counted only.
        # With more than one shard the publisher is on another shard than the session: the
        # answer waits for that shard's report.
        b = Broker("--max-session-queue-bytes", "3000", shards=SHARDS, log_level="info")
        try:
            for version in (5, 4):
                c = RawClient(b, version=version).connect(
                    "store%d" % version, clean=False,
                    **({"SessionExpiryInterval": 3600} if version == 5 else {}))
                c.subscribe("q%d/#" % version, opts=2)
                c.close()
                p = connect_elsewhere(b, b.shard_of("store%d" % version), version=version)
                refused_before = b.metric("ringmq_dropped_total", reason="queue_full")
                reasons = {1: [], 2: []}
                for i in range(40):  # ~100 bytes each in the queue: the first ~25 fit
                    qos = 1 + i % 2
                    p.publish("q%d/t" % version, b"m%d" % i, qos=qos, pid=i + 1)
                    ack = p.recv_packet()
                    self.assertEqual(ack.type, 4 if qos == 1 else 5)
                    reasons[qos].append(ack.body[2] if len(ack.body) > 2 else 0)
                    if qos == 2:
                        p.send(0x62, struct.pack("!H", i + 1))  # PUBREL
                        self.assertEqual(p.recv_packet().type, 7)
                refused = b.metric("ringmq_dropped_total", reason="queue_full") - refused_before
                self.assertGreater(refused, 0)
                self.assertEqual(set(reasons[2]), {0})
                if version == 5:
                    self.assertIn(0, reasons[1])
                    first = reasons[1].index(0x97)  # from the first refusal on, all refused
                    self.assertEqual(set(reasons[1][first:]), {0x97})
                    self.assertNotIn(0x97, reasons[1][:first])
                else:
                    self.assertEqual(set(reasons[1]), {0})
                p.close()
        finally:
            b.stop()

if __name__ == "__main__":
    unittest.main()
