"""Helpers for the movie subscription and notification tests (issue 5;
API.md section 3): movies made for a test, subscriptions in JSON and XML,
and notifications read out of what a channel delivers (a WebSocket frame or
a long-poll answer), in either format, as one plain dict so a test states
what it expects once.

Every subscription a test makes carries its own callbackData, so a
notification names the subscription it was sent for whatever else the
shared server is doing.
"""

import time
import uuid
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape

from delivery_util import NC_NS, XML, DeliveryHelpers, local
from ncfixture import SLOW, quote

MOVIES = "/movies/v1/movies"
MV_NS = "urn:ncserver:xml:movies:1"
COMMON_NS = "urn:oma:xml:rest:netapi:common:1"
MOVIE_FIELDS = ("movieId", "title", "premiereDate", "director", "genre",
                "lastModified", "resourceURL")


def subscriptions_path(user):
    return "/movies/v1/%s/subscriptions" % quote(user)


def new_tag(prefix="s"):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:10])


def movie_doc(**fields):
    doc = {"title": "Sub E2E " + uuid.uuid4().hex[:10], "premiereDate": "2026-05-01",
           "director": "Test Director", "genre": "Drama"}
    doc.update(fields)
    return {"movie": doc}


def subscription_doc(notify_url, callback_data=None, fmt="JSON", movie_ids=None,
                     correlator=None, duration=None):
    """A movieSubscription in JSON; None leaves an element out."""
    ref = {"notifyURL": notify_url, "notificationFormat": fmt}
    if callback_data is not None:
        ref["callbackData"] = callback_data
    sub = {"callbackReference": ref}
    if movie_ids is not None:
        sub["filter"] = {"movieId": list(movie_ids)}
    if correlator is not None:
        sub["clientCorrelator"] = correlator
    if duration is not None:
        sub["duration"] = duration
    return {"movieSubscription": sub}


def subscription_xml(notify_url, callback_data=None, fmt="XML", movie_ids=None,
                     correlator=None, duration=None):
    """The same in XML: root mv:movieSubscription, children unqualified (as
    in the OMA schemas), a repeated movieId per filtered movie."""
    parts = ["<callbackReference><notifyURL>%s</notifyURL>" % escape(notify_url)]
    if callback_data is not None:
        parts.append("<callbackData>%s</callbackData>" % escape(callback_data))
    parts.append("<notificationFormat>%s</notificationFormat></callbackReference>" % fmt)
    if movie_ids is not None:
        parts.append("<filter>%s</filter>" % "".join(
            "<movieId>%s</movieId>" % m for m in movie_ids))
    if correlator is not None:
        parts.append("<clientCorrelator>%s</clientCorrelator>" % escape(correlator))
    if duration is not None:
        parts.append("<duration>%s</duration>" % duration)
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<mv:movieSubscription xmlns:mv="%s">%s</mv:movieSubscription>'
            % (MV_NS, "".join(parts)))


def parse_xml(resp):
    try:
        return ET.fromstring(resp.body)
    except ET.ParseError as e:
        raise AssertionError("response is not XML (%s): %r" % (e, resp.body[:500]))


def child(el, name):
    """The first child with local name `name` (any namespace), or None."""
    return next((c for c in el if local(c.tag) == name), None)


def children(el, name):
    return [c for c in el if local(c.tag) == name]


def text_of(el, name):
    c = child(el, name)
    return None if c is None else (c.text or "")


def xml_subscription(el):
    """An XML movieSubscription element as the JSON dict would be (numbers
    as numbers), for comparing the two forms."""
    out = {}
    ref = child(el, "callbackReference")
    if ref is not None:
        out["callbackReference"] = {local(c.tag): (c.text or "") for c in ref}
    flt = child(el, "filter")
    if flt is not None:
        out["filter"] = {"movieId": [int(c.text) for c in children(flt, "movieId")]}
    for name in ("clientCorrelator", "resourceURL"):
        if child(el, name) is not None:
            out[name] = text_of(el, name)
    if child(el, "duration") is not None:
        out["duration"] = int(text_of(el, "duration"))
    return out


def wait_until(predicate, timeout, what):
    """Polls `predicate` until true (timeout times SLOW); returns its value."""
    deadline = time.monotonic() + timeout * SLOW
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.1f s waiting for %s"
                                 % (timeout * SLOW, what))
        time.sleep(0.05)


