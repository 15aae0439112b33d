/* Owns the listening socket and every client connection: reading, feeding
 * the HTTP parser, writing responses in order, timeouts, connection and
 * output limits, lingering close and graceful stop; and the connections
 * held open under a key, parked requests and WebSockets, which live in
 * server_held.c. Leaves the meaning of requests to the handler and the
 * HTTP wire format to http.c. */
#define _POSIX_C_SOURCE 200809L
#include "server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "server_conn.h"
#include "static.h"

static void check_stopped(nc_server_t *s);

/* ---- closing ---- */

static void conn_closed_cb(uv_handle_t *h) {
  conn_t *c = h->data;
  if (--c->handles_open > 0) return;
  nc_server_t *s = c->server;
  if (c->rejected)
    s->rejecting--;
  else
    s->count--;
  /* After the written(token, 0) of every cancelled write: libuv runs
   * those before the close callbacks. */
  const nc_server_events_t *ev = &s->opts.events;
  if (c->unreported_token && ev->written) ev->written(ev->ud, c->unreported_token, 0);
  nc_held_emit_gone(c);
  nc_held_free(c);
  nc_http_parser_free(c->parser);
  free(c->pending);
  free(c);
  check_stopped(s);
}

void nc_conn_close(conn_t *c) {
  if (c->state == CONN_CLOSING) return;
  nc_held_let_go(c, NC_SERVER_GONE_PEER, c->ws ? nc_ws_close_code(c->ws) : 0, 1);
  c->state = CONN_CLOSING;
  nc_server_t *s = c->server;
  if (c->prev)
    c->prev->next = c->next;
  else
    s->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  c->prev = c->next = NULL;
  uv_close((uv_handle_t *)&c->tcp, conn_closed_cb);
  uv_close((uv_handle_t *)&c->timer, conn_closed_cb);
}

static void shutdown_cb(uv_shutdown_t *req, int status) {
  conn_t *c = req->handle->data;
  if (status < 0 && c->state != CONN_CLOSING) nc_conn_close(c);
}

/* The last response is written: half-close, then drain input until the
 * peer closes or LINGER_MS passes. */
static void start_linger(conn_t *c) {
  c->state = CONN_LINGER;
  free(c->pending);
  c->pending = NULL;
  c->pending_len = 0;
  if (uv_shutdown(&c->shutdown, (uv_stream_t *)&c->tcp, shutdown_cb) != 0) {
    nc_conn_close(c);
    return;
  }
  nc_conn_start_reading(c);
  nc_conn_update_timer(c);
}

/* ---- writing ---- */

/* Feeds input that waited (while output drained, or while a request was
 * parked) as if it had just arrived. */
static void resume_input(conn_t *c) {
  char *pending = c->pending;
  size_t pending_len = c->pending_len;
  c->pending = NULL;
  c->pending_len = 0;
  nc_conn_process(c, pending, pending_len);
  free(pending);
  if (c->state == CONN_OPEN && !c->paused_for_writes && !c->close_after_write &&
      c->mode != MODE_PARKED)
    nc_conn_start_reading(c);
  nc_conn_update_timer(c);
}

static void write_cb(uv_write_t *req, int status) {
  write_req_t *w = (write_req_t *)req;
  conn_t *c = req->handle->data;
  nc_server_t *s = c->server;
  c->write_bytes -= w->len;
  long long token = w->token;
  free(w->data);
  free(w);
  if (token && s->opts.events.written)
    s->opts.events.written(s->opts.events.ud, token, status == 0);
  if (c->state == CONN_CLOSING) return;
  if (status < 0) {
    nc_log(NC_LOG_DEBUG, "%s: write failed: %s", c->peer, uv_strerror(status));
    nc_conn_close(c);
    return;
  }
  c->last_write_done = uv_now(s->loop);
  if (c->state != CONN_OPEN) return;
  if (c->close_after_write) {
    if (c->write_bytes == 0) start_linger(c);
    return;
  }
  /* Resume at half the limit, not just under it, so a client reading
   * slowly does not flip reads on and off for every response. */
  if (c->paused_for_writes &&
      c->write_bytes <= s->opts.max_pending_write_bytes / 2) {
    c->paused_for_writes = 0;
    resume_input(c);
  } else if (c->mode == MODE_WS) {
    nc_conn_update_timer(c); /* output moved: the stall clock restarts */
  }
}

