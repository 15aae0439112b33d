/* Owns the Lua VM: loading the scripts, the `core` module they call, and
 * the one protected path by which every request enters Lua, with the clock
 * that stops a call at script_timeout_ms. What a request
 * means is the scripts' business; the socket it came on is server.c's. */
#define _GNU_SOURCE
#include "script.h"

#include <errno.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

typedef struct script_timer {
  uv_timer_t handle;
  struct nc_script *script;
  struct script_timer *next; /* live timers, for cancel and stop */
  lua_Integer id;
  int fn_ref;                /* registry ref of the Lua callback */
  int repeat;
} script_timer_t;

struct nc_script {
  lua_State *L;
  uv_loop_t *loop;
  nc_db_t *db;
  nc_server_t *server;
  int app_ref;    /* registry ref of the table app.lua returned */
  int handle_ref; /* registry ref of app.handle */
  script_timer_t *timers;
  lua_Integer next_timer_id;
  int timers_stopped;
  unsigned timeout_ms; /* script_timeout_ms; 0: no limit */
  /* Shared with deadline_cb, a signal handler on this same thread. */
  _Atomic uint64_t deadline; /* CLOCK_MONOTONIC ns at which the running call
                                expires; 0 while no call runs */
  _Atomic int expired;       /* the running call is past its deadline */
  _Atomic int timer_armed;   /* the timer will fire (and may re-arm) */
  timer_t timer;
  int has_timer;
};

/* The registry key under which core functions find their nc_script_t. */
static const char script_key = 'S';

static nc_script_t *script_of(lua_State *L) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &script_key);
  nc_script_t *s = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return s;
}

/* ---- core.db ---- */

/* Binds the arguments from index `first` on to the statement's parameters.
 * Raises on a value SQLite cannot store; the statement is left for
 * nc_db_statement to reset on its next use, so nothing leaks. */
static void bind_args(lua_State *L, sqlite3_stmt *stmt, int first) {
  int top = lua_gettop(L);
  int want = sqlite3_bind_parameter_count(stmt);
  if (top - first + 1 != want)
    luaL_error(L, "statement has %d parameters, got %d values", want,
               top - first + 1);
  for (int i = first; i <= top; i++) {
    int param = i - first + 1;
    switch (lua_type(L, i)) {
      case LUA_TNIL:
        sqlite3_bind_null(stmt, param);
        break;
      case LUA_TBOOLEAN:
        sqlite3_bind_int(stmt, param, lua_toboolean(L, i));
        break;
      case LUA_TNUMBER:
        if (lua_isinteger(L, i))
          sqlite3_bind_int64(stmt, param, lua_tointeger(L, i));
        else
          sqlite3_bind_double(stmt, param, lua_tonumber(L, i));
        break;
      case LUA_TSTRING: {
        size_t len;
        const char *text = lua_tolstring(L, i, &len);
        sqlite3_bind_text(stmt, param, text, (int)len, SQLITE_TRANSIENT);
        break;
      }
      default:
        luaL_argerror(L, i, "expected nil, boolean, number or string");
    }
  }
}

static void push_column(lua_State *L, sqlite3_stmt *stmt, int col) {
  switch (sqlite3_column_type(stmt, col)) {
    case SQLITE_INTEGER:
      lua_pushinteger(L, sqlite3_column_int64(stmt, col));
      break;
    case SQLITE_FLOAT:
      lua_pushnumber(L, sqlite3_column_double(stmt, col));
      break;
    case SQLITE_NULL:
      lua_pushnil(L);
      break;
    default: { /* TEXT and BLOB both become Lua strings */
      const void *data = sqlite3_column_blob(stmt, col);
      lua_pushlstring(L, data ? data : "", (size_t)sqlite3_column_bytes(stmt, col));
    }
  }
}

static sqlite3_stmt *prepare(lua_State *L, nc_script_t *s) {
  const char *sql = luaL_checkstring(L, 1);
  char *err = NULL;
  sqlite3_stmt *stmt = nc_db_statement(s->db, sql, &err);
  if (!stmt) {
    /* Copy the message onto the Lua stack and free ours before raising:
     * luaL_error does not return. */
    lua_pushfstring(L, "bad SQL (%s): %s", err ? err : "out of memory", sql);
    free(err);
    lua_error(L);
  }
  bind_args(L, stmt, 2);
  return stmt;
}

static int timed_out(lua_State *L, nc_script_t *s, int level);

static int step_failed(lua_State *L, nc_script_t *s, sqlite3_stmt *stmt, int rc) {
  /* The progress handler stopped a statement that outlived the call's
   * deadline: that is the timeout, not a failure the script may handle. */
  if (rc == SQLITE_INTERRUPT && atomic_load(&s->expired)) {
    sqlite3_reset(stmt);
    return timed_out(L, s, 1); /* at the script's line, not core.db's */
  }
  lua_pushnil(L);
  lua_pushstring(L, sqlite3_errmsg(nc_db_sqlite(s->db)));
  sqlite3_reset(stmt);
  return 2;
}

