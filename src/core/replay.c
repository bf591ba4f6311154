/*
 * Replay jobs (the states are drawn in replay.h).
 *
 * Members leave a job at any time (their stream closed). A job whose last
 * member left while a query is in flight is marked abandoned and freed when
 * the result arrives, since the result callback still refers to it.
 *
 * The budget is a counter and a FIFO of jobs waiting for it; grants are
 * made from a loop event, never from inside the call that returned budget,
 * so no job advances in the middle of another's bookkeeping.
 */
#include "core/replay.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/event_row.h"
#include "ingest/notification.h"
#include "ops/log.h"
#include "ops/metrics.h"
#include "util/backoff.h"
#include "util/json_text.h"
#include "util/number.h"

const char replay_prepare_sql[] =
    "PREPARE piper_replay_page(text, bigint, integer) AS " EVENT_ROW_REPLAY_SELECT
    " WHERE subscriber = $1 AND id > $2 ORDER BY id LIMIT $3;"
    /* Where a job starts (see on_start): the consumer's pruned mark, the
     * highest id the sequence has handed out, its oldest and newest rows
     * (of the stream's types, $3; NULL: all) and the oldest of its newest
     * $2 rows of those types. */
    "PREPARE piper_replay_start(text, integer, text[]) AS SELECT"
    " (SELECT coalesce(max(max_pruned_id), 0) FROM events_pruned_subscribers"
    "   WHERE subscriber = $1),"
    " (SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END FROM events_id_seq),"
    " (SELECT min(id) FROM events WHERE subscriber = $1 AND ($3 IS NULL OR type = ANY($3))),"
    " (SELECT max(id) FROM events WHERE subscriber = $1),"
    " (SELECT min(id) FROM (SELECT id FROM events WHERE subscriber = $1"
    "   AND ($3 IS NULL OR type = ANY($3)) ORDER BY id DESC LIMIT $2) newest);";

enum { FIRST_PAGE_ROWS = 16, PAGE_GROWTH = 8 };

enum job_state {
    JOB_WAITING_BUDGET,
    JOB_WAITING_CONN,
    JOB_QUERYING,
    JOB_DRAINING,
    JOB_BACKOFF,
    JOB_STATE_COUNT
};

static const char *const job_state_names[JOB_STATE_COUNT] = {"waiting_budget", "waiting_conn",
                                                             "querying", "draining", "backoff"};

/* allowed[from][to] */
static const bool job_allowed[JOB_STATE_COUNT][JOB_STATE_COUNT] = {
    [JOB_WAITING_BUDGET] = {[JOB_WAITING_CONN] = true},
    [JOB_WAITING_CONN] = {[JOB_QUERYING] = true, [JOB_BACKOFF] = true},
    [JOB_QUERYING] = {[JOB_DRAINING] = true, [JOB_BACKOFF] = true, [JOB_WAITING_BUDGET] = true},
    [JOB_DRAINING] = {[JOB_WAITING_BUDGET] = true},
    [JOB_BACKOFF] = {[JOB_WAITING_BUDGET] = true},
};

struct replay_job {
    struct replay *r;
    struct list_node link;        /* in r->jobs */
    struct list_node budget_link; /* in r->budget_waiters while WAITING_BUDGET */
    struct list_node targets;
    size_t target_count;
    size_t awaiting; /* targets above the low watermark */
    enum job_state state;
    bool abandoned;
    bool query_in_flight; /* a query runs on a pool connection */
    size_t reserved;      /* budget held for the page being read or drained */
    bool page_was_full;
    bool started;     /* the start question (on_start) was answered */
    int initial;      /* initial=N of the stream served; 0: none */
    char *types;      /* the stream's types as a text[] literal; NULL: all */
    int64_t position; /* highest id read so far */
    uint64_t query_generation;
    size_t page_limit;
    struct pg_pool_waiter waiter;
    struct event *retry_ev;
    struct backoff backoff;
    char consumer_id[];
};

struct replay {
    struct event_base *base;
    struct hub *hub;
    struct pg_pool *pool;
    struct replay_options options;
    struct list_node jobs;
    size_t job_count;
    size_t budget_used;
    size_t budget_waiting;
    struct list_node budget_waiters;
    struct event *grant_ev;
};

