/* Owns the command line, the --config file and their defaults. Knows which
 * keys the core uses; every other key of the file is passed through to the
 * scripts untouched. */
#define _POSIX_C_SOURCE 200809L
#include "config.h"

#include <errno.h>
#include <lauxlib.h>
#include <lua.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "limits.h"
#include "log.h"

static const char usage[] =
    "usage: ncserver [--listen HOST:PORT] [--db PATH] [--scripts DIR]\n"
    "                [--public-url URL] [--config FILE]\n"
    "\n"
    "An OMA Notification Channel server (HTTP + WebSocket) with a movies\n"
    "enabler. Routes live in Lua scripts, data in SQLite.\n"
    "\n"
    "  --listen HOST:PORT  address to bind (default 127.0.0.1:8080; port 0\n"
    "                      picks a free port)\n"
    "  --db PATH           SQLite file, created and migrated on first start\n"
    "                      (default ./data/ncserver.db)\n"
    "  --scripts DIR       Lua scripts loaded at start (default: the source\n"
    "                      tree's scripts/)\n"
    "  --public-url URL    base of the absolute URLs the server hands out\n"
    "                      (default http://<listen address>)\n"
    "  --config FILE       Lua config file: the keys above (public_url for\n"
    "                      --public-url), limits and server policy\n"
    "  --help              print this help\n"
    "  --version           print the version\n";

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

static int replace_string(char **slot, const char *value) {
  char *copy = strdup(value);
  if (!copy) return -1;
  free(*slot);
  *slot = copy;
  return 0;
}

int nc_config_parse_listen(const char *text, char **host, int *port) {
  const char *colon;
  size_t host_len;
  const char *host_start = text;
  if (text[0] == '[') {
    const char *close = strchr(text, ']');
    if (!close || close[1] != ':') return -1;
    host_start = text + 1;
    host_len = (size_t)(close - host_start);
    colon = close + 1;
  } else {
    colon = strrchr(text, ':');
    if (!colon) return -1;
    host_len = (size_t)(colon - text);
  }
  if (host_len == 0) return -1;
  char *end;
  errno = 0;
  long p = strtol(colon + 1, &end, 10);
  if (colon[1] == '\0' || *end != '\0' || errno || p < 0 || p > 65535) return -1;
  *host = strndup(host_start, host_len);
  if (!*host) return -1;
  *port = (int)p;
  return 0;
}

static int set_listen(nc_config_t *cfg, const char *text, char **err) {
  char *host;
  int port;
  if (nc_config_parse_listen(text, &host, &port) != 0) {
    *err = format_error("bad listen address \"%s\": want HOST:PORT", text);
    return -1;
  }
  free(cfg->host);
  cfg->host = host;
  cfg->port = port;
  return 0;
}

static int set_public_url(nc_config_t *cfg, const char *text, char **err) {
  if (strncmp(text, "http://", 7) != 0 && strncmp(text, "https://", 8) != 0) {
    *err = format_error("bad public URL \"%s\": want http://... or https://...", text);
    return -1;
  }
  if (replace_string(&cfg->public_url, text) != 0) return -1;
  /* URLs are built as public_url .. "/path": a trailing slash would double. */
  size_t len = strlen(cfg->public_url);
  while (len > 0 && cfg->public_url[len - 1] == '/') cfg->public_url[--len] = '\0';
  cfg->public_url_set = 1;
  return 0;
}

typedef struct {
  const char *key;
  size_t offset;
  int is_size;    /* size_t field, else unsigned */
  int zero_is_off; /* 0 is allowed and turns the limit off */
} numeric_key_t;

static const numeric_key_t numeric_keys[] = {
    {"max_header_bytes", offsetof(nc_config_t, max_header_bytes), 1, 0},
    {"max_body_bytes", offsetof(nc_config_t, max_body_bytes), 1, 0},
    {"max_pending_write_bytes", offsetof(nc_config_t, max_pending_write_bytes), 1, 0},
    {"header_timeout_ms", offsetof(nc_config_t, header_timeout_ms), 0, 0},
    {"idle_timeout_ms", offsetof(nc_config_t, idle_timeout_ms), 0, 0},
    {"body_timeout_ms", offsetof(nc_config_t, body_timeout_ms), 0, 0},
    {"max_connections", offsetof(nc_config_t, max_connections), 0, 0},
    {"ws_max_message_bytes", offsetof(nc_config_t, ws_max_message_bytes), 1, 0},
    {"ws_send_window_bytes", offsetof(nc_config_t, ws_send_window_bytes), 1, 0},
    {"ws_stall_timeout_ms", offsetof(nc_config_t, ws_stall_timeout_ms), 0, 0},
    {"max_static_file_bytes", offsetof(nc_config_t, max_static_file_bytes), 1, 0},
    {"db_cache_kib", offsetof(nc_config_t, db_cache_kib), 1, 0},
    {"script_timeout_ms", offsetof(nc_config_t, script_timeout_ms), 0, 1},
};

