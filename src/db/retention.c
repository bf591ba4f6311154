/*
 * Retention runs as a state machine on its own connection:
 *
 *   DOWN --timer--> CONNECTING --ready--> IDLE <---------------------+
 *    ^                                      | interval timer          |
 *    |                                      v                         |
 *    |                                   LOCKING --held elsewhere-----+
 *    |                                      | locked                  |
 *    |                                      v                         |
 *    |                  +--full batch--- PRUNING <--pause timer--+    |
 *    |                  |                   | short batch,       |    |
 *    |                  v                   | error, stopping    |    |
 *    |               RESTING ---------------|--------------------+    |
 *    |                  | stopping          v                         |
 *    |                  +-------------> UNLOCKING --unlocked----------+
 *    |
 *    +-- lost: from every state but DOWN (then the reconnect timer)
 *
 * Why a session-level lock held for the whole run rather than a
 * transaction-level one per batch: a run is then one instance's from its
 * first batch to its last, so two instances never interleave batches (they
 * would pick the same oldest rows and the second would wait on the first's
 * row locks), and a run that is skipped is counted as such. The lock costs
 * nothing to others: advisory locks conflict only with the same key, and
 * the batches themselves take only the row locks of the rows they delete
 * (inserts never wait on them). If the instance dies or its connection
 * breaks, the server ends the session and the lock with it. (It does need
 * a direct connection, not PgBouncer's transaction pooling, which the LISTEN
 * connection needs anyway.)
 *
 * A batch is one statement: it picks the batch_rows oldest rows through the
 * timestamp index, deletes them and raises the pruned marks (each pruned
 * subscriber's in events_pruned_subscribers, the global one in
 * events_pruned), all in one implicit transaction, so a reader can never
 * see the deletes without the marks. Within a run, each batch starts its index scan at the
 * previous batch's newest timestamp (>=, so equal timestamps left over are
 * taken): without it every batch would walk again over the index entries of
 * the rows deleted before it (dead until vacuum), quadratic over a run of
 * millions of rows. A row inserted during a run with a timestamp below that
 * point waits for the next run. The cutoff, now() - retention, is taken
 * afresh by every batch.
 *
 * Every transition goes through retention_enter(), which refuses the ones
 * the diagram does not have.
 */
#include "db/retention.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "db/pg_conn.h"
#include "ops/log.h"
#include "ops/metrics.h"
#include "util/backoff.h"
#include "util/clock.h"
#include "util/number.h"

enum retention_state {
    RETENTION_DOWN,
    RETENTION_CONNECTING,
    RETENTION_IDLE,
    RETENTION_LOCKING,
    RETENTION_PRUNING,
    RETENTION_RESTING,
    RETENTION_UNLOCKING,
    RETENTION_STATE_COUNT
};

static const char *const retention_state_names[RETENTION_STATE_COUNT] = {
    "down", "connecting", "idle", "locking", "pruning", "resting", "unlocking"};

/* allowed[from][to]; losing the connection leads to DOWN from anywhere. */
static const bool retention_allowed[RETENTION_STATE_COUNT][RETENTION_STATE_COUNT] = {
    [RETENTION_DOWN] = {[RETENTION_CONNECTING] = true},
    [RETENTION_CONNECTING] = {[RETENTION_DOWN] = true, [RETENTION_IDLE] = true},
    [RETENTION_IDLE] = {[RETENTION_DOWN] = true, [RETENTION_LOCKING] = true},
    [RETENTION_LOCKING] =
        {[RETENTION_DOWN] = true, [RETENTION_IDLE] = true, [RETENTION_PRUNING] = true},
    [RETENTION_PRUNING] =
        {[RETENTION_DOWN] = true, [RETENTION_RESTING] = true, [RETENTION_UNLOCKING] = true},
    [RETENTION_RESTING] =
        {[RETENTION_DOWN] = true, [RETENTION_PRUNING] = true, [RETENTION_UNLOCKING] = true},
    [RETENTION_UNLOCKING] = {[RETENTION_DOWN] = true, [RETENTION_IDLE] = true},
};

/* A batch never waits long behind a row lock someone else holds, and a
 * statement gone wrong (the timestamp index dropped, say) is cut short;
 * either ends the run as failed and the next run tries again. */
static const char retention_setup_sql[] = "SET lock_timeout = '1s'; SET statement_timeout = '60s'";

static const char lock_sql[] = "SELECT pg_try_advisory_lock(" RETENTION_LOCK_KEY ")";
static const char unlock_sql[] = "SELECT pg_advisory_unlock(" RETENTION_LOCK_KEY ")";

