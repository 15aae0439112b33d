/* Owns the SQLite connection, the migration runner and the statement cache.
 * What the tables mean is the scripts' business; this file only knows that
 * sql/ holds numbered files to apply once each. */
#define _POSIX_C_SOURCE 200809L
#include "db.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CACHE_BUCKETS 128

typedef struct cached_stmt {
  char *sql;
  sqlite3_stmt *stmt;
  struct cached_stmt *next;
} cached_stmt_t;

struct nc_db {
  sqlite3 *conn;
  char *path; /* as given, for error messages */
  cached_stmt_t *cache[CACHE_BUCKETS];
};

static char *format_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  char *msg = malloc((size_t)n + 1);
  if (!msg) return NULL;
  va_start(ap, fmt);
  vsnprintf(msg, (size_t)n + 1, fmt, ap);
  va_end(ap);
  return msg;
}

static int pragma_text(sqlite3 *conn, const char *sql, char *out, size_t len) {
  sqlite3_stmt *stmt;
  if (sqlite3_prepare_v2(conn, sql, -1, &stmt, NULL) != SQLITE_OK) return -1;
  int rc = sqlite3_step(stmt);
  if (rc == SQLITE_ROW && out) {
    const unsigned char *text = sqlite3_column_text(stmt, 0);
    snprintf(out, len, "%s", text ? (const char *)text : "");
  }
  sqlite3_finalize(stmt);
  return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

static const char *file_kind(mode_t mode) {
  return S_ISDIR(mode)    ? "a directory"
         : S_ISCHR(mode)  ? "a character device"
         : S_ISBLK(mode)  ? "a block device"
         : S_ISFIFO(mode) ? "a FIFO"
         : S_ISSOCK(mode) ? "a socket"
                          : "not a regular file";
}

nc_db_t *nc_db_open(const char *path, char **err) {
  /* SQLite would open a device or a FIFO as it is (reading a FIFO blocks)
   * and create PATH-journal beside it before finding out it cannot be a
   * database; for /dev/null that leaves /dev/null-journal behind. So what
   * exists must be a regular file (or a link to one) before SQLite sees it.
   * A missing file is SQLite's to create, and other stat errors its to
   * report. */
  struct stat st;
  if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
    *err = format_error("cannot use database %s: it is %s, not a regular file", path,
                        file_kind(st.st_mode));
    return NULL;
  }
  nc_db_t *db = calloc(1, sizeof *db);
  if (db) db->path = strdup(path);
  if (!db || !db->path) {
    free(db);
    *err = format_error("out of memory opening %s", path);
    return NULL;
  }
  int rc = sqlite3_open_v2(path, &db->conn,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
  if (rc != SQLITE_OK) {
    *err = format_error("cannot open database %s: %s", path,
                        db->conn ? sqlite3_errmsg(db->conn) : sqlite3_errstr(rc));
    nc_db_close(db);
    return NULL;
  }
  /* A file that opens is not yet proven writable or a database: the WAL
   * switch writes the header, so it fails here rather than on the first
   * request. */
  char mode[16] = "";
  if (pragma_text(db->conn, "PRAGMA journal_mode=WAL", mode, sizeof mode) != 0 ||
      strcmp(mode, "wal") != 0) {
    *err = format_error("cannot use database %s: %s", path,
                        mode[0] ? "WAL mode refused" : sqlite3_errmsg(db->conn));
    nc_db_close(db);
    return NULL;
  }
  /* NORMAL in WAL mode survives a process crash (kill -9) with every
   * committed transaction; only an OS crash may lose the last ones. */
  if (pragma_text(db->conn, "PRAGMA synchronous=NORMAL", NULL, 0) != 0 ||
      pragma_text(db->conn, "PRAGMA foreign_keys=ON", NULL, 0) != 0) {
    *err = format_error("cannot configure database %s: %s", path,
                        sqlite3_errmsg(db->conn));
    nc_db_close(db);
    return NULL;
  }
  /* The server is the only writer; a short wait covers an operator's
   * sqlite3 shell holding a lock for a moment. */
  sqlite3_busy_timeout(db->conn, 2000);
  return db;
}

void nc_db_close(nc_db_t *db) {
  if (!db) return;
  for (int i = 0; i < CACHE_BUCKETS; i++) {
    cached_stmt_t *c = db->cache[i];
    while (c) {
      cached_stmt_t *next = c->next;
      sqlite3_finalize(c->stmt);
      free(c->sql);
      free(c);
      c = next;
    }
  }
  if (db->conn) sqlite3_close(db->conn);
  free(db->path);
  free(db);
}

int nc_db_set_cache_kib(nc_db_t *db, size_t kib) {
  char sql[64];
  /* A negative cache_size is in KiB rather than pages. */
  snprintf(sql, sizeof sql, "PRAGMA cache_size=-%zu", kib);
  return pragma_text(db->conn, sql, NULL, 0);
}

sqlite3 *nc_db_sqlite(nc_db_t *db) { return db->conn; }

static unsigned hash_text(const char *s) {
  unsigned h = 2166136261u; /* FNV-1a */
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
  return h;
}

sqlite3_stmt *nc_db_statement(nc_db_t *db, const char *sql, char **err) {
  unsigned bucket = hash_text(sql) % CACHE_BUCKETS;
  for (cached_stmt_t *c = db->cache[bucket]; c; c = c->next) {
    if (strcmp(c->sql, sql) == 0) {
      sqlite3_reset(c->stmt);
      sqlite3_clear_bindings(c->stmt);
      return c->stmt;
    }
  }
  sqlite3_stmt *stmt = NULL;
  const char *tail = NULL;
  if (sqlite3_prepare_v3(db->conn, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt,
                         &tail) != SQLITE_OK) {
    *err = format_error("%s", sqlite3_errmsg(db->conn));
    return NULL;
  }
  if (!stmt) {
    *err = format_error("empty statement");
    return NULL;
  }
  while (tail && (*tail == ' ' || *tail == '\n' || *tail == '\t' ||
                  *tail == '\r' || *tail == ';'))
    tail++;
  if (tail && *tail) {
    sqlite3_finalize(stmt);
    *err = format_error("only one statement at a time: \"%s\"", tail);
    return NULL;
  }
  cached_stmt_t *c = calloc(1, sizeof *c);
  char *copy = strdup(sql);
  if (!c || !copy) {
    free(c);
    free(copy);
    sqlite3_finalize(stmt);
    *err = format_error("out of memory");
    return NULL;
  }
  c->sql = copy;
  c->stmt = stmt;
  c->next = db->cache[bucket];
  db->cache[bucket] = c;
  return stmt;
}

/* ---- migrations ---- */

typedef struct {
  int version;
  char *name;
} migration_t;

static int is_migration_name(const char *name, int *version) {
  size_t len = strlen(name);
  if (len < 9 || strcmp(name + len - 4, ".sql") != 0) return 0;
  for (int i = 0; i < 3; i++)
    if (name[i] < '0' || name[i] > '9') return 0;
  if (name[3] != '_') return 0;
  *version = (name[0] - '0') * 100 + (name[1] - '0') * 10 + (name[2] - '0');
  return 1;
}

static int compare_migrations(const void *a, const void *b) {
  const migration_t *x = a, *y = b;
  return x->version - y->version;
}

static void free_migrations(migration_t *list, size_t count) {
  for (size_t i = 0; i < count; i++) free(list[i].name);
  free(list);
}

/* Lists the migration files of `dir`, sorted by version. */
static int list_migrations(const char *dir, migration_t **out, size_t *count,
                           char **err) {
  DIR *d = opendir(dir);
  if (!d) {
    *err = format_error("cannot read migrations in %s: %s", dir, strerror(errno));
    return -1;
  }
  migration_t *list = NULL;
  size_t n = 0, cap = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    int version;
    if (!is_migration_name(e->d_name, &version)) continue;
    if (n == cap) {
      cap = cap ? cap * 2 : 16;
      migration_t *grown = realloc(list, cap * sizeof *list);
      if (!grown) goto oom;
      list = grown;
    }
    list[n].version = version;
    list[n].name = strdup(e->d_name);
    if (!list[n].name) goto oom;
    n++;
  }
  closedir(d);
  qsort(list, n, sizeof *list, compare_migrations);
  for (size_t i = 1; i < n; i++) {
    if (list[i].version == list[i - 1].version) {
      *err = format_error("migrations %s and %s share a number", list[i - 1].name,
                          list[i].name);
      free_migrations(list, n);
      return -1;
    }
  }
  *out = list;
  *count = n;
  return 0;
oom:
  closedir(d);
  free_migrations(list, n);
  *err = format_error("out of memory listing %s", dir);
  return -1;
}

