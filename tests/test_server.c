/* Tests for core/server.c over real sockets: the TCP side of the server
 * (pipelining, limits, timeouts, max_connections, server-made answers)
 * with a stub handler, no scripts and no database.
 *
 * Each test starts its own server on 127.0.0.1, port 0, with small limits,
 * runs its loop on a thread of its own and drives it from the test's thread
 * with blocking sockets and deadlines. The two threads share only what is
 * under harness_t's mutex; everything else of the server is touched on the
 * loop thread, reached through one uv_async. Every test ends the way the
 * server should be left: no connection open (nc_server_connection_count),
 * a stop that completes, and uv_loop_close() finding no handle.
 *
 * Timing checks are lower bounds with a millisecond of slack (the server's
 * clock cannot run out before the time it promises) and generous upper
 * bounds, so a busy machine makes them slower, not flaky. */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "check.h"
#include "limits.h"
#include "log.h"
#include "server.h"

#define S(lit) (lit), (sizeof(lit) - 1)

/* How long a test waits for something the server should do at once; only
 * reached when it does not. */
#define PATIENCE_MS 5000

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1000.0 + (double)t.tv_nsec / 1e6;
}

static void sleep_ms(double ms) {
  if (ms <= 0) return;
  long long ns = (long long)(ms * 1e6);
  struct timespec t = {(time_t)(ns / 1000000000), (long)(ns % 1000000000)};
  while (nanosleep(&t, &t) != 0 && errno == EINTR) {
  }
}

/* ---- the server, on a thread of its own ---- */

enum { CMD_NONE = 0, CMD_COUNT, CMD_STOP };

typedef struct {
  uv_loop_t loop;
  uv_async_t wake;
  uv_thread_t thread;
  nc_server_t *server;
  int port;
  /* Shared between the threads, under `mu`. */
  uv_mutex_t mu;
  uv_cond_t cv;
  int command;          /* CMD_* asked by the test thread; CMD_NONE once done */
  unsigned conn_count;  /* nc_server_connection_count() at the last CMD_COUNT */
  int calls;            /* handler calls */
  char seen[2048];      /* what the handler answered, one line per call */
  size_t seen_len;
  int stopped;          /* nc_server_stop()'s done() has run */
} harness_t;

/* A body no socket buffer holds, for clients that do not read. */
#define BIG_BODY_BYTES (4 * 1024 * 1024)

/* The stub handler: 200 with "METHOD path" (and " body" when there is
 * one) as its body, so each answer names the request it answers; GET /big
 * gets BIG_BODY_BYTES of 'x'. */
static void stub_handler_cb(void *ud, const nc_http_request_t *req,
                            nc_server_reply_t *reply) {
  harness_t *h = ud;
  char text[512];
  int n = snprintf(text, sizeof text, "%s %s", req->method, req->path);
  if (n > 0 && req->body_len > 0 && (size_t)n < sizeof text)
    n += snprintf(text + n, sizeof text - (size_t)n, " %.*s", (int)req->body_len,
                  req->body);
  size_t len = n < 0 ? 0 : (size_t)n >= sizeof text ? sizeof text - 1 : (size_t)n;

  reply->action = NC_SERVER_RESPOND;
  reply->res.status = 200;
  reply->res.headers = malloc(sizeof *reply->res.headers);
  reply->res.body = malloc(len + 1);
  if (!reply->res.headers || !reply->res.body) abort();
  reply->res.headers[0].name = strdup("Content-Type");
  reply->res.headers[0].value = strdup("text/plain");
  if (!reply->res.headers[0].name || !reply->res.headers[0].value) abort();
  reply->res.header_count = 1;
  memcpy(reply->res.body, text, len);
  reply->res.body_len = len;
  if (strcmp(req->path, "/big") == 0) {
    free(reply->res.body);
    reply->res.body = malloc(BIG_BODY_BYTES);
    if (!reply->res.body) abort();
    memset(reply->res.body, 'x', BIG_BODY_BYTES);
    reply->res.body_len = BIG_BODY_BYTES;
  }

  uv_mutex_lock(&h->mu);
  h->calls++;
  if (h->seen_len + len + 2 < sizeof h->seen) {
    memcpy(h->seen + h->seen_len, text, len);
    h->seen_len += len;
    h->seen[h->seen_len++] = '\n';
    h->seen[h->seen_len] = '\0';
  }
  uv_mutex_unlock(&h->mu);
}