static int core_db_query(lua_State *L) {
  nc_script_t *s = script_of(L);
  sqlite3_stmt *stmt = prepare(L, s);
  lua_newtable(L);
  int ncols = sqlite3_column_count(stmt);
  lua_Integer row = 0;
  int rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    lua_createtable(L, 0, ncols);
    for (int c = 0; c < ncols; c++) {
      push_column(L, stmt, c);
      lua_setfield(L, -2, sqlite3_column_name(stmt, c));
    }
    lua_rawseti(L, -2, ++row);
  }
  if (rc != SQLITE_DONE) return step_failed(L, s, stmt, rc);
  sqlite3_reset(stmt);
  return 1;
}

static int core_db_exec(lua_State *L) {
  nc_script_t *s = script_of(L);
  sqlite3_stmt *stmt = prepare(L, s);
  int rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
  }
  if (rc != SQLITE_DONE) return step_failed(L, s, stmt, rc);
  sqlite3_reset(stmt);
  sqlite3 *conn = nc_db_sqlite(s->db);
  lua_pushinteger(L, sqlite3_changes(conn));
  lua_pushinteger(L, sqlite3_last_insert_rowid(conn));
  return 2;
}

static int run_sql(nc_script_t *s, const char *sql) {
  return sqlite3_exec(nc_db_sqlite(s->db), sql, NULL, NULL, NULL);
}

static int core_db_transaction(lua_State *L) {
  nc_script_t *s = script_of(L);
  luaL_checktype(L, 1, LUA_TFUNCTION);
  sqlite3 *conn = nc_db_sqlite(s->db);
  if (!sqlite3_get_autocommit(conn))
    return luaL_error(L, "core.db.transaction: a transaction is already open");
  if (run_sql(s, "BEGIN IMMEDIATE") != SQLITE_OK)
    return luaL_error(L, "core.db.transaction: BEGIN failed: %s",
                      sqlite3_errmsg(conn));
  int nargs = lua_gettop(L) - 1;
  if (lua_pcall(L, nargs, LUA_MULTRET, 0) != LUA_OK) {
    run_sql(s, "ROLLBACK");
    return lua_error(L); /* the same error object, unchanged */
  }
  if (run_sql(s, "COMMIT") != SQLITE_OK) {
    lua_pushfstring(L, "core.db.transaction: COMMIT failed: %s",
                    sqlite3_errmsg(conn));
    run_sql(s, "ROLLBACK");
    return lua_error(L);
  }
  return lua_gettop(L);
}

/* ---- core.log, core.now, core.random_id ---- */

static int core_log(lua_State *L) {
  static const char *const levels[] = {"debug", "info", "warn", "error", NULL};
  int level = luaL_checkoption(L, 1, NULL, levels);
  const char *msg = luaL_checkstring(L, 2);
  nc_log((nc_log_level_t)level, "%s", msg);
  return 0;
}

static int core_now(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  /* Whole milliseconds, so the value round-trips through ISO 8601 text. */
  lua_Integer ms = (lua_Integer)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
  lua_pushnumber(L, (lua_Number)ms / 1000.0);
  return 1;
}

static int core_random_id(lua_State *L) {
  static const char alphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  lua_Integer n = luaL_optinteger(L, 1, 16);
  luaL_argcheck(L, n >= 1 && n <= 64, 1, "between 1 and 64 bytes");
  unsigned char raw[66] = {0};
  size_t got = 0;
  while (got < (size_t)n) {
    ssize_t r = getrandom(raw + got, (size_t)n - got, 0);
    if (r < 0) return luaL_error(L, "core.random_id: getrandom failed");
    got += (size_t)r;
  }
  /* RFC 4648 section 5 (base64url), without padding. */
  char out[90];
  size_t o = 0;
  for (size_t i = 0; i < (size_t)n; i += 3) {
    unsigned v = (unsigned)raw[i] << 16 | (unsigned)raw[i + 1] << 8 | raw[i + 2];
    size_t left = (size_t)n - i;
    out[o++] = alphabet[(v >> 18) & 63];
    out[o++] = alphabet[(v >> 12) & 63];
    if (left > 1) out[o++] = alphabet[(v >> 6) & 63];
    if (left > 2) out[o++] = alphabet[v & 63];
  }
  lua_pushlstring(L, out, o);
  return 1;
}

/* ---- core.timer ---- */

static const char *protected_call(nc_script_t *s, int nargs, int nresults);

static void timer_closed_cb(uv_handle_t *h) { free(h->data); }

/* Unlinks a timer and releases its callback; the struct goes when libuv
 * has closed the handle. */
static void timer_release(nc_script_t *s, script_timer_t *t) {
  for (script_timer_t **p = &s->timers; *p; p = &(*p)->next) {
    if (*p == t) {
      *p = t->next;
      break;
    }
  }
  luaL_unref(s->L, LUA_REGISTRYINDEX, t->fn_ref);
  uv_close((uv_handle_t *)&t->handle, timer_closed_cb);
}

