/*
 * LISTEN connection state machine:
 *
 *   DOWN --timer--> CONNECTING --ready--> SYNCING --max(id)--> LIVE
 *     ^                  |                   |                   |
 *     +------------------+---- lost ---------+-------------------+
 *
 * SYNCING reads the signing key (schema.sql's events_notify_key; unreadable
 * only means every row is read back) and then the highest committed id
 * after LISTEN is in effect, so every commit after that read is notified.
 * Rows arriving while SYNCING are confirmed but held, and published only
 * after the hub has been told the ingest is up (and has put live streams
 * into catch-up), so no stream's cursor can jump over the gap that the
 * catch-up will fill.
 *
 * Every transition goes through listener_enter(), which refuses the ones
 * the diagram does not have.
 */
#include "ingest/pg_listener.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "util/backoff.h"
#include "ingest/confirm.h"
#include "ops/log.h"
#include "ops/metrics.h"
#include "ingest/notification.h"
#include "util/number.h"
#include "db/pg_conn.h"

enum listener_state { LISTENER_DOWN, LISTENER_CONNECTING, LISTENER_SYNCING, LISTENER_LIVE };

static const char *const listener_state_names[] = {"down", "connecting", "syncing", "live"};

/* allowed[from][to] */
static const bool listener_allowed[4][4] = {
    [LISTENER_DOWN] = {[LISTENER_CONNECTING] = true},
    [LISTENER_CONNECTING] = {[LISTENER_DOWN] = true, [LISTENER_SYNCING] = true},
    [LISTENER_SYNCING] = {[LISTENER_DOWN] = true, [LISTENER_LIVE] = true},
    [LISTENER_LIVE] = {[LISTENER_DOWN] = true},
};

struct pg_listener {
    struct event_base *base;
    struct hub *hub;
    struct pg_listener_options options;
    char *conninfo;
    char *setup_sql;
    enum listener_state state;
    struct pg_conn *conn;
    struct confirm *confirm;
    struct event *reconnect_ev;
    struct event *ping_ev;
    struct event *ping_deadline_ev;
    struct backoff backoff;
    bool ever_live;
    unsigned failures_logged;
    struct log_limit bad_notification_logs;
    struct log_limit bad_signature_logs;
    unsigned char notify_key[64]; /* events_notify_key.key; see schema.sql */
    size_t notify_key_len;        /* 0: not readable, every row is read back */
};

static void listener_enter(struct pg_listener *l, enum listener_state to)
{
    if (!listener_allowed[l->state][to]) {
        log_error("listener: impossible transition", "from=%s to=%s",
                  listener_state_names[l->state], listener_state_names[to]);
        abort();
    }
    l->state = to;
}

static void drop_connection(struct pg_listener *l, const char *reason);

/* A notification is the server talking: the connection is alive, only our
 * reading lags. Under a flood the probe's answer queues behind notifications
 * that take longer than the probe timeout to handle, and dropping the
 * connection then would add a gap fill to the overload. So each one moves
 * the probe's deadline on; a connection that goes silent still misses it. */
static void keep_probe_waiting(struct pg_listener *l)
{
    if (!evtimer_pending(l->ping_deadline_ev, NULL))
        return;
    struct timeval deadline = {l->options.ping_timeout_seconds, 0};
    evtimer_add(l->ping_deadline_ev, &deadline);
}

/* Whether payload is a row signed with the key (see notification.h); sets
 * *body to the JSON after the MAC when it has a signed shape at all. A
 * signature that does not verify (forged, or the key was rotated since it
 * was read) leaves the row a hint: read back, never trusted. */
static bool signature_valid(struct pg_listener *l, const char *payload, size_t len,
                            const char **body, size_t *body_len)
{
    unsigned char mac[32], expected[EVP_MAX_MD_SIZE];
    unsigned expected_len = 0;
    if (!notification_split_signed(payload, len, mac, body, body_len))
        return false;
    if (l->notify_key_len == 0)
        return false;
    if (HMAC(EVP_sha256(), l->notify_key, (int)l->notify_key_len, (const unsigned char *)*body,
             *body_len, expected, &expected_len) == NULL ||
        expected_len != sizeof(mac) || CRYPTO_memcmp(mac, expected, sizeof(mac)) != 0) {
        unsigned dropped;
        if (log_limit_allow(&l->bad_signature_logs, &dropped))
            log_warn("notification signature does not verify; reading the row back", "dropped=%u",
                     dropped);
        return false;
    }
    return true;
}