static void job_next_page(struct replay_job *job);
static void job_drained(struct replay_job *job);

static void job_enter(struct replay_job *job, enum job_state to)
{
    if (!job_allowed[job->state][to]) {
        log_error("replay: impossible transition", "consumer=%s from=%s to=%s", job->consumer_id,
                  job_state_names[job->state], job_state_names[to]);
        abort();
    }
    job->state = to;
}

static struct hub_member *target_member(struct list_node *n)
{
    return container_of(n, struct hub_member, catchup.link);
}

/* ---- the budget ---- */

static void budget_release(struct replay_job *job)
{
    struct replay *r = job->r;
    if (job->reserved == 0)
        return;
    r->budget_used -= job->reserved;
    job->reserved = 0;
    if (!list_empty(&r->budget_waiters))
        event_active(r->grant_ev, EV_TIMEOUT, 1);
}

/* A job may always have one page: a budget smaller than a page would
 * otherwise stop every replay. */
static bool budget_fits(const struct replay *r)
{
    return r->budget_used == 0 || r->budget_used + r->options.page_bytes <= r->options.budget_bytes;
}

static void on_grant(evutil_socket_t fd, short what, void *arg)
{
    struct replay *r = arg;
    (void)fd;
    (void)what;
    while (!list_empty(&r->budget_waiters) && budget_fits(r)) {
        struct replay_job *job =
            container_of(list_pop(&r->budget_waiters), struct replay_job, budget_link);
        r->budget_waiting--;
        job->reserved = r->options.page_bytes;
        r->budget_used += job->reserved;
        job_enter(job, JOB_WAITING_CONN);
        pg_pool_acquire(r->pool, &job->waiter);
    }
}

/* ---- jobs ---- */

static struct replay_job *job_new(struct replay *r, const char *consumer_id, int64_t position,
                                  const struct replay_start *start)
{
    size_t len = strlen(consumer_id);
    struct replay_job *job = calloc(1, sizeof(*job) + len + 1);
    if (job == NULL)
        return NULL;
    job->r = r;
    job->state = JOB_WAITING_BUDGET;
    if (start != NULL) {
        bool failed = false;
        job->initial = start->initial;
        job->types = event_filter_sql_array(start->filter, &failed);
        if (failed) {
            free(job);
            return NULL;
        }
    }
    list_init(&job->targets);
    list_init(&job->budget_link);
    job->position = position;
    /* Row sizes are unknown until the first page comes back: start small so
     * a history of large rows cannot make the first page huge. */
    job->page_limit =
        r->options.page_rows < FIRST_PAGE_ROWS ? r->options.page_rows : FIRST_PAGE_ROWS;
    pg_pool_waiter_init(&job->waiter, NULL);
    memcpy(job->consumer_id, consumer_id, len + 1);
    backoff_init(&job->backoff, r->options.retry_min_ms, r->options.retry_max_ms,
                 (uint64_t)(uintptr_t)job ^ (uint64_t)time(NULL));
    list_append(&r->jobs, &job->link);
    r->job_count++;
    return job;
}

static void job_attach(struct replay_job *job, struct hub_member *m)
{
    m->catchup.job = job;
    m->catchup.awaiting_drain = false;
    list_append(&job->targets, &m->catchup.link);
    job->target_count++;
}

static void job_detach(struct replay_job *job, struct hub_member *m)
{
    list_remove(&m->catchup.link);
    if (m->catchup.awaiting_drain) {
        m->catchup.awaiting_drain = false;
        job->awaiting--;
    }
    m->catchup.job = NULL;
    job->target_count--;
}

/* Frees the job; its members must be detached. Never called while a query
 * of the job is in flight (see abandoned). */
static void job_free(struct replay_job *job)
{
    struct replay *r = job->r;
    pg_pool_cancel(r->pool, &job->waiter);
    if (list_node_linked(&job->budget_link)) {
        list_remove(&job->budget_link);
        r->budget_waiting--;
    }
    budget_release(job);
    if (job->retry_ev != NULL)
        event_free(job->retry_ev);
    list_remove(&job->link);
    r->job_count--;
    free(job->types);
    free(job);
}

