"""Movie subscriptions (issue 5; API.md section 3, with the faults, formats
and negotiation rules of section 2), end to end: create (201 + Location),
list, read and delete per user; 405 with Allow; clientCorrelator;
duration granted within policy; filter.movieId naming existing movies;
notifyURL that must be the callbackURL of a live channel of the same user;
subscriptions leaving with their channel; XML; 406, 415, 400.

SubscriptionsTest shares one server with the default duration policy
(3600 s, clamped to 60..86400); each test works under userIds of its own.
ExpiryTest runs a server whose channels and subscriptions may live a
second, for what must happen when they end. LimitsTest runs one with
max_subscriptions_per_user = 3, for that cap and the caps on the size of
what a client sends (clientCorrelator, callbackData, filter.movieId).
"""

import json
import re
import time
import unittest
import uuid

from delivery_util import JSON, XML, new_user
from movies_util import (MV_NS, COMMON_NS, MovieHelpers, child, children,
                         new_tag, parse_xml, subscription_doc, subscription_xml,
                         subscriptions_path, text_of, wait_until, xml_subscription)
from ncfixture import ServerTestCase, list_all_movies, quote

ID_RE = re.compile(r"^[A-Za-z0-9_-]{22,}$")


def new_acr():
    return "acr:pseudonym" + uuid.uuid4().hex[:10]


class SubscriptionHelpers(MovieHelpers):

    def post(self, user, doc, headers=None):
        return self.server.request("POST", subscriptions_path(user), doc, headers=headers)

    def listed(self, user, accept=None):
        r = self.server.get(subscriptions_path(user),
                            headers={"Accept": accept} if accept else None)
        self.assertStatus(r, 200, "list")
        if accept == XML:
            return r
        lst = r.json().get("movieSubscriptionList")
        self.assertIsInstance(lst, dict, r.body)
        self.assertEqual(lst.get("resourceURL"), self.server.url(subscriptions_path(user)))
        # API.md 2, JSON rules: a repeatable element is always an array.
        self.assertIsInstance(lst.get("movieSubscription"), list, r.body)
        return lst["movieSubscription"]

    def assertGone(self, sub):
        r = self.server.get(sub["path"])
        self.assertServiceError(r, 404, "SVC3000")

    def assertRefused(self, user, doc, field, status=400, message_id="SVC0002"):
        r = self.post(user, doc)
        return self.assertServiceError(r, status, message_id, field)


