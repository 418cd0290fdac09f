"""Tokens, ACLs and the REST API end to end: the mission of DESIGN.md section 1.

A backend holding the master token mints a token per user with an ACL over REST; the user's
client connects with it and receives only what the ACL allows; changing the token changes what
the live connection receives; deleting it closes the connection at once."""
import struct
import time
import unittest

import paho.mqtt.client as mqtt

from broker import Broker, BrokerTest, Client, wait_until
from mqtt_raw import RawClient, props, s

V3 = mqtt.MQTTv311
V5 = mqtt.MQTTv5


def acl_token(topic, actions=("subscribe",), **extra):
    token = {"info": "user session",
             "access": {"type": 2, "acl": [{"uri": "mqtt", "topic": topic,
                                            "actions": list(actions)}]}}
    token.update(extra)
    return token


class Tokens(BrokerTest):
    def mint(self, body):
        if "ttl" not in body and "expire" not in body:
            body = dict(body, ttl=3600)  # a token must expire
        status, reply = self.broker.rest("POST", "/platform/tokens", body)
        self.assertEqual(status, 200, reply)
        return reply["result"][0]

    def test_acl_limits_what_a_subscriber_receives(self):
        user = self.mint(acl_token("data/u1/#", ttl=3600))
        self.assertGreaterEqual(len(user["key"]), 32)
        telemetry = self.mint({"info": "telemetry", "access": {"type": 0}})
        browser = RawClient(self.broker).connect("browser", username=user["key"])
        self.assertEqual(browser.reason, 0)
        self.assertEqual(browser.subscribe("#", opts=0), [0])  # wider than the ACL: granted, narrowed
        self.assertEqual(browser.subscribe("other/#", opts=0, pid=2), [0x87])  # nothing allowed
        pub = RawClient(self.broker).connect("tele", username="FlespiToken " + telemetry["key"])
        pub.publish("data/u2/temp", b"not yours")
        pub.publish("data/u1/temp", b"yours")
        topic, payload, _, _, _ = browser.parse_publish(browser.recv_packet())
        self.assertEqual((topic, payload), ("data/u1/temp", b"yours"))
        with self.assertRaises(OSError):
            browser.recv_packet(timeout=0.5)

    def test_publish_outside_acl_is_refused(self):
        t = self.mint(acl_token("out/#", actions=("publish",)))
        c = RawClient(self.broker).connect("p", username=t["key"])
        c.publish("in/x", b"no", qos=1, pid=9)
        ack = c.recv_packet()
        self.assertEqual((ack.type, ack.body[2]), (4, 0x87))
        c.publish("out/x", b"yes", qos=1, pid=10)
        ack = c.recv_packet()
        self.assertEqual((ack.type, len(ack.body)), (4, 2))  # success, short form

    def test_unknown_token_and_anonymous(self):
        for version, code in ((5, 0x86), (4, 4)):
            c = RawClient(self.broker, version=version)
            c.connect("x", username="no-such-token-" + "x" * 40, check=False)
            self.assertEqual(c.reason, code)
        b = Broker("--deny-anonymous")
        try:
            c = RawClient(b)
            c.connect("anon", check=False)
            self.assertEqual(c.reason, 0x87)
        finally:
            self.assertEqual(b.stop(), 0)

    def test_token_in_password(self):
        t = self.mint({"access": {"type": 0}})
        c = Client(self.broker, "pw", connect=False)
        c.c.username_pw_set("", t["key"])
        c.connect()
        self.clients.append(c)
        self.assertEqual(c.rc, 0)

    def test_acl_change_applies_to_live_connection(self):
        t = self.mint(acl_token("data/u1/#"))
        admin = self.mint({"access": {"type": 0}})
        c = RawClient(self.broker).connect("live", username=t["key"])
        c.subscribe("data/#")
        pub = RawClient(self.broker).connect("pub", username=admin["key"])
        status, reply = self.broker.rest("PUT", "/platform/tokens/%d" % t["id"],
                                         acl_token("data/u2/#"))
        self.assertEqual(status, 200, reply)
        self.broker.sync_shards()  # every shard has applied the new ACL
        pub.publish("data/u1/x", b"old")
        pub.publish("data/u2/x", b"new")
        topic, payload, _, _, _ = c.parse_publish(c.recv_packet())
        self.assertEqual((topic, payload), ("data/u2/x", b"new"))
        with self.assertRaises(OSError):
            c.recv_packet(timeout=0.5)

    def test_deleting_token_closes_connections(self):
        t = self.mint(acl_token("d/#"))
        c = RawClient(self.broker).connect("doomed", username=t["key"])
        status, reply = self.broker.rest("DELETE", "/platform/tokens/%d" % t["id"])
        self.assertEqual(status, 200, reply)
        pkt = c.recv_packet()
        self.assertEqual((pkt.type, pkt.body[0]), (14, 0x87))
        self.assertTrue(c.closed())
        again = RawClient(self.broker)
        again.connect("doomed", username=t["key"], check=False)
        self.assertEqual(again.reason, 0x86)

    def test_token_survives_restart(self):
        b = Broker()
        t = None
        try:
            status, reply = b.rest("POST", "/platform/tokens", {"access": {"type": 0}, "ttl": 3600})
            self.assertEqual(status, 200, reply)
            t = reply["result"][0]
        finally:
            self.assertEqual(b.stop(keep_data=True), 0)
        b2 = Broker(data_dir=b.data_dir)
        try:
            c = RawClient(b2).connect("again", username=t["key"])
            self.assertEqual(c.reason, 0)
        finally:
            self.assertEqual(b2.stop(), 0)
            import shutil
            shutil.rmtree(b.data_dir, ignore_errors=True)


