/*
 * NATS JetStream ingest. Two sides share one queue:
 *
 *   worker thread: connect, find the stream, (re)create the consumer, fetch,
 *                  take the heartbeats, parse, enqueue, acknowledge
 *   loop thread:   dequeue, hand hints to the confirmer, log, count, note
 *                  when the last message was taken
 *
 * cnats's own threads only call the connection callbacks below, which set
 * flags and enqueue state changes; they never block.
 */
#include "ingest/nats_ingest.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <nats/nats.h>

#include "util/backoff.h"
#include "util/clock.h"
#include "ingest/confirm.h"
#include "ingest/debezium.h"
#include "ops/log.h"
#include "ops/metrics.h"
#include "util/number.h"

#define FETCH_BATCH 256
#define FETCH_WAIT_MS 500
#define QUEUE_MAX 8192
/* Idle fetches in a row before checking the consumer still exists: a
 * consumer deleted on the server makes fetches time out, not fail. */
#define IDLE_FETCHES_BEFORE_CHECK 10
#define DETAIL_MAX 256
#define SUBJECT_MAX 128

enum item_kind {
    ITEM_HINT,        /* hint names a row to read back */
    ITEM_INVALID,     /* a message that cannot be understood: why, seq, subject */
    ITEM_IGNORED,     /* a valid change event that names no new row: counted only */
    ITEM_HEARTBEAT,   /* a Debezium heartbeat: counted only */
    ITEM_TRANSACTION, /* Debezium transaction metadata: counted only */
    ITEM_UP,          /* consumer established */
    ITEM_DOWN,        /* connection or consumer lost: detail */
    ITEM_LOG,         /* a worker-side condition worth a log line: detail */
};

struct item {
    struct item *next;
    enum item_kind kind;
    uint64_t seq;
    enum log_level level;
    const char *why;
    struct debezium_hint hint;
    char subject[SUBJECT_MAX];
    char detail[DETAIL_MAX];
};

struct nats_ingest {
    struct event_base *base;
    struct hub *hub;
    struct pg_pool *pool;
    char *subject;
    char *stream_option;
    /* Where Debezium's heartbeats are read with a plain subscription (see
     * nats_ingest.h); empty: not read apart. */
    char heartbeat_subject[SUBJECT_MAX];
    int reconnect_ms;
    natsOptions *nats_options;
    struct confirm *confirm;

    int wake_fd;
    struct event *wake_ev;

    pthread_t worker;
    bool worker_started;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    /* Under lock. */
    struct item *head;
    struct item **tail;
    size_t queued;
    bool stopping;
    bool reconnected;

    /* Worker thread only. */
    natsConnection *conn;
    jsCtx *js;
    natsSubscription *sub;
    natsSubscription *heartbeat_sub;
    char *stream;
    uint64_t last_seq;
    bool positioned;
    int idle_fetches;
    struct backoff backoff;

    /* Loop thread only. */
    bool live;
    bool ever_live;
    struct log_limit bad_message_logs;
    bool baseline_known;
    struct pg_pool_query *baseline_query;
    struct event *baseline_retry_ev;
    int64_t last_message_ns; /* monotonic: the last message taken, or the start */
};

/* ---- queue (any thread) ---- */

static struct item *item_new(enum item_kind kind)
{
    struct item *it = calloc(1, sizeof(*it));
    if (it != NULL)
        it->kind = kind;
    return it;
}

static void item_free(struct item *it)
{
    debezium_hint_clear(&it->hint);
    free(it);
}

