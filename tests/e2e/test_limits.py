"""The limits of core/limits.h, crossed with small values set through --config:
431, 413, the header (slow-loris), body and idle timeouts, max_connections,
and a client that pipelines without reading (max_pending_write_bytes).
"""

import json
import select
import time
import unittest
import uuid

from ncfixture import (SANITIZED, SLOW, ConnectionClosed, ServerTestCase,
                       socket_closed_error)

MOVIES = "/movies/v1/movies"


def get(path, extra=""):
    return ("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n" % (path, extra)).encode()


def movie_json(size):
    """A valid movie document of exactly `size` bytes (padded with spaces)."""
    doc = json.dumps({"movie": {"title": "Limits " + uuid.uuid4().hex[:10],
                                "premiereDate": "2011-11-11", "director": "D",
                                "genre": "G"}}).encode()
    assert len(doc) <= size
    return doc[:-1] + b" " * (size - len(doc)) + b"}"


def post_head(length=None, chunked=False, extra=""):
    h = "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" % MOVIES
    if chunked:
        h += "Transfer-Encoding: chunked\r\n"
    else:
        h += "Content-Length: %d\r\n" % length
    return (h + extra + "\r\n").encode()


def chunked(body, size):
    out = b""
    for i in range(0, len(body), size):
        part = body[i:i + size]
        out += b"%x\r\n" % len(part) + part + b"\r\n"
    return out + b"0\r\n\r\n"


