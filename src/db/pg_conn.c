/*
 * Asynchronous libpq driver.
 *
 * States: CONNECTING (PQconnectPoll steps, each waiting on the socket in the
 * direction libpq asks for), SETUP (the setup command runs), READY (queued
 * commands run one at a time), LOST (terminal). Every entry from libevent
 * runs inside enter()/leave(), and user callbacks are made only from there,
 * so a callback may free the connection: the free is recorded and carried
 * out when the outermost entry unwinds.
 */
#include "db/pg_conn.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/clock.h"
#include "util/list.h"
#include "ops/log.h"

enum pg_conn_state { PGC_CONNECTING, PGC_SETUP, PGC_READY, PGC_LOST };

struct pg_command {
    struct list_node link;
    char *text; /* SQL, or the prepared statement name */
    bool prepared;
    int nparams;
    char **params;
    pg_result_fn fn;
    void *arg;
};

struct pg_conn {
    struct event_base *base;
    PGconn *pg;
    enum pg_conn_state state;
    struct event *io_ev;    /* connect steps, then persistent read */
    struct event *write_ev; /* armed while libpq has unsent output */
    struct event *timeout_ev;
    struct event *kick_ev;  /* runs the first connect step from the loop */
    struct event *more_ev;  /* resumes delivering notifications on the next pass */
    bool reading_paused;    /* io_ev is off while delivered notifications wait */
    struct list_node queue; /* head is running when running is set */
    bool running;
    PGresult *result;
    char *setup_sql;
    const struct pg_conn_handler *handler;
    void *arg;
    int depth;
    bool free_requested;
    char reason[256];
};

static void connect_step(evutil_socket_t fd, short what, void *arg);
static void start_next(struct pg_conn *c);
static void read_results(struct pg_conn *c);

static void free_command(struct pg_command *cmd)
{
    for (int i = 0; i < cmd->nparams; i++)
        free(cmd->params[i]);
    free(cmd->params);
    free(cmd->text);
    free(cmd);
}

static void destroy(struct pg_conn *c)
{
    struct list_node *n;
    if (c->io_ev != NULL)
        event_free(c->io_ev);
    if (c->write_ev != NULL)
        event_free(c->write_ev);
    event_free(c->timeout_ev);
    event_free(c->kick_ev);
    event_free(c->more_ev);
    while ((n = list_pop(&c->queue)) != NULL)
        free_command(container_of(n, struct pg_command, link));
    if (c->result != NULL)
        PQclear(c->result);
    if (c->pg != NULL)
        PQfinish(c->pg);
    free(c->setup_sql);
    free(c);
}

static void enter(struct pg_conn *c)
{
    c->depth++;
}

/* Returns false when the connection was destroyed: the caller must return
 * at once without touching it. */
static bool leave(struct pg_conn *c)
{
    if (--c->depth == 0 && c->free_requested) {
        destroy(c);
        return false;
    }
    return true;
}

static void set_reason(struct pg_conn *c, const char *prefix, const char *detail)
{
    snprintf(c->reason, sizeof(c->reason), "%s%s", prefix, detail != NULL ? detail : "");
    for (char *p = c->reason; *p != '\0'; p++) {
        if (*p == '\n' || *p == '\r' || *p == '\t')
            *p = ' ';
    }
    size_t len = strlen(c->reason);
    while (len > 0 && c->reason[len - 1] == ' ')
        c->reason[--len] = '\0';
}

/* Marks the connection lost and tells everyone; called inside enter(). */
static void fail(struct pg_conn *c)
{
    struct list_node *n;
    if (c->state == PGC_LOST)
        return;
    c->state = PGC_LOST;
    if (c->io_ev != NULL)
        event_del(c->io_ev);
    if (c->write_ev != NULL)
        event_del(c->write_ev);
    event_del(c->timeout_ev);
    c->running = false;
    while (!c->free_requested && (n = list_pop(&c->queue)) != NULL) {
        struct pg_command *cmd = container_of(n, struct pg_command, link);
        if (cmd->fn != NULL)
            cmd->fn(c, NULL, cmd->arg);
        free_command(cmd);
    }
    if (!c->free_requested && c->handler->lost != NULL)
        c->handler->lost(c, c->reason, c->arg);
}

static void fail_with_pq_error(struct pg_conn *c, const char *prefix)
{
    set_reason(c, prefix, PQerrorMessage(c->pg));
    fail(c);
}

