"""Test harness: starts the real ringmq binary on an ephemeral port and gives tests real clients.

Uses Debian's python3-paho-mqtt (1.6) and mosquitto-clients. Every test gets a fresh broker.
"""
import os
import queue
import signal
import socket
import shutil
import subprocess
import tempfile
import threading
import time
import unittest

import paho.mqtt.client as mqtt

BROKER = os.environ.get("RINGMQ_BIN", "build/app/ringmq")
SHARDS = int(os.environ.get("RINGMQ_SHARDS", "1"))
TIMEOUT = 5.0


class Broker:
    """A ringmq process listening on 127.0.0.1 with an ephemeral port, anonymous clients
    allowed unless allow_anonymous=False.

    What it prints is kept as it arrives: `lines` (stdout and stderr interleaved), `out_lines`
    (stdout) and `err_lines` (stderr: the log).
    """

    def __init__(self, *extra, data_dir=None, shards=None, log_level="debug",
                 preexec_fn=None, allow_anonymous=True, rest="http://127.0.0.1:0",
                 master_token=None):
        """master_token: given to the broker (RINGMQ_MASTER_TOKEN) instead of the one it
        generates at its first start (the cluster's nodes share one)."""
        self.own_dir = data_dir is None
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="ringmq-test-")
        self.proc = subprocess.Popen(
            [BROKER, "--listen", "mqtt://127.0.0.1:0", "--rest", rest,
             "--data-dir", self.data_dir, "--shards", str(shards or SHARDS),
             "--log-level", log_level,
             # The broker refuses anonymous clients by default; suites that are not about
             # authentication connect without a token. allow_anonymous=False (or a later
             # --deny-anonymous, which wins) tests the default.
             *(["--allow-anonymous"] if allow_anonymous else []), *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=preexec_fn,
            env=dict(os.environ, RINGMQ_MASTER_TOKEN=master_token) if master_token else None)
        self.lines = []
        self.out_lines = []
        self.err_lines = []
        self.master_token = None
        self.listeners = {}  # scheme -> (host, port, path) of the first listener of that scheme
        while True:
            line = self.proc.stdout.readline()
            if not line.startswith("listening "):
                self.proc.kill()
                raise RuntimeError("broker did not start: %r %s" % (line, self.proc.stderr.read()))
            scheme, rest = line.strip()[len("listening "):].split("://", 1)
            hostport, _, path = rest.partition("/")
            host, port = hostport.rsplit(":", 1)
            self.listeners.setdefault(scheme, (host, int(port), "/" + path if path else ""))
            if scheme in ("http", "https"):
                break
        self.host, self.port, _ = self.listeners["mqtt"]
        self.rest_port = self.listeners.get("http", self.listeners.get("https"))[1]
        self.rest_tls = "https" in self.listeners
        self.rest_ca = None  # with HTTPS: the CA file rest() verifies the broker with
        if master_token:
            self.master_token = master_token
        elif not os.path.exists(os.path.join(self.data_dir, ".first-start-read")):
            line = self.proc.stdout.readline()
            if line.startswith("master token: "):
                self.master_token = line.strip()[len("master token: "):]
                with open(os.path.join(self.data_dir, ".first-start-read"), "w") as f:
                    f.write(self.master_token)
        else:
            self.master_token = open(os.path.join(self.data_dir, ".first-start-read")).read()
        # Keep draining the pipes so the broker never blocks on a full pipe.
        self._threads = [threading.Thread(target=self._drain, args=(s, own), daemon=True)
                         for s, own in ((self.proc.stdout, self.out_lines),
                                        (self.proc.stderr, self.err_lines))]
        for t in self._threads:
            t.start()

    def _drain(self, stream, own):
        for line in stream:
            self.lines.append(line)
            own.append(line)

    def stop(self, sig=signal.SIGTERM, timeout=5, keep_data=False):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for t in self._threads:  # after exit the pipes end: every line is in the lists now
            t.join(timeout)
        if self.own_dir and not keep_data:
            shutil.rmtree(self.data_dir, ignore_errors=True)
        return self.proc.returncode

    def rest(self, method, path, body=None, token=None):
        """One REST call; returns (status, parsed JSON or text)."""
        import http.client
        import json
        if self.rest_tls:
            import ssl
            ctx = ssl.create_default_context(cafile=self.rest_ca)
            conn = http.client.HTTPSConnection("127.0.0.1", self.rest_port, timeout=TIMEOUT,
                                               context=ctx)
        else:
            conn = http.client.HTTPConnection("127.0.0.1", self.rest_port, timeout=TIMEOUT)
        headers = {"Authorization": "FlespiToken " + (token or self.master_token)}
        data = None
        if body is not None:
            data = json.dumps(body)
            headers["Content-Type"] = "application/json"
        conn.request(method, path, data, headers)
        resp = conn.getresponse()
        text = resp.read().decode()
        conn.close()
        try:
            return resp.status, json.loads(text)
        except ValueError:
            return resp.status, text

    def shard_of(self, client_id):
        """The shard that serves the session `client_id` (connected, or offline and kept)."""
        status, reply = self.rest("GET", "/mqtt/sessions/" + client_id)
        if status != 200:
            raise AssertionError("GET /mqtt/sessions/%s: %s %s" % (client_id, status, reply))
        return reply["result"][0]["shard"]

    def raw(self):
        """A plain TCP socket to the broker."""
        s = socket.create_connection((self.host, self.port), timeout=TIMEOUT)
        return s

    def log_count(self, *parts):
        """How many log (stderr) lines so far contain every one of `parts`."""
        return sum(all(p in line for p in parts) for line in list(self.err_lines))

    def wait_log(self, *parts, count=1, timeout=TIMEOUT):
        """Waits until `count` log lines contain every one of `parts`; False at the timeout."""
        return wait_until(lambda: self.log_count(*parts) >= count, timeout)

    def metric(self, name, **labels):
        """The sum over shards of the /metrics samples `name` whose labels include `labels`."""
        import re
        status, text = self.rest("GET", "/metrics")
        assert status == 200, text
        total = 0
        for line in text.splitlines():
            m = re.match(r"^([a-z_]+)(?:\{(.*)\})? (\d+)$", line)
            if not m or m.group(1) != name:
                continue
            have = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
            if all(have.get(k) == v for k, v in labels.items()):
                total += int(m.group(3))
        return total

    def wait_metric(self, name, expected, timeout=TIMEOUT, **labels):
        """Waits until metric(name, **labels) == expected; False at the timeout."""
        return wait_until(lambda: self.metric(name, **labels) == expected, timeout)

    def sync_shards(self):
        """Returns once every shard has run the tasks posted to it before the call (a reload, a
        token change): a /metrics scrape is one more task on every shard, and a shard runs its
        tasks in order."""
        status, text = self.rest("GET", "/metrics")
        assert status == 200, text


class Client:
    """A paho client with queues of what it received, for synchronous tests."""

    def __init__(self, broker, client_id, version=mqtt.MQTTv311, clean=True, keepalive=60,
                 will=None, session_expiry=None, connect=True, properties=None):
        self.version = version
        kwargs = {"client_id": client_id, "protocol": version}
        if version != mqtt.MQTTv5:
            kwargs["clean_session"] = clean
        self.c = mqtt.Client(**kwargs)
        self.messages = queue.Queue()
        self.connacks = queue.Queue()
        self.disconnects = queue.Queue()
        self.subacks = queue.Queue()
        self.unsubacks = queue.Queue()
        self.c.on_unsubscribe = lambda c, u, mid, *rest: self.unsubacks.put(mid)
        self.c.on_message = lambda c, u, m: self.messages.put(m)
        if version == mqtt.MQTTv5:
            self.c.on_connect = lambda c, u, f, rc, p=None: self.connacks.put((f, rc, p))
            self.c.on_disconnect = lambda c, u, rc, p=None: self.disconnects.put(rc)
            self.c.on_subscribe = lambda c, u, mid, rcs, p=None: self.subacks.put(rcs)
        else:
            self.c.on_connect = lambda c, u, f, rc: self.connacks.put((f, rc, None))
            self.c.on_disconnect = lambda c, u, rc: self.disconnects.put(rc)
            self.c.on_subscribe = lambda c, u, mid, rcs: self.subacks.put(rcs)
        if will:
            self.c.will_set(*will)
        self.broker = broker
        self.clean = clean
        self.keepalive = keepalive
        self.session_expiry = session_expiry
        self.properties = properties
        if connect:
            self.connect()

    def connect(self):
        kwargs = {"keepalive": self.keepalive}
        if self.version == mqtt.MQTTv5:
            from paho.mqtt.properties import Properties
            from paho.mqtt.packettypes import PacketTypes
            props = self.properties or Properties(PacketTypes.CONNECT)
            if self.session_expiry is not None:
                props.SessionExpiryInterval = self.session_expiry
            kwargs["clean_start"] = self.clean
            kwargs["properties"] = props
        self.c.connect(self.broker.host, self.broker.port, **kwargs)
        self.c.loop_start()
        self.flags, self.rc, self.connack_props = self.connacks.get(timeout=TIMEOUT)
        return self

    def subscribe(self, topic, qos=0, **kw):
        if self.version == mqtt.MQTTv5 and kw:
            from paho.mqtt.subscribeoptions import SubscribeOptions
            self.c.subscribe(topic, options=SubscribeOptions(qos=qos, **kw))
        else:
            self.c.subscribe(topic, qos)
        return self.subacks.get(timeout=TIMEOUT)

    def unsubscribe(self, topic):
        """Sends UNSUBSCRIBE and waits for its UNSUBACK."""
        self.c.unsubscribe(topic)
        return self.unsubacks.get(timeout=TIMEOUT)

    def publish(self, topic, payload, qos=0, retain=False, properties=None):
        info = self.c.publish(topic, payload, qos, retain, properties=properties)
        if qos > 0:
            info.wait_for_publish()
        return info

    def recv(self, timeout=TIMEOUT):
        return self.messages.get(timeout=timeout)

    def expect_nothing(self, wait=0.5):
        try:
            m = self.messages.get(timeout=wait)
        except queue.Empty:
            return
        raise AssertionError("unexpected message on %s: %r" % (m.topic, m.payload))

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()

    def drop(self):
        """Closes the socket without DISCONNECT (an abnormal close: the will is published)."""
        self.c.loop_stop()
        self.c.socket().close()


class BrokerTest(unittest.TestCase):
    def setUp(self):
        self.broker = Broker()
        self.clients = []

    def tearDown(self):
        stop_clients(self.clients)
        rc = self.broker.stop()
        if rc not in (0, None):
            print("".join(self.broker.lines[-50:]))
        self.assertEqual(rc, 0, "broker exit code")

    def client(self, client_id, **kw):
        c = Client(self.broker, client_id, **kw)
        self.clients.append(c)
        return c


def stop_clients(clients):
    """Stops the network threads of test clients and disconnects them, whatever their state."""
    for c in clients:
        try:
            c.c.loop_stop()
            c.c.disconnect()
        except Exception:
            pass


def wait_until(pred, timeout=TIMEOUT):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(0.02)
    return False
