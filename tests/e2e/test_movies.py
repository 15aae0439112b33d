"""The movies API (API.md section 3) and GET /health (section 4), end to end.

One server for the whole file: each test that changes data works on movies
it creates itself, so the seeded films (and movie 1, which other files read)
stay as they were.
"""

import json
import re
import unittest
import uuid

from ncfixture import ServerTestCase, list_all_movies, quote

BASE = "/movies/v1"
MOVIES = BASE + "/movies"
FIELDS = ("movieId", "title", "premiereDate", "director", "genre",
          "lastModified", "resourceURL")
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def movie_doc(**fields):
    doc = {"title": "E2E " + uuid.uuid4().hex[:12], "premiereDate": "2024-02-29",
           "director": "Test Director", "genre": "Drama"}
    for k, v in fields.items():
        if v is _DROP:
            doc.pop(k, None)
        else:
            doc[k] = v
    return {"movie": doc}


_DROP = object()


class MoviesTest(ServerTestCase):

    # ---- helpers -----------------------------------------------------------

    def create(self, **fields):
        r = self.server.request("POST", MOVIES, movie_doc(**fields))
        self.assertStatus(r, 201, "create")
        return self.assertMovie(r.json())

    def assertMovie(self, doc):
        """The movie representation with every field, typed."""
        self.assertIn("movie", doc, doc)
        m = doc["movie"]
        self.assertIsInstance(m, dict, doc)
        for f in FIELDS:
            self.assertIn(f, m, "field %s missing in %r" % (f, doc))
        self.assertIsInstance(m["movieId"], int, doc)
        self.assertNotIsInstance(m["movieId"], bool, doc)
        for f in ("title", "premiereDate", "director", "genre", "lastModified",
                  "resourceURL"):
            self.assertIsInstance(m[f], str, "%s in %r" % (f, doc))
        self.assertRegex(m["premiereDate"], DATE_RE)
        self.assertEqual(m["resourceURL"],
                         self.server.url("%s/%d" % (MOVIES, m["movieId"])), doc)
        return m

    def get_movie(self, movie_id):
        r = self.server.get("%s/%d" % (MOVIES, movie_id))
        self.assertStatus(r, 200)
        return self.assertMovie(r.json())

    def list_movies(self, query):
        r = self.server.get(MOVIES + query)
        self.assertStatus(r, 200, "list " + query)
        doc = r.json()
        self.assertIn("movieList", doc, doc)
        lst = doc["movieList"]
        self.assertEqual(lst.get("resourceURL"), self.server.url(MOVIES), doc)
        # JSON rules: a repeatable element is always an array.
        self.assertIsInstance(lst.get("movie"), list, doc)
        for m in lst["movie"]:
            self.assertMovie({"movie": m})
        return lst["movie"]

    # ---- health ------------------------------------------------------------

    def test_health(self):
        r = self.server.get("/health")
        self.assertStatus(r, 200)
        self.assertTrue(r.header("Content-Type", "").startswith("application/json"),
                        r.headers)
        self.assertEqual(r.json().get("status"), "ok")

    # ---- read / list ---------------------------------------------------------

    def test_seeded_list_has_at_least_50_films(self):
        movies = list_all_movies(self.server)
        self.assertGreaterEqual(len(movies), 50)
        ids = [m["movieId"] for m in movies]
        self.assertEqual(len(ids), len(set(ids)), "paging repeated a movie")
        for m in movies:
            self.assertMovie({"movie": m})

    def test_get_movie(self):
        m = self.get_movie(1)
        self.assertEqual(m["movieId"], 1)
        self.assertTrue(m["title"])

    def test_get_response_headers(self):
        r = self.server.get(MOVIES + "/1")
        self.assertStatus(r, 200)
        self.assertTrue(r.header("Content-Type", "").startswith("application/json"))
        self.assertEqual(int(r.header("Content-Length")), len(r.body))
        self.assertIsNotNone(r.header("Date"))

    def test_unknown_movie_404(self):
        for method, body in (("GET", None), ("PUT", movie_doc()),
                             ("PATCH", {"movie": {"genre": "X"}}), ("DELETE", None)):
            with self.subTest(method=method):
                r = self.server.request(method, MOVIES + "/999999999", body)
                self.assertStatus(r, 404)

    def test_non_numeric_movie_id(self):
        r = self.server.get(MOVIES + "/abc")
        self.assertIn(r.status, (400, 404), r)

    def test_unknown_paths_404(self):
        for path in ("/nope", BASE + "/nope", "/movies/v2/movies", BASE,
                     MOVIES + "/1/extra", "/web/nope.js"):
            with self.subTest(path=path):
                self.assertStatus(self.server.get(path), 404)

    def test_list_limit_and_offset(self):
        first = self.list_movies("?limit=5&offset=0")
        second = self.list_movies("?limit=5&offset=5")
        both = self.list_movies("?limit=10&offset=0")
        self.assertEqual(len(first), 5)
        self.assertEqual(len(second), 5)
        ids1 = [m["movieId"] for m in first]
        ids2 = [m["movieId"] for m in second]
        self.assertFalse(set(ids1) & set(ids2), (ids1, ids2))
        self.assertEqual(ids1 + ids2, [m["movieId"] for m in both])
        one = self.list_movies("?limit=1")
        self.assertEqual(len(one), 1)
        self.assertEqual(one[0]["movieId"], ids1[0])
        far = self.list_movies("?limit=5&offset=100000")
        self.assertEqual(far, [])

    def test_list_bad_limit_or_offset_400(self):
        for query, field in (("?limit=abc", "limit"), ("?limit=-1", "limit"),
                             ("?limit=1.5", "limit"), ("?offset=abc", "offset"),
                             ("?offset=-3", "offset")):
            with self.subTest(query=query):
                r = self.server.get(MOVIES + query)
                self.assertServiceError(r, 400, "SVC0002", field)

    def test_list_title_filter(self):
        nonce = uuid.uuid4().hex[:10]
        a = self.create(title="Filter Alpha %s" % nonce)
        b = self.create(title="Filter Beta %s" % nonce)
        found = self.list_movies("?title=" + quote(a["title"]))
        ids = [m["movieId"] for m in found]
        self.assertIn(a["movieId"], ids)
        self.assertNotIn(b["movieId"], ids)
        for m in found:
            self.assertIn(a["title"].lower(), m["title"].lower())
        none = self.list_movies("?title=" + quote("no such film " + nonce))
        self.assertEqual(none, [])

    # ---- create ------------------------------------------------------------

    def test_create_201_location(self):
        doc = movie_doc(title="Amélie " + uuid.uuid4().hex[:8],
                        premiereDate="2001-04-25", director="Jean-Pierre Jeunet",
                        genre="Comedy")
        r = self.server.request("POST", MOVIES, doc)
        self.assertStatus(r, 201)
        m = self.assertMovie(r.json())
        for k, v in doc["movie"].items():
            self.assertEqual(m[k], v, k)
        self.assertEqual(r.header("Location"), m["resourceURL"])
        self.assertTrue(r.header("Content-Type", "").startswith("application/json"))
        got = self.get_movie(m["movieId"])
        self.assertEqual(got, m)

    def test_create_json_with_charset(self):
        body = json.dumps(movie_doc()).encode()
        r = self.server.request("POST", MOVIES, body,
                                {"Content-Type": "application/json; charset=utf-8"})
        self.assertStatus(r, 201)

    def test_create_validation_400(self):
        cases = [
            ("unknown field", movie_doc(rating=5), "rating"),
            ("title number", movie_doc(title=123), "title"),
            ("title null", movie_doc(title=None), "title"),
            ("date number", movie_doc(premiereDate=20230101), "premiereDate"),
            ("director array", movie_doc(director=["a"]), "director"),
            ("genre object", movie_doc(genre={"x": 1}), "genre"),
            ("empty title", movie_doc(title=""), "title"),
            ("missing title", movie_doc(title=_DROP), "title"),
            ("Feb 30", movie_doc(premiereDate="2023-02-30"), "premiereDate"),
            ("Feb 29 non-leap", movie_doc(premiereDate="2023-02-29"), "premiereDate"),
            ("month 13", movie_doc(premiereDate="2023-13-01"), "premiereDate"),
            ("day 0", movie_doc(premiereDate="2023-01-00"), "premiereDate"),
            ("short form", movie_doc(premiereDate="2023-1-5"), "premiereDate"),
            ("slashes", movie_doc(premiereDate="2023/01/05"), "premiereDate"),
            ("datetime", movie_doc(premiereDate="2023-01-05T00:00:00Z"), "premiereDate"),
            ("words", movie_doc(premiereDate="yesterday"), "premiereDate"),
            ("no movie root", {"film": movie_doc()["movie"]}, "movie"),
            ("empty object", {}, "movie"),
            ("movie is a string", {"movie": "Alien"}, "movie"),
        ]
        for name, doc, field in cases:
            with self.subTest(name):
                r = self.server.request("POST", MOVIES, doc)
                self.assertServiceError(r, 400, "SVC0002", field)

    def test_create_malformed_json_400(self):
        for body in (b'{"movie": {"title": ', b"not json", b"", b"[1,2",
                     b'{"movie": {}} trailing', b"\xff\xfe{}",
                     b"[" * 100000, b'{"a":' * 50000):
            with self.subTest(body=body[:30]):
                r = self.server.request("POST", MOVIES, body,
                                        {"Content-Type": "application/json"})
                self.assertServiceError(r, 400, "SVC0002", "movie")
        self.server.assert_running()

    def test_repeated_json_key_400_names_it(self):
        body = b'{"movie": {"title": "A", "premiereDate": "2020-01-01", "title": "B"}}'
        r = self.server.request("POST", MOVIES, body, {"Content-Type": "application/json"})
        self.assertServiceError(r, 400, "SVC0002", "title")
        m = self.create()
        r = self.server.request("PATCH", "%s/%d" % (MOVIES, m["movieId"]),
                                b'{"movie": {"genre": "X", "genre": "Y"}}',
                                {"Content-Type": "application/json"})
        self.assertServiceError(r, 400, "SVC0002", "genre")
        self.assertEqual(self.get_movie(m["movieId"]), m)

    def test_create_unsupported_content_type_415(self):
        body = json.dumps(movie_doc())
        for ctype in ("text/plain", "image/png", None):
            with self.subTest(ctype=ctype):
                headers = {"Content-Type": ctype} if ctype else {}
                r = self.server.request("POST", MOVIES, body, headers)
                self.assertStatus(r, 415)

    # ---- replace / change / delete ---------------------------------------------

    def test_put_replaces(self):
        m = self.create()
        new = movie_doc(title="Replaced " + uuid.uuid4().hex[:8], premiereDate="1999-12-31",
                        director="Someone Else", genre="Horror")
        r = self.server.request("PUT", "%s/%d" % (MOVIES, m["movieId"]), new)
        self.assertStatus(r, 200)
        got = self.assertMovie(r.json())
        for k, v in new["movie"].items():
            self.assertEqual(got[k], v, k)
        self.assertEqual(got["movieId"], m["movieId"])
        self.assertEqual(self.get_movie(m["movieId"]), got)

    def test_put_validation_400(self):
        m = self.create()
        path = "%s/%d" % (MOVIES, m["movieId"])
        cases = [("missing " + f, movie_doc(**{f: _DROP}), f)
                 for f in ("title", "premiereDate", "director", "genre")]
        cases += [("bad date", movie_doc(premiereDate="2023-02-30"), "premiereDate"),
                  ("empty title", movie_doc(title=""), "title"),
                  ("unknown field", movie_doc(budget=1), "budget"),
                  ("wrong type", movie_doc(genre=7), "genre"),
                  ("no root", {"film": {}}, "movie")]
        for name, doc, field in cases:
            with self.subTest(name):
                r = self.server.request("PUT", path, doc)
                self.assertServiceError(r, 400, "SVC0002", field)
        self.assertEqual(self.get_movie(m["movieId"]), m, "a refused PUT changed the movie")

    def test_put_patch_malformed_and_415(self):
        m = self.create()
        path = "%s/%d" % (MOVIES, m["movieId"])
        for method in ("PUT", "PATCH"):
            with self.subTest(method=method):
                r = self.server.request(method, path, b'{"movie": ',
                                        {"Content-Type": "application/json"})
                exc = self.assertServiceError(r, 400, "SVC0002", "movie")
                # The parser's position tells the client where to look.
                self.assertIn("at character", exc["variables"][0])
                r = self.server.request(method, path, json.dumps(movie_doc()),
                                        {"Content-Type": "text/plain"})
                self.assertStatus(r, 415)
        self.assertEqual(self.get_movie(m["movieId"]), m)

    def test_patch_single_field_leaves_others(self):
        m = self.create()
        path = "%s/%d" % (MOVIES, m["movieId"])
        r = self.server.request("PATCH", path, {"movie": {"genre": "Western"}})
        self.assertStatus(r, 200)
        got = self.assertMovie(r.json())
        self.assertEqual(got["genre"], "Western")
        for f in ("movieId", "title", "premiereDate", "director", "resourceURL"):
            self.assertEqual(got[f], m[f], f)
        self.assertEqual(self.get_movie(m["movieId"]), got)
        r = self.server.request("PATCH", path, {"movie": {"premiereDate": "2020-01-01"}})
        self.assertStatus(r, 200)
        got2 = self.assertMovie(r.json())
        self.assertEqual(got2["premiereDate"], "2020-01-01")
        self.assertEqual(got2["genre"], "Western")
        self.assertEqual(got2["title"], m["title"])
        self.assertEqual(got2["director"], m["director"])

    def test_patch_validation_400(self):
        m = self.create()
        path = "%s/%d" % (MOVIES, m["movieId"])
        for name, doc, field in (
                ("bad date", {"movie": {"premiereDate": "2023-02-30"}}, "premiereDate"),
                ("empty title", {"movie": {"title": ""}}, "title"),
                ("unknown field", {"movie": {"rating": 3}}, "rating"),
                ("wrong type", {"movie": {"director": 5}}, "director"),
                ("no root", {"genre": "X"}, "movie")):
            with self.subTest(name):
                r = self.server.request("PATCH", path, doc)
                self.assertServiceError(r, 400, "SVC0002", field)
        self.assertEqual(self.get_movie(m["movieId"]), m, "a refused PATCH changed the movie")

    def test_last_modified_moves_on_every_change(self):
        m = self.create()
        path = "%s/%d" % (MOVIES, m["movieId"])
        seen = [m["lastModified"]]
        changes = [
            ("PATCH", {"movie": {"title": m["title"] + " 2"}}),
            # Two quick changes in a row: no pause between them.
            ("PATCH", {"movie": {"title": m["title"] + " 3"}}),
            ("PATCH", {"movie": {"genre": "Noir"}}),
            ("PUT", movie_doc(title=m["title"] + " 4")),
            ("PUT", movie_doc(title=m["title"] + " 5")),
        ]
        for method, doc in changes:
            r = self.server.request(method, path, doc)
            self.assertStatus(r, 200, method)
            lm = self.assertMovie(r.json())["lastModified"]
            self.assertNotIn(lm, seen, "lastModified did not move after %s %r: %r"
                             % (method, doc, seen))
            self.assertEqual(self.get_movie(m["movieId"])["lastModified"], lm)
            seen.append(lm)

    def test_delete_204(self):
        m = self.create()
        path = "%s/%d" % (MOVIES, m["movieId"])
        r = self.server.request("DELETE", path)
        self.assertStatus(r, 204)
        self.assertEqual(r.body, b"")
        self.assertStatus(self.server.get(path), 404)
        self.assertStatus(self.server.request("DELETE", path), 404)
        ids = [x["movieId"] for x in list_all_movies(self.server)]
        self.assertNotIn(m["movieId"], ids)

    def test_created_movie_is_listed(self):
        m = self.create()
        ids = [x["movieId"] for x in list_all_movies(self.server)]
        self.assertIn(m["movieId"], ids)

    # ---- methods -----------------------------------------------------------

    def test_405_allow(self):
        for method, path, allow in (
                ("PUT", MOVIES, "GET, POST"),
                ("PATCH", MOVIES, "GET, POST"),
                ("DELETE", MOVIES, "GET, POST"),
                ("POST", MOVIES + "/1", "GET, PUT, PATCH, DELETE")):
            with self.subTest(method=method, path=path):
                body = movie_doc() if method != "DELETE" else None
                r = self.server.request(method, path, body)
                self.assertStatus(r, 405)
                self.assertEqual(r.header("Allow"), allow)
        self.get_movie(1)


if __name__ == "__main__":
    unittest.main()
