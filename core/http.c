/* HTTP/1.1 request parsing and response formatting on top of llhttp.
 *
 * This file owns the request object (URL, headers, decoded body), the limits
 * on header and body size, the Expect: 100-continue handshake, the choice of
 * error status for malformed input, and the bytes of a response head. It
 * does no I/O and keeps no clock other than reading the time for Date:
 * server.c owns sockets, timeouts and the decision to close; script.c decides
 * what the answer to a request is; ws.c takes over an upgraded connection.
 *
 * llhttp is paused twice per request: when its headers are complete, so that
 * the limits and Expect can be checked at an exact byte offset, and when the
 * message is complete, so that pipelined requests come out one at a time.
 * No lenient flag is set: every ambiguity llhttp can reject, it rejects. */
#define _POSIX_C_SOURCE 200809L

#include "http.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "llhttp.h"

/* Why llhttp is currently paused, so feed() knows what to report. */
enum pause_reason { PAUSE_NONE, PAUSE_HEADERS, PAUSE_MESSAGE };

typedef struct {
  char *data;
  size_t len, cap;
} buf_t;

struct nc_http_parser {
  llhttp_t llh;
  nc_http_limits_t limits;
  nc_http_request_t req;
  size_t headers_cap;
  buf_t url, field, value;
  char version[4]; /* "1.1"; longer strings are malformed anyway */
  size_t version_len;
  size_t header_bytes;  /* request line + header section consumed so far */
  size_t trailer_bytes; /* trailer fields of a chunked body, discarded */
  size_t body_cap;
  int pause;           /* enum pause_reason set by the callbacks */
  int in_message;      /* a request has begun and is not yet complete */
  int headers_done;
  long long body_expected; /* Content-Length once headers are done; -1: chunked */
  int complete;        /* req is ready; waiting for nc_http_parser_next() */
  int resume_pending;  /* paused at headers for 100-continue */
  int upgrade_pause;   /* llhttp returned HPE_PAUSED_UPGRADE */
  int host_count;
  int closed;          /* the last request ended the connection */
  int failed;
  int error_status;
  const char *error_reason;
};

/* Body and query point here when empty, so "" costs no allocation and can
 * never fail; release() knows not to free it. */
static char empty_str[1];

/* ---- small helpers ---- */

static int buf_append(buf_t *b, const char *s, size_t n) {
  if (n > SIZE_MAX - b->len - 1) return -1;
  size_t need = b->len + n + 1; /* room for the NUL */
  if (need > b->cap) {
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *d = realloc(b->data, cap);
    if (!d) return -1;
    b->data = d;
    b->cap = cap;
  }
  memcpy(b->data + b->len, s, n);
  b->len += n;
  b->data[b->len] = '\0';
  return 0;
}

