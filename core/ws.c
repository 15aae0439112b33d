/* WebSocket server side on top of wslay's event API, without I/O.
 *
 * This file owns the opening-handshake check (the accept value is hashed and
 * encoded by libcrypto), the wslay context of each session, the reassembly of
 * fragmented text messages and the choice of close code for each violation.
 * server.c owns the socket, writes what output() is handed, times out a
 * CLOSING session and closes TCP once a session is CLOSED; script.c decides
 * what a message means.
 *
 * Output is synchronous: nothing is ever left queued inside wslay. The send
 * callback hands every byte to output() and never reports EWOULDBLOCK, and
 * wslay_event_send() runs after every queue and every receive. Pongs and the
 * echo of the peer's close go out from inside the receive loop, as their
 * frames are read: wslay 1.1.1 sends a queued close before a pending pong and
 * then drops the pong, so deferring the flush would make the output depend
 * on how the bytes happened to be split into reads.
 *
 * What wslay 1.1.1 checks by itself, with the close code it sends (probed
 * against the installed library, not assumed from its documentation):
 *   unknown opcode, continuation without a message, new message inside a
 *   fragmented one, close code outside RFC 6455 7.4 -> 1002; invalid UTF-8
 *   in a text message (Hoehrmann's DFA: overlongs, surrogates and
 *   > U+10FFFF rejected, state kept across fragments and reads) -> 1007.
 * What it gets wrong, so each frame header is checked here before wslay
 * reads it (check_header):
 *   a fragmented control frame, a control frame over 125 bytes, a 64-bit
 *   length with the top bit set and a length not in its minimal encoding
 *   make wslay queue a close frame *without* a code (the peer sees 1005) and
 *   return an error; a close frame with a 1-byte body (RFC 6455 5.5.1: the
 *   body starts with a 2-byte code) is taken as a close without a code. All
 *   of these are 1002 here, as are reserved bits and unmasked frames (which
 *   wslay gets right) since a header is refused as a whole.
 *   wslay checks the UTF-8 of a close reason from byte 2 of every piece of
 *   payload it reads rather than of the payload, so the verdict depends on
 *   how reads split the frame (a valid reason can be refused, an invalid
 *   one let through). A close frame is therefore held here until complete
 *   (131 bytes at most), its reason checked (1007), and wslay is given the
 *   same close with its code only, which it checks and answers. The
 *   reason is not echoed.
 *   wslay's message limit applies to control frames too; it is never set
 *   below 125 so a ping or close is never "too big".
 * What wslay does not do: refuse binary messages (1003, on the first frame's
 * header) and limit a fragmented message as a whole (1009).
 *
 * wslay buffers messages in one allocation per frame, so a client sending a
 * message in 1-byte fragments would make it hold about 100 bytes per byte
 * sent. Buffering is therefore off: wslay hands over payload chunks and the
 * message is assembled here in one buffer, bounded by max_message_bytes and
 * freed as soon as the message is delivered. Control frames stay buffered
 * by wslay (125 bytes at most). */
#define _POSIX_C_SOURCE 200809L

#include "ws.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <wslay/wslay.h>

struct nc_ws {
  wslay_event_context_ptr ctx;
  nc_ws_options_t opts;
  uint64_t max;         /* max_message_bytes, 0 replaced by wslay's default */
  /* The part of the caller's buffer that recv_cb hands to wslay. */
  const uint8_t *in;
  size_t in_len;
  /* Frame boundaries, tracked so that each header is checked before wslay
   * sees it. */
  uint64_t skip;        /* bytes of the current frame after its header */
  /* The header being read, not yet given to wslay: 2 to 10 bytes, or a
   * whole close frame (header, mask key, 125 bytes of payload at most). */
  uint8_t hdr[2 + 4 + 125];
  uint8_t hdr_len;
  /* The text message being reassembled; NULL between messages. */
  char *msg;
  size_t msg_len, msg_cap;
  uint8_t frame_opcode; /* of the frame wslay is reading (0: continuation) */
  uint8_t failed;       /* output failed or wslay gave up: CLOSED */
  uint8_t initiated;    /* our close frame was queued before the peer's came */
};

/* ---- opening handshake ---- */

/* RFC 6455 1.3. */
static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

static int reject(const char **why, int status, const char *reason) {
  *why = reason;
  return status;
}

/* 1 when any `name` header is a comma-separated list holding `token`,
 * compared case-insensitively. RFC 9110 5.3: several lines of one field are
 * one list; 5.6.1: empty elements and whitespace around them are allowed. */