class RestMqtt(BrokerTest):
    def test_sessions_listed_and_deleted(self):
        c = RawClient(self.broker).connect("s1")
        c.subscribe("a/b")
        status, reply = self.broker.rest("GET", "/mqtt/sessions/s1")
        self.assertEqual(status, 200, reply)
        self.assertEqual(reply["result"][0]["client_id"], "s1")
        status, reply = self.broker.rest("GET", "/mqtt/sessions/s1/subscriptions")
        self.assertEqual(status, 200, reply)
        self.assertEqual(reply["result"][0]["topic"], "a/b")
        status, reply = self.broker.rest("DELETE", "/mqtt/sessions/s1")
        self.assertEqual(status, 200, reply)
        pkt = c.recv_packet()
        self.assertEqual((pkt.type, pkt.body[0]), (14, 0x98))  # Administrative action

    def test_publish_and_retained_over_rest(self):
        sub = RawClient(self.broker).connect("sub")
        sub.subscribe("r/#")
        status, reply = self.broker.rest("POST", "/mqtt/messages",
                                         {"topic": "r/x", "payload": "hi", "retain": True})
        self.assertEqual(status, 200, reply)
        topic, payload, _, _, _ = sub.parse_publish(sub.recv_packet())
        self.assertEqual((topic, payload), ("r/x", b"hi"))
        status, reply = self.broker.rest("GET", "/mqtt/messages/r%2F%23")
        self.assertEqual(status, 200, reply)
        self.assertEqual([m["topic"] for m in reply["result"]], ["r/x"])
        status, reply = self.broker.rest("DELETE", "/mqtt/messages/r%2F%23")
        self.assertEqual(status, 200, reply)
        status, reply = self.broker.rest("GET", "/mqtt/messages/r%2F%23")
        self.assertEqual(reply["result"], [])

    def test_metrics(self):
        RawClient(self.broker).connect("m")
        status, text = self.broker.rest("GET", "/metrics")
        self.assertEqual(status, 200)
        self.assertIn('ringmq_connections{shard="0"}', text)

    def test_auth_errors(self):
        status, reply = self.broker.rest("GET", "/platform/tokens/all", token="nope")
        self.assertEqual(status, 401)
        self.assertIn("errors", reply)


def connect_with_will(broker, version, client_id, will_topic, username=None, retain=False):
    """A raw CONNECT (3.1.1 or 5) carrying a QoS 0 will; returns the client, c.reason set from the
    CONNACK."""
    c = RawClient(broker, version=version)
    flags = 0x02 | 0x04 | (0x20 if retain else 0) | (0x80 if username is not None else 0)
    body = s("MQTT") + bytes([version, flags]) + struct.pack("!H", 60)
    if version == 5:
        body += props()
    body += s(client_id)
    if version == 5:
        body += props()  # will properties
    body += s(will_topic) + s(b"gone")
    if username is not None:
        body += s(username)
    c.send(0x10, body)
    ack = c.recv_packet()
    assert ack.type == 2, ack.type
    c.reason = ack.body[1]
    return c


