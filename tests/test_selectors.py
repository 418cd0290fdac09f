"""Selectors and paging on the real broker, from flespi's documented examples: `info=user*` and
{expression} selectors on GET/PUT/DELETE of tokens, sessions selected by their fields, retained
messages by expression; limit/offset with a pagination object over 250 tokens. Bad selectors,
deep expressions, huge limits, negative offsets and unknown parameters are 400 and change
nothing (read back)."""
import unittest
from urllib.parse import quote

from broker import BrokerTest
from mqtt_raw import RawClient


def q(sel):
    """A selector as a path segment: everything percent-encoded but the commas that separate its
    parts (a %2C is a comma inside an id or a value)."""
    return quote(sel, safe=",")


class Selectors(BrokerTest):
    def mint(self, tokens):
        status, body = self.broker.rest("POST", "/platform/tokens", tokens)
        self.assertEqual(status, 200, body)
        return body["result"]

    def get(self, path):
        status, body = self.broker.rest("GET", path)
        self.assertEqual(status, 200, body)
        return body

    def tokens(self):
        """Every token as the store holds it now, by id, but `accessed` (each call refreshes the
        master token's)."""
        tokens = self.get("/platform/tokens/all")["result"]
        return {t["id"]: {k: v for k, v in t.items() if k != "accessed"} for t in tokens}

    def refused(self, method, path, body=None, want="selector: "):
        status, answer = self.broker.rest(method, path, body)
        self.assertEqual(status, 400, (path, answer))
        reason = answer["errors"][0]["reason"]
        self.assertIn(want, reason, path)
        return reason


class TokenSelectors(Selectors):
    def setUp(self):
        super().setUp()
        made = self.mint([{"info": "user %d" % i, "ttl": 3600, "metadata": {"user_id": i}}
                          for i in range(1, 6)] +
                         [{"info": "service", "ttl": 3600, "metadata": {"user_id": 42}}])
        self.ids = {t["info"]: t["id"] for t in made}

    def infos(self, sel, method="GET", body=None):
        status, answer = self.broker.rest(method, "/platform/tokens/" + q(sel), body)
        self.assertEqual(status, 200, answer)
        return [t.get("info", t["id"]) for t in answer["result"]]

    def test_field_wildcards_and_expressions_select_on_get(self):
        self.assertEqual(self.infos("info=user*"), ["user %d" % i for i in range(1, 6)])
        self.assertEqual(self.infos("info=user ?,metadata.user_id=3"), ["user 3"])
        self.assertEqual(self.infos('{info=="user 42" || metadata.user_id==42}'), ["service"])
        self.assertEqual(self.infos('{info=="user*" && metadata.user_id>=4}'),
                         ["user 4", "user 5"])
        self.assertEqual(self.infos('{!(info=="user*") && enabled==true && key!=null}'),
                         ["master (created at first start)", "service"])
        # A search that matches nothing is an empty answer, an id that does not exist a 404.
        self.assertEqual(self.infos("info=nobody*"), [])
        self.assertEqual(self.broker.rest("GET", "/platform/tokens/999999")[0], 404)

    def test_put_and_delete_change_exactly_the_selected_tokens(self):
        before = self.tokens()
        changed = self.infos('{metadata.user_id<=2}', "PUT", {"info": "renamed", "ttl": 3600})
        self.assertEqual(changed, ["renamed", "renamed"])
        after = self.tokens()
        for i in (1, 2):
            self.assertEqual(after[self.ids["user %d" % i]]["info"], "renamed")
        for name in ("user 3", "user 4", "user 5", "service"):
            self.assertEqual(after[self.ids[name]], before[self.ids[name]])
        status, answer = self.broker.rest("DELETE", "/platform/tokens/" + q("info=user*"))
        self.assertEqual(status, 200, answer)
        self.assertEqual(sorted(t["id"] for t in answer["result"]),
                         sorted(self.ids["user %d" % i] for i in (3, 4, 5)))
        self.assertEqual(sorted(t["info"] for t in self.tokens().values()),
                         ["master (created at first start)", "renamed", "renamed", "service"])

    def test_bad_selectors_are_400_with_the_offset_and_change_nothing(self):
        before = self.tokens()
        cases = {
            '{(info=="a" || id==1}': "selector: expected ')' at 20",
            '{info="a"}': "expected '=='",
            '{info=="a}': "unterminated string",
            "{id==1 &&}": "at 9",
            "{}": "at 1",
            "1,x": "at 2",
            "info=a,9=b": "expected a field name at 7",
            "{" + "(" * 40 + "id==1" + ")" * 40 + "}": "nesting deeper than 32",
            "{" + "!" * 1000 + "id}": "nesting deeper than 32",
            "{" + "||".join(["id==1"] * 1000) + "}": "longer than 4096 bytes",
        }
        for sel, want in cases.items():
            for method, body in (("GET", None), ("PUT", {"info": "x"}), ("PATCH", {"info": "x"}),
                                 ("DELETE", None)):
                self.refused(method, "/platform/tokens/" + q(sel), body, want)
        self.refused("GET", "/platform/tokens/%zz", None, "percent-encoding")
        self.assertEqual(self.tokens(), before)
        # Each was logged with its status.
        self.assertTrue(self.broker.wait_log("request", "path=/platform/tokens/%7B%7D",
                                             "status=400", count=4))


