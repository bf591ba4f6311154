/*
 * LISTEN connection state machine:
 *
 *   DOWN --timer--> CONNECTING --ready--> SYNCING --max(id)--> LIVE
 *     ^                  |                   |                   |
 *     +------------------+---- lost ---------+-------------------+
 *
 * SYNCING reads the highest committed id after LISTEN is in effect, so every
 * commit after that read is notified. Notifications arriving while SYNCING
 * are queued and published only after the hub has been told the ingest is up
 * (and has put live streams into catch-up), so no stream's cursor can jump
 * over the gap that the catch-up will fill.
 *
 * Events are published through a FIFO only when something is ahead of them
 * (a fetch of an oversized row, or SYNCING); otherwise straight away.
 */
#include "pg_listener.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "backoff.h"
#include "event_row.h"
#include "log.h"
#include "metrics.h"
#include "notification.h"
#include "pg_conn.h"

enum listener_state { LISTENER_DOWN, LISTENER_CONNECTING, LISTENER_SYNCING, LISTENER_LIVE };

/* An event waiting for its turn in notification order. */
struct pending_event {
    struct list_node link;
    struct pg_listener *owner;
    bool fetching;       /* waiting for the row to be read by id */
    struct frame *frame; /* NULL when the event is to be skipped */
    int64_t id;
    size_t subscriber_len;
    char *subscriber;
};

struct pg_listener {
    struct event_base *base;
    struct hub *hub;
    struct pg_listener_options options;
    char *conninfo;
    enum listener_state state;
    struct pg_conn *conn;
    struct event *reconnect_ev;
    struct event *ping_ev;
    struct event *ping_deadline_ev;
    struct backoff backoff;
    struct list_node fifo;
    bool ever_live;
    unsigned failures_logged;
};

static void listener_connect(struct pg_listener *l);

static void pending_free(struct pending_event *p)
{
    list_remove(&p->link);
    frame_unref(p->frame);
    free(p->subscriber);
    free(p);
}

static void fifo_clear(struct pg_listener *l)
{
    while (!list_empty(&l->fifo))
        pending_free(container_of(l->fifo.next, struct pending_event, link));
}

static double now_seconds(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

static void publish(struct pg_listener *l, const char *subscriber, size_t subscriber_len,
                    struct frame *f)
{
    size_t taken = hub_publish(l->hub, subscriber, subscriber_len, f);
    if (taken > 0 && f->timestamp > 0)
        metrics_observe_lag(now_seconds() - f->timestamp);
}

/* Publishes the FIFO's head while it is ready, in order. */
static void fifo_flush(struct pg_listener *l)
{
    if (l->state != LISTENER_LIVE)
        return;
    while (!list_empty(&l->fifo)) {
        struct pending_event *p = container_of(l->fifo.next, struct pending_event, link);
        if (p->fetching)
            return;
        if (p->frame != NULL)
            publish(l, p->subscriber, p->subscriber_len, p->frame);
        pending_free(p);
    }
}

static struct pending_event *fifo_push(struct pg_listener *l, int64_t id, const char *subscriber,
                                       size_t subscriber_len, struct frame *f)
{
    struct pending_event *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->owner = l;
    p->id = id;
    p->frame = f;
    if (subscriber != NULL) {
        p->subscriber = malloc(subscriber_len + 1);
        if (p->subscriber == NULL) {
            free(p);
            return NULL;
        }
        memcpy(p->subscriber, subscriber, subscriber_len);
        p->subscriber[subscriber_len] = '\0';
        p->subscriber_len = subscriber_len;
    }
    list_append(&l->fifo, &p->link);
    return p;
}

static void drop_connection(struct pg_listener *l, const char *reason);

static void on_row_fetched(struct pg_conn *c, const PGresult *res, void *arg)
{
    struct pending_event *p = arg;
    struct pg_listener *l = p->owner;
    (void)c;

    if (res == NULL)
        return; /* connection lost: the FIFO is cleared by drop_connection */
    p->fetching = false;
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        /* The gap fill after a reconnect reads the row again. */
        drop_connection(l, PQresultErrorMessage(res));
        return;
    }
    if (PQntuples(res) == 0) {
        metrics.events_invalid[INVALID_MISSING_ROW]++;
        log_warn("notified row not found", "id=%" PRId64, p->id);
    } else {
        int64_t id = 0;
        enum frame_error err = FRAME_OK;
        const char *subscriber = PQgetvalue(res, 0, EVENT_ROW_SUBSCRIBER);
        size_t subscriber_len = (size_t)PQgetlength(res, 0, EVENT_ROW_SUBSCRIBER);
        p->frame = event_row_frame(res, 0, &id, &err);
        if (p->frame == NULL) {
            metrics.events_invalid[INVALID_ROW]++;
            log_warn("row skipped", "id=%" PRId64 " reason=%s", p->id, frame_error_name(err));
        } else if (p->subscriber == NULL) {
            p->subscriber = malloc(subscriber_len + 1);
            if (p->subscriber == NULL) {
                frame_unref(p->frame);
                p->frame = NULL;
            } else {
                memcpy(p->subscriber, subscriber, subscriber_len + 1);
                p->subscriber_len = subscriber_len;
            }
        }
    }
    fifo_flush(l);
}

