#!/usr/bin/python3
"""Time from a callback POST to WebSocket receipt (issue 4, "Done when").

Starts ncserver (port 0, temporary database, as the e2e fixture does),
creates one WebSockets channel, connects one python3-websockets client and
POSTs N notifications (default 1,000) one at a time to the callbackURL over
one HTTP/1.1 keep-alive connection. For each, the clock starts just before
the request is written and stops when the client has the text frame that
carries it; the next POST waits for both the frame and the 204. Prints
p50 / p90 / p99 / max / mean in milliseconds.

usage: ws_latency.py [NCSERVER [N]]   (binary also from $NCSERVER)
Run with Debian's /usr/bin/python3 (python3-websockets).
"""

import asyncio
import json
import os
import statistics
import sys
import time

if len(sys.argv) > 1:
    os.environ["NCSERVER"] = os.path.abspath(sys.argv[1])
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))

import websockets.client  # noqa: E402

from ncfixture import SANITIZED, BINARY, Server  # noqa: E402
from wsclient import NC_PROTOCOL  # noqa: E402

N = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
WARMUP = 20


async def read_response(reader):
    """One HTTP/1.1 response (status, body) from a keep-alive stream."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    length = 0
    for line in lines[1:]:
        if line.lower().startswith("content-length:"):
            length = int(line.split(":", 1)[1])
    body = await reader.readexactly(length) if length else b""
    return status, body


async def run(server):
    host, port = server.host, server.port
    r = server.request("POST", "/notificationchannel/v1/acr%3Abench/channels",
                       {"notificationChannel": {"channelType": "WebSockets",
                                                "channelData": {"maxNotifications": 1}}})
    if r.status != 201:
        raise SystemExit("create channel: %r" % r)
    ch = r.json()["notificationChannel"]
    cb = ch["callbackURL"][len(server.base_url):]
    ws = await websockets.client.connect(ch["channelData"]["channelURL"],
                                         subprotocols=[NC_PROTOCOL], ping_interval=None,
                                         compression=None)
    reader, writer = await asyncio.open_connection(host, port)
    sock = writer.get_extra_info("socket")
    import socket
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    times = []
    for i in range(-WARMUP, N):
        body = json.dumps({"benchNotification": {"callbackData": "bench", "seq": i}}).encode()
        req = (b"POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\n"
               b"Content-Length: %d\r\n\r\n" % (cb.encode(), host.encode(), port, len(body))) + body

        async def receive():
            msg = await ws.recv()
            t = time.perf_counter()
            seq = json.loads(msg)["notificationList"][0]["benchNotification"]["seq"]
            if seq != i:
                raise SystemExit("got seq %s, expected %d" % (seq, i))
            return t

        recv_task = asyncio.ensure_future(receive())
        t0 = time.perf_counter()
        writer.write(req)
        status, rbody = await read_response(reader)
        if status != 204:
            raise SystemExit("callback POST answered %d: %r" % (status, rbody[:300]))
        t1 = await asyncio.wait_for(recv_task, 30)
        if i >= 0:
            times.append((t1 - t0) * 1000.0)
    writer.close()
    await ws.close()
    return times


def pct(sorted_ms, p):
    k = max(0, min(len(sorted_ms) - 1, int(round(p / 100.0 * len(sorted_ms) + 0.5)) - 1))
    return sorted_ms[k]


def main():
    server = Server(config={}).start()
    try:
        times = asyncio.run(run(server))
    finally:
        server.stop()
    s = sorted(times)
    print("ws_latency: %s%s" % (BINARY, " (AddressSanitizer build)" if SANITIZED else ""))
    print("callback POST -> WebSocket frame received, %d deliveries (after %d warm-up), "
          "one at a time:" % (len(s), WARMUP))
    print("  p50 %.3f ms  p90 %.3f ms  p99 %.3f ms  max %.3f ms  mean %.3f ms"
          % (pct(s, 50), pct(s, 90), pct(s, 99), s[-1], statistics.mean(s)))


if __name__ == "__main__":
    main()