/* Queues `data` (taking ownership) for writing. 0, or -1 when it could not
 * be queued: the connection is then closing and `token` will not be
 * reported. */
int nc_conn_write(conn_t *c, char *data, size_t len, long long token) {
  write_req_t *w = malloc(sizeof *w);
  if (!w) {
    free(data);
    nc_log(NC_LOG_ERROR, "%s: out of memory queueing output", c->peer);
    nc_conn_close(c);
    return -1;
  }
  w->data = data;
  w->len = len;
  w->token = token;
  uv_buf_t buf = uv_buf_init(data, (unsigned)len);
  int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &buf, 1, write_cb);
  if (rc != 0) {
    free(data);
    free(w);
    nc_log(NC_LOG_DEBUG, "%s: write failed: %s", c->peer, uv_strerror(rc));
    nc_conn_close(c);
    return -1;
  }
  if (c->write_bytes == 0) c->last_write_done = uv_now(c->server->loop);
  c->write_bytes += len;
  return 0;
}

/* The connection ends after what is queued now. */
void nc_conn_finish(conn_t *c) {
  c->close_after_write = 1;
  if (c->write_bytes == 0 && c->state == CONN_OPEN) start_linger(c);
}

/* A plain-text error the server gives itself, then a close. `extra` is
 * one more header or NULL. */
void nc_conn_respond_plain(conn_t *c, int status, const char *text,
                          const nc_http_header_t *extra) {
  nc_http_header_t headers[2] = {{"Content-Type", "text/plain; charset=utf-8"}};
  size_t count = 1;
  if (extra) headers[count++] = *extra;
  char body[256];
  snprintf(body, sizeof body, "%s\n", text);
  size_t len;
  char *out = nc_http_response_format(status, headers, count, body, strlen(body),
                                      0, 0, &len);
  if (!out) {
    nc_conn_close(c);
    return;
  }
  if (nc_conn_write(c, out, len, 0) == 0) nc_conn_finish(c);
}

/* Formats and queues `res` (freed here) as the answer to `req`. 0, or -1
 * when it could not be queued (the connection is then closing). */
int nc_conn_send_response(conn_t *c, const nc_http_request_t *req,
                         nc_http_response_t *res, long long token) {
  int keep_alive = req->keep_alive && !c->server->stopping;
  int head_only = strcmp(req->method, "HEAD") == 0;
  size_t len;
  char *out = nc_http_response_format(res->status, res->headers, res->header_count,
                                      res->body, res->body_len, head_only,
                                      keep_alive, &len);
  nc_log(NC_LOG_DEBUG, "%s %s %s -> %d (%zu bytes)", c->peer, req->method,
         req->target, res->status, res->body_len);
  nc_http_response_free(res);
  if (!out) {
    nc_log(NC_LOG_ERROR, "%s: out of memory formatting a response", c->peer);
    nc_conn_close(c);
    return -1;
  }
  if (nc_conn_write(c, out, len, token) != 0) return -1;
  if (!keep_alive) nc_conn_finish(c);
  return 0;
}

/* ---- parked input ---- */

/* Input that arrives while a request is parked waits for the answer. */
void nc_conn_hold_input(conn_t *c, const char *data, size_t len) {
  if (len == 0) return;
  char *grown = realloc(c->pending, c->pending_len + len);
  if (!grown) {
    nc_log(NC_LOG_ERROR, "%s: out of memory holding input", c->peer);
    nc_conn_close(c);
    return;
  }
  memcpy(grown + c->pending_len, data, len);
  c->pending = grown;
  c->pending_len += len;
  if (c->pending_len > PARKED_INPUT_BYTES) nc_conn_stop_reading(c);
}

/* ---- answering ---- */

