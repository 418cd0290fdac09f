"""Observability: /metrics parsed with Debian's python3-prometheus-client and checked against the
traffic a test sent, and the log settings (JSON lines, per-subsystem levels, SIGHUP reload)."""
import json
import os
import signal
import tempfile
import time
import unittest

import paho.mqtt.client as mqtt
from prometheus_client.parser import text_string_to_metric_families

from broker import SHARDS, TIMEOUT, Broker, BrokerTest, Client, wait_until
from mqtt_raw import varint

RING_CAPACITY = 1024  # broker/broker.h kShardRingCapacity


def scrape(broker):
    status, text = broker.rest("GET", "/metrics")
    if status != 200:
        raise AssertionError("GET /metrics: %s %r" % (status, text))
    return text


def families(text):
    """{family name: Metric}; fails when a family appears twice or a sample has no family (what
    the parser makes of samples that are not grouped under their HELP/TYPE lines)."""
    out = {}
    for f in text_string_to_metric_families(text):
        if f.name in out:
            raise AssertionError("family %s appears twice" % f.name)
        if f.type == "untyped":
            raise AssertionError("sample %s outside its family" % f.name)
        out[f.name] = f
    return out


def total(text, sample, **labels):
    """The sum of the samples named `sample` whose labels include `labels`."""
    value = 0
    for f in text_string_to_metric_families(text):
        for s in f.samples:
            if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items()):
                value += s.value
    return value


def wait_for(broker, sample, expected, **labels):
    """Scrapes until the total of `sample` equals `expected` (or TIMEOUT); returns the last value."""
    end = time.time() + TIMEOUT
    while True:
        value = total(scrape(broker), sample, **labels)
        if value == expected or time.time() > end:
            return value
        time.sleep(0.05)


def remaining(n):
    """Bytes of an MQTT packet whose remaining length is n."""
    return 1 + len(varint(n)) + n