static int has_token(const nc_http_request_t *req, const char *name,
                     const char *token) {
  size_t tlen = strlen(token);
  for (size_t i = 0; i < req->header_count; i++) {
    if (strcasecmp(req->headers[i].name, name) != 0) continue;
    const char *p = req->headers[i].value;
    while (*p) {
      while (*p == ' ' || *p == '\t' || *p == ',') p++;
      const char *s = p;
      while (*p && *p != ',') p++;
      const char *e = p;
      while (e > s && (e[-1] == ' ' || e[-1] == '\t')) e--;
      if ((size_t)(e - s) == tlen && strncasecmp(s, token, tlen) == 0)
        return 1;
    }
  }
  return 0;
}

/* How many `name` headers there are; *value is the first one's. */
static size_t find_header(const nc_http_request_t *req, const char *name,
                          const char **value) {
  size_t n = 0;
  *value = NULL;
  for (size_t i = 0; i < req->header_count; i++) {
    if (strcasecmp(req->headers[i].name, name) != 0) continue;
    if (n++ == 0) *value = req->headers[i].value;
  }
  return n;
}

/* The number of bytes `s` decodes to, or -1 when it is not base64 (RFC 4648
 * 4, padded). EVP_DecodeBlock accepts '=' anywhere and anything after it,
 * and skips surrounding whitespace, so the padding is checked here and each
 * block must decode to exactly 3 bytes per 4 characters. It decodes in
 * blocks of 64 characters: a long header must not need a long buffer. */
static long base64_decoded_len(const char *s) {
  size_t n = strlen(s), pad = 0;
  if (n == 0 || n % 4 != 0) return -1;
  while (pad < 2 && s[n - 1 - pad] == '=') pad++;
  if (memchr(s, '=', n - pad)) return -1;
  for (size_t off = 0; off < n; off += 64) {
    unsigned char out[48];
    int chunk = (int)(n - off < 64 ? n - off : 64);
    if (EVP_DecodeBlock(out, (const unsigned char *)s + off, chunk) !=
        chunk / 4 * 3)
      return -1;
  }
  return (long)(n / 4 * 3 - pad);
}

/* RFC 6455 4.2.2 item 5.4: base64(SHA-1(key + GUID)). The key is the 24
 * characters of a base64-encoded 16-byte value, checked by the caller. */
static int make_accept(const char *key, char accept[29]) {
  unsigned char in[24 + sizeof(ws_guid) - 1];
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  memcpy(in, key, 24);
  memcpy(in + 24, ws_guid, sizeof(ws_guid) - 1);
  if (!EVP_Digest(in, sizeof(in), md, &md_len, EVP_sha1(), NULL) ||
      md_len != 20)
    return -1;
  /* 20 bytes encode to 28 characters; EVP_EncodeBlock adds the NUL. */
  if (EVP_EncodeBlock((unsigned char *)accept, md, 20) != 28) return -1;
  return 0;
}

int nc_ws_handshake_check(const nc_http_request_t *req, char accept[29],
                          const char **why) {
  const char *ignored;
  if (!why) why = &ignored;
  if (!req->method || strcmp(req->method, "GET") != 0)
    return reject(why, 400, "WebSocket handshake must be GET");
  if (req->http_major != 1 || req->http_minor < 1)
    return reject(why, 400, "WebSocket handshake needs HTTP/1.1");
  if (!has_token(req, "upgrade", "websocket"))
    return reject(why, 400, "Upgrade does not name websocket");
  if (!has_token(req, "connection", "upgrade"))
    return reject(why, 400, "Connection does not name upgrade");
  /* RFC 6455 4.4: the version is checked before the key, since a client of
   * another version may not send a key of this form at all, and 426 with
   * "Sec-WebSocket-Version: 13" is the answer that lets it retry. A repeated
   * header is not "exactly 13" either. */
  const char *version, *key;
  size_t n = find_header(req, "sec-websocket-version", &version);
  if (n == 0) return reject(why, 426, "missing Sec-WebSocket-Version");
  if (n > 1 || strcmp(version, "13") != 0)
    return reject(why, 426, "unsupported Sec-WebSocket-Version");
  n = find_header(req, "sec-websocket-key", &key);
  if (n == 0) return reject(why, 400, "missing Sec-WebSocket-Key");
  if (n > 1) return reject(why, 400, "more than one Sec-WebSocket-Key");
  long decoded = base64_decoded_len(key);
  if (decoded < 0) return reject(why, 400, "Sec-WebSocket-Key is not base64");
  if (decoded != 16)
    return reject(why, 400, "Sec-WebSocket-Key is not 16 bytes");
  if (make_accept(key, accept))
    return reject(why, 500, "cannot compute Sec-WebSocket-Accept");
  *why = "";
  return 0;
}