/* A verified row goes to the hub without a read (confirm_signed keeps the
 * order); one that cannot become a frame is skipped like a bad row read
 * from the table. */
static void deliver_signed(struct pg_listener *l, const struct notification *n)
{
    enum frame_error err = FRAME_OK;
    struct frame *f =
        frame_new_event(n->id, n->type, n->type_len, n->payload, n->payload_len, n->ts, &err);
    if (f == NULL) {
        metrics.events_invalid[INVALID_ROW]++;
        unsigned dropped;
        if (log_limit_allow(&l->bad_notification_logs, &dropped))
            log_warn("row skipped", "id=%" PRId64 " reason=%s dropped=%u", n->id,
                     frame_error_name(err), dropped);
        return;
    }
    confirm_signed(l->confirm, f, n->subscriber, n->subscriber_len);
    frame_unref(f);
}

static void on_notify(struct pg_conn *c, const char *channel, const char *payload, void *arg)
{
    struct pg_listener *l = arg;
    struct notification n;
    const char *why = NULL;
    (void)c;

    if (strcmp(channel, PG_LISTENER_CHANNEL) != 0)
        return;
    metrics.events_received++;
    keep_probe_waiting(l);
    size_t len = strlen(payload);
    const char *body = payload;
    size_t body_len = len;
    bool authentic = signature_valid(l, payload, len, &body, &body_len);
    if (!notification_parse(body, body_len, &n, &why)) {
        metrics.events_invalid[INVALID_NOTIFICATION]++;
        /* Anyone can notify: within a rate limit, not a flood. */
        unsigned dropped;
        if (log_limit_allow(&l->bad_notification_logs, &dropped))
            log_warn("notification skipped", "reason=%s payload=%.200s dropped=%u", why, payload,
                     dropped);
        return;
    }
    if (authentic && n.has_row && n.subscriber != NULL)
        deliver_signed(l, &n);
    else
        confirm_hint(l->confirm, n.id, n.subscriber, n.subscriber_len);
    notification_clear(&n);
}

static void schedule_reconnect(struct pg_listener *l)
{
    struct timeval tv;
    backoff_next_tv(&l->backoff, &tv);
    evtimer_add(l->reconnect_ev, &tv);
}

/* Leaves the connected states: the hub hears the ingest is down, hints not
 * yet published are dropped (the gap fill after reconnecting reads them). */
static void drop_connection(struct pg_listener *l, const char *reason)
{
    bool was_live = l->state == LISTENER_LIVE;
    if (l->state == LISTENER_DOWN)
        return;
    if (was_live || l->failures_logged++ % 10 == 0)
        log_warn("listener connection lost", "reason=%s was_live=%d", reason, was_live);
    listener_enter(l, LISTENER_DOWN);
    hub_ingest_down(l->hub);
    event_del(l->ping_ev);
    event_del(l->ping_deadline_ev);
    confirm_reset(l->confirm);
    confirm_read_on_conn(l->confirm, NULL);
    confirm_hold(l->confirm, true);
    pg_conn_free(l->conn);
    l->conn = NULL;
    schedule_reconnect(l);
}

static void on_synced(struct pg_conn *c, const PGresult *res, void *arg)
{
    struct pg_listener *l = arg;
    struct timeval ping = {l->options.ping_seconds, 0};
    int64_t baseline = 0;

    if (res == NULL)
        return;
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 ||
        !parse_int64(PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0), 0, INT64_MAX,
                     &baseline)) {
        drop_connection(l, PQresultErrorMessage(res));
        return;
    }
    if (l->ever_live)
        metrics.listener_reconnects++;
    log_info("listening",
             "channel=" PG_LISTENER_CHANNEL " backend_pid=%d max_id=%" PRId64 " reconnect=%d",
             pg_conn_backend_pid(c), baseline, l->ever_live);
    l->ever_live = true;
    listener_enter(l, LISTENER_LIVE);
    l->failures_logged = 0;
    backoff_reset(&l->backoff);
    evtimer_add(l->ping_ev, &ping);
    hub_ingest_up(l->hub, baseline, true);
    confirm_hold(l->confirm, false);
}