static void job_detach_all(struct replay_job *job)
{
    while (!list_empty(&job->targets))
        job_detach(job, target_member(job->targets.next));
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    job_next_page(arg);
}

static void job_retry_later(struct replay_job *job)
{
    struct timeval tv;
    job_enter(job, JOB_BACKOFF);
    budget_release(job);
    if (job->retry_ev == NULL)
        job->retry_ev = evtimer_new(job->r->base, on_retry, job);
    if (job->retry_ev == NULL) {
        job_next_page(job); /* no timer: retry at once rather than stall */
        return;
    }
    backoff_next_tv(&job->backoff, &tv);
    evtimer_add(job->retry_ev, &tv);
}

/* Whether a target held more live events than allowed since the last
 * look (the flags are cleared): counted once per look, whichever page it
 * happened during, since every page re-reads what was dropped. */
static bool take_overflows(struct replay_job *job)
{
    bool overflowed = false;
    for (struct list_node *n = job->targets.next; n != &job->targets; n = n->next) {
        overflowed |= target_member(n)->held_overflowed;
        target_member(n)->held_overflowed = false;
    }
    if (overflowed)
        metrics.held_overflows++;
    return overflowed;
}

/* After a short page: go live, read once more, or park (see replay.h). */
static void job_finish_or_continue(struct replay_job *job)
{
    uint64_t live = hub_live_generation(job->r->hub);
    bool overflowed = take_overflows(job);

    if (live != 0 && live == job->query_generation && !overflowed) {
        while (!list_empty(&job->targets)) {
            struct hub_member *m = target_member(job->targets.next);
            job_detach(job, m);
            hub_member_go_live(m);
        }
        job_free(job);
        return;
    }
    if (live != 0) {
        job_next_page(job);
        return;
    }
    /* Ingest down: the members wait, holding, for replay_resync(). */
    job_detach_all(job);
    job_free(job);
}

/* Adapts the next page's row limit so a page is about page_bytes. */
static void job_resize_page(struct replay_job *job, size_t rows, size_t bytes)
{
    size_t max_rows = job->r->options.page_rows;
    if (rows == 0 || bytes == 0) {
        job->page_limit = max_rows;
        return;
    }
    size_t per_row = bytes / rows + 1;
    size_t limit = job->r->options.page_bytes / per_row;
    /* Grow gradually: the next rows may be larger than these. */
    if (limit > job->page_limit * PAGE_GROWTH)
        limit = job->page_limit * PAGE_GROWTH;
    job->page_limit = limit < 1 ? 1 : (limit > max_rows ? max_rows : limit);
}

/* Moves the job past a page (rows come in id order, so the last id is the
 * highest) and sizes the next page. Returns whether the page had as many
 * rows as asked for, which means there may be more. */
static bool job_account_page(struct replay_job *job, const PGresult *res)
{
    int rows = PQntuples(res);
    size_t bytes = 0;
    for (int i = 0; i < rows; i++)
        bytes += event_row_bytes(res, i);
    if (rows > 0) {
        int64_t last = 0;
        const char *text = PQgetvalue(res, rows - 1, EVENT_ROW_ID);
        if (notification_parse_id(text, (size_t)PQgetlength(res, rows - 1, EVENT_ROW_ID), &last) &&
            last > job->position)
            job->position = last;
    }
    metrics.replay_queries++;
    metrics.replay_rows += (uint64_t)rows;
    bool full = (size_t)rows >= job->page_limit;
    job_resize_page(job, (size_t)rows, bytes);
    return full;
}

/* Turns a page's rows into frames; a row that cannot become one is logged
 * and skipped. Returns the number of frames. */
static size_t job_fill_frames(struct replay_job *job, const PGresult *res, struct frame **frames)
{
    int rows = PQntuples(res);
    size_t count = 0;
    for (int i = 0; i < rows; i++) {
        int64_t id = 0;
        enum frame_error err = FRAME_OK;
        struct frame *f = event_row_frame(res, i, &id, &err);
        if (f == NULL) {
            metrics.events_invalid[INVALID_ROW]++;
            static struct log_limit limit;
            unsigned dropped;
            if (log_limit_allow(&limit, &dropped))
                log_warn("row skipped", "id=%" PRId64 " subscriber=%s reason=%s dropped=%u", id,
                         job->consumer_id, frame_error_name(err), dropped);
            continue;
        }
        frames[count++] = f;
    }
    return count;
}