static void timer_fired_cb(uv_timer_t *handle) {
  script_timer_t *t = handle->data;
  nc_script_t *s = t->script;
  lua_State *L = s->L;
  lua_rawgeti(L, LUA_REGISTRYINDEX, t->fn_ref);
  int repeat = t->repeat;
  /* A one-shot timer is done before its callback runs, so a cancel from
   * inside the callback answers "closed" rather than freeing it twice. */
  if (!repeat) timer_release(s, t);
  lua_Integer id = t->id; /* read first: the callback may cancel t */
  const char *error = protected_call(s, 0, 0);
  if (error) {
    nc_log(NC_LOG_ERROR, "lua error in timer %lld: %s", (long long)id, error);
    lua_pop(L, 1);
  }
}

static int start_timer(lua_State *L, int repeat) {
  nc_script_t *s = script_of(L);
  lua_Integer ms = luaL_checkinteger(L, 1);
  luaL_argcheck(L, ms >= repeat && ms <= 0x7fffffff, 1, "out of range");
  luaL_checktype(L, 2, LUA_TFUNCTION);
  if (s->timers_stopped) return luaL_error(L, "core.timer: the server is stopping");
  script_timer_t *t = calloc(1, sizeof *t);
  if (!t) return luaL_error(L, "core.timer: out of memory");
  uv_timer_init(s->loop, &t->handle);
  t->handle.data = t;
  t->script = s;
  t->id = ++s->next_timer_id;
  t->repeat = repeat;
  lua_pushvalue(L, 2);
  t->fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  t->next = s->timers;
  s->timers = t;
  uv_timer_start(&t->handle, timer_fired_cb, (uint64_t)ms, repeat ? (uint64_t)ms : 0);
  lua_pushinteger(L, t->id);
  return 1;
}

static int core_timer_after(lua_State *L) { return start_timer(L, 0); }

static int core_timer_every(lua_State *L) { return start_timer(L, 1); }

static int core_timer_cancel(lua_State *L) {
  nc_script_t *s = script_of(L);
  lua_Integer id = luaL_checkinteger(L, 1);
  for (script_timer_t *t = s->timers; t; t = t->next) {
    if (t->id == id) {
      timer_release(s, t);
      lua_pushboolean(L, 1);
      return 1;
    }
  }
  lua_pushnil(L);
  lua_pushliteral(L, "closed");
  return 2;
}

void nc_script_stop_timers(nc_script_t *s) {
  if (!s) return;
  s->timers_stopped = 1;
  while (s->timers) timer_release(s, s->timers);
}

static void push_config(lua_State *L, const nc_script_config_t *config,
                        size_t count) {
  lua_createtable(L, 0, (int)count);
  for (size_t i = 0; i < count; i++) {
    if (!lua_stringtonumber(L, config[i].value)) lua_pushstring(L, config[i].value);
    lua_setfield(L, -2, config[i].key);
  }
}

/* Builds `core` and stores it in package.loaded, never as a global, so a
 * spec can put a fake in its place. */
/* ---- core.hub ---- */

static const char *take_response(lua_State *L, nc_http_response_t *res);

static const char *hub_key(lua_State *L) { return luaL_checkstring(L, 1); }

/* An optional token argument: nil/absent is 0, else an integer > 0. */
static long long opt_token(lua_State *L, int arg) {
  if (lua_isnoneornil(L, arg)) return 0;
  lua_Integer token = luaL_checkinteger(L, arg);
  luaL_argcheck(L, token > 0, arg, "token must be > 0");
  return (long long)token;
}

static int fail_with(lua_State *L, const char *reason) {
  lua_pushnil(L);
  lua_pushstring(L, reason);
  return 2;
}

static int core_hub_held(lua_State *L) {
  switch (nc_server_held(script_of(L)->server, hub_key(L))) {
    case NC_SERVER_HELD_PARKED:
      lua_pushliteral(L, "parked");
      break;
    case NC_SERVER_HELD_WEBSOCKET:
      lua_pushliteral(L, "websocket");
      break;
    default:
      lua_pushnil(L);
  }
  return 1;
}

static int core_hub_answer(lua_State *L) {
  nc_script_t *s = script_of(L);
  const char *key = hub_key(L);
  luaL_checktype(L, 2, LUA_TTABLE);
  long long token = opt_token(L, 3);
  nc_http_response_t res = {0};
  lua_pushvalue(L, 2);
  const char *problem = take_response(L, &res);
  if (problem) {
    nc_http_response_free(&res);
    return luaL_error(L, "core.hub.answer: %s", problem);
  }
  lua_pop(L, 1);
  if (nc_server_answer(s->server, key, &res, token) != 0) return fail_with(L, "none");
  lua_pushboolean(L, 1);
  return 1;
}