# --------------------------------------------------------------------------
# Notifications, JSON or XML, as one dict


def _xml_movie(el):
    return {local(c.tag): (c.text or "") for c in el}


def _xml_link(el):
    """<link rel=".." href=".."/> (OMA common:Link, attributes) or, should
    the server write them so, child elements."""
    if el is None:
        return None
    if el.get("rel") is not None or el.get("href") is not None:
        return {"rel": el.get("rel"), "href": el.get("href")}
    return {local(c.tag): (c.text or "") for c in el}


def _xml_changed(el):
    out = []
    for c in children(el, "changedFields"):
        if len(c):
            out.extend((g.text or "") for g in c)
        else:
            out.append(c.text or "")
    return out


def normalize(fmt, name, body):
    """One delivered notification as a dict: fmt, root (local name), ns
    (XML only), callbackData, eventType, movie, changedFields, previous,
    link, raw. XML values stay text (movieId "12"); JSON values as sent."""
    if fmt == "json":
        if not isinstance(body, dict):
            raise AssertionError("notification body is not an object: %r" % (body,))
        return {"fmt": "json", "root": name, "ns": None,
                "callbackData": body.get("callbackData"),
                "eventType": body.get("eventType"), "movie": body.get("movie"),
                "changedFields": body.get("changedFields"),
                "previous": body.get("previous"), "link": body.get("link"),
                "raw": body}
    el = body
    ns = el.tag[1:].split("}", 1)[0] if el.tag.startswith("{") else None
    movie = child(el, "movie")
    prev = child(el, "previous")
    return {"fmt": "xml", "root": local(el.tag), "ns": ns,
            "callbackData": text_of(el, "callbackData"),
            "eventType": text_of(el, "eventType"),
            "movie": None if movie is None else _xml_movie(movie),
            "changedFields": _xml_changed(el),
            "previous": None if prev is None else _xml_movie(prev),
            "link": _xml_link(child(el, "link")),
            "raw": ET.tostring(el, encoding="unicode")}


def from_delivered(d):
    """The notifications of one wsclient.Delivered (a WebSocket message)."""
    if d.root != "notificationList":
        raise AssertionError("a WebSocket message that is not a notificationList: %r" % d)
    return [normalize(d.fmt, name, body) for name, body in d.items]


def from_poll_items(items, fmt):
    """The notifications of delivery_util.items_of() on a poll answer."""
    out = []
    for root, _, item in items:
        body = item[root] if fmt == "json" else item
        out.append(normalize(fmt, root, body))
    return out


def as_text(movie):
    """A JSON movie with every value as XML would carry it (text)."""
    return {k: ("" if v is None else str(v)) for k, v in movie.items()}