static void wake_loop(struct nats_ingest *n)
{
    uint64_t one = 1;
    /* A full counter (impossible in practice) still leaves the fd readable. */
    if (write(n->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        abort();
}

/* Appends it; with wait_for_room (the worker only) blocks while the queue is
 * full. Returns false when stopping (it is then freed). */
static bool enqueue(struct nats_ingest *n, struct item *it, bool wait_for_room)
{
    pthread_mutex_lock(&n->lock);
    while (wait_for_room && n->queued >= QUEUE_MAX && !n->stopping)
        pthread_cond_wait(&n->cond, &n->lock);
    if (n->stopping) {
        pthread_mutex_unlock(&n->lock);
        item_free(it);
        return false;
    }
    bool was_empty = n->head == NULL;
    *n->tail = it;
    n->tail = &it->next;
    n->queued++;
    pthread_mutex_unlock(&n->lock);
    if (was_empty)
        wake_loop(n);
    return true;
}

static void post_text(struct nats_ingest *n, enum item_kind kind, enum log_level level,
                      const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void post_text(struct nats_ingest *n, enum item_kind kind, enum log_level level,
                      const char *fmt, ...)
{
    struct item *it = item_new(kind);
    if (it == NULL)
        return;
    it->level = level;
    va_list args;
    va_start(args, fmt);
    vsnprintf(it->detail, sizeof(it->detail), fmt, args);
    va_end(args);
    enqueue(n, it, false);
}

/* ---- cnats callbacks (library threads) ---- */

static void on_connected(natsConnection *conn, void *arg)
{
    struct nats_ingest *n = arg;
    (void)conn;
    pthread_mutex_lock(&n->lock);
    n->reconnected = true;
    pthread_cond_broadcast(&n->cond);
    pthread_mutex_unlock(&n->lock);
}

static void on_disconnected(natsConnection *conn, void *arg)
{
    struct nats_ingest *n = arg;
    (void)conn;
    post_text(n, ITEM_DOWN, LOG_LEVEL_WARN, "disconnected from NATS");
}

/* ---- worker thread ---- */

static bool worker_stopping(struct nats_ingest *n)
{
    pthread_mutex_lock(&n->lock);
    bool stopping = n->stopping;
    pthread_mutex_unlock(&n->lock);
    return stopping;
}

static bool take_reconnected(struct nats_ingest *n)
{
    pthread_mutex_lock(&n->lock);
    bool reconnected = n->reconnected;
    n->reconnected = false;
    pthread_mutex_unlock(&n->lock);
    return reconnected;
}

/* Sleeps up to ms, waking early on stop or on a (re)connection. */
static void worker_pause(struct nats_ingest *n, int ms)
{
    /* On the monotonic clock (the condition's, set at creation): a wall
     * clock set back would stretch the pause. */
    int64_t deadline_ns = clock_monotonic_ns() + (int64_t)ms * 1000000;
    struct timespec until = {.tv_sec = (time_t)(deadline_ns / 1000000000),
                             .tv_nsec = (long)(deadline_ns % 1000000000)};
    pthread_mutex_lock(&n->lock);
    if (!n->stopping && !n->reconnected)
        pthread_cond_timedwait(&n->cond, &n->lock, &until);
    pthread_mutex_unlock(&n->lock);
}

/* The same back-off and jitter as PostgreSQL's reconnects, so many
 * instances do not hammer a recovering server in step. */
static void worker_back_off(struct nats_ingest *n)
{
    worker_pause(n, backoff_next_ms(&n->backoff));
}

static const char *nats_error_text(natsStatus s)
{
    const char *text = nats_GetLastError(NULL);
    return text != NULL && *text != '\0' ? text : natsStatus_GetText(s);
}

static void drop_subscription(struct nats_ingest *n, const char *why)
{
    if (n->sub == NULL)
        return;
    /* Deletes the ephemeral consumer when the server is there to hear it;
     * otherwise the server expires it after its inactivity threshold. */
    natsSubscription_Unsubscribe(n->sub);
    natsSubscription_Destroy(n->sub);
    n->sub = NULL;
    post_text(n, ITEM_DOWN, LOG_LEVEL_WARN, "%s", why);
}

static bool find_stream(struct nats_ingest *n)
{
    if (n->stream_option[0] != '\0') {
        n->stream = strdup(n->stream_option);
        return n->stream != NULL;
    }
    jsOptions o;
    jsOptions_Init(&o);
    o.Stream.Info.SubjectsFilter = n->subject;
    jsStreamNamesList *names = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_StreamNames(&names, n->js, &o, &jerr);
    if (s != NATS_OK || names == NULL || names->Count < 1) {
        post_text(n, ITEM_LOG, LOG_LEVEL_WARN, "no JetStream stream holds subject %s: %s",
                  n->subject,
                  s == NATS_OK || s == NATS_NOT_FOUND ? "none found" : nats_error_text(s));
        if (names != NULL)
            jsStreamNamesList_Destroy(names);
        return false;
    }
    n->stream = strdup(names->List[0]);
    jsStreamNamesList_Destroy(names);
    return n->stream != NULL;
}

/* First consumer only: starts after the stream's last message. (The hub's
 * baseline comes from the table, never from a message anyone could have
 * published.) */
static bool read_position(struct nats_ingest *n)
{
    jsStreamInfo *info = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetStreamInfo(&info, n->js, n->stream, NULL, &jerr);
    if (s != NATS_OK) {
        post_text(n, ITEM_LOG, LOG_LEVEL_WARN, "cannot read stream %s: %s", n->stream,
                  nats_error_text(s));
        return false;
    }
    n->last_seq = info->State.LastSeq;
    jsStreamInfo_Destroy(info);
    n->positioned = true;
    return true;
}

/* A plain subscription, made once: cnats renews it after reconnections.
 * Heartbeats only show that Debezium and NATS are alive now, so nothing of
 * JetStream's (position, acknowledgement) is needed. */
static void subscribe_heartbeats(struct nats_ingest *n)
{
    if (n->heartbeat_subject[0] == '\0' || n->heartbeat_sub != NULL)
        return;
    natsStatus s = natsConnection_SubscribeSync(&n->heartbeat_sub, n->conn, n->heartbeat_subject);
    if (s != NATS_OK) {
        n->heartbeat_sub = NULL;
        post_text(n, ITEM_LOG, LOG_LEVEL_WARN, "cannot subscribe to heartbeats on %s: %s",
                  n->heartbeat_subject, nats_error_text(s));
    }
}

static bool subscribe(struct nats_ingest *n)
{
    subscribe_heartbeats(n);
    if (n->stream == NULL && !find_stream(n))
        return false;
    if (!n->positioned && !read_position(n))
        return false;

    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = n->stream;
    so.Config.DeliverPolicy = js_DeliverByStartSequence;
    so.Config.OptStartSeq = n->last_seq + 1;
    so.Config.AckPolicy = js_AckAll;
    so.Config.MaxAckPending = QUEUE_MAX;
    jsErrCode jerr = 0;
    natsStatus s = js_PullSubscribe(&n->sub, n->js, n->subject, NULL, NULL, &so, &jerr);
    if (s != NATS_OK) {
        n->sub = NULL;
        post_text(n, ITEM_LOG, LOG_LEVEL_WARN, "cannot create a consumer on %s: %s", n->stream,
                  nats_error_text(s));
        return false;
    }
    struct item *up = item_new(ITEM_UP);
    if (up == NULL)
        return false;
    up->seq = n->last_seq;
    snprintf(up->detail, sizeof(up->detail), "%s", n->stream);
    enqueue(n, up, false);
    n->idle_fetches = 0;
    backoff_reset(&n->backoff);
    return true;
}

/* A consumer that outlived a reconnection may be gone with a restarted
 * server; recreating it from the known position is always safe. */
static bool ensure_subscription(struct nats_ingest *n)
{
    bool reconnected = take_reconnected(n);
    if (n->sub != NULL && !reconnected)
        return true;
    if (n->sub != NULL)
        drop_subscription(n, "reconnected to NATS: recreating the consumer");
    if (natsConnection_Status(n->conn) != NATS_CONN_STATUS_CONNECTED)
        return false;
    return subscribe(n);
}

static uint64_t stream_sequence(natsMsg *msg)
{
    jsMsgMetaData *meta = NULL;
    if (natsMsg_GetMetaData(&meta, msg) != NATS_OK)
        return 0;
    uint64_t seq = meta->Sequence.Stream;
    jsMsgMetaData_Destroy(meta);
    return seq;
}

static struct item *parse_message(natsMsg *msg, uint64_t seq)
{
    static const enum item_kind kinds[] = {
        [DEBEZIUM_HINT] = ITEM_HINT,           [DEBEZIUM_IGNORED] = ITEM_IGNORED,
        [DEBEZIUM_HEARTBEAT] = ITEM_HEARTBEAT, [DEBEZIUM_TRANSACTION] = ITEM_TRANSACTION,
        [DEBEZIUM_INVALID] = ITEM_INVALID,
    };
    struct item *it = item_new(ITEM_HINT);
    if (it == NULL)
        return NULL;
    it->seq = seq;
    const char *subject = natsMsg_GetSubject(msg);
    const char *why = NULL;
    enum debezium_outcome outcome = debezium_parse(
        subject, natsMsg_GetData(msg), (size_t)natsMsg_GetDataLength(msg), &it->hint, &why);
    it->kind = kinds[outcome];
    if (outcome == DEBEZIUM_INVALID) {
        it->why = why;
        snprintf(it->subject, sizeof(it->subject), "%s", subject != NULL ? subject : "");
        snprintf(it->detail, sizeof(it->detail), "%.*s",
                 natsMsg_GetDataLength(msg) < 200 ? natsMsg_GetDataLength(msg) : 200,
                 natsMsg_GetData(msg) != NULL ? natsMsg_GetData(msg) : "");
    }
    return it;
}

/* Heartbeats wait in the plain subscription and are taken between fetches,
 * so at most a fetch's wait (FETCH_WAIT_MS) late. */
static void take_heartbeats(struct nats_ingest *n)
{
    for (int i = 0; n->heartbeat_sub != NULL && i < FETCH_BATCH; i++) {
        natsMsg *msg = NULL;
        if (natsSubscription_NextMsg(&msg, n->heartbeat_sub, 0) != NATS_OK)
            return;
        struct item *it = parse_message(msg, 0);
        natsMsg_Destroy(msg);
        if (it == NULL || !enqueue(n, it, true))
            return;
    }
}

/* Consumer gone on the server (deleted, or lost in a restart)? */
static void check_consumer(struct nats_ingest *n)
{
    jsConsumerInfo *ci = NULL;
    jsErrCode jerr = 0;
    natsStatus s = natsSubscription_GetConsumerInfo(&ci, n->sub, NULL, &jerr);
    if (s == NATS_OK) {
        jsConsumerInfo_Destroy(ci);
        return;
    }
    if (s == NATS_NOT_FOUND || jerr == JSConsumerNotFoundErr)
        drop_subscription(n, "the NATS consumer disappeared: recreating it");
}

static void fetch_batch(struct nats_ingest *n)
{
    natsMsgList list = {0};
    natsStatus s = natsSubscription_Fetch(&list, n->sub, FETCH_BATCH, FETCH_WAIT_MS, NULL);
    if (s == NATS_TIMEOUT && list.Count == 0) {
        if (++n->idle_fetches >= IDLE_FETCHES_BEFORE_CHECK) {
            n->idle_fetches = 0;
            check_consumer(n);
        }
        return;
    }
    if (list.Count == 0) {
        if (natsConnection_Status(n->conn) == NATS_CONN_STATUS_CONNECTED) {
            drop_subscription(n, "fetching from NATS failed: recreating the consumer");
            worker_back_off(n);
        } else {
            worker_pause(n, FETCH_WAIT_MS);
        }
        return;
    }
    n->idle_fetches = 0;
    backoff_reset(&n->backoff);
    for (int i = 0; i < list.Count; i++) {
        uint64_t seq = stream_sequence(list.Msgs[i]);
        /* Already queued before the consumer was recreated. */
        if (seq != 0 && seq <= n->last_seq)
            continue;
        struct item *it = parse_message(list.Msgs[i], seq);
        if (it == NULL || !enqueue(n, it, true))
            break;
        if (seq != 0)
            n->last_seq = seq;
    }
    natsMsg_Ack(list.Msgs[list.Count - 1], NULL);
    natsMsgList_Destroy(&list);
}

static void *worker_main(void *arg)
{
    struct nats_ingest *n = arg;
    natsStatus s = natsConnection_Connect(&n->conn, n->nats_options);
    if (s != NATS_OK && s != NATS_NOT_YET_CONNECTED) {
        post_text(n, ITEM_LOG, LOG_LEVEL_ERROR, "cannot connect to NATS: %s", nats_error_text(s));
        return NULL;
    }
    if (s == NATS_OK)
        on_connected(n->conn, n);
    s = natsConnection_JetStream(&n->js, n->conn, NULL);
    if (s != NATS_OK) {
        post_text(n, ITEM_LOG, LOG_LEVEL_ERROR, "cannot use JetStream: %s", nats_error_text(s));
        return NULL;
    }
    while (!worker_stopping(n)) {
        if (!ensure_subscription(n)) {
            worker_back_off(n);
            continue;
        }
        fetch_batch(n);
        take_heartbeats(n);
    }
    return NULL;
}

/* ---- loop thread ---- */

static void go_down(struct nats_ingest *n, const char *why)
{
    if (n->live) {
        n->live = false;
        hub_ingest_down(n->hub);
    }
    log_warn("nats ingest down", "reason=%s", why);
}

static void read_baseline(struct nats_ingest *n);

static void on_baseline(struct pg_conn *conn, const PGresult *res, void *arg)
{
    struct nats_ingest *n = arg;
    int64_t baseline = 0;
    struct timeval retry = {1, 0};
    (void)conn;
    n->baseline_query = NULL;
    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 ||
        !parse_int64(PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0), 0, INT64_MAX,
                     &baseline)) {
        log_warn("nats ingest: cannot read the highest id; retrying", "error=%s",
                 res != NULL ? PQresultErrorMessage(res) : "connection lost");
        evtimer_add(n->baseline_retry_ev, &retry);
        return;
    }
    n->baseline_known = true;
    if (!n->live)
        return;
    hub_ingest_up(n->hub, baseline, false);
    confirm_hold(n->confirm, false);
}

static void read_baseline(struct nats_ingest *n)
{
    n->baseline_query = pg_pool_query(n->pool, "SELECT coalesce(max(id), 0) FROM events", false, 0,
                                      NULL, on_baseline, n);
    if (n->baseline_query == NULL) {
        struct timeval retry = {1, 0};
        evtimer_add(n->baseline_retry_ev, &retry);
    }
}

static void on_baseline_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    read_baseline(arg);
}

