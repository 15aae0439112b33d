"""Helpers for the delivery tests (long polling and "nothing lost", API.md 2;
OMA NC 6.3, Appendix I): channels, notifications that carry a marker,
polls (plain, or parked on a raw connection), reading the notifications out
of a notificationList in JSON or XML, and a WebSocket client from Debian's
python3-websockets (10.4, asyncio API) that reconnects across restarts.

Every test notification carries its marker in `callbackData`, so what a
client received can be compared with what the enabler sent, in order,
whatever format the server chose to deliver it in.
"""

import asyncio
import json
import select
import threading
import time
import uuid
import xml.etree.ElementTree as ET

from ncfixture import SLOW, build_request, quote

BASE = "/notificationchannel/v1"
JSON = "application/json"
XML = "application/xml"
FORM = "application/x-www-form-urlencoded"
NC_NS = "urn:oma:xml:rest:netapi:notificationchannel:1"
COMMON_NS = "urn:oma:xml:rest:netapi:common:1"
# The namespace of the test notifications sent as XML (an enabler's own).
TEST_NS = "urn:example:e2e:delivery:1"
SUBPROTOCOL = "notificationchannel-netapi-rest.openmobilealliance.org"

# The long-poll request bodies the server must take (6.3.5, C.2, D.12).
POLL_JSON = '{"longPollingRequestParameters": {}}'
POLL_XML = ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<nc:longPollingRequestParameters xmlns:nc="%s"/>' % NC_NS)
POLL_FORM = "longPollingRequestParameters="


def new_user():
    """A fresh tel: userId, so a test has its own channels."""
    return "tel:+1958555%04d%s" % (uuid.uuid4().int % 10000, uuid.uuid4().hex[:6])


def channels_path(user):
    return "%s/%s/channels" % (BASE, quote(user))


def new_markers(n, prefix=None):
    prefix = prefix or "m" + uuid.uuid4().hex[:6]
    return ["%s-%03d" % (prefix, i) for i in range(n)]


# --------------------------------------------------------------------------
# Notifications as an enabler sends them


def json_notification(marker, root="testNotification"):
    return {root: {"callbackData": marker, "eventType": "Changed",
                   "detail": {"text": "about " + marker}}}


def xml_notification(marker, root="testNotification"):
    return ('<t:%s xmlns:t="%s"><callbackData>%s</callbackData>'
            "<eventType>Changed</eventType><detail><text>about %s</text></detail>"
            "</t:%s>" % (root, TEST_NS, marker, marker, root))


def notification_body(marker, fmt):
    """(body, content type) of one notification in `fmt` ("json"/"xml")."""
    if fmt == "json":
        return json.dumps(json_notification(marker)), JSON
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + xml_notification(marker), XML


def notification_list_body(markers, fmt):
    if fmt == "json":
        return json.dumps({"notificationList": [json_notification(m) for m in markers]}), JSON
    return ('<nc:notificationList xmlns:nc="%s">%s</nc:notificationList>'
            % (NC_NS, "".join(xml_notification(m) for m in markers))), XML


# --------------------------------------------------------------------------
# Reading a notificationList


def local(tag):
    return tag.split("}", 1)[-1]


def _json_items(doc, where):
    if not isinstance(doc, dict) or list(doc) != ["notificationList"]:
        raise AssertionError("%s: expected {\"notificationList\": [...]}, got %r"
                             % (where, doc))
    lst = doc["notificationList"]
    # API.md 2: an element that may repeat is always an array.
    if not isinstance(lst, list):
        raise AssertionError("%s: notificationList is not an array: %r" % (where, doc))
    items = []
    for item in lst:
        if not isinstance(item, dict) or len(item) != 1:
            raise AssertionError("%s: a notification is not an object with one "
                                 "root key: %r" % (where, item))
        root, body = next(iter(item.items()))
        marker = body.get("callbackData") if isinstance(body, dict) else None
        items.append((root, None if marker is None else str(marker), item))
    return items


