"""A tiny MQTT 5 / 3.1.1 client over a raw socket, for tests that need exact bytes: properties a
library would not send, answers it would hide, misbehaviour on purpose."""
import socket
import struct

PROP_TYPES = {  # id: (name, kind)
    0x01: ("PayloadFormatIndicator", "b"), 0x02: ("MessageExpiryInterval", "i"),
    0x03: ("ContentType", "s"), 0x08: ("ResponseTopic", "s"), 0x09: ("CorrelationData", "d"),
    0x0B: ("SubscriptionIdentifier", "v"), 0x11: ("SessionExpiryInterval", "i"),
    0x12: ("AssignedClientIdentifier", "s"), 0x13: ("ServerKeepAlive", "h"),
    0x15: ("AuthenticationMethod", "s"), 0x16: ("AuthenticationData", "d"),
    0x17: ("RequestProblemInformation", "b"), 0x18: ("WillDelayInterval", "i"),
    0x19: ("RequestResponseInformation", "b"), 0x1A: ("ResponseInformation", "s"),
    0x1C: ("ServerReference", "s"), 0x1F: ("ReasonString", "s"), 0x21: ("ReceiveMaximum", "h"),
    0x22: ("TopicAliasMaximum", "h"), 0x23: ("TopicAlias", "h"), 0x24: ("MaximumQoS", "b"),
    0x25: ("RetainAvailable", "b"), 0x26: ("UserProperty", "p"), 0x27: ("MaximumPacketSize", "i"),
    0x28: ("WildcardSubscriptionAvailable", "b"), 0x29: ("SubscriptionIdentifierAvailable", "b"),
    0x2A: ("SharedSubscriptionAvailable", "b"),
}
PROP_IDS = {name: (pid, kind) for pid, (name, kind) in PROP_TYPES.items()}


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def s(x):
    b = x.encode() if isinstance(x, str) else x
    return struct.pack("!H", len(b)) + b


def props(**kw):
    """Encodes properties given by name; UserProperty takes a list of (key, value)."""
    out = b""
    for name, value in kw.items():
        pid, kind = PROP_IDS[name]
        values = value if kind in "pv" and isinstance(value, list) else [value]
        for v in values:
            out += bytes([pid])
            if kind == "b":
                out += bytes([v])
            elif kind == "h":
                out += struct.pack("!H", v)
            elif kind == "i":
                out += struct.pack("!I", v)
            elif kind == "v":
                out += varint(v)
            elif kind in "sd":
                out += s(v)
            elif kind == "p":
                out += s(v[0]) + s(v[1])
    return varint(len(out)) + out


def parse_props(data, pos):
    n, shift, length = 0, 0, 0
    while True:
        b = data[pos]
        pos += 1
        length |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            break
    end = pos + length
    out = {}
    while pos < end:
        pid = data[pos]
        pos += 1
        name, kind = PROP_TYPES[pid]
        if kind == "b":
            v = data[pos]
            pos += 1
        elif kind == "h":
            v = struct.unpack_from("!H", data, pos)[0]
            pos += 2
        elif kind == "i":
            v = struct.unpack_from("!I", data, pos)[0]
            pos += 4
        elif kind == "v":
            v, shift = 0, 0
            while True:
                b = data[pos]
                pos += 1
                v |= (b & 0x7F) << shift
                shift += 7
                if not b & 0x80:
                    break
        elif kind in "sd":
            ln = struct.unpack_from("!H", data, pos)[0]
            v = bytes(data[pos + 2:pos + 2 + ln])
            v = v.decode() if kind == "s" else v
            pos += 2 + ln
        else:
            k = struct.unpack_from("!H", data, pos)[0]
            key = data[pos + 2:pos + 2 + k].decode()
            pos += 2 + k
            ln = struct.unpack_from("!H", data, pos)[0]
            val = data[pos + 2:pos + 2 + ln].decode()
            pos += 2 + ln
            v = (key, val)
        if kind in "pv":
            out.setdefault(name, []).append(v)
        else:
            out[name] = v
    return out, end


