/*
 * demo: what the demo page needs from the service besides /events.
 *
 *   - the page itself: the files of DEMO_DIR (a fixed list), read once at
 *     start-up and served from memory, so no request path ever reaches the
 *     file system;
 *   - POST /demo/events (only with DEMO=1): inserts a test event through the
 *     replay pool, asynchronously, so a visitor can watch it come back.
 *
 * Knows nothing about HTTP: the server formats the answers.
 */
#ifndef PIPER_DEMO_H
#define PIPER_DEMO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db/pg_pool.h"

struct demo_file {
    const char *name; /* "index.html" */
    const char *content_type;
    char *bytes;
    size_t len;
};

struct demo;

/* pool may be NULL when inserts are disabled. Missing page files are logged
 * once; the page is then answered with 404. */
struct demo *demo_new(const char *dir, struct pg_pool *pool);
/* After the loop has stopped and before pg_pool_free: also frees the
 * inserts still in flight, whose callbacks can no longer come. */
void demo_free(struct demo *d);

/* The file served for a request path ("/" is index.html), or NULL. */
const struct demo_file *demo_find(const struct demo *d, const char *path);

/* Result of an insert: id > 0 on success, else error is a short reason. */
typedef void (*demo_done_fn)(void *arg, int64_t id, const char *error);

struct demo_insert;

/* Queues an insert of one event; done runs later from the loop, unless the
 * insert is cancelled first. Returns NULL on allocation failure. */
struct demo_insert *demo_insert(struct demo *d, const char *subscriber, const char *type,
                                const char *payload_json, demo_done_fn done, void *arg);

/* The requester is gone: done will not be called. */
void demo_insert_cancel(struct demo_insert *ins);

#endif