/* res.file: the file, or the scripts' own answer when there is none. */
static void serve_file(conn_t *c, const nc_http_request_t *req, nc_server_reply_t *reply) {
  const nc_server_options_t *o = &c->server->opts;
  nc_http_response_t file = {0};
  const char *why = !reply->file ? "path contains NUL" : "no web directory";
  if (o->web_root && reply->file &&
      nc_static_serve(o->web_root, reply->file, o->max_static_file_bytes, req, &file,
                      &why) == 0) {
    nc_conn_send_response(c, req, &file, 0);
    return;
  }
  nc_log(NC_LOG_DEBUG, "%s %s %s: file %s not served: %s", c->peer, req->method,
         req->target, reply->file ? reply->file : "(with NUL)", why);
  if (nc_conn_send_response(c, req, &reply->res, reply->token) != 0)
    c->unreported_token = reply->token;
}

static void respond(conn_t *c, const nc_http_request_t *req) {
  nc_server_t *s = c->server;
  nc_server_reply_t reply = {0};
  s->opts.handler(s->opts.handler_ud, req, &reply);
  switch (reply.action) {
    case NC_SERVER_PARK:
      nc_held_park(c, &reply);
      break;
    case NC_SERVER_UPGRADE:
      nc_held_upgrade(c, req, &reply);
      break;
    case NC_SERVER_FILE:
      serve_file(c, req, &reply);
      break;
    default:
      if (nc_conn_send_response(c, req, &reply.res, reply.token) != 0)
        c->unreported_token = reply.token;
      break;
  }
  nc_server_reply_free(&reply);
}

/* ---- reading ---- */

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)suggested;
  /* One buffer serves every connection: libuv calls read_cb right after
   * alloc_cb, and nc_conn_process() copies whatever it must keep. */
  conn_t *c = h->data;
  *buf = uv_buf_init(c->server->read_buffer, READ_BUFFER_BYTES);
}

static void read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
  conn_t *c = stream->data;
  if (c->state == CONN_CLOSING) return;
  if (nread < 0) {
    if (nread != UV_EOF)
      nc_log(NC_LOG_DEBUG, "%s: read failed: %s", c->peer, uv_strerror((int)nread));
    else if (c->state == CONN_OPEN && c->mode == MODE_HTTP &&
             nc_http_parser_busy(c->parser))
      nc_log(NC_LOG_INFO, "%s: closed in the middle of a request", c->peer);
    nc_conn_close(c);
    return;
  }
  if (nread == 0) return;
  if (c->state == CONN_LINGER) return; /* discarded: we are closing */
  nc_conn_process(c, buf->base, (size_t)nread);
  nc_conn_update_timer(c);
}

void nc_conn_start_reading(conn_t *c) {
  if (c->reading) return;
  int rc = uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
  if (rc != 0) {
    nc_log(NC_LOG_WARN, "%s: cannot read: %s", c->peer, uv_strerror(rc));
    nc_conn_close(c);
    return;
  }
  c->reading = 1;
}

void nc_conn_stop_reading(conn_t *c) {
  if (!c->reading) return;
  uv_read_stop((uv_stream_t *)&c->tcp);
  c->reading = 0;
}

/* Keeps the unfed rest of a read for when output has drained. */
static void pause_for_writes(conn_t *c, const char *data, size_t len) {
  nc_conn_stop_reading(c);
  c->paused_for_writes = 1;
  if (len == 0) return;
  char *grown = realloc(c->pending, c->pending_len + len);
  if (!grown) {
    nc_log(NC_LOG_ERROR, "%s: out of memory holding input", c->peer);
    nc_conn_close(c);
    return;
  }
  memcpy(grown + c->pending_len, data, len);
  c->pending = grown;
  c->pending_len += len;
}

/* Starts the clocks of the request being read once its first byte, then
 * the end of its headers, has been fed. Loop time: for bytes that waited
 * (pipelined behind a previous request, or held while output drained) that
 * is when they were fed, so no request is charged for time spent before
 * its predecessor was answered. */
