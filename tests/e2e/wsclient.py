"""WebSocket clients for the end-to-end tests (OMA NC Appendix I, RFC 6455).

Two clients, neither of them part of the server:

- WsClient wraps Debian's python3-websockets (10.4, asyncio API) for the
  ordinary client: handshake, masking, fragmentation and the close
  handshake are the library's, so a test that passes with it shows the
  server speaks WebSocket as a real client expects. The library has no
  synchronous client in 10.4, so its connections live on one background
  event loop (LOOP) and WsClient's methods wait on it with deadlines.
  Async code (the scale test, the benches) uses websockets directly.

- RawWebSocket writes frames by hand over a plain socket, for what a library
  refuses to send (unmasked frames, invalid UTF-8, oversized or binary
  messages, odd fragments, raw close codes) and for a client that stops
  reading (small SO_RCVBUF, never recv).

Helpers build and check handshakes (accept_key) and parse what the server
delivers: notificationList messages in JSON or XML, connCheck / connAck.
Run by Debian's /usr/bin/python3.
"""

import asyncio
import base64
import hashlib
import json
import os
import select
import socket
import struct
import threading
import time
import xml.etree.ElementTree as ET

import websockets
import websockets.client
import websockets.exceptions

from ncfixture import SLOW, Response, build_request

NC_PROTOCOL = "notificationchannel-netapi-rest.openmobilealliance.org"
NC_NS = "urn:oma:xml:rest:netapi:notificationchannel:1"
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 1.3

OP_CONT, OP_TEXT, OP_BINARY = 0x0, 0x1, 0x2
OP_CLOSE, OP_PING, OP_PONG = 0x8, 0x9, 0xA


def accept_key(key):
    """RFC 6455 4.2.2: the Sec-WebSocket-Accept for a Sec-WebSocket-Key."""
    digest = hashlib.sha1((key + WS_GUID).encode("ascii")).digest()
    return base64.b64encode(digest).decode("ascii")


def new_key():
    return base64.b64encode(os.urandom(16)).decode("ascii")


# --------------------------------------------------------------------------
# What the server sends


class Delivered:
    """One text message from the server, parsed: `fmt` is "json" or "xml",
    `root` the root element's local name, `items` the notifications of a
    notificationList as (root local name, element or JSON object), `doc`
    the parsed document (dict or Element)."""

    def __init__(self, text):
        self.text = text
        stripped = text.lstrip()
        if stripped.startswith("<"):
            self.fmt = "xml"
            try:
                self.doc = ET.fromstring(text.encode("utf-8"))
            except ET.ParseError as e:
                raise AssertionError("server message is not XML (%s): %r" % (e, text[:500]))
            self.ns, self.root = split_tag(self.doc.tag)
            self.items = [(split_tag(el.tag)[1], el) for el in self.doc]
        else:
            self.fmt = "json"
            try:
                self.doc = json.loads(text)
            except ValueError as e:
                raise AssertionError("server message is neither XML nor JSON (%s): %r"
                                     % (e, text[:500]))
            if not isinstance(self.doc, dict) or len(self.doc) != 1:
                raise AssertionError("server message has not exactly one root key: %r"
                                     % text[:500])
            self.ns = None
            self.root = next(iter(self.doc))
            body = self.doc[self.root]
            self.items = []
            if self.root == "notificationList":
                if not isinstance(body, list):
                    raise AssertionError("notificationList is not a JSON array "
                                         "(API.md 2, JSON rules): %r" % text[:500])
                for item in body:
                    if not isinstance(item, dict) or len(item) != 1:
                        raise AssertionError("notificationList item has not one root "
                                             "key: %r" % (item,))
                    name = next(iter(item))
                    self.items.append((name, item[name]))

    def body(self):
        """The root element's content: a dict (JSON) or the Element (XML)."""
        return self.doc[self.root] if self.fmt == "json" else self.doc

    def __repr__(self):
        return "<Delivered %s %s %r>" % (self.fmt, self.root, self.text[:200])


def split_tag(tag):
    """'{ns}name' -> (ns, name)."""
    if tag.startswith("{"):
        ns, name = tag[1:].split("}", 1)
        return ns, name
    return None, tag