static void drop_frames(struct frame **frames, size_t count)
{
    for (size_t i = 0; i < count; i++)
        frame_unref(frames[i]);
    free(frames);
}

/* Writes a page to the members and waits for them to drain it. */
static void job_deliver_page(struct replay_job *job, const PGresult *res)
{
    int rows = PQntuples(res);
    struct frame **frames = malloc((size_t)(rows > 0 ? rows : 1) * sizeof(*frames));
    if (frames == NULL) {
        log_error("replay page dropped: out of memory", "consumer=%s rows=%d", job->consumer_id,
                  rows);
        job_retry_later(job);
        return;
    }
    job->page_was_full = job_account_page(job, res);
    size_t count = job_fill_frames(job, res, frames);
    job_enter(job, JOB_DRAINING);
    for (struct list_node *n = job->targets.next; n != &job->targets; n = n->next) {
        struct hub_member *m = target_member(n);
        hub_member_deliver(m, frames, count);
        if (m->ops->pending(m) > HUB_LOW_WATERMARK) {
            m->catchup.awaiting_drain = true;
            job->awaiting++;
        }
    }
    drop_frames(frames, count);
    backoff_reset(&job->backoff);
    if (job->awaiting == 0)
        job_drained(job);
}

/* Every member is at or below the low watermark: the page's budget goes
 * back, and the job reads on or finishes. */
static void job_drained(struct replay_job *job)
{
    budget_release(job);
    if (job->page_was_full)
        job_next_page(job);
    else
        job_finish_or_continue(job);
}

static bool query_failed(struct replay_job *job, const PGresult *res)
{
    if (res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK)
        return false;
    log_warn("replay query failed", "consumer=%s after_id=%" PRId64 " error=%s", job->consumer_id,
             job->position, res != NULL ? PQresultErrorMessage(res) : "connection lost");
    job_retry_later(job);
    return true;
}

static void on_page(struct pg_conn *conn, const PGresult *res, void *arg)
{
    struct replay_job *job = arg;
    pg_pool_release(job->r->pool, conn);
    job->query_in_flight = false;
    if (job->abandoned) {
        job_free(job);
        return;
    }
    if (query_failed(job, res))
        return;
    job_deliver_page(job, res);
}

/* Sends the next page's query on conn; false when it cannot. */
static bool job_send_page(struct replay_job *job, struct pg_conn *conn)
{
    char position[24], limit[24];
    const char *params[3] = {job->consumer_id, position, limit};

    snprintf(position, sizeof(position), "%" PRId64, job->position);
    snprintf(limit, sizeof(limit), "%zu", job->page_limit);
    job->query_generation = hub_live_generation(job->r->hub);
    (void)take_overflows(job);
    return pg_conn_execute(conn, "piper_replay_page", 3, params, on_page, job);
}

/* The answers of piper_replay_start, NULL-aware. */
struct start_facts {
    int64_t pruned;  /* the consumer's highest pruned id; 0: none */
    int64_t issued;  /* the highest id the sequence has handed out */
    int64_t oldest;  /* oldest row of the stream's types; 0: none */
    int64_t newest;  /* newest row of any type; 0: none */
    int64_t initial; /* oldest of the newest N rows of its types; 0: none */
};

static bool start_value(const PGresult *res, int column, int64_t *out)
{
    *out = 0;
    if (PQgetisnull(res, 0, column))
        return true;
    return parse_int64(PQgetvalue(res, 0, column), (size_t)PQgetlength(res, 0, column), INT64_MIN,
                       INT64_MAX, out);
}

static bool start_facts_read(const PGresult *res, struct start_facts *f)
{
    return PQntuples(res) == 1 && PQnfields(res) == 5 && start_value(res, 0, &f->pruned) &&
           start_value(res, 1, &f->issued) && start_value(res, 2, &f->oldest) &&
           start_value(res, 3, &f->newest) && start_value(res, 4, &f->initial);
}

/* Writes the history-gone signal (event.h's contract: no id, so it moves
 * no cursor) to a member. */
