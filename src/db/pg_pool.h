/*
 * pg_pool: a small bounded pool of PostgreSQL connections for replay.
 *
 * Connections open lazily when someone waits and none is idle, never more
 * than size at once, and close after idle_seconds unused, so an instance with
 * no replay in progress holds none. Waiters are served strictly first come,
 * first served; a borrower returns the connection after each query, so many
 * replays share a few connections page by page and none can starve another.
 * While PostgreSQL is unreachable, waiters keep waiting and the pool retries
 * with exponential back-off and jitter.
 *
 * Grants are made from the event loop, never from inside pg_pool_acquire().
 */
#ifndef PIPER_PG_POOL_H
#define PIPER_PG_POOL_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/event.h>

#include "util/list.h"
#include "db/pg_conn.h"

struct pg_pool;

/* Embedded by the borrower and set up once with pg_pool_waiter_init().
 * granted() receives a ready connection, which the borrower must give back
 * with pg_pool_release(). */
struct pg_pool_waiter {
    struct list_node link;
    void (*granted)(struct pg_pool_waiter *w, struct pg_conn *conn);
};

void pg_pool_waiter_init(struct pg_pool_waiter *w,
                         void (*granted)(struct pg_pool_waiter *w, struct pg_conn *conn));

struct pg_pool_options {
    const char *conninfo;
    const char *setup_sql; /* run on every new connection (PREPARE ...) */
    size_t size;
    int idle_seconds;
    int reconnect_min_ms;
    int reconnect_max_ms;
    int connect_timeout_s;
};

struct pg_pool_stats {
    size_t open;                 /* connected or connecting */
    size_t in_use;               /* lent out */
    size_t waiting;              /* borrowers queued */
    unsigned long long connects; /* connections established so far */
};

struct pg_pool *pg_pool_new(struct event_base *base, const struct pg_pool_options *options);
/* Closes every connection; lent ones too, so borrowers must be gone. */
void pg_pool_free(struct pg_pool *pool);

void pg_pool_acquire(struct pg_pool *pool, struct pg_pool_waiter *w);
/* Withdraws a waiter that has not been granted yet (no-op otherwise). */
void pg_pool_cancel(struct pg_pool *pool, struct pg_pool_waiter *w);
/* Gives a connection back; a broken one is closed and replaced on demand. */
void pg_pool_release(struct pg_pool *pool, struct pg_conn *conn);

void pg_pool_get_stats(const struct pg_pool *pool, struct pg_pool_stats *stats);

/* One command on whichever connection comes free first: waits for a
 * connection, runs the command (a statement prepared by setup_sql when
 * prepared is true, else SQL text), gives the connection back and then calls
 * fn with the result, or with res == NULL if the connection broke (fn's conn
 * argument is NULL: the connection is already back in the pool). Parameters
 * are copied (a NULL parameter is SQL NULL). Returns a handle for pg_pool_query_cancel(), or NULL
 * when out of memory (fn is then never called). Queries still open when the pool is freed are freed
 * with it, without their callback. */
struct pg_pool_query;
struct pg_pool_query *pg_pool_query(struct pg_pool *pool, const char *command, bool prepared,
                                    int nparams, const char *const *params, pg_result_fn fn,
                                    void *arg) __attribute__((warn_unused_result));

/* fn will not be called; the handle is invalid after this. */
void pg_pool_query_cancel(struct pg_pool_query *q);

#endif