static char *read_file(const char *path, char **err) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    *err = format_error("cannot read %s: %s", path, strerror(errno));
    return NULL;
  }
  size_t cap = 4096, len = 0;
  char *buf = malloc(cap);
  size_t got;
  while (buf && (got = fread(buf + len, 1, cap - len - 1, f)) > 0) {
    len += got;
    if (cap - len - 1 == 0) {
      char *grown = realloc(buf, cap * 2);
      if (!grown) {
        free(buf);
        buf = NULL;
        break;
      }
      buf = grown;
      cap *= 2;
    }
  }
  int failed = ferror(f);
  fclose(f);
  if (!buf || failed) {
    free(buf);
    *err = format_error("cannot read %s", path);
    return NULL;
  }
  buf[len] = '\0';
  return buf;
}

static int is_applied(nc_db_t *db, int version, int *applied, char **err) {
  sqlite3_stmt *stmt =
      nc_db_statement(db, "SELECT 1 FROM nc_migrations WHERE version = ?", err);
  if (!stmt) return -1;
  sqlite3_bind_int(stmt, 1, version);
  int rc = sqlite3_step(stmt);
  sqlite3_reset(stmt);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
    *err = format_error("%s", sqlite3_errmsg(db->conn));
    return -1;
  }
  *applied = rc == SQLITE_ROW;
  return 0;
}

