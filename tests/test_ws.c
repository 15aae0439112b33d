/* Tests for core/ws.c: handshake requests built by hand, and sessions fed
 * scripted client frames (masked here, as a browser would) with the server's
 * output collected and parsed back into frames. No sockets. The split tests
 * feed one byte stream whole and cut at many places and require the same
 * messages and the same output bytes either way. */
#define _POSIX_C_SOURCE 200809L

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "ws.h"

#define S(lit) (lit), (sizeof(lit) - 1)

/* ---- handshake ---- */

static const char sample_key[] = "dGhlIHNhbXBsZSBub25jZQ==";
/* RFC 6455 1.3; also what Python's base64 and hashlib give. */
static const char sample_accept[] = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

typedef struct {
  const char *name;  /* "+name" appends even if name is already there */
  const char *value; /* NULL removes the header */
} kv_t;

/* Runs the check on a request with the usual handshake headers, changed by
 * `over`: a listed name replaces the base header of that name. */
static int handshake(const char *method, int major, int minor,
                     const kv_t *over, size_t n_over, char accept[29],
                     const char **why) {
  kv_t base[] = {{"host", "example.com"},
                 {"upgrade", "websocket"},
                 {"connection", "Upgrade"},
                 {"sec-websocket-key", sample_key},
                 {"sec-websocket-version", "13"}};
  nc_http_header_t hs[16];
  size_t n = 0;
  for (size_t i = 0; i < sizeof(base) / sizeof(base[0]); i++) {
    const char *value = base[i].value;
    for (size_t j = 0; j < n_over; j++)
      if (strcmp(over[j].name, base[i].name) == 0) value = over[j].value;
    if (!value) continue;
    hs[n].name = (char *)base[i].name;
    hs[n].value = (char *)value;
    n++;
  }
  for (size_t j = 0; j < n_over; j++) {
    if (over[j].name[0] != '+' || n == 16) continue;
    hs[n].name = (char *)over[j].name + 1;
    hs[n].value = (char *)over[j].value;
    n++;
  }
  nc_http_request_t req;
  memset(&req, 0, sizeof(req));
  req.method = method;
  req.target = (char *)"/ws";
  req.path = (char *)"/ws";
  req.query = (char *)"";
  req.headers = hs;
  req.header_count = n;
  req.body = (char *)"";
  req.http_major = major;
  req.http_minor = minor;
  req.keep_alive = 1;
  req.upgrade = 1;
  return nc_ws_handshake_check(&req, accept, why);
}

static void test_handshake_rfc_sample(void) {
  char accept[29];
  const char *why = NULL;
  memset(accept, 'x', sizeof(accept));
  /* RFC 6455 1.3 and 4.2.2. */
  CHECK_INT(handshake("GET", 1, 1, NULL, 0, accept, &why), 0);
  CHECK(memchr(accept, '\0', sizeof(accept)) == accept + 28);
  CHECK_STR(accept, sample_accept);
  CHECK(why != NULL);

  /* Another key gives another answer (computed with Python). */
  kv_t other[] = {{"sec-websocket-key", "AAAAAAAAAAAAAAAAAAAAAA=="}};
  CHECK_INT(handshake("GET", 1, 1, other, 1, accept, &why), 0);
  CHECK_STR(accept, "ICX+Yqv66kxgM0FcWaLWlFLwTAI=");
}

static void test_handshake_accepted_variants(void) {
  static const kv_t variants[][2] = {
      {{"connection", "keep-alive, Upgrade"}, {"x", NULL}},
      {{"connection", "upgrade"}, {"x", NULL}},
      {{"connection", "UPGRADE,keep-alive"}, {"x", NULL}},
      {{"connection", " ,keep-alive ,\tUpgrade\t, "}, {"x", NULL}},
      {{"upgrade", "WebSocket"}, {"x", NULL}},
      {{"upgrade", "h2c, websocket"}, {"x", NULL}},
      /* One list over two lines (RFC 9110 5.3). */
      {{"connection", "keep-alive"}, {"+connection", "Upgrade"}},
      {{"upgrade", "h2c"}, {"+upgrade", "websocket"}},
  };
  for (size_t i = 0; i < sizeof(variants) / sizeof(variants[0]); i++) {
    char accept[29] = "";
    const char *why = NULL;
    size_t n = variants[i][1].value ? 2 : 1;
    int st = handshake("GET", 1, 1, variants[i], n, accept, &why);
    CHECK_INT(st, 0);
    CHECK_STR(accept, sample_accept);
    if (st) fprintf(stderr, "  variant %zu: %s\n", i, why);
  }
  /* RFC 6455 4.2.1: "HTTP/1.1 or higher". */
  char accept[29] = "";
  const char *why = NULL;
  CHECK_INT(handshake("GET", 1, 2, NULL, 0, accept, &why), 0);
  CHECK_STR(accept, sample_accept);
}

