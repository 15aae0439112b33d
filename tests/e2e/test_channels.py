"""Notification channel management (API.md section 2; OMA NC 5.1, 6.1, 6.2,
6.4, 7, Appendices C and D), end to end.

ChannelsTest shares one server: each test works under userIds of its own
(fresh suffixes), so tests never see each other's channels. ExpiryTest and
RestartTest run servers of their own, with short lifetimes or a database
that outlives the server. Waits are polls with a deadline, never a sleep
that hopes.
"""

import os
import re
import shutil
import sqlite3
import tempfile
import time
import unittest
import uuid
import xml.etree.ElementTree as ET

from ncfixture import SLOW, Server, ServerTestCase, quote

BASE = "/notificationchannel/v1"
NC_NS = "urn:oma:xml:rest:netapi:notificationchannel:1"
COMMON_NS = "urn:oma:xml:rest:netapi:common:1"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
JSON = "application/json"
XML = "application/xml"
FORM = "application/x-www-form-urlencoded"
# 128 bits of URL-safe base64 (API.md 2: unguessable ids).
ID_RE = re.compile(r"^[A-Za-z0-9_-]{22,}$")

CONFIG = {
    "channel_lifetime_min": 1,
    "channel_lifetime_max": 7200,
    "max_notifications_max": 50,
    "max_wait_time_max": 40,
}


def new_tel():
    """A fresh tel: userId, so a test has its own channel namespace."""
    return "tel:+1958555%04d%s" % (int(uuid.uuid4().int % 10000), uuid.uuid4().hex[:6])


def new_acr():
    return "acr:pseudonym" + uuid.uuid4().hex[:10]


def channels_path(user):
    return "%s/%s/channels" % (BASE, quote(user))


def xml_doc(root, body, xsi=False):
    ns = ' xmlns:nc="%s"' % NC_NS
    if xsi:
        ns += ' xmlns:xsi="%s"' % XSI_NS
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<nc:%s%s>%s</nc:%s>'
            % (root, ns, body, root))


def parse_xml(resp):
    try:
        return ET.fromstring(resp.body)
    except ET.ParseError as e:
        raise AssertionError("response is not XML (%s): %r" % (e, resp.body[:500]))


def child_text(el, name):
    c = el.find(name)
    return None if c is None else (c.text or "").strip()


def wait_until(predicate, timeout, what):
    """Polls `predicate` until it returns a true value or `timeout`
    (multiplied by SLOW) passes; returns that value."""
    deadline = time.monotonic() + timeout * SLOW
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.1f s waiting for %s"
                                 % (timeout * SLOW, what))
        time.sleep(0.05)


class ChannelHelpers:
    """Requests and checks shared by the test classes."""

    def path_of(self, url):
        base = self.server.base_url
        self.assertTrue(url.startswith(base), url)
        return url[len(base):]

    def create(self, user, channel=None, status=201, headers=None):
        doc = {"notificationChannel": channel or {"channelType": "LongPolling"}}
        r = self.server.request("POST", channels_path(user), doc, headers=headers)
        self.assertStatus(r, status, "create")
        return r

    def created(self, user, **channel):
        channel.setdefault("channelType", "LongPolling")
        r = self.create(user, channel)
        return self.assertChannel(r.json(), user)

    def assertChannel(self, doc, user):
        """A notificationChannel in JSON, with every server-filled element
        typed and shaped as API.md 2 says; returns it."""
        self.assertIn("notificationChannel", doc, doc)
        ch = doc["notificationChannel"]
        self.assertIn(ch["channelType"], ("LongPolling", "WebSockets"))
        for name in ("callbackURL", "resourceURL"):
            self.assertIsInstance(ch.get(name), str, doc)
        self.assertIsInstance(ch.get("channelLifetime"), int, doc)
        prefix = self.server.url(channels_path(user)) + "/"
        self.assertTrue(ch["resourceURL"].startswith(prefix), (prefix, doc))
        channel_id = ch["resourceURL"][len(prefix):]
        self.assertRegex(channel_id, ID_RE)
        cb_prefix = self.server.url(BASE + "/callbacks/")
        self.assertTrue(ch["callbackURL"].startswith(cb_prefix), doc)
        callback_id = ch["callbackURL"][len(cb_prefix):]
        self.assertRegex(callback_id, ID_RE)
        self.assertNotEqual(channel_id, callback_id)
        data = ch.get("channelData")
        self.assertIsInstance(data, dict, doc)
        self.assertIsInstance(data.get("maxNotifications"), int, doc)
        if ch["channelType"] == "LongPolling":
            self.assertEqual(data.get("channelURL"), ch["resourceURL"] + "/notifications")
            self.assertIsInstance(data.get("maxWaitTime"), int, doc)
        else:
            ws = "ws://%s:%d%s/%s/ws" % (self.server.host, self.server.port,
                                          channels_path(user), channel_id)
            self.assertEqual(data.get("channelURL"), ws)
            self.assertNotIn("maxWaitTime", data)
        return ch

    def assertPolicyError(self, resp, status, message_id, variables=None):
        self.assertStatus(resp, status)
        doc = resp.json()
        exc = doc.get("requestError", {}).get("policyException")
        self.assertIsInstance(exc, dict, doc)
        self.assertEqual(exc.get("messageId"), message_id, doc)
        self.assertIsInstance(exc.get("text"), str, doc)
        if variables is not None:
            self.assertEqual(exc.get("variables"), variables, doc)
        return exc