static int add_extra(nc_config_t *cfg, const char *key, const char *value) {
  nc_config_entry_t *grown =
      realloc(cfg->extra, (cfg->extra_count + 1) * sizeof *cfg->extra);
  if (!grown) return -1;
  cfg->extra = grown;
  nc_config_entry_t *e = &cfg->extra[cfg->extra_count];
  e->key = strdup(key);
  e->value = strdup(value);
  if (!e->key || !e->value) {
    free(e->key);
    free(e->value);
    return -1;
  }
  cfg->extra_count++;
  return 0;
}

/* Applies one key of the config file, whose value is at the top of L. */
static int apply_file_key(nc_config_t *cfg, lua_State *L, const char *key,
                          const char *file, char **err) {
  int type = lua_type(L, -1);
  for (size_t i = 0; i < sizeof numeric_keys / sizeof *numeric_keys; i++) {
    if (strcmp(key, numeric_keys[i].key) != 0) continue;
    int isnum;
    lua_Integer v = lua_tointegerx(L, -1, &isnum);
    lua_Integer least = numeric_keys[i].zero_is_off ? 0 : 1;
    if (type != LUA_TNUMBER || !isnum || v < least || v > 0x7fffffff) {
      *err = format_error(least ? "%s: %s must be a positive integer"
                                : "%s: %s must be an integer >= 0 (0: no limit)",
                          file, key);
      return -1;
    }
    char *field = (char *)cfg + numeric_keys[i].offset;
    if (numeric_keys[i].is_size)
      *(size_t *)field = (size_t)v;
    else
      *(unsigned *)field = (unsigned)v;
    return 0;
  }
  if (type == LUA_TTABLE || type == LUA_TFUNCTION || type == LUA_TUSERDATA ||
      type == LUA_TTHREAD) {
    *err = format_error("%s: %s must be a string, number or boolean", file, key);
    return -1;
  }
  const char *value = type == LUA_TBOOLEAN ? (lua_toboolean(L, -1) ? "true" : "false")
                                           : lua_tostring(L, -1);
  if (strcmp(key, "listen") == 0) return set_listen(cfg, value, err);
  if (strcmp(key, "public_url") == 0) return set_public_url(cfg, value, err);
  if (strcmp(key, "log_level") == 0) {
    cfg->log_level = nc_log_level_parse(value);
    if (cfg->log_level < 0) {
      *err = format_error("%s: log_level must be debug, info, warn or error", file);
      return -1;
    }
    return 0;
  }
  char **slot = strcmp(key, "db") == 0        ? &cfg->db_path
                : strcmp(key, "scripts") == 0 ? &cfg->scripts_dir
                : strcmp(key, "sql") == 0     ? &cfg->sql_dir
                : strcmp(key, "web") == 0     ? &cfg->web_dir
                                              : NULL;
  int rc = slot ? replace_string(slot, value) : add_extra(cfg, key, value);
  if (rc != 0) *err = format_error("out of memory reading %s", file);
  return rc;
}

/* Runs the config file with no libraries and an empty environment, so it
 * can compute values but not touch the system. */
static int load_file(nc_config_t *cfg, const char *file, char **err) {
  lua_State *L = luaL_newstate();
  if (!L) {
    *err = format_error("out of memory reading %s", file);
    return -1;
  }
  int rc = -1;
  if (luaL_loadfile(L, file) != LUA_OK) {
    *err = format_error("bad config file: %s", lua_tostring(L, -1));
    goto done;
  }
  lua_newtable(L); /* the file's _ENV: where its globals land */
  lua_pushvalue(L, -1);
  lua_setupvalue(L, -3, 1);
  lua_insert(L, -2);
  if (lua_pcall(L, 0, 1, 0) != LUA_OK) {
    *err = format_error("bad config file: %s", lua_tostring(L, -1));
    goto done;
  }
  if (!lua_istable(L, -1)) lua_pop(L, 1); /* no table returned: use globals */
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    if (lua_type(L, -2) != LUA_TSTRING) {
      *err = format_error("%s: keys must be names", file);
      goto done;
    }
    /* Copy: lua_tostring below must not convert the key in place. */
    char key[128];
    snprintf(key, sizeof key, "%s", lua_tostring(L, -2));
    if (apply_file_key(cfg, L, key, file, err) != 0) goto done;
    lua_pop(L, 1);
  }
  rc = 0;
done:
  lua_close(L);
  return rc;
}