static int core_hub_send(lua_State *L) {
  nc_script_t *s = script_of(L);
  const char *key = hub_key(L);
  size_t len;
  const char *text = luaL_checklstring(L, 2, &len);
  long long token = opt_token(L, 3);
  int rc = nc_server_send(s->server, key, text, len, token);
  if (rc == -2) return fail_with(L, "full");
  if (rc != 0) return fail_with(L, "none");
  lua_pushboolean(L, 1);
  return 1;
}

static int core_hub_close(lua_State *L) {
  nc_script_t *s = script_of(L);
  const char *key = hub_key(L);
  lua_Integer code = luaL_optinteger(L, 2, 1000);
  /* RFC 6455 7.4: the codes an endpoint may send. */
  luaL_argcheck(L, (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) ||
                       (code >= 3000 && code <= 4999), 2, "not a close code one may send");
  size_t len = 0;
  const char *reason = luaL_optlstring(L, 3, "", &len);
  luaL_argcheck(L, len <= 123, 3, "a close reason holds at most 123 bytes");
  if (nc_server_close(s->server, key, (int)code, reason) != 0) return fail_with(L, "none");
  lua_pushboolean(L, 1);
  return 1;
}

static void install_core(lua_State *L, const nc_script_config_t *config,
                         size_t count) {
  static const luaL_Reg db_funcs[] = {{"query", core_db_query},
                                      {"exec", core_db_exec},
                                      {"transaction", core_db_transaction},
                                      {NULL, NULL}};
  static const luaL_Reg timer_funcs[] = {{"after", core_timer_after},
                                         {"every", core_timer_every},
                                         {"cancel", core_timer_cancel},
                                         {NULL, NULL}};
  static const luaL_Reg hub_funcs[] = {{"held", core_hub_held},
                                       {"answer", core_hub_answer},
                                       {"send", core_hub_send},
                                       {"close", core_hub_close},
                                       {NULL, NULL}};
  static const luaL_Reg core_funcs[] = {{"log", core_log},
                                        {"now", core_now},
                                        {"random_id", core_random_id},
                                        {NULL, NULL}};
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  luaL_newlib(L, core_funcs);
  luaL_newlib(L, db_funcs);
  lua_setfield(L, -2, "db");
  luaL_newlib(L, timer_funcs);
  lua_setfield(L, -2, "timer");
  luaL_newlib(L, hub_funcs);
  lua_setfield(L, -2, "hub");
  push_config(L, config, count);
  lua_setfield(L, -2, "config");
  lua_setfield(L, -2, "core");
  lua_pop(L, 1);
}

/* ---- the protected path into Lua ---- */

/* script_timeout_ms. Any Lua hook sends every instruction through the
 * VM's slow path (lvm.c 'trap'): a count hook on all the time cost 15-19%
 * more CPU per request however rarely it fired. So the main thread runs
 * without one, and a POSIX timer signals the loop's thread at the deadline;
 * its handler marks the call expired and installs a count hook of 1 there,
 * as lua.c does for Ctrl-C (ldebug.c: lua_sethook may be called from a
 * signal handler; lvm.c rechecks on every jump so that a signal stops a
 * tight loop). The timer is armed when a call starts and none is pending,
 * and re-arms itself while calls run, so a busy server makes no system
 * call per request and an idle one takes no signals. */

#ifndef sigev_notify_thread_id
#define sigev_notify_thread_id _sigev_un._tid
#endif

/* Coroutines are not reached by a hook set on the main thread, so each
 * carries its own, checking the expired flag every this many instructions
 * (a few microseconds); they pay the slow path, which the scripts do not
 * use. */
#define COROUTINE_HOOK_INSTRUCTIONS 1000

/* SQLite VM steps between two looks at the expired flag during a
 * statement: a few tens of microseconds of SQL. */
#define PROGRESS_STEPS 1000

static void limit_hook(lua_State *L, lua_Debug *ar);

/* Raises the timeout in L, placed at the function `level` up the stack.
 * Every later instruction of L raises it again (deadline_cb has done the
 * same for the main thread): a script that catches it gets no further than
 * its next instruction, so however many pcalls stand in the way it reaches
 * protected_call. A coroutine's hook of COROUTINE_HOOK_INSTRUCTIONS alone
 * would fire inside `while true do pcall(spin) end`'s spin every time. */
static int timed_out(lua_State *L, nc_script_t *s, int level) {
  lua_sethook(L, limit_hook, LUA_MASKCOUNT, 1);
  luaL_where(L, level);
  /* lua_pushfstring has no %u; config.c keeps the value within int. */
  lua_pushfstring(L, "script ran longer than %d ms (script_timeout_ms)",
                  (int)s->timeout_ms);
  lua_concat(L, 2);
  return lua_error(L);
}

static void limit_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  nc_script_t *s = script_of(L);
  /* Level 0 in a hook is the Lua function it interrupted. */
  if (atomic_load(&s->expired)) timed_out(L, s, 0);
}