class SubscriptionsTest(SubscriptionHelpers, ServerTestCase):

    server_config = {"channel_lifetime_min": 1}

    # ---- create, read --------------------------------------------------------

    def test_create_201_location_and_read(self):
        user = new_user()
        ch = self.channel("WebSockets", user=user)
        m1, m2 = self.create_movie(), self.create_movie()
        cbd = new_tag("cbd")
        doc = subscription_doc(ch["callbackURL"], cbd, "JSON",
                               [m1["movieId"], m2["movieId"]], duration=600)
        r = self.post(user, doc)
        self.assertStatus(r, 201)
        self.assertEqual(r.header("Content-Type"), JSON)
        self.assertIn("Accept", r.header("Vary", ""))
        sub = r.json()["movieSubscription"]
        self.assertEqual(r.header("Location"), sub["resourceURL"])
        prefix = self.server.url(subscriptions_path(user)) + "/"
        self.assertTrue(sub["resourceURL"].startswith(prefix), (prefix, sub))
        self.assertRegex(sub["resourceURL"][len(prefix):], ID_RE)
        self.assertEqual(sub["callbackReference"],
                         {"notifyURL": ch["callbackURL"], "callbackData": cbd,
                          "notificationFormat": "JSON"})
        self.assertEqual(sub["filter"], {"movieId": [m1["movieId"], m2["movieId"]]})
        self.assertEqual(sub["duration"], 600)
        self.assertNotIn("clientCorrelator", sub)
        # Read back: the same representation.
        r = self.server.get(self.path_of(sub["resourceURL"]))
        self.assertStatus(r, 200)
        self.assertIn("Accept", r.header("Vary", ""))
        got = r.json()["movieSubscription"]
        self.assertEqual(got["resourceURL"], sub["resourceURL"])
        self.assertEqual(got["callbackReference"], sub["callbackReference"])
        self.assertEqual(got["filter"], sub["filter"])
        # duration: the granted value, or what is left of it (a few s less).
        self.assertIsInstance(got["duration"], int, got)
        self.assertTrue(590 <= got["duration"] <= 600, got)

    def test_no_filter_means_every_movie_and_format_xml_accepted(self):
        user = new_user()
        ch = self.channel("LongPolling", user=user)
        sub = self.subscribe(ch, new_tag(), "XML")
        self.assertNotIn("filter", sub)
        self.assertEqual(sub["callbackReference"]["notificationFormat"], "XML")
        self.assertEqual(sub["duration"], 3600)

    def test_user_ids_percent_encoded(self):
        for user in ("tel:+19585550100", new_acr()):
            with self.subTest(user=user):
                ch = self.channel("WebSockets", user=user)
                sub = self.subscribe(ch, new_tag())
                self.assertTrue(sub["resourceURL"].startswith(
                    self.server.url("/movies/v1/%s/subscriptions/" % quote(user))), sub)
                self.assertIn("%3A", sub["resourceURL"])
                self.assertStatus(self.server.get(sub["path"]), 200)

    # ---- list, delete ------------------------------------------------------------

    def test_list_is_per_user(self):
        a, b = new_user(), new_user()
        cha = self.channel("WebSockets", user=a)
        chb = self.channel("LongPolling", user=b)
        self.assertEqual(self.listed(a), [])
        a1 = self.subscribe(cha, new_tag())
        a2 = self.subscribe(cha, new_tag(), "XML")
        b1 = self.subscribe(chb, new_tag())
        got = self.listed(a)
        self.assertEqual(sorted(s["resourceURL"] for s in got),
                         sorted([a1["resourceURL"], a2["resourceURL"]]))
        by_url = {s["resourceURL"]: s for s in got}
        self.assertEqual(by_url[a2["resourceURL"]]["callbackReference"],
                         a2["callbackReference"])
        self.assertEqual([s["resourceURL"] for s in self.listed(b)], [b1["resourceURL"]])

    def test_delete_204_then_gone(self):
        user = new_user()
        ch = self.channel("WebSockets", user=user)
        keep = self.subscribe(ch, new_tag())
        sub = self.subscribe(ch, new_tag())
        r = self.server.request("DELETE", sub["path"])
        self.assertStatus(r, 204)
        self.assertEqual(r.body, b"")
        self.assertGone(sub)
        self.assertServiceError(self.server.request("DELETE", sub["path"]), 404, "SVC3000")
        self.assertEqual([s["resourceURL"] for s in self.listed(user)], [keep["resourceURL"]])
        # The channel is untouched.
        self.assertStatus(self.server.get(ch["path"]), 200)
        # An id never issued, under a user that has subscriptions.
        path = subscriptions_path(user) + "/nope"
        self.assertServiceError(self.server.get(path), 404, "SVC3000")
        self.assertServiceError(self.server.request("DELETE", path), 404, "SVC3000")

    def test_users_are_isolated(self):
        owner, other = new_user(), new_acr()
        ch = self.channel("WebSockets", user=owner)
        self.channel("WebSockets", user=other)
        sub = self.subscribe(ch, new_tag())
        foreign = "%s/%s" % (subscriptions_path(other), sub["id"])
        self.assertServiceError(self.server.get(foreign), 404, "SVC3000")
        self.assertServiceError(self.server.request("DELETE", foreign), 404, "SVC3000")
        self.assertEqual(self.listed(other), [])
        self.assertStatus(self.server.get(sub["path"]), 200)

    # ---- methods -----------------------------------------------------------------

    def test_405_with_allow(self):
        user = new_user()
        ch = self.channel("WebSockets", user=user)
        sub = self.subscribe(ch, new_tag())
        for path, allow in ((subscriptions_path(user), "GET, POST"),
                            (sub["path"], "GET, DELETE")):
            allowed = allow.split(", ")
            for method in ("GET", "PUT", "POST", "PATCH", "DELETE"):
                if method in allowed:
                    continue
                with self.subTest(method=method, path=path):
                    body = subscription_doc(ch["callbackURL"], "x")
                    r = self.server.request(method, path, body)
                    self.assertServiceError(r, 405, "SVC3001")
                    self.assertEqual(r.header("Allow"), allow)
        # Nothing was created or removed by the refused requests.
        self.assertEqual([s["resourceURL"] for s in self.listed(user)], [sub["resourceURL"]])

    # ---- clientCorrelator, duration ---------------------------------------------

    def test_repeated_correlator_answers_200_with_the_first(self):
        user = new_user()
        ch = self.channel("WebSockets", user=user)
        first = self.subscribe(ch, "cbd", correlator="corr-1", duration=900)
        again = self.post(user, subscription_doc(ch["callbackURL"], "cbd",
                                                 correlator="corr-1", duration=900))
        self.assertStatus(again, 200, "the repeated create")
        self.assertIsNone(again.header("Location"))
        sub = again.json()["movieSubscription"]
        self.assertEqual(sub["resourceURL"], first["resourceURL"])
        self.assertEqual(sub["clientCorrelator"], "corr-1")
        self.assertEqual(sub["callbackReference"], first["callbackReference"])
        self.assertEqual(len(self.listed(user)), 1)
        # Another user's correlator is another namespace.
        other = new_user()
        och = self.channel("WebSockets", user=other)
        osub = self.subscribe(och, "cbd", correlator="corr-1")
        self.assertNotEqual(osub["resourceURL"], first["resourceURL"])
        self.assertEqual(len(self.listed(user)), 1)

    def test_duration_granted_within_policy(self):
        user = new_user()
        ch = self.channel("WebSockets", user=user)
        for requested, granted in ((None, 3600), (120, 120), (10, 60),
                                   (100000, 86400), ("7200", 7200)):
            with self.subTest(requested=requested):
                sub = self.subscribe(ch, new_tag(), duration=requested)
                self.assertEqual(sub["duration"], granted, sub)

    def test_invalid_input_400_svc0002(self):
        user = new_user()
        ch = self.channel("WebSockets", user=user)
        cb = ch["callbackURL"]
        m = self.create_movie()

        def doc(**sub):
            base = {"callbackReference": {"notifyURL": cb, "callbackData": "x",
                                          "notificationFormat": "JSON"}}
            base.update(sub)
            return {"movieSubscription": base}

        for name, body, field in (
                ("negative duration", doc(duration=-1), "duration"),
                ("word duration", doc(duration="soon"), "duration"),
                ("format YAML", subscription_doc(cb, "x", "YAML"), "notificationFormat"),
                ("no callbackReference", {"movieSubscription": {"duration": 60}},
                 "callbackReference"),
                ("no notifyURL", {"movieSubscription": {"callbackReference": {
                    "callbackData": "x", "notificationFormat": "JSON"}}}, "notifyURL"),
                ("no root", {"somethingElse": {}}, "movieSubscription"),
                ("root a string", {"movieSubscription": "x"}, "movieSubscription"),
                ("unknown element", doc(colour="blue"), "colour"),
                ("filter movieId a word", subscription_doc(cb, "x", movie_ids=["abc"]),
                 "movieId"),
                ("filter movieId negative", subscription_doc(cb, "x", movie_ids=[-1]),
                 "movieId"),
                ("filter movieId unknown", subscription_doc(cb, "x", movie_ids=[999999999]),
                 "movieId"),
                ("filter one known, one unknown",
                 subscription_doc(cb, "x", movie_ids=[m["movieId"], 999999998]), "movieId")):
            with self.subTest(name):
                self.assertRefused(user, body, field)
        self.assertEqual(self.listed(user), [])

    def test_filter_single_value_and_numeric_string(self):
        # API.md 2 JSON rules on input: a single value where an array may
        # stand, a numeric string for a number.
        user = new_user()
        ch = self.channel("WebSockets", user=user)
        m = self.create_movie()
        doc = subscription_doc(ch["callbackURL"], "x")
        doc["movieSubscription"]["filter"] = {"movieId": m["movieId"]}
        r = self.post(user, doc)
        self.assertStatus(r, 201)
        self.assertEqual(r.json()["movieSubscription"]["filter"], {"movieId": [m["movieId"]]})
        doc["movieSubscription"]["filter"] = {"movieId": [str(m["movieId"])]}
        r = self.post(user, doc)
        self.assertStatus(r, 201)
        self.assertEqual(r.json()["movieSubscription"]["filter"], {"movieId": [m["movieId"]]})

    # ---- notifyURL ---------------------------------------------------------------

    def test_notify_url_must_be_a_live_channel_of_the_same_user(self):
        user, other = new_user(), new_user()
        own = self.channel("WebSockets", user=user)
        foreign = self.channel("WebSockets", user=other)
        deleted = self.create_channel("LongPolling", user=user)
        self.assertStatus(self.server.request("DELETE", deleted["path"]), 204)
        cb_base = self.server.url("/notificationchannel/v1/callbacks/")
        own_id = own["callbackURL"][len(cb_base):]
        for name, url in (
                ("another user's callbackURL", foreign["callbackURL"]),
                ("a deleted channel's callbackURL", deleted["callbackURL"]),
                ("an unknown callback id", cb_base + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
                ("the channel's resourceURL", own["resourceURL"]),
                ("the channelURL", own["channelData"]["channelURL"]),
                ("another host", "http://example.com/notificationchannel/v1/callbacks/"
                 + own_id),
                ("a callbackURL with a suffix", own["callbackURL"] + "/x"),
                ("a relative URL", "/notificationchannel/v1/callbacks/" + own_id),
                ("junk", "not a url"),
                ("empty", ""),
                ("a number", 42)):
            with self.subTest(name):
                self.assertRefused(user, subscription_doc(url, "x"), "notifyURL")
        self.assertEqual(self.listed(user), [])
        # The refusal is the notifyURL's: the same request with its own
        # callbackURL is fine.
        self.subscribe(own, "x")

    def test_channel_delete_removes_its_subscriptions(self):
        user = new_user()
        ch = self.create_channel("WebSockets", user=user)
        keep_ch = self.channel("WebSockets", user=user)
        m = self.create_movie()
        s1 = self.subscribe(ch, new_tag(), movie_ids=[m["movieId"]])
        s2 = self.subscribe(ch, new_tag(), "XML")
        keep = self.subscribe(keep_ch, new_tag())
        self.assertStatus(self.server.request("DELETE", ch["path"]), 204)
        self.assertGone(s1)
        self.assertGone(s2)
        self.assertEqual([s["resourceURL"] for s in self.listed(user)], [keep["resourceURL"]])
        self.assertServiceError(self.server.request("DELETE", s1["path"]), 404, "SVC3000")
        # A change to the movie it filtered finds nothing broken.
        self.patch_movie(m, premiereDate="2027-01-01")
        # The channel's callbackURL is no notifyURL any more.
        self.assertRefused(user, subscription_doc(ch["callbackURL"], "x"), "notifyURL")

    # ---- XML -----------------------------------------------------------------------

    def test_create_read_list_in_xml(self):
        user = new_user()
        ch = self.channel("WebSockets", user=user)
        m1, m2 = self.create_movie(), self.create_movie()
        corr = new_tag("corr")
        body = subscription_xml(ch["callbackURL"], "xml & <data>", "XML",
                                [m1["movieId"], m2["movieId"]], corr, 1200)
        r = self.post(user, body, headers={"Content-Type": XML, "Accept": XML})
        self.assertStatus(r, 201)
        self.assertEqual(r.header("Content-Type"), XML)
        root = parse_xml(r)
        self.assertEqual(root.tag, "{%s}movieSubscription" % MV_NS, r.body)
        sub = xml_subscription(root)
        self.assertEqual(r.header("Location"), sub["resourceURL"])
        self.assertEqual(sub["callbackReference"],
                         {"notifyURL": ch["callbackURL"], "callbackData": "xml & <data>",
                          "notificationFormat": "XML"})
        self.assertEqual(sub["filter"], {"movieId": [m1["movieId"], m2["movieId"]]})
        self.assertEqual(sub["clientCorrelator"], corr)
        self.assertEqual(sub["duration"], 1200)
        path = self.path_of(sub["resourceURL"])
        # Read in XML, then in JSON: the same subscription.
        r = self.server.get(path, headers={"Accept": XML})
        self.assertStatus(r, 200)
        self.assertEqual(r.header("Content-Type"), XML)
        got = parse_xml(r)
        self.assertEqual(got.tag, "{%s}movieSubscription" % MV_NS)
        self.assertEqual(xml_subscription(got)["callbackReference"], sub["callbackReference"])
        r = self.server.get(path)
        self.assertStatus(r, 200)
        js = r.json()["movieSubscription"]
        self.assertEqual(js["callbackReference"], sub["callbackReference"])
        self.assertEqual(js["filter"], sub["filter"])
        # The list in XML.
        r = self.listed(user, accept=XML)
        self.assertEqual(r.header("Content-Type"), XML)
        lst = parse_xml(r)
        self.assertEqual(lst.tag, "{%s}movieSubscriptionList" % MV_NS, r.body)
        self.assertEqual([text_of(s, "resourceURL") for s in children(lst, "movieSubscription")],
                         [sub["resourceURL"]])
        self.assertEqual(text_of(lst, "resourceURL"), self.server.url(subscriptions_path(user)))
        # The repeated create, in XML: 200 with the same one.
        r = self.post(user, body, headers={"Content-Type": XML, "Accept": XML})
        self.assertStatus(r, 200)
        self.assertEqual(xml_subscription(parse_xml(r))["resourceURL"], sub["resourceURL"])
        # An XML request answered in JSON when nothing else is asked for.
        body = subscription_xml(ch["callbackURL"], "j", "JSON")
        r = self.post(user, body, headers={"Content-Type": XML})
        self.assertStatus(r, 201)
        self.assertEqual(r.header("Content-Type"), JSON)
        self.assertEqual(r.json()["movieSubscription"]["callbackReference"]["callbackData"], "j")

    def test_empty_list_in_xml(self):
        user = new_user()
        r = self.listed(user, accept=XML)
        lst = parse_xml(r)
        self.assertEqual(lst.tag, "{%s}movieSubscriptionList" % MV_NS)
        self.assertEqual(children(lst, "movieSubscription"), [])

    def test_errors_in_xml(self):
        user = new_user()
        other = self.channel("WebSockets", user=new_user())
        body = subscription_xml(other["callbackURL"], "x")
        r = self.post(user, body, headers={"Content-Type": XML, "Accept": XML})
        self.assertStatus(r, 400)
        self.assertEqual(r.header("Content-Type"), XML)
        root = parse_xml(r)
        self.assertEqual(root.tag, "{%s}requestError" % COMMON_NS, r.body)
        exc = child(root, "serviceException")
        self.assertIsNotNone(exc, r.body)
        self.assertEqual(text_of(exc, "messageId"), "SVC0002")
        self.assertTrue(any("notifyURL" in (v.text or "") for v in children(exc, "variables")),
                        r.body)
        r = self.server.get(subscriptions_path(user) + "/nope", headers={"Accept": XML})
        self.assertStatus(r, 404)
        self.assertEqual(text_of(child(parse_xml(r), "serviceException"), "messageId"),
                         "SVC3000")

    # ---- negotiation and malformed bodies ---------------------------------------

    def test_406_when_accept_fits_nothing(self):
        user = new_user()
        ch = self.channel("WebSockets", user=user)
        sub = self.subscribe(ch, new_tag())
        for method, path, body in (
                ("GET", subscriptions_path(user), None),
                ("POST", subscriptions_path(user), subscription_doc(ch["callbackURL"], "n")),
                ("GET", sub["path"], None)):
            with self.subTest(method=method, path=path):
                r = self.server.request(method, path, body, headers={"Accept": "text/html"})
                self.assertServiceError(r, 406, "SVC3003")
        self.assertEqual(len(self.listed(user)), 1)

    def test_unsupported_content_type_415(self):
        user = new_user()
        ch = self.channel("WebSockets", user=user)
        body = json.dumps(subscription_doc(ch["callbackURL"], "x"))
        for ctype in ("text/plain", "application/octet-stream",
                      "application/x-www-form-urlencoded"):
            with self.subTest(ctype=ctype):
                r = self.post(user, body, headers={"Content-Type": ctype})
                self.assertServiceError(r, 415, "SVC3002")
        self.assertEqual(self.listed(user), [])

    def test_malformed_bodies_400_never_500(self):
        user = new_user()
        for ctype, body in ((JSON, b'{"movieSubscription": {'),
                            (JSON, b"\xff\xfe"),
                            (JSON, b"[]"),
                            (JSON, b""),
                            (XML, b"<mv:movieSubscription"),
                            (XML, b"<a><b></a>"),
                            (XML, b'<x:other xmlns:x="urn:x"/>')):
            with self.subTest(ctype=ctype, body=body):
                r = self.post(user, body, headers={"Content-Type": ctype})
                self.assertServiceError(r, 400, lambda m: m in ("SVC0001", "SVC0002"))
        self.assertEqual(self.listed(user), [])


class ExpiryTest(SubscriptionHelpers, ServerTestCase):
    """Channels and subscriptions that may live a second."""

    server_config = {"channel_lifetime_min": 1, "subscription_duration_min": 1}

    def test_subscription_expires(self):
        user = new_user()
        ch = self.channel("WebSockets", user=user)
        sub = self.subscribe(ch, new_tag(), duration=1)
        keep = self.subscribe(ch, new_tag(), duration=600)
        self.assertEqual(sub["duration"], 1)
        wait_until(lambda: self.server.get(sub["path"]).status == 404, 10,
                   "the subscription to expire")
        self.assertGone(sub)
        self.assertServiceError(self.server.request("DELETE", sub["path"]), 404, "SVC3000")
        self.assertEqual([s["resourceURL"] for s in self.listed(user)], [keep["resourceURL"]])
        # Its channel lives on.
        self.assertStatus(self.server.get(ch["path"]), 200)

    def test_channel_expiry_removes_its_subscriptions_and_its_notify_url(self):
        user = new_user()
        start = time.monotonic()
        ch = self.create_channel("WebSockets", user=user, lifetime=2)
        sub = self.subscribe(ch, new_tag())
        if time.monotonic() - start > 1.5:
            self.skipTest("the machine is so slow the channel may have expired at once")
        # Past the channel's end (a lower bound, not scaled), touching
        # nothing: the subscription must be gone whether or not the expiry
        # timer, or a read of the channel, removed the channel yet.
        time.sleep(max(0.0, start + 2.2 - time.monotonic()))
        self.assertGone(sub)
        self.assertEqual(self.listed(user), [])
        # An expired channel's callbackURL is no notifyURL.
        self.assertRefused(user, subscription_doc(ch["callbackURL"], "x"), "notifyURL")
        self.assertServiceError(self.server.get(ch["path"]), 404, "SVC3000")
        # Once the channel is removed for good, so is the subscription.
        self.assertGone(sub)


class LimitsTest(SubscriptionHelpers, ServerTestCase):
    """max_subscriptions_per_user, small enough to reach; channels and
    subscriptions that may live a second, to see expired ones make room;
    and the fixed caps of movies/subscriptions/validate.lua."""

    MAX_SUBSCRIPTIONS = 3
    MAX_CORRELATOR = 256
    MAX_CALLBACK_DATA = 1024
    MAX_FILTER_IDS = 1000

    server_config = {"channel_lifetime_min": 1, "subscription_duration_min": 1,
                     "max_subscriptions_per_user": MAX_SUBSCRIPTIONS}

    def assertOverLimit(self, user, doc):
        exc = self.assertPolicyError(self.post(user, doc), 403, "POL0001")
        self.assertEqual(exc["variables"],
                         ["too many movie subscriptions for this user (limit %d)"
                          % self.MAX_SUBSCRIPTIONS])

    # ---- max_subscriptions_per_user -------------------------------------------

    def test_subscriptions_per_user_limit(self):
        user = new_user()
        ch = self.channel("WebSockets", user=user)
        m = self.create_movie()
        first = self.subscribe(ch, new_tag(), correlator="one")
        for _ in range(self.MAX_SUBSCRIPTIONS - 1):
            self.subscribe(ch, new_tag())
        listed = sorted(s["resourceURL"] for s in self.listed(user))
        self.assertEqual(len(listed), self.MAX_SUBSCRIPTIONS)
        self.assertOverLimit(user, subscription_doc(ch["callbackURL"], "x",
                                                    movie_ids=[m["movieId"]],
                                                    correlator="two"))
        # An idempotent repeat still answers with its subscription.
        r = self.post(user, subscription_doc(ch["callbackURL"], "x", correlator="one"))
        self.assertStatus(r, 200, "the repeated create")
        self.assertEqual(r.json()["movieSubscription"]["resourceURL"], first["resourceURL"])
        # In XML when XML is asked for.
        r = self.post(user, subscription_xml(ch["callbackURL"], "x"),
                      headers={"Content-Type": XML, "Accept": XML})
        self.assertStatus(r, 403)
        self.assertEqual(r.header("Content-Type"), XML)
        exc = child(parse_xml(r), "policyException")
        self.assertIsNotNone(exc, r.body)
        self.assertEqual(text_of(exc, "messageId"), "POL0001")
        # The refusals created nothing.
        self.assertEqual(sorted(s["resourceURL"] for s in self.listed(user)), listed)
        # Another user has a limit of its own; a delete makes room.
        other = new_user()
        self.subscribe(self.channel("WebSockets", user=other), new_tag())
        self.assertStatus(self.server.request("DELETE", first["path"]), 204)
        self.subscribe(ch, new_tag(), correlator="two")
        self.assertOverLimit(user, subscription_doc(ch["callbackURL"], "x"))

    def test_expired_subscriptions_and_channels_make_room(self):
        user = new_user()
        ch = self.channel("WebSockets", user=user)
        start = time.monotonic()
        short_ch = self.create_channel("WebSockets", user=user, lifetime=3)
        short = self.subscribe(ch, new_tag(), duration=1)
        self.subscribe(short_ch, new_tag())
        self.subscribe(ch, new_tag())
        doc = subscription_doc(ch["callbackURL"], "x")
        self.assertOverLimit(user, doc)

        # Only live subscriptions count: once `short` has run its second,
        # a create succeeds (the refusals before it changed nothing).
        def created():
            r = self.post(user, doc)
            if r.status == 403:
                return False
            self.assertStatus(r, 201)
            return True
        wait_until(created, 10, "an expired subscription to make room")
        self.assertGone(short)
        if time.monotonic() - start > 2.5:
            self.skipTest("the machine is so slow the channel may have expired too")
        self.assertOverLimit(user, doc)
        # So do a channel's: its subscription ends with it.
        wait_until(created, 10, "an expired channel to make room")
        self.assertEqual(len(self.listed(user)), self.MAX_SUBSCRIPTIONS)
        self.assertOverLimit(user, doc)

    # ---- caps on what a client sends ------------------------------------------

    def test_correlator_capped_at_256_characters(self):
        user = new_user()
        ch = self.channel("WebSockets", user=user)
        for value in ("x" * (self.MAX_CORRELATOR + 1), "\u00e9" * (self.MAX_CORRELATOR + 1),
                      "x" * 1000000):
            with self.subTest(length=len(value)):
                self.assertRefused(user, subscription_doc(ch["callbackURL"], "x",
                                                          correlator=value),
                                   "clientCorrelator")
        r = self.post(user, subscription_xml(ch["callbackURL"], "x",
                                             correlator="7" * (self.MAX_CORRELATOR + 1)),
                      headers={"Content-Type": XML})
        self.assertServiceError(r, 400, "SVC0002", "clientCorrelator")
        self.assertEqual(self.listed(user), [])
        # Characters, not bytes: 256 two-byte ones are fine, and kept.
        value = "\u00e9" * self.MAX_CORRELATOR
        sub = self.subscribe(ch, new_tag(), correlator=value)
        self.assertEqual(sub["clientCorrelator"], value)

    def test_callback_data_capped_at_1024_characters(self):
        user = new_user()
        ch = self.channel("LongPolling", user=user, maxWaitTime=2)
        m = self.create_movie()
        for value in ("x" * (self.MAX_CALLBACK_DATA + 1),
                      "\u20ac" * (self.MAX_CALLBACK_DATA + 1), "x" * 1000000):
            with self.subTest(length=len(value)):
                self.assertRefused(user, subscription_doc(ch["callbackURL"], value),
                                   "callbackData")
        # In XML, the characters after entities are resolved.
        r = self.post(user, subscription_xml(ch["callbackURL"],
                                             "&" * (self.MAX_CALLBACK_DATA + 1)),
                      headers={"Content-Type": XML})
        self.assertServiceError(r, 400, "SVC0002", "callbackData")
        self.assertEqual(self.listed(user), [])
        # At the cap, in three-byte characters and in characters XML
        # escapes, it is kept and copied verbatim into each notification.
        js = self.subscribe(ch, "\u20ac" * self.MAX_CALLBACK_DATA, "JSON", [m["movieId"]])
        xs = self.subscribe(ch, "<&" * (self.MAX_CALLBACK_DATA // 2), "XML", [m["movieId"]])
        after = self.patch_movie(m, genre="Noir")
        got = self.poll_receive(ch, 2, "json")
        by = {n["callbackData"]: n for n in got}
        for sub in (js, xs):
            cbd = sub["callbackReference"]["callbackData"]
            self.assertEqual(len(cbd), self.MAX_CALLBACK_DATA)
            self.assertIn(cbd, by, got)
            self.assertNotification(by[cbd], sub, "MovieUpdated", after, ["genre"],
                                    {"genre": "Drama"})

    def test_filter_capped_at_1000_movies(self):
        # 1001 movies that exist, so nothing but the cap can refuse them.
        ids = [mv["movieId"] for mv in list_all_movies(self.server, page=1000)]
        while len(ids) <= self.MAX_FILTER_IDS:
            ids.append(self.create_movie()["movieId"])
        ids = sorted(ids)[:self.MAX_FILTER_IDS + 1]
        user = new_user()
        ch = self.channel("WebSockets", user=user)
        self.assertRefused(user, subscription_doc(ch["callbackURL"], "x", movie_ids=ids),
                           "filter.movieId")
        self.assertEqual(self.listed(user), [])
        # A duplicate does not count: 1000 distinct movies are fine.
        ids[-1] = ids[0]
        sub = self.subscribe(ch, new_tag(), movie_ids=ids)
        self.assertEqual(sub["filter"]["movieId"], sorted(set(ids)))
        self.assertEqual(len(sub["filter"]["movieId"]), self.MAX_FILTER_IDS)


if __name__ == "__main__":
    unittest.main()