static int set_defaults(nc_config_t *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->port = 8080;
  cfg->log_level = NC_LOG_INFO;
  cfg->max_header_bytes = NC_LIMIT_HEADER_BYTES;
  cfg->max_body_bytes = NC_LIMIT_BODY_BYTES;
  cfg->header_timeout_ms = NC_LIMIT_HEADER_TIMEOUT_MS;
  cfg->idle_timeout_ms = NC_LIMIT_IDLE_TIMEOUT_MS;
  cfg->body_timeout_ms = NC_LIMIT_BODY_TIMEOUT_MS;
  cfg->script_timeout_ms = NC_LIMIT_SCRIPT_TIMEOUT_MS;
  cfg->max_connections = NC_LIMIT_MAX_CONNECTIONS;
  cfg->max_pending_write_bytes = NC_LIMIT_PENDING_WRITE_BYTES;
  cfg->ws_max_message_bytes = NC_LIMIT_WS_MESSAGE_BYTES;
  cfg->ws_send_window_bytes = NC_LIMIT_WS_SEND_WINDOW_BYTES;
  cfg->ws_stall_timeout_ms = NC_LIMIT_WS_STALL_TIMEOUT_MS;
  cfg->host = strdup("127.0.0.1");
  cfg->db_path = strdup("./data/ncserver.db");
  cfg->scripts_dir = strdup(NC_SOURCE_DIR "/scripts");
  cfg->sql_dir = strdup(NC_SOURCE_DIR "/sql");
  cfg->web_dir = strdup(NC_SOURCE_DIR "/web");
  cfg->max_static_file_bytes = NC_LIMIT_STATIC_FILE_BYTES;
  cfg->db_cache_kib = NC_LIMIT_DB_CACHE_KIB;
  return cfg->host && cfg->db_path && cfg->scripts_dir && cfg->sql_dir && cfg->web_dir
             ? 0 : -1;
}

static const char *const flag_names[] = {"--listen", "--db", "--scripts",
                                         "--public-url", "--config"};
enum { FLAG_LISTEN, FLAG_DB, FLAG_SCRIPTS, FLAG_PUBLIC_URL, FLAG_CONFIG, FLAG_COUNT };

nc_config_result_t nc_config_load(nc_config_t *cfg, int argc, char **argv,
                                  char **err) {
  *err = NULL;
  if (set_defaults(cfg) != 0) {
    *err = format_error("out of memory");
    return NC_CONFIG_ERROR;
  }
  /* Flags win over the file, so collect them before reading it. */
  const char *flags[FLAG_COUNT] = {0};
  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i];
    if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
      fputs(usage, stdout);
      return NC_CONFIG_EXIT;
    }
    if (strcmp(arg, "--version") == 0) {
      printf("ncserver %s\n", NC_VERSION);
      return NC_CONFIG_EXIT;
    }
    int which = -1;
    const char *value = NULL;
    for (int f = 0; f < FLAG_COUNT; f++) {
      size_t len = strlen(flag_names[f]);
      if (strncmp(arg, flag_names[f], len) != 0) continue;
      if (arg[len] == '=') {
        which = f;
        value = arg + len + 1;
      } else if (arg[len] == '\0') {
        which = f;
        if (i + 1 >= argc) {
          *err = format_error("%s needs a value (see --help)", flag_names[f]);
          return NC_CONFIG_ERROR;
        }
        value = argv[++i];
      }
    }
    if (which < 0) {
      *err = format_error("unknown argument \"%s\" (see --help)", arg);
      return NC_CONFIG_ERROR;
    }
    if (value[0] == '\0') {
      *err = format_error("%s needs a non-empty value", flag_names[which]);
      return NC_CONFIG_ERROR;
    }
    flags[which] = value;
  }
  if (flags[FLAG_CONFIG] && load_file(cfg, flags[FLAG_CONFIG], err) != 0)
    return NC_CONFIG_ERROR;
  if ((flags[FLAG_LISTEN] && set_listen(cfg, flags[FLAG_LISTEN], err) != 0) ||
      (flags[FLAG_PUBLIC_URL] &&
       set_public_url(cfg, flags[FLAG_PUBLIC_URL], err) != 0))
    return NC_CONFIG_ERROR;
  if ((flags[FLAG_DB] && replace_string(&cfg->db_path, flags[FLAG_DB]) != 0) ||
      (flags[FLAG_SCRIPTS] &&
       replace_string(&cfg->scripts_dir, flags[FLAG_SCRIPTS]) != 0)) {
    *err = format_error("out of memory");
    return NC_CONFIG_ERROR;
  }
  return NC_CONFIG_OK;
}

void nc_config_free(nc_config_t *cfg) {
  free(cfg->host);
  free(cfg->db_path);
  free(cfg->scripts_dir);
  free(cfg->sql_dir);
  free(cfg->web_dir);
  free(cfg->public_url);
  for (size_t i = 0; i < cfg->extra_count; i++) {
    free(cfg->extra[i].key);
    free(cfg->extra[i].value);
  }
  free(cfg->extra);
  memset(cfg, 0, sizeof *cfg);
}