static void stopped_cb(void *ud) {
  harness_t *h = ud;
  uv_mutex_lock(&h->mu);
  h->stopped++;
  uv_mutex_unlock(&h->mu);
}

static void finish_command(harness_t *h) {
  uv_mutex_lock(&h->mu);
  h->command = CMD_NONE;
  uv_cond_broadcast(&h->cv);
  uv_mutex_unlock(&h->mu);
}

/* On the loop thread: does what the test thread asked. */
static void wake_cb(uv_async_t *a) {
  harness_t *h = a->data;
  uv_mutex_lock(&h->mu);
  int command = h->command;
  uv_mutex_unlock(&h->mu);
  if (command == CMD_COUNT) {
    unsigned n = nc_server_connection_count(h->server);
    uv_mutex_lock(&h->mu);
    h->conn_count = n;
    uv_mutex_unlock(&h->mu);
    finish_command(h);
  } else if (command == CMD_STOP) {
    nc_server_stop(h->server, stopped_cb, h);
    uv_close((uv_handle_t *)&h->wake, NULL);
    finish_command(h);
  }
}

static void loop_thread(void *arg) {
  harness_t *h = arg;
  uv_run(&h->loop, UV_RUN_DEFAULT);
}

/* Asks the loop thread for `command` and waits until it is done. */
static void harness_command(harness_t *h, int command) {
  uv_mutex_lock(&h->mu);
  h->command = command;
  uv_mutex_unlock(&h->mu);
  uv_async_send(&h->wake);
  uv_mutex_lock(&h->mu);
  while (h->command != CMD_NONE) uv_cond_wait(&h->cv, &h->mu);
  uv_mutex_unlock(&h->mu);
}

static unsigned server_connections(harness_t *h) {
  harness_command(h, CMD_COUNT);
  uv_mutex_lock(&h->mu);
  unsigned n = h->conn_count;
  uv_mutex_unlock(&h->mu);
  return n;
}

/* The server notices a client's close when it reads the end of stream:
 * soon after, not at once. Returns the count once it is 0, or when
 * PATIENCE_MS has passed. */
static unsigned wait_no_connections(harness_t *h) {
  double deadline = now_ms() + PATIENCE_MS;
  unsigned n;
  while ((n = server_connections(h)) != 0 && now_ms() < deadline) sleep_ms(5);
  return n;
}

static int handler_calls(harness_t *h) {
  uv_mutex_lock(&h->mu);
  int n = h->calls;
  uv_mutex_unlock(&h->mu);
  return n;
}

/* What the handler answered so far, one line per call. */
static void handler_seen(harness_t *h, char *out, size_t cap) {
  uv_mutex_lock(&h->mu);
  snprintf(out, cap, "%s", h->seen);
  uv_mutex_unlock(&h->mu);
}

/* Options small enough to cross, large enough not to be crossed by
 * accident; each test lowers the one it crosses. */
static nc_server_options_t test_options(void) {
  nc_server_options_t o;
  memset(&o, 0, sizeof o);
  o.http.max_header_bytes = 1024;
  o.http.max_body_bytes = 1024;
  o.header_timeout_ms = 10000;
  o.idle_timeout_ms = 10000;
  o.body_timeout_ms = 10000;
  o.max_connections = 16;
  o.max_pending_write_bytes = NC_LIMIT_PENDING_WRITE_BYTES;
  o.ws_max_message_bytes = NC_LIMIT_WS_MESSAGE_BYTES;
  o.ws_send_window_bytes = NC_LIMIT_WS_SEND_WINDOW_BYTES;
  o.ws_stall_timeout_ms = NC_LIMIT_WS_STALL_TIMEOUT_MS;
  o.max_static_file_bytes = NC_LIMIT_STATIC_FILE_BYTES;
  return o;
}

