/* db.c: opening, WAL, migrations applied once and in order, a failing
 * migration rolled back whole, the statement cache. Each test works in a
 * fresh temporary directory. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "checkpoint.h"
#include "db.h"

static char workdir[256];

static void remove_workdir(void) {
  if (!workdir[0]) return;
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", workdir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", workdir);
  workdir[0] = '\0';
}

static void fresh_dir(void) {
  remove_workdir();
  snprintf(workdir, sizeof workdir, "/tmp/nc_test_db_XXXXXX");
  if (!mkdtemp(workdir)) {
    perror("mkdtemp");
    exit(1);
  }
  char path[512];
  snprintf(path, sizeof path, "%s/sql", workdir);
  mkdir(path, 0755);
}

static void write_migration(const char *name, const char *sql) {
  char path[512];
  snprintf(path, sizeof path, "%s/sql/%s", workdir, name);
  FILE *f = fopen(path, "w");
  fputs(sql, f);
  fclose(f);
}

static nc_db_t *open_db(void) {
  char path[512], *err = NULL;
  snprintf(path, sizeof path, "%s/test.db", workdir);
  nc_db_t *db = nc_db_open(path, &err);
  if (!db) fprintf(stderr, "open failed: %s\n", err);
  free(err);
  return db;
}

static const char *sql_dir(void) {
  static char path[512];
  snprintf(path, sizeof path, "%s/sql", workdir);
  return path;
}

static long long scalar(nc_db_t *db, const char *sql) {
  char *err = NULL;
  sqlite3_stmt *stmt = nc_db_statement(db, sql, &err);
  if (!stmt) {
    fprintf(stderr, "scalar: %s\n", err);
    free(err);
    return -1;
  }
  long long v = sqlite3_step(stmt) == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : -1;
  sqlite3_reset(stmt);
  return v;
}

static void test_open_uses_wal(void) {
  fresh_dir();
  nc_db_t *db = open_db();
  CHECK(db != NULL);
  char *err = NULL;
  sqlite3_stmt *stmt = nc_db_statement(db, "PRAGMA journal_mode", &err);
  CHECK(stmt != NULL);
  CHECK_INT(sqlite3_step(stmt), SQLITE_ROW);
  CHECK_STR((const char *)sqlite3_column_text(stmt, 0), "wal");
  sqlite3_reset(stmt);
  CHECK_INT(scalar(db, "PRAGMA foreign_keys"), 1);
  nc_db_close(db);
}

static void test_open_unwritable_path_fails(void) {
  char *err = NULL;
  nc_db_t *db = nc_db_open("/proc/ncserver-no-such-dir/x.db", &err);
  CHECK(db == NULL);
  CHECK(err != NULL && strstr(err, "/proc/ncserver-no-such-dir/x.db") != NULL);
  free(err);
}

/* Only a regular file (or a link to one) may be a database: SQLite would
 * otherwise create PATH-journal beside a directory or device, and block
 * reading a FIFO. Refused with the path named, and nothing created. */
static void test_open_refuses_what_is_not_a_file(void) {
  fresh_dir();
  char fifo[512];
  snprintf(fifo, sizeof fifo, "%s/fifo", workdir);
  CHECK_INT(mkfifo(fifo, 0600), 0);
  const char *paths[] = {workdir, fifo};
  const char *kinds[] = {"directory", "FIFO"};
  for (int i = 0; i < 2; i++) {
    char *err = NULL;
    nc_db_t *db = nc_db_open(paths[i], &err);
    CHECK(db == NULL);
    CHECK(err != NULL && strstr(err, paths[i]) != NULL);
    CHECK(err != NULL && strstr(err, kinds[i]) != NULL);
    free(err);
    nc_db_close(db);
    char journal[600];
    snprintf(journal, sizeof journal, "%s-journal", paths[i]);
    CHECK(access(journal, F_OK) != 0);
  }
}

static void test_migrations_apply_in_order_once(void) {
  fresh_dir();
  /* Written out of order: 002 depends on 001, so order matters. */
  write_migration("002_add_row.sql", "INSERT INTO t (v) VALUES ('two');");
  write_migration("001_create.sql", "CREATE TABLE t (v TEXT);");
  write_migration("README.txt", "not a migration");
  write_migration("03_bad_name.sql", "this would not parse");
  nc_db_t *db = open_db();
  char *err = NULL;
  CHECK_INT(nc_db_migrate(db, sql_dir(), &err), 2);
  CHECK_INT(scalar(db, "SELECT count(*) FROM t"), 1);
  CHECK_INT(scalar(db, "SELECT count(*) FROM nc_migrations"), 2);
  CHECK_INT(scalar(db, "SELECT max(version) FROM nc_migrations"), 2);
  /* A second start applies nothing again. */
  CHECK_INT(nc_db_migrate(db, sql_dir(), &err), 0);
  CHECK_INT(scalar(db, "SELECT count(*) FROM t"), 1);
  /* A new file is picked up on the next start. */
  write_migration("003_more.sql", "INSERT INTO t (v) VALUES ('three');");
  CHECK_INT(nc_db_migrate(db, sql_dir(), &err), 1);
  CHECK_INT(scalar(db, "SELECT count(*) FROM t"), 2);
  nc_db_close(db);
}

