"""10,000 connections of random and half-valid bytes (fixed seed), at most 200
at a time; afterwards the server must still be running and answer correctly,
and once it has seen every connection close it holds no socket more than
before. No response may be a 500: garbage is the client's fault (API.md
section 2).
"""

import errno
import json
import os
import random
import re
import selectors
import socket
import struct
import time
import unittest

from ncfixture import SLOW, ServerTestCase

SEED = 20240611
CONNECTIONS = 10000
CONCURRENCY = 200
PER_CONN_SECONDS = 0.5   # after the last byte is sent, wait this long at most
CONNECT_SECONDS = 10.0  # to connect and send everything
TOTAL_SECONDS = 90.0     # for the whole run (scaled under sanitizers)

MOVIE = json.dumps({"movie": {"title": "Fuzz", "premiereDate": "2000-01-01",
                              "director": "D", "genre": "G"}}).encode()
CHANNEL = json.dumps({"notificationChannel": {
    "channelType": "LongPolling", "clientCorrelator": "fz",
    "channelData": {"maxNotifications": 3}, "applicationTag": "fuzz"}}).encode()


def req(method, path, body=None, ctype=b"application/json", extra=b""):
    out = b"%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n" % (method, path)
    if body is not None:
        out += b"Content-Type: %s\r\nContent-Length: %d\r\n" % (ctype, len(body))
    return out + extra + b"\r\n" + (body or b"")


# Valid requests that change nothing the test checks afterwards: movie 1 is
# only read, writes go to new or unknown movies and new channels.
TEMPLATES = [
    req(b"GET", b"/movies/v1/movies/1"),
    req(b"GET", b"/movies/v1/movies?limit=3&offset=2&title=a"),
    req(b"HEAD", b"/movies/v1/movies/1"),
    req(b"GET", b"/health"),
    req(b"POST", b"/movies/v1/movies", MOVIE),
    req(b"PUT", b"/movies/v1/movies/987654321", MOVIE),
    req(b"PATCH", b"/movies/v1/movies/987654321", b'{"movie":{"genre":"X"}}'),
    req(b"POST", b"/movies/v1/movies", MOVIE, b"application/xml"),
    req(b"POST", b"/notificationchannel/v1/acr%3Afuzz/channels", CHANNEL),
    req(b"GET", b"/notificationchannel/v1/acr%3Afuzz/channels"),
    req(b"POST", b"/notificationchannel/v1/acr%3Afuzz/channels",
        b"channelType=LongPolling&maxNotifications=2",
        b"application/x-www-form-urlencoded"),
    req(b"POST", b"/notificationchannel/v1/callbacks/nosuchcallback",
        b'{"movieNotification":{"callbackData":"x"}}'),
    req(b"GET", b"/notificationchannel/v1/acr%3Afuzz/channels/nosuch/ws",
        extra=b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
              b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
              b"Sec-WebSocket-Protocol: notificationchannel-netapi-rest.openmobilealliance.org\r\n"),
    b"POST /movies/v1/movies HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n5\r\n{\"mov\r\n3\r\nie\"\r\n0\r\n\r\n",
]

REQUEST_LINES = [b"GET / HTTP/1.1\r\n", b"GET /movies/v1/movies/1 HTTP/1.1\r\n",
                 b"POST /movies/v1/movies HTTP/1.1\r\n",
                 b"POST /notificationchannel/v1/acr%3Afuzz/channels HTTP/1.1\r\n",
                 b"PATCH /movies/v1/movies/987654321 HTTP/1.1\r\n"]

TOKEN_CHARS = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_:;/ ,.={}[]\"%\t"


def open_sockets(pid):
    """The sockets process `pid` holds open (its listener, its connections)."""
    count = 0
    fd_dir = "/proc/%d/fd" % pid
    for fd in os.listdir(fd_dir):
        try:
            if os.readlink(os.path.join(fd_dir, fd)).startswith("socket:"):
                count += 1
        except FileNotFoundError:
            pass  # closed while we looked
    return count


def rand_bytes(rng, n):
    return rng.randbytes(n)


def rand_len(rng):
    return rng.choice((rng.randint(1, 16), rng.randint(1, 256), rng.randint(1, 4096)))


