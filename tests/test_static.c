/* static.c: what is served (type, validators, body), what is refused (every
 * way a path could leave the root or reach a hidden file), conditional
 * requests, and the size limit. Each test works in a fresh temporary web
 * root with a sibling "outside" directory that symlinks point to. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "static.h"

static char base[256], root[512];

static void write_file(const char *dir, const char *name, const char *text) {
  char path[768];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "w");
  if (!f) {
    perror(path);
    exit(1);
  }
  fputs(text, f);
  fclose(f);
}

static void setup(void) {
  snprintf(base, sizeof base, "/tmp/nc_test_static_XXXXXX");
  if (!mkdtemp(base)) {
    perror("mkdtemp");
    exit(1);
  }
  char path[768];
  snprintf(path, sizeof path, "%s/web", base);
  mkdir(path, 0755);
  char *real = realpath(path, NULL);
  snprintf(root, sizeof root, "%s", real);
  free(real);
  snprintf(path, sizeof path, "%s/outside", base);
  mkdir(path, 0755);
  write_file(path, "secret.txt", "secret\n");
  write_file(root, "index.html", "<!doctype html><p>hi</p>\n");
  write_file(root, "app.js", "console.log(1);\n");
  write_file(root, ".env", "TOKEN=1\n");
  snprintf(path, sizeof path, "%s/css", root);
  mkdir(path, 0755);
  write_file(path, "site.css", "p{}\n");
  char target[768];
  snprintf(path, sizeof path, "%s/escape.txt", root);
  snprintf(target, sizeof target, "%s/outside/secret.txt", base);
  if (symlink(target, path) != 0) perror("symlink");
  snprintf(path, sizeof path, "%s/alias.html", root);
  if (symlink("index.html", path) != 0) perror("symlink");
}

static void teardown(void) {
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", base);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", base);
}

static const char *header(const nc_http_response_t *res, const char *name) {
  for (size_t i = 0; i < res->header_count; i++)
    if (strcasecmp(res->headers[i].name, name) == 0) return res->headers[i].value;
  return NULL;
}

static nc_http_request_t request(nc_http_header_t *headers, size_t count) {
  nc_http_request_t req = {0};
  req.method = "GET";
  req.headers = headers;
  req.header_count = count;
  return req;
}

static void test_serves_with_type_and_validators(void) {
  nc_http_request_t req = request(NULL, 0);
  nc_http_response_t res = {0};
  const char *why = NULL;
  CHECK_INT(nc_static_serve(root, "index.html", 1 << 20, &req, &res, &why), 0);
  CHECK_INT(res.status, 200);
  CHECK_INT(res.body_len, strlen("<!doctype html><p>hi</p>\n"));
  CHECK(res.body && memcmp(res.body, "<!doctype html>", 15) == 0);
  CHECK_STR(header(&res, "Content-Type"), "text/html; charset=utf-8");
  CHECK_STR(header(&res, "Cache-Control"), "no-cache");
  CHECK(header(&res, "ETag") && header(&res, "ETag")[0] == '"');
  CHECK(header(&res, "Last-Modified") && strstr(header(&res, "Last-Modified"), " GMT"));
  nc_http_response_free(&res);

  CHECK_INT(nc_static_serve(root, "css/site.css", 1 << 20, &req, &res, &why), 0);
  CHECK_STR(header(&res, "Content-Type"), "text/css; charset=utf-8");
  nc_http_response_free(&res);
  /* A symlink that stays inside the root is an ordinary file. */
  CHECK_INT(nc_static_serve(root, "alias.html", 1 << 20, &req, &res, &why), 0);
  CHECK_INT(res.status, 200);
  nc_http_response_free(&res);
}

static void test_content_types(void) {
  CHECK_STR(nc_static_content_type("a/b.js"), "text/javascript; charset=utf-8");
  CHECK_STR(nc_static_content_type("x.SVG"), "image/svg+xml");
  CHECK_STR(nc_static_content_type("x.json"), "application/json");
  CHECK_STR(nc_static_content_type("noext"), "application/octet-stream");
  CHECK_STR(nc_static_content_type("dir.d/noext"), "application/octet-stream");
}