/* $1 retention seconds, $2 batch rows, $3 the lowest timestamp to look at.
 * Answers one row: rows deleted, the newest timestamp deleted (the next
 * batch's $3), and max_pruned_id after this batch (NULL when none went).
 * The same statement raises each pruned subscriber's mark in
 * events_pruned_subscribers (what replays read to tell a stream its history
 * is gone) and the global mark in events_pruned: upserts, not UPDATEs, so
 * a missing row cannot silently leave deletes unrecorded.
 * id = ANY(ARRAY(...)), not id IN (SELECT ...): the planner takes the IN
 * form for a semi-join and, guessing the batch large, hashes it against a
 * sequential scan of the whole table (68 ms for 5,000 rows of a 300,000-row
 * table, and growing with the table); the array is looked up in the primary
 * key (8 ms), whatever the table's size. */
static const char batch_sql[] =
    "WITH batch AS ("
    " SELECT id FROM events"
    " WHERE \"timestamp\" >= $3::timestamptz"
    " AND \"timestamp\" < now() - make_interval(secs => $1::double precision)"
    " ORDER BY \"timestamp\" LIMIT $2::integer"
    "), gone AS ("
    " DELETE FROM events WHERE id = ANY(ARRAY(SELECT id FROM batch))"
    " RETURNING id, subscriber, \"timestamp\""
    "), marks AS ("
    " INSERT INTO events_pruned_subscribers AS s (subscriber, max_pruned_id)"
    " SELECT subscriber, max(id) FROM gone GROUP BY subscriber"
    " ON CONFLICT (subscriber) DO UPDATE"
    " SET max_pruned_id = GREATEST(s.max_pruned_id, excluded.max_pruned_id)"
    "), mark AS ("
    " INSERT INTO events_pruned AS p (singleton, max_pruned_id, pruned_at)"
    " SELECT true, top.id, now() FROM (SELECT max(id) AS id FROM gone) top"
    " WHERE top.id IS NOT NULL"
    " ON CONFLICT (singleton) DO UPDATE"
    " SET max_pruned_id = GREATEST(p.max_pruned_id, excluded.max_pruned_id),"
    " pruned_at = excluded.pruned_at"
    " RETURNING max_pruned_id"
    ")"
    " SELECT count(*), max(\"timestamp\")::text, (SELECT max_pruned_id FROM mark) FROM gone";

struct retention {
    struct event_base *base;
    struct retention_options options;
    char *conninfo;
    enum retention_state state;
    struct pg_conn *conn;
    struct event *reconnect_ev;
    struct event *timer_ev; /* IDLE: next run; RESTING: next batch */
    struct backoff backoff;
    bool stopping;
    unsigned failures_logged;
    char retention_text[24];
    char batch_rows_text[16];
    /* The run in progress. */
    int64_t run_started_ns;
    int64_t batch_started_ns;
    uint64_t run_rows;
    unsigned run_batches;
    char from_timestamp[64]; /* $3 of the next batch */
    int64_t max_pruned_id;   /* after the run's last batch that deleted, else 0 */
};

static void retention_enter(struct retention *r, enum retention_state to)
{
    if (!retention_allowed[r->state][to]) {
        log_error("retention: impossible transition", "from=%s to=%s",
                  retention_state_names[r->state], retention_state_names[to]);
        abort();
    }
    r->state = to;
}

static void arm_timer(struct retention *r, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(r->timer_ev, &tv);
}

static double seconds_since(int64_t start_ns)
{
    return (double)(clock_monotonic_ns() - start_ns) / 1e9;
}

/* Leaves the connected states and schedules a reconnection. A run in
 * progress ends as failed; the server drops its lock with the session. */
static void drop_connection(struct retention *r, const char *reason)
{
    if (r->state == RETENTION_DOWN)
        return;
    /* A run that reached UNLOCKING has been counted already. */
    bool in_run = r->state == RETENTION_LOCKING || r->state == RETENTION_PRUNING ||
                  r->state == RETENTION_RESTING;
    if (in_run)
        metrics.retention_runs[RETENTION_FAILED]++;
    if (in_run)
        log_warn("retention: connection lost during a run", "reason=%s state=%s rows=%" PRIu64,
                 reason, retention_state_names[r->state], r->run_rows);
    else if (r->failures_logged++ % 10 == 0)
        log_warn("retention: connection lost", "reason=%s state=%s", reason,
                 retention_state_names[r->state]);
    retention_enter(r, RETENTION_DOWN);
    evtimer_del(r->timer_ev);
    pg_conn_free(r->conn);
    r->conn = NULL;
    if (!r->stopping) {
        struct timeval tv;
        backoff_next_tv(&r->backoff, &tv);
        evtimer_add(r->reconnect_ev, &tv);
    }
}

