/*
 * confirm: the only way events enter the hub.
 *
 * PostgreSQL has no permission on NOTIFY (any role that can connect can
 * pg_notify any channel with any text), and anyone allowed to publish on the
 * NATS subject can publish anything. So what an ingest receives is only a
 * hint: "row <id>, perhaps of <subscriber>, may be new". The confirmer reads
 * the hinted rows back from the events table and publishes what it finds,
 * formatted from the table's columns. Nothing of a hint is ever delivered,
 * and an id that is not in the table moves nothing: no stream's cursor and
 * not the hub's high-water mark, so a forged huge id cannot stop a stream
 * from receiving the next real row.
 *
 * Order: hints arrive in commit order. A batch is read with id = ANY(...)
 * and published in id order, which per subscriber is commit order (the
 * schema's trigger makes it so); batches are published in arrival order.
 *
 * A hint whose subscriber has no stream here is not read, except the highest
 * such id of each batch, read (one extra row) so that the high-water mark,
 * the starting cursor of streams opened without Last-Event-ID, keeps up with
 * rows of other consumers.
 *
 * Bounds: one read in flight (hints arriving meanwhile wait for the next,
 * so batches grow with the load), at most CONFIRM_BATCH_MAX ids per read,
 * publishing within a time budget per loop pass, and at most hints_max
 * hints waiting. Past that the owner is told (overflow), drops the hints
 * and resynchronises the streams from the table instead.
 *
 * Reads run on the owner's connection (the LISTEN connection, which
 * prepares confirm_prepare_sql) or on the replay pool's connections.
 */
#ifndef PIPER_CONFIRM_H
#define PIPER_CONFIRM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "core/hub.h"
#include "db/pg_conn.h"
#include "db/pg_pool.h"

#define CONFIRM_BATCH_MAX 1000

/* Prepares the statement reads use; part of every connection's setup. */
extern const char confirm_prepare_sql[];

struct confirm;

struct confirm_options {
    size_t hints_max;
    void (*overflow)(void *arg); /* too many hints waiting; see above */
    void *arg;
};

struct confirm *confirm_new(struct event_base *base, struct hub *hub,
                            const struct confirm_options *options);
/* Call after the connection it reads on is freed, or with the pool still
 * alive (a pool read in flight is cancelled). */
void confirm_free(struct confirm *c);

/* Where reads run: a connection of the caller's (NULL: none now; reads wait
 * until one is set), or the pool. */
void confirm_read_on_conn(struct confirm *c, struct pg_conn *conn);
void confirm_read_on_pool(struct confirm *c, struct pg_pool *pool);

/* A hint; subscriber may be NULL (unknown). Ids outside 1..INT64_MAX are
 * the caller's to refuse. */
void confirm_hint(struct confirm *c, int64_t id, const char *subscriber, size_t subscriber_len);

/* A row whose notification carried a valid signature (pg_listener.c): it
 * is authentic, so it needs no read. It is queued for publishing at once
 * when nothing is waiting to be read or being read; otherwise it becomes a
 * hint like the others, so rows are still published in the order they
 * were notified. Takes its own reference to frame. */
void confirm_signed(struct confirm *c, struct frame *frame, const char *subscriber,
                    size_t subscriber_len);

/* While held, confirmed rows wait unpublished (the ingest is not live yet,
 * see pg_listener.c); releasing publishes them. */
void confirm_hold(struct confirm *c, bool hold);

/* Forgets every hint and every row not yet published (the ingest lost its
 * source; the gap fill reads the table instead). A read in flight is
 * ignored when it returns. */
void confirm_reset(struct confirm *c);

/* Hints and confirmed rows not yet published. */
size_t confirm_backlog(const struct confirm *c);

#endif
