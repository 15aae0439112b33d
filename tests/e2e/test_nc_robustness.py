"""The Notification Channel API (API.md section 2) at its edges, end to end:
errors in the format the client accepts wherever the route table answers
(unknown paths, wrong methods), userIds no URL can name, a byte order
mark before a JSON body, and the caps that keep one client from costing
the server without bound: the length of clientCorrelator and
applicationTag, channels per user, notifications per callback POST.

One server for the class, with small per-user and per-callback limits so
the tests cross them cheaply; the 100,000-notification callback of
CallbackBoundTest runs on a server of its own with the default bound.
"""

import json
import sqlite3
import time
import uuid
import xml.etree.ElementTree as ET

from ncfixture import SLOW, ServerTestCase
# Helpers only: importing a TestCase here would run its tests twice.
from test_channels import ChannelHelpers, channels_path

BASE = "/notificationchannel/v1"
JSON = "application/json"
XML = "application/xml"
NC_NS = "urn:oma:xml:rest:netapi:notificationchannel:1"
COMMON_NS = "urn:oma:xml:rest:netapi:common:1"
BOM = b"\xef\xbb\xbf"

MAX_CHANNELS = 3
MAX_CALLBACK = 20


def new_user():
    return "tel:+1958555" + uuid.uuid4().hex[:8]


class Helpers(ChannelHelpers):
    """test_channels' helpers; `created` also gives the paths of a channel."""

    def created(self, user, **channel):
        channel.setdefault("channelType", "LongPolling")
        ch = self.create(user, channel).json()["notificationChannel"]
        base = self.server.base_url
        ch["path"] = ch["resourceURL"][len(base):]
        ch["cb"] = ch["callbackURL"][len(base):]
        ch["id"] = ch["resourceURL"].rsplit("/", 1)[1]
        return ch

    def queued(self, channel_id):
        """How many notifications the outbox holds for a channel (read from
        the server's SQLite file: WAL lets a second reader in)."""
        conn = sqlite3.connect(self.server.db, timeout=5)
        try:
            return conn.execute("SELECT count(*) FROM outbox WHERE channel_id = ?",
                                (channel_id,)).fetchone()[0]
        finally:
            conn.close()

    def assertXmlServiceError(self, resp, status, message_id):
        """The XML requestError of OMA NC 6.1.5.7 in the common namespace;
        returns its variables."""
        self.assertStatus(resp, status)
        self.assertEqual(resp.header("Content-Type"), XML, resp)
        root = ET.fromstring(resp.body)
        self.assertEqual(root.tag, "{%s}requestError" % COMMON_NS, resp.body)
        exc = root.find("serviceException")
        self.assertIsNotNone(exc, resp.body)
        self.assertEqual(exc.findtext("messageId"), message_id, resp.body)
        self.assertTrue(exc.findtext("text"), resp.body)
        return [v.text for v in exc.findall("variables")]


def notification_list(n):
    return {"notificationList": [{"aNotification": {"n": i}} for i in range(n)]}