class Metrics(BrokerTest):
    def setUp(self):
        # No $SYS messages: they would count as retained messages and WAL records.
        self.broker = Broker("--sys-interval", "0")
        self.clients = []

    def check_histogram(self, fam, shards):
        by_shard = {}
        for s in fam.samples:
            by_shard.setdefault(s.labels["shard"], []).append(s)
        self.assertEqual(sorted(by_shard), [str(i) for i in range(shards)])
        for shard, samples in by_shard.items():
            buckets = [(float(s.labels["le"]), s.value) for s in samples
                       if s.name.endswith("_bucket")]
            count = [s.value for s in samples if s.name.endswith("_count")]
            total_sum = [s.value for s in samples if s.name.endswith("_sum")]
            self.assertEqual(len(buckets), 9, fam.name)
            self.assertEqual(len(count), 1)
            self.assertEqual(len(total_sum), 1)
            self.assertEqual([b[0] for b in buckets], sorted(b[0] for b in buckets))
            self.assertEqual(buckets[-1][0], float("inf"))
            values = [b[1] for b in buckets]
            self.assertEqual(values, sorted(values), "%s shard %s: buckets not cumulative"
                             % (fam.name, shard))
            self.assertEqual(values[-1], count[0], "%s shard %s: +Inf != count" % (fam.name, shard))
            self.assertGreaterEqual(total_sum[0], 0)
        return {shard: [s for s in samples if s.name.endswith("_count")][0].value
                for shard, samples in by_shard.items()}

    def test_exposition_is_well_formed(self):
        self.client("c1").close()
        text = scrape(self.broker)
        fams = families(text)
        for name in ("ringmq_connections", "ringmq_sessions", "ringmq_queued_messages",
                     "ringmq_inflight_messages", "ringmq_messages_in", "ringmq_bytes_in",
                     "ringmq_dropped", "ringmq_cross_shard_ring_messages",
                     "ringmq_cross_shard_outbox_messages", "ringmq_input_pauses",
                     "ringmq_input_paused_seconds", "ringmq_loop_turn_seconds",
                     "ringmq_wal_records", "ringmq_wal_bytes", "ringmq_wal_syncs",
                     "ringmq_wal_fsync_seconds", "ringmq_tokens", "ringmq_rest_requests"):
            self.assertIn(name, fams)
        # One HELP and one TYPE line per family, whatever the number of shards.
        for name, f in fams.items():
            exposed = name + "_total" if f.type == "counter" else name
            self.assertEqual(text.count("# TYPE %s " % exposed), 1, name)
            self.assertEqual(text.count("# HELP %s " % exposed), 1, name)
        self.assertEqual(fams["ringmq_connections"].type, "gauge")
        self.assertEqual(fams["ringmq_loop_turn_seconds"].type, "histogram")
        self.assertEqual(len(fams["ringmq_connections"].samples), SHARDS)
        # Loops have turned on every shard.
        turns = self.check_histogram(fams["ringmq_loop_turn_seconds"], SHARDS)
        self.assertTrue(all(n > 0 for n in turns.values()), turns)
        self.check_histogram(fams["ringmq_wal_fsync_seconds"], SHARDS)
        # A ring and an outbox per ordered pair of shards.
        for fam in ("ringmq_cross_shard_ring_messages", "ringmq_cross_shard_outbox_messages"):
            pairs = {(s.labels["from"], s.labels["to"]): s.value for s in fams[fam].samples}
            self.assertEqual(set(pairs), {(str(a), str(b)) for a in range(SHARDS)
                                          for b in range(SHARDS) if a != b}, fam)
            self.assertTrue(all(0 <= v <= RING_CAPACITY for v in pairs.values()), pairs)

    def test_messages_and_bytes_in_match_the_traffic(self):
        n, topic, payload = 25, "m/t", b"x" * 100
        pub = Client(self.broker, "pub")  # MQTT 3.1.1, clean session, keep alive 60
        for _ in range(n):
            pub.publish(topic, payload)
        pub.close()
        # CONNECT: protocol name, level, flags, keep alive (10 bytes) and the client id.
        connect = remaining(10 + 2 + len("pub"))
        publish = remaining(2 + len(topic) + len(payload))  # QoS 0: no packet id
        disconnect = 2
        expected = connect + n * publish + disconnect
        self.assertEqual(wait_for(self.broker, "ringmq_bytes_in_total", expected), expected)
        text = scrape(self.broker)
        self.assertEqual(total(text, "ringmq_messages_in_total"), n)
        self.assertEqual(total(text, "ringmq_connects_total"), 1)
        self.assertEqual(total(text, "ringmq_messages_out_total"), 0)  # nobody subscribed

    def test_rest_requests_by_method_and_code(self):
        before = scrape(self.broker)
        for _ in range(3):
            status, _ = self.broker.rest("GET", "/platform/tokens/all", token="not-a-token")
            self.assertEqual(status, 401)
        for _ in range(2):
            status, _ = self.broker.rest("GET", "/no/such/endpoint")
            self.assertEqual(status, 404)
        status, _ = self.broker.rest("DELETE", "/platform/tokens/12345")
        self.assertEqual(status, 404)
        after = scrape(self.broker)
        for method, code, k in (("GET", "401", 3), ("GET", "404", 2), ("DELETE", "404", 1)):
            delta = (total(after, "ringmq_rest_requests_total", method=method, code=code) -
                     total(before, "ringmq_rest_requests_total", method=method, code=code))
            self.assertEqual(delta, k, (method, code))
        # The scrape before was answered 200 and is counted by the one after.
        self.assertGreaterEqual(total(after, "ringmq_rest_requests_total", method="GET",
                                      code="200"), 1)

    def test_queue_depth_and_wal_fsyncs_of_an_offline_persistent_session(self):
        syncs_before = total(scrape(self.broker), "ringmq_wal_fsync_seconds_count")
        store = self.client("store", clean=False)
        store.subscribe("q/#", qos=1)
        store.close()
        self.assertTrue(wait_until(
            lambda: total(scrape(self.broker), "ringmq_connections") == 0))
        k = 7
        pub = self.client("qpub")
        for i in range(k):
            pub.publish("q/%d" % i, b"queued", qos=1)  # waits for the PUBACK
        self.assertEqual(wait_for(self.broker, "ringmq_queued_messages", k), k)
        text = scrape(self.broker)
        self.assertEqual(total(text, "ringmq_inflight_messages"), 0)
        self.assertEqual(total(text, "ringmq_sessions"), 2)  # "store" offline, "qpub" online
        # durability = sync: the persistent session's messages were fdatasynced before PUBACK.
        fams = families(text)
        counts = self.check_histogram(fams["ringmq_wal_fsync_seconds"], SHARDS)
        self.assertGreater(sum(counts.values()), syncs_before)
        self.assertEqual(sum(counts.values()), total(text, "ringmq_wal_syncs_total"))
        self.assertGreater(total(text, "ringmq_wal_records_total"), k)
        # Delivered when it comes back: the gauge goes down again.
        back = self.client("store", clean=False)
        for _ in range(k):
            back.recv()
        self.assertEqual(wait_for(self.broker, "ringmq_queued_messages", 0), 0)