def xml_int(el, name):
    """The integer text of child `name` (no namespace, as the OMA schemas'
    unqualified elements) of `el`, or None."""
    c = el.find(name)
    if c is None:
        return None
    return int((c.text or "").strip())


# --------------------------------------------------------------------------
# The library client on a background loop


class _Loop:
    """One asyncio loop on a daemon thread for every WsClient."""

    def __init__(self):
        self.loop = None
        self.lock = threading.Lock()

    def get(self):
        with self.lock:
            if self.loop is None:
                loop = asyncio.new_event_loop()
                t = threading.Thread(target=loop.run_forever, name="ws-loop", daemon=True)
                t.start()
                self.loop = loop
            return self.loop

    def run(self, coro, timeout):
        """Runs `coro` on the loop and waits at most `timeout` s for it."""
        fut = asyncio.run_coroutine_threadsafe(coro, self.get())
        try:
            return fut.result(timeout)
        except TimeoutError:
            fut.cancel()
            raise


LOOP = _Loop()


class Refused(Exception):
    """The server answered the upgrade with an HTTP status other than 101."""

    def __init__(self, status, headers=None):
        super().__init__("upgrade refused with HTTP %s" % status)
        self.status = status
        self.headers = headers


class Closed(Exception):
    """The connection is closed; `code`/`reason` from the server's close
    frame (1006 and "" when none came)."""

    def __init__(self, code, reason):
        super().__init__("WebSocket closed: code %s reason %r" % (code, reason))
        self.code = code
        self.reason = reason


class NoMessage(AssertionError):
    """Nothing arrived within the time allowed."""


class WsClient:
    """A python3-websockets client used synchronously. Its loop keeps
    reading in the background (answering pings and close frames as the
    library does), so the connection behaves like a live client's."""

    def __init__(self, ws):
        self.ws = ws

    @classmethod
    def connect(cls, url, subprotocols=(NC_PROTOCOL,), timeout=10.0, **kw):
        """Opens `url`; raises Refused for an HTTP answer other than 101.
        The client's own keepalive pings are off (tests control the
        traffic) and messages have no size limit."""
        kw.setdefault("ping_interval", None)
        kw.setdefault("max_size", None)
        kw.setdefault("close_timeout", 5 * SLOW)
        kw.setdefault("open_timeout", timeout * SLOW)
        protos = list(subprotocols) if subprotocols else None

        async def go():
            return await websockets.client.connect(url, subprotocols=protos, **kw)

        try:
            ws = LOOP.run(go(), timeout * SLOW + 5)
        except websockets.exceptions.InvalidStatusCode as e:
            raise Refused(e.status_code, e.headers)
        return cls(ws)

    @property
    def subprotocol(self):
        return self.ws.subprotocol

    @property
    def response_headers(self):
        return self.ws.response_headers

    def _closed(self):
        return Closed(self.ws.close_code, self.ws.close_reason)

    def recv(self, timeout=5.0):
        """The next message (str); raises Closed when the connection closed
        first, NoMessage when nothing came within timeout * SLOW."""
        async def go():
            return await asyncio.wait_for(self.ws.recv(), timeout * SLOW)

        try:
            return LOOP.run(go(), timeout * SLOW + 5)
        except asyncio.TimeoutError:
            raise NoMessage("no WebSocket message within %.1f s" % (timeout * SLOW))
        except websockets.exceptions.ConnectionClosed:
            raise self._closed()

    def recv_delivered(self, timeout=5.0):
        return Delivered(self.recv(timeout))

    def assert_nothing(self, within):
        """Fails if a message arrives within `within` seconds (not scaled:
        a lower bound). A close is not a message and passes."""
        async def go():
            return await asyncio.wait_for(self.ws.recv(), within)

        try:
            msg = LOOP.run(go(), within + 5)
        except asyncio.TimeoutError:
            return
        except websockets.exceptions.ConnectionClosed:
            return
        raise AssertionError("unexpected WebSocket message: %r" % msg[:500])

    def send(self, text, timeout=5.0):
        try:
            LOOP.run(self.ws.send(text), timeout * SLOW)
        except websockets.exceptions.ConnectionClosed:
            raise self._closed()

    def ping(self, data=b"p", timeout=5.0):
        """Sends a ping and waits for its pong; returns the round trip (s)."""
        async def go():
            t = time.monotonic()
            waiter = await self.ws.ping(data)
            await asyncio.wait_for(waiter, timeout * SLOW)
            return time.monotonic() - t

        try:
            return LOOP.run(go(), timeout * SLOW + 5)
        except asyncio.TimeoutError:
            raise NoMessage("no pong within %.1f s" % (timeout * SLOW))
        except websockets.exceptions.ConnectionClosed:
            raise self._closed()

    def close(self, code=1000, reason="", timeout=10.0):
        """Starts and completes the close handshake; returns (code, reason)
        of the server's close frame (1006 when it sent none)."""
        LOOP.run(self.ws.close(code, reason), timeout * SLOW)
        return self.ws.close_code, self.ws.close_reason

    def wait_closed(self, timeout=5.0):
        """Reads until the server closes: returns (code, reason, messages
        received meanwhile). Fails when still open after timeout * SLOW."""
        messages = []
        deadline = time.monotonic() + timeout * SLOW
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("WebSocket still open after %.1f s; received %r"
                                     % (timeout * SLOW, [m[:200] for m in messages]))
            try:
                messages.append(self.recv(left / SLOW))
            except Closed as e:
                # The library has answered the close frame; let it finish.
                try:
                    LOOP.run(self.ws.wait_closed(), 5 * SLOW)
                except Exception:
                    pass
                return e.code, e.reason, messages
            except NoMessage:
                continue

    @property
    def open(self):
        return self.ws.open

    def abort(self):
        """Drops the TCP connection without a close handshake."""
        async def go():
            self.ws.transport.abort()
        try:
            LOOP.run(go(), 5)
        except Exception:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.ws.open:
            try:
                self.close(timeout=2)
            except Exception:
                self.abort()
        return False


