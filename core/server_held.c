/* Connections held open under a key: requests parked until the scripts
 * answer them (or their time runs out), and WebSockets. The hub maps each
 * key to the one connection holding it; this file hands the scripts'
 * answers and messages to those connections and tells the scripts, through
 * the events of server.h, what became of them. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "server_conn.h"

typedef struct ws_msg {
  struct ws_msg *next;
  size_t len;
  char text[];
} ws_msg_t;

static void free_inbox(conn_t *c);

/* ---- the hub: connections held under a key ---- */

/* The connection lets go of its key, so another may take it at once. The
 * `gone` event is owed (nc_held_emit_gone sends it) unless the scripts
 * ended the hold themselves with an answer. */
void nc_held_let_go(conn_t *c, nc_server_gone_t why, int code, int owe_event) {
  if (!c->in_hub) return;
  nc_hub_remove(c->server->hub, c->key, c);
  c->in_hub = 0;
  if (owe_event && !c->gone_owed) {
    c->gone_owed = 1;
    c->gone_why = why;
    c->gone_code = code;
  }
}

void nc_held_emit_gone(conn_t *c) {
  if (!c->gone_owed) return;
  c->gone_owed = 0;
  const nc_server_events_t *ev = &c->server->opts.events;
  if (ev->gone) ev->gone(ev->ud, c->key, c->id, c->gone_why, c->gone_code);
}

static void replaced(conn_t *old);

/* Puts c under `key` (taken over), displacing whatever held it. */
static int hold(conn_t *c, char *key) {
  nc_server_t *s = c->server;
  free(c->key);
  c->key = key;
  c->id = ++s->next_id;
  void *previous;
  if (nc_hub_put(s->hub, key, c, &previous) != 0) return -1;
  c->in_hub = 1;
  if (previous) replaced(previous);
  return 0;
}

/* ---- parked requests ---- */

/* Sends the answer of the parked request and goes back to HTTP. Input that
 * waited is fed from the connection's timer, not from here: this may run
 * inside a call from the scripts, which must not be re-entered. */
static int answer_parked(conn_t *c, nc_http_response_t *res, long long token) {
  const nc_http_request_t *req = nc_http_parser_request(c->parser);
  c->mode = MODE_HTTP;
  int rc = nc_conn_send_response(c, req, res, token);
  if (c->state == CONN_OPEN) {
    nc_http_parser_next(c->parser);
    nc_conn_update_timer(c);
  }
  return rc;
}

void nc_held_park(conn_t *c, nc_server_reply_t *reply) {
  nc_server_t *s = c->server;
  c->park_res = reply->res;
  memset(&reply->res, 0, sizeof reply->res);
  c->park_token = reply->token;
  c->mode = MODE_PARKED;
  char *key = reply->key;
  reply->key = NULL;
  if (s->stopping || hold(c, key) != 0) {
    if (!s->stopping) nc_log(NC_LOG_ERROR, "%s: out of memory parking a request", c->peer);
    long long token = c->park_token;
    c->park_token = 0;
    if (answer_parked(c, &c->park_res, token) != 0) c->unreported_token = token;
    return;
  }
  uv_timer_start(&c->timer, nc_conn_timeout_cb, reply->park_ms, 0);
}

/* The parked request ends with its own timeout response. On a timeout the
 * connection goes on, so `gone` is sent now; otherwise (stopping) it is
 * sent when the connection closes after this response. */
void nc_held_end_park(conn_t *c, nc_server_gone_t why) {
  nc_held_let_go(c, why, 0, 1);
  long long token = c->park_token;
  c->park_token = 0;
  if (answer_parked(c, &c->park_res, token) != 0) c->unreported_token = token;
  if (why == NC_SERVER_GONE_TIMEOUT) nc_held_emit_gone(c);
}

/* ---- WebSockets ---- */

static int ws_output_cb(void *ud, const uint8_t *data, size_t len) {
  conn_t *c = ud;
  char *grown = realloc(c->ws_out, c->ws_out_len + len);
  if (!grown) return -1;
  memcpy(grown + c->ws_out_len, data, len);
  c->ws_out = grown;
  c->ws_out_len += len;
  return 0;
}

/* Messages wait until ws.c has returned, so the scripts never run (and
 * send) while wslay is in the middle of reading. */
static void ws_message_cb(void *ud, const char *text, size_t len) {
  conn_t *c = ud;
  ws_msg_t *m = malloc(sizeof *m + len + 1);
  if (!m) {
    nc_log(NC_LOG_ERROR, "%s: out of memory for a WebSocket message", c->peer);
    return;
  }
  m->next = NULL;
  m->len = len;
  memcpy(m->text, text, len);
  m->text[len] = '\0';
  ws_msg_t **tail = &c->inbox;
  while (*tail) tail = &(*tail)->next;
  *tail = m;
}

