"""Every example request of the OMA NC spec's section 6, Appendix C and
Appendix D, sent to the real server (fixtures cut from the spec text in
spec/fixtures/nc/), with the status and the elements of the response
checked against the spec's own response example.

A request is sent as printed but for three typographic repairs, made by
fixture(). Each undoes how the PDF typeset the example, never what the
example says, and each is needed because the example as printed is not
the document the spec means:

- The XML notificationChannel requests (6.1.5.1-6.1.5.8) break the line
  inside the xsi namespace name, after "http://www.w3.org/2001/XMLSchema-";
  the line break is removed. As printed, XML attribute-value normalisation
  makes the break a space, "XMLSchema- instance" names no namespace of XML
  Schema, and xsi:type would not be the XSI attribute.
- D.3 is printed with typographic quotes (“appId”: “x-wap-application:wml.ua”);
  U+201C and U+201D become the ASCII quote U+0022. As printed it is not
  JSON at all (spec/codec/representation_spec.lua checks that the server
  refuses it with 400 SVC0001 rather than failing).
- The form requests C.1.1-C.1.3 print each parameter on a line of its own,
  after its "&"; those line breaks are removed, and so is the line end
  that closes every form fixture (C.2.x too). As printed, every name after
  the first, and the last value, would hold a line break.

Nothing else is repaired: the trailing commas of the JSON examples, the
URLs wrapped inside XML elements and the numbers written as strings go as
printed. Two changes are not typographic, and are made for the test's own
sake: test_creates puts the example's name before each clientCorrelator,
and create() gives D.2 a fresh one, because the examples share correlators
("123", "987") and on one server a later example would get the earlier
one's channel with 200.

Channel management: 6.1-6.2, 6.4, C.1, D.1-D.11, D.16-D.17. Long polling
(6.3.5.1-6.3.5.4, C.2.1-C.2.2, D.12-D.15): the enabler POSTs to the
channel's callbackURL the very notifications the example's response shows
(the response example: XML as printed, JSON repaired as
spec/fixtures/nc_fixtures.lua repairs it), then the example's poll request,
as printed, is sent to the channelURL and must return them.

Where our answer differs from the example's status on purpose, the case
says why (API.md 2: OMAPush and NativeChannel are refused with POL1023;
6.1.5.7/D.8 show a server that does not serve LongPolling, ours does).
Where our body differs in shape on purpose, the case says so too: a single
notification comes in a notificationList (6.3.5.4, C.2.2, D.15 show one
sent bare; 6.3 allows either, API.md 2 always wraps), and an empty list is
JSON [] (D.14 prints null; API.md 2: repeated elements are arrays).

Run verbosely, the test prints one line per example; that table goes into
the closing note of the issue."""
import json
import os
import re
import unittest
import xml.etree.ElementTree as ET

from ncfixture import ServerTestCase, SOURCE_DIR

FIXTURES = os.path.join(SOURCE_DIR, "spec", "fixtures", "nc")
USER = "tel%3A%2B19585550100"
ACR_USER = "acr%3Apseudonym123"
BASE = "/notificationchannel/v1"


def fixture(name):
    """The example as printed, less the three artefacts of the PDF's
    typesetting the module docstring lists: the line break in the xsi
    namespace name after "XMLSchema-" (6.1.5.x requests), typographic
    quotes (D.3), and the line breaks after each '&' of a form body (C.1.x).
    The examples' trailing commas in JSON are kept: the server accepts
    them."""
    with open(os.path.join(FIXTURES, name), encoding="utf-8") as f:
        text = f.read()
    text = text.replace("XMLSchema-\ninstance", "XMLSchema-instance")
    text = text.replace("\u201c", '"').replace("\u201d", '"')
    if name.endswith(".form"):
        text = re.sub(r"&\s+", "&", text.strip())
    return text


def xml_paths(text):
    root = ET.fromstring(text.encode("utf-8"))
    paths = set()

    def walk(el, prefix):
        for child in el:
            tag = child.tag.split("}")[-1]
            path = prefix + "/" + tag
            paths.add(path)
            walk(child, path)
    walk(root, root.tag.split("}")[-1])
    return paths


def repaired_json(name):
    """A JSON example as data, repaired as spec/fixtures/nc_fixtures.lua
    repairs it: typographic quotes, trailing commas, and line breaks inside
    strings (URLs wrapped by the PDF) go."""
    text = fixture(name)
    text = re.sub(r",(\s*[}\]])", r"\1", text)
    out, in_string, i = [], False, 0
    while i < len(text):
        c = text[i]
        if in_string and c == "\\":
            out.append(text[i:i + 2])
            i += 2
            continue
        if c == '"':
            in_string = not in_string
        if not (in_string and c == "\n"):
            out.append(c)
        i += 1
    return "".join(out)


