"""Persistent sessions and subscriptions created over REST (doc/rest-api.md, "MQTT sessions"):
POST /mqtt/sessions makes a session that collects every message published after the call
answered, before its client first connects and across a broker restart (also a crash: kill -9);
its subscriptions get the intersection with its token's ACL; POST/GET/DELETE
/mqtt/sessions/{sel}/subscriptions[/{filters}]; bad requests get 400/403/404/409 and change
nothing."""
import shutil
import signal
import tempfile
import unittest

from broker import Broker, wait_until
from mqtt_raw import RawClient
import test_token_sessions as ts  # a module, so its test cases are not run again here


def acl_token(*topics):
    return {"info": "storage", "ttl": 3600,
            "access": {"type": 2, "acl": [{"uri": "mqtt", "topic": t, "actions": ["subscribe"]}
                                          for t in topics]}}


class RestSessions(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="ringmq-rest-sessions-")
        self.b = Broker("--durability", "sync", data_dir=self.dir)

    def tearDown(self):
        self.b.stop(keep_data=True)
        shutil.rmtree(self.dir, ignore_errors=True)

    def restart(self, sig=signal.SIGTERM):
        self.b.stop(sig=sig, keep_data=True)
        self.b = Broker("--durability", "sync", data_dir=self.dir)  # tokens (pub_key) persist

    # The storage service's helpers of the ownership tests: a standard-token publisher whose QoS 1
    # PUBLISHes are each acknowledged (durable with durability = sync), reading QoS 1 deliveries.
    mint = ts.TokenSessions.mint
    publish = ts.TokenSessions.publish
    receive = ts.TokenSessions.receive
    nothing_more = ts.TokenSessions.nothing_more

    def sessions(self, sel="all"):
        status, reply = self.b.rest("GET", "/mqtt/sessions/" + sel)
        self.assertEqual(status, 200, reply)
        return reply["result"]

    def subscriptions(self, sel):
        status, reply = self.b.rest("GET", "/mqtt/sessions/%s/subscriptions" % sel)
        self.assertEqual(status, 200, reply)
        return sorted((s["client_id"], s["topic"], s["effective"][0] if s["effective"] else None)
                      for s in reply["result"])

    def create(self, body, status=200):
        got, reply = self.b.rest("POST", "/mqtt/sessions", body)
        self.assertEqual(got, status, reply)
        return reply

    # --- the storage service's use case ---

    def test_session_collects_before_first_connect_and_across_a_crash(self):
        t = self.mint(acl_token("data/a/#"))
        reply = self.create({"client_id": "storage", "expiry_interval": 3600, "token_id": t["id"],
                             "clean": False, "subscriptions": [{"topic": "#", "qos": 1}]})
        s = reply["result"][0]
        self.assertEqual((s["client_id"], s["connected"], s["clean"], s["expiry_interval"],
                          s["token_id"], s["subscriptions"]),
                         ("storage", False, False, 3600, t["id"], 1))
        # The ACL intersection, as an MQTT SUBSCRIBE of '#' would get.
        self.assertEqual(self.subscriptions("storage"), [("storage", "#", "data/a/#")])
        # Published right after the answer: nothing is missed, nothing outside the ACL is kept.
        self.publish(["data/a/1", "data/b/1", "data/a/2"])
        self.assertTrue(wait_until(lambda: self.sessions("storage")[0]["queued"] == 2))
        self.restart(signal.SIGKILL)  # acknowledged means durable, the session's records too
        self.assertEqual(self.subscriptions("storage"), [("storage", "#", "data/a/#")])
        self.publish(["data/a/3"])
        c = RawClient(self.b).connect("storage", clean=False, username=t["key"],
                                      SessionExpiryInterval=3600)
        self.assertEqual(c.session_present, 1)
        self.assertEqual(self.receive(c, 3), ["data/a/1", "data/a/2", "data/a/3"])
        self.nothing_more(c)
        c.close()

    def test_an_mqtt_311_client_resumes_it_and_other_tokens_may_not(self):
        t = self.mint(acl_token("data/#"))
        other = self.mint(acl_token("data/#"))
        self.create([{"client_id": "s1", "expiry_interval": 60, "token_id": t["id"],
                      "subscriptions": [{"topic": "data/x", "qos": 1}]},
                     {"client_id": "s2", "expiry_interval": 60, "token_id": t["id"]}])
        self.assertEqual(sorted(s["client_id"] for s in self.sessions()), ["s1", "s2"])
        self.publish(["data/x"])
        refused = RawClient(self.b, version=4).connect("s1", clean=False, username=other["key"],
                                                       check=False)
        self.assertEqual(refused.reason, 2)  # identifier rejected: the session is t's
        c = RawClient(self.b, version=4).connect("s1", clean=False, username=t["key"])
        self.assertEqual(c.session_present, 1)
        self.assertEqual(self.receive(c, 1), ["data/x"])
        c.close()

    def test_subscriptions_endpoints(self):
        t = self.mint(acl_token("data/a/#", "cmd/#"))
        self.create({"client_id": "svc", "expiry_interval": 600, "token_id": t["id"]})
        status, reply = self.b.rest("POST", "/mqtt/sessions/svc/subscriptions",
                                    [{"topic": "data/#", "qos": 1, "subscription_id": 7},
                                     {"topic": "cmd/+", "qos": 1, "retain_handling": 2}])
        self.assertEqual(status, 200, reply)
        self.assertEqual([(s["topic"], s["effective"]) for s in reply["result"]],
                         [("data/#", ["data/a/#"]), ("cmd/+", ["cmd/+"])])
        self.assertEqual(self.subscriptions("svc"),
                         [("svc", "cmd/+", "cmd/+"), ("svc", "data/#", "data/a/#")])
        status, reply = self.b.rest("GET", "/mqtt/sessions/svc/subscriptions/data%2F%23")
        self.assertEqual((status, [s["topic"] for s in reply["result"]]), (200, ["data/#"]))
        self.assertEqual(reply["result"][0]["subscription_id"], 7)
        status, reply = self.b.rest("DELETE", "/mqtt/sessions/svc/subscriptions/data%2F%23")
        self.assertEqual((status, [s["topic"] for s in reply["result"]]), (200, ["data/#"]),
                         reply)
        self.assertEqual(self.subscriptions("svc"), [("svc", "cmd/+", "cmd/+")])
        self.publish(["data/a/1", "cmd/go"])  # data/a/1: no subscription any more
        self.assertTrue(wait_until(lambda: self.sessions("svc")[0]["queued"] == 1))
        self.restart()
        self.assertEqual(self.subscriptions("svc"), [("svc", "cmd/+", "cmd/+")])
        # A subscription added to a restored session whose client never connected still gets
        # its owner's ACL.
        status, reply = self.b.rest("POST", "/mqtt/sessions/svc/subscriptions", {"topic": "#"})
        self.assertEqual(status, 200, reply)
        self.assertEqual(self.subscriptions("svc"),
                         [("svc", "#", "data/a/#"), ("svc", "cmd/+", "cmd/+")])
        status, reply = self.b.rest("DELETE", "/mqtt/sessions/svc/subscriptions")
        self.assertEqual(status, 200, reply)
        self.assertEqual(self.subscriptions("svc"), [])
        # Over a live connection: the subscription routes to it at once.
        c = RawClient(self.b).connect("svc", clean=False, username=t["key"],
                                      SessionExpiryInterval=600)
        self.assertEqual(self.receive(c, 1), ["cmd/go"])
        status, reply = self.b.rest("POST", "/mqtt/sessions/svc/subscriptions",
                                    {"topic": "cmd/x", "qos": 1})
        self.assertEqual(status, 200, reply)
        self.publish(["cmd/x"])
        self.assertEqual(self.receive(c, 1), ["cmd/x"])
        c.close()

    # --- bad input changes nothing ---

    def test_bad_session_requests_change_nothing(self):
        t = self.mint(acl_token("data/a/#"))
        disabled = self.mint(dict(acl_token("data/#"), enabled=False))
        self.create({"client_id": "taken", "expiry_interval": 60, "token_id": t["id"]})
        ok = {"client_id": "new", "expiry_interval": 60, "token_id": t["id"]}
        cases = [
            (400, {"client_id": "", "expiry_interval": 60, "token_id": t["id"]}),
            (400, {"expiry_interval": 60, "token_id": t["id"]}),
            (400, {"client_id": "x", "token_id": t["id"]}),
            (400, {"client_id": "x", "expiry_interval": 0, "token_id": t["id"]}),
            (400, {"client_id": "x", "expiry_interval": 60}),
            (400, {"client_id": "x", "expiry_interval": 60, "token_id": t["id"], "clean": True}),
            (400, {"client_id": "x", "expiry_interval": "60", "token_id": t["id"]}),
            (400, {"client_id": "x", "expiry_interval": 60, "token_id": t["id"], "color": 1}),
            (400, [ok, ok]),
            (400, []),
            (400, "not json"),
            (400, dict(ok, subscriptions=[{"topic": "a/#/b"}])),
            (400, dict(ok, subscriptions=[{"topic": "a", "qos": 3}])),
            (400, dict(ok, subscriptions=[{"topic": "$share/g/a", "no_local": True}])),
            (400, dict(ok, subscriptions=[{"topic": "a"}, {"topic": "a"}])),
            (403, dict(ok, subscriptions=[{"topic": "data/b/#"}])),
            (404, dict(ok, token_id=999)),
            (409, dict(ok, token_id=disabled["id"])),
            (409, [ok, {"client_id": "taken", "expiry_interval": 60, "token_id": t["id"]}]),
        ]
        for status, body in cases:
            with self.subTest(body=body):
                if body == "not json":
                    got, reply = self.b.rest("POST", "/mqtt/sessions", None)
                else:
                    got, reply = self.b.rest("POST", "/mqtt/sessions", body)
                self.assertEqual(got, status, reply)
                self.assertTrue(reply["errors"][0]["reason"], reply)
                self.assertEqual([s["client_id"] for s in self.sessions()], ["taken"])
                self.assertEqual(self.subscriptions("all"), [])
        self.assertEqual(self.b.rest("GET", "/mqtt/sessions")[0], 405)

    def test_bad_subscription_requests_change_nothing(self):
        t = self.mint(acl_token("data/a/#"))
        self.create({"client_id": "svc", "expiry_interval": 60, "token_id": t["id"],
                     "subscriptions": [{"topic": "data/a/1"}]})
        before = self.subscriptions("all")
        cases = [
            ("POST", "/mqtt/sessions/svc/subscriptions", {"topic": "a/#/b"}, 400),
            ("POST", "/mqtt/sessions/svc/subscriptions", {"qos": 1}, 400),
            ("POST", "/mqtt/sessions/svc/subscriptions", {"topic": "a", "retain_handling": 3},
             400),
            ("POST", "/mqtt/sessions/svc/subscriptions", {"topic": "a", "subscription_id": -1},
             400),
            ("POST", "/mqtt/sessions/svc/subscriptions", [{"topic": "data/a/2"},
                                                          {"topic": "data/b/#"}], 403),
            ("POST", "/mqtt/sessions/nobody/subscriptions", {"topic": "data/a/2"}, 404),
            ("POST", "/mqtt/sessions/svc/subscriptions/x", {"topic": "data/a/2"}, 405),
            ("DELETE", "/mqtt/sessions/svc/subscriptions/a%2F%23%2Fb", None, 400),
            ("GET", "/mqtt/sessions/svc/subscriptions/%zz", None, 400),
            ("GET", "/mqtt/sessions/svc/subscriptions/a/b", None, 404),
        ]
        for method, path, body, status in cases:
            with self.subTest(method=method, path=path, body=body):
                got, reply = self.b.rest(method, path, body)
                self.assertEqual(got, status, reply)
                self.assertEqual(self.subscriptions("all"), before)
        # A filter that matches nothing deletes nothing.
        status, reply = self.b.rest("DELETE", "/mqtt/sessions/svc/subscriptions/data%2Fb")
        self.assertEqual((status, reply["result"]), (200, []))
        self.assertEqual(self.subscriptions("all"), before)
        self.assertTrue(self.b.wait_log("REST API", "created"))


if __name__ == "__main__":
    unittest.main()
