"""How things end: closes decided while messages are being delivered are queued and run after the
delivery step (no callback re-enters routing), a closing DISCONNECT / CONNACK is followed by a
graceful shutdown so that the client reads its reason code, and what a shard keeps for a shared
subscription group ends with the group.

Run by ctest with 1 and 4 shards, like test_broker.py."""
import base64
import os
import select
import shutil
import socket
import ssl
import struct
import tempfile
import threading
import time
import unittest

from prometheus_client.parser import text_string_to_metric_families

from broker import TIMEOUT, Broker, BrokerTest, wait_until
from mqtt_raw import RawClient, props, s, varint
from test_transports import make_pki, ws_frame


def connect_with_will(client_id, will_topic, will_payload):
    """An MQTT 5 CONNECT (clean start) with a QoS 0 will."""
    body = (s("MQTT") + bytes([5, 0x02 | 0x04]) + struct.pack("!H", 60) + props() + s(client_id)
            + props() + s(will_topic) + s(will_payload))
    return bytes([0x10]) + varint(len(body)) + body


def read_to_end(c, until_type, timeout=TIMEOUT):
    """Reads packets until one of type `until_type`; then reads on to the end of the stream.
    Returns (that packet or None, the types read before it, how the stream ended: "eof" or the
    name of the error)."""
    before = []
    found = None
    c.sock.settimeout(timeout)
    try:
        while found is None:
            pkt = c.recv_packet()
            if pkt.type == until_type:
                found = pkt
            else:
                before.append(pkt.type)
        while c.sock.recv(65536):
            pass
        return found, before, "eof"
    except ConnectionError as e:  # recv_packet raises ConnectionError("closed by broker") at EOF
        return found, before, "eof" if type(e) is ConnectionError else type(e).__name__
    except OSError as e:
        return found, before, type(e).__name__


class Flood(threading.Thread):
    """Keeps sending `chunk` on the client's socket until stopped or the socket fails: the bytes a
    client still has in flight when the broker closes. `error`: how sending failed (a reset makes
    client libraries give up without reading what the broker sent last)."""

    def __init__(self, c, chunk):
        super().__init__(daemon=True)
        self.c, self.chunk, self.stop = c, chunk, threading.Event()
        self.sent = 0
        self.error = None

    def run(self):
        try:
            while not self.stop.is_set():
                self.c.sock.sendall(self.chunk)
                self.sent += len(self.chunk)
        except OSError as e:
            self.error = e


