"""The callbackURL of a channel (API.md section 2, "Callback"): an enabler
POSTs one notification or a notificationList, the server stores each one
in the outbox for the channel's client, up to max_queued_notifications
per channel (QueueBoundTest, on a server of its own with a small limit).

What was stored is read from the server's SQLite file (a second
connection, read only in effect, which WAL allows while the server runs),
so these tests do not depend on delivery; everything else is checked
through responses.
"""

import json
import sqlite3
import time
import unittest
import uuid

from ncfixture import SLOW, ServerTestCase, quote

BASE = "/notificationchannel/v1"
JSON = "application/json"
XML = "application/xml"
NC_NS = "urn:oma:xml:rest:netapi:notificationchannel:1"

PRESENCE = ('<pr:presenceNotification xmlns:pr="urn:oma:xml:rest:netapi:presence:1">'
            "<presentityUserId>tel:+19585550100</presentityUserId>"
            "<callbackData>1234</callbackData>"
            "<resourceStatus>Active</resourceStatus>"
            "</pr:presenceNotification>")
INBOUND = ('<mms:inboundMessageNotification xmlns:mms="urn:oma:xml:rest:netapi:messaging:1">'
           "<inboundMessage><messageId>msg%d</messageId></inboundMessage>"
           "</mms:inboundMessageNotification>")


class CallbackHelpers:
    """Channels, posts to their callbackURL and what the outbox holds."""

    def new_channel(self, **channel):
        channel.setdefault("channelType", "LongPolling")
        user = "tel:+1958555" + uuid.uuid4().hex[:8]
        r = self.server.request("POST", "%s/%s/channels" % (BASE, quote(user)),
                                {"notificationChannel": channel})
        self.assertStatus(r, 201)
        ch = r.json()["notificationChannel"]
        ch["id"] = ch["resourceURL"].rsplit("/", 1)[1]
        ch["cb"] = ch["callbackURL"][len(self.server.base_url):]
        ch["path"] = ch["resourceURL"][len(self.server.base_url):]
        return ch

    def post(self, ch, body, ctype=JSON):
        if isinstance(ch, dict):
            path = ch["cb"]
        else:
            path = ch
        return self.server.request("POST", path, body, headers={"Content-Type": ctype})

    def queued(self, channel_id):
        """The outbox rows of a channel, in seq order."""
        conn = sqlite3.connect(self.server.db, timeout=5)
        try:
            return conn.execute("SELECT root, format, body FROM outbox WHERE channel_id = ?"
                                " ORDER BY seq", (channel_id,)).fetchall()
        finally:
            conn.close()