/* Nonzero interrupts the statement (SQLITE_INTERRUPT): only once the
 * running call has expired, never for the core's own SQL between calls. */
static int progress_cb(void *arg) {
  nc_script_t *s = arg;
  return atomic_load(&s->expired);
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void set_timer(nc_script_t *s, uint64_t at_ns) {
  struct itimerspec when = {0};
  when.it_value.tv_sec = (time_t)(at_ns / 1000000000u);
  when.it_value.tv_nsec = (long)(at_ns % 1000000000u);
  timer_settime(s->timer, TIMER_ABSTIME, &when, NULL);
}

/* The timer's signal, on the loop's thread, between any two instructions
 * of the VM or of C: only lock-free atomics, lua_sethook and
 * async-signal-safe calls here. */
static void deadline_cb(int sig, siginfo_t *info, void *context) {
  (void)sig;
  (void)context;
  nc_script_t *s = info->si_value.sival_ptr;
  int saved_errno = errno;
  uint64_t deadline = atomic_load(&s->deadline);
  if (!deadline) {
    atomic_store(&s->timer_armed, 0); /* no call runs: quiet until one does */
  } else if (now_ns() >= deadline) {
    atomic_store(&s->timer_armed, 0);
    atomic_store(&s->expired, 1);
    lua_sethook(s->L, limit_hook, LUA_MASKCOUNT, 1);
  } else {
    set_timer(s, deadline); /* armed for an earlier call */
  }
  errno = saved_errno;
}

/* Takes a real-time signal for the deadline timer, delivered to the
 * calling thread only: the checkpoint and libuv's worker threads must never
 * run the handler. */
static int start_deadline_timer(nc_script_t *s) {
  struct sigaction action = {0};
  action.sa_sigaction = deadline_cb;
  action.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&action.sa_mask);
  struct sigevent event = {0};
  event.sigev_notify = SIGEV_THREAD_ID;
  event.sigev_signo = SIGRTMIN;
  event.sigev_value.sival_ptr = s;
  event.sigev_notify_thread_id = gettid();
  if (sigaction(SIGRTMIN, &action, NULL) != 0 ||
      timer_create(CLOCK_MONOTONIC, &event, &s->timer) != 0)
    return -1;
  s->has_timer = 1;
  return 0;
}

/* coroutine.create and coroutine.wrap (upvalue 1: Lua's own), giving the
 * new thread its hook. wrap's function holds its thread as upvalue 1. */
static int coroutine_create_or_wrap(lua_State *L) {
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, 1);
  lua_State *co = lua_tothread(L, -1);
  if (!co && lua_getupvalue(L, -1, 1)) {
    co = lua_tothread(L, -1); /* still held by the function */
    lua_pop(L, 1);
  }
  if (co) lua_sethook(co, limit_hook, LUA_MASKCOUNT, COROUTINE_HOOK_INSTRUCTIONS);
  return 1;
}

static void hook_coroutines(lua_State *L) {
  static const char *const names[] = {"create", "wrap"};
  lua_getglobal(L, "coroutine");
  for (int i = 0; i < 2; i++) {
    lua_getfield(L, -1, names[i]);
    lua_pushcclosure(L, coroutine_create_or_wrap, 1);
    lua_setfield(L, -2, names[i]);
  }
  lua_pop(L, 1);
}

/* Starts the clock of a call from C into Lua. */
static void call_started(nc_script_t *s) {
  if (!s->timeout_ms) return;
  /* Left by the last call's timeout; the handler sets none while no call
   * runs, so this cannot race with it. */
  if (lua_gethook(s->L)) lua_sethook(s->L, NULL, 0, 0);
  uint64_t deadline = now_ns() + (uint64_t)s->timeout_ms * 1000000u;
  atomic_store(&s->deadline, deadline);
  if (!atomic_load(&s->timer_armed)) {
    atomic_store(&s->timer_armed, 1);
    set_timer(s, deadline);
  }
}

/* Before anything else that follows the call: the ROLLBACK in
 * protected_call must not be interrupted, nor Lua run by take_reply raise. */
static void call_ended(nc_script_t *s) {
  atomic_store(&s->deadline, 0);
  atomic_store(&s->expired, 0);
}

static int traceback_cb(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (!msg) msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  luaL_traceback(L, L, msg, 1);
  return 1;
}

/* Calls the function below `nargs` arguments on the stack, for at most
 * script_timeout_ms. Returns NULL and leaves `nresults` on success. On
 * error (the timeout included) returns the message with its traceback,
 * left on top of the stack for the caller to log and pop, after rolling
 * back any transaction the script left open (one raised inside
 * core.db.transaction is already rolled back; one opened by hand is not). */
