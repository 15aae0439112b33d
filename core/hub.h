/* The hub: which connection holds a key right now.
 *
 * A key (the scripts use a channel id) is held by at most one connection,
 * a parked request or a WebSocket; a client that comes back takes the key
 * over. The hub only maps keys to opaque values; what a value is, and what
 * happens to the one it replaces, is server.c's business. */
#ifndef NC_HUB_H
#define NC_HUB_H

#include <stddef.h>

typedef struct nc_hub nc_hub_t;

/* NULL when out of memory. */
nc_hub_t *nc_hub_new(void);

/* Frees the map and its copies of the keys, not the values. NULL is fine. */
void nc_hub_free(nc_hub_t *h);

/* The value under key, or NULL. */
void *nc_hub_get(const nc_hub_t *h, const char *key);

/* Puts value (not NULL) under key, copying key. The value it replaces, if
 * any, is stored in *previous (else NULL). 0, or -1 when out of memory
 * (the map is unchanged). */
int nc_hub_put(nc_hub_t *h, const char *key, void *value, void **previous);

/* Removes key if, and only if, it maps to value: a connection leaving must
 * not evict the one that replaced it. 1 when removed, 0 when not. */
int nc_hub_remove(nc_hub_t *h, const char *key, const void *value);

/* Keys held right now. */
size_t nc_hub_count(const nc_hub_t *h);

#endif
