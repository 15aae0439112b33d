/* The Lua VM and the `core` module that scripts call.
 *
 * One Lua 5.4 state, loaded once at start from the scripts directory. The C
 * side hands each HTTP request to `scripts/app.lua` and takes back a response;
 * it knows nothing of routes, OMA or movies.
 *
 * ---- What C calls in Lua -------------------------------------------------
 *
 * At start: `dofile(<scripts>/app.lua)` with `<scripts>/?.lua` and
 * `<scripts>/?/init.lua` first on package.path. app.lua returns a table with
 *
 *   app.handle(req) -> res
 *
 *   req = { method = "GET",            -- HEAD is passed as "HEAD"
 *           path = "/movies/v1/movies/1",  -- raw, still percent-encoded
 *           query = "limit=5&offset=0",    -- raw, "" when none
 *           headers = { ["content-type"] = "application/json", ... },
 *                                         -- names lower-cased; repeated
 *                                         -- headers joined with ", "
 *           body = "..." }                -- "" when none
 *
 *   res = { status = 200,
 *           headers = { ["Content-Type"] = "application/json", ... },
 *           body = "..." }                -- optional, default ""
 *
 * Instead of answering at once, res may ask the core to hold the
 * connection (see core.hub below):
 *
 *   res.park = { key = "k", timeout_ms = 30000 }
 *       Send nothing now; core.hub.answer(key, ...) answers later. After
 *       timeout_ms, or when the server stops, the core sends res itself
 *       (status, headers, body). One parked request per key: parking a key
 *       that holds one ends the older with its own timeout response.
 *   res.upgrade = { key = "k", protocol = "p" }
 *       Complete an RFC 6455 handshake, echoing protocol (optional) in
 *       Sec-WebSocket-Protocol, and keep the connection as a WebSocket
 *       under key, replacing (closing with 1000) whatever held key. The
 *       core validates the handshake itself and answers 400 (426 for a
 *       wrong version) when it is not one; status/headers/body are unused.
 *   res.file = "css/site.css"
 *       Serve a static file from the web directory (core.config.web;
 *       default <source>/web): the path is relative to it, decoded, with
 *       "/" between segments. The core refuses any path that could leave
 *       the directory (empty or ".." segments, segments starting with ".",
 *       NUL or backslash, symlinks resolving outside) and answers it with
 *       res itself, as it does for a file that does not exist; otherwise
 *       200 with Content-Type from the extension, Content-Length,
 *       Last-Modified, ETag and "Cache-Control: no-cache" (revalidate each
 *       time), or 304 when If-None-Match / If-Modified-Since match.
 *   res.token = n
 *       For a plain or parked response: app.written(n, ok) once it has
 *       been written, or its connection closed first.
 *
 * Events of held connections: optional functions of the table app.lua
 * returns, called from the event loop (never from inside a core call):
 *
 *   app.ws_open(key, id)            a WebSocket was accepted under key
 *   app.ws_message(key, id, text)   a complete, valid UTF-8 text message
 *   app.gone(key, id, why, code)    a parked request or WebSocket left key;
 *       why: "timeout" (parked; its timeout response was sent), "peer",
 *       "replaced", "closed" (core.hub.close), "stalled" (WebSocket output
 *       stuck past ws_stall_timeout_ms), "protocol" (bad frames, too big,
 *       invalid UTF-8, binary), "stopping"; code: the WebSocket close code
 *       (0 for parked requests). Not called for core.hub.answer. By then
 *       key may hold a newer connection: compare ids.
 *   app.written(token, ok)          output tagged token was written in full
 *       (ok true) or its connection closed first (false); exactly once.
 *
 *   id is an integer that tells connections apart; a key is reused when a
 *   client comes back, an id never.
 *
 * For HEAD the core drops the body but keeps its Content-Length. The core
 * adds Date, Content-Length and Connection itself. If app.handle raises, or
 * returns something that is not a response, the error and its traceback are
 * logged and the client gets a plain 500; the server keeps running.
 *
 * Every call from C into Lua (loading app.lua, app.handle, the events
 * above, core.timer callbacks) may run for at most script_timeout_ms
 * (limits.h; 0: no limit), the SQL it runs included. Past it the call
 * raises "script ran longer than N ms (script_timeout_ms)", which goes the
 * way of any other error. A script cannot catch it for good: once raised,
 * every further instruction of the call raises it again, in a pcall or a
 * coroutine too. A timer signal (SIGRTMIN, to the loop's thread) stops the
 * main thread's Lua at the deadline; coroutines and SQL statements see it
 * within 1000 instructions or SQLite steps. Time spent inside one C
 * function (a string.rep, a pattern match) is not cut short.
 *
 * ---- What Lua calls in C: package.loaded.core ------------------------------
 *
 *   core.db.query(sql, ...) -> rows | nil, err
 *       Runs one statement with `...` bound to its `?` parameters (integer,
 *       float, string, boolean as 0/1, nil as NULL) and returns every row as
 *       a table keyed by column name (an empty table when none). Statements
 *       are prepared once and cached by SQL text. Constraint violations and
 *       other runtime failures return nil and the SQLite message; a statement
 *       that does not compile, or a bad argument, raises, as does one still
 *       running at the call's deadline (script_timeout_ms, above).
 *   core.db.exec(sql, ...) -> changes, last_insert_rowid | nil, err
 *       As query, for statements that return no rows.
 *   core.db.transaction(fn, ...) -> fn's results
 *       Runs fn(...) between BEGIN IMMEDIATE and COMMIT; if fn raises, rolls
 *       back and re-raises the same error. Not nestable (raises if nested).
 *   core.log(level, message)
 *       level is "debug", "info", "warn" or "error"; one line on stderr.
 *   core.now() -> seconds since the Unix epoch, a float with ms precision.
 *   core.random_id([nbytes]) -> URL-safe base64 text (no padding) of
 *       nbytes (default 16, at most 64) from the OS random source.
 *   core.timer.after(ms, fn) -> id
 *   core.timer.every(ms, fn) -> id
 *       Calls fn() once after ms milliseconds (after), or every ms
 *       milliseconds until cancelled (every), on the event loop. An error
 *       in fn is logged with its traceback; an `every` timer keeps running.
 *       ms is an integer >= 0 (every: >= 1).
 *   core.timer.cancel(id) -> true | nil, "closed"
 *       Stops a timer; "closed" when it already fired (after) or was
 *       cancelled. Every timer stops when the server stops.
 *   core.hub: the connections held open under a key (the scripts use the
 *   channel id): one parked request or one WebSocket per key.
 *   core.hub.held(key) -> "parked" | "websocket" | nil
 *   core.hub.answer(key, res [, token]) -> true | nil, "none"
 *       Answers the request parked under key with res (a response table as
 *       app.handle returns). "none": nothing is parked under key.
 *   core.hub.send(key, text [, token]) -> true | nil, "none" | "full"
 *       Queues text as one WebSocket text frame on the connection under key.
 *       "full": its send window (ws_send_window_bytes of output not yet
 *       taken by the kernel) is full and nothing was queued; send again
 *       after a written() event for that connection.
 *   core.hub.close(key [, code [, reason]]) -> true | nil, "none"
 *       Closes what holds key: a WebSocket with a close frame (code
 *       default 1000), a parked request without an answer. The key is free
 *       at once; app.gone(key, id, "closed", code) follows.
 *   A token is an integer > 0 chosen by the scripts; app.written(token, ok)
 *   later says whether that output reached the kernel.
 *   core.config -> read-only copy of the effective configuration:
 *       { public_url = "http://127.0.0.1:8080", listen = "...", db = "...",
 *         scripts = "...", plus every other key of the --config file }; values
 *       that read as numbers are numbers, the rest strings.
 */
