/*
 * History requests (the contract and the states are in history.h).
 *
 * Every request is freed in one place, request_free(), reached from the
 * answer, from the client leaving, or from history_free(). The hub may call
 * the waiter's write from inside hub_publish(), where members must not
 * leave, so a wake-up only schedules wake_ev.
 */
#include "api/history.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "core/replay.h"
#include "ops/log.h"
#include "ops/metrics.h"
#include "util/json_text.h"
#include "util/number.h"
#include "util/sql_array.h"

#define TIMESTAMP_SQL "to_char(timestamp AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"

/* Both take the consumers as a text[] and return id, type, payload,
 * timestamp and subscriber. A page merges each consumer's rows after its
 * own position ($2, a bigint[] in the same order), each read on the
 * (subscriber, id) index and cut at the page size before the merge, and
 * adds first whether any position lies below its consumer's pruned mark,
 * on a row of its own when there are no events. */
const char history_prepare_sql[] =
    "PREPARE piper_history(text[], bigint[], integer, text[]) AS"
    " SELECT gone.below_mark, e.id, e.type, e.payload, e.ts, e.subscriber FROM"
    " (SELECT EXISTS (SELECT 1 FROM unnest($1, $2) AS c(sub, after)"
    "   JOIN events_pruned_subscribers p ON p.subscriber = c.sub"
    "   WHERE p.max_pruned_id > c.after) AS below_mark) gone"
    " LEFT JOIN LATERAL (SELECT x.* FROM unnest($1, $2) AS c(sub, after)"
    "   CROSS JOIN LATERAL (SELECT id, type, payload, " TIMESTAMP_SQL " AS ts, subscriber"
    "     FROM events WHERE subscriber = c.sub AND id > c.after"
    "     AND ($4 IS NULL OR type = ANY($4)) ORDER BY id LIMIT $3) x"
    "   ORDER BY x.id LIMIT $3) e ON true ORDER BY e.id;"
    "PREPARE piper_latest(text[], text[]) AS"
    " SELECT NULL, x.id, x.type, x.payload, x.ts, x.subscriber FROM unnest($1) AS c(sub)"
    " CROSS JOIN LATERAL (SELECT id, type, payload, " TIMESTAMP_SQL " AS ts, subscriber"
    "   FROM events WHERE subscriber = c.sub AND ($2 IS NULL OR type = ANY($2))"
    "   ORDER BY id DESC LIMIT 1) x ORDER BY x.id DESC LIMIT 1;";

enum { COL_BELOW_MARK, COL_ID, COL_TYPE, COL_PAYLOAD, COL_TIMESTAMP, COL_SUBSCRIBER };

enum request_state { REQ_QUERYING, REQ_WAITING, REQ_REQUERYING, REQ_STATE_COUNT };

static const char *const request_state_names[REQ_STATE_COUNT] = {"querying", "waiting",
                                                                 "requerying"};

/* allowed[from][to] */
static const bool request_allowed[REQ_STATE_COUNT][REQ_STATE_COUNT] = {
    [REQ_QUERYING] = {[REQ_WAITING] = true},
    [REQ_WAITING] = {[REQ_REQUERYING] = true},
};

struct history {
    struct event_base *base;
    struct hub *hub;
    struct pg_pool *pool;
    struct list_node requests;
    size_t waiting;
};

/* A waiting request's membership of one consumer's streams in the hub. */
struct request_member {
    struct hub_member hub;
    struct request *request;
};

struct request {
    struct history *h;
    struct list_node link;
    struct exchange *x;
    enum request_state state;
    struct pg_pool_query *query;    /* in flight, or NULL */
    struct request_member *members; /* one per consumer, joined only with wait > 0 */
    size_t joined;
    struct event *wake_ev;
    struct event *timeout_ev;
    bool latest;
    bool history_gone; /* from the first query, for the empty page of a timeout */
    struct consumer_set consumers;
    int64_t *after; /* a position per consumer */
    int limit;
    int wait_seconds;
    char *subscribers; /* the consumers as a text[] literal */
    char *types;       /* text[] literal, or NULL */
    struct event_filter filter;
};

static void request_enter(struct request *r, enum request_state to)
{
    if (!request_allowed[r->state][to]) {
        log_error("history: impossible transition", "consumer=%s from=%s to=%s",
                  r->consumers.ids[0], request_state_names[r->state], request_state_names[to]);
        abort();
    }
    r->state = to;
}

