/* Sessions (core/session.c) over a fake sink: a real hub and event loop,
 * a transport that records what it is asked to do and reports "gone" from
 * the loop, as the real ones must. The timed limits run on the real clock
 * (heartbeat, soft_seconds and write_timeout_seconds of one second). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "core/frame.h"
#include "core/hub.h"
#include "core/session.h"
#include "ops/log.h"
#include "util/clock.h"

#define SOFT_BYTES 100
#define HARD_BYTES 1000

struct fake_sink {
    struct session_sink sink;
    struct event *gone_ev;
    size_t pending; /* what the test says is waiting for the client */
    uint64_t taken;
    int starts;
    long long retry_ms;
    int64_t ids[16];
    char id_lines[16][64]; /* each frame's "id: ..." line */
    size_t id_count;
    int heartbeats;
    int ends;
    int aborts;
    enum close_reason reason;
    bool gone;
};

struct fixture {
    struct event_base *base;
    struct event *wake_ev; /* keeps the loop turning while a test waits */
    struct hub *hub;
    struct sessions *all;
    struct fake_sink sinks[2];
    int shutdowns_done;
    bool shutdown_done;
};

static struct fake_sink *fake_of(const struct session_sink *sink)
{
    return (struct fake_sink *)((char *)sink - offsetof(struct fake_sink, sink));
}

static void sink_start(struct session_sink *sink, long long retry_ms)
{
    fake_of(sink)->starts++;
    fake_of(sink)->retry_ms = retry_ms;
}

static void sink_write_frames(struct session_sink *sink, struct frame *const *frames, size_t count)
{
    struct fake_sink *f = fake_of(sink);
    for (size_t i = 0; i < count && f->id_count < 16; i++) {
        size_t line = strcspn(frames[i]->bytes, "\n");
        snprintf(f->id_lines[f->id_count], sizeof(f->id_lines[0]), "%.*s", (int)line,
                 frames[i]->bytes);
        f->ids[f->id_count++] = frames[i]->id;
    }
}

static void sink_heartbeat(struct session_sink *sink, int64_t unix_time)
{
    (void)unix_time;
    fake_of(sink)->heartbeats++;
}

static size_t sink_pending(const struct session_sink *sink)
{
    return fake_of(sink)->pending;
}

static uint64_t sink_taken(const struct session_sink *sink)
{
    return fake_of(sink)->taken;
}

/* Gone is reported from the loop, never from inside a sink call. */
static void on_gone(evutil_socket_t fd, short what, void *arg)
{
    struct fake_sink *f = arg;
    (void)fd;
    (void)what;
    f->gone = true;
    session_sink_gone(&f->sink, f->reason);
}

static void sink_end(struct session_sink *sink, enum close_reason why)
{
    struct fake_sink *f = fake_of(sink);
    f->ends++;
    f->reason = why;
    event_active(f->gone_ev, EV_TIMEOUT, 1);
}

static void sink_abort(struct session_sink *sink, enum close_reason why)
{
    struct fake_sink *f = fake_of(sink);
    f->aborts++;
    f->reason = why;
    event_active(f->gone_ev, EV_TIMEOUT, 1);
}

static const char *sink_peer(const struct session_sink *sink, unsigned *port)
{
    (void)sink;
    *port = 4242;
    return "192.0.2.1";
}

static const struct session_sink_ops fake_ops = {
    .kind = TRANSPORT_HTTP1,
    .start = sink_start,
    .write_frames = sink_write_frames,
    .heartbeat = sink_heartbeat,
    .pending = sink_pending,
    .taken = sink_taken,
    .end = sink_end,
    .abort = sink_abort,
    .peer = sink_peer,
};

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