def json_paths(value, prefix=""):
    paths = set()
    if isinstance(value, dict):
        for k, v in value.items():
            path = prefix + "/" + k if prefix else k
            paths.add(path)
            paths |= json_paths(v, path)
    elif isinstance(value, list):
        for v in value:
            paths |= json_paths(v, prefix)
    return paths


def documented_paths(name):
    text = fixture(name)
    if name.endswith(".json"):
        return json_paths(json.loads(re.sub(r",(\s*[}\]])", r"\1", text), strict=False))
    return xml_paths(text)


CONTENT_TYPES = {"xml": "application/xml", "json": "application/json",
                 "form": "application/x-www-form-urlencoded"}

# (example, request fixture, user, expected status, response fixture, why)
CREATES = [
    ("6.1.5.1", "6.1.5.1-request.xml", USER, 201, "6.1.5.1-response.xml", ""),
    ("6.1.5.2", "6.1.5.2-request.xml", USER, 403, None, "OMAPush: POL1023 (API.md 2)"),
    ("6.1.5.3", "6.1.5.3-request.xml", USER, 403, None, "OMAPush: POL1023 (API.md 2)"),
    ("6.1.5.4", "6.1.5.4-request.xml", USER, 403, None, "OMAPush: POL1023 (API.md 2)"),
    ("6.1.5.5", "6.1.5.5-request.xml", ACR_USER, 201, "6.1.5.5-response.xml", ""),
    ("6.1.5.6", "6.1.5.6-request.xml", USER, 201, "6.1.5.6-response.xml", ""),
    ("6.1.5.7", "6.1.5.7-request.xml", USER, 201, "6.1.5.1-response.xml",
     "example server lacks LongPolling; ours serves it"),
    ("6.1.5.8", "6.1.5.8-request.xml", USER, 403, None, "NativeChannel: POL1023 (API.md 2)"),
    ("C.1.1", "C.1.1-request.form", USER, 201, "C.1.1-response.xml", ""),
    ("C.1.2", "C.1.2-request.form", USER, 403, None, "OMAPush: POL1023 (API.md 2)"),
    ("C.1.3", "C.1.3-request.form", ACR_USER, 201, "C.1.3-response.xml", ""),
    ("D.2", "D.2-request.json", USER, 201, "D.2-response.json", ""),
    ("D.3", "D.3-request.json", USER, 403, None, "OMAPush: POL1023 (API.md 2)"),
    ("D.4", "D.4-request.json", USER, 403, None, "OMAPush: POL1023 (API.md 2)"),
    ("D.5", "D.5-request.json", USER, 403, None, "OMAPush: POL1023 (API.md 2)"),
    ("D.6", "D.6-request.json", ACR_USER, 201, "D.6-response.json", ""),
    ("D.7", "D.7-request.json", USER, 201, "D.7-response.json", ""),
    ("D.8", "D.8-request.json", USER, 201, "D.2-response.json",
     "example server lacks LongPolling; ours serves it"),
    ("D.9", "D.9-request.json", USER, 403, None, "NativeChannel: POL1023 (API.md 2)"),
]

# Long polls: (example, request fixture, notifications the enabler sends
# (the response example itself) or None, response fixture, why ours differs)
POLLS = [
    ("6.3.5.1", "6.3.5.1-request.xml", "6.3.5.1-response.xml", "6.3.5.1-response.xml", ""),
    ("6.3.5.2", "6.3.5.2-request.xml", "6.3.5.2-response.xml", "6.3.5.2-response.xml", ""),
    ("6.3.5.3", "6.3.5.3-request.xml", None, "6.3.5.3-response.xml", ""),
    ("6.3.5.4", "6.3.5.4-request.xml", "6.3.5.4-response.xml", "6.3.5.4-response.xml",
     "one notification, in a notificationList (API.md 2)"),
    ("C.2.1", "C.2.1-request.form", "C.2.1-response.xml", "C.2.1-response.xml", ""),
    ("C.2.2", "C.2.2-request.form", "C.2.2-response.xml", "C.2.2-response.xml",
     "one notification, in a notificationList (API.md 2)"),
    ("D.12", "D.12-request.json", "D.12-response.json", "D.12-response.json",
     "the list as an array (API.md 2)"),
    ("D.13", "D.13-request.json", "D.13-response.json", "D.13-response.json", ""),
    ("D.14", "D.14-request.json", None, "D.14-response.json",
     '"notificationList": [] for null (API.md 2)'),
    ("D.15", "D.15-request.json", "D.15-response.json", "D.15-response.json",
     "one notification, in a notificationList (API.md 2)"),
]

