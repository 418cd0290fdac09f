"""Tokens, ACLs and the REST API end to end: the mission of DESIGN.md section 1.

A backend holding the master token mints a token per user with an ACL over REST; the user's
client connects with it and receives only what the ACL allows; changing the token changes what
the live connection receives; deleting it closes the connection at once."""
import time
import unittest

import paho.mqtt.client as mqtt

from broker import Broker, BrokerTest, Client
from mqtt_raw import RawClient

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
            status, reply = b.rest("POST", "/platform/tokens", {"access": {"type": 0}})
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


if __name__ == "__main__":
    unittest.main(verbosity=2)
