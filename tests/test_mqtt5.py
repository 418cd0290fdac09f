"""MQTT 5 features and flow control, with exact bytes on raw sockets (tests/mqtt_raw.py) and paho.

Run by ctest with 1 and 4 shards, like test_broker.py."""
import os
import struct
import time
import unittest

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from broker import TIMEOUT, Broker, BrokerTest, wait_until
from mqtt_raw import RawClient, parse_props, s

V5 = mqtt.MQTTv5


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        return int([line for line in f if line.startswith("VmRSS")][0].split()[1])


def disconnect_reason(pkt):
    assert pkt.type == 14, "expected DISCONNECT, got type %d" % pkt.type
    return pkt.body[0] if pkt.body else 0


class TopicAliases(BrokerTest):
    def test_inbound_alias_set_then_used(self):
        sub = RawClient(self.broker).connect("sub")
        sub.subscribe("alias/#")
        pub = RawClient(self.broker).connect("pub")
        self.assertEqual(pub.connack_props["TopicAliasMaximum"], 64)
        pub.publish("alias/t", b"one", TopicAlias=3)
        pub.publish("", b"two", TopicAlias=3)
        for want in (b"one", b"two"):
            topic, payload, _, _, _ = sub.parse_publish(sub.recv_packet())
            self.assertEqual((topic, payload), ("alias/t", want))

    def test_alias_above_maximum_and_unknown_alias(self):
        c = RawClient(self.broker).connect("a1")
        c.publish("t", b"x", TopicAlias=65)
        self.assertEqual(disconnect_reason(c.recv_packet()), 0x94)
        c = RawClient(self.broker).connect("a2")
        c.publish("", b"x", TopicAlias=7)
        self.assertEqual(disconnect_reason(c.recv_packet()), 0x82)

    def test_outbound_aliases_when_client_allows(self):
        sub = RawClient(self.broker).connect("sub", TopicAliasMaximum=1)
        sub.subscribe("o/#")
        pub = RawClient(self.broker).connect("pub")
        for t in ("o/a", "o/a", "o/b"):
            pub.publish(t, b"x")
        seen = [sub.parse_publish(sub.recv_packet()) for _ in range(3)]
        self.assertEqual((seen[0][0], seen[0][4].get("TopicAlias")), ("o/a", 1))
        self.assertEqual((seen[1][0], seen[1][4].get("TopicAlias")), ("", 1))  # alias only
        self.assertEqual((seen[2][0], seen[2][4].get("TopicAlias")), ("o/b", None))  # max reached

    def test_no_outbound_aliases_by_default(self):
        sub = RawClient(self.broker).connect("sub")
        sub.subscribe("n/#")
        pub = RawClient(self.broker).connect("pub")
        pub.publish("n/a", b"x")
        pub.publish("n/a", b"y")
        for _ in range(2):
            topic, _, _, _, pr = sub.parse_publish(sub.recv_packet())
            self.assertEqual(topic, "n/a")
            self.assertNotIn("TopicAlias", pr)


class Expiry(BrokerTest):
    def test_remaining_interval_is_sent(self):
        sub = RawClient(self.broker).connect("sub")
        sub.subscribe("e/#")
        pub = RawClient(self.broker).connect("pub")
        pub.publish("e/x", b"x", MessageExpiryInterval=60)
        _, _, _, _, pr = sub.parse_publish(sub.recv_packet())
        self.assertTrue(0 < pr["MessageExpiryInterval"] <= 60)

    def test_expired_messages_are_not_delivered(self):
        pub = RawClient(self.broker).connect("pub")
        pub.publish("e/r", b"stale", retain=True, MessageExpiryInterval=1)
        off = RawClient(self.broker).connect("off", clean=False, SessionExpiryInterval=60)
        off.subscribe("e/q", opts=1)
        off.close()
        pub.publish("e/q", b"stale", qos=1, pid=5, MessageExpiryInterval=1)
        pub.publish("e/q", b"fresh", qos=1, pid=6, MessageExpiryInterval=60)
        time.sleep(2.2)  # not a synchronisation: the 1 s expiry interval must pass
        late = RawClient(self.broker).connect("late")
        late.subscribe("e/r")
        back = RawClient(self.broker).connect("off", clean=False, SessionExpiryInterval=60)
        self.assertEqual(back.session_present, 1)
        payloads = []
        try:
            while True:
                pkt = back.recv_packet(timeout=0.7)
                if pkt.type == 3:
                    payloads.append(back.parse_publish(pkt)[1])
        except OSError:
            pass
        self.assertEqual(payloads, [b"fresh"])
        with self.assertRaises(OSError):
            late.recv_packet(timeout=0.5)  # the retained message expired