class RobustnessTest(Helpers, ServerTestCase):

    server_config = {"max_channels_per_user": MAX_CHANNELS,
                     "max_callback_notifications": MAX_CALLBACK}

    # ---- G1: 404 and 405 follow Accept --------------------------------------

    def test_404_in_xml_under_nc_paths(self):
        user = new_user()
        ch = self.created(user)
        for path in (BASE, BASE + "/", channels_path(user) + "/",
                     ch["path"] + "/other", BASE + "/callbacks"):
            for accept in (XML, "text/xml", "application/json;q=0.1, application/xml"):
                with self.subTest(path=path, accept=accept):
                    r = self.server.get(path, headers={"Accept": accept})
                    self.assertEqual(self.assertXmlServiceError(r, 404, "SVC3000"), [path])

    def test_405_in_xml_with_the_same_allow(self):
        user = new_user()
        ch = self.created(user)
        for method, path, allow in (("PUT", channels_path(user), "GET, POST"),
                                    ("POST", ch["path"], "GET, DELETE"),
                                    ("DELETE", ch["path"] + "/channelLifetime", "GET, PUT"),
                                    ("GET", ch["path"] + "/notifications", "POST"),
                                    ("GET", ch["cb"], "POST")):
            with self.subTest(method=method, path=path):
                r = self.server.request(method, path, headers={"Accept": XML})
                self.assertEqual(self.assertXmlServiceError(r, 405, "SVC3001"),
                                 [method, allow])
                self.assertEqual(r.header("Allow"), allow)
                # JSON by default, the same Allow.
                r = self.server.request(method, path)
                self.assertServiceError(r, 405, "SVC3001")
                self.assertEqual(r.header("Allow"), allow)

    def test_404_and_405_never_406(self):
        user = new_user()
        r = self.server.get(channels_path(user) + "/", headers={"Accept": "image/png"})
        self.assertServiceError(r, 404, "SVC3000")
        r = self.server.request("PATCH", channels_path(user), headers={"Accept": "image/png"})
        self.assertServiceError(r, 405, "SVC3001")
        self.assertEqual(r.header("Allow"), "GET, POST")

    # ---- G3: userIds whose URLs could not be followed -------------------------

    DOT_USERS = (".", "..", "%2E", "%2e", "%2E%2E", "%2e%2E")

    def test_dot_user_ids_refused_on_create(self):
        for seg in self.DOT_USERS:
            with self.subTest(user=seg):
                # A raw request sends the path exactly as written; most
                # clients would remove the dot segment before sending.
                conn = self.server.raw()
                try:
                    r = conn.request("POST", "%s/%s/channels" % (BASE, seg),
                                     {"notificationChannel": {"channelType": "LongPolling"}})
                finally:
                    conn.close()
                self.assertServiceError(r, 400, "SVC0002", field="userId")

    def test_dot_user_ids_404_everywhere_else(self):
        for seg in self.DOT_USERS:
            users = "%s/%s/channels" % (BASE, seg)
            for method, path, body in (("GET", users, None),
                                       ("GET", users + "/c", None),
                                       ("DELETE", users + "/c", None),
                                       ("GET", users + "/c/channelLifetime", None),
                                       ("PUT", users + "/c/channelLifetime",
                                        {"notificationChannelLifetime": {}}),
                                       ("POST", users + "/c/notifications", None),
                                       ("GET", users + "/c/ws", None)):
                with self.subTest(method=method, path=path):
                    conn = self.server.raw()
                    try:
                        r = conn.request(method, path, body)
                    finally:
                        conn.close()
                    self.assertServiceError(r, 404, "SVC3000")

    def test_empty_user_id_segment_is_404(self):
        path = BASE + "//channels"
        self.assertServiceError(self.server.get(path), 404, "SVC3000")
        r = self.server.request("POST", path, {"notificationChannel": {"channelType": "LongPolling"}})
        self.assertServiceError(r, 404, "SVC3000")

    def test_user_ids_with_dots_inside_are_fine(self):
        for user in ("...", "acr:..", "." + uuid.uuid4().hex):
            with self.subTest(user=user):
                ch = self.created(user)
                self.assertStatus(self.server.get(ch["path"]), 200)

    # ---- G5: a byte order mark before JSON -----------------------------------

    def test_bom_before_json_bodies_is_ignored(self):
        user = new_user()
        body = BOM + json.dumps({"notificationChannel": {"channelType": "LongPolling",
                                                         "clientCorrelator": "bom"}}).encode()
        r = self.server.request("POST", channels_path(user), body,
                                headers={"Content-Type": JSON})
        self.assertStatus(r, 201)
        ch = r.json()["notificationChannel"]
        self.assertEqual(ch["clientCorrelator"], "bom")
        path = ch["resourceURL"][len(self.server.base_url):]
        r = self.server.request("PUT", path + "/channelLifetime",
                                BOM + b'{"notificationChannelLifetime": {"channelLifetime": 600}}',
                                headers={"Content-Type": JSON})
        self.assertStatus(r, 200)
        self.assertEqual(r.json()["notificationChannelLifetime"]["channelLifetime"], 600)
        cb = ch["callbackURL"][len(self.server.base_url):]
        channel_id = ch["resourceURL"].rsplit("/", 1)[1]
        for body in (BOM + b'{"aNotification": {"n": 1}}',
                     BOM + b'{"notificationList": [{"aNotification": {"n": 2}}]}'):
            r = self.server.request("POST", cb, body, headers={"Content-Type": JSON})
            self.assertStatus(r, 204)
        self.assertEqual(self.queued(channel_id), 2)
        r = self.server.request("POST", path + "/notifications",
                                BOM + b'{"longPollingRequestParameters": null}',
                                headers={"Content-Type": JSON})
        self.assertStatus(r, 200)
        self.assertEqual(r.json()["notificationList"],
                         [{"aNotification": {"n": 1}}, {"aNotification": {"n": 2}}])

    def test_bom_elsewhere_is_still_malformed(self):
        user = new_user()
        for body in (BOM + BOM + b'{"notificationChannel": {"channelType": "LongPolling"}}',
                     b'{"notificationChannel": ' + BOM + b'{"channelType": "LongPolling"}}'):
            with self.subTest(body=body):
                r = self.server.request("POST", channels_path(user), body,
                                        headers={"Content-Type": JSON})
                self.assertServiceError(r, 400, "SVC0001")

    # ---- a JSON key given twice ---------------------------------------------------

    def test_repeated_json_key_is_refused_naming_it(self):
        user = new_user()
        body = (b'{"notificationChannel": {"channelType": "OMAPush",'
                b' "channelType": "LongPolling"}}')
        r = self.server.request("POST", channels_path(user), body,
                                headers={"Content-Type": JSON})
        self.assertServiceError(r, 400, "SVC0002", "channelType")
        r = self.server.request("GET", channels_path(user))
        self.assertStatus(r, 200)
        self.assertEqual(r.json()["notificationChannelList"].get("notificationChannel", []), [])
        ch = self.created(user)
        r = self.server.request("PUT", ch["path"] + "/channelLifetime",
                                b'{"notificationChannelLifetime": {"channelLifetime": 600,'
                                b' "channelLifetime": 60}}', headers={"Content-Type": JSON})
        self.assertServiceError(r, 400, "SVC0002", "channelLifetime")

    # ---- G6: clientCorrelator and applicationTag lengths -----------------------

    def test_correlator_and_tag_capped_at_256_characters(self):
        user = new_user()
        for name in ("clientCorrelator", "applicationTag"):
            with self.subTest(name=name):
                for value in ("x" * 257, "x" * 1000000):
                    r = self.create(user, {"channelType": "LongPolling", name: value},
                                    status=400)
                    self.assertServiceError(r, 400, "SVC0002", field=name)
                ch = self.created(user, **{name: "\u00e9" * 256})
                self.assertEqual(ch[name], "\u00e9" * 256)
        r = self.server.request(
            "POST", channels_path(user),
            "channelType=LongPolling&clientCorrelator=" + "7" * 300,
            headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assertServiceError(r, 400, "SVC0002", field="clientCorrelator")
        r = self.server.request(
            "POST", channels_path(user),
            '<nc:notificationChannel xmlns:nc="%s"><applicationTag>%s</applicationTag>'
            "<channelType>LongPolling</channelType></nc:notificationChannel>"
            % (NC_NS, "a" * 300), headers={"Content-Type": XML, "Accept": XML})
        self.assertEqual(self.assertXmlServiceError(r, 400, "SVC0002"), ["applicationTag"])

    # ---- G7: channels per user -------------------------------------------------

    def test_channels_per_user_limit(self):
        user = new_user()
        first = self.created(user, clientCorrelator="one")
        for _ in range(MAX_CHANNELS - 1):
            self.created(user)
        r = self.create(user, status=403)
        exc = self.assertPolicyError(r, 403, "POL0001")
        self.assertEqual(exc["variables"],
                         ["too many notification channels for this user (limit %d)"
                          % MAX_CHANNELS])
        # An idempotent repeat still answers with its channel.
        r = self.create(user, {"channelType": "LongPolling", "clientCorrelator": "one"},
                        status=200)
        self.assertEqual(r.json()["notificationChannel"]["resourceURL"], first["resourceURL"])
        # In XML when XML is asked for.
        r = self.create(user, status=403, headers={"Accept": XML})
        self.assertIn(b"<messageId>POL0001</messageId>", r.body)
        # Nothing was created; another user is not affected; a delete makes room.
        r = self.server.get(channels_path(user))
        self.assertEqual(len(r.json()["notificationChannelList"]["notificationChannel"]),
                         MAX_CHANNELS)
        self.created(new_user())
        self.assertStatus(self.server.request("DELETE", first["path"]), 204)
        self.created(user)

    # ---- G4: notifications per callback POST ------------------------------------

    def test_callback_list_of_exactly_the_bound_is_stored(self):
        ch = self.created(new_user())
        r = self.server.request("POST", ch["cb"], notification_list(MAX_CALLBACK))
        self.assertStatus(r, 204)
        self.assertEqual(self.queued(ch["id"]), MAX_CALLBACK)

    def test_callback_list_past_the_bound_is_refused_storing_nothing(self):
        ch = self.created(new_user())
        r = self.server.request("POST", ch["cb"], notification_list(MAX_CALLBACK + 1))
        exc = self.assertServiceError(r, 400, "SVC0003")
        self.assertEqual(exc["variables"],
                         ["notificationList", "at most %d notifications" % MAX_CALLBACK])
        body = ('<nc:notificationList xmlns:nc="%s">%s</nc:notificationList>'
                % (NC_NS, "<a/>" * (MAX_CALLBACK + 1)))
        r = self.server.request("POST", ch["cb"], body,
                                headers={"Content-Type": XML, "Accept": XML})
        self.assertEqual(self.assertXmlServiceError(r, 400, "SVC0003"),
                         ["notificationList", "at most %d notifications" % MAX_CALLBACK])
        self.assertEqual(self.queued(ch["id"]), 0)


class CallbackBoundTest(Helpers, ServerTestCase):
    """The default bound (1000) against the callback POST that used to hold
    the event loop for about 2 s: 100,000 empty notifications in 900 KB."""

    def test_default_bound(self):
        ch = self.created(new_user())
        r = self.server.request("POST", ch["cb"], notification_list(1000))
        self.assertStatus(r, 204)
        body = json.dumps({"notificationList": [{"x": {}}] * 100000},
                          separators=(",", ":"))
        self.assertLess(len(body), 1024 * 1024)
        r = self.server.request("POST", ch["cb"], body, headers={"Content-Type": JSON},
                                timeout=30)
        exc = self.assertServiceError(r, 400, "SVC0003")
        self.assertEqual(exc["variables"], ["notificationList", "at most 1000 notifications"])
        r = self.server.request("POST", ch["cb"], notification_list(1001))
        self.assertServiceError(r, 400, "SVC0003")
        self.assertEqual(self.queued(ch["id"]), 1000)
        # The server answers others at once afterwards.
        start = time.monotonic()
        self.assertStatus(self.server.get("/health"), 200)
        self.assertLess(time.monotonic() - start, 1.0 * SLOW)