#ifndef NC_SCRIPT_H
#define NC_SCRIPT_H

#include <stddef.h>

#include <uv.h>

#include "db.h"
#include "http.h"
#include "server.h"

typedef struct nc_script nc_script_t;

/* A key of the configuration handed to Lua as core.config. */
typedef struct {
  const char *key;
  const char *value;
} nc_script_config_t;

/* Creates the VM, installs `core`, loads <dir>/app.lua. `loop`, `db` and
 * `server` (for core.hub) are borrowed and must outlive the script.
 * `config` is copied into core.config. `timeout_ms` is script_timeout_ms
 * (0: no limit). Call it on the thread that runs the
 * loop: the limit's timer signals that thread (SIGRTMIN's handler is
 * installed for the process) and a progress handler sits on db's
 * connection, both until nc_script_close(). Returns NULL and a malloc'd
 * one-line message in *err (caller frees) on failure. */
nc_script_t *nc_script_open(const char *dir, uv_loop_t *loop, nc_db_t *db,
                            nc_server_t *server, const nc_script_config_t *config,
                            size_t config_count, unsigned timeout_ms, char **err);

/* Cancels every core.timer, so the loop can end; no script callback runs
 * after this. Call before the last uv_run returns. */
void nc_script_stop_timers(nc_script_t *s);

/* Closes the VM. Call after nc_script_stop_timers() and once the loop has
 * run the timers' close callbacks. NULL is fine. */
void nc_script_close(nc_script_t *s);

/* Calls app.handle(req) and fills *reply (zeroed by the caller), which the
 * server releases with nc_server_reply_free(). On a Lua error or a
 * malformed response: a plain 500, with the reason and traceback logged. */
void nc_script_handle(nc_script_t *s, const nc_http_request_t *req,
                      nc_server_reply_t *reply);

/* The events of held connections (server.h), passed on to app.ws_open,
 * app.ws_message, app.gone and app.written when the scripts define them.
 * `why` is the name app.gone receives ("timeout", "peer", ...). A Lua error
 * is logged with its traceback. */
void nc_script_ws_open(nc_script_t *s, const char *key, unsigned long long id);
void nc_script_ws_message(nc_script_t *s, const char *key, unsigned long long id,
                          const char *text, size_t len);
void nc_script_gone(nc_script_t *s, const char *key, unsigned long long id,
                    const char *why, int code);
void nc_script_written(nc_script_t *s, long long token, int ok);

#endif