static void on_unlocked(struct pg_conn *c, const PGresult *res, void *arg)
{
    struct retention *r = arg;
    (void)c;
    if (res == NULL)
        return; /* lost: on_lost follows */
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        /* The lock may still be held: only a new session is sure not to. */
        drop_connection(r, PQresultErrorMessage(res));
        return;
    }
    retention_enter(r, RETENTION_IDLE);
    if (!r->stopping)
        arm_timer(r, r->options.interval_seconds * 1000);
}

/* Ends the run: counts it, logs it, releases the lock. */
static void finish_run(struct retention *r, enum retention_result result, const char *error)
{
    double seconds = seconds_since(r->run_started_ns);
    metrics.retention_runs[result]++;
    if (result == RETENTION_FAILED)
        log_warn("retention: run failed", "error=%s rows=%" PRIu64 " batches=%u seconds=%.3f",
                 error, r->run_rows, r->run_batches, seconds);
    else if (r->run_rows > 0 || r->stopping)
        log_info("retention: run finished",
                 "rows=%" PRIu64 " batches=%u seconds=%.3f max_pruned_id=%" PRId64 " stopped=%d",
                 r->run_rows, r->run_batches, seconds, r->max_pruned_id, r->stopping);
    else
        log_debug("retention: run finished", "rows=0 seconds=%.3f", seconds);
    retention_enter(r, RETENTION_UNLOCKING);
    if (!pg_conn_query(r->conn, unlock_sql, 0, NULL, on_unlocked, r))
        drop_connection(r, "cannot send the unlock");
}

static void on_batch(struct pg_conn *c, const PGresult *res, void *arg);

static void send_batch(struct retention *r)
{
    const char *params[3] = {r->retention_text, r->batch_rows_text, r->from_timestamp};
    retention_enter(r, RETENTION_PRUNING);
    r->batch_started_ns = clock_monotonic_ns();
    if (!pg_conn_query(r->conn, batch_sql, 3, params, on_batch, r))
        drop_connection(r, "cannot send a delete batch");
}

static void on_batch(struct pg_conn *c, const PGresult *res, void *arg)
{
    struct retention *r = arg;
    int64_t rows = 0;
    int64_t mark = 0;
    (void)c;

    if (res == NULL)
        return;
    metrics_observe_prune_batch(seconds_since(r->batch_started_ns));
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 || PQnfields(res) != 3 ||
        !parse_int64(PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0), 0, INT64_MAX, &rows)) {
        finish_run(r, RETENTION_FAILED,
                   PQresultStatus(res) == PGRES_TUPLES_OK ? "unexpected answer to a batch"
                                                          : PQresultErrorMessage(res));
        return;
    }
    r->run_batches++;
    if (rows > 0) {
        /* Both columns are set whenever a row went. */
        if (PQgetisnull(res, 0, 1) || PQgetisnull(res, 0, 2) ||
            PQgetlength(res, 0, 1) >= (int)sizeof(r->from_timestamp) ||
            !parse_int64(PQgetvalue(res, 0, 2), (size_t)PQgetlength(res, 0, 2), 1, INT64_MAX,
                         &mark)) {
            finish_run(r, RETENTION_FAILED, "unexpected answer to a batch");
            return;
        }
        r->run_rows += (uint64_t)rows;
        metrics.retention_rows_pruned += (uint64_t)rows;
        r->max_pruned_id = mark;
        snprintf(r->from_timestamp, sizeof(r->from_timestamp), "%s", PQgetvalue(res, 0, 1));
    }
    log_debug("retention: batch", "rows=%" PRId64 " max_pruned_id=%" PRId64, rows, mark);
    if (rows < r->options.batch_rows || r->stopping) {
        finish_run(r, RETENTION_PRUNED, NULL);
        return;
    }
    /* Back to the loop (and to PostgreSQL's other clients) before the
     * next batch. */
    retention_enter(r, RETENTION_RESTING);
    arm_timer(r, r->options.batch_pause_ms);
}