static void buf_free(buf_t *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

static char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static int is_ows(char c) { return c == ' ' || c == '\t'; }

/* RFC 9110 5.6.2 tchar. */
static int is_tchar(unsigned char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
      (c >= '0' && c <= '9'))
    return 1;
  return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Records the first failure only: a later, derived failure (llhttp's own
 * "user callback error" after ours) must not hide the cause. */
static int fail(nc_http_parser_t *p, int status, const char *reason) {
  if (!p->failed) {
    p->failed = 1;
    p->error_status = status;
    p->error_reason = reason;
  }
  return -1;
}

static int fail_oom(nc_http_parser_t *p) {
  return fail(p, 500, "out of memory");
}

static void request_release(nc_http_parser_t *p) {
  nc_http_request_t *r = &p->req;
  free(r->target);
  free(r->path); /* query lives in the same allocation */
  for (size_t i = 0; i < r->header_count; i++) free(r->headers[i].name);
  free(r->headers);
  if (r->body != empty_str) free(r->body);
  memset(r, 0, sizeof(*r));
  p->headers_cap = 0;
  p->body_cap = 0;
  buf_free(&p->url);
  buf_free(&p->field);
  buf_free(&p->value);
  p->version_len = 0;
  p->header_bytes = 0;
  p->trailer_bytes = 0;
  p->in_message = 0;
  p->headers_done = 0;
  p->body_expected = 0;
  p->complete = 0;
  p->resume_pending = 0;
  p->upgrade_pause = 0;
  p->host_count = 0;
}

/* ---- llhttp callbacks ---- */

static int on_message_begin_cb(llhttp_t *h) {
  nc_http_parser_t *p = h->data;
  p->in_message = 1;
  return 0;
}

static int on_url_cb(llhttp_t *h, const char *at, size_t len) {
  nc_http_parser_t *p = h->data;
  return buf_append(&p->url, at, len) ? fail_oom(p) : 0;
}

/* Splits the target into path and query. RFC 9112 3.2.2: a server MUST
 * accept the absolute-form, so "http://host/p?q" routes like "/p?q". A
 * fragment is not part of a request target (RFC 9112 3.2); should one slip
 * through it is dropped rather than handed to the router. */
static int on_url_complete_cb(llhttp_t *h) {
  nc_http_parser_t *p = h->data;
  nc_http_request_t *r = &p->req;
  if (buf_append(&p->url, "", 0)) return fail_oom(p);
  r->target = p->url.data;
  size_t tlen = p->url.len;
  p->url.data = NULL;
  p->url.len = p->url.cap = 0;

  const char *t = r->target, *end = t + tlen;
  const char *hash = memchr(t, '#', tlen);
  if (hash) end = hash;
  if (t[0] != '/' && t[0] != '*') {
    const char *scheme = strstr(t, "://");
    if (scheme && scheme < end) {
      const char *slash = memchr(scheme + 3, '/', (size_t)(end - scheme - 3));
      const char *qm = memchr(scheme + 3, '?', (size_t)(end - scheme - 3));
      if (slash && qm && qm < slash) slash = NULL;
      t = slash ? slash : (qm ? qm : end);
    }
  }
  const char *q = memchr(t, '?', (size_t)(end - t));
  size_t path_len = (size_t)((q ? q : end) - t);
  size_t query_len = q ? (size_t)(end - q - 1) : 0;
  /* An absolute-form target without a path means "/" (RFC 9112 3.2.2). */
  int empty_path = path_len == 0;
  char *path = malloc(path_len + (empty_path ? 1 : 0) + query_len + 2);
  if (!path) return fail_oom(p);
  if (empty_path) {
    path[0] = '/';
    path_len = 1;
  } else {
    memcpy(path, t, path_len);
  }
  path[path_len] = '\0';
  char *query = path + path_len + 1;
  if (query_len) memcpy(query, q + 1, query_len);
  query[query_len] = '\0';
  r->path = path;
  r->query = query;
  return 0;
}

static int on_version_cb(llhttp_t *h, const char *at, size_t len) {
  nc_http_parser_t *p = h->data;
  for (size_t i = 0; i < len; i++) {
    if (p->version_len < sizeof(p->version)) p->version[p->version_len] = at[i];
    p->version_len++;
  }
  return 0;
}

/* llhttp accepts 0.9, 1.0, 1.1 and 2.0 on the request line; only the two
 * HTTP/1 versions can be served here. RFC 9110 15.6.6: 505 names the
 * refusal to support the major version of the request. */
static int on_version_complete_cb(llhttp_t *h) {
  nc_http_parser_t *p = h->data;
  if (h->http_major != 1 || h->http_minor > 1)
    return fail(p, 505, "unsupported HTTP version");
  return 0;
}

/* Trailer fields count toward no header section, but a client must not be
 * able to stream them forever: they get the same budget as the headers. */
static int trailer_bytes_add(nc_http_parser_t *p, size_t len) {
  p->trailer_bytes += len;
  if (p->trailer_bytes > p->limits.max_header_bytes)
    return fail(p, 431, "trailer section too large");
  return 0;
}

static int on_header_field_cb(llhttp_t *h, const char *at, size_t len) {
  nc_http_parser_t *p = h->data;
  if (p->headers_done) return trailer_bytes_add(p, len);
  return buf_append(&p->field, at, len) ? fail_oom(p) : 0;
}

static int on_header_value_cb(llhttp_t *h, const char *at, size_t len) {
  nc_http_parser_t *p = h->data;
  if (p->headers_done) return trailer_bytes_add(p, len);
  return buf_append(&p->value, at, len) ? fail_oom(p) : 0;
}

/* Stores one header line: name lower-cased, value stripped of OWS (RFC 9110
 * 5.5: leading and trailing whitespace is not part of the field value). Name
 * and value share one allocation. Trailers (RFC 9110 6.5) are discarded:
 * nothing here needs them, and merging them with headers is unsafe. */
static int on_header_value_complete_cb(llhttp_t *h) {
  nc_http_parser_t *p = h->data;
  if (p->headers_done) return 0;
  nc_http_request_t *r = &p->req;
  const char *v = p->value.data ? p->value.data : "";
  size_t vlen = p->value.len;
  while (vlen && is_ows(*v)) v++, vlen--;
  while (vlen && is_ows(v[vlen - 1])) vlen--;
  size_t nlen = p->field.len;
  /* llhttp, built without strict mode, lets SP into a field name. RFC 9112
   * 5.1: whitespace before the colon MUST be answered 400, since proxies
   * disagree on what "Transfer-Encoding : chunked" means. */
  if (nlen == 0) return fail(p, 400, "empty header name");
  for (size_t i = 0; i < nlen; i++)
    if (!is_tchar((unsigned char)p->field.data[i]))
      return fail(p, 400, "invalid header name");

  if (r->header_count == p->headers_cap) {
    size_t cap = p->headers_cap ? p->headers_cap * 2 : 16;
    nc_http_header_t *hs = realloc(r->headers, cap * sizeof(*hs));
    if (!hs) return fail_oom(p);
    r->headers = hs;
    p->headers_cap = cap;
  }
  char *name = malloc(nlen + vlen + 2);
  if (!name) return fail_oom(p);
  for (size_t i = 0; i < nlen; i++) name[i] = lower(p->field.data[i]);
  name[nlen] = '\0';
  char *value = name + nlen + 1;
  /* RFC 9110 5.5: CR, LF or NUL in a value must be rejected or replaced by
   * SP; llhttp rejects NUL and bare CR, an obs-fold is replaced (RFC 9112
   * 5.2) so no line break ever reaches a script. */
  for (size_t i = 0; i < vlen; i++)
    value[i] = (v[i] == '\r' || v[i] == '\n' || v[i] == '\0') ? ' ' : v[i];
  value[vlen] = '\0';
  r->headers[r->header_count].name = name;
  r->headers[r->header_count].value = value;
  r->header_count++;
  if (strcmp(name, "host") == 0) p->host_count++;
  p->field.len = 0;
  p->value.len = 0;
  return 0;
}

/* Always pauses: the checks that need the exact offset of the end of the
 * header section (431, 413, Expect) run in feed(). */
static int on_headers_complete_cb(llhttp_t *h) {
  nc_http_parser_t *p = h->data;
  if (p->headers_done) return 0; /* never twice, but Expect must not repeat */
  p->headers_done = 1;
  p->pause = PAUSE_HEADERS;
  return HPE_PAUSED;
}

static int body_reserve(nc_http_parser_t *p, size_t need) {
  if (need <= p->body_cap) return 0;
  size_t cap = p->body_cap ? p->body_cap : 256;
  while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
  /* Never hold more than the limit allows: the limit is the memory bound. */
  size_t most = p->limits.max_body_bytes + 1;
  if (cap > most && need <= most) cap = most;
  char *b = realloc(p->req.body, cap);
  if (!b) return fail_oom(p);
  p->req.body = b;
  p->body_cap = cap;
  return 0;
}

/* Checked before any of the chunk's data is read: a chunk that would carry
 * the body past the limit is refused as soon as its size is known. */
static int on_chunk_header_cb(llhttp_t *h) {
  nc_http_parser_t *p = h->data;
  if (h->content_length > p->limits.max_body_bytes - p->req.body_len)
    return fail(p, 413, "chunked body too large");
  return 0;
}

static int on_body_cb(llhttp_t *h, const char *at, size_t len) {
  nc_http_parser_t *p = h->data;
  nc_http_request_t *r = &p->req;
  if (len > p->limits.max_body_bytes - r->body_len)
    return fail(p, 413, "body too large");
  if (body_reserve(p, r->body_len + len + 1)) return -1;
  memcpy(r->body + r->body_len, at, len);
  r->body_len += len;
  r->body[r->body_len] = '\0';
  return 0;
}

/* For an upgrade, llhttp must not be paused here: it then pauses by itself
 * with HPE_PAUSED_UPGRADE right after the request, leaving the next bytes
 * (the new protocol's) unconsumed. */
static int on_message_complete_cb(llhttp_t *h) {
  nc_http_parser_t *p = h->data;
  nc_http_request_t *r = &p->req;
  if (!r->body) r->body = empty_str;
  r->keep_alive = llhttp_should_keep_alive(h);
  /* RFC 9112 6.1: Transfer-Encoding in an HTTP/1.0 message means its framing
   * is faulty; the connection is closed after answering. */
  if (h->http_minor == 0 && (h->flags & F_TRANSFER_ENCODING)) r->keep_alive = 0;
  /* RFC 9110 9.3.6: the bytes after a CONNECT belong to a tunnel this
   * server does not open, so they cannot be parsed as another request. */
  if (h->method == HTTP_CONNECT) r->keep_alive = 0;
  p->in_message = 0;
  if (h->upgrade) return 0;
  p->pause = PAUSE_MESSAGE;
  return HPE_PAUSED;
}

static const llhttp_settings_t settings = {
    .on_message_begin = on_message_begin_cb,
    .on_url = on_url_cb,
    .on_url_complete = on_url_complete_cb,
    .on_version = on_version_cb,
    .on_version_complete = on_version_complete_cb,
    .on_header_field = on_header_field_cb,
    .on_header_value = on_header_value_cb,
    .on_header_value_complete = on_header_value_complete_cb,
    .on_headers_complete = on_headers_complete_cb,
    .on_chunk_header = on_chunk_header_cb,
    .on_body = on_body_cb,
    .on_message_complete = on_message_complete_cb,
};

/* ---- feeding ---- */

/* The decisions taken once the header section is complete, in the order a
 * client most needs to hear them. Returns NC_HTTP_MORE to go on reading. */
static nc_http_result_t headers_complete(nc_http_parser_t *p) {
  llhttp_t *h = &p->llh;
  nc_http_request_t *r = &p->req;
  if (p->header_bytes > p->limits.max_header_bytes) {
    fail(p, 431, "header section too large");
    return NC_HTTP_ERROR;
  }
  /* llhttp takes "GET /" alone as an HTTP/0.9 request; RFC 9112 3 requires
   * the version on the request line. */
  if (p->version_len == 0 || !r->path) {
    fail(p, 400, "incomplete request line");
    return NC_HTTP_ERROR;
  }
  r->method = llhttp_method_name((llhttp_method_t)h->method);
  r->http_major = h->http_major;
  r->http_minor = h->http_minor;
  r->upgrade = h->upgrade && h->method != HTTP_CONNECT;
  /* RFC 9112 3.2: a 1.1 request without Host, or any request with two. */
  if (p->host_count > 1 || (h->http_minor == 1 && p->host_count == 0)) {
    fail(p, 400, p->host_count ? "more than one Host" : "missing Host");
    return NC_HTTP_ERROR;
  }
  int chunked = (h->flags & F_CHUNKED) != 0;
  int has_length = (h->flags & F_CONTENT_LENGTH) != 0;
  p->body_expected = chunked ? -1 : has_length ? (long long)h->content_length : 0;
  /* RFC 9110 15.5.14: refused before a byte of the body is read. */
  if (has_length && h->content_length > p->limits.max_body_bytes) {
    fail(p, 413, "Content-Length too large");
    return NC_HTTP_ERROR;
  }
  if (has_length && !chunked && h->content_length > 0) {
    if (body_reserve(p, (size_t)h->content_length + 1)) return NC_HTTP_ERROR;
  }
  int want_continue = 0;
  for (size_t i = 0; i < r->header_count; i++) {
    if (strcmp(r->headers[i].name, "expect") != 0) continue;
    /* RFC 9110 10.1.1: 100-continue is the only expectation defined; any
     * other MAY be answered 417, which tells the client plainly instead of
     * leaving it waiting for something that will not come. */
    if (strcasecmp(r->headers[i].value, "100-continue") != 0) {
      fail(p, 417, "unsupported expectation");
      return NC_HTTP_ERROR;
    }
    want_continue = 1;
  }
  /* RFC 9110 10.1.1: the expectation MUST be ignored in an HTTP/1.0
   * request, and no 100 is needed when there is no content to wait for. */
  if (want_continue && h->http_minor == 1 &&
      (chunked || (has_length && h->content_length > 0)))
    return NC_HTTP_CONTINUE;
  return NC_HTTP_MORE;
}

static nc_http_result_t llhttp_failed(nc_http_parser_t *p, llhttp_errno_t err) {
  if (p->failed) return NC_HTTP_ERROR; /* a callback said why */
  int status = 400;
  /* A syntactically valid "HTTP/d.d" that llhttp refuses (1.2, 3.0) is an
   * unsupported version, not a malformed request. llhttp raises the same
   * error for junk after a good version ("HTTP/1.1x"): that one is 400. */
  int servable = p->version_len == 3 && p->version[0] == '1' &&
                 (p->version[2] == '0' || p->version[2] == '1');
  if (err == HPE_INVALID_VERSION && p->version_len == 3 && !servable &&
      p->version[0] >= '0' && p->version[0] <= '9' && p->version[1] == '.' &&
      p->version[2] >= '0' && p->version[2] <= '9')
    status = 505;
  const char *reason = llhttp_get_error_reason(&p->llh);
  fail(p, status, reason ? reason : "malformed request");
  return NC_HTTP_ERROR;
}

nc_http_result_t nc_http_parser_feed(nc_http_parser_t *p, const char *data,
                                     size_t len, size_t *consumed) {
  size_t off = 0;
  *consumed = 0;
  if (p->failed) return NC_HTTP_ERROR;
  if (p->complete) return NC_HTTP_REQUEST; /* nc_http_parser_next() first */
  /* RFC 9112 9.6: after a request that closes the connection the server
   * MUST NOT process any further request, so later bytes are discarded. */
  if (p->closed) {
    *consumed = len;
    return NC_HTTP_MORE;
  }
  if (!data) {
    data = "";
    len = 0;
  }
  /* After a pause at the end of the headers llhttp still has work to do
   * without input (finish a bodiless request), so it runs once more even
   * when no byte is left. */
  int run = 0;
  if (p->resume_pending) {
    p->resume_pending = 0;
    llhttp_resume(&p->llh);
    run = 1;
  }
  while (off < len || run) {
    run = 0;
    size_t n = len - off;
    int in_head = !p->headers_done;
    /* Offer llhttp at most one byte past the header budget, so a flood of
     * header bytes is cut off without being buffered and the boundary is
     * exact: max accepted, max + 1 refused. */
    if (in_head) {
      size_t room = p->limits.max_header_bytes - p->header_bytes + 1;
      if (n > room) n = room;
    }
    p->pause = PAUSE_NONE;
    llhttp_errno_t err = llhttp_execute(&p->llh, data + off, n);
    size_t used = n;
    if (err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE) {
      used = (size_t)(llhttp_get_error_pos(&p->llh) - (data + off));
    } else if (err != HPE_OK) {
      const char *pos = llhttp_get_error_pos(&p->llh);
      if (pos >= data + off && pos <= data + off + n)
        off += (size_t)(pos - (data + off));
      *consumed = off;
      return llhttp_failed(p, err);
    }
    if (in_head) p->header_bytes += used;
    off += used;
    *consumed = off;

    if (err == HPE_PAUSED_UPGRADE) {
      p->upgrade_pause = 1;
      p->complete = 1;
      return NC_HTTP_REQUEST;
    }
    if (p->pause == PAUSE_MESSAGE) {
      p->complete = 1;
      return NC_HTTP_REQUEST;
    }
    if (p->pause == PAUSE_HEADERS) {
      nc_http_result_t res = headers_complete(p);
      if (res == NC_HTTP_ERROR) return res;
      if (res == NC_HTTP_CONTINUE) {
        p->resume_pending = 1;
        return res;
      }
      llhttp_resume(&p->llh);
      run = 1;
      continue;
    }
    if (!p->headers_done && p->header_bytes > p->limits.max_header_bytes) {
      fail(p, 431, "header section too large");
      return NC_HTTP_ERROR;
    }
  }
  return NC_HTTP_MORE;
}

/* ---- public API ---- */

nc_http_parser_t *nc_http_parser_new(const nc_http_limits_t *limits) {
  nc_http_parser_t *p = calloc(1, sizeof(*p));
  if (!p) return NULL;
  p->limits = *limits;
  llhttp_init(&p->llh, HTTP_REQUEST, &settings);
  p->llh.data = p;
  return p;
}

void nc_http_parser_free(nc_http_parser_t *p) {
  if (!p) return;
  request_release(p);
  free(p);
}

const nc_http_request_t *nc_http_parser_request(const nc_http_parser_t *p) {
  return p->complete ? &p->req : NULL;
}

void nc_http_parser_next(nc_http_parser_t *p) {
  if (p->failed || !p->complete) return;
  int upgrade = p->upgrade_pause;
  if (!p->req.keep_alive) p->closed = 1;
  request_release(p);
  /* After a declined upgrade the connection goes on as HTTP/1.1 (RFC 9110
   * 7.8), so llhttp resumes where it stopped either way. */
  if (upgrade)
    llhttp_resume_after_upgrade(&p->llh);
  else
    llhttp_resume(&p->llh);
}

int nc_http_parser_busy(const nc_http_parser_t *p) {
  return p->in_message && !p->complete;
}

int nc_http_parser_headers_done(const nc_http_parser_t *p) {
  return p->headers_done;
}

void nc_http_parser_body_progress(const nc_http_parser_t *p, size_t *received,
                                  long long *expected) {
  *received = p->req.body_len;
  *expected = p->body_expected;
}

int nc_http_parser_error_status(const nc_http_parser_t *p) {
  return p->failed ? p->error_status : 0;
}

const char *nc_http_parser_error_reason(const nc_http_parser_t *p) {
  return p->failed ? p->error_reason : "";
}

const char *nc_http_request_header(const nc_http_request_t *r,
                                   const char *name) {
  for (size_t i = 0; i < r->header_count; i++)
    if (strcasecmp(r->headers[i].name, name) == 0) return r->headers[i].value;
  return NULL;
}

const char *nc_http_status_text(int status) {
  switch (status) {
  case 100: return "Continue";
  case 101: return "Switching Protocols";
  case 200: return "OK";
  case 201: return "Created";
  case 202: return "Accepted";
  case 204: return "No Content";
  case 301: return "Moved Permanently";
  case 302: return "Found";
  case 303: return "See Other";
  case 304: return "Not Modified";
  case 307: return "Temporary Redirect";
  case 308: return "Permanent Redirect";
  case 400: return "Bad Request";
  case 401: return "Unauthorized";
  case 403: return "Forbidden";
  case 404: return "Not Found";
  case 405: return "Method Not Allowed";
  case 406: return "Not Acceptable";
  case 408: return "Request Timeout";
  case 409: return "Conflict";
  case 410: return "Gone";
  case 411: return "Length Required";
  case 412: return "Precondition Failed";
  case 413: return "Content Too Large";
  case 414: return "URI Too Long";
  case 415: return "Unsupported Media Type";
  case 417: return "Expectation Failed";
  case 422: return "Unprocessable Content";
  case 426: return "Upgrade Required";
  case 428: return "Precondition Required";
  case 429: return "Too Many Requests";
  case 431: return "Request Header Fields Too Large";
  case 500: return "Internal Server Error";
  case 501: return "Not Implemented";
  case 502: return "Bad Gateway";
  case 503: return "Service Unavailable";
  case 504: return "Gateway Timeout";
  case 505: return "HTTP Version Not Supported";
  default: return "Unknown";
  }
}

/* ---- responses ---- */

static char *put_digits(char *w, unsigned v, int width) {
  for (int i = width - 1; i >= 0; i--) {
    w[i] = (char)('0' + v % 10);
    v /= 10;
  }
  return w + width;
}

/* RFC 9110 5.6.7: IMF-fixdate, always in English and GMT, so neither
 * strftime's locale nor the local zone may leak in. Written by hand: it is
 * exactly 29 bytes, e.g. "Sun, 06 Nov 1994 08:49:37 GMT". */
void nc_http_format_date(char out[30], time_t now) {
  static const char days[] = "SunMonTueWedThuFriSat";
  static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
  struct tm tm;
  if (!gmtime_r(&now, &tm)) memset(&tm, 0, sizeof(tm));
  char *w = out;
  memcpy(w, days + 3 * ((unsigned)tm.tm_wday % 7), 3);
  w += 3;
  *w++ = ',';
  *w++ = ' ';
  w = put_digits(w, (unsigned)tm.tm_mday, 2);
  *w++ = ' ';
  memcpy(w, months + 3 * ((unsigned)tm.tm_mon % 12), 3);
  w += 3;
  *w++ = ' ';
  w = put_digits(w, (unsigned)(tm.tm_year + 1900), 4);
  *w++ = ' ';
  w = put_digits(w, (unsigned)tm.tm_hour, 2);
  *w++ = ':';
  w = put_digits(w, (unsigned)tm.tm_min, 2);
  *w++ = ':';
  w = put_digits(w, (unsigned)tm.tm_sec, 2);
  memcpy(w, " GMT", 5);
}

/* Days since 1970-01-01 of a proleptic Gregorian date (month 1..12): the
 * inverse of what gmtime_r does, without timegm(), which is not POSIX. */
static long long days_from_civil(long long y, unsigned m, unsigned d) {
  y -= m <= 2;
  long long era = (y >= 0 ? y : y - 399) / 400;
  unsigned yoe = (unsigned)(y - era * 400);
  unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + (long long)doe - 719468;
}

/* The IMF-fixdate form only: it is what RFC 9110 5.6.7 has senders
 * generate, and a date we cannot read just makes a condition not apply. */
int nc_http_parse_date(const char *text, time_t *out) {
  static const char days[] = "SunMonTueWedThuFriSat";
  static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
  char day[4], month[4];
  int mday, year, hour, min, sec, used = -1;
  if (sscanf(text, "%3[A-Za-z], %2d %3[A-Za-z] %4d %2d:%2d:%2d GMT%n", day, &mday,
             month, &year, &hour, &min, &sec, &used) != 7 ||
      used < 0 || text[used] != '\0')
    return -1;
  const char *d = strstr(days, day);
  const char *m = strstr(months, month);
  if (strlen(day) != 3 || strlen(month) != 3 || !d || (d - days) % 3 != 0 || !m ||
      (m - months) % 3 != 0 || mday < 1 || mday > 31 || year < 1970 || hour > 23 ||
      min > 59 || sec > 60)
    return -1;
  long long days_since = days_from_civil(year, (unsigned)((m - months) / 3 + 1),
                                         (unsigned)mday);
  *out = (time_t)(days_since * 86400 + hour * 3600 + min * 60 + sec);
  return 0;
}

static int size_add(size_t *total, size_t n) {
  if (n > SIZE_MAX - *total) return -1;
  *total += n;
  return 0;
}

/* A header written by a script must not be able to split the response
 * (RFC 9110 5.5: CR, LF and NUL never appear in a field), so they become
 * SP on the way out. */
static char *put_field(char *w, const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    *w++ = (s[i] == '\r' || s[i] == '\n' || s[i] == '\0') ? ' ' : s[i];
  return w;
}

char *nc_http_response_format(int status, const nc_http_header_t *headers,
                              size_t count, const char *body, size_t body_len,
                              int head_only, int keep_alive, size_t *out_len) {
  /* RFC 9110 15.2, 15.3.5, 15.4.5: 1xx, 204 and 304 never have content, so
   * they carry neither a body nor a Content-Length. A 1xx does not end the
   * exchange, so it never says Connection: close either. */
  int informational = status >= 100 && status < 200;
  int no_content = informational || status == 204 || status == 304;
  char status_line[64], length_line[48], date[30];
  int sl = snprintf(status_line, sizeof(status_line), "HTTP/1.1 %03d %s\r\n",
                    status, nc_http_status_text(status));
  int ll = snprintf(length_line, sizeof(length_line),
                    "Content-Length: %zu\r\n", body_len);
  if (sl < 0 || ll < 0 || (size_t)sl >= sizeof(status_line)) return NULL;
  nc_http_format_date(date, time(NULL));
  static const char close_line[] = "Connection: close\r\n";
  int add_close = !keep_alive && !informational;
  int write_body = !head_only && !no_content && body_len > 0;

  size_t total = (size_t)sl + strlen("Date: \r\n") + strlen(date) + 2;
  if (!no_content) total += (size_t)ll;
  if (add_close) total += sizeof(close_line) - 1;
  for (size_t i = 0; i < count; i++) {
    if (size_add(&total, strlen(headers[i].name)) ||
        size_add(&total, strlen(headers[i].value)) || size_add(&total, 4))
      return NULL;
  }
  if (write_body && size_add(&total, body_len)) return NULL;
  if (size_add(&total, 1)) return NULL; /* NUL, handy when logging */

  char *out = malloc(total);
  if (!out) return NULL;
  char *w = out;
  memcpy(w, status_line, (size_t)sl);
  w += sl;
  for (size_t i = 0; i < count; i++) {
    w = put_field(w, headers[i].name, strlen(headers[i].name));
    *w++ = ':';
    *w++ = ' ';
    w = put_field(w, headers[i].value, strlen(headers[i].value));
    *w++ = '\r';
    *w++ = '\n';
  }
  w += sprintf(w, "Date: %s\r\n", date);
  if (!no_content) {
    memcpy(w, length_line, (size_t)ll);
    w += ll;
  }
  if (add_close) {
    memcpy(w, close_line, sizeof(close_line) - 1);
    w += sizeof(close_line) - 1;
  }
  *w++ = '\r';
  *w++ = '\n';
  if (write_body) {
    memcpy(w, body, body_len);
    w += body_len;
  }
  *w = '\0';
  *out_len = (size_t)(w - out);
  return out;
}

void nc_http_response_free(nc_http_response_t *res) {
  for (size_t i = 0; i < res->header_count; i++) {
    free(res->headers[i].name);
    free(res->headers[i].value);
  }
  free(res->headers);
  free(res->body);
  memset(res, 0, sizeof *res);
}
