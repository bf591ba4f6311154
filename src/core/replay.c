/*
 * Replay jobs.
 *
 * A job cycles WAITING (queued for a pool connection) -> QUERYING (one page
 * query; the connection goes back to the pool as soon as the result is in)
 * -> DRAINING (members are writing the page out) -> WAITING again, until a
 * short page allows the hand-over described in replay.h. Query failures back
 * off (BACKOFF) and retry from the same position, so a PostgreSQL restart
 * only delays a replay.
 *
 * Members leave a job at any time (their stream closed). A job whose last
 * member left while a query is in flight is marked abandoned and freed when
 * the result arrives, since the result callback still refers to it.
 */
#include "core/replay.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/backoff.h"
#include "core/event_row.h"
#include "ops/log.h"
#include "ops/metrics.h"
#include "ingest/notification.h"

const char replay_prepare_sql[] =
    "PREPARE piper_replay_page(text, bigint, integer) AS " EVENT_ROW_REPLAY_SELECT
    " WHERE subscriber = $1 AND id > $2 ORDER BY id LIMIT $3;"
    "PREPARE piper_replay_newest(text) AS"
    " SELECT coalesce(max(id), 0) FROM events WHERE subscriber = $1;";

enum { FIRST_PAGE_ROWS = 16, PAGE_GROWTH = 8 };

enum job_state { JOB_WAITING, JOB_QUERYING, JOB_DRAINING, JOB_BACKOFF };

struct replay_job {
    struct replay *r;
    struct list_node link; /* in r->jobs */
    struct list_node targets;
    size_t target_count;
    size_t awaiting; /* targets whose output has not drained yet */
    enum job_state state;
    bool abandoned;
    bool query_in_flight; /* a page query runs on a pool connection */
    /* The next page is read while the members drain this one, so the
     * database and the clients work at the same time. At most one page
     * waits here: memory stays bounded by the page size. */
    bool prefetching;
    bool prefetched;
    struct frame **ready; /* owned, with one reference per frame */
    size_t ready_count;
    bool ready_was_full;
    bool page_was_full;
    bool read_any;    /* a page of this job has returned rows */
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
};

static void job_next_page(struct replay_job *job);
static void job_drained(struct replay_job *job);

static struct hub_member *target_member(struct list_node *n)
{
    return container_of(n, struct hub_member, catchup.link);
}

