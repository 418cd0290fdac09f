"""MQTT authentication and the token fields of flespi's token object (issue 15 rows 3, 8, 10):
anonymous clients refused by default, login by token id and key prefix, `cid` and `origins`
(an IP allow-list enforced on MQTT CONNECT and REST), and `methods` in ACL entries (REST calls
of the /mqtt API by ACL tokens)."""
import os
import tempfile
import unittest
import urllib.parse

import paho.mqtt.client as mqtt

from broker import Broker, BrokerTest, Client
from mqtt_raw import RawClient


def q(flt):
    return urllib.parse.quote(flt, safe="/")


class AnonymousDefault(unittest.TestCase):
    """The broker's own default, without the test harness's --allow-anonymous."""

    def test_anonymous_refused_by_default_with_0x87_and_5(self):
        b = Broker(allow_anonymous=False)
        try:
            for version, code in ((5, 0x87), (4, 5)):
                c = RawClient(b, version=version)
                c.connect("anon%d" % version, check=False)
                self.assertEqual(c.reason, code)
                self.assertTrue(c.closed())
            self.assertTrue(b.wait_log("connect refused", "anonymous clients are not allowed",
                                       count=2))
            # paho (3.1.1) sees "not authorised" too, and a token still gets in.
            p = Client(b, "paho", connect=False)
            p.connect()
            self.assertEqual(p.rc, 5)
            p.c.loop_stop()
            status, reply = b.rest("POST", "/platform/tokens", {"ttl": 60, "access": {"type": 0}})
            self.assertEqual(status, 200, reply)
            RawClient(b).connect("with-token", username=reply["result"][0]["key"]).close()
            # Nothing of the refused clients stayed: no session.
            status, reply = b.rest("GET", "/mqtt/sessions/all")
            self.assertNotIn("anon5", str(reply))
        finally:
            self.assertEqual(b.stop(), 0)

    def test_config_file_allow_anonymous_opens_it(self):
        conf = tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False)
        conf.write("allow_anonymous = true\n")
        conf.close()
        b = Broker("--config", conf.name, allow_anonymous=False)
        try:
            RawClient(b).connect("anon").close()
            RawClient(b, version=4).connect("anon4").close()
        finally:
            os.unlink(conf.name)
            self.assertEqual(b.stop(), 0)


class Tokens(BrokerTest):
    def mint(self, body, status=200):
        got, reply = self.broker.rest("POST", "/platform/tokens", body)
        self.assertEqual(got, status, reply)
        return reply["result"][0] if status == 200 else reply

    def get(self, token_id):
        status, reply = self.broker.rest("GET", "/platform/tokens/%d" % token_id)
        self.assertEqual(status, 200, reply)
        return reply["result"][0]


class IdLogin(Tokens):
    def test_token_id_and_16_key_characters(self):
        t = self.mint({"ttl": 60, "access": {"type": 0}})
        for version in (5, 4):
            c = RawClient(self.broker, version=version)
            c.connect("byid%d" % version, username=str(t["id"]), password=t["key"][:16])
            self.assertEqual(c.subscribe("x/#", opts=0), [0])  # a standard token's rights
            c.close()
        # Live connections by id are tracked under the token: deleting it closes them.
        c = RawClient(self.broker).connect("live", username=str(t["id"]),
                                           password=t["key"][:16])
        status, reply = self.broker.rest("DELETE", "/platform/tokens/%d" % t["id"])
        self.assertEqual(status, 200, reply)
        pkt = c.recv_packet()
        self.assertEqual((pkt.type, pkt.body[0]), (14, 0x87))

    def test_wrong_prefix_or_id_is_refused(self):
        t = self.mint({"ttl": 60, "access": {"type": 0}})
        other = self.mint({"ttl": 60, "access": {"type": 0}})
        wrong = t["key"][:15] + ("a" if t["key"][15] != "a" else "b")
        for user, password in ((str(t["id"]), wrong), (str(t["id"]), t["key"][:15]),
                               (str(t["id"]), t["key"][:17]), (str(t["id"]), t["key"]),
                               (str(other["id"]), t["key"][:16]), ("999", t["key"][:16])):
            for version, code in ((5, 0x86), (4, 4)):
                c = RawClient(self.broker, version=version)
                c.connect("bad", username=user, password=password, check=False)
                self.assertEqual(c.reason, code, (user, password, version))
        # The right pair still works after the wrong ones (and from the shard's cache).
        for _ in range(2):
            RawClient(self.broker).connect("good", username=str(t["id"]),
                                           password=t["key"][:16]).close()