static void fetch_row(struct pg_listener *l, const struct notification *n)
{
    char id_text[24];
    const char *params[1] = {id_text};

    if (n->subscriber != NULL && !hub_has_consumer(l->hub, n->subscriber, n->subscriber_len))
        return; /* nobody here wants it */
    struct pending_event *p = fifo_push(l, n->id, n->subscriber, n->subscriber_len, NULL);
    if (p == NULL) {
        log_error("oversized event dropped: out of memory", "id=%" PRId64, n->id);
        return;
    }
    p->fetching = true;
    metrics.oversized_fetches++;
    snprintf(id_text, sizeof(id_text), "%" PRId64, n->id);
    if (!pg_conn_query(l->conn, EVENT_ROW_SELECT " WHERE id = $1", 1, params, on_row_fetched, p))
        p->fetching = false; /* the connection is going down; the gap fill covers it */
}

/* A notification is the server talking: the connection is alive, only our
 * reading lags. Under a flood the probe's answer queues behind notifications
 * that take longer than the probe timeout to fan out, and dropping the
 * connection then would add a gap fill to the overload. So each one moves
 * the probe's deadline on; a connection that goes silent still misses it. */
static void keep_probe_waiting(struct pg_listener *l)
{
    if (!evtimer_pending(l->ping_deadline_ev, NULL))
        return;
    struct timeval deadline = {l->options.ping_timeout_seconds, 0};
    evtimer_add(l->ping_deadline_ev, &deadline);
}

static void on_notify(struct pg_conn *c, const char *channel, const char *payload, void *arg)
{
    struct pg_listener *l = arg;
    struct notification n;
    const char *why = NULL;
    size_t len = strlen(payload);
    (void)c;

    if (strcmp(channel, PG_LISTENER_CHANNEL) != 0)
        return;
    metrics.events_received++;
    keep_probe_waiting(l);
    if (!notification_parse(payload, len, &n, &why)) {
        metrics.events_invalid[INVALID_NOTIFICATION]++;
        log_warn("notification skipped", "reason=%s payload=%.200s", why, payload);
        return;
    }
    if (!n.complete) {
        fetch_row(l, &n);
        notification_clear(&n);
        return;
    }
    enum frame_error err = FRAME_OK;
    struct frame *f =
        frame_new_event(n.id, n.type, n.type_len, n.payload, n.payload_len, n.timestamp, &err);
    if (f == NULL) {
        metrics.events_invalid[INVALID_ROW]++;
        log_warn("row skipped", "id=%" PRId64 " subscriber=%s reason=%s", n.id, n.subscriber,
                 frame_error_name(err));
    } else if (l->state == LISTENER_LIVE && list_empty(&l->fifo)) {
        publish(l, n.subscriber, n.subscriber_len, f);
        frame_unref(f);
    } else if (fifo_push(l, n.id, n.subscriber, n.subscriber_len, f) == NULL) {
        frame_unref(f);
        log_error("event dropped: out of memory", "id=%" PRId64, n.id);
    }
    notification_clear(&n);
}

static void schedule_reconnect(struct pg_listener *l)
{
    struct timeval tv;
    backoff_next_tv(&l->backoff, &tv);
    evtimer_add(l->reconnect_ev, &tv);
}

/* Leaves the connected states: the hub hears the ingest is down, queued
 * events are dropped (the gap fill after reconnecting re-reads them). */
static void drop_connection(struct pg_listener *l, const char *reason)
{
    bool was_live = l->state == LISTENER_LIVE;
    if (l->state == LISTENER_DOWN)
        return;
    if (was_live || l->failures_logged++ % 10 == 0)
        log_warn("listener connection lost", "reason=%s was_live=%d", reason, was_live);
    l->state = LISTENER_DOWN;
    hub_ingest_down(l->hub);
    event_del(l->ping_ev);
    event_del(l->ping_deadline_ev);
    fifo_clear(l);
    pg_conn_free(l->conn);
    l->conn = NULL;
    schedule_reconnect(l);
}

