/*
 * Replay connection pool.
 *
 * Each connection is a pool_conn in one of three states: CONNECTING, IDLE
 * (in the idle list, newest last) or LENT. Waiters form a FIFO. One deferred
 * event, dispatch, matches idle connections with waiters and opens new
 * connections when waiters outnumber those being opened; everything that can
 * change the match (a release, a connection becoming ready, a new waiter)
 * just activates it. Idle connections are closed by a sweep timer that runs
 * only while some are idle.
 */
#include "db/pg_pool.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/backoff.h"
#include "util/clock.h"
#include "ops/log.h"

enum pool_conn_state { POOL_CONNECTING, POOL_IDLE, POOL_LENT };

struct pool_conn {
    struct list_node link; /* in pool->conns */
    struct pg_pool *pool;
    struct pg_conn *conn;
    enum pool_conn_state state;
    int64_t idle_since_ms; /* monotonic */
};

struct pg_pool {
    struct event_base *base;
    struct pg_pool_options options;
    char *conninfo;
    char *setup_sql;
    struct list_node conns;
    struct list_node waiters;
    struct list_node queries; /* pg_pool_query handles not yet finished */
    size_t open;
    size_t connecting;
    size_t lent;
    size_t waiting;
    unsigned long long connects;
    struct event *dispatch_ev;
    struct event *retry_ev; /* pending while backing off after a failed connect */
    struct event *sweep_ev;
    struct backoff backoff;
    unsigned failures_logged;
};

/* A one-shot command (pg_pool_query): waiting for a connection, then running. */
struct pg_pool_query {
    struct pg_pool_waiter waiter;
    struct list_node link; /* pool->queries */
    struct pg_pool *pool;
    char *command;
    bool prepared;
    bool running;   /* sent on a lent connection; its callback will come */
    bool cancelled; /* the caller has let go: drop the result */
    int nparams;
    char **params;
    pg_result_fn fn;
    void *arg;
};

static void on_conn_ready(struct pg_conn *c, void *arg);
static void on_conn_lost(struct pg_conn *c, const char *reason, void *arg);

static const struct pg_conn_handler pool_handler = {
    .ready = on_conn_ready,
    .notify = NULL,
    .lost = on_conn_lost,
};

static void schedule_dispatch(struct pg_pool *pool)
{
    event_active(pool->dispatch_ev, EV_TIMEOUT, 1);
}

static void close_conn(struct pg_pool *pool, struct pool_conn *pc)
{
    list_remove(&pc->link);
    pool->open--;
    if (pc->state == POOL_CONNECTING)
        pool->connecting--;
    else if (pc->state == POOL_LENT)
        pool->lent--;
    pg_conn_free(pc->conn);
    free(pc);
}

static struct pool_conn *find_conn(struct pg_pool *pool, const struct pg_conn *conn)
{
    for (struct list_node *n = pool->conns.next; n != &pool->conns; n = n->next) {
        struct pool_conn *pc = container_of(n, struct pool_conn, link);
        if (pc->conn == conn)
            return pc;
    }
    return NULL;
}

static void open_conn(struct pg_pool *pool)
{
    struct pool_conn *pc = calloc(1, sizeof(*pc));
    if (pc == NULL)
        return;
    pc->pool = pool;
    pc->state = POOL_CONNECTING;
    pc->conn = pg_conn_new(pool->base, pool->conninfo, "event-piper replay", pool->setup_sql,
                           pool->options.connect_timeout_s, &pool_handler, pc);
    if (pc->conn == NULL) {
        free(pc);
        return;
    }
    list_append(&pool->conns, &pc->link);
    pool->open++;
    pool->connecting++;
}

static struct pool_conn *first_idle(struct pg_pool *pool)
{
    for (struct list_node *n = pool->conns.next; n != &pool->conns; n = n->next) {
        struct pool_conn *pc = container_of(n, struct pool_conn, link);
        if (pc->state == POOL_IDLE)
            return pc;
    }
    return NULL;
}

static void on_dispatch(evutil_socket_t fd, short what, void *arg)
{
    struct pg_pool *pool = arg;
    struct pool_conn *pc;
    (void)fd;
    (void)what;

    while (!list_empty(&pool->waiters) && (pc = first_idle(pool)) != NULL) {
        struct pg_pool_waiter *w =
            container_of(list_pop(&pool->waiters), struct pg_pool_waiter, link);
        pool->waiting--;
        pc->state = POOL_LENT;
        pool->lent++;
        w->granted(w, pc->conn);
    }
    if (evtimer_pending(pool->retry_ev, NULL))
        return;
    while (pool->waiting > pool->connecting && pool->open < pool->options.size) {
        size_t before = pool->open;
        open_conn(pool);
        if (pool->open == before)
            break;
    }
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    on_dispatch(-1, 0, arg);
}

