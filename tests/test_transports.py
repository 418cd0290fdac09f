"""MQTT over TLS, WebSockets and WebSockets over TLS, with real clients: MQTT.js from Node (the
browser library), mosquitto_pub/sub, paho, and raw sockets for WebSocket edge cases. A throwaway CA
and server certificate are made with the openssl command for each test class."""
import base64
import json
import os
import queue
import shutil
import socket
import ssl
import struct
import subprocess
import tempfile
import threading
import time
import unittest

import paho.mqtt.client as mqtt

from broker import TIMEOUT, Broker
from mqtt_raw import RawClient, s as mqtt_str

HERE = os.path.dirname(os.path.abspath(__file__))
NODE = shutil.which("node")


def make_pki(d):
    """A CA, a server certificate for 127.0.0.1/localhost, and an unrelated second CA."""
    def run(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=d)
    for ca in ("ca", "other-ca"):
        run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", ca + ".key", "-out", ca + ".pem", "-days", "2", "-subj", "/CN=" + ca)
    run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
        "server.key", "-out", "server.csr", "-subj", "/CN=localhost")
    with open(os.path.join(d, "san.ext"), "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "san.ext")


class TransportTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pki = tempfile.mkdtemp(prefix="ringmq-pki-")
        make_pki(cls.pki)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.pki, ignore_errors=True)

    def setUp(self):
        self.broker = Broker("--listen", "mqtts://127.0.0.1:0", "--listen", "ws://127.0.0.1:0/mqtt",
                             "--listen", "wss://127.0.0.1:0/mqtt",
                             "--tls-cert", os.path.join(self.pki, "server.pem"),
                             "--tls-key", os.path.join(self.pki, "server.key"))

    def tearDown(self):
        self.assertEqual(self.broker.stop(), 0)

    def url(self, scheme):
        host, port, path = self.broker.listeners[scheme]
        return "%s://%s:%d%s" % (scheme, host, port, path)

    def node_client(self, *args):
        if NODE is None or not os.path.isdir(os.path.join(HERE, "js", "node_modules")):
            self.skipTest("node or tests/js/node_modules missing (tools/setup.sh installs them)")
        return subprocess.Popen([NODE, os.path.join(HERE, "js", "ws_client.mjs"), *args],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def wait_lines(self, proc, timeout=15):
        out, err = proc.communicate(timeout=timeout)
        return [json.loads(line) for line in out.splitlines() if line.strip()], err


class MqttJs(TransportTest):
    def mint(self, topic):
        status, reply = self.broker.rest("POST", "/platform/tokens", {
            "ttl": 3600, "access": {"type": 2, "acl": [{"uri": "mqtt", "topic": topic,
                                           "actions": ["subscribe"]}]}})
        self.assertEqual(status, 200, reply)
        return reply["result"][0]["key"]

    def run_browser_story(self, scheme, *extra):
        key = self.mint("data/u1/#")
        sub = self.node_client("--url", self.url(scheme), "--username", key, "--subscribe", "#",
                               "--count", "1", "--timeout", "8000", *extra)
        pub = RawClient(self.broker).connect("telemetry")
        deadline = time.time() + 8
        # Publish until the browser client is subscribed (it prints nothing we can wait on here).
        while sub.poll() is None and time.time() < deadline:
            pub.publish("data/u2/temp", b"not yours")
            pub.publish("data/u1/temp", b"21.5")
            time.sleep(0.2)
        lines, err = self.wait_lines(sub)
        self.assertEqual(sub.returncode, 0, (lines, err))
        messages = [l for l in lines if "topic" in l]
        self.assertTrue(messages, lines)
        self.assertEqual({m["topic"] for m in messages}, {"data/u1/temp"})

    def test_ws_with_token_receives_only_acl(self):
        self.run_browser_story("ws")

    def test_wss_with_token_receives_only_acl(self):
        self.run_browser_story("wss", "--ca", os.path.join(self.pki, "ca.pem"))

    def test_ws_mqtt_311(self):
        self.run_browser_story("ws", "--version", "4")


class Tls(TransportTest):
    def mosq(self, tool, *args, ca="ca.pem"):
        host, port, _ = self.broker.listeners["mqtts"]
        return [tool, "-h", "127.0.0.1", "-p", str(port), "--cafile", os.path.join(self.pki, ca),
                *args]

    def test_mosquitto_clients_over_tls(self):
        sub = subprocess.Popen(
            ["stdbuf", "-oL"] + self.mosq("mosquitto_sub", "-t", "tls/#", "-C", "1", "-i", "tsub",
                                          "-d"),
            stdout=subprocess.PIPE, text=True)
        # -d prints the exchange (line-buffered by stdbuf): publish once the subscription is
        # acknowledged.
        for line in sub.stdout:
            if "received SUBACK" in line:
                break
        subprocess.run(self.mosq("mosquitto_pub", "-t", "tls/x", "-m", "secret", "-q", "1"),
                       check=True, timeout=TIMEOUT)
        out, _ = sub.communicate(timeout=TIMEOUT)
        self.assertIn("secret", out.splitlines())

    def test_paho_over_tls(self):
        host, port, _ = self.broker.listeners["mqtts"]
        got = queue.Queue()
        subscribed = threading.Event()
        c = mqtt.Client(client_id="paho-tls", protocol=mqtt.MQTTv5)
        c.tls_set(ca_certs=os.path.join(self.pki, "ca.pem"))
        c.on_message = lambda cl, u, m: got.put(m.payload)
        c.on_subscribe = lambda *args: subscribed.set()
        c.connect("127.0.0.1", port)
        c.loop_start()
        try:
            c.subscribe("p/t", 1)
            self.assertTrue(subscribed.wait(TIMEOUT), "no SUBACK")
            c.publish("p/t", b"round trip", 1)
            self.assertEqual(got.get(timeout=TIMEOUT), b"round trip")
            self.assertTrue(got.empty())
        finally:
            c.loop_stop()
            c.disconnect()

    def test_untrusted_certificate_fails(self):
        r = subprocess.run(self.mosq("mosquitto_pub", "-t", "x", "-m", "y", ca="other-ca.pem"),
                           capture_output=True, timeout=TIMEOUT)
        self.assertNotEqual(r.returncode, 0)

    def test_plain_text_to_tls_port_is_closed(self):
        host, port, _ = self.broker.listeners["mqtts"]
        s = socket.create_connection((host, port), timeout=TIMEOUT)
        s.sendall(b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00")
        data = b""
        try:
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        except ConnectionResetError:
            pass
        self.assertNotIn(b"\x20\x02", data[:2])  # never a CONNACK
        # The broker is fine: a TLS client still works.
        ctx = ssl.create_default_context(cafile=os.path.join(self.pki, "ca.pem"))
        with socket.create_connection((host, port), timeout=TIMEOUT) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as t:
                t.sendall(b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00")
                self.assertEqual(t.recv(4), b"\x20\x02\x00\x00")


class ClientCertificates(TransportTest):
    """--tls-ca asks TLS clients for a certificate signed by that CA; --tls-require-client-cert
    (on by default when --tls-ca is given) refuses the handshake of clients without one."""
    CONNECT = b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()

        def run(*args):
            subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=cls.pki)
        for name, ca in (("client", "ca"), ("stranger", "other-ca")):
            run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=" + name)
            run("x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem", "-CAkey", ca + ".key",
                "-CAcreateserial", "-out", name + ".pem", "-days", "2")

    def setUp(self):
        self.broker = None  # each test starts its own

    def tearDown(self):
        if self.broker is not None:
            self.assertEqual(self.broker.stop(), 0)

    def start(self, *extra):
        self.broker = Broker("--listen", "mqtts://127.0.0.1:0",
                             "--tls-cert", os.path.join(self.pki, "server.pem"),
                             "--tls-key", os.path.join(self.pki, "server.key"),
                             "--tls-ca", os.path.join(self.pki, "ca.pem"), *extra)

    def context(self, cert=None, tls12=False):
        ctx = ssl.create_default_context(cafile=os.path.join(self.pki, "ca.pem"))
        if cert is not None:
            ctx.load_cert_chain(os.path.join(self.pki, cert + ".pem"),
                                os.path.join(self.pki, cert + ".key"))
        if tls12:
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        return ctx

    def connack(self, cert=None):
        """The first 4 bytes answering a 3.1.1 CONNECT over TLS 1.3; raises on a TLS failure."""
        host, port, _ = self.broker.listeners["mqtts"]
        with socket.create_connection((host, port), timeout=TIMEOUT) as raw:
            with self.context(cert).wrap_socket(raw, server_hostname="localhost") as t:
                t.sendall(self.CONNECT)
                data = b""
                while len(data) < 4:
                    chunk = t.recv(4 - len(data))
                    if not chunk:
                        break
                    data += chunk
                return data

    def assert_refused(self, cert=None):
        # TLS 1.3: the client's handshake ends before the server checks its certificate, so the
        # refusal (an alert) arrives instead of the CONNACK.
        try:
            data = self.connack(cert)
        except (ssl.SSLError, ConnectionError):
            data = None
        self.assertIn(data, (None, b""), "a CONNACK over TLS without a valid certificate")
        # TLS 1.2: the handshake itself fails.
        host, port, _ = self.broker.listeners["mqtts"]
        with socket.create_connection((host, port), timeout=TIMEOUT) as raw:
            with self.assertRaises((ssl.SSLError, ConnectionError)):
                self.context(cert, tls12=True).wrap_socket(raw, server_hostname="localhost")

    def test_certificate_required_by_default_with_tls_ca(self):
        self.start()
        self.assert_refused()
        self.assert_refused(cert="stranger")
        self.assertEqual(self.connack(cert="client"), b"\x20\x02\x00\x00")

    def test_certificate_optional_when_not_required(self):
        self.start("--tls-require-client-cert=false")
        self.assertEqual(self.connack(), b"\x20\x02\x00\x00")
        self.assertEqual(self.connack(cert="client"), b"\x20\x02\x00\x00")
        self.assert_refused(cert="stranger")  # a certificate that is sent is still verified

    def test_certificate_optional_from_config_file(self):
        conf = os.path.join(self.pki, "optional.toml")
        with open(conf, "w") as f:
            f.write("tls_require_client_cert = false\n")
        self.start("--config", conf)
        self.assertEqual(self.connack(), b"\x20\x02\x00\x00")

    def test_certificate_required_explicitly(self):
        self.start("--tls-require-client-cert")
        self.assert_refused()
        self.assertEqual(self.connack(cert="client"), b"\x20\x02\x00\x00")


def ws_frame(payload, opcode=2, mask=True, fin=True):
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    m = 0x80 if mask else 0
    if n < 126:
        head += bytes([m | n])
    elif n < 65536:
        head += bytes([m | 126]) + struct.pack("!H", n)
    else:
        head += bytes([m | 127]) + struct.pack("!Q", n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


class WebSocketEdges(TransportTest):
    def upgrade(self, headers=None, path="/mqtt"):
        host, port, _ = self.broker.listeners["ws"]
        s = socket.create_connection((host, port), timeout=TIMEOUT)
        h = {"Host": "localhost", "Upgrade": "websocket", "Connection": "Upgrade",
             "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
             "Sec-WebSocket-Version": "13", "Sec-WebSocket-Protocol": "mqtt"}
        h.update(headers or {})
        req = "GET %s HTTP/1.1\r\n" % path + "".join(
            "%s: %s\r\n" % kv for kv in h.items() if kv[1] is not None) + "\r\n"
        s.sendall(req.encode())
        resp = b""
        while b"\r\n\r\n" not in resp:
            chunk = s.recv(4096)
            if not chunk:
                break
            resp += chunk
        status = int(resp.split(b" ", 2)[1]) if resp else 0
        return s, status, resp

    def read_frame(self, s):
        hdr = s.recv(2)
        n = hdr[1] & 0x7F
        if n == 126:
            n = struct.unpack("!H", s.recv(2))[0]
        data = b""
        while len(data) < n:
            data += s.recv(n - len(data))
        return hdr[0] & 0x0F, data

    def test_bad_upgrades(self):
        _, status, _ = self.upgrade({"Sec-WebSocket-Key": None})
        self.assertEqual(status, 400)
        _, status, _ = self.upgrade(path="/elsewhere")
        self.assertEqual(status, 404)
        _, status, resp = self.upgrade({"Sec-WebSocket-Version": "8"})
        self.assertEqual(status, 426)
        s, status, resp = self.upgrade()
        self.assertEqual(status, 101)
        self.assertIn(b"Sec-WebSocket-Protocol: mqtt", resp)

    def test_packets_split_across_frames_and_coalesced(self):
        s, status, _ = self.upgrade()
        self.assertEqual(status, 101)
        connect = b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00"
        s.sendall(ws_frame(connect[:5], fin=False) + ws_frame(connect[5:], opcode=0))
        op, data = self.read_frame(s)
        self.assertEqual((op, data), (2, b"\x20\x02\x00\x00"))
        sub = b"\x00\x01" + mqtt_str("ws/t") + b"\x00"
        pub = mqtt_str("ws/t") + b"hello"
        s.sendall(ws_frame(bytes([0x82, len(sub)]) + sub + bytes([0x30, len(pub)]) + pub))
        seen = b""
        while b"hello" not in seen:
            op, data = self.read_frame(s)
            seen += data
        self.assertIn(b"\x90\x03\x00\x01\x00", seen)  # SUBACK

    def test_publishes_read_with_the_close_frame_are_delivered(self):
        # A client publishes at QoS 0 and closes at once: the PUBLISH frames and the close frame
        # arrive in one read. The publishes come first, so they are delivered (they were dropped
        # with the connection), and the close is answered.
        sub = RawClient(self.broker).connect("ws-close-sub")
        sub.subscribe("ws/last")
        s, status, _ = self.upgrade()
        self.assertEqual(status, 101)
        s.sendall(ws_frame(b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00"))
        self.assertEqual(self.read_frame(s), (2, b"\x20\x02\x00\x00"))
        pubs = b"".join(bytes([0x30, 2 + 7 + 1]) + mqtt_str("ws/last") + b"%d" % i
                        for i in range(5))
        s.sendall(ws_frame(pubs) + ws_frame(struct.pack("!H", 1000), opcode=8))
        self.assertEqual(self.read_frame(s)[0], 8)  # the close, answered
        got = [sub.parse_publish(sub.recv_packet())[1] for _ in range(5)]
        self.assertEqual(got, [b"%d" % i for i in range(5)])

    def test_unmasked_frame_closes_with_1002(self):
        s, _, _ = self.upgrade()
        s.sendall(ws_frame(b"\xc0\x00", mask=False))
        op, data = self.read_frame(s)
        self.assertEqual((op, struct.unpack("!H", data[:2])[0]), (8, 1002))

    def test_oversized_frame_closes_with_1009(self):
        b = Broker("--listen", "ws://127.0.0.1:0/mqtt", "--max-packet-size", "1024")
        try:
            host, port, _ = b.listeners["ws"]
            s = socket.create_connection((host, port), timeout=TIMEOUT)
            s.sendall(("GET /mqtt HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade"
                       "\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13"
                       "\r\n\r\n").encode())
            resp = b""
            while b"\r\n\r\n" not in resp:
                resp += s.recv(4096)
            s.sendall(ws_frame(b"x" * 5000))
            op, data = self.read_frame(s)
            self.assertEqual((op, struct.unpack("!H", data[:2])[0]), (8, 1009))
        finally:
            self.assertEqual(b.stop(), 0)

    def test_close_handshake(self):
        s, _, _ = self.upgrade()
        s.sendall(ws_frame(struct.pack("!H", 1000), opcode=8))
        op, data = self.read_frame(s)
        self.assertEqual((op, data[:2]), (8, struct.pack("!H", 1000)))
        self.assertEqual(s.recv(10), b"")  # then the broker closes TCP

    def test_ping_pong(self):
        s, _, _ = self.upgrade()
        s.sendall(ws_frame(b"are you there", opcode=9))
        self.assertEqual(self.read_frame(s), (10, b"are you there"))


if __name__ == "__main__":
    unittest.main(verbosity=2)
