"""Torn and corrupted write-ahead logs never crash recovery.

Each class builds one realistic data directory (persistent 3.1.1 and MQTT 5 sessions with
subscriptions and queued QoS 1 messages, a session that acknowledged what it got, a removed session,
retained messages set, replaced and cleared), then, for a number of iterations with a fixed, printed
random seed, copies it, damages the copy (truncates a segment or snapshot, flips bytes, zeroes a
range, deletes a file, appends garbage) and checks that:

- with --recover-strict the broker either starts (and then recovery found nothing corrupt: a torn
  tail at most) or exits with a non-zero status and an error naming the damaged file, never by a
  signal;
- the default, lenient broker starts and answers CONNECT; whatever it then delivers to the
  persistent sessions, and whatever retained messages it holds, is a subset of what was published
  (same topic, same payload, same MQTT 5 properties, no duplicate): recovery may lose records, it
  never invents or garbles one;
- it stops cleanly on SIGTERM (exit 0, no sanitizer report), and the directory it leaves behind is
  healthy: a strict start on it succeeds.

An undamaged copy must give back exactly what is due, so that "a subset" is not trivially met.

Targeted cases on each data directory check what recovery must do better than "a subset": one
flipped byte in a snapshot record loses at most that record (the snapshot is salvaged and kept as
.bad), and a deleted snapshot whose segment remains, or a deleted middle segment, is reported
(strict recovery refuses, naming the missing file).

RINGMQ_WAL_SEED=N replays a run; RINGMQ_WAL_ITERATIONS=N changes the iterations per class.
"""
import os
import queue
import random
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

from mqtt_raw import RawClient, props, s

BROKER = os.environ.get("RINGMQ_BIN", "build/app/ringmq")
SHARDS = int(os.environ.get("RINGMQ_SHARDS", "1"))
SANITIZED = bool(os.environ.get("RINGMQ_SANITIZED"))
SEED = int(os.environ.get("RINGMQ_WAL_SEED", "20240611"))
START_TIMEOUT = 60.0 if SANITIZED else 20.0
SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "UndefinedBehaviorSanitizer",
                   "runtime error:")
FILE_RE = re.compile(r"(wal|snap)-\d+-\d+\.(log|dat)")
HEADER = 32  # bytes of a segment or snapshot header (doc/wal-format.md)
# broker/broker.cc logs one such line per corrupt range that lenient recovery skipped.
CORRUPT_RE = re.compile(r"WAL \S+ bytes \d+-\d+ skipped: ")


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def frames(data):
    """(offset, size, type) of every record frame of a segment or snapshot, until a bad one."""
    out, off = [], HEADER
    while off + 9 <= len(data):
        length, typ = struct.unpack_from("<IB", data, off)
        if off + 9 + length > len(data):
            break
        out.append((off, 9 + length, typ))
        off += 9 + length
    return out


def wait_logged(wal, typ, body_prefix, timeout=10.0):
    """Waits until a segment in `wal` holds a record of type `typ` whose body starts with
    `body_prefix`: written to the kernel, so it survives a SIGKILL of the broker."""
    end = time.time() + timeout
    while time.time() < end:
        for name in os.listdir(wal):
            if not (name.startswith("wal-") and name.endswith(".log")):
                continue
            try:
                with open(os.path.join(wal, name), "rb") as f:
                    data = f.read()
            except FileNotFoundError:  # deleted after a snapshot meanwhile
                continue
            for off, _, t in frames(data):
                if t == typ and data[off + 9:].startswith(body_prefix):
                    return
        time.sleep(0.02)
    raise AssertionError("record type %d %r not in %s" % (typ, body_prefix, os.listdir(wal)))


def segment_header(shard, seq, link):
    """The header of segment `seq`; link 2: it continues segment seq - 1 (a roll)."""
    h = struct.pack("<IHHQQI", 0x4C415752, 1, shard, seq, int(time.time() * 1000), link)
    return h + struct.pack("<I", crc32c(h))