/* ---- session helpers ---- */

/* RFC 6455 5.5: opcodes 0x8-0xF. Not wslay_is_ctrl_frame(): that macro does
 * not parenthesize its argument, so it misreads an expression such as
 * `b & 0x0f`. */
static int is_control(unsigned opcode) { return (opcode & 0x08u) != 0; }

static int reading(const nc_ws_t *ws) {
  return !ws->failed && wslay_event_get_read_enabled(ws->ctx);
}

static void drop_message(nc_ws_t *ws) {
  free(ws->msg);
  ws->msg = NULL;
  ws->msg_len = ws->msg_cap = 0;
}

/* Hands wslay's queue to output() now. A failure is final: nothing more is
 * read or written, and when this runs from inside wslay_event_recv() (a
 * pong, or a reply from the message callback) its loop stops at the next
 * frame. */
static void flush(nc_ws_t *ws) {
  if (ws->failed) return;
  if (wslay_event_send(ws->ctx) != 0) {
    ws->failed = 1;
    wslay_event_shutdown_read(ws->ctx);
    wslay_event_shutdown_write(ws->ctx);
    drop_message(ws);
  }
}

/* Fails the connection (RFC 6455 7.1.7): a close frame with `code` and no
 * more reading. The caller flushes. If a close frame is already queued or
 * sent, that one stands. */
static void fail(nc_ws_t *ws, uint16_t code) {
  wslay_event_shutdown_read(ws->ctx);
  drop_message(ws);
  if (wslay_event_queue_close(ws->ctx, code, NULL, 0) == 0 &&
      !wslay_event_get_close_received(ws->ctx))
    ws->initiated = 1;
}

/* ---- wslay callbacks ---- */

/* Serves the bytes nc_ws_feed is pumping; when they are used up, tells wslay
 * to return rather than wait. */
static ssize_t recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len,
                       int flags, void *ud) {
  nc_ws_t *ws = ud;
  (void)flags;
  if (ws->in_len == 0) {
    wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
    return -1;
  }
  size_t n = len < ws->in_len ? len : ws->in_len;
  memcpy(buf, ws->in, n);
  ws->in += n;
  ws->in_len -= n;
  return (ssize_t)n; /* n <= len, which wslay keeps to its 4 KiB buffer */
}

static ssize_t send_cb(wslay_event_context_ptr ctx, const uint8_t *data,
                       size_t len, int flags, void *ud) {
  nc_ws_t *ws = ud;
  (void)flags;
  /* wslay_event_send() then fails, and flush() ends the session. */
  if (ws->opts.output(ws->opts.ud, data, len) != 0) {
    wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
    return -1;
  }
  return (ssize_t)len;
}

/* Called once per frame, after wslay has checked its place in the message
 * sequence and before any of its payload. */
static void frame_start_cb(
    wslay_event_context_ptr ctx,
    const struct wslay_event_on_frame_recv_start_arg *arg, void *ud) {
  nc_ws_t *ws = ud;
  (void)ctx;
  ws->frame_opcode = arg->opcode;
  if (is_control(arg->opcode) || !reading(ws)) return;
  /* RFC 6455 7.4.1: 1003 for a type of data the endpoint cannot accept;
   * refused on the first frame, before any of it is buffered. */
  if (arg->opcode == WSLAY_BINARY_FRAME) {
    fail(ws, WSLAY_CODE_UNSUPPORTED_DATA);
    return;
  }
  if (arg->payload_length > ws->max - ws->msg_len) {
    fail(ws, WSLAY_CODE_MESSAGE_TOO_BIG);
    return;
  }
  if (arg->payload_length == 0) return;
  /* Room for the whole frame and the NUL; it fits in size_t since max
   * does. Growth is geometric so that many small fragments cost few
   * reallocations, but never past what the limit allows. */
  size_t need = ws->msg_len + (size_t)arg->payload_length + 1;
  if (need > ws->msg_cap) {
    size_t cap = ws->msg_cap * 2;
    if (cap < need) cap = need;
    if (cap > ws->max + 1) cap = (size_t)ws->max + 1;
    char *m = realloc(ws->msg, cap);
    if (!m) {
      fail(ws, WSLAY_CODE_INTERNAL_SERVER_ERROR);
      return;
    }
    ws->msg = m;
    ws->msg_cap = cap;
  }
}

