/* Replay jobs (core/replay.c) against a fake database: the pool and the
 * connection are replaced at link time (-Wl,--wrap=pg_pool_acquire,...,
 * see TEST_LDFLAGS_test_replay in the Makefile), so the test decides when a
 * connection is granted and what each query returns (PGresults built with
 * PQmakeEmptyPGresult and PQsetvalue): first the start question
 * (piper_replay_start), then keyset pages (piper_replay_page). The hub and
 * the event loop are real. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>
#include <libpq-fe.h>

#include "core/frame.h"
#include "core/hub.h"
#include "core/replay.h"
#include "ops/log.h"
#include "util/clock.h"

#define PAGE_ROWS 100
#define PAGE_BYTES 4096

/* ---- the fake pool and connection ---- */

static char fake_pool_storage, fake_conn_storage;
#define FAKE_POOL ((struct pg_pool *)&fake_pool_storage)
#define FAKE_CONN ((struct pg_conn *)&fake_conn_storage)

static struct {
    struct pg_pool_waiter *waiting[8]; /* acquired, not yet granted */
    size_t waiting_count;
    size_t acquires;
    size_t releases;
    /* The query in flight. */
    pg_result_fn fn;
    void *arg;
    char stmt[64];
    char params[3][32];
    size_t executes;
    bool execute_fails;
} db;

void __wrap_pg_pool_acquire(struct pg_pool *pool, struct pg_pool_waiter *w);
void __wrap_pg_pool_cancel(struct pg_pool *pool, struct pg_pool_waiter *w);
void __wrap_pg_pool_release(struct pg_pool *pool, struct pg_conn *conn);
bool __wrap_pg_conn_execute(struct pg_conn *c, const char *stmt_name, int nparams,
                            const char *const *params, pg_result_fn fn, void *arg);

void __wrap_pg_pool_acquire(struct pg_pool *pool, struct pg_pool_waiter *w)
{
    assert_ptr_equal(pool, FAKE_POOL);
    assert_true(db.waiting_count < 8);
    db.waiting[db.waiting_count++] = w;
    db.acquires++;
}

void __wrap_pg_pool_cancel(struct pg_pool *pool, struct pg_pool_waiter *w)
{
    assert_ptr_equal(pool, FAKE_POOL);
    for (size_t i = 0; i < db.waiting_count; i++) {
        if (db.waiting[i] == w) {
            memmove(&db.waiting[i], &db.waiting[i + 1],
                    (db.waiting_count - i - 1) * sizeof(db.waiting[0]));
            db.waiting_count--;
            return;
        }
    }
}

void __wrap_pg_pool_release(struct pg_pool *pool, struct pg_conn *conn)
{
    assert_ptr_equal(pool, FAKE_POOL);
    assert_ptr_equal(conn, FAKE_CONN);
    db.releases++;
}

bool __wrap_pg_conn_execute(struct pg_conn *c, const char *stmt_name, int nparams,
                            const char *const *params, pg_result_fn fn, void *arg)
{
    assert_ptr_equal(c, FAKE_CONN);
    if (db.execute_fails)
        return false;
    assert_null(db.fn); /* one query at a time on the connection */
    snprintf(db.stmt, sizeof(db.stmt), "%s", stmt_name);
    for (int i = 0; i < nparams && i < 3; i++)
        snprintf(db.params[i], sizeof(db.params[i]), "%s", params[i] != NULL ? params[i] : "NULL");
    db.fn = fn;
    db.arg = arg;
    db.executes++;
    return true;
}

/* Grants the oldest waiter the connection. */
static void grant(void)
{
    assert_true(db.waiting_count > 0);
    struct pg_pool_waiter *w = db.waiting[0];
    memmove(&db.waiting[0], &db.waiting[1], (db.waiting_count - 1) * sizeof(db.waiting[0]));
    db.waiting_count--;
    w->granted(w, FAKE_CONN);
}

