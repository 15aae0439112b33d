/* Tests for core/http.c: scripted bytes in, requests and errors out, with no
 * sockets. Most parsing tests go through transcript(), which plays the
 * server's part (feed, answer, next, feed the rest) and writes down every
 * event, so a request split at any byte boundary can be compared with the
 * same request fed whole. */
#define _POSIX_C_SOURCE 200809L

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "http.h"

#define S(lit) (lit), (sizeof(lit) - 1)

static const nc_http_limits_t default_limits = {16 * 1024, 1024 * 1024};

static nc_http_parser_t *new_parser(size_t max_header, size_t max_body) {
  nc_http_limits_t l = {max_header, max_body};
  nc_http_parser_t *p = nc_http_parser_new(&l);
  CHECK(p != NULL);
  return p;
}

/* ---- transcript: the server's loop, written down ---- */

typedef struct {
  char text[65536];
  size_t len;
} tx_t;

static void tx_printf(tx_t *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void tx_printf(tx_t *t, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int w = vsnprintf(t->text + t->len, sizeof(t->text) - t->len, fmt, ap);
  va_end(ap);
  if (w > 0) t->len += (size_t)w;
  if (t->len >= sizeof(t->text)) t->len = sizeof(t->text) - 1;
}

static void tx_str(tx_t *t, const char *label, const char *s, size_t n) {
  tx_printf(t, " %s=", label);
  for (size_t i = 0; i < n && t->len + 8 < sizeof(t->text); i++) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x20 && c < 0x7f && c != '\\')
      t->text[t->len++] = (char)c;
    else
      t->len += (size_t)snprintf(t->text + t->len, 8, "\\x%02x", c);
  }
  t->text[t->len] = '\0';
}

static void tx_request(tx_t *t, const nc_http_request_t *r) {
  tx_printf(t, "REQ %s", r->method);
  tx_str(t, "target", r->target, strlen(r->target));
  tx_str(t, "path", r->path, strlen(r->path));
  tx_str(t, "query", r->query, strlen(r->query));
  tx_printf(t, " v=%d%d", r->http_major, r->http_minor);
  tx_printf(t, " ka=%d", r->keep_alive);
  tx_printf(t, " up=%d", r->upgrade);
  for (size_t i = 0; i < r->header_count; i++) {
    tx_str(t, "h", r->headers[i].name, strlen(r->headers[i].name));
    tx_str(t, "v", r->headers[i].value, strlen(r->headers[i].value));
  }
  tx_printf(t, " len=%zu", r->body_len);
  tx_str(t, "body", r->body, r->body_len);
  tx_printf(t, "\n");
}

/* Delivers `data` as the network might: `first` bytes, then `step` bytes at
 * a time. Bytes the parser did not consume are offered again, as server.c
 * keeps them in its read buffer. Ends at the first ERROR or when everything
 * has been delivered. */
static void transcript_ex(tx_t *t, const nc_http_limits_t *lim,
                          const char *data, size_t len, size_t first,
                          size_t step) {
  t->len = 0;
  t->text[0] = '\0';
  nc_http_parser_t *p = nc_http_parser_new(lim);
  if (!p) {
    tx_printf(t, "NOMEM");
    return;
  }
  size_t off = 0, avail = first < len ? first : len;
  for (;;) {
    size_t used = 0;
    nc_http_result_t res = nc_http_parser_feed(p, data + off, avail - off, &used);
    if (used > avail - off) {
      tx_printf(t, "OVERCONSUMED");
      break;
    }
    off += used;
    if (res == NC_HTTP_REQUEST) {
      const nc_http_request_t *r = nc_http_parser_request(p);
      if (!r) {
        tx_printf(t, "NULLREQ");
        break;
      }
      tx_request(t, r);
      nc_http_parser_next(p);
      continue;
    }
    if (res == NC_HTTP_CONTINUE) {
      tx_printf(t, "CONTINUE at %zu\n", off);
      continue;
    }
    if (res == NC_HTTP_ERROR) {
      tx_printf(t, "ERROR %d\n", nc_http_parser_error_status(p));
      break;
    }
    if (off != avail) tx_printf(t, "MORE-LEFT-BYTES");
    if (avail == len) {
      tx_printf(t, "MORE busy=%d\n", nc_http_parser_busy(p));
      break;
    }
    avail = len - avail < step ? len : avail + step;
  }
  nc_http_parser_free(p);
}

static void transcript(tx_t *t, const char *data, size_t len, size_t first,
                       size_t step) {
  transcript_ex(t, &default_limits, data, len, first, step);
}

/* Feeding whole, one byte at a time, in 7-byte pieces and split in two at
 * every possible offset must all tell the same story. */
static void check_any_split(const nc_http_limits_t *lim, const char *data,
                            size_t len, const char *want_prefix) {
  static tx_t whole, other;
  transcript_ex(&whole, lim, data, len, len, len);
  if (want_prefix) {
    CHECK(strncmp(whole.text, want_prefix, strlen(want_prefix)) == 0);
    if (strncmp(whole.text, want_prefix, strlen(want_prefix)) != 0)
      fprintf(stderr, "got:\n%s\nwant prefix:\n%s\n", whole.text, want_prefix);
  }
  transcript_ex(&other, lim, data, len, 1, 1);
  CHECK_STR(other.text, whole.text);
  transcript_ex(&other, lim, data, len, 7, 7);
  CHECK_STR(other.text, whole.text);
  int bad = 0;
  for (size_t i = 0; i <= len; i++) {
    transcript_ex(&other, lim, data, len, i, len);
    if (strcmp(other.text, whole.text) != 0) {
      if (!bad)
        fprintf(stderr, "split at %zu:\n%s\nwhole:\n%s\n", i, other.text,
                whole.text);
      bad++;
    }
  }
  CHECK_INT(bad, 0);
}

/* Feeds a whole buffer once and returns the result; *p keeps the parser. */
static nc_http_result_t feed_once(nc_http_parser_t *p, const char *data,
                                  size_t len, size_t *used) {
  *used = (size_t)-1;
  return nc_http_parser_feed(p, data, len, used);
}

/* ---- requests ---- */

static void test_simple_get(void) {
  nc_http_parser_t *p = new_parser(1024, 1024);
  const char req[] = "GET /index.html HTTP/1.1\r\nHost: example.org\r\n\r\n";
  size_t used;
  CHECK(nc_http_parser_request(p) == NULL);
  CHECK_INT(feed_once(p, S(req), &used), NC_HTTP_REQUEST);
  CHECK_INT(used, sizeof(req) - 1);
  const nc_http_request_t *r = nc_http_parser_request(p);
  CHECK(r != NULL);
  if (r) {
    CHECK_STR(r->method, "GET");
    CHECK_STR(r->target, "/index.html");
    CHECK_STR(r->path, "/index.html");
    CHECK_STR(r->query, "");
    CHECK_INT(r->header_count, 1);
    CHECK_STR(r->headers[0].name, "host");
    CHECK_STR(r->headers[0].value, "example.org");
    CHECK_STR(r->body, "");
    CHECK_INT(r->body_len, 0);
    CHECK_INT(r->http_major, 1);
    CHECK_INT(r->http_minor, 1);
    CHECK_INT(r->keep_alive, 1);
    CHECK_INT(r->upgrade, 0);
  }
  CHECK_INT(nc_http_parser_busy(p), 0);
  CHECK_INT(nc_http_parser_headers_done(p), 1);
  CHECK_INT(nc_http_parser_error_status(p), 0);
  nc_http_parser_next(p);
  CHECK(nc_http_parser_request(p) == NULL);
  CHECK_INT(nc_http_parser_headers_done(p), 0);
  CHECK_INT(feed_once(p, "", 0, &used), NC_HTTP_MORE);
  CHECK_INT(used, 0);
  CHECK_INT(feed_once(p, NULL, 0, &used), NC_HTTP_MORE);
  nc_http_parser_free(p);
}

static void test_methods(void) {
  static const char *methods[] = {"GET",     "HEAD",  "POST",
                                  "PUT",     "DELETE", "PATCH",
                                  "OPTIONS"};
  for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
    char req[128];
    int n = snprintf(req, sizeof(req), "%s /x HTTP/1.1\r\nHost: h\r\n\r\n",
                     methods[i]);
    nc_http_parser_t *p = new_parser(1024, 1024);
    size_t used;
    CHECK_INT(feed_once(p, req, (size_t)n, &used), NC_HTTP_REQUEST);
    const nc_http_request_t *r = nc_http_parser_request(p);
    CHECK(r && strcmp(r->method, methods[i]) == 0);
    nc_http_parser_free(p);
  }
  /* RFC 9112 3.2.4: the asterisk-form, only for OPTIONS. */
  nc_http_parser_t *p = new_parser(1024, 1024);
  size_t used;
  CHECK_INT(feed_once(p, S("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n"), &used),
            NC_HTTP_REQUEST);
  const nc_http_request_t *r = nc_http_parser_request(p);
  if (r) CHECK_STR(r->path, "*");
  nc_http_parser_free(p);
}

