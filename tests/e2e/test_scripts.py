"""The C/Lua boundary end to end: what a handler receives, what the `core`
module gives it, and what happens when a script goes wrong. Runs the real
binary with tests/e2e/scripts_probe/ as its scripts directory."""
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest

from ncfixture import (BINARY, SLOW, Server, ServerTestCase, require_binary,
                       write_config)

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


class ScriptTimeoutTest(ServerTestCase):
    """script_timeout_ms: a call from C into Lua that runs too long fails
    like one that raised, and the server goes on serving."""
    LIMIT_MS = 500
    server_kwargs = {"scripts": PROBE_DIR}
    server_config = {"script_timeout_ms": LIMIT_MS}
    MESSAGE = "script ran longer than 500 ms (script_timeout_ms)"

    def timed_get(self, path):
        start = time.monotonic()
        r = self.server.get(path)
        return r, time.monotonic() - start

    def assertCutOff(self, path):
        """`path` answers 500 once the limit has passed, the log names the
        limit, and the server still answers."""
        logged = len(self.server.log())
        r, elapsed = self.timed_get(path)
        self.assertStatus(r, 500, path)
        # The deadline starts once the request has arrived.
        self.assertGreaterEqual(elapsed, self.LIMIT_MS / 1000.0, path)
        self.assertLess(elapsed, 10 * SLOW, path)
        # The log names the path without its query.
        line = self.server.wait_for_log_re(
            r"lua error in GET %s: .*\(script_timeout_ms\)"
            % re.escape(path.split("?")[0]), start=logged)
        self.assertIn(self.MESSAGE, line.group(0))
        self.assertIn("stack traceback", self.server.log()[logged:])
        self.assertStatus(self.server.get("/now"), 200)

    def test_spinning_handler_is_cut_off(self):
        self.assertCutOff("/spin")
        self.assertStatus(self.server.get("/no-such-route"), 404)

    def test_pcall_cannot_swallow_it(self):
        self.assertCutOff("/spin-pcall")

    def test_coroutine_cannot_swallow_it(self):
        self.assertCutOff("/spin-coroutine")
        self.assertCutOff("/spin-wrap")

    def test_transaction_of_a_cut_off_handler_is_rolled_back(self):
        self.assertStatus(self.server.get("/db/setup"), 200)
        for path in ("/spin-tx", "/spin-tx?by=hand"):
            self.assertCutOff(path)
            self.assertEqual(self.server.get("/db/count?k=spun").json()["count"], 0, path)
            # A transaction left open would make this BEGIN fail.
            self.assertStatus(self.server.get("/db/rollback"), 200, path)

    def test_runaway_statement_is_interrupted(self):
        self.assertCutOff("/spin-sql")
        self.assertStatus(self.server.get("/db/setup"), 200)
        self.assertStatus(self.server.get("/db/count?k=x"), 200)

    def test_timer_callback_is_cut_off(self):
        logged = len(self.server.log())
        self.assertStatus(self.server.get("/spin-timer"), 200)
        self.server.wait_for_log_re(
            r"lua error in timer \d+: .*" + re.escape(self.MESSAGE), start=logged,
            timeout=10)
        self.assertStatus(self.server.get("/now"), 200)

    def test_honest_work_under_the_limit_is_untouched(self):
        # 200,000 iterations, a few ms; the second time right after a call
        # that was cut off, of whose timeout nothing may be left.
        for _ in range(2):
            r = self.server.get("/busy?n=200000")
            self.assertStatus(r, 200)
            self.assertEqual(r.json()["sum"], sum(i % 7 for i in range(1, 200001)))
            self.assertCutOff("/spin")

    def test_limit_is_wall_clock_time(self):
        self.assertCutOff("/busy?ms=%d" % (2 * self.LIMIT_MS))


class ScriptTimeoutOffTest(ServerTestCase):
    """script_timeout_ms = 0 is no limit, not a zero one."""
    server_kwargs = {"scripts": PROBE_DIR}
    server_config = {"script_timeout_ms": 0}

    def test_zero_means_no_limit(self):
        r = self.server.get("/busy?ms=700")
        self.assertStatus(r, 200)
        self.assertGreater(r.json()["sum"], 0)


class ScriptTimeoutStartTest(unittest.TestCase):
    """The limit at start: a bad value, and an app.lua that never loads."""

    def setUp(self):
        require_binary()
        self.tmp = tempfile.mkdtemp(prefix="nc-e2e-timeout-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def run_server(self, scripts, limit):
        config = os.path.join(self.tmp, "config.lua")
        write_config(config, {"script_timeout_ms": limit})
        try:
            p = subprocess.run([BINARY, "--listen", "127.0.0.1:0",
                                "--db", os.path.join(self.tmp, "nc.db"),
                                "--scripts", scripts, "--config", config],
                               stdin=subprocess.DEVNULL, capture_output=True,
                               timeout=20 * SLOW, cwd=self.tmp)
        except subprocess.TimeoutExpired:
            self.fail("the server started with script_timeout_ms = %r" % limit)
        return p.returncode, p.stderr.decode("utf-8", "replace")

    def test_negative_limit_is_refused(self):
        rc, err = self.run_server(PROBE_DIR, -1)
        self.assertEqual(rc, 2, err)
        self.assertIn("script_timeout_ms must be an integer >= 0", err)

    def test_real_app_accepts_the_key(self):
        # It is the core's, kept out of core.config: the real scripts
        # refuse keys they do not know.
        server = Server(config={"script_timeout_ms": 1000}).start()
        try:
            self.assertEqual(server.get("/health").status, 200)
        finally:
            server.stop()

    def test_app_lua_that_never_loads_is_cut_off(self):
        scripts = os.path.join(self.tmp, "scripts")
        os.mkdir(scripts)
        with open(os.path.join(scripts, "app.lua"), "w") as f:
            f.write("while true do end\n")
        rc, err = self.run_server(scripts, 300)
        self.assertEqual(rc, 2, err)
        self.assertIn("cannot load scripts", err)
        self.assertIn("script ran longer than 300 ms (script_timeout_ms)", err)


if __name__ == "__main__":
    unittest.main()