class SubscriptionIdentifiers(BrokerTest):
    def test_all_matching_ids_in_one_delivery(self):
        sub = RawClient(self.broker).connect("sub")
        sub.subscribe("s/#", opts=0, pid=1, SubscriptionIdentifier=7)
        sub.subscribe("s/+", opts=1, pid=2, SubscriptionIdentifier=9)
        pub = RawClient(self.broker).connect("pub")
        pub.publish("s/x", b"x", qos=1, pid=1)
        topic, _, qos, _, pr = sub.parse_publish(sub.recv_packet())
        self.assertEqual(qos, 1)
        self.assertEqual(sorted(pr["SubscriptionIdentifier"]), [7, 9])
        with self.assertRaises(OSError):
            sub.recv_packet(timeout=0.5)  # exactly one delivery


class FlowControl(BrokerTest):
    def test_receive_maximum_limits_unacknowledged(self):
        sub = RawClient(self.broker).connect("sub", ReceiveMaximum=2)
        sub.subscribe("f/#", opts=1)
        pub = RawClient(self.broker).connect("pub")
        for i in range(5):
            pub.publish("f/x", b"%d" % i, qos=1, pid=i + 1)
        first = [sub.parse_publish(sub.recv_packet()) for _ in range(2)]
        with self.assertRaises(OSError):
            sub.recv_packet(timeout=0.5)  # window of 2 is full
        for p in first:
            sub.puback(p[3])
        rest = [sub.parse_publish(sub.recv_packet())[1] for _ in range(2)]
        self.assertEqual([p[1] for p in first] + rest, [b"0", b"1", b"2", b"3"])

    def test_maximum_packet_size_drops_too_large(self):
        sub = RawClient(self.broker).connect("sub", MaximumPacketSize=64)
        sub.subscribe("m/#")
        pub = RawClient(self.broker).connect("pub")
        pub.publish("m/x", b"y" * 200)
        pub.publish("m/x", b"small")
        self.assertEqual(sub.parse_publish(sub.recv_packet())[1], b"small")

    def test_inbound_receive_maximum_exceeded(self):
        b = Broker()
        try:
            c = RawClient(b).connect("q2")
            limit = c.connack_props["ReceiveMaximum"]
            for i in range(limit + 1):  # QoS 2 without PUBREL: each stays unacknowledged
                c.publish("q", b"x", qos=2, pid=i + 1)
            pkt = c.recv_packet()
            while pkt.type == 5:  # PUBREC
                pkt = c.recv_packet()
            self.assertEqual(disconnect_reason(pkt), 0x93)
        finally:
            self.assertEqual(b.stop(), 0)


class ConnectOptions(BrokerTest):
    def test_server_keep_alive(self):
        b = Broker("--max-keepalive", "10")
        try:
            for asked in (100, 0):
                c = RawClient(b).connect("k%d" % asked, keepalive=asked)
                self.assertEqual(c.connack_props["ServerKeepAlive"], 10)
            c = RawClient(b).connect("k5", keepalive=5)
            self.assertNotIn("ServerKeepAlive", c.connack_props)
        finally:
            self.assertEqual(b.stop(), 0)

    def test_authentication_method_not_supported(self):
        c = RawClient(self.broker)
        c.connect("auth", check=False, AuthenticationMethod="SCRAM-SHA-1")
        self.assertEqual(c.reason, 0x8C)
        self.assertTrue(c.closed())

    def test_connack_capabilities(self):
        c = RawClient(self.broker).connect("caps")
        p = c.connack_props
        self.assertNotIn("SharedSubscriptionAvailable", p)  # absent means available
        self.assertNotIn("WildcardSubscriptionAvailable", p)
        self.assertGreater(p["ReceiveMaximum"], 0)
        self.assertGreater(p["MaximumPacketSize"], 0)

    def test_session_expiry_set_at_disconnect_after_zero(self):
        from mqtt_raw import props
        c = RawClient(self.broker).connect("z", SessionExpiryInterval=0)
        c.send(0xE0, b"\x00" + props(SessionExpiryInterval=30))
        self.assertEqual(disconnect_reason(c.recv_packet()), 0x82)

    def test_session_expiry_shortened_at_disconnect(self):
        from mqtt_raw import props
        c = RawClient(self.broker).connect("short", clean=True, SessionExpiryInterval=300)
        c.subscribe("x")
        c.send(0xE0, b"\x00" + props(SessionExpiryInterval=0))
        c.close()
        self.assertTrue(self.broker.wait_metric("ringmq_sessions", 0))  # ended at the DISCONNECT
        back = RawClient(self.broker).connect("short", clean=False, SessionExpiryInterval=300)
        self.assertEqual(back.session_present, 0)

    def test_connect_timeout(self):
        b = Broker("--connect-timeout", "1")
        try:
            c = RawClient(b)
            c.sock.sendall(b"\x10\x20\x00")  # a partial CONNECT, then silence
            start = time.time()
            self.assertTrue(c.closed(timeout=4))
            self.assertLess(time.time() - start, 3)
        finally:
            self.assertEqual(b.stop(), 0)


