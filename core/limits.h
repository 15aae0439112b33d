/* Every limit the server enforces, in one place.
 *
 * These are defaults: a --config file may override each one (key in
 * brackets), which is how the tests cross them without sending megabytes.
 * Each limit names the test that crosses it. */
#ifndef NC_LIMITS_H
#define NC_LIMITS_H

/* [max_header_bytes] Request line plus all header lines. 16 KiB holds any
 * honest request (browsers send < 4 KiB) while a client that streams headers
 * forever is cut off after a bounded buffer. Crossed: 431 in test_http.c,
 * test_server.c and tests/e2e/test_limits.py. */
#define NC_LIMIT_HEADER_BYTES (16 * 1024)

/* [max_body_bytes] A request body, Content-Length or chunked. Channel and
 * movie documents are a few KiB; 1 MiB leaves room for a notificationList
 * of many entries yet keeps one connection from pinning much memory.
 * Crossed: 413 in test_http.c, test_server.c and tests/e2e/test_limits.py. */
#define NC_LIMIT_BODY_BYTES (1024 * 1024)

/* [header_timeout_ms] From the first byte of a request until its headers are
 * complete. A slow-loris client sending one byte a second is dropped after
 * this, whatever its idle gaps. Crossed: test_server.c and
 * tests/e2e/test_limits.py. */
#define NC_LIMIT_HEADER_TIMEOUT_MS 10000

/* [idle_timeout_ms] A keep-alive connection with no request in progress,
 * or a body that stops arriving, is closed after this long. Crossed:
 * test_server.c and tests/e2e/test_limits.py. */
#define NC_LIMIT_IDLE_TIMEOUT_MS 60000

/* [body_timeout_ms] From the end of a request's headers until its body is
 * complete. The idle timeout only catches a body that stops; one byte every
 * few seconds restarts it forever, holding a connection and a buffer of up
 * to max_body_bytes. In 60 s a client as slow as 140 kbit/s still sends
 * the largest body we accept (1 MiB). Past it: 408 and close. Crossed:
 * test_server.c and tests/e2e/test_limits.py. */
#define NC_LIMIT_BODY_TIMEOUT_MS 60000

/* [max_connections] Open client connections. Each costs a few KiB plus the
 * kernel socket; past this number a new connection gets 503 and a close
 * instead of exhausting file descriptors. 20000 leaves room for the 10,000
 * WebSockets we are measured at. Crossed: test_server.c and
 * tests/e2e/test_limits.py. */
#define NC_LIMIT_MAX_CONNECTIONS 20000

/* [max_pending_write_bytes] Bytes queued for writing on one connection
 * before the server stops reading more requests from it; a client that
 * pipelines requests but never reads responses cannot grow our memory
 * without bound. Crossed: tests/e2e/test_limits.py. */
#define NC_LIMIT_PENDING_WRITE_BYTES (1024 * 1024)

/* [ws_max_message_bytes] One message from a WebSocket client, all its
 * fragments together. Clients only send connCheck/connAck, a few hundred
 * bytes; 64 KiB is generous and bounds what one client can make us buffer.
 * Crossed: close 1009 in test_ws.c and tests/e2e/test_websockets.py. */
#define NC_LIMIT_WS_MESSAGE_BYTES (64 * 1024)

/* [ws_send_window_bytes] Output to one WebSocket not yet taken by the
 * kernel. Past it the server stops pushing to that client; its
 * notifications wait in the outbox (SQLite) until it drains, so a client
 * that stops reading costs at most this much of our memory. 256 KiB holds
 * hundreds of notifications in flight for a client that does read.
 * Crossed: tests/e2e/test_websockets.py (slow and stalled readers). */
#define NC_LIMIT_WS_SEND_WINDOW_BYTES (256 * 1024)

/* [ws_stall_timeout_ms] A WebSocket whose output made no progress for this
 * long is closed: the client is gone or has stopped reading. Clients that
 * merely read slowly keep making progress and stay. Crossed:
 * tests/e2e/test_websockets.py. */
#define NC_LIMIT_WS_STALL_TIMEOUT_MS 60000

/* [max_static_file_bytes] A file served from the web root (res.file) is
 * read whole into memory; the page and its assets are a few KiB, so 8 MiB
 * only stops an accidental huge file from costing that much per request.
 * Crossed: tests/test_static.c. */
#define NC_LIMIT_STATIC_FILE_BYTES (8 * 1024 * 1024)

/* [db_cache_kib] SQLite's page cache (its default is 2 MiB). A movie
 * change fanned out to 10,000 subscriptions touches thousands of pages; at
 * 2 MiB the transaction spilled and reread them (measured: 290 ms against
 * about 100 ms). It is also the most memory notifications waiting in the
 * outbox can take: the cache is bounded, the rest stays on disk. Crossed:
 * tests/e2e/test_websockets.py (a client that never reads, with a small
 * cache, leaves the server's memory flat). */
#define NC_LIMIT_DB_CACHE_KIB (32 * 1024)

/* [script_timeout_ms] One call from C into the scripts (a handler, an
 * event of a held connection, a timer, loading app.lua), the SQL it runs
 * included. Everything runs on the one event-loop thread, so a script stuck
 * in a loop would freeze every connection for good; past this the call
 * fails as if it had raised (a handler answers 500, its transaction is
 * rolled back) and the server goes on. The longest honest call, queueing a
 * 10,000-subscriber fan-out, takes about 50 ms (a few times that under
 * ASan): 5 s is far above it, yet a runaway script stalls everyone for
 * seconds, not for ever. 0 turns the limit off. Crossed: tests/e2e/test_scripts.py. */
#define NC_LIMIT_SCRIPT_TIMEOUT_MS 5000

/* WAL pages (4 KiB each) after which a checkpoint is started on a worker
 * thread (core/checkpoint.h); SQLite's own default threshold. Not a config
 * key: it bounds the WAL file, not anything a client can push. Crossed:
 * tests/test_db.c. */
#define NC_LIMIT_WAL_CHECKPOINT_PAGES 1000

#endif