/* Rows (id, type, NULL timestamp, payload {}) for ids first..last. */
static PGresult *page(int64_t first, int64_t last)
{
    PGresult *res = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
    PGresAttDesc attrs[4];
    static char *const names[4] = {"id", "type", "float8", "payload"};
    memset(attrs, 0, sizeof(attrs));
    for (int i = 0; i < 4; i++) {
        attrs[i].name = names[i];
        attrs[i].typlen = -1;
    }
    assert_non_null(res);
    assert_int_equal(PQsetResultAttrs(res, 4, attrs), 1);
    for (int64_t id = first; id <= last; id++) {
        char text[24];
        int row = (int)(id - first);
        snprintf(text, sizeof(text), "%" PRId64, id);
        assert_int_equal(PQsetvalue(res, row, 0, text, (int)strlen(text)), 1);
        assert_int_equal(PQsetvalue(res, row, 1, "t", 1), 1);
        assert_int_equal(PQsetvalue(res, row, 2, NULL, -1), 1);
        assert_int_equal(PQsetvalue(res, row, 3, "{}", 2), 1);
    }
    return res;
}

/* Completes the query in flight with res (NULL: the connection was lost),
 * then frees res. */
static void answer(PGresult *res)
{
    assert_non_null(db.fn);
    pg_result_fn fn = db.fn;
    db.fn = NULL;
    fn(FAKE_CONN, res, db.arg);
    PQclear(res);
}

/* The answer to piper_replay_start: the consumer's pruned mark, the
 * highest id issued, its oldest and newest rows (0: NULL, none) and the
 * oldest of its newest N. */
static PGresult *start_facts(int64_t pruned, int64_t issued, int64_t oldest, int64_t newest,
                             int64_t initial)
{
    PGresult *res = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
    PGresAttDesc attrs[5];
    static char *const names[5] = {"pruned", "issued", "oldest", "newest", "initial"};
    const int64_t values[5] = {pruned, issued, oldest, newest, initial};
    memset(attrs, 0, sizeof(attrs));
    for (int i = 0; i < 5; i++) {
        attrs[i].name = names[i];
        attrs[i].typlen = -1;
    }
    assert_non_null(res);
    assert_int_equal(PQsetResultAttrs(res, 5, attrs), 1);
    for (int i = 0; i < 5; i++) {
        char text[24];
        snprintf(text, sizeof(text), "%" PRId64, values[i]);
        bool null = values[i] == 0 && i >= 2;
        assert_int_equal(PQsetvalue(res, 0, i, null ? NULL : text, null ? -1 : (int)strlen(text)),
                         1);
    }
    return res;
}

/* Grants a connection to a job that has not started and answers its start
 * question with nothing pruned and ids up to issued; the first page query
 * is then in flight on the same connection. */
static void grant_and_start(int64_t issued)
{
    grant();
    assert_string_equal(db.stmt, "piper_replay_start");
    answer(start_facts(0, issued, issued > 0 ? 1 : 0, issued, 0));
    assert_string_equal(db.stmt, "piper_replay_page");
}

/* ---- members ---- */

struct recorder {
    struct hub_member member;
    int64_t ids[64];
    size_t count;
    size_t signals; /* frames without an id (history-gone) */
    size_t pending;
};

static void record_write(struct hub_member *m, struct frame *const *frames, size_t count)
{
    struct recorder *r = container_of(m, struct recorder, member);
    for (size_t i = 0; i < count; i++) {
        if (frames[i]->id == 0) {
            r->signals++;
            continue;
        }
        assert_true(r->count < 64);
        r->ids[r->count++] = frames[i]->id;
    }
}

static size_t recorder_pending(const struct hub_member *m)
{
    return container_of(m, struct recorder, member)->pending;
}

static const struct hub_member_ops recorder_ops = {.write = record_write,
                                                   .pending = recorder_pending};

struct fixture {
    struct event_base *base;
    struct hub *hub;
    struct replay *replay;
    struct recorder members[2];
};

static int setup_with_budget(void **state, size_t budget_bytes)
{
    log_configure(LOG_FORMAT_LOGFMT, LOG_LEVEL_ERROR);
    memset(&db, 0, sizeof(db));
    struct fixture *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    fx->base = event_base_new();
    fx->hub = hub_new(16);
    hub_ingest_up(fx->hub, 0, false);
    struct replay_options o = {
        .page_rows = PAGE_ROWS,
        .page_bytes = PAGE_BYTES,
        .budget_bytes = budget_bytes,
        .retry_min_ms = 10,
        .retry_max_ms = 20,
    };
    fx->replay = replay_new(fx->base, fx->hub, FAKE_POOL, &o);
    assert_non_null(fx->replay);
    hub_set_resync_hook(fx->hub, replay_resync, fx->replay);
    *state = fx;
    return 0;
}

