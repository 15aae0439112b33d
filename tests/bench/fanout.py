#!/usr/bin/python3
"""One movie change fanned out to N subscriptions (issue 5, "Notifications").

Starts ncserver (port 0, temporary database, as the e2e fixture does) and,
over the REST API, creates N users (default 10,000), each with one
WebSockets channel and one subscription to movie 1 whose notifyURL is that
channel's callbackURL (POST /movies/v1/{userId}/subscriptions, JSON
notifications, callbackData naming the user). It connects one
python3-websockets client per channel (all held open at once, from one
asyncio loop in this process), then sends a PATCH of movie 1's
premiereDate (CHANGES of them, each once every client has the one before)
and measures for each:

  queue:    the PATCH, from writing the request to reading its 200: the
            movie change, the notification's template and the N outbox
            rows, one transaction (the server's own figure, from its log,
            is printed too, and with log level debug the fan-out INSERT
            statement's alone);
  delivery: from writing the PATCH until every client has its
            notification (checked: eventType, changedFields, callbackData
            and link of its own subscription); and the server's own time
            from the first slice of its wake-up queue to the last (log);
  stall:    the event loop's longest stall meanwhile, two ways: a separate
            process sends GET /health over one keep-alive connection,
            back to back, the whole time, and the slowest answer among
            those in flight during the fan-out is the longest the loop was
            away (minus one round trip); and the server logs the longest
            slice of its wake-up queue. A baseline of the same sampler
            before the first PATCH says what the machine itself adds.

With CHANGES > 1 a last line gives min/median/max over the PATCHes: on a
shared 2-vCPU VM one figure varies by a factor of two from one PATCH to
the next, so compare spreads, not single runs. To compare two versions of
the scripts on the same binary, point $NC_SCRIPTS and $NC_SQL at a copy
of the other version (e.g. `git archive HEAD | tar -x -C /tmp/base`).

RLIMIT_NOFILE is raised to the hard limit first (the server inherits it);
N connections need N descriptors on each side. The clients share the
machine with the server, so the delivery time is also that of Python
receiving N frames.

usage: fanout.py [NCSERVER [N [CHANGES]]]
    binary also from $NCSERVER; scripts from $NC_SCRIPTS and migrations
    from $NC_SQL, default the source tree's; CHANGES (default 1) PATCHes
    one after the other, each measured; NC_BENCH_LOG_LEVEL=debug for the
    INSERT statement's own time; NC_BENCH_LOG=1 to print the server's
    lines about the fan-out
Run with Debian's /usr/bin/python3 (python3-websockets).
"""

import asyncio
import json
import multiprocessing
import os
import re
import socket
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor

if len(sys.argv) > 1:
    os.environ["NCSERVER"] = os.path.abspath(sys.argv[1])
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))

import websockets.client  # noqa: E402

from ncfixture import SANITIZED, BINARY, RawConn, Server, quote, raise_nofile_limit  # noqa: E402
from wsclient import NC_PROTOCOL  # noqa: E402

N = int(sys.argv[2]) if len(sys.argv) > 2 else 10000
# PATCHes per run, each after every client has the one before: more than
# one gives several figures from one (slow) set-up.
CHANGES = int(sys.argv[3]) if len(sys.argv) > 3 else 1
THREADS = 8
CONNECTING = 200
MOVIE = 1
BASELINE_S = 1.0
DELIVERY_TIMEOUT_S = 300


def user(i):
    return "acr:fan%d" % i


def setup_user(server, indexes):
    """Creates a channel and a subscription for each user; returns
    (index, channelURL, subscription resourceURL) per user."""
    out = []
    c = server.raw(timeout=60)
    try:
        for i in indexes:
            u = quote(user(i))
            r = c.request("POST", "/notificationchannel/v1/%s/channels" % u,
                          {"notificationChannel": {"channelType": "WebSockets"}})
            if r.status != 201:
                raise SystemExit("create channel %d: %r" % (i, r))
            ch = r.json()["notificationChannel"]
            r = c.request("POST", "/movies/v1/%s/subscriptions" % u,
                          {"movieSubscription": {
                              "callbackReference": {"notifyURL": ch["callbackURL"],
                                                    "callbackData": "user %d" % i,
                                                    "notificationFormat": "JSON"},
                              "filter": {"movieId": [MOVIE]}}})
            if r.status != 201:
                raise SystemExit("create subscription %d: %r" % (i, r))
            sub = r.json()["movieSubscription"]["resourceURL"]
            out.append((i, ch["channelData"]["channelURL"], sub))
    finally:
        c.close()
    return out


def setup(server, n):
    with ThreadPoolExecutor(THREADS) as ex:
        parts = ex.map(lambda idx: setup_user(server, idx),
                       [range(k, n, THREADS) for k in range(THREADS)])
        return sorted(u for part in parts for u in part)