static void arm_sweep(struct pg_pool *pool)
{
    struct timeval one_second = {1, 0};
    if (!evtimer_pending(pool->sweep_ev, NULL))
        evtimer_add(pool->sweep_ev, &one_second);
}

static void on_sweep(evutil_socket_t fd, short what, void *arg)
{
    struct pg_pool *pool = arg;
    int64_t now_ms = clock_monotonic_ms();
    bool any_idle = false;
    (void)fd;
    (void)what;

    struct list_node *n = pool->conns.next;
    while (n != &pool->conns) {
        struct pool_conn *pc = container_of(n, struct pool_conn, link);
        n = n->next;
        if (pc->state != POOL_IDLE)
            continue;
        if (now_ms - pc->idle_since_ms >= (int64_t)pool->options.idle_seconds * 1000)
            close_conn(pool, pc);
        else
            any_idle = true;
    }
    if (any_idle)
        arm_sweep(pool);
}

static void on_conn_ready(struct pg_conn *c, void *arg)
{
    struct pool_conn *pc = arg;
    struct pg_pool *pool = pc->pool;
    (void)c;
    pool->connecting--;
    pool->connects++;
    pc->state = POOL_IDLE;
    pc->idle_since_ms = clock_monotonic_ms();
    backoff_reset(&pool->backoff);
    if (pool->failures_logged > 0)
        log_info("replay pool reconnected", "backend_pid=%d", pg_conn_backend_pid(c));
    pool->failures_logged = 0;
    schedule_dispatch(pool);
    arm_sweep(pool);
}

static void on_conn_lost(struct pg_conn *c, const char *reason, void *arg)
{
    struct pool_conn *pc = arg;
    struct pg_pool *pool = pc->pool;
    (void)c;

    if (pc->state == POOL_LENT)
        return; /* the borrower sees its query fail and releases it */
    if (pc->state == POOL_CONNECTING) {
        struct timeval tv;
        backoff_next_tv(&pool->backoff, &tv);
        /* One line per outage and then every 10th attempt, not a flood. */
        if (pool->failures_logged++ % 10 == 0)
            log_warn("replay connection failed", "reason=%s retry_ms=%ld waiting=%zu", reason,
                     (long)(tv.tv_sec * 1000 + tv.tv_usec / 1000), pool->waiting);
        evtimer_add(pool->retry_ev, &tv);
    }
    close_conn(pool, pc);
}

struct pg_pool *pg_pool_new(struct event_base *base, const struct pg_pool_options *options)
{
    struct pg_pool *pool = calloc(1, sizeof(*pool));
    if (pool == NULL)
        return NULL;
    pool->base = base;
    pool->options = *options;
    pool->conninfo = strdup(options->conninfo);
    pool->setup_sql = options->setup_sql != NULL ? strdup(options->setup_sql) : NULL;
    list_init(&pool->conns);
    list_init(&pool->waiters);
    list_init(&pool->queries);
    pool->dispatch_ev = event_new(base, -1, 0, on_dispatch, pool);
    pool->retry_ev = evtimer_new(base, on_retry, pool);
    pool->sweep_ev = evtimer_new(base, on_sweep, pool);
    backoff_init(&pool->backoff, options->reconnect_min_ms, options->reconnect_max_ms,
                 (uint64_t)getpid() * 2654435761u + (uint64_t)time(NULL));
    if (pool->conninfo == NULL || (options->setup_sql != NULL && pool->setup_sql == NULL) ||
        pool->dispatch_ev == NULL || pool->retry_ev == NULL || pool->sweep_ev == NULL) {
        pg_pool_free(pool);
        return NULL;
    }
    return pool;
}

static void query_free(struct pg_pool_query *q);

void pg_pool_free(struct pg_pool *pool)
{
    if (pool == NULL)
        return;
    /* Their connections are closed below, which drops the commands without
     * calling back, so the handles end here. */
    while (!list_empty(&pool->queries))
        query_free(container_of(pool->queries.next, struct pg_pool_query, link));
    while (!list_empty(&pool->conns))
        close_conn(pool, container_of(pool->conns.next, struct pool_conn, link));
    if (pool->dispatch_ev != NULL)
        event_free(pool->dispatch_ev);
    if (pool->retry_ev != NULL)
        event_free(pool->retry_ev);
    if (pool->sweep_ev != NULL)
        event_free(pool->sweep_ev);
    free(pool->conninfo);
    free(pool->setup_sql);
    free(pool);
}

