"""Notification channel management (API.md section 2; OMA NC 5.1, 6.1, 6.2,
6.4, 7, Appendices C and D), end to end.

ChannelsTest shares one server: each test works under userIds of its own
(fresh suffixes), so tests never see each other's channels. PublicUrlTest,
ExpiryTest and RestartTest run servers of their own, with --public-url,
short lifetimes or a database that outlives the server. Waits are polls with a deadline, never a sleep
that hopes.
"""

import os
import re
import shutil
import sqlite3
import tempfile
import time
import unittest
import urllib.parse
import uuid
import xml.etree.ElementTree as ET

from ncfixture import SLOW, Server, ServerTestCase, quote
from wsclient import RawWebSocket

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


def verbatim_pair(el):
    """(clientCorrelator, applicationTag) of a notificationChannel element,
    exactly as parsed: nothing stripped (None where absent)."""
    def text(name):
        c = el.find(name)
        return None if c is None else (c.text or "")
    return text("clientCorrelator"), text("applicationTag")


def odd_text(mark):
    """Text that any trimming, whitespace folding, line-end normalising,
    re-encoding or (un)escaping would change."""
    return (" \t %s  inner   runs\t\tand\na break\r\nCRLF  é漢字😀 & < > \" ' &amp; &lt; ]]> "
            "<b/> \t  " % mark)