# --------------------------------------------------------------------------
# Raw frames


def mask_bytes(data, key):
    """XOR `data` with the 4-byte masking key (RFC 6455 5.3)."""
    n = len(data)
    if n == 0:
        return b""
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(k, "big")).to_bytes(n, "big")


def encode_frame(opcode, payload=b"", fin=True, mask=True, rsv=0, length=None):
    """One frame. `length` overrides the length field (for lies)."""
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    n = len(payload) if length is None else length
    b0 = (0x80 if fin else 0) | ((rsv & 7) << 4) | (opcode & 0xF)
    mbit = 0x80 if mask else 0
    if n < 126:
        head = struct.pack("!BB", b0, mbit | n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, mbit | 126, n)
    else:
        head = struct.pack("!BBQ", b0, mbit | 127, n)
    if mask:
        key = os.urandom(4)
        return head + key + mask_bytes(payload, key)
    return head + payload


def close_payload(code=None, reason=""):
    if code is None:
        return b""
    return struct.pack("!H", code) + reason.encode("utf-8")


def parse_close(payload):
    """(code, reason) of a close frame's payload; (None, "") when empty."""
    if len(payload) < 2:
        return None, ""
    return struct.unpack("!H", payload[:2])[0], payload[2:].decode("utf-8", "replace")


class Frame:
    def __init__(self, fin, rsv, opcode, masked, payload):
        self.fin, self.rsv, self.opcode, self.masked, self.payload = \
            fin, rsv, opcode, masked, payload

    def __repr__(self):
        return "<Frame op=%d fin=%d rsv=%d masked=%d %r>" % (
            self.opcode, self.fin, self.rsv, self.masked, self.payload[:100])


class Eof(Exception):
    """The server closed the TCP connection."""


