/*
 * history: the REST view of a consumer's events, GET /events/history and
 * GET /events/latest, for clients that page instead of streaming.
 *
 * A history page is keyset-paged on the (subscriber, id) index: the rows
 * after `after`, in id order, at most `limit`, of the requested types:
 *
 *     {"events":[{"id":"7","event":"order","data":{...},
 *                 "timestamp":"2026-12-05T12:00:00.000000Z"}],
 *      "next_after":"7","more":false,"history_gone":false}
 *
 * Ids are JSON strings (they exceed JavaScript's safe integers); `data` is
 * the payload exactly as stored, compacted; `history_gone` is true when
 * `after` lies below the consumer's pruned mark (schema.sql), so rows after
 * it may have been deleted by retention. `latest` answers the newest event
 * alone, or 404 no_events.
 *
 * Several consumers: the page merges their rows in id order, each consumer
 * after its own position, and next_after is the cursor of all positions
 * (stream_cursor.h), exact for the same reason a stream's is; latest is the
 * newest row among them; a long poll waits on all of them.
 *
 * Long polling: a page request with wait > 0 that finds nothing is held
 * until one of the consumer's rows (of its types) reaches the live hub, or
 * until wait seconds pass (then the empty page). The request joins the hub
 * as a member (per consumer) before its query, at cursor `after`, so a row committed
 * between the query and the wait still wakes it; the database is asked
 * again only when woken, never on a timer. A waiting request counts as one
 * of its consumer's streams for MAX_STREAMS_PER_CONSUMER.
 *
 * Request states (request_enter() refuses any other):
 *
 *     QUERYING --rows, or no wait--> answered and freed
 *        |  \--nothing, wait--> WAITING --row arrives--> REQUERYING --> answered
 *        |                         \--wait passes--> answered (empty page)
 *        +--client gone (any state)--> freed
 */
#ifndef PIPER_HISTORY_H
#define PIPER_HISTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "core/event_filter.h"
#include "core/hub.h"
#include "core/stream_cursor.h"
#include "db/pg_pool.h"
#include "net/exchange.h"

#define HISTORY_LIMIT_DEFAULT 100
#define HISTORY_LIMIT_MAX 1000
#define HISTORY_WAIT_MAX_SECONDS 60

struct history;

/* The statements the pool prepares on each connection. */
extern const char history_prepare_sql[];

struct history *history_new(struct event_base *base, struct hub *hub, struct pg_pool *pool);
/* Requests still open are dropped without an answer (their exchanges are
 * already gone at shutdown). */
void history_free(struct history *h);

struct history_query {
    const struct consumer_set *consumers; /* sealed; copied */
    const struct event_filter *filter;    /* copied; NULL or empty: every type */
    bool latest;                          /* GET /events/latest */
    /* A position per consumer (STREAM_CURSOR_NONE reads from the start), or
     * NULL: from the start. Copied. */
    const int64_t *after;
    int limit;
    int wait_seconds;
};

/* Answers x (now or later); the caller has checked the parameters. */
void history_answer(struct history *h, struct exchange *x, const struct history_query *q);

/* Requests held by wait= now. */
size_t history_waiting(const struct history *h);

#endif