class CallbacksTest(CallbackHelpers, ServerTestCase):

    server_config = {"channel_lifetime_min": 1}

    # ---- storing -----------------------------------------------------------

    def test_one_json_notification_204(self):
        ch = self.new_channel()
        body = '{"movieNotification": {"callbackData": "x", "eventType": "MovieCreated"}}'
        r = self.post(ch, body)
        self.assertStatus(r, 204)
        self.assertEqual(r.body, b"")
        rows = self.queued(ch["id"])
        self.assertEqual(len(rows), 1)
        root, fmt, stored = rows[0]
        self.assertEqual((root, fmt), ("movieNotification", "json"))
        self.assertEqual(json.loads(stored),
                         {"movieNotification": {"callbackData": "x",
                                                "eventType": "MovieCreated"}})

    def test_json_notification_list_d13_in_order(self):
        ch = self.new_channel(channelType="WebSockets")
        body = {"notificationList": [
            {"inboundMessageNotification": {"inboundMessage": {"messageId": "msg123"}}},
            {"inboundMessageNotification": {"inboundMessage": {"messageId": "msg1234"}}},
            {"presenceNotification": {"callbackData": "1234"}}]}
        self.assertStatus(self.post(ch, body), 204)
        self.assertStatus(self.post(ch, {"notificationList": {
            "presenceNotification": {"callbackData": "5"}}}), 204)  # D.12 shape
        rows = self.queued(ch["id"])
        self.assertEqual([r[0] for r in rows],
                         ["inboundMessageNotification", "inboundMessageNotification",
                          "presenceNotification", "presenceNotification"])
        self.assertIn("msg123", rows[0][2])
        self.assertIn("msg1234", rows[1][2])
        self.assertTrue(all(r[1] == "json" for r in rows))

    def test_xml_notification_and_list(self):
        ch = self.new_channel()
        self.assertStatus(self.post(ch, '<?xml version="1.0"?>\n' + PRESENCE, XML), 204)
        lst = ('<nc:notificationList xmlns:nc="%s">%s%s</nc:notificationList>'
               % (NC_NS, INBOUND % 1, INBOUND % 2))
        self.assertStatus(self.post(ch, lst, XML), 204)
        rows = self.queued(ch["id"])
        self.assertEqual([(r[0], r[1]) for r in rows],
                         [("presenceNotification", "xml"),
                          ("inboundMessageNotification", "xml"),
                          ("inboundMessageNotification", "xml")])
        self.assertIn("msg1", rows[1][2])
        self.assertIn("msg2", rows[2][2])
        # Each stored notification stands alone, namespace included.
        self.assertIn("urn:oma:xml:rest:netapi:messaging:1", rows[2][2])

    def test_trailing_commas_as_in_appendix_d(self):
        # The JSON reader accepts the Appendix D examples' trailing commas;
        # splitting the list must then work on what it accepted, not raise.
        ch = self.new_channel()
        body = '{"notificationList": [{"x": {"a": 1,},}, {"y": {"b": [2,],}},],}'
        self.assertStatus(self.post(ch, body), 204)
        rows = self.queued(ch["id"])
        self.assertEqual([json.loads(r[2]) for r in rows],
                         [{"x": {"a": 1}}, {"y": {"b": [2]}}])

    def test_callbacks_of_channels_are_separate(self):
        a, b = self.new_channel(), self.new_channel()
        self.assertStatus(self.post(a, {"aNotification": {"n": 1}}), 204)
        self.assertEqual(len(self.queued(a["id"])), 1)
        self.assertEqual(self.queued(b["id"]), [])

    # ---- refusing ----------------------------------------------------------

    def test_not_a_notification_400(self):
        ch = self.new_channel()
        for body, ctype in (("", JSON), ("{}", JSON), ("[1]", JSON), ('"x"', JSON),
                            ('{"a": {}, "b": {}}', JSON), ('{"a": 1}', JSON),
                            ('{"notificationList": []}', JSON),
                            ('{"a": ', JSON), ("\xff", JSON),
                            ("", XML), ("<a><b></a>", XML), ("not xml", XML),
                            ('<nc:notificationList xmlns:nc="%s"/>' % NC_NS, XML)):
            with self.subTest(body=body, ctype=ctype):
                r = self.post(ch, body, ctype)
                self.assertServiceError(r, 400, lambda m: m in ("SVC0001", "SVC0002"))
        self.assertEqual(self.queued(ch["id"]), [])

    def test_other_content_types_415(self):
        ch = self.new_channel()
        for ctype in ("text/plain", "application/x-www-form-urlencoded"):
            with self.subTest(ctype=ctype):
                self.assertServiceError(self.post(ch, "a=b", ctype), 415, "SVC3002")

    def test_unknown_callback_404(self):
        ch = self.new_channel()
        for path in (BASE + "/callbacks/nope", BASE + "/callbacks/" + ch["id"]):
            with self.subTest(path=path):
                r = self.post(path, {"aNotification": {}})
                self.assertServiceError(r, 404, "SVC3000")

    def test_deleted_channel_404_and_its_queue_gone(self):
        ch = self.new_channel()
        self.assertStatus(self.post(ch, {"aNotification": {}}), 204)
        self.assertEqual(len(self.queued(ch["id"])), 1)
        self.assertStatus(self.server.request("DELETE", ch["path"]), 204)
        self.assertEqual(self.queued(ch["id"]), [])
        self.assertServiceError(self.post(ch, {"aNotification": {}}), 404, "SVC3000")

    def test_expired_channel_404_and_its_queue_gone(self):
        ch = self.new_channel(channelLifetime=1)
        r = self.post(ch, {"aNotification": {}})
        if r.status == 404:
            self.skipTest("the machine is so slow the channel expired at once")
        self.assertStatus(r, 204)
        deadline = time.monotonic() + 10 * SLOW
        while self.post(ch, {"aNotification": {}}).status != 404:
            if time.monotonic() > deadline:
                self.fail("the channel did not expire")
            time.sleep(0.05)
        self.assertEqual(self.queued(ch["id"]), [])

    def test_405_allow_post(self):
        ch = self.new_channel()
        for method in ("GET", "PUT", "DELETE", "PATCH"):
            with self.subTest(method=method):
                r = self.server.request(method, ch["cb"])
                self.assertServiceError(r, 405, "SVC3001")
                self.assertEqual(r.header("Allow"), "POST")

    def test_errors_follow_accept(self):
        r = self.server.request("POST", BASE + "/callbacks/nope", "{}",
                                headers={"Content-Type": JSON, "Accept": XML})
        self.assertStatus(r, 404)
        self.assertEqual(r.header("Content-Type"), XML)
        self.assertIn(b"SVC3000", r.body)


