/* Owns the listening socket and every client connection: reading, feeding
 * the HTTP parser, writing responses in order, timeouts, connection and
 * output limits, lingering close and graceful stop. Leaves the meaning of
 * requests to the handler and the wire format to http.c. */
#define _POSIX_C_SOURCE 200809L
#include "server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

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

typedef enum { CONN_OPEN, CONN_LINGER, CONN_CLOSING } conn_state_t;

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
  uint64_t request_started;  /* loop time of a request's first byte, or 0 */
  char peer[64];
} conn_t;

typedef struct {
  uv_write_t req;
  char *data;
  size_t len;
} write_req_t;

struct nc_server {
  uv_loop_t *loop;
  uv_tcp_t listener;
  uv_timer_t stop_timer;
  nc_server_options_t opts;
  conn_t *conns; /* open and lingering connections, newest first */
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

static void process(conn_t *c, const char *data, size_t len);
static void close_conn(conn_t *c);
static void update_timer(conn_t *c);

/* ---- closing ---- */

static void check_stopped(nc_server_t *s);

static void conn_closed_cb(uv_handle_t *h) {
  conn_t *c = h->data;
  if (--c->handles_open > 0) return;
  nc_server_t *s = c->server;
  if (c->rejected)
    s->rejecting--;
  else
    s->count--;
  nc_http_parser_free(c->parser);
  free(c->pending);
  free(c);
  check_stopped(s);
}

static void close_conn(conn_t *c) {
  if (c->state == CONN_CLOSING) return;
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
  if (status < 0 && c->state != CONN_CLOSING) close_conn(c);
}

static void start_reading(conn_t *c);

/* The last response is written: half-close, then drain input until the
 * peer closes or LINGER_MS passes. */
static void start_linger(conn_t *c) {
  c->state = CONN_LINGER;
  free(c->pending);
  c->pending = NULL;
  c->pending_len = 0;
  if (uv_shutdown(&c->shutdown, (uv_stream_t *)&c->tcp, shutdown_cb) != 0) {
    close_conn(c);
    return;
  }
  start_reading(c);
  update_timer(c);
}

/* ---- writing ---- */

static void write_cb(uv_write_t *req, int status) {
  write_req_t *w = (write_req_t *)req;
  conn_t *c = req->handle->data;
  c->write_bytes -= w->len;
  free(w->data);
  free(w);
  if (c->state == CONN_CLOSING) return;
  if (status < 0) {
    nc_log(NC_LOG_DEBUG, "%s: write failed: %s", c->peer, uv_strerror(status));
    close_conn(c);
    return;
  }
  if (c->state != CONN_OPEN) return;
  if (c->close_after_write) {
    if (c->write_bytes == 0) start_linger(c);
    return;
  }
  /* Resume at half the limit, not just under it, so a client reading
   * slowly does not flip reads on and off for every response. */
  if (c->paused_for_writes &&
      c->write_bytes <= c->server->opts.max_pending_write_bytes / 2) {
    c->paused_for_writes = 0;
    char *pending = c->pending;
    size_t pending_len = c->pending_len;
    c->pending = NULL;
    c->pending_len = 0;
    process(c, pending, pending_len);
    free(pending);
    if (c->state == CONN_OPEN && !c->paused_for_writes && !c->close_after_write)
      start_reading(c);
    update_timer(c);
  }
}

/* Queues `data` (taking ownership) for writing. */
static void queue_write(conn_t *c, char *data, size_t len) {
  write_req_t *w = malloc(sizeof *w);
  if (!w) {
    free(data);
    nc_log(NC_LOG_ERROR, "%s: out of memory queueing a response", c->peer);
    close_conn(c);
    return;
  }
  w->data = data;
  w->len = len;
  uv_buf_t buf = uv_buf_init(data, (unsigned)len);
  int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &buf, 1, write_cb);
  if (rc != 0) {
    free(data);
    free(w);
    nc_log(NC_LOG_DEBUG, "%s: write failed: %s", c->peer, uv_strerror(rc));
    close_conn(c);
    return;
  }
  c->write_bytes += len;
}

/* The connection ends after what is queued now. */
static void finish_after_write(conn_t *c) {
  c->close_after_write = 1;
  if (c->write_bytes == 0 && c->state == CONN_OPEN) start_linger(c);
}