static void harness_start(harness_t *h, const nc_server_options_t *options) {
  memset(h, 0, sizeof *h);
  if (uv_loop_init(&h->loop) != 0 || uv_mutex_init(&h->mu) != 0 ||
      uv_cond_init(&h->cv) != 0) {
    fprintf(stderr, "cannot set up a loop\n");
    exit(1);
  }
  nc_server_options_t o = *options;
  o.handler = stub_handler_cb;
  o.handler_ud = h;
  h->server = nc_server_new(&h->loop, &o);
  if (!h->server) {
    fprintf(stderr, "nc_server_new failed\n");
    exit(1);
  }
  int rc = nc_server_listen(h->server, "127.0.0.1", 0, &h->port);
  if (rc != 0) {
    fprintf(stderr, "nc_server_listen: %s\n", uv_strerror(rc));
    exit(1);
  }
  uv_async_init(&h->loop, &h->wake, wake_cb);
  h->wake.data = h;
  if (uv_thread_create(&h->thread, loop_thread, h) != 0) {
    fprintf(stderr, "cannot start the loop thread\n");
    exit(1);
  }
}

/* Every test ends here, its clients closed: the server must let go of
 * every connection, stop, and leave no handle on the loop. */
static void harness_finish(harness_t *h) {
  CHECK_INT(wait_no_connections(h), 0);
  harness_command(h, CMD_STOP);
  uv_thread_join(&h->thread);
  CHECK_INT(h->stopped, 1);
  int rc = uv_loop_close(&h->loop);
  if (rc != 0) uv_print_all_handles(&h->loop, stderr);
  CHECK_INT(rc, 0);
  if (rc == 0) nc_server_free(h->server); /* else its handles are still in use */
  uv_cond_destroy(&h->cv);
  uv_mutex_destroy(&h->mu);
}

/* ---- the client: a blocking socket and what it has read ---- */

typedef struct {
  int fd;
  char buf[65536];
  size_t len;
} client_t;

static void client_open(client_t *c, int port) {
  c->len = 0;
  c->fd = socket(AF_INET, SOCK_STREAM, 0);
  if (c->fd < 0) {
    perror("socket");
    exit(1);
  }
  /* A safety net only: every read below waits in poll() with a deadline. */
  struct timeval tv = {PATIENCE_MS / 1000, 0};
  setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  /* Each send goes out as its own segment, so the server reads the pieces
   * a test cuts as separate reads (as far as timing lets it). */
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  CHECK_INT(connect(c->fd, (struct sockaddr *)&a, sizeof a), 0);
}

static void client_close(client_t *c) {
  if (c->fd >= 0) close(c->fd);
  c->fd = -1;
}

/* 0, or -1 when the server no longer takes input (it may have answered and
 * closed, which some tests expect). */
static int client_send(client_t *c, const char *data, size_t len) {
  while (len > 0) {
    ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return -1;
    data += n;
    len -= (size_t)n;
  }
  return 0;
}

#define SEND(c, lit) CHECK_INT(client_send((c), S(lit)), 0)

enum { FILL_TIMEOUT = -1, FILL_EOF = 0, FILL_RESET = -2 };

/* Reads what has arrived into c->buf, waiting until `deadline` (now_ms()).
 * The number of bytes read, FILL_EOF, FILL_RESET or FILL_TIMEOUT. */