void pg_pool_waiter_init(struct pg_pool_waiter *w,
                         void (*granted)(struct pg_pool_waiter *w, struct pg_conn *conn))
{
    list_init(&w->link);
    w->granted = granted;
}

void pg_pool_acquire(struct pg_pool *pool, struct pg_pool_waiter *w)
{
    list_append(&pool->waiters, &w->link);
    pool->waiting++;
    schedule_dispatch(pool);
}

void pg_pool_cancel(struct pg_pool *pool, struct pg_pool_waiter *w)
{
    if (!list_node_linked(&w->link))
        return;
    list_remove(&w->link);
    pool->waiting--;
}

void pg_pool_release(struct pg_pool *pool, struct pg_conn *conn)
{
    struct pool_conn *pc = find_conn(pool, conn);
    if (pc == NULL || pc->state != POOL_LENT)
        return;
    if (!pg_conn_is_ready(conn) || pg_conn_pending(conn) > 0) {
        close_conn(pool, pc);
        schedule_dispatch(pool);
        return;
    }
    pool->lent--;
    pc->state = POOL_IDLE;
    pc->idle_since_ms = clock_monotonic_ms();
    /* Most recently used last: the sweep closes the oldest idle first. */
    list_remove(&pc->link);
    list_append(&pool->conns, &pc->link);
    if (pool->options.idle_seconds == 0 && list_empty(&pool->waiters)) {
        close_conn(pool, pc);
        return;
    }
    schedule_dispatch(pool);
    arm_sweep(pool);
}

void pg_pool_get_stats(const struct pg_pool *pool, struct pg_pool_stats *stats)
{
    stats->open = pool->open;
    stats->in_use = pool->lent;
    stats->waiting = pool->waiting;
    stats->connects = pool->connects;
}

/* ---- one-shot queries ---- */

static void query_free(struct pg_pool_query *q)
{
    pg_pool_cancel(q->pool, &q->waiter);
    list_remove(&q->link);
    for (int i = 0; i < q->nparams; i++)
        free(q->params[i]);
    free(q->params);
    free(q->command);
    free(q);
}

static void on_query_done(struct pg_conn *conn, const PGresult *res, void *arg)
{
    struct pg_pool_query *q = arg;
    pg_pool_release(q->pool, conn);
    if (!q->cancelled)
        q->fn(NULL, res, q->arg);
    query_free(q);
}

static void on_query_granted(struct pg_pool_waiter *w, struct pg_conn *conn)
{
    struct pg_pool_query *q = container_of(w, struct pg_pool_query, waiter);
    const char *const *params = (const char *const *)q->params;
    bool sent = q->prepared
                    ? pg_conn_execute(conn, q->command, q->nparams, params, on_query_done, q)
                    : pg_conn_query(conn, q->command, q->nparams, params, on_query_done, q);
    if (sent) {
        q->running = true;
        return;
    }
    pg_pool_release(q->pool, conn);
    q->fn(NULL, NULL, q->arg);
    query_free(q);
}

struct pg_pool_query *pg_pool_query(struct pg_pool *pool, const char *command, bool prepared,
                                    int nparams, const char *const *params, pg_result_fn fn,
                                    void *arg)
{
    struct pg_pool_query *q = calloc(1, sizeof(*q));
    if (q == NULL)
        return NULL;
    q->pool = pool;
    list_init(&q->link);
    pg_pool_waiter_init(&q->waiter, on_query_granted);
    q->command = strdup(command);
    q->params = nparams > 0 ? calloc((size_t)nparams, sizeof(char *)) : NULL;
    bool ok = q->command != NULL && (nparams == 0 || q->params != NULL);
    for (int i = 0; ok && i < nparams; i++) {
        q->params[i] = params[i] != NULL ? strdup(params[i]) : NULL; /* NULL: SQL NULL */
        ok = params[i] == NULL || q->params[i] != NULL;
        q->nparams = i + 1;
    }
    if (!ok) {
        query_free(q);
        return NULL;
    }
    q->prepared = prepared;
    q->fn = fn;
    q->arg = arg;
    list_append(&pool->queries, &q->link);
    pg_pool_acquire(pool, &q->waiter);
    return q;
}

void pg_pool_query_cancel(struct pg_pool_query *q)
{
    if (q->running)
        q->cancelled = true; /* freed when its result comes */
    else
        query_free(q);
}