static void frame_chunk_cb(
    wslay_event_context_ptr ctx,
    const struct wslay_event_on_frame_recv_chunk_arg *arg, void *ud) {
  nc_ws_t *ws = ud;
  (void)ctx;
  /* Control frames are buffered by wslay; after fail() the rest of the
   * frame being read is dropped. */
  if (is_control(ws->frame_opcode) || !reading(ws) ||
      arg->data_length == 0)
    return;
  /* frame_start_cb reserved the frame's length; wslay never hands more. */
  if (arg->data_length >= ws->msg_cap - ws->msg_len) {
    fail(ws, WSLAY_CODE_INTERNAL_SERVER_ERROR);
    return;
  }
  memcpy(ws->msg + ws->msg_len, arg->data, arg->data_length);
  ws->msg_len += arg->data_length;
}

static void msg_recv_cb(wslay_event_context_ptr ctx,
                        const struct wslay_event_on_msg_recv_arg *arg,
                        void *ud) {
  nc_ws_t *ws = ud;
  (void)ctx;
  /* wslay has just queued the pong or the close echo. */
  if (arg->opcode == WSLAY_PING || arg->opcode == WSLAY_CONNECTION_CLOSE) {
    flush(ws);
    return;
  }
  if (arg->opcode != WSLAY_TEXT_FRAME || !reading(ws)) return;
  /* The buffer leaves the session before the callback runs, so whatever the
   * callback does to the session cannot touch it. */
  char *text = ws->msg;
  size_t len = ws->msg_len;
  ws->msg = NULL;
  ws->msg_len = ws->msg_cap = 0;
  if (text) text[len] = '\0';
  ws->opts.message(ws->opts.ud, text ? text : "", len);
  free(text);
}

/* ---- frame headers ---- */

/* RFC 3629 4: UTF-8 without overlongs, surrogates or code points past
 * U+10FFFF. Only close reasons come here; wslay checks text messages. */
static int utf8_valid(const uint8_t *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    unsigned c = s[i];
    size_t len;
    uint32_t cp, min;
    if (c < 0x80) {
      i++;
      continue;
    } else if (c >= 0xc2 && c <= 0xdf) {
      len = 2, cp = c & 0x1fu, min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
      len = 3, cp = c & 0x0fu, min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
      len = 4, cp = c & 0x07u, min = 0x10000;
    } else {
      return 0;
    }
    if (n - i < len) return 0;
    for (size_t k = 1; k < len; k++) {
      if ((s[i + k] & 0xc0u) != 0x80u) return 0;
      cp = cp << 6 | (s[i + k] & 0x3fu);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
      return 0;
    i += len;
  }
  return 1;
}

/* How many bytes check_header needs, given the first `have`. The mask key
 * of other frames is not needed, so it flows to wslay as payload does. */
static size_t header_size(const uint8_t *hdr, size_t have) {
  if (have < 2) return 2;
  unsigned opcode = hdr[0] & 0x0fu, len7 = hdr[1] & 0x7fu;
  if (is_control(opcode)) {
    /* A close frame that can be valid is held whole; any other control
     * frame's header says all that is needed. */
    if (opcode == WSLAY_CONNECTION_CLOSE && hdr[0] == (0x80u | opcode) &&
        (hdr[1] & 0x80u) && len7 <= 125 && len7 != 1)
      return 6 + len7;
    return 2;
  }
  return len7 == 126 ? 4 : len7 == 127 ? 10 : 2;
}

/* 0 and the bytes that follow the header (mask key and payload) in *skip,
 * or the close code for a violation. A close frame comes whole, so its
 * *skip is 0. */