static void free_inbox(conn_t *c) {
  ws_msg_t *m = c->inbox;
  while (m) {
    ws_msg_t *next = m->next;
    free(m);
    m = next;
  }
  c->inbox = NULL;
}

/* Queues what the last ws.c call produced, as one write tagged `token`. */
static int ws_flush(conn_t *c, long long token) {
  if (c->ws_out_len == 0) return token ? -1 : 0;
  char *data = c->ws_out;
  size_t len = c->ws_out_len;
  c->ws_out = NULL;
  c->ws_out_len = 0;
  return nc_conn_write(c, data, len, token);
}

static nc_server_gone_t ws_close_reason(int code) {
  switch (code) {
    case 1002: case 1003: case 1007: case 1009: case 1011:
      return NC_SERVER_GONE_PROTOCOL;
    default:
      return NC_SERVER_GONE_PEER;
  }
}

/* After ws.c left the OPEN state: the key is free, and once the close
 * frames are exchanged (or the wait for the peer's times out) the TCP
 * connection ends. */
static void ws_after_close(conn_t *c) {
  if (c->state != CONN_OPEN) return;
  int code = nc_ws_close_code(c->ws);
  if (c->in_hub) {
    nc_server_gone_t why = ws_close_reason(code);
    if (why == NC_SERVER_GONE_PROTOCOL)
      nc_log(NC_LOG_INFO, "%s: WebSocket %s closed: protocol error (%d)", c->peer,
             c->key, code);
    nc_held_let_go(c, why, code, 1);
  }
  if (nc_ws_state(c->ws) == NC_WS_CLOSED)
    nc_conn_finish(c);
  else
    nc_conn_update_timer(c);
}

void nc_held_ws_process(conn_t *c, const char *data, size_t len) {
  nc_server_t *s = c->server;
  if (c->write_bytes > s->opts.max_pending_write_bytes) {
    /* Pings it does not read the pongs of: stop reading until it does. */
    nc_conn_stop_reading(c);
    c->paused_for_writes = 1;
    nc_conn_hold_input(c, data, len);
    return;
  }
  nc_ws_state_t st = nc_ws_feed(c->ws, (const uint8_t *)data, len);
  if (ws_flush(c, 0) != 0) return;
  while (c->inbox) {
    ws_msg_t *m = c->inbox;
    c->inbox = m->next;
    if (c->state == CONN_OPEN && c->in_hub && s->opts.events.ws_message)
      s->opts.events.ws_message(s->opts.events.ud, c->key, c->id, m->text, m->len);
    free(m);
  }
  if (c->state == CONN_OPEN && (st != NC_WS_OPEN || nc_ws_state(c->ws) != NC_WS_OPEN))
    ws_after_close(c);
}

/* Starts our side of the close handshake. */
void nc_held_ws_close(conn_t *c, int code, const char *reason) {
  nc_ws_close(c->ws, (uint16_t)code, reason);
  if (ws_flush(c, 0) != 0) return;
  if (nc_ws_state(c->ws) == NC_WS_CLOSED)
    nc_conn_finish(c);
  else
    nc_conn_update_timer(c);
}

void nc_held_upgrade(conn_t *c, const nc_http_request_t *req, nc_server_reply_t *reply) {
  nc_server_t *s = c->server;
  char accept[29];
  const char *why = NULL;
  int status = nc_ws_handshake_check(req, accept, &why);
  if (status != 0) {
    nc_log(NC_LOG_INFO, "%s: %s %s: refused WebSocket upgrade (%d): %s", c->peer,
           req->method, req->target, status, why);
    nc_http_header_t version = {"Sec-WebSocket-Version", "13"};
    char text[200];
    snprintf(text, sizeof text, "%d %s: %s", status, nc_http_status_text(status), why);
    nc_conn_respond_plain(c, status, text, status == 426 ? &version : NULL);
    return;
  }
  if (s->stopping) {
    nc_conn_respond_plain(c, 503, "503 Service Unavailable: stopping", NULL);
    return;
  }
  const char *protocol = reply->protocol;
  size_t cap = 160 + (protocol ? strlen(protocol) : 0);
  char *head = malloc(cap);
  if (!head) {
    nc_conn_close(c);
    return;
  }
  /* RFC 6455 4.2.2. No Content-Length: a 101 has no body (RFC 9110 8.6). */
  int n = snprintf(head, cap,
                   "HTTP/1.1 101 Switching Protocols\r\n"
                   "Upgrade: websocket\r\n"
                   "Connection: Upgrade\r\n"
                   "Sec-WebSocket-Accept: %s\r\n"
                   "%s%s%s"
                   "\r\n",
                   accept, protocol ? "Sec-WebSocket-Protocol: " : "",
                   protocol ? protocol : "", protocol ? "\r\n" : "");
  nc_ws_options_t opts = {
      .output = ws_output_cb,
      .message = ws_message_cb,
      .ud = c,
      .max_message_bytes = s->opts.ws_max_message_bytes,
  };
  c->ws = nc_ws_new(&opts);
  if (!c->ws) {
    free(head);
    nc_log(NC_LOG_ERROR, "%s: out of memory for a WebSocket", c->peer);
    nc_conn_close(c);
    return;
  }
  if (nc_conn_write(c, head, (size_t)n, 0) != 0) return;
  c->mode = MODE_WS;
  char *key = reply->key;
  reply->key = NULL;
  if (hold(c, key) != 0) {
    nc_log(NC_LOG_ERROR, "%s: out of memory holding a WebSocket", c->peer);
    nc_conn_close(c);
    return;
  }
  nc_log(NC_LOG_DEBUG, "%s GET %s -> 101 (WebSocket %llu)", c->peer, req->target, c->id);
  nc_conn_update_timer(c);
  if (s->opts.events.ws_open) s->opts.events.ws_open(s->opts.events.ud, c->key, c->id);
}

