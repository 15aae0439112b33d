"""WebSocket delivery (OMA NC Appendix I; API.md section 2 "WebSockets",
"Slow readers", "Nothing lost"), end to end.

The ordinary client is python3-websockets (wsclient.WsClient); what a
library will not send (unmasked or binary frames, invalid UTF-8, messages
over the limit, odd fragments) goes through wsclient.RawWebSocket. An
enabler is played by POSTs to the channel's callbackURL; each notification
carries a sequence number so order and loss can be checked.

WebSocketsTest shares one server (each test has channels of its own); the
other classes need servers with other settings: server-initiated connCheck,
slow-reader limits, SIGTERM.
"""

import datetime
import json
import re
import signal
import sqlite3
import threading
import time
import unittest
import uuid

from ncfixture import SANITIZED, SLOW, Server, ServerTestCase, quote
from wsclient import (NC_NS, NC_PROTOCOL, OP_BINARY, OP_CLOSE, OP_CONT, OP_PONG,
                      OP_PING, OP_TEXT, Closed, Delivered, NoMessage, RawWebSocket,
                      Refused, WsClient, accept_key, encode_frame, parse_close,
                      split_tag, xml_int)

BASE = "/notificationchannel/v1"
JSON = "application/json"
XML = "application/xml"
TEST_NS = "urn:example:ncserver:test:1"
PRESENCE_NS = "urn:oma:xml:rest:netapi:presence:1"
MAX_MESSAGE = 8192  # ws_max_message_bytes of WebSocketsTest

CONNCHECK_XML = '<nc:connCheck xmlns:nc="%s"/>' % NC_NS
CONNACK_XML = '<nc:connAck xmlns:nc="%s"/>' % NC_NS

# OMA NC I.4.1, the presence notification of the example.
PRESENCE = ('<pr:presenceNotification xmlns:pr="%s">'
            "<presentityUserId>tel:+19585550100</presentityUserId>"
            "<callbackData>1234</callbackData>"
            "<resourceStatus>Active</resourceStatus>"
            "<presence><person><mood><moodValue>Happy</moodValue></mood></person></presence>"
            '<link rel="PresenceSubscription" href="http://example.com/exampleAPI/v1/presence/'
            'tel%%3A%%2B19585550101/subscriptions/presenceSubscriptions/tel%%3A%%2B19585550100/'
            'sub001"/>'
            "</pr:presenceNotification>" % PRESENCE_NS)


def new_user():
    return "tel:+1958555" + uuid.uuid4().hex[:10]


def note_json(tag, seq, pad=0):
    """A JSON notification with a sequence number (and `pad` filler bytes)."""
    body = {"callbackData": tag, "seq": seq}
    if pad:
        body["pad"] = "x" * pad
    return {"testNotification": body}


def note_xml(tag, seq):
    return ('<t:testNotification xmlns:t="%s"><callbackData>%s</callbackData>'
            "<seq>%d</seq></t:testNotification>" % (TEST_NS, tag, seq))


def seq_of(name, item):
    """The seq of one delivered notification (JSON object or XML element)."""
    if isinstance(item, dict):
        return item["seq"]
    return xml_int(item, "seq")


def wait_until(predicate, timeout, what):
    deadline = time.monotonic() + timeout * SLOW
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.1f s waiting for %s"
                                 % (timeout * SLOW, what))
        time.sleep(0.02)