class ChannelsTest(ChannelHelpers, ServerTestCase):

    server_config = CONFIG

    # ---- create ----------------------------------------------------------

    def test_create_long_polling_json_d2(self):
        user = "tel:+19585550100"
        # OMA NC D.2, numbers as strings as the appendix writes them.
        r = self.create(user, {"applicationTag": "myApp",
                               "channelData": {"maxNotifications": "1"},
                               "channelLifetime": "7200",
                               "channelType": "LongPolling",
                               "clientCorrelator": "d2-" + uuid.uuid4().hex})
        self.assertEqual(r.header("Content-Type"), JSON)
        self.assertIn("Accept", r.header("Vary", ""))
        ch = self.assertChannel(r.json(), user)
        self.assertEqual(r.header("Location"), ch["resourceURL"])
        self.assertTrue(ch["resourceURL"].startswith(
            self.server.url(BASE + "/tel%3A%2B19585550100/channels/")), ch)
        self.assertEqual(ch["applicationTag"], "myApp")
        self.assertEqual(ch["channelLifetime"], 7200)
        self.assertEqual(ch["channelData"]["maxNotifications"], 1)
        self.assertEqual(ch["channelData"]["maxWaitTime"], 30)  # default

    def test_create_websockets_d7(self):
        user = new_acr()
        ch = self.created(user, channelType="WebSockets", applicationTag="myApp",
                          channelData={"maxNotifications": 5}, channelLifetime=7200)
        self.assertEqual(ch["channelData"]["maxNotifications"], 5)
        self.assertTrue(ch["channelData"]["channelURL"].startswith("ws://"), ch)

    def test_defaults_filled_and_requests_clamped(self):
        user = new_tel()
        ch = self.created(user)
        self.assertEqual(ch["channelLifetime"], 3600)
        self.assertEqual(ch["channelData"]["maxNotifications"], 10)
        self.assertEqual(ch["channelData"]["maxWaitTime"], 30)
        ch = self.created(user, channelLifetime=100000,
                          channelData={"maxNotifications": 1000, "maxWaitTime": 1000})
        self.assertEqual(ch["channelLifetime"], 7200)
        self.assertEqual(ch["channelData"]["maxNotifications"], 50)
        self.assertEqual(ch["channelData"]["maxWaitTime"], 40)
        ch = self.created(user, channelLifetime=0, channelData={"maxWaitTime": 0})
        self.assertEqual(ch["channelLifetime"], 1)
        self.assertEqual(ch["channelData"]["maxWaitTime"], 0)

    def test_correlator_and_tag_not_invented(self):
        ch = self.created(new_tel())
        self.assertNotIn("clientCorrelator", ch)
        self.assertNotIn("applicationTag", ch)

    def test_repeated_correlator_answers_200_with_the_first(self):
        user = new_tel()
        first = self.create(user, {"channelType": "LongPolling", "clientCorrelator": "123",
                                   "applicationTag": "a"})
        again = self.create(user, {"channelType": "LongPolling", "clientCorrelator": "123",
                                   "applicationTag": "a"}, status=200)
        self.assertIsNone(again.header("Location"))
        self.assertEqual(again.json(), first.json())
        r = self.server.get(channels_path(user))
        self.assertEqual(len(r.json()["notificationChannelList"]["notificationChannel"]), 1)
        # Another user's correlator is another namespace.
        other = self.create(new_tel(), {"channelType": "LongPolling",
                                        "clientCorrelator": "123"})
        self.assertNotEqual(other.json()["notificationChannel"]["resourceURL"],
                            first.json()["notificationChannel"]["resourceURL"])

    def test_unsupported_types_403_pol1023(self):
        user = new_tel()
        for t, data in (("OMAPush", {"appId": "x-wap-application:wml.ua"}),
                        ("NativeChannel", {"channelSubType": "GCM",
                                           "registrationToken": "tok"})):
            with self.subTest(channelType=t):
                r = self.create(user, {"channelType": t, "channelData": data}, status=403)
                exc = self.assertPolicyError(r, 403, "POL1023",
                                             [t, "LongPolling, WebSockets"])
                self.assertEqual(exc["text"], "Notification channel type %1 not "
                                 "supported. Supported types: %2.")
        r = self.server.get(channels_path(user))
        self.assertEqual(r.json()["notificationChannelList"]["notificationChannel"], [])

    def test_invalid_input_400_svc0002(self):
        user = new_tel()
        for channel, field in (
                ({"channelType": "CarrierPigeon"}, "channelType"),
                ({"applicationTag": "no type"}, "channelType"),
                ({"channelType": "LongPolling", "channelLifetime": -1}, "channelLifetime"),
                ({"channelType": "LongPolling", "channelLifetime": "soon"}, "channelLifetime"),
                ({"channelType": "LongPolling", "channelData": {"maxNotifications": 0}},
                 "maxNotifications"),
                ({"channelType": "LongPolling", "channelData": {"maxWaitTime": -1}},
                 "maxWaitTime"),
                ({"channelType": "WebSockets", "channelData": {"maxWaitTime": 5}},
                 "maxWaitTime"),
                ({"channelType": "LongPolling",
                  "channelData": {"channelURL": "http://evil/x"}}, "channelURL"),
                ({"channelType": "LongPolling", "callbackURL": "http://evil/x"},
                 "callbackURL"),
                ({"channelType": "LongPolling", "resourceURL": "http://evil/x"},
                 "resourceURL"),
                ({"channelType": "LongPolling", "unknownElement": 1}, "unknownElement")):
            with self.subTest(channel=channel):
                r = self.server.request("POST", channels_path(user),
                                        {"notificationChannel": channel})
                self.assertServiceError(r, 400, "SVC0002", field)
        for body, field in (({"notificationChannel": "x"}, "notificationChannel"),
                            ({"somethingElse": {}}, "notificationChannel")):
            with self.subTest(body=body):
                r = self.server.request("POST", channels_path(user), body)
                self.assertServiceError(r, 400, "SVC0002", field)
        r = self.server.get(channels_path(user))
        self.assertEqual(r.json()["notificationChannelList"]["notificationChannel"], [])

    def test_malformed_bodies_400_never_500(self):
        user = new_tel()
        for ctype, body in ((JSON, b'{"notificationChannel": {'),
                            (JSON, b"\xff\xfe"),
                            (JSON, b"[]"),
                            (XML, b"<nc:notificationChannel"),
                            (XML, b"<a><b></a>"),
                            (FORM, b"channelType=LongPolling&channelLifetime=%zz")):
            with self.subTest(ctype=ctype, body=body):
                r = self.server.request("POST", channels_path(user), body,
                                        headers={"Content-Type": ctype})
                self.assertServiceError(r, 400, lambda m: m in ("SVC0001", "SVC0002"))

    def test_unsupported_content_type_415(self):
        for ctype in ("text/plain", "application/octet-stream"):
            with self.subTest(ctype=ctype):
                r = self.server.request("POST", channels_path(new_tel()),
                                        b'{"notificationChannel": {"channelType": "LongPolling"}}',
                                        headers={"Content-Type": ctype})
                self.assertServiceError(r, 415, "SVC3002")

    def test_406_when_accept_fits_nothing(self):
        user = new_tel()
        ch = self.created(user)
        for method, path, body in (("GET", channels_path(user), None),
                                   ("POST", channels_path(user),
                                    {"notificationChannel": {"channelType": "LongPolling"}}),
                                   ("GET", self.path_of(ch["resourceURL"]), None),
                                   ("GET", self.path_of(ch["resourceURL"]) + "/channelLifetime",
                                    None)):
            with self.subTest(method=method, path=path):
                r = self.server.request(method, path, body, headers={"Accept": "text/html"})
                self.assertServiceError(r, 406, "SVC3003")
        r = self.server.get(channels_path(user))
        self.assertEqual(len(r.json()["notificationChannelList"]["notificationChannel"]), 1)

    # ---- XML and forms -----------------------------------------------------

    def test_create_xml_6_1_5_1(self):
        user = "tel:+19585550100"
        body = xml_doc("notificationChannel",
                       "<clientCorrelator>x-%s</clientCorrelator>"
                       "<applicationTag>myApp</applicationTag>"
                       "<channelType>LongPolling</channelType>"
                       '<channelData xsi:type="nc:LongPollingData">'
                       "<maxNotifications>1</maxNotifications></channelData>"
                       "<channelLifetime>7200</channelLifetime>" % uuid.uuid4().hex, xsi=True)
        r = self.server.request("POST", channels_path(user), body,
                                headers={"Content-Type": XML, "Accept": XML})
        self.assertStatus(r, 201)
        self.assertEqual(r.header("Content-Type"), XML)
        root = parse_xml(r)
        self.assertEqual(root.tag, "{%s}notificationChannel" % NC_NS)
        self.assertEqual(child_text(root, "channelType"), "LongPolling")
        self.assertEqual(child_text(root, "applicationTag"), "myApp")
        self.assertEqual(child_text(root, "channelLifetime"), "7200")
        data = root.find("channelData")
        self.assertEqual(data.get("{%s}type" % XSI_NS), "nc:LongPollingData")
        self.assertEqual(child_text(data, "maxNotifications"), "1")
        resource = child_text(root, "resourceURL")
        self.assertEqual(r.header("Location"), resource)
        self.assertEqual(child_text(data, "channelURL"), resource + "/notifications")
        self.assertTrue(child_text(root, "callbackURL").startswith(
            self.server.url(BASE + "/callbacks/")))
        # Read back in XML and in JSON: the same channel.
        r = self.server.get(self.path_of(resource), headers={"Accept": XML})
        self.assertStatus(r, 200)
        self.assertEqual(child_text(parse_xml(r), "resourceURL"), resource)
        r = self.server.get(self.path_of(resource))
        self.assertEqual(r.json()["notificationChannel"]["resourceURL"], resource)
        # The list in XML (6.1.3.1).
        r = self.server.get(channels_path(user), headers={"Accept": XML})
        self.assertStatus(r, 200)
        lst = parse_xml(r)
        self.assertEqual(lst.tag, "{%s}notificationChannelList" % NC_NS)
        urls = [child_text(c, "resourceURL") for c in lst.findall("notificationChannel")]
        self.assertIn(resource, urls)
        self.assertEqual(child_text(lst, "resourceURL"), self.server.url(channels_path(user)))

    def test_create_websockets_xml_6_1_5_6(self):
        user = new_tel()
        body = xml_doc("notificationChannel",
                       "<channelType>WebSockets</channelType>"
                       '<channelData xsi:type="nc:WebSocketsData">'
                       "<maxNotifications>5</maxNotifications></channelData>", xsi=True)
        r = self.server.request("POST", channels_path(user), body,
                                headers={"Content-Type": XML, "Accept": XML})
        self.assertStatus(r, 201)
        data = parse_xml(r).find("channelData")
        self.assertEqual(data.get("{%s}type" % XSI_NS), "nc:WebSocketsData")
        self.assertTrue(child_text(data, "channelURL").startswith("ws://"))
        self.assertIsNone(data.find("maxWaitTime"))

    def test_errors_in_xml(self):
        user = new_tel()
        body = xml_doc("notificationChannel", "<channelType>OMAPush</channelType>")
        r = self.server.request("POST", channels_path(user), body,
                                headers={"Content-Type": XML, "Accept": XML})
        self.assertStatus(r, 403)
        self.assertEqual(r.header("Content-Type"), XML)
        root = parse_xml(r)
        self.assertEqual(root.tag, "{%s}requestError" % COMMON_NS)
        exc = root.find("policyException")
        self.assertEqual(child_text(exc, "messageId"), "POL1023")
        self.assertEqual([v.text for v in exc.findall("variables")],
                         ["OMAPush", "LongPolling, WebSockets"])
        r = self.server.get(channels_path(user) + "/nope", headers={"Accept": XML})
        self.assertStatus(r, 404)
        self.assertEqual(child_text(parse_xml(r).find("serviceException"), "messageId"),
                         "SVC3000")

    def test_create_form_c_1(self):
        user = "acr:pseudonym123"
        # C.1.3.1, line breaks and all.
        body = ("clientCorrelator=form-%s&\napplicationTag=myApp&\nchannelType=LongPolling&\n"
                "maxNotifications=1&\nchannelLifetime=7200" % uuid.uuid4().hex)
        r = self.server.request("POST", channels_path(user), body,
                                headers={"Content-Type": FORM, "Accept": XML})
        self.assertStatus(r, 201)
        root = parse_xml(r)
        self.assertEqual(child_text(root, "channelType"), "LongPolling")
        self.assertEqual(child_text(root.find("channelData"), "maxNotifications"), "1")
        self.assertTrue(r.header("Location").startswith(
            self.server.url(BASE + "/acr%3Apseudonym123/channels/")))
        # JSON answer to a form request.
        r = self.server.request("POST", channels_path(user),
                                "channelType=LongPolling&maxNotifications=3",
                                headers={"Content-Type": FORM})
        self.assertStatus(r, 201)
        self.assertEqual(self.assertChannel(r.json(), user)["channelData"]["maxNotifications"], 3)

    def test_form_refuses_websockets_and_bad_values(self):
        user = new_tel()
        r = self.server.request("POST", channels_path(user), "channelType=WebSockets",
                                headers={"Content-Type": FORM})
        self.assertPolicyError(r, 403, "POL1023", ["WebSockets", "LongPolling"])
        r = self.server.request("POST", channels_path(user),
                                "channelType=LongPolling&maxNotifications=many",
                                headers={"Content-Type": FORM})
        self.assertServiceError(r, 400, "SVC0002", "maxNotifications")
        r = self.server.request("POST", channels_path(user), "channelType=LongPolling&x=1",
                                headers={"Content-Type": FORM})
        self.assertServiceError(r, 400, "SVC0002", "x")

    # ---- list, read, delete -----------------------------------------------

    def test_list_is_per_user(self):
        a, b = new_tel(), new_tel()
        ca1 = self.created(a)
        ca2 = self.created(a, channelType="WebSockets")
        self.created(b)
        r = self.server.get(channels_path(a))
        self.assertStatus(r, 200)
        lst = r.json()["notificationChannelList"]
        self.assertEqual(lst["resourceURL"], self.server.url(channels_path(a)))
        self.assertEqual(lst["notificationChannel"], [ca1, ca2])

    def test_empty_list_is_an_array(self):
        r = self.server.get(channels_path(new_tel()))
        self.assertStatus(r, 200)
        self.assertEqual(r.json()["notificationChannelList"]["notificationChannel"], [])

    def test_read_channel(self):
        user = new_tel()
        ch = self.created(user, clientCorrelator="c", applicationTag="t")
        r = self.server.get(self.path_of(ch["resourceURL"]))
        self.assertStatus(r, 200)
        self.assertIn("Accept", r.header("Vary", ""))
        self.assertEqual(r.json()["notificationChannel"], ch)
        r = self.server.request("HEAD", self.path_of(ch["resourceURL"]))
        self.assertStatus(r, 200)
        self.assertEqual(r.body, b"")

    def test_users_are_isolated(self):
        owner, other = new_tel(), new_acr()
        ch = self.created(owner)
        channel_id = ch["resourceURL"].rsplit("/", 1)[1]
        foreign = "%s/%s" % (channels_path(other), channel_id)
        for method, path in (("GET", foreign), ("DELETE", foreign),
                             ("GET", foreign + "/channelLifetime")):
            with self.subTest(method=method, path=path):
                self.assertServiceError(self.server.request(method, path), 404, "SVC3000")
        r = self.server.request("PUT", foreign + "/channelLifetime",
                                {"notificationChannelLifetime": {"channelLifetime": 60}})
        self.assertServiceError(r, 404, "SVC3000")
        r = self.server.get(self.path_of(ch["resourceURL"]))
        self.assertStatus(r, 200)
        self.assertEqual(r.json()["notificationChannel"]["channelLifetime"], 3600)

    def test_unknown_channel_404(self):
        user = new_tel()
        for path in (channels_path(user) + "/nope", channels_path(user) + "/nope/channelLifetime"):
            with self.subTest(path=path):
                self.assertServiceError(self.server.get(path), 404, "SVC3000")
        self.assertServiceError(self.server.request("DELETE", channels_path(user) + "/nope"),
                                404, "SVC3000")

    def test_delete_204_then_gone(self):
        user = new_tel()
        ch = self.created(user)
        keep = self.created(user)
        path = self.path_of(ch["resourceURL"])
        r = self.server.request("DELETE", path)
        self.assertStatus(r, 204)
        self.assertEqual(r.body, b"")
        self.assertServiceError(self.server.get(path), 404, "SVC3000")
        self.assertServiceError(self.server.request("DELETE", path), 404, "SVC3000")
        self.assertServiceError(self.server.get(path + "/channelLifetime"), 404, "SVC3000")
        r = self.server.request("POST", self.path_of(ch["callbackURL"]),
                                {"aNotification": {"x": 1}})
        self.assertServiceError(r, 404, "SVC3000")
        r = self.server.get(channels_path(user))
        self.assertEqual(r.json()["notificationChannelList"]["notificationChannel"], [keep])

    # ---- userId encoding ----------------------------------------------------

    def test_user_ids_percent_encoded(self):
        for user in ("tel:+19585550100", "acr:pseudonym123", "sip:a b@example.com",
                     "acr:x/y?z#w%" + uuid.uuid4().hex[:4]):
            with self.subTest(user=user):
                ch = self.created(user)
                self.assertIn("/%s/channels/" % quote(user), ch["resourceURL"])
                r = self.server.get(self.path_of(ch["resourceURL"]))
                self.assertStatus(r, 200)

    def test_lower_case_escapes_name_the_same_user(self):
        user = "tel:+1958555%06d" % (uuid.uuid4().int % 1000000)
        ch = self.created(user)
        channel_id = ch["resourceURL"].rsplit("/", 1)[1]
        # Only the escapes change case: "tel%3a%2b1958555...".
        lower = "%s/%s/channels/%s" % (BASE, quote(user).lower(), channel_id)
        self.assertIn("tel%3a%2b", lower)
        r = self.server.get(lower)
        self.assertStatus(r, 200)
        # URLs handed back are in the canonical (upper-case) encoding.
        self.assertEqual(r.json()["notificationChannel"]["resourceURL"], ch["resourceURL"])

    # ---- lifetime --------------------------------------------------------

    def test_read_remaining_lifetime_6_4_3(self):
        ch = self.created(new_tel(), channelLifetime=600)
        r = self.server.get(self.path_of(ch["resourceURL"]) + "/channelLifetime")
        self.assertStatus(r, 200)
        left = r.json()["notificationChannelLifetime"]["channelLifetime"]
        self.assertIsInstance(left, int)
        self.assertTrue(590 <= left <= 600, left)
        r = self.server.get(self.path_of(ch["resourceURL"]) + "/channelLifetime",
                            headers={"Accept": XML})
        root = parse_xml(r)
        self.assertEqual(root.tag, "{%s}notificationChannelLifetime" % NC_NS)
        self.assertTrue(590 <= int(child_text(root, "channelLifetime")) <= 600)

    def test_refresh_lifetime_6_4_4(self):
        ch = self.created(new_tel(), channelLifetime=60)
        path = self.path_of(ch["resourceURL"]) + "/channelLifetime"
        for asked, granted in (("7200", 7200), (100000, 7200), (0, 1), (120, 120)):
            with self.subTest(asked=asked):
                r = self.server.request("PUT", path,
                                        {"notificationChannelLifetime": {"channelLifetime": asked}})
                self.assertStatus(r, 200)
                self.assertEqual(r.json(), {"notificationChannelLifetime":
                                            {"channelLifetime": granted}})
        # No lifetime asked: the server default (5.2.2.14).
        r = self.server.request("PUT", path, {"notificationChannelLifetime": {}})
        self.assertEqual(r.json()["notificationChannelLifetime"]["channelLifetime"], 3600)
        r = self.server.get(path)
        self.assertTrue(3590 <= r.json()["notificationChannelLifetime"]["channelLifetime"] <= 3600)
        # The channel's own representation shows the granted lifetime.
        r = self.server.get(self.path_of(ch["resourceURL"]))
        self.assertEqual(r.json()["notificationChannel"]["channelLifetime"], 3600)
        # XML, as in the spec's example.
        r = self.server.request("PUT", path, xml_doc("notificationChannelLifetime",
                                                     "<channelLifetime>7200</channelLifetime>"),
                                headers={"Content-Type": XML, "Accept": XML})
        self.assertStatus(r, 200)
        self.assertEqual(child_text(parse_xml(r), "channelLifetime"), "7200")

    def test_refresh_lifetime_bad_input(self):
        ch = self.created(new_tel())
        path = self.path_of(ch["resourceURL"]) + "/channelLifetime"
        for body, ctype, status, mid in (
                ({"notificationChannelLifetime": {"channelLifetime": -1}}, None, 400, "SVC0002"),
                ({"notificationChannelLifetime": {"channelLifetime": "x"}}, None, 400, "SVC0002"),
                ({"notificationChannelLifetime": {"other": 1}}, None, 400, "SVC0002"),
                ({"notificationChannel": {}}, None, 400, "SVC0002"),
                ('{"notificationChannelLifetime": ', JSON, 400, "SVC0001"),
                ("channelLifetime=5", FORM, 415, "SVC3002")):
            with self.subTest(body=body):
                headers = {"Content-Type": ctype} if ctype else None
                r = self.server.request("PUT", path, body, headers=headers)
                self.assertServiceError(r, status, mid)

    # ---- methods -----------------------------------------------------------

    def test_405_with_the_spec_allow(self):
        user = new_tel()
        ch = self.created(user)
        cpath = self.path_of(ch["resourceURL"])
        for path, allow in (
                (channels_path(user), "GET, POST"),                # 6.1.4, 6.1.6
                (cpath, "GET, DELETE"),                            # 6.2.4, 6.2.5
                (cpath + "/channelLifetime", "GET, PUT"),          # 6.4.5, 6.4.6
                (cpath + "/notifications", "POST"),                # 6.3.3, 6.3.4, 6.3.6
                (self.path_of(ch["callbackURL"]), "POST")):
            allowed = allow.split(", ")
            for method in ("GET", "PUT", "POST", "DELETE", "PATCH"):
                if method in allowed:
                    continue
                with self.subTest(method=method, path=path):
                    r = self.server.request(method, path, {"x": {}})
                    self.assertServiceError(r, 405, "SVC3001")
                    self.assertEqual(r.header("Allow"), allow)
        # Nothing was changed by the refused requests.
        r = self.server.get(cpath)
        self.assertEqual(r.json()["notificationChannel"], ch)

    def test_long_poll_url_only_for_live_long_polling_channels(self):
        user = new_tel()
        ws = self.created(user, channelType="WebSockets")
        body = {"longPollingRequestParameters": None}
        r = self.server.request("POST", self.path_of(ws["resourceURL"]) + "/notifications", body)
        self.assertServiceError(r, 404, "SVC3000")
        r = self.server.request("POST", channels_path(user) + "/nope/notifications", body)
        self.assertServiceError(r, 404, "SVC3000")

    def test_unknown_paths_404(self):
        user = new_tel()
        ch = self.created(user)
        for path in (BASE, BASE + "/", channels_path(user) + "/",
                     self.path_of(ch["resourceURL"]) + "/other",
                     "/notificationchannel/v2/%s/channels" % quote(user),
                     BASE + "/callbacks"):
            with self.subTest(path=path):
                self.assertServiceError(self.server.get(path), 404, "SVC3000")