static void on_locked(struct pg_conn *c, const PGresult *res, void *arg)
{
    struct retention *r = arg;
    (void)c;
    if (res == NULL)
        return;
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        drop_connection(r, PQresultErrorMessage(res));
        return;
    }
    if (strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
        metrics.retention_runs[RETENTION_SKIPPED]++;
        log_debug("retention: another instance holds the lock; run skipped", "");
        retention_enter(r, RETENTION_IDLE);
        if (!r->stopping)
            arm_timer(r, r->options.interval_seconds * 1000);
        return;
    }
    r->run_started_ns = clock_monotonic_ns();
    r->run_rows = 0;
    r->run_batches = 0;
    r->max_pruned_id = 0;
    snprintf(r->from_timestamp, sizeof(r->from_timestamp), "-infinity");
    log_debug("retention: run started", "");
    if (r->stopping)
        finish_run(r, RETENTION_PRUNED, NULL); /* stopped while asking for the lock */
    else
        send_batch(r);
}

static void start_run(struct retention *r)
{
    retention_enter(r, RETENTION_LOCKING);
    if (!pg_conn_query(r->conn, lock_sql, 0, NULL, on_locked, r))
        drop_connection(r, "cannot send the lock");
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct retention *r = arg;
    (void)fd;
    (void)what;
    if (r->state == RETENTION_IDLE && !r->stopping)
        start_run(r);
    else if (r->state == RETENTION_RESTING && r->stopping)
        finish_run(r, RETENTION_PRUNED, NULL);
    else if (r->state == RETENTION_RESTING)
        send_batch(r);
}

static void on_ready(struct pg_conn *c, void *arg)
{
    struct retention *r = arg;
    log_info("retention: connected", "backend_pid=%d", pg_conn_backend_pid(c));
    retention_enter(r, RETENTION_IDLE);
    r->failures_logged = 0;
    backoff_reset(&r->backoff);
    /* Not at once: instances restarted together would all race for the
     * lock, and a run would start before the streams are back. */
    if (!r->stopping)
        arm_timer(r, r->options.interval_seconds * 1000);
}

static void on_lost(struct pg_conn *c, const char *reason, void *arg)
{
    (void)c;
    drop_connection(arg, reason);
}

static const struct pg_conn_handler retention_handler = {
    .ready = on_ready,
    .notify = NULL,
    .lost = on_lost,
};

static void retention_connect(struct retention *r)
{
    retention_enter(r, RETENTION_CONNECTING);
    r->conn = pg_conn_new(r->base, r->conninfo, "event-piper retention", retention_setup_sql,
                          r->options.connect_timeout_s, &retention_handler, r);
    if (r->conn == NULL) {
        struct timeval tv;
        retention_enter(r, RETENTION_DOWN);
        backoff_next_tv(&r->backoff, &tv);
        evtimer_add(r->reconnect_ev, &tv);
    }
}

static void on_reconnect(evutil_socket_t fd, short what, void *arg)
{
    struct retention *r = arg;
    (void)fd;
    (void)what;
    if (!r->stopping)
        retention_connect(r);
}

struct retention *retention_new(struct event_base *base, const struct retention_options *options)
{
    struct retention *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->base = base;
    r->options = *options;
    r->state = RETENTION_DOWN;
    r->conninfo = strdup(options->conninfo);
    r->reconnect_ev = evtimer_new(base, on_reconnect, r);
    r->timer_ev = evtimer_new(base, on_timer, r);
    if (r->conninfo == NULL || r->reconnect_ev == NULL || r->timer_ev == NULL) {
        retention_free(r);
        return NULL;
    }
    snprintf(r->retention_text, sizeof(r->retention_text), "%lld", options->retention_seconds);
    snprintf(r->batch_rows_text, sizeof(r->batch_rows_text), "%d", options->batch_rows);
    backoff_init(&r->backoff, options->reconnect_min_ms, options->reconnect_max_ms,
                 (uint64_t)getpid() ^ ((uint64_t)time(NULL) << 24));
    log_info("retention on",
             "retention_seconds=%lld interval_seconds=%d batch_rows=%d batch_pause_ms=%d",
             options->retention_seconds, options->interval_seconds, options->batch_rows,
             options->batch_pause_ms);
    retention_connect(r);
    return r;
}

void retention_stop(struct retention *r)
{
    if (r == NULL || r->stopping)
        return;
    r->stopping = true;
    evtimer_del(r->reconnect_ev);
    if (r->state == RETENTION_IDLE)
        evtimer_del(r->timer_ev);
    else if (r->state == RETENTION_RESTING)
        arm_timer(r, 0); /* ends the run from the loop */
}

void retention_free(struct retention *r)
{
    if (r == NULL)
        return;
    pg_conn_free(r->conn);
    if (r->reconnect_ev != NULL)
        event_free(r->reconnect_ev);
    if (r->timer_ev != NULL)
        event_free(r->timer_ev);
    free(r->conninfo);
    free(r);
}
