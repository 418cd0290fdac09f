"""HTTPS for the REST API (--rest https://HOST:PORT, doc/configuration.md): curl and Python's
ssl over TLS 1.2 and 1.3 with the certificate options of the MQTT listeners; TLS 1.1 refused; a
plain-HTTP request to the HTTPS port closed cleanly; a handshake that does not finish cut by the
REST head deadline; SIGHUP reads the certificate again."""
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import unittest

from broker import TIMEOUT, Broker
from test_transports import make_pki


def openssl(d, *args):
    subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=d)


def read_to_eof(sock, timeout):
    """Everything the peer sends until it closes; raises socket.timeout if it does not."""
    sock.settimeout(timeout)
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk


class Https(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pki = tempfile.mkdtemp(prefix="ringmq-https-pki-")
        make_pki(cls.pki)
        # A second server certificate, from the other CA, for the reload.
        openssl(cls.pki, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", "server2.key", "-out", "server2.csr", "-subj", "/CN=localhost")
        openssl(cls.pki, "x509", "-req", "-in", "server2.csr", "-CA", "other-ca.pem", "-CAkey",
                "other-ca.key", "-CAcreateserial", "-out", "server2.pem", "-days", "2",
                "-extfile", "san.ext")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.pki, ignore_errors=True)

    def setUp(self):
        # The broker reads its own copy, so a test may replace it.
        self.certs = tempfile.mkdtemp(prefix="ringmq-https-certs-")
        for f in ("server.pem", "server.key"):
            shutil.copy(os.path.join(self.pki, f), self.certs)
        self.ca = os.path.join(self.pki, "ca.pem")
        self.b = self.start()

    def tearDown(self):
        self.assertEqual(self.b.stop(), 0)
        shutil.rmtree(self.certs, ignore_errors=True)

    def start(self, *extra):
        b = Broker("--tls-cert", os.path.join(self.certs, "server.pem"),
                   "--tls-key", os.path.join(self.certs, "server.key"), *extra,
                   rest="https://127.0.0.1:0")
        b.rest_ca = self.ca
        return b

    def curl(self, *args):
        r = subprocess.run(["curl", "-sS", "--max-time", "5", "--cacert", self.ca,
                            "-H", "Authorization: FlespiToken " + self.b.master_token,
                            "-w", "\n%{http_code}", *args], capture_output=True, text=True)
        body, _, code = r.stdout.rpartition("\n")
        return r.returncode, int(code or 0), body, r.stderr

    def url(self, path):
        return "https://127.0.0.1:%d%s" % (self.b.rest_port, path)

    def tls_client(self, version, ca=None):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(ca or self.ca)
        ctx.minimum_version = ctx.maximum_version = version
        if version < ssl.TLSVersion.TLSv1_2:
            ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # so that the client offers it at all
        raw = socket.create_connection(("127.0.0.1", self.b.rest_port), timeout=TIMEOUT)
        return ctx.wrap_socket(raw, server_hostname="127.0.0.1")

    def healthz(self, s):
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        return read_to_eof(s, TIMEOUT)

    def test_curl_over_https(self):
        rc, code, body, err = self.curl(self.url("/healthz"))
        self.assertEqual((rc, code), (0, 200), err)
        self.assertEqual(json.loads(body), {"result": [{"status": "ok"}]})
        rc, code, body, err = self.curl("-X", "POST", "-d",
                                        '{"info":"over tls","ttl":60,"access":{"type":0}}',
                                        self.url("/platform/tokens"))
        self.assertEqual((rc, code), (0, 200), body + err)
        token = json.loads(body)["result"][0]
        rc, code, body, err = self.curl(self.url("/platform/tokens/%d" % token["id"]))
        self.assertEqual((rc, code, json.loads(body)["result"][0]["info"]), (0, 200, "over tls"))
        # Keep-alive over TLS: two requests on one connection (curl reuses it).
        rc, code, body, err = self.curl(self.url("/healthz"), self.url("/healthz"))
        self.assertEqual(rc, 0, err)
        self.assertEqual(body.count('"status":"ok"'), 2, body)
        # curl verifies the certificate: without the CA it refuses.
        r = subprocess.run(["curl", "-sS", "--max-time", "5", self.url("/healthz")],
                           capture_output=True, text=True)
        self.assertNotEqual(r.returncode, 0)

    def test_tls_versions(self):
        for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            with self.subTest(version=version):
                with self.tls_client(version) as s:
                    self.assertEqual(s.version(), version.name.replace("_", "."))
                    self.assertIn(b"200 OK", self.healthz(s))
        before = self.b.log_count("TLS handshake failed")
        with self.assertRaises((ssl.SSLError, ConnectionResetError)) as cm:
            self.tls_client(ssl.TLSVersion.TLSv1_1)
        self.assertNotIn("NO_PROTOCOLS_AVAILABLE", str(cm.exception))  # the server refused
        self.assertTrue(self.b.wait_log("TLS handshake failed", count=before + 1))
        self.assertTrue(self.b.log_count("TLS handshake failed", "unsupported protocol") >= 1,
                        self.b.err_lines[-5:])

    def test_plain_http_to_the_https_port_is_closed(self):
        s = socket.create_connection(("127.0.0.1", self.b.rest_port), timeout=TIMEOUT)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        data = read_to_eof(s, TIMEOUT)  # closed, not left hanging
        s.close()
        self.assertNotIn(b"HTTP/1.1", data)  # nothing in clear text
        if data:
            self.assertEqual(data[0], 0x15, data)  # at most a TLS alert record
        self.assertTrue(self.b.wait_log("TLS handshake failed"))
        self.assertEqual(self.b.rest("GET", "/healthz")[0], 200)  # the server goes on

    def test_a_stalled_handshake_is_cut_by_the_head_deadline(self):
        self.b.stop()
        self.b = self.start("--rest-header-timeout", "1")
        started = time.monotonic()
        silent = socket.create_connection(("127.0.0.1", self.b.rest_port), timeout=TIMEOUT)
        partial = socket.create_connection(("127.0.0.1", self.b.rest_port), timeout=TIMEOUT)
        partial.sendall(b"\x16\x03\x01\x02\x00\x01")  # the start of a ClientHello, no more
        for s in (silent, partial):
            self.assertEqual(read_to_eof(s, 4), b"")
            s.close()
        self.assertLess(time.monotonic() - started, 4)
        self.assertTrue(self.b.wait_log("timed out: request head not complete", count=2))
        self.assertEqual(self.b.rest("GET", "/healthz")[0], 200)

    def test_sighup_reloads_the_certificate(self):
        other_ca = os.path.join(self.pki, "other-ca.pem")
        live = self.tls_client(ssl.TLSVersion.TLSv1_3)  # started with the first certificate
        # A broken file: the reload fails, the old certificate stays.
        with open(os.path.join(self.certs, "server.pem"), "w") as f:
            f.write("not a certificate\n")
        self.b.proc.send_signal(signal.SIGHUP)
        self.assertTrue(self.b.wait_log("REST API: TLS reload failed"))
        with self.tls_client(ssl.TLSVersion.TLSv1_2) as s:
            self.assertIn(b"200 OK", self.healthz(s))
        # The other CA's certificate: new connections get it, the live one keeps going.
        for f in ("server.pem", "server.key"):
            shutil.copy(os.path.join(self.pki, f.replace("server", "server2")),
                        os.path.join(self.certs, f))
        self.b.proc.send_signal(signal.SIGHUP)
        self.assertTrue(self.b.wait_log("REST API: TLS certificate reloaded"))
        with self.assertRaises(ssl.SSLCertVerificationError):
            self.tls_client(ssl.TLSVersion.TLSv1_2)
        with self.tls_client(ssl.TLSVersion.TLSv1_2, ca=other_ca) as s:
            self.assertIn(b"200 OK", self.healthz(s))
        self.assertIn(b"200 OK", self.healthz(live))
        live.close()
        self.b.rest_ca = other_ca
        self.assertEqual(self.b.rest("GET", "/healthz")[0], 200)

    def test_https_needs_a_certificate(self):
        r = subprocess.run([self.b.proc.args[0], "--rest", "https://127.0.0.1:0",
                            "--listen", "mqtt://127.0.0.1:0"], capture_output=True, text=True,
                           timeout=TIMEOUT)
        self.assertEqual(r.returncode, 2)
        self.assertIn("needs --tls-cert and --tls-key", r.stderr)


if __name__ == "__main__":
    unittest.main()