def sample_health(host, port, stop, out):
    """In its own process: GET /health back to back on one keep-alive
    connection until `stop` is set; sends [(sent, latency)] (monotonic
    seconds, a clock shared by every process) through `out`."""
    conn = RawConn(host, port, timeout=30)
    req = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    samples = []
    try:
        while not stop.is_set():
            t0 = time.monotonic()
            conn.send(req)
            r = conn.read_response()
            t1 = time.monotonic()
            if r.status != 200:
                raise SystemExit("health: %r" % r)
            samples.append((t0, t1 - t0))
    finally:
        conn.close()
        out.send(samples)
        out.close()


def patch(server, date):
    conn = RawConn(server.host, server.port, timeout=120)
    body = json.dumps({"movie": {"premiereDate": date}}).encode()
    req = (b"PATCH /movies/v1/movies/%d HTTP/1.1\r\nHost: 127.0.0.1\r\n"
           b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
           % (MOVIE, len(body))) + body
    try:
        t0 = time.monotonic()
        conn.send(req)
        r = conn.read_response()
        t1 = time.monotonic()
    finally:
        conn.close()
    if r.status != 200:
        raise SystemExit("PATCH: %r" % r)
    return t0, t1


async def fan_out(server, users, dates):
    """Connects every user's WebSocket, then makes one PATCH per date in
    `dates`, each once every client has the notification of the one
    before."""
    gate = asyncio.Semaphore(CONNECTING)

    async def open_one(url):
        async with gate:
            return await websockets.client.connect(url, subprotocols=[NC_PROTOCOL],
                                                   ping_interval=None, compression=None,
                                                   open_timeout=60, close_timeout=30,
                                                   max_queue=None)

    t = time.monotonic()
    socks = await asyncio.gather(*(open_one(u[1]) for u in users), return_exceptions=True)
    connected = time.monotonic() - t
    bad = [s for s in socks if isinstance(s, BaseException)]
    good = [s for s in socks if not isinstance(s, BaseException)]
    try:
        if bad:
            raise SystemExit("%d of %d connections failed, e.g. %r"
                             % (len(bad), len(users), bad[0]))

        async def receive(ws, i, sub, date):
            text = await ws.recv()
            got = time.monotonic()
            items = json.loads(text)["notificationList"]
            n = items[0]["movieNotification"]
            if (len(items) != 1 or n["eventType"] != "MovieUpdated"
                    or n["changedFields"] != ["premiereDate"]
                    or n["movie"]["premiereDate"] != date
                    or n["callbackData"] != "user %d" % i
                    or n["link"] != {"rel": "MovieSubscription", "href": sub}):
                raise SystemExit("client %d got %r" % (i, text[:500]))
            return got

        stop = multiprocessing.Event()
        parent, child = multiprocessing.Pipe(duplex=False)
        sampler = multiprocessing.Process(target=sample_health,
                                          args=(server.host, server.port, stop, child))
        sampler.start()
        await asyncio.sleep(BASELINE_S)
        loop = asyncio.get_running_loop()
        changes = []
        for date in dates:
            receivers = [asyncio.ensure_future(receive(ws, u[0], u[2], date))
                         for ws, u in zip(good, users)]
            await asyncio.sleep(0.5)  # every receiver is waiting
            t0, t1 = await loop.run_in_executor(None, patch, server, date)
            got = await asyncio.wait_for(asyncio.gather(*receivers), DELIVERY_TIMEOUT_S)
            changes.append({"t0": t0, "t1": t1, "got": got, "t_all": time.monotonic()})
        await asyncio.sleep(0.2)
        stop.set()
        samples = await loop.run_in_executor(None, parent.recv)
        sampler.join()
        return {"connected": connected, "changes": changes, "samples": samples}
    finally:
        await asyncio.gather(*(s.close() for s in good), return_exceptions=True)


def log_figures(log, pattern):
    return list(re.finditer(pattern, log))


def spread(values, fmt="%.1f"):
    """min / median / max of `values` as text."""
    if not values:
        return "-"
    return "/".join(fmt % v for v in (min(values), statistics.median(values), max(values)))