static void request_free(struct request *r)
{
    if (r->query != NULL)
        pg_pool_query_cancel(r->query);
    for (size_t i = 0; i < r->joined; i++) {
        replay_member_leave(&r->members[i].hub); /* a gap fill may have taken it in */
        hub_leave(r->h->hub, &r->members[i].hub);
    }
    free(r->members);
    if (r->state == REQ_WAITING)
        r->h->waiting--;
    if (r->wake_ev != NULL)
        event_free(r->wake_ev);
    if (r->timeout_ev != NULL)
        event_free(r->timeout_ev);
    list_remove(&r->link);
    event_filter_free(&r->filter);
    consumer_set_free(&r->consumers);
    free(r->after);
    free(r->subscribers);
    free(r->types);
    free(r);
}

/* ---- answers ---- */

static void put_json_string(struct evbuffer *out, const char *s, size_t len)
{
    char small[256];
    char *buf = 6 * len <= sizeof(small) ? small : malloc(6 * len);
    evbuffer_add(out, "\"", 1);
    if (buf != NULL) {
        evbuffer_add(out, buf, json_escape(buf, s, len));
        if (buf != small)
            free(buf);
    }
    evbuffer_add(out, "\"", 1);
}

/* One event object; false when its payload is not valid JSON (it cannot be:
 * the column is jsonb, but the answer stays valid JSON whatever happens). */
static bool put_event(struct evbuffer *out, const PGresult *res, int row)
{
    const char *payload = PQgetvalue(res, row, COL_PAYLOAD);
    size_t payload_len = (size_t)PQgetlength(res, row, COL_PAYLOAD);
    char *compact = malloc(payload_len + 1);
    enum json_kind kind = JSON_KIND_INVALID;
    size_t compact_len = compact != NULL ? json_compact(payload, payload_len, compact, &kind) : 0;
    if (kind == JSON_KIND_INVALID) {
        free(compact);
        return false;
    }
    evbuffer_add_printf(out, "{\"id\":\"%s\",\"event\":", PQgetvalue(res, row, COL_ID));
    put_json_string(out, PQgetvalue(res, row, COL_TYPE), (size_t)PQgetlength(res, row, COL_TYPE));
    evbuffer_add(out, ",\"data\":", 8);
    evbuffer_add(out, compact, compact_len);
    evbuffer_add_printf(out, ",\"timestamp\":\"%s\"}", PQgetvalue(res, row, COL_TIMESTAMP));
    free(compact);
    return true;
}

static void respond_buffer(struct request *r, int status, struct evbuffer *out)
{
    size_t len = evbuffer_get_length(out);
    exchange_respond(r->x, status, "application/json", (const char *)evbuffer_pullup(out, -1), len);
    evbuffer_free(out);
    metrics.history_requests[r->latest ? HISTORY_ENDPOINT_LATEST : HISTORY_ENDPOINT_HISTORY]++;
    r->x = NULL;
    request_free(r);
}

static void respond_failed(struct request *r, const char *why)
{
    static struct log_limit limit;
    unsigned dropped;
    if (log_limit_allow(&limit, &dropped))
        log_warn("history query failed", "consumer=%s consumers=%zu error=%s dropped=%u",
                 r->consumers.ids[0], r->consumers.count, why, dropped);
    exchange_respond_error(r->x, HTTP_ERROR_HISTORY_FAILED, NULL);
    r->x = NULL;
    request_free(r);
}

static int event_rows(const PGresult *res)
{
    int rows = PQntuples(res);
    /* The page's LEFT JOIN gives one row with a NULL id when it is empty. */
    return rows == 1 && PQgetisnull(res, 0, COL_ID) ? 0 : rows;
}

/* Moves the request's positions past a page's rows. */
static void advance(struct request *r, const PGresult *res, int rows)
{
    for (int i = 0; i < rows; i++) {
        long at = consumer_set_find(&r->consumers, PQgetvalue(res, i, COL_SUBSCRIBER));
        int64_t id = 0;
        if (at >= 0 && parse_int64(PQgetvalue(res, i, COL_ID), (size_t)PQgetlength(res, i, COL_ID),
                                   0, INT64_MAX, &id))
            r->after[at] = id;
    }
}

/* next_after: the plain position for one consumer, else the cursor of all
 * (stream_cursor.h), whose base is the page's last id. */