static const char *protected_call(nc_script_t *s, int nargs, int nresults) {
  lua_State *L = s->L;
  int base = lua_gettop(L) - nargs;
  lua_pushcfunction(L, traceback_cb);
  lua_insert(L, base);
  call_started(s);
  int rc = lua_pcall(L, nargs, nresults, base);
  call_ended(s);
  lua_remove(L, base);
  if (rc == LUA_OK) return NULL;
  sqlite3 *conn = nc_db_sqlite(s->db);
  if (!sqlite3_get_autocommit(conn)) sqlite3_exec(conn, "ROLLBACK", NULL, NULL, NULL);
  const char *msg = lua_tostring(L, -1);
  return msg ? msg : "(no message)";
}

/* The database outlives the script: its progress handler must not be left
 * pointing at a freed nc_script_t. */
static void close_vm(nc_script_t *s, lua_State *L) {
  /* A deleted timer's pending signal is discarded with it (timer_delete). */
  if (s->has_timer) timer_delete(s->timer);
  if (s->timeout_ms) sqlite3_progress_handler(nc_db_sqlite(s->db), 0, NULL, NULL);
  lua_close(L);
  free(s);
}

nc_script_t *nc_script_open(const char *dir, uv_loop_t *loop, nc_db_t *db,
                            nc_server_t *server, const nc_script_config_t *config,
                            size_t config_count, unsigned timeout_ms, char **err) {
  nc_script_t *s = calloc(1, sizeof *s);
  lua_State *L = s ? luaL_newstate() : NULL;
  if (!L) {
    free(s);
    *err = strdup("out of memory starting Lua");
    return NULL;
  }
  s->L = L;
  s->loop = loop;
  s->db = db;
  s->server = server;
  /* Generational collection: a fan-out makes many short-lived tables (one
   * per row read, per message sent); the incremental collector then ran
   * long steps in the middle of delivery slices. */
  lua_gc(L, LUA_GCGEN, 0, 0);
  luaL_openlibs(L);
  lua_pushlightuserdata(L, s);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &script_key);
  install_core(L, config, config_count);
  s->timeout_ms = timeout_ms;
  if (s->timeout_ms) {
    if (start_deadline_timer(s) != 0) {
      *err = malloc(128);
      if (*err)
        snprintf(*err, 128, "cannot start the script_timeout_ms timer: %s",
                 strerror(errno));
      close_vm(s, L);
      return NULL;
    }
    /* Before app.lua runs, so that no coroutine is made without the hook. */
    hook_coroutines(L);
    sqlite3_progress_handler(nc_db_sqlite(db), PROGRESS_STEPS, progress_cb, s);
  }

  /* The scripts directory comes first so a user's module wins. */
  lua_getglobal(L, "package");
  lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;", dir, dir);
  lua_getfield(L, -2, "path");
  lua_concat(L, 2);
  lua_setfield(L, -2, "path");
  lua_pop(L, 1);

  char path[4096];
  snprintf(path, sizeof path, "%s/app.lua", dir);
  const char *problem = NULL;
  if (luaL_loadfile(L, path) != LUA_OK) {
    problem = lua_tostring(L, -1);
  } else {
    lua_pushcfunction(L, traceback_cb);
    lua_insert(L, -2);
    call_started(s);
    int rc = lua_pcall(L, 0, 1, -2);
    call_ended(s);
    if (rc != LUA_OK) {
      problem = lua_tostring(L, -1);
    } else {
      if (lua_istable(L, -1) && lua_getfield(L, -1, "handle") == LUA_TFUNCTION) {
        s->handle_ref = luaL_ref(L, LUA_REGISTRYINDEX);
        s->app_ref = luaL_ref(L, LUA_REGISTRYINDEX);
        lua_settop(L, 0);
        return s;
      }
      problem = "app.lua must return a table with a handle(req) function";
    }
  }
  /* Only the first line: the caller prints a one-line reason. */
  size_t len = strcspn(problem ? problem : "?", "\n");
  *err = malloc(len + strlen(path) + 32);
  if (*err) sprintf(*err, "cannot load scripts (%s): %.*s", path, (int)len, problem);
  nc_script_stop_timers(s);
  /* The timers' handles are closed but libuv frees nothing until the
   * loop runs their close callbacks; the structs only hold the handle. */
  s->L = NULL;
  close_vm(s, L);
  return NULL;
}

void nc_script_close(nc_script_t *s) {
  if (!s) return;
  close_vm(s, s->L);
}

static void push_request(lua_State *L, const nc_http_request_t *req) {
  lua_createtable(L, 0, 5);
  lua_pushstring(L, req->method);
  lua_setfield(L, -2, "method");
  lua_pushstring(L, req->path);
  lua_setfield(L, -2, "path");
  lua_pushstring(L, req->query);
  lua_setfield(L, -2, "query");
  lua_pushlstring(L, req->body, req->body_len);
  lua_setfield(L, -2, "body");
  lua_createtable(L, 0, (int)req->header_count);
  for (size_t i = 0; i < req->header_count; i++) {
    const nc_http_header_t *h = &req->headers[i];
    /* RFC 9110 5.3: repeated fields combine into one, comma-separated. */
    if (lua_getfield(L, -1, h->name) == LUA_TSTRING) {
      lua_pushliteral(L, ", ");
      lua_pushstring(L, h->value);
      lua_concat(L, 3);
    } else {
      lua_pop(L, 1);
      lua_pushstring(L, h->value);
    }
    lua_setfield(L, -2, h->name);
  }
  lua_setfield(L, -2, "headers");
}

