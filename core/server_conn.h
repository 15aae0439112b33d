/* The server module's private parts, shared by server.c (connections,
 * HTTP) and server_held.c (parked requests, WebSockets, the hub). Not a
 * public surface: nothing outside these two files includes it; server.h is
 * the module's API. */
#ifndef NC_SERVER_CONN_H
#define NC_SERVER_CONN_H

#include <stdint.h>

#include "http.h"
#include "hub.h"
#include "server.h"
#include "ws.h"

/* After the last response of a connection we half-close and keep reading
 * (and discarding) for this long, so unread input does not make the kernel
 * answer with a reset that destroys the response in flight (RFC 9112 9.6). */
#define LINGER_MS 2000

/* A stop waits this long for in-flight responses before closing anyway. */
#define STOP_DEADLINE_MS 5000

/* Connections refused for being over max_connections still hold a socket
 * while their 503 goes out; past this many we drop new ones outright. */
#define MAX_REJECTING 64

#define READ_BUFFER_BYTES (64 * 1024)

/* Input read while a request is parked waits unparsed (the client may
 * pipeline its next request); past this much we stop reading from it. */
#define PARKED_INPUT_BYTES (64 * 1024)

typedef enum { CONN_OPEN, CONN_LINGER, CONN_CLOSING } conn_state_t;

/* What a connection speaks: HTTP requests, HTTP with one request parked
 * until answered, or WebSocket frames after an upgrade. */
typedef enum { MODE_HTTP, MODE_PARKED, MODE_WS } conn_mode_t;

struct ws_msg;

typedef struct conn {
  uv_tcp_t tcp;
  uv_timer_t timer;
  uv_shutdown_t shutdown;
  nc_server_t *server;
  nc_http_parser_t *parser;
  struct conn *prev, *next;
  conn_state_t state;
  int handles_open;          /* freed when both tcp and timer have closed */
  int rejected;              /* over max_connections: 503 then close */
  int reading;
  int paused_for_writes;     /* reads stopped until output drains */
  int close_after_write;     /* last response queued: linger once written */
  char *pending;             /* bytes read but not fed while paused */
  size_t pending_len;
  size_t write_bytes;        /* queued and not yet written */
  /* Clocks of the request being read, 0 between requests: loop time its
   * first byte was fed to the parser (the header deadline runs from here)
   * and loop time its headers were complete (the body deadline). Reset as
   * each request completes, so a pipelined request that arrived in the same
   * read as the end of its predecessor gets a clock of its own. */
  uint64_t request_started;
  uint64_t body_started;
  conn_mode_t mode;
  /* Under a key in the hub (parked or WebSocket). The key outlives that,
   * for the `gone` event owed once the connection lets go of it. */
  char *key;
  unsigned long long id;
  int in_hub;
  int gone_owed;
  nc_server_gone_t gone_why;
  int gone_code;
  /* MODE_PARKED: what to send on timeout or stop. */
  nc_http_response_t park_res;
  long long park_token;
  /* A token whose output could not be queued: reported (not written) once
   * the connection, which is closing then, has closed. */
  long long unreported_token;
  /* MODE_WS */
  nc_ws_t *ws;
  struct ws_msg *inbox;      /* messages ws.c handed over during a feed */
  char *ws_out;              /* frames produced by one ws.c call */
  size_t ws_out_len;
  uint64_t last_write_done;  /* loop time output last made progress */
  char peer[64];
} conn_t;

typedef struct {
  uv_write_t req;
  char *data;
  size_t len;
  long long token; /* nonzero: reported through events.written */
} write_req_t;

struct nc_server {
  uv_loop_t *loop;
  uv_tcp_t listener;
  uv_timer_t stop_timer;
  nc_server_options_t opts;
  conn_t *conns; /* open and lingering connections, newest first */
  nc_hub_t *hub;  /* key -> conn_t holding it */
  unsigned long long next_id;
  unsigned count;
  unsigned rejecting;
  int listening;
  int listener_open;
  int stopping;
  int stop_timer_closed;
  void (*done)(void *ud);
  void *done_ud;
  char read_buffer[READ_BUFFER_BYTES];
};

/* ---- server.c ---- */

void nc_conn_close(conn_t *c);
/* Queues `data` (taking ownership) for writing. 0, or -1 when it could not
 * be queued: the connection is then closing and `token` is not reported. */
int nc_conn_write(conn_t *c, char *data, size_t len, long long token);
/* The connection ends after what is queued now. */
void nc_conn_finish(conn_t *c);
void nc_conn_respond_plain(conn_t *c, int status, const char *text,
                           const nc_http_header_t *extra);
int nc_conn_send_response(conn_t *c, const nc_http_request_t *req,
                          nc_http_response_t *res, long long token);
void nc_conn_update_timer(conn_t *c);
void nc_conn_timeout_cb(uv_timer_t *t);
void nc_conn_process(conn_t *c, const char *data, size_t len);
void nc_conn_start_reading(conn_t *c);
void nc_conn_stop_reading(conn_t *c);
void nc_conn_hold_input(conn_t *c, const char *data, size_t len);

/* ---- server_held.c ---- */

/* The connection lets go of its key; `gone` is owed unless !owe_event. */
void nc_held_let_go(conn_t *c, nc_server_gone_t why, int code, int owe_event);
/* Sends the `gone` event owed, if any. */
void nc_held_emit_gone(conn_t *c);
void nc_held_park(conn_t *c, nc_server_reply_t *reply);
void nc_held_end_park(conn_t *c, nc_server_gone_t why);
void nc_held_upgrade(conn_t *c, const nc_http_request_t *req, nc_server_reply_t *reply);
void nc_held_ws_process(conn_t *c, const char *data, size_t len);
void nc_held_ws_timeout(conn_t *c);
void nc_held_ws_close(conn_t *c, int code, const char *reason);
/* Frees what a held connection owns; called as the connection is freed. */
void nc_held_free(conn_t *c);

#endif
