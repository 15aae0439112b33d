"""Nothing lost (API.md 1 and 2, issue 4): every notification acknowledged
with 204 stays in the SQLite outbox until it is written to a live WebSocket
or returned to a poll, so it reaches the client in order on the next poll
or connection, including after the server stopped (SIGTERM) or was killed
(SIGKILL right after the 204s) and started again on the same database.

Each test runs its own servers on a database in its own directory. The
WebSocket client is Debian's python3-websockets (not our code), driven
through delivery_util. Under kill -9 a notification written to a socket
just before the kill may come twice (at least once); everywhere else it is
exactly once.
"""

import json
import os
import shutil
import signal
import sqlite3
import tempfile
import time
import unittest

from delivery_util import (BASE, DeliveryHelpers, WsCollector, channels_path, json_notification,
                           markers_of, new_markers, new_user, ws_collect, xml_notification)
from ncfixture import SLOW, SOURCE_DIR, STOP_TIMEOUT, Server, ServerTestCase

CONFIG = {"channel_lifetime_min": 1, "max_wait_time_default": 1, "max_wait_time_max": 20,
          "max_notifications_max": 50}


class RestartDeliveryTest(DeliveryHelpers, unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="nc-e2e-delivery-")
        self.db = os.path.join(self.tmp, "nc.db")
        self.server = None
        self.collector = None

    def tearDown(self):
        if self.collector is not None:
            self.collector.stop()
        if self.server is not None and self.server.running():
            self.server.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    # The assertions of ServerTestCase, for a class that starts its own.
    def assertStatus(self, resp, status, msg=None):
        ServerTestCase.assertStatus(self, resp, status, msg)

    def assertServiceError(self, resp, status, message_id, field=None):
        return ServerTestCase.assertServiceError(self, resp, status, message_id, field)

    def start(self, config=None):
        self.server = Server(config=config or CONFIG, db=self.db).start()
        return self.server

    def stop(self, how):
        """Ends the server: "term" (SIGTERM, exit 0) or "kill" (SIGKILL at
        once, no chance to flush or tidy)."""
        if how == "term":
            self.server.stop(signal.SIGTERM)
        else:
            rc = self.server.stop(signal.SIGKILL, expect_rc=None)
            self.assertEqual(rc, -signal.SIGKILL)

    def restart(self, how, config=None):
        self.stop(how)
        return self.start(config)

    def assertChannelKept(self, ch):
        r = self.server.get(ch["path"])
        self.assertStatus(r, 200, "the channel after the restart")
        self.assertEqual(r.json()["notificationChannel"]["callbackURL"],
                         self.server.url(ch["cb"]))

    # ---- long polling ----------------------------------------------------

    def check_poll_after_restart(self, how, send_fmt, poll_fmt, max_notifications=50):
        self.start()
        ch = self.create_channel(maxWaitTime=1, maxNotifications=max_notifications)
        markers = new_markers(20)
        # Singles and lists, as enablers send them.
        self.notify(ch, markers[:8], send_fmt)
        self.notify_list(ch, markers[8:11], send_fmt)
        self.notify(ch, markers[11:19], send_fmt)
        self.notify_list(ch, markers[19:], send_fmt)
        self.restart(how)
        self.assertChannelKept(ch)
        got = self.poll_until(ch, len(markers), poll_fmt, max_per_list=max_notifications)
        self.assertEqual(got, markers)
        # Exactly once: nothing is left to deliver a second time.
        self.assertEmptyList(self.poll(ch, poll_fmt), poll_fmt)
        return ch

    def test_poll_after_sigterm_json(self):
        self.check_poll_after_restart("term", "json", "json")

    def test_poll_after_sigterm_xml(self):
        self.check_poll_after_restart("term", "xml", "xml")

    def test_poll_after_kill9_json(self):
        self.check_poll_after_restart("kill", "json", "json")

    def test_poll_after_kill9_xml_converted_to_json(self):
        self.check_poll_after_restart("kill", "xml", "json")

    def test_poll_after_kill9_max_notifications_xml(self):
        # 20 pending, 3 per list: seven polls, order kept across them.
        self.check_poll_after_restart("kill", "json", "xml", max_notifications=3)

    def check_partly_polled_then_restart(self, how):
        # What a poll took before the restart is not delivered again; what
        # it left is, in order.
        self.start()
        ch = self.create_channel(maxWaitTime=1, maxNotifications=4)
        markers = new_markers(10)
        self.notify(ch, markers)
        first = markers_of(self.polled(ch))
        self.assertEqual(first, markers[:4])
        self.restart(how)
        got = []
        deadline = time.monotonic() + 10 * SLOW
        while markers[-1] not in got and time.monotonic() < deadline:
            items = self.polled(ch)
            self.assertLessEqual(len(items), 4)
            got += markers_of(items)
        if how == "term":
            self.assertEqual(got, markers[4:])
        else:
            # A kill in the instant between writing the answer and removing
            # its notifications from the outbox delivers that answer again
            # (at least once); nothing else may repeat, nothing may be lost.
            self.assertIn(got, (markers[4:], markers))
        self.assertEmptyList(self.poll(ch), "json")

    def test_upgrade_to_outbox_templates_keeps_queued_notifications(self):
        # A database left by a server from before sql/005_outbox_templates.sql
        # rebuilt the outbox (made here as the core would have: migrations
        # 001-004 recorded in nc_migrations, a channel, queued rows, the
        # newest already delivered). The core applies 005 (and 006, the
        # movie_fanout table) at start: what
        # was queued is delivered after the upgrade, in order, and seqs go
        # on above every seq given before.
        user, channel_id = new_user(), "upgradechannel0000000A"
        markers = new_markers(4)
        conn = sqlite3.connect(self.db, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("CREATE TABLE nc_migrations (version INTEGER PRIMARY KEY,"
                         " name TEXT NOT NULL, applied_at TEXT NOT NULL)")
            sql_dir = os.path.join(SOURCE_DIR, "sql")
            for name in sorted(os.listdir(sql_dir)):
                if name.endswith(".sql") and name < "005":
                    with open(os.path.join(sql_dir, name)) as f:
                        conn.executescript("BEGIN IMMEDIATE;" + f.read() + ";COMMIT;")
                    conn.execute("INSERT INTO nc_migrations VALUES (?, ?, 'x')",
                                 (int(name[:3]), name))
            now = time.time()
            conn.execute("INSERT INTO channels (channel_id, user_id, channel_type,"
                         " max_notifications, max_wait_time, callback_id, lifetime,"
                         " expires_at, created_at)"
                         " VALUES (?, ?, 'LongPolling', 50, 1, 'upgradecallback0000000A',"
                         " 3600, ?, ?)", (channel_id, user, now + 3600, now))
            seqs = []
            for i, m in enumerate(markers + ["delivered"]):
                fmt = "json" if i % 2 == 0 else "xml"
                body = (json.dumps(json_notification(m)) if fmt == "json"
                        else xml_notification(m))
                seqs.append(conn.execute(
                    "INSERT INTO outbox (channel_id, root, format, body, created_at)"
                    " VALUES (?, 'testNotification', ?, ?, ?)",
                    (channel_id, fmt, body, now)).lastrowid)
            conn.execute("DELETE FROM outbox WHERE seq = ?", (seqs[-1],))
        finally:
            conn.close()

        self.start()
        self.assertIn("applied 2 migrations", self.server.log())
        ch = {"poll": "%s/%s/notifications" % (channels_path(user), channel_id),
              "cb": BASE + "/callbacks/upgradecallback0000000A"}
        later = new_markers(2)
        self.notify(ch, later)
        got = self.poll_until(ch, len(markers) + len(later), "json")
        self.assertEqual(got, markers + later)
        self.assertEmptyList(self.poll(ch, "json"), "json")
        self.server.stop()
        conn = sqlite3.connect(self.db)
        try:
            # Nothing is left, and the seqs given after the upgrade were new.
            self.assertEqual(conn.execute("SELECT count(*) FROM outbox").fetchone()[0], 0)
            self.assertGreater(conn.execute("SELECT seq FROM sqlite_sequence"
                                            " WHERE name = 'outbox'").fetchone()[0],
                               seqs[-1] + 1)
        finally:
            conn.close()

    def test_partly_polled_then_sigterm(self):
        self.check_partly_polled_then_restart("term")

    def test_partly_polled_then_kill9(self):
        self.check_partly_polled_then_restart("kill")

    def check_parked_poll_answered_on_sigterm(self, fmt):
        # API.md 1: SIGTERM finishes in-flight responses; a parked poll's is
        # an empty notificationList, sent before the server exits.
        self.start()
        ch = self.create_channel(maxWaitTime=20)
        conn = self.start_poll(ch, fmt)
        self.assertParked(conn)
        start = time.monotonic()
        self.server.proc.send_signal(signal.SIGTERM)
        r, _ = self.read_answer(conn, 5)
        self.assertLess(time.monotonic() - start, 5 * SLOW)
        self.assertEmptyList(r, fmt)
        self.server.proc.wait(STOP_TIMEOUT)
        self.server.stop()  # checks the exit code, which must be 0
        # Nothing was taken by that poll: the channel works on.
        self.start()
        self.assertChannelKept(ch)
        markers = new_markers(2)
        self.notify(ch, markers, fmt)
        self.assertEqual(markers_of(self.polled(ch, fmt)), markers)

    def test_parked_poll_answered_on_sigterm_json(self):
        self.check_parked_poll_answered_on_sigterm("json")

    def test_parked_poll_answered_on_sigterm_xml(self):
        self.check_parked_poll_answered_on_sigterm("xml")

    def test_max_wait_time_capped_by_policy_after_restart(self):
        # "waits up to maxWaitTime (capped by server policy)": a channel
        # granted 20 s under one policy waits no more than the new cap.
        self.start()
        ch = self.create_channel(maxWaitTime=20)
        self.assertEqual(ch["channelData"]["maxWaitTime"], 20)
        self.restart("term", dict(CONFIG, max_wait_time_max=1))
        start = time.monotonic()
        r = self.poll(ch)
        took = time.monotonic() - start
        self.assertEmptyList(r, "json")
        self.assertLess(took, 1 + 4 * SLOW, "the poll waited past the policy's cap")

    # ---- WebSockets ------------------------------------------------------

    def check_ws_connects_after_restart(self, how, fmt):
        self.start()
        ch = self.create_channel("WebSockets", maxNotifications=3)
        markers = new_markers(10)
        self.notify(ch, markers[:4], fmt)
        self.notify_list(ch, markers[4:7], fmt)
        self.notify(ch, markers[7:], fmt)
        self.restart(how)
        self.assertChannelKept(ch)
        got, frames = ws_collect(self.ws_url(ch), len(markers), timeout=10,
                                 max_per_frame=3)
        self.assertEqual(got, markers)
        # Delivered means gone: a new connection gets nothing more.
        again, _ = ws_collect(self.ws_url(ch), 0, quiet=0.5)
        self.assertEqual(again, [])

    def test_ws_connects_after_sigterm_json(self):
        self.check_ws_connects_after_restart("term", "json")

    def test_ws_connects_after_kill9_xml(self):
        self.check_ws_connects_after_restart("kill", "xml")

    def test_ws_connects_only_after_notifications_were_sent(self):
        # No restart: a client that was never connected gets all, in order.
        self.start()
        ch = self.create_channel("WebSockets", maxNotifications=5)
        markers = new_markers(12)
        self.notify(ch, markers[:6], "json")
        self.notify_list(ch, markers[6:9], "xml")
        self.notify(ch, markers[9:], "xml")
        got, _ = ws_collect(ch["ws"], len(markers), max_per_frame=5)
        self.assertEqual(got, markers)
        # And after that, live delivery on a new connection.
        live = new_markers(2)
        self.notify(ch, live)
        got, _ = ws_collect(ch["ws"], len(live))
        self.assertEqual(got, live)

    def test_ws_client_reconnecting_across_sigterm(self):
        self.start()
        ch = self.create_channel("WebSockets")
        self.collector = WsCollector(ch["ws"])
        self.collector.wait_connected(1, 10)
        before, after = new_markers(5), new_markers(5)
        self.notify(ch, before)
        self.assertEqual(self.collector.wait_for(5, 10), before)
        self.stop("term")
        # API.md 1: SIGTERM closes WebSockets with 1001 (going away).
        deadline = time.monotonic() + 5 * SLOW
        while not self.collector.close_codes and time.monotonic() < deadline:
            time.sleep(0.02)
        self.assertEqual(self.collector.close_codes[:1], [1001])
        self.start()
        self.collector.url = self.ws_url(ch)
        self.notify(ch, after)
        self.collector.wait_for(10, 15)
        time.sleep(0.3)  # anything more would be a duplicate
        self.assertEqual(self.collector.received(), before + after)

    def test_ws_client_reconnecting_across_kill9(self):
        self.start()
        ch = self.create_channel("WebSockets", maxNotifications=4)
        self.collector = WsCollector(ch["ws"])
        self.collector.wait_connected(1, 10)
        markers = new_markers(30)
        self.notify(ch, markers)
        self.stop("kill")
        self.start()
        self.collector.url = self.ws_url(ch)
        later = new_markers(3)
        self.notify(ch, later)
        want = markers + later
        deadline = time.monotonic() + 15 * SLOW
        while not set(want) <= set(self.collector.received()):
            if time.monotonic() > deadline:
                got = self.collector.received()
                self.fail("lost across kill -9: %r (got %r; errors %r)"
                          % ([m for m in want if m not in got], got,
                             self.collector.errors[-5:]))
            time.sleep(0.05)
        time.sleep(0.3)
        got = self.collector.received()
        # In order; a notification written just before the kill may come
        # again, nothing else may.
        firsts = []
        for m in got:
            if m not in firsts:
                firsts.append(m)
        self.assertEqual(firsts, want)
        self.assertTrue(set(got) <= set(want), got)
        if len(got) != len(set(got)):
            print("\nkill -9: %d notification(s) delivered twice"
                  % (len(got) - len(set(got))))


if __name__ == "__main__":
    unittest.main()