static void go_up(struct nats_ingest *n, const struct item *it)
{
    if (n->ever_live)
        metrics.listener_reconnects++;
    log_info("consuming from NATS",
             "stream=%s subject=%s heartbeats=%s after_seq=%" PRIu64 " reconnect=%d", it->detail,
             n->subject, n->heartbeat_subject[0] != '\0' ? n->heartbeat_subject : "-", it->seq,
             n->ever_live);
    n->live = true;
    n->ever_live = true;
    /* The first time, streams start from the highest id in the table, read
     * before any hint is published. JetStream kept everything while a
     * consumer was away and the new one resumes right after the last message
     * taken: there is no gap to fill from the table. */
    if (!n->baseline_known) {
        if (n->baseline_query == NULL && !evtimer_pending(n->baseline_retry_ev, NULL))
            read_baseline(n);
        return;
    }
    hub_ingest_up(n->hub, hub_high_water(n->hub), false);
}

static void handle_item(struct nats_ingest *n, const struct item *it)
{
    if (it->kind != ITEM_UP && it->kind != ITEM_DOWN && it->kind != ITEM_LOG)
        n->last_message_ns = clock_monotonic_ns();
    switch (it->kind) {
    case ITEM_HINT:
        metrics.events_received++;
        confirm_hint(n->confirm, it->hint.id, it->hint.subscriber, it->hint.subscriber_len);
        break;
    case ITEM_IGNORED:
        metrics.events_received++;
        metrics.events_ignored++;
        break;
    case ITEM_HEARTBEAT:
        metrics.ingest_heartbeats++;
        break;
    case ITEM_TRANSACTION:
        metrics.ingest_transactions++;
        break;
    case ITEM_INVALID: {
        unsigned dropped;
        metrics.events_received++;
        metrics.events_invalid[INVALID_MESSAGE]++;
        if (log_limit_allow(&n->bad_message_logs, &dropped))
            log_warn("change event skipped",
                     "subject=%s seq=%" PRIu64 " reason=%s message=%s dropped=%u", it->subject,
                     it->seq, it->why, it->detail, dropped);
        break;
    }
    case ITEM_UP:
        go_up(n, it);
        break;
    case ITEM_DOWN:
        go_down(n, it->detail);
        break;
    case ITEM_LOG:
        log_write(it->level, "nats ingest", "detail=%s", it->detail);
        break;
    }
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    struct nats_ingest *n = arg;
    uint64_t count;
    (void)what;
    if (read(fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
        log_warn("nats ingest: reading the wake-up fd failed", "error=%s", strerror(errno));

    pthread_mutex_lock(&n->lock);
    struct item *batch = n->head;
    n->head = NULL;
    n->tail = &n->head;
    n->queued = 0;
    pthread_cond_broadcast(&n->cond);
    pthread_mutex_unlock(&n->lock);

    while (batch != NULL) {
        struct item *next = batch->next;
        handle_item(n, batch);
        item_free(batch);
        batch = next;
    }
}

static bool configure_nats(struct nats_ingest *n, const struct nats_ingest_options *o)
{
    natsOptions *opts = NULL;
    if (natsOptions_Create(&opts) != NATS_OK)
        return false;
    n->nats_options = opts;
    natsStatus s = natsOptions_SetURL(opts, o->url);
    if (s != NATS_OK) {
        log_error("invalid NATS_URL", "error=%s", nats_error_text(s));
        return false;
    }
    /* Forever: an ingest that gives up leaves every stream silent. */
    if (natsOptions_SetMaxReconnect(opts, -1) != NATS_OK ||
        natsOptions_SetReconnectWait(opts, o->reconnect_ms) != NATS_OK ||
        natsOptions_SetReconnectJitter(opts, o->reconnect_ms / 2 + 1, o->reconnect_ms) != NATS_OK ||
        natsOptions_SetName(opts, "event-piper") != NATS_OK ||
        natsOptions_SetRetryOnFailedConnect(opts, true, on_connected, n) != NATS_OK ||
        natsOptions_SetReconnectedCB(opts, on_connected, n) != NATS_OK ||
        natsOptions_SetDisconnectedCB(opts, on_disconnected, n) != NATS_OK)
        return false;
    return true;
}

struct nats_ingest *nats_ingest_new(struct event_base *base, struct hub *hub, struct pg_pool *pool,
                                    const struct nats_ingest_options *options)
{
    struct nats_ingest *n = calloc(1, sizeof(*n));
    if (n == NULL)
        return NULL;
    n->base = base;
    n->hub = hub;
    n->pool = pool;
    n->wake_fd = -1;
    n->tail = &n->head;
    n->reconnect_ms = options->reconnect_ms;
    n->last_message_ns = clock_monotonic_ns();
    backoff_init(&n->backoff, options->reconnect_ms, options->reconnect_max_ms,
                 (uint64_t)getpid() ^ ((uint64_t)time(NULL) << 20));
    pthread_mutex_init(&n->lock, NULL);
    pthread_condattr_t cond_attr;
    pthread_condattr_init(&cond_attr);
    pthread_condattr_setclock(&cond_attr, CLOCK_MONOTONIC);
    pthread_cond_init(&n->cond, &cond_attr);
    pthread_condattr_destroy(&cond_attr);
    struct confirm_options confirm_options = {.hints_max = options->hints_max};
    n->confirm = confirm_new(base, hub, &confirm_options);
    n->baseline_retry_ev = evtimer_new(base, on_baseline_retry, n);
    if (n->confirm == NULL || n->baseline_retry_ev == NULL)
        goto fail;
    confirm_read_on_pool(n->confirm, pool);
    confirm_hold(n->confirm, true);
    n->subject = strdup(options->subject);
    n->stream_option = strdup(options->stream != NULL ? options->stream : "");
    if (n->subject == NULL || n->stream_option == NULL || n->subject[0] == '\0')
        goto fail;
    if (!debezium_heartbeat_subject(n->subject, n->heartbeat_subject, sizeof(n->heartbeat_subject)))
        n->heartbeat_subject[0] = '\0';
    if (nats_Open(-1) != NATS_OK || !configure_nats(n, options))
        goto fail;
    n->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (n->wake_fd < 0)
        goto fail;
    n->wake_ev = event_new(base, n->wake_fd, EV_READ | EV_PERSIST, on_wake, n);
    if (n->wake_ev == NULL || event_add(n->wake_ev, NULL) != 0)
        goto fail;
    if (pthread_create(&n->worker, NULL, worker_main, n) != 0)
        goto fail;
    n->worker_started = true;
    return n;

fail:
    log_error("cannot start the NATS ingest", "subject=%s", options->subject);
    nats_ingest_free(n);
    return NULL;
}

void nats_ingest_free(struct nats_ingest *n)
{
    if (n == NULL)
        return;
    pthread_mutex_lock(&n->lock);
    n->stopping = true;
    pthread_cond_broadcast(&n->cond);
    pthread_mutex_unlock(&n->lock);
    if (n->worker_started)
        pthread_join(n->worker, NULL);

    if (n->sub != NULL) {
        natsSubscription_Unsubscribe(n->sub);
        natsSubscription_Destroy(n->sub);
    }
    if (n->heartbeat_sub != NULL) {
        natsSubscription_Unsubscribe(n->heartbeat_sub);
        natsSubscription_Destroy(n->heartbeat_sub);
    }
    jsCtx_Destroy(n->js);
    if (n->conn != NULL) {
        natsConnection_Close(n->conn);
        natsConnection_Destroy(n->conn);
    }
    natsOptions_Destroy(n->nats_options);
    /* Waits for the library's threads, so nothing of cnats outlives us. */
    nats_CloseAndWait(2000);

    while (n->head != NULL) {
        struct item *next = n->head->next;
        item_free(n->head);
        n->head = next;
    }
    if (n->baseline_query != NULL)
        pg_pool_query_cancel(n->baseline_query);
    if (n->baseline_retry_ev != NULL)
        event_free(n->baseline_retry_ev);
    confirm_free(n->confirm);
    if (n->wake_ev != NULL)
        event_free(n->wake_ev);
    if (n->wake_fd >= 0)
        close(n->wake_fd);
    pthread_cond_destroy(&n->cond);
    pthread_mutex_destroy(&n->lock);
    free(n->stream);
    free(n->subject);
    free(n->stream_option);
    free(n);
}

bool nats_ingest_is_live(const struct nats_ingest *n)
{
    return n->live && n->baseline_known;
}

size_t nats_ingest_backlog(const struct nats_ingest *n)
{
    return confirm_backlog(n->confirm);
}

double nats_ingest_message_age(const struct nats_ingest *n)
{
    return (double)(clock_monotonic_ns() - n->last_message_ns) / 1e9;
}
