/* WebSocket (RFC 6455) server side, without I/O.
 *
 * Two parts: the check of an opening handshake that http.c has parsed, and
 * one session per upgraded connection that turns bytes read from the socket
 * into text messages and answers (pong, close) to write back. server.c owns
 * the socket, the timers and the decision to close TCP; the session only says
 * what to write and what state the WebSocket is in. Built on wslay. */
#ifndef NC_WS_H
#define NC_WS_H

#include <stddef.h>
#include <stdint.h>

#include "http.h"

/* Checks that req is a valid opening handshake (RFC 6455 4.2.1): method GET,
 * HTTP/1.1 (or higher minor), Upgrade header containing the token "websocket"
 * (case-insensitive, comma-separated list), Connection header containing the
 * token "upgrade" (case-insensitive, comma-separated list, e.g. "keep-alive,
 * Upgrade"), Sec-WebSocket-Version exactly 13, Sec-WebSocket-Key whose value
 * is base64 decoding to exactly 16 bytes. Repeated Upgrade or Connection
 * lines count as one list (RFC 9110 5.3); a repeated Sec-WebSocket-Key or
 * Sec-WebSocket-Version is refused (RFC 6455 11.3.1, 11.3.5).
 *
 * On success returns 0 and writes the Sec-WebSocket-Accept value
 * (base64(SHA-1(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")), 28 chars +
 * NUL) into accept. Otherwise returns the HTTP status to answer: 426 when
 * Sec-WebSocket-Version is missing or not 13 (caller sends
 * "Sec-WebSocket-Version: 13"), 400 for everything else the client got wrong,
 * 500 if libcrypto fails to hash; *why is set to a static one-line reason for
 * the log and the body ("missing Sec-WebSocket-Key", ...). accept is written
 * only on success. */
int nc_ws_handshake_check(const nc_http_request_t *req, char accept[29],
                          const char **why);

typedef struct nc_ws nc_ws_t;

typedef struct {
  /* Bytes to write to the socket, in order. Called synchronously from inside
   * nc_ws_feed, nc_ws_send_text and nc_ws_close (never later). Return 0, or
   * -1 if they could not be queued: the session is then failed (state
   * CLOSED). data is valid only during the call. Must not call back into
   * this session. */
  int (*output)(void *ud, const uint8_t *data, size_t len);
  /* A complete text message: reassembled from fragments, valid UTF-8,
   * NUL-terminated at text[len]; valid only during the call. Called
   * synchronously from nc_ws_feed. It may call nc_ws_send_text and
   * nc_ws_close on this session (their output goes out at once), but not
   * nc_ws_feed or nc_ws_free. */
  void (*message)(void *ud, const char *text, size_t len);
  void *ud;
  /* A message (all fragments) larger: close 1009. 0 means wslay's default
   * of 2^31 - 1 bytes. */
  size_t max_message_bytes;
} nc_ws_options_t;

typedef enum {
  NC_WS_OPEN = 0,
  NC_WS_CLOSING, /* we sent a close frame and wait for the peer's (caller
                    times this out) */
  NC_WS_CLOSED   /* close frames exchanged, or a fatal error: caller closes
                    TCP once output is written */
} nc_ws_state_t;

/* A session in state OPEN; opts is copied. NULL when out of memory. An idle
 * session costs about 9 KiB, nearly all of it wslay's two 4 KiB frame
 * buffers; a message being received costs its size on top, until it is
 * delivered. */
nc_ws_t *nc_ws_new(const nc_ws_options_t *opts);
void nc_ws_free(nc_ws_t *ws); /* NULL is fine */

/* Processes bytes read from the socket: answers ping with pong, reassembles
 * fragmented messages, answers a close frame with a close frame (echoing
 * the code, not the reason) and becomes CLOSED. Violations queue a close
 * frame, stop reading and make the session CLOSED once that frame is output
 * (RFC 6455 7.1.7: the connection is failed, the peer's close is not
 * awaited):
 *   unmasked client frame, bad opcode, reserved bits, bad control frame,
 *   bad continuation, bad close code or 1-byte close body, length not in
 *   its minimal encoding or with the top bit set -> 1002;
 *   message larger than max_message_bytes -> 1009; invalid UTF-8 in a text
 *   message or close reason -> 1007; a binary message -> 1003 (this server
 *   only takes text); out of memory for a message -> 1011.
 * Messages complete before a violation or a close are delivered; bytes after
 * a close or a violation are ignored, as is everything fed once CLOSED.
 * Returns the state afterwards. */
nc_ws_state_t nc_ws_feed(nc_ws_t *ws, const uint8_t *data, size_t len);

/* Queues one text frame (unmasked, FIN, the whole text) and outputs it before
 * returning. text must be valid UTF-8: it is not checked here, and a peer
 * fails the connection on invalid UTF-8. 0, or -1 when not OPEN or on failure
 * (out of memory leaves the session OPEN; an output failure makes it
 * CLOSED). */
int nc_ws_send_text(nc_ws_t *ws, const char *text, size_t len);

/* Starts the close handshake: outputs a close frame with code and reason
 * (NULL is ""; truncated to 123 bytes, at a UTF-8 boundary) and becomes
 * CLOSING (CLOSED if the peer's close was already received). code must be one
 * an endpoint may send (RFC 6455 7.4.1: not 1005, 1006 or 1015); 0 sends a
 * close frame without a body. Idempotent: once a close frame is queued (by
 * this call, by an answer to the peer's close or by a violation), or after a
 * failure, it does nothing. */
void nc_ws_close(nc_ws_t *ws, uint16_t code, const char *reason);

nc_ws_state_t nc_ws_state(const nc_ws_t *ws);

/* The close code: the peer's when it sent a close frame first (1005 when it
 * had no code), else the one we sent; 1006 when no close frame was exchanged
 * (e.g. output failure, or still OPEN). */
int nc_ws_close_code(const nc_ws_t *ws);

#endif