static bool watch(struct pg_conn *c, short what, event_callback_fn cb)
{
    if (c->io_ev != NULL)
        event_free(c->io_ev);
    c->io_ev = event_new(c->base, PQsocket(c->pg), what, cb, c);
    if (c->io_ev == NULL || event_add(c->io_ev, NULL) != 0) {
        set_reason(c, "cannot watch the PostgreSQL socket", NULL);
        return false;
    }
    return true;
}

/* Pushes libpq's pending output; arms the write event while some remains. */
static bool flush(struct pg_conn *c)
{
    int rc = PQflush(c->pg);
    if (rc < 0) {
        fail_with_pq_error(c, "write failed: ");
        return false;
    }
    if (rc == 1)
        event_add(c->write_ev, NULL);
    else
        event_del(c->write_ev);
    return true;
}

/* Time spent delivering notifications in one loop pass. One notification
 * may fan out to thousands of streams, and a flood of them must not keep the
 * loop from accepting connections, answering /healthz and running timers
 * (the slow-consumer checks among them). Past the budget the rest wait for
 * the next pass, and the socket is not read meanwhile, so what waits stays
 * in PostgreSQL's notification queue rather than in our memory. */
#define NOTIFY_BUDGET_NS 2000000

static void set_reading(struct pg_conn *c, bool on)
{
    if (on == !c->reading_paused || c->io_ev == NULL)
        return;
    c->reading_paused = !on;
    if (on)
        event_add(c->io_ev, NULL);
    else
        event_del(c->io_ev);
}

static void deliver_notifications(struct pg_conn *c)
{
    int64_t deadline = clock_monotonic_ns() + NOTIFY_BUDGET_NS;
    PGnotify *note;
    while (!c->free_requested && c->state != PGC_LOST && (note = PQnotifies(c->pg)) != NULL) {
        if (c->handler->notify != NULL)
            c->handler->notify(c, note->relname, note->extra, c->arg);
        PQfreemem(note);
        if (clock_monotonic_ns() >= deadline && !c->free_requested && c->state != PGC_LOST) {
            /* A zero timeout, not event_active: the rest must wait until
             * the loop has polled the other sockets. */
            static const struct timeval next_pass = {0, 0};
            set_reading(c, false);
            event_add(c->more_ev, &next_pass);
            return;
        }
    }
    if (!c->free_requested && c->state != PGC_LOST)
        set_reading(c, true);
}

static void on_more_notifications(evutil_socket_t fd, short what, void *arg)
{
    struct pg_conn *c = arg;
    (void)fd;
    (void)what;
    enter(c);
    read_results(c);
    deliver_notifications(c);
    leave(c);
}

static bool result_is_error(const PGresult *res)
{
    ExecStatusType st = PQresultStatus(res);
    return st == PGRES_BAD_RESPONSE || st == PGRES_NONFATAL_ERROR || st == PGRES_FATAL_ERROR;
}

/* Collects the results of the running command; completes it on the NULL
 * result that ends it. */
static void read_results(struct pg_conn *c)
{
    while (!c->free_requested && c->state != PGC_LOST && c->running && !PQisBusy(c->pg)) {
        PGresult *res = PQgetResult(c->pg);
        if (res != NULL) {
            if (c->result != NULL && result_is_error(c->result)) {
                PQclear(res);
            } else {
                if (c->result != NULL)
                    PQclear(c->result);
                c->result = res;
            }
            continue;
        }
        struct pg_command *cmd = container_of(list_pop(&c->queue), struct pg_command, link);
        PGresult *done = c->result;
        c->result = NULL;
        c->running = false;
        if (cmd->fn != NULL)
            cmd->fn(c, done, cmd->arg);
        if (done != NULL)
            PQclear(done);
        free_command(cmd);
        if (!c->free_requested)
            start_next(c);
    }
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    struct pg_conn *c = arg;
    (void)fd;
    (void)what;
    enter(c);
    if (!PQconsumeInput(c->pg)) {
        fail_with_pq_error(c, "read failed: ");
    } else {
        read_results(c);
        deliver_notifications(c);
    }
    leave(c);
}

static void on_writable(evutil_socket_t fd, short what, void *arg)
{
    struct pg_conn *c = arg;
    (void)fd;
    (void)what;
    enter(c);
    flush(c);
    leave(c);
}

