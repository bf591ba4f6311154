/*
 * Replay: bring hub members up to date from the events table, then hand
 * them over to the live path with no gap and no duplicate.
 *
 * A replay job serves one consumer and one or more of its members (one for a
 * Last-Event-ID request; all of a consumer's streams for the gap fill after
 * the ingest reconnects, so that costs one query per consumer). It reads
 * keyset pages (subscriber = $1 AND id > $2 ORDER BY id LIMIT $3), borrowing
 * a pool connection for each page only, and writes each page to its members.
 *
 * Job states and transitions (job_enter() refuses any other):
 *
 *        +--> WAITING_BUDGET --budget--> WAITING_CONN --connection--> QUERYING
 *        |                                    |                        |  |
 *        |                                    +--send failed--+        |  | page written
 *        +---- BACKOFF <--------- query failed ----------------+-------+  v
 *        +------------------------------------------------ DRAINING <-----+
 *   (members below the low watermark)        short page: hand-over, park or read again
 *
 * Memory is bounded per stream and in total. A job reads its next page only
 * when every member's pending output is at or below HUB_LOW_WATERMARK
 * (the socket still has bytes to send meanwhile, so the database and the
 * client work at the same time), and only after reserving page_bytes of the
 * replay budget (REPLAY_BUFFER_BYTES across all jobs, first come first
 * served); the reservation is returned once the members have drained the
 * page. A stream whose client takes nothing is cut by the session's
 * no-progress timeout (WRITE_TIMEOUT_SECONDS), which returns its share.
 *
 * Where a replay starts: before its first page a job asks the database
 * (piper_replay_start) for the consumer's pruned mark (the highest of its
 * ids that retention deleted, from events_pruned_subscribers), the highest
 * id the sequence has handed out, and its oldest and newest rows. Then, per
 * member:
 *   - initial=N (a stream without Last-Event-ID that asked for its newest N
 *     rows first): the cursor goes just below the oldest of those N rows;
 *   - a cursor above every id ever handed out cannot come from this
 *     database (it was restored or reset): the member gets a history-gone
 *     signal with reason unknown_cursor and starts at the consumer's
 *     newest row, which it receives;
 *   - a cursor below the pruned mark: rows after it may be gone, so the
 *     member gets a history-gone signal, then whatever is left after it.
 * The signal is a frame without an id (frame_new_signal()), written before
 * any replayed row, so a client always learns of a gap before it could
 * mistake what follows for a complete history.
 *
 * Hand-over: after a short page, members go live (releasing the live events
 * they held) only if the ingest was live when that page's query started and
 * still is, and no member dropped held events meanwhile. Then every event
 * committed after the page's snapshot reaches the hub, and ids are ordered
 * per subscriber, so "id > cursor" joins the two streams exactly. Otherwise
 * the job reads another page, or, if the ingest is down, parks its members
 * until the hub's resync hook calls replay_resync().
 */
#ifndef PIPER_REPLAY_H
#define PIPER_REPLAY_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/event.h>

#include "core/event_filter.h"
#include "core/hub.h"
#include "db/pg_pool.h"

struct replay;

struct replay_options {
    size_t page_rows;    /* most rows per page */
    size_t page_bytes;   /* pages shrink to about this many bytes */
    size_t budget_bytes; /* replay pages buffered at once, all jobs together */
    int retry_min_ms;    /* back-off after a failed page query */
    int retry_max_ms;
};

/* The statement the pool prepares on each connection. */
extern const char replay_prepare_sql[];

struct replay *replay_new(struct event_base *base, struct hub *hub, struct pg_pool *pool,
                          const struct replay_options *options);
/* Ends every job; their members stay as they are in the hub. */
void replay_free(struct replay *r);

/* What the stream asked for that decides where its replay starts. */
struct replay_start {
    int initial;                       /* initial=N; 0: resume from the cursor */
    const struct event_filter *filter; /* its types (NULL: all); copied */
};

/* Starts catching up a member that joined the hub CATCHING_UP; start may
 * be NULL (a plain resume of every type). */
void replay_catch_up(struct replay *r, struct hub_member *m, const struct replay_start *start);

/* The member's pending output fell to HUB_LOW_WATERMARK or below (its job
 * may be waiting for that). */
void replay_member_drained(struct hub_member *m);

/* The member is going away: detach it from its job, if any. */
void replay_member_leave(struct hub_member *m);

/* hub resync hook (arg is the struct replay). */
void replay_resync(struct hub *hub, bool gap_fill, void *arg);

size_t replay_active_jobs(const struct replay *r);
/* Bytes of the budget reserved now, and jobs waiting for budget. */
size_t replay_budget_used(const struct replay *r);
size_t replay_budget_waiting(const struct replay *r);

#endif
