/* hub.c: put, get, replace, remove only by the current holder, and growth
 * far past the initial table with every key still found. */
#include <stdio.h>

#include "check.h"
#include "hub.h"

static void test_put_get_replace(void) {
  nc_hub_t *h = nc_hub_new();
  int a, b;
  void *prev = &a;
  CHECK(nc_hub_get(h, "ch1") == NULL);
  CHECK_INT(nc_hub_put(h, "ch1", &a, &prev), 0);
  CHECK(prev == NULL);
  CHECK(nc_hub_get(h, "ch1") == &a);
  CHECK(nc_hub_get(h, "ch2") == NULL);
  CHECK_INT(nc_hub_put(h, "ch1", &b, &prev), 0);
  CHECK(prev == &a);
  CHECK(nc_hub_get(h, "ch1") == &b);
  CHECK_INT(nc_hub_count(h), 1);
  nc_hub_free(h);
}

static void test_remove_only_by_holder(void) {
  nc_hub_t *h = nc_hub_new();
  int old_conn, new_conn;
  void *prev;
  nc_hub_put(h, "k", &old_conn, &prev);
  nc_hub_put(h, "k", &new_conn, &prev);
  /* The replaced connection closing later must not evict its successor. */
  CHECK_INT(nc_hub_remove(h, "k", &old_conn), 0);
  CHECK(nc_hub_get(h, "k") == &new_conn);
  CHECK_INT(nc_hub_remove(h, "k", &new_conn), 1);
  CHECK(nc_hub_get(h, "k") == NULL);
  CHECK_INT(nc_hub_remove(h, "k", &new_conn), 0);
  CHECK_INT(nc_hub_count(h), 0);
  nc_hub_free(h);
}

static void test_many_keys(void) {
  enum { N = 20000 };
  static int values[N];
  nc_hub_t *h = nc_hub_new();
  char key[32];
  void *prev;
  for (int i = 0; i < N; i++) {
    snprintf(key, sizeof key, "channel-%d", i);
    CHECK_INT(nc_hub_put(h, key, &values[i], &prev), 0);
  }
  CHECK_INT(nc_hub_count(h), N);
  int found = 0;
  for (int i = 0; i < N; i++) {
    snprintf(key, sizeof key, "channel-%d", i);
    found += nc_hub_get(h, key) == &values[i];
  }
  CHECK_INT(found, N);
  for (int i = 0; i < N; i += 2) {
    snprintf(key, sizeof key, "channel-%d", i);
    CHECK_INT(nc_hub_remove(h, key, &values[i]), 1);
  }
  CHECK_INT(nc_hub_count(h), N / 2);
  CHECK(nc_hub_get(h, "channel-0") == NULL);
  CHECK(nc_hub_get(h, "channel-1") == &values[1]);
  nc_hub_free(h);
}

int main(void) {
  RUN(test_put_get_replace);
  RUN(test_remove_only_by_holder);
  RUN(test_many_keys);
  nc_hub_free(NULL);
  return check_report();
}