static void test_failing_migration_rolls_back(void) {
  fresh_dir();
  write_migration("001_create.sql", "CREATE TABLE t (v TEXT);");
  write_migration("002_half.sql",
                  "INSERT INTO t (v) VALUES ('kept only if all succeed');\n"
                  "INSERT INTO no_such_table VALUES (1);");
  nc_db_t *db = open_db();
  char *err = NULL;
  CHECK_INT(nc_db_migrate(db, sql_dir(), &err), -1);
  CHECK(err != NULL && strstr(err, "002_half.sql") != NULL);
  CHECK(err != NULL && strstr(err, "no_such_table") != NULL);
  /* The database is named too: a start fails with this one line. */
  char path[512];
  snprintf(path, sizeof path, "%s/test.db", workdir);
  CHECK(err != NULL && strstr(err, path) != NULL);
  free(err);
  err = NULL;
  CHECK_INT(scalar(db, "SELECT count(*) FROM t"), 0);
  CHECK_INT(scalar(db, "SELECT count(*) FROM nc_migrations"), 1);
  nc_db_close(db);
}

static void test_duplicate_numbers_rejected(void) {
  fresh_dir();
  write_migration("001_a.sql", "CREATE TABLE a (v TEXT);");
  write_migration("001_b.sql", "CREATE TABLE b (v TEXT);");
  nc_db_t *db = open_db();
  char *err = NULL;
  CHECK_INT(nc_db_migrate(db, sql_dir(), &err), -1);
  CHECK(err != NULL && strstr(err, "share a number") != NULL);
  free(err);
  nc_db_close(db);
}

static void test_missing_dir_reported(void) {
  fresh_dir();
  nc_db_t *db = open_db();
  char *err = NULL;
  CHECK_INT(nc_db_migrate(db, "/nonexistent/ncserver/sql", &err), -1);
  CHECK(err != NULL && strstr(err, "/nonexistent/ncserver/sql") != NULL);
  free(err);
  nc_db_close(db);
}

static void test_statement_cache(void) {
  fresh_dir();
  nc_db_t *db = open_db();
  char *err = NULL;
  sqlite3_stmt *a = nc_db_statement(db, "SELECT ?1 + 1", &err);
  CHECK(a != NULL);
  sqlite3_bind_int(a, 1, 41);
  CHECK_INT(sqlite3_step(a), SQLITE_ROW);
  CHECK_INT(sqlite3_column_int(a, 0), 42);
  /* Same text: same statement, reset and with its binding cleared. */
  sqlite3_stmt *b = nc_db_statement(db, "SELECT ?1 + 1", &err);
  CHECK(a == b);
  CHECK_INT(sqlite3_step(b), SQLITE_ROW);
  CHECK_INT(sqlite3_column_type(b, 0), SQLITE_NULL);
  sqlite3_reset(b);
  CHECK(nc_db_statement(db, "SELECT 1; SELECT 2", &err) == NULL);
  CHECK(err != NULL && strstr(err, "one statement") != NULL);
  free(err);
  err = NULL;
  CHECK(nc_db_statement(db, "SELEKT nonsense", &err) == NULL);
  CHECK(err != NULL);
  free(err);
  nc_db_close(db);
}

static void test_project_migrations_apply(void) {
  /* The real sql/ of the source tree: it must apply cleanly to an empty
   * database and seed at least 50 films. */
  const char *src = getenv("NC_SOURCE_DIR");
  if (!src) src = NC_SOURCE_DIR;
  char dir[512];
  snprintf(dir, sizeof dir, "%s/sql", src);
  fresh_dir();
  nc_db_t *db = open_db();
  char *err = NULL;
  int applied = nc_db_migrate(db, dir, &err);
  if (applied < 0) fprintf(stderr, "project migrations: %s\n", err);
  free(err);
  CHECK(applied >= 2);
  CHECK(scalar(db, "SELECT count(*) FROM movies") >= 50);
  nc_db_close(db);
}

static long long file_size(const char *name) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", workdir, name);
  struct stat st;
  return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

/* ~400 KiB in one transaction: about 100 WAL pages. */
static void write_pages(nc_db_t *db) {
  sqlite3 *conn = nc_db_sqlite(db);
  sqlite3_exec(conn, "CREATE TABLE IF NOT EXISTS blobs (b BLOB)", NULL, NULL, NULL);
  sqlite3_exec(conn,
               "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100) "
               "INSERT INTO blobs SELECT randomblob(4000) FROM n",
               NULL, NULL, NULL);
}

static void test_checkpoints_run_off_the_loop(void) {
  fresh_dir();
  nc_db_t *db = open_db();
  uv_loop_t loop;
  uv_loop_init(&loop);
  char path[512];
  snprintf(path, sizeof path, "%s/test.db", workdir);
  nc_checkpoint_t *cp = nc_checkpoint_start(&loop, nc_db_sqlite(db), path, 50);
  CHECK(cp != NULL);
  long long before = file_size("test.db");
  write_pages(db);
  /* The commit only queued the work: nothing was copied back yet. */
  CHECK_INT(file_size("test.db"), before);
  CHECK_INT(nc_checkpoint_count(cp), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK_INT(nc_checkpoint_count(cp), 1);
  CHECK(file_size("test.db") > before + 300 * 1024);
  /* Below the threshold nothing is started, and SQLite's own automatic
   * checkpoint stays off while ours is in charge. */
  sqlite3_exec(nc_db_sqlite(db), "INSERT INTO blobs VALUES (x'00')", NULL, NULL, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK_INT(nc_checkpoint_count(cp), 1);
  nc_checkpoint_free(cp);
  CHECK_INT(uv_loop_close(&loop), 0);
  nc_db_close(db);
}

int main(void) {
  RUN(test_open_uses_wal);
  RUN(test_open_unwritable_path_fails);
  RUN(test_open_refuses_what_is_not_a_file);
  RUN(test_migrations_apply_in_order_once);
  RUN(test_failing_migration_rolls_back);
  RUN(test_duplicate_numbers_rejected);
  RUN(test_missing_dir_reported);
  RUN(test_statement_cache);
  RUN(test_project_migrations_apply);
  RUN(test_checkpoints_run_off_the_loop);
  remove_workdir();
  return check_report();
}