static void start_request_clocks(conn_t *c) {
  if (!nc_http_parser_busy(c->parser)) return;
  uint64_t now = uv_now(c->server->loop);
  if (!c->request_started) c->request_started = now;
  if (!c->body_started && nc_http_parser_headers_done(c->parser)) c->body_started = now;
}

void nc_conn_process(conn_t *c, const char *data, size_t len) {
  nc_server_t *s = c->server;
  if (c->mode == MODE_WS) {
    if (c->state == CONN_OPEN && len > 0) nc_held_ws_process(c, data, len);
    return;
  }
  if (c->mode == MODE_PARKED) {
    nc_conn_hold_input(c, data, len);
    return;
  }
  while (len > 0 && c->state == CONN_OPEN && !c->close_after_write) {
    if (c->write_bytes > s->opts.max_pending_write_bytes) {
      pause_for_writes(c, data, len);
      return;
    }
    size_t used = 0;
    nc_http_result_t r = nc_http_parser_feed(c->parser, data, len, &used);
    data += used;
    len -= used;
    start_request_clocks(c);
    switch (r) {
      case NC_HTTP_MORE:
        break;
      case NC_HTTP_CONTINUE: {
        /* RFC 9110 10.1.1: the client waits for this before the body. */
        static const char interim[] = "HTTP/1.1 100 Continue\r\n\r\n";
        char *copy = malloc(sizeof interim - 1);
        if (!copy) {
          nc_conn_close(c);
          return;
        }
        memcpy(copy, interim, sizeof interim - 1);
        nc_conn_write(c, copy, sizeof interim - 1, 0);
        break;
      }
      case NC_HTTP_REQUEST:
        /* The next request, maybe already in `data`, starts its own clocks. */
        c->request_started = c->body_started = 0;
        respond(c, nc_http_parser_request(c->parser));
        if (c->state != CONN_OPEN) return;
        if (c->mode == MODE_PARKED) {
          nc_conn_hold_input(c, data, len);
          return;
        }
        if (c->mode == MODE_WS) {
          /* The request was the last HTTP on this connection. */
          nc_http_parser_free(c->parser);
          c->parser = NULL;
          nc_conn_process(c, data, len);
          return;
        }
        nc_http_parser_next(c->parser);
        break;
      case NC_HTTP_ERROR: {
        int status = nc_http_parser_error_status(c->parser);
        const char *reason = nc_http_parser_error_reason(c->parser);
        nc_log(NC_LOG_INFO, "%s: bad request (%d): %s", c->peer, status, reason);
        char text[160];
        snprintf(text, sizeof text, "%d %s: %s", status, nc_http_status_text(status),
                 reason);
        nc_conn_respond_plain(c, status, text, NULL);
        return;
      }
    }
  }
  if (c->state == CONN_OPEN && !c->close_after_write &&
      c->write_bytes > s->opts.max_pending_write_bytes)
    pause_for_writes(c, NULL, 0);
}

/* ---- timers ---- */

/* A request too slow to arrive: 408 and a close. The timer runs again, or
 * a client that reads nothing would hold the connection for good (its write
 * never completes, and no read re-arms the timer): once the idle timeout
 * passes with the answer still unwritten, the next firing closes it as
 * "not reading responses"; a completed write lingers and closes as usual. */
static void time_out_request(conn_t *c, const char *text) {
  nc_conn_stop_reading(c);
  nc_conn_respond_plain(c, 408, text, NULL);
  if (c->state == CONN_OPEN && c->close_after_write)
    uv_timer_start(&c->timer, nc_conn_timeout_cb, c->server->opts.idle_timeout_ms, 0);
}