static int setup(void **state)
{
    log_configure(LOG_FORMAT_LOGFMT, LOG_LEVEL_ERROR);
    struct fixture *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    fx->base = event_base_new();
    fx->hub = hub_new(16);
    hub_ingest_up(fx->hub, 0, false);
    struct session_settings settings = {
        .heartbeat_seconds = 1,
        .retry_ms = 1500,
        .soft_bytes = SOFT_BYTES,
        .soft_seconds = 1,
        .hard_bytes = HARD_BYTES,
        .write_timeout_seconds = 1,
    };
    /* No replay: these sessions start without Last-Event-ID. */
    fx->all = sessions_new(fx->base, fx->hub, NULL, &settings);
    assert_non_null(fx->all);
    struct timeval tick = {0, 50000};
    fx->wake_ev = event_new(fx->base, -1, EV_PERSIST, on_wake, NULL);
    event_add(fx->wake_ev, &tick);
    for (size_t i = 0; i < 2; i++) {
        fx->sinks[i].sink.ops = &fake_ops;
        fx->sinks[i].gone_ev = event_new(fx->base, -1, 0, on_gone, &fx->sinks[i]);
    }
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    assert_int_equal(sessions_count(fx->all), 0); /* nothing leaked */
    sessions_free(fx->all);
    hub_free(fx->hub);
    for (size_t i = 0; i < 2; i++)
        event_free(fx->sinks[i].gone_ev);
    event_free(fx->wake_ev);
    event_base_free(fx->base);
    frame_release_scratch();
    free(fx);
    return 0;
}

static struct session *open_session(struct fixture *fx, struct fake_sink *f, int64_t expires_at)
{
    struct session_params params = {.consumer_id = "c1", .expires_at = expires_at};
    struct session *s = session_new(fx->all, &params);
    assert_non_null(s);
    session_start(s, &f->sink);
    return s;
}

static void publish_to(struct fixture *fx, const char *consumer, int64_t id)
{
    enum frame_error err;
    struct frame *f = frame_new_event(id, "t", 1, "{}", 2, 0.0, &err);
    assert_non_null(f);
    hub_publish(fx->hub, consumer, strlen(consumer), f);
    frame_unref(f);
}

static void publish(struct fixture *fx, int64_t id)
{
    publish_to(fx, "c1", id);
}

/* Runs the loop until *flag or timeout_s seconds. */
static bool run_until(struct fixture *fx, const bool *flag, int timeout_s)
{
    int64_t deadline = clock_monotonic_ms() + (int64_t)timeout_s * 1000;
    while (!*flag && clock_monotonic_ms() < deadline)
        event_base_loop(fx->base, EVLOOP_ONCE);
    return *flag;
}

static void end_all(struct fixture *fx)
{
    struct timeval deadline = {5, 0};
    sessions_shutdown(fx->all, &deadline, NULL, NULL);
    for (size_t i = 0; i < 2; i++) {
        if (fx->sinks[i].starts > 0)
            assert_true(run_until(fx, &fx->sinks[i].gone, 5));
    }
}

static void session_start__open__start_written_and_counted(void **state)
{
    struct fixture *fx = *state;
    open_session(fx, &fx->sinks[0], 0);
    assert_int_equal(fx->sinks[0].starts, 1);
    assert_int_equal(fx->sinks[0].retry_ms, 1500);
    assert_int_equal(sessions_count(fx->all), 1);
    assert_int_equal(sessions_count_by_transport(fx->all, TRANSPORT_HTTP1), 1);
    assert_int_equal(sessions_of_consumer(fx->all, "c1"), 1);
    end_all(fx);
    assert_int_equal(sessions_of_consumer(fx->all, "c1"), 0);
}

static void member_write__keeping_up__frames_reach_sink(void **state)
{
    struct fixture *fx = *state;
    open_session(fx, &fx->sinks[0], 0);
    open_session(fx, &fx->sinks[1], 0);
    publish(fx, 1);
    publish(fx, 2);
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(fx->sinks[i].id_count, 2);
        assert_int_equal(fx->sinks[i].ids[0], 1);
        assert_int_equal(fx->sinks[i].ids[1], 2);
    }
    end_all(fx);
}

static void member_write__pending_over_hard_limit__aborted_unwritten(void **state)
{
    struct fixture *fx = *state;
    struct fake_sink *f = &fx->sinks[0];
    open_session(fx, f, 0);
    f->pending = HARD_BYTES; /* at the limit: still written */
    publish(fx, 1);
    assert_int_equal(f->id_count, 1);
    assert_int_equal(f->aborts, 0);
    f->pending = HARD_BYTES + 1;
    publish(fx, 2);
    assert_int_equal(f->id_count, 1);
    assert_int_equal(f->aborts, 1);
    assert_int_equal(f->reason, CLOSE_SLOW_CONSUMER);
    publish(fx, 3); /* closing: nothing more is written or judged */
    assert_int_equal(f->id_count, 1);
    assert_int_equal(f->aborts, 1);
    assert_true(run_until(fx, &f->gone, 5));
    assert_int_equal(sessions_count(fx->all), 0);
}

