/* The effective configuration: defaults, then the --config file, then flags.
 *
 * The config file is Lua, run in a sandbox with no libraries; it either
 * returns a table or sets globals, with keys named as below:
 *
 *   listen = "127.0.0.1:0"        public_url = "http://example.org"
 *   db = "/tmp/x.db"              scripts = "/srv/scripts"
 *   sql = "/srv/sql"              log_level = "debug"
 *   web = "/srv/web"              (files for res.file; default <source>/web)
 *   max_header_bytes, max_body_bytes, header_timeout_ms, idle_timeout_ms,
 *   body_timeout_ms,
 *   max_connections, max_pending_write_bytes, ws_max_message_bytes,
 *   ws_send_window_bytes, ws_stall_timeout_ms, max_static_file_bytes,
 *   db_cache_kib   (limits.h)
 *   script_timeout_ms  (limits.h; 0 means no limit)
 *
 * Keys it does not know (server policy for the scripts, such as channel
 * lifetimes) are kept and handed to Lua as core.config. */
#ifndef NC_CONFIG_H
#define NC_CONFIG_H

#include <stddef.h>

typedef struct {
  char *key;
  char *value; /* text form; numbers as Lua prints them */
} nc_config_entry_t;

typedef struct {
  char *host;        /* from listen */
  int port;
  char *db_path;
  char *scripts_dir;
  char *sql_dir;
  char *web_dir;
  char *public_url;  /* "http://host:port" when not set; filled in once the
                        real port is known */
  int public_url_set;
  int log_level;
  size_t max_header_bytes;
  size_t max_body_bytes;
  unsigned header_timeout_ms;
  unsigned idle_timeout_ms;
  unsigned body_timeout_ms;
  unsigned script_timeout_ms; /* 0: no limit */
  unsigned max_connections;
  size_t max_pending_write_bytes;
  size_t ws_max_message_bytes;
  size_t ws_send_window_bytes;
  unsigned ws_stall_timeout_ms;
  size_t max_static_file_bytes;
  size_t db_cache_kib;
  nc_config_entry_t *extra; /* keys of the config file not named above */
  size_t extra_count;
} nc_config_t;

typedef enum {
  NC_CONFIG_OK = 0,
  NC_CONFIG_EXIT = 1,   /* --help or --version printed: exit 0 */
  NC_CONFIG_ERROR = -1  /* *err holds a one-line reason: exit 2 */
} nc_config_result_t;

/* Fills *cfg from argv. On NC_CONFIG_ERROR, *err is a malloc'd one-line
 * message (caller frees). The caller frees *cfg with nc_config_free() in
 * every case. */
nc_config_result_t nc_config_load(nc_config_t *cfg, int argc, char **argv,
                                  char **err);
void nc_config_free(nc_config_t *cfg);

/* Splits "HOST:PORT" or "[V6]:PORT" into a malloc'd host and a port; 0 on
 * success, -1 when malformed. */
int nc_config_parse_listen(const char *text, char **host, int *port);

#endif