def mutate(rng, data):
    data = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        op = rng.randrange(6)
        pos = rng.randrange(len(data) + 1)
        if op == 0 and data:
            data[min(pos, len(data) - 1)] = rng.getrandbits(8)
        elif op == 1:
            data[pos:pos] = rand_bytes(rng, rng.randint(1, 16))
        elif op == 2:
            del data[pos:pos + rng.randint(1, 16)]
        elif op == 3:
            data[pos:pos] = rng.choice((b"\r\n", b"\r\n\r\n", b"\n", b"\r", b":", b" ",
                                        b"\x00", b"Content-Length: 99999\r\n",
                                        b"Transfer-Encoding: chunked\r\n",
                                        b"Expect: 100-continue\r\n"))
        elif op == 4 and data:
            a = rng.randrange(len(data))
            data[pos:pos] = data[a:a + rng.randint(1, 64)]
        else:
            del data[pos:]
    return bytes(data)


def payload(rng):
    kind = rng.randrange(8)
    if kind == 0:
        data = rand_bytes(rng, rand_len(rng))
    elif kind == 1:
        data = rng.choice(REQUEST_LINES) + rand_bytes(rng, rand_len(rng))
    elif kind == 2:
        data = rng.choice(REQUEST_LINES) + b"Host: x\r\n" + \
            bytes(rng.choice(TOKEN_CHARS) if rng.random() > 0.05 else 10
                  for _ in range(rand_len(rng)))
    elif kind == 3:
        body = rand_bytes(rng, rand_len(rng)) if rng.random() < 0.5 else \
            mutate(rng, rng.choice((MOVIE, CHANNEL)))
        data = req(rng.choice((b"POST", b"PUT", b"PATCH")),
                   rng.choice((b"/movies/v1/movies", b"/movies/v1/movies/987654321",
                               b"/notificationchannel/v1/acr%3Afuzz/channels")),
                   body, rng.choice((b"application/json", b"application/xml",
                                     b"application/x-www-form-urlencoded")))
    elif kind == 4:
        data = mutate(rng, rng.choice(TEMPLATES))
    elif kind == 5:
        # A valid request, then garbage on the same connection.
        data = rng.choice(TEMPLATES) + rand_bytes(rng, rand_len(rng))
    elif kind == 6:
        # Chunked framing with random sizes and data.
        data = b"POST /movies/v1/movies HTTP/1.1\r\nHost: x\r\nContent-Type: " \
               b"application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        for _ in range(rng.randint(1, 6)):
            n = rng.randint(0, 64)
            size = b"%x" % n if rng.random() < 0.8 else rand_bytes(rng, rng.randint(1, 6))
            data += size + b"\r\n" + rand_bytes(rng, n) + b"\r\n"
    else:
        # A WebSocket upgrade for an unknown channel, then random frames.
        data = TEMPLATES[12] + struct.pack("!BB", 0x81, 0x80 | 5) + rand_bytes(rng, 9) + \
            rand_bytes(rng, rand_len(rng))
    return data[:4096] or b"\r"


class Conn:
    __slots__ = ("sock", "data", "sent", "resp", "done_at", "created", "mode", "index")