class SmallLimitsTest(ServerTestCase):
    server_config = {"max_header_bytes": 1024, "max_body_bytes": 2048,
                     "header_timeout_ms": 300, "idle_timeout_ms": 500}

    def exchange(self, data):
        """Sends `data` on a new connection; returns (response or None,
        closed-afterwards)."""
        c = self.server.raw()
        try:
            try:
                c.send(data)
            except OSError as e:
                if not socket_closed_error(e):
                    raise
            try:
                r = c.read_response()
            except ConnectionClosed:
                r = None
            return r, c.wait_closed(5 * SLOW)
        finally:
            c.close()

    # ---- 431 ---------------------------------------------------------------

    def test_headers_under_limit_ok(self):
        r, _ = self.exchange(get("/health", "X-Pad: %s\r\n" % ("a" * 600)))
        self.assertIsNotNone(r)
        self.assertStatus(r, 200)

    def test_one_big_header_431(self):
        r, closed = self.exchange(get("/health", "X-Big: %s\r\n" % ("a" * 2000)))
        self.assertIsNotNone(r, "no response to an oversized header")
        self.assertStatus(r, 431)
        self.assertTrue(closed, "connection left open after 431")

    def test_many_headers_431(self):
        extra = "".join("X-H%d: %s\r\n" % (i, "b" * 20) for i in range(60))
        r, closed = self.exchange(get("/health", extra))
        self.assertIsNotNone(r, "no response to oversized headers")
        self.assertStatus(r, 431)
        self.assertTrue(closed)

    def test_long_request_line_431(self):
        r, closed = self.exchange(get("/health?" + "q" * 3000))
        self.assertIsNotNone(r, "no response to an oversized request line")
        self.assertIn(r.status, (414, 431), r)
        self.assertTrue(closed)

    # ---- 413 ---------------------------------------------------------------

    def test_body_at_limit_ok(self):
        body = movie_json(2048)
        r, _ = self.exchange(post_head(len(body)) + body)
        self.assertIsNotNone(r)
        self.assertStatus(r, 201, "a body of exactly max_body_bytes")

    def test_body_over_limit_413(self):
        body = movie_json(2049)
        r, closed = self.exchange(post_head(len(body)) + body)
        self.assertIsNotNone(r, "no response to an oversized body")
        self.assertStatus(r, 413)
        self.assertTrue(closed, "connection left open after 413")

    def test_content_length_over_limit_413_before_body(self):
        # The declared length alone is enough to refuse: no body is sent.
        r, closed = self.exchange(post_head(10 ** 9))
        self.assertIsNotNone(r, "no response to a huge Content-Length")
        self.assertStatus(r, 413)
        self.assertTrue(closed)

    def test_expect_continue_over_limit_413(self):
        r, closed = self.exchange(post_head(3000, extra="Expect: 100-continue\r\n"))
        self.assertIsNotNone(r)
        self.assertStatus(r, 413, "instead of 100 Continue")
        self.assertTrue(closed)

    def test_chunked_under_limit_ok(self):
        body = movie_json(1500)
        r, _ = self.exchange(post_head(chunked=True) + chunked(body, 400))
        self.assertIsNotNone(r)
        self.assertStatus(r, 201)

    def test_chunked_over_limit_413(self):
        body = movie_json(3000)
        r, closed = self.exchange(post_head(chunked=True) + chunked(body, 1000))
        self.assertIsNotNone(r, "no response to an oversized chunked body")
        self.assertStatus(r, 413)
        self.assertTrue(closed)

    def test_chunked_one_huge_chunk_413(self):
        # A chunk size past the limit, with little data behind it.
        r, closed = self.exchange(post_head(chunked=True) + b"fffffff\r\n" + b"x" * 100)
        self.assertIsNotNone(r)
        self.assertStatus(r, 413)
        self.assertTrue(closed)

    # ---- timeouts ------------------------------------------------------------

    def test_slow_headers_disconnected(self):
        data = get("/health", "X-Slow: %s\r\n" % ("s" * 200))
        c = self.server.raw()
        try:
            start = time.monotonic()
            closed = False
            other_checked = False
            for i in range(len(data)):
                try:
                    c.send(data[i:i + 1])
                except OSError as e:
                    if not socket_closed_error(e):
                        raise
                    closed = True
                    break
                if c.wait_closed(0.1):  # one byte every 100 ms
                    closed = True
                    break
                if not other_checked and time.monotonic() - start > 0.15:
                    # Others are served while the slow client trickles.
                    self.assertStatus(self.server.get("/health"), 200)
                    other_checked = True
                if time.monotonic() - start > 5 * SLOW:
                    break
            elapsed = time.monotonic() - start
            self.assertTrue(closed, "slow client still connected after %.1f s "
                            "(header_timeout_ms=300)" % elapsed)
            self.assertGreaterEqual(elapsed, 0.2, "closed before header_timeout")
            if c.buf:
                self.assertTrue(c.buf.startswith(b"HTTP/1.1 408"),
                                "unexpected answer to a slow client: %r" % c.buf[:200])
        finally:
            c.close()
        self.assertStatus(self.server.get("/health"), 200)

    def test_idle_keep_alive_closed(self):
        c = self.server.raw()
        try:
            self.assertStatus(c.request("GET", "/health"), 200)
            start = time.monotonic()
            self.assertTrue(c.wait_closed(5 * SLOW),
                            "idle keep-alive connection not closed (idle_timeout_ms=500)")
            elapsed = time.monotonic() - start
            self.assertGreaterEqual(elapsed, 0.3, "closed before idle_timeout")
            self.assertEqual(c.buf, b"")
        finally:
            c.close()

    def test_silent_connection_closed(self):
        c = self.server.raw()
        try:
            start = time.monotonic()
            self.assertTrue(c.wait_closed(5 * SLOW), "a connection that sends nothing stays open")
            self.assertGreaterEqual(time.monotonic() - start, 0.2)
        finally:
            c.close()

    def test_stalled_body_closed(self):
        c = self.server.raw()
        try:
            c.send(post_head(100) + b'{"movie": ')
            start = time.monotonic()
            self.assertTrue(c.wait_closed(5 * SLOW), "a stalled body keeps the connection open")
            self.assertGreaterEqual(time.monotonic() - start, 0.3)
            if c.buf:
                self.assertTrue(c.buf.startswith(b"HTTP/1.1 408"), c.buf[:200])
        finally:
            c.close()
        self.assertStatus(self.server.get("/health"), 200)


