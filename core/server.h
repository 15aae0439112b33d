/* The TCP server: listener, connection lifecycle, timeouts and limits.
 *
 * Reads bytes, feeds them to an HTTP parser per connection, hands each
 * complete request to one handler callback and writes back what it fills
 * in, strictly in request order. What a request means is the handler's
 * business. */
#ifndef NC_SERVER_H
#define NC_SERVER_H

#include <uv.h>

#include "http.h"

typedef struct nc_server nc_server_t;

/* What the handler wants done with a request. */
typedef enum {
  /* Send `res` now. */
  NC_SERVER_RESPOND = 0,
  /* Hold the request open under `key` (at most one per key) and send
   * nothing now: nc_server_answer() answers it later. If it is still held
   * after `park_ms`, or when the server stops, `res` is sent instead. */
  NC_SERVER_PARK,
  /* Complete an RFC 6455 handshake and keep the connection as a WebSocket
   * under `key`, echoing `protocol` (may be NULL) in Sec-WebSocket-Protocol.
   * If the request is not a valid handshake the server answers 400 (426 for
   * a version other than 13) itself and upgrades nothing. `res` is unused. */
  NC_SERVER_UPGRADE,
  /* Send file `file` (relative to web_root) with static.c's headers, or
   * `res` when there is no such file or the path is refused. */
  NC_SERVER_FILE
} nc_server_action_t;

/* The handler's answer. Arrives zeroed; every pointer is malloc'd and
 * taken over by the server (nc_server_reply_free). */
typedef struct {
  nc_server_action_t action;
  nc_http_response_t res;
  char *key;           /* PARK, UPGRADE: the hub key ("channel id") */
  char *protocol;      /* UPGRADE */
  char *file;          /* FILE; NULL: a path the scripts gave with a NUL */
  unsigned park_ms;    /* PARK */
  /* RESPOND, PARK (for the timeout response): when nonzero, the `written`
   * event reports whether `res` reached the socket. */
  long long token;
} nc_server_reply_t;

void nc_server_reply_free(nc_server_reply_t *r);

/* Called on the loop thread for each request. `reply` arrives zeroed. */
typedef void (*nc_server_handler_cb)(void *ud, const nc_http_request_t *req,
                                     nc_server_reply_t *reply);

/* Why a held connection (parked request or WebSocket) left its key. */
typedef enum {
  NC_SERVER_GONE_TIMEOUT = 0,  /* parked: park_ms passed, `res` was sent */
  NC_SERVER_GONE_PEER,         /* the client closed, or the socket failed */
  NC_SERVER_GONE_REPLACED,     /* a newer connection took the key */
  NC_SERVER_GONE_CLOSED,       /* nc_server_close() was asked to close it */
  NC_SERVER_GONE_STALLED,      /* WebSocket: output stalled past ws_stall_timeout_ms */
  NC_SERVER_GONE_PROTOCOL,     /* WebSocket: a protocol error, a message too big,
                                  invalid UTF-8 or a binary message */
  NC_SERVER_GONE_STOPPING      /* the server is stopping */
} nc_server_gone_t;

/* Events of held connections, each called from a libuv callback, never
 * from inside a call into the server. `id` tells connections apart: a key
 * is reused when a client reconnects, an id never. Every callback is
 * optional. */
typedef struct {
  /* A WebSocket was accepted under `key` (after the 101 was queued). */
  void (*ws_open)(void *ud, const char *key, unsigned long long id);
  /* A complete text message, valid UTF-8, `len` bytes (NUL-terminated). */
  void (*ws_message)(void *ud, const char *key, unsigned long long id,
                     const char *text, size_t len);
  /* A parked request or a WebSocket left `key`; after this, `key` may
   * already hold a newer connection. Not called for a parked request that
   * nc_server_answer() answered. */
  void (*gone)(void *ud, const char *key, unsigned long long id,
               nc_server_gone_t why, int ws_close_code);
  /* The output tagged `token` (a response, an answer, a WebSocket message)
   * was handed to the kernel in full (ok = 1), or its connection closed
   * first (ok = 0). Called exactly once per nonzero token. */
  void (*written)(void *ud, long long token, int ok);
  void *ud;
} nc_server_events_t;

typedef struct {
  nc_http_limits_t http;            /* header and body sizes */
  unsigned header_timeout_ms;       /* first byte of a request -> headers done */
  unsigned idle_timeout_ms;         /* no request in progress, or body stalls */
  unsigned body_timeout_ms;         /* headers done -> body complete; past it: 408 */
  unsigned max_connections;         /* open client connections */
  size_t max_pending_write_bytes;   /* queued output before reads pause */
  size_t ws_max_message_bytes;      /* a client message; past it: close 1009 */
  size_t ws_send_window_bytes;      /* unwritten output before sends refuse */
  unsigned ws_stall_timeout_ms;     /* output stuck this long: close */
  const char *web_root;             /* canonical; NULL: no files to serve */
  size_t max_static_file_bytes;
  nc_server_handler_cb handler;
  void *handler_ud;
  nc_server_events_t events;
} nc_server_options_t;

/* Returns a server on `loop` (borrowed), or NULL when out of memory.
 * `opts` is copied. */
nc_server_t *nc_server_new(uv_loop_t *loop, const nc_server_options_t *opts);

/* Binds and listens on host:port (port 0: any free port, reported in
 * *bound_port). Returns 0 or a negative libuv error code. */
int nc_server_listen(nc_server_t *s, const char *host, int port, int *bound_port);

/* Stops accepting, closes idle connections at once and the others once
 * their response is written (at most a few seconds later), then calls
 * done(ud). Call once. */
void nc_server_stop(nc_server_t *s, void (*done)(void *ud), void *ud);

/* After nc_server_stop(): closes every connection now rather than at the
 * deadline; done() follows as usual. */
void nc_server_stop_now(nc_server_t *s);

/* Frees the server; only after done() has run (or if listen never
 * succeeded and the loop has run its close callbacks). */
void nc_server_free(nc_server_t *s);

/* ---- held connections, by key ---- */

typedef enum {
  NC_SERVER_HELD_NONE = 0,
  NC_SERVER_HELD_PARKED,
  NC_SERVER_HELD_WEBSOCKET
} nc_server_held_t;

/* What holds `key` now. */
nc_server_held_t nc_server_held(nc_server_t *s, const char *key);

/* Answers the request parked under `key` with `res` (taken over, freed
 * here in every case); `token` as in nc_server_reply_t. 0, or -1 when no
 * request is parked under `key`. */
int nc_server_answer(nc_server_t *s, const char *key, nc_http_response_t *res,
                     long long token);

/* Sends `text` as one text frame on the WebSocket under `key`. 0 when
 * queued; -1 when there is none; -2 when its send window is full (unwritten
 * output >= ws_send_window_bytes): nothing was queued, try again after a
 * `written` event of that connection. */
int nc_server_send(nc_server_t *s, const char *key, const char *text,
                   size_t len, long long token);

/* Closes what holds `key`: a WebSocket with a close frame (code, reason),
 * a parked request without an answer. The key is free at once; `gone`
 * follows with NC_SERVER_GONE_CLOSED. 0, or -1 when nothing holds it. */
int nc_server_close(nc_server_t *s, const char *key, int code, const char *reason);

/* Open client connections right now. */
unsigned nc_server_connection_count(const nc_server_t *s);

#endif
