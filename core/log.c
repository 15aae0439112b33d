/* Owns the log format and level; callers decide what is worth saying. */
#define _POSIX_C_SOURCE 200809L
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static nc_log_level_t min_level = NC_LOG_INFO;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

void nc_log_set_level(nc_log_level_t level) { min_level = level; }

int nc_log_level_parse(const char *name) {
  for (int i = 0; i < 4; i++)
    if (strcmp(name, level_names[i]) == 0) return i;
  return -1;
}

void nc_log(nc_log_level_t level, const char *fmt, ...) {
  if (level < min_level) return;
  struct timespec ts;
  struct tm tm;
  char stamp[32];
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);

  /* One fprintf per record keeps lines whole when stderr is a pipe shared
   * with a test harness. */
  char msg[8192];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  fprintf(stderr, "%s.%03ldZ %s %s\n", stamp, ts.tv_nsec / 1000000L,
          level_names[level], msg);
}