static void put_next_after(struct evbuffer *out, const struct request *r, int64_t last_id)
{
    if (r->consumers.count == 1) {
        evbuffer_add_printf(out, "%" PRId64, r->after[0]);
        return;
    }
    char *text = malloc(stream_cursor_max_len(r->consumers.count));
    if (text == NULL)
        return; /* the caller checks the buffer */
    int64_t base = last_id;
    for (size_t i = 0; base == 0 && i < r->consumers.count; i++)
        base = r->after[i] > base ? r->after[i] : base;
    size_t len = stream_cursor_format(text, base, r->after, r->consumers.count, r->consumers.tag);
    evbuffer_add(out, text, len);
    free(text);
}

static void respond_page(struct request *r, const PGresult *res)
{
    struct evbuffer *out = evbuffer_new();
    if (out == NULL) {
        respond_failed(r, "out of memory");
        return;
    }
    int rows = res != NULL ? event_rows(res) : 0;
    bool more = rows > r->limit;
    int shown = more ? r->limit : rows;
    int64_t last_id = 0;
    evbuffer_add(out, "{\"events\":[", 11);
    for (int i = 0, written = 0; i < shown; i++) {
        if (written > 0)
            evbuffer_add(out, ",", 1);
        if (put_event(out, res, i))
            written++;
    }
    if (shown > 0) {
        advance(r, res, shown);
        if (!parse_int64(PQgetvalue(res, shown - 1, COL_ID),
                         (size_t)PQgetlength(res, shown - 1, COL_ID), 0, INT64_MAX, &last_id))
            last_id = 0;
    }
    evbuffer_add(out, "],\"next_after\":\"", 16);
    put_next_after(out, r, last_id);
    evbuffer_add_printf(out, "\",\"more\":%s,\"history_gone\":%s}\n", more ? "true" : "false",
                        r->history_gone ? "true" : "false");
    respond_buffer(r, 200, out);
}

static void respond_latest(struct request *r, const PGresult *res)
{
    if (PQntuples(res) == 0) {
        metrics.history_requests[HISTORY_ENDPOINT_LATEST]++;
        exchange_respond_error(r->x, HTTP_ERROR_NO_EVENTS, NULL);
        r->x = NULL;
        request_free(r);
        return;
    }
    struct evbuffer *out = evbuffer_new();
    if (out == NULL || !put_event(out, res, 0)) {
        if (out != NULL)
            evbuffer_free(out);
        respond_failed(r, "unreadable row");
        return;
    }
    evbuffer_add(out, "\n", 1);
    respond_buffer(r, 200, out);
}

/* ---- waiting ---- */

static void waiter_write(struct hub_member *m, struct frame *const *frames, size_t count)
{
    struct request *r = container_of(m, struct request_member, hub)->request;
    (void)frames;
    (void)count;
    if (r->state == REQ_WAITING)
        event_active(r->wake_ev, EV_TIMEOUT, 1);
}

static size_t waiter_pending(const struct hub_member *m)
{
    (void)m;
    return 0;
}

static const struct hub_member_ops waiter_ops = {waiter_write, waiter_pending};

static bool send_query(struct request *r);

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    struct request *r = arg;
    (void)fd;
    (void)what;
    if (r->state != REQ_WAITING)
        return;
    request_enter(r, REQ_REQUERYING);
    r->h->waiting--;
    evtimer_del(r->timeout_ev);
    if (!send_query(r))
        respond_failed(r, "out of memory");
}

static void on_wait_over(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    respond_page(arg, NULL);
}

/* Nothing yet: wait for the hub (see history.h). */
static void start_waiting(struct request *r)
{
    struct timeval tv = {r->wait_seconds, 0};
    r->wake_ev = event_new(r->h->base, -1, 0, on_wake, r);
    r->timeout_ev = evtimer_new(r->h->base, on_wait_over, r);
    if (r->wake_ev == NULL || r->timeout_ev == NULL || evtimer_add(r->timeout_ev, &tv) != 0) {
        respond_failed(r, "out of memory");
        return;
    }
    request_enter(r, REQ_WAITING);
    r->h->waiting++;
    /* Releases what the hub held since the join (rows committed after the
     * query's snapshot) and goes live: either wakes us. Held events that
     * overflowed were dropped, but there were rows, so ask again. */
    for (size_t i = 0; i < r->joined; i++) {
        if (r->members[i].hub.held_overflowed)
            event_active(r->wake_ev, EV_TIMEOUT, 1);
        hub_member_go_live(&r->members[i].hub);
    }
}

/* ---- queries ---- */