/* A newer connection took old's key. */
static void replaced(conn_t *old) {
  old->in_hub = 0;
  old->gone_owed = 1;
  old->gone_why = NC_SERVER_GONE_REPLACED;
  old->gone_code = old->mode == MODE_WS ? 1000 : 0;
  if (old->mode == MODE_PARKED) {
    long long token = old->park_token;
    old->park_token = 0;
    if (answer_parked(old, &old->park_res, token) != 0) old->unreported_token = token;
    nc_held_emit_gone(old);
  } else if (old->mode == MODE_WS && old->state == CONN_OPEN) {
    nc_held_ws_close(old, 1000, "replaced by a newer connection");
  }
}

void nc_held_ws_timeout(conn_t *c) {
  if (nc_ws_state(c->ws) != NC_WS_OPEN) {
    /* The peer never answered our close frame. */
    nc_conn_close(c);
    return;
  }
  nc_log(NC_LOG_INFO, "%s: WebSocket %s closed: output stalled for %u ms "
         "(%zu bytes unwritten)", c->peer, c->key ? c->key : "-",
         c->server->opts.ws_stall_timeout_ms, c->write_bytes);
  nc_held_let_go(c, NC_SERVER_GONE_STALLED, 1008, 1);
  nc_conn_close(c);
}

void nc_held_free(conn_t *c) {
  nc_http_response_free(&c->park_res);
  nc_ws_free(c->ws);
  free_inbox(c);
  free(c->ws_out);
  free(c->key);
}

/* ---- held connections, for the scripts ---- */

void nc_server_reply_free(nc_server_reply_t *r) {
  nc_http_response_free(&r->res);
  free(r->key);
  free(r->protocol);
  free(r->file);
  memset(r, 0, sizeof *r);
}

nc_server_held_t nc_server_held(nc_server_t *s, const char *key) {
  conn_t *c = nc_hub_get(s->hub, key);
  if (!c) return NC_SERVER_HELD_NONE;
  return c->mode == MODE_WS ? NC_SERVER_HELD_WEBSOCKET : NC_SERVER_HELD_PARKED;
}

int nc_server_answer(nc_server_t *s, const char *key, nc_http_response_t *res,
                     long long token) {
  conn_t *c = nc_hub_get(s->hub, key);
  if (!c || c->mode != MODE_PARKED) {
    nc_http_response_free(res);
    return -1;
  }
  nc_held_let_go(c, NC_SERVER_GONE_CLOSED, 0, 0);
  nc_http_response_free(&c->park_res);
  c->park_token = 0;
  return answer_parked(c, res, token);
}

int nc_server_send(nc_server_t *s, const char *key, const char *text, size_t len,
                   long long token) {
  conn_t *c = nc_hub_get(s->hub, key);
  if (!c || c->mode != MODE_WS || c->state != CONN_OPEN ||
      nc_ws_state(c->ws) != NC_WS_OPEN)
    return -1;
  if (c->write_bytes >= s->opts.ws_send_window_bytes) return -2;
  if (nc_ws_send_text(c->ws, text, len) != 0) {
    free(c->ws_out);
    c->ws_out = NULL;
    c->ws_out_len = 0;
    return -1;
  }
  if (ws_flush(c, token) != 0) return -1;
  nc_conn_update_timer(c);
  return 0;
}

int nc_server_close(nc_server_t *s, const char *key, int code, const char *reason) {
  conn_t *c = nc_hub_get(s->hub, key);
  if (!c) return -1;
  nc_held_let_go(c, NC_SERVER_GONE_CLOSED, c->mode == MODE_WS ? code : 0, 1);
  if (c->mode == MODE_WS && c->state == CONN_OPEN)
    nc_held_ws_close(c, code, reason ? reason : "");
  else
    nc_conn_close(c);
  return 0;
}