static void tick__over_soft_limit_for_soft_seconds__aborted(void **state)
{
    struct fixture *fx = *state;
    struct fake_sink *f = &fx->sinks[0];
    open_session(fx, f, 0);
    publish(fx, 1);
    f->pending = SOFT_BYTES + 1; /* the write left this much behind */
    f->taken = 0;
    publish(fx, 2); /* judged on the backlog: written, the soft clock starts */
    assert_int_equal(f->id_count, 2);
    int64_t started = clock_monotonic_ms();
    /* The client keeps taking bytes, so only the soft limit can cut it. */
    while (!f->gone && clock_monotonic_ms() - started < 5000) {
        f->taken++;
        event_base_loop(fx->base, EVLOOP_ONCE);
    }
    assert_true(f->gone);
    assert_int_equal(f->reason, CLOSE_SLOW_CONSUMER);
    assert_true(clock_monotonic_ms() - started >= 900);
}

static void tick__back_under_soft_limit__kept(void **state)
{
    struct fixture *fx = *state;
    struct fake_sink *f = &fx->sinks[0];
    open_session(fx, f, 0);
    publish(fx, 1);
    f->pending = SOFT_BYTES + 1;
    publish(fx, 2);
    f->pending = 0; /* the client caught up */
    session_sink_drained(&f->sink);
    bool never = false;
    run_until(fx, &never, 2);
    assert_false(f->gone);
    assert_true(f->heartbeats >= 1);
    end_all(fx);
    assert_int_equal(f->ends, 1);
    assert_int_equal(f->aborts, 0);
}

static void tick__nothing_taken_for_write_timeout__aborted(void **state)
{
    struct fixture *fx = *state;
    struct fake_sink *f = &fx->sinks[0];
    open_session(fx, f, 0);
    f->pending = 10; /* under the soft limit, but the client takes nothing */
    f->taken = 7;
    int64_t started = clock_monotonic_ms();
    assert_true(run_until(fx, &f->gone, 6));
    assert_int_equal(f->aborts, 1);
    assert_int_equal(f->reason, CLOSE_SLOW_CONSUMER);
    assert_true(clock_monotonic_ms() - started >= 900);
}

static void tick__idle_stream__heartbeats(void **state)
{
    struct fixture *fx = *state;
    struct fake_sink *f = &fx->sinks[0];
    open_session(fx, f, 0);
    bool never = false;
    run_until(fx, &never, 2);
    assert_true(f->heartbeats >= 1);
    assert_false(f->gone);
    end_all(fx);
}

static void credential_expiry__stream_ended_token_expired(void **state)
{
    struct fixture *fx = *state;
    struct fake_sink *f = &fx->sinks[0];
    open_session(fx, f, (int64_t)time(NULL) + 1);
    assert_true(run_until(fx, &f->gone, 5));
    assert_int_equal(f->ends, 1);
    assert_int_equal(f->aborts, 0);
    assert_int_equal(f->reason, CLOSE_TOKEN_EXPIRED);
}

static void done(void *arg)
{
    struct fixture *fx = arg;
    fx->shutdowns_done++;
    fx->shutdown_done = true;
}

static void sessions_shutdown__streams_end_cleanly__done_once(void **state)
{
    struct fixture *fx = *state;
    open_session(fx, &fx->sinks[0], 0);
    open_session(fx, &fx->sinks[1], 0);
    struct timeval deadline = {5, 0};
    sessions_shutdown(fx->all, &deadline, done, fx);
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(fx->sinks[i].ends, 1);
        assert_int_equal(fx->sinks[i].reason, CLOSE_SHUTDOWN);
        assert_true(run_until(fx, &fx->sinks[i].gone, 5));
    }
    assert_true(run_until(fx, &fx->shutdown_done, 5));
    assert_int_equal(fx->shutdowns_done, 1);
    /* Ending a stream that already ends adds nothing. */
    assert_int_equal(fx->sinks[0].ends + fx->sinks[0].aborts, 1);
}