QUEUE_LIMIT = 5


def notification_list(first, n):
    return {"notificationList": [{"aNotification": {"n": i}}
                                 for i in range(first, first + n)]}


class QueueBoundTest(CallbackHelpers, ServerTestCase):
    """max_queued_notifications: a channel whose client does not read takes
    no more than the limit from its callbackURL; the rest is refused whole
    with 503 SVC2001 and Retry-After until delivery drains the queue."""

    server_config = {"max_queued_notifications": QUEUE_LIMIT}

    def assertQueueFull(self, r):
        self.assertServiceError(r, 503, "SVC2001")
        self.assertEqual(r.header("Retry-After"), "60", r)

    def test_full_channel_refuses_until_drained(self):
        ch, other = self.new_channel(), self.new_channel()
        label = ch["id"][:8] + "..."
        self.assertStatus(self.post(ch, notification_list(0, 3)), 204)
        # A list that would cross the limit is refused whole, not cut to fit.
        self.assertQueueFull(self.post(ch, notification_list(3, 3)))
        self.assertEqual(len(self.queued(ch["id"])), 3)
        self.server.wait_for_log(
            "callback %s: queue full, refused 3 notification(s): 3 queued (limit %d)"
            % (label, QUEUE_LIMIT))
        # Up to the limit exactly is fine.
        self.assertStatus(self.post(ch, notification_list(3, 2)), 204)
        for body in ({"aNotification": {"n": 99}}, notification_list(99, 1)):
            with self.subTest(body=body):
                self.assertQueueFull(self.post(ch, body))
        r = self.server.request("POST", ch["cb"], PRESENCE,
                                headers={"Content-Type": XML, "Accept": XML})
        self.assertStatus(r, 503)
        self.assertEqual(r.header("Content-Type"), XML)
        self.assertEqual(r.header("Retry-After"), "60")
        self.assertIn(b"<messageId>SVC2001</messageId>", r.body)
        rows = self.queued(ch["id"])
        self.assertEqual([json.loads(r[2])["aNotification"]["n"] for r in rows],
                         list(range(QUEUE_LIMIT)))
        # One warn line per refused POST, naming the channel (by its label,
        # not its secret id), the queue and the limit.
        full = "callback %s: queue full, refused 1 notification(s): at least %d queued (limit %d)" \
            % (label, QUEUE_LIMIT, QUEUE_LIMIT)
        deadline = time.monotonic() + 5 * SLOW
        while self.server.log().count(full) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        log = self.server.log()
        self.assertEqual(log.count(full), 3, log[-3000:])
        self.assertEqual(log.count("callback %s: queue full" % label), 4, log[-3000:])
        self.assertNotIn(ch["id"], log)
        # Another channel is not affected.
        self.assertStatus(self.post(other, {"aNotification": {}}), 204)

        # The client comes back: one long poll takes all five (the default
        # maxNotifications is 10), and once the answer is written they leave
        # the outbox and the callbackURL takes notifications again.
        r = self.server.request("POST", ch["path"] + "/notifications",
                                {"longPollingRequestParameters": None})
        self.assertStatus(r, 200)
        self.assertEqual(len(r.json()["notificationList"]), QUEUE_LIMIT)
        deadline = time.monotonic() + 5 * SLOW
        while self.queued(ch["id"]):
            if time.monotonic() > deadline:
                self.fail("the delivered notifications stayed in the outbox")
            time.sleep(0.01)
        self.assertStatus(self.post(ch, notification_list(10, QUEUE_LIMIT)), 204)
        self.assertQueueFull(self.post(ch, {"aNotification": {}}))
        self.assertEqual(len(self.queued(ch["id"])), QUEUE_LIMIT)


if __name__ == "__main__":
    unittest.main()