static int setup(void **state)
{
    return setup_with_budget(state, 16 * PAGE_BYTES);
}

static int setup_one_page_budget(void **state)
{
    return setup_with_budget(state, PAGE_BYTES);
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    replay_free(fx->replay);
    for (size_t i = 0; i < 2; i++) {
        if (fx->members[i].member.consumer != NULL)
            hub_leave(fx->hub, &fx->members[i].member);
    }
    hub_free(fx->hub);
    event_base_free(fx->base);
    frame_release_scratch();
    free(fx);
    return 0;
}

/* A member of consumer resuming after cursor, its replay started. */
static struct recorder *catch_up(struct fixture *fx, size_t i, const char *consumer, int64_t cursor)
{
    struct recorder *r = &fx->members[i];
    memset(r, 0, sizeof(*r));
    assert_true(hub_join(fx->hub, consumer, &r->member, &recorder_ops, true, cursor));
    replay_catch_up(fx->replay, &r->member, NULL);
    return r;
}

/* One loop pass: budget grants run from a loop event. */
static void turn(struct fixture *fx)
{
    event_base_loop(fx->base, EVLOOP_NONBLOCK);
}

static void publish(struct fixture *fx, const char *consumer, int64_t id)
{
    enum frame_error err;
    struct frame *f = frame_new_event(id, "t", 1, "{}", 2, 0.0, &err);
    assert_non_null(f);
    hub_publish(fx->hub, consumer, strlen(consumer), f);
    frame_unref(f);
}

static void assert_ids(const struct recorder *r, int64_t first, int64_t last)
{
    assert_int_equal(r->count, (size_t)(last - first + 1));
    for (size_t i = 0; i < r->count; i++)
        assert_int_equal(r->ids[i], first + (int64_t)i);
}

/* ---- tests ---- */

static void pages__full_then_short__in_order_then_live(void **state)
{
    struct fixture *fx = *state;
    struct recorder *m = catch_up(fx, 0, "c1", 0);
    turn(fx);
    assert_int_equal(db.acquires, 1);
    grant_and_start(100);
    assert_string_equal(db.stmt, "piper_replay_page");
    assert_string_equal(db.params[0], "c1");
    assert_string_equal(db.params[1], "0");
    assert_string_equal(db.params[2], "16"); /* a small first page */
    answer(page(1, 16));                     /* full: there may be more */
    assert_int_equal(db.releases, 1);
    assert_ids(m, 1, 16);
    assert_int_equal(m->member.state, HUB_MEMBER_CATCHING_UP);
    turn(fx);
    grant();
    assert_string_equal(db.params[1], "16"); /* keyset: after the last id */
    assert_int_equal(atoi(db.params[2]) > 16, true);
    /* Live events while the page is read are held, not written. */
    publish(fx, "c1", 18);
    publish(fx, "c1", 19);
    assert_int_equal(m->count, 16);
    answer(page(17, 18)); /* short: hand-over */
    assert_int_equal(db.releases, 2);
    /* 18 came from the table; the held 18 is not written twice. */
    assert_ids(m, 1, 19);
    assert_int_equal(m->member.state, HUB_MEMBER_LIVE);
    assert_int_equal(replay_active_jobs(fx->replay), 0);
    assert_int_equal(replay_budget_used(fx->replay), 0);
    publish(fx, "c1", 20);
    assert_ids(m, 1, 20);
}

static void handover__ingest_reconnected_during_query__reads_again(void **state)
{
    struct fixture *fx = *state;
    struct recorder *m = catch_up(fx, 0, "c1", 5);
    turn(fx);
    grant_and_start(100);
    /* The live path was interrupted while the page was read: events may
     * have been missed, so the page cannot close the gap. */
    hub_ingest_down(fx->hub);
    hub_ingest_up(fx->hub, 7, false);
    answer(page(6, 7));
    assert_int_equal(m->member.state, HUB_MEMBER_CATCHING_UP);
    turn(fx);
    assert_int_equal(db.acquires, 2);
    grant();
    assert_string_equal(db.params[1], "7");
    answer(page(8, 7)); /* empty: now the hand-over */
    assert_int_equal(m->member.state, HUB_MEMBER_LIVE);
    assert_ids(m, 6, 7);
    assert_int_equal(replay_active_jobs(fx->replay), 0);
}

