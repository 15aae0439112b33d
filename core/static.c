/* Serving a file from the web root. The path comes from the scripts, which
 * may build it from a request, so it is checked twice: by its text (no
 * segment may climb or hide) and by where it really leads (realpath, so a
 * symlink inside the root cannot point outside it). Validators are the
 * file's size and modification time, which change whenever a user edits a
 * page; Cache-Control: no-cache makes browsers revalidate each time, so an
 * edited page shows on the next reload without a restart. */
#define _XOPEN_SOURCE 700 /* realpath */
#include "static.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

static const struct {
  const char *ext;
  const char *type;
} content_types[] = {
    {"html", "text/html; charset=utf-8"},
    {"htm", "text/html; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"json", "application/json"},
    {"txt", "text/plain; charset=utf-8"},
    {"svg", "image/svg+xml"},
    {"png", "image/png"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"gif", "image/gif"},
    {"webp", "image/webp"},
    {"ico", "image/x-icon"},
    {"woff2", "font/woff2"},
};

const char *nc_static_content_type(const char *name) {
  const char *slash = strrchr(name, '/');
  const char *dot = strrchr(slash ? slash : name, '.');
  if (dot) {
    for (size_t i = 0; i < sizeof content_types / sizeof content_types[0]; i++)
      if (strcasecmp(dot + 1, content_types[i].ext) == 0) return content_types[i].type;
  }
  return "application/octet-stream";
}

/* By its text alone, `rel` names something below the root. */
static int safe_relative(const char *rel) {
  if (!*rel || strchr(rel, '\\')) return 0;
  const char *seg = rel;
  for (;;) {
    size_t len = strcspn(seg, "/");
    /* Empty (leading, trailing or doubled "/"), ".", ".." and hidden
     * names such as .git or .env. */
    if (len == 0 || seg[0] == '.') return 0;
    if (seg[len] == '\0') return 1;
    seg += len + 1;
  }
}

/* RFC 9110 13.1.2: "*" or a list of entity tags, compared weakly. */
static int etag_matches(const char *header, const char *etag) {
  const char *p = header;
  while (*p) {
    while (*p == ' ' || *p == '\t' || *p == ',') p++;
    if (*p == '*') return 1;
    if (p[0] == 'W' && p[1] == '/') p += 2;
    const char *start = p;
    if (*p == '"') {
      p = strchr(p + 1, '"');
      if (!p) return 0;
      p++;
    } else {
      while (*p && *p != ',') p++;
    }
    size_t len = (size_t)(p - start);
    if (len == strlen(etag) && strncmp(start, etag, len) == 0) return 1;
  }
  return 0;
}

static int add_header(nc_http_response_t *res, const char *name, const char *value) {
  nc_http_header_t *grown =
      realloc(res->headers, (res->header_count + 1) * sizeof *res->headers);
  if (!grown) return -1;
  res->headers = grown;
  nc_http_header_t *h = &res->headers[res->header_count];
  h->name = strdup(name);
  h->value = strdup(value);
  if (!h->name || !h->value) {
    free(h->name);
    free(h->value);
    return -1;
  }
  res->header_count++;
  return 0;
}

/* Reads the whole of an open regular file of `size` bytes. */
static char *read_all(int fd, size_t size) {
  char *data = malloc(size ? size : 1);
  if (!data) return NULL;
  size_t got = 0;
  while (got < size) {
    ssize_t n = read(fd, data + got, size - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      free(data);
      return NULL;
    }
    got += (size_t)n;
  }
  return data;
}

int nc_static_serve(const char *root, const char *rel, size_t max_bytes,
                    const nc_http_request_t *req, nc_http_response_t *res,
                    const char **why) {
  if (!safe_relative(rel)) {
    *why = "path refused";
    return -1;
  }
  size_t root_len = strlen(root);
  char *joined = malloc(root_len + strlen(rel) + 2);
  if (!joined) {
    *why = "out of memory";
    return -1;
  }
  sprintf(joined, "%s/%s", root, rel);
  char *real = realpath(joined, NULL);
  free(joined);
  if (!real) {
    *why = "no such file";
    return -1;
  }
  if (strncmp(real, root, root_len) != 0 || real[root_len] != '/') {
    free(real);
    *why = "path leads outside the web root";
    return -1;
  }
  int fd = open(real, O_RDONLY | O_CLOEXEC);
  const char *type = nc_static_content_type(rel);
  free(real);
  if (fd < 0) {
    *why = "cannot open";
    return -1;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    *why = "not a regular file";
    return -1;
  }
  if ((unsigned long long)st.st_size > max_bytes) {
    close(fd);
    *why = "file larger than max_static_file_bytes";
    return -1;
  }
  char etag[64], modified[30];
  snprintf(etag, sizeof etag, "\"%llx-%llx.%lx\"", (unsigned long long)st.st_size,
           (unsigned long long)st.st_mtim.tv_sec, (unsigned long)st.st_mtim.tv_nsec);
  nc_http_format_date(modified, st.st_mtim.tv_sec);

  /* RFC 9110 13.2.2: If-None-Match wins; If-Modified-Since only counts
   * without it, and only for GET and HEAD (the only methods routed here). */
  const char *inm = nc_http_request_header(req, "if-none-match");
  const char *ims = nc_http_request_header(req, "if-modified-since");
  time_t since;
  int not_modified = inm ? etag_matches(inm, etag)
                         : ims && nc_http_parse_date(ims, &since) == 0 &&
                               st.st_mtim.tv_sec <= since;
  char *body = NULL;
  if (!not_modified) {
    body = read_all(fd, (size_t)st.st_size);
    if (!body) {
      close(fd);
      *why = "read failed";
      return -1;
    }
  }
  close(fd);
  res->status = not_modified ? 304 : 200;
  res->body = body;
  res->body_len = body ? (size_t)st.st_size : 0;
  if ((!not_modified && add_header(res, "Content-Type", type)) ||
      add_header(res, "ETag", etag) || add_header(res, "Last-Modified", modified) ||
      add_header(res, "Cache-Control", "no-cache") ||
      add_header(res, "X-Content-Type-Options", "nosniff")) {
    nc_http_response_free(res);
    *why = "out of memory";
    return -1;
  }
  return 0;
}