def dropped_not_authorized(broker):
    """The sum over shards of ringmq_dropped_total{reason="not_authorized"}."""
    status, text = broker.rest("GET", "/metrics")
    assert status == 200, status
    return sum(int(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("ringmq_dropped_total{") and 'reason="not_authorized"' in line)


class PublishRightsTest(BrokerTest):
    """Helpers of the tests of who may publish where."""

    def mint(self, body):
        if "ttl" not in body and "expire" not in body:
            body = dict(body, ttl=3600)  # a token must expire
        status, reply = self.broker.rest("POST", "/platform/tokens", body)
        self.assertEqual(status, 200, reply)
        return reply["result"][0]

    def watcher(self, flt):
        """An anonymous subscriber to flt (QoS 0)."""
        w = RawClient(self.broker).connect("watch-" + flt.replace("/", "-").replace("#", "all"))
        self.assertEqual(w.subscribe(flt, opts=0), [0])
        return w


class SysTopics(PublishRightsTest):
    """$SYS topics are the broker's alone: no client publishes there (MQTT, REST)."""

    def test_publish_to_sys_refused_whatever_the_token(self):
        standard = self.mint({"access": {"type": 0}, "ttl": 3600})
        granted = self.mint(acl_token("$SYS/#", actions=("publish", "subscribe"), ttl=3600))
        watch = self.watcher("$SYS/#")
        before = dropped_not_authorized(self.broker)
        sent = 0
        for who, key in (("anonymous", None), ("master", self.broker.master_token),
                         ("standard", standard["key"]), ("acl", granted["key"])):
            v5 = RawClient(self.broker).connect("p5-" + who, username=key)
            v5.publish("$SYS/broker/clients/connected", b"9999", qos=1, pid=7, retain=True)
            ack = v5.recv_packet()
            self.assertEqual((ack.type, bytes(ack.body[2:3])), (4, b"\x87"), who)
            v3 = RawClient(self.broker, version=4).connect("p3-" + who, username=key)
            v3.publish("$SYS/broker/version", b"spoofed", retain=True)  # dropped, counted
            v3.publish("$SYS/broker/version", b"spoofed", qos=1, pid=8, retain=True)
            ack = v3.recv_packet()  # 3.1.1 acknowledges without a reason: still dropped
            self.assertEqual((ack.type, bytes(ack.body)), (4, b"\x00\x08"), who)
            sent += 3
        self.assertEqual(dropped_not_authorized(self.broker), before + sent)
        while True:  # the broker's own $SYS updates may arrive, a spoofed value never
            try:
                topic, payload, _, _, _ = watch.parse_publish(watch.recv_packet(timeout=0.3))
            except OSError:
                break
            self.assertNotIn(payload, (b"9999", b"spoofed"), topic)
        status, reply = self.broker.rest("GET", "/mqtt/messages/%24SYS%2F%23")
        self.assertEqual(status, 200, reply)
        self.assertNotIn(b"spoofed", [m.get("payload", "").encode() for m in reply["result"]])
        self.assertNotIn(b"9999", [m.get("payload", "").encode() for m in reply["result"]])

    def test_rest_publish_to_sys_refused(self):
        watch = self.watcher("$SYS/#")
        for topic in ("$SYS/broker/uptime", "$SYS"):
            status, reply = self.broker.rest("POST", "/mqtt/messages",
                                             {"topic": topic, "payload": "spoofed",
                                              "retain": True})
            self.assertEqual(status, 400, reply)
            self.assertIn("$SYS", reply["errors"][0]["reason"])
        while True:
            try:
                _, payload, _, _, _ = watch.parse_publish(watch.recv_packet(timeout=0.3))
            except OSError:
                break
            self.assertNotEqual(payload, b"spoofed")


class Wills(PublishRightsTest):
    """A will is a publish by its client: the token's ACL applies at CONNECT and again when the
    will is sent, and a will never goes to $SYS."""

    def test_will_outside_acl_refused_at_connect(self):
        t = self.mint(acl_token("cmd/u1/#", actions=("publish",), ttl=3600))
        watch = self.watcher("data/#")
        for version, refused in ((4, 5), (5, 0x87)):
            c = connect_with_will(self.broker, version, "w%d" % version, "data/u2/will",
                                  username=t["key"], retain=True)
            self.assertEqual(c.reason, refused, "version %d" % version)
            self.assertTrue(c.closed())
            # A will the token may publish is accepted.
            ok = connect_with_will(self.broker, version, "ok%d" % version, "cmd/u1/will",
                                   username=t["key"])
            self.assertEqual(ok.reason, 0, "version %d" % version)
            ok.close()
        with self.assertRaises(OSError):
            watch.recv_packet(timeout=0.3)
        status, reply = self.broker.rest("GET", "/mqtt/messages/data%2F%23")
        self.assertEqual((status, reply["result"]), (200, []))

    def test_will_on_sys_refused_whatever_the_token(self):
        standard = self.mint({"access": {"type": 0}, "ttl": 3600})
        granted = self.mint(acl_token("$SYS/#", actions=("publish", "subscribe"), ttl=3600))
        for who, key in (("anonymous", None), ("master", self.broker.master_token),
                         ("standard", standard["key"]), ("acl", granted["key"])):
            for version, refused in ((4, 5), (5, 0x87)):
                c = connect_with_will(self.broker, version, "sys-%s-%d" % (who, version),
                                      "$SYS/will", username=key, retain=True)
                self.assertEqual(c.reason, refused, "%s, version %d" % (who, version))
                c.close()
        status, reply = self.broker.rest("GET", "/mqtt/messages/%24SYS%2F%23")
        self.assertEqual(status, 200, reply)
        self.assertNotIn("$SYS/will", [m["topic"] for m in reply["result"]])

    def test_will_not_sent_after_acl_narrowed(self):
        wide = {"type": 2, "acl": [{"uri": "mqtt", "topic": t, "actions": ["publish"]}
                                   for t in ("cmd/u1/#", "will/u1", "probe/u1")]}
        t = self.mint({"access": wide, "ttl": 3600})
        watch = self.watcher("will/#")
        c = connect_with_will(self.broker, 5, "narrowed", "will/u1", username=t["key"],
                              retain=True)
        self.assertEqual(c.reason, 0)
        narrow = {"type": 2, "acl": [{"uri": "mqtt", "topic": "cmd/u1/#",
                                      "actions": ["publish"]}]}
        status, reply = self.broker.rest("PATCH", "/platform/tokens/%d" % t["id"],
                                         {"access": narrow})
        self.assertEqual(status, 200, reply)
        # The change reached the session's shard once a publish it removed is refused there.
        pid = [0]

        def probe_refused():
            pid[0] += 1
            c.publish("probe/u1", b"probe", qos=1, pid=pid[0])
            ack = c.recv_packet()
            self.assertEqual(ack.type, 4)
            return len(ack.body) > 2 and ack.body[2] == 0x87
        self.assertTrue(wait_until(probe_refused))
        before = dropped_not_authorized(self.broker)
        c.close()  # no DISCONNECT: the will is due now
        self.assertTrue(wait_until(lambda: any(
            "will of narrowed on 'will/u1' not published" in line
            for line in self.broker.err_lines)), "".join(self.broker.err_lines[-20:]))
        self.assertEqual(dropped_not_authorized(self.broker), before + 1)
        with self.assertRaises(OSError):  # the will was not delivered
            watch.recv_packet(timeout=0.3)
        status, reply = self.broker.rest("GET", "/mqtt/messages/will%2F%23")
        self.assertEqual((status, reply["result"]), (200, []))
        late = RawClient(self.broker).connect("late")
        self.assertEqual(late.subscribe("will/#", opts=0), [0])
        with self.assertRaises(OSError):
            late.recv_packet(timeout=0.3)

    def test_no_will_after_token_deleted(self):
        t = self.mint(acl_token("will/#", actions=("publish",), ttl=3600))
        watch = self.watcher("will/#")
        c = connect_with_will(self.broker, 5, "revoked", "will/u2", username=t["key"],
                              retain=True)
        self.assertEqual(c.reason, 0)
        status, reply = self.broker.rest("DELETE", "/platform/tokens/%d" % t["id"])
        self.assertEqual(status, 200, reply)
        pkt = c.recv_packet()
        self.assertEqual((pkt.type, pkt.body[0]), (14, 0x87))
        self.assertTrue(c.closed())
        self.assertTrue(wait_until(lambda: any(
            "client disconnected" in line and "client_id=revoked" in line
            for line in self.broker.err_lines)))
        with self.assertRaises(OSError):  # the will went with the token
            watch.recv_packet(timeout=0.3)
        status, reply = self.broker.rest("GET", "/mqtt/messages/will%2F%23")
        self.assertEqual((status, reply["result"]), (200, []))


if __name__ == "__main__":
    unittest.main(verbosity=2)