RESULTS = []
CORRELATORS = iter(range(1, 1000000))


def record(example, status, note=""):
    RESULTS.append("%-8s %s %s" % (example, status, note))


class SpecExamplesTest(ServerTestCase):

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        print("\nspec examples:\n" + "\n".join(RESULTS))

    def post(self, user, body, kind):
        accept = "application/json" if kind == "json" else "application/xml"
        return self.server.request(
            "POST", "%s/%s/channels" % (BASE, user), body=body.encode("utf-8"),
            headers={"Content-Type": CONTENT_TYPES[kind], "Accept": accept})

    def assertHasDocumentedElements(self, resp, response_fixture, except_for=()):
        ours = json_paths(resp.json()) if response_fixture.endswith(".json") \
            else xml_paths(resp.body.decode("utf-8"))
        missing = documented_paths(response_fixture) - ours - set(except_for)
        self.assertEqual(missing, set(), "elements of %s missing from %r"
                         % (response_fixture, resp.body[:600]))

    def test_creates(self):
        for example, request, user, status, response, why in CREATES:
            with self.subTest(example=example):
                kind = request.rsplit(".", 1)[1]
                # A clientCorrelator shared by examples would make the later
                # ones answer 200 with the earlier channel.
                body = fixture(request)
                body = re.sub(r"(<clientCorrelator>|\"clientCorrelator\": \"|clientCorrelator=)(\w+)",
                              lambda m: m.group(1) + example.replace(".", "-") + "-" + m.group(2),
                              body)
                r = self.post(user, body, kind)
                self.assertStatus(r, status, example)
                if status == 201:
                    self.assertIsNotNone(r.header("Location"))
                    self.assertHasDocumentedElements(r, response)
                elif status == 403:
                    exc = r.json()["requestError"]["policyException"] \
                        if kind == "json" else None
                    if exc is not None:
                        self.assertEqual(exc["messageId"], "POL1023")
                    else:
                        self.assertIn(b"POL1023", r.body)
                record(example, r.status, why)

    def create(self, user=USER, kind="json"):
        r = self.post(user, fixture("D.2-request.json").replace('"123"', '"c%d"' % next(CORRELATORS)), "json")
        self.assertStatus(r, 201)
        return r.json()["notificationChannel"]["resourceURL"].split(BASE, 1)[1]

    def test_list(self):
        self.create()
        r = self.server.request("GET", "%s/%s/channels" % (BASE, USER),
                                headers={"Accept": "application/xml"})
        self.assertStatus(r, 200)
        # appId belongs to the example's OMAPush channel, which we refuse.
        self.assertHasDocumentedElements(r, "6.1.3.1-response.xml", except_for=[
            "notificationChannelList/notificationChannel/channelData/appId"])
        record("6.1.3.1", r.status)
        r = self.server.request("GET", "%s/%s/channels" % (BASE, USER),
                                headers={"Accept": "application/json"})
        self.assertStatus(r, 200)
        self.assertHasDocumentedElements(r, "D.1-response.json", except_for=[
            "notificationChannelList/notificationChannel/channelData/appId"])
        record("D.1", r.status)

    def test_read_and_delete(self):
        for example, accept, response in (("6.2.3.1", "application/xml", "6.2.3.1-response.xml"),
                                          ("D.10", "application/json", "D.10-response.json")):
            path = BASE + self.create()
            r = self.server.request("GET", path, headers={"Accept": accept})
            self.assertStatus(r, 200)
            self.assertHasDocumentedElements(r, response)
            record(example, r.status)
        for example in ("6.2.6.1", "D.11"):
            path = BASE + self.create()
            r = self.server.request("DELETE", path)
            self.assertStatus(r, 204)
            self.assertEqual(self.server.get(path).status, 404)
            record(example, r.status)

    def test_lifetime(self):
        path = BASE + self.create() + "/channelLifetime"
        for example, accept, response in (("6.4.3.1", "application/xml", "6.4.3.1-response.xml"),
                                          ("D.16", "application/json", "D.16-response.json")):
            r = self.server.request("GET", path, headers={"Accept": accept})
            self.assertStatus(r, 200)
            self.assertHasDocumentedElements(r, response)
            record(example, r.status)
        for example, request, kind, response in (
                ("6.4.4.1", "6.4.4.1-request.xml", "xml", "6.4.4.1-response.xml"),
                ("D.17", "D.17-request.json", "json", "D.17-response.json")):
            r = self.server.request("PUT", path, body=fixture(request).encode("utf-8"),
                                    headers={"Content-Type": CONTENT_TYPES[kind],
                                             "Accept": CONTENT_TYPES[kind]})
            self.assertStatus(r, 200)
            self.assertHasDocumentedElements(r, response)
            record(example, r.status)

    # ---- long polling (6.3.5, C.2, D.12-D.15) ------------------------------

    def poll_channel(self):
        """A LongPolling channel of USER that takes the longest example (three
        notifications) in one list and waits 1 s when nothing is pending."""
        r = self.server.request(
            "POST", "%s/%s/channels" % (BASE, USER),
            {"notificationChannel": {"channelType": "LongPolling",
                                     "channelData": {"maxNotifications": 10,
                                                     "maxWaitTime": 1}}})
        self.assertStatus(r, 201)
        ch = r.json()["notificationChannel"]
        base = self.server.base_url
        return (ch["callbackURL"][len(base):], ch["channelData"]["channelURL"][len(base):])

    def expected_notifications(self, response):
        """The notifications an example's response shows, in order, as the
        local names of their roots; and, for JSON, their bodies."""
        if response.endswith(".json"):
            doc = json.loads(repaired_json(response))
            if "notificationList" in doc:
                # null for none (D.14), an object for one (D.12), or an array.
                lst = doc["notificationList"]
                items = [] if lst is None else [lst] if isinstance(lst, dict) else lst
            else:
                items = [doc]  # D.15: one notification, bare
            return [next(iter(i)) for i in items], items
        root = ET.fromstring(fixture(response).encode("utf-8"))
        if root.tag.split("}")[-1] == "notificationList":
            return [c.tag.split("}")[-1] for c in root], None
        return [root.tag.split("}")[-1]], None

    def test_long_polls(self):
        for example, request, sent, response, why in POLLS:
            with self.subTest(example=example):
                kind = request.rsplit(".", 1)[1]
                accept = "application/json" if kind == "json" else "application/xml"
                callback, channel_url = self.poll_channel()
                if sent is not None:
                    # The enabler sends what the example delivers.
                    body = repaired_json(sent) if sent.endswith(".json") else fixture(sent)
                    ctype = CONTENT_TYPES[sent.rsplit(".", 1)[1]]
                    r = self.server.request("POST", callback, body.encode("utf-8"),
                                            headers={"Content-Type": ctype})
                    self.assertStatus(r, 204, "%s: callback" % example)
                r = self.server.request("POST", channel_url, fixture(request).encode("utf-8"),
                                        headers={"Content-Type": CONTENT_TYPES[kind],
                                                 "Accept": accept}, timeout=15)
                self.assertStatus(r, 200, example)
                self.assertEqual(r.header("Content-Type"), accept, example)
                roots, bodies = self.expected_notifications(response)
                if kind == "json":
                    doc = r.json()
                    self.assertEqual(list(doc), ["notificationList"], doc)
                    self.assertIsInstance(doc["notificationList"], list, doc)
                    if bodies is not None:
                        # JSON in, JSON out: the notifications unchanged.
                        self.assertEqual(doc["notificationList"], bodies, example)
                    ours = json_paths(doc)
                    theirs = json_paths(json.loads(repaired_json(response)))
                else:
                    root = ET.fromstring(r.body)
                    self.assertEqual(root.tag, "{urn:oma:xml:rest:netapi:notificationchannel:1}"
                                     "notificationList", r.body[:300])
                    self.assertEqual([c.tag.split("}")[-1] for c in root], roots, example)
                    ours = xml_paths(r.body.decode("utf-8"))
                    theirs = documented_paths(response)
                if roots and not any(p == "notificationList" or p.startswith("notificationList/")
                                     for p in theirs):
                    # The example sends its one notification bare; ours wraps it.
                    theirs = {"notificationList/" + p for p in theirs} | {"notificationList"}
                if response.endswith(".xml"):  # xml_paths leaves out the root itself
                    theirs.discard("notificationList")
                self.assertEqual(theirs - ours, set(), "elements of %s missing from %r"
                                 % (response, r.body[:600]))
                if not roots:
                    self.assertEqual(ours, {"notificationList"} if kind == "json" else set(),
                                     r.body)
                record(example, r.status, why)


if __name__ == "__main__":
    unittest.main()