static void signal_history_gone(struct replay_job *job, struct hub_member *m, int64_t requested,
                                const struct start_facts *f, bool unknown)
{
    char oldest[32];
    if (f->oldest > 0)
        snprintf(oldest, sizeof(oldest), "\"%" PRId64 "\"", f->oldest);
    else
        snprintf(oldest, sizeof(oldest), "null");
    /* consumer_id says which consumer of a stream of several it is about. */
    size_t id_len = strlen(job->consumer_id);
    char *data = malloc(160 + 6 * id_len);
    struct frame *signal = NULL;
    if (data != NULL) {
        int n = sprintf(data,
                        "{\"last_event_id\":\"%" PRId64 "\",\"oldest_id\":%s%s,\"consumer_id\":\"",
                        requested, oldest, unknown ? ",\"reason\":\"unknown_cursor\"" : "");
        n += (int)json_escape(data + n, job->consumer_id, id_len);
        strcpy(data + n, "\"}");
        signal = frame_new_signal("history-gone", data);
        free(data);
    }
    if (signal == NULL) {
        log_error("history-gone signal not sent: out of memory", "consumer=%s", job->consumer_id);
        return;
    }
    hub_member_signal(m, signal);
    frame_unref(signal);
    metrics.history_gone[unknown ? HISTORY_GONE_UNKNOWN_CURSOR : HISTORY_GONE_PRUNED]++;
    static struct log_limit limit;
    unsigned dropped;
    if (log_limit_allow(&limit, &dropped))
        log_info("history gone",
                 "consumer=%s last_event_id=%" PRId64 " oldest_id=%" PRId64 " reason=%s dropped=%u",
                 job->consumer_id, requested, f->oldest, unknown ? "unknown_cursor" : "pruned",
                 dropped);
}

/* Decides where each member starts (replay.h: Where a replay starts). */
static void job_apply_start(struct replay_job *job, const struct start_facts *f)
{
    int64_t lowest = INT64_MAX;
    for (struct list_node *n = job->targets.next; n != &job->targets; n = n->next) {
        struct hub_member *m = target_member(n);
        if (job->initial > 0) {
            /* The newest N rows of its types, oldest first; with none, from
             * the newest row of any type on. */
            hub_member_start_at(m, f->initial > 0 ? f->initial - 1 : f->newest);
        } else if (m->cursor > f->issued) {
            int64_t requested = m->cursor;
            hub_member_start_at(m, f->newest > 0 ? f->newest - 1 : 0);
            signal_history_gone(job, m, requested, f, true);
        } else if (m->cursor < f->pruned) {
            signal_history_gone(job, m, m->cursor, f, false);
        }
        if (m->cursor < lowest)
            lowest = m->cursor;
    }
    if (lowest != INT64_MAX)
        job->position = lowest;
}

static void on_start(struct pg_conn *conn, const PGresult *res, void *arg)
{
    struct replay_job *job = arg;
    struct start_facts facts;
    if (!job->abandoned && res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK) {
        if (start_facts_read(res, &facts)) {
            job->started = true;
            job_apply_start(job, &facts);
            if (job_send_page(job, conn))
                return; /* same connection, same budget */
        } else {
            log_error("replay: unreadable start", "consumer=%s", job->consumer_id);
        }
    }
    pg_pool_release(job->r->pool, conn);
    job->query_in_flight = false;
    if (job->abandoned) {
        job_free(job);
        return;
    }
    if (!query_failed(job, res))
        job_retry_later(job);
}

static void on_granted(struct pg_pool_waiter *w, struct pg_conn *conn)
{
    struct replay_job *job = container_of(w, struct replay_job, waiter);
    bool sent;
    if (job->started) {
        sent = job_send_page(job, conn);
    } else {
        char initial[16];
        const char *params[3] = {job->consumer_id, initial, job->types};
        snprintf(initial, sizeof(initial), "%d", job->initial > 0 ? job->initial : 1);
        sent = pg_conn_execute(conn, "piper_replay_start", 3, params, on_start, job);
    }
    if (!sent) {
        pg_pool_release(job->r->pool, conn);
        job_retry_later(job);
        return;
    }
    job->query_in_flight = true;
    job_enter(job, JOB_QUERYING);
}