static int check_header(const uint8_t *hdr, uint64_t *skip) {
  unsigned fin = hdr[0] >> 7, rsv = (hdr[0] >> 4) & 7u;
  unsigned opcode = hdr[0] & 0x0fu, masked = hdr[1] >> 7;
  unsigned len7 = hdr[1] & 0x7fu;
  uint64_t len = len7;
  /* RFC 6455 5.2: no extension was negotiated, so no RSV bit; 5.1: a
   * client masks every frame. */
  if (rsv || !masked) return WSLAY_CODE_PROTOCOL_ERROR;
  if (is_control(opcode)) {
    /* RFC 6455 5.5: control frames are never fragmented and carry at most
     * 125 bytes; 5.5.1: a close body starts with a 2-byte code. */
    if (!fin || len7 > 125 || (opcode == WSLAY_CONNECTION_CLOSE && len7 == 1))
      return WSLAY_CODE_PROTOCOL_ERROR;
    if (opcode == WSLAY_CONNECTION_CLOSE) {
      uint8_t reason[123];
      for (unsigned i = 2; i < len7; i++)
        reason[i - 2] = hdr[6 + i] ^ hdr[2 + i % 4];
      if (len7 > 2 && !utf8_valid(reason, len7 - 2))
        return WSLAY_CODE_INVALID_FRAME_PAYLOAD_DATA;
      *skip = 0;
      return 0;
    }
  } else if (len7 == 126) {
    len = (uint64_t)hdr[2] << 8 | hdr[3];
    if (len < 126) return WSLAY_CODE_PROTOCOL_ERROR; /* RFC 6455 5.2 */
  } else if (len7 == 127) {
    len = 0;
    for (int i = 2; i < 10; i++) len = len << 8 | hdr[i];
    /* RFC 6455 5.2: the most significant bit MUST be 0, and the length is
     * in the minimal number of bytes. */
    if (len >> 63 || len < 65536) return WSLAY_CODE_PROTOCOL_ERROR;
  }
  *skip = len + 4;
  return 0;
}

/* The close frame in hdr, as wslay is given it: the code only, masked with
 * a zero key so the payload reads as is. */
static size_t close_for_wslay(const uint8_t *hdr, uint8_t out[8]) {
  unsigned len7 = hdr[1] & 0x7fu;
  out[0] = hdr[0];
  out[1] = 0x80u | (len7 ? 2 : 0);
  memset(out + 2, 0, 4);
  if (!len7) return 6;
  out[6] = hdr[6] ^ hdr[2];
  out[7] = hdr[7] ^ hdr[3];
  return 8;
}

/* Lets wslay read `n` bytes whose frame headers have been checked. Returns
 * 1 when the session stopped reading (the rest of the input is ignored). */
static int pump(nc_ws_t *ws, const uint8_t *p, size_t n) {
  if (n > 0 && reading(ws)) {
    ws->in = p;
    ws->in_len = n;
    int r = wslay_event_recv(ws->ctx);
    ws->in = NULL;
    ws->in_len = 0;
    /* Only out of memory gets here: the receive callback never fails and
     * the headers wslay would refuse without a code were caught before. */
    if (r != 0 && !ws->failed) fail(ws, WSLAY_CODE_INTERNAL_SERVER_ERROR);
    flush(ws);
  }
  return !reading(ws);
}

/* ---- public API ---- */

nc_ws_t *nc_ws_new(const nc_ws_options_t *opts) {
  static const struct wslay_event_callbacks callbacks = {
      .recv_callback = recv_cb,
      .send_callback = send_cb,
      .on_frame_recv_start_callback = frame_start_cb,
      .on_frame_recv_chunk_callback = frame_chunk_cb,
      .on_msg_recv_callback = msg_recv_cb,
  };
  nc_ws_t *ws = calloc(1, sizeof(*ws));
  if (!ws) return NULL;
  ws->opts = *opts;
  /* wslay's own default; a limit near SIZE_MAX would overflow the
   * reassembly size on a 32-bit build. */
  ws->max = opts->max_message_bytes ? opts->max_message_bytes
                                    : (1u << 31) - 1;
  if (ws->max > SIZE_MAX - 1) ws->max = SIZE_MAX - 1;
  if (wslay_event_context_server_init(&ws->ctx, &callbacks, ws) != 0) {
    free(ws);
    return NULL;
  }
  wslay_event_config_set_no_buffering(ws->ctx, 1);
  /* Without buffering wslay compares each frame with this, which refuses
   * a single oversized frame before it starts; frame_start_cb sums them.
   * wslay counts control frames against it too, which must never fail. */
  wslay_event_config_set_max_recv_msg_length(ws->ctx,
                                             ws->max < 125 ? 125 : ws->max);
  return ws;
}

void nc_ws_free(nc_ws_t *ws) {
  if (!ws) return;
  wslay_event_context_free(ws->ctx);
  free(ws->msg);
  free(ws);
}

