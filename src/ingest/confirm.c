/*
 * Hints wait in an array in arrival order. A read takes up to
 * CONFIRM_BATCH_MAX of them (plus the highest skipped id), and its result
 * becomes a batch of frames in id order, queued for publishing. Publishing
 * runs from its own event with a time budget per pass, so one large batch
 * fanned out to thousands of streams cannot keep the loop from accepting,
 * answering /healthz or running the slow-consumer timers.
 *
 * A generation number ties a read to the state it was sent from:
 * confirm_reset() bumps it, and a read that returns into a newer generation
 * is dropped.
 */
#include "ingest/confirm.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/clock.h"
#include "core/event_row.h"
#include "ops/log.h"
#include "ops/metrics.h"

const char confirm_prepare_sql[] =
    "PREPARE piper_confirm(bigint[]) AS " EVENT_ROW_SELECT " WHERE id = ANY($1) ORDER BY id;";

/* Time spent publishing in one loop pass (see the file comment). */
#define PUBLISH_BUDGET_NS 2000000
/* A read is not started while this many confirmed rows wait to be
 * published: the hints then pile up (bounded by hints_max) instead of rows. */
#define READY_ROWS_MAX CONFIRM_BATCH_MAX

struct ready_row {
    struct frame *frame;
    size_t subscriber_offset;
    size_t subscriber_len;
};

/* The rows of one read, published in order. */
struct batch {
    struct list_node link;
    struct ready_row *rows;
    size_t count;
    size_t next;       /* first row not yet published */
    char *subscribers; /* the rows' subscriber ids, back to back */
};

struct confirm {
    struct event_base *base;
    struct hub *hub;
    struct confirm_options options;
    struct pg_conn *conn;
    struct pg_pool *pool;
    struct pg_pool_query *pool_read; /* in flight on the pool */
    bool reading;
    uint64_t generation;
    uint64_t read_generation;
    int64_t *hints;
    size_t hint_count;
    size_t hint_capacity;
    int64_t skipped_max; /* highest hint not read: nobody here wanted it */
    struct list_node ready;
    size_t ready_rows;
    bool held;
    struct event *read_ev;
    struct event *publish_ev;
    size_t read_ids; /* ids asked for by the read in flight */
    struct log_limit resync_logs;
    struct log_limit missing_logs;
};

static void batch_free(struct batch *b)
{
    for (size_t i = b->next; i < b->count; i++)
        frame_unref(b->rows[i].frame);
    list_remove(&b->link);
    free(b->rows);
    free(b->subscribers);
    free(b);
}

static void schedule_read(struct confirm *c)
{
    event_active(c->read_ev, EV_TIMEOUT, 1);
}

static void schedule_publish(struct confirm *c)
{
    static const struct timeval next_pass = {0, 0};
    if (!c->held && !list_empty(&c->ready) && !evtimer_pending(c->publish_ev, NULL))
        evtimer_add(c->publish_ev, &next_pass);
}

static void drop_ready(struct confirm *c)
{
    while (!list_empty(&c->ready))
        batch_free(container_of(c->ready.next, struct batch, link));
    c->ready_rows = 0;
}

/* Hints were lost without being read: live streams catch up from the table,
 * from their own cursors, as after an outage. While held the ingest is not
 * live yet, and going live does exactly that anyway. */
static void resync(struct confirm *c, const char *why)
{
    metrics.confirm_resyncs++;
    unsigned dropped;
    if (log_limit_allow(&c->resync_logs, &dropped))
        log_warn("hints dropped; streams catch up from the table", "reason=%s dropped=%u", why,
                 dropped);
    c->hint_count = 0;
    c->skipped_max = 0;
    if (c->held)
        return;
    hub_ingest_down(c->hub);
    hub_ingest_up(c->hub, hub_high_water(c->hub), true);
}

void confirm_hint(struct confirm *c, int64_t id, const char *subscriber, size_t subscriber_len)
{
    if (subscriber != NULL && !hub_has_consumer(c->hub, subscriber, subscriber_len)) {
        if (id > c->skipped_max)
            c->skipped_max = id;
        if (!c->reading)
            schedule_read(c);
        return;
    }
    if (c->hint_count == c->hint_capacity) {
        if (c->hint_count >= c->options.hints_max) {
            resync(c, "too many hints waiting");
            return;
        }
        size_t capacity = c->hint_capacity == 0 ? 64 : c->hint_capacity * 2;
        if (capacity > c->options.hints_max)
            capacity = c->options.hints_max;
        int64_t *grown = realloc(c->hints, capacity * sizeof(*grown));
        if (grown == NULL) {
            resync(c, "out of memory");
            return;
        }
        c->hints = grown;
        c->hint_capacity = capacity;
    }
    c->hints[c->hint_count++] = id;
    if (!c->reading)
        schedule_read(c);
}

