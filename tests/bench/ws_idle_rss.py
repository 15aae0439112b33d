#!/usr/bin/python3
"""Server memory per idle WebSocket connection (issue 4, "Done when").

Starts ncserver (port 0, temporary database, as the e2e fixture does),
creates N WebSockets channels (default 10,000), reads the server's VmRSS,
opens one python3-websockets connection per channel (all held open at
once, from one asyncio loop in this process), waits for the server to
settle, reads VmRSS again and prints (after - before) / N in KiB. The
channels exist in both readings, so the difference is what the open
connections cost. RLIMIT_NOFILE is raised to the hard limit first (the
server inherits it); N connections need N descriptors on each side.

usage: ws_idle_rss.py [NCSERVER [N]]   (binary also from $NCSERVER)
Run with Debian's /usr/bin/python3 (python3-websockets).
"""

import asyncio
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

if len(sys.argv) > 1:
    os.environ["NCSERVER"] = os.path.abspath(sys.argv[1])
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))

import websockets.client  # noqa: E402

from ncfixture import SANITIZED, BINARY, Server, proc_status_kib, raise_nofile_limit  # noqa: E402
from wsclient import NC_PROTOCOL  # noqa: E402

N = int(sys.argv[2]) if len(sys.argv) > 2 else 10000
THREADS = 8
CONNECTING = 200


def create_channels(server, n):
    def work(indexes):
        urls = []
        c = server.raw(timeout=60)
        try:
            for i in indexes:
                r = c.request("POST", "/notificationchannel/v1/acr%%3Aidle%d/channels" % i,
                              {"notificationChannel": {"channelType": "WebSockets"}})
                if r.status != 201:
                    raise SystemExit("create channel %d: %r" % (i, r))
                urls.append(r.json()["notificationChannel"]["channelData"]["channelURL"])
        finally:
            c.close()
        return urls

    with ThreadPoolExecutor(THREADS) as ex:
        parts = ex.map(work, [range(k, n, THREADS) for k in range(THREADS)])
        return [u for part in parts for u in part]


def rss(server):
    return proc_status_kib(server.proc.pid, "VmRSS")


def settle(server, seconds=2.0):
    """Waits until VmRSS stops moving (or `seconds` pass); returns it."""
    last, deadline = rss(server), time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.25)
        now = rss(server)
        if now == last:
            break
        last = now
    return last


async def hold(server, urls):
    gate = asyncio.Semaphore(CONNECTING)

    async def open_one(url):
        async with gate:
            return await websockets.client.connect(url, subprotocols=[NC_PROTOCOL],
                                                   ping_interval=None, compression=None,
                                                   open_timeout=60, close_timeout=30)

    t = time.monotonic()
    socks = await asyncio.gather(*(open_one(u) for u in urls), return_exceptions=True)
    took = time.monotonic() - t
    bad = [s for s in socks if isinstance(s, BaseException)]
    good = [s for s in socks if not isinstance(s, BaseException)]
    try:
        if bad:
            raise SystemExit("%d of %d connections failed, e.g. %r" % (len(bad), len(urls), bad[0]))
        await asyncio.sleep(1.0)
        after = await asyncio.get_running_loop().run_in_executor(None, settle, server)
        open_now = sum(1 for s in good if s.open)
        return after, took, open_now
    finally:
        await asyncio.gather(*(s.close() for s in good), return_exceptions=True)


def main():
    nofile = raise_nofile_limit()
    if nofile < N + 100:
        raise SystemExit("RLIMIT_NOFILE hard limit %d is too low for %d connections" % (nofile, N))
    server = Server(config={"max_connections": N + 1000}).start()
    try:
        t = time.monotonic()
        urls = create_channels(server, N)
        created = time.monotonic() - t
        before = settle(server)
        after, took, open_now = asyncio.run(hold(server, urls))
        closed = settle(server)
        # A second round on the same channels: if the first round's memory
        # is reused rather than leaked, RSS stays near `after`.
        after2, took2, open2 = asyncio.run(hold(server, urls))
        closed2 = settle(server)
    finally:
        server.stop()
    print("ws_idle_rss: %s%s" % (BINARY, " (AddressSanitizer build: RSS says little)"
                                 if SANITIZED else ""))
    print("  %d channels created in %.1f s; %d WebSocket connections opened in %.1f s, "
          "%d still open at the reading" % (N, created, N, took, open_now))
    print("  server VmRSS: %d KiB with channels only, %d KiB with %d idle connections, "
          "%d KiB after they closed" % (before, after, N, closed))
    print("  second round: %d connections opened in %.1f s (%d open): %d KiB, "
          "%d KiB after they closed" % (N, took2, open2, after2, closed2))
    print("  RSS per idle WebSocket connection: %.2f KiB" % ((after - before) / float(N)))


if __name__ == "__main__":
    main()