class WsHelpers:
    """Channels, callbacks and what a client receives."""

    def new_channel(self, user=None, max_notifications=None, lifetime=None, ctype="WebSockets"):
        user = user or new_user()
        channel = {"channelType": ctype, "applicationTag": "ws-e2e"}
        if max_notifications is not None:
            channel["channelData"] = {"maxNotifications": max_notifications}
        if lifetime is not None:
            channel["channelLifetime"] = lifetime
        r = self.server.request("POST", "%s/%s/channels" % (BASE, quote(user)),
                                {"notificationChannel": channel})
        self.assertStatus(r, 201, "create channel")
        ch = r.json()["notificationChannel"]
        base = self.server.base_url
        ch["user"] = user
        ch["id"] = ch["resourceURL"].rsplit("/", 1)[1]
        ch["path"] = ch["resourceURL"][len(base):]
        ch["cb"] = ch["callbackURL"][len(base):]
        if ctype == "WebSockets":
            url = ch["channelData"]["channelURL"]
            prefix = "ws://%s:%d" % (self.server.host, self.server.port)
            self.assertTrue(url.startswith(prefix), url)
            ch["url"] = url
            ch["ws"] = url[len(prefix):]
        return ch

    def notify(self, ch, body, ctype=JSON):
        """POSTs to the callbackURL: a dict (JSON) or XML text; must be 204."""
        if isinstance(body, str) and ctype == JSON and body.lstrip().startswith("<"):
            ctype = XML
        r = self.server.request("POST", ch["cb"], body, headers={"Content-Type": ctype})
        self.assertStatus(r, 204, "callback POST")

    def notify_many(self, ch, bodies):
        """POSTs each body on one keep-alive connection (faster)."""
        c = self.server.raw()
        try:
            for body in bodies:
                if isinstance(body, str):
                    r = c.request("POST", ch["cb"], body, {"Content-Type": XML})
                else:
                    r = c.request("POST", ch["cb"], json.dumps(body),
                                  {"Content-Type": JSON})
                self.assertStatus(r, 204, "callback POST")
        finally:
            c.close()

    def connect(self, ch, **kw):
        return WsClient.connect(ch["url"], **kw)

    def raw_ws(self, ch=None, rcvbuf=None):
        raw = RawWebSocket(self.server.host, self.server.port, rcvbuf=rcvbuf)
        if ch is not None:
            raw.open(ch["ws"])
        return raw

    def receive(self, client, count, timeout=10.0):
        """Messages until `count` notifications have come: returns the list
        of Delivered (each must be a notificationList)."""
        got, messages = 0, []
        deadline = time.monotonic() + timeout * SLOW
        while got < count:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("only %d of %d notifications within %.1f s: %r"
                                     % (got, count, timeout * SLOW, messages))
            d = client.recv_delivered(left / SLOW)
            self.assertEqual(d.root, "notificationList", d)
            if d.fmt == "xml":
                self.assertEqual(d.ns, NC_NS, d)
            messages.append(d)
            got += len(d.items)
        self.assertEqual(got, count, "more notifications than sent: %r" % messages)
        return messages

    def receive_through(self, client, last, timeout=10.0):
        """Messages until the notification with seq `last` has come."""
        messages = []
        deadline = time.monotonic() + timeout * SLOW
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("seq %d not received within %.1f s; got %r"
                                     % (last, timeout * SLOW, self.seqs(messages)[-20:]))
            try:
                d = client.recv_delivered(left / SLOW)
            except NoMessage:
                got = self.seqs(messages)
                raise AssertionError("seq %d not received within %.1f s; got %d "
                                     "notifications, the last %r"
                                     % (last, timeout * SLOW, len(got), got[-20:]))
            self.assertEqual(d.root, "notificationList", d)
            messages.append(d)
            if last in self.seqs([d]):
                return messages

    def seqs(self, messages):
        return [seq_of(name, item) for d in messages for name, item in d.items]

    def lifetime_left(self, ch):
        r = self.server.get(ch["path"] + "/channelLifetime")
        self.assertStatus(r, 200, "GET channelLifetime")
        return r.json()["notificationChannelLifetime"]["channelLifetime"]

    def outbox_count(self, ch):
        conn = sqlite3.connect(self.server.db, timeout=5)
        try:
            return conn.execute("SELECT count(*) FROM outbox WHERE channel_id = ?",
                                (ch["id"],)).fetchone()[0]
        finally:
            conn.close()

    def assertRefused(self, path, status, **kw):
        raw = RawWebSocket(self.server.host, self.server.port)
        try:
            r = raw.handshake(path, **kw)
            self.assertNotEqual(r.status, 101, "upgrade of %s accepted; should be %d"
                                % (path, status))
            self.assertEqual(r.status, status, "upgrade of %s: %r" % (path, r))
            self.assertIsNone(r.header("Sec-WebSocket-Accept"), r)
            return r
        finally:
            raw.close()

    def assertClose(self, raw, code, reason_has=None, timeout=5.0):
        got, reason, before = raw.expect_close(timeout)
        self.assertEqual(got, code, "close code (reason %r)" % reason)
        if reason_has:
            self.assertIn(reason_has, reason.lower())
        return before