void confirm_signed(struct confirm *c, struct frame *frame, const char *subscriber,
                    size_t subscriber_len)
{
    if (c->reading || c->hint_count > 0) {
        confirm_hint(c, frame->id, subscriber, subscriber_len);
        return;
    }
    struct batch *b = calloc(1, sizeof(*b));
    if (b != NULL) {
        list_init(&b->link);
        b->rows = malloc(sizeof(*b->rows));
        b->subscribers = malloc(subscriber_len > 0 ? subscriber_len : 1);
    }
    if (b == NULL || b->rows == NULL || b->subscribers == NULL) {
        if (b != NULL)
            batch_free(b);
        confirm_hint(c, frame->id, subscriber, subscriber_len);
        return;
    }
    memcpy(b->subscribers, subscriber, subscriber_len);
    b->rows[0] = (struct ready_row){frame_ref(frame), 0, subscriber_len};
    b->count = 1;
    list_append(&c->ready, &b->link);
    c->ready_rows++;
    schedule_publish(c);
}

/* Turns a read's rows into a batch; rows that cannot become a frame are
 * logged and skipped. NULL only when out of memory. */
static struct batch *batch_from_result(const PGresult *res)
{
    int rows = PQntuples(res);
    size_t text = 0;
    for (int i = 0; i < rows; i++)
        text += (size_t)PQgetlength(res, i, EVENT_ROW_SUBSCRIBER);
    struct batch *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return NULL;
    list_init(&b->link);
    b->rows = malloc((size_t)(rows > 0 ? rows : 1) * sizeof(*b->rows));
    b->subscribers = malloc(text > 0 ? text : 1);
    if (b->rows == NULL || b->subscribers == NULL) {
        batch_free(b);
        return NULL;
    }
    size_t used = 0;
    for (int i = 0; i < rows; i++) {
        int64_t id = 0;
        enum frame_error err = FRAME_OK;
        struct frame *f = event_row_frame(res, i, &id, &err);
        if (f == NULL) {
            metrics.events_invalid[INVALID_ROW]++;
            static struct log_limit limit;
            unsigned dropped;
            if (log_limit_allow(&limit, &dropped))
                log_warn("row skipped", "id=%" PRId64 " reason=%s dropped=%u", id,
                         frame_error_name(err), dropped);
            continue;
        }
        size_t len = (size_t)PQgetlength(res, i, EVENT_ROW_SUBSCRIBER);
        memcpy(b->subscribers + used, PQgetvalue(res, i, EVENT_ROW_SUBSCRIBER), len);
        b->rows[b->count++] = (struct ready_row){f, used, len};
        used += len;
    }
    return b;
}

static void on_read(struct pg_conn *conn, const PGresult *res, void *arg)
{
    struct confirm *c = arg;
    (void)conn;
    c->reading = false;
    c->pool_read = NULL;
    if (c->read_generation != c->generation) {
        schedule_read(c);
        return;
    }
    if (res == NULL) {
        /* On the owner's connection, the owner sees the loss and resets;
         * on the pool, the ingest itself is fine. */
        if (c->pool != NULL)
            resync(c, "confirming read lost its connection");
        schedule_read(c);
        return;
    }
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        log_warn("confirming read failed", "error=%s", PQresultErrorMessage(res));
        resync(c, "confirming read failed");
        schedule_read(c);
        return;
    }
    size_t missing = c->read_ids - (size_t)PQntuples(res);
    if (missing > 0) {
        /* Forged, or deleted (retention) before it could be read. */
        metrics.events_invalid[INVALID_MISSING_ROW] += missing;
        unsigned dropped;
        if (log_limit_allow(&c->missing_logs, &dropped))
            log_warn("hinted rows not in the table", "count=%zu dropped=%u", missing, dropped);
    }
    struct batch *b = batch_from_result(res);
    if (b == NULL) {
        resync(c, "out of memory");
        schedule_read(c);
        return;
    }
    list_append(&c->ready, &b->link);
    c->ready_rows += b->count;
    schedule_publish(c);
    schedule_read(c);
}

/* Appends "{id,id,...}" for the read's first n hints (and extra, if
 * positive) to out, which holds n * 21 + 24 bytes. */
static void format_ids(char *out, const int64_t *ids, size_t n, int64_t extra)
{
    char *o = out;
    *o++ = '{';
    for (size_t i = 0; i < n; i++)
        o += sprintf(o, "%s%" PRId64, i == 0 ? "" : ",", ids[i]);
    if (extra > 0)
        o += sprintf(o, "%s%" PRId64, n == 0 ? "" : ",", extra);
    *o++ = '}';
    *o = '\0';
}

