"""Long polling (OMA NC 5.3.x, 6.3, 7.1.1, Appendix C.2; API.md 2), end to
end: a poll on the channelURL answers at once with up to maxNotifications
pending notifications, oldest first, or waits up to maxWaitTime and answers
200 with an empty notificationList; a notification arriving meanwhile
answers the waiting poll; a second poll ends the first with 409 SVC1012;
DELETE or expiry ends it with 404; each poll restarts the channel lifetime;
and in normal operation every notification acknowledged with 204 reaches
exactly one poll, in order.

One server for the class; every test has channels of its own. maxWaitTime
is 0-1 s where a test waits a poll out, and PARK (20 s) where a poll must
stay parked while the test acts; those polls are answered by what the test
does, never waited out.
"""

import random
import threading
import time
import unittest
import xml.etree.ElementTree as ET

from delivery_util import (COMMON_NS, FORM, JSON, NC_NS, POLL_FORM, POLL_JSON, POLL_XML,
                           TEST_NS, XML, DeliveryHelpers, channels_path, items_of,
                           json_notification, local, markers_of, new_markers, new_user)
from ncfixture import SLOW, ServerTestCase

PARK = 20  # maxWaitTime of polls that the test itself answers

PRESENCE_JSON = {"presenceNotification": {
    "callbackData": "1234", "presentityUserId": "tel:+19585550100",
    "resourceStatus": "Active", "presence": {"person": {"mood": {"moodValue": "Happy"}}}}}
# 6.3.5.1's notification, as the presence enabler would POST it.
PRESENCE_XML = ('<?xml version="1.0" encoding="UTF-8"?>\n'
                '<pr:presenceNotification xmlns:pr="urn:oma:xml:rest:netapi:presence:1">'
                "<presentityUserId>tel:+19585550100</presentityUserId>"
                "<callbackData>1234</callbackData>"
                "<resourceStatus>Active</resourceStatus>"
                "<presence><person><mood><moodValue>Happy</moodValue></mood></person></presence>"
                '<link rel="PresenceSubscription" href="http://example.com/sub001"/>'
                "</pr:presenceNotification>")


def find_local(el, *names):
    """The descendant reached by local names (any namespace), or None."""
    for name in names:
        el = next((c for c in el if local(c.tag) == name), None)
        if el is None:
            return None
    return el


