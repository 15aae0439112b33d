/* ncserver: reads the configuration, opens the database and the scripts,
 * listens, and runs the loop until SIGINT or SIGTERM. Each part is its own
 * module; this file only orders them and turns startup failures into one
 * line and exit code 2, undoing whatever it had created. */
#define _XOPEN_SOURCE 700 /* realpath, with POSIX.1-2008 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint.h"
#include "config.h"
#include "db.h"
#include "limits.h"
#include "log.h"
#include "script.h"
#include "server.h"

#define EXIT_STARTUP 2

typedef struct {
  nc_config_t cfg;
  uv_loop_t *loop;
  nc_server_t *server;
  nc_db_t *db;
  nc_checkpoint_t *checkpoint;
  nc_script_t *script;
  uv_signal_t sigint, sigterm;
  char *created_dir;  /* the DB's parent, if this start made it */
  char *web_root;     /* canonical web directory, NULL when there is none */
  int stopping;       /* a signal came: the server is stopping */
  int created_db;     /* the DB file did not exist before this start */
} app_t;

static void handle_request_cb(void *ud, const nc_http_request_t *req,
                              nc_server_reply_t *reply) {
  app_t *app = ud;
  nc_script_handle(app->script, req, reply);
}

/* ---- events of held connections, passed on to the scripts ---- */

static void ws_open_cb(void *ud, const char *key, unsigned long long id) {
  app_t *app = ud;
  nc_script_ws_open(app->script, key, id);
}

static void ws_message_cb(void *ud, const char *key, unsigned long long id,
                          const char *text, size_t len) {
  app_t *app = ud;
  nc_script_ws_message(app->script, key, id, text, len);
}

static void gone_cb(void *ud, const char *key, unsigned long long id,
                    nc_server_gone_t why, int code) {
  static const char *const names[] = {
      [NC_SERVER_GONE_TIMEOUT] = "timeout",   [NC_SERVER_GONE_PEER] = "peer",
      [NC_SERVER_GONE_REPLACED] = "replaced", [NC_SERVER_GONE_CLOSED] = "closed",
      [NC_SERVER_GONE_STALLED] = "stalled",   [NC_SERVER_GONE_PROTOCOL] = "protocol",
      [NC_SERVER_GONE_STOPPING] = "stopping"};
  app_t *app = ud;
  nc_script_gone(app->script, key, id, names[why], code);
}

static void written_cb(void *ud, long long token, int ok) {
  app_t *app = ud;
  nc_script_written(app->script, token, ok);
}

static void stopped_cb(void *ud) {
  app_t *app = ud;
  nc_script_stop_timers(app->script);
  uv_close((uv_handle_t *)&app->sigint, NULL);
  uv_close((uv_handle_t *)&app->sigterm, NULL);
}

/* The first signal stops gracefully: in-flight responses finish, WebSockets
 * get their close frame. A second one (Ctrl-C again) does not wait for
 * that, but still ends the process cleanly, with the database closed. */
static void signal_cb(uv_signal_t *sig, int signum) {
  app_t *app = sig->data;
  const char *name = signum == SIGINT ? "SIGINT" : "SIGTERM";
  if (app->stopping) {
    nc_log(NC_LOG_INFO, "%s again: closing every connection now", name);
    nc_server_stop_now(app->server);
    return;
  }
  app->stopping = 1;
  nc_log(NC_LOG_INFO, "%s: stopping", name);
  nc_server_stop(app->server, stopped_cb, app);
}

/* Creates the DB's parent directory when it is missing (one level, as for
 * the default ./data/), remembering it so a failed start can remove it. */
static int prepare_db_path(app_t *app, char **err) {
  const char *path = app->cfg.db_path;
  struct stat st;
  app->created_db = stat(path, &st) != 0;
  const char *slash = strrchr(path, '/');
  if (!slash || slash == path) return 0;
  char *dir = strndup(path, (size_t)(slash - path));
  if (!dir) return -1;
  if (stat(dir, &st) == 0) {
    free(dir);
    return 0;
  }
  if (mkdir(dir, 0755) != 0) {
    const char *why = strerror(errno);
    *err = malloc(strlen(dir) + strlen(path) + strlen(why) + 64);
    if (*err)
      sprintf(*err, "cannot create directory %s for the database %s: %s", dir, path, why);
    free(dir);
    return -1;
  }
  app->created_dir = dir;
  return 0;
}