void nc_conn_timeout_cb(uv_timer_t *t) {
  conn_t *c = t->data;
  if (c->state == CONN_LINGER) {
    nc_conn_close(c);
    return;
  }
  if (c->mode == MODE_PARKED) {
    nc_held_end_park(c, NC_SERVER_GONE_TIMEOUT);
    return;
  }
  if (c->mode == MODE_WS) {
    nc_held_ws_timeout(c);
    return;
  }
  if (c->close_after_write || c->paused_for_writes) {
    nc_log(NC_LOG_INFO, "%s: closed: not reading responses", c->peer);
    nc_conn_close(c);
    return;
  }
  if (c->pending_len > 0 && !nc_http_parser_busy(c->parser)) {
    /* Input that waited for a parked request's answer (update_timer armed
     * this for "now"). */
    resume_input(c);
    return;
  }
  if (nc_http_parser_busy(c->parser) && !nc_http_parser_headers_done(c->parser)) {
    nc_log(NC_LOG_INFO, "%s: closed: request headers too slow", c->peer);
    time_out_request(c, "408 Request Timeout");
    return;
  }
  if (nc_http_parser_busy(c->parser)) {
    const nc_server_options_t *o = &c->server->opts;
    uint64_t spent = uv_now(c->server->loop) - c->body_started;
    if (spent >= o->body_timeout_ms) {
      size_t received;
      long long expected;
      nc_http_parser_body_progress(c->parser, &received, &expected);
      char of[32] = "a chunked body";
      if (expected >= 0) snprintf(of, sizeof of, "%lld", expected);
      nc_log(NC_LOG_INFO,
             "%s: closed: request body not complete %llu ms after its headers "
             "(body_timeout_ms %u); %zu bytes of %s received",
             c->peer, (unsigned long long)spent, o->body_timeout_ms, received, of);
      time_out_request(c, "408 Request Timeout: request body too slow");
      return;
    }
    nc_log(NC_LOG_INFO, "%s: closed: request body stalled", c->peer);
  }
  nc_conn_close(c);
}

/* Arms the one timer of a connection for whichever deadline applies now. */
void nc_conn_update_timer(conn_t *c) {
  if (c->state == CONN_CLOSING) return;
  const nc_server_options_t *o = &c->server->opts;
  uint64_t now = uv_now(c->server->loop);
  uint64_t timeout = o->idle_timeout_ms;
  if (c->state == CONN_LINGER) {
    timeout = LINGER_MS;
  } else if (c->mode == MODE_PARKED) {
    return; /* its deadline was set when it was parked */
  } else if (c->mode == MODE_WS) {
    if (nc_ws_state(c->ws) != NC_WS_OPEN) {
      /* Waiting for the peer's close frame: a fixed deadline, not one
       * that each byte it trickles extends. */
      if (!uv_is_active((uv_handle_t *)&c->timer))
        uv_timer_start(&c->timer, nc_conn_timeout_cb, LINGER_MS, 0);
      return;
    }
    if (c->write_bytes == 0) {
      /* An idle WebSocket is fine for as long as its channel lives. */
      uv_timer_stop(&c->timer);
      return;
    }
    uint64_t spent = now - c->last_write_done;
    timeout = spent >= o->ws_stall_timeout_ms ? 1 : o->ws_stall_timeout_ms - spent;
  } else if (c->pending_len > 0 && !c->paused_for_writes &&
             !nc_http_parser_busy(c->parser)) {
    timeout = 0; /* input that waited for a parked request's answer */
  } else if (!nc_http_parser_busy(c->parser)) {
    /* Between requests: the idle timeout. */
  } else if (!nc_http_parser_headers_done(c->parser)) {
    /* The header deadline runs from the request's first byte and is not
     * extended by trickling bytes: that is what stops slow-loris. */
    uint64_t spent = now - c->request_started;
    timeout = spent >= o->header_timeout_ms ? 1 : o->header_timeout_ms - spent;
  } else {
    /* A body: a gap of idle_timeout_ms closes it as stalled, and however
     * steadily it trickles, it must be complete within body_timeout_ms of
     * the end of its headers. */
    uint64_t spent = now - c->body_started;
    uint64_t left = spent >= o->body_timeout_ms ? 1 : o->body_timeout_ms - spent;
    if (left < timeout) timeout = left;
  }
  uv_timer_start(&c->timer, nc_conn_timeout_cb, timeout, 0);
}

/* ---- accepting ---- */