class LongPollTest(DeliveryHelpers, ServerTestCase):

    server_config = {"channel_lifetime_min": 1, "max_wait_time_default": 1,
                     "max_wait_time_max": PARK,
                     "max_notifications_max": 50}

    def assertNothingPending(self, ch, fmt="json"):
        """A poll on a PARK channel is not answered at once (the poll is
        then abandoned; the channel is the test's own)."""
        conn = self.start_poll(ch, fmt)
        self.assertParked(conn, 0.5)
        conn.close()

    def assertSvc1012(self, resp, fmt):
        """7.1.1: 409, serviceException SVC1012, no variables."""
        self.assertStatus(resp, 409, "the first poll")
        if fmt == "json":
            exc = self.assertServiceError(resp, 409, "SVC1012")
        else:
            self.assertEqual(resp.header("Content-Type"), XML)
            root = ET.fromstring(resp.body)
            self.assertEqual(root.tag, "{%s}requestError" % COMMON_NS, resp.body)
            el = root.find("serviceException")
            self.assertIsNotNone(el, resp.body)
            exc = {"messageId": el.findtext("messageId"), "text": el.findtext("text")}
            self.assertEqual(exc["messageId"], "SVC1012", resp.body)
        self.assertEqual(exc["text"], "Simultaneous channel requests not supported")

    # ---- pending notifications: answered at once ------------------------------

    def check_pending_answered_at_once(self, fmt):
        ch = self.create_channel(maxWaitTime=PARK, maxNotifications=10)
        markers = new_markers(3)
        self.notify(ch, markers, fmt)
        start = time.monotonic()
        r = self.poll(ch, fmt)
        took = time.monotonic() - start
        self.assertStatus(r, 200)
        self.assertLess(took, 5 * SLOW, "a poll with pending notifications waited")
        self.assertIn("Accept", r.header("Vary", ""))
        items = items_of(r)
        self.assertEqual(markers_of(items), markers)
        if fmt == "json":
            self.assertEqual(r.header("Content-Type"), JSON)
            # Delivered as the enabler sent it.
            self.assertEqual([i[2] for i in items], [json_notification(m) for m in markers])
        else:
            self.assertEqual(r.header("Content-Type"), XML)
            # Each notification keeps its own element and namespace.
            for _, marker, el in items:
                self.assertEqual(el.tag, "{%s}testNotification" % TEST_NS)
                self.assertEqual(find_local(el, "detail", "text").text, "about " + marker)
        # Delivered means gone from the outbox.
        self.assertNothingPending(ch, fmt)

    def test_pending_answered_at_once_json(self):
        self.check_pending_answered_at_once("json")

    def test_pending_answered_at_once_xml(self):
        self.check_pending_answered_at_once("xml")

    def test_every_request_body_form(self):
        # 6.3.5.x (XML), D.12 (JSON null), C.2 (the form, as spelt there and
        # as the schema spells it), an empty object, and no body at all.
        ch = self.create_channel(maxWaitTime=PARK)
        for name, body, ctype in (("json {}", POLL_JSON, JSON),
                                  ("json null (D.12)", '{"longPollingRequestParameters": null}',
                                   JSON),
                                  ("xml (6.3.5.1)", POLL_XML, XML),
                                  ("form", POLL_FORM, FORM),
                                  ("form as in C.2", "longPollingRequestParmeters=", FORM),
                                  ("empty body", "", None)):
            with self.subTest(body=name):
                [m] = new_markers(1)
                self.notify(ch, [m])
                r = self.poll(ch, body=body, ctype=ctype, accept=XML)
                self.assertStatus(r, 200, name)
                self.assertEqual(r.header("Content-Type"), XML)
                self.assertEqual(markers_of(items_of(r)), [m], name)

    def test_accept_decides_the_format(self):
        ch = self.create_channel(maxWaitTime=PARK)
        for name, body, ctype, accept, want in (
                ("xml body, json accepted", POLL_XML, XML, JSON, JSON),
                ("json body, xml accepted", POLL_JSON, JSON, XML, XML),
                ("form body, no Accept", POLL_FORM, FORM, "", JSON),
                ("*/*", POLL_XML, XML, "*/*", JSON),
                ("xml preferred by q", POLL_JSON, JSON,
                 "application/json;q=0.5, application/xml", XML)):
            with self.subTest(case=name):
                [m] = new_markers(1)
                self.notify(ch, [m], "json" if want == XML else "xml")
                r = self.poll(ch, body=body, ctype=ctype, accept=accept)
                self.assertStatus(r, 200, name)
                self.assertEqual(r.header("Content-Type"), want, name)
                self.assertEqual(markers_of(items_of(r)), [m], name)

    def test_json_notification_delivered_as_xml(self):
        ch = self.create_channel(maxWaitTime=PARK)
        r = self.server.request("POST", ch["cb"], PRESENCE_JSON)
        self.assertStatus(r, 204)
        items = self.polled(ch, "xml")
        self.assertEqual(len(items), 1, items)
        root, marker, el = items[0]
        self.assertEqual(root, "presenceNotification")
        self.assertEqual(marker, "1234")
        self.assertEqual(find_local(el, "resourceStatus").text, "Active")
        mood = find_local(el, "presence", "person", "mood", "moodValue")
        self.assertIsNotNone(mood, ET.tostring(el))
        self.assertEqual(mood.text, "Happy")

    def test_xml_notification_delivered_as_json(self):
        ch = self.create_channel(maxWaitTime=PARK)
        r = self.server.request("POST", ch["cb"], PRESENCE_XML, headers={"Content-Type": XML})
        self.assertStatus(r, 204)
        items = self.polled(ch, "json")
        self.assertEqual(len(items), 1, items)
        root, marker, item = items[0]
        self.assertEqual(root, "presenceNotification")
        body = item["presenceNotification"]
        self.assertEqual(str(body.get("callbackData")), "1234", item)
        self.assertEqual(body.get("presentityUserId"), "tel:+19585550100", item)
        self.assertEqual(body.get("resourceStatus"), "Active", item)
        self.assertEqual(body["presence"]["person"]["mood"]["moodValue"], "Happy", item)
        # Attributes become members, as D.12 shows 6.3.5.1's link.
        self.assertEqual(body.get("link"), {"rel": "PresenceSubscription",
                                            "href": "http://example.com/sub001"}, item)

    # ---- maxNotifications -------------------------------------------------------

    def check_max_notifications(self, fmt):
        ch = self.create_channel(maxWaitTime=PARK, maxNotifications=3)
        markers = new_markers(8)
        self.notify(ch, markers, fmt)
        got = []
        for size in (3, 3, 2):
            items = self.polled(ch, fmt)
            self.assertEqual(len(items), size, markers_of(items))
            got.extend(markers_of(items))
        self.assertEqual(got, markers)
        self.assertNothingPending(ch, fmt)

    def test_more_than_max_notifications_json(self):
        self.check_max_notifications("json")

    def test_more_than_max_notifications_xml(self):
        self.check_max_notifications("xml")

    def test_notification_list_counts_as_its_notifications(self):
        ch = self.create_channel(maxWaitTime=PARK, maxNotifications=2)
        a, b = new_markers(3), new_markers(2)
        self.notify_list(ch, a, "json")
        self.notify_list(ch, b, "xml")
        got = []
        for size in (2, 2, 1):
            items = self.polled(ch, "json")
            self.assertEqual(len(items), size, markers_of(items))
            got.extend(markers_of(items))
        self.assertEqual(got, a + b)
        self.assertNothingPending(ch)

    # ---- waiting -----------------------------------------------------------

    def check_timeout(self, fmt):
        ch = self.create_channel(maxWaitTime=1)
        self.assertEqual(ch["channelData"]["maxWaitTime"], 1)
        start = time.monotonic()
        r = self.poll(ch, fmt)
        took = time.monotonic() - start
        self.assertEmptyList(r, fmt)
        self.assertGreaterEqual(took, 0.9, "answered before maxWaitTime passed")
        self.assertLess(took, 1 + 4 * SLOW, "answered long after maxWaitTime")

    def test_timeout_answers_empty_list_json_d14(self):
        self.check_timeout("json")

    def test_timeout_answers_empty_list_xml_6_3_5_3(self):
        self.check_timeout("xml")

    def test_max_wait_time_zero_answers_at_once(self):
        # 5.2.2.6: zero asks for whatever is there, now.
        ch = self.create_channel(maxWaitTime=0)
        self.assertEqual(ch["channelData"]["maxWaitTime"], 0)
        start = time.monotonic()
        self.assertEmptyList(self.poll(ch), "json")
        self.assertLess(time.monotonic() - start, 0.9 * SLOW)
        markers = new_markers(2)
        self.notify(ch, markers)
        self.assertEqual(markers_of(self.polled(ch)), markers)

    def check_notification_answers_parked_poll(self, fmt):
        ch = self.create_channel(maxWaitTime=PARK)
        conn = self.start_poll(ch, fmt)
        self.assertParked(conn)
        [m] = new_markers(1)
        start = time.monotonic()
        self.notify(ch, [m], fmt)
        r, _ = self.read_answer(conn, 5)
        took = time.monotonic() - start
        self.assertStatus(r, 200)
        self.assertEqual(r.header("Content-Type"), JSON if fmt == "json" else XML)
        self.assertEqual(markers_of(items_of(r)), [m])
        self.assertLess(took, 5 * SLOW)
        self.assertNothingPending(ch, fmt)

    def test_notification_answers_parked_poll_json(self):
        self.check_notification_answers_parked_poll("json")

    def test_notification_answers_parked_poll_xml(self):
        self.check_notification_answers_parked_poll("xml")

    def test_notification_list_answers_parked_poll(self):
        ch = self.create_channel(maxWaitTime=PARK, maxNotifications=10)
        conn = self.start_poll(ch)
        self.assertParked(conn)
        markers = new_markers(3)
        self.notify_list(ch, markers, "xml")
        r, _ = self.read_answer(conn, 5)
        self.assertStatus(r, 200)
        got = markers_of(items_of(r))
        self.assertTrue(got, r)
        # The rest, if the server answered on the first of them.
        if len(got) < 3:
            got += self.poll_until(ch, 3 - len(got))
        self.assertEqual(got, markers)
        self.assertNothingPending(ch)

    def test_abandoned_poll_loses_nothing(self):
        # A client that gives up its poll (closes the connection) must not
        # have the next notification answered into the void.
        ch = self.create_channel(maxWaitTime=PARK)
        conn = self.start_poll(ch)
        self.assertParked(conn)
        conn.close()
        time.sleep(0.3 * SLOW)  # for the server to see the close
        [m] = new_markers(1)
        self.notify(ch, [m])
        self.assertEqual(markers_of(self.polled(ch)), [m])
        self.server.assert_running()

    # ---- lifetime --------------------------------------------------------

    def remaining(self, ch):
        r = self.server.get(ch["path"] + "/channelLifetime")
        self.assertStatus(r, 200, "GET channelLifetime")
        return r.json()["notificationChannelLifetime"]["channelLifetime"]

    def test_poll_restarts_lifetime(self):
        ch = self.create_channel(lifetime=30, maxWaitTime=PARK)
        time.sleep(2.2)  # a lower bound: lets the lifetime run down
        self.assertLessEqual(self.remaining(ch), 28)
        self.notify(ch, new_markers(1))
        self.assertEqual(len(self.polled(ch)), 1)
        self.assertGreaterEqual(self.remaining(ch), 29, "the poll did not restart the lifetime")
        # The granted lifetime itself is unchanged (5.2.2.2).
        r = self.server.get(ch["path"])
        self.assertEqual(r.json()["notificationChannel"]["channelLifetime"], 30)

    def test_polls_keep_a_short_lived_channel(self):
        ch = self.create_channel(lifetime=2, maxWaitTime=1)
        self.assertEqual(ch["channelLifetime"], 2)
        end = time.monotonic() + 4.5  # more than twice the lifetime
        while time.monotonic() < end:
            r = self.poll(ch)
            self.assertEmptyList(r, "json")
        self.assertStatus(self.server.get(ch["path"]), 200)

    # ---- a poll ended by something else ------------------------------------

    def check_second_poll_ends_first(self, fmt):
        ch = self.create_channel(maxWaitTime=PARK)
        first = self.start_poll(ch, fmt)
        self.assertParked(first)
        second = self.start_poll(ch, "json")
        r, _ = self.read_answer(first, 5)
        self.assertSvc1012(r, fmt)
        # OMA NC 5.1: the notifications go to the newly arrived poll.
        self.assertParked(second)
        markers = new_markers(2)
        self.notify_list(ch, markers)
        r, _ = self.read_answer(second, 5)
        self.assertStatus(r, 200)
        self.assertEqual(markers_of(items_of(r)), markers)

    def test_second_poll_ends_first_409_json(self):
        self.check_second_poll_ends_first("json")

    def test_second_poll_ends_first_409_xml(self):
        self.check_second_poll_ends_first("xml")

    def test_polls_and_notifications_interleaved(self):
        # Each new poll ends the open one while notifications keep coming:
        # every notification goes to exactly one poll that answers 200,
        # never to one ended with 409, and the order holds.
        ch = self.create_channel(maxWaitTime=PARK)
        sent, got = [], []
        conn = self.start_poll(ch)
        self.assertParked(conn)
        for _ in range(4):
            nxt = self.start_poll(ch)
            sent += new_markers(1)
            self.notify(ch, sent[-1:])
            r, _ = self.read_answer(conn, 5)
            if r.status == 200:
                got += markers_of(items_of(r))
            else:
                self.assertSvc1012(r, "json")
            conn = nxt
        sent += new_markers(1)
        self.notify(ch, sent[-1:])
        r, _ = self.read_answer(conn, 5)
        self.assertStatus(r, 200)
        got += markers_of(items_of(r))
        while len(got) < len(sent):  # the rest is pending: answered at once
            items = self.polled(ch, timeout=5)
            self.assertTrue(items, "pending notifications missing: %r of %r" % (got, sent))
            got += markers_of(items)
        self.assertEqual(got, sent)
        self.assertNothingPending(ch)

    def test_delete_ends_parked_poll_404(self):
        ch = self.create_channel(maxWaitTime=PARK)
        conn = self.start_poll(ch)
        self.assertParked(conn)
        self.assertStatus(self.server.request("DELETE", ch["path"]), 204)
        r, _ = self.read_answer(conn, 5)
        self.assertServiceError(r, 404, "SVC3000")

    def test_expiry_ends_parked_poll_404(self):
        ch = self.create_channel(lifetime=2, maxWaitTime=PARK)
        conn = self.start_poll(ch, "xml", accept=JSON)
        self.assertParked(conn)
        r, took = self.read_answer(conn, 2 + 10)
        self.assertServiceError(r, 404, "SVC3000")
        self.assertStatus(self.server.get(ch["path"]), 404)

    # ---- refused polls ---------------------------------------------------

    def test_other_methods_405_allow_post(self):
        ch = self.create_channel(maxWaitTime=PARK)
        for method in ("GET", "PUT", "DELETE"):
            with self.subTest(method=method):
                r = self.server.request(method, ch["poll"], POLL_JSON,
                                        headers={"Content-Type": JSON})
                self.assertServiceError(r, 405, "SVC3001")
                self.assertEqual(r.header("Allow"), "POST")

    def test_polls_that_find_no_channel_404(self):
        ch = self.create_channel(maxWaitTime=PARK)
        ws = self.create_channel("WebSockets", user=ch["user"])
        gone = self.create_channel(maxWaitTime=PARK, user=ch["user"])
        self.assertStatus(self.server.request("DELETE", gone["path"]), 204)
        for name, path in (
                ("unknown id", channels_path(ch["user"]) + "/nope/notifications"),
                ("another user's", "%s/%s/notifications" % (channels_path(new_user()), ch["id"])),
                ("a WebSockets channel", ws["path"] + "/notifications"),
                ("a deleted channel", gone["poll"])):
            for fmt in ("json", "xml"):
                with self.subTest(case=name, fmt=fmt):
                    body, headers = self.poll_request(fmt, accept=JSON)
                    r = self.server.request("POST", path, body, headers=headers)
                    self.assertServiceError(r, 404, "SVC3000")
        # The owner's poll still works.
        self.notify(ch, new_markers(1))
        self.assertEqual(len(self.polled(ch)), 1)

    def test_bad_bodies_400_take_nothing(self):
        ch = self.create_channel(maxWaitTime=PARK)
        markers = new_markers(1)
        self.notify(ch, markers)
        for body, ctype, ids in (
                ('{"notificationChannel": {"channelType": "LongPolling"}}', JSON, ("SVC0002",)),
                ('{"longPollingRequestParameters": ', JSON, ("SVC0001", "SVC0002")),
                ("[]", JSON, ("SVC0001", "SVC0002")),
                ('<nc:notificationChannel xmlns:nc="%s"/>' % NC_NS, XML, ("SVC0002",)),
                ("<nc:longPollingRequestParameters", XML, ("SVC0001", "SVC0002")),
                ("channelType=LongPolling", FORM, ("SVC0002",))):
            with self.subTest(body=body):
                r = self.poll(ch, body=body, ctype=ctype, accept=JSON)
                self.assertServiceError(r, 400, lambda m: m in ids)
        self.assertEqual(markers_of(self.polled(ch)), markers)

    def test_415_and_406_take_nothing(self):
        ch = self.create_channel(maxWaitTime=PARK)
        markers = new_markers(1)
        self.notify(ch, markers)
        r = self.poll(ch, body="x", ctype="text/plain", accept=JSON)
        self.assertServiceError(r, 415, "SVC3002")
        r = self.poll(ch, accept="text/html")
        self.assertServiceError(r, 406, "SVC3003")
        self.assertEqual(markers_of(self.polled(ch)), markers)

    # ---- nothing lost, nothing twice -----------------------------------------

    def test_sender_and_poller_at_once_exactly_once_in_order(self):
        # An enabler posting singles and lists in both formats while a client
        # polls: every acknowledged notification arrives once, in order, in
        # lists of at most maxNotifications.
        ch = self.create_channel(maxWaitTime=1, maxNotifications=7)
        sent, failures = [], []
        prefix = new_markers(1)[0]

        def sender():
            rnd = random.Random(4)
            try:
                n = 0
                while n < 60:
                    kind = rnd.choice(("json", "xml", "list"))
                    if kind == "list":
                        batch = ["%s-%03d" % (prefix, n + i) for i in range(rnd.randint(2, 4))]
                        self.notify_list(ch, batch, rnd.choice(("json", "xml")))
                    else:
                        batch = ["%s-%03d" % (prefix, n)]
                        self.notify(ch, batch, kind)
                    sent.extend(batch)
                    n += len(batch)
                    time.sleep(rnd.random() * 0.02)
            except BaseException as e:  # reported by the main thread
                failures.append(e)

        t = threading.Thread(target=sender)
        t.start()
        try:
            rnd = random.Random(5)
            got = []
            deadline = time.monotonic() + 30 * SLOW
            while (t.is_alive() or len(got) < len(sent)) and time.monotonic() < deadline:
                items = self.polled(ch, rnd.choice(("json", "xml")))
                self.assertLessEqual(len(items), 7)
                got.extend(markers_of(items))
        finally:
            t.join()
        self.assertEqual(failures, [])
        self.assertEqual(got, sent)
        self.assertEmptyList(self.poll(ch), "json")

if __name__ == "__main__":
    unittest.main()