static void set_plain(nc_http_response_t *res, int status, const char *text) {
  nc_http_response_free(res);
  res->status = status;
  res->headers = calloc(1, sizeof *res->headers);
  res->body = strdup(text);
  if (res->headers) {
    res->headers[0].name = strdup("Content-Type");
    res->headers[0].value = strdup("text/plain; charset=utf-8");
    res->header_count = 1;
  }
  res->body_len = res->body ? strlen(res->body) : 0;
}

static int valid_header_text(const char *s) {
  for (; *s; s++)
    if (*s == '\r' || *s == '\n') return 0;
  return 1;
}

/* Copies the response table at the top of the stack into *res. Returns a
 * description of what is wrong with it, or NULL. */
static const char *take_response(lua_State *L, nc_http_response_t *res) {
  if (!lua_istable(L, -1)) return "handler returned no response table";
  lua_getfield(L, -1, "status");
  int isint;
  lua_Integer status = lua_tointegerx(L, -1, &isint);
  lua_pop(L, 1);
  if (!isint || status < 100 || status > 599) return "response status must be an integer 100..599";
  res->status = (int)status;

  lua_getfield(L, -1, "body");
  if (!lua_isnil(L, -1)) {
    if (lua_type(L, -1) != LUA_TSTRING) return "response body must be a string";
    size_t len;
    const char *body = lua_tolstring(L, -1, &len);
    res->body = malloc(len + 1);
    if (!res->body) return "out of memory";
    memcpy(res->body, body, len);
    res->body[len] = '\0';
    res->body_len = len;
  }
  lua_pop(L, 1);

  if (lua_getfield(L, -1, "headers") == LUA_TTABLE) {
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      if (lua_type(L, -2) != LUA_TSTRING ||
          (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER)) {
        lua_pop(L, 3);
        return "response headers must map names to strings";
      }
      nc_http_header_t *grown =
          realloc(res->headers, (res->header_count + 1) * sizeof *res->headers);
      if (!grown) {
        lua_pop(L, 3);
        return "out of memory";
      }
      res->headers = grown;
      nc_http_header_t *h = &res->headers[res->header_count];
      h->name = strdup(lua_tostring(L, -2));
      h->value = strdup(lua_tostring(L, -1));
      if (!h->name || !h->value) {
        free(h->name);
        free(h->value);
        lua_pop(L, 3);
        return "out of memory";
      }
      res->header_count++;
      lua_pop(L, 1);
      /* A CR or LF would let a script's data split the response. */
      if (!valid_header_text(h->name) || !valid_header_text(h->value)) {
        lua_pop(L, 2);
        return "response header contains CR or LF";
      }
    }
  } else if (!lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return "response headers must be a table";
  }
  lua_pop(L, 1);
  return NULL;
}

/* A key for core.hub: non-empty text. */
static const char *take_key(lua_State *L, char **out) {
  if (lua_getfield(L, -1, "key") != LUA_TSTRING || lua_rawlen(L, -1) == 0) {
    lua_pop(L, 1);
    return "key must be a non-empty string";
  }
  *out = strdup(lua_tostring(L, -1));
  lua_pop(L, 1);
  return *out ? NULL : "out of memory";
}

/* res.upgrade = {key, protocol}: the rest of res is unused. */
static const char *take_upgrade(lua_State *L, nc_server_reply_t *reply) {
  reply->action = NC_SERVER_UPGRADE;
  const char *problem = take_key(L, &reply->key);
  if (problem) return problem;
  int type = lua_getfield(L, -1, "protocol");
  if (type == LUA_TSTRING) {
    reply->protocol = strdup(lua_tostring(L, -1));
    if (!reply->protocol) problem = "out of memory";
    else if (!valid_header_text(reply->protocol)) problem = "protocol contains CR or LF";
  } else if (type != LUA_TNIL) {
    problem = "protocol must be a string";
  }
  lua_pop(L, 1);
  return problem;
}

/* res.park = {key, timeout_ms}: res itself is the timeout response. */
static const char *take_park(lua_State *L, nc_server_reply_t *reply) {
  reply->action = NC_SERVER_PARK;
  const char *problem = take_key(L, &reply->key);
  if (problem) return problem;
  lua_getfield(L, -1, "timeout_ms");
  int isint;
  lua_Integer ms = lua_tointegerx(L, -1, &isint);
  lua_pop(L, 1);
  /* A day is far past any maxWaitTime policy; the bound keeps the value
   * inside libuv's unsigned milliseconds. */
  if (!isint || ms < 0 || ms > 86400000) return "timeout_ms must be an integer 0..86400000";
  reply->park_ms = (unsigned)ms;
  return NULL;
}