def xml_escape(text):
    """Element content; CR as a reference, which end-of-line handling keeps."""
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;").replace("'", "&apos;").replace("\r", "&#13;"))


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

    # ---- clientCorrelator and applicationTag: kept verbatim ------------------

    def assertVerbatimEverywhere(self, user, resource, correlator, tag):
        """GET and the user's list, each in JSON and XML, show exactly the
        clientCorrelator and applicationTag the client sent."""
        want = (correlator, tag)
        path = self.path_of(resource)
        r = self.server.get(path)
        self.assertStatus(r, 200)
        ch = r.json()["notificationChannel"]
        self.assertEqual((ch.get("clientCorrelator"), ch.get("applicationTag")), want, "GET")
        r = self.server.get(path, headers={"Accept": XML})
        self.assertStatus(r, 200)
        self.assertEqual(verbatim_pair(parse_xml(r)), want, "GET in XML")
        r = self.server.get(channels_path(user))
        self.assertStatus(r, 200)
        found = [c for c in r.json()["notificationChannelList"]["notificationChannel"]
                 if c["resourceURL"] == resource]
        self.assertEqual(len(found), 1, r.json())
        self.assertEqual((found[0].get("clientCorrelator"), found[0].get("applicationTag")),
                         want, "the list")
        r = self.server.get(channels_path(user), headers={"Accept": XML})
        self.assertStatus(r, 200)
        found = [c for c in parse_xml(r).findall("notificationChannel")
                 if c.findtext("resourceURL") == resource]
        self.assertEqual(len(found), 1, r.body)
        self.assertEqual(verbatim_pair(found[0]), want, "the list in XML")

    def test_correlator_and_tag_kept_verbatim_json_xml_form(self):
        # 5.2.2.2: the client's own values, returned as sent. Whitespace
        # runs at both ends and inside, a line break, non-ASCII of two to
        # four UTF-8 bytes, and everything JSON or XML escapes.
        user = new_tel()
        made = []

        # JSON.
        corr, tag = odd_text("json-c-" + uuid.uuid4().hex), odd_text("json-t")
        r = self.create(user, {"channelType": "LongPolling", "clientCorrelator": corr,
                               "applicationTag": tag})
        ch = self.assertChannel(r.json(), user)
        self.assertEqual((ch["clientCorrelator"], ch["applicationTag"]), (corr, tag))
        made.append((ch["resourceURL"], corr, tag))

        # XML, escaped as XML requires; answered in XML.
        corr, tag = odd_text("xml-c-" + uuid.uuid4().hex), odd_text("xml-t")
        body = xml_doc("notificationChannel",
                       "<clientCorrelator>%s</clientCorrelator>"
                       "<applicationTag>%s</applicationTag>"
                       "<channelType>WebSockets</channelType>"
                       % (xml_escape(corr), xml_escape(tag)))
        r = self.server.request("POST", channels_path(user), body,
                                headers={"Content-Type": XML, "Accept": XML})
        self.assertStatus(r, 201)
        root = parse_xml(r)
        self.assertEqual(verbatim_pair(root), (corr, tag), "XML create response")
        made.append((child_text(root, "resourceURL"), corr, tag))

        # Form (C.1), percent- and plus-encoded; answered in JSON.
        corr, tag = odd_text("form-c-" + uuid.uuid4().hex), odd_text("form-t")
        body = urllib.parse.urlencode([("clientCorrelator", corr), ("applicationTag", tag),
                                       ("channelType", "LongPolling")])
        self.assertIn("+", body)  # spaces as '+', which a form decoder must turn back
        r = self.server.request("POST", channels_path(user), body,
                                headers={"Content-Type": FORM})
        self.assertStatus(r, 201)
        ch = self.assertChannel(r.json(), user)
        self.assertEqual((ch["clientCorrelator"], ch["applicationTag"]), (corr, tag))
        made.append((ch["resourceURL"], corr, tag))

        self.assertEqual(len({m[0] for m in made}), 3, made)
        for resource, corr, tag in made:
            with self.subTest(correlator=corr):
                self.assertVerbatimEverywhere(user, resource, corr, tag)

        # The stored correlator is the one matched: the XML one again (in
        # JSON) finds its channel; the same text trimmed is another one.
        resource, corr, _ = made[1]
        r = self.create(user, {"channelType": "WebSockets", "clientCorrelator": corr},
                        status=200)
        self.assertEqual(r.json()["notificationChannel"]["resourceURL"], resource)
        r = self.create(user, {"channelType": "WebSockets", "clientCorrelator": corr.strip()})
        trimmed = r.json()["notificationChannel"]
        self.assertNotEqual(trimmed["resourceURL"], resource)
        self.assertEqual(trimmed["clientCorrelator"], corr.strip())
        self.assertVerbatimEverywhere(user, resource, corr, made[1][2])

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

    def test_lifetime_read_counts_down_and_refresh_restores_it(self):
        # API.md 2 / 6.4.3: GET channelLifetime is what is LEFT, the channel's
        # own representation the granted value; 6.4.4: a PUT starts it again.
        granted = 60
        t0 = time.monotonic()
        ch = self.created(new_tel(), channelLifetime=granted)
        t1 = time.monotonic()
        self.assertEqual(ch["channelLifetime"], granted)
        path = self.path_of(ch["resourceURL"]) + "/channelLifetime"

        def read(since_before, since_after):
            """GET channelLifetime; checks it lies in what the clock allows
            for a lifetime started between `since_before` and `since_after`
            (one second of slack either way for rounding)."""
            start = time.monotonic()
            r = self.server.get(path)
            end = time.monotonic()
            self.assertStatus(r, 200)
            left = r.json()["notificationChannelLifetime"]["channelLifetime"]
            self.assertIsInstance(left, int)
            self.assertGreater(left, 0, "a live channel with no time left")
            self.assertLessEqual(left, granted - (start - since_after) + 1,
                                 "more left than the %.2f s lived allow"
                                 % (start - since_after))
            self.assertGreaterEqual(left, granted - (end - since_before) - 1,
                                    "less left than the %.2f s lived allow"
                                    % (end - since_before))
            return left

        # Poll (GET does not restart the lifetime) until two seconds are gone.
        left = wait_until(lambda: (lambda v: v if v <= granted - 2 else None)(read(t0, t1)),
                          10, "GET channelLifetime to count down below %d" % (granted - 1))
        self.assertLess(left, granted)
        r = self.server.get(path, headers={"Accept": XML})
        self.assertStatus(r, 200)
        left_xml = int(child_text(parse_xml(r), "channelLifetime"))
        self.assertTrue(0 < left_xml <= left, (left_xml, left))
        # The channel itself still shows the lifetime granted.
        r = self.server.get(self.path_of(ch["resourceURL"]))
        self.assertEqual(r.json()["notificationChannel"]["channelLifetime"], granted)

        t4 = time.monotonic()
        r = self.server.request("PUT", path,
                                {"notificationChannelLifetime": {"channelLifetime": granted}})
        t5 = time.monotonic()
        self.assertStatus(r, 200)
        self.assertEqual(r.json(), {"notificationChannelLifetime": {"channelLifetime": granted}})
        again = read(t4, t5)
        self.assertGreater(again, left, "the refresh did not restart the lifetime")
        self.assertGreaterEqual(again, granted - 1)

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

    def test_websocket_channel_url_405_allow_get(self):
        # API.md 2: the WebSocket channelURL takes only the upgrade GET
        # (RFC 6455 4.1); every other method is a 405 with Allow: GET.
        user = new_tel()
        ch = self.created(user, channelType="WebSockets")
        prefix = "ws://%s:%d" % (self.server.host, self.server.port)
        url = ch["channelData"]["channelURL"]
        self.assertTrue(url.startswith(prefix), url)
        path = url[len(prefix):]
        for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
            with self.subTest(method=method):
                r = self.server.request(method, path, {"x": {}})
                self.assertServiceError(r, 405, "SVC3001")
                self.assertEqual(r.header("Allow"), "GET")
        # Upgrade headers on another method do not make it an upgrade.
        with RawWebSocket(self.server.host, self.server.port) as raw:
            r = raw.handshake(path, method="POST")
            self.assertEqual(r.status, 405, r)
            self.assertEqual(r.header("Allow"), "GET")
            self.assertIsNone(r.header("Sec-WebSocket-Accept"), r)
        # The refusals changed nothing: the channel is there and upgrades.
        r = self.server.get(self.path_of(ch["resourceURL"]))
        self.assertEqual(r.json()["notificationChannel"], ch)
        with RawWebSocket(self.server.host, self.server.port) as raw:
            raw.open(path)

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


