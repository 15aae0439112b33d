"""The core's held connections end to end, without the OMA scripts: parked
requests and WebSockets under a key, core.hub, and the events the scripts
receive (tests/e2e/scripts_probe/app.lua records them for /hub/events).
WebSocket clients are Debian's python3-websockets, not our code."""
import asyncio
import os
import socket
import time
import unittest

import websockets
import websockets.exceptions

from ncfixture import SLOW, ServerTestCase, build_request

PROBE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "scripts_probe")


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30 * SLOW))


class HubTestCase(ServerTestCase):
    server_kwargs = {"scripts": PROBE_DIR}
    server_config = {"ws_send_window_bytes": 64 * 1024, "ws_stall_timeout_ms": 1500,
                     "ws_max_message_bytes": 1024}

    def events(self):
        return self.server.get("/hub/events").json()

    def wait_events(self, pred, timeout=5.0):
        """Collects events until pred(all so far) holds; returns them all."""
        seen = []
        deadline = time.monotonic() + timeout * SLOW
        while True:
            seen += self.events()
            if pred(seen):
                return seen
            if time.monotonic() > deadline:
                self.fail("events never matched: %r" % seen)
            time.sleep(0.02)

    def wait_gone(self, key, count=1, timeout=5.0):
        """The gone events of `key`, once there are `count` of them."""
        ev = self.wait_events(lambda e: len([x for x in e if x[:2] == ["gone", key]]) >= count,
                              timeout)
        return ev, [x[2:] for x in ev if x[:2] == ["gone", key]]

    def ws_url(self, key, protocol="p1"):
        q = "key=%s" % key + ("&protocol=%s" % protocol if protocol else "")
        return "ws://%s:%d/hub/ws?%s" % (self.server.host, self.server.port, q)


class ParkTest(HubTestCase):

    def test_parked_request_gets_its_timeout_response(self):
        conn = self.server.raw()
        try:
            t0 = time.monotonic()
            conn.send(build_request("GET", "/hub/park?key=t1&ms=300&token=7"))
            r = conn.read_response()
            waited = time.monotonic() - t0
        finally:
            conn.close()
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"timeout t1")
        self.assertGreaterEqual(waited, 0.25)
        ev, gone = self.wait_gone("t1")
        self.assertEqual([g[1:] for g in gone], [["timeout", 0]])
        self.wait_events(lambda e: ["written", 7, True] in e + ev)

    def test_answer_ends_the_park_without_a_gone_event(self):
        conn = self.server.raw()
        try:
            conn.send(build_request("GET", "/hub/park?key=a1&ms=10000"))
            self.assertEqual(self.server.get("/hub/held?key=a1").json()["held"], "parked")
            r = self.server.get("/hub/answer?key=a1&token=11").json()
            self.assertEqual(r["ok"], True)
            resp = conn.read_response()
        finally:
            conn.close()
        self.assertEqual(resp.status, 200)
        self.assertEqual(resp.body, b"answer a1")
        self.assertEqual(resp.header("X-Answer"), "yes")
        ev = self.wait_events(lambda e: ["written", 11, True] in e)
        self.assertFalse([x for x in ev if x[:2] == ["gone", "a1"]], ev)
        self.assertEqual(self.server.get("/hub/held?key=a1").json()["held"], "none")
        self.assertEqual(self.server.get("/hub/answer?key=a1").json(),
                         {"ok": False, "err": "none"})

    def test_pipelined_request_waits_behind_the_parked_one(self):
        conn = self.server.raw()
        try:
            conn.send(build_request("GET", "/hub/park?key=p1&ms=10000")
                      + build_request("GET", "/now"))
            time.sleep(0.2)
            self.server.get("/hub/answer?key=p1")
            first = conn.read_response()
            second = conn.read_response()
        finally:
            conn.close()
        self.assertEqual(first.body, b"answer p1")
        self.assertIn("now", second.json())

    def test_second_park_on_a_key_ends_the_first(self):
        c1, c2 = self.server.raw(), self.server.raw()
        try:
            c1.send(build_request("GET", "/hub/park?key=r1&ms=10000"))
            time.sleep(0.1)
            c2.send(build_request("GET", "/hub/park?key=r1&ms=10000"))
            first = c1.read_response()
            self.assertEqual(first.body, b"timeout r1")
            _, gone = self.wait_gone("r1")
            self.assertEqual([g[1] for g in gone], ["replaced"])
            self.server.get("/hub/answer?key=r1")
            self.assertEqual(c2.read_response().body, b"answer r1")
        finally:
            c1.close()
            c2.close()

    def test_client_leaving_a_park_frees_the_key(self):
        conn = self.server.raw()
        conn.send(build_request("GET", "/hub/park?key=l1&ms=10000"))
        self.wait_events(lambda e: True, timeout=0.1)
        while self.server.get("/hub/held?key=l1").json()["held"] != "parked":
            time.sleep(0.01)
        conn.close()
        _, gone = self.wait_gone("l1")
        self.assertEqual([g[1] for g in gone], ["peer"])
        self.assertEqual(self.server.get("/hub/held?key=l1").json()["held"], "none")