nc_ws_state_t nc_ws_feed(nc_ws_t *ws, const uint8_t *data, size_t len) {
  /* data[start, i) is checked and not yet given to wslay. A header is given
   * to wslay only once check_header has passed it; one that began in an
   * earlier feed is held in ws->hdr (its first `held` bytes). A close frame
   * is never given as it came, but as close_for_wslay() rewrites it. */
  size_t start = 0, i = 0, hdr_start = 0;
  size_t held = ws->hdr_len;
  if (!reading(ws)) return nc_ws_state(ws);
  while (i < len) {
    if (ws->skip > 0) {
      size_t n = len - i;
      if (ws->skip < n) n = (size_t)ws->skip;
      i += n;
      ws->skip -= n;
      continue;
    }
    if (ws->hdr_len == 0) {
      hdr_start = i;
      held = 0;
    }
    ws->hdr[ws->hdr_len++] = data[i++];
    if (ws->hdr_len < header_size(ws->hdr, ws->hdr_len)) continue;
    uint64_t skip = 0;
    int bad = check_header(ws->hdr, &skip);
    ws->hdr_len = 0;
    if (bad) {
      /* The frames before this one are still read and answered. */
      if (!pump(ws, data + start, hdr_start - start)) {
        fail(ws, (uint16_t)bad);
        flush(ws);
      }
      return nc_ws_state(ws);
    }
    if ((ws->hdr[0] & 0x0fu) == WSLAY_CONNECTION_CLOSE) {
      uint8_t frame[8];
      size_t n = close_for_wslay(ws->hdr, frame);
      if (!pump(ws, data + start, hdr_start - start)) pump(ws, frame, n);
      /* wslay stops reading after a close: the rest is ignored. */
      if (!reading(ws)) return nc_ws_state(ws);
      start = i;
      held = 0;
      continue;
    }
    if (held > 0) {
      if (pump(ws, ws->hdr, held)) return nc_ws_state(ws);
      held = 0;
    }
    ws->skip = skip;
  }
  /* A header still incomplete waits in ws->hdr for the next feed. */
  pump(ws, data + start, (ws->hdr_len > 0 ? hdr_start : len) - start);
  return nc_ws_state(ws);
}

int nc_ws_send_text(nc_ws_t *ws, const char *text, size_t len) {
  if (nc_ws_state(ws) != NC_WS_OPEN) return -1;
  struct wslay_event_msg m = {WSLAY_TEXT_FRAME, (const uint8_t *)text, len};
  if (wslay_event_queue_msg(ws->ctx, &m) != 0) return -1;
  flush(ws);
  return ws->failed ? -1 : 0;
}

void nc_ws_close(nc_ws_t *ws, uint16_t code, const char *reason) {
  if (ws->failed) return;
  if (!reason) reason = "";
  /* RFC 6455 5.5: a control frame body is at most 125 bytes, 2 of them the
   * code; 5.5.1: the reason is UTF-8, so no character is cut in half. */
  size_t n = strlen(reason);
  if (n > 123) {
    n = 123;
    while (n > 0 && ((unsigned char)reason[n] & 0xc0u) == 0x80u) n--;
  }
  /* Fails once a close frame is queued: that is what makes this
   * idempotent. */
  if (wslay_event_queue_close(ws->ctx, code, (const uint8_t *)reason, n) != 0)
    return;
  if (!wslay_event_get_close_received(ws->ctx)) ws->initiated = 1;
  flush(ws);
}

nc_ws_state_t nc_ws_state(const nc_ws_t *ws) {
  if (ws->failed) return NC_WS_CLOSED;
  if (!wslay_event_get_close_sent(ws->ctx))
    return wslay_event_get_read_enabled(ws->ctx) ? NC_WS_OPEN : NC_WS_CLOSED;
  /* After a violation reading has stopped: the peer's close would not be
   * read, so there is nothing to wait for. */
  if (wslay_event_get_close_received(ws->ctx) ||
      !wslay_event_get_read_enabled(ws->ctx))
    return NC_WS_CLOSED;
  return NC_WS_CLOSING;
}

int nc_ws_close_code(const nc_ws_t *ws) {
  /* wslay reports 1006 for a close frame not received or not sent. */
  if (!ws->initiated && wslay_event_get_close_received(ws->ctx))
    return wslay_event_get_status_code_received(ws->ctx);
  return wslay_event_get_status_code_sent(ws->ctx);
}