class WebSocketsTest(WsHelpers, ServerTestCase):

    server_config = {"channel_lifetime_min": 1, "ws_max_message_bytes": MAX_MESSAGE}

    # ---- handshake (I.1, I.2, RFC 6455 4) -------------------------------------

    def test_upgrade_echoes_the_subprotocol(self):
        ch = self.new_channel()
        with self.connect(ch) as c:
            self.assertEqual(c.subprotocol, NC_PROTOCOL)
        # By hand, offering another protocol first: ours is chosen.
        with self.raw_ws() as raw:
            r = raw.handshake(ch["ws"], protocols=("chat", NC_PROTOCOL))
            self.assertEqual(r.status, 101, r)
            self.assertEqual(r.header("Upgrade", "").lower(), "websocket", r)
            self.assertIn("upgrade", r.header("Connection", "").lower(), r)
            self.assertEqual(r.header("Sec-WebSocket-Accept"), accept_key(raw.key), r)
            self.assertEqual(r.header("Sec-WebSocket-Protocol"), NC_PROTOCOL, r)
            self.assertIsNone(r.header("Sec-WebSocket-Extensions"), r)

    def test_upgrade_without_the_subprotocol_400(self):
        ch = self.new_channel()
        self.assertRefused(ch["ws"], 400, protocols=())
        self.assertRefused(ch["ws"], 400, protocols=("chat",))
        with self.assertRaises(Refused) as cm:
            WsClient.connect(ch["url"], subprotocols=None)
        self.assertEqual(cm.exception.status, 400)
        # The refusal upgraded nothing: the channel still takes a client.
        with self.connect(ch) as c:
            self.notify(ch, note_json("after-400", 1))
            self.assertEqual(self.seqs(self.receive(c, 1)), [1])

    def test_bad_handshakes_400(self):
        ch = self.new_channel()
        for name, kw, statuses in (
                ("no key", {"omit": ("sec-websocket-key",)}, (400,)),
                ("short key", {"key": "c2hvcnQ="}, (400,)),
                ("key not base64", {"key": "not base64 at all!!!!!!!"}, (400,)),
                ("no Upgrade", {"omit": ("upgrade",)}, (400, 426)),
                ("Upgrade: h2c", {"omit": ("upgrade",), "headers": [("Upgrade", "h2c")]},
                 (400, 426)),
                ("Connection: keep-alive", {"omit": ("connection",),
                                            "headers": [("Connection", "keep-alive")]},
                 (400, 426))):
            with self.subTest(name):
                raw = RawWebSocket(self.server.host, self.server.port)
                try:
                    r = raw.handshake(ch["ws"], **kw)
                    self.assertIn(r.status, statuses, r)
                    self.assertIsNone(r.header("Sec-WebSocket-Accept"), r)
                finally:
                    raw.close()

    def test_wrong_version_426(self):
        # RFC 6455 4.2.2 / 4.4: 426 naming the version the server speaks.
        ch = self.new_channel()
        r = self.assertRefused(ch["ws"], 426, version="8")
        self.assertIn("13", r.header("Sec-WebSocket-Version", ""), r)

    def test_refused_404_for_what_is_not_a_live_websockets_channel(self):
        ch = self.new_channel()
        other = self.new_channel()
        lp = self.new_channel(ctype="LongPolling", user=ch["user"])
        gone = self.new_channel(user=ch["user"])
        self.assertStatus(self.server.request("DELETE", gone["path"]), 204)
        with self.raw_ws(ch):  # the live channel itself upgrades
            pass
        users = "%s/%s/channels/" % (BASE, quote(ch["user"]))
        for name, path in (
                ("unknown channel", users + "Zm9vYmFyYmF6cXV4cXV1eDEyMzQ/ws"),
                ("another user's channel", users + other["id"] + "/ws"),
                ("LongPolling channel", users + lp["id"] + "/ws"),
                ("deleted channel", gone["ws"])):
            with self.subTest(name):
                self.assertRefused(path, 404)
        with self.assertRaises(Refused) as cm:
            WsClient.connect(gone["url"])
        self.assertEqual(cm.exception.status, 404)

    # ---- delivery (I.1, I.4, I.5) ---------------------------------------------

    def test_json_notification_delivered(self):
        ch = self.new_channel()
        with self.connect(ch) as c:
            self.notify(ch, note_json("j", 0))
            d = c.recv_delivered()
            self.assertEqual(d.fmt, "json")
            # An element that may repeat is an array, even with one item.
            self.assertEqual(d.doc, {"notificationList": [note_json("j", 0)]})
            # A notificationList from the enabler: each, in order.
            self.notify(ch, {"notificationList": [note_json("j", 1), note_json("j", 2),
                                                  note_json("j", 3)]})
            messages = self.receive(c, 3)
            self.assertEqual(self.seqs(messages), [1, 2, 3])
            self.assertTrue(all(name == "testNotification"
                                for d in messages for name, _ in d.items))

    def test_xml_notification_delivered(self):
        ch = self.new_channel()
        with self.connect(ch) as c:
            self.notify(ch, '<?xml version="1.0" encoding="UTF-8"?>\n' + PRESENCE, XML)
            d = c.recv_delivered()
            self.assertEqual((d.fmt, d.ns, d.root), ("xml", NC_NS, "notificationList"), d)
            self.assertEqual(len(d.items), 1, d)
            el = d.items[0][1]
            self.assertEqual(split_tag(el.tag), (PRESENCE_NS, "presenceNotification"))
            self.assertEqual(el.findtext("callbackData"), "1234")
            self.assertEqual(el.findtext("presence/person/mood/moodValue"), "Happy")
            self.assertEqual(el.find("link").get("rel"), "PresenceSubscription")
            lst = ('<nc:notificationList xmlns:nc="%s">%s%s</nc:notificationList>'
                   % (NC_NS, note_xml("x", 1), note_xml("x", 2)))
            self.notify(ch, lst, XML)
            messages = self.receive(c, 2)
            self.assertEqual(self.seqs(messages), [1, 2])
            for d in messages:
                for name, el in d.items:
                    self.assertEqual(split_tag(el.tag), (TEST_NS, "testNotification"))

    def test_queued_before_connect_json(self):
        ch = self.new_channel(max_notifications=3)
        self.notify_many(ch, [note_json("q", i) for i in range(7)])
        with self.connect(ch) as c:
            messages = self.receive(c, 7)
            self.assertEqual(self.seqs(messages), list(range(7)))
            for d in messages:
                self.assertEqual(d.fmt, "json")
                self.assertLessEqual(len(d.items), 3, "more than maxNotifications: %r" % d)
            # Then live ones still come.
            self.notify(ch, note_json("q", 7))
            self.assertEqual(self.seqs(self.receive(c, 1)), [7])

    def test_queued_before_connect_xml(self):
        ch = self.new_channel(max_notifications=2)
        self.notify_many(ch, [note_xml("qx", i) for i in range(5)])
        with self.connect(ch) as c:
            messages = self.receive(c, 5)
            self.assertEqual(self.seqs(messages), list(range(5)))
            for d in messages:
                self.assertEqual(d.fmt, "xml")
                self.assertLessEqual(len(d.items), 2, "more than maxNotifications: %r" % d)

    def test_max_notifications_one(self):
        ch = self.new_channel(max_notifications=1)
        self.notify_many(ch, [note_json("one", i) for i in range(3)])
        with self.connect(ch) as c:
            messages = self.receive(c, 3)
            self.assertEqual([len(d.items) for d in messages], [1, 1, 1])
            self.assertEqual(self.seqs(messages), [0, 1, 2])

    def test_one_format_per_message_in_order(self):
        ch = self.new_channel(max_notifications=10)
        self.notify_many(ch, [note_json("m", 0), note_json("m", 1), note_xml("m", 2),
                              note_xml("m", 3), note_json("m", 4)])
        with self.connect(ch) as c:
            messages = self.receive(c, 5)
            self.assertEqual(self.seqs(messages), [0, 1, 2, 3, 4])
            formats = [d.fmt for d in messages for _ in d.items]
            self.assertEqual(formats, ["json", "json", "xml", "xml", "json"])

    def test_each_channel_gets_only_its_own(self):
        a, b = self.new_channel(), self.new_channel()
        with self.connect(a) as ca, self.connect(b) as cb:
            self.notify(a, note_json("A", 1))
            self.notify(b, note_json("B", 2))
            self.assertEqual(ca.recv_delivered().doc, {"notificationList": [note_json("A", 1)]})
            self.assertEqual(cb.recv_delivered().doc, {"notificationList": [note_json("B", 2)]})
            ca.assert_nothing(0.3)
            cb.assert_nothing(0.1)

    def test_delivered_notifications_leave_the_outbox(self):
        ch = self.new_channel()
        with self.connect(ch) as c:
            self.notify_many(ch, [note_json("d", i) for i in range(3)])
            self.assertEqual(self.seqs(self.receive(c, 3)), [0, 1, 2])
        wait_until(lambda: self.outbox_count(ch) == 0, 5, "the outbox to empty")
        # A new connection gets no repeat: the first thing it sees is new.
        with self.connect(ch) as c:
            c.assert_nothing(0.3)
            self.notify(ch, note_json("d", 3))
            self.assertEqual(self.seqs(self.receive(c, 1)), [3])

    # ---- protocol hygiene (RFC 6455) ---------------------------------------------

    def test_client_close_is_echoed(self):
        ch = self.new_channel()
        with self.raw_ws(ch) as raw:
            raw.send_close(1000, "bye")
            f = raw.recv_frame()
            self.assertEqual(f.opcode, OP_CLOSE, f)
            self.assertFalse(f.masked, f)
            self.assertEqual(parse_close(f.payload)[0], 1000, f)
            self.assertTrue(raw.wait_eof(5), "TCP left open after the close handshake")
        with self.connect(ch) as c:
            self.assertEqual(c.close(1000, "done")[0], 1000)
        with self.raw_ws(ch) as raw:  # a close with no status code (RFC 6455 5.5.1)
            raw.send_frame(OP_CLOSE, b"")
            f = raw.recv_frame()
            self.assertEqual(f.opcode, OP_CLOSE, f)
            self.assertIn(parse_close(f.payload)[0], (None, 1000), f)
            self.assertTrue(raw.wait_eof(5))

    def test_ping_answered_with_pong(self):
        ch = self.new_channel()
        with self.raw_ws(ch) as raw:
            raw.send_frame(OP_PING, b"are you there")
            f = raw.recv_frame()
            self.assertEqual((f.opcode, f.payload, f.masked), (OP_PONG, b"are you there", False))
            raw.send_frame(OP_PING, b"")
            f = raw.recv_frame()
            self.assertEqual((f.opcode, f.payload), (OP_PONG, b""))
        with self.connect(ch) as c:
            c.ping(b"lib")

    def test_fragmented_conncheck_with_a_ping_between(self):
        ch = self.new_channel()
        with self.raw_ws(ch) as raw:
            text = b'{"connCheck": {}}'
            raw.send_raw(encode_frame(OP_TEXT, text[:5], fin=False))
            raw.send_raw(encode_frame(OP_PING, b"mid"))  # control frames may interleave
            raw.send_raw(encode_frame(OP_CONT, text[5:9], fin=False))
            raw.send_raw(encode_frame(OP_CONT, b"", fin=False))
            raw.send_raw(encode_frame(OP_CONT, text[9:], fin=True))
            f = raw.recv_frame()
            self.assertEqual((f.opcode, f.payload), (OP_PONG, b"mid"))
            d = Delivered(raw.recv_text())
            self.assertEqual(d.root, "connAck", d)
            # XML, one byte per frame.
            data = CONNCHECK_XML.encode()
            for i, byte in enumerate(data):
                raw.send_raw(encode_frame(OP_TEXT if i == 0 else OP_CONT, data[i:i + 1],
                                          fin=(i == len(data) - 1)))
            d = Delivered(raw.recv_text())
            self.assertEqual((d.fmt, d.ns, d.root), ("xml", NC_NS, "connAck"), d)
            self.notify(ch, note_json("frag", 1))
            d = Delivered(raw.recv_text())
            self.assertEqual(self.seqs([d]), [1])

    def test_message_size_limit_1009(self):
        ch = self.new_channel()
        head, tail = b'{"connCheck": {}', b"}"
        at_limit = head + b" " * (MAX_MESSAGE - len(head) - len(tail)) + tail
        self.assertEqual(len(at_limit), MAX_MESSAGE)
        with self.raw_ws(ch) as raw:
            raw.send_text(at_limit)
            d = Delivered(raw.recv_text())
            self.assertEqual(d.root, "connAck", "a message of exactly ws_max_message_bytes")
            raw.send_text(at_limit[:-1] + b" }")
            self.assertClose(raw, 1009)
        with self.raw_ws(ch) as raw:  # over the limit only once reassembled
            raw.send_text(at_limit[:-1] + b" }", fragments=4)
            self.assertClose(raw, 1009)
        with self.raw_ws(ch) as raw:
            # A frame announcing 10 MB: refused from its header and first
            # bytes, without waiting for (or buffering) the rest.
            raw.send_raw(encode_frame(OP_TEXT, b" " * 100, length=10 * 1024 * 1024))
            self.assertClose(raw, 1009)
        self.server.assert_running()

    def test_invalid_utf8_1007(self):
        ch = self.new_channel()
        with self.raw_ws(ch) as raw:
            raw.send_frame(OP_TEXT, b'{"connCheck": {"x": "\xff\xfe"}}')
            self.assertClose(raw, 1007)
        with self.raw_ws(ch) as raw:  # an overlong encoding, in a fragment
            raw.send_raw(encode_frame(OP_TEXT, b'{"a": "', fin=False)
                         + encode_frame(OP_CONT, b'\xc0\xaf"}', fin=True))
            self.assertClose(raw, 1007)
        with self.raw_ws(ch) as raw:
            # Valid UTF-8 split inside a character across fragments is
            # valid: it reaches the message check (1008), not 1007.
            data = '{"hello": "\u00e9t\u00e9 \u20ac"}'.encode()
            cut = data.index(b"\xe2") + 1
            raw.send_raw(encode_frame(OP_TEXT, data[:cut], fin=False)
                         + encode_frame(OP_CONT, data[cut:], fin=True))
            self.assertClose(raw, 1008)

    def test_unmasked_client_frame_1002(self):
        ch = self.new_channel()
        with self.raw_ws(ch) as raw:
            raw.send_frame(OP_TEXT, b'{"connCheck": {}}', mask=False)
            self.assertClose(raw, 1002)

    def test_reserved_bits_and_opcodes_1002(self):
        ch = self.new_channel()
        for name, frame in (("RSV1 without an extension",
                             encode_frame(OP_TEXT, b'{"connCheck": {}}', rsv=4)),
                            ("reserved opcode 3", encode_frame(0x3, b"x")),
                            ("continuation with no message", encode_frame(OP_CONT, b"x")),
                            ("fragmented ping", encode_frame(OP_PING, b"x", fin=False))):
            with self.subTest(name):
                with self.raw_ws(ch) as raw:
                    raw.send_raw(frame)
                    self.assertClose(raw, 1002)

    def test_binary_message_1003(self):
        ch = self.new_channel()
        with self.raw_ws(ch) as raw:
            raw.send_frame(OP_BINARY, b'{"connCheck": {}}')
            self.assertClose(raw, 1003)
        # The channel outlives the connection: what comes meanwhile waits.
        self.notify(ch, note_json("after-1003", 1))
        with self.connect(ch) as c:
            self.assertEqual(self.seqs(self.receive(c, 1)), [1])

    def test_other_messages_1008(self):
        ch = self.new_channel()
        for text in ('{"hello": {}}', "not json", "[]", '{"notificationList": []}',
                     '<nc:hello xmlns:nc="%s"/>' % NC_NS, "<unclosed"):
            with self.subTest(text=text):
                with self.raw_ws(ch) as raw:
                    raw.send_text(text)
                    self.assertClose(raw, 1008)

    # ---- connCheck / connAck (I.3, 5.2.2.11/12) ----------------------------------

    def test_conncheck_answered_and_restarts_lifetime(self):
        variants = (("json", '{"connCheck": {}}'),
                    ("json with checkInterval", '{"connCheck": {"checkInterval": 30}}'),
                    ("xml", CONNCHECK_XML))
        chans = [self.new_channel(lifetime=60) for _ in variants]
        clients = [self.connect(ch) for ch in chans]
        try:
            # Let the lifetimes run down; meanwhile the server sends nothing
            # of its own (server connCheck is off by default). A lower bound.
            clients[0].assert_nothing(2.2)
            for (name, text), ch, c in zip(variants, chans, clients):
                with self.subTest(name):
                    before = self.lifetime_left(ch)
                    self.assertLessEqual(before, 58, "lifetime did not run down")
                    c.send(text)
                    d = c.recv_delivered()
                    self.assertEqual(d.fmt, "xml" if name == "xml" else "json", d)
                    self.assertEqual(d.root, "connAck", d)
                    if d.fmt == "json":
                        self.assertEqual(d.doc, {"connAck": {"channelLifetime": 60}})
                    else:
                        self.assertEqual(d.ns, NC_NS, d)
                        self.assertEqual(xml_int(d.doc, "channelLifetime"), 60, d)
                    self.assertGreaterEqual(self.lifetime_left(ch), 59,
                                            "connCheck did not restart the lifetime")
                    # Delivery goes on after it.
                    self.notify(ch, note_json(name, 5))
                    self.assertEqual(self.seqs(self.receive(c, 1)), [5])
        finally:
            for c in clients:
                c.__exit__(None, None, None)

    # ---- one connection per channel (I.3) ---------------------------------------

    def test_new_connection_replaces_the_old(self):
        ch = self.new_channel()
        old = self.connect(ch)
        try:
            new = self.connect(ch)
            with new:
                code, reason, before = old.wait_closed(5)
                self.assertEqual(code, 1000, reason)
                self.assertEqual(before, [])
                self.notify(ch, note_json("new", 1))
                self.assertEqual(self.seqs(self.receive(new, 1)), [1])
        finally:
            old.abort()
        # The same by hand: the old one sees a close frame and nothing else.
        with self.raw_ws(ch) as raw_old:
            with self.connect(ch) as new:
                self.assertClose(raw_old, 1000)
                self.notify(ch, note_xml("new", 2))
                self.assertEqual(self.seqs(self.receive(new, 1)), [2])

    # ---- the channel ends: DELETE and expiry --------------------------------------

    def test_delete_closes_the_websocket(self):
        ch = self.new_channel()
        with self.connect(ch) as c:
            self.assertStatus(self.server.request("DELETE", ch["path"]), 204)
            code, reason, before = c.wait_closed(5)
            self.assertEqual(code, 1000, reason)
            self.assertIn("deleted", reason.lower())
            self.assertEqual(before, [])
        self.assertRefused(ch["ws"], 404)
        ch = self.new_channel()
        with self.raw_ws(ch) as raw:
            self.assertStatus(self.server.request("DELETE", ch["path"]), 204)
            self.assertClose(raw, 1000, "deleted")

    def test_expiry_closes_the_websocket(self):
        ch = self.new_channel(lifetime=2)
        start = time.monotonic()
        try:
            c = self.connect(ch)
        except Refused as e:
            if e.status == 404 and time.monotonic() - start > 1.5:
                self.skipTest("the machine is so slow the channel expired at once")
            raise
        with c:
            code, reason, _ = c.wait_closed(2 + 5)
            self.assertGreaterEqual(time.monotonic() - start, 1.0, "closed before expiry")
            self.assertEqual(code, 1000, reason)
            self.assertIn("expired", reason.lower())
        self.assertRefused(ch["ws"], 404)
        self.assertStatus(self.server.get(ch["path"]), 404)