class Pagination(Selectors):
    def test_pages_over_250_tokens_are_stable_and_complete(self):
        made = self.mint([{"info": "bulk %03d" % i, "ttl": 3600} for i in range(250)])
        want = sorted(t["id"] for t in made)
        seen = []
        for offset in range(0, 250, 100):
            body = self.get("/platform/tokens/%s?limit=100&offset=%d&fields=id,info"
                            % (q("info=bulk*"), offset))
            self.assertEqual(body["pagination"], {"limit": 100, "offset": offset, "count": 250})
            self.assertEqual(len(body["result"]), min(100, 250 - offset))
            seen += [t["id"] for t in body["result"]]
        self.assertEqual(seen, want)  # in id order, each once
        body = self.get("/platform/tokens/all?offset=249")
        self.assertEqual(body["pagination"], {"limit": 1000, "offset": 249, "count": 251})
        self.assertEqual([t["id"] for t in body["result"]], want[-2:])  # the master comes first
        body = self.get("/platform/tokens/all?limit=5&offset=5000")
        self.assertEqual((body["result"], body["pagination"]["count"]), ([], 251))
        self.assertNotIn("pagination", self.get("/platform/tokens/all"))

    def test_bad_paging_and_unknown_parameters_are_400_and_change_nothing(self):
        self.mint([{"info": "keep", "ttl": 3600}])
        before = self.tokens()
        for query, want in (("limit=0", "limit: must be an integer from 1 to 1000"),
                            ("limit=1001", "from 1 to 1000"),
                            ("limit=99999999999999999999", "from 1 to 1000"),
                            ("limit=abc", "from 1 to 1000"),
                            ("limit=-5", "from 1 to 1000"),
                            ("offset=-1", "offset: must be an integer from 0 to 1000000000"),
                            ("offset=1.5", "offset: must be"),
                            ("limit=1&limit=2", "given twice"),
                            ("page=2", 'unknown parameter "page"')):
            self.refused("GET", "/platform/tokens/all?" + query, want=want)
            self.refused("GET", "/mqtt/sessions/all?" + query, want=want)
            self.refused("GET", "/mqtt/messages/%23?" + query, want=want)
            self.refused("GET", "/mqtt/sessions/all/subscriptions?" + query, want=want)
        # Paging is for lists: elsewhere limit is as unknown as any other name.
        self.refused("DELETE", "/platform/tokens/all?limit=1", want='unknown parameter "limit"')
        self.refused("PUT", "/platform/tokens/all?offset=0", {"info": "x"}, "unknown parameter")
        self.refused("POST", "/platform/tokens?limit=1", {"ttl": 60}, "unknown parameter")
        self.refused("DELETE", "/mqtt/sessions/all?force=1", want="unknown parameter")
        self.refused("POST", "/mqtt/messages?x=1", {"topic": "t"}, "unknown parameter")
        self.assertEqual(self.tokens(), before)
        # The parameters that were accepted before still are.
        self.assertEqual(self.broker.rest("GET", "/platform/tokens/all?fields=id")[0], 200)