class PassThrough(BrokerTest):
    def test_properties_forwarded_unchanged(self):
        sub = RawClient(self.broker).connect("sub")
        sub.subscribe("p/#")
        pub = RawClient(self.broker).connect("pub")
        pub.publish("p/x", "héllo".encode(), PayloadFormatIndicator=1, ContentType="text/plain",
                    ResponseTopic="replies/1", CorrelationData=b"\x00\x01",
                    UserProperty=[("a", "1"), ("b", "2"), ("a", "3")])
        _, payload, _, _, pr = sub.parse_publish(sub.recv_packet())
        self.assertEqual(payload, "héllo".encode())
        self.assertEqual(pr["PayloadFormatIndicator"], 1)
        self.assertEqual(pr["ContentType"], "text/plain")
        self.assertEqual(pr["ResponseTopic"], "replies/1")
        self.assertEqual(pr["CorrelationData"], b"\x00\x01")
        self.assertEqual(pr["UserProperty"], [("a", "1"), ("b", "2"), ("a", "3")])

    def test_invalid_utf8_payload_with_format_indicator(self):
        sub = RawClient(self.broker).connect("sub")
        sub.subscribe("u/#")
        pub = RawClient(self.broker).connect("pub")
        pub.publish("u/x", b"\xff\xfe", qos=1, pid=3, PayloadFormatIndicator=1)
        ack = pub.recv_packet()
        self.assertEqual((ack.type, ack.body[2]), (4, 0x99))
        with self.assertRaises(OSError):
            sub.recv_packet(timeout=0.5)  # not delivered


class Limits(BrokerTest):
    def test_publish_rate_limit(self):
        b = Broker("--max-publish-rate", "5")
        try:
            c = RawClient(b).connect("fast")
            codes = []
            for i in range(8):
                c.publish("r", b"x", qos=1, pid=i + 1)
                ack = c.recv_packet()
                codes.append(ack.body[2] if len(ack.body) > 2 else 0)
            self.assertEqual(codes[:5], [0] * 5)
            self.assertEqual(codes[5:], [0x96] * 3)  # Message rate too high
            status, text = b.rest("GET", "/metrics")
            self.assertIn('reason="rate_limited"', text)
        finally:
            self.assertEqual(b.stop(), 0)

    def test_max_subscriptions(self):
        b = Broker("--max-subscriptions", "2")
        try:
            c = RawClient(b).connect("subs")
            self.assertEqual(c.subscribe("a", opts=0, pid=1), [0])
            self.assertEqual(c.subscribe("b", opts=0, pid=2), [0])
            self.assertEqual(c.subscribe("c", opts=0, pid=3), [0x97])  # Quota exceeded
            self.assertEqual(c.subscribe("a", opts=1, pid=4), [1])  # replacing is fine
        finally:
            self.assertEqual(b.stop(), 0)

    def test_max_message_expiry_caps_the_interval(self):
        b = Broker("--max-message-expiry", "30")
        try:
            sub = RawClient(b).connect("sub")
            sub.subscribe("e")
            pub = RawClient(b).connect("pub")
            pub.publish("e", b"x", MessageExpiryInterval=3600)
            pub.publish("e", b"y")  # no expiry asked: capped too
            for _ in range(2):
                _, _, _, _, pr = sub.parse_publish(sub.recv_packet())
                self.assertLessEqual(pr["MessageExpiryInterval"], 30)
        finally:
            self.assertEqual(b.stop(), 0)