def _xml_items(text, where):
    try:
        root = ET.fromstring(text)
    except ET.ParseError as e:
        raise AssertionError("%s: not XML (%s): %r" % (where, e, text[:500]))
    if root.tag != "{%s}notificationList" % NC_NS:
        raise AssertionError("%s: root is %s, expected nc:notificationList: %r"
                             % (where, root.tag, text[:500]))
    items = []
    for child in root:
        marker = None
        for el in child:
            if local(el.tag) == "callbackData":
                marker = (el.text or "").strip()
        items.append((local(child.tag), marker, child))
    return items


def items_of(resp, where="response"):
    """[(root local name, callbackData marker, parsed item)] of a poll
    response, in order; fails unless it is a notificationList in the
    format its Content-Type names."""
    ctype = (resp.header("Content-Type") or "").split(";")[0].strip()
    if ctype == JSON:
        return _json_items(resp.json(), where)
    if ctype == XML:
        return _xml_items(resp.body, where)
    raise AssertionError("%s: Content-Type %r, body %r" % (where, ctype, resp.body[:300]))


def items_of_frame(text):
    """The same for a WebSocket text frame (JSON or XML by its first byte)."""
    if text.lstrip().startswith("<"):
        return _xml_items(text.encode("utf-8"), "frame")
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise AssertionError("frame is neither XML nor JSON (%s): %r" % (e, text[:300]))
    return _json_items(doc, "frame")


def markers_of(items):
    return [m for _, m, _ in items]


# --------------------------------------------------------------------------
# A mixin for test cases with `self.server`