static void respond_plain(conn_t *c, int status, const char *text) {
  nc_http_header_t type = {"Content-Type", "text/plain; charset=utf-8"};
  char body[256];
  snprintf(body, sizeof body, "%s\n", text);
  size_t len;
  char *out = nc_http_response_format(status, &type, 1, body, strlen(body), 0, 0, &len);
  if (!out) {
    close_conn(c);
    return;
  }
  queue_write(c, out, len);
  if (c->state == CONN_OPEN) finish_after_write(c);
}

static void respond(conn_t *c, const nc_http_request_t *req) {
  nc_server_t *s = c->server;
  nc_http_response_t res = {0};
  s->opts.handler(s->opts.handler_ud, req, &res);
  int keep_alive = req->keep_alive && !s->stopping;
  int head_only = strcmp(req->method, "HEAD") == 0;
  size_t len;
  char *out = nc_http_response_format(res.status, res.headers, res.header_count,
                                      res.body, res.body_len, head_only,
                                      keep_alive, &len);
  nc_log(NC_LOG_DEBUG, "%s %s %s -> %d (%zu bytes)", c->peer, req->method,
         req->target, res.status, res.body_len);
  nc_http_response_free(&res);
  if (!out) {
    nc_log(NC_LOG_ERROR, "%s: out of memory formatting a response", c->peer);
    close_conn(c);
    return;
  }
  queue_write(c, out, len);
  if (c->state == CONN_OPEN && !keep_alive) finish_after_write(c);
}

/* ---- reading ---- */

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)suggested;
  /* One buffer serves every connection: libuv calls read_cb right after
   * alloc_cb, and process() copies whatever it must keep. */
  conn_t *c = h->data;
  *buf = uv_buf_init(c->server->read_buffer, READ_BUFFER_BYTES);
}

static void read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
  conn_t *c = stream->data;
  if (c->state == CONN_CLOSING) return;
  if (nread < 0) {
    if (nread != UV_EOF)
      nc_log(NC_LOG_DEBUG, "%s: read failed: %s", c->peer, uv_strerror((int)nread));
    else if (c->state == CONN_OPEN && nc_http_parser_busy(c->parser))
      nc_log(NC_LOG_INFO, "%s: closed in the middle of a request", c->peer);
    close_conn(c);
    return;
  }
  if (nread == 0) return;
  if (c->state == CONN_LINGER) return; /* discarded: we are closing */
  process(c, buf->base, (size_t)nread);
  update_timer(c);
}

static void start_reading(conn_t *c) {
  if (c->reading) return;
  int rc = uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
  if (rc != 0) {
    nc_log(NC_LOG_WARN, "%s: cannot read: %s", c->peer, uv_strerror(rc));
    close_conn(c);
    return;
  }
  c->reading = 1;
}

static void stop_reading(conn_t *c) {
  if (!c->reading) return;
  uv_read_stop((uv_stream_t *)&c->tcp);
  c->reading = 0;
}

/* Keeps the unfed rest of a read for when output has drained. */
static void pause_for_writes(conn_t *c, const char *data, size_t len) {
  stop_reading(c);
  c->paused_for_writes = 1;
  if (len == 0) return;
  char *grown = realloc(c->pending, c->pending_len + len);
  if (!grown) {
    nc_log(NC_LOG_ERROR, "%s: out of memory holding input", c->peer);
    close_conn(c);
    return;
  }
  memcpy(grown + c->pending_len, data, len);
  c->pending = grown;
  c->pending_len += len;
}

static void process(conn_t *c, const char *data, size_t len) {
  nc_server_t *s = c->server;
  while (len > 0 && c->state == CONN_OPEN && !c->close_after_write) {
    if (c->write_bytes > s->opts.max_pending_write_bytes) {
      pause_for_writes(c, data, len);
      return;
    }
    size_t used = 0;
    nc_http_result_t r = nc_http_parser_feed(c->parser, data, len, &used);
    data += used;
    len -= used;
    switch (r) {
      case NC_HTTP_MORE:
        break;
      case NC_HTTP_CONTINUE: {
        /* RFC 9110 10.1.1: the client waits for this before the body. */
        static const char interim[] = "HTTP/1.1 100 Continue\r\n\r\n";
        char *copy = malloc(sizeof interim - 1);
        if (!copy) {
          close_conn(c);
          return;
        }
        memcpy(copy, interim, sizeof interim - 1);
        queue_write(c, copy, sizeof interim - 1);
        break;
      }
      case NC_HTTP_REQUEST:
        respond(c, nc_http_parser_request(c->parser));
        nc_http_parser_next(c->parser);
        break;
      case NC_HTTP_ERROR: {
        int status = nc_http_parser_error_status(c->parser);
        const char *reason = nc_http_parser_error_reason(c->parser);
        nc_log(NC_LOG_INFO, "%s: bad request (%d): %s", c->peer, status, reason);
        char text[160];
        snprintf(text, sizeof text, "%d %s: %s", status, nc_http_status_text(status),
                 reason);
        respond_plain(c, status, text);
        return;
      }
    }
  }
  if (c->state == CONN_OPEN && !c->close_after_write &&
      c->write_bytes > s->opts.max_pending_write_bytes)
    pause_for_writes(c, NULL, 0);
}