class Reload(BrokerTest):
    def test_sighup_applies_new_limits_without_dropping_connections(self):
        import signal
        import tempfile
        conf = tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False)
        conf.write("max_packet_size = 1000\n")
        conf.close()
        b = Broker("--config", conf.name)
        try:
            old = RawClient(b).connect("old")
            self.assertEqual(old.connack_props["MaximumPacketSize"], 1000)
            with open(conf.name, "w") as f:
                f.write("max_packet_size = 2000\nallow_anonymous = true\n")
            b.proc.send_signal(signal.SIGHUP)
            self.assertTrue(b.wait_log("configuration reloaded"))
            b.sync_shards()  # every shard has applied it
            self.assertEqual(RawClient(b).connect("new").connack_props["MaximumPacketSize"], 2000)
            with open(conf.name, "w") as f:
                f.write("max_packet_size = [broken\n")
            b.proc.send_signal(signal.SIGHUP)  # reported; the running configuration stays
            self.assertTrue(b.wait_log("reload: the configuration is invalid"))
            self.assertEqual(RawClient(b).connect("new2").connack_props["MaximumPacketSize"], 2000)
            old.send(0xC0, b"")  # the first connection lived through both reloads
            self.assertEqual(old.recv_packet().type, 13)
            self.assertTrue(any("reload" in line for line in b.lines))
        finally:
            self.assertEqual(b.stop(), 0)
            os.unlink(conf.name)


    def test_bad_config_file_is_refused_at_start(self):
        import subprocess
        import tempfile
        from broker import BROKER
        for text, why in (("max_packet_sise = 5\n", "unknown setting 'max_packet_sise'"),
                          ('max_packet_size = "big"\n', "wrong type"),
                          ("max_packet_size = [\n", "")):
            conf = tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False)
            conf.write(text)
            conf.close()
            r = subprocess.run([BROKER, "--config", conf.name, "--listen", "mqtt://127.0.0.1:0",
                                "--rest", "none"], capture_output=True, text=True, timeout=5)
            os.unlink(conf.name)
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertIn(why, r.stderr)


class SysTopics(BrokerTest):
    def test_sys_topics_published_and_hidden_from_wildcards(self):
        b = Broker("--sys-interval", "1")
        try:
            everything = RawClient(b).connect("all")
            everything.subscribe("#", opts=0)
            sys = RawClient(b).connect("sys")
            sys.subscribe("$SYS/broker/#", opts=0)
            seen = {}
            end = time.time() + 4
            while time.time() < end and int(seen.get("$SYS/broker/clients/connected", 0)) < 2:
                try:
                    topic, payload, _, _, _ = sys.parse_publish(sys.recv_packet(timeout=0.5))
                    seen[topic] = payload
                except OSError:
                    pass
            self.assertGreaterEqual(int(seen["$SYS/broker/clients/connected"]), 2)
            self.assertTrue(seen.get("$SYS/broker/version", b"").startswith(b"ringmq"))
            with self.assertRaises(OSError):
                everything.recv_packet(timeout=0.3)  # '#' never matches $SYS topics
        finally:
            self.assertEqual(b.stop(), 0)


