/* One-line log records on stderr: "2026-11-28T12:00:00.123Z LEVEL message".
 * Everything the server reports goes through here so the format is one. */
#ifndef NC_LOG_H
#define NC_LOG_H

typedef enum { NC_LOG_DEBUG, NC_LOG_INFO, NC_LOG_WARN, NC_LOG_ERROR } nc_log_level_t;

/* Records below `level` are dropped. Default: NC_LOG_INFO. */
void nc_log_set_level(nc_log_level_t level);

/* Parses "debug", "info", "warn", "error"; returns -1 for anything else. */
int nc_log_level_parse(const char *name);

void nc_log(nc_log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