static void test_url_and_headers(void) {
  nc_http_parser_t *p = new_parser(1024, 1024);
  const char req[] =
      "GET /a%20b/c?x=1&y=%41&z HTTP/1.1\r\n"
      "Host:example.org\r\n"
      "X-Padded:   spaced value \t \r\n"
      "Content-TYPE: text/plain; charset=utf-8\r\n"
      "X-Empty:\r\n"
      "X-Dup: one\r\n"
      "x-dup: two\r\n"
      "Accept: */*\r\n"
      "\r\n";
  size_t used;
  CHECK_INT(feed_once(p, S(req), &used), NC_HTTP_REQUEST);
  const nc_http_request_t *r = nc_http_parser_request(p);
  CHECK(r != NULL);
  if (r) {
    CHECK_STR(r->target, "/a%20b/c?x=1&y=%41&z");
    CHECK_STR(r->path, "/a%20b/c");
    CHECK_STR(r->query, "x=1&y=%41&z");
    CHECK_INT(r->header_count, 7);
    CHECK_STR(r->headers[0].name, "host");
    CHECK_STR(r->headers[0].value, "example.org");
    CHECK_STR(r->headers[1].name, "x-padded");
    CHECK_STR(r->headers[1].value, "spaced value");
    CHECK_STR(r->headers[2].name, "content-type");
    CHECK_STR(r->headers[2].value, "text/plain; charset=utf-8");
    CHECK_STR(r->headers[3].name, "x-empty");
    CHECK_STR(r->headers[3].value, "");
    CHECK_STR(r->headers[4].value, "one");
    CHECK_STR(r->headers[5].name, "x-dup");
    CHECK_STR(r->headers[5].value, "two");
  }
  nc_http_parser_free(p);

  /* Query edge cases: "?" alone, absolute-form (RFC 9112 3.2.2), a stray
   * fragment. */
  struct {
    const char *target, *path, *query;
  } cases[] = {
      {"/p?", "/p", ""},
      {"/?a=b?c", "/", "a=b?c"},
      {"http://h:8080/p/q?r=1", "/p/q", "r=1"},
      {"http://h", "/", ""},
      {"http://h?x=1", "/", "x=1"},
      {"/p?x=1#frag", "/p", "x=1"},
      {"/p#frag", "/p", ""},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    char buf[256];
    int n = snprintf(buf, sizeof(buf), "GET %s HTTP/1.1\r\nHost: h\r\n\r\n",
                     cases[i].target);
    p = new_parser(1024, 1024);
    nc_http_result_t res = feed_once(p, buf, (size_t)n, &used);
    CHECK_INT(res, NC_HTTP_REQUEST);
    r = nc_http_parser_request(p);
    if (r) {
      CHECK_STR(r->target, cases[i].target);
      CHECK_STR(r->path, cases[i].path);
      CHECK_STR(r->query, cases[i].query);
    } else {
      fprintf(stderr, "  target %s: %s\n", cases[i].target,
              nc_http_parser_error_reason(p));
    }
    nc_http_parser_free(p);
  }

  /* An obs-fold (RFC 9112 5.2) reaches the script as a single SP run, never
   * as a line break. */
  p = new_parser(1024, 1024);
  CHECK_INT(feed_once(p, S("GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n"),
                      &used),
            NC_HTTP_REQUEST);
  r = nc_http_parser_request(p);
  if (r) {
    const char *v = nc_http_request_header(r, "x");
    CHECK(v != NULL && strchr(v, '\r') == NULL && strchr(v, '\n') == NULL);
    CHECK(v != NULL && v[0] == 'a' && v[strlen(v) - 1] == 'b');
  }
  nc_http_parser_free(p);

  /* Many headers: the header array grows. */
  char big[8192];
  size_t n = (size_t)snprintf(big, sizeof(big), "GET / HTTP/1.1\r\nHost: h\r\n");
  for (int i = 0; i < 100; i++)
    n += (size_t)snprintf(big + n, sizeof(big) - n, "X-H%d: v%d\r\n", i, i);
  n += (size_t)snprintf(big + n, sizeof(big) - n, "\r\n");
  p = new_parser(8192, 1024);
  CHECK_INT(feed_once(p, big, n, &used), NC_HTTP_REQUEST);
  r = nc_http_parser_request(p);
  if (r) {
    CHECK_INT(r->header_count, 101);
    CHECK_STR(nc_http_request_header(r, "x-h99"), "v99");
    CHECK_STR(nc_http_request_header(r, "X-H0"), "v0");
  }
  nc_http_parser_free(p);
}

static void test_header_lookup_case(void) {
  nc_http_parser_t *p = new_parser(1024, 1024);
  size_t used;
  CHECK_INT(feed_once(p,
                      S("GET / HTTP/1.1\r\nHOST: h\r\nContent-Type: a/b\r\n"
                        "X-Dup: first\r\nX-DUP: second\r\n\r\n"),
                      &used),
            NC_HTTP_REQUEST);
  const nc_http_request_t *r = nc_http_parser_request(p);
  if (r) {
    CHECK_STR(nc_http_request_header(r, "content-type"), "a/b");
    CHECK_STR(nc_http_request_header(r, "CONTENT-TYPE"), "a/b");
    CHECK_STR(nc_http_request_header(r, "Content-Type"), "a/b");
    CHECK_STR(nc_http_request_header(r, "host"), "h");
    CHECK_STR(nc_http_request_header(r, "x-dup"), "first");
    CHECK(nc_http_request_header(r, "content-length") == NULL);
    CHECK(nc_http_request_header(r, "content-typ") == NULL);
    CHECK(nc_http_request_header(r, "") == NULL);
  }
  nc_http_parser_free(p);
}

static void test_content_length_body(void) {
  nc_http_parser_t *p = new_parser(1024, 1024);
  const char req[] =
      "POST /things HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n"
      "hello world";
  size_t used;
  CHECK_INT(feed_once(p, S(req), &used), NC_HTTP_REQUEST);
  CHECK_INT(used, sizeof(req) - 1);
  const nc_http_request_t *r = nc_http_parser_request(p);
  if (r) {
    CHECK_STR(r->method, "POST");
    CHECK_INT(r->body_len, 11);
    CHECK_STR(r->body, "hello world");
  }
  nc_http_parser_free(p);

  /* Binary bodies keep their NULs; body_len, not strlen, is the length. */
  p = new_parser(1024, 1024);
  const char bin[] =
      "PUT /b HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\na\0b\0c";
  CHECK_INT(feed_once(p, S(bin), &used), NC_HTTP_REQUEST);
  r = nc_http_parser_request(p);
  if (r) {
    CHECK_INT(r->body_len, 5);
    CHECK(memcmp(r->body, "a\0b\0c", 5) == 0);
    CHECK_INT(r->body[5], 0);
  }
  nc_http_parser_free(p);

  /* Content-Length: 0 is an empty body, not a missing one. */
  p = new_parser(1024, 1024);
  CHECK_INT(feed_once(p,
                      S("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n"),
                      &used),
            NC_HTTP_REQUEST);
  r = nc_http_parser_request(p);
  if (r) {
    CHECK_INT(r->body_len, 0);
    CHECK_STR(r->body, "");
  }
  nc_http_parser_free(p);

  /* A partial body leaves the parser busy, with headers done. */
  p = new_parser(1024, 1024);
  CHECK_INT(feed_once(p, req, sizeof(req) - 1 - 4, &used), NC_HTTP_MORE);
  CHECK_INT(used, sizeof(req) - 1 - 4);
  CHECK_INT(nc_http_parser_busy(p), 1);
  CHECK_INT(nc_http_parser_headers_done(p), 1);
  CHECK(nc_http_parser_request(p) == NULL);
  CHECK_INT(feed_once(p, req + sizeof(req) - 1 - 4, 4, &used), NC_HTTP_REQUEST);
  CHECK_INT(used, 4);
  r = nc_http_parser_request(p);
  if (r) CHECK_STR(r->body, "hello world");
  nc_http_parser_free(p);
}

/* Chunk extensions are ignored (RFC 9112 7.1.1). llhttp 8.1 rejects a
 * second extension after one with a value ("5;a=1;b"), so the forms used
 * here are the ones it accepts: name=value, bare names, quoted values. */
