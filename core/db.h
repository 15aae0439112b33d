/* SQLite: opening the database, applying migrations, caching statements.
 *
 * One connection, used only from the event loop thread. */
#ifndef NC_DB_H
#define NC_DB_H

#include <stddef.h>

#include <sqlite3.h>

typedef struct nc_db nc_db_t;

/* Opens (creating if needed) the database at `path` in WAL mode with
 * foreign keys on. A `path` that exists but is not a regular file (a
 * directory, /dev/null, a FIFO) is refused before SQLite opens it, so
 * nothing is created beside it. Returns NULL and a malloc'd one-line reason
 * naming `path` in *err (caller frees) on failure. */
nc_db_t *nc_db_open(const char *path, char **err);

/* Finalizes cached statements and closes the connection. NULL is fine. */
void nc_db_close(nc_db_t *db);

/* Applies, in order, every `NNN_name.sql` file of `dir` not yet recorded in
 * the nc_migrations table, each in its own transaction together with its
 * record. Returns the number applied, or -1 with *err set (malloc'd, one
 * line naming the database and what failed) and the failing file rolled
 * back. Logs nothing: a failed start must print only its one-line reason. */
int nc_db_migrate(nc_db_t *db, const char *dir, char **err);

/* Returns the prepared statement for `sql`, compiled on first use and cached
 * for the life of `db`, reset and with bindings cleared. The db owns it:
 * never finalize it. NULL with *err set (malloc'd) when it does not compile
 * or `sql` holds more than one statement. */
sqlite3_stmt *nc_db_statement(nc_db_t *db, const char *sql, char **err);

/* Sets the page cache to at most `kib` KiB (pages are allocated only as
 * they are used). 0, or -1 when SQLite refuses. */
int nc_db_set_cache_kib(nc_db_t *db, size_t kib);

/* The raw connection, for sqlite3_errmsg, sqlite3_changes and friends. */
sqlite3 *nc_db_sqlite(nc_db_t *db);

#endif