class PipelinedHeaderClockTest(ServerTestCase):
    """Each request's header deadline runs from its own first byte (or from
    when its predecessor completed), not from the first byte of an earlier
    request that arrived in the same read."""
    TIMEOUT = 2.0
    server_config = {"header_timeout_ms": int(TIMEOUT * 1000), "idle_timeout_ms": 30000}

    def start_pipelined_second(self, c):
        """Sends request 1 slowly (TIMEOUT - 0.7 s from its first byte to its
        end), with the start of request 2 in the same send as that end; reads
        the answer to request 1. Returns when request 2 started."""
        c.send(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        time.sleep(self.TIMEOUT - 0.7)
        c.send(b"\r\nGET /health HTTP/1.1\r\n")
        second_started = time.monotonic()
        self.assertStatus(c.read_response(), 200, "request 1")
        return second_started

    def test_pipelined_request_gets_its_own_header_time(self):
        # Request 2 completes 1.0 s after its start, well inside its own
        # header_timeout, but 2.3 s after request 1 began: a clock inherited
        # from request 1 would have answered 408 0.7 s into request 2.
        c = self.server.raw()
        try:
            second_started = self.start_pipelined_second(c)
            time.sleep(max(0.0, 1.0 - (time.monotonic() - second_started)))
            c.send(b"Host: 127.0.0.1\r\n\r\n")
            r = c.read_response()
            self.assertStatus(r, 200, "request 2, complete %.2f s after its first byte"
                              % (time.monotonic() - second_started))
        finally:
            c.close()

    def test_pipelined_request_header_timeout_counts_from_its_start(self):
        c = self.server.raw()
        try:
            second_started = self.start_pipelined_second(c)
            self.assertTrue(c.wait_closed(10 * SLOW), "request 2 never completed, "
                            "yet the connection is still open")
            elapsed = time.monotonic() - second_started
            self.assertGreaterEqual(elapsed, self.TIMEOUT - 0.1,
                                    "request 2 cut off %.2f s after its first byte "
                                    "(header_timeout_ms %d)" % (elapsed, self.TIMEOUT * 1000))
            self.assertTrue(c.buf.startswith(b"HTTP/1.1 408"), c.buf[:200])
        finally:
            c.close()


class BodyTimeoutTest(ServerTestCase):
    """body_timeout_ms bounds the whole body, however steadily it trickles;
    the idle timeout alone restarts with every byte."""
    BODY_TIMEOUT = 1.5
    server_config = {"body_timeout_ms": int(BODY_TIMEOUT * 1000), "idle_timeout_ms": 1000,
                     "header_timeout_ms": 1000}

    def test_trickling_body_cut_off(self):
        c = self.server.raw()
        try:
            port = c.sock.getsockname()[1]
            c.send(post_head(100) + b"{")
            start = time.monotonic()
            sent = 1
            closed = False
            # One byte every 0.3 s: never idle for idle_timeout_ms (1 s).
            while time.monotonic() - start < 6 * SLOW and sent < 99:
                if c.wait_closed(0.3):
                    closed = True
                    break
                try:
                    c.send(b" ")
                except OSError as e:
                    if not socket_closed_error(e):
                        raise
                    closed = c.wait_closed(5 * SLOW)
                    break
                sent += 1
            elapsed = time.monotonic() - start
            self.assertTrue(closed, "a body trickled for %.1f s (%d of 100 bytes) is "
                            "still accepted (body_timeout_ms %d)"
                            % (elapsed, sent, self.BODY_TIMEOUT * 1000))
            self.assertGreaterEqual(elapsed, self.BODY_TIMEOUT - 0.1,
                                    "cut off before body_timeout_ms")
            r = c.read_response()
            self.assertEqual(r.status, 408, r)
            self.assertEqual(r.header("Connection"), "close", r)
        finally:
            c.close()
        line = self.server.wait_for_log_re(
            r"127\.0\.0\.1:%d: closed: request body not complete \d+ ms after its "
            r"headers \(body_timeout_ms 1500\); \d+ bytes of 100 received" % port)
        self.assertIsNotNone(line)
        self.assertStatus(self.server.get("/health"), 200)

    def test_slow_body_within_timeout_served(self):
        # Trickling is fine as long as the body ends in time.
        body = movie_json(200)
        c = self.server.raw()
        try:
            c.send(post_head(len(body)))
            for i in range(0, len(body), 50):
                time.sleep(0.1)
                c.send(body[i:i + 50])
            self.assertStatus(c.read_response(), 201)
        finally:
            c.close()


class ConnectionLimitTest(ServerTestCase):
    server_config = {"max_connections": 20, "idle_timeout_ms": 30000,
                     "header_timeout_ms": 30000}
    LIMIT = 20

    def open_working(self, n):
        """n keep-alive connections, each served once; raises if one is not."""
        conns = []
        try:
            for i in range(n):
                c = self.server.raw()
                conns.append(c)
                r = c.request("GET", "/health")
                if r.status != 200:
                    raise AssertionError("connection %d got %d" % (i + 1, r.status))
            return conns
        except BaseException:
            for c in conns:
                c.close()
            raise

    def open_working_eventually(self, n):
        deadline = time.monotonic() + 5 * SLOW
        while True:
            try:
                return self.open_working(n)
            except (AssertionError, ConnectionClosed, OSError) as e:
                if time.monotonic() > deadline:
                    raise AssertionError("could not open %d connections again "
                                         "after closing the others: %s" % (n, e))
                select.select([], [], [], 0.05)

    def test_connection_limit(self):
        conns = self.open_working_eventually(self.LIMIT)
        try:
            extra = self.server.raw()
            try:
                try:
                    extra.send(get("/health"))
                except OSError as e:
                    if not socket_closed_error(e):
                        raise
                try:
                    r = extra.read_response()
                except (ConnectionClosed, ConnectionResetError):
                    r = None
                # The server lingers after its 503, so the answer is not
                # lost to a reset even though the connection is refused.
                self.assertIsNotNone(r, "no 503 for connection %d of %d"
                                     % (self.LIMIT + 1, self.LIMIT))
                self.assertStatus(r, 503, "connection %d of %d" % (self.LIMIT + 1, self.LIMIT))
                self.assertEqual(r.header("Retry-After"), "1", r)
                self.assertTrue(extra.wait_closed(5 * SLOW),
                                "connection over the limit left open")
            finally:
                extra.close()
            for i, c in enumerate(conns):
                r = c.request("GET", "/health")
                self.assertStatus(r, 200, "connection %d after the refusal" % (i + 1))
        finally:
            for c in conns:
                c.close()
        # Closing them frees every slot: LIMIT new connections work again.
        conns = self.open_working_eventually(self.LIMIT)
        for c in conns:
            c.close()


class PipelineFloodTest(ServerTestCase):
    server_config = {"max_pending_write_bytes": 65536}
    MAX_SEND = 64 * 1024 * 1024

    def rss_kib(self):
        with open("/proc/%d/status" % self.server.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def test_pipelining_without_reading(self):
        rss_before = self.rss_kib()
        req = get(MOVIES + "?limit=50")
        blob = req * 1000
        c = self.server.raw()
        try:
            c.sock.setblocking(False)
            sent = 0
            off = 0
            deadline = time.monotonic() + 5 * SLOW
            last_progress = time.monotonic()
            while sent < self.MAX_SEND and time.monotonic() < deadline:
                try:
                    n = c.sock.send(blob[off:])
                    sent += n
                    off = (off + n) % len(blob)
                    last_progress = time.monotonic()
                except BlockingIOError:
                    if time.monotonic() - last_progress > 1.0:
                        break
                    select.select([], [c.sock], [], 0.1)
            self.assertLess(sent, self.MAX_SEND,
                            "server kept reading %d bytes of pipelined requests from a "
                            "client that reads nothing" % sent)
            # Another client is still served promptly, again and again: the
            # stalled connection costs the server nothing while it waits.
            for i in range(5):
                t = time.monotonic()
                r = self.server.get("/health")
                self.assertStatus(r, 200)
                took = time.monotonic() - t
                self.assertLess(took, 1.0 * SLOW, "GET /health took %.2f s while a client "
                                "sat on %d bytes of pipelined requests" % (took, sent))
                select.select([], [], [], 0.2)
            if not SANITIZED:
                grown = self.rss_kib() - rss_before
                self.assertLess(grown, 64 * 1024, "RSS grew by %d KiB" % grown)
            # The stalled client gets its answers, in order, once it reads.
            c.sock.settimeout(10 * SLOW)
            for i in range(5):
                r = c.read_response()
                self.assertStatus(r, 200, "pipelined response %d" % (i + 1))
                self.assertEqual(len(r.json()["movieList"]["movie"]), 50)
        finally:
            c.close()  # with unread data: the server sees a reset
        self.assertStatus(self.server.get("/health"), 200)


if __name__ == "__main__":
    unittest.main()