class CidAndOrigins(Tokens):
    def test_cid_and_origins_are_stored_and_returned(self):
        t = self.mint({"ttl": 60, "cid": 4242, "access": {"type": 0},
                       "origins": ["127.0.0.0/8", {"ip": "::1"}]})
        self.assertEqual(t["cid"], 4242)
        self.assertEqual(t["origins"], ["127.0.0.0/8", {"ip": "::1"}])
        self.assertEqual(self.get(t["id"])["origins"], ["127.0.0.0/8", {"ip": "::1"}])
        status, reply = self.broker.rest("GET", "/platform/tokens/%d?fields=cid" % t["id"])
        self.assertEqual(reply["result"], [{"cid": 4242}])

    def test_bad_origins_and_cid_are_400_and_change_nothing(self):
        t = self.mint({"ttl": 60, "access": {"type": 0}, "origins": ["10.0.0.0/8"]})
        for body, why in (({"origins": ["10.0.0.0/33"]}, "origins[0]: prefix length"),
                          ({"origins": ["example.com"]}, "is not an IPv4 or IPv6 address"),
                          ({"origins": [{"referer": "x"}]}, "origins[0].referer: unknown field"),
                          ({"origins": "10.0.0.0/8"}, "must be an array or null"),
                          ({"cid": -1}, "cid: must not be negative"),
                          ({"cid": "1"}, "cid: must be an integer"),
                          ({"customer_id": 1}, "customer_id: unknown field")):
            status, reply = self.broker.rest("PATCH", "/platform/tokens/%d" % t["id"], body)
            self.assertEqual(status, 400, body)
            self.assertIn(why, reply["errors"][0]["reason"])
            reply = self.mint(dict(body, ttl=60), status=400)
            self.assertIn(why, reply["errors"][0]["reason"])
        after = self.get(t["id"])
        self.assertEqual((after["origins"], after["cid"]), (["10.0.0.0/8"], 0))
        self.assertTrue(self.broker.wait_log("PATCH", "400"))

    def test_origins_enforced_on_connect(self):
        away = self.mint({"ttl": 60, "access": {"type": 0}, "origins": ["192.0.2.0/24"]})
        here = self.mint({"ttl": 60, "access": {"type": 0}, "origins": ["127.0.0.1"]})
        for version, code in ((5, 0x87), (4, 5)):
            c = RawClient(self.broker, version=version)
            c.connect("away%d" % version, username=away["key"], check=False)
            self.assertEqual(c.reason, code)
            # By id too, and a second time (the shard's cache now holds the token).
            c = RawClient(self.broker, version=version)
            c.connect("away", username=str(away["id"]), password=away["key"][:16], check=False)
            self.assertEqual(c.reason, code)
        self.assertTrue(self.broker.wait_log("connect refused", "origins", count=4))
        RawClient(self.broker).connect("here", username=here["key"]).close()
        # Widening the origins applies to the next CONNECT.
        status, reply = self.broker.rest("PATCH", "/platform/tokens/%d" % away["id"],
                                         {"origins": ["192.0.2.0/24", "127.0.0.0/8"]})
        self.assertEqual(status, 200, reply)
        self.broker.sync_shards()
        RawClient(self.broker).connect("away", username=away["key"]).close()

    def test_origins_enforced_on_rest(self):
        away = self.mint({"ttl": 60, "access": {"type": 1}, "origins": ["192.0.2.0/24"]})
        status, reply = self.broker.rest("GET", "/platform/tokens/all", token=away["key"])
        self.assertEqual(status, 403, reply)
        self.assertIn("not in its origins", reply["errors"][0]["reason"])
        here = self.mint({"ttl": 60, "access": {"type": 1}, "origins": ["127.0.0.0/8", "::1"]})
        status, reply = self.broker.rest("GET", "/platform/tokens/all", token=here["key"])
        self.assertEqual(status, 200, reply)