static void describe_peer(conn_t *c) {
  struct sockaddr_storage addr;
  int len = sizeof addr;
  char ip[48] = "?";
  int port = 0;
  if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&addr, &len) == 0) {
    if (addr.ss_family == AF_INET6) {
      struct sockaddr_in6 *a = (struct sockaddr_in6 *)&addr;
      uv_ip6_name(a, ip, sizeof ip);
      port = ntohs(a->sin6_port);
    } else {
      struct sockaddr_in *a = (struct sockaddr_in *)&addr;
      uv_ip4_name(a, ip, sizeof ip);
      port = ntohs(a->sin_port);
    }
  }
  snprintf(c->peer, sizeof c->peer, "%s:%d", ip, port);
}

static void connection_cb(uv_stream_t *listener, int status) {
  nc_server_t *s = listener->data;
  if (status < 0) {
    nc_log(NC_LOG_WARN, "accept failed: %s", uv_strerror(status));
    return;
  }
  conn_t *c = calloc(1, sizeof *c);
  if (!c) {
    nc_log(NC_LOG_ERROR, "out of memory accepting a connection");
    return;
  }
  c->server = s;
  uv_tcp_init(s->loop, &c->tcp);
  uv_timer_init(s->loop, &c->timer);
  c->tcp.data = c->timer.data = c;
  c->handles_open = 2;
  int over_limit = s->count >= s->opts.max_connections;
  c->rejected = over_limit;
  if (over_limit)
    s->rejecting++;
  else
    s->count++;
  c->next = s->conns;
  if (s->conns) s->conns->prev = c;
  s->conns = c;

  int rc = uv_accept(listener, (uv_stream_t *)&c->tcp);
  if (rc != 0) {
    nc_log(NC_LOG_WARN, "accept failed: %s", uv_strerror(rc));
    nc_conn_close(c);
    return;
  }
  describe_peer(c);
  uv_tcp_nodelay(&c->tcp, 1);
  if (over_limit) {
    if (s->rejecting > MAX_REJECTING) {
      nc_conn_close(c);
      return;
    }
    nc_log(NC_LOG_WARN, "%s: refused: %u connections open (max_connections)",
           c->peer, s->count);
    nc_conn_start_reading(c);
    /* RFC 9110 10.2.3: a slot is likely free again soon; clients that honour
     * Retry-After wait a moment instead of retrying in a tight loop. */
    nc_http_header_t retry = {"Retry-After", "1"};
    nc_conn_respond_plain(c, 503, "503 Service Unavailable: too many connections",
                          &retry);
    return;
  }
  c->parser = nc_http_parser_new(&s->opts.http);
  if (!c->parser) {
    nc_log(NC_LOG_ERROR, "%s: out of memory for a parser", c->peer);
    nc_conn_close(c);
    return;
  }
  nc_conn_start_reading(c);
  nc_conn_update_timer(c);
}

/* ---- the server ---- */

nc_server_t *nc_server_new(uv_loop_t *loop, const nc_server_options_t *opts) {
  nc_server_t *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->hub = nc_hub_new();
  if (!s->hub) {
    free(s);
    return NULL;
  }
  s->loop = loop;
  s->opts = *opts;
  return s;
}

static int resolve(const char *host, int port, struct sockaddr_storage *out) {
  if (uv_ip4_addr(host, port, (struct sockaddr_in *)out) == 0) return 0;
  if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)out) == 0) return 0;
  /* A name such as localhost: resolved once, synchronously, at start. */
  uv_getaddrinfo_t req;
  struct addrinfo hints = {0};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  int rc = uv_getaddrinfo(uv_default_loop(), &req, NULL, host, NULL, &hints);
  if (rc != 0) return rc;
  memcpy(out, req.addrinfo->ai_addr, req.addrinfo->ai_addrlen);
  if (out->ss_family == AF_INET6)
    ((struct sockaddr_in6 *)out)->sin6_port = htons((uint16_t)port);
  else
    ((struct sockaddr_in *)out)->sin_port = htons((uint16_t)port);
  uv_freeaddrinfo(req.addrinfo);
  return 0;
}