class MovieHelpers(DeliveryHelpers):
    """Movies, subscriptions and received notifications (a mixin for a
    ServerTestCase; DeliveryHelpers gives channels and polls)."""

    # ---- movies ------------------------------------------------------------

    def create_movie(self, **fields):
        r = self.server.request("POST", MOVIES, movie_doc(**fields))
        self.assertStatus(r, 201, "create a movie")
        return r.json()["movie"]

    def movie_path(self, movie):
        return "%s/%d" % (MOVIES, movie["movieId"])

    def patch_movie(self, movie, **fields):
        r = self.server.request("PATCH", self.movie_path(movie), {"movie": fields})
        self.assertStatus(r, 200, "PATCH %r" % fields)
        return r.json()["movie"]

    def put_movie(self, movie, **fields):
        doc = {k: movie[k] for k in ("title", "premiereDate", "director", "genre")}
        doc.update(fields)
        r = self.server.request("PUT", self.movie_path(movie), {"movie": doc})
        self.assertStatus(r, 200, "PUT %r" % doc)
        return r.json()["movie"]

    def delete_movie(self, movie):
        r = self.server.request("DELETE", self.movie_path(movie))
        self.assertStatus(r, 204, "DELETE movie")

    # ---- channels ----------------------------------------------------------

    def channel(self, channel_type="WebSockets", user=None, **kw):
        """A channel that is deleted when the test ends (its subscriptions
        and queued notifications with it)."""
        ch = self.create_channel(channel_type, user=user, **kw)
        self.addCleanup(self.server.request, "DELETE", ch["path"])
        return ch

    # ---- subscriptions -----------------------------------------------------

    def subscribe(self, ch, callback_data=None, fmt="JSON", movie_ids=None, user=None,
                  correlator=None, duration=None, status=201):
        """Creates a subscription (JSON request) whose notifyURL is the
        channel's callbackURL; returns the movieSubscription plus `path`,
        `id` and `user`."""
        user = user or ch["user"]
        doc = subscription_doc(ch["callbackURL"], callback_data, fmt, movie_ids,
                               correlator, duration)
        r = self.server.request("POST", subscriptions_path(user), doc)
        self.assertStatus(r, status, "create subscription %r" % doc)
        sub = r.json()["movieSubscription"]
        if status == 201:
            self.assertEqual(r.header("Location"), sub.get("resourceURL"), sub)
        sub["user"] = user
        sub["path"] = self.path_of(sub["resourceURL"])
        sub["id"] = sub["resourceURL"].rsplit("/", 1)[1]
        return sub

    def subscribe_xml(self, ch, callback_data=None, fmt="XML", movie_ids=None, user=None,
                      correlator=None, duration=None):
        """The same with an XML request and answer; returns the subscription
        as a dict (xml_subscription) plus `path`, `id`, `user`, `element`."""
        user = user or ch["user"]
        body = subscription_xml(ch["callbackURL"], callback_data, fmt, movie_ids,
                                correlator, duration)
        r = self.server.request("POST", subscriptions_path(user), body,
                                headers={"Content-Type": XML, "Accept": XML})
        self.assertStatus(r, 201, "create subscription (XML) %s" % body)
        self.assertEqual(r.header("Content-Type"), XML)
        root = parse_xml(r)
        self.assertEqual(root.tag, "{%s}movieSubscription" % MV_NS, r.body)
        sub = xml_subscription(root)
        self.assertEqual(r.header("Location"), sub.get("resourceURL"), r.body)
        sub["element"] = root
        sub["user"] = user
        sub["path"] = self.path_of(sub["resourceURL"])
        sub["id"] = sub["resourceURL"].rsplit("/", 1)[1]
        return sub

    # ---- what a client receives ----------------------------------------------

    def ws_receive(self, client, count, timeout=10.0):
        """Notifications from a wsclient.WsClient until `count` came; fails
        on more in the last message."""
        got = []
        deadline = time.monotonic() + timeout * SLOW
        while len(got) < count:
            left = deadline - time.monotonic()
            if left <= 0:
                self.fail("%d of %d notifications within %.1f s: %r"
                          % (len(got), count, timeout * SLOW, got))
            try:
                d = client.recv_delivered(left / SLOW)
            except AssertionError as e:  # NoMessage is one
                self.fail("%d of %d notifications: %s; got %r" % (len(got), count, e, got))
            if d.fmt == "xml":
                self.assertEqual(d.ns, NC_NS, "an XML notificationList: %r" % d)
            got.extend(from_delivered(d))
        self.assertEqual(len(got), count, "more notifications than expected: %r" % got)
        return got

    def poll_receive(self, ch, count, fmt="json", timeout=10.0):
        """Notifications from long polls on `ch` until `count` came."""
        got = []
        deadline = time.monotonic() + timeout * SLOW
        while len(got) < count:
            if time.monotonic() > deadline:
                self.fail("%d of %d notifications within %.1f s: %r"
                          % (len(got), count, timeout * SLOW, got))
            got.extend(from_poll_items(self.polled(ch, fmt), fmt))
        self.assertEqual(len(got), count, "more notifications than expected: %r" % got)
        return got

    def assertNotification(self, n, sub, event, movie, changed=None, previous=None):
        """`n` is the notification of `event` for `sub` about `movie` (the
        JSON movie after the change, as the movies API answered it)."""
        self.assertEqual(n["root"], "movieNotification", n)
        if n["fmt"] == "xml":
            self.assertEqual(n["ns"], MV_NS, n)
        cbd = sub["callbackReference"].get("callbackData")
        self.assertEqual(n["callbackData"], cbd, n)
        self.assertEqual(n["eventType"], event, n)
        self.assertIsNotNone(n["movie"], n)
        want = movie if n["fmt"] == "json" else as_text(movie)
        self.assertEqual(n["movie"], want, n)
        if changed is not None:
            self.assertEqual(n["changedFields"], changed, n)
        if previous is not None:
            self.assertEqual(n["previous"], previous, n)
        self.assertEqual(n["link"], {"rel": "MovieSubscription",
                                     "href": sub["resourceURL"]}, n)