class DeliveryHelpers:

    def path_of(self, url):
        base = self.server.base_url
        self.assertTrue(url.startswith(base), (url, base))
        return url[len(base):]

    def create_channel(self, channel_type="LongPolling", user=None, lifetime=None,
                       **data):
        """Creates a channel (JSON); returns its representation plus `user`,
        `id`, `path` (resource), `cb` (callback path), `poll` (channelURL
        path, LongPolling) and `ws` (channelURL, WebSockets)."""
        user = user or new_user()
        channel = {"channelType": channel_type}
        if data:
            channel["channelData"] = data
        if lifetime is not None:
            channel["channelLifetime"] = lifetime
        r = self.server.request("POST", channels_path(user), {"notificationChannel": channel})
        self.assertStatus(r, 201, "create %r" % channel)
        ch = r.json()["notificationChannel"]
        ch["user"] = user
        ch["id"] = ch["resourceURL"].rsplit("/", 1)[1]
        ch["path"] = self.path_of(ch["resourceURL"])
        ch["cb"] = self.path_of(ch["callbackURL"])
        url = ch["channelData"]["channelURL"]
        if channel_type == "LongPolling":
            self.assertEqual(url, ch["resourceURL"] + "/notifications")
            ch["poll"] = self.path_of(url)
        else:
            ch["ws"] = url
        return ch

    def ws_url(self, ch):
        """The channel's channelURL as the running server gives it now
        (its port changes across restarts)."""
        r = self.server.get(ch["path"])
        self.assertStatus(r, 200, "read channel")
        return r.json()["notificationChannel"]["channelData"]["channelURL"]

    def notify(self, ch, markers, fmt="json"):
        """POSTs one notification per marker to the callbackURL; each must
        be acknowledged with 204."""
        for m in markers:
            body, ctype = notification_body(m, fmt)
            r = self.server.request("POST", ch["cb"], body, headers={"Content-Type": ctype})
            self.assertStatus(r, 204, "callback POST of %s" % m)

    def notify_list(self, ch, markers, fmt="json"):
        body, ctype = notification_list_body(markers, fmt)
        r = self.server.request("POST", ch["cb"], body, headers={"Content-Type": ctype})
        self.assertStatus(r, 204, "callback POST of a list %r" % markers)

    def poll_request(self, fmt="json", accept=None, body=None, ctype=None):
        """(body, headers) of a poll; JSON or XML body by `fmt`, Accept
        following it unless given ("" for none)."""
        if body is None:
            body, ctype = (POLL_JSON, JSON) if fmt == "json" else (POLL_XML, XML)
        if accept is None:
            accept = JSON if fmt == "json" else XML
        headers = {}
        if ctype:
            headers["Content-Type"] = ctype
        if accept:
            headers["Accept"] = accept
        return body, headers

    def poll(self, ch, fmt="json", accept=None, body=None, ctype=None, timeout=30):
        body, headers = self.poll_request(fmt, accept, body, ctype)
        return self.server.request("POST", ch["poll"], body, headers=headers,
                                   timeout=timeout)

    def polled(self, ch, fmt="json", **kw):
        """A poll that must answer 200 with a notificationList; its items."""
        r = self.poll(ch, fmt, **kw)
        self.assertStatus(r, 200, "poll")
        self.assertEqual(r.header("Content-Type"), JSON if fmt == "json" else XML)
        return items_of(r)

    def start_poll(self, ch, fmt="json", accept=None, body=None, ctype=None):
        """Sends a poll on a raw connection and returns it unanswered; read
        the answer with conn.read_response()."""
        body, headers = self.poll_request(fmt, accept, body, ctype)
        conn = self.server.raw(timeout=30)
        conn.request_sent_at = time.monotonic()
        conn.send(build_request("POST", ch["poll"], body, headers))
        self.addCleanup(conn.close)
        return conn

    def assertParked(self, conn, seconds=0.3):
        """Nothing answers the poll for `seconds` (times SLOW: this is the
        time the server has to take the request in and park it)."""
        r, _, _ = select.select([conn.sock], [], [], seconds * SLOW)
        if r:
            try:
                resp = conn.read_response()
            except Exception as e:  # the message says what came instead
                resp = e
            self.fail("the poll was answered at once instead of waiting: %r" % (resp,))

    def read_answer(self, conn, within):
        """The response to a started poll, which must come within `within`
        seconds (times SLOW); returns (response, seconds it took)."""
        conn.settimeout(within * SLOW)
        start = time.monotonic()
        resp = conn.read_response()
        return resp, time.monotonic() - start

    def assertEmptyList(self, resp, fmt):
        """200 with an empty notificationList: JSON {"notificationList": []}
        (API.md 2), XML an empty nc:notificationList (6.3.5.3)."""
        self.assertStatus(resp, 200, "empty poll")
        if fmt == "json":
            self.assertEqual(resp.header("Content-Type"), JSON)
            self.assertEqual(resp.json(), {"notificationList": []})
        else:
            self.assertEqual(resp.header("Content-Type"), XML)
            root = ET.fromstring(resp.body)
            self.assertEqual(root.tag, "{%s}notificationList" % NC_NS)
            self.assertEqual(len(root), 0, resp.body)
            self.assertFalse((root.text or "").strip(), resp.body)

    def poll_until(self, ch, count, fmt="json", timeout=20, max_per_list=None):
        """Polls until `count` notifications came (or `timeout`, times SLOW);
        returns their markers in the order received."""
        got = []
        deadline = time.monotonic() + timeout * SLOW
        while len(got) < count:
            if time.monotonic() > deadline:
                self.fail("after %.0f s only %d of %d notifications: %r"
                          % (timeout * SLOW, len(got), count, got))
            items = self.polled(ch, fmt)
            if max_per_list is not None:
                self.assertLessEqual(len(items), max_per_list, items)
            got.extend(markers_of(items))
        return got


# --------------------------------------------------------------------------
# WebSockets, through python3-websockets (not our code)