static void handover__ingest_down__parked_until_resync(void **state)
{
    struct fixture *fx = *state;
    struct recorder *m = catch_up(fx, 0, "c1", 0);
    turn(fx);
    grant_and_start(100);
    hub_ingest_down(fx->hub);
    answer(page(1, 2));
    /* Parked: no job, the member still catching up. */
    assert_int_equal(replay_active_jobs(fx->replay), 0);
    assert_int_equal(m->member.state, HUB_MEMBER_CATCHING_UP);
    assert_int_equal(db.waiting_count, 0);
    /* The ingest is back: the resync hook starts a job from the cursor. */
    hub_ingest_up(fx->hub, 2, false);
    assert_int_equal(replay_active_jobs(fx->replay), 1);
    turn(fx);
    grant_and_start(100);
    assert_string_equal(db.params[1], "2");
    answer(page(3, 3));
    assert_ids(m, 1, 3);
    assert_int_equal(m->member.state, HUB_MEMBER_LIVE);
}

static void low_watermark__member_behind__next_page_waits_for_drain(void **state)
{
    struct fixture *fx = *state;
    struct recorder *m = catch_up(fx, 0, "c1", 0);
    turn(fx);
    grant_and_start(100);
    m->pending = HUB_LOW_WATERMARK + 1; /* the page did not fit the socket */
    answer(page(1, 16));
    turn(fx);
    assert_int_equal(db.acquires, 1); /* no second page while behind */
    assert_int_equal(replay_budget_used(fx->replay), PAGE_BYTES);
    m->pending = HUB_LOW_WATERMARK; /* at the watermark: drained */
    replay_member_drained(&m->member);
    assert_int_equal(replay_budget_used(fx->replay), 0);
    turn(fx);
    assert_int_equal(db.acquires, 2);
    grant();
    answer(page(17, 17));
    assert_int_equal(m->member.state, HUB_MEMBER_LIVE);
}

static void budget__one_page__second_job_waits(void **state)
{
    struct fixture *fx = *state;
    struct recorder *a = catch_up(fx, 0, "a", 0);
    struct recorder *b = catch_up(fx, 1, "b", 0);
    turn(fx);
    /* The budget holds one page: one job reads, the other waits. */
    assert_int_equal(db.acquires, 1);
    assert_int_equal(replay_budget_used(fx->replay), PAGE_BYTES);
    assert_int_equal(replay_budget_waiting(fx->replay), 1);
    grant_and_start(100);
    a->pending = HUB_LOW_WATERMARK + 1;
    answer(page(1, 16));
    turn(fx);
    assert_int_equal(db.acquires, 1); /* a's page is still buffered */
    a->pending = 0;
    replay_member_drained(&a->member);
    turn(fx);
    /* a's budget went back: b (first in line) reads now, then a. */
    assert_int_equal(db.acquires, 2);
    assert_int_equal(replay_budget_waiting(fx->replay), 1);
    grant_and_start(100);
    assert_string_equal(db.params[0], "b");
    answer(page(100, 100));
    assert_int_equal(b->member.state, HUB_MEMBER_LIVE);
    turn(fx);
    grant();
    assert_string_equal(db.params[0], "a");
    answer(page(17, 17));
    assert_int_equal(a->member.state, HUB_MEMBER_LIVE);
    assert_int_equal(replay_budget_used(fx->replay), 0);
}

static void query_failed__backoff__retried(void **state)
{
    struct fixture *fx = *state;
    struct recorder *m = catch_up(fx, 0, "c1", 0);
    turn(fx);
    grant_and_start(100);
    answer(NULL); /* connection lost */
    assert_int_equal(db.releases, 1);
    assert_int_equal(replay_budget_used(fx->replay), 0); /* no budget while backing off */
    int64_t deadline = clock_monotonic_ms() + 5000;
    while (db.acquires < 2 && clock_monotonic_ms() < deadline)
        event_base_loop(fx->base, EVLOOP_ONCE);
    assert_int_equal(db.acquires, 2);
    grant();
    assert_string_equal(db.params[1], "0"); /* nothing was read: same page */
    answer(page(1, 1));
    assert_ids(m, 1, 1);
}

static void send_failed__backoff__retried(void **state)
{
    struct fixture *fx = *state;
    catch_up(fx, 0, "c1", 0);
    turn(fx);
    db.execute_fails = true;
    grant();
    assert_int_equal(db.releases, 1);
    db.execute_fails = false;
    int64_t deadline = clock_monotonic_ms() + 5000;
    while (db.acquires < 2 && clock_monotonic_ms() < deadline)
        event_base_loop(fx->base, EVLOOP_ONCE);
    assert_int_equal(db.acquires, 2);
    grant_and_start(100);
    answer(page(1, 1));
}

