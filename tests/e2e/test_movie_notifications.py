"""Movie notifications (issue 5; API.md section 3, delivered as section 2
and OMA NC Appendix I / 6.3 say), end to end: the product brief's flow
(create a channel, subscribe, connect, move a premiere, be told) in JSON
and in XML, over a WebSocket and over long polling; filters; created,
updated and deleted movies; nothing for a change that alters nothing;
nothing for an expired or deleted subscription; one notification per
matching subscription; nothing lost while no client is connected, nor
across a restart; callbackData carried verbatim; and a change whose
notifications cannot be queued does not happen (one transaction).

A long poll whose Accept is not the subscription's notificationFormat
gets the notification converted, typed: as a subscription in that format
would have had it (movieId a JSON number; the mv namespace, element order
and link attributes in XML), which a second subscription on the same
channel in the other format shows.

"Nothing arrived" is shown by a later change whose notification must come
first: notifications reach a channel in the order of the changes, so a
stray one would arrive before it. The WebSocket client is Debian's
python3-websockets (wsclient.WsClient), not our code.
"""

import os
import shutil
import sqlite3
import tempfile
import time
import unittest
import xml.etree.ElementTree as ET

from delivery_util import items_of, local, new_user
from movies_util import MV_NS, MovieHelpers, from_poll_items, new_tag
from ncfixture import SLOW, Server, ServerTestCase
from wsclient import WsClient

CONFIG = {"channel_lifetime_min": 1, "subscription_duration_min": 1,
          "max_wait_time_default": 2, "max_wait_time_max": 20}


class NotificationHelpers(MovieHelpers):

    def connect(self, ch):
        """A WebSocket client on the channel, closed when the test ends."""
        client = WsClient.connect(ch["ws"])
        self.addCleanup(client.__exit__, None, None, None)
        return client

    def by_callback_data(self, notes):
        out = {}
        for n in notes:
            self.assertNotIn(n["callbackData"], out, "two for one subscription: %r" % notes)
            out[n["callbackData"]] = n
        return out

    @staticmethod
    def cbd(sub):
        return sub["callbackReference"]["callbackData"]