def events(broker, msg):
    """The JSON log events with this message."""
    out = []
    for line in list(broker.err_lines):
        try:
            e = json.loads(line)
        except ValueError:
            continue
        if e.get("msg") == msg:
            out.append(e)
    return out


class Logs(unittest.TestCase):
    def test_json_lines_and_connection_events(self):
        b = Broker("--log-format", "json")  # the harness runs at debug: every line is checked
        client_id = 'json "c" \\ é'
        try:
            c = Client(b, client_id, version=mqtt.MQTTv5)
            c.close()
            self.assertTrue(wait_until(lambda: events(b, "client disconnected")))
            status, _ = b.rest("GET", "/no/such/endpoint")  # a rest-subsystem debug line
            self.assertEqual(status, 404)
        finally:
            self.assertEqual(b.stop(), 0)
        self.assertTrue(b.err_lines)
        for line in b.err_lines:
            e = json.loads(line)  # raises on a line that is not JSON
            self.assertIsInstance(e, dict, line)
            for key in ("ts", "level", "subsystem", "msg"):
                self.assertIn(key, e, line)
            self.assertIn(e["level"], ("error", "warn", "info", "debug"), line)
            self.assertIn(e["subsystem"], ("broker", "mqtt", "wal", "rest", "tls"), line)
            self.assertRegex(e["ts"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        connected = [e for e in events(b, "client connected") if e["client_id"] == client_id]
        self.assertEqual(len(connected), 1, b.err_lines)
        e = connected[0]
        self.assertEqual((e["level"], e["subsystem"]), ("info", "mqtt"))
        self.assertTrue(e["peer"].startswith("127.0.0.1:"), e)
        self.assertEqual(e["protocol_version"], 5)
        self.assertIs(e["clean_start"], True)
        self.assertEqual(e["keep_alive"], 60)
        self.assertNotIn("token_id", e)  # anonymous
        gone = [e for e in events(b, "client disconnected") if e["client_id"] == client_id]
        self.assertEqual(len(gone), 1)
        self.assertEqual(gone[0]["peer"], e["peer"])
        self.assertEqual(gone[0]["reason"], "client DISCONNECT")
        requests = [e for e in events(b, "request") if e["subsystem"] == "rest"]
        self.assertIn(("GET", "/no/such/endpoint", 404),
                      [(r["method"], r["path"], r["status"]) for r in requests])

    def test_token_id_and_refused_connect(self):
        b = Broker("--log-format", "json", "--deny-anonymous")
        try:
            status, reply = b.rest("POST", "/platform/tokens", {"info": "logged", "ttl": 3600})
            self.assertEqual(status, 200, reply)
            token = reply["result"][0]
            c = Client(b, "with-token", connect=False)
            c.c.username_pw_set(token["key"])
            c.connect()
            self.assertEqual(c.rc, 0)
            c.close()
            anon = Client(b, "anon", connect=False)
            anon.connect()
            self.assertEqual(anon.rc, 5)  # 3.1.1: not authorized
            anon.c.loop_stop()
            self.assertTrue(wait_until(lambda: events(b, "client disconnected") and
                                       events(b, "connect refused")))
        finally:
            self.assertEqual(b.stop(), 0)
        mine = [e for e in events(b, "client connected") if e["client_id"] == "with-token"]
        self.assertEqual(len(mine), 1)
        self.assertEqual(mine[0]["token_id"], token["id"])
        gone = [e for e in events(b, "client disconnected") if e["client_id"] == "with-token"]
        self.assertEqual(gone[0]["token_id"], token["id"])
        refused = [e for e in events(b, "connect refused") if e["client_id"] == "anon"]
        self.assertEqual(len(refused), 1)
        self.assertEqual(refused[0]["reason_code"], "0x87")
        self.assertTrue(refused[0]["peer"].startswith("127.0.0.1:"))
        # The key itself is never logged.
        self.assertFalse([line for line in b.err_lines if token["key"] in line])

    def connect_event_logged(self, *flags, log_level):
        b = Broker(*flags, log_level=log_level)
        try:
            Client(b, "levels").close()
            status, _ = b.rest("GET", "/healthz")
            self.assertEqual(status, 200)
        finally:
            self.assertEqual(b.stop(), 0)  # after the exit every line is in err_lines
        text = "".join(b.err_lines)
        return "client connected" in text, "ringmq started" in text

    def test_per_subsystem_levels(self):
        mqtt_info, broker_info = self.connect_event_logged(log_level="warn")
        self.assertFalse(mqtt_info)
        self.assertFalse(broker_info)
        mqtt_info, broker_info = self.connect_event_logged("--log-levels", "mqtt=info",
                                                           log_level="warn")
        self.assertTrue(mqtt_info)
        self.assertFalse(broker_info)  # the broker subsystem stays at warn
        mqtt_info, broker_info = self.connect_event_logged("--log-levels", "mqtt=warn,wal=debug",
                                                           log_level="info")
        self.assertFalse(mqtt_info)
        self.assertTrue(broker_info)

    def test_log_settings_reload_on_sighup(self):
        conf = tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False)
        conf.write('log_format = "text"\nlog_levels = "mqtt=warn"\n')
        conf.close()
        b = Broker("--config", conf.name, log_level="info")
        try:
            Client(b, "before").close()
            with open(conf.name, "w") as f:
                f.write('log_format = "json"\nlog_levels = "mqtt=info"\n')
            b.proc.send_signal(signal.SIGHUP)
            self.assertTrue(wait_until(lambda: any("configuration reloaded" in line
                                                   for line in b.err_lines)))
            Client(b, "after").close()
            self.assertTrue(wait_until(lambda: events(b, "client disconnected")))
            # An invalid setting is refused; the running ones stay.
            with open(conf.name, "w") as f:
                f.write('log_format = "xml"\n')
            b.proc.send_signal(signal.SIGHUP)
            self.assertTrue(wait_until(lambda: any("invalid" in line for line in b.err_lines)))
            Client(b, "still-json").close()
            self.assertTrue(wait_until(
                lambda: [e for e in events(b, "client connected")
                         if e["client_id"] == "still-json"]))
        finally:
            self.assertEqual(b.stop(), 0)
            os.unlink(conf.name)
        self.assertFalse([l for l in b.err_lines if "client connected" in l and "before" in l])
        self.assertEqual([e["client_id"] for e in events(b, "client connected")],
                         ["after", "still-json"])
        invalid = [json.loads(l) for l in b.err_lines if "invalid" in l]
        self.assertIn("log_format 'xml' must be text or json", invalid[0]["msg"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