def wal_name(kind, shard, seq):
    return "%s-%d-%012d.%s" % (kind, shard, seq, "log" if kind == "wal" else "dat")


def iterations(default):
    return int(os.environ.get("RINGMQ_WAL_ITERATIONS", default))


class Proc:
    """A ringmq process on a given data directory that may refuse to start (strict recovery)
    or hang: every wait has a deadline, unlike tests/broker.py's Broker."""

    def __init__(self, data_dir, *flags):
        self.args = [BROKER, "--listen", "mqtt://127.0.0.1:0", "--rest", "none",
                     "--data-dir", data_dir, "--shards", str(SHARDS), "--log-level", "info",
                     "--allow-anonymous", *flags]
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, errors="replace")
        self.out, self.err = [], []
        self.listening = queue.Queue()
        self.readers = [threading.Thread(target=self._read, args=(f, sink), daemon=True)
                        for f, sink in ((self.proc.stdout, self.out), (self.proc.stderr, self.err))]
        for t in self.readers:
            t.start()
        self.port = None
        try:
            line = self.listening.get(timeout=START_TIMEOUT)
        except queue.Empty:
            self.proc.kill()
            self.proc.wait()
            self._finish()
            raise AssertionError("broker neither started nor exited within %.0f s (hang?)\n%s"
                                 % (START_TIMEOUT, self.stderr()))
        if line is not None:
            self.port = int(line.rsplit(":", 1)[1])
        else:  # stdout closed: the process is exiting
            try:
                self.proc.wait(START_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self._finish()
                raise AssertionError("broker closed stdout but did not exit\n" + self.stderr())
            self._finish()

    def _finish(self):
        for t in self.readers:
            t.join(5)
        self.proc.stdout.close()
        self.proc.stderr.close()

    def _read(self, stream, sink):
        for line in stream:
            sink.append(line)
            if line.startswith("listening mqtt://"):
                self.listening.put(line.strip())
        if stream is self.proc.stdout:
            self.listening.put(None)

    @property
    def started(self):
        return self.port is not None

    @property
    def host(self):
        return "127.0.0.1"

    def stderr(self):
        return "".join(self.err)

    def stop(self, timeout=None):
        """SIGTERM; the exit status (a hang at shutdown is a failure)."""
        timeout = timeout or (60 if SANITIZED else 20)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self._finish()
                raise AssertionError("broker did not stop within %d s of SIGTERM\n%s"
                                     % (timeout, self.stderr()))
        self._finish()
        return self.proc.returncode

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self._finish()


def publish_acked(c, topic, payload, pid, retain=False, **p):
    c.publish(topic, payload, qos=1, pid=pid, retain=retain, **p)
    ack = c.recv_packet()
    assert ack.type == 4, ack.type


def unsubscribe(c, flt, pid=9):
    c.send(0xA2, struct.pack("!H", pid) + (props() if c.version == 5 else b"") + s(flt))
    assert c.recv_packet().type == 11


def drain_all(clients, quiet=0.4, limit=10.0):
    """Reads PUBLISHes from every client (acknowledging QoS 1) until none arrived for `quiet`
    seconds; returns {client: [(topic, payload, props)]}."""
    got = {c: [] for c in clients}
    by_sock = {c.sock: c for c in clients}
    end = time.time() + limit
    while time.time() < end:
        ready = [c for c in clients if c.buf]
        if not ready:
            readable, _, _ = select.select(list(by_sock), [], [], quiet)
            if not readable:
                break
            ready = [by_sock[x] for x in readable]
        for c in ready:
            try:
                pkt = c.recv_packet(timeout=2.0)
            except OSError:  # closed, or a partial packet that never completed
                by_sock.pop(c.sock, None)
                clients = [x for x in clients if x is not c]
                continue
            if pkt.type == 3:
                topic, payload, qos, pid, pr = c.parse_publish(pkt)
                got[c].append((topic, payload, pr))
                if qos == 1:
                    c.puback(pid)
        if not by_sock:
            break
    return got


class Fixture:
    """What was published while building a data directory, to judge what recovery returns."""

    def __init__(self):
        self.published = {}  # payload -> (topic, properties) of every QoS 1 PUBLISH
        self.retained = {}   # topic -> payloads ever retained there (non-empty)
        self.retained_now = {}  # topic -> the retained payload in force at the end
        self.acked = set()   # payloads the session "live" received and acknowledged

    def retain(self, topic, payload):
        if payload:
            self.retained.setdefault(topic, set()).add(payload)
            self.retained_now[topic] = payload
        else:
            self.retained_now.pop(topic, None)

    def build(self, b, rng):
        keep4 = RawClient(b, version=4).connect("keep4", clean=False)
        keep4.subscribe("data/#", opts=1)
        keep4.close()
        keep5 = RawClient(b).connect("keep5", clean=False, SessionExpiryInterval=3600)
        keep5.subscribe("data/+/t", opts=1, pid=1, SubscriptionIdentifier=7)
        keep5.subscribe("alert/#", opts=1, pid=2)
        keep5.subscribe("tmp/#", opts=1, pid=3)
        unsubscribe(keep5, "tmp/#")
        keep5.close()
        gone = RawClient(b).connect("gone", clean=False, SessionExpiryInterval=3600)
        gone.subscribe("data/#", opts=1)
        gone.close()
        live = RawClient(b, version=4).connect("live", clean=False)
        live.subscribe("data/#", opts=1)

        pub = RawClient(b).connect("pub")
        for i in range(48):
            topic = ["data/u1/t", "data/u2/t", "data/u1/x", "alert/a"][i % 4]
            payload = b"m%03d:" % i + bytes(rng.randrange(256) for _ in range(rng.randrange(200)))
            p = {}
            if topic.startswith("alert"):
                p = {"ContentType": "text/x-%d" % i, "UserProperty": [("k", "v%d" % i)],
                     "MessageExpiryInterval": 86400}
            publish_acked(pub, topic, payload, pid=i + 1, **p)
            self.published[payload] = (topic, p)
            if i == 30:  # a removed session: its records stay in the log before the removal
                RawClient(b).connect("gone", clean=True).close()
        for topic, payload in [("state/a", b"a1"), ("state/a", b"a2"), ("state/b", b"b1"),
                               ("state/c", b"c1"), ("state/c", b""), ("state/d", b"d1")]:
            publish_acked(pub, topic, payload, pid=100, retain=True)
            self.retain(topic, payload)
        pub.close()
        got = drain_all([live], quiet=0.5)[live]
        assert len(got) == 36, len(got)  # every data/# message, acknowledged
        self.acked = {payload for _, payload, _ in got}
        live.close()
        # Its acknowledgements are logged before its session-disconnected record (type 10,
        # body version 2, client id "live"): once that is written, all of them are.
        wal = os.path.join(b.args[b.args.index("--data-dir") + 1], "wal")
        wait_logged(wal, 10, b"\x02\x04live")


class CorruptionCase:
    """Mixed into the unittest classes below, which set ITERATIONS and STOP ('kill', 'term',
    'term-then-kill')."""

    ITERATIONS = 0
    STOP = "kill"
    SALT = 0

    @classmethod
    def setUpClass(cls):
        cls.seed = SEED + cls.SALT
        print("\n%s: seed %d (RINGMQ_WAL_SEED=%d replays the run), %d shard(s)"
              % (cls.__name__, cls.seed, SEED, SHARDS), file=sys.stderr)
        cls.root = tempfile.mkdtemp(prefix="ringmq-walcorrupt-")
        cls.template = os.path.join(cls.root, "template")
        cls.fixture = Fixture()
        b = Proc(cls.template)
        try:
            cls.fixture.build(b, random.Random(cls.seed))
        except Exception:
            b.kill()
            raise
        if cls.STOP == "kill":
            b.kill()
        else:
            assert b.stop() == 0, b.stderr()
            if cls.STOP == "term-then-kill":
                # A snapshot holding the state above, then a segment with records after it.
                b = Proc(cls.template)
                pub = RawClient(b).connect("pub2")
                for i in range(12):
                    payload = b"late%02d" % i
                    publish_acked(pub, "data/u3/t", payload, pid=i + 1)
                    cls.fixture.published[payload] = ("data/u3/t", {})
                publish_acked(pub, "state/b", b"b2", pid=50, retain=True)
                cls.fixture.retain("state/b", b"b2")
                pub.close()  # a clean session: nothing after the acknowledged records to wait for
                b.kill()
        names = sorted(os.listdir(os.path.join(cls.template, "wal")))
        print("  data dir: %s" % ", ".join(
            "%s (%d B)" % (n, os.path.getsize(os.path.join(cls.template, "wal", n)))
            for n in names), file=sys.stderr)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.root, ignore_errors=True)

    # ---- damage ---------------------------------------------------------------------------------

    def mutate(self, wal, rng):
        """Applies 1-3 random mutations to the files in `wal`; returns what was done."""
        done = []
        for _ in range(rng.choice([1, 1, 2, 3])):
            files = sorted(f for f in os.listdir(wal) if FILE_RE.fullmatch(f))
            if not files:
                break
            # Prefer files with records (a 32-byte segment of an idle shard is only a header).
            big = [f for f in files if os.path.getsize(os.path.join(wal, f)) > 32]
            name = rng.choice(big if big and rng.random() < 0.85 else files)
            path = os.path.join(wal, name)
            size = os.path.getsize(path)
            kind = rng.choice(["truncate", "truncate", "flip", "flip", "zero", "delete",
                               "append"])
            with open(path, "r+b") as f:
                data = bytearray(f.read())
                if kind == "truncate":
                    at = rng.randrange(size + 1)
                    del data[at:]
                    what = "truncate at %d" % at
                elif kind == "flip":
                    offsets = sorted(rng.randrange(size) for _ in range(rng.randint(1, 4))) \
                        if size else []
                    for o in offsets:
                        data[o] ^= rng.randrange(1, 256)
                    what = "flip bytes at %s" % offsets
                elif kind == "zero":
                    at = rng.randrange(size + 1)
                    n = min(size - at, rng.choice([1, 8, 64, 1 << 20]))
                    data[at:at + n] = bytes(n)
                    what = "zero [%d, %d)" % (at, at + n)
                elif kind == "append":
                    n = rng.randrange(1, 300)
                    junk = bytes(rng.randrange(256) for _ in range(n))
                    if rng.random() < 0.5:  # a plausible frame header, then too few bytes
                        junk = struct.pack("<IB", n + 40, rng.randint(1, 11)) + junk
                    data += junk
                    what = "append %d bytes" % len(junk)
                else:
                    what = "delete"
                if kind != "delete":
                    f.seek(0)
                    f.truncate()
                    f.write(data)
            if kind == "delete":
                os.unlink(path)
            done.append("%s: %s (was %d B)" % (name, what, size))
        return done

    # ---- checks ---------------------------------------------------------------------------------

    def assert_no_sanitizer_report(self, p, ctx):
        text = p.stderr()
        for mark in SANITIZER_MARKS:
            self.assertNotIn(mark, text, "%s: sanitizer report\n%s" % (ctx, text[-4000:]))

    def check_strict(self, data_dir, ctx, names=None):
        """Strict start on `data_dir`: True if it started (and stopped cleanly), False if it
        refused, with a non-zero exit (not a signal) and an error naming a WAL file (`names`, if
        given)."""
        p = Proc(data_dir, "--recover-strict")
        if p.started:
            rc = p.stop()
            self.assertEqual(rc, 0, "%s: strict broker exit status %s\n%s" % (ctx, rc, p.stderr()))
            self.assert_no_sanitizer_report(p, ctx)
            return True
        rc = p.proc.returncode
        self.assertGreater(rc, 0, "%s: strict broker died by signal %d\n%s"
                           % (ctx, -rc if rc < 0 else rc, p.stderr()))
        self.assert_no_sanitizer_report(p, ctx)
        last = p.stderr().strip().splitlines()[-1] if p.stderr().strip() else ""
        self.assertTrue("start failed" in last and FILE_RE.search(last),
                        "%s: strict refusal does not name the file: %r" % (ctx, last))
        if names is not None:
            self.assertIn(names, last, "%s: strict refusal does not name %s" % (ctx, names))
        return False

    def check_lenient(self, data_dir, ctx, quiet=0.4):
        """Lenient start: answers CONNECT, delivers only what was published, stops cleanly.
        Returns (whether recovery reported corruption, {session: payloads}, {topic: retained})."""
        p = Proc(data_dir)
        self.assertTrue(p.started, "%s: lenient broker did not start (exit %s)\n%s"
                        % (ctx, p.proc.returncode, p.stderr()))
        try:
            probe = RawClient(p, version=4).connect("probe")
            probe.close()
            keep4 = RawClient(p, version=4).connect("keep4", clean=False)
            keep5 = RawClient(p).connect("keep5", clean=False, SessionExpiryInterval=3600)
            live = RawClient(p, version=4).connect("live", clean=False)
            late = RawClient(p)
            late.connect("retained-reader")
            late.subscribe("state/#", opts=1)
            got = drain_all([keep4, keep5, live, late], quiet=quiet)
            for c in (keep4, keep5, live, late):
                c.close()
        except Exception:
            p.kill()
            raise
        rc = p.stop()
        self.assertEqual(rc, 0, "%s: lenient broker exit status %s\n%s" % (ctx, rc, p.stderr()))
        self.assert_no_sanitizer_report(p, ctx)

        for c, name in ((keep4, "keep4"), (keep5, "keep5"), (live, "live")):
            seen = set()
            for topic, payload, pr in got[c]:
                self.assertIn(payload, self.fixture.published,
                              "%s: %s got a message never published: %r %r"
                              % (ctx, name, topic, payload[:40]))
                want_topic, want = self.fixture.published[payload]
                self.assertEqual(topic, want_topic, "%s: %s: topic changed" % (ctx, name))
                self.assertNotIn(payload, seen, "%s: %s got %r twice" % (ctx, name, payload[:8]))
                seen.add(payload)
                if c.version == 5 and want:
                    self.assertEqual(pr.get("ContentType"), want["ContentType"], ctx)
                    self.assertEqual(pr.get("UserProperty"), want["UserProperty"], ctx)
                    self.assertLessEqual(pr.get("MessageExpiryInterval", 0), 86400, ctx)
        retained = {}
        for topic, payload, pr in got[late]:
            self.assertIn(payload, self.fixture.retained.get(topic, set()),
                          "%s: retained %r=%r was never published" % (ctx, topic, payload))
            self.assertNotIn(topic, retained, "%s: two retained messages for %s" % (ctx, topic))
            retained[topic] = payload
        sessions = {name: {payload for _, payload, _ in got[c]}
                    for c, name in ((keep4, "keep4"), (keep5, "keep5"), (live, "live"))}
        return any(CORRUPT_RE.search(line) for line in p.err), sessions, retained

    def test_intact_copy_recovers_everything(self):
        # The reference for the subset checks: undamaged, recovery returns all that is due.
        work = os.path.join(self.root, "intact")
        shutil.copytree(self.template, work)
        shutil.copytree(self.template, work + "-strict")
        self.assertTrue(self.check_strict(work + "-strict", "intact copy"))
        # A longer quiet period: here a message that comes late would be a false failure.
        corrupt, sessions, retained = self.check_lenient(work, "intact copy", quiet=2.0)
        self.assertFalse(corrupt)
        for name, want in self.due().items():
            self.assertEqual(sessions[name], want, "%s: %d of %d due messages"
                             % (name, len(sessions[name] & want), len(want)))
        self.assertEqual(retained, self.fixture.retained_now)

    def due(self):
        """What each persistent session must get back from an undamaged directory."""
        f = self.fixture
        return {
            "keep4": {m for m, (t, _) in f.published.items() if t.startswith("data/")},
            "keep5": {m for m, (t, _) in f.published.items()
                      if re.fullmatch(r"data/[^/]+/t|alert/.*", t)},
            "live": {m for m, (t, _) in f.published.items() if t.startswith("data/")} - f.acked,
        }

    # ---- targeted damage --------------------------------------------------------------------

    def copy(self, name):
        work = os.path.join(self.root, name)
        shutil.copytree(self.template, work)
        shutil.copytree(self.template, work + "-strict")
        return work, os.path.join(work, "wal"), os.path.join(work + "-strict", "wal")

    def largest(self, kind, min_frames):
        """The name of the WAL file of `kind` ('wal' or 'snap') with the most records (at least
        min_frames), or None."""
        best, best_n = None, min_frames - 1
        for name in sorted(os.listdir(os.path.join(self.template, "wal"))):
            if FILE_RE.fullmatch(name) and name.startswith(kind + "-"):
                with open(os.path.join(self.template, "wal", name), "rb") as f:
                    n = len(frames(f.read()))
                if n > best_n:
                    best, best_n = name, n
        return best

    def test_flipped_byte_in_a_snapshot_loses_one_record_at_most(self):
        name = self.largest("snap", 3)  # two records and the end record, at least
        if name is None:
            self.skipTest("no snapshot holds records in this data directory")
        work, wal, strict_wal = self.copy("flip-snapshot")
        for d in (wal, strict_wal):
            with open(os.path.join(d, name), "r+b") as f:
                data = bytearray(f.read())
                records = frames(data)[:-1]  # not the end record
                off, size, _ = records[len(records) // 2]
                data[off + 9 + (size - 9) // 2] ^= 0x04  # inside the body
                f.seek(0)
                f.write(data)
        ctx = "%s: %s: one flipped byte in a record" % (type(self).__name__, name)
        self.assertFalse(self.check_strict(work + "-strict", ctx, names=name))
        corrupt, sessions, retained = self.check_lenient(work, ctx, quiet=2.0)
        self.assertTrue(corrupt, ctx)
        # One record lost touches one session (a message, a subscription, or the session itself)
        # or one retained message; the snapshot's other records come back.
        damaged = [n for n, want in self.due().items() if sessions[n] != want]
        lost_retained = set(self.fixture.retained_now) - set(retained)
        self.assertLessEqual(len(damaged) + len(lost_retained), 1,
                             "%s: sessions %s and retained %s lost" % (ctx, damaged, lost_retained))
        self.assertTrue(os.path.exists(os.path.join(wal, name + ".bad")),
                        "%s: the damaged snapshot was not kept" % ctx)
        self.assertTrue(self.check_strict(work, ctx + " (after lenient recovery)"))

    def test_deleted_snapshot_with_its_segment_is_reported(self):
        name = self.largest("snap", 1)
        work, wal, strict_wal = self.copy("delete-snapshot")
        for d in (wal, strict_wal):
            os.unlink(os.path.join(d, name))
        ctx = "%s: %s deleted" % (type(self).__name__, name)
        self.assertFalse(self.check_strict(work + "-strict", ctx, names=name))
        corrupt, _, _ = self.check_lenient(work, ctx)
        self.assertTrue(corrupt, "%s: lenient recovery did not report it" % ctx)
        self.assertTrue(self.check_strict(work, ctx + " (after lenient recovery)"))

    def test_deleted_middle_segment_is_reported(self):
        # The broker rolls segments at 64 MiB: split the fullest segment in three at record
        # boundaries, as rolls would have written it, then delete the middle one.
        name = self.largest("wal", 3)
        if name is None:
            self.skipTest("no segment holds three records in this data directory")
        shard, seq = (int(x) for x in name[4:-4].split("-"))
        work, wal, strict_wal = self.copy("delete-segment")
        for d in (wal, strict_wal):
            with open(os.path.join(d, name), "rb") as f:
                data = f.read()
            fr = frames(data)
            cut1, cut2 = fr[len(fr) // 3][0], fr[2 * len(fr) // 3][0]
            with open(os.path.join(d, name), "r+b") as f:
                f.truncate(cut1)
            for i, (a, b) in enumerate(((cut1, cut2), (cut2, len(data))), start=1):
                with open(os.path.join(d, wal_name("wal", shard, seq + i)), "wb") as f:
                    f.write(segment_header(shard, seq + i, 2) + data[a:b])
        # Split but complete: the three segments are a healthy log.
        self.assertTrue(self.check_strict(work + "-strict", "split " + name))
        shutil.rmtree(work + "-strict")
        shutil.copytree(work, work + "-strict")
        middle = wal_name("wal", shard, seq + 1)
        for d in (wal, strict_wal):
            os.unlink(os.path.join(d, middle))
        ctx = "%s: %s split in three, %s deleted" % (type(self).__name__, name, middle)
        self.assertFalse(self.check_strict(work + "-strict", ctx, names=middle))
        corrupt, _, _ = self.check_lenient(work, ctx)
        self.assertTrue(corrupt, "%s: lenient recovery did not report it" % ctx)
        self.assertTrue(self.check_strict(work, ctx + " (after lenient recovery)"))

    def test_damaged_copies(self):
        rng = random.Random(self.seed)
        work = os.path.join(self.root, "work")
        refused = 0
        for i in range(self.ITERATIONS):
            shutil.rmtree(work, ignore_errors=True)
            shutil.copytree(self.template, work)
            done = self.mutate(os.path.join(work, "wal"), rng)
            ctx = "%s iteration %d (seed %d): %s" % (type(self).__name__, i, self.seed,
                                                    "; ".join(done))
            with self.subTest(i=i):
                strict_dir = work + "-strict"
                shutil.rmtree(strict_dir, ignore_errors=True)
                shutil.copytree(work, strict_dir)
                strict_started = self.check_strict(strict_dir, ctx)
                refused += not strict_started
                corrupt, _, _ = self.check_lenient(work, ctx)
                # Strict refuses exactly what lenient recovery reports as corrupt.
                self.assertEqual(strict_started, not corrupt,
                                 "%s: strict %s but lenient recovery %s corruption"
                                 % (ctx, "started" if strict_started else "refused",
                                    "reported" if corrupt else "reported no"))
                # What lenient recovery leaves behind (a fresh snapshot, the damage pruned) is
                # healthy.
                self.assertTrue(self.check_strict(work, ctx + " (after lenient recovery)"),
                                "%s: the recovered directory is still corrupt" % ctx)
        print("  %d damaged copies: strict recovery refused %d, accepted %d"
              % (self.ITERATIONS, refused, self.ITERATIONS - refused), file=sys.stderr)


class AfterSigkill(CorruptionCase, unittest.TestCase):
    """Killed: everything is in the segments (the startup snapshot is empty)."""

    ITERATIONS = iterations(16)
    STOP = "kill"
    SALT = 0


class AfterCleanStop(CorruptionCase, unittest.TestCase):
    """Stopped with SIGTERM: everything is in the shutdown snapshot."""

    ITERATIONS = iterations(12)
    STOP = "term"
    SALT = 1


class SnapshotThenSegment(CorruptionCase, unittest.TestCase):
    """Stopped with SIGTERM, restarted, more published, killed: a snapshot and a segment."""

    ITERATIONS = iterations(12)
    STOP = "term-then-kill"
    SALT = 2


if __name__ == "__main__":
    unittest.main(verbosity=2)