class ExpiryTest(ChannelHelpers, ServerTestCase):
    """Channels with a lifetime of one second."""

    server_config = {"channel_lifetime_min": 1, "channel_lifetime_default": 1}

    def db_count(self, sql, *args):
        conn = sqlite3.connect(self.server.db, timeout=5)
        try:
            return conn.execute(sql, args).fetchone()[0]
        finally:
            conn.close()

    def test_expired_channel_is_404_everywhere(self):
        user = new_tel()
        ch = self.created(user)
        self.assertEqual(ch["channelLifetime"], 1)
        path = self.path_of(ch["resourceURL"])
        cb = self.path_of(ch["callbackURL"])
        r = self.server.request("POST", cb, {"aNotification": {"n": 1}})
        if r.status == 404:
            self.skipTest("the machine is so slow the channel expired at once")
        self.assertStatus(r, 204)
        wait_until(lambda: self.server.get(path).status == 404, 10, "the channel to expire")
        self.assertServiceError(self.server.get(path), 404, "SVC3000")
        self.assertServiceError(self.server.get(path + "/channelLifetime"), 404, "SVC3000")
        self.assertServiceError(self.server.request("DELETE", path), 404, "SVC3000")
        self.assertServiceError(self.server.request("POST", cb, {"aNotification": {}}),
                                404, "SVC3000")
        r = self.server.get(channels_path(user))
        self.assertEqual(r.json()["notificationChannelList"]["notificationChannel"], [])
        channel_id = ch["resourceURL"].rsplit("/", 1)[1]
        self.assertEqual(self.db_count("SELECT count(*) FROM outbox WHERE channel_id = ?",
                                       channel_id), 0)

    def test_timer_removes_expired_channels_without_any_request(self):
        ch = self.created(new_tel())
        channel_id = ch["resourceURL"].rsplit("/", 1)[1]
        self.server.request("POST", self.path_of(ch["callbackURL"]), {"aNotification": {}})
        wait_until(lambda: self.db_count("SELECT count(*) FROM channels WHERE channel_id = ?",
                                         channel_id) == 0, 10, "the expiry timer")
        self.assertEqual(self.db_count("SELECT count(*) FROM outbox WHERE channel_id = ?",
                                       channel_id), 0)

    def test_refresh_keeps_a_channel_alive(self):
        ch = self.created(new_tel())
        path = self.path_of(ch["resourceURL"])
        r = self.server.request("PUT", path + "/channelLifetime",
                                {"notificationChannelLifetime": {"channelLifetime": 600}})
        if r.status == 404:
            self.skipTest("the machine is so slow the channel expired at once")
        self.assertStatus(r, 200)
        # Past the first lifetime (a lower bound, so not scaled by SLOW).
        time.sleep(1.5)
        self.assertStatus(self.server.get(path), 200)