static struct replay_job *job_new(struct replay *r, const char *consumer_id, int64_t position)
{
    size_t len = strlen(consumer_id);
    struct replay_job *job = calloc(1, sizeof(*job) + len + 1);
    if (job == NULL)
        return NULL;
    job->r = r;
    list_init(&job->targets);
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

static void drop_frames(struct frame **frames, size_t count)
{
    for (size_t i = 0; i < count; i++)
        frame_unref(frames[i]);
    free(frames);
}

/* Frees the job; its members must be detached. Never called while a query
 * of the job is in flight (see abandoned). */
static void job_free(struct replay_job *job)
{
    struct replay *r = job->r;
    pg_pool_cancel(r->pool, &job->waiter);
    drop_frames(job->ready, job->ready_count);
    if (job->retry_ev != NULL)
        event_free(job->retry_ev);
    list_remove(&job->link);
    r->job_count--;
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
    if (job->retry_ev == NULL)
        job->retry_ev = evtimer_new(job->r->base, on_retry, job);
    if (job->retry_ev == NULL) {
        job_next_page(job); /* no timer: retry at once rather than stall */
        return;
    }
    backoff_next_tv(&job->backoff, &tv);
    job->state = JOB_BACKOFF;
    evtimer_add(job->retry_ev, &tv);
}

/* After a short page: go live, read once more, or park (see replay.h). */
static void job_finish_or_continue(struct replay_job *job)
{
    uint64_t live = hub_live_generation(job->r->hub);
    bool overflowed = false;
    for (struct list_node *n = job->targets.next; n != &job->targets; n = n->next)
        overflowed |= target_member(n)->held_overflowed;

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

static void job_page_done(struct replay_job *job)
{
    if (job->page_was_full)
        job_next_page(job);
    else
        job_finish_or_continue(job);
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

/* Room for one frame per row of a page; NULL only when out of memory. */
static struct frame **page_frames_new(const PGresult *res)
{
    int rows = PQntuples(res);
    return malloc((size_t)(rows > 0 ? rows : 1) * sizeof(struct frame *));
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
            log_warn("row skipped", "id=%" PRId64 " subscriber=%s reason=%s", id, job->consumer_id,
                     frame_error_name(err));
            continue;
        }
        frames[count++] = f;
    }
    return count;
}

/* A read-ahead query is running, or its page waits, while the members still
 * drain the page before it. */
static bool reading_ahead(const struct replay_job *job)
{
    return job->prefetching && job->state == JOB_DRAINING;
}

/* Asks for the page after the job's position while the current one is
 * still being turned into frames and written: the database then works
 * while this process and the clients do, instead of waiting for them. */
static void job_read_ahead(struct replay_job *job)
{
    job->prefetching = true;
    job->state = JOB_DRAINING;
    job_next_page(job);
}

/* Writes a page to the members (taking over frames). After a full page the
 * next one is read (if that is not already under way) while the members
 * drain this one. */
static void job_deliver_page(struct replay_job *job, struct frame **frames, size_t count, bool full)
{
    job->page_was_full = full;
    if (full && !job->prefetching)
        job_read_ahead(job);
    for (struct list_node *n = job->targets.next; n != &job->targets; n = n->next) {
        struct hub_member *m = target_member(n);
        hub_member_deliver(m, frames, count);
        if (m->ops->pending(m) > 0) {
            m->catchup.awaiting_drain = true;
            job->awaiting++;
        }
    }
    drop_frames(frames, count);

    backoff_reset(&job->backoff);
    job->state = JOB_DRAINING;
    if (job->awaiting == 0)
        job_drained(job);
}

/* Every member has drained the last page: write the page read meanwhile,
 * wait for it, or go on as after any page. */
static void job_drained(struct replay_job *job)
{
    if (!job->prefetching) {
        job_page_done(job);
        return;
    }
    if (!job->prefetched) {
        job->state = JOB_QUERYING; /* on_page writes it when it comes */
        return;
    }
    struct frame **frames = job->ready;
    size_t count = job->ready_count;
    job->ready = NULL;
    job->ready_count = 0;
    job->prefetching = job->prefetched = false;
    job_deliver_page(job, frames, count, job->ready_was_full);
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

/* A cursor beyond the consumer's newest row cannot come from this database
 * (a client saw id N only if N was committed): the table was restored or
 * reset. Such members restart from the newest row, or they would never see
 * another event until the ids caught up. */
static void on_newest(struct pg_conn *conn, const PGresult *res, void *arg)
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
    int64_t newest = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    for (struct list_node *n = job->targets.next; n != &job->targets; n = n->next) {
        struct hub_member *m = target_member(n);
        if (m->cursor <= newest)
            continue;
        log_warn("Last-Event-ID is beyond the newest event; resuming from the newest",
                 "consumer=%s last_event_id=%" PRId64 " newest=%" PRId64, job->consumer_id,
                 m->cursor, newest);
        hub_member_rewind(m, newest);
    }
    if (job->position > newest)
        job->position = newest;
    job->page_was_full = false;
    job_page_done(job);
}

static void on_page(struct pg_conn *conn, const PGresult *res, void *arg)
{
    struct replay_job *job = arg;
    const char *params[1] = {job->consumer_id};

    if (!job->abandoned && res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK &&
        PQntuples(res) == 0 && !job->read_any && job->position > 0 &&
        pg_conn_execute(conn, "piper_replay_newest", 1, params, on_newest, job))
        return; /* keep the connection for one more question */
    pg_pool_release(job->r->pool, conn);
    job->query_in_flight = false;
    if (job->abandoned) {
        job_free(job);
        return;
    }
    if (reading_ahead(job)) {
        /* Keep the page for when the members have drained, or forget it
         * on failure: the drain then reads it again (the page being
         * drained was full, so job_page_done asks for the next one). */
        struct frame **frames = NULL;
        if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK ||
            (frames = page_frames_new(res)) == NULL) {
            job->prefetching = false;
            return;
        }
        job->ready_was_full = job_account_page(job, res);
        job->ready = frames;
        job->ready_count = job_fill_frames(job, res, frames);
        job->prefetched = true;
        return;
    }
    job->prefetching = false;
    if (query_failed(job, res))
        return;
    struct frame **frames = page_frames_new(res);
    if (frames == NULL) {
        log_error("replay page dropped: out of memory", "consumer=%s rows=%d", job->consumer_id,
                  PQntuples(res));
        job_retry_later(job);
        return;
    }
    if (PQntuples(res) > 0)
        job->read_any = true;
    bool full = job_account_page(job, res);
    if (full)
        job_read_ahead(job);
    job_deliver_page(job, frames, job_fill_frames(job, res, frames), full);
}

static void on_granted(struct pg_pool_waiter *w, struct pg_conn *conn)
{
    struct replay_job *job = container_of(w, struct replay_job, waiter);
    char position[24], limit[24];
    const char *params[3] = {job->consumer_id, position, limit};

    snprintf(position, sizeof(position), "%" PRId64, job->position);
    snprintf(limit, sizeof(limit), "%zu", job->page_limit);
    job->query_generation = hub_live_generation(job->r->hub);
    for (struct list_node *n = job->targets.next; n != &job->targets; n = n->next)
        target_member(n)->held_overflowed = false;
    if (!pg_conn_execute(conn, "piper_replay_page", 3, params, on_page, job)) {
        pg_pool_release(job->r->pool, conn);
        if (reading_ahead(job)) {
            job->prefetching = false; /* the drain reads the page instead */
            return;
        }
        job->prefetching = false;
        job_retry_later(job);
        return;
    }
    job->query_in_flight = true;
    if (!reading_ahead(job))
        job->state = JOB_QUERYING;
}

/* Asks the pool for a connection to read the next page. A read-ahead
 * (prefetching) keeps the job DRAINING meanwhile. */
static void job_next_page(struct replay_job *job)
{
    if (!job->prefetching)
        job->state = JOB_WAITING;
    job->waiter.granted = on_granted;
    pg_pool_acquire(job->r->pool, &job->waiter);
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
    free(r);
}

void replay_catch_up(struct replay *r, struct hub_member *m)
{
    struct replay_job *job = job_new(r, hub_consumer_id(m->consumer), m->cursor);
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
            job = job_new(ctx->r, hub_consumer_id(c), m->cursor);
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