static void test_refuses_every_escape(void) {
  const char *bad[] = {"", "/etc/passwd", "../outside/secret.txt", "css/../../outside/secret.txt",
                       "css/../index.html", "./index.html", "css//site.css", "css/",
                       ".env", "css\\site.css", "escape.txt", "css", "missing.html"};
  nc_http_request_t req = request(NULL, 0);
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    nc_http_response_t res = {0};
    const char *why = NULL;
    int rc = nc_static_serve(root, bad[i], 1 << 20, &req, &res, &why);
    if (rc != -1) fprintf(stderr, "served %s\n", bad[i]);
    CHECK_INT(rc, -1);
    CHECK(why != NULL);
    CHECK(res.body == NULL && res.header_count == 0);
  }
}

static void test_size_limit(void) {
  nc_http_request_t req = request(NULL, 0);
  nc_http_response_t res = {0};
  const char *why = NULL;
  size_t size = strlen("console.log(1);\n");
  CHECK_INT(nc_static_serve(root, "app.js", size - 1, &req, &res, &why), -1);
  CHECK(why && strstr(why, "max_static_file_bytes"));
  CHECK_INT(nc_static_serve(root, "app.js", size, &req, &res, &why), 0);
  nc_http_response_free(&res);
}

static void test_conditional_requests(void) {
  nc_http_request_t req = request(NULL, 0);
  nc_http_response_t first = {0};
  const char *why;
  CHECK_INT(nc_static_serve(root, "app.js", 1 << 20, &req, &first, &why), 0);
  char etag[64], modified[40];
  snprintf(etag, sizeof etag, "%s", header(&first, "ETag"));
  snprintf(modified, sizeof modified, "%s", header(&first, "Last-Modified"));
  nc_http_response_free(&first);

  struct {
    const char *name, *value;
    int status;
  } cases[] = {
      {"if-none-match", etag, 304},
      {"if-none-match", "\"other\", W/\"x\"", 200},
      {"if-none-match", "*", 304},
      {"if-modified-since", modified, 304},
      {"if-modified-since", "Thu, 01 Jan 1970 00:00:00 GMT", 200},
      {"if-modified-since", "not a date", 200},
  };
  char list[160];
  snprintf(list, sizeof list, "\"a\", W/%s", etag);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    nc_http_header_t h = {(char *)cases[i].name, (char *)cases[i].value};
    nc_http_request_t r = request(&h, 1);
    nc_http_response_t res = {0};
    CHECK_INT(nc_static_serve(root, "app.js", 1 << 20, &r, &res, &why), 0);
    CHECK_INT(res.status, cases[i].status);
    if (res.status == 304) {
      CHECK(res.body == NULL && res.body_len == 0);
      CHECK_STR(header(&res, "ETag"), etag);
    }
    nc_http_response_free(&res);
  }
  /* Weak comparison, inside a list. */
  nc_http_header_t h = {"if-none-match", list};
  nc_http_request_t r = request(&h, 1);
  nc_http_response_t res = {0};
  CHECK_INT(nc_static_serve(root, "app.js", 1 << 20, &r, &res, &why), 0);
  CHECK_INT(res.status, 304);
  nc_http_response_free(&res);
  /* If-None-Match decides alone when present (RFC 9110 13.2.2). */
  nc_http_header_t both[2] = {{"if-none-match", "\"other\""}, {"if-modified-since", modified}};
  r = request(both, 2);
  CHECK_INT(nc_static_serve(root, "app.js", 1 << 20, &r, &res, &why), 0);
  CHECK_INT(res.status, 200);
  nc_http_response_free(&res);
}

static void test_http_dates(void) {
  char out[30];
  nc_http_format_date(out, 784111777);
  CHECK_STR(out, "Sun, 06 Nov 1994 08:49:37 GMT");
  time_t t = 0;
  CHECK_INT(nc_http_parse_date("Sun, 06 Nov 1994 08:49:37 GMT", &t), 0);
  CHECK_INT(t, 784111777);
  CHECK_INT(nc_http_parse_date("Sat, 29 Feb 2020 23:59:59 GMT", &t), 0);
  CHECK_INT(t, 1583020799);
  const char *bad[] = {"Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994",
                       "Sun, 06 Nov 1994 08:49:37 UTC", "Sun, 06 Foo 1994 08:49:37 GMT",
                       "Sun, 06 Nov 1994 08:49:37 GMT trailing", ""};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    CHECK_INT(nc_http_parse_date(bad[i], &t), -1);
}

int main(void) {
  setup();
  RUN(test_serves_with_type_and_validators);
  RUN(test_content_types);
  RUN(test_refuses_every_escape);
  RUN(test_size_limit);
  RUN(test_conditional_requests);
  RUN(test_http_dates);
  teardown();
  return check_report();
}