class Packet:
    def __init__(self, byte0, body):
        self.type = byte0 >> 4
        self.flags = byte0 & 0x0F
        self.body = body


class RawClient:
    def __init__(self, broker, version=5, timeout=5.0):
        self.sock = socket.create_connection((broker.host, broker.port), timeout=timeout)
        self.version = version
        self.buf = b""

    def send(self, byte0, body):
        self.sock.sendall(bytes([byte0]) + varint(len(body)) + body)

    def recv_packet(self, timeout=None):
        if timeout is not None:
            self.sock.settimeout(timeout)
        while True:
            if len(self.buf) >= 2:
                n, shift, i = 0, 0, 1
                while i < len(self.buf):
                    b = self.buf[i]
                    n |= (b & 0x7F) << shift
                    shift += 7
                    i += 1
                    if not b & 0x80:
                        break
                else:
                    i = None
                if i is not None and len(self.buf) >= i + n and not (self.buf[i - 1] & 0x80):
                    pkt = Packet(self.buf[0], self.buf[i:i + n])
                    self.buf = self.buf[i + n:]
                    return pkt
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed by broker")
            self.buf += chunk

    def connect(self, client_id, clean=True, keepalive=60, username=None, check=True,
                password=None, **p):
        """Sends CONNECT and reads the CONNACK; with check=False a refusal is returned, not raised
        (self.reason: the MQTT 5 reason code or the 3.1.1 return code)."""
        flags = ((0x02 if clean else 0) | (0x80 if username is not None else 0) |
                 (0x40 if password is not None else 0))
        body = s("MQTT") + bytes([self.version, flags]) + struct.pack("!H", keepalive)
        if self.version == 5:
            body += props(**p)
        body += s(client_id)
        if username is not None:
            body += s(username)
        if password is not None:
            body += s(password)
        self.send(0x10, body)
        ack = self.recv_packet()
        assert ack.type == 2, ack.type
        self.session_present = ack.body[0] & 1
        self.reason = ack.body[1]
        assert self.reason == 0 or not check, "CONNACK refused: 0x%02x" % self.reason
        self.connack_props = parse_props(ack.body, 2)[0] if self.version == 5 else {}
        return self

    def subscribe(self, flt, opts=1, pid=1, **p):
        body = struct.pack("!H", pid) + (props(**p) if self.version == 5 else b"") + s(flt)
        self.send(0x82, body + bytes([opts]))
        ack = self.recv_packet()
        assert ack.type == 9, ack.type
        return list(ack.body[2 + (1 if self.version == 5 else 0):])

    def publish(self, topic, payload, qos=0, pid=1, retain=False, **p):
        body = s(topic) + (struct.pack("!H", pid) if qos else b"")
        if self.version == 5:
            body += props(**p)
        self.send(0x30 | (qos << 1) | (1 if retain else 0), body + payload)

    def parse_publish(self, pkt):
        """(topic, payload, qos, packet id, properties) of a PUBLISH."""
        ln = struct.unpack_from("!H", pkt.body, 0)[0]
        topic = pkt.body[2:2 + ln].decode()
        pos = 2 + ln
        qos = (pkt.flags >> 1) & 3
        pid = None
        if qos:
            pid = struct.unpack_from("!H", pkt.body, pos)[0]
            pos += 2
        pr = {}
        if self.version == 5:
            pr, pos = parse_props(pkt.body, pos)
        return topic, bytes(pkt.body[pos:]), qos, pid, pr

    def puback(self, pid):
        self.send(0x40, struct.pack("!H", pid))

    def closed(self, timeout=5.0):
        """True when the broker closes the connection (reading whatever it still sends)."""
        self.sock.settimeout(timeout)
        try:
            while self.sock.recv(65536):
                pass
            return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False

    def close(self):
        self.sock.close()