/* Removes what a failed start created, so the next start begins clean. */
static void undo_created(app_t *app) {
  if (app->created_db) {
    const char *suffixes[] = {"", "-wal", "-shm", "-journal"};
    for (int i = 0; i < 4; i++) {
      char path[4096];
      snprintf(path, sizeof path, "%s%s", app->cfg.db_path, suffixes[i]);
      unlink(path);
    }
  }
  if (app->created_dir) rmdir(app->created_dir);
}

static int open_scripts(app_t *app, char **err) {
  const nc_config_t *cfg = &app->cfg;
  size_t n = 6 + cfg->extra_count;
  nc_script_config_t *entries = calloc(n, sizeof *entries);
  if (!entries) return -1;
  entries[0] = (nc_script_config_t){"public_url", cfg->public_url};
  entries[1] = (nc_script_config_t){"listen", cfg->host};
  entries[2] = (nc_script_config_t){"db", cfg->db_path};
  entries[3] = (nc_script_config_t){"scripts", cfg->scripts_dir};
  entries[4] = (nc_script_config_t){"sql", cfg->sql_dir};
  entries[5] = (nc_script_config_t){"web", cfg->web_dir};
  for (size_t i = 0; i < cfg->extra_count; i++)
    entries[6 + i] = (nc_script_config_t){cfg->extra[i].key, cfg->extra[i].value};
  app->script = nc_script_open(cfg->scripts_dir, app->loop, app->db, app->server,
                               entries, n, cfg->script_timeout_ms, err);
  free(entries);
  return app->script ? 0 : -1;
}

/* Enough descriptors for max_connections: the soft limit is often 1024
 * while the hard limit allows far more. */
static void raise_fd_limit(unsigned want) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
  rlim_t target = (rlim_t)want + 64;
  if (rl.rlim_cur >= target) return;
  rl.rlim_cur = rl.rlim_max < target ? rl.rlim_max : target;
  if (setrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < want)
    nc_log(NC_LOG_WARN, "open files limited to %lu: fewer than %u connections "
           "will fit", (unsigned long)rl.rlim_cur, want);
}

/* The web directory is optional (scripts that serve no files need none):
 * without it res.file answers its fallback, and the log says why. */
static void resolve_web_root(app_t *app) {
  app->web_root = realpath(app->cfg.web_dir, NULL);
  if (!app->web_root)
    nc_log(NC_LOG_WARN, "web directory %s: %s; no files will be served",
           app->cfg.web_dir, strerror(errno));
}