class MovieNotificationsTest(NotificationHelpers, ServerTestCase):

    server_config = CONFIG

    # ---- the whole flow ----------------------------------------------------------

    def test_flow_json_websocket(self):
        user = new_user()
        ch = self.channel("WebSockets", user=user)
        movie = self.create_movie(premiereDate="2026-05-01")
        sub = self.subscribe(ch, new_tag("flow"), "JSON", [movie["movieId"]])
        client = self.connect(ch)
        start = time.monotonic()
        after = self.patch_movie(movie, premiereDate="2026-06-15")
        self.assertEqual(after["premiereDate"], "2026-06-15")
        [n] = self.ws_receive(client, 1)
        took = time.monotonic() - start
        self.assertEqual(n["fmt"], "json")
        self.assertNotification(n, sub, "MovieUpdated", after, ["premiereDate"],
                                {"premiereDate": "2026-05-01"})
        # The movie as the movies API shows it now, resourceURL included.
        r = self.server.get(self.movie_path(movie))
        self.assertEqual(n["movie"], r.json()["movie"])
        self.assertEqual(n["movie"]["resourceURL"], movie["resourceURL"])
        # Issue 5: told within a second of the PATCH.
        self.assertLess(took, 1.0 * SLOW, "notification after %.2f s" % took)
        client.assert_nothing(0.3)

    def test_flow_xml_websocket(self):
        user = new_user()
        ch = self.channel("WebSockets", user=user)
        movie = self.create_movie(premiereDate="2026-05-01")
        sub = self.subscribe_xml(ch, new_tag("flowx"), "XML", [movie["movieId"]])
        client = self.connect(ch)
        after = self.patch_movie(movie, premiereDate="2026-06-15")
        [n] = self.ws_receive(client, 1)
        self.assertEqual((n["fmt"], n["ns"]), ("xml", MV_NS), n)
        self.assertNotification(n, sub, "MovieUpdated", after, ["premiereDate"],
                                {"premiereDate": "2026-05-01"})
        client.assert_nothing(0.3)

    def test_flow_long_polling_json_and_xml(self):
        user = new_user()
        chj = self.channel("LongPolling", user=user, maxWaitTime=2)
        chx = self.channel("LongPolling", user=user, maxWaitTime=2)
        movie = self.create_movie(premiereDate="2026-05-01")
        sj = self.subscribe(chj, new_tag("lpj"), "JSON", [movie["movieId"]])
        sx = self.subscribe(chx, new_tag("lpx"), "XML", [movie["movieId"]])
        after = self.patch_movie(movie, premiereDate="2026-06-15")
        [n] = self.poll_receive(chj, 1, "json")
        self.assertNotification(n, sj, "MovieUpdated", after, ["premiereDate"],
                                {"premiereDate": "2026-05-01"})
        [n] = self.poll_receive(chx, 1, "xml")
        self.assertEqual(n["ns"], MV_NS, n)
        self.assertNotification(n, sx, "MovieUpdated", after, ["premiereDate"],
                                {"premiereDate": "2026-05-01"})
        # A poll parked before the change is answered by it.
        conn = self.start_poll(chj, "json")
        self.assertParked(conn, 0.3)
        after2 = self.patch_movie(movie, premiereDate="2026-07-01")
        resp, _ = self.read_answer(conn, 5)
        self.assertStatus(resp, 200)
        [n] = from_poll_items(items_of(resp), "json")
        self.assertNotification(n, sj, "MovieUpdated", after2, ["premiereDate"],
                                {"premiereDate": "2026-06-15"})

    # ---- long polling in the other format -------------------------------------

    def pairs_of(self, got, sub_a, sub_b):
        """Notifications of one channel, two per change (one for each of two
        subscriptions, in either order), as [(for sub_a, for sub_b)]."""
        self.assertEqual(len(got) % 2, 0, got)
        out = []
        for i in range(0, len(got), 2):
            by = self.by_callback_data(got[i:i + 2])
            self.assertEqual(set(by), {self.cbd(sub_a), self.cbd(sub_b)}, got)
            out.append((by[self.cbd(sub_a)], by[self.cbd(sub_b)]))
        return out

    def test_xml_subscription_polled_as_json_is_typed(self):
        ch = self.channel("LongPolling", maxWaitTime=2)
        m = self.create_movie(genre="Drama")
        sx = self.subscribe_xml(ch, new_tag("x2j"), "XML", [m["movieId"]])
        sj = self.subscribe(ch, new_tag("j"), "JSON", [m["movieId"]])
        cleared = self.patch_movie(m, genre=None)
        after = self.patch_movie(m, genre="Noir")
        got = self.poll_receive(ch, 4, "json")
        events = ((cleared, {"genre": "Drama"}), (after, {"genre": None}))
        for (converted, native), (movie, previous) in zip(self.pairs_of(got, sx, sj), events):
            self.assertEqual(converted["fmt"], "json")
            # The movie as the movies API shows it: movieId a number.
            self.assertNotification(converted, sx, "MovieUpdated", movie, ["genre"], previous)
            self.assertIs(type(converted["raw"]["movie"]["movieId"]), int, converted)
            # What notify.lua wrote for the JSON subscription, but for the
            # subscription's own parts.
            want = dict(native["raw"], callbackData=self.cbd(sx),
                        link={"rel": "MovieSubscription", "href": sx["resourceURL"]})
            self.assertEqual(converted["raw"], want)

    def test_json_subscription_polled_as_xml_is_mv_namespaced(self):
        ch = self.channel("LongPolling", maxWaitTime=2)
        m = self.create_movie(genre="Drama")
        sj = self.subscribe(ch, new_tag("j2x"), "JSON", [m["movieId"]])
        sx = self.subscribe(ch, new_tag("x"), "XML", [m["movieId"]])
        self.patch_movie(m, genre=None)
        after = self.patch_movie(m, genre="Noir")
        self.delete_movie(after)
        got = self.poll_receive(ch, 6, "xml")

        def shape(el, sub=None):
            """An element as (tag, attributes, text, children); with `sub`,
            its callbackData and link href made those of `sub`."""
            kids = []
            for c in el:
                k = shape(c)
                if sub is not None and local(c.tag) == "callbackData":
                    k = (k[0], k[1], self.cbd(sub), k[3])
                if sub is not None and local(c.tag) == "link":
                    k = (k[0], dict(k[1], href=sub["resourceURL"]), k[2], k[3])
                kids.append(k)
            return (el.tag, dict(el.attrib), (el.text or "").strip(), kids)

        for converted, native in self.pairs_of(got, sj, sx):
            self.assertEqual((converted["fmt"], converted["ns"]), ("xml", MV_NS), converted)
            el = ET.fromstring(converted["raw"])
            names = [local(c.tag) for c in el]
            self.assertEqual(names[:3], ["callbackData", "eventType", "movie"], names)
            self.assertEqual(names[-2:], ["previous", "link"], names)
            link = el.find("link")
            self.assertEqual(dict(link.attrib), {"rel": "MovieSubscription",
                                                 "href": sj["resourceURL"]})
            self.assertEqual(len(link), 0, converted["raw"])
            # What notify.lua wrote in XML for the other subscription.
            self.assertEqual(shape(el), shape(ET.fromstring(native["raw"]), sj))
        # The second change: genre had no value before, xsi:nil.
        genre = ET.fromstring(self.pairs_of(got, sj, sx)[1][0]["raw"]).find("previous/genre")
        self.assertEqual(genre.get("{http://www.w3.org/2001/XMLSchema-instance}nil"), "true")
        self.assertEqual(self.pairs_of(got, sj, sx)[2][0]["eventType"], "MovieDeleted")

    # ---- filters, events -------------------------------------------------------

    def test_filters(self):
        ch = self.channel("WebSockets")
        a, b = self.create_movie(), self.create_movie()
        sa = self.subscribe(ch, new_tag("a"), movie_ids=[a["movieId"]])
        sab = self.subscribe(ch, new_tag("ab"), movie_ids=[a["movieId"], b["movieId"]])
        sall = self.subscribe(ch, new_tag("all"))
        client = self.connect(ch)
        b2 = self.patch_movie(b, genre="Western")
        a2 = self.patch_movie(a, genre="Western")
        got = self.ws_receive(client, 5)
        # The change to B first: only the subscriptions that name B or none.
        first = self.by_callback_data(got[:2])
        self.assertEqual(set(first), {self.cbd(sab), self.cbd(sall)}, got)
        for sub in (sab, sall):
            self.assertNotification(first[self.cbd(sub)], sub, "MovieUpdated", b2,
                                    ["genre"], {"genre": "Drama"})
        then = self.by_callback_data(got[2:])
        self.assertEqual(set(then), {self.cbd(sa), self.cbd(sab), self.cbd(sall)}, got)
        for sub in (sa, sab, sall):
            self.assertNotification(then[self.cbd(sub)], sub, "MovieUpdated", a2,
                                    ["genre"], {"genre": "Drama"})

    def test_created_movie_tells_unfiltered_subscriptions(self):
        ch = self.channel("WebSockets")
        existing = self.create_movie()
        sf = self.subscribe(ch, new_tag("f"), movie_ids=[existing["movieId"]])
        sall = self.subscribe(ch, new_tag("all"))
        sallx = self.subscribe(ch, new_tag("allx"), "XML")
        client = self.connect(ch)
        new = self.create_movie(title="Brand New " + new_tag(), premiereDate="2027-03-03")
        got = self.by_callback_data(self.ws_receive(client, 2))
        self.assertEqual(set(got), {self.cbd(sall), self.cbd(sallx)})
        for sub in (sall, sallx):
            self.assertNotification(got[self.cbd(sub)], sub, "MovieCreated", new)
        # The filtered one got nothing: the next change is its first.
        e2 = self.patch_movie(existing, title="Renamed " + new_tag())
        got = self.by_callback_data(self.ws_receive(client, 3))
        self.assertEqual(set(got), {self.cbd(sf), self.cbd(sall), self.cbd(sallx)})
        self.assertNotification(got[self.cbd(sf)], sf, "MovieUpdated", e2, ["title"],
                                {"title": existing["title"]})

    def test_deleted_movie(self):
        ch = self.channel("WebSockets")
        m = self.create_movie()
        sf = self.subscribe(ch, new_tag("f"), movie_ids=[m["movieId"]])
        sall = self.subscribe(ch, new_tag("all"), "XML")
        client = self.connect(ch)
        self.delete_movie(m)
        got = self.by_callback_data(self.ws_receive(client, 2))
        self.assertEqual(set(got), {self.cbd(sf), self.cbd(sall)})
        for sub in (sf, sall):
            n = got[self.cbd(sub)]
            self.assertEqual(n["root"], "movieNotification", n)
            self.assertEqual(n["eventType"], "MovieDeleted", n)
            self.assertIsNotNone(n["movie"], n)
            # Which movie went: its id (text in XML).
            self.assertEqual(str(n["movie"].get("movieId")), str(m["movieId"]), n)
            self.assertEqual(n["link"], {"rel": "MovieSubscription",
                                         "href": sub["resourceURL"]}, n)
        client.assert_nothing(0.3)

    def test_no_notification_for_a_change_that_alters_nothing(self):
        ch = self.channel("WebSockets")
        m = self.create_movie(genre="Drama")
        sub = self.subscribe(ch, new_tag("noop"), movie_ids=[m["movieId"]])
        client = self.connect(ch)
        same = self.put_movie(m)
        self.assertEqual(same["lastModified"], m["lastModified"])
        self.patch_movie(m, premiereDate=m["premiereDate"])
        self.patch_movie(m, title=m["title"], genre=m["genre"])
        after = self.patch_movie(m, genre="Comedy")
        [n] = self.ws_receive(client, 1)
        self.assertNotification(n, sub, "MovieUpdated", after, ["genre"], {"genre": "Drama"})
        client.assert_nothing(0.3)

    def test_put_reports_every_changed_field(self):
        ch = self.channel("WebSockets")
        m = self.create_movie()
        sub = self.subscribe(ch, new_tag("put"), movie_ids=[m["movieId"]])
        client = self.connect(ch)
        after = self.put_movie(m, title="Retitled " + new_tag(), director="Someone Else")
        [n] = self.ws_receive(client, 1)
        self.assertNotification(n, sub, "MovieUpdated", after)
        self.assertEqual(sorted(n["changedFields"]), ["director", "title"], n)
        self.assertEqual(n["previous"], {"title": m["title"], "director": m["director"]}, n)

    # ---- which subscriptions -----------------------------------------------------

    def test_expired_or_deleted_subscription_gets_nothing(self):
        ch = self.channel("WebSockets")
        m = self.create_movie()
        before = time.monotonic()
        expiring = self.subscribe(ch, new_tag("exp"), movie_ids=[m["movieId"]], duration=1)
        self.assertEqual(expiring["duration"], 1)
        deleted = self.subscribe(ch, new_tag("del"), movie_ids=[m["movieId"]])
        live = self.subscribe(ch, new_tag("live"), movie_ids=[m["movieId"]])
        self.assertStatus(self.server.request("DELETE", deleted["path"]), 204)
        # Past its end (a lower bound, so not scaled), without reading it:
        # a read would remove it, and the fan-out must not rely on that
        # nor on the expiry timer being on time.
        time.sleep(max(0.0, before + 1.2 - time.monotonic()))
        client = self.connect(ch)
        a1 = self.patch_movie(m, genre="Horror")
        a2 = self.patch_movie(m, genre="Musical")
        n1, n2 = self.ws_receive(client, 2)
        self.assertNotification(n1, live, "MovieUpdated", a1, ["genre"], {"genre": "Drama"})
        self.assertNotification(n2, live, "MovieUpdated", a2, ["genre"], {"genre": "Horror"})
        self.assertServiceError(self.server.get(expiring["path"]), 404, "SVC3000")

    def test_two_subscriptions_on_one_channel_two_notifications(self):
        ch = self.channel("WebSockets")
        m = self.create_movie()
        sj = self.subscribe(ch, new_tag("one"), "JSON", [m["movieId"]])
        sx = self.subscribe(ch, new_tag("two"), "XML", [m["movieId"]])
        client = self.connect(ch)
        after = self.patch_movie(m, premiereDate="2028-02-29")
        got = self.by_callback_data(self.ws_receive(client, 2))
        self.assertEqual(set(got), {self.cbd(sj), self.cbd(sx)})
        self.assertEqual(got[self.cbd(sj)]["fmt"], "json")
        self.assertEqual(got[self.cbd(sx)]["fmt"], "xml")
        for sub in (sj, sx):
            self.assertNotification(got[self.cbd(sub)], sub, "MovieUpdated", after,
                                    ["premiereDate"], {"premiereDate": m["premiereDate"]})
        client.assert_nothing(0.3)

    def test_queued_while_no_client_is_connected(self):
        ch = self.channel("WebSockets")
        m = self.create_movie()
        sub = self.subscribe(ch, new_tag("later"), movie_ids=[m["movieId"]])
        a1 = self.patch_movie(m, premiereDate="2029-01-01")
        a2 = self.patch_movie(m, genre="Thriller")
        client = self.connect(ch)
        n1, n2 = self.ws_receive(client, 2)
        self.assertNotification(n1, sub, "MovieUpdated", a1, ["premiereDate"],
                                {"premiereDate": m["premiereDate"]})
        self.assertNotification(n2, sub, "MovieUpdated", a2, ["genre"], {"genre": "Drama"})

    def test_callback_data_verbatim(self):
        ch = self.channel("WebSockets")
        m = self.create_movie()
        weird = "he said \"hi\" <b>&amp;</b> & \\ ' é 東京 🎬 ]]> {\"x\": [1]} "
        # Line ends and tabs too where a JSON request carries them (an XML
        # request's own parser would normalise a CR, XML 1.0 2.11).
        ctrl = "\ttab\r\nCRLF\rCR "
        sj = self.subscribe(ch, weird + ctrl + new_tag("j"), "JSON", [m["movieId"]])
        sx = self.subscribe_xml(ch, weird + new_tag("x"), "XML", [m["movieId"]])
        sxj = self.subscribe(ch, weird + ctrl + new_tag("xj"), "XML", [m["movieId"]])
        for sub in (sj, sx, sxj):
            r = self.server.get(sub["path"])
            self.assertStatus(r, 200)
            self.assertEqual(r.json()["movieSubscription"]["callbackReference"]["callbackData"],
                             self.cbd(sub))
        client = self.connect(ch)
        after = self.patch_movie(m, genre="Animation")
        got = self.by_callback_data(self.ws_receive(client, 3))
        self.assertEqual(set(got), {self.cbd(sj), self.cbd(sx), self.cbd(sxj)})
        for sub, fmt in ((sj, "json"), (sx, "xml"), (sxj, "xml")):
            n = got[self.cbd(sub)]
            self.assertEqual(n["fmt"], fmt, n)
            self.assertNotification(n, sub, "MovieUpdated", after, ["genre"],
                                    {"genre": "Drama"})


    def test_without_callback_data(self):
        ch = self.channel("WebSockets")
        m = self.create_movie()
        sj = self.subscribe(ch, None, "JSON", [m["movieId"]])
        self.assertNotIn("callbackData", sj["callbackReference"])
        client = self.connect(ch)
        after = self.patch_movie(m, premiereDate="2031-01-01")
        [n] = self.ws_receive(client, 1)
        self.assertNotIn("callbackData", n["raw"])
        self.assertNotification(n, sj, "MovieUpdated", after, ["premiereDate"],
                                {"premiereDate": m["premiereDate"]})

    # ---- one transaction ----------------------------------------------------------

    def test_change_and_notifications_commit_together(self):
        # A trigger makes every outbox insert fail, so the fan-out fails
        # inside the change's transaction: the change must not stay.
        ch = self.channel("WebSockets")
        m = self.create_movie(genre="Drama")
        sub = self.subscribe(ch, new_tag("tx"), movie_ids=[m["movieId"]])
        client = self.connect(ch)
        db = sqlite3.connect(self.server.db, timeout=5)
        try:
            db.execute("CREATE TRIGGER e2e_outbox_fails BEFORE INSERT ON outbox "
                       "BEGIN SELECT RAISE(ABORT, 'e2e: outbox refused'); END")
            db.commit()
            try:
                r = self.server.request("PATCH", self.movie_path(m),
                                        {"movie": {"genre": "Lost"}})
            finally:
                db.execute("DROP TRIGGER e2e_outbox_fails")
                db.commit()
        finally:
            db.close()
        self.assertGreaterEqual(r.status, 500, "a change whose notifications could not "
                                "be queued was answered %r" % r)
        self.assertEqual(self.server.get(self.movie_path(m)).json()["movie"], m)
        # The next change goes through, and is the first thing told.
        after = self.patch_movie(m, genre="Found")
        [n] = self.ws_receive(client, 1)
        self.assertNotification(n, sub, "MovieUpdated", after, ["genre"], {"genre": "Drama"})