/* ---- timers ---- */

static void timeout_cb(uv_timer_t *t) {
  conn_t *c = t->data;
  if (c->state == CONN_LINGER) {
    close_conn(c);
    return;
  }
  if (c->close_after_write || c->paused_for_writes) {
    nc_log(NC_LOG_INFO, "%s: closed: not reading responses", c->peer);
    close_conn(c);
    return;
  }
  if (nc_http_parser_busy(c->parser) && !nc_http_parser_headers_done(c->parser)) {
    nc_log(NC_LOG_INFO, "%s: closed: request headers too slow", c->peer);
    stop_reading(c);
    respond_plain(c, 408, "408 Request Timeout");
    return;
  }
  if (nc_http_parser_busy(c->parser))
    nc_log(NC_LOG_INFO, "%s: closed: request body stalled", c->peer);
  close_conn(c);
}

/* Arms the one timer of a connection for whichever deadline applies now. */
static void update_timer(conn_t *c) {
  if (c->state == CONN_CLOSING) return;
  const nc_server_options_t *o = &c->server->opts;
  uint64_t timeout = o->idle_timeout_ms;
  if (c->state == CONN_LINGER) {
    timeout = LINGER_MS;
  } else if (!nc_http_parser_busy(c->parser)) {
    c->request_started = 0;
  } else if (!nc_http_parser_headers_done(c->parser)) {
    /* The header deadline runs from the request's first byte and is not
     * extended by trickling bytes: that is what stops slow-loris. */
    uint64_t now = uv_now(c->server->loop);
    if (!c->request_started) c->request_started = now;
    uint64_t spent = now - c->request_started;
    timeout = spent >= o->header_timeout_ms ? 1 : o->header_timeout_ms - spent;
  }
  uv_timer_start(&c->timer, timeout_cb, timeout, 0);
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
    close_conn(c);
    return;
  }
  describe_peer(c);
  uv_tcp_nodelay(&c->tcp, 1);
  if (over_limit) {
    if (s->rejecting > MAX_REJECTING) {
      close_conn(c);
      return;
    }
    nc_log(NC_LOG_WARN, "%s: refused: %u connections open (max_connections)",
           c->peer, s->count);
    start_reading(c);
    respond_plain(c, 503, "503 Service Unavailable: too many connections");
    return;
  }
  c->parser = nc_http_parser_new(&s->opts.http);
  if (!c->parser) {
    nc_log(NC_LOG_ERROR, "%s: out of memory for a parser", c->peer);
    close_conn(c);
    return;
  }
  start_reading(c);
  update_timer(c);
}

/* ---- the server ---- */

nc_server_t *nc_server_new(uv_loop_t *loop, const nc_server_options_t *opts) {
  nc_server_t *s = calloc(1, sizeof *s);
  if (!s) return NULL;
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
  while (s->conns) close_conn(s->conns);
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
  conn_t *c = s->conns;
  while (c) {
    conn_t *next = c->next;
    /* A connection between requests has nothing in flight; the others
     * close after their current response (keep-alive is off now). */
    if (c->state == CONN_OPEN && !c->rejected && !c->write_bytes &&
        !nc_http_parser_busy(c->parser))
      close_conn(c);
    else if (c->state == CONN_OPEN && c->write_bytes)
      finish_after_write(c);
    c = next;
  }
  check_stopped(s);
}

void nc_server_free(nc_server_t *s) { free(s); }

unsigned nc_server_connection_count(const nc_server_t *s) { return s->count; }
