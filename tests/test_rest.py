"""The REST API's HTTP server against hostile or careless clients, on the real broker: slow and
stalled requests (slowloris) never lock the operator out, trickling heads are cut at their
deadline, ambiguous credentials are refused, and the last master token is not deleted by accident."""
import socket
import time
import unittest

from broker import TIMEOUT, Broker, BrokerTest, wait_until


def rest_socket(broker):
    s = socket.create_connection(("127.0.0.1", broker.rest_port), timeout=TIMEOUT)
    return s


def read_response(s):
    """Reads one Content-Length framed response; returns (status, head, body), status 0 on EOF."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            return 0, "", ""
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    head = head.decode()
    length = 0
    for line in head.split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name.lower() == "content-length":
            length = int(value)
    while len(body) < length:
        chunk = s.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(head[9:12]), head, body.decode()


def closed_by_peer(s):
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True


class SlowClients(BrokerTest):
    def setUp(self):
        self.broker = Broker("--rest-max-connections", "16", "--rest-header-timeout", "1")
        self.clients = []

    def test_half_sent_requests_do_not_lock_out_the_operator(self):
        status, reply = self.broker.rest("POST", "/platform/tokens", {"info": "user", "ttl": 3600})
        self.assertEqual(status, 200, reply)
        user = reply["result"][0]["id"]
        # More half-sent requests than the connection limit, all still within their deadline.
        slow = []
        for _ in range(40):
            s = rest_socket(self.broker)
            s.sendall(b"GET /platform/tokens/all HTTP/1.1\r\nHost: x\r\nX-Slow: a")
            slow.append(s)
        # The operator revokes the token at once and is answered.
        status, reply = self.broker.rest("DELETE", "/platform/tokens/%d" % user)
        self.assertEqual(status, 200, reply)
        self.assertEqual(reply["result"], [{"id": user}])
        # The oldest half-sent requests made room, and it was logged.
        self.assertTrue(closed_by_peer(slow[0]))
        self.assertTrue(wait_until(lambda: any(
            "closed: the oldest stalled connection" in line for line in self.broker.err_lines)))
        for s in slow:
            s.close()

    def test_trickling_head_is_cut_at_its_deadline(self):
        s = rest_socket(self.broker)
        s.sendall(b"GET /healthz HTTP/1.1\r\n")
        s.setblocking(False)
        start = time.monotonic()
        # One header byte every 50 ms: each would have reset an idle timer; the head deadline
        # (1 s) counts from the head's first byte. Stop as soon as the server answers.
        answered = False
        while time.monotonic() - start < 5 and not answered:
            try:
                s.send(b"a")
            except (BlockingIOError, BrokenPipeError, ConnectionResetError):
                break
            try:
                answered = s.recv(1, socket.MSG_PEEK) is not None
            except BlockingIOError:
                time.sleep(0.05)  # pacing the trickle, not synchronisation
            except ConnectionResetError:
                break
        s.setblocking(True)
        s.settimeout(TIMEOUT)
        status, head, body = read_response(s)
        elapsed = time.monotonic() - start
        self.assertEqual(status, 408, head)
        self.assertIn("request head not complete within 1000 ms", body)
        self.assertIn("Connection: close", head)
        self.assertLess(elapsed, 4)
        self.assertTrue(closed_by_peer(s))
        s.close()
        self.assertTrue(wait_until(lambda: any(
            "timed out: request head not complete" in line for line in self.broker.err_lines)))
        # A prompt client is still served.
        self.assertEqual(self.broker.rest("GET", "/healthz")[0], 200)


class RestDetails(BrokerTest):
    def test_duplicate_authorization_header_is_refused(self):
        s = rest_socket(self.broker)
        s.sendall(("GET /platform/tokens/all HTTP/1.1\r\nAuthorization: Bearer nosuchkey\r\n"
                   "Authorization: Bearer %s\r\n\r\n" % self.broker.master_token).encode())
        status, head, body = read_response(s)
        self.assertEqual(status, 400, head)
        self.assertIn("duplicate Authorization header", body)
        s.close()

    def test_expect_continue_is_answered_only_after_authorization(self):
        s = rest_socket(self.broker)
        s.sendall(b"POST /platform/tokens HTTP/1.1\r\nAuthorization: Bearer nosuchkey\r\n"
                  b"Expect: 100-continue\r\nContent-Length: 2\r\n\r\n")
        status, head, _ = read_response(s)
        self.assertEqual(status, 401, head)  # not 100 Continue
        s.close()
        s = rest_socket(self.broker)
        s.sendall(("POST /platform/tokens?fields=info HTTP/1.1\r\nAuthorization: Bearer %s\r\n"
                   "Expect: 100-continue\r\nContent-Length: 21\r\n\r\n"
                   % self.broker.master_token).encode())
        self.assertEqual(s.recv(64), b"HTTP/1.1 100 Continue\r\n\r\n")
        s.sendall(b'{"info":"e","ttl":60}')
        status, head, body = read_response(s)
        self.assertEqual(status, 200, head)
        self.assertEqual(body, '{"result":[{"info":"e"}]}')
        s.close()

    def test_delete_with_bad_fields_deletes_nothing(self):
        status, reply = self.broker.rest("POST", "/platform/tokens", {"info": "user", "ttl": 3600})
        self.assertEqual(status, 200, reply)
        user = reply["result"][0]["id"]
        status, _ = self.broker.rest("DELETE", "/platform/tokens/%d?fields=nonsense" % user)
        self.assertEqual(status, 400)
        status, reply = self.broker.rest("GET", "/platform/tokens/%d?fields=id" % user)
        self.assertEqual((status, reply), (200, {"result": [{"id": user}]}))

    def test_deleting_every_token_keeps_the_last_master_unless_asked(self):
        status, reply = self.broker.rest("DELETE", "/platform/tokens/all")
        self.assertEqual(status, 409, reply)
        self.assertIn("delete_last_master=true", reply["errors"][0]["reason"])
        self.assertEqual(self.broker.rest("GET", "/platform/tokens/all")[0], 200)
        status, reply = self.broker.rest("DELETE", "/platform/tokens/all?delete_last_master=true")
        self.assertEqual(status, 200, reply)
        self.assertEqual(self.broker.rest("GET", "/platform/tokens/all")[0], 401)


if __name__ == "__main__":
    unittest.main(verbosity=2)