class SessionAndMessageSelectors(Selectors):
    def session_ids(self, sel, suffix=""):
        body = self.get("/mqtt/sessions/" + q(sel) + suffix)
        return [s["client_id"] for s in body["result"]], body

    def test_sessions_by_token_connected_and_client_id(self):
        a, b = self.mint([{"info": "sensor A", "ttl": 3600, "access": {"type": 0}},
                          {"info": "sensor B", "ttl": 3600, "access": {"type": 0}}])
        for cid, key in (("s-a2", a["key"]), ("s-a1", a["key"]), ("s-b1", b["key"])):
            c = RawClient(self.broker).connect(cid, clean=False, username=key,
                                               SessionExpiryInterval=3600)
            self.assertEqual(c.subscribe("data/" + cid + "/#", opts=1), [1])
            c.close()
        live = RawClient(self.broker).connect("live", username=b["key"])
        self.addCleanup(live.close)
        self.assertEqual(self.session_ids("token_id=%d" % a["id"])[0], ["s-a1", "s-a2"])
        self.assertEqual(self.session_ids("{connected==true}")[0], ["live"])
        self.assertEqual(self.session_ids("{token_id==%d && !connected}" % b["id"])[0], ["s-b1"])
        ids, body = self.session_ids("client_id=s-*", "?limit=2&offset=1")
        self.assertEqual(ids, ["s-a2", "s-b1"])
        self.assertEqual(body["pagination"], {"limit": 2, "offset": 1, "count": 3})
        subs = self.get("/mqtt/sessions/%s/subscriptions" % q("{token_id==%d}" % a["id"]))
        self.assertEqual([(s["client_id"], s["topic"]) for s in subs["result"]],
                         [("s-a1", "data/s-a1/#"), ("s-a2", "data/s-a2/#")])
        # Bad selectors delete nothing.
        for sel in ("{token_id==}", "{connected", "client_id=s-*,=x"):
            self.refused("DELETE", "/mqtt/sessions/" + q(sel))
        self.assertEqual(self.session_ids("all")[0], ["live", "s-a1", "s-a2", "s-b1"])
        status, answer = self.broker.rest(
            "DELETE", "/mqtt/sessions/" + q("{token_id==%d && connected==false}" % a["id"]))
        self.assertEqual(status, 200, answer)
        self.assertEqual([s["client_id"] for s in answer["result"]], ["s-a1", "s-a2"])
        self.assertEqual(self.session_ids("all")[0], ["live", "s-b1"])
        # Client ids as a list, each part percent-encoded, still work; %2C is inside an id.
        self.assertEqual(self.session_ids("s-b1,nope")[0], ["s-b1"])
        self.assertEqual(self.get("/mqtt/sessions/s-b1%2Cnope")["result"], [])

    def test_retained_messages_by_expression_and_paged(self):
        status, answer = self.broker.rest("POST", "/mqtt/messages", [
            {"topic": "a/1", "payload": "x", "retain": True},
            {"topic": "a/2", "payload": "y", "qos": 1, "retain": True},
            {"topic": "b/1", "payload": "z", "qos": 1, "retain": True}])
        self.assertEqual(status, 200, answer)
        topics = lambda body: [m["topic"] for m in body["result"]]
        self.assertEqual(topics(self.get("/mqtt/messages/" + q("{qos==1}"))), ["a/2", "b/1"])
        body = self.get("/mqtt/messages/%23?limit=1&offset=1")
        self.assertEqual((topics(body), body["pagination"]["count"]), (["a/2"], 3))
        self.refused("DELETE", "/mqtt/messages/" + q('{topic=="a/*" &&}'))
        self.assertEqual(topics(self.get("/mqtt/messages/%23")), ["a/1", "a/2", "b/1"])
        status, answer = self.broker.rest(
            "DELETE", "/mqtt/messages/" + q('{topic=="a/*" && qos==1}'))
        self.assertEqual((status, topics(answer)), (200, ["a/2"]))
        self.assertEqual(topics(self.get("/mqtt/messages/%23")), ["a/1", "b/1"])


if __name__ == "__main__":
    unittest.main()
