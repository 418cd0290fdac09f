"""Whole-broker tests: the real ringmq binary, real sockets, paho and mosquitto clients.

Run by ctest with RINGMQ_SHARDS=1 and RINGMQ_SHARDS=4 (publisher and subscriber on different shards
is then the common case: eight client ids spread over four home shards).
"""
import queue
import signal
import socket
import struct
import subprocess
import time
import unittest

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from broker import TIMEOUT, Broker, BrokerTest, wait_until

V3 = mqtt.MQTTv311
V5 = mqtt.MQTTv5


def recv_exact(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return data


def mqtt_str(s):
    b = s.encode()
    return struct.pack("!H", len(b)) + b


def connect_packet(client_id="raw", level=4, keepalive=60):
    body = mqtt_str("MQTT") + bytes([level, 0x02]) + struct.pack("!H", keepalive)
    if level == 5:
        body += b"\x00"
    body += mqtt_str(client_id)
    return bytes([0x10, len(body)]) + body


def closed_by_peer(s, timeout=TIMEOUT):
    """True when the broker closes the socket (after possibly sending something)."""
    s.settimeout(timeout)
    try:
        while True:
            if not s.recv(4096):
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


class Connect(BrokerTest):
    def test_v311_and_v5_connack(self):
        c3 = self.client("c3", version=V3)
        self.assertEqual(c3.rc, 0)
        c5 = self.client("c5", version=V5)
        self.assertEqual(c5.rc, 0)
        self.assertEqual(c5.connack_props.ReceiveMaximum > 0, True)

    def test_v5_empty_client_id_gets_assigned_identifier(self):
        c = self.client("", version=V5)
        self.assertEqual(c.rc, 0)
        self.assertTrue(c.connack_props.AssignedClientIdentifier)

    def test_v311_empty_client_id_needs_clean_session(self):
        s = self.broker.raw()
        body = mqtt_str("MQTT") + bytes([4, 0x00]) + struct.pack("!H", 60) + mqtt_str("")
        s.sendall(bytes([0x10, len(body)]) + body)
        self.assertEqual(recv_exact(s, 4), b"\x20\x02\x00\x02")  # identifier rejected
        self.assertTrue(closed_by_peer(s))

    def test_v31_connack_never_sets_session_present(self):
        # MQTT 3.1 ("MQIsdp", level 3) has no Session Present flag: the first CONNACK byte is 0
        # even when a persistent session is resumed; 3.1.1 sets it.
        for name, level, resumed in (("MQIsdp", 3, b"\x20\x02\x00\x00"),
                                     ("MQTT", 4, b"\x20\x02\x01\x00")):
            body = mqtt_str(name) + bytes([level, 0x00]) + struct.pack("!H", 60)
            body += mqtt_str("persist%d" % level)
            connect = bytes([0x10, len(body)]) + body
            for expected in (b"\x20\x02\x00\x00", resumed):
                s = self.broker.raw()
                s.sendall(connect)
                self.assertEqual(recv_exact(s, 4), expected, name)
                s.sendall(b"\xe0\x00")  # DISCONNECT: the session stays
                self.assertTrue(closed_by_peer(s))
                s.close()

    def test_unsupported_protocol_level(self):
        s = self.broker.raw()
        s.sendall(connect_packet(level=6))
        self.assertEqual(recv_exact(s, 4), b"\x20\x02\x00\x01")
        self.assertTrue(closed_by_peer(s))

    def test_first_packet_must_be_connect(self):
        s = self.broker.raw()
        s.sendall(b"\xc0\x00")  # PINGREQ
        self.assertTrue(closed_by_peer(s))

    def test_garbage_closes_only_that_connection(self):
        sub = self.client("watcher")
        sub.subscribe("t", 1)
        s = self.broker.raw()
        s.sendall(b"\xff\xff\xff\xff\xff\xff")
        self.assertTrue(closed_by_peer(s))
        pub = self.client("pub")
        pub.publish("t", b"still here", 1)
        self.assertEqual(sub.recv().payload, b"still here")

    def test_malformed_publish_v5_gets_disconnect_reason(self):
        s = self.broker.raw()
        s.sendall(connect_packet("m5", level=5))
        hdr = recv_exact(s, 2)
        self.assertEqual(hdr[0], 0x20)
        recv_exact(s, hdr[1])
        s.sendall(b"\x36\x03\x00\x01t")  # PUBLISH with QoS 3
        data = recv_exact(s, 3)
        self.assertEqual(data[0], 0xE0)
        self.assertEqual(data[2], 0x81)  # Malformed Packet (a Reason String may follow)
        self.assertTrue(closed_by_peer(s))

    def test_second_connect_is_a_protocol_error(self):
        s = self.broker.raw()
        s.sendall(connect_packet("twice"))
        self.assertEqual(recv_exact(s, 4), b"\x20\x02\x00\x00")
        s.sendall(connect_packet("twice"))
        self.assertTrue(closed_by_peer(s))

    def test_oversized_packet_closes_connection(self):
        b = Broker("--max-packet-size", "1024")
        try:
            s = socket.create_connection((b.host, b.port), timeout=TIMEOUT)
            s.sendall(connect_packet("big", level=5))
            hdr = recv_exact(s, 2)
            props = recv_exact(s, hdr[1])
            self.assertIn(b"\x27\x00\x00\x04\x00", props)  # Maximum Packet Size 1024 announced
            payload = b"x" * 2000
            body = mqtt_str("t") + b"\x00" + payload
            s.sendall(bytes([0x30]) + bytes([(len(body) & 0x7F) | 0x80, len(body) >> 7]) + body)
            data = recv_exact(s, 3)
            self.assertEqual(data[2], 0x95)  # Packet too large
            self.assertTrue(closed_by_peer(s))
        finally:
            self.assertEqual(b.stop(), 0)

    def test_takeover_disconnects_old_connection(self):
        old = self.client("same", version=V5)
        new = self.client("same", version=V5)
        self.assertEqual(new.rc, 0)
        rc = old.disconnects.get(timeout=TIMEOUT)
        self.assertEqual(int(rc if not hasattr(rc, "value") else rc.value), 0x8E)


class PubSub(BrokerTest):
    def test_qos_levels_both_versions(self):
        for version in (V3, V5):
            for qos in (0, 1, 2):
                sub = self.client("sub-%d-%d" % (version, qos), version=version)
                self.assertEqual(sub.subscribe("a/+/c", qos)[0] if version == V3 else
                                 sub.subscribe("a/+/c", qos)[0].value, qos)
                pub = self.client("pub-%d-%d" % (version, qos), version=version)
                pub.publish("a/b/c", b"m%d" % qos, qos)
                m = sub.recv()
                self.assertEqual(m.topic, "a/b/c")
                self.assertEqual(m.payload, b"m%d" % qos)
                self.assertEqual(m.qos, qos)
                sub.close()
                pub.close()

    def test_granted_qos_caps_delivery(self):
        sub = self.client("s")
        sub.subscribe("x", 0)
        pub = self.client("p")
        pub.publish("x", b"1", 2)
        self.assertEqual(sub.recv().qos, 0)

    def test_many_subscribers_across_shards(self):
        subs = [self.client("fan-%d" % i) for i in range(8)]
        for s in subs:
            s.subscribe("fan/#", 1)
        pub = self.client("fan-pub")
        for i in range(20):
            pub.publish("fan/x", b"%d" % i, 1)
        for s in subs:
            got = [s.recv().payload for _ in range(20)]
            self.assertEqual(got, [b"%d" % i for i in range(20)])  # in order, none lost

    def test_wildcards_and_dollar_topics(self):
        sub = self.client("w")
        sub.subscribe("#", 0)
        dollar = self.client("d")
        dollar.subscribe("$sys/#", 0)
        pub = self.client("p")
        pub.publish("$sys/x", b"hidden", 1)
        self.assertEqual(dollar.recv().payload, b"hidden")
        sub.expect_nothing()
        pub.publish("a/b", b"seen", 1)
        self.assertEqual(sub.recv().payload, b"seen")

    def test_overlapping_subscriptions_deliver_once_v5(self):
        sub = self.client("ov", version=V5)
        sub.subscribe("o/#", 0)
        sub.subscribe("o/+", 1)
        pub = self.client("p", version=V5)
        pub.publish("o/x", b"one", 1)
        m = sub.recv()
        self.assertEqual(m.qos, 1)  # the highest granted QoS
        sub.expect_nothing()

    def test_unsubscribe_stops_delivery(self):
        sub = self.client("u")
        sub.subscribe("u/t", 1)
        sub.unsubscribe("u/t")  # after the UNSUBACK the subscription is gone
        pub = self.client("p")
        pub.publish("u/t", b"x", 1)
        sub.expect_nothing()

    def test_subscription_replaced_by_identical_filter(self):
        sub = self.client("r")
        sub.subscribe("r/t", 0)
        sub.subscribe("r/t", 1)
        pub = self.client("p")
        pub.publish("r/t", b"x", 1)
        m = sub.recv()
        self.assertEqual(m.qos, 1)
        sub.expect_nothing()

    def test_invalid_filter_suback_codes(self):
        # paho refuses to send a bad filter, so this speaks MQTT on a raw socket.
        for level, code in ((5, 0x8F), (4, 0x80)):
            s = self.broker.raw()
            s.sendall(connect_packet("bad%d" % level, level=level))
            hdr = recv_exact(s, 2)
            recv_exact(s, hdr[1])
            body = b"\x00\x07" + (b"\x00" if level == 5 else b"") + mqtt_str("a/#/b") + b"\x00"
            body += mqtt_str("ok/+") + b"\x01"
            s.sendall(bytes([0x82, len(body)]) + body)
            hdr = recv_exact(s, 2)
            self.assertEqual(hdr[0], 0x90)
            ack = recv_exact(s, hdr[1])
            self.assertEqual(ack[-2:], bytes([code, 0x01]))

    def test_no_local_v5(self):
        c = self.client("nl", version=V5)
        c.subscribe("nl/t", 1, noLocal=True)
        c.publish("nl/t", b"mine", 1)
        c.expect_nothing()

    def test_mosquitto_clients(self):
        for v in ("mqttv311", "mqttv5"):
            sub = subprocess.Popen(
                ["stdbuf", "-oL", "mosquitto_sub", "-h", self.broker.host, "-p", str(self.broker.port), "-V", v,
                 "-t", "cli/#", "-C", "1", "-q", "1", "-i", "cli-sub-" + v, "-d"],
                stdout=subprocess.PIPE, text=True)
            # -d prints the exchange (line-buffered by stdbuf): publish once the subscription is
            # acknowledged.
            for line in sub.stdout:
                if "received SUBACK" in line:
                    break
            subprocess.run(["mosquitto_pub", "-h", self.broker.host, "-p", str(self.broker.port),
                            "-V", v, "-t", "cli/x", "-m", "hello " + v, "-q", "1"], check=True,
                           timeout=TIMEOUT)
            out, _ = sub.communicate(timeout=TIMEOUT)
            self.assertIn("hello " + v, out.splitlines())


class SharedSubscriptions(BrokerTest):
    def test_each_message_to_one_member_balanced(self):
        for version in (V3, V5):
            members = [self.client("m%d-%d" % (version, i), version=version) for i in range(4)]
            for m in members:
                m.subscribe("$share/g%d/jobs/#" % version, 1)
            other = self.client("plain%d" % version, version=version)
            other.subscribe("jobs/#", 1)
            pub = self.client("boss%d" % version, version=version)
            for i in range(40):
                pub.publish("jobs/%d" % i, b"%d" % i, 1)
            got = []
            for m in members:
                n = 0
                while True:
                    try:
                        got.append(m.recv(timeout=1).payload)
                        n += 1
                    except queue.Empty:
                        break
                self.assertGreater(n, 0, "every member gets a share")
            self.assertEqual(sorted(got), sorted(b"%d" % i for i in range(40)))  # once each
            self.assertEqual(len([other.recv() for _ in range(40)]), 40)  # plain subs unaffected
            for c in members + [other, pub]:
                c.close()

    def test_empty_level_filter_does_not_hide_another_group(self):
        # "$share/h/a/" puts the empty level "" below "a" in the shared index, next to the leaf
        # of group g on "a": both groups keep receiving what matches their filter.
        h = self.client("h-member")
        h.subscribe("$share/h/a/", 1)
        g = self.client("g-member")
        g.subscribe("$share/g/a", 1)
        pub = self.client("p")
        pub.publish("a", b"to g", 1)
        pub.publish("a/", b"to h", 1)
        m = g.recv()
        self.assertEqual((m.topic, m.payload), ("a", b"to g"))
        m = h.recv()
        self.assertEqual((m.topic, m.payload), ("a/", b"to h"))
        g.expect_nothing()
        h.expect_nothing()

    def test_no_retained_on_shared_subscribe(self):
        pub = self.client("p")
        pub.publish("r/x", b"kept", 1, retain=True)
        m = self.client("m")
        m.subscribe("$share/g/r/#", 1)
        m.expect_nothing()

    def test_disconnected_member_is_skipped(self):
        live = self.client("live")
        live.subscribe("$share/g/t", 1)
        away = self.client("away", clean=False)
        away.subscribe("$share/g/t", 1)
        away.close()
        self.assertTrue(self.broker.wait_log("client disconnected", "client_id=away"))
        pub = self.client("p")
        for i in range(10):
            pub.publish("t", b"%d" % i, 1)
        self.assertEqual(sorted(live.recv().payload for _ in range(10)),
                         sorted(b"%d" % i for i in range(10)))

    def test_inflight_redelivered_to_another_member(self):
        # A member that never acknowledges (raw socket) holds QoS 1 messages in flight; when its
        # session ends they go to the other member.
        good = self.client("good")
        good.subscribe("$share/g/w", 1)
        s = self.broker.raw()
        s.sendall(connect_packet("stuck"))
        self.assertEqual(recv_exact(s, 4), b"\x20\x02\x00\x00")
        body = b"\x00\x01" + mqtt_str("$share/g/w") + b"\x01"
        s.sendall(bytes([0x82, len(body)]) + body)
        self.assertEqual(recv_exact(s, 5)[:2], b"\x90\x03")
        pub = self.client("p")
        for i in range(10):
            pub.publish("w", b"%d" % i, 1)
        # Every message sent to one member or the other (some now in flight at the stuck one).
        self.assertTrue(wait_until(
            lambda: self.broker.metric("ringmq_messages_out_total") >= 10))
        s.close()  # the stuck member's clean session ends with messages unacknowledged
        got = set()
        while len(got) < 10:
            got.add(good.recv().payload)
        self.assertEqual(got, set(b"%d" % i for i in range(10)))


class Retained(BrokerTest):
    def test_store_replace_delete(self):
        pub = self.client("p")
        pub.publish("ret/a", b"first", 1, retain=True)
        pub.publish("ret/a", b"second", 1, retain=True)
        pub.publish("ret/b", b"other", 1, retain=True)
        sub = self.client("s")
        sub.subscribe("ret/+", 1)
        got = sorted((m.topic, m.payload, m.retain) for m in (sub.recv(), sub.recv()))
        self.assertEqual(got, [("ret/a", b"second", True), ("ret/b", b"other", True)])
        sub.expect_nothing()
        pub.publish("ret/a", b"", 1, retain=True)  # delete
        # The REST view of the retained store: only ret/b is left.
        self.assertTrue(wait_until(lambda: [m["topic"] for m in self.broker.rest(
            "GET", "/mqtt/messages/ret/%2B")[1]["result"]] == ["ret/b"]))
        late = self.client("late")
        late.subscribe("ret/+", 1)
        self.assertEqual(late.recv().topic, "ret/b")
        late.expect_nothing()

    def test_live_messages_lose_retain_flag_v311(self):
        sub = self.client("s")
        sub.subscribe("live", 0)
        pub = self.client("p")
        pub.publish("live", b"x", 0, retain=True)
        self.assertFalse(sub.recv().retain)

    def test_retain_handling_2_sends_nothing_v5(self):
        pub = self.client("p", version=V5)
        pub.publish("rh/x", b"r", 1, retain=True)
        sub = self.client("s", version=V5)
        sub.subscribe("rh/#", 1, retainHandling=2)
        sub.expect_nothing()


class Sessions(BrokerTest):
    def test_persistent_session_queues_qos1_v311(self):
        sub = self.client("store", clean=False)
        sub.subscribe("data/#", 1)
        sub.close()
        pub = self.client("tele")
        for i in range(10):
            pub.publish("data/u1/s%d" % i, b"%d" % i, 1)
        pub.publish("data/u1/q0", b"qos0", 0)
        back = self.client("store", clean=False)
        self.assertEqual(back.flags.get("session present"), 1)
        got = [back.recv().payload for _ in range(10)]
        self.assertEqual(got, [b"%d" % i for i in range(10)])

    def test_clean_session_discards_state(self):
        sub = self.client("gone", clean=False)
        sub.subscribe("g", 1)
        sub.close()
        again = self.client("gone", clean=True)
        self.assertEqual(again.flags.get("session present"), 0)
        pub = self.client("p")
        pub.publish("g", b"x", 1)
        again.expect_nothing()

    def test_session_expiry_v5(self):
        sub = self.client("exp", version=V5, clean=True, session_expiry=1)
        sub.subscribe("e", 1)
        sub.close()
        self.assertTrue(self.broker.wait_metric("ringmq_sessions", 0))  # expired after 1 s
        back = self.client("exp", version=V5, clean=False, session_expiry=60)
        self.assertFalse(back.flags.get("session present"))

    def test_session_kept_v5(self):
        sub = self.client("keep", version=V5, clean=True, session_expiry=60)
        sub.subscribe("k", 1)
        sub.close()
        pub = self.client("p", version=V5)
        pub.publish("k", b"while away", 1)
        back = self.client("keep", version=V5, clean=False, session_expiry=60)
        self.assertTrue(back.flags.get("session present"))
        self.assertEqual(back.recv().payload, b"while away")


class WillAndKeepAlive(BrokerTest):
    def test_will_on_abnormal_close(self):
        watcher = self.client("watch")
        watcher.subscribe("wills/#", 1)
        dying = self.client("dying", will=("wills/dying", b"gone", 1, False))
        dying.drop()
        m = watcher.recv()
        self.assertEqual((m.topic, m.payload), ("wills/dying", b"gone"))

    def test_no_will_on_disconnect(self):
        watcher = self.client("watch")
        watcher.subscribe("wills/#", 1)
        polite = self.client("polite", will=("wills/polite", b"gone", 1, False))
        polite.close()
        watcher.expect_nothing(1.0)

    def test_keepalive_timeout_publishes_will(self):
        watcher = self.client("watch")
        watcher.subscribe("wills/#", 1)
        s = self.broker.raw()
        body = (mqtt_str("MQTT") + bytes([4, 0x02 | 0x04 | 0x08]) + struct.pack("!H", 1)
                + mqtt_str("silent") + mqtt_str("wills/silent") + mqtt_str("timeout"))
        s.sendall(bytes([0x10, len(body)]) + body)
        self.assertEqual(recv_exact(s, 4), b"\x20\x02\x00\x00")
        start = time.time()
        self.assertTrue(closed_by_peer(s, timeout=4))
        self.assertGreaterEqual(time.time() - start, 1.0)
        self.assertEqual(watcher.recv().payload, b"timeout")

    def test_pingreq_keeps_alive(self):
        s = self.broker.raw()
        s.sendall(connect_packet("pinger", keepalive=1))
        self.assertEqual(recv_exact(s, 4), b"\x20\x02\x00\x00")
        for _ in range(4):
            time.sleep(0.5)
            s.sendall(b"\xc0\x00")
            self.assertEqual(recv_exact(s, 2), b"\xd0\x00")


class Shutdown(unittest.TestCase):
    def test_sigterm_sends_server_shutting_down(self):
        b = Broker()
        s = socket.create_connection((b.host, b.port), timeout=TIMEOUT)
        s.sendall(connect_packet("bye", level=5))
        hdr = recv_exact(s, 2)
        recv_exact(s, hdr[1])
        start = time.time()
        b.proc.send_signal(signal.SIGTERM)
        hdr = recv_exact(s, 2)
        self.assertEqual(hdr[0], 0xE0)
        self.assertEqual(recv_exact(s, hdr[1])[0], 0x8B)  # Server shutting down
        self.assertEqual(b.proc.wait(timeout=3), 0)
        self.assertLess(time.time() - start, 2.5)


if __name__ == "__main__":
    unittest.main(verbosity=2)
