"""How connections end: closes decided while messages are being delivered are queued and run after
the delivery step (no callback re-enters routing).

Run by ctest with 1 and 4 shards, like test_broker.py."""
import socket
import struct
import time
import unittest

from broker import TIMEOUT, Broker
from mqtt_raw import RawClient, props, s, varint


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

            def shard_of(client_id):
                status, reply = b.rest("GET", "/mqtt/sessions/" + client_id)
                self.assertEqual(status, 200, reply)
                return reply["result"][0]["shard"]

            # The w/# subscribers live on a's shard, where the re-entrant delivery happened.
            home = shard_of("a")
            watchers = []
            for i in range(200):
                w = RawClient(b).connect("w%d" % i)
                if shard_of("w%d" % i) != home:
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


if __name__ == "__main__":
    unittest.main(verbosity=2)