static int client_fill(client_t *c, double deadline) {
  if (c->len == sizeof c->buf) return FILL_TIMEOUT;
  for (;;) {
    double left = deadline - now_ms();
    struct pollfd p = {c->fd, POLLIN, 0};
    int r = poll(&p, 1, left > 0 ? (int)left + 1 : 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return FILL_TIMEOUT;
    ssize_t n = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno == ECONNRESET ? FILL_RESET : FILL_TIMEOUT;
    c->len += (size_t)n;
    return (int)n;
  }
}

/* 1 when something arrived (or the server closed) within `ms`. */
static int client_readable(client_t *c, int ms) {
  if (c->len > 0) return 1;
  struct pollfd p = {c->fd, POLLIN, 0};
  return poll(&p, 1, ms) > 0;
}

typedef struct {
  int status;
  char head[2048];      /* status line and headers, NUL-terminated */
  char body[2048];      /* NUL-terminated */
  size_t body_len;
  long content_length;  /* -1 when absent */
} resp_t;

static const char *find_bytes(const char *hay, size_t len, const char *needle) {
  size_t n = strlen(needle);
  for (size_t i = 0; i + n <= len; i++)
    if (memcmp(hay + i, needle, n) == 0) return hay + i;
  return NULL;
}

/* The value of header `name` (case-insensitive) in `r`, copied to `out`;
 * 1 when present. */
static int resp_header(const resp_t *r, const char *name, char *out, size_t cap) {
  size_t n = strlen(name);
  const char *line = strstr(r->head, "\r\n");
  while (line && line[2] != '\r') {
    line += 2;
    if (strncasecmp(line, name, n) == 0 && line[n] == ':') {
      const char *v = line + n + 1;
      while (*v == ' ') v++;
      size_t vlen = strcspn(v, "\r");
      if (vlen >= cap) vlen = cap - 1;
      memcpy(out, v, vlen);
      out[vlen] = '\0';
      return 1;
    }
    line = strstr(line, "\r\n");
  }
  return 0;
}

/* Reads one response within `ms`. `head_only`: it answers HEAD, so no body
 * follows whatever Content-Length says (RFC 9110 9.3.2); nor does one
 * follow a 1xx. 0, or -1 when the connection ended or the time ran out. */
static int read_response(client_t *c, resp_t *r, int head_only, int ms) {
  double deadline = now_ms() + ms;
  memset(r, 0, sizeof *r);
  r->status = -1;
  r->content_length = -1;
  const char *end;
  while (!(end = find_bytes(c->buf, c->len, "\r\n\r\n")))
    if (client_fill(c, deadline) <= 0) return -1;
  size_t head_len = (size_t)(end - c->buf) + 4;
  if (head_len >= sizeof r->head) return -1;
  memcpy(r->head, c->buf, head_len);
  r->head[head_len] = '\0';
  if (sscanf(r->head, "HTTP/1.1 %d ", &r->status) != 1) return -1;
  char v[32];
  if (resp_header(r, "Content-Length", v, sizeof v)) r->content_length = atol(v);
  size_t body = head_only || r->status < 200 || r->content_length < 0
                    ? 0
                    : (size_t)r->content_length;
  if (body >= sizeof r->body) return -1;
  while (c->len < head_len + body)
    if (client_fill(c, deadline) <= 0) return -1;
  memcpy(r->body, c->buf + head_len, body);
  r->body[body] = '\0';
  r->body_len = body;
  c->len -= head_len + body;
  memmove(c->buf, c->buf + head_len + body, c->len);
  return 0;
}

/* Reads one response and checks it is 200 with `body`. */
static void expect_ok(client_t *c, const char *body) {
  resp_t r;
  CHECK_INT(read_response(c, &r, 0, PATIENCE_MS), 0);
  CHECK_INT(r.status, 200);
  CHECK_STR(r.body, body);
}

enum { CLOSED = 1, STILL_OPEN = 0, MORE_BYTES = -1 };

/* Waits up to `ms` for the server to close the connection; CLOSED when it
 * did with nothing more sent, MORE_BYTES when something else came. */
static int wait_closed(client_t *c, int ms) {
  double deadline = now_ms() + ms;
  for (;;) {
    if (c->len > 0) return MORE_BYTES;
    int r = client_fill(c, deadline);
    if (r == FILL_EOF || r == FILL_RESET) return CLOSED;
    if (r == FILL_TIMEOUT) return STILL_OPEN;
  }
}

/* A server-made error: `status`, "Connection: close", then the close. */
static void expect_error_and_close(client_t *c, int status) {
  resp_t r;
  CHECK_INT(read_response(c, &r, 0, PATIENCE_MS), 0);
  CHECK_INT(r.status, status);
  char v[32] = "";
  CHECK(resp_header(&r, "Connection", v, sizeof v) && strcasecmp(v, "close") == 0);
  CHECK_INT(wait_closed(c, PATIENCE_MS), CLOSED);
}

/* ---- pipelining and splits ---- */

static const char three_requests[] =
    "GET /a HTTP/1.1\r\nHost: t\r\n\r\n"
    "POST /b HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello"
    "POST /c?x=1 HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
    "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
static const char three_answers[] = "GET /a\nPOST /b hello\nPOST /c abcde\n";

static void expect_three_answers(harness_t *h, client_t *c) {
  expect_ok(c, "GET /a");
  expect_ok(c, "POST /b hello");
  expect_ok(c, "POST /c abcde");
  CHECK_INT(c->len, 0);
  CHECK_INT(handler_calls(h), 3);
  char seen[sizeof h->seen];
  handler_seen(h, seen, sizeof seen);
  CHECK_STR(seen, three_answers);
}

static void test_pipelined_in_one_write(void) {
  harness_t h;
  nc_server_options_t o = test_options();
  harness_start(&h, &o);
  client_t c;
  client_open(&c, h.port);
  SEND(&c, three_requests);
  expect_three_answers(&h, &c);
  client_close(&c);
  harness_finish(&h);
}

static void test_split_byte_by_byte(void) {
  harness_t h;
  nc_server_options_t o = test_options();
  harness_start(&h, &o);
  client_t c;
  client_open(&c, h.port);
  for (size_t i = 0; i < sizeof three_requests - 1; i++) {
    CHECK_INT(client_send(&c, three_requests + i, 1), 0);
    /* Let the server read most bytes on their own. */
    if (i % 4 == 0) sleep_ms(1);
  }
  expect_three_answers(&h, &c);
  client_close(&c);
  harness_finish(&h);
}

/* ---- size limits ---- */

static void test_headers_over_limit_431(void) {
  harness_t h;
  nc_server_options_t o = test_options();
  o.http.max_header_bytes = 256;
  harness_start(&h, &o);
  client_t c;
  client_open(&c, h.port);
  /* Under the limit first: the limit is per request, and the one that
   * crosses it still gets its own answer after the first. */
  char big[512];
  int n = snprintf(big, sizeof big,
                   "GET /small HTTP/1.1\r\nHost: t\r\n\r\n"
                   "GET /big HTTP/1.1\r\nHost: t\r\nX-Fill: %0300d\r\n\r\n", 0);
  CHECK_INT(client_send(&c, big, (size_t)n), 0);
  expect_ok(&c, "GET /small");
  expect_error_and_close(&c, 431);
  client_close(&c);
  CHECK_INT(handler_calls(&h), 1);
  harness_finish(&h);
}

static void test_body_over_limit_413(void) {
  harness_t h;
  nc_server_options_t o = test_options();
  o.http.max_body_bytes = 16;
  harness_start(&h, &o);
  client_t c;
  client_open(&c, h.port);
  SEND(&c, "POST /at HTTP/1.1\r\nHost: t\r\nContent-Length: 16\r\n\r\n0123456789abcdef");
  expect_ok(&c, "POST /at 0123456789abcdef");
  SEND(&c, "POST /over HTTP/1.1\r\nHost: t\r\nContent-Length: 17\r\n\r\n0123456789abcdefg");
  expect_error_and_close(&c, 413);
  client_close(&c);

  /* Chunked: the limit is on the decoded body, however it is cut. */
  client_open(&c, h.port);
  SEND(&c, "POST /chunks HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
           "a\r\n0123456789\r\na\r\n0123456789\r\n0\r\n\r\n");
  expect_error_and_close(&c, 413);
  client_close(&c);
  CHECK_INT(handler_calls(&h), 1);
  harness_finish(&h);
}

/* ---- timeouts ---- */

/* Sends `byte` every 50 ms until the server answers (or closes), `give_up_ms`
 * after `start` have passed or `max_bytes` are sent. Returns how many were
 * sent. */
static int trickle_until_answer(client_t *c, double start, const char *byte,
                                double give_up_ms, int max_bytes) {
  int sent = 0;
  while (!client_readable(c, 50) && now_ms() - start < give_up_ms && sent < max_bytes) {
    if (client_send(c, byte, 1) != 0) break;
    sent++;
  }
  return sent;
}

/* Reads a 408 that comes no sooner than `min_ms` after `start` and, when
 * `max_ms` is nonzero, before `max_ms`; then the server must close. */
static void expect_408_then_close(client_t *c, resp_t *r, double start, double min_ms,
                                  double max_ms) {
  CHECK_INT(read_response(c, r, 0, PATIENCE_MS), 0);
  double elapsed = now_ms() - start;
  CHECK_INT(r->status, 408);
  CHECK(elapsed >= min_ms);
  if (max_ms > 0) CHECK(elapsed < max_ms);
  if (elapsed < min_ms || (max_ms > 0 && elapsed >= max_ms))
    fprintf(stderr, "408 after %.0f ms (wanted %.0f to %.0f)\n", elapsed, min_ms, max_ms);
  CHECK_INT(wait_closed(c, PATIENCE_MS), CLOSED);
}

static void test_header_timeout_408(void) {
  harness_t h;
  nc_server_options_t o = test_options();
  o.header_timeout_ms = 300;
  harness_start(&h, &o);
  client_t c;
  client_open(&c, h.port);
  double start = now_ms();
  SEND(&c, "GET /slow HTTP/1.1\r\nHost: t\r\nX-Slow: ");
  /* Slow-loris: a byte every 50 ms never lets the connection idle, and
   * the headers never end. Trickling must not push the deadline back. */
  trickle_until_answer(&c, start, "a", 3000, 500);
  resp_t r;
  expect_408_then_close(&c, &r, start, 299, 3000);
  client_close(&c);
  CHECK_INT(handler_calls(&h), 0);
  harness_finish(&h);
}

/* Request 1 ends in the same write as request 2 begins: request 2's header
 * clock starts there, not with request 1's first byte. */
#define PIPE_HEADER_TIMEOUT_MS 1000
#define PIPE_GAP_MS 650

static void test_pipelined_request_own_header_clock(void) {
  harness_t h;
  nc_server_options_t o = test_options();
  o.header_timeout_ms = PIPE_HEADER_TIMEOUT_MS;
  harness_start(&h, &o);
  client_t c;
  client_open(&c, h.port);
  double start1 = now_ms();
  SEND(&c, "GET /1 HTTP/1.1\r\nHost: t\r\n");
  sleep_ms(PIPE_GAP_MS);
  double start2 = now_ms();
  SEND(&c, "\r\nGET /2 HTTP/1.1\r\n");
  expect_ok(&c, "GET /1");
  sleep_ms(start2 + PIPE_GAP_MS - now_ms());
  /* Past request 1's limit counted from its start; well within request
   * 2's counted from its own. */
  CHECK(now_ms() - start1 > PIPE_HEADER_TIMEOUT_MS);
  SEND(&c, "Host: t\r\n\r\n");
  expect_ok(&c, "GET /2");
  client_close(&c);
  CHECK_INT(handler_calls(&h), 2);
  harness_finish(&h);
}

static void test_pipelined_request_header_timeout_from_its_start(void) {
  harness_t h;
  nc_server_options_t o = test_options();
  o.header_timeout_ms = PIPE_HEADER_TIMEOUT_MS;
  harness_start(&h, &o);
  client_t c;
  client_open(&c, h.port);
  SEND(&c, "GET /1 HTTP/1.1\r\nHost: t\r\n");
  sleep_ms(PIPE_GAP_MS);
  double start2 = now_ms();
  SEND(&c, "\r\nGET /2 HTTP/1.1\r\n");
  expect_ok(&c, "GET /1");
  resp_t r;
  expect_408_then_close(&c, &r, start2, PIPE_HEADER_TIMEOUT_MS - 1, 0);
  client_close(&c);
  CHECK_INT(handler_calls(&h), 1);
  harness_finish(&h);
}

static void test_body_timeout_408(void) {
  harness_t h;
  nc_server_options_t o = test_options();
  o.body_timeout_ms = 600;
  o.idle_timeout_ms = 2000;
  harness_start(&h, &o);
  client_t c;
  client_open(&c, h.port);
  double start = now_ms();
  SEND(&c, "POST /slow HTTP/1.1\r\nHost: t\r\nContent-Length: 200\r\n\r\n");
  /* A byte every 50 ms: never idle for idle_timeout_ms, never done. */
  int sent = trickle_until_answer(&c, start, "b", 5000, 199);
  resp_t r;
  expect_408_then_close(&c, &r, start, 599, 5000);
  CHECK(strstr(r.body, "body too slow") != NULL);
  CHECK(sent < 199);
  client_close(&c);
  CHECK_INT(handler_calls(&h), 0);
  harness_finish(&h);
}

static void test_idle_timeout_closes(void) {
  harness_t h;
  nc_server_options_t o = test_options();
  o.idle_timeout_ms = 300;
  harness_start(&h, &o);
  /* One connection that never sends a byte, one idle after an answer. */
  client_t silent, kept;
  double silent_start = now_ms();
  client_open(&silent, h.port);
  client_open(&kept, h.port);
  double kept_start = now_ms();
  SEND(&kept, "GET /once HTTP/1.1\r\nHost: t\r\n\r\n");
  resp_t r;
  CHECK_INT(read_response(&kept, &r, 0, PATIENCE_MS), 0);
  CHECK_INT(r.status, 200);
  char v[32] = "";
  CHECK(!resp_header(&r, "Connection", v, sizeof v) || strcasecmp(v, "close") != 0);
  /* Closed without a word: an idle connection is owed no answer. */
  CHECK_INT(wait_closed(&kept, 3000), CLOSED);
  double kept_elapsed = now_ms() - kept_start;
  CHECK_INT(wait_closed(&silent, 3000), CLOSED);
  double silent_elapsed = now_ms() - silent_start;
  CHECK(kept_elapsed >= 299);
  CHECK(silent_elapsed >= 299);
  client_close(&kept);
  client_close(&silent);
  CHECK_INT(handler_calls(&h), 1);
  harness_finish(&h);
}

/* ---- connections ---- */

static void test_max_connections_503(void) {
  harness_t h;
  nc_server_options_t o = test_options();
  o.max_connections = 2;
  harness_start(&h, &o);
  client_t c1, c2, c3;
  client_open(&c1, h.port);
  SEND(&c1, "GET /1 HTTP/1.1\r\nHost: t\r\n\r\n");
  expect_ok(&c1, "GET /1");
  client_open(&c2, h.port);
  SEND(&c2, "GET /2 HTTP/1.1\r\nHost: t\r\n\r\n");
  expect_ok(&c2, "GET /2");

  client_open(&c3, h.port);
  resp_t r;
  CHECK_INT(read_response(&c3, &r, 0, PATIENCE_MS), 0);
  CHECK_INT(r.status, 503);
  char v[32] = "";
  CHECK(resp_header(&r, "Retry-After", v, sizeof v) && strcmp(v, "1") == 0);
  CHECK(resp_header(&r, "Connection", v, sizeof v) && strcasecmp(v, "close") == 0);
  CHECK_INT(wait_closed(&c3, PATIENCE_MS), CLOSED);
  client_close(&c3);
  CHECK_INT(server_connections(&h), 2);

  /* Both slots free again once their clients leave. */
  client_close(&c1);
  client_close(&c2);
  CHECK_INT(wait_no_connections(&h), 0);
  client_open(&c1, h.port);
  client_open(&c2, h.port);
  SEND(&c1, "GET /3 HTTP/1.1\r\nHost: t\r\n\r\n");
  SEND(&c2, "GET /4 HTTP/1.1\r\nHost: t\r\n\r\n");
  expect_ok(&c1, "GET /3");
  expect_ok(&c2, "GET /4");
  client_close(&c1);
  client_close(&c2);
  CHECK_INT(handler_calls(&h), 4);
  harness_finish(&h);
}

/* ---- answers the server gives itself ---- */

static void test_malformed_400(void) {
  harness_t h;
  nc_server_options_t o = test_options();
  harness_start(&h, &o);
  client_t c;
  client_open(&c, h.port);
  /* A good request is answered before the garbage behind it. */
  SEND(&c, "GET /ok HTTP/1.1\r\nHost: t\r\n\r\nNOT HTTP AT ALL\r\n\r\n");
  expect_ok(&c, "GET /ok");
  expect_error_and_close(&c, 400);
  client_close(&c);

  client_open(&c, h.port);
  SEND(&c, "GET / HTTP/1.1\r\nHost: t\r\nNo colon here\r\n\r\n");
  expect_error_and_close(&c, 400);
  client_close(&c);

  /* RFC 9112 3.2: an HTTP/1.1 request without Host. */
  client_open(&c, h.port);
  SEND(&c, "GET / HTTP/1.1\r\n\r\n");
  expect_error_and_close(&c, 400);
  client_close(&c);
  CHECK_INT(handler_calls(&h), 1);
  harness_finish(&h);
}

static void test_expect_100_continue(void) {
  harness_t h;
  nc_server_options_t o = test_options();
  o.http.max_body_bytes = 16;
  harness_start(&h, &o);
  client_t c;
  client_open(&c, h.port);
  SEND(&c, "POST /up HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
           "Content-Length: 5\r\n\r\n");
  resp_t r;
  CHECK_INT(read_response(&c, &r, 0, PATIENCE_MS), 0);
  CHECK_INT(r.status, 100);
  CHECK_INT(c.len, 0);
  SEND(&c, "hello");
  expect_ok(&c, "POST /up hello");
  client_close(&c);

  /* Over the body limit: the final answer at once, no 100 first. */
  client_open(&c, h.port);
  SEND(&c, "POST /big HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
           "Content-Length: 17\r\n\r\n");
  expect_error_and_close(&c, 413);
  client_close(&c);
  CHECK_INT(handler_calls(&h), 1);
  harness_finish(&h);
}

static void test_head_has_no_body(void) {
  harness_t h;
  nc_server_options_t o = test_options();
  harness_start(&h, &o);
  client_t c;
  client_open(&c, h.port);
  /* Pipelined: a body after the HEAD answer would be read as the start of
   * the GET answer and break it. */
  SEND(&c, "HEAD /h HTTP/1.1\r\nHost: t\r\n\r\nGET /g HTTP/1.1\r\nHost: t\r\n\r\n");
  resp_t r;
  CHECK_INT(read_response(&c, &r, 1, PATIENCE_MS), 0);
  CHECK_INT(r.status, 200);
  CHECK_INT(r.content_length, (long)strlen("HEAD /h"));
  expect_ok(&c, "GET /g");
  CHECK_INT(c.len, 0);
  client_close(&c);
  CHECK_INT(handler_calls(&h), 2);
  char seen[sizeof h.seen];
  handler_seen(&h, seen, sizeof seen);
  CHECK_STR(seen, "HEAD /h\nGET /g\n");
  harness_finish(&h);
}

/* A client that reads nothing: its answers fill every buffer, then its
 * last request's headers time out. The 408 can never be written, and the
 * server must still let go of the connection (it used to keep it until
 * the client left or the server stopped). */
static void test_408_to_a_client_that_reads_nothing(void) {
  harness_t h;
  nc_server_options_t o = test_options();
  o.header_timeout_ms = 300;
  o.idle_timeout_ms = 500;
  o.max_pending_write_bytes = 64 * 1024 * 1024;
  harness_start(&h, &o);
  client_t c;
  c.len = 0;
  c.fd = socket(AF_INET, SOCK_STREAM, 0);
  CHECK(c.fd >= 0);
  int small = 4096;
  setsockopt(c.fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)h.port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  CHECK_INT(connect(c.fd, (struct sockaddr *)&a, sizeof a), 0);
  SEND(&c, "GET /big HTTP/1.1\r\nHost: t\r\n\r\n"
           "GET /big HTTP/1.1\r\nHost: t\r\n\r\n"
           "GET /big HTTP/1.1\r\nHost: t\r\n\r\n"
           "GET /partial HTTP/1.1\r\n");
  double start = now_ms();
  while (handler_calls(&h) < 3 && now_ms() - start < PATIENCE_MS) sleep_ms(5);
  CHECK_INT(handler_calls(&h), 3);
  /* Header timeout, then the idle timeout for the 408's write: well
   * within PATIENCE_MS. */
  CHECK_INT(wait_no_connections(&h), 0);
  client_close(&c);
  harness_finish(&h);
}

int main(void) {
  /* A write to a client the test has closed must fail, not kill us. */
  signal(SIGPIPE, SIG_IGN);
  /* A hang fails the run instead of holding ctest until its timeout. */
  alarm(120);
  nc_log_set_level(NC_LOG_WARN);
  RUN(test_pipelined_in_one_write);
  RUN(test_split_byte_by_byte);
  RUN(test_headers_over_limit_431);
  RUN(test_body_over_limit_413);
  RUN(test_header_timeout_408);
  RUN(test_pipelined_request_own_header_clock);
  RUN(test_pipelined_request_header_timeout_from_its_start);
  RUN(test_body_timeout_408);
  RUN(test_idle_timeout_closes);
  RUN(test_max_connections_503);
  RUN(test_malformed_400);
  RUN(test_expect_100_continue);
  RUN(test_head_has_no_body);
  RUN(test_408_to_a_client_that_reads_nothing);
  return check_report();
}