static void on_result(struct pg_conn *conn, const PGresult *res, void *arg)
{
    struct request *r = arg;
    (void)conn;
    r->query = NULL;
    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        respond_failed(r, res != NULL ? PQresultErrorMessage(res) : "connection lost");
        return;
    }
    if (r->latest) {
        respond_latest(r, res);
        return;
    }
    if (r->state == REQ_QUERYING) {
        r->history_gone = PQntuples(res) > 0 && !PQgetisnull(res, 0, COL_BELOW_MARK) &&
                          PQgetvalue(res, 0, COL_BELOW_MARK)[0] == 't';
        if (event_rows(res) == 0 && r->joined > 0) {
            start_waiting(r);
            return;
        }
    }
    respond_page(r, res);
}

/* The positions as a bigint[] literal, {5,7}. */
static char *positions_literal(const struct request *r)
{
    char *text = malloc(2 + r->consumers.count * 21);
    if (text == NULL)
        return NULL;
    char *o = text;
    *o++ = '{';
    for (size_t i = 0; i < r->consumers.count; i++)
        o += sprintf(o, "%s%" PRId64, i > 0 ? "," : "", r->after[i]);
    strcpy(o, "}");
    return text;
}

static bool send_query(struct request *r)
{
    char limit[16];
    snprintf(limit, sizeof(limit), "%d", r->limit + 1); /* one more says "more" */
    if (r->latest) {
        const char *params[2] = {r->subscribers, r->types};
        r->query = pg_pool_query(r->h->pool, "piper_latest", true, 2, params, on_result, r);
        return r->query != NULL;
    }
    char *after = positions_literal(r);
    if (after == NULL)
        return false;
    const char *params[4] = {r->subscribers, after, limit, r->types};
    r->query = pg_pool_query(r->h->pool, "piper_history", true, 4, params, on_result, r);
    free(after);
    return r->query != NULL;
}

static void on_client_gone(void *arg)
{
    struct request *r = arg;
    r->x = NULL;
    request_free(r);
}

/* Joins the hub for each consumer at its position, before the query: see
 * history.h. */
static bool join_hub(struct request *r)
{
    r->members = calloc(r->consumers.count, sizeof(*r->members));
    if (r->members == NULL)
        return false;
    for (size_t i = 0; i < r->consumers.count; i++) {
        struct request_member *m = &r->members[i];
        m->request = r;
        if (!hub_join(r->h->hub, r->consumers.ids[i], &m->hub, &waiter_ops, true, r->after[i]))
            return false;
        r->joined++;
        if (!event_filter_empty(&r->filter))
            m->hub.filter = &r->filter;
    }
    return true;
}

static bool request_init(struct request *r, const struct history_query *q)
{
    bool failed = false;
    size_t count = q->consumers->count;
    if (!consumer_set_copy(&r->consumers, q->consumers) ||
        (r->after = calloc(count, sizeof(*r->after))) == NULL ||
        (r->subscribers = sql_text_array((const char *const *)r->consumers.ids, count)) == NULL ||
        (q->filter != NULL && !event_filter_copy(&r->filter, q->filter)) ||
        ((r->types = event_filter_sql_array(&r->filter, &failed)) == NULL && failed))
        return false;
    /* A cursor's consumer without a position yet reads from the start. */
    for (size_t i = 0; q->after != NULL && i < count; i++)
        r->after[i] = q->after[i] != STREAM_CURSOR_NONE ? q->after[i] : 0;
    return r->wait_seconds == 0 || join_hub(r);
}

void history_answer(struct history *h, struct exchange *x, const struct history_query *q)
{
    struct request *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        exchange_respond_error(x, HTTP_ERROR_OUT_OF_MEMORY, NULL);
        return;
    }
    r->h = h;
    r->x = x;
    r->state = REQ_QUERYING;
    r->latest = q->latest;
    r->limit = q->limit;
    r->wait_seconds = q->latest ? 0 : q->wait_seconds;
    list_append(&h->requests, &r->link);
    if (!request_init(r, q) || !send_query(r)) {
        r->x = NULL;
        request_free(r);
        exchange_respond_error(x, HTTP_ERROR_OUT_OF_MEMORY, NULL);
        return;
    }
    exchange_on_abort(x, on_client_gone, r);
}

struct history *history_new(struct event_base *base, struct hub *hub, struct pg_pool *pool)
{
    struct history *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return NULL;
    h->base = base;
    h->hub = hub;
    h->pool = pool;
    list_init(&h->requests);
    return h;
}

void history_free(struct history *h)
{
    if (h == NULL)
        return;
    while (!list_empty(&h->requests))
        request_free(container_of(h->requests.next, struct request, link));
    free(h);
}

size_t history_waiting(const struct history *h)
{
    return h->waiting;
}