static void start_next(struct pg_conn *c)
{
    if (c->running || list_empty(&c->queue) || c->state == PGC_CONNECTING || c->state == PGC_LOST)
        return;
    struct pg_command *cmd = container_of(list_first(&c->queue), struct pg_command, link);
    const char *const *params = (const char *const *)cmd->params;
    int ok;
    if (cmd->prepared)
        ok = PQsendQueryPrepared(c->pg, cmd->text, cmd->nparams, params, NULL, NULL, 0);
    else if (cmd->nparams > 0)
        ok = PQsendQueryParams(c->pg, cmd->text, cmd->nparams, NULL, params, NULL, NULL, 0);
    else
        ok = PQsendQuery(c->pg, cmd->text);
    if (!ok) {
        fail_with_pq_error(c, "send failed: ");
        return;
    }
    c->running = true;
    flush(c);
}

/* Queues a command; sending happens from the loop (kick_ev), never inside
 * the caller's stack, so a failure cannot call back into code that is still
 * in the middle of queuing. */
static bool enqueue(struct pg_conn *c, bool at_front, const char *text, bool prepared, int nparams,
                    const char *const *params, pg_result_fn fn, void *arg)
{
    struct pg_command *cmd = calloc(1, sizeof(*cmd));
    if (cmd == NULL)
        return false;
    list_init(&cmd->link);
    cmd->text = strdup(text);
    cmd->params = nparams > 0 ? calloc((size_t)nparams, sizeof(char *)) : NULL;
    cmd->nparams = nparams;
    bool ok = cmd->text != NULL && (nparams == 0 || cmd->params != NULL);
    for (int i = 0; ok && i < nparams; i++) {
        cmd->params[i] = params[i] != NULL ? strdup(params[i]) : NULL; /* NULL: SQL NULL */
        ok = params[i] == NULL || cmd->params[i] != NULL;
    }
    if (!ok) {
        free_command(cmd);
        return false;
    }
    cmd->prepared = prepared;
    cmd->fn = fn;
    cmd->arg = arg;
    if (at_front)
        list_insert_before(c->queue.next, &cmd->link);
    else
        list_append(&c->queue, &cmd->link);
    if (c->state != PGC_CONNECTING && !c->running)
        event_active(c->kick_ev, EV_TIMEOUT, 1);
    return true;
}

static void become_ready(struct pg_conn *c)
{
    c->state = PGC_READY;
    event_del(c->timeout_ev);
    if (!list_empty(&c->queue) && !c->running)
        event_active(c->kick_ev, EV_TIMEOUT, 1);
    if (c->handler->ready != NULL)
        c->handler->ready(c, c->arg);
}

static void setup_done(struct pg_conn *c, const PGresult *res, void *arg)
{
    (void)arg;
    if (res == NULL)
        return; /* lost: fail() reports it */
    if (result_is_error(res)) {
        set_reason(c, "setup failed: ", PQresultErrorMessage(res));
        fail(c);
        return;
    }
    become_ready(c);
}

static void connected(struct pg_conn *c)
{
    if (PQsetnonblocking(c->pg, 1) != 0) {
        fail_with_pq_error(c, "cannot make the connection non-blocking: ");
        return;
    }
    event_free(c->io_ev);
    c->io_ev = event_new(c->base, PQsocket(c->pg), EV_READ | EV_PERSIST, on_readable, c);
    c->write_ev = event_new(c->base, PQsocket(c->pg), EV_WRITE | EV_PERSIST, on_writable, c);
    if (c->io_ev == NULL || c->write_ev == NULL || event_add(c->io_ev, NULL) != 0) {
        set_reason(c, "cannot watch the PostgreSQL socket", NULL);
        fail(c);
        return;
    }
    if (c->setup_sql == NULL) {
        become_ready(c);
        return;
    }
    c->state = PGC_SETUP;
    /* The setup command goes first, ahead of anything queued meanwhile. */
    if (!enqueue(c, true, c->setup_sql, false, 0, NULL, setup_done, NULL)) {
        set_reason(c, "out of memory", NULL);
        fail(c);
    }
}

static void connect_step(evutil_socket_t fd, short what, void *arg)
{
    struct pg_conn *c = arg;
    (void)fd;
    (void)what;
    enter(c);
    switch (PQconnectPoll(c->pg)) {
    case PGRES_POLLING_OK:
        connected(c);
        break;
    case PGRES_POLLING_READING:
        if (!watch(c, EV_READ, connect_step))
            fail(c);
        break;
    case PGRES_POLLING_WRITING:
        if (!watch(c, EV_WRITE, connect_step))
            fail(c);
        break;
    default:
        fail_with_pq_error(c, "connection failed: ");
        break;
    }
    leave(c);
}