/* Copies the reply table at the top of the stack into *reply. Returns a
 * description of what is wrong with it, or NULL. */
static const char *take_reply(lua_State *L, nc_server_reply_t *reply) {
  if (!lua_istable(L, -1)) return "handler returned no response table";
  const char *problem = NULL;
  if (lua_getfield(L, -1, "upgrade") == LUA_TTABLE) {
    problem = take_upgrade(L, reply);
    lua_pop(L, 1);
    return problem;
  }
  lua_pop(L, 1);
  problem = take_response(L, &reply->res);
  if (problem) return problem;
  int type = lua_getfield(L, -1, "park");
  if (type == LUA_TTABLE)
    problem = take_park(L, reply);
  else if (type != LUA_TNIL)
    problem = "park must be a table";
  lua_pop(L, 1);
  if (problem) return problem;
  type = lua_getfield(L, -1, "file");
  if (type == LUA_TSTRING) {
    size_t len;
    const char *file = lua_tolstring(L, -1, &len);
    if (reply->action != NC_SERVER_RESPOND) {
      problem = "file cannot be combined with park";
    } else {
      reply->action = NC_SERVER_FILE;
      /* A path with a NUL (the scripts may have decoded it from a request)
       * is left NULL, which the server refuses like any path that could
       * escape: its check would otherwise see only the part before it. */
      if (strlen(file) == len && !(reply->file = strdup(file))) problem = "out of memory";
    }
  } else if (type != LUA_TNIL) {
    problem = "file must be a string";
  }
  lua_pop(L, 1);
  if (problem) return problem;
  type = lua_getfield(L, -1, "token");
  if (type != LUA_TNIL) {
    int isint;
    lua_Integer token = lua_tointegerx(L, -1, &isint);
    if (!isint || token <= 0) problem = "token must be an integer > 0";
    reply->token = (long long)token;
  }
  lua_pop(L, 1);
  return problem;
}

void nc_script_handle(nc_script_t *s, const nc_http_request_t *req,
                      nc_server_reply_t *reply) {
  lua_State *L = s->L;
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->handle_ref);
  push_request(L, req);
  const char *error = protected_call(s, 1, 1);
  if (error) {
    nc_log(NC_LOG_ERROR, "lua error in %s %.200s: %s", req->method, req->path, error);
    lua_settop(L, 0);
    nc_server_reply_free(reply);
    set_plain(&reply->res, 500, "internal server error\n");
    return;
  }
  const char *problem = take_reply(L, reply);
  lua_settop(L, 0);
  if (problem) {
    nc_log(NC_LOG_ERROR, "bad response from %s %s: %s", req->method, req->path,
           problem);
    nc_server_reply_free(reply);
    set_plain(&reply->res, 500, "internal server error\n");
  }
}

/* ---- events of held connections ---- */

/* Pushes app[name] and returns 1 when it is a function; else pushes
 * nothing and returns 0 (every event handler is optional). */
static int push_event_handler(nc_script_t *s, const char *name) {
  lua_State *L = s->L;
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->app_ref);
  if (lua_getfield(L, -1, name) != LUA_TFUNCTION) {
    lua_pop(L, 2);
    return 0;
  }
  lua_remove(L, -2);
  return 1;
}

static void call_event(nc_script_t *s, const char *name, int nargs) {
  const char *error = protected_call(s, nargs, 0);
  if (error) nc_log(NC_LOG_ERROR, "lua error in app.%s: %s", name, error);
  lua_settop(s->L, 0);
}

void nc_script_ws_open(nc_script_t *s, const char *key, unsigned long long id) {
  if (!push_event_handler(s, "ws_open")) return;
  lua_pushstring(s->L, key);
  lua_pushinteger(s->L, (lua_Integer)id);
  call_event(s, "ws_open", 2);
}

void nc_script_ws_message(nc_script_t *s, const char *key, unsigned long long id,
                          const char *text, size_t len) {
  if (!push_event_handler(s, "ws_message")) return;
  lua_pushstring(s->L, key);
  lua_pushinteger(s->L, (lua_Integer)id);
  lua_pushlstring(s->L, text, len);
  call_event(s, "ws_message", 3);
}

void nc_script_gone(nc_script_t *s, const char *key, unsigned long long id,
                    const char *why, int code) {
  if (!push_event_handler(s, "gone")) return;
  lua_pushstring(s->L, key);
  lua_pushinteger(s->L, (lua_Integer)id);
  lua_pushstring(s->L, why);
  lua_pushinteger(s->L, code);
  call_event(s, "gone", 4);
}

void nc_script_written(nc_script_t *s, long long token, int ok) {
  if (!push_event_handler(s, "written")) return;
  lua_pushinteger(s->L, (lua_Integer)token);
  lua_pushboolean(s->L, ok);
  call_event(s, "written", 2);
}
