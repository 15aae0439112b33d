"""Runs the real ncserver binary for end-to-end tests.

The binary is $NCSERVER (ctest sets it; by hand it defaults to
$NC_SOURCE_DIR/build/ncserver) and the scripts come from
$NC_SOURCE_DIR/scripts. Every server listens on 127.0.0.1 port 0 with a
database in its own temporary directory; readiness is the log line
`listening on http://HOST:PORT` (the server's stderr goes to a file that is
polled with a deadline), never a fixed sleep. Standard library only, run by
Debian's /usr/bin/python3.

Server: start/stop (stop asserts the exit code, 0 by default), base_url,
request() over http.client, raw() for a RawConn, log()/wait_for_log().
RawConn: send bytes, read_response() (Content-Length, chunked, or to EOF;
skips 1xx unless asked), wait_closed(). ServerTestCase: one server per class.
Also: Server.wait_for_log_re() (a regular expression from a log offset),
Server.rss_kib() (VmRSS), raise_nofile_limit() for tests with many sockets.
"""

import errno
import http.client
import json
import os
import re
import resource
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.parse

SOURCE_DIR = os.path.abspath(os.environ.get(
    "NC_SOURCE_DIR",
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")))
BINARY = os.environ.get("NCSERVER", os.path.join(SOURCE_DIR, "build", "ncserver"))
SCRIPTS_DIR = os.path.join(SOURCE_DIR, "scripts")

LISTENING_RE = re.compile(r"listening on http://(\[[^\]]+\]|[^\s:/\]]+):(\d+)")


def _is_sanitized(path):
    """True when the binary was built with AddressSanitizer (it is then
    about 3x slower, and its memory use says little about ours)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return False
    return b"libasan" in data or b"__asan_init" in data


SANITIZED = _is_sanitized(BINARY)
# Upper bounds on waits are multiplied by this; lower bounds never are.
SLOW = float(os.environ.get("NC_E2E_SLOW", "3" if SANITIZED else "1"))
STARTUP_TIMEOUT = 30 * SLOW
STOP_TIMEOUT = 20 * SLOW


def require_binary():
    if not os.path.isfile(BINARY) or not os.access(BINARY, os.X_OK):
        raise AssertionError("server binary not found or not executable: %s "
                             "(set NCSERVER)" % BINARY)


def lua_value(value):
    """A Python value as Lua source, for --config files."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        # A Lua long-bracket-free short string: escape what Lua escapes.
        out = ['"']
        for ch in value:
            if ch in '"\\':
                out.append("\\" + ch)
            elif ch == "\n":
                out.append("\\n")
            elif ord(ch) < 32:
                out.append("\\%03d" % ord(ch))
            else:
                out.append(ch)
        out.append('"')
        return "".join(out)
    raise TypeError("no Lua form for %r" % (value,))


def write_config(path, config):
    """Writes a --config file: one `key = value` line per item."""
    with open(path, "w", encoding="utf-8") as f:
        for key, value in config.items():
            f.write("%s = %s\n" % (key, lua_value(value)))


# --------------------------------------------------------------------------
# Responses and raw connections


class ConnectionClosed(Exception):
    """The peer closed (or reset) before a complete response arrived."""


class Response:
    """One HTTP response: status, reason, headers (in order), body bytes."""

    def __init__(self, status, reason, headers, body, version="HTTP/1.1"):
        self.status = status
        self.reason = reason
        self.headers = headers  # list of (name, value)
        self.body = body
        self.version = version

    def header(self, name, default=None):
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return default

    def header_all(self, name):
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    def has_header(self, name):
        return self.header(name) is not None

    def json(self):
        try:
            return json.loads(self.body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as e:
            raise AssertionError("response body is not JSON (%s): status %d, "
                                 "body %r" % (e, self.status, self.body[:500]))

    def __repr__(self):
        return "<Response %d %s %r>" % (self.status, self.headers, self.body[:300])


class RawConn:
    """A plain TCP connection with a minimal HTTP/1.1 response reader that
    keeps unread bytes between responses (for keep-alive and pipelining)."""

    def __init__(self, host, port, timeout=10.0):
        self.sock = socket.create_connection((host, port), timeout=timeout * SLOW)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.eof = False

    def settimeout(self, t):
        self.sock.settimeout(t)

    def send(self, data):
        self.sock.sendall(data)

    def send_slowly(self, data, chunk=1, pause=0.002):
        """Sends `data` in pieces of `chunk` bytes, pausing between them."""
        for i in range(0, len(data), chunk):
            self.sock.sendall(data[i:i + chunk])
            time.sleep(pause)

    def _fill(self):
        """Reads more bytes into the buffer; False at EOF or reset."""
        if self.eof:
            return False
        try:
            data = self.sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            data = b""
        except socket.timeout:
            raise AssertionError("no data from the server within %.1f s; unread: %r"
                                 % (self.sock.gettimeout(), self.buf[:300]))
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def _read_line_block(self):
        while b"\r\n\r\n" not in self.buf:
            if not self._fill():
                raise ConnectionClosed("closed before response headers; got %r"
                                       % self.buf[:500])
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        return head

    def _read_exact(self, n):
        while len(self.buf) < n:
            if not self._fill():
                raise ConnectionClosed("closed in body: wanted %d bytes, have %d"
                                       % (n, len(self.buf)))
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def _read_crlf_line(self):
        while b"\r\n" not in self.buf:
            if not self._fill():
                raise ConnectionClosed("closed in chunked body")
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def read_response(self, head=False, skip_interim=True):
        """Reads one response. `head`: it answers a HEAD (no body).
        1xx responses are skipped unless skip_interim is False."""
        while True:
            block = self._read_line_block()
            lines = block.split(b"\r\n")
            m = re.match(rb"(HTTP/\d\.\d) (\d{3})(?: (.*))?$", lines[0])
            if not m:
                raise AssertionError("bad status line %r" % lines[0])
            version = m.group(1).decode()
            status = int(m.group(2))
            reason = (m.group(3) or b"").decode("latin-1")
            headers = []
            for line in lines[1:]:
                if b":" not in line:
                    raise AssertionError("bad header line %r" % line)
                k, v = line.split(b":", 1)
                headers.append((k.decode("latin-1"), v.strip().decode("latin-1")))
            resp = Response(status, reason, headers, b"", version)
            if 100 <= status < 200:
                if skip_interim:
                    continue
                return resp
            if head or status in (204, 304):
                return resp
            te = (resp.header("Transfer-Encoding") or "").lower()
            if "chunked" in te:
                body = b""
                while True:
                    size_line = self._read_crlf_line()
                    size = int(size_line.split(b";")[0].strip(), 16)
                    if size == 0:
                        while self._read_crlf_line() != b"":
                            pass
                        break
                    body += self._read_exact(size)
                    self._read_exact(2)
                resp.body = body
            elif resp.header("Content-Length") is not None:
                resp.body = self._read_exact(int(resp.header("Content-Length")))
            else:
                while self._fill():
                    pass
                resp.body, self.buf = self.buf, b""
            return resp

    def request(self, method, path, body=None, headers=None, head=None):
        """Sends one request and reads its response on this connection."""
        self.send(build_request(method, path, body, headers))
        return self.read_response(head=(method == "HEAD") if head is None else head)

    def wait_closed(self, timeout):
        """True if the peer closes (FIN or RST) within `timeout` seconds;
        bytes that arrive meanwhile are kept in self.buf."""
        deadline = time.monotonic() + timeout
        if self.eof:
            return True
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            r, _, _ = select.select([self.sock], [], [], left)
            if r and not self._fill():
                return True

    def is_open_now(self):
        """True if the connection shows no EOF without waiting."""
        return not self.wait_closed(0.0)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def build_request(method, path, body=None, headers=None, version="HTTP/1.1"):
    """Bytes of one request. `body` may be bytes, str or a JSON-able object
    (sent as application/json). Host and Content-Length are added unless
    given."""
    hdrs = []
    given = {k.lower() for k, _ in (headers or {}).items()} if isinstance(headers, dict) \
        else {k.lower() for k, _ in (headers or [])}
    items = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
    if body is not None and not isinstance(body, (bytes, str)):
        body = json.dumps(body)
        if "content-type" not in given:
            items.append(("Content-Type", "application/json"))
    if isinstance(body, str):
        body = body.encode("utf-8")
    if "host" not in given:
        hdrs.append(("Host", "127.0.0.1"))
    hdrs.extend(items)
    if body is not None and "content-length" not in given \
            and "transfer-encoding" not in given:
        hdrs.append(("Content-Length", str(len(body))))
    out = "%s %s %s\r\n" % (method, path, version)
    out += "".join("%s: %s\r\n" % (k, v) for k, v in hdrs)
    out += "\r\n"
    return out.encode("latin-1") + (body or b"")


# --------------------------------------------------------------------------
# The server process


class Server:
    """One ncserver process on 127.0.0.1, port 0, in its own temp dir.

    config: dict written as the --config file (None: no --config).
    db: database path (default <tmp>/nc.db); scripts: scripts dir (default
    the source tree's). extra_args are appended to the command line.
    """

    def __init__(self, config=None, db=None, scripts=None, extra_args=(),
                 listen="127.0.0.1:0"):
        require_binary()
        self.tmp = tempfile.mkdtemp(prefix="nc-e2e-")
        self.db = db or os.path.join(self.tmp, "nc.db")
        self.scripts = scripts or SCRIPTS_DIR
        self.config = config
        self.extra_args = list(extra_args)
        self.listen = listen
        self.proc = None
        self.log_path = os.path.join(self.tmp, "server.log")
        self._final_log = None
        self.host = None
        self.port = None
        self.returncode = None

    # ---- lifecycle -------------------------------------------------------

    def command(self):
        cmd = [BINARY, "--listen", self.listen, "--db", self.db,
               "--scripts", self.scripts]
        if self.config is not None:
            path = os.path.join(self.tmp, "config.lua")
            write_config(path, self.config)
            cmd += ["--config", path]
        return cmd + self.extra_args

    def start(self, timeout=None):
        """Starts the server and waits for its `listening on` line. Its
        stderr (and stdout) go to a file rather than a pipe: whatever the
        server has written is then readable at once by log(), with no reader
        thread lagging behind, and a full pipe can never block it."""
        timeout = timeout or STARTUP_TIMEOUT
        self.returncode = None
        self._final_log = None
        with open(self.log_path, "ab") as out:
            self._log_start = out.tell()
            self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=out, cwd=self.tmp)
        deadline = time.monotonic() + timeout
        while True:
            m = LISTENING_RE.search(self.log())
            if m:
                self.host = m.group(1).strip("[]")
                self.port = int(m.group(2))
                return self
            if self.proc.poll() is not None:
                rc = self.proc.returncode
                self.cleanup()
                raise AssertionError("server exited with %s before listening:\n%s"
                                     % (rc, self.log()))
            if time.monotonic() > deadline:
                self.proc.kill()
                self.proc.wait()
                self.cleanup()
                raise AssertionError("server not listening after %.0f s:\n%s"
                                     % (timeout, self.log()))
            time.sleep(0.01)  # polling the log file, bounded by the deadline

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def assert_running(self):
        if not self.running():
            raise AssertionError("server is no longer running (exit %s):\n%s"
                                 % (self.proc.returncode, self.log_tail()))

    def stop(self, sig=signal.SIGTERM, expect_rc=0, timeout=None, cleanup=True):
        """Signals the server, waits for it and returns its exit code; raises
        unless it is `expect_rc` (None: any)."""
        timeout = timeout or STOP_TIMEOUT
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                if cleanup:
                    self.cleanup()
                raise AssertionError("server did not exit within %.0f s of signal %d:\n%s"
                                     % (timeout, sig, self.log_tail()))
        self.returncode = self.proc.returncode
        if cleanup:
            self.cleanup()
        if expect_rc is not None and self.returncode != expect_rc:
            raise AssertionError("server exited with %s, expected %s:\n%s"
                                 % (self.returncode, expect_rc, self.log_tail()))
        return self.returncode

    def cleanup(self):
        """Removes the temp dir; the log stays readable through log()."""
        if self._final_log is None:
            self._final_log = self.log()
        shutil.rmtree(self.tmp, ignore_errors=True)

    # ---- log -------------------------------------------------------------

    def log(self):
        """Everything the current run has written to stderr so far."""
        if self._final_log is not None:
            return self._final_log
        try:
            with open(self.log_path, "rb") as f:
                f.seek(getattr(self, "_log_start", 0))
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, n=60):
        return "\n".join(self.log().splitlines()[-n:])

    def wait_for_log(self, text, timeout=5.0):
        """Waits until `text` appears in the log (for lines a server may
        write just after it answered); returns the log or fails."""
        deadline = time.monotonic() + timeout * SLOW
        while True:
            log = self.log()
            if text in log:
                return log
            if time.monotonic() > deadline:
                raise AssertionError("%r not in the server log:\n%s"
                                     % (text, log[-3000:]))
            time.sleep(0.01)

    def wait_for_log_re(self, pattern, timeout=5.0, start=0):
        """Like wait_for_log for a regular expression, searched from
        character `start` of the log; returns the match."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout * SLOW
        while True:
            m = regex.search(self.log(), start)
            if m:
                return m
            if time.monotonic() > deadline:
                raise AssertionError("/%s/ not in the server log:\n%s"
                                     % (pattern, self.log()[-3000:]))
            time.sleep(0.01)

    # ---- process -----------------------------------------------------------

    def rss_kib(self):
        """The server's resident set size (VmRSS) in KiB."""
        return proc_status_kib(self.proc.pid, "VmRSS")

    # ---- requests --------------------------------------------------------

    @property
    def base_url(self):
        return "http://%s:%d" % (self.host, self.port)

    def url(self, path):
        return self.base_url + path

    def request(self, method, path, body=None, headers=None, timeout=10.0):
        """One request on a fresh http.client connection. `body`: bytes, str,
        or a JSON-able object (sent as application/json)."""
        headers = dict(headers or {})
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
            headers.setdefault("Content-Type", "application/json")
        if isinstance(body, str):
            body = body.encode("utf-8")
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout * SLOW)
        try:
            conn.request(method, path, body=body, headers=headers)
            r = conn.getresponse()
            data = r.read()
            return Response(r.status, r.reason, r.getheaders(), data,
                            "HTTP/%d.%d" % divmod(r.version, 10))
        finally:
            conn.close()

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def raw(self, timeout=10.0):
        return RawConn(self.host, self.port, timeout)


