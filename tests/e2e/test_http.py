"""HTTP/1.1 on the wire (RFC 9110/9112), over raw sockets: keep-alive,
pipelining, fragmented and chunked requests, 100-continue, HEAD, HTTP/1.0,
Connection: close, malformed requests, and the headers every response carries.
"""

import email.utils
import json
import random
import re
import unittest
import uuid

from ncfixture import SLOW, ServerTestCase, build_request

MOVIES = "/movies/v1/movies"
DATE_RE = re.compile(r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} "
                     r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
                     r"\d{4} \d{2}:\d{2}:\d{2} GMT$")


def movie_body(title=None):
    return json.dumps({"movie": {"title": title or "HTTP " + uuid.uuid4().hex[:10],
                                 "premiereDate": "2010-10-10", "director": "D",
                                 "genre": "G"}}).encode()


def get(path, extra=""):
    return ("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n" % (path, extra)).encode()


class HttpTest(ServerTestCase):

    def assertStandardHeaders(self, resp, body_expected=True):
        date = resp.header("Date")
        self.assertIsNotNone(date, resp)
        self.assertRegex(date, DATE_RE)  # RFC 9110 5.6.7 IMF-fixdate
        email.utils.parsedate_to_datetime(date)
        cl = resp.header("Content-Length")
        self.assertIsNotNone(cl, resp)
        self.assertEqual(len(resp.header_all("Content-Length")), 1, resp)
        if body_expected:
            self.assertIsNotNone(resp.header("Content-Type"), resp)
            self.assertGreater(int(cl), 0, resp)

    def assertClosed(self, conn, what):
        self.assertTrue(conn.wait_closed(5 * SLOW), "connection not closed: " + what)

    # ---- connection reuse ----------------------------------------------------

    def test_keep_alive(self):
        c = self.server.raw()
        try:
            for i in range(5):
                c.send(get("/health"))
                r = c.read_response()
                self.assertStatus(r, 200, "request %d" % i)
                self.assertEqual(r.json().get("status"), "ok")
                self.assertNotEqual((r.header("Connection") or "").lower(), "close")
            c.send(get(MOVIES + "/1"))
            r = c.read_response()
            self.assertStatus(r, 200)
            self.assertEqual(r.json()["movie"]["movieId"], 1)
            self.assertTrue(c.is_open_now())
        finally:
            c.close()

    def test_pipelining_in_order(self):
        c = self.server.raw()
        try:
            c.send(get(MOVIES + "/1") + get(MOVIES + "/2") + get(MOVIES + "/3"))
            for i in (1, 2, 3):
                r = c.read_response()
                self.assertStatus(r, 200)
                self.assertEqual(r.json()["movie"]["movieId"], i)
        finally:
            c.close()

    def test_pipelining_mixed_methods(self):
        c = self.server.raw()
        try:
            body = movie_body()
            c.send(build_request("POST", MOVIES, body, {"Content-Type": "application/json"})
                   + build_request("HEAD", MOVIES + "/2")
                   + get("/nope")
                   + get("/health"))
            r = c.read_response()
            self.assertStatus(r, 201)
            self.assertEqual(r.json()["movie"]["title"], json.loads(body)["movie"]["title"])
            r = c.read_response(head=True)
            self.assertStatus(r, 200)
            self.assertEqual(r.body, b"")
            self.assertStatus(c.read_response(), 404)
            r = c.read_response()
            self.assertStatus(r, 200)
            self.assertEqual(r.json().get("status"), "ok")
        finally:
            c.close()

    def test_fragmented_requests(self):
        rng = random.Random(7)
        body = movie_body()
        data = (get(MOVIES + "/1")
                + build_request("POST", MOVIES, body, {"Content-Type": "application/json"})
                + get("/health"))
        c = self.server.raw()
        try:
            i = 0
            while i < len(data):
                n = rng.randint(1, 5)
                c.send(data[i:i + n])
                i += n
                c.wait_closed(0.003)  # a short pause; also notices a close
            r = c.read_response()
            self.assertStatus(r, 200)
            self.assertEqual(r.json()["movie"]["movieId"], 1)
            r = c.read_response()
            self.assertStatus(r, 201)
            self.assertEqual(r.json()["movie"]["title"], json.loads(body)["movie"]["title"])
            self.assertStatus(c.read_response(), 200)
        finally:
            c.close()

    def test_byte_at_a_time(self):
        c = self.server.raw()
        try:
            c.send_slowly(get(MOVIES + "/2"), chunk=1, pause=0.001)
            r = c.read_response()
            self.assertStatus(r, 200)
            self.assertEqual(r.json()["movie"]["movieId"], 2)
        finally:
            c.close()

    # ---- request bodies ------------------------------------------------------

    def test_chunked_request_body(self):
        body = movie_body()
        head = ("POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                "Transfer-Encoding: chunked\r\n\r\n" % MOVIES).encode()
        parts = [body[:10], body[10:11], body[11:]]
        c = self.server.raw()
        try:
            c.send(head)
            for p in parts:
                c.send(b"%x\r\n" % len(p) + p + b"\r\n")
                c.wait_closed(0.01)
            c.send(b"0\r\n\r\n")
            r = c.read_response()
            self.assertStatus(r, 201)
            self.assertEqual(r.json()["movie"]["title"], json.loads(body)["movie"]["title"])
            # The connection is still usable after a chunked request.
            self.assertStatus(c.request("GET", "/health"), 200)
        finally:
            c.close()

    def test_chunked_with_extension_and_trailer(self):
        body = movie_body()
        data = ("POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                "Transfer-Encoding: chunked\r\n\r\n" % MOVIES).encode()
        data += b"%X;name=value\r\n" % len(body) + body + b"\r\n"
        data += b"0\r\nX-Trailer: yes\r\n\r\n"
        c = self.server.raw()
        try:
            c.send(data)
            r = c.read_response()
            self.assertStatus(r, 201)
            self.assertStatus(c.request("GET", "/health"), 200)
        finally:
            c.close()

    def test_expect_100_continue(self):
        body = movie_body()
        head = ("POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                "Content-Length: %d\r\nExpect: 100-continue\r\n\r\n" % (MOVIES, len(body))).encode()
        c = self.server.raw()
        try:
            c.send(head)
            interim = c.read_response(skip_interim=False)
            self.assertEqual(interim.status, 100, interim)
            self.assertEqual(interim.version, "HTTP/1.1")
            c.send(body)
            r = c.read_response()
            self.assertStatus(r, 201)
            self.assertEqual(r.json()["movie"]["title"], json.loads(body)["movie"]["title"])
        finally:
            c.close()

    # ---- HEAD ----------------------------------------------------------------

    def test_head(self):
        for path in ("/health", MOVIES + "/1", MOVIES + "?limit=3", "/nope"):
            with self.subTest(path=path):
                c = self.server.raw()
                try:
                    g = c.request("GET", path)
                    # HEAD then GET on one connection: a body after HEAD would
                    # be read as the next status line.
                    c.send(build_request("HEAD", path) + get("/health"))
                    h = c.read_response(head=True)
                    self.assertEqual(h.status, g.status)
                    self.assertEqual(h.header("Content-Length"), g.header("Content-Length"))
                    self.assertEqual(int(h.header("Content-Length")), len(g.body))
                    self.assertEqual(h.header("Content-Type"), g.header("Content-Type"))
                    self.assertIsNotNone(h.header("Date"))
                    r = c.read_response()
                    self.assertStatus(r, 200, "GET after HEAD")
                    self.assertEqual(r.json().get("status"), "ok")
                finally:
                    c.close()

    # ---- closing -------------------------------------------------------------

    def test_http10_closes_after_response(self):
        c = self.server.raw()
        try:
            c.send(b"GET /health HTTP/1.0\r\n\r\n")
            r = c.read_response()
            self.assertStatus(r, 200)
            self.assertEqual(r.json().get("status"), "ok")
            self.assertClosed(c, "HTTP/1.0 request without keep-alive")
        finally:
            c.close()

    def test_connection_close_honoured(self):
        c = self.server.raw()
        try:
            c.send(get("/health", "Connection: close\r\n") + get("/health"))
            r = c.read_response()
            self.assertStatus(r, 200)
            self.assertEqual((r.header("Connection") or "").lower(), "close")
            self.assertClosed(c, "after Connection: close")
            self.assertEqual(c.buf, b"", "answered a request after Connection: close")
        finally:
            c.close()

    def test_malformed_request_400_and_close(self):
        cases = [
            ("bad method", b"GARBAGE\r\n\r\n"),
            ("header without colon", b"GET /health HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n"),
            ("bad content-length", b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n"),
            ("two content-lengths", b"POST " + MOVIES.encode() + b" HTTP/1.1\r\nHost: x\r\n"
             b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}x"),
            ("CL and chunked", b"POST " + MOVIES.encode() + b" HTTP/1.1\r\nHost: x\r\n"
             b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
            ("bad chunk size", b"POST " + MOVIES.encode() + b" HTTP/1.1\r\nHost: x\r\n"
             b"Transfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n"),
            ("junk after version", b"GET /health HTTP/1.1x\r\nHost: x\r\n\r\n"),
            ("space in target", b"GET /he alth HTTP/1.1\r\nHost: x\r\n\r\n"),
            ("binary", bytes(range(256))),
        ]
        for name, data in cases:
            with self.subTest(name):
                c = self.server.raw()
                try:
                    c.send(data + get("/health"))
                    r = c.read_response()
                    self.assertStatus(r, 400, name)
                    self.assertIsNotNone(r.header("Date"))
                    self.assertIsNotNone(r.header("Content-Length"))
                    self.assertClosed(c, "after a malformed request (%s)" % name)
                    self.assertEqual(c.buf, b"", "answered a request after a 400")
                finally:
                    c.close()
        self.assertStatus(self.server.get("/health"), 200)

    # ---- headers -------------------------------------------------------------

    def test_standard_headers(self):
        c = self.server.raw()
        try:
            r = c.request("GET", "/health")
            self.assertStatus(r, 200)
            self.assertStandardHeaders(r)
            self.assertEqual(int(r.header("Content-Length")), len(r.body))
            r = c.request("GET", MOVIES + "/1")
            self.assertStandardHeaders(r)
            r = c.request("GET", "/nope")
            self.assertStatus(r, 404)
            self.assertStandardHeaders(r, body_expected=False)
            if r.body:
                self.assertIsNotNone(r.header("Content-Type"))
            r = c.request("PUT", MOVIES, movie_body(), {"Content-Type": "application/json"})
            self.assertStatus(r, 405)
            self.assertStandardHeaders(r, body_expected=False)
            r = c.request("POST", MOVIES, movie_body(), {"Content-Type": "application/json"})
            self.assertStatus(r, 201)
            self.assertStandardHeaders(r)
            self.assertIsNotNone(r.header("Location"))
            r = c.request("POST", MOVIES, b"{", {"Content-Type": "application/json"})
            self.assertStatus(r, 400)
            self.assertStandardHeaders(r)
            mid = json.loads(movie_body())
            r = c.request("POST", MOVIES, mid)
            movie_id = r.json()["movie"]["movieId"]
            r = c.request("DELETE", "%s/%d" % (MOVIES, movie_id))
            self.assertStatus(r, 204)
            self.assertEqual(r.body, b"")
            self.assertIsNotNone(r.header("Date"))
            # After a 204 the connection still frames correctly.
            self.assertStatus(c.request("GET", "/health"), 200)
        finally:
            c.close()


if __name__ == "__main__":
    unittest.main()