class SlowConsumer(BrokerTest):
    def test_memory_bounded_and_others_unaffected(self):
        b = Broker()
        try:
            stalled = RawClient(b).connect("stalled")
            stalled.subscribe("load/#", opts=0)
            stalled.sock.setsockopt(__import__("socket").SOL_SOCKET,
                                    __import__("socket").SO_RCVBUF, 4096)
            healthy = RawClient(b).connect("healthy")
            healthy.subscribe("load/#", opts=0)
            pub = RawClient(b).connect("pub")
            payload = b"z" * 1000
            sent = got = 0
            start = time.time()
            mid_rss = mid_sent = None
            while time.time() < start + 4.5:
                for _ in range(200):
                    pub.publish("load/x", payload)
                    sent += 1
                try:  # the healthy subscriber keeps reading
                    while True:
                        healthy.recv_packet(timeout=0.001)
                        got += 1
                except OSError:
                    pass
                if mid_rss is None and time.time() > start + 1.5:
                    mid_rss, mid_sent = rss_kib(b.proc.pid), sent
            growth = rss_kib(b.proc.pid) - mid_rss
            late_kib = (sent - mid_sent) * len(payload) // 1024
            if os.environ.get("RINGMQ_SANITIZED"):
                # ASan's quarantine keeps freed memory and slows everything down: only the
                # traffic itself (no crash, no starvation) is checked there.
                growth, late_kib = 0, 3 * 16 * 1024 + 1
            # Once the stalled subscriber's output limit is reached, memory stays flat while the
            # publisher keeps sending (an unbounded buffer grows by about what is sent).
            self.assertLess(growth, 16 * 1024, "broker RSS grew %d KiB while %d KiB were sent" %
                            (growth, late_kib))
            self.assertGreater(late_kib, 3 * 16 * 1024, "too little load to tell")
            self.assertGreater(got, sent // 2, "healthy subscriber starved: %d of %d" % (got, sent))
        finally:
            self.assertEqual(b.stop(), 0)


class ManyFilters(unittest.TestCase):
    """One SUBSCRIBE carrying thousands of filters: its SUBACK comes within the normal timeout,
    memory grows linearly (about a kilobyte per subscription, not the quadratic gigabytes a
    copy-per-insertion index costs), filters past max_subscriptions are refused one by one, and
    what a session held is released when it ends."""

    N = 20000

    def subscribe_many(self, c, n, prefix, pid=1):
        body = struct.pack("!H", pid) + (b"\x00" if c.version == 5 else b"")
        body += b"".join(s("%s/%d" % (prefix, i)) + b"\x00" for i in range(n))
        c.send(0x82, body)
        ack = c.recv_packet(timeout=TIMEOUT)
        self.assertEqual(ack.type, 9)
        codes = list(ack.body[2 + (1 if c.version == 5 else 0):])
        self.assertEqual(len(codes), n)
        return codes

    def test_raised_limit_linear_memory_released_at_session_end(self):
        b = Broker("--max-subscriptions", str(self.N), log_level="info")
        try:
            rss = [rss_kib(b.proc.pid)]
            # What a session held is reused by the next one. Same client id: same home shard,
            # whose allocator arena holds the memory the previous round freed.
            for _ in range(4):
                c = RawClient(b).connect("many")
                self.assertEqual(self.subscribe_many(c, self.N, "many"), [0] * self.N)
                c.close()
                # The clean session ends with its connection.
                self.assertTrue(wait_until(
                    lambda: b.rest("GET", "/mqtt/sessions/many")[1]["result"] == []))
                rss.append(rss_kib(b.proc.pid))
            if not os.environ.get("RINGMQ_SANITIZED"):
                # Quadratic: 10,000 filters cost 1.2 GB. Linear: a few tens of MB for 20,000.
                first = rss[1] - rss[0]
                self.assertLess(first, 64 * 1024, "RSS grew %d KiB" % first)
                # Three more sessions in turn: if each kept what it held, RSS would grow by three
                # times the first one's cost; freed and reused, by far less (allocator arenas of
                # other shards account for what it grows with 4 shards).
                later = rss[4] - rss[1]
                self.assertLess(later, max(first * 3 // 2, 4096), "RSS %s KiB" % rss)
        finally:
            self.assertEqual(b.stop(), 0)

    def test_default_limit_refuses_the_rest_per_filter(self):
        b = Broker(log_level="info")
        try:
            for version, refused in ((5, 0x97), (4, 0x80)):
                c = RawClient(b, version=version).connect("default-limit-%d" % version)
                codes = self.subscribe_many(c, self.N, "d%d" % version)
                self.assertEqual(codes[:1000], [0] * 1000)
                self.assertEqual(codes[1000:], [refused] * (self.N - 1000))
                # The session keeps its 1,000: a new filter is refused, a replaced one is not.
                self.assertEqual(c.subscribe("d%d/other" % version, opts=0, pid=2), [refused])
                self.assertEqual(c.subscribe("d%d/7" % version, opts=1, pid=3), [1])
                c.close()
            self.assertTrue(wait_until(
                lambda: any("max_subscriptions (1000) reached" in line for line in b.err_lines)))
        finally:
            self.assertEqual(b.stop(), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