class WebSocketTest(HubTestCase):

    def test_upgrade_send_written_message_and_close(self):
        async def scenario():
            async with websockets.connect(self.ws_url("w1"), subprotocols=["p1"]) as ws:
                self.assertEqual(ws.subprotocol, "p1")
                ev = self.wait_events(lambda e: any(x[:2] == ["open", "w1"] for x in e))
                conn_id = [x for x in ev if x[:2] == ["open", "w1"]][0][2]
                self.assertEqual(self.server.get("/hub/held?key=w1").json()["held"],
                                 "websocket")
                r = self.server.get("/hub/send?key=w1&text=hello&token=5").json()
                self.assertEqual(r, {"sent": 1, "full": 0, "none": 0})
                self.assertEqual(await ws.recv(), "hello")
                self.wait_events(lambda e: ["written", 5, True] in e)
                await ws.send("echo:back at you")
                self.assertEqual(await ws.recv(), "back at you")
                ev = self.wait_events(lambda e: any(x[0] == "message" for x in e))
                self.assertIn(["message", "w1", conn_id, "echo:back at you"], ev)
                r = self.server.get("/hub/close?key=w1&code=4001&reason=bye").json()
                self.assertEqual(r["ok"], True)
                with self.assertRaises(websockets.exceptions.ConnectionClosed):
                    await ws.recv()
                self.assertEqual(ws.close_code, 4001)
                self.assertEqual(ws.close_reason, "bye")
                return conn_id
        conn_id = run(scenario())
        _, gone = self.wait_gone("w1")
        self.assertEqual(gone, [[conn_id, "closed", 4001]])
        self.assertEqual(self.server.get("/hub/held?key=w1").json()["held"], "none")
        self.assertEqual(self.server.get("/hub/send?key=w1").json()["none"], 1)

    def test_client_close_is_a_peer_gone(self):
        async def scenario():
            async with websockets.connect(self.ws_url("w2"), subprotocols=["p1"]) as ws:
                await ws.close(1000, "done")
                self.assertEqual(ws.close_code, 1000)
        run(scenario())
        _, gone = self.wait_gone("w2")
        self.assertEqual([g[1:] for g in gone], [["peer", 1000]])

    def test_new_connection_replaces_the_old(self):
        async def scenario():
            old = await websockets.connect(self.ws_url("w3"), subprotocols=["p1"])
            new = await websockets.connect(self.ws_url("w3"), subprotocols=["p1"])
            with self.assertRaises(websockets.exceptions.ConnectionClosed):
                await old.recv()
            self.assertEqual(old.close_code, 1000)
            self.server.get("/hub/send?key=w3&text=to-new")
            self.assertEqual(await new.recv(), "to-new")
            await new.close()
        run(scenario())
        ev, gone = self.wait_gone("w3", count=2)
        opens = [x[2] for x in ev if x[:2] == ["open", "w3"]]
        self.assertEqual(len(opens), 2)
        self.assertIn([opens[0], "replaced", 1000], gone)
        self.assertIn([opens[1], "peer", 1000], gone)

    def test_protocol_errors_are_closed_with_their_code(self):
        async def too_big():
            async with websockets.connect(self.ws_url("w4"), subprotocols=["p1"]) as ws:
                await ws.send("x" * 2000)
                with self.assertRaises(websockets.exceptions.ConnectionClosed):
                    await ws.recv()
                return ws.close_code
        self.assertEqual(run(too_big()), 1009)
        _, gone = self.wait_gone("w4")
        self.assertEqual([g[1:] for g in gone], [["protocol", 1009]])

        async def binary():
            async with websockets.connect(self.ws_url("w5"), subprotocols=["p1"]) as ws:
                await ws.send(b"\x00\x01")
                with self.assertRaises(websockets.exceptions.ConnectionClosed):
                    await ws.recv()
                return ws.close_code
        self.assertEqual(run(binary()), 1003)

    def test_no_protocol_is_echoed_when_none_given(self):
        async def scenario():
            async with websockets.connect(self.ws_url("w6", protocol=None)) as ws:
                return ws.subprotocol
        self.assertIsNone(run(scenario()))

    def test_invalid_handshakes_are_refused_without_upgrade(self):
        base = {"Upgrade": "websocket", "Connection": "Upgrade",
                "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                "Sec-WebSocket-Version": "13"}
        cases = [({"Sec-WebSocket-Key": None}, 400), ({"Sec-WebSocket-Version": "8"}, 426),
                 ({"Sec-WebSocket-Key": "short"}, 400), ({"Upgrade": None}, 400)]
        for change, status in cases:
            headers = dict(base)
            for k, v in change.items():
                if v is None:
                    del headers[k]
                else:
                    headers[k] = v
            conn = self.server.raw()
            try:
                conn.send(build_request("GET", "/hub/ws?key=bad", headers=headers))
                r = conn.read_response()
            finally:
                conn.close()
            self.assertEqual(r.status, status, change)
            if status == 426:
                self.assertEqual(r.header("Sec-WebSocket-Version"), "13")
        self.assertEqual(self.server.get("/hub/held?key=bad").json()["held"], "none")
        self.assertFalse([x for x in self.events() if x[0] == "open"])

    def test_send_window_and_stalled_reader(self):
        # A client that completes the handshake and then never reads: sends
        # are refused once the window is full, and after the stall timeout
        # the connection is closed and reported.
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect((self.server.host, self.server.port))
        try:
            sock.sendall(build_request("GET", "/hub/ws?key=s1", headers={
                "Upgrade": "websocket", "Connection": "Upgrade",
                "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                "Sec-WebSocket-Version": "13"}))
            self.wait_events(lambda e: any(x[:2] == ["open", "s1"] for x in e))
            # Offer 16 KiB messages until the kernel's buffers are full too and
            # the window stays shut.
            sent, refused_in_a_row, token = 0, 0, 1000
            while refused_in_a_row < 5:
                r = self.server.get("/hub/send?key=s1&size=16384&n=8&token=%d"
                                    % token).json()
                self.assertEqual(r["none"], 0, r)
                sent += r["sent"]
                token += 8
                refused_in_a_row = refused_in_a_row + 1 if r["sent"] == 0 else 0
                self.assertLess(sent * 16384, 64 * 1024 * 1024, "the window never shut")
                time.sleep(0.02)
            ev, gone = self.wait_gone("s1", timeout=10)
            self.assertEqual([g[1:] for g in gone], [["stalled", 1008]])
            written = [x for x in ev if x[0] == "written"]
            # Every accepted token is reported once: written, or not when the
            # connection was closed with it still queued.
            self.assertEqual(len(written), sent)
            self.assertEqual(len(set(x[1] for x in written)), sent)
            self.assertTrue(any(not x[2] for x in written), written[-3:])
            self.server.wait_for_log("output stalled")
        finally:
            sock.close()


class StopTest(HubTestCase):

    def test_sigterm_closes_websockets_1001_and_answers_parks(self):
        park = self.server.raw()
        park.send(build_request("GET", "/hub/park?key=stop-p&ms=60000"))

        async def scenario():
            ws = await websockets.connect(self.ws_url("stop-w"), subprotocols=["p1"])
            while self.server.get("/hub/held?key=stop-p").json()["held"] != "parked":
                await asyncio.sleep(0.01)
            self.server.proc.terminate()
            with self.assertRaises(websockets.exceptions.ConnectionClosed):
                await ws.recv()
            return ws.close_code
        try:
            self.assertEqual(run(scenario()), 1001)
            r = park.read_response()
            self.assertEqual(r.body, b"timeout stop-p")
            self.assertEqual(r.header("Connection"), "close")
        finally:
            park.close()
        # One SIGTERM is enough: the server ends by itself.
        self.assertEqual(self.server.proc.wait(10 * SLOW), 0)

    def tearDown(self):
        pass  # the server is meant to be gone


if __name__ == "__main__":
    unittest.main()
