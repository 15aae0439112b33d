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

/* Fills *res for *req. `res` arrives zeroed; the server frees it with
 * nc_http_response_free() once formatted. Called on the loop thread. */
typedef void (*nc_server_handler_cb)(void *ud, const nc_http_request_t *req,
                                     nc_http_response_t *res);

typedef struct {
  nc_http_limits_t http;            /* header and body sizes */
  unsigned header_timeout_ms;       /* first byte of a request -> headers done */
  unsigned idle_timeout_ms;         /* no request in progress, or body stalls */
  unsigned max_connections;         /* open client connections */
  size_t max_pending_write_bytes;   /* queued output before reads pause */
  nc_server_handler_cb handler;
  void *handler_ud;
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

/* Frees the server; only after done() has run (or if listen never
 * succeeded and the loop has run its close callbacks). */
void nc_server_free(nc_server_t *s);

/* Open client connections right now. */
unsigned nc_server_connection_count(const nc_server_t *s);

#endif