class RawWebSocket:
    """A hand-written WebSocket client over a plain socket.

    rcvbuf: SO_RCVBUF set before connect (a small one makes a client that
    stops reading stall the server quickly)."""

    def __init__(self, host, port, timeout=10.0, rcvbuf=None):
        self.host, self.port = host, port
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout * SLOW)
        self.sock.connect((host, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.eof = False
        self.key = None
        self.response = None

    # ---- handshake ---------------------------------------------------------

    def handshake_bytes(self, path, protocols=(NC_PROTOCOL,), key=None, version="13",
                        headers=None, omit=(), method="GET"):
        """The upgrade request: `headers` (list of pairs) are added after the
        usual ones, names in `omit` (lower case) are left out."""
        self.key = key if key is not None else new_key()
        hdrs = [("Host", "%s:%d" % (self.host, self.port)), ("Upgrade", "websocket"),
                ("Connection", "Upgrade"), ("Sec-WebSocket-Key", self.key),
                ("Sec-WebSocket-Version", version)]
        if protocols:
            hdrs.append(("Sec-WebSocket-Protocol", ", ".join(protocols)))
        hdrs = [(k, v) for k, v in hdrs if k.lower() not in omit]
        hdrs += list(headers or [])
        return build_request(method, path, None, hdrs)

    def handshake(self, path, **kw):
        """Sends the upgrade request and reads the answer (a Response; for
        101 no body is read and what follows is frames)."""
        self.send_raw(self.handshake_bytes(path, **kw))
        self.response = self._read_response()
        return self.response

    def open(self, path, **kw):
        """handshake() that must succeed with a correct 101."""
        r = self.handshake(path, **kw)
        if r.status != 101:
            raise AssertionError("upgrade of %s answered %d: %r" % (path, r.status, r))
        if r.header("Sec-WebSocket-Accept") != accept_key(self.key):
            raise AssertionError("bad Sec-WebSocket-Accept %r for key %r"
                                 % (r.header("Sec-WebSocket-Accept"), self.key))
        return self

    def _read_response(self):
        deadline = time.monotonic() + 10 * SLOW
        while b"\r\n\r\n" not in self.buf:
            if not self._fill(deadline):
                raise Eof("closed before a complete response; got %r" % bytes(self.buf[:300]))
        end = self.buf.index(b"\r\n\r\n")
        head = bytes(self.buf[:end]).decode("latin-1")
        del self.buf[:end + 4]
        lines = head.split("\r\n")
        parts = lines[0].split(" ", 2)
        status = int(parts[1])
        headers = []
        for line in lines[1:]:
            k, v = line.split(":", 1)
            headers.append((k.strip(), v.strip()))
        resp = Response(status, parts[2] if len(parts) > 2 else "", headers, b"",
                        parts[0])
        if status != 101:
            n = int(resp.header("Content-Length") or 0)
            while len(self.buf) < n:
                if not self._fill(deadline):
                    break
            resp.body = bytes(self.buf[:n])
            del self.buf[:n]
        return resp

    # ---- bytes -------------------------------------------------------------

    def send_raw(self, data):
        self.sock.sendall(data)

    def _fill(self, deadline):
        """Reads more bytes; False at EOF (or reset); raises NoMessage at the
        deadline."""
        if self.eof:
            return False
        left = deadline - time.monotonic()
        if left <= 0:
            raise NoMessage("nothing from the server in time; unread %r"
                            % bytes(self.buf[:200]))
        r, _, _ = select.select([self.sock], [], [], left)
        if not r:
            raise NoMessage("nothing from the server in time; unread %r"
                            % bytes(self.buf[:200]))
        try:
            data = self.sock.recv(1 << 20)
        except (ConnectionResetError, BrokenPipeError):
            data = b""
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def _need(self, n, deadline):
        while len(self.buf) < n:
            if not self._fill(deadline):
                raise Eof("connection closed with %d of %d bytes of a frame"
                          % (len(self.buf), n))

    # ---- frames ------------------------------------------------------------

    def send_frame(self, opcode, payload=b"", **kw):
        self.send_raw(encode_frame(opcode, payload, **kw))

    def send_text(self, text, fragments=1):
        """A text message, split into `fragments` frames."""
        data = text.encode("utf-8") if isinstance(text, str) else text
        if fragments <= 1:
            self.send_frame(OP_TEXT, data)
            return
        size = -(-len(data) // fragments)
        out = b""
        for i in range(fragments):
            part = data[i * size:(i + 1) * size]
            out += encode_frame(OP_TEXT if i == 0 else OP_CONT, part,
                                fin=(i == fragments - 1))
        self.send_raw(out)

    def send_close(self, code=1000, reason=""):
        self.send_frame(OP_CLOSE, close_payload(code, reason))

    def recv_frame(self, timeout=5.0):
        """The next frame; Eof at a clean end, NoMessage at timeout*SLOW."""
        deadline = time.monotonic() + timeout * SLOW
        self._need(2, deadline)
        b0, b1 = self.buf[0], self.buf[1]
        n = b1 & 0x7F
        off = 2
        if n == 126:
            self._need(4, deadline)
            n = struct.unpack("!H", bytes(self.buf[2:4]))[0]
            off = 4
        elif n == 127:
            self._need(10, deadline)
            n = struct.unpack("!Q", bytes(self.buf[2:10]))[0]
            off = 10
        masked = bool(b1 & 0x80)
        key = None
        if masked:
            self._need(off + 4, deadline)
            key = bytes(self.buf[off:off + 4])
            off += 4
        self._need(off + n, deadline)
        payload = bytes(self.buf[off:off + n])
        del self.buf[:off + n]
        if masked:
            payload = mask_bytes(payload, key)
        return Frame(bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0xF, masked, payload)

    def recv_message(self, timeout=5.0, answer_pings=True):
        """The next message as (opcode, payload bytes): data messages are
        reassembled from their fragments; a close frame is returned as
        (OP_CLOSE, payload); pings are answered (unless told not to) and
        pongs skipped. Server frames must be unmasked (RFC 6455 5.1)."""
        deadline = time.monotonic() + timeout * SLOW
        opcode, parts = None, []
        while True:
            f = self.recv_frame(max(deadline - time.monotonic(), 0.001) / SLOW)
            if f.masked:
                raise AssertionError("server sent a masked frame: %r" % f)
            if f.opcode == OP_PING and answer_pings:
                self.send_frame(OP_PONG, f.payload)
                continue
            if f.opcode == OP_PONG and answer_pings:
                continue
            if f.opcode >= 0x8:
                return f.opcode, f.payload
            if f.opcode != OP_CONT:
                if opcode is not None:
                    raise AssertionError("server began a message inside another")
                opcode = f.opcode
            elif opcode is None:
                raise AssertionError("server sent a continuation with no message")
            parts.append(f.payload)
            if f.fin:
                return opcode, b"".join(parts)

    def recv_text(self, timeout=5.0):
        op, payload = self.recv_message(timeout)
        if op == OP_CLOSE:
            raise Closed(*parse_close(payload))
        if op != OP_TEXT:
            raise AssertionError("expected a text message, got opcode %d: %r" % (op, payload[:200]))
        return payload.decode("utf-8")

    def expect_close(self, timeout=5.0):
        """Reads until the server's close frame, answers it (as a client
        must, RFC 6455 5.5.1) and waits for the server to end the TCP
        connection. Returns (code, reason, [data messages before it])."""
        deadline = time.monotonic() + timeout * SLOW
        before = []
        while True:
            left = deadline - time.monotonic()
            try:
                op, payload = self.recv_message(max(left, 0.001) / SLOW)
            except NoMessage:
                raise AssertionError("no close frame within %.1f s (received %d messages: %r)"
                                     % (timeout * SLOW, len(before),
                                        [m[:100] for m in before]))
            except Eof:
                raise AssertionError("TCP closed without a close frame (received %r)"
                                     % [m[:100] for m in before])
            if op == OP_CLOSE:
                break
            before.append(payload)
        code, reason = parse_close(payload)
        try:
            self.send_frame(OP_CLOSE, payload[:2])
        except OSError:
            pass  # the server may already have gone; the close came first
        if not self.wait_eof(5):
            raise AssertionError("server sent close %s but kept the TCP connection open"
                                 % code)
        return code, reason, before

    def wait_eof(self, timeout):
        """True if the server closes the TCP connection within timeout*SLOW;
        bytes that arrive meanwhile are discarded."""
        deadline = time.monotonic() + timeout * SLOW
        while not self.eof:
            try:
                self._fill(deadline)
            except NoMessage:
                return False
            self.buf.clear()
        return True

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