static void on_synced(struct pg_conn *c, const PGresult *res, void *arg)
{
    struct pg_listener *l = arg;
    struct timeval ping = {l->options.ping_seconds, 0};

    if (res == NULL)
        return;
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        drop_connection(l, PQresultErrorMessage(res));
        return;
    }
    int64_t baseline = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    if (l->ever_live)
        metrics.listener_reconnects++;
    log_info("listening",
             "channel=" PG_LISTENER_CHANNEL " backend_pid=%d max_id=%" PRId64 " reconnect=%d",
             pg_conn_backend_pid(c), baseline, l->ever_live);
    l->ever_live = true;
    l->state = LISTENER_LIVE;
    l->failures_logged = 0;
    backoff_reset(&l->backoff);
    evtimer_add(l->ping_ev, &ping);
    hub_ingest_up(l->hub, baseline, true);
    fifo_flush(l);
}

static void on_ready(struct pg_conn *c, void *arg)
{
    struct pg_listener *l = arg;
    l->state = LISTENER_SYNCING;
    if (!pg_conn_query(c, "SELECT coalesce(max(id), 0) FROM events", 0, NULL, on_synced, l))
        drop_connection(l, "cannot query the highest id");
}

static void on_lost(struct pg_conn *c, const char *reason, void *arg)
{
    (void)c;
    drop_connection(arg, reason);
}

static const struct pg_conn_handler listener_handler = {
    .ready = on_ready,
    .notify = on_notify,
    .lost = on_lost,
};

static void listener_connect(struct pg_listener *l)
{
    l->state = LISTENER_CONNECTING;
    l->conn =
        pg_conn_new(l->base, l->conninfo, "event-piper listener", "LISTEN " PG_LISTENER_CHANNEL,
                    l->options.connect_timeout_s, &listener_handler, l);
    if (l->conn == NULL) {
        l->state = LISTENER_DOWN;
        schedule_reconnect(l);
    }
}

static void on_reconnect(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    listener_connect(arg);
}

static void on_pong(struct pg_conn *c, const PGresult *res, void *arg)
{
    struct pg_listener *l = arg;
    (void)c;
    if (res != NULL)
        event_del(l->ping_deadline_ev);
}

/* Probes the connection: a server that stopped answering (hung, or the
 * network silently gone) is noticed within the ping timeout. */
static void on_ping(evutil_socket_t fd, short what, void *arg)
{
    struct pg_listener *l = arg;
    struct timeval deadline = {l->options.ping_timeout_seconds, 0};
    (void)fd;
    (void)what;
    if (l->state != LISTENER_LIVE || evtimer_pending(l->ping_deadline_ev, NULL))
        return;
    if (!pg_conn_query(l->conn, "", 0, NULL, on_pong, l)) {
        drop_connection(l, "cannot send a probe");
        return;
    }
    evtimer_add(l->ping_deadline_ev, &deadline);
}

static void on_ping_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    drop_connection(arg, "probe unanswered");
}

struct pg_listener *pg_listener_new(struct event_base *base, struct hub *hub,
                                    const struct pg_listener_options *options)
{
    struct pg_listener *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return NULL;
    l->base = base;
    l->hub = hub;
    l->options = *options;
    l->conninfo = strdup(options->conninfo);
    list_init(&l->fifo);
    l->reconnect_ev = evtimer_new(base, on_reconnect, l);
    l->ping_ev = event_new(base, -1, EV_PERSIST, on_ping, l);
    l->ping_deadline_ev = evtimer_new(base, on_ping_deadline, l);
    backoff_init(&l->backoff, options->reconnect_min_ms, options->reconnect_max_ms,
                 (uint64_t)getpid() ^ ((uint64_t)time(NULL) << 20));
    if (l->conninfo == NULL || l->reconnect_ev == NULL || l->ping_ev == NULL ||
        l->ping_deadline_ev == NULL) {
        pg_listener_free(l);
        return NULL;
    }
    listener_connect(l);
    return l;
}

void pg_listener_free(struct pg_listener *l)
{
    if (l == NULL)
        return;
    fifo_clear(l);
    pg_conn_free(l->conn);
    if (l->reconnect_ev != NULL)
        event_free(l->reconnect_ev);
    if (l->ping_ev != NULL)
        event_free(l->ping_ev);
    if (l->ping_deadline_ev != NULL)
        event_free(l->ping_deadline_ev);
    free(l->conninfo);
    free(l);
}

bool pg_listener_is_live(const struct pg_listener *l)
{
    return l->state == LISTENER_LIVE;
}

int pg_listener_backend_pid(const struct pg_listener *l)
{
    return l->conn != NULL ? pg_conn_backend_pid(l->conn) : 0;
}