class QueuedCloses(unittest.TestCase):
    def test_will_of_queue_full_subscriber_reaches_only_will_subscribers(self):
        # A subscriber whose queue overflows under queue_full_policy = disconnect is closed; its
        # will goes to the w/# subscribers. The close used to run inside the delivery loop: the
        # will's delivery reused the loop's match list, and the outer loop went on over the will
        # topic's subscribers with the original message (they received messages on 't').
        b = Broker("--queue-full-policy", "disconnect", "--max-queued-messages", "1",
                   "--max-inflight", "1")
        try:
            a = RawClient(b)
            a.sock.sendall(connect_with_will("a", "w/x", "gone"))
            self.assertEqual(a.recv_packet().body[:2], b"\x00\x00")  # CONNACK, accepted
            self.assertEqual(a.subscribe("t", opts=1), [1])  # QoS 1, never acknowledged

            # The w/# subscribers live on a's shard, where the re-entrant delivery happened.
            home = b.shard_of("a")
            watchers = []
            for i in range(200):
                w = RawClient(b).connect("w%d" % i)
                if b.shard_of("w%d" % i) != home:
                    w.close()
                    continue
                self.assertEqual(w.subscribe("w/#", opts=0), [0])
                watchers.append(w)
                if len(watchers) == 4:
                    break
            self.assertEqual(len(watchers), 4)

            pub = RawClient(b).connect("pub")
            for i in range(6):
                pub.publish("t", b"%d" % i, qos=1, pid=i + 1)
                ack = pub.recv_packet()
                self.assertEqual((ack.type, struct.unpack("!H", ack.body[:2])[0]), (4, i + 1))
            # a: one message in flight, one queued, the third overflows: DISCONNECT 0x97.
            found, before, _ = read_to_end(a, 14)
            self.assertIsNotNone(found, "no DISCONNECT for the subscriber whose queue is full")
            self.assertEqual(found.body[0], 0x97)
            for w in watchers:
                topic, payload, _, _, _ = w.parse_publish(w.recv_packet())
                self.assertEqual((topic, payload), ("w/x", b"gone"))
            time.sleep(0.3)  # then nothing else: no message on 't' reaches a w/# subscriber
            for w in watchers:
                with self.assertRaises(socket.timeout, msg="a w/# subscriber got more"):
                    pkt = w.recv_packet(timeout=0.01)
                    print("unexpected:", w.parse_publish(pkt) if pkt.type == 3 else pkt.type)
        finally:
            self.assertEqual(b.stop(), 0)

    def test_publisher_subscribed_to_itself_is_closed_after_its_answer(self):
        # The publisher's own queue overflows while its PUBLISH is routed: it still gets the
        # PUBACK for what it sent, then DISCONNECT 0x97; nothing of it is used after it is gone.
        b = Broker("--queue-full-policy", "disconnect", "--max-queued-messages", "1",
                   "--max-inflight", "1")
        try:
            c = RawClient(b).connect("self")
            c.subscribe("me", opts=1)
            for i in range(3):
                c.publish("me", b"%d" % i, qos=1, pid=i + 1)
            found, before, _ = read_to_end(c, 14)
            self.assertIsNotNone(found)
            self.assertEqual(found.body[0], 0x97)
            self.assertEqual(before.count(4), 3, "a PUBACK for every PUBLISH: %r" % before)
            other = RawClient(b).connect("other")  # the shard is still serving
            other.subscribe("x")
        finally:
            self.assertEqual(b.stop(), 0)