static void listener_closed_cb(uv_handle_t *h) {
  nc_server_t *s = h->data;
  s->listener_open = 0;
  check_stopped(s);
}

int nc_server_listen(nc_server_t *s, const char *host, int port, int *bound_port) {
  struct sockaddr_storage addr;
  int rc = resolve(host, port, &addr);
  if (rc != 0) return rc;
  uv_tcp_init(s->loop, &s->listener);
  s->listener.data = s;
  s->listener_open = 1;
  rc = uv_tcp_bind(&s->listener, (const struct sockaddr *)&addr, 0);
  if (rc == 0) rc = uv_listen((uv_stream_t *)&s->listener, 1024, connection_cb);
  if (rc != 0) {
    uv_close((uv_handle_t *)&s->listener, listener_closed_cb);
    return rc;
  }
  s->listening = 1;
  struct sockaddr_storage bound;
  int len = sizeof bound;
  uv_tcp_getsockname(&s->listener, (struct sockaddr *)&bound, &len);
  *bound_port = ntohs(bound.ss_family == AF_INET6
                          ? ((struct sockaddr_in6 *)&bound)->sin6_port
                          : ((struct sockaddr_in *)&bound)->sin_port);
  return 0;
}

static void stop_timer_closed_cb(uv_handle_t *h) {
  nc_server_t *s = h->data;
  s->stop_timer_closed = 1;
  if (s->done) s->done(s->done_ud);
}

static void check_stopped(nc_server_t *s) {
  if (!s->stopping || s->count || s->rejecting || s->listener_open) return;
  if (uv_is_closing((uv_handle_t *)&s->stop_timer)) return;
  uv_close((uv_handle_t *)&s->stop_timer, stop_timer_closed_cb);
}

static void stop_deadline_cb(uv_timer_t *t) {
  nc_server_t *s = t->data;
  nc_log(NC_LOG_WARN, "stop: closing %u connections still busy", s->count);
  while (s->conns) nc_conn_close(s->conns);
}

void nc_server_stop(nc_server_t *s, void (*done)(void *ud), void *ud) {
  s->stopping = 1;
  s->done = done;
  s->done_ud = ud;
  uv_timer_init(s->loop, &s->stop_timer);
  s->stop_timer.data = s;
  uv_timer_start(&s->stop_timer, stop_deadline_cb, STOP_DEADLINE_MS, 0);
  if (s->listening && !uv_is_closing((uv_handle_t *)&s->listener))
    uv_close((uv_handle_t *)&s->listener, listener_closed_cb);
  s->listening = 0;
  /* Nothing below calls into the scripts: events are sent as connections
   * close, so the list cannot change under this walk. */
  conn_t *c = s->conns;
  while (c) {
    conn_t *next = c->next;
    if (c->state != CONN_OPEN || c->rejected) {
      /* already on its way out */
    } else if (c->mode == MODE_PARKED) {
      nc_held_end_park(c, NC_SERVER_GONE_STOPPING);
    } else if (c->mode == MODE_WS) {
      nc_held_let_go(c, NC_SERVER_GONE_STOPPING, 1001, 1);
      nc_held_ws_close(c, 1001, "server stopping");
    } else if (!c->write_bytes && !nc_http_parser_busy(c->parser)) {
      /* Between requests: nothing in flight. The others close after
       * their current response (keep-alive is off now). */
      nc_conn_close(c);
    } else if (c->write_bytes) {
      nc_conn_finish(c);
    }
    c = next;
  }
  check_stopped(s);
}

void nc_server_stop_now(nc_server_t *s) {
  if (!s->stopping || uv_is_closing((uv_handle_t *)&s->stop_timer)) return;
  uv_timer_start(&s->stop_timer, stop_deadline_cb, 0, 0);
}

void nc_server_free(nc_server_t *s) {
  if (!s) return;
  nc_hub_free(s->hub);
  free(s);
}

unsigned nc_server_connection_count(const nc_server_t *s) { return s->count; }