class RestartTest(NotificationHelpers, unittest.TestCase):
    """Subscriptions and their queued notifications outlive the process."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="nc-e2e-movies-")
        self.db = os.path.join(self.tmp, "nc.db")
        self.server = Server(config=CONFIG, db=self.db).start()

    def tearDown(self):
        if self.server.running():
            self.server.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def assertStatus(self, resp, status, msg=None):
        ServerTestCase.assertStatus(self, resp, status, msg)

    def channel(self, channel_type="WebSockets", user=None, **kw):
        return self.create_channel(channel_type, user=user, **kw)

    def test_subscription_and_queued_notification_survive_a_restart(self):
        ch = self.channel("WebSockets")
        m = self.create_movie()
        sub = self.subscribe(ch, new_tag("rs"), movie_ids=[m["movieId"]])
        a1 = self.patch_movie(m, premiereDate="2030-10-10")
        self.server.stop()
        self.server = Server(config=CONFIG, db=self.db).start()
        r = self.server.get(sub["path"])
        self.assertStatus(r, 200, "the subscription after the restart")
        now = r.json()["movieSubscription"]
        self.assertEqual(now["callbackReference"]["callbackData"], self.cbd(sub))
        client = WsClient.connect(self.ws_url(ch))
        self.addCleanup(client.__exit__, None, None, None)
        [n] = self.ws_receive(client, 1)
        self.assertEqual(n["callbackData"], self.cbd(sub))
        self.assertEqual(n["eventType"], "MovieUpdated")
        self.assertEqual(n["changedFields"], ["premiereDate"])
        self.assertEqual(n["movie"]["premiereDate"], a1["premiereDate"])
        # And it still matches changes made after the restart.
        a2 = self.patch_movie(m, genre="Noir")
        [n] = self.ws_receive(client, 1)
        self.assertNotification(n, now, "MovieUpdated", a2, ["genre"], {"genre": "Drama"})


if __name__ == "__main__":
    unittest.main()
