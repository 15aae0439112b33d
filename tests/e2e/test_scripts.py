"""The C/Lua boundary end to end: what a handler receives, what the `core`
module gives it, and what happens when a script goes wrong. Runs the real
binary with tests/e2e/scripts_probe/ as its scripts directory."""
import json
import os
import re
import unittest

from ncfixture import ServerTestCase

PROBE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "scripts_probe")
ID_RE = re.compile(r"^[A-Za-z0-9_-]+$")


class ScriptBoundaryTest(ServerTestCase):
    server_kwargs = {"scripts": PROBE_DIR}
    server_config = {"probe_number": 42, "probe_text": "hello"}

    def test_request_reaches_lua_whole(self):
        r = self.server.request("POST", "/echo?a=1&b=%20x", body=b"payload",
                                headers={"X-Custom": "v1", "Content-Type": "text/plain"})
        self.assertStatus(r, 200)
        doc = r.json()
        self.assertEqual(doc["method"], "POST")
        self.assertEqual(doc["path"], "/echo")
        self.assertEqual(doc["query"], "a=1&b=%20x")
        self.assertEqual(doc["body"], "payload")
        self.assertEqual(doc["headers"]["x-custom"], "v1")
        self.assertEqual(doc["headers"]["content-type"], "text/plain")

    def test_repeated_headers_are_joined(self):
        conn = self.server.raw()
        try:
            conn.send(b"GET /echo HTTP/1.1\r\nHost: x\r\nX-A: one\r\nX-A: two\r\n\r\n")
            r = conn.read_response()
        finally:
            conn.close()
        self.assertEqual(r.json()["headers"]["x-a"], "one, two")

    def test_lua_error_is_500_with_traceback_logged(self):
        r = self.server.get("/raise")
        self.assertStatus(r, 500)
        log = self.server.log()
        self.assertIn("deliberate failure in a handler", log)
        self.assertIn("stack traceback", log)
        self.assertIn("app.lua", log)
        # The server keeps serving.
        self.assertStatus(self.server.get("/now"), 200)

    def test_malformed_responses_are_500(self):
        for path, reason in (("/bad-status", "status"),
                             ("/not-a-table", "no response table"),
                             ("/header-injection", "CR or LF")):
            r = self.server.get(path)
            self.assertStatus(r, 500, path)
            self.assertIsNone(r.header("Set-Cookie"), path)
            self.assertIn(reason, self.server.log(), path)

    def test_random_ids(self):
        doc = self.server.get("/ids").json()
        # 16 bytes -> 22 base64url characters; 48 bytes -> 64.
        self.assertEqual(len(doc["default"]), 22)
        self.assertEqual(len(doc["long"]), 64)
        for v in doc.values():
            self.assertRegex(v, ID_RE)
        self.assertNotEqual(doc["default"], doc["other"])

    def test_now_is_epoch_seconds(self):
        import time
        now = self.server.get("/now").json()["now"]
        self.assertLess(abs(now - time.time()), 5)

    def test_config_reaches_lua(self):
        doc = self.server.get("/config").json()
        self.assertEqual(doc["public_url"], self.server.base_url)
        self.assertEqual(doc["policy_number"], 42)
        self.assertEqual(doc["policy_text"], "hello")

    def test_db_binds_and_returns_rows(self):
        self.assertStatus(self.server.get("/db/setup"), 200)
        doc = self.server.get("/db/roundtrip").json()
        self.assertEqual(doc["changes"], 1)
        self.assertEqual(doc["rows"], [{"k": "it's; DROP TABLE probe", "v": 1.5}])

    def test_db_constraint_is_nil_err(self):
        self.server.get("/db/setup")
        doc = self.server.get("/db/constraint").json()
        self.assertEqual(doc["ok"], "nil")
        self.assertIn("UNIQUE", doc["err"])

    def test_db_bad_sql_raises(self):
        r = self.server.get("/db/bad-sql")
        self.assertStatus(r, 500)
        self.assertIn("bad SQL", self.server.log())

    def test_transaction_rolls_back_and_returns_results(self):
        self.server.get("/db/setup")
        doc = self.server.get("/db/rollback").json()
        self.assertEqual(doc["count"], 0)
        self.assertEqual(doc["results"], ["first", "second"])

    def test_error_inside_transaction_leaves_nothing_open(self):
        self.server.get("/db/setup")
        self.assertStatus(self.server.get("/db/raise-in-transaction"), 500)
        self.assertEqual(self.server.get("/db/count-never").json()["count"], 0)
        # A transaction left open would make this BEGIN fail.
        self.assertStatus(self.server.get("/db/rollback"), 200)

    def test_timers(self):
        import time
        start = self.server.get("/timer/start").json()
        self.assertNotEqual(start["once"], start["repeating"])
        deadline = time.monotonic() + 10
        while True:
            doc = self.server.get("/timer/state").json()
            if doc["fired"] >= 1 and doc["ticks"] >= 3 and doc.get("self_cancel"):
                break
            self.assertLess(time.monotonic(), deadline, doc)
            time.sleep(0.02)
        # The once timer fired once; the cancelled one never did.
        self.assertEqual(doc["fired"], 1)
        self.assertEqual(doc["cancelled"], [True])
        self.assertEqual(doc["self_cancel"], [True])
        self.assertEqual(doc["cancel_after_fire"], ["nil", "closed"])
        # Cancelled from inside its own callback: no tick after the third.
        time.sleep(0.1)
        self.assertEqual(self.server.get("/timer/state").json()["ticks"], 3)
        self.server.wait_for_log("deliberate failure in a timer")


if __name__ == "__main__":
    unittest.main()