PUBLIC_URL = "https://nc.example.org/base"


class PublicUrlTest(ChannelHelpers, ServerTestCase):
    """--public-url (API.md 1, 2): the base of every absolute URL handed out,
    https giving wss for WebSockets, userIds re-encoded; what follows the
    base is the path this server answers (a proxy maps the base to it)."""

    server_config = {"channel_lifetime_min": 1}
    server_kwargs = {"extra_args": ["--public-url", PUBLIC_URL]}

    USER = "tel:+19585550100"
    ENCODED = "tel%3A%2B19585550100"

    def local(self, url, base=PUBLIC_URL):
        self.assertTrue(url.startswith(base + "/"), (base, url))
        return url[len(base):]

    def check_urls(self, ch, user_enc, channel_type):
        """The URLs of a notificationChannel (JSON) under PUBLIC_URL; returns
        (channel id, callback id)."""
        channels = "%s%s/%s/channels" % (PUBLIC_URL, BASE, user_enc)
        self.assertTrue(ch["resourceURL"].startswith(channels + "/"), ch)
        channel_id = ch["resourceURL"][len(channels) + 1:]
        self.assertRegex(channel_id, ID_RE)
        cb_base = PUBLIC_URL + BASE + "/callbacks/"
        self.assertTrue(ch["callbackURL"].startswith(cb_base), ch)
        callback_id = ch["callbackURL"][len(cb_base):]
        self.assertRegex(callback_id, ID_RE)
        url = ch["channelData"]["channelURL"]
        if channel_type == "WebSockets":
            self.assertEqual(url, "wss://nc.example.org/base%s/%s/channels/%s/ws"
                             % (BASE, user_enc, channel_id))
        else:
            self.assertEqual(url, "https://nc.example.org/base%s/%s/channels/%s/notifications"
                             % (BASE, user_enc, channel_id))
        return channel_id, callback_id

    def test_urls_follow_the_public_url(self):
        # The client's Host must not leak into any URL.
        host = {"Host": "attacker.example:8443"}
        r = self.create(self.USER, {"channelType": "WebSockets"}, headers=host)
        ws = r.json()["notificationChannel"]
        self.assertEqual(ws["resourceURL"],
                         "https://nc.example.org/base/notificationchannel/v1/"
                         "tel%3A%2B19585550100/channels/" + ws["resourceURL"].rsplit("/", 1)[1])
        self.assertEqual(r.header("Location"), ws["resourceURL"])
        ws_id, _ = self.check_urls(ws, self.ENCODED, "WebSockets")
        r = self.create(self.USER, {"channelType": "LongPolling"}, headers=host)
        lp = r.json()["notificationChannel"]
        self.assertEqual(r.header("Location"), lp["resourceURL"])
        lp_id, _ = self.check_urls(lp, self.ENCODED, "LongPolling")

        # Read back, listed, and in XML: the same URLs.
        self.assertEqual(self.server.get(self.local(ws["resourceURL"]), headers=host)
                         .json()["notificationChannel"], ws)
        r = self.server.get(self.local(lp["resourceURL"]), headers={"Accept": XML})
        self.assertStatus(r, 200)
        root = parse_xml(r)
        self.assertEqual(child_text(root, "resourceURL"), lp["resourceURL"])
        self.assertEqual(child_text(root, "callbackURL"), lp["callbackURL"])
        self.assertEqual(child_text(root.find("channelData"), "channelURL"),
                         lp["channelData"]["channelURL"])
        r = self.server.get(channels_path(self.USER))
        lst = r.json()["notificationChannelList"]
        self.assertEqual(lst["resourceURL"], PUBLIC_URL + BASE + "/tel%3A%2B19585550100/channels")
        for ch in (ws, lp):
            self.assertIn(ch, lst["notificationChannel"])

        # What follows the base is this server's path for each resource.
        self.assertStatus(self.server.get(self.local(lp["resourceURL"]) + "/channelLifetime"),
                          200)
        r = self.server.request("POST", self.local(lp["callbackURL"]),
                                {"aNotification": {"marker": lp_id}})
        self.assertStatus(r, 204)
        r = self.server.request("POST", self.local(lp["channelData"]["channelURL"]),
                                {"longPollingRequestParameters": {}})
        self.assertStatus(r, 200)
        self.assertEqual(r.json()["notificationList"],
                         [{"aNotification": {"marker": lp_id}}])
        with RawWebSocket(self.server.host, self.server.port) as raw:
            raw.open(self.local(ws["channelData"]["channelURL"],
                                "wss://nc.example.org/base"))
        self.assertNotEqual(ws_id, lp_id)

    def test_other_user_ids_re_encoded(self):
        for user in ("acr:pseudonym123", "sip:a b@example.com", "acr:x/y?z#w%é"):
            with self.subTest(user=user):
                for channel_type in ("WebSockets", "LongPolling"):
                    r = self.create(user, {"channelType": channel_type})
                    ch = r.json()["notificationChannel"]
                    self.check_urls(ch, quote(user), channel_type)
                    self.assertStatus(self.server.get(self.local(ch["resourceURL"])), 200)