static void on_read_due(evutil_socket_t fd, short what, void *arg)
{
    struct confirm *c = arg;
    (void)fd;
    (void)what;
    if (c->reading || (c->hint_count == 0 && c->skipped_max == 0) ||
        c->ready_rows >= READY_ROWS_MAX || (c->conn == NULL && c->pool == NULL))
        return;
    size_t n = c->hint_count < CONFIRM_BATCH_MAX ? c->hint_count : CONFIRM_BATCH_MAX;
    /* The skipped id rides along once the hints before it are all read. */
    int64_t extra = n == c->hint_count ? c->skipped_max : 0;
    char *ids = malloc(n * 21 + 24);
    if (ids == NULL) {
        resync(c, "out of memory");
        return;
    }
    format_ids(ids, c->hints, n, extra);
    const char *params[1] = {ids};
    bool sent;
    if (c->pool != NULL) {
        c->pool_read = pg_pool_query(c->pool, "piper_confirm", true, 1, params, on_read, c);
        sent = c->pool_read != NULL;
    } else {
        sent = pg_conn_execute(c->conn, "piper_confirm", 1, params, on_read, c);
    }
    free(ids);
    if (!sent)
        return; /* the connection is going down; its owner resets */
    metrics.confirm_reads++;
    if (n > 0) {
        memmove(c->hints, c->hints + n, (c->hint_count - n) * sizeof(*c->hints));
        c->hint_count -= n;
    }
    if (extra > 0)
        c->skipped_max = 0;
    c->reading = true;
    c->read_ids = n + (extra > 0);
    c->read_generation = c->generation;
}

static void publish_row(struct confirm *c, const struct batch *b, const struct ready_row *row)
{
    size_t taken = hub_publish(c->hub, b->subscribers + row->subscriber_offset, row->subscriber_len,
                               row->frame);
    if (taken > 0 && row->frame->timestamp > 0)
        metrics_observe_lag(clock_wall_seconds() - row->frame->timestamp);
}

static void on_publish_due(evutil_socket_t fd, short what, void *arg)
{
    struct confirm *c = arg;
    int64_t deadline = clock_monotonic_ns() + PUBLISH_BUDGET_NS;
    (void)fd;
    (void)what;
    while (!c->held && !list_empty(&c->ready)) {
        struct batch *b = container_of(c->ready.next, struct batch, link);
        while (b->next < b->count) {
            struct ready_row *row = &b->rows[b->next++];
            publish_row(c, b, row);
            frame_unref(row->frame);
            c->ready_rows--;
            if (clock_monotonic_ns() >= deadline) {
                schedule_publish(c);
                schedule_read(c);
                return;
            }
        }
        batch_free(b);
    }
    schedule_read(c);
}

struct confirm *confirm_new(struct event_base *base, struct hub *hub,
                            const struct confirm_options *options)
{
    struct confirm *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->base = base;
    c->hub = hub;
    c->options = *options;
    list_init(&c->ready);
    c->read_ev = event_new(base, -1, 0, on_read_due, c);
    c->publish_ev = evtimer_new(base, on_publish_due, c);
    if (c->read_ev == NULL || c->publish_ev == NULL) {
        confirm_free(c);
        return NULL;
    }
    return c;
}

void confirm_free(struct confirm *c)
{
    if (c == NULL)
        return;
    if (c->pool_read != NULL)
        pg_pool_query_cancel(c->pool_read);
    drop_ready(c);
    free(c->hints);
    if (c->read_ev != NULL)
        event_free(c->read_ev);
    if (c->publish_ev != NULL)
        event_free(c->publish_ev);
    free(c);
}

void confirm_read_on_conn(struct confirm *c, struct pg_conn *conn)
{
    c->conn = conn;
    c->pool = NULL;
    schedule_read(c);
}

void confirm_read_on_pool(struct confirm *c, struct pg_pool *pool)
{
    c->conn = NULL;
    c->pool = pool;
    schedule_read(c);
}

void confirm_hold(struct confirm *c, bool hold)
{
    c->held = hold;
    schedule_publish(c);
}

void confirm_reset(struct confirm *c)
{
    c->generation++;
    if (c->pool_read != NULL) {
        pg_pool_query_cancel(c->pool_read);
        c->pool_read = NULL;
        c->reading = false;
    }
    c->hint_count = 0;
    c->skipped_max = 0;
    drop_ready(c);
    event_del(c->publish_ev);
}

size_t confirm_backlog(const struct confirm *c)
{
    return c->hint_count + c->ready_rows;
}