/* The signing key, read at every connect (a rotated key is picked up on the
 * next reconnect). Not readable: rows are read back, which is correct, only
 * slower; said once per connect. */
static void on_key(struct pg_conn *c, const PGresult *res, void *arg)
{
    struct pg_listener *l = arg;
    (void)c;
    l->notify_key_len = 0;
    if (res == NULL)
        return;
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 && !PQgetisnull(res, 0, 0)) {
        size_t len = 0;
        unsigned char *key = PQunescapeBytea((const unsigned char *)PQgetvalue(res, 0, 0), &len);
        if (key != NULL && len > 0 && len <= sizeof(l->notify_key)) {
            memcpy(l->notify_key, key, len);
            l->notify_key_len = len;
        }
        if (key != NULL) {
            OPENSSL_cleanse(key, len);
            PQfreemem(key);
        }
    }
    if (l->notify_key_len == 0)
        log_warn("signed notifications off: every row is read back from the table", "reason=%s",
                 PQresultStatus(res) == PGRES_TUPLES_OK ? "events_notify_key holds no usable key"
                                                        : PQresultErrorMessage(res));
}

static void on_ready(struct pg_conn *c, void *arg)
{
    struct pg_listener *l = arg;
    listener_enter(l, LISTENER_SYNCING);
    confirm_read_on_conn(l->confirm, c);
    /* Before the highest id: notifications after it are then checked. */
    if (!pg_conn_query(c, "SELECT key FROM events_notify_key", 0, NULL, on_key, l) ||
        !pg_conn_query(c, "SELECT coalesce(max(id), 0) FROM events", 0, NULL, on_synced, l))
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
    listener_enter(l, LISTENER_CONNECTING);
    l->conn = pg_conn_new(l->base, l->conninfo, "event-piper listener", l->setup_sql,
                          l->options.connect_timeout_s, &listener_handler, l);
    if (l->conn == NULL) {
        listener_enter(l, LISTENER_DOWN);
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
    l->state = LISTENER_DOWN;
    l->conninfo = strdup(options->conninfo);
    size_t setup_len = sizeof("LISTEN " PG_LISTENER_CHANNEL ";") + strlen(confirm_prepare_sql);
    l->setup_sql = malloc(setup_len);
    if (l->setup_sql != NULL)
        snprintf(l->setup_sql, setup_len, "LISTEN " PG_LISTENER_CHANNEL ";%s", confirm_prepare_sql);
    struct confirm_options confirm_options = {.hints_max = options->hints_max};
    l->confirm = confirm_new(base, hub, &confirm_options);
    l->reconnect_ev = evtimer_new(base, on_reconnect, l);
    l->ping_ev = event_new(base, -1, EV_PERSIST, on_ping, l);
    l->ping_deadline_ev = evtimer_new(base, on_ping_deadline, l);
    backoff_init(&l->backoff, options->reconnect_min_ms, options->reconnect_max_ms,
                 (uint64_t)getpid() ^ ((uint64_t)time(NULL) << 20));
    if (l->conninfo == NULL || l->setup_sql == NULL || l->confirm == NULL ||
        l->reconnect_ev == NULL || l->ping_ev == NULL || l->ping_deadline_ev == NULL) {
        pg_listener_free(l);
        return NULL;
    }
    confirm_hold(l->confirm, true);
    listener_connect(l);
    return l;
}

void pg_listener_free(struct pg_listener *l)
{
    if (l == NULL)
        return;
    pg_conn_free(l->conn); /* first: no read of the confirmer may come back */
    confirm_free(l->confirm);
    if (l->reconnect_ev != NULL)
        event_free(l->reconnect_ev);
    if (l->ping_ev != NULL)
        event_free(l->ping_ev);
    if (l->ping_deadline_ev != NULL)
        event_free(l->ping_deadline_ev);
    free(l->conninfo);
    free(l->setup_sql);
    free(l);
}

bool pg_listener_is_live(const struct pg_listener *l)
{
    return l->state == LISTENER_LIVE;
}

size_t pg_listener_backlog(const struct pg_listener *l)
{
    return confirm_backlog(l->confirm);
}
