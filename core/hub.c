/* A chained hash map from key text to a pointer. Keys are channel ids,
 * random and short, so a simple string hash spreads them well; the table
 * doubles when it is fuller than its bucket count, so lookups stay O(1)
 * at 10,000 held connections and the map never shrinks below its peak. */
#include "hub.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define INITIAL_BUCKETS 64

typedef struct entry {
  struct entry *next;
  void *value;
  uint64_t hash;
  char key[]; /* NUL-terminated copy */
} entry_t;

struct nc_hub {
  entry_t **buckets;
  size_t bucket_count; /* a power of two */
  size_t count;
};

/* FNV-1a, 64 bits. */
static uint64_t hash_key(const char *key) {
  uint64_t h = 1469598103934665603ULL;
  for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
    h ^= *p;
    h *= 1099511628211ULL;
  }
  return h;
}

nc_hub_t *nc_hub_new(void) {
  nc_hub_t *h = calloc(1, sizeof *h);
  if (!h) return NULL;
  h->buckets = calloc(INITIAL_BUCKETS, sizeof *h->buckets);
  if (!h->buckets) {
    free(h);
    return NULL;
  }
  h->bucket_count = INITIAL_BUCKETS;
  return h;
}

void nc_hub_free(nc_hub_t *h) {
  if (!h) return;
  for (size_t i = 0; i < h->bucket_count; i++) {
    entry_t *e = h->buckets[i];
    while (e) {
      entry_t *next = e->next;
      free(e);
      e = next;
    }
  }
  free(h->buckets);
  free(h);
}

static entry_t **find_slot(const nc_hub_t *h, const char *key, uint64_t hash) {
  entry_t **slot = &h->buckets[hash & (h->bucket_count - 1)];
  while (*slot && ((*slot)->hash != hash || strcmp((*slot)->key, key) != 0))
    slot = &(*slot)->next;
  return slot;
}

void *nc_hub_get(const nc_hub_t *h, const char *key) {
  entry_t *e = *find_slot(h, key, hash_key(key));
  return e ? e->value : NULL;
}

/* Doubling is best effort: when it cannot allocate, chains just grow. */
static void grow(nc_hub_t *h) {
  size_t n = h->bucket_count * 2;
  entry_t **buckets = calloc(n, sizeof *buckets);
  if (!buckets) return;
  for (size_t i = 0; i < h->bucket_count; i++) {
    entry_t *e = h->buckets[i];
    while (e) {
      entry_t *next = e->next;
      entry_t **slot = &buckets[e->hash & (n - 1)];
      e->next = *slot;
      *slot = e;
      e = next;
    }
  }
  free(h->buckets);
  h->buckets = buckets;
  h->bucket_count = n;
}

int nc_hub_put(nc_hub_t *h, const char *key, void *value, void **previous) {
  uint64_t hash = hash_key(key);
  entry_t **slot = find_slot(h, key, hash);
  if (*slot) {
    *previous = (*slot)->value;
    (*slot)->value = value;
    return 0;
  }
  size_t len = strlen(key);
  entry_t *e = malloc(sizeof *e + len + 1);
  if (!e) return -1;
  memcpy(e->key, key, len + 1);
  e->hash = hash;
  e->value = value;
  e->next = NULL;
  *slot = e;
  *previous = NULL;
  if (++h->count > h->bucket_count) grow(h);
  return 0;
}

int nc_hub_remove(nc_hub_t *h, const char *key, const void *value) {
  entry_t **slot = find_slot(h, key, hash_key(key));
  entry_t *e = *slot;
  if (!e || e->value != value) return 0;
  *slot = e->next;
  free(e);
  h->count--;
  return 1;
}

size_t nc_hub_count(const nc_hub_t *h) { return h->count; }