class GracefulClose(unittest.TestCase):
    def setUp(self):
        self.broker = Broker()

    def tearDown(self):
        self.assertEqual(self.broker.stop(), 0)

    def test_receive_maximum_disconnect_read_before_eof(self):
        c = RawClient(self.broker)
        # A small receive buffer: what the broker sends backs up in its own send queue, which a
        # close with unread input (a reset) would discard.
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        c.connect("flood")
        limit = c.connack_props["ReceiveMaximum"]
        c.subscribe("echo", opts=0)
        # Echoed QoS 0 messages fill the way back, then QoS 2 PUBLISHes without PUBREL exceed
        # Receive Maximum; the client keeps sending all along.
        qos2 = b"".join(bytes([0x34]) + varint(len(body)) + body
                        for body in (s("q") + struct.pack("!H", i + 1) + b"\x00x"
                                     for i in range(limit + 1)))
        echo_body = s("echo") + b"\x00" + b"e" * 1000
        echo = (bytes([0x30]) + varint(len(echo_body)) + echo_body) * 64
        c.sock.sendall(echo * 4 + qos2)
        flood = Flood(c, echo)
        flood.start()
        found, before, end = read_to_end(c, 14)
        flood.stop.set()
        flood.join(TIMEOUT)
        self.assertIsNotNone(found, "no DISCONNECT before the end (%s) after %d packets" %
                             (end, len(before)))
        self.assertEqual(found.body[0], 0x93)
        self.assertEqual(end, "eof")
        self.assertIsNone(flood.error, "sending failed before the client read the end")
        self.assertGreater(flood.sent, 0)

    def test_refused_connack_read_before_eof(self):
        # CONNACK refusals close the same way: 0x8C (no authentication method is configured),
        # while the client sends on.
        c = RawClient(self.broker)
        body = (s("MQTT") + bytes([5, 0x02]) + struct.pack("!H", 60)
                + props(AuthenticationMethod="SCRAM-SHA-1") + s("refused"))
        junk_body = s("j") + b"\x00" + b"j" * 1000
        junk = bytes([0x30]) + varint(len(junk_body)) + junk_body
        c.sock.sendall(bytes([0x10]) + varint(len(body)) + body + junk * 16)
        flood = Flood(c, junk * 16)
        flood.start()
        found, before, end = read_to_end(c, 2)
        flood.stop.set()
        flood.join(TIMEOUT)
        self.assertIsNotNone(found, "no CONNACK before the end (%s)" % end)
        self.assertEqual(found.body[1], 0x8C)
        self.assertEqual(end, "eof")
        self.assertIsNone(flood.error, "sending failed before the client read the end")

    def test_lingering_connection_does_not_delay_stop(self):
        # A refused client that keeps its socket open and keeps sending: the broker lingers for
        # it, but a stop still ends within the shutdown grace period (1.5 s).
        c = RawClient(self.broker)
        body = (s("MQTT") + bytes([5, 0x02]) + struct.pack("!H", 60)
                + props(AuthenticationMethod="x") + s("stays"))
        c.sock.sendall(bytes([0x10]) + varint(len(body)) + body)
        self.assertEqual(c.recv_packet().type, 2)
        flood = Flood(c, b"\x00" * 4096)
        flood.start()
        start = time.time()
        self.assertEqual(self.broker.stop(timeout=10), 0)
        self.assertLess(time.time() - start, 2.5)
        flood.stop.set()
        flood.join(TIMEOUT)

    def test_websocket_refusal_then_close_frame_then_eof(self):
        # Over WebSocket the refusing CONNACK is followed by a close frame, then FIN; what the
        # client still sends is read meanwhile.
        b = Broker("--listen", "ws://127.0.0.1:0/mqtt")
        try:
            host, port, path = b.listeners["ws"]
            sock = socket.create_connection((host, port), timeout=TIMEOUT)
            sock.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                          "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                          "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n"
                          % (path, base64.b64encode(os.urandom(16)).decode())).encode())
            buf = b""
            while b"\r\n\r\n" not in buf:
                chunk = sock.recv(4096)
                self.assertTrue(chunk, "no upgrade")
                buf += chunk
            self.assertIn(b" 101 ", buf.split(b"\r\n", 1)[0])
            buf = buf.split(b"\r\n\r\n", 1)[1]
            body = (s("MQTT") + bytes([5, 0x02]) + struct.pack("!H", 60)
                    + props(AuthenticationMethod="x") + s("ws-refused"))
            junk = ws_frame(b"\x00" * 4000)
            sock.sendall(ws_frame(bytes([0x10]) + varint(len(body)) + body) + junk * 4)

            class Sock:  # what Flood needs
                pass
            holder = Sock()
            holder.sock = sock
            flood = Flood(holder, junk * 4)
            flood.start()
            frames, end = [], None
            try:
                while True:
                    chunk = sock.recv(65536)
                    if not chunk:
                        end = "eof"
                        break
                    buf += chunk
                    while len(buf) >= 2 and len(buf) >= 2 + (buf[1] & 0x7F):
                        n = buf[1] & 0x7F  # the broker's frames here are short (< 126 bytes)
                        frames.append((buf[0] & 0x0F, buf[2:2 + n]))
                        buf = buf[2 + n:]
            except OSError as e:
                end = type(e).__name__
            flood.stop.set()
            flood.join(TIMEOUT)
            self.assertGreaterEqual(len(frames), 2, "frames %r, end %s" % (frames, end))
            (op1, connack), (op2, close) = frames[0], frames[1]
            self.assertEqual((op1, connack[0] >> 4, connack[3]), (2, 2, 0x8C))  # CONNACK 0x8C
            self.assertEqual((op2, struct.unpack("!H", close[:2])[0]), (8, 1000))
            self.assertEqual(end, "eof")
            self.assertIsNone(flood.error, "sending failed before the client read the end")
        finally:
            self.assertEqual(b.stop(), 0)

    def test_tls_refusal_then_close_notify_then_eof(self):
        # Over TLS the refusing CONNACK is followed by close_notify, then FIN; what the client
        # still sends is read meanwhile. One thread: an SSL object is not shared between threads.
        pki = tempfile.mkdtemp(prefix="ringmq-pki-")
        b = None
        try:
            make_pki(pki)
            b = Broker("--listen", "mqtts://127.0.0.1:0",
                       "--tls-cert", os.path.join(pki, "server.pem"),
                       "--tls-key", os.path.join(pki, "server.key"))
            host, port, _ = b.listeners["mqtts"]
            ctx = ssl.create_default_context(cafile=os.path.join(pki, "ca.pem"))
            raw = socket.create_connection((host, port), timeout=TIMEOUT)
            # A TCP FIN without close_notify raises SSLEOFError instead of reading b"".
            t = ctx.wrap_socket(raw, server_hostname="localhost", suppress_ragged_eofs=False)
            body = (s("MQTT") + bytes([5, 0x02]) + struct.pack("!H", 60)
                    + props(AuthenticationMethod="x") + s("tls-refused"))
            t.sendall(bytes([0x10]) + varint(len(body)) + body)
            t.setblocking(False)
            junk_body = s("j") + b"\x00" + b"j" * 8000
            junk = bytes([0x30]) + varint(len(junk_body)) + junk_body
            data, end, write_error, sent = b"", None, None, 0
            deadline = time.time() + TIMEOUT
            while end is None and time.time() < deadline:
                select.select([t], [t] if write_error is None else [], [], 0.1)
                if write_error is None:
                    try:
                        sent += t.send(junk)
                    except (ssl.SSLWantWriteError, ssl.SSLWantReadError):
                        pass
                    except OSError as e:
                        write_error = e
                try:
                    chunk = t.recv(65536)
                    if chunk:
                        data += chunk
                    else:
                        end = "close_notify"
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                    pass
                except OSError as e:
                    end = type(e).__name__
            self.assertEqual(data[:1], b"\x20", "no CONNACK: %r, end %s" % (data, end))
            self.assertEqual(data[3], 0x8C)
            self.assertEqual(end, "close_notify")
            self.assertIsNone(write_error, "sending failed before the client read the end")
            self.assertGreater(sent, 0)
            t.close()
        finally:
            if b is not None:
                self.assertEqual(b.stop(), 0)
            shutil.rmtree(pki, ignore_errors=True)