def ws_collect(url, count, timeout=10.0, quiet=0.5, max_per_frame=None):
    """Connects once, reads until `count` notifications came, then for
    `quiet` seconds more (anything extra is a duplicate or a stray), closes
    and returns (markers, frames). Empty notificationLists (allowed by I.1)
    are kept in frames but add no marker."""
    import websockets

    async def run():
        markers, frames = [], []
        async with websockets.connect(url, subprotocols=[SUBPROTOCOL], ping_interval=None,
                                      open_timeout=10 * SLOW, close_timeout=5 * SLOW) as ws:
            if ws.subprotocol != SUBPROTOCOL:
                raise AssertionError("subprotocol not echoed: %r" % ws.subprotocol)
            deadline = time.monotonic() + timeout * SLOW
            while len(markers) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("after %.0f s only %d of %d notifications: %r"
                                         % (timeout * SLOW, len(markers), count, markers))
                try:
                    msg = await asyncio.wait_for(ws.recv(), left)
                except asyncio.TimeoutError:
                    continue
                frames.append(msg)
                items = items_of_frame(msg)
                if max_per_frame is not None and len(items) > max_per_frame:
                    raise AssertionError("%d notifications in one frame (max %d)"
                                         % (len(items), max_per_frame))
                markers.extend(markers_of(items))
            end = time.monotonic() + quiet
            while True:
                left = end - time.monotonic()
                if left <= 0:
                    break
                try:
                    msg = await asyncio.wait_for(ws.recv(), left)
                except asyncio.TimeoutError:
                    break
                frames.append(msg)
                markers.extend(markers_of(items_of_frame(msg)))
        return markers, frames

    try:
        return asyncio.run(run())
    except (websockets.InvalidHandshake, websockets.ConnectionClosed, OSError) as e:
        raise AssertionError("WebSocket %s: %r" % (url, e))


class WsCollector:
    """A WebSocket client in a thread of its own that stays connected to a
    channel and reconnects whenever the connection ends, to whatever URL
    `url` holds at that moment (set it after a restart: the port changes).
    Everything it receives is kept in order in `markers`; close codes of
    the connections that ended in `close_codes`."""

    def __init__(self, url):
        self.url = url
        self.markers = []
        self.frames = []
        self.close_codes = []
        self.connects = 0
        self.errors = []
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._loop = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        import websockets
        self._loop = asyncio.new_event_loop()

        async def session():
            while not self._stop.is_set():
                url = self.url
                try:
                    async with websockets.connect(url, subprotocols=[SUBPROTOCOL],
                                                  ping_interval=None, open_timeout=5 * SLOW,
                                                  close_timeout=2 * SLOW) as ws:
                        with self.lock:
                            self.connects += 1
                        try:
                            while not self._stop.is_set():
                                try:
                                    msg = await asyncio.wait_for(ws.recv(), 0.1)
                                except asyncio.TimeoutError:
                                    continue
                                items = items_of_frame(msg)
                                with self.lock:
                                    self.frames.append(msg)
                                    self.markers.extend(markers_of(items))
                        except websockets.ConnectionClosed:
                            pass
                        with self.lock:
                            self.close_codes.append(ws.close_code)
                except (OSError, asyncio.TimeoutError, websockets.InvalidHandshake,
                        websockets.ConnectionClosed) as e:
                    with self.lock:
                        self.errors.append(repr(e))
                except AssertionError as e:
                    with self.lock:
                        self.errors.append("bad frame: %s" % e)
                await asyncio.sleep(0.05)

        try:
            self._loop.run_until_complete(session())
        finally:
            self._loop.close()

    def connected_count(self):
        with self.lock:
            return self.connects

    def received(self):
        with self.lock:
            return list(self.markers)

    def wait_for(self, count, timeout):
        """Waits until `count` markers came (timeout times SLOW)."""
        deadline = time.monotonic() + timeout * SLOW
        while True:
            got = self.received()
            if len(got) >= count:
                return got
            if time.monotonic() > deadline:
                raise AssertionError("WebSocket client got %d of %d notifications "
                                     "in %.0f s: %r; close codes %r; errors %r"
                                     % (len(got), count, timeout * SLOW, got,
                                        self.close_codes, self.errors[-5:]))
            time.sleep(0.02)

    def wait_connected(self, n, timeout):
        deadline = time.monotonic() + timeout * SLOW
        while self.connected_count() < n:
            if time.monotonic() > deadline:
                raise AssertionError("WebSocket client not connected (%d of %d) in "
                                     "%.0f s; errors %r" % (self.connected_count(), n,
                                                            timeout * SLOW, self.errors[-5:]))
            time.sleep(0.02)

    def stop(self):
        self._stop.set()
        self._thread.join(10 * SLOW)