class AclMethods(Tokens):
    def test_acl_token_calls_the_mqtt_methods_it_lists(self):
        t = self.mint({"ttl": 60, "access": {"type": 2, "acl": [
            {"uri": "mqtt", "topic": "u1/#", "actions": ["subscribe"], "methods": ["POST", "GET"]},
            {"uri": "mqtt", "topic": "u1/tmp/+", "methods": ["DELETE"]}]}})
        self.assertEqual(t["access"]["acl"][0]["methods"], ["GET", "POST"])
        sub = RawClient(self.broker).connect("sub", username=t["key"])
        sub.subscribe("#", opts=0)
        self.broker.sync_shards()
        key = t["key"]
        status, reply = self.broker.rest("POST", "/mqtt/messages",
                                         {"topic": "u1/a", "payload": "hi"}, token=key)
        self.assertEqual(status, 200, reply)
        topic, payload, _, _, _ = sub.parse_publish(sub.recv_packet())
        self.assertEqual((topic, payload), ("u1/a", b"hi"))
        # Outside the entry: 403, nothing published.
        status, reply = self.broker.rest("POST", "/mqtt/messages",
                                         [{"topic": "u1/b"}, {"topic": "u2/b"}], token=key)
        self.assertEqual(status, 403, reply)
        self.assertIn("u2/b", reply["errors"][0]["reason"])
        # Retained: the master retains two, the token lists only its own.
        for topic in ("u1/tmp/r", "u2/r"):
            status, reply = self.broker.rest("POST", "/mqtt/messages",
                                             {"topic": topic, "payload": "r", "retain": True})
            self.assertEqual(status, 200, reply)
        status, reply = self.broker.rest("GET", "/mqtt/messages/" + q("#"), token=key)
        self.assertEqual(status, 200, reply)
        self.assertEqual([m["topic"] for m in reply["result"]], ["u1/tmp/r"])
        status, reply = self.broker.rest("GET", "/mqtt/messages/" + q("u2/#"), token=key)
        self.assertEqual(status, 403, reply)
        status, reply = self.broker.rest("DELETE", "/mqtt/messages/" + q("u1/#"), token=key)
        self.assertEqual(status, 403, reply)
        status, reply = self.broker.rest("DELETE", "/mqtt/messages/u1/tmp/r", token=key)
        self.assertEqual(status, 200, reply)
        status, reply = self.broker.rest("GET", "/mqtt/messages/" + q("#"))
        self.assertEqual([m["topic"] for m in reply["result"]], ["u2/r"])
        # Everything else stays master-only.
        for method, path in (("GET", "/platform/tokens/all"), ("GET", "/mqtt/sessions/all"),
                             ("GET", "/metrics"), ("POST", "/platform/tokens")):
            status, reply = self.broker.rest(method, path, token=key)
            self.assertEqual(status, 403, (method, path, reply))

    def test_bad_methods_are_400(self):
        for methods, why in ((["FETCH"], "unknown method"), ("GET", "must be an array"),
                             ([1], "must be a string")):
            reply = self.mint({"ttl": 60, "access": {"type": 2, "acl": [
                {"uri": "mqtt", "topic": "a/#", "methods": methods}]}}, status=400)
            self.assertIn(why, reply["errors"][0]["reason"])
        status, reply = self.broker.rest("GET", "/platform/tokens/all")
        self.assertEqual(len(reply["result"]), 1)  # only the master token


if __name__ == "__main__":
    unittest.main()