class SharedGroupState(BrokerTest):
    def gauge(self, name):
        status, text = self.broker.rest("GET", "/metrics")
        self.assertEqual(status, 200, text)
        return sum(smp.value for f in text_string_to_metric_families(text) for smp in f.samples
                   if smp.name == name)

    def test_round_robin_state_ends_with_its_groups(self):
        # The publisher's shard keeps a round-robin position per shared group it published to;
        # once a group has no member left it is forgotten (it used to stay forever).
        member = RawClient(self.broker).connect("member")
        pub = RawClient(self.broker).connect("pub")
        n = 300  # more than one slice of the sweep
        for i in range(n):
            self.assertEqual(member.subscribe("$share/g%d/rr/%d" % (i, i), opts=0, pid=i + 1), [0])
        for i in range(n):
            pub.publish("rr/%d" % i, b"x")
        for i in range(n):
            self.assertEqual(member.recv_packet().type, 3)
        name = "ringmq_shared_round_robin_groups"
        self.assertTrue(wait_until(lambda: self.gauge(name) == n), self.gauge(name))
        for i in range(n):
            member.send(0xA2, struct.pack("!H", i + 1) + props() + s("$share/g%d/rr/%d" % (i, i)))
            self.assertEqual(member.recv_packet().type, 11)  # UNSUBACK
        self.assertTrue(wait_until(lambda: self.gauge(name) == 0), self.gauge(name))


if __name__ == "__main__":
    unittest.main(verbosity=2)