class ExpiryTest(ChannelHelpers, ServerTestCase):
    """Channels with a lifetime of one second."""

    server_config = {"channel_lifetime_min": 1, "channel_lifetime_default": 1}

    def db_count(self, sql, *args):
        # Read-only: the test looks at the server's database, never changes it.
        conn = sqlite3.connect("file:%s?mode=ro" % urllib.parse.quote(self.server.db),
                               uri=True, timeout=5)
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

    def test_expired_channel_refuses_refresh_poll_and_upgrade(self):
        # API.md 2: a channel past its lifetime is gone. Neither a refresh, a
        # new long poll nor a WebSocket upgrade brings it back or reaches it.
        # Each is the first request to touch its own channel after the end,
        # so each is refused on its own account (whether the expiry timer or
        # the request's own check got there first).
        user = new_tel()
        put_lp = self.created(user)
        put_ws = self.created(user, channelType="WebSockets")
        poll_lp = self.created(user)
        up_ws = self.created(user, channelType="WebSockets")
        every = (put_lp, put_ws, poll_lp, up_ws)
        self.assertEqual([ch["channelLifetime"] for ch in every], [1] * 4)
        # The list only filters by expiry (it removes nothing itself).
        wait_until(lambda: self.server.get(channels_path(user)).json()
                   ["notificationChannelList"]["notificationChannel"] == [],
                   10, "the channels to expire")

        # channelLifetime PUT, in JSON and in XML.
        r = self.server.request("PUT", self.path_of(put_lp["resourceURL"]) + "/channelLifetime",
                                {"notificationChannelLifetime": {"channelLifetime": 600}})
        self.assertServiceError(r, 404, "SVC3000")
        r = self.server.request("PUT", self.path_of(put_ws["resourceURL"]) + "/channelLifetime",
                                xml_doc("notificationChannelLifetime",
                                        "<channelLifetime>600</channelLifetime>"),
                                headers={"Content-Type": XML, "Accept": XML})
        self.assertStatus(r, 404)
        self.assertEqual(child_text(parse_xml(r).find("serviceException"), "messageId"),
                         "SVC3000")
        # A new long poll: 404 at once (not parked for maxWaitTime, 30 s).
        r = self.server.request("POST", self.path_of(poll_lp["channelData"]["channelURL"]),
                                {"longPollingRequestParameters": {}}, timeout=20)
        self.assertServiceError(r, 404, "SVC3000")
        # A WebSocket upgrade: refused, not upgraded.
        prefix = "ws://%s:%d" % (self.server.host, self.server.port)
        ws_url = up_ws["channelData"]["channelURL"]
        self.assertTrue(ws_url.startswith(prefix), ws_url)
        with RawWebSocket(self.server.host, self.server.port) as raw:
            r = raw.handshake(ws_url[len(prefix):])
            self.assertEqual(r.status, 404, r)
            self.assertIsNone(r.header("Sec-WebSocket-Accept"), r)

        # Nothing above brought a channel back: every resource of each is 404.
        refresh = {"notificationChannelLifetime": {"channelLifetime": 600}}
        for ch in every:
            path = self.path_of(ch["resourceURL"])
            with self.subTest(channel=path):
                self.assertServiceError(self.server.get(path), 404, "SVC3000")
                self.assertServiceError(self.server.get(path + "/channelLifetime"),
                                        404, "SVC3000")
                self.assertServiceError(self.server.request("PUT", path + "/channelLifetime",
                                                            refresh), 404, "SVC3000")
                self.assertServiceError(self.server.request("DELETE", path), 404, "SVC3000")
                channel_id = ch["resourceURL"].rsplit("/", 1)[1]
                self.assertEqual(self.db_count(
                    "SELECT count(*) FROM channels WHERE channel_id = ?", channel_id), 0)
        r = self.server.get(channels_path(user))
        self.assertEqual(r.json()["notificationChannelList"]["notificationChannel"], [])

    def test_timer_removes_expired_channels_without_any_request(self):
        lifetime = 3
        t0 = time.monotonic()
        ch = self.created(new_tel(), channelLifetime=lifetime)
        self.assertEqual(ch["channelLifetime"], lifetime)
        channel_id = ch["resourceURL"].rsplit("/", 1)[1]
        channels_left = lambda: self.db_count(
            "SELECT count(*) FROM channels WHERE channel_id = ?", channel_id)
        stored = lambda: self.db_count(
            "SELECT count(*) FROM outbox WHERE channel_id = ?", channel_id)
        r = self.server.request("POST", self.path_of(ch["callbackURL"]),
                                {"aNotification": {"n": 1}})
        if r.status == 404:
            self.skipTest("the machine is so slow the channel expired at once")
        self.assertStatus(r, 204)
        # Nobody polls, so the notification waits in the outbox: the row the
        # expiry must take with it. (Read from the database file, so the
        # server sees no request that could expire the channel itself.)
        before = stored()
        if channels_left() == 0:
            self.skipTest("the machine is so slow the channel expired before it was counted")
        self.assertEqual(before, 1, "the notification was not stored for the channel")
        wait_until(lambda: channels_left() == 0, lifetime + 10, "the expiry timer")
        # Not before its end (a lower bound; 0.1 s for wall vs monotonic clock).
        self.assertGreaterEqual(time.monotonic() - t0, lifetime - 0.1,
                                "the channel was removed before its lifetime ended")
        self.assertEqual(stored(), 0, "the expired channel's notification was kept")

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
