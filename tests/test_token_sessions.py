"""Sessions and the tokens that own them: a session belongs to the token that created it (another
token or an anonymous client cannot resume it, clean it or take over its connection; a master
token can; the owner's deletion discards it; ownership survives a restart), and narrowing a
token's ACL drops what its sessions hold and the new ACL does not allow (live and offline, also
across a restart)."""
import shutil
import signal
import tempfile
import unittest

from broker import Broker, wait_until
from mqtt_raw import RawClient

REFUSED = {5: 0x85, 4: 2}  # Client Identifier not valid / 3.1.1 identifier rejected


def acl_token(*topics, ttl=3600):
    return {"info": "user", "ttl": ttl,
            "access": {"type": 2, "acl": [{"uri": "mqtt", "topic": t, "actions": ["subscribe"]}
                                          for t in topics]}}


def persistent(version):
    return {} if version == 4 else {"SessionExpiryInterval": 3600}


class TokenSessions(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="ringmq-owner-")
        self.brokers = []
        self.b = self.start()

    def tearDown(self):
        for b in self.brokers:
            self.assertEqual(b.stop(keep_data=True), 0)
        shutil.rmtree(self.dir, ignore_errors=True)

    def start(self, *extra):
        b = Broker("--durability", "sync", *extra, data_dir=self.dir)
        self.brokers.append(b)
        return b

    def mint(self, body):
        status, reply = self.b.rest("POST", "/platform/tokens", body)
        self.assertEqual(status, 200, reply)
        return reply["result"][0]

    def session(self, client_id):
        status, reply = self.b.rest("GET", "/mqtt/sessions/" + client_id)
        if status != 200 or not reply["result"]:
            return None
        return reply["result"][0]

    def offline(self, client_id):
        self.assertTrue(wait_until(lambda: (self.session(client_id) or {}).get("connected")
                                   is False), self.session(client_id))

    def metric(self, name, reason=None):
        status, text = self.b.rest("GET", "/metrics")
        self.assertEqual(status, 200, text)
        total = 0
        for line in text.splitlines():
            if line.split("{", 1)[0] != name:
                continue
            if reason is not None and 'reason="%s"' % reason not in line:
                continue
            total += int(line.rsplit(" ", 1)[1])
        return total

    def publish(self, topics):
        """QoS 1 from a standard token, each acknowledged."""
        if not hasattr(self, "pub_key"):
            self.pub_key = self.mint({"info": "telemetry", "ttl": 3600,
                                      "access": {"type": 0}})["key"]
        p = RawClient(self.b).connect("telemetry", username=self.pub_key)
        for i, t in enumerate(topics):
            p.publish(t, t.encode(), qos=1, pid=i + 1)
            self.assertEqual(p.recv_packet().type, 4)
        p.close()

    def barrier(self, client_id):
        """Returns once every record the home shard of `client_id` logged so far is durable: a
        QoS 1 message for a persistent session on that shard is acknowledged (durability = sync)
        after its record, which comes after them in the log. Not one for `client_id` itself: its
        delivery would log what that session finished with."""
        shard = self.session(client_id)["shard"]
        for i in range(256):
            cid = "barrier-%d" % i
            c = RawClient(self.b).connect(cid, clean=False, SessionExpiryInterval=3600)
            self.assertEqual(c.subscribe("barrier/" + cid, opts=1), [1])
            c.close()
            if self.session(cid)["shard"] == shard:
                self.publish(["barrier/" + cid])
                return
        self.fail("no client id homed on shard %d" % shard)

    def receive(self, c, n):
        """n QoS 1 PUBLISHes, each acknowledged; their topics."""
        topics = []
        for _ in range(n):
            topic, _, qos, pid, _ = c.parse_publish(c.recv_packet())
            self.assertEqual(qos, 1)
            c.puback(pid)
            topics.append(topic)
        return topics

    def nothing_more(self, c):
        with self.assertRaises(OSError):
            c.recv_packet(timeout=0.5)

    def leave_victim(self, key, version=5):
        """Token `key` leaves a persistent session "victim" subscribed to data/# with 3 queued."""
        a = RawClient(self.b, version=version).connect("victim", clean=False, username=key,
                                                       **persistent(version))
        self.assertEqual(a.subscribe("data/#", opts=1), [1])
        a.close()
        self.offline("victim")
        self.publish(["data/a/1", "data/a/2", "data/a/3"])
        self.assertTrue(wait_until(lambda: self.session("victim")["queued"] == 3))

    def refused(self, version, clean, username):
        c = RawClient(self.b, version=version)
        c.connect("victim", clean=clean, username=username, check=False, **persistent(version))
        self.assertEqual(c.reason, REFUSED[version], (version, clean, username))
        self.assertTrue(c.closed())

    # --- B: a session belongs to its token ---

    def test_other_token_and_anonymous_cannot_use_a_session(self):
        for version in (5, 4):
            with self.subTest(version=version):
                a = self.mint(acl_token("data/a/#"))
                b = self.mint(acl_token("data/b/#"))
                self.leave_victim(a["key"], version)
                for v in (5, 4):
                    for clean in (False, True):
                        self.refused(v, clean, b["key"])
                        self.refused(v, clean, None)  # anonymous
                self.assertEqual(self.session("victim")["queued"], 3)
                self.assertEqual(self.session("victim")["token_id"], a["id"])
                self.assertTrue(wait_until(lambda: any(
                    "connect refused" in line and "another token's session" in line
                    for line in self.b.err_lines)))
                back = RawClient(self.b, version=version).connect(
                    "victim", clean=False, username=a["key"], **persistent(version))
                self.assertEqual(back.session_present, 1)
                self.assertEqual(self.receive(back, 3), ["data/a/1", "data/a/2", "data/a/3"])
                # Clean start 1 by another token does not kick the owner's live connection.
                self.refused(5, True, b["key"])
                self.refused(4, True, None)
                self.publish(["data/a/4"])
                self.assertEqual(self.receive(back, 1), ["data/a/4"])
                back.close()
                self.assertEqual(self.b.rest("DELETE", "/mqtt/sessions/victim")[0], 200)
                self.assertTrue(wait_until(lambda: self.session("victim") is None))

    def test_master_token_may_take_over(self):
        a = self.mint(acl_token("data/a/#"))
        self.leave_victim(a["key"])
        live = RawClient(self.b).connect("victim", clean=False, username=a["key"],
                                         SessionExpiryInterval=3600)
        self.assertEqual(self.receive(live, 3), ["data/a/1", "data/a/2", "data/a/3"])
        self.publish(["data/a/5"])  # in flight to `live`, not acknowledged
        live.parse_publish(live.recv_packet())
        m = RawClient(self.b).connect("victim", clean=False, username=self.b.master_token,
                                      SessionExpiryInterval=3600)
        self.assertEqual(m.session_present, 1)
        pkt = live.recv_packet()
        self.assertEqual((pkt.type, pkt.body[0]), (14, 0x8E))  # Session taken over
        topic, _, _, _, _ = m.parse_publish(m.recv_packet())  # resent to the master's client
        self.assertEqual(topic, "data/a/5")
        # The session is the master token's now.
        self.refused(5, False, a["key"])

    def test_deleting_the_owner_discards_its_sessions(self):
        a = self.mint(acl_token("data/a/#"))
        b = self.mint(acl_token("data/b/#", "data/a/#"))
        self.leave_victim(a["key"])
        status, reply = self.b.rest("DELETE", "/platform/tokens/%d" % a["id"])
        self.assertEqual(status, 200, reply)
        self.assertTrue(wait_until(lambda: self.session("victim") is None))
        c = RawClient(self.b).connect("victim", clean=False, username=b["key"],
                                      SessionExpiryInterval=3600)
        self.assertEqual(c.session_present, 0)
        self.nothing_more(c)

    def test_ownership_survives_a_restart(self):
        a = self.mint(acl_token("data/a/#"))
        b = self.mint(acl_token("data/b/#"))
        self.leave_victim(a["key"])
        self.assertEqual(self.b.stop(keep_data=True), 0)
        self.b = self.start()
        self.assertEqual(self.session("victim")["token_id"], a["id"])
        self.refused(5, False, b["key"])
        self.refused(4, True, None)
        back = RawClient(self.b).connect("victim", clean=False, username=a["key"],
                                         SessionExpiryInterval=3600)
        self.assertEqual(back.session_present, 1)
        self.assertEqual(self.receive(back, 3), ["data/a/1", "data/a/2", "data/a/3"])

    # --- C: narrowing an ACL filters what sessions hold ---

    TOPICS = ["data/u4/%s/%d" % ("keep" if i % 3 == 0 else "drop", i) for i in range(30)]
    KEPT = [t for t in TOPICS if "/keep/" in t]

    def narrow(self, token, expect_dropped):
        status, reply = self.b.rest("PATCH", "/platform/tokens/%d" % token["id"],
                                    {"access": {"type": 2, "acl": [
                                        {"uri": "mqtt", "topic": "data/u4/keep/#",
                                         "actions": ["subscribe"]}]}})
        self.assertEqual(status, 200, reply)
        self.assertTrue(wait_until(lambda: self.metric("ringmq_dropped_total", "acl")
                                   == expect_dropped), self.metric("ringmq_dropped_total", "acl"))

    def test_narrowed_acl_drops_what_a_live_session_holds(self):
        u = self.mint(acl_token("data/u4/#"))
        c = RawClient(self.b).connect("u4", username=u["key"], ReceiveMaximum=1)
        self.assertEqual(c.subscribe("#", opts=1), [1])
        self.publish(self.TOPICS)
        first, _, _, pid, _ = c.parse_publish(c.recv_packet())  # in flight, not acknowledged
        self.assertEqual(first, self.TOPICS[0])
        self.assertTrue(wait_until(lambda: self.metric("ringmq_queued_messages") == 29))
        self.narrow(u, 20)
        self.assertEqual(self.metric("ringmq_queued_messages"), 9)
        c.puback(pid)
        self.assertEqual(self.receive(c, 9), self.KEPT[1:])
        self.nothing_more(c)

    def test_narrowed_acl_drops_what_an_offline_session_holds_also_after_restart(self):
        u = self.mint(acl_token("data/u4/#"))
        c = RawClient(self.b).connect("u4", clean=False, username=u["key"],
                                      SessionExpiryInterval=3600)
        self.assertEqual(c.subscribe("#", opts=1), [1])
        c.close()
        self.offline("u4")
        self.publish(self.TOPICS)
        self.assertTrue(wait_until(lambda: self.session("u4")["queued"] == 30))
        self.narrow(u, 20)
        self.assertEqual(self.session("u4")["queued"], 10)
        # The drops are on disk once a later record of that shard's log is; a SIGKILL then
        # replays the log (no shutdown snapshot).
        self.barrier("u4")
        self.b.proc.send_signal(signal.SIGKILL)
        self.b.stop(keep_data=True)
        self.brokers.remove(self.b)
        self.b = self.start()
        # Replayed without the dropped ones (not only filtered again when the owner connects).
        self.assertEqual(self.session("u4")["queued"], 10)
        back = RawClient(self.b).connect("u4", clean=False, username=u["key"],
                                         SessionExpiryInterval=3600)
        self.assertEqual(back.session_present, 1)
        self.assertEqual(self.receive(back, 10), self.KEPT)
        self.nothing_more(back)


if __name__ == "__main__":
    unittest.main()