class RestartTest(ChannelHelpers, unittest.TestCase):
    """Channels outlive the server process, keeping their stored expiry."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="nc-e2e-restart-")
        self.db = os.path.join(self.tmp, "nc.db")
        self.server = None

    def tearDown(self):
        if self.server is not None and self.server.running():
            self.server.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def start(self):
        self.server = Server(config={"channel_lifetime_min": 1}, db=self.db).start()
        return self.server

    def assertStatus(self, resp, status, msg=None):
        ServerTestCase.assertStatus(self, resp, status, msg)

    def assertServiceError(self, resp, status, message_id, field=None):
        return ServerTestCase.assertServiceError(self, resp, status, message_id, field)

    def test_restart_keeps_channels_and_their_expiry(self):
        user = "tel:+19585550100"
        self.start()
        keep = self.created(user, clientCorrelator="keep", channelLifetime=3600)
        short = self.created(user, channelLifetime=3)
        self.server.stop()

        self.start()
        # URLs follow the new port; ids, data and lifetime are kept.
        r = self.server.get(channels_path(user))
        self.assertStatus(r, 200)
        lst = r.json()["notificationChannelList"]["notificationChannel"]
        ids = [c["resourceURL"].rsplit("/", 1)[1] for c in lst]
        keep_id = keep["resourceURL"].rsplit("/", 1)[1]
        short_id = short["resourceURL"].rsplit("/", 1)[1]
        self.assertIn(keep_id, ids)
        kept = [c for c in lst if c["resourceURL"].endswith("/" + keep_id)][0]
        self.assertEqual(kept["clientCorrelator"], "keep")
        self.assertEqual(kept["channelLifetime"], 3600)
        path = "%s/%s" % (channels_path(user), keep_id)
        left = self.server.get(path + "/channelLifetime").json()
        self.assertTrue(3500 <= left["notificationChannelLifetime"]["channelLifetime"] <= 3600)
        # The same correlator still finds the same channel.
        r = self.create(user, {"channelType": "LongPolling", "clientCorrelator": "keep"},
                        status=200)
        self.assertTrue(r.json()["notificationChannel"]["resourceURL"].endswith("/" + keep_id))
        # The short one ends at its stored time, restart or not.
        short_path = "%s/%s" % (channels_path(user), short_id)
        wait_until(lambda: self.server.get(short_path).status == 404, 10,
                   "the short channel to expire after the restart")
        self.assertStatus(self.server.get(path), 200)


if __name__ == "__main__":
    unittest.main()