class ServerConnCheckTest(WsHelpers, ServerTestCase):
    """Server-initiated connCheck every second (I.3)."""

    INTERVAL = 1
    server_config = {"channel_lifetime_min": 1, "ws_conncheck_interval": INTERVAL}

    def check_conncheck(self, d, lifetime):
        self.assertEqual(d.root, "connCheck", d)
        if d.fmt == "json":
            body = d.doc["connCheck"]
            interval, offered = body.get("checkInterval"), body.get("newChannelLifetime")
        else:
            self.assertEqual(d.ns, NC_NS, d)
            interval = xml_int(d.doc, "checkInterval")
            offered = xml_int(d.doc, "newChannelLifetime")
        self.assertEqual(interval, self.INTERVAL, d)
        self.assertEqual(offered, lifetime, d)

    def test_answered_conncheck_keeps_channel_and_connection(self):
        lifetime = 3
        answers = (("json", '{"connAck": {}}'), ("xml", CONNACK_XML))
        chans = [self.new_channel(lifetime=lifetime) for _ in answers]
        clients = [self.connect(ch) for ch in chans]
        counts = [0, 0]
        try:
            # Past the lifetime (a lower bound): only the connAcks keep the
            # channels alive.
            end = time.monotonic() + lifetime + 2.5
            while time.monotonic() < end:
                for i, ((name, answer), c) in enumerate(zip(answers, clients)):
                    try:
                        d = c.recv_delivered(0.05)
                    except NoMessage:
                        continue
                    except Closed as e:
                        self.fail("%s client closed (%s %r) after %d connChecks"
                                  % (name, e.code, e.reason, counts[i]))
                    self.check_conncheck(d, lifetime)
                    counts[i] += 1
                    c.send(answer)
            for (name, _), ch, c, n in zip(answers, chans, clients, counts):
                with self.subTest(name):
                    self.assertGreaterEqual(n, 3, "connChecks in %.1f s" % (lifetime + 2.5))
                    self.assertTrue(c.open, "connection closed although every "
                                    "connCheck was answered")
                    self.assertStatus(self.server.get(ch["path"]), 200,
                                      "channel expired although connAcks restarted it")
                    self.notify(ch, note_json(name, 1))
                    # connChecks may come before the notification.
                    while True:
                        d = c.recv_delivered()
                        if d.root != "connCheck":
                            break
                    self.assertEqual(self.seqs([d]), [1])
        finally:
            for c in clients:
                c.__exit__(None, None, None)

    def test_unanswered_conncheck_closes_1008(self):
        ch = self.new_channel(lifetime=60)
        start = time.monotonic()
        with self.connect(ch) as c:
            code, reason, before = c.wait_closed(6)
            took = time.monotonic() - start
        self.assertEqual(code, 1008, reason)
        self.assertGreaterEqual(len(before), 1, "closed without a connCheck first")
        for text in before:
            self.check_conncheck(Delivered(text), 60)
        self.assertGreaterEqual(took, 1.0 * self.INTERVAL, "closed before an interval passed")
        self.assertLessEqual(took, (2 * self.INTERVAL + 1.5) * SLOW,
                             "closed long after two unanswered intervals")
        # The connection is faulty, the channel is not.
        self.assertStatus(self.server.get(ch["path"]), 200)