static const char chunked_req[] =
    "POST /c?k=v HTTP/1.1\r\n"
    "Host: h\r\n"
    "Transfer-Encoding: chunked\r\n"
    "\r\n"
    "5;name=value\r\n"
    "hello\r\n"
    "1;flag;other\r\n"
    " \r\n"
    "A;ext=\"quoted\"\r\n"
    "0123456789\r\n"
    "0\r\n"
    "X-Trailer: t\r\n"
    "X-Other: u\r\n"
    "\r\n";

static void test_chunked_body(void) {
  nc_http_parser_t *p = new_parser(1024, 1024);
  size_t used;
  CHECK_INT(feed_once(p, S(chunked_req), &used), NC_HTTP_REQUEST);
  CHECK_INT(used, sizeof(chunked_req) - 1);
  const nc_http_request_t *r = nc_http_parser_request(p);
  if (r) {
    CHECK_STR(r->body, "hello 0123456789");
    CHECK_INT(r->body_len, 16);
    CHECK_STR(r->query, "k=v");
    CHECK_STR(nc_http_request_header(r, "transfer-encoding"), "chunked");
    /* Trailers are not merged into the headers (RFC 9110 6.5.1). */
    CHECK(nc_http_request_header(r, "x-trailer") == NULL);
    CHECK_INT(r->header_count, 2);
    CHECK_INT(r->keep_alive, 1);
  }
  nc_http_parser_free(p);

  /* An empty chunked body. */
  p = new_parser(1024, 1024);
  CHECK_INT(feed_once(p,
                      S("POST / HTTP/1.1\r\nHost: h\r\n"
                        "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
                      &used),
            NC_HTTP_REQUEST);
  r = nc_http_parser_request(p);
  if (r) {
    CHECK_INT(r->body_len, 0);
    CHECK_STR(r->body, "");
  }
  nc_http_parser_free(p);
}

static void test_body_split_mid_chunk(void) {
  nc_http_parser_t *p = new_parser(1024, 1024);
  const char *mid = strstr(chunked_req, "hel") + 3; /* inside "hello" */
  size_t first = (size_t)(mid - chunked_req), used;
  CHECK_INT(feed_once(p, chunked_req, first, &used), NC_HTTP_MORE);
  CHECK_INT(used, first);
  CHECK_INT(nc_http_parser_busy(p), 1);
  CHECK_INT(nc_http_parser_headers_done(p), 1);
  /* Then stop in the middle of a chunk-size line, then of the trailers. */
  size_t second = (size_t)(strstr(chunked_req, "A;ext") + 1 - chunked_req);
  CHECK_INT(feed_once(p, chunked_req + first, second - first, &used),
            NC_HTTP_MORE);
  CHECK_INT(used, second - first);
  size_t third = (size_t)(strstr(chunked_req, "X-Oth") + 3 - chunked_req);
  CHECK_INT(feed_once(p, chunked_req + second, third - second, &used),
            NC_HTTP_MORE);
  CHECK_INT(nc_http_parser_busy(p), 1);
  CHECK_INT(feed_once(p, chunked_req + third, sizeof(chunked_req) - 1 - third,
                      &used),
            NC_HTTP_REQUEST);
  CHECK_INT(used, sizeof(chunked_req) - 1 - third);
  const nc_http_request_t *r = nc_http_parser_request(p);
  if (r) CHECK_STR(r->body, "hello 0123456789");
  nc_http_parser_free(p);
}

static void test_split_anywhere(void) {
  nc_http_limits_t lim = {1024, 1024};
  const char cl[] =
      "PUT /movies/v1/movies/42?x=%20 HTTP/1.1\r\n"
      "Host: localhost:8080\r\n"
      "Content-Type: application/json\r\n"
      "Content-Length: 26\r\n"
      "\r\n"
      "{\"title\":\"Alien\",\"y\":1979}";
  check_any_split(&lim, S(cl),
                  "REQ PUT target=/movies/v1/movies/42?x=%20 path=/movies/v1/"
                  "movies/42 query=x=%20 v=11 ka=1 up=0 h=host v=localhost:"
                  "8080 h=content-type v=application/json h=content-length v="
                  "26 len=26 body={\"title\":\"Alien\",\"y\":1979}\n"
                  "MORE busy=0\n");
  check_any_split(&lim, S(chunked_req),
                  "REQ POST target=/c?k=v path=/c query=k=v v=11 ka=1 up=0 "
                  "h=host v=h h=transfer-encoding v=chunked len=16 "
                  "body=hello 0123456789\nMORE busy=0\n");
  /* Pipelined, with a 100-continue in the middle and an upgrade last. */
  const char mix[] =
      "GET /one HTTP/1.1\r\nHost: h\r\n\r\n"
      "POST /two HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n"
      "Content-Length: 3\r\n\r\nabc"
      "\r\n" /* a stray CRLF between requests, RFC 9112 2.2 */
      "POST /three HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
      "2\r\nde\r\n0\r\n\r\n"
      "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\n"
      "Upgrade: websocket\r\n\r\n";
  check_any_split(&lim, S(mix), "REQ GET target=/one");
  /* An error must surface the same way whatever the split. */
  const char bad[] = "GET / HTTP/1.1\r\nHost: h\r\nBad Header: x\r\n\r\n";
  check_any_split(&lim, S(bad), "ERROR 400\n");
  const char too_big[] =
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
      "400\r\n";
  nc_http_limits_t small = {1024, 100};
  check_any_split(&small, S(too_big), "ERROR 413\n");
}

static void test_one_byte_at_a_time(void) {
  const char req[] =
      "POST /x?y=z HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n"
      "X-A: b\r\n\r\n0123456789";
  nc_http_parser_t *p = new_parser(1024, 1024);
  size_t used;
  for (size_t i = 0; i + 1 < sizeof(req) - 1; i++) {
    nc_http_result_t res = nc_http_parser_feed(p, req + i, 1, &used);
    CHECK_INT(res, NC_HTTP_MORE);
    CHECK_INT(used, 1);
    CHECK_INT(nc_http_parser_busy(p), 1);
  }
  CHECK_INT(nc_http_parser_feed(p, req + sizeof(req) - 2, 1, &used),
            NC_HTTP_REQUEST);
  CHECK_INT(used, 1);
  const nc_http_request_t *r = nc_http_parser_request(p);
  if (r) {
    CHECK_STR(r->target, "/x?y=z");
    CHECK_STR(r->query, "y=z");
    CHECK_STR(nc_http_request_header(r, "x-a"), "b");
    CHECK_STR(r->body, "0123456789");
  }
  nc_http_parser_free(p);
}

static void test_pipelined(void) {
  const char r1[] = "GET /first HTTP/1.1\r\nHost: h\r\n\r\n";
  const char r2[] =
      "POST /second HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nbody";
  const char r3[] = "DELETE /third?x HTTP/1.1\r\nHost: h\r\n\r\n";
  char buf[512];
  size_t n1 = sizeof(r1) - 1, n2 = sizeof(r2) - 1, n3 = sizeof(r3) - 1;
  memcpy(buf, r1, n1);
  memcpy(buf + n1, r2, n2);
  memcpy(buf + n1 + n2, r3, n3);
  size_t total = n1 + n2 + n3, used;

  nc_http_parser_t *p = new_parser(1024, 1024);
  CHECK_INT(feed_once(p, buf, total, &used), NC_HTTP_REQUEST);
  CHECK_INT(used, n1);
  const nc_http_request_t *r = nc_http_parser_request(p);
  if (r) CHECK_STR(r->path, "/first");
  /* Until the first is answered nothing more is taken. */
  CHECK_INT(feed_once(p, buf + n1, total - n1, &used), NC_HTTP_REQUEST);
  CHECK_INT(used, 0);
  nc_http_parser_next(p);

  CHECK_INT(feed_once(p, buf + n1, total - n1, &used), NC_HTTP_REQUEST);
  CHECK_INT(used, n2);
  r = nc_http_parser_request(p);
  if (r) {
    CHECK_STR(r->path, "/second");
    CHECK_STR(r->body, "body");
  }
  nc_http_parser_next(p);

  CHECK_INT(feed_once(p, buf + n1 + n2, n3, &used), NC_HTTP_REQUEST);
  CHECK_INT(used, n3);
  r = nc_http_parser_request(p);
  if (r) {
    CHECK_STR(r->method, "DELETE");
    CHECK_STR(r->path, "/third");
    CHECK_STR(r->query, "x");
  }
  nc_http_parser_next(p);
  CHECK_INT(nc_http_parser_busy(p), 0);
  CHECK_INT(feed_once(p, "", 0, &used), NC_HTTP_MORE);
  nc_http_parser_free(p);

  /* next() without a complete request changes nothing. */
  p = new_parser(1024, 1024);
  CHECK_INT(feed_once(p, r1, 10, &used), NC_HTTP_MORE);
  nc_http_parser_next(p);
  CHECK_INT(nc_http_parser_busy(p), 1);
  CHECK_INT(feed_once(p, r1 + 10, n1 - 10, &used), NC_HTTP_REQUEST);
  r = nc_http_parser_request(p);
  if (r) CHECK_STR(r->path, "/first");
  nc_http_parser_free(p);
}

static void test_expect_continue(void) {
  const char head[] =
      "PUT /x HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\n"
      "Content-Length: 5\r\n\r\n";
  char req[256];
  size_t hn = sizeof(head) - 1, used;
  memcpy(req, head, hn);
  memcpy(req + hn, "abcde", 5);

  nc_http_parser_t *p = new_parser(1024, 1024);
  CHECK_INT(feed_once(p, req, hn, &used), NC_HTTP_CONTINUE);
  CHECK_INT(used, hn);
  CHECK_INT(nc_http_parser_busy(p), 1);
  CHECK_INT(nc_http_parser_headers_done(p), 1);
  CHECK(nc_http_parser_request(p) == NULL);
  /* Only once per request: the next feed goes on with the body. */
  CHECK_INT(feed_once(p, "", 0, &used), NC_HTTP_MORE);
  CHECK_INT(feed_once(p, req + hn, 5, &used), NC_HTTP_REQUEST);
  CHECK_INT(used, 5);
  const nc_http_request_t *r = nc_http_parser_request(p);
  if (r) {
    CHECK_STR(r->body, "abcde");
    CHECK_STR(nc_http_request_header(r, "expect"), "100-Continue");
  }
  nc_http_parser_free(p);

  /* Body in the same buffer: CONTINUE still comes first, at the end of the
   * headers, and the rest is fed again. */
  p = new_parser(1024, 1024);
  CHECK_INT(feed_once(p, req, hn + 5, &used), NC_HTTP_CONTINUE);
  CHECK_INT(used, hn);
  CHECK_INT(feed_once(p, req + hn, 5, &used), NC_HTTP_REQUEST);
  nc_http_parser_free(p);

  /* One byte at a time: exactly one CONTINUE. */
  tx_t *t = malloc(sizeof(*t));
  CHECK(t != NULL);
  if (!t) return;
  transcript(t, req, hn + 5, 1, 1);
  CHECK(strncmp(t->text, "CONTINUE at ", 12) == 0);
  CHECK(strstr(t->text + 1, "CONTINUE") == NULL);
  CHECK(strstr(t->text, "len=5 body=abcde\nMORE busy=0\n") != NULL);

  /* Chunked bodies get a CONTINUE too. */
  const char ch[] =
      "POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n"
      "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
  transcript(t, S(ch), sizeof(ch) - 1, 1);
  CHECK(strncmp(t->text, "CONTINUE at ", 12) == 0);
  CHECK(strstr(t->text, "len=3 body=abc\n") != NULL);

  /* No body, nothing to wait for: no CONTINUE (RFC 9110 10.1.1). */
  transcript(t,
             S("GET / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n\r\n"),
             100, 1);
  CHECK(strncmp(t->text, "REQ GET", 7) == 0);
  transcript(t,
             S("POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n"
               "Content-Length: 0\r\n\r\n"),
             100, 1);
  CHECK(strncmp(t->text, "REQ POST", 8) == 0);

  /* HTTP/1.0: the expectation MUST be ignored (RFC 9110 10.1.1). */
  transcript(t,
             S("POST / HTTP/1.0\r\nExpect: 100-continue\r\n"
               "Content-Length: 2\r\n\r\nhi"),
             100, 1);
  CHECK(strncmp(t->text, "REQ POST", 8) == 0);

  /* Too large: 413 at once, instead of inviting the body. */
  nc_http_limits_t small = {1024, 4};
  transcript_ex(t, &small, req, hn + 5, 100, 1);
  CHECK_STR(t->text, "ERROR 413\n");

  /* Any other expectation: 417 (RFC 9110 10.1.1 allows it; a client told
   * plainly does not wait for a 100 that will never come). */
  transcript(t,
             S("POST / HTTP/1.1\r\nHost: h\r\nExpect: something-else\r\n"
               "Content-Length: 2\r\n\r\nhi"),
             1000, 1);
  CHECK_STR(t->text, "ERROR 417\n");
  transcript(t,
             S("GET / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue, x\r\n\r\n"),
             1000, 1);
  CHECK_STR(t->text, "ERROR 417\n");
  free(t);
}

/* A GET of exactly `total` bytes: request line, Host, one padding header
 * and the blank line. */
static size_t build_sized_request(char *buf, size_t total) {
  const char start[] = "GET / HTTP/1.1\r\nHost: h\r\nX-Pad: ";
  const char end[] = "\r\n\r\n";
  size_t s = sizeof(start) - 1, e = sizeof(end) - 1;
  memcpy(buf, start, s);
  memset(buf + s, 'p', total - s - e);
  memcpy(buf + total - e, end, e);
  return total;
}

static void test_header_limit(void) {
  enum { MAX = 200 };
  char buf[1024];
  tx_t *t = malloc(sizeof(*t));
  CHECK(t != NULL);
  if (!t) return;
  nc_http_limits_t lim = {MAX, 1024};
  size_t used;

  size_t n = build_sized_request(buf, MAX);
  transcript_ex(t, &lim, buf, n, n, n);
  CHECK(strncmp(t->text, "REQ GET", 7) == 0);
  transcript_ex(t, &lim, buf, n, 1, 1);
  CHECK(strncmp(t->text, "REQ GET", 7) == 0);

  n = build_sized_request(buf, MAX + 1);
  transcript_ex(t, &lim, buf, n, n, n);
  CHECK_STR(t->text, "ERROR 431\n");
  transcript_ex(t, &lim, buf, n, 1, 1);
  CHECK_STR(t->text, "ERROR 431\n");
  nc_http_parser_t *p = nc_http_parser_new(&lim);
  CHECK_INT(feed_once(p, buf, n, &used), NC_HTTP_ERROR);
  CHECK_INT(nc_http_parser_error_status(p), 431);
  CHECK(strlen(nc_http_parser_error_reason(p)) > 0);
  nc_http_parser_free(p);

  /* Headers that never end are cut off at max + 1 bytes, without being
   * buffered, whether they come in one piece or many. */
  static char flood[64 * 1024];
  size_t fn = (size_t)snprintf(flood, sizeof(flood), "GET / HTTP/1.1\r\n");
  while (fn + 16 < sizeof(flood))
    fn += (size_t)snprintf(flood + fn, sizeof(flood) - fn, "X-Flood: abc\r\n");
  p = nc_http_parser_new(&lim);
  CHECK_INT(feed_once(p, flood, fn, &used), NC_HTTP_ERROR);
  CHECK_INT(nc_http_parser_error_status(p), 431);
  CHECK(used <= MAX + 1);
  nc_http_parser_free(p);
  p = nc_http_parser_new(&lim);
  nc_http_result_t res = NC_HTTP_MORE;
  size_t off = 0;
  while (res == NC_HTTP_MORE && off < fn) {
    res = feed_once(p, flood + off, 10, &used);
    off += used;
  }
  CHECK_INT(res, NC_HTTP_ERROR);
  CHECK_INT(nc_http_parser_error_status(p), 431);
  CHECK(off <= MAX + 1);
  nc_http_parser_free(p);

  /* A long request target counts too. */
  char url[512];
  int un = snprintf(url, sizeof(url), "GET /%0300d HTTP/1.1\r\nHost: h\r\n\r\n", 0);
  transcript_ex(t, &lim, url, (size_t)un, (size_t)un, 1);
  CHECK_STR(t->text, "ERROR 431\n");

  /* The budget is per request: two pipelined requests of exactly MAX. */
  n = build_sized_request(buf, MAX);
  build_sized_request(buf + n, MAX);
  transcript_ex(t, &lim, buf, 2 * n, 2 * n, 1);
  CHECK(strncmp(t->text, "REQ GET", 7) == 0);
  CHECK(strstr(t->text + 1, "REQ GET") != NULL);
  CHECK(strstr(t->text, "MORE busy=0\n") != NULL);
  transcript_ex(t, &lim, buf, 2 * n, 3, 3);
  CHECK(strstr(t->text + 1, "REQ GET") != NULL);
  CHECK(strstr(t->text, "ERROR") == NULL);

  /* The body does not count toward the header budget. */
  char post[1024];
  int pn = snprintf(post, sizeof(post),
                    "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 500\r\n\r\n");
  memset(post + pn, 'b', 500);
  transcript_ex(t, &lim, post, (size_t)pn + 500, (size_t)pn + 500, 1);
  CHECK(strstr(t->text, "len=500 ") != NULL);

  /* Nor do trailers, but they have a budget of their own. */
  char tr[2048];
  int tn = snprintf(tr, sizeof(tr),
                    "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
                    "\r\n0\r\n");
  while (tn < 1500)
    tn += snprintf(tr + tn, sizeof(tr) - (size_t)tn, "X-Trailer: 0123456789\r\n");
  transcript_ex(t, &lim, tr, (size_t)tn, (size_t)tn, 1);
  CHECK_STR(t->text, "ERROR 431\n");
  free(t);
}

static void test_body_limit_content_length(void) {
  enum { MAX = 100 };
  nc_http_limits_t lim = {1024, MAX};
  tx_t *t = malloc(sizeof(*t));
  CHECK(t != NULL);
  if (!t) return;
  char buf[512];
  size_t used;

  int hn = snprintf(buf, sizeof(buf),
                    "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n",
                    MAX);
  memset(buf + hn, 'x', MAX);
  transcript_ex(t, &lim, buf, (size_t)hn + MAX, 1000, 1);
  CHECK(strstr(t->text, "len=100 body=xxxx") != NULL);

  /* One byte more: refused at the end of the headers, no body byte read,
   * not even sent. */
  hn = snprintf(buf, sizeof(buf),
                "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n",
                MAX + 1);
  nc_http_parser_t *p = nc_http_parser_new(&lim);
  CHECK_INT(feed_once(p, buf, (size_t)hn, &used), NC_HTTP_ERROR);
  CHECK_INT(nc_http_parser_error_status(p), 413);
  CHECK_INT(used, hn);
  CHECK_INT(nc_http_parser_headers_done(p), 1);
  nc_http_parser_free(p);

  /* A Content-Length far beyond anything. */
  transcript_ex(t, &lim,
                S("POST / HTTP/1.1\r\nHost: h\r\n"
                  "Content-Length: 18446744073709551615\r\n\r\n"),
                1000, 1);
  CHECK_STR(t->text, "ERROR 413\n");
  free(t);
}

static void test_body_limit_chunked(void) {
  enum { MAX = 100 };
  nc_http_limits_t lim = {1024, MAX};
  tx_t *t = malloc(sizeof(*t));
  CHECK(t != NULL);
  if (!t) return;
  char buf[1024];
  size_t n;

  /* Exactly MAX over several chunks: accepted. */
  n = (size_t)snprintf(buf, sizeof(buf),
                       "POST / HTTP/1.1\r\nHost: h\r\n"
                       "Transfer-Encoding: chunked\r\n\r\n");
  for (int i = 0; i < 4; i++) {
    n += (size_t)snprintf(buf + n, sizeof(buf) - n, "19\r\n");
    memset(buf + n, 'a' + i, 25);
    n += 25;
    n += (size_t)snprintf(buf + n, sizeof(buf) - n, "\r\n");
  }
  n += (size_t)snprintf(buf + n, sizeof(buf) - n, "0\r\n\r\n");
  transcript_ex(t, &lim, buf, n, n, 1);
  CHECK(strstr(t->text, "len=100 body=aaaa") != NULL);
  transcript_ex(t, &lim, buf, n, 1, 1);
  CHECK(strstr(t->text, "len=100 body=aaaa") != NULL);

  /* One byte more, in a fifth chunk: 413 once the size is known, before
   * its data (so the connection can be answered and closed early). */
  size_t before_last = n - 5; /* drop "0\r\n\r\n" */
  n = before_last;
  n += (size_t)snprintf(buf + n, sizeof(buf) - n, "1\r\n");
  size_t size_end = n;
  n += (size_t)snprintf(buf + n, sizeof(buf) - n, "z\r\n0\r\n\r\n");
  nc_http_parser_t *p = nc_http_parser_new(&lim);
  size_t used;
  CHECK_INT(feed_once(p, buf, size_end, &used), NC_HTTP_ERROR);
  CHECK_INT(nc_http_parser_error_status(p), 413);
  nc_http_parser_free(p);
  transcript_ex(t, &lim, buf, n, 1, 1);
  CHECK_STR(t->text, "ERROR 413\n");

  /* One chunk larger than the limit. */
  transcript_ex(t, &lim,
                S("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
                  "\r\n65\r\n"),
                1000, 1);
  CHECK_STR(t->text, "ERROR 413\n");
  free(t);
}

/* Each must be refused with `status`, and after that nothing is taken. */
static void expect_error(const char *data, size_t len, int status) {
  nc_http_parser_t *p = new_parser(1024, 1024);
  size_t used = 0, off = 0;
  nc_http_result_t res;
  do {
    res = nc_http_parser_feed(p, data + off, len - off, &used);
    off += used;
    if (res == NC_HTTP_REQUEST) nc_http_parser_next(p);
  } while (res == NC_HTTP_REQUEST || res == NC_HTTP_CONTINUE);
  CHECK_INT(res, NC_HTTP_ERROR);
  CHECK_INT(nc_http_parser_error_status(p), status);
  if (res != NC_HTTP_ERROR || nc_http_parser_error_status(p) != status)
    fprintf(stderr, "  input: %.*s\n", (int)len, data);
  CHECK(strlen(nc_http_parser_error_reason(p)) > 0);
  const char good[] = "GET / HTTP/1.1\r\nHost: h\r\n\r\n";
  CHECK_INT(nc_http_parser_feed(p, S(good), &used), NC_HTTP_ERROR);
  CHECK_INT(used, 0);
  CHECK(nc_http_parser_request(p) == NULL);
  nc_http_parser_next(p); /* harmless after an error */
  CHECK_INT(nc_http_parser_feed(p, S(good), &used), NC_HTTP_ERROR);
  nc_http_parser_free(p);
}

static void test_malformed(void) {
  expect_error(S("G@T / HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
  expect_error(S("get / HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
  expect_error(S("FROB / HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
  expect_error(S("GET/ HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
  expect_error(S("GET /a b HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
  expect_error(S("GET /a\x01 HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
  expect_error(S("GET / HTTX/1.1\r\nHost: h\r\n\r\n"), 400);
  expect_error(S("GET / HTTP/x.1\r\nHost: h\r\n\r\n"), 400);
  expect_error(S("GET / HTTP/11.1\r\nHost: h\r\n\r\n"), 400);
  expect_error(S("GET /\r\n\r\n"), 400); /* no version: HTTP/0.9 style */
  expect_error(S("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"), 400); /* TLS */
  /* Header syntax. RFC 9112 5.1: no whitespace before the colon. */
  expect_error(S("GET / HTTP/1.1\r\nHost : h\r\n\r\n"), 400);
  expect_error(S("GET / HTTP/1.1\r\nHost: h\r\nBad Name: x\r\n\r\n"), 400);
  expect_error(S("GET / HTTP/1.1\r\nHost: h\r\nno-colon\r\n\r\n"), 400);
  expect_error(S("GET / HTTP/1.1\r\nHost: h\r\n: empty\r\n\r\n"), 400);
  expect_error(S("GET / HTTP/1.1\r\nHost: h\r\nX: a\0b\r\n\r\n"), 400);
  expect_error(S("GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n"), 400);
  expect_error(S("GET / HTTP/1.1\r\n Host: h\r\n\r\n"), 400);
  /* RFC 9112 3.2: Host is required in 1.1 and must not repeat. */
  expect_error(S("GET / HTTP/1.1\r\n\r\n"), 400);
  expect_error(S("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), 400);
  expect_error(S("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n"), 400);
  /* Framing (RFC 9112 6.1, 6.3): the smuggling cases. */
  expect_error(S("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
                 "Content-Length: 5\r\n\r\n0\r\n\r\n"),
               400);
  expect_error(S("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n"
                 "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
               400);
  expect_error(S("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n"
                 "Content-Length: 2\r\n\r\nab"),
               400);
  expect_error(S("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1x\r\n\r\n"),
               400);
  expect_error(S("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n"),
               400);
  expect_error(S("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n"),
               400);
  expect_error(S("POST / HTTP/1.1\r\nHost: h\r\n"
                 "Transfer-Encoding: chunked, gzip\r\n\r\n"),
               400);
  expect_error(S("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding : chunked\r\n"
                 "\r\n0\r\n\r\n"),
               400);
  /* Chunk syntax. */
  expect_error(S("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
                 "\r\nzz\r\n"),
               400);
  expect_error(S("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
                 "\r\nfffffffffffffffffff\r\n"),
               400);
  expect_error(S("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
                 "\r\n3\r\nabcX\r\n0\r\n\r\n"),
               400);
  expect_error(S("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
                 "\r\n-1\r\n"),
               400);
  /* A good request then garbage: the first is served, the garbage is not. */
  expect_error(S("GET / HTTP/1.1\r\nHost: h\r\n\r\n\x01\x02garbage"), 400);
}

static void test_versions(void) {
  nc_http_parser_t *p = new_parser(1024, 1024);
  size_t used;
  CHECK_INT(feed_once(p, S("GET / HTTP/1.0\r\n\r\n"), &used), NC_HTTP_REQUEST);
  const nc_http_request_t *r = nc_http_parser_request(p);
  if (r) {
    CHECK_INT(r->http_major, 1);
    CHECK_INT(r->http_minor, 0);
  }
  nc_http_parser_free(p);
  /* RFC 9110 15.6.6: a well-formed version we do not speak is 505. */
  expect_error(S("GET / HTTP/1.2\r\nHost: h\r\n\r\n"), 505);
  expect_error(S("GET / HTTP/2.0\r\nHost: h\r\n\r\n"), 505);
  expect_error(S("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), 505);
  expect_error(S("GET / HTTP/0.9\r\n\r\n"), 505);
  expect_error(S("GET / HTTP/3.0\r\nHost: h\r\n\r\n"), 505);
  expect_error(S("GET / HTTP/9.9\r\nHost: h\r\n\r\n"), 505);
  /* Junk after a version we do speak is a malformed line, not a version. */
  expect_error(S("GET / HTTP/1.1x\r\nHost: h\r\n\r\n"), 400);
  expect_error(S("GET / HTTP/1.0 \r\n\r\n"), 400);
}

static int keep_alive_of(const char *data, size_t len) {
  nc_http_parser_t *p = new_parser(1024, 1024);
  size_t used;
  int ka = -1;
  if (feed_once(p, data, len, &used) == NC_HTTP_REQUEST)
    ka = nc_http_parser_request(p)->keep_alive;
  nc_http_parser_free(p);
  return ka;
}

static void test_keep_alive(void) {
  CHECK_INT(keep_alive_of(S("GET / HTTP/1.1\r\nHost: h\r\n\r\n")), 1);
  CHECK_INT(keep_alive_of(S("GET / HTTP/1.0\r\n\r\n")), 0);
  CHECK_INT(keep_alive_of(S("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")),
            1);
  CHECK_INT(keep_alive_of(S("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")),
            1);
  CHECK_INT(keep_alive_of(S("GET / HTTP/1.0\r\nConnection: close\r\n\r\n")), 0);
  CHECK_INT(keep_alive_of(
                S("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")),
            0);
  CHECK_INT(keep_alive_of(
                S("GET / HTTP/1.1\r\nHost: h\r\nConnection: CLOSE\r\n\r\n")),
            0);
  CHECK_INT(keep_alive_of(S("GET / HTTP/1.1\r\nHost: h\r\n"
                            "Connection: keep-alive\r\n\r\n")),
            1);
  /* RFC 9112 6.1: Transfer-Encoding in 1.0 means faulty framing: close. */
  CHECK_INT(keep_alive_of(S("POST / HTTP/1.0\r\nConnection: keep-alive\r\n"
                            "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")),
            0);

  /* RFC 9112 9.6: nothing after a closing request is processed. */
  const char two[] =
      "GET /a HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
      "GET /b HTTP/1.1\r\nHost: h\r\n\r\n";
  tx_t *t = malloc(sizeof(*t));
  CHECK(t != NULL);
  if (!t) return;
  transcript(t, S(two), sizeof(two) - 1, 1);
  CHECK(strstr(t->text, "target=/a") != NULL);
  CHECK(strstr(t->text, "target=/b") == NULL);
  CHECK(strstr(t->text, "ERROR") == NULL);
  const char ten[] = "GET /a HTTP/1.0\r\n\r\nGET /b HTTP/1.0\r\n\r\n";
  transcript(t, S(ten), 1, 1);
  CHECK(strstr(t->text, "target=/a") != NULL);
  CHECK(strstr(t->text, "target=/b") == NULL);
  const char ten_ka[] =
      "GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /b HTTP/1.0\r\n\r\n";
  transcript(t, S(ten_ka), 5, 5);
  CHECK(strstr(t->text, "target=/a") != NULL);
  CHECK(strstr(t->text, "target=/b") != NULL);
  /* Also when the parser, not llhttp, decided the connection must close:
   * a 1.0 request with Transfer-Encoding, and a CONNECT. */
  const char te10[] =
      "POST /a HTTP/1.0\r\nConnection: keep-alive\r\n"
      "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /b HTTP/1.0\r\n\r\n";
  transcript(t, S(te10), sizeof(te10) - 1, 1);
  CHECK(strstr(t->text, "target=/a") != NULL);
  CHECK(strstr(t->text, "target=/b") == NULL);
  CHECK(strstr(t->text, "MORE busy=0\n") != NULL);
  const char conn[] =
      "CONNECT h:1 HTTP/1.1\r\nHost: h:1\r\n\r\nGET /b HTTP/1.1\r\n"
      "Host: h\r\n\r\n";
  transcript(t, S(conn), sizeof(conn) - 1, 1);
  CHECK(strstr(t->text, "target=h:1") != NULL);
  CHECK(strstr(t->text, "target=/b") == NULL);
  free(t);
}

static void test_upgrade(void) {
  const char req[] =
      "GET /notificationchannel/ws/42 HTTP/1.1\r\n"
      "Host: h\r\n"
      "Connection: keep-alive, Upgrade\r\n"
      "Upgrade: websocket\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
      "Sec-WebSocket-Version: 13\r\n"
      "\r\n";
  const char frame[] = "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58";
  char buf[512];
  size_t rn = sizeof(req) - 1, fnl = sizeof(frame) - 1, used;
  memcpy(buf, req, rn);
  memcpy(buf + rn, frame, fnl);

  nc_http_parser_t *p = new_parser(1024, 1024);
  CHECK_INT(feed_once(p, buf, rn + fnl, &used), NC_HTTP_REQUEST);
  CHECK_INT(used, rn); /* the frame is left for ws.c */
  const nc_http_request_t *r = nc_http_parser_request(p);
  if (r) {
    CHECK_INT(r->upgrade, 1);
    CHECK_INT(r->keep_alive, 1);
    CHECK_STR(r->path, "/notificationchannel/ws/42");
    CHECK_STR(nc_http_request_header(r, "upgrade"), "websocket");
    CHECK_STR(nc_http_request_header(r, "sec-websocket-key"),
              "dGhlIHNhbXBsZSBub25jZQ==");
  }
  CHECK_INT(nc_http_parser_busy(p), 0);
  nc_http_parser_free(p);

  /* Byte by byte, the request still ends exactly before the frame. */
  p = new_parser(1024, 1024);
  nc_http_result_t res = NC_HTTP_MORE;
  size_t off = 0;
  while (res == NC_HTTP_MORE && off < rn + fnl) {
    res = feed_once(p, buf + off, 1, &used);
    off += used;
  }
  CHECK_INT(res, NC_HTTP_REQUEST);
  CHECK_INT(off, rn);
  if (res == NC_HTTP_REQUEST) CHECK_INT(nc_http_parser_request(p)->upgrade, 1);
  nc_http_parser_free(p);

  /* A declined upgrade (say, 404): the connection goes on as HTTP/1.1. */
  const char next[] = "GET /after HTTP/1.1\r\nHost: h\r\n\r\n";
  memcpy(buf + rn, next, sizeof(next) - 1);
  p = new_parser(1024, 1024);
  CHECK_INT(feed_once(p, buf, rn + sizeof(next) - 1, &used), NC_HTTP_REQUEST);
  CHECK_INT(used, rn);
  nc_http_parser_next(p);
  CHECK_INT(feed_once(p, buf + rn, sizeof(next) - 1, &used), NC_HTTP_REQUEST);
  CHECK_INT(used, sizeof(next) - 1);
  r = nc_http_parser_request(p);
  if (r) {
    CHECK_STR(r->path, "/after");
    CHECK_INT(r->upgrade, 0);
  }
  nc_http_parser_free(p);

  /* Upgrade without Connection: Upgrade is only informational. */
  p = new_parser(1024, 1024);
  CHECK_INT(feed_once(p, S("GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
                           "\r\n"),
                      &used),
            NC_HTTP_REQUEST);
  if (nc_http_parser_request(p))
    CHECK_INT(nc_http_parser_request(p)->upgrade, 0);
  nc_http_parser_free(p);

  /* CONNECT is not an upgrade to anything served here, and what follows it
   * is a tunnel: the request is handed over (for a 405) and the connection
   * must close. */
  p = new_parser(1024, 1024);
  CHECK_INT(feed_once(p, S("CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\nTLS"),
                      &used),
            NC_HTTP_REQUEST);
  CHECK_INT(used, sizeof("CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n") - 1);
  r = nc_http_parser_request(p);
  if (r) {
    CHECK_STR(r->method, "CONNECT");
    CHECK_INT(r->upgrade, 0);
    CHECK_INT(r->keep_alive, 0);
  }
  nc_http_parser_free(p);
}

static void test_busy_and_headers_done(void) {
  const char req[] =
      "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc";
  size_t hn = sizeof(req) - 1 - 3, used;
  nc_http_parser_t *p = new_parser(1024, 1024);
  CHECK_INT(nc_http_parser_busy(p), 0);
  CHECK_INT(nc_http_parser_headers_done(p), 0);
  /* A stray CRLF between requests (RFC 9112 2.2) starts nothing. */
  CHECK_INT(feed_once(p, "\r\n", 2, &used), NC_HTTP_MORE);
  CHECK_INT(used, 2);
  CHECK_INT(nc_http_parser_busy(p), 0);
  CHECK_INT(feed_once(p, req, 1, &used), NC_HTTP_MORE);
  CHECK_INT(nc_http_parser_busy(p), 1);
  CHECK_INT(nc_http_parser_headers_done(p), 0);
  CHECK_INT(feed_once(p, req + 1, hn - 2, &used), NC_HTTP_MORE);
  CHECK_INT(nc_http_parser_headers_done(p), 0);
  CHECK_INT(feed_once(p, req + hn - 1, 1, &used), NC_HTTP_MORE);
  CHECK_INT(nc_http_parser_busy(p), 1);
  CHECK_INT(nc_http_parser_headers_done(p), 1);
  CHECK_INT(feed_once(p, req + hn, 3, &used), NC_HTTP_REQUEST);
  CHECK_INT(nc_http_parser_busy(p), 0);
  CHECK_INT(nc_http_parser_headers_done(p), 1);
  nc_http_parser_next(p);
  CHECK_INT(nc_http_parser_busy(p), 0);
  CHECK_INT(nc_http_parser_headers_done(p), 0);
  nc_http_parser_free(p);
}

/* What a slow body's log line reports: bytes so far of the announced
 * length, or -1 for chunked. */
static void test_body_progress(void) {
  const char req[] = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabcd";
  size_t used, received;
  long long expected;
  nc_http_parser_t *p = new_parser(1024, 1024);
  CHECK_INT(feed_once(p, req, sizeof(req) - 1, &used), NC_HTTP_MORE);
  nc_http_parser_body_progress(p, &received, &expected);
  CHECK_INT(received, 4);
  CHECK_INT(expected, 10);
  CHECK_INT(feed_once(p, "efghij", 6, &used), NC_HTTP_REQUEST);
  nc_http_parser_next(p);
  const char chunked[] = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                         "3\r\nabc\r\n";
  CHECK_INT(feed_once(p, chunked, sizeof(chunked) - 1, &used), NC_HTTP_MORE);
  nc_http_parser_body_progress(p, &received, &expected);
  CHECK_INT(received, 3);
  CHECK_INT(expected, -1);
  nc_http_parser_free(p);
}

/* Freeing at every stage must release everything (the leak checker is the
 * judge). */
static void test_free_anytime(void) {
  const char req[] =
      "POST /x?q HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n"
      "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nT: x\r\n\r\n";
  for (size_t cut = 0; cut <= sizeof(req) - 1; cut++) {
    nc_http_parser_t *p = new_parser(1024, 1024);
    size_t used, off = 0;
    nc_http_result_t res;
    do {
      res = nc_http_parser_feed(p, req + off, cut - off, &used);
      off += used;
    } while (res == NC_HTTP_CONTINUE);
    CHECK(res == NC_HTTP_MORE || res == NC_HTTP_REQUEST);
    nc_http_parser_free(p);
  }
  nc_http_parser_free(NULL);
}

/* ---- responses ---- */

static int is_imf_fixdate(const char *s) {
  static const char *days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static const char *months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  /* "Sun, 06 Nov 1994 08:49:37 GMT" */
  int ok_day = 0, ok_month = 0;
  for (int i = 0; i < 7; i++) ok_day |= strncmp(s, days[i], 3) == 0;
  for (int i = 0; i < 12; i++) ok_month |= strncmp(s + 8, months[i], 3) == 0;
  static const int digit_at[] = {5, 6, 12, 13, 14, 15, 17, 18, 20, 21, 23, 24};
  for (size_t i = 0; i < sizeof(digit_at) / sizeof(digit_at[0]); i++)
    if (s[digit_at[i]] < '0' || s[digit_at[i]] > '9') return 0;
  return ok_day && ok_month && s[3] == ',' && s[4] == ' ' && s[7] == ' ' &&
         s[11] == ' ' && s[16] == ' ' && s[19] == ':' && s[22] == ':' &&
         strncmp(s + 25, " GMT\r\n", 6) == 0;
}

static void test_response_format(void) {
  nc_http_header_t hs[] = {{"Content-Type", "text/plain"},
                           {"X-Custom", "yes"}};
  size_t n = 0;
  char *out = nc_http_response_format(200, hs, 2, "hello", 5, 0, 1, &n);
  CHECK(out != NULL);
  if (out) {
    CHECK_INT(n, strlen(out));
    CHECK(strncmp(out, "HTTP/1.1 200 OK\r\n", 17) == 0);
    CHECK(strstr(out, "\r\nContent-Type: text/plain\r\n") != NULL);
    CHECK(strstr(out, "\r\nX-Custom: yes\r\n") != NULL);
    const char *date = strstr(out, "\r\nDate: ");
    CHECK(date != NULL);
    if (date) {
      CHECK(is_imf_fixdate(date + 8));
      /* It is now, in GMT: compare with strftime in the C locale. */
      time_t now = time(NULL);
      int match = 0;
      for (time_t d = now - 2; d <= now; d++) {
        struct tm tm;
        char want[64];
        gmtime_r(&d, &tm);
        strftime(want, sizeof(want), "%a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
        match |= strncmp(date + 8, want, strlen(want)) == 0;
      }
      CHECK(match);
    }
    CHECK(strstr(out, "\r\nContent-Length: 5\r\n") != NULL);
    CHECK(strstr(out, "Connection") == NULL);
    CHECK(n > 9 && strcmp(out + n - 9, "\r\n\r\nhello") == 0);
    CHECK(strstr(out, "\r\n\r\n") == out + n - 9); /* one end of head */
  }
  free(out);

  /* Not found, empty body, closing: Content-Length: 0 is still sent. */
  out = nc_http_response_format(404, NULL, 0, NULL, 0, 0, 0, &n);
  CHECK(out != NULL);
  if (out) {
    CHECK(strncmp(out, "HTTP/1.1 404 Not Found\r\n", 24) == 0);
    CHECK(strstr(out, "\r\nContent-Length: 0\r\n") != NULL);
    CHECK(strstr(out, "\r\nConnection: close\r\n") != NULL);
    CHECK(n > 4 && strcmp(out + n - 4, "\r\n\r\n") == 0);
    CHECK_INT(n, strlen(out));
  }
  free(out);

  /* HEAD: the length of what GET would send, but no body (RFC 9110 9.3.2). */
  out = nc_http_response_format(200, hs, 1, "hello", 5, 1, 1, &n);
  CHECK(out != NULL);
  if (out) {
    CHECK(strstr(out, "\r\nContent-Length: 5\r\n") != NULL);
    CHECK(n > 4 && strcmp(out + n - 4, "\r\n\r\n") == 0);
    CHECK(strstr(out, "hello") == NULL);
  }
  free(out);

  /* 204 and 304: no Content-Length, no body, even if one is passed. */
  int bodiless[] = {204, 304};
  for (int i = 0; i < 2; i++) {
    out = nc_http_response_format(bodiless[i], NULL, 0, "x", 1, 0, 1, &n);
    CHECK(out != NULL);
    if (out) {
      CHECK(strstr(out, "Content-Length") == NULL);
      CHECK(n > 4 && strcmp(out + n - 4, "\r\n\r\n") == 0);
      CHECK(strstr(out, "Date: ") != NULL);
    }
    free(out);
  }
  out = nc_http_response_format(204, NULL, 0, NULL, 0, 0, 1, &n);
  if (out) CHECK(strncmp(out, "HTTP/1.1 204 No Content\r\n", 25) == 0);
  free(out);

  /* 101 for a WebSocket: headers as given, no length, never "close". */
  nc_http_header_t ws[] = {{"Upgrade", "websocket"},
                           {"Connection", "Upgrade"},
                           {"Sec-WebSocket-Accept",
                            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="}};
  out = nc_http_response_format(101, ws, 3, NULL, 0, 0, 0, &n);
  CHECK(out != NULL);
  if (out) {
    CHECK(strncmp(out, "HTTP/1.1 101 Switching Protocols\r\n", 34) == 0);
    CHECK(strstr(out, "\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
                      "\r\n") != NULL);
    CHECK(strstr(out, "Content-Length") == NULL);
    CHECK(strstr(out, "Connection: close") == NULL);
  }
  free(out);

  /* A binary body is copied whole, NULs included. */
  out = nc_http_response_format(200, NULL, 0, "a\0b", 3, 0, 1, &n);
  CHECK(out != NULL);
  if (out) {
    CHECK(strstr(out, "\r\nContent-Length: 3\r\n") != NULL);
    CHECK(n > 3 && memcmp(out + n - 3, "a\0b", 3) == 0);
  }
  free(out);

  /* A header value with a line break cannot inject a header. */
  nc_http_header_t evil[] = {{"Location", "/x\r\nSet-Cookie: a=b"}};
  out = nc_http_response_format(302, evil, 1, NULL, 0, 0, 1, &n);
  CHECK(out != NULL);
  if (out) {
    CHECK(strstr(out, "\r\nSet-Cookie") == NULL);
    CHECK(strstr(out, "\r\nLocation: /x  Set-Cookie: a=b\r\n") != NULL);
    CHECK(strncmp(out, "HTTP/1.1 302 Found\r\n", 20) == 0);
  }
  free(out);

  /* An unlisted status still makes a valid line. */
  out = nc_http_response_format(299, NULL, 0, NULL, 0, 0, 1, &n);
  if (out) CHECK(strncmp(out, "HTTP/1.1 299 Unknown\r\n", 22) == 0);
  free(out);
}

static void test_response_free(void) {
  nc_http_response_t res = {0};
  res.status = 200;
  res.headers = calloc(2, sizeof(*res.headers));
  CHECK(res.headers != NULL);
  if (!res.headers) return;
  res.header_count = 2;
  res.headers[0].name = strdup("Content-Type");
  res.headers[0].value = strdup("text/plain");
  res.headers[1].name = strdup("X-A");
  res.headers[1].value = strdup("b");
  res.body = strdup("hi");
  res.body_len = 2;
  nc_http_response_free(&res); /* the leak checker judges the rest */
  CHECK(res.headers == NULL);
  CHECK(res.body == NULL);
  CHECK_INT(res.header_count, 0);
  CHECK_INT(res.body_len, 0);
  nc_http_response_free(&res); /* twice is harmless once zeroed */
}

static void test_status_text(void) {
  static const int codes[] = {100, 101, 200, 201, 202, 204, 301, 302,
                              304, 400, 401, 403, 404, 405, 406, 408,
                              409, 411, 413, 414, 415, 417, 422, 426,
                              429, 431, 500, 501, 503, 505};
  for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
    const char *t = nc_http_status_text(codes[i]);
    CHECK(t != NULL && strcmp(t, "Unknown") != 0 && strlen(t) > 0);
    if (!t || strcmp(t, "Unknown") == 0) fprintf(stderr, "  %d\n", codes[i]);
  }
  CHECK_STR(nc_http_status_text(200), "OK");
  CHECK_STR(nc_http_status_text(404), "Not Found");
  CHECK_STR(nc_http_status_text(413), "Content Too Large");
  CHECK_STR(nc_http_status_text(431), "Request Header Fields Too Large");
  CHECK_STR(nc_http_status_text(505), "HTTP Version Not Supported");
  CHECK_STR(nc_http_status_text(0), "Unknown");
  CHECK_STR(nc_http_status_text(299), "Unknown");
  CHECK_STR(nc_http_status_text(-1), "Unknown");
}

/* ---- garbage ---- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint32_t rng(void) {
  /* xorshift64*: fixed seed, so a failure reproduces. */
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return (uint32_t)((rng_state * 0x2545f4914f6cdd1dull) >> 32);
}

/* Pieces from which random but plausible requests are assembled, to reach
 * deeper into the parser than pure noise does. */
static const char *const pieces[] = {
    "GET ", "POST ", "PUT ", "HEAD ", "CONNECT ", "/", "/a?b=c", "*", " ",
    "HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "\r\n", "\n", "\r", ":", ": ",
    "Host: h\r\n", "Content-Length: ", "Transfer-Encoding: chunked\r\n",
    "Expect: 100-continue\r\n", "Connection: close\r\n",
    "Connection: Upgrade\r\nUpgrade: websocket\r\n", "0", "1", "5", "ff",
    ";ext=1", "abc", "\t", "\0", "\x80", "\r\n\r\n", "0\r\n\r\n",
};

static size_t random_buffer(char *buf, size_t cap) {
  size_t n = 0, want = rng() % cap;
  switch (rng() % 3) {
  case 0: /* noise */
    while (n < want) buf[n++] = (char)(rng() & 0xff);
    break;
  case 1: /* a good start, then noise */
    n = (size_t)snprintf(buf, cap, "POST /x HTTP/1.1\r\nHost: h\r\n");
    while (n < want) buf[n++] = (char)(rng() & 0xff);
    break;
  default: /* plausible pieces */
    while (n < want) {
      const char *s = pieces[rng() % (sizeof(pieces) / sizeof(pieces[0]))];
      size_t l = s[0] ? strlen(s) : 1;
      if (n + l > cap) break;
      memcpy(buf + n, s, l);
      n += l;
    }
  }
  return n;
}

static void test_garbage(void) {
  static char buf[2048];
  int bad = 0, errors = 0, requests = 0;
  for (int i = 0; i < 2000; i++) {
    size_t len = random_buffer(buf, sizeof(buf));
    size_t max_header = 256 + rng() % 512, max_body = rng() % 256;
    nc_http_parser_t *p = new_parser(max_header, max_body);
    if (!p) return;
    size_t off = 0, step = 1 + rng() % (i % 2 ? 8 : 4096);
    nc_http_result_t res = NC_HTTP_MORE;
    int guard = 0;
    while (guard++ < 100000) {
      size_t n = len - off < step ? len - off : step, used = (size_t)-1;
      res = nc_http_parser_feed(p, buf + off, n, &used);
      if (used > n) {
        bad++;
        break;
      }
      off += used;
      if (res == NC_HTTP_REQUEST) {
        const nc_http_request_t *r = nc_http_parser_request(p);
        if (!r || !r->method || !r->path || !r->query || !r->body) bad++;
        requests++;
        nc_http_parser_next(p);
        continue;
      }
      if (res == NC_HTTP_CONTINUE) continue;
      if (res == NC_HTTP_ERROR) break;
      if (res != NC_HTTP_MORE || used != n) {
        bad++;
        break;
      }
      if (off == len) break;
    }
    CHECK(res == NC_HTTP_MORE || res == NC_HTTP_ERROR);
    if (res == NC_HTTP_ERROR) {
      int st = nc_http_parser_error_status(p);
      errors++;
      if (st != 400 && st != 413 && st != 417 && st != 431 && st != 505) {
        fprintf(stderr, "  buffer %d: status %d (%s)\n", i, st,
                nc_http_parser_error_reason(p));
        bad++;
      }
    }
    nc_http_parser_free(p);
  }
  CHECK_INT(bad, 0);
  CHECK(errors > 1000); /* the corpus really is mostly garbage */
  CHECK(requests > 0);  /* and sometimes a request gets through */
}

int main(void) {
  RUN(test_simple_get);
  RUN(test_methods);
  RUN(test_url_and_headers);
  RUN(test_header_lookup_case);
  RUN(test_content_length_body);
  RUN(test_chunked_body);
  RUN(test_body_split_mid_chunk);
  RUN(test_split_anywhere);
  RUN(test_one_byte_at_a_time);
  RUN(test_pipelined);
  RUN(test_expect_continue);
  RUN(test_header_limit);
  RUN(test_body_limit_content_length);
  RUN(test_body_limit_chunked);
  RUN(test_malformed);
  RUN(test_versions);
  RUN(test_keep_alive);
  RUN(test_upgrade);
  RUN(test_busy_and_headers_done);
  RUN(test_body_progress);
  RUN(test_free_anytime);
  RUN(test_response_format);
  RUN(test_response_free);
  RUN(test_status_text);
  RUN(test_garbage);
  return check_report();
}
