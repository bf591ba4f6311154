/*
 * retention: deletes rows older than RETENTION_SECONDS from the events
 * table, in small batches, on one instance at a time.
 *
 * Holds its own PostgreSQL connection (pg_conn, on the event loop; never the
 * LISTEN connection, so a long batch cannot delay notifications). Every
 * interval_seconds, counted from the end of the previous run, it tries the
 * session-level advisory lock RETENTION_LOCK_KEY: if another instance holds
 * it, the run is skipped. Holding it, it deletes batches of at most
 * batch_rows rows, oldest timestamp first, each one statement (so one short
 * transaction) that also raises the pruned marks to the highest ids it
 * deleted (per subscriber in events_pruned_subscribers, which replays read,
 * and for the whole table in events_pruned), until a batch deletes fewer
 * than batch_rows; then it unlocks. See postgresql/schema.sql for what the
 * marks mean.
 *
 * Nothing here blocks the loop: queries are asynchronous, and between two
 * batches the loop runs other work for at least batch_pause_ms. A lost
 * connection (PostgreSQL restarting, say) ends the run (the server releases
 * the lock and rolls the unfinished batch back, whole) and reconnects with
 * back-off; pruning resumes at the next run. Errors are logged and counted
 * in event_piper_retention_runs_total{result="failed"}, never fatal.
 *
 * Ownership: the caller owns the object. retention_stop() lets no new batch
 * start (the one in flight finishes); retention_free() closes the
 * connection at once, which is safe at any moment for the reasons above.
 */
#ifndef PIPER_RETENTION_H
#define PIPER_RETENTION_H

#include <stdbool.h>

#include <event2/event.h>

/* pg_try_advisory_lock(bigint) key: 'evntprun' in ASCII. The one-bigint
 * form is a lock space of its own, apart from the (int, int) pairs that the
 * schema's insert trigger takes, so the two never meet. */
#define RETENTION_LOCK_KEY "7311152491464389998"

struct retention_options {
    const char *conninfo;
    long long retention_seconds; /* > 0 */
    int interval_seconds;
    int batch_rows;
    int batch_pause_ms;
    int reconnect_min_ms;
    int reconnect_max_ms;
    int connect_timeout_s;
};

struct retention;

/* Starts connecting at once; the first run starts interval_seconds after
 * connecting (and again after each reconnection). Returns NULL on
 * allocation failure. */
struct retention *retention_new(struct event_base *base, const struct retention_options *options);

/* No new run or batch starts after this; the batch in flight, if any,
 * finishes and the lock is released. For a graceful shutdown. */
void retention_stop(struct retention *r);

void retention_free(struct retention *r);

#endif