class SlowReaderTest(WsHelpers, ServerTestCase):
    """Bounded send window and stall timeout (API.md 2, "Slow readers")."""

    WINDOW = 64 * 1024
    STALL_MS = int(1500 * SLOW)
    # SQLite's page cache (db_cache_kib) is memory the queued notifications
    # may take by design; kept small here so what is measured is the rest.
    server_config = {"ws_send_window_bytes": WINDOW, "ws_stall_timeout_ms": STALL_MS,
                     "db_cache_kib": 2048}

    def test_client_that_never_reads(self):
        ch = self.new_channel(max_notifications=10)
        pad = 60000
        count = 512  # about 30 MB
        raw = self.raw_ws(rcvbuf=4096)
        mark = len(self.server.log())
        opened = time.time()  # the server logs wall-clock UTC times
        raw.open(ch["ws"])
        rss_before = self.server.rss_kib()
        rss_max = rss_before
        sent_bytes = 0
        try:
            http = self.server.raw()
            try:
                for i in range(count):
                    body = json.dumps(note_json("stall", i, pad))
                    sent_bytes += len(body)
                    r = http.request("POST", ch["cb"], body, {"Content-Type": JSON})
                    self.assertStatus(r, 204, "callback POST %d" % i)
                    if i % 64 == 63:
                        # Others are served meanwhile, promptly.
                        t = time.monotonic()
                        self.assertStatus(self.server.get("/health"), 200)
                        self.assertLess(time.monotonic() - t, 1.0 * SLOW,
                                        "GET /health slow while a client stalls")
                        rss_max = max(rss_max, self.server.rss_kib())
            finally:
                http.close()
            rss_max = max(rss_max, self.server.rss_kib())
            grown = rss_max - rss_before
            if not SANITIZED:
                self.assertLess(grown * 1024, sent_bytes // 3,
                                "RSS grew by %d KiB while %d bytes were sent to a client "
                                "that reads nothing" % (grown, sent_bytes))
            # The stalled client is closed, not before the stall timeout.
            m = self.server.wait_for_log_re(r"(?m)^.*" + re.escape(ch["id"]) + r".*(?i:stall).*$",
                                            10 + self.STALL_MS / 1000, mark)
            line = m.group(0)
            stamp = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?)Z", line)
            if stamp:
                at = datetime.datetime.fromisoformat(stamp.group(1)).replace(
                    tzinfo=datetime.timezone.utc).timestamp()
                self.assertGreaterEqual(at - opened, self.STALL_MS / 1000 - 0.05,
                                        "closed before ws_stall_timeout_ms: %s" % line)
            # What the kernel already held for it can still be read.
            drained = []
            while True:
                try:
                    op, payload = raw.recv_message(10)
                except Exception:  # EOF, reset, or a frame cut by the close
                    break
                if op == OP_CLOSE:
                    break
                if op == OP_TEXT:
                    drained.append(Delivered(payload.decode("utf-8")))
        finally:
            raw.close()
        got_stalled = self.seqs(drained)
        k = len(got_stalled)
        self.assertEqual(got_stalled, list(range(k)), "the stalled client's data")
        self.assertLess(k, count, "the client never stalled: it got everything "
                        "(log: %s)" % line)
        # A new client gets every notification the stalled one did not
        # (those written to the dead connection's socket may come again).
        with self.connect(ch) as c:
            messages = self.receive_through(c, count - 1, timeout=60)
        seqs = self.seqs(messages)
        first = seqs[0]
        self.assertLessEqual(first, k, "notifications %d..%d lost (the stalled client got "
                             "0..%d)" % (k, first - 1, k - 1))
        self.assertEqual(seqs, list(range(first, count)))
        for d in messages:
            for _, item in d.items:
                self.assertEqual(len(item["pad"]), pad)
        print("\n  [stalled client read %d of %d, the next client got %d..%d; "
              "RSS +%d KiB while %d MB were sent]" % (k, count, first, count - 1, grown,
                                                      sent_bytes >> 20), end=" ")

    def test_default_message_limit_64_kib(self):
        # This server leaves ws_max_message_bytes at its default, 64 KiB.
        ch = self.new_channel()
        head, tail = b'{"connCheck": {}', b"}"
        at_limit = head + b" " * (65536 - len(head) - len(tail)) + tail
        with self.raw_ws(ch) as raw:
            raw.send_text(at_limit, fragments=3)
            self.assertEqual(Delivered(raw.recv_text()).root, "connAck")
            raw.send_text(at_limit[:-1] + b" }")
            self.assertClose(raw, 1009)

    def test_slow_reader_catches_up_in_order(self):
        ch = self.new_channel(max_notifications=10)
        pad = 40000
        count = 200  # about 8 MB
        mark = len(self.server.log())
        raw = self.raw_ws(rcvbuf=4096)
        raw.open(ch["ws"])
        errors = []

        def enabler():
            try:
                self.notify_many(ch, [note_json("slow", i, pad) for i in range(count)])
            except BaseException as e:  # reported by the main thread
                errors.append(e)

        t = threading.Thread(target=enabler)
        t.start()
        seqs = []
        pauses = 0
        try:
            while len(seqs) < count:
                # Read about 1 MB, then stop reading for a while (below the
                # stall timeout).
                got = 0
                while got < (1 << 20) and len(seqs) < count:
                    op, payload = raw.recv_message(20)
                    self.assertNotEqual(op, OP_CLOSE, "slow reader closed: %r after %d "
                                        "notifications" % (parse_close(payload), len(seqs)))
                    self.assertEqual(op, OP_TEXT)
                    d = Delivered(payload.decode("utf-8"))
                    self.assertLessEqual(len(d.items), 10)
                    seqs += self.seqs([d])
                    got += len(payload)
                if len(seqs) < count:
                    time.sleep(min(0.4, self.STALL_MS / 3000))
                    pauses += 1
            t.join(60)
            self.assertFalse(errors, errors)
            self.assertEqual(seqs, list(range(count)))
            # Still open and well.
            raw.send_text('{"connCheck": {}}')
            self.assertEqual(Delivered(raw.recv_text()).root, "connAck")
        finally:
            raw.close()
            t.join(60)
        self.assertGreaterEqual(pauses, 3)
        self.assertNotRegex(self.server.log()[mark:], re.escape(ch["id"]) + r".*(?i:stall)")


class StopTest(WsHelpers, unittest.TestCase):
    """SIGTERM closes WebSockets with 1001 (API.md 1)."""

    def assertStatus(self, resp, status, msg=None):
        ServerTestCase.assertStatus(self, resp, status, msg)

    def test_sigterm_closes_with_1001(self):
        self.server = Server(config={}).start()
        try:
            a, b = self.new_channel(), self.new_channel()
            c = self.connect(a)
            raw = self.raw_ws(b)
            self.notify(a, note_json("stop", 1))
            self.assertEqual(self.seqs(self.receive(c, 1)), [1])
            self.server.proc.send_signal(signal.SIGTERM)
            code, reason, _ = c.wait_closed(10)
            self.assertEqual(code, 1001, reason)
            self.assertClose(raw, 1001, timeout=10)
            raw.close()
            self.server.proc.wait(20 * SLOW)
        finally:
            self.server.stop()  # asserts exit code 0


if __name__ == "__main__":
    unittest.main()