class FuzzTest(ServerTestCase):

    def test_random_connections(self):
        # Sockets only: SQLite's files and the checkpoint worker's connection
        # may open later, and are no connection leak.
        sockets_before = open_sockets(self.server.proc.pid)
        before = self.server.get("/movies/v1/movies/1")
        self.assertStatus(before, 200)
        stats, bad = self.run_fuzz()
        self.server.assert_running()
        r = self.server.get("/health")
        self.assertStatus(r, 200)
        self.assertEqual(r.json().get("status"), "ok")
        after = self.server.get("/movies/v1/movies/1")
        self.assertStatus(after, 200)
        self.assertEqual(after.json(), before.json())
        self.assertEqual(stats["done"], CONNECTIONS, stats)
        self.assertEqual(stats["refused"], 0, "connections refused: %r" % stats)
        if bad:
            self.fail("%d responses with a 5xx (other than 503) to fuzz input; stats %r; "
                      "first ones (status, sent, got):\n%s"
                      % (stats["server_errors"], stats, "\n".join(repr(b) for b in bad[:3])))
        # Several statuses were seen: the server did parse some of this.
        self.assertGreater(stats["answered"], CONNECTIONS // 4, stats)
        # The server read every byte we sent (a connection is stuck when
        # sending did not finish within CONNECT_SECONDS). `timeout` is no
        # error: it counts connections we gave up on while the server rightly
        # waited, for the rest of an incomplete request or the next request
        # on a keep-alive connection.
        self.assertEqual(stats["stuck"], 0, stats)
        # Every fuzz connection is closed on our side: the server notices
        # each (EOF or reset; at most LINGER_MS after its last answer) and
        # keeps none of them.
        deadline = time.monotonic() + 30 * SLOW
        while True:
            sockets_now = open_sockets(self.server.proc.pid)
            if sockets_now <= sockets_before or time.monotonic() > deadline:
                break
            time.sleep(0.1)  # polling, bounded by the deadline
        self.assertEqual(sockets_now, sockets_before,
                         "the server still holds %d sockets %.0f s after the fuzz run, "
                         "%d before it" % (sockets_now, 30 * SLOW, sockets_before))

    def run_fuzz(self):
        rng = random.Random(SEED)
        host, port = self.server.host, self.server.port
        sel = selectors.DefaultSelector()
        stats = {"done": 0, "refused": 0, "reset": 0, "answered": 0, "timeout": 0, "stuck": 0, "server_errors": 0,
                 "statuses": {}}
        bad = []
        active = set()
        started = 0
        deadline = time.monotonic() + TOTAL_SECONDS * SLOW

        def finish(c):
            sel.unregister(c.sock)
            if c.mode == "reset":
                c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            c.sock.close()
            active.discard(c)
            stats["done"] += 1
            m = re.match(rb"HTTP/1\.[01] (\d{3})", c.resp)
            if m:
                status = int(m.group(1))
                stats["answered"] += 1
                stats["statuses"][status] = stats["statuses"].get(status, 0) + 1
                # 503 is the connection limit and 505 a version we do not
                # speak; any other 5xx means garbage reached a code path that
                # failed (a Lua error answers 500).
                if status >= 500 and status not in (503, 505):
                    stats["server_errors"] += 1
                    if len(bad) < 10:
                        bad.append((status, c.data[:300], c.resp[:200]))

        while started < CONNECTIONS or active:
            now = time.monotonic()
            if now > deadline:
                self.fail("fuzz run not finished in %.0f s: %d started, %r"
                          % (TOTAL_SECONDS * SLOW, started, stats))
            while started < CONNECTIONS and len(active) < CONCURRENCY:
                c = Conn()
                c.index = started
                c.data = payload(rng)
                c.mode = rng.choice(("wait", "wait", "halfclose", "reset"))
                c.sent = 0
                c.resp = b""
                c.done_at = None
                c.created = time.monotonic()
                c.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                c.sock.setblocking(False)
                err = c.sock.connect_ex((host, port))
                if err not in (0, errno.EINPROGRESS):
                    c.sock.close()
                    stats["refused"] += 1
                    stats["done"] += 1
                    started += 1
                    continue
                sel.register(c.sock, selectors.EVENT_WRITE, c)
                active.add(c)
                started += 1
            for key, mask in sel.select(timeout=0.05):
                c = key.data
                if c not in active:
                    continue
                if mask & selectors.EVENT_WRITE:
                    err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if err == errno.ECONNREFUSED:
                        stats["refused"] += 1
                        finish(c)
                        continue
                    try:
                        c.sent += c.sock.send(c.data[c.sent:])
                    except BlockingIOError:
                        continue
                    except OSError:
                        stats["reset"] += 1
                        c.done_at = time.monotonic()
                        sel.modify(c.sock, selectors.EVENT_READ, c)
                        continue
                    if c.sent >= len(c.data):
                        if c.mode == "halfclose":
                            try:
                                c.sock.shutdown(socket.SHUT_WR)
                            except OSError:
                                pass
                        c.done_at = time.monotonic()
                        sel.modify(c.sock, selectors.EVENT_READ, c)
                elif mask & selectors.EVENT_READ:
                    try:
                        chunk = c.sock.recv(65536)
                    except BlockingIOError:
                        continue
                    except OSError:
                        stats["reset"] += 1
                        chunk = b""
                    if not chunk:
                        finish(c)
                    elif len(c.resp) < 65536:
                        c.resp += chunk
            now = time.monotonic()
            for c in list(active):
                if c.done_at is not None and now - c.done_at > PER_CONN_SECONDS:
                    stats["timeout"] += 1
                    finish(c)
                elif c.done_at is None and now - c.created > CONNECT_SECONDS * SLOW:
                    # Never connected, or the server stopped reading our bytes.
                    stats["stuck"] += 1
                    finish(c)
        sel.close()
        return stats, bad


if __name__ == "__main__":
    unittest.main()