class ServerTestCase(unittest.TestCase):
    """One server shared by the tests of a class (they must not interfere);
    `server_config` is the --config dict. Stopping it must exit 0."""

    server_config = None
    server_kwargs = {}

    @classmethod
    def setUpClass(cls):
        cls.server = Server(config=cls.server_config, **cls.server_kwargs).start()

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def tearDown(self):
        self.server.assert_running()

    # ---- assertions shared by the files ------------------------------------

    def assertStatus(self, resp, status, msg=None):
        if resp.status != status:
            self.fail("%sexpected status %d, got %d; headers %r; body %r"
                      % (msg + ": " if msg else "", status, resp.status,
                         resp.headers, resp.body[:800]))

    def assertPolicyError(self, resp, status, message_id):
        """The OMA policy error body (requestError.policyException) with
        `message_id`; returns the exception."""
        self.assertStatus(resp, status)
        exc = resp.json()["requestError"].get("policyException")
        self.assertIsInstance(exc, dict, resp.body)
        self.assertEqual(exc["messageId"], message_id, resp.body)
        return exc

    def assertServiceError(self, resp, status, message_id, field=None):
        """The OMA error body: requestError.serviceException with messageId,
        text and variables; `field` must appear in one of the variables."""
        self.assertStatus(resp, status)
        doc = resp.json()
        self.assertIn("requestError", doc, doc)
        exc = doc["requestError"].get("serviceException")
        self.assertIsInstance(exc, dict, doc)
        if callable(message_id):
            self.assertTrue(message_id(exc.get("messageId")), doc)
        else:
            self.assertEqual(exc.get("messageId"), message_id, doc)
        self.assertIsInstance(exc.get("text"), str, doc)
        self.assertTrue(exc["text"], doc)
        if field is not None:
            variables = exc.get("variables")
            if isinstance(variables, str):
                variables = [variables]
            self.assertIsInstance(variables, list, doc)
            self.assertTrue(any(field in str(v) for v in variables),
                            "field %r not named in variables: %r" % (field, doc))
        return exc


def proc_status_kib(pid, field):
    """A `field:  N kB` line of /proc/<pid>/status, in KiB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError("no %s in /proc/%d/status" % (field, pid))


def raise_nofile_limit(want=None):
    """Raises this process's soft RLIMIT_NOFILE towards the hard limit (or
    `want`, if lower); servers started afterwards inherit it. Returns the
    new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if want is not None:
        target = min(target, want)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


def quote(text):
    return urllib.parse.quote(text, safe="")


def list_all_movies(server, page=10):
    """Every movie, paging with limit/offset."""
    movies = []
    offset = 0
    while True:
        r = server.get("/movies/v1/movies?limit=%d&offset=%d" % (page, offset))
        if r.status != 200:
            raise AssertionError("list page at offset %d: %r" % (offset, r))
        items = r.json()["movieList"]["movie"]
        if isinstance(items, dict):
            items = [items]
        movies.extend(items)
        if len(items) < page:
            return movies
        offset += page
        if offset > 100000:
            raise AssertionError("paging never ends")


def socket_closed_error(e):
    return isinstance(e, (ConnectionResetError, BrokenPipeError)) or \
        getattr(e, "errno", None) in (errno.ECONNRESET, errno.EPIPE)