static int apply_migration(nc_db_t *db, const char *dir, const migration_t *m,
                           char **err) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, m->name);
  char *sql = read_file(path, err);
  if (!sql) return -1;

  char *msg = NULL;
  if (sqlite3_exec(db->conn, "BEGIN IMMEDIATE", NULL, NULL, &msg) != SQLITE_OK ||
      sqlite3_exec(db->conn, sql, NULL, NULL, &msg) != SQLITE_OK) {
    *err = format_error("migration %s failed: %s", m->name,
                        msg ? msg : sqlite3_errmsg(db->conn));
    sqlite3_free(msg);
    free(sql);
    sqlite3_exec(db->conn, "ROLLBACK", NULL, NULL, NULL);
    return -1;
  }
  free(sql);
  sqlite3_stmt *record = nc_db_statement(
      db,
      "INSERT INTO nc_migrations (version, name, applied_at) "
      "VALUES (?, ?, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))",
      err);
  if (!record) {
    sqlite3_exec(db->conn, "ROLLBACK", NULL, NULL, NULL);
    return -1;
  }
  sqlite3_bind_int(record, 1, m->version);
  sqlite3_bind_text(record, 2, m->name, -1, SQLITE_TRANSIENT);
  int rc = sqlite3_step(record);
  sqlite3_reset(record);
  if (rc != SQLITE_DONE ||
      sqlite3_exec(db->conn, "COMMIT", NULL, NULL, &msg) != SQLITE_OK) {
    *err = format_error("migration %s could not be recorded: %s", m->name,
                        msg ? msg : sqlite3_errmsg(db->conn));
    sqlite3_free(msg);
    sqlite3_exec(db->conn, "ROLLBACK", NULL, NULL, NULL);
    return -1;
  }
  return 0;
}

static int migrate(nc_db_t *db, const char *dir, char **err) {
  char *msg = NULL;
  if (sqlite3_exec(db->conn,
                   "CREATE TABLE IF NOT EXISTS nc_migrations ("
                   " version INTEGER PRIMARY KEY,"
                   " name TEXT NOT NULL,"
                   " applied_at TEXT NOT NULL)",
                   NULL, NULL, &msg) != SQLITE_OK) {
    *err = format_error("cannot create nc_migrations: %s",
                        msg ? msg : sqlite3_errmsg(db->conn));
    sqlite3_free(msg);
    return -1;
  }
  migration_t *list;
  size_t count;
  if (list_migrations(dir, &list, &count, err) != 0) return -1;
  int applied_now = 0;
  for (size_t i = 0; i < count; i++) {
    int applied;
    if (is_applied(db, list[i].version, &applied, err) != 0 ||
        (!applied && apply_migration(db, dir, &list[i], err) != 0)) {
      free_migrations(list, count);
      return -1;
    }
    applied_now += !applied;
  }
  free_migrations(list, count);
  return applied_now;
}

int nc_db_migrate(nc_db_t *db, const char *dir, char **err) {
  int rc = migrate(db, dir, err);
  if (rc < 0) {
    /* The reasons above name the file or statement that failed; the
     * database it failed on is what an operator needs first. */
    char *inner = *err;
    *err = format_error("cannot migrate database %s: %s", db->path,
                        inner ? inner : "out of memory");
    free(inner);
  }
  return rc;
}
