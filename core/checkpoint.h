/* WAL checkpoints off the event loop.
 *
 * SQLite's automatic checkpoint runs inside the commit that crosses its
 * threshold, on the loop thread: copying a few MB of WAL back into the
 * database (and syncing it) stalled every connection for tens of ms after
 * each large fan-out. Here the commit only notes the WAL's size, and a
 * libuv worker thread checkpoints through a connection of its own while
 * the loop goes on serving (WAL mode lets readers and the one writer carry
 * on during a PASSIVE checkpoint). */
#ifndef NC_CHECKPOINT_H
#define NC_CHECKPOINT_H

#include <sqlite3.h>
#include <uv.h>

typedef struct nc_checkpoint nc_checkpoint_t;

/* Takes over checkpointing of `conn` (the database file at `path`): turns
 * its automatic checkpoint off and, whenever a commit leaves at least
 * `pages` pages in the WAL, checkpoints on a worker thread of `loop`, one
 * at a time. NULL when out of memory or SQLite was built without thread
 * support (conn then keeps its automatic checkpoint). All three are
 * borrowed. */
nc_checkpoint_t *nc_checkpoint_start(uv_loop_t *loop, sqlite3 *conn, const char *path,
                                     int pages);

/* Checkpoints finished so far (for tests). */
unsigned nc_checkpoint_count(const nc_checkpoint_t *c);

/* Gives checkpointing back to `conn` and closes the worker's connection.
 * Call once the loop has stopped (no checkpoint is then running). NULL is
 * fine. */
void nc_checkpoint_free(nc_checkpoint_t *c);

#endif