static void session_discard__never_started__hub_left(void **state)
{
    struct fixture *fx = *state;
    struct session_params params = {.consumer_id = "c1"};
    struct session *s = session_new(fx->all, &params);
    assert_non_null(s);
    assert_int_equal(sessions_of_consumer(fx->all, "c1"), 1);
    session_discard(s);
    assert_int_equal(sessions_of_consumer(fx->all, "c1"), 0);
    assert_int_equal(hub_consumer_count(fx->hub), 0);
}

/* A refused transition aborts the process; run it in a child. */
static void assert_aborts(struct fixture *fx, void (*fn)(struct fixture *))
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        fn(fx);
        _exit(0);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
}

static void start_twice(struct fixture *fx)
{
    struct session *s = open_session(fx, &fx->sinks[0], 0);
    session_start(s, &fx->sinks[1].sink); /* OPEN -> OPEN */
}

static void discard_started(struct fixture *fx)
{
    struct session *s = open_session(fx, &fx->sinks[0], 0);
    session_discard(s); /* only a NEW session can be discarded */
}

static void transitions__impossible__refused(void **state)
{
    struct fixture *fx = *state;
    assert_aborts(fx, start_twice);
    assert_aborts(fx, discard_started);
}

/* A stream of two consumers: one member each, exactly the rows of both,
 * each event's id the cursor of both positions (stream_cursor.h), so the
 * out-of-order ids of different consumers resume exactly. */
static void member_write__several_consumers__composite_ids(void **state)
{
    struct fixture *fx = *state;
    struct fake_sink *f = &fx->sinks[0];
    struct consumer_set set = {0};
    assert_int_equal(consumer_set_add(&set, "c2", 2, 8), CONSUMER_SET_ADDED);
    assert_int_equal(consumer_set_add(&set, "c1", 2, 8), CONSUMER_SET_ADDED);
    consumer_set_seal(&set);
    struct session_params params = {.consumers = &set};
    struct session *s = session_new(fx->all, &params);
    assert_non_null(s);
    session_start(s, &f->sink);
    consumer_set_free(&set); /* the session keeps nothing of it */
    assert_int_equal(sessions_of_consumer(fx->all, "c1"), 1);
    assert_int_equal(sessions_of_consumer(fx->all, "c2"), 1);

    publish_to(fx, "c2", 5);
    publish_to(fx, "c3", 6); /* not followed */
    publish_to(fx, "c1", 3); /* drew its id before c2's 5, committed after */
    publish_to(fx, "c1", 3); /* a duplicate of the live path */
    assert_int_equal(f->id_count, 2);
    assert_int_equal(f->ids[0], 5);
    assert_string_equal(f->id_lines[0], "id: 5~5.0~7a620dea"); /* c1 at 0 */
    assert_int_equal(f->ids[1], 3);
    assert_string_equal(f->id_lines[1], "id: 3~0.-2~7a620dea"); /* c1 at 3, c2 at 5 */

    f->reason = CLOSE_CLIENT_GONE;
    event_active(f->gone_ev, EV_TIMEOUT, 1);
    event_base_loop(fx->base, EVLOOP_ONCE);
    assert_true(f->gone);
    assert_int_equal(sessions_of_consumer(fx->all, "c1"), 0);
    assert_int_equal(sessions_of_consumer(fx->all, "c2"), 0);
    session_release_scratch();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(session_start__open__start_written_and_counted, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(member_write__keeping_up__frames_reach_sink, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(member_write__pending_over_hard_limit__aborted_unwritten,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(tick__over_soft_limit_for_soft_seconds__aborted, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(tick__back_under_soft_limit__kept, setup, teardown),
        cmocka_unit_test_setup_teardown(tick__nothing_taken_for_write_timeout__aborted, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(tick__idle_stream__heartbeats, setup, teardown),
        cmocka_unit_test_setup_teardown(credential_expiry__stream_ended_token_expired, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(sessions_shutdown__streams_end_cleanly__done_once, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(session_discard__never_started__hub_left, setup, teardown),
        cmocka_unit_test_setup_teardown(transitions__impossible__refused, setup, teardown),
        cmocka_unit_test_setup_teardown(member_write__several_consumers__composite_ids, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
