/* HTTP/1.1 request parsing and response formatting, without I/O.
 *
 * The parser is fed bytes as they arrive and hands back one complete request
 * at a time; the caller (server.c) owns the socket. It pauses after each
 * request so that pipelined requests are answered strictly in order: the
 * caller answers the request, calls nc_http_parser_next(), then feeds the
 * bytes the previous call did not consume. Built on llhttp. */
#ifndef NC_HTTP_H
#define NC_HTTP_H

#include <stddef.h>
#include <time.h>

typedef struct {
  size_t max_header_bytes; /* request line + headers; past it: 431 */
  size_t max_body_bytes;   /* decoded body; past it: 413 */
} nc_http_limits_t;

typedef struct {
  char *name;  /* lower-cased */
  char *value; /* leading/trailing whitespace trimmed */
} nc_http_header_t;

/* A complete request. Owned by the parser; valid until nc_http_parser_next()
 * or nc_http_parser_free(). Strings are NUL-terminated. */
typedef struct {
  const char *method;      /* "GET", "POST", ... */
  char *target;            /* raw request target, e.g. "/a%20b?x=1" */
  char *path;              /* target up to '?', still percent-encoded */
  char *query;             /* after '?', "" when none */
  nc_http_header_t *headers;
  size_t header_count;
  char *body;              /* decoded (de-chunked); "" when none */
  size_t body_len;
  int http_major, http_minor;
  int keep_alive;          /* 1 when the connection may serve another request */
  int upgrade;             /* 1 when the client asked for Upgrade (e.g. websocket) */
} nc_http_request_t;

/* A response before formatting. Whoever fills it owns the strings; release
 * them with nc_http_response_free(). */
typedef struct {
  int status;
  nc_http_header_t *headers; /* written as given */
  size_t header_count;
  char *body;                /* may be NULL when body_len is 0 */
  size_t body_len;
} nc_http_response_t;

/* Frees the strings of `res` and zeroes it; the struct itself is the
 * caller's. */
void nc_http_response_free(nc_http_response_t *res);

typedef struct nc_http_parser nc_http_parser_t;

typedef enum {
  NC_HTTP_MORE = 0,     /* all bytes consumed, request not complete yet */
  NC_HTTP_REQUEST = 1,  /* a request is complete: nc_http_parser_request() */
  NC_HTTP_CONTINUE = 2, /* headers asked "Expect: 100-continue" and are within
                           limits: send "HTTP/1.1 100 Continue\r\n\r\n", then
                           feed the rest */
  NC_HTTP_ERROR = -1    /* malformed or over a limit: answer
                           nc_http_parser_error_status() and close */
} nc_http_result_t;

/* Returns a parser or NULL on allocation failure. `limits` is copied. */
nc_http_parser_t *nc_http_parser_new(const nc_http_limits_t *limits);
void nc_http_parser_free(nc_http_parser_t *p);

/* Feeds up to `len` bytes; *consumed tells how many were used. On
 * NC_HTTP_REQUEST or NC_HTTP_CONTINUE the unconsumed rest must be fed again
 * later (after nc_http_parser_next() for REQUEST). After NC_HTTP_ERROR the
 * parser accepts nothing more. */
nc_http_result_t nc_http_parser_feed(nc_http_parser_t *p, const char *data,
                                     size_t len, size_t *consumed);

/* The complete request after NC_HTTP_REQUEST, else NULL. */
const nc_http_request_t *nc_http_parser_request(const nc_http_parser_t *p);

/* Frees the current request and readies the parser for the next one. */
void nc_http_parser_next(nc_http_parser_t *p);

/* 1 when some bytes of a request (not yet complete) have been consumed. */
int nc_http_parser_busy(const nc_http_parser_t *p);

/* 1 once the current request's headers are complete. */
int nc_http_parser_headers_done(const nc_http_parser_t *p);

/* The body of the request being read, once its headers are done: the
 * bytes received so far, and the Content-Length it announced (-1 for a
 * chunked body, whose size is known only at its end). For the log line of
 * a body that comes too slowly. */
void nc_http_parser_body_progress(const nc_http_parser_t *p, size_t *received,
                                  long long *expected);

/* After NC_HTTP_ERROR: 400 (malformed, missing Host), 413 (body), 417
 * (an Expect other than 100-continue), 431 (headers), 505 (a version other
 * than 1.0/1.1) or 500 (out of memory), and a short reason for the log. */
int nc_http_parser_error_status(const nc_http_parser_t *p);
const char *nc_http_parser_error_reason(const nc_http_parser_t *p);

/* Case-insensitive header lookup; NULL when absent. */
const char *nc_http_request_header(const nc_http_request_t *r, const char *name);

/* An HTTP date (RFC 9110 5.6.7 IMF-fixdate, "Sun, 06 Nov 1994 08:49:37
 * GMT"): formatting into 30 bytes, and parsing; parse returns 0, or -1 for
 * anything else. */
void nc_http_format_date(char out[30], time_t t);
int nc_http_parse_date(const char *text, time_t *out);

/* Reason phrase for a status code ("Not Found"); "Unknown" when unlisted. */
const char *nc_http_status_text(int status);

/* Formats a full response into a newly malloc'd buffer (caller frees) and
 * stores its length in *out_len; NULL on allocation failure. Adds Date,
 * Content-Length and, when !keep_alive, "Connection: close". `headers` are
 * `count` name/value pairs written as given; `body` is omitted (but counted
 * in Content-Length) when head_only. */
char *nc_http_response_format(int status, const nc_http_header_t *headers,
                              size_t count, const char *body, size_t body_len,
                              int head_only, int keep_alive, size_t *out_len);

#endif