static void member_leaves__query_in_flight__job_freed_after_answer(void **state)
{
    struct fixture *fx = *state;
    struct recorder *m = catch_up(fx, 0, "c1", 0);
    turn(fx);
    grant_and_start(100);
    replay_member_leave(&m->member);
    hub_leave(fx->hub, &m->member);
    m->member.consumer = NULL;
    assert_int_equal(replay_active_jobs(fx->replay), 1); /* the query still runs */
    answer(page(1, 3));
    assert_int_equal(db.releases, 1);
    assert_int_equal(replay_active_jobs(fx->replay), 0);
    assert_int_equal(m->count, 0);
}

static void member_leaves__waiting_for_connection__withdrawn(void **state)
{
    struct fixture *fx = *state;
    struct recorder *m = catch_up(fx, 0, "c1", 0);
    turn(fx);
    assert_int_equal(db.waiting_count, 1);
    replay_member_leave(&m->member);
    hub_leave(fx->hub, &m->member);
    m->member.consumer = NULL;
    assert_int_equal(db.waiting_count, 0);
    assert_int_equal(replay_active_jobs(fx->replay), 0);
    assert_int_equal(replay_budget_used(fx->replay), 0);
}

static void cursor_beyond_issued__history_gone_then_newest(void **state)
{
    struct fixture *fx = *state;
    struct recorder *m = catch_up(fx, 0, "c1", 1000);
    turn(fx);
    grant();
    /* The sequence never handed out 1000 (a restored or reset table). */
    answer(start_facts(0, 42, 1, 42, 0));
    assert_int_equal(m->signals, 1);
    assert_string_equal(db.stmt, "piper_replay_page");
    assert_string_equal(db.params[1], "41"); /* from the newest row on */
    answer(page(42, 42));
    assert_int_equal(db.releases, 1);
    assert_ids(m, 42, 42);
    assert_int_equal(m->member.state, HUB_MEMBER_LIVE);
    publish(fx, "c1", 43);
    assert_ids(m, 42, 43);
}

static void cursor_below_pruned__history_gone_then_oldest(void **state)
{
    struct fixture *fx = *state;
    struct recorder *m = catch_up(fx, 0, "c1", 3);
    turn(fx);
    grant();
    answer(start_facts(10, 50, 11, 50, 0)); /* rows up to 10 were pruned */
    assert_int_equal(m->signals, 1);
    assert_string_equal(db.params[1], "3");
    answer(page(11, 12));
    assert_ids(m, 11, 12);
    assert_int_equal(m->member.state, HUB_MEMBER_LIVE);
}

/* The database layer answering one query twice would make the job leave
 * DRAINING for DRAINING: refused (the process aborts), in a child. */
static void answered_twice(struct fixture *fx)
{
    struct recorder *m = catch_up(fx, 0, "c1", 0);
    turn(fx);
    grant_and_start(100);
    m->pending = HUB_LOW_WATERMARK + 1; /* stays DRAINING after the page */
    pg_result_fn fn = db.fn;
    void *arg = db.arg;
    answer(page(1, 16));
    db.fn = fn;
    db.arg = arg;
    answer(page(1, 16));
}

static void transitions__impossible__refused(void **state)
{
    struct fixture *fx = *state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        answered_twice(fx);
        _exit(0);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(pages__full_then_short__in_order_then_live, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(handover__ingest_reconnected_during_query__reads_again,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(handover__ingest_down__parked_until_resync, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(low_watermark__member_behind__next_page_waits_for_drain,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(budget__one_page__second_job_waits, setup_one_page_budget,
                                        teardown),
        cmocka_unit_test_setup_teardown(query_failed__backoff__retried, setup, teardown),
        cmocka_unit_test_setup_teardown(send_failed__backoff__retried, setup, teardown),
        cmocka_unit_test_setup_teardown(member_leaves__query_in_flight__job_freed_after_answer,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(member_leaves__waiting_for_connection__withdrawn, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(cursor_beyond_issued__history_gone_then_newest, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(cursor_below_pruned__history_gone_then_oldest, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(transitions__impossible__refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