static int start(app_t *app, char **err) {
  nc_config_t *cfg = &app->cfg;
  resolve_web_root(app);
  nc_server_options_t opts = {
      .http = {.max_header_bytes = cfg->max_header_bytes,
               .max_body_bytes = cfg->max_body_bytes},
      .header_timeout_ms = cfg->header_timeout_ms,
      .idle_timeout_ms = cfg->idle_timeout_ms,
      .body_timeout_ms = cfg->body_timeout_ms,
      .max_connections = cfg->max_connections,
      .max_pending_write_bytes = cfg->max_pending_write_bytes,
      .ws_max_message_bytes = cfg->ws_max_message_bytes,
      .ws_send_window_bytes = cfg->ws_send_window_bytes,
      .ws_stall_timeout_ms = cfg->ws_stall_timeout_ms,
      .web_root = app->web_root,
      .max_static_file_bytes = cfg->max_static_file_bytes,
      .handler = handle_request_cb,
      .handler_ud = app,
      .events = {.ws_open = ws_open_cb,
                 .ws_message = ws_message_cb,
                 .gone = gone_cb,
                 .written = written_cb,
                 .ud = app},
  };
  app->server = nc_server_new(app->loop, &opts);
  if (!app->server) return -1;
  /* Bind first: a busy port is the likeliest failure and costs nothing to
   * undo, while the database would have been created by then. */
  int port;
  int rc = nc_server_listen(app->server, cfg->host, cfg->port, &port);
  if (rc != 0) {
    *err = malloc(strlen(cfg->host) + 128);
    if (*err) sprintf(*err, "cannot listen on %s:%d: %s", cfg->host, cfg->port,
                      uv_strerror(rc));
    return -1;
  }
  if (!cfg->public_url_set) {
    int v6 = strchr(cfg->host, ':') != NULL;
    free(cfg->public_url);
    cfg->public_url = malloc(strlen(cfg->host) + 32);
    if (!cfg->public_url) return -1;
    sprintf(cfg->public_url, v6 ? "http://[%s]:%d" : "http://%s:%d", cfg->host, port);
  }
  if (prepare_db_path(app, err) != 0) return -1;
  app->db = nc_db_open(cfg->db_path, err);
  if (!app->db) return -1;
  if (nc_db_set_cache_kib(app->db, cfg->db_cache_kib) != 0)
    nc_log(NC_LOG_WARN, "db_cache_kib %zu refused: %s", cfg->db_cache_kib,
           sqlite3_errmsg(nc_db_sqlite(app->db)));
  int migrated = nc_db_migrate(app->db, cfg->sql_dir, err);
  if (migrated < 0) return -1;
  app->checkpoint = nc_checkpoint_start(app->loop, nc_db_sqlite(app->db), cfg->db_path,
                                        NC_LIMIT_WAL_CHECKPOINT_PAGES);
  if (!app->checkpoint)
    nc_log(NC_LOG_WARN, "WAL checkpoints stay on the event loop (no worker thread)");
  if (open_scripts(app, err) != 0) return -1;

  uv_signal_init(app->loop, &app->sigint);
  uv_signal_init(app->loop, &app->sigterm);
  app->sigint.data = app->sigterm.data = app;
  uv_signal_start(&app->sigint, signal_cb, SIGINT);
  uv_signal_start(&app->sigterm, signal_cb, SIGTERM);
  if (migrated > 0)
    nc_log(NC_LOG_INFO, "applied %d migrations from %s to %s", migrated,
           cfg->sql_dir, cfg->db_path);
  nc_log(NC_LOG_INFO, "listening on http://%s%s%s:%d (public URL %s, db %s)",
         strchr(cfg->host, ':') ? "[" : "", cfg->host,
         strchr(cfg->host, ':') ? "]" : "", port, cfg->public_url, cfg->db_path);
  return 0;
}

int main(int argc, char **argv) {
  app_t app = {0};
  char *err = NULL;
  nc_config_result_t loaded = nc_config_load(&app.cfg, argc, argv, &err);
  if (loaded != NC_CONFIG_OK) {
    if (loaded == NC_CONFIG_ERROR) fprintf(stderr, "ncserver: %s\n", err ? err : "out of memory");
    free(err);
    nc_config_free(&app.cfg);
    return loaded == NC_CONFIG_EXIT ? 0 : EXIT_STARTUP;
  }
  nc_log_set_level((nc_log_level_t)app.cfg.log_level);
  /* A peer that closes mid-write must cost us an error code, not the
   * process. */
  signal(SIGPIPE, SIG_IGN);
  raise_fd_limit(app.cfg.max_connections);

  app.loop = uv_default_loop();
  int status = 0;
  if (start(&app, &err) != 0) {
    fprintf(stderr, "ncserver: %s\n", err ? err : "out of memory");
    free(err);
    if (app.server) nc_server_stop(app.server, NULL, NULL);
    nc_script_close(app.script);
    app.script = NULL;
    nc_checkpoint_free(app.checkpoint);
    app.checkpoint = NULL;
    nc_db_close(app.db);
    app.db = NULL;
    undo_created(&app);
    status = EXIT_STARTUP;
  }
  uv_run(app.loop, UV_RUN_DEFAULT);
  if (uv_loop_close(app.loop) != 0) nc_log(NC_LOG_WARN, "loop closed with handles open");
  nc_server_free(app.server);
  nc_script_close(app.script);
  nc_checkpoint_free(app.checkpoint);
  nc_db_close(app.db);
  free(app.created_dir);
  free(app.web_root);
  if (status == 0) nc_log(NC_LOG_INFO, "stopped");
  nc_config_free(&app.cfg);
  return status;
}