/* Queues the job for budget, then for a pool connection. */
static void job_next_page(struct replay_job *job)
{
    struct replay *r = job->r;
    if (job->state != JOB_WAITING_BUDGET)
        job_enter(job, JOB_WAITING_BUDGET);
    job->waiter.granted = on_granted;
    list_append(&r->budget_waiters, &job->budget_link);
    r->budget_waiting++;
    event_active(r->grant_ev, EV_TIMEOUT, 1);
}

struct replay *replay_new(struct event_base *base, struct hub *hub, struct pg_pool *pool,
                          const struct replay_options *options)
{
    struct replay *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->base = base;
    r->hub = hub;
    r->pool = pool;
    r->options = *options;
    list_init(&r->jobs);
    list_init(&r->budget_waiters);
    r->grant_ev = event_new(base, -1, 0, on_grant, r);
    if (r->grant_ev == NULL) {
        free(r);
        return NULL;
    }
    return r;
}

void replay_free(struct replay *r)
{
    if (r == NULL)
        return;
    while (!list_empty(&r->jobs)) {
        struct replay_job *job = container_of(r->jobs.next, struct replay_job, link);
        job_detach_all(job);
        job_free(job);
    }
    event_free(r->grant_ev);
    free(r);
}

void replay_catch_up(struct replay *r, struct hub_member *m, const struct replay_start *start)
{
    struct replay_job *job = job_new(r, hub_consumer_id(m->consumer), m->cursor, start);
    if (job == NULL) {
        /* Parked: the next resync retries; the stream keeps its heartbeats. */
        log_error("replay not started: out of memory", "consumer=%s", hub_consumer_id(m->consumer));
        return;
    }
    job_attach(job, m);
    job_next_page(job);
}

void replay_member_drained(struct hub_member *m)
{
    struct replay_job *job = m->catchup.job;
    if (job == NULL || !m->catchup.awaiting_drain)
        return;
    m->catchup.awaiting_drain = false;
    if (--job->awaiting == 0 && job->state == JOB_DRAINING)
        job_drained(job);
}

void replay_member_leave(struct hub_member *m)
{
    struct replay_job *job = m->catchup.job;
    if (job == NULL)
        return;
    job_detach(job, m);
    if (job->target_count == 0) {
        if (job->query_in_flight)
            job->abandoned = true;
        else
            job_free(job);
        return;
    }
    if (job->state == JOB_DRAINING && job->awaiting == 0)
        job_drained(job);
}

struct resync_ctx {
    struct replay *r;
    bool gap_fill;
};

/* One job per consumer for every member that needs one: parked members
 * always, live members too when events may have been lost. */
static void resync_consumer(struct hub_consumer *c, void *arg)
{
    struct resync_ctx *ctx = arg;
    struct list_node *members = hub_consumer_members(c);
    struct replay_job *job = NULL;

    for (struct list_node *n = members->next; n != members; n = n->next) {
        struct hub_member *m = container_of(n, struct hub_member, link);
        bool parked = m->state == HUB_MEMBER_CATCHING_UP;
        if (m->catchup.job != NULL || m->cursor == HUB_CURSOR_UNSET || (!parked && !ctx->gap_fill))
            continue;
        if (job == NULL) {
            job = job_new(ctx->r, hub_consumer_id(c), m->cursor, NULL);
            if (job == NULL) {
                log_error("resync skipped: out of memory", "consumer=%s", hub_consumer_id(c));
                return;
            }
        }
        if (m->cursor < job->position)
            job->position = m->cursor;
        hub_member_begin_catchup(m);
        job_attach(job, m);
    }
    if (job != NULL)
        job_next_page(job);
}

void replay_resync(struct hub *hub, bool gap_fill, void *arg)
{
    struct resync_ctx ctx = {arg, gap_fill};
    hub_each_consumer(hub, resync_consumer, &ctx);
}

size_t replay_active_jobs(const struct replay *r)
{
    return r->job_count;
}

size_t replay_budget_used(const struct replay *r)
{
    return r->budget_used;
}

size_t replay_budget_waiting(const struct replay *r)
{
    return r->budget_waiting;
}