static void test_handshake_refusals(void) {
  struct {
    const char *what, *method;
    int major, minor;
    kv_t over[2];
    int status;
    const char *why; /* a word the reason must contain */
  } cases[] = {
      {"POST", "POST", 1, 1, {{"x", NULL}}, 400, "GET"},
      {"lower-case get", "get", 1, 1, {{"x", NULL}}, 400, "GET"},
      {"HTTP/1.0", "GET", 1, 0, {{"x", NULL}}, 400, "HTTP/1.1"},
      {"HTTP/2.0", "GET", 2, 0, {{"x", NULL}}, 400, "HTTP/1.1"},
      {"no Upgrade", "GET", 1, 1, {{"upgrade", NULL}}, 400, "Upgrade"},
      {"Upgrade h2c", "GET", 1, 1, {{"upgrade", "h2c"}}, 400, "Upgrade"},
      {"Upgrade websockets", "GET", 1, 1, {{"upgrade", "websockets"}}, 400,
       "Upgrade"},
      {"Upgrade web socket", "GET", 1, 1, {{"upgrade", "web socket"}}, 400,
       "Upgrade"},
      {"Upgrade empty", "GET", 1, 1, {{"upgrade", ""}}, 400, "Upgrade"},
      {"no Connection", "GET", 1, 1, {{"connection", NULL}}, 400,
       "Connection"},
      {"Connection keep-alive", "GET", 1, 1, {{"connection", "keep-alive"}},
       400, "Connection"},
      {"Connection close", "GET", 1, 1, {{"connection", "close"}}, 400,
       "Connection"},
      {"Connection upgrades", "GET", 1, 1,
       {{"connection", "keep-alive, upgrades"}}, 400, "Connection"},
      {"Connection up grade", "GET", 1, 1, {{"connection", "up grade"}}, 400,
       "Connection"},
      {"version 8", "GET", 1, 1, {{"sec-websocket-version", "8"}}, 426,
       "Version"},
      {"version 13 and 8", "GET", 1, 1, {{"sec-websocket-version", "13, 8"}},
       426, "Version"},
      {"version twice", "GET", 1, 1, {{"+sec-websocket-version", "13"}},
       426, "Version"},
      {"no version", "GET", 1, 1, {{"sec-websocket-version", NULL}}, 426,
       "Version"},
      {"no version, no key", "GET", 1, 1,
       {{"sec-websocket-version", NULL}, {"sec-websocket-key", NULL}}, 426,
       "Version"},
      {"no key", "GET", 1, 1, {{"sec-websocket-key", NULL}}, 400, "missing"},
      {"empty key", "GET", 1, 1, {{"sec-websocket-key", ""}}, 400, "base64"},
      {"two keys", "GET", 1, 1, {{"+sec-websocket-key", sample_key}}, 400,
       "more than one"},
      {"15-byte key", "GET", 1, 1,
       {{"sec-websocket-key", "AAAAAAAAAAAAAAAAAAAA"}}, 400, "16 bytes"},
      {"17-byte key", "GET", 1, 1,
       {{"sec-websocket-key", "AAAAAAAAAAAAAAAAAAAAAAA="}}, 400, "16 bytes"},
      {"long key", "GET", 1, 1,
       {{"sec-websocket-key",
         "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
         "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}},
       400, "16 bytes"},
      {"key not base64", "GET", 1, 1,
       {{"sec-websocket-key", "dGhlIHNhbXBsZSBub25j!Q=="}}, 400, "base64"},
      {"key without padding", "GET", 1, 1,
       {{"sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ"}}, 400, "base64"},
      {"key with inner =", "GET", 1, 1,
       {{"sec-websocket-key", "dGhlIHNhbXBsZSBub2=jZQ=="}}, 400, "base64"},
      {"key with junk after =", "GET", 1, 1,
       {{"sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=a"}}, 400, "base64"},
      {"key with inner space", "GET", 1, 1,
       {{"sec-websocket-key", "dGhlIHNhbXBs ZSBub25jZQ=="}}, 400, "base64"},
      {"key with three =", "GET", 1, 1,
       {{"sec-websocket-key", "dGhlIHNhbXBsZSBub25jZ==="}}, 400, "base64"},
      {"key of 16 characters", "GET", 1, 1,
       {{"sec-websocket-key", "0123456789abcdef"}}, 400, "16 bytes"},
      {"long key not base64", "GET", 1, 1,
       {{"sec-websocket-key",
         "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
         "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA*AAA"}},
       400, "base64"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    char accept[29] = "untouched";
    const char *why = NULL;
    size_t n = cases[i].over[1].name ? 2 : 1;
    int st = handshake(cases[i].method, cases[i].major, cases[i].minor,
                       cases[i].over, n, accept, &why);
    int ok = st == cases[i].status && why && strstr(why, cases[i].why);
    CHECK(ok);
    if (!ok)
      fprintf(stderr, "  %s: %d (%s), want %d (%s)\n", cases[i].what, st,
              why ? why : "NULL", cases[i].status, cases[i].why);
    CHECK_STR(accept, "untouched");
  }
}

/* ---- a peer: collects what the session outputs and delivers ---- */

typedef struct {
  uint8_t *out;
  size_t out_len, out_cap;
  int outputs;      /* calls of output() */
  int fail_output;  /* output() returns -1 */
  char *log;        /* every message, as "<len>:<bytes>\n" */
  size_t log_len, log_cap;
  int messages;
  int bad_nul;      /* a message not NUL-terminated at text[len] */
  char last[256];   /* the last message, when it fits */
  size_t last_len;
  nc_ws_t *ws;
  int echo;         /* answer each message from inside the callback */
  int echo_rc;
} peer_t;

static int grow(void *pp, size_t *cap, size_t need) {
  void **p = pp;
  if (need <= *cap) return 0;
  size_t c = *cap ? *cap : 256;
  while (c < need) c *= 2;
  void *q = realloc(*p, c);
  if (!q) return -1;
  *p = q;
  *cap = c;
  return 0;
}

static int output_cb(void *ud, const uint8_t *data, size_t len) {
  peer_t *p = ud;
  p->outputs++;
  if (p->fail_output) return -1;
  if (len == 0 || grow(&p->out, &p->out_cap, p->out_len + len)) return -1;
  memcpy(p->out + p->out_len, data, len);
  p->out_len += len;
  return 0;
}

static void message_cb(void *ud, const char *text, size_t len) {
  peer_t *p = ud;
  char head[32];
  int h = snprintf(head, sizeof(head), "%zu:", len);
  p->messages++;
  if (text[len] != '\0') p->bad_nul++;
  if (!grow(&p->log, &p->log_cap, p->log_len + (size_t)h + len + 1)) {
    memcpy(p->log + p->log_len, head, (size_t)h);
    memcpy(p->log + p->log_len + h, text, len);
    p->log[p->log_len + (size_t)h + len] = '\n';
    p->log_len += (size_t)h + len + 1;
  }
  p->last_len = len;
  if (len < sizeof(p->last)) memcpy(p->last, text, len + 1);
  if (p->echo) p->echo_rc |= nc_ws_send_text(p->ws, text, len);
}

static nc_ws_t *peer_open(peer_t *p, size_t max) {
  memset(p, 0, sizeof(*p));
  nc_ws_options_t o = {output_cb, message_cb, p, max};
  p->ws = nc_ws_new(&o);
  CHECK(p->ws != NULL);
  return p->ws;
}

static void peer_close(peer_t *p) {
  nc_ws_free(p->ws);
  free(p->out);
  free(p->log);
  memset(p, 0, sizeof(*p));
}

static void peer_clear_output(peer_t *p) {
  p->out_len = 0;
  p->outputs = 0;
}

/* ---- frames ---- */

static const uint8_t mask_key[4] = {0x37, 0xfa, 0x21, 0x3d};

/* Writes a client frame: b0 is FIN, RSV and opcode; the length is encoded in
 * the fewest bytes (RFC 6455 5.2), the payload masked unless !masked. */
static size_t frame_ex(uint8_t *buf, uint8_t b0, const void *payload,
                       size_t len, int masked) {
  const uint8_t *pl = payload;
  size_t k = 0;
  uint8_t m = masked ? 0x80 : 0;
  buf[k++] = b0;
  if (len < 126) {
    buf[k++] = (uint8_t)(m | len);
  } else if (len < 65536) {
    buf[k++] = m | 126;
    buf[k++] = (uint8_t)(len >> 8);
    buf[k++] = (uint8_t)len;
  } else {
    buf[k++] = m | 127;
    for (int i = 7; i >= 0; i--) buf[k++] = (uint8_t)((uint64_t)len >> (8 * i));
  }
  if (masked) {
    memcpy(buf + k, mask_key, 4);
    k += 4;
  }
  for (size_t i = 0; i < len; i++)
    buf[k++] = (uint8_t)(pl[i] ^ (masked ? mask_key[i % 4] : 0));
  return k;
}

static size_t frame(uint8_t *buf, uint8_t b0, const void *payload, size_t len) {
  return frame_ex(buf, b0, payload, len, 1);
}

/* A close frame's body: the code, then the reason. */
static size_t close_body(uint8_t *buf, uint16_t code, const char *reason) {
  buf[0] = (uint8_t)(code >> 8);
  buf[1] = (uint8_t)code;
  size_t n = strlen(reason);
  memcpy(buf + 2, reason, n);
  return n + 2;
}

enum { FIN = 0x80, CONT = 0x0, TEXT = 0x1, BIN = 0x2, CLOSE = 0x8,
       PING = 0x9, PONG = 0xa };

typedef struct {
  int fin, rsv, opcode;
  const uint8_t *data;
  size_t len;
} sframe_t;

/* Splits server output into frames. -1 when it is not a sequence of whole,
 * unmasked frames with minimal lengths, or more than `max` of them. */
static int parse_frames(const uint8_t *p, size_t n, sframe_t *f, int max) {
  int count = 0;
  size_t off = 0;
  while (off < n) {
    if (count == max || n - off < 2) return -1;
    sframe_t *fr = &f[count++];
    fr->fin = p[off] >> 7;
    fr->rsv = (p[off] >> 4) & 7;
    fr->opcode = p[off] & 0x0f;
    if (p[off + 1] & 0x80) return -1; /* RFC 6455 5.1: server never masks */
    uint64_t len = p[off + 1] & 0x7f;
    off += 2;
    if (len == 126) {
      if (n - off < 2) return -1;
      len = (uint64_t)p[off] << 8 | p[off + 1];
      off += 2;
      if (len < 126) return -1;
    } else if (len == 127) {
      if (n - off < 8) return -1;
      len = 0;
      for (int i = 0; i < 8; i++) len = len << 8 | p[off + i];
      off += 8;
      if (len < 65536) return -1;
    }
    if (len > n - off) return -1;
    fr->data = p + off;
    fr->len = (size_t)len;
    off += (size_t)len;
  }
  return count;
}

/* The output holds exactly one frame: a close with `code` (and, when
 * reason is not NULL, that reason). */
static int output_is_close(const peer_t *p, int code, const char *reason) {
  sframe_t f[4];
  int n = parse_frames(p->out, p->out_len, f, 4);
  if (n != 1 || !f[0].fin || f[0].rsv || f[0].opcode != CLOSE) return 0;
  if (f[0].len < 2 || (f[0].data[0] << 8 | f[0].data[1]) != code) return 0;
  if (reason && (f[0].len - 2 != strlen(reason) ||
                 memcmp(f[0].data + 2, reason, f[0].len - 2) != 0))
    return 0;
  return 1;
}

static nc_ws_state_t feed(peer_t *p, const void *data, size_t len) {
  return nc_ws_feed(p->ws, data, len);
}

/* ---- session ---- */

static void test_new_and_free(void) {
  peer_t p;
  if (!peer_open(&p, 1024)) return;
  CHECK_INT(nc_ws_state(p.ws), NC_WS_OPEN);
  CHECK_INT(nc_ws_close_code(p.ws), 1006); /* nothing exchanged yet */
  CHECK_INT(feed(&p, NULL, 0), NC_WS_OPEN);
  CHECK_INT(p.outputs, 0);
  peer_close(&p);
  nc_ws_free(NULL);
}

static void test_text_message(void) {
  peer_t p;
  uint8_t buf[64];
  if (!peer_open(&p, 1024)) return;
  size_t n = frame(buf, FIN | TEXT, S("hello"));
  CHECK(memcmp(buf + 6, "hello", 5) != 0); /* really masked */
  CHECK_INT(feed(&p, buf, n), NC_WS_OPEN);
  CHECK_INT(p.messages, 1);
  CHECK_INT(p.last_len, 5);
  CHECK_STR(p.last, "hello");
  CHECK_INT(p.bad_nul, 0);
  CHECK_INT(p.outputs, 0); /* nothing to answer */

  /* An empty message is a message too. */
  n = frame(buf, FIN | TEXT, "", 0);
  CHECK_INT(feed(&p, buf, n), NC_WS_OPEN);
  CHECK_INT(p.messages, 2);
  CHECK_INT(p.last_len, 0);
  CHECK_INT(p.bad_nul, 0);

  /* Two in one read, both delivered, in order. */
  n = frame(buf, FIN | TEXT, S("one"));
  n += frame(buf + n, FIN | TEXT, S("two"));
  CHECK_INT(feed(&p, buf, n), NC_WS_OPEN);
  CHECK_INT(p.messages, 4);
  CHECK(p.log_len >= 12 &&
        memcmp(p.log + p.log_len - 12, "3:one\n3:two\n", 12) == 0);
  peer_close(&p);
}

static void test_fragments_with_ping(void) {
  peer_t p;
  uint8_t buf[128];
  if (!peer_open(&p, 1024)) return;
  size_t n = frame(buf, TEXT, S("Hel"));
  n += frame(buf + n, FIN | PING, S("are you there"));
  CHECK_INT(feed(&p, buf, n), NC_WS_OPEN);
  CHECK_INT(p.messages, 0); /* not before the last fragment */
  /* The ping is answered at once, while the message is incomplete. */
  sframe_t f[4];
  int nf = parse_frames(p.out, p.out_len, f, 4);
  CHECK_INT(nf, 1);
  if (nf == 1) {
    CHECK(f[0].fin && f[0].rsv == 0);
    CHECK_INT(f[0].opcode, PONG);
    CHECK(f[0].len == 13 && memcmp(f[0].data, "are you there", 13) == 0);
  }
  peer_clear_output(&p);
  n = frame(buf, CONT, S("lo, "));
  n += frame(buf + n, CONT, "", 0); /* an empty fragment is allowed */
  n += frame(buf + n, FIN | CONT, S("world"));
  CHECK_INT(feed(&p, buf, n), NC_WS_OPEN);
  CHECK_INT(p.messages, 1);
  CHECK_STR(p.last, "Hello, world");
  CHECK_INT(p.last_len, 12);
  CHECK_INT(p.bad_nul, 0);
  CHECK_INT(p.out_len, 0);

  /* A pong from the client is not answered and ends nothing. */
  n = frame(buf, FIN | PONG, S("x"));
  CHECK_INT(feed(&p, buf, n), NC_WS_OPEN);
  CHECK_INT(p.out_len, 0);
  peer_close(&p);
}

static void test_one_byte_at_a_time(void) {
  peer_t p;
  static uint8_t buf[1024];
  char text[300];
  for (size_t i = 0; i < sizeof(text); i++) text[i] = (char)('a' + i % 26);
  if (!peer_open(&p, 1024)) return;
  /* 300 bytes: the 16-bit length form, whose header is 4 bytes. */
  size_t n = frame(buf, FIN | PING, S("p"));
  size_t ping_end = n;
  n += frame(buf + n, FIN | TEXT, text, sizeof(text));
  for (size_t i = 0; i < n; i++) {
    CHECK_INT(feed(&p, buf + i, 1), NC_WS_OPEN);
    if (i + 1 == ping_end) CHECK_INT(p.out_len, 3); /* pong, right away */
    if (i + 1 < n && p.messages != 0) {
      CHECK(!"message before its last byte");
      break;
    }
  }
  CHECK_INT(p.messages, 1);
  CHECK_INT(p.last_len, 300); /* too long for p.last: see the log */
  CHECK(p.log_len == 4 + 300 + 1 && memcmp(p.log + 4, text, 300) == 0);
  sframe_t f[4];
  CHECK_INT(parse_frames(p.out, p.out_len, f, 4), 1);
  CHECK_INT(f[0].opcode, PONG);
  peer_close(&p);
}

static void test_send_text(void) {
  peer_t p;
  if (!peer_open(&p, 1024)) return;
  CHECK_INT(nc_ws_send_text(p.ws, S("hi")), 0);
  /* Written before returning: unmasked, FIN, text, the whole payload. */
  CHECK_INT(p.out_len, 4);
  CHECK(p.out_len == 4 && memcmp(p.out, "\x81\x02hi", 4) == 0);
  peer_clear_output(&p);

  static char big[70000];
  memset(big, 'z', sizeof(big));
  CHECK_INT(nc_ws_send_text(p.ws, big, 300), 0);
  CHECK_INT(nc_ws_send_text(p.ws, big, sizeof(big)), 0);
  CHECK_INT(nc_ws_send_text(p.ws, "", 0), 0);
  sframe_t f[4];
  int nf = parse_frames(p.out, p.out_len, f, 4);
  CHECK_INT(nf, 3);
  if (nf == 3) {
    CHECK(f[0].fin && f[0].opcode == TEXT && f[0].len == 300);
    CHECK(f[1].fin && f[1].opcode == TEXT && f[1].len == sizeof(big));
    CHECK(f[2].fin && f[2].opcode == TEXT && f[2].len == 0);
    CHECK(memcmp(f[1].data, big, sizeof(big)) == 0);
  }
  CHECK_INT(nc_ws_state(p.ws), NC_WS_OPEN);
  peer_close(&p);
}

/* The message callback may answer at once; its frame goes out before feed
 * returns, after the pong of a ping that came first. */
static void test_reply_from_callback(void) {
  peer_t p;
  uint8_t buf[64];
  if (!peer_open(&p, 1024)) return;
  p.echo = 1;
  size_t n = frame(buf, FIN | PING, S("1"));
  n += frame(buf + n, FIN | TEXT, S("echo me"));
  CHECK_INT(feed(&p, buf, n), NC_WS_OPEN);
  CHECK_INT(p.echo_rc, 0);
  sframe_t f[4];
  int nf = parse_frames(p.out, p.out_len, f, 4);
  CHECK_INT(nf, 2);
  if (nf == 2) {
    CHECK_INT(f[0].opcode, PONG);
    CHECK_INT(f[1].opcode, TEXT);
    CHECK(f[1].len == 7 && memcmp(f[1].data, "echo me", 7) == 0);
  }
  peer_close(&p);
}

static void test_utf8_split_across_fragments(void) {
  peer_t p;
  uint8_t buf[128];
  if (!peer_open(&p, 1024)) return;
  /* "é" is C3 A9: the fragment boundary falls inside it. */
  size_t n = frame(buf, TEXT, S("caf\xc3"));
  n += frame(buf + n, FIN | CONT, S("\xa9"));
  CHECK_INT(feed(&p, buf, n), NC_WS_OPEN);
  CHECK_INT(p.messages, 1);
  CHECK_STR(p.last, "caf\xc3\xa9");
  /* U+1F600 (F0 9F 98 80) over three fragments, a ping in between. */
  n = frame(buf, TEXT, S("\xf0"));
  n += frame(buf + n, CONT, S("\x9f\x98"));
  n += frame(buf + n, FIN | PING, "", 0);
  n += frame(buf + n, FIN | CONT, S("\x80!"));
  CHECK_INT(feed(&p, buf, n), NC_WS_OPEN);
  CHECK_INT(p.messages, 2);
  CHECK_STR(p.last, "\xf0\x9f\x98\x80!");
  /* The largest code point and the ones around the surrogates are fine. */
  n = frame(buf, FIN | TEXT, S("\xf4\x8f\xbf\xbf \xed\x9f\xbf \xee\x80\x80"));
  CHECK_INT(feed(&p, buf, n), NC_WS_OPEN);
  CHECK_INT(p.messages, 3);
  peer_close(&p);
}

typedef struct {
  const char *what;
  uint8_t bytes[160];
  size_t len;
  int code;
} bad_t;

/* Feeds `b` whole to a fresh session and checks that it is failed with the
 * case's code: one close frame out, CLOSED, nothing delivered. Then also
 * byte by byte. */
static void expect_failure(const bad_t *b, size_t max) {
  for (int bytewise = 0; bytewise < 2; bytewise++) {
    peer_t p;
    if (!peer_open(&p, max)) return;
    nc_ws_state_t st = NC_WS_OPEN;
    if (bytewise)
      for (size_t i = 0; i < b->len; i++) st = feed(&p, b->bytes + i, 1);
    else
      st = feed(&p, b->bytes, b->len);
    int ok = st == NC_WS_CLOSED && output_is_close(&p, b->code, "") &&
             nc_ws_close_code(p.ws) == b->code && p.messages == 0 &&
             nc_ws_state(p.ws) == NC_WS_CLOSED;
    CHECK(ok);
    if (!ok) {
      fprintf(stderr, "  %s%s: state %d, close code %d, %d messages, out",
              b->what, bytewise ? " (bytewise)" : "", st,
              nc_ws_close_code(p.ws), p.messages);
      for (size_t i = 0; i < p.out_len && i < 16; i++)
        fprintf(stderr, " %02x", p.out[i]);
      fprintf(stderr, "\n");
    }
    /* Stopped reading: what follows is ignored. */
    uint8_t more[16];
    size_t n = frame(more, FIN | TEXT, S("late"));
    peer_clear_output(&p);
    CHECK_INT(feed(&p, more, n), NC_WS_CLOSED);
    CHECK_INT(p.messages, 0);
    CHECK_INT(p.outputs, 0);
    CHECK_INT(nc_ws_send_text(p.ws, S("x")), -1);
    nc_ws_close(p.ws, 1000, "again");
    CHECK_INT(p.outputs, 0);
    peer_close(&p);
  }
}

static bad_t raw(const char *what, const void *bytes, size_t len, int code) {
  bad_t b;
  memset(&b, 0, sizeof(b));
  b.what = what;
  memcpy(b.bytes, bytes, len);
  b.len = len;
  b.code = code;
  return b;
}

static bad_t one(const char *what, uint8_t b0, const void *pl, size_t len,
                 int masked, int code) {
  bad_t b;
  memset(&b, 0, sizeof(b));
  b.what = what;
  b.len = frame_ex(b.bytes, b0, pl, len, masked);
  b.code = code;
  return b;
}

static void test_protocol_errors(void) {
  uint8_t body[64];
  bad_t cases[40];
  size_t n = 0;
  cases[n++] = one("unmasked text", FIN | TEXT, S("hi"), 0, 1002);
  cases[n++] = one("unmasked empty text", FIN | TEXT, "", 0, 0, 1002);
  cases[n++] = one("opcode 3", FIN | 0x3, S("hi"), 1, 1002);
  cases[n++] = one("opcode 7", FIN | 0x7, S("hi"), 1, 1002);
  cases[n++] = one("opcode 0xB", FIN | 0xb, S("hi"), 1, 1002);
  cases[n++] = one("opcode 0xF", FIN | 0xf, "", 0, 1, 1002);
  cases[n++] = one("RSV1", FIN | 0x40 | TEXT, S("hi"), 1, 1002);
  cases[n++] = one("RSV2", FIN | 0x20 | TEXT, S("hi"), 1, 1002);
  cases[n++] = one("RSV3", FIN | 0x10 | TEXT, S("hi"), 1, 1002);
  cases[n++] = one("RSV1 on ping", FIN | 0x40 | PING, "", 0, 1, 1002);
  cases[n++] = one("RSV1 on close", FIN | 0x40 | CLOSE, body,
                   close_body(body, 1000, ""), 1, 1002);
  cases[n++] = one("unmasked close", FIN | CLOSE, body,
                   close_body(body, 1000, ""), 0, 1002);
  cases[n++] = one("continuation first", FIN | CONT, S("hi"), 1, 1002);
  /* RFC 6455 5.5: control frames are not fragmented, <= 125 bytes. */
  cases[n++] = one("fragmented ping", PING, S("hi"), 1, 1002);
  cases[n++] = one("fragmented close", CLOSE, "", 0, 1, 1002);
  {
    static uint8_t big[126];
    cases[n++] = one("ping of 126 bytes", FIN | PING, big, 126, 1, 1002);
  }
  /* RFC 6455 5.5.1: a close body is empty or starts with a 2-byte code. */
  cases[n++] = one("close with 1-byte body", FIN | CLOSE, S("\x03"), 1, 1002);
  /* RFC 6455 7.4: codes an endpoint must not send, or unassigned. */
  cases[n++] = one("close 1005", FIN | CLOSE, body,
                   close_body(body, 1005, ""), 1, 1002);
  cases[n++] = one("close 999", FIN | CLOSE, body,
                   close_body(body, 999, ""), 1, 1002);
  cases[n++] = one("close 5000", FIN | CLOSE, body,
                   close_body(body, 5000, ""), 1, 1002);
  cases[n++] = one("close reason not UTF-8", FIN | CLOSE, body,
                   close_body(body, 1000, "\xc3\x28"), 1, 1007);
  /* RFC 6455 5.2: the minimal number of bytes for the length, and the
   * most significant bit of a 64-bit length is 0. */
  cases[n++] = raw("16-bit length of 5", S("\x81\xfe\x00\x05" "abcd" "12345"),
                   1002);
  cases[n++] = raw("64-bit length of 200",
                   S("\x81\xff\x00\x00\x00\x00\x00\x00\x00\xc8" "abcd" "1"),
                   1002);
  cases[n++] = raw("64-bit length, top bit",
                   S("\x81\xff\x80\x00\x00\x00\x00\x01\x00\x00" "abcd" "1"),
                   1002);
  {
    /* A new message inside a fragmented one. */
    bad_t b = one("text inside a fragmented text", TEXT, S("a"), 1, 1002);
    b.len += frame(b.bytes + b.len, FIN | TEXT, S("b"));
    cases[n++] = b;
  }
  for (size_t i = 0; i < n; i++) expect_failure(&cases[i], 1024);
}

/* The frames before a violation are still read and answered, in order:
 * the pong must not be lost behind the close, whether wslay or ws.c finds
 * the violation. */
static void test_frames_before_violation(void) {
  static const uint8_t bad_headers[][2] = {
      {FIN | CONT, 0x80}, /* continuation without a message: wslay's check */
      {PING, 0x80},       /* fragmented ping: checked in ws.c */
  };
  for (size_t k = 0; k < 2; k++) {
    for (int bytewise = 0; bytewise < 2; bytewise++) {
      peer_t p;
      uint8_t buf[64];
      if (!peer_open(&p, 1024)) return;
      size_t n = frame(buf, FIN | PING, S("p1"));
      n += frame(buf + n, FIN | TEXT, S("ok"));
      buf[n++] = bad_headers[k][0];
      buf[n++] = bad_headers[k][1];
      memcpy(buf + n, mask_key, 4);
      n += 4;
      nc_ws_state_t st = NC_WS_OPEN;
      if (bytewise)
        for (size_t i = 0; i < n; i++) st = feed(&p, buf + i, 1);
      else
        st = feed(&p, buf, n);
      CHECK_INT(st, NC_WS_CLOSED);
      CHECK_INT(p.messages, 1);
      CHECK_STR(p.last, "ok");
      sframe_t f[4];
      int nf = parse_frames(p.out, p.out_len, f, 4);
      CHECK_INT(nf, 2);
      if (nf == 2) {
        CHECK(f[0].opcode == PONG && f[0].len == 2);
        CHECK(f[1].opcode == CLOSE && f[1].len == 2 &&
              (f[1].data[0] << 8 | f[1].data[1]) == 1002);
      }
      peer_close(&p);
    }
  }
}

static void test_message_too_big(void) {
  static uint8_t big[40];
  memset(big, 'a', sizeof(big));
  /* At the limit: fine, whole or in fragments. */
  {
    peer_t p;
    uint8_t buf[128];
    if (!peer_open(&p, 16)) return;
    size_t n = frame(buf, FIN | TEXT, big, 16);
    n += frame(buf + n, TEXT, big, 8);
    n += frame(buf + n, FIN | PING, S("ping is not counted"));
    n += frame(buf + n, FIN | CONT, big, 8);
    CHECK_INT(feed(&p, buf, n), NC_WS_OPEN);
    CHECK_INT(p.messages, 2);
    CHECK_INT(p.last_len, 16);
    peer_close(&p);
  }
  bad_t cases[4];
  size_t n = 0;
  cases[n++] = one("17 bytes in one frame", FIN | TEXT, big, 17, 1, 1009);
  {
    /* Each fragment is within the limit; together they are not. wslay,
     * without buffering, only compares single frames. */
    bad_t b = one("10 + 7 bytes", TEXT, big, 10, 1, 1009);
    b.len += frame(b.bytes + b.len, FIN | CONT, big, 7);
    cases[n++] = b;
    b = one("9 empty + 8 + 9", TEXT, "", 0, 1, 1009);
    b.len += frame(b.bytes + b.len, CONT, big, 8);
    b.len += frame(b.bytes + b.len, FIN | CONT, big, 9);
    cases[n++] = b;
  }
  /* Refused on the header and the first payload byte, long before the
   * megabyte announced has arrived. */
  cases[n++] = raw("1 MiB announced",
                   S("\x81\xff\x00\x00\x00\x00\x00\x10\x00\x00" "abcd" "x"),
                   1009);
  for (size_t i = 0; i < n; i++) expect_failure(&cases[i], 16);
}

static void test_invalid_utf8(void) {
  bad_t cases[12];
  size_t n = 0;
  cases[n++] = one("C3 28", FIN | TEXT, S("\xc3\x28"), 1, 1007);
  cases[n++] = one("lone continuation", FIN | TEXT, S("a\x80"), 1, 1007);
  cases[n++] = one("overlong '/'", FIN | TEXT, S("\xc0\xaf"), 1, 1007);
  cases[n++] = one("overlong 3-byte", FIN | TEXT, S("\xe0\x80\xaf"), 1, 1007);
  cases[n++] = one("overlong NUL", FIN | TEXT, S("\xc0\x80"), 1, 1007);
  cases[n++] = one("surrogate", FIN | TEXT, S("\xed\xa0\x80"), 1, 1007);
  cases[n++] = one("past U+10FFFF", FIN | TEXT, S("\xf4\x90\x80\x80"), 1,
                   1007);
  cases[n++] = one("FF", FIN | TEXT, S("\xff"), 1, 1007);
  cases[n++] = one("truncated at the end", FIN | TEXT, S("abc\xc3"), 1, 1007);
  {
    bad_t b = one("split, second half wrong", TEXT, S("\xc3"), 1, 1007);
    b.len += frame(b.bytes + b.len, FIN | CONT, S("\x28"));
    cases[n++] = b;
    b = one("truncated, then an empty last fragment", TEXT, S("\xe2\x82"), 1,
            1007);
    b.len += frame(b.bytes + b.len, FIN | CONT, "", 0);
    cases[n++] = b;
  }
  for (size_t i = 0; i < n; i++) expect_failure(&cases[i], 1024);
}

static void test_binary_refused(void) {
  bad_t cases[3];
  size_t n = 0;
  cases[n++] = one("binary", FIN | BIN, S("\x00\x01"), 1, 1003);
  cases[n++] = one("empty binary", FIN | BIN, "", 0, 1, 1003);
  cases[n++] = one("first fragment of binary", BIN, S("ab"), 1, 1003);
  for (size_t i = 0; i < n; i++) expect_failure(&cases[i], 1024);

  /* A text message before it is still delivered. */
  peer_t p;
  uint8_t buf[64];
  if (!peer_open(&p, 1024)) return;
  size_t k = frame(buf, FIN | TEXT, S("first"));
  k += frame(buf + k, FIN | BIN, S("bin"));
  k += frame(buf + k, FIN | TEXT, S("after"));
  CHECK_INT(feed(&p, buf, k), NC_WS_CLOSED);
  CHECK_INT(p.messages, 1);
  CHECK_STR(p.last, "first");
  CHECK(output_is_close(&p, 1003, ""));
  peer_close(&p);
}

static void test_peer_close(void) {
  peer_t p;
  uint8_t buf[128], body[64];
  if (!peer_open(&p, 1024)) return;
  size_t n = frame(buf, FIN | TEXT, S("before"));
  n += frame(buf + n, FIN | CLOSE, body, close_body(body, 1000, "done"));
  n += frame(buf + n, FIN | TEXT, S("after"));
  CHECK_INT(feed(&p, buf, n), NC_WS_CLOSED);
  /* RFC 6455 5.5.1: the answer echoes the code (not the reason); what
   * followed the close is ignored. */
  CHECK(output_is_close(&p, 1000, ""));
  CHECK_INT(p.messages, 1);
  CHECK_STR(p.last, "before");
  CHECK_INT(nc_ws_close_code(p.ws), 1000);
  peer_clear_output(&p);
  CHECK_INT(feed(&p, buf, n), NC_WS_CLOSED);
  CHECK_INT(p.messages, 1);
  CHECK_INT(nc_ws_send_text(p.ws, S("late")), -1);
  nc_ws_close(p.ws, 1001, "bye"); /* the close was already answered */
  CHECK_INT(p.outputs, 0);
  CHECK_INT(nc_ws_state(p.ws), NC_WS_CLOSED);
  CHECK_INT(nc_ws_close_code(p.ws), 1000);
  peer_close(&p);

  /* Another code is echoed as it came. */
  if (!peer_open(&p, 1024)) return;
  n = frame(buf, FIN | CLOSE, body, close_body(body, 4001, ""));
  CHECK_INT(feed(&p, buf, n), NC_WS_CLOSED);
  CHECK(output_is_close(&p, 4001, ""));
  CHECK_INT(nc_ws_close_code(p.ws), 4001);
  peer_close(&p);

  /* A close without a body: answered without one, code 1005 (RFC 6455
   * 7.1.5). */
  if (!peer_open(&p, 1024)) return;
  n = frame(buf, FIN | CLOSE, "", 0);
  CHECK_INT(feed(&p, buf, n), NC_WS_CLOSED);
  sframe_t f[2];
  CHECK_INT(parse_frames(p.out, p.out_len, f, 2), 1);
  CHECK(f[0].opcode == CLOSE && f[0].len == 0);
  CHECK_INT(nc_ws_close_code(p.ws), 1005);
  peer_close(&p);
}

static void test_our_close(void) {
  peer_t p;
  uint8_t buf[128], body[64];
  if (!peer_open(&p, 1024)) return;
  nc_ws_close(p.ws, 1001, "bye");
  CHECK(output_is_close(&p, 1001, "bye"));
  CHECK_INT(nc_ws_state(p.ws), NC_WS_CLOSING);
  CHECK_INT(nc_ws_close_code(p.ws), 1001);
  peer_clear_output(&p);
  /* Idempotent, and no data after our close (RFC 6455 5.5.1). */
  nc_ws_close(p.ws, 1000, "again");
  CHECK_INT(p.outputs, 0);
  CHECK_INT(nc_ws_send_text(p.ws, S("late")), -1);
  CHECK_INT(p.outputs, 0);
  CHECK_INT(nc_ws_state(p.ws), NC_WS_CLOSING);
  /* The peer's close completes the handshake; it is not answered again,
   * and the code is still ours. */
  size_t n = frame(buf, FIN | CLOSE, body, close_body(body, 1000, ""));
  CHECK_INT(feed(&p, buf, n), NC_WS_CLOSED);
  CHECK_INT(p.outputs, 0);
  CHECK_INT(nc_ws_close_code(p.ws), 1001);
  peer_close(&p);

  /* The peer's close may come one byte at a time. */
  if (!peer_open(&p, 1024)) return;
  nc_ws_close(p.ws, 1000, NULL);
  CHECK(output_is_close(&p, 1000, ""));
  n = frame(buf, FIN | CLOSE, body, close_body(body, 1000, ""));
  for (size_t i = 0; i + 1 < n; i++)
    CHECK_INT(feed(&p, buf + i, 1), NC_WS_CLOSING);
  CHECK_INT(feed(&p, buf + n - 1, 1), NC_WS_CLOSED);
  peer_close(&p);
}

static void test_close_reason_truncated(void) {
  char reason[200];
  peer_t p;
  sframe_t f[2];
  /* ASCII: cut at 123 bytes, so the body is the 125 a control frame
   * allows. */
  memset(reason, 'r', sizeof(reason) - 1);
  reason[sizeof(reason) - 1] = '\0';
  if (!peer_open(&p, 1024)) return;
  nc_ws_close(p.ws, 1000, reason);
  CHECK_INT(parse_frames(p.out, p.out_len, f, 2), 1);
  CHECK_INT(f[0].len, 125);
  CHECK_INT(nc_ws_state(p.ws), NC_WS_CLOSING);
  peer_close(&p);
  /* "é" at bytes 122-123 would be cut in half: it goes whole. */
  memset(reason, 'r', 122);
  strcpy(reason + 122, "\xc3\xa9" "tail");
  if (!peer_open(&p, 1024)) return;
  nc_ws_close(p.ws, 1000, reason);
  CHECK_INT(parse_frames(p.out, p.out_len, f, 2), 1);
  CHECK_INT(f[0].len, 2 + 122);
  peer_close(&p);
  /* A 4-byte character at bytes 121-124. */
  memset(reason, 'r', 121);
  strcpy(reason + 121, "\xf0\x9f\x98\x80" "tail");
  if (!peer_open(&p, 1024)) return;
  nc_ws_close(p.ws, 1000, reason);
  CHECK_INT(parse_frames(p.out, p.out_len, f, 2), 1);
  CHECK_INT(f[0].len, 2 + 121);
  peer_close(&p);
  /* Exactly 123 bytes ending in a whole character: kept as is. */
  memset(reason, 'r', 121);
  strcpy(reason + 121, "\xc3\xa9");
  if (!peer_open(&p, 1024)) return;
  nc_ws_close(p.ws, 1000, reason);
  CHECK_INT(parse_frames(p.out, p.out_len, f, 2), 1);
  CHECK_INT(f[0].len, 125);
  peer_close(&p);
}

static void test_output_failure(void) {
  peer_t p;
  uint8_t buf[64];
  /* On sending a message. */
  if (!peer_open(&p, 1024)) return;
  p.fail_output = 1;
  CHECK_INT(nc_ws_send_text(p.ws, S("hi")), -1);
  CHECK_INT(nc_ws_state(p.ws), NC_WS_CLOSED);
  CHECK_INT(nc_ws_close_code(p.ws), 1006);
  /* Failed means finished: nothing read, nothing more written. */
  int calls = p.outputs;
  size_t n = frame(buf, FIN | TEXT, S("hello"));
  n += frame(buf + n, FIN | PING, S("p"));
  CHECK_INT(feed(&p, buf, n), NC_WS_CLOSED);
  CHECK_INT(p.messages, 0);
  nc_ws_close(p.ws, 1000, "bye");
  CHECK_INT(nc_ws_send_text(p.ws, S("hi")), -1);
  CHECK_INT(p.outputs, calls);
  CHECK_INT(nc_ws_close_code(p.ws), 1006);
  peer_close(&p);

  /* On answering a ping: what follows in the same read is not read. */
  if (!peer_open(&p, 1024)) return;
  p.fail_output = 1;
  n = frame(buf, FIN | PING, S("p"));
  n += frame(buf + n, FIN | TEXT, S("hello"));
  CHECK_INT(feed(&p, buf, n), NC_WS_CLOSED);
  CHECK_INT(p.messages, 0);
  CHECK_INT(nc_ws_close_code(p.ws), 1006);
  peer_close(&p);

  /* On our close frame: CLOSED, and no close frame was exchanged. */
  if (!peer_open(&p, 1024)) return;
  p.fail_output = 1;
  nc_ws_close(p.ws, 1001, "bye");
  CHECK_INT(nc_ws_state(p.ws), NC_WS_CLOSED);
  CHECK_INT(nc_ws_close_code(p.ws), 1006);
  peer_close(&p);

  /* From a reply inside the message callback: the feed ends there. */
  if (!peer_open(&p, 1024)) return;
  p.echo = 1;
  p.fail_output = 1;
  n = frame(buf, FIN | TEXT, S("one"));
  n += frame(buf + n, FIN | TEXT, S("two"));
  CHECK_INT(feed(&p, buf, n), NC_WS_CLOSED);
  CHECK_INT(p.echo_rc, -1);
  CHECK_INT(p.messages, 1);
  peer_close(&p);
}

/* ---- the same bytes, split anywhere ---- */

static uint64_t rng_state;

static uint32_t rng(void) {
  /* xorshift64*: fixed seeds, so a failure reproduces. */
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return (uint32_t)((rng_state * 0x2545f4914f6cdd1dull) >> 32);
}

typedef struct {
  uint8_t *data;
  size_t len, cap;
} stream_t;

static void put(stream_t *s, uint8_t b0, const void *pl, size_t len,
                int masked) {
  if (grow(&s->data, &s->cap, s->len + len + 14)) return;
  s->len += frame_ex(s->data + s->len, b0, pl, len, masked);
}

static void put_raw(stream_t *s, const void *bytes, size_t len) {
  if (grow(&s->data, &s->cap, s->len + len)) return;
  memcpy(s->data + s->len, bytes, len);
  s->len += len;
}

typedef struct {
  char *text; /* messages, output bytes, state and code; binary */
  size_t len;
  int state, code;
} transcript_t;

/* Everything observable: messages, output bytes, final state and code. */
static void run(transcript_t *t, const stream_t *s, size_t max,
                const size_t *cuts, size_t ncuts) {
  peer_t p;
  t->text = NULL;
  t->len = 0;
  t->state = t->code = -1;
  if (!peer_open(&p, max)) return;
  size_t off = 0;
  nc_ws_state_t st = NC_WS_OPEN;
  for (size_t i = 0; i <= ncuts; i++) {
    size_t end = i < ncuts ? cuts[i] : s->len;
    if (end < off) end = off;
    if (end > s->len) end = s->len;
    st = nc_ws_feed(p.ws, s->data + off, end - off);
    off = end;
  }
  size_t cap = 0;
  char tail[64];
  int tl = snprintf(tail, sizeof(tail), "|state=%d code=%d nul=%d", st,
                    nc_ws_close_code(p.ws), p.bad_nul);
  if (!grow(&t->text, &cap, p.log_len + p.out_len + (size_t)tl + 2)) {
    if (p.log_len) memcpy(t->text, p.log, p.log_len);
    t->text[p.log_len] = '|';
    if (p.out_len) memcpy(t->text + p.log_len + 1, p.out, p.out_len);
    memcpy(t->text + p.log_len + 1 + p.out_len, tail, (size_t)tl);
    t->len = p.log_len + 1 + p.out_len + (size_t)tl;
  }
  t->state = (int)st;
  t->code = nc_ws_close_code(p.ws);
  if (st != nc_ws_state(p.ws)) t->len = 0; /* feed lied about the state */
  sframe_t f[64];
  if (parse_frames(p.out, p.out_len, f, 64) < 0) t->len = 0;
  peer_close(&p);
}

static int same(const transcript_t *a, const transcript_t *b) {
  return a->len > 0 && a->len == b->len &&
         memcmp(a->text, b->text, a->len) == 0;
}

/* A stream touching every path: all three length forms, fragments with
 * control frames in between, UTF-8 split across fragments, then `ending`. */
static void build_stream(stream_t *s, int ending) {
  static char text[70000];
  for (size_t i = 0; i < sizeof(text); i++) text[i] = (char)('A' + i % 50);
  s->len = 0;
  put(s, FIN | TEXT, "", 0, 1);
  put(s, FIN | TEXT, text, 125, 1);
  put(s, FIN | PING, S("ping"), 1);
  put(s, FIN | TEXT, text, 126, 1);
  put(s, FIN | TEXT, text, 65535, 1);
  put(s, FIN | TEXT, text, 65536, 1);
  put(s, TEXT, S("frag\xc3"), 1);
  put(s, FIN | PING, "", 0, 1);
  put(s, CONT, S("\xa9 "), 1);
  put(s, FIN | PONG, S("unsolicited"), 1);
  put(s, CONT, "", 0, 1);
  put(s, FIN | CONT, text, 300, 1);
  put(s, FIN | TEXT, text, 70000, 1);
  uint8_t body[8];
  switch (ending) {
  case 0: put(s, FIN | CLOSE, body, close_body(body, 1000, "ok"), 1); break;
  case 1: put(s, PING, "", 0, 1); break;                  /* ours: 1002 */
  case 2: put_raw(s, S("\x81\xfe\x00\x7d" "abcd")); break; /* ours: 1002 */
  case 3: put_raw(s, S("\x81\xff\x00\x00\x00\x00\x00\x00\xff\xff" "abcd"));
    break;                                                 /* ours: 1002 */
  case 4: put(s, FIN | TEXT, S("abc"), 0); break;         /* wslay: 1002 */
  case 5: put(s, FIN | TEXT, S("\xed\xb0\x80"), 1); break; /* wslay: 1007 */
  case 6: put(s, FIN | BIN, S("b"), 1); break;            /* ours: 1003 */
  case 7: put(s, FIN | CLOSE, S("\x03"), 1); break;       /* ours: 1002 */
  default: break;                                         /* still open */
  }
  /* Never read: the session has stopped, or it is left open. */
  if (ending < 8) put(s, FIN | TEXT, S("after the end"), 1);
}

static void test_split_anywhere(void) {
  stream_t s = {NULL, 0, 0};
  static size_t cuts[200000];
  rng_state = 0x9e3779b97f4a7c15ull;
  for (int ending = 0; ending <= 8; ending++) {
    build_stream(&s, ending);
    if (!s.data) break;
    transcript_t whole, split;
    run(&whole, &s, 1 << 20, NULL, 0);
    CHECK(whole.len > 0);
    /* Each ending has its outcome. */
    static const int want[] = {1000, 1002, 1002, 1002, 1002,
                               1007, 1003, 1002, 1006};
    CHECK_INT(whole.state, ending < 8 ? NC_WS_CLOSED : NC_WS_OPEN);
    CHECK_INT(whole.code, want[ending]);
    /* Byte by byte. */
    size_t nc = 0;
    for (size_t i = 1; i < s.len && nc < sizeof(cuts) / sizeof(cuts[0]); i++)
      cuts[nc++] = i;
    run(&split, &s, 1 << 20, cuts, nc);
    CHECK(same(&whole, &split));
    if (!same(&whole, &split))
      fprintf(stderr, "  ending %d bytewise\n", ending);
    free(split.text);
    /* Random cuts, short and long pieces. */
    for (int r = 0; r < 40; r++) {
      size_t pos = 0;
      nc = 0;
      while (nc < 4000) {
        pos += 1 + rng() % (r % 2 ? 16 : 9000);
        if (pos >= s.len) break;
        cuts[nc++] = pos;
      }
      run(&split, &s, 1 << 20, cuts, nc);
      CHECK(same(&whole, &split));
      if (!same(&whole, &split))
        fprintf(stderr, "  ending %d, random split %d\n", ending, r);
      free(split.text);
    }
    free(whole.text);
  }
  free(s.data);
}

/* Random streams of plausible and broken frames: no crash, no leak (the
 * sanitizers judge), output always whole server frames, and the same
 * outcome however the bytes are split. */
static void test_garbage(void) {
  rng_state = 0x2545f4914f6cdd1dull;
  stream_t s = {NULL, 0, 0};
  static size_t cuts[4096];
  int bad = 0, closed = 0, open = 0;
  for (int iter = 0; iter < 3000; iter++) {
    s.len = 0;
    int frames = 1 + (int)(rng() % 8);
    for (int k = 0; k < frames; k++) {
      uint8_t pl[300];
      uint32_t kind = rng() % 100;
      if (kind < 45) {
        /* A text message in 1-3 fragments, pings in between, sometimes a
         * character cut by a fragment boundary. */
        int frags = 1 + (int)(rng() % 3);
        for (int f = 0; f < frags; f++) {
          size_t len = rng() % 4 == 0 ? rng() % 300 : rng() % 8;
          for (size_t i = 0; i < len; i++)
            pl[i] = (uint8_t)('a' + rng() % 26);
          if (len >= 2 && rng() % 3 == 0) {
            pl[len - 2] = 0xc3;
            pl[len - 1] = 0xa9;
          }
          if (f > 0 && rng() % 3 == 0) put(&s, FIN | PING, "x", 1, 1);
          uint8_t b0 = f == 0 ? TEXT : CONT;
          if (f == frags - 1) b0 |= FIN;
          put(&s, b0, pl, len, 1);
        }
      } else if (kind < 60) {
        put(&s, FIN | PING, pl, rng() % 126, 1);
      } else if (kind < 68) {
        put(&s, FIN | PONG, pl, rng() % 126, 1);
      } else if (kind < 70) {
        put(&s, FIN | CLOSE, pl, close_body(pl, 1000, "done"), 1);
      } else if (kind < 90) {
        /* A single frame, plausible or broken. */
        size_t len = rng() % 4 == 0 ? rng() % 300 : rng() % 8;
        for (size_t i = 0; i < len; i++)
          pl[i] = rng() % 8 ? (uint8_t)('a' + rng() % 26) : (uint8_t)rng();
        static const uint8_t ops[] = {TEXT, CONT, PING, PONG, CLOSE, BIN, 0x3,
                                      0xb};
        uint8_t b0 = ops[rng() % (rng() % 3 ? 5 : sizeof(ops))];
        if (rng() % 3) b0 |= FIN;
        if (rng() % 40 == 0) b0 |= (uint8_t)(0x10 << (rng() % 3));
        if ((b0 & 0x0f) == CLOSE && len >= 2 && rng() % 2) {
          pl[0] = 0x03;
          pl[1] = 0xe8;
        }
        put(&s, b0, pl, len, rng() % 50 != 0);
      } else {
        uint8_t junk[12];
        size_t jl = rng() % sizeof(junk);
        for (size_t i = 0; i < jl; i++) junk[i] = (uint8_t)rng();
        put_raw(&s, junk, jl);
      }
    }
    if (!s.data) break;
    size_t max = 20 + rng() % 600;
    transcript_t whole, split;
    run(&whole, &s, max, NULL, 0);
    size_t nc = 0, pos = 0;
    while (nc < sizeof(cuts) / sizeof(cuts[0])) {
      pos += 1 + rng() % (iter % 2 ? 3 : 40);
      if (pos >= s.len) break;
      cuts[nc++] = pos;
    }
    run(&split, &s, max, cuts, nc);
    if (!same(&whole, &split)) bad++;
    if (whole.state == NC_WS_CLOSED) closed++;
    if (whole.state == NC_WS_OPEN) open++;
    free(whole.text);
    free(split.text);
  }
  free(s.data);
  CHECK_INT(bad, 0);
  CHECK(closed > 1000); /* the corpus does reach the failures */
  CHECK(open > 500);    /* and the clean paths */
}

int main(void) {
  RUN(test_handshake_rfc_sample);
  RUN(test_handshake_accepted_variants);
  RUN(test_handshake_refusals);
  RUN(test_new_and_free);
  RUN(test_text_message);
  RUN(test_fragments_with_ping);
  RUN(test_one_byte_at_a_time);
  RUN(test_send_text);
  RUN(test_reply_from_callback);
  RUN(test_utf8_split_across_fragments);
  RUN(test_protocol_errors);
  RUN(test_frames_before_violation);
  RUN(test_message_too_big);
  RUN(test_invalid_utf8);
  RUN(test_binary_refused);
  RUN(test_peer_close);
  RUN(test_our_close);
  RUN(test_close_reason_truncated);
  RUN(test_output_failure);
  RUN(test_split_anywhere);
  RUN(test_garbage);
  return check_report();
}