/* Deferred work: the first connect step, or sending the next command. */
static void on_kick(evutil_socket_t fd, short what, void *arg)
{
    struct pg_conn *c = arg;
    (void)fd;
    (void)what;
    enter(c);
    if (c->state != PGC_CONNECTING)
        start_next(c);
    else if (PQstatus(c->pg) == CONNECTION_BAD)
        fail_with_pq_error(c, "connection failed: ");
    else if (!watch(c, EV_WRITE, connect_step)) /* libpq: start as if asked to write */
        fail(c);
    leave(c);
}

/* Server notices and warnings (a backend announcing its termination, say)
 * go to the structured log instead of libpq's raw stderr lines. */
static void on_notice(void *arg, const char *message)
{
    char line[512];
    size_t len = strlen(message);
    (void)arg;
    snprintf(line, sizeof(line), "%.*s", (int)(len > 0 && message[len - 1] == '\n' ? len - 1 : len),
             message);
    log_info("postgresql notice", "message=%s", line);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct pg_conn *c = arg;
    (void)fd;
    (void)what;
    enter(c);
    set_reason(c, "connection timed out", NULL);
    fail(c);
    leave(c);
}

struct pg_conn *pg_conn_new(struct event_base *base, const char *conninfo,
                            const char *application_name, const char *setup_sql,
                            int connect_timeout_s, const struct pg_conn_handler *handler, void *arg)
{
    /* Our defaults come first; dbname (the user's conninfo, expanded) comes
     * last so that anything it sets wins. */
    const char *keywords[] = {"application_name",
                              "keepalives",
                              "keepalives_idle",
                              "keepalives_interval",
                              "keepalives_count",
                              "dbname",
                              NULL};
    const char *values[] = {application_name, "1", "10", "5", "3", conninfo, NULL};
    struct timeval tv = {connect_timeout_s, 0};

    struct pg_conn *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->base = base;
    c->handler = handler;
    c->arg = arg;
    list_init(&c->queue);
    c->setup_sql = setup_sql != NULL ? strdup(setup_sql) : NULL;
    c->timeout_ev = evtimer_new(base, on_timeout, c);
    c->kick_ev = evtimer_new(base, on_kick, c);
    c->more_ev = evtimer_new(base, on_more_notifications, c);
    c->pg = PQconnectStartParams(keywords, values, 1);
    if ((setup_sql != NULL && c->setup_sql == NULL) || c->timeout_ev == NULL ||
        c->kick_ev == NULL || c->more_ev == NULL || c->pg == NULL) {
        if (c->timeout_ev != NULL)
            event_free(c->timeout_ev);
        if (c->kick_ev != NULL)
            event_free(c->kick_ev);
        if (c->more_ev != NULL)
            event_free(c->more_ev);
        if (c->pg != NULL)
            PQfinish(c->pg);
        free(c->setup_sql);
        free(c);
        return NULL;
    }
    PQsetNoticeProcessor(c->pg, on_notice, NULL);
    c->state = PGC_CONNECTING;
    event_add(c->timeout_ev, &tv);
    event_active(c->kick_ev, EV_TIMEOUT, 1);
    return c;
}

void pg_conn_free(struct pg_conn *c)
{
    if (c == NULL)
        return;
    if (c->depth > 0) {
        c->free_requested = true;
        return;
    }
    destroy(c);
}

bool pg_conn_query(struct pg_conn *c, const char *sql, int nparams, const char *const *params,
                   pg_result_fn fn, void *arg)
{
    if (c->state == PGC_LOST || c->free_requested)
        return false;
    return enqueue(c, false, sql, false, nparams, params, fn, arg);
}

bool pg_conn_execute(struct pg_conn *c, const char *stmt_name, int nparams,
                     const char *const *params, pg_result_fn fn, void *arg)
{
    if (c->state == PGC_LOST || c->free_requested)
        return false;
    return enqueue(c, false, stmt_name, true, nparams, params, fn, arg);
}

bool pg_conn_is_ready(const struct pg_conn *c)
{
    return c->state == PGC_READY && !c->free_requested;
}

size_t pg_conn_pending(const struct pg_conn *c)
{
    size_t n = 0;
    for (const struct list_node *p = c->queue.next; p != &c->queue; p = p->next)
        n++;
    return n;
}

int pg_conn_backend_pid(const struct pg_conn *c)
{
    return c->state == PGC_READY ? PQbackendPID(c->pg) : 0;
}
