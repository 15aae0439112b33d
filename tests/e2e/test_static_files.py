"""res.file end to end: the core serves files from the web directory with
their type and validators, answers conditional requests with 304, and never
serves anything outside the directory or hidden in it (the scripts' own
fallback answers instead). Runs tests/e2e/scripts_probe/, whose /file route
asks for the file named in ?name=."""
import os
import shutil
import tempfile
import unittest
import urllib.parse

from ncfixture import ServerTestCase, build_request

PROBE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "scripts_probe")
WEB = tempfile.mkdtemp(prefix="nc-web-")
OUTSIDE = tempfile.mkdtemp(prefix="nc-outside-")


def setUpModule():
    with open(os.path.join(WEB, "index.html"), "w") as f:
        f.write("<!doctype html><title>t</title>\n")
    os.mkdir(os.path.join(WEB, "js"))
    with open(os.path.join(WEB, "js", "app.js"), "w") as f:
        f.write("console.log('app');\n")
    with open(os.path.join(WEB, ".secret"), "w") as f:
        f.write("hidden\n")
    with open(os.path.join(OUTSIDE, "passwd"), "w") as f:
        f.write("root:x:0:0\n")
    os.symlink(os.path.join(OUTSIDE, "passwd"), os.path.join(WEB, "link.txt"))


def tearDownModule():
    shutil.rmtree(WEB, ignore_errors=True)
    shutil.rmtree(OUTSIDE, ignore_errors=True)


class StaticFilesTest(ServerTestCase):
    server_kwargs = {"scripts": PROBE_DIR}
    server_config = {"web": WEB, "max_static_file_bytes": 4096}

    def file(self, name, method="GET", headers=None):
        return self.server.request(method, "/file?name=" + urllib.parse.quote(name, safe=""),
                                   headers=headers)

    def test_serves_files_with_type_and_validators(self):
        r = self.file("index.html")
        self.assertStatus(r, 200)
        self.assertEqual(r.body, b"<!doctype html><title>t</title>\n")
        self.assertEqual(r.header("Content-Type"), "text/html; charset=utf-8")
        self.assertEqual(r.header("Cache-Control"), "no-cache")
        self.assertEqual(r.header("X-Content-Type-Options"), "nosniff")
        self.assertTrue(r.header("ETag"))
        self.assertTrue(r.header("Last-Modified").endswith(" GMT"))
        r = self.file("js/app.js")
        self.assertStatus(r, 200)
        self.assertEqual(r.header("Content-Type"), "text/javascript; charset=utf-8")

    def test_head_has_the_length_and_no_body(self):
        conn = self.server.raw()
        try:
            conn.send(build_request("HEAD", "/file?name=index.html"))
            r = conn.read_response(head=True)
        finally:
            conn.close()
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("Content-Length"), "32")
        self.assertEqual(r.body, b"")

    def test_conditional_requests_get_304(self):
        first = self.file("index.html")
        r = self.file("index.html", headers={"If-None-Match": first.header("ETag")})
        self.assertStatus(r, 304)
        self.assertEqual(r.body, b"")
        self.assertIsNone(r.header("Content-Length"))
        r = self.file("index.html",
                      headers={"If-Modified-Since": first.header("Last-Modified")})
        self.assertStatus(r, 304)
        r = self.file("index.html", headers={"If-None-Match": '"stale"'})
        self.assertStatus(r, 200)

    def test_an_edited_file_is_served_fresh(self):
        path = os.path.join(WEB, "edit.txt")
        with open(path, "w") as f:
            f.write("one\n")
        first = self.file("edit.txt")
        with open(path, "w") as f:
            f.write("two, longer\n")
        r = self.file("edit.txt", headers={"If-None-Match": first.header("ETag")})
        self.assertStatus(r, 200)
        self.assertEqual(r.body, b"two, longer\n")

    def test_nothing_outside_or_hidden_is_served(self):
        for name in ["../" + os.path.basename(OUTSIDE) + "/passwd", "/etc/passwd",
                     "js/../../etc/passwd", "link.txt", ".secret", "js", "js/",
                     "js//app.js", "missing.html", "js\\app.js", "index.html\0.txt"]:
            r = self.file(name)
            self.assertStatus(r, 404, name)
            self.assertEqual(r.body, b"fallback\n", name)

    def test_files_over_the_limit_are_not_served(self):
        with open(os.path.join(WEB, "big.txt"), "w") as f:
            f.write("x" * 4097)
        self.assertStatus(self.file("big.txt"), 404)


class NoWebDirectoryTest(ServerTestCase):
    server_kwargs = {"scripts": PROBE_DIR}
    server_config = {"web": "/nonexistent/web"}

    def test_fallback_and_a_warning(self):
        r = self.server.request("GET", "/file?name=index.html")
        self.assertStatus(r, 404)
        self.assertEqual(r.body, b"fallback\n")
        self.assertIn("web directory /nonexistent/web", self.server.log())


if __name__ == "__main__":
    unittest.main()
