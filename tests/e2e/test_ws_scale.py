"""1,000 concurrent WebSocket clients on one server (issue 4, "Tests"):
1,000 channels, one python3-websockets client on each, all connected at
once; the enabler then POSTs one notification to every callbackURL and each
client must receive its own, and nothing else.

The clients share one asyncio loop in this process; channels are created
and notifications POSTed from a few threads on keep-alive connections.
RLIMIT_NOFILE is raised to the hard limit first (the server inherits it).
"""

import asyncio
import json
import time
import unittest
import uuid
from concurrent.futures import ThreadPoolExecutor

import websockets.client
import websockets.exceptions

from ncfixture import SLOW, ServerTestCase, quote, raise_nofile_limit
from wsclient import NC_PROTOCOL, Delivered

BASE = "/notificationchannel/v1"
CLIENTS = 1000
THREADS = 4
CONNECTING = 100  # handshakes in flight at once (the listen backlog is finite)


def chunks(seq, n):
    return [seq[i::n] for i in range(n)]


class ScaleTest(ServerTestCase):

    server_config = {"max_connections": 4 * CLIENTS}

    @classmethod
    def setUpClass(cls):
        nofile = raise_nofile_limit()
        if nofile < CLIENTS + 200:
            raise AssertionError("RLIMIT_NOFILE is %d (hard limit): %d clients need "
                                 "more; raise it (ulimit -Hn)" % (nofile, CLIENTS))
        super().setUpClass()

    def create_channels(self, count):
        """count WebSockets channels, each under a user of its own."""
        tag = uuid.uuid4().hex[:8]

        def work(indexes):
            out = []
            c = self.server.raw()
            try:
                for i in indexes:
                    user = "acr:scale-%s-%04d" % (tag, i)
                    r = c.request("POST", "%s/%s/channels" % (BASE, quote(user)),
                                  {"notificationChannel": {
                                      "channelType": "WebSockets",
                                      "channelData": {"maxNotifications": 1}}})
                    if r.status != 201:
                        raise AssertionError("create channel %d: %r" % (i, r))
                    ch = r.json()["notificationChannel"]
                    out.append((i, {"url": ch["channelData"]["channelURL"],
                                    "cb": ch["callbackURL"][len(self.server.base_url):],
                                    "token": "%s-%d" % (uuid.uuid4().hex, i)}))
            finally:
                c.close()
            return out

        with ThreadPoolExecutor(THREADS) as ex:
            parts = list(ex.map(work, chunks(list(range(count)), THREADS)))
        return [ch for _, ch in sorted(p for part in parts for p in part)]

    def post_all(self, chans):
        def work(items):
            c = self.server.raw()
            try:
                for i, ch in items:
                    body = json.dumps({"scaleNotification": {"callbackData": ch["token"],
                                                             "seq": i}})
                    r = c.request("POST", ch["cb"], body, {"Content-Type": "application/json"})
                    if r.status != 204:
                        raise AssertionError("callback POST %d: %r" % (i, r))
            finally:
                c.close()

        with ThreadPoolExecutor(THREADS) as ex:
            list(ex.map(work, chunks(list(enumerate(chans)), THREADS)))

    async def run_clients(self, chans):
        gate = asyncio.Semaphore(CONNECTING)
        timeout = 30 * SLOW

        async def open_one(ch):
            async with gate:
                return await websockets.client.connect(
                    ch["url"], subprotocols=[NC_PROTOCOL], ping_interval=None,
                    open_timeout=timeout, close_timeout=10 * SLOW, compression=None)

        started = time.monotonic()
        socks = await asyncio.gather(*(open_one(ch) for ch in chans), return_exceptions=True)
        failed = [(i, s) for i, s in enumerate(socks) if isinstance(s, BaseException)]
        try:
            if failed:
                raise AssertionError("%d of %d connections failed, e.g. #%d: %r"
                                     % (len(failed), len(chans), failed[0][0], failed[0][1]))
            self.assertTrue(all(s.subprotocol == NC_PROTOCOL for s in socks))
            connected = time.monotonic() - started
            self.server.assert_running()

            loop = asyncio.get_running_loop()
            posting = loop.run_in_executor(None, self.post_all, chans)

            async def first(ws):
                try:
                    return await asyncio.wait_for(ws.recv(), timeout)
                except asyncio.TimeoutError:
                    return None
                except websockets.exceptions.ConnectionClosed as e:
                    return e

            got = await asyncio.gather(*(first(ws) for ws in socks))
            await posting
            delivered = time.monotonic() - started - connected

            problems = []
            for i, (ch, msg) in enumerate(zip(chans, got)):
                if msg is None or isinstance(msg, Exception):
                    problems.append("client %d got nothing (%r)" % (i, msg))
                    continue
                d = Delivered(msg)
                want = {"notificationList": [{"scaleNotification": {
                    "callbackData": ch["token"], "seq": i}}]}
                if d.doc != want:
                    problems.append("client %d got %r" % (i, msg[:200]))
            self.assertEqual(problems[:10], [], "%d of %d clients wrong" % (len(problems),
                                                                             len(chans)))

            # Nothing else arrives anywhere (a lower bound, not scaled).
            async def extra(ws):
                try:
                    return await asyncio.wait_for(ws.recv(), 0.5)
                except (asyncio.TimeoutError, websockets.exceptions.ConnectionClosed):
                    return None

            extras = [(i, m) for i, m in enumerate(await asyncio.gather(*(extra(ws) for ws in socks)))
                      if m is not None]
            self.assertEqual(extras[:5], [], "%d clients got a second message" % len(extras))
            self.assertTrue(all(s.open for s in socks), "a connection was closed")
            return connected, delivered
        finally:
            await asyncio.gather(*(s.close() for s in socks if not isinstance(s, BaseException)),
                                 return_exceptions=True)

    def test_thousand_clients_each_get_their_own(self):
        t = time.monotonic()
        chans = self.create_channels(CLIENTS)
        created = time.monotonic() - t
        self.assertEqual(len({ch["url"] for ch in chans}), CLIENTS)
        connected, delivered = asyncio.run(self.run_clients(chans))
        print("\n  [%d channels created in %.1f s, connected in %.1f s, all delivered in %.1f s]"
              % (CLIENTS, created, connected, delivered), end=" ")
        self.assertStatus(self.server.get("/health"), 200)


if __name__ == "__main__":
    unittest.main()