def main():
    nofile = raise_nofile_limit()
    if nofile < N + 100:
        raise SystemExit("RLIMIT_NOFILE hard limit %d is too low for %d connections" % (nofile, N))
    # $NC_SCRIPTS, $NC_SQL: other scripts and migrations directories, to
    # measure a change without touching the tree.
    config = {"max_connections": N + 1000}
    if os.environ.get("NC_SQL"):
        config["sql"] = os.path.abspath(os.environ["NC_SQL"])
    if os.environ.get("NC_BENCH_LOG_LEVEL"):
        # "debug" adds the fan-out INSERT's own time to the figures (and a
        # line per request to the log, which costs the server a little).
        config["log_level"] = os.environ["NC_BENCH_LOG_LEVEL"]
    server = Server(config=config, scripts=os.environ.get("NC_SCRIPTS")).start()
    try:
        t = time.monotonic()
        users = setup(server, N)
        created = time.monotonic() - t
        r = server.get("/movies/v1/movies/%d" % MOVIE)
        if r.status != 200:
            raise SystemExit("movie %d: %r" % (MOVIE, r))
        current = r.json()["movie"]["premiereDate"]
        dates = [d for d in ("2031-05-%02d" % k for k in range(1, CHANGES + 2))
                 if d != current][:CHANGES]
        res = asyncio.run(fan_out(server, users, dates))
        log = server.log()
    finally:
        server.stop()

    samples = res["samples"]
    first_t0 = res["changes"][0]["t0"]
    base = [lat for (s, lat) in samples if s + lat < first_t0]
    queued = log_figures(log, r"movie %d MovieUpdated: (\d+) notification\(s\) queued "
                              r"in (\d+) ms" % MOVIE)
    inserts = log_figures(log, r"movie %d: fan-out INSERT of (\d+) row\(s\) took (\d+) ms"
                          % MOVIE)
    woke = log_figures(log, r"delivery: woke (\d+) channel\(s\) in (\d+) slices over (\d+) ms, "
                            r"longest slice (\d+) ms")

    print("fanout: %s%s" % (BINARY, " (AddressSanitizer build: times say little)"
                            if SANITIZED else ""))
    print("  %d users, each a WebSockets channel and a subscription to movie %d, created "
          "over REST in %.1f s; %d clients connected in %.1f s"
          % (N, MOVIE, created, N, res["connected"]))
    figures = {"patch": [], "queued": [], "insert": [], "delivery": [], "stall": []}
    for k, c in enumerate(res["changes"]):
        t0, t1, t_all = c["t0"], c["t1"], c["t_all"]
        got = sorted(g - t0 for g in c["got"])
        # A health request that was in flight at any time during the fan-out.
        during = [lat for (s, lat) in samples if s + lat >= t0 and s <= t_all]
        q = queued[k] if k < len(queued) else None
        ins = inserts[k] if k < len(inserts) else None
        w = woke[k] if k < len(woke) else None
        figures["patch"].append((t1 - t0) * 1000)
        figures["delivery"].append((t_all - t0) * 1000)
        if q:
            figures["queued"].append(int(q.group(2)))
        if ins:
            figures["insert"].append(int(ins.group(2)))
        if during:
            figures["stall"].append(max(during) * 1000)
        print("  PATCH %d of movie %d premiereDate:" % (k + 1, MOVIE))
        print("    queue:    PATCH answered in %.1f ms%s"
              % ((t1 - t0) * 1000, "; server: %s rows queued in %s ms (template and rows, "
                 "before the commit)" % q.groups() if q else ""))
        if ins:
            print("              of which the fan-out INSERT statement: %s rows in %s ms "
                  "(debug log)" % ins.groups())
        print("    delivery: all %d clients had their notification %.1f ms after the PATCH "
              "(first %.1f ms, median %.1f ms)%s"
              % (len(got), (t_all - t0) * 1000, got[0] * 1000, statistics.median(got) * 1000,
                 "; server: %s channels woken in %s slices over %s ms" % w.groups()[:3]
                 if w else ""))
        if during:
            print("    stall:    GET /health back to back: max %.1f ms during the fan-out "
                  "(%d requests, median %.2f ms)"
                  % (max(during) * 1000, len(during), statistics.median(during) * 1000))
        if w:
            print("              longest wake-up slice (server log): %s ms" % w.group(4))
    if base:
        print("  baseline:   GET /health before the first PATCH: max %.1f ms, median %.2f ms"
              % (max(base) * 1000, statistics.median(base) * 1000))
    if len(res["changes"]) > 1:
        print("  over %d PATCHes, min/median/max (ms): PATCH %s; queued %s; INSERT %s; "
              "delivery %s; /health max %s"
              % (len(res["changes"]), spread(figures["patch"]), spread(figures["queued"], "%d"),
                 spread(figures["insert"], "%d"), spread(figures["delivery"], "%.0f"),
                 spread(figures["stall"])))
    if os.environ.get("NC_BENCH_LOG"):
        # The server's lines about this change, e.g. for a profiling build.
        for line in log.splitlines():
            if ("movie %d" % MOVIE in line or "delivery:" in line
                    or "outbox template" in line or "WAL checkpoint" in line):
                print("  log: " + line)


if __name__ == "__main__":
    main()
