/* The commit hook (sqlite3_wal_hook) runs inside the committing call on
 * the loop thread and may not use the connection; it only queues work.
 * The worker opens its own connection the first time it runs: SQLite
 * connections may be used from another thread as long as each is used by
 * one thread at a time (Debian builds SQLite thread-safe). */
#define _POSIX_C_SOURCE 200809L
#include "checkpoint.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"

struct nc_checkpoint {
  uv_loop_t *loop;
  sqlite3 *conn;   /* the loop's connection, whose commits we watch */
  sqlite3 *worker; /* ours, used only on the worker thread */
  char *path;
  int pages;
  int running;     /* a checkpoint is queued or in progress */
  int again;       /* the WAL grew past `pages` while it ran */
  unsigned count;
  uv_work_t work;
  /* Results, written by the worker and read in after_cb. */
  int rc, log_pages, done_pages;
  double ms;
};

static void work_cb(uv_work_t *req) {
  nc_checkpoint_t *c = req->data;
  uint64_t start = uv_hrtime();
  c->rc = SQLITE_OK;
  if (!c->worker) {
    c->rc = sqlite3_open_v2(c->path, &c->worker, SQLITE_OPEN_READWRITE, NULL);
    if (c->rc == SQLITE_OK) {
      sqlite3_busy_timeout(c->worker, 1000);
      /* A connection learns the file is in WAL mode on its first read;
       * until then a checkpoint through it does nothing. */
      c->rc = sqlite3_exec(c->worker, "SELECT count(*) FROM sqlite_master", NULL, NULL, NULL);
    }
    if (c->rc != SQLITE_OK) {
      /* Opened again next time rather than kept half-working. */
      sqlite3_close(c->worker);
      c->worker = NULL;
    }
  }
  if (c->rc == SQLITE_OK)
    c->rc = sqlite3_wal_checkpoint_v2(c->worker, NULL, SQLITE_CHECKPOINT_PASSIVE,
                                      &c->log_pages, &c->done_pages);
  c->ms = (double)(uv_hrtime() - start) / 1e6;
}

static void start_work(nc_checkpoint_t *c);

static void after_cb(uv_work_t *req, int status) {
  nc_checkpoint_t *c = req->data;
  c->running = 0;
  if (status != 0 || c->rc != SQLITE_OK) {
    /* The WAL only grows until the next try; nothing is lost. */
    nc_log(NC_LOG_WARN, "WAL checkpoint failed: %s",
           status != 0 ? uv_strerror(status) : sqlite3_errstr(c->rc));
    return;
  }
  c->count++;
  nc_log(NC_LOG_DEBUG, "WAL checkpoint: %d of %d pages in %.1f ms, off the loop",
         c->done_pages, c->log_pages, c->ms);
  if (c->again) {
    c->again = 0;
    start_work(c);
  }
}

static void start_work(nc_checkpoint_t *c) {
  c->work.data = c;
  if (uv_queue_work(c->loop, &c->work, work_cb, after_cb) == 0) c->running = 1;
}

static int wal_hook(void *ud, sqlite3 *conn, const char *name, int pages) {
  (void)conn;
  (void)name;
  nc_checkpoint_t *c = ud;
  if (pages < c->pages) return SQLITE_OK;
  if (c->running)
    c->again = 1;
  else
    start_work(c);
  return SQLITE_OK;
}

nc_checkpoint_t *nc_checkpoint_start(uv_loop_t *loop, sqlite3 *conn, const char *path,
                                     int pages) {
  if (!sqlite3_threadsafe()) return NULL; /* a build without mutexes */
  nc_checkpoint_t *c = calloc(1, sizeof *c);
  if (!c || !(c->path = strdup(path))) {
    free(c);
    return NULL;
  }
  c->loop = loop;
  c->conn = conn;
  c->pages = pages > 0 ? pages : 1;
  /* Replaces the automatic checkpoint, which is itself a WAL hook. */
  sqlite3_wal_hook(conn, wal_hook, c);
  return c;
}

unsigned nc_checkpoint_count(const nc_checkpoint_t *c) { return c->count; }

void nc_checkpoint_free(nc_checkpoint_t *c) {
  if (!c) return;
  sqlite3_wal_autocheckpoint(c->conn, c->pages);
  if (c->worker) sqlite3_close(c->worker);
  free(c->path);
  free(c);
}
