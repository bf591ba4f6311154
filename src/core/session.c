/*
 * Sessions, transport-neutral.
 *
 * The fan-out path is member_write(): for a client that keeps up (nothing
 * pending, not over the soft limit) it reads no clock and judges no limit,
 * and hands the frames straight to the sink. Everything else (heartbeats,
 * the soft limit's clock, expiry) runs from timers.
 */
#include "core/session.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ops/log.h"
#include "util/clock.h"

enum session_state { SESSION_NEW, SESSION_OPEN, SESSION_ENDING, SESSION_CLOSING, SESSION_GONE };

static const char *const state_names[] = {"new", "open", "ending", "closing", "gone"};

/* allowed[from][to] */
static const bool allowed[5][5] = {
    [SESSION_NEW] = {[SESSION_OPEN] = true},
    [SESSION_OPEN] = {[SESSION_ENDING] = true, [SESSION_CLOSING] = true, [SESSION_GONE] = true},
    [SESSION_ENDING] = {[SESSION_CLOSING] = true, [SESSION_GONE] = true},
    [SESSION_CLOSING] = {[SESSION_GONE] = true},
};

struct session {
    struct hub_member member;
    struct sessions *all;
    struct session_sink *sink;
    struct list_node link;       /* all->open */
    struct list_node wheel_link; /* heartbeat slot */
    struct list_node soft_link;  /* all->over_soft while above the soft limit */
    uint64_t id;
    enum session_state state;
    int64_t soft_since_ms;  /* monotonic; 0 while at or below the soft limit */
    int64_t stall_since_ms; /* monotonic; 0 while the client takes bytes */
    uint64_t last_taken;
    struct timeval opened_at;
    struct event *expiry_ev; /* only for streams opened with an expiring credential */
    struct session_params params;
    struct event_filter filter;
    char strings[]; /* consumer id and forwarded_for, until started */
};

struct sessions {
    struct event_base *base;
    struct hub *hub;
    struct replay *replay;
    struct session_settings settings;
    struct list_node open;
    size_t count;
    size_t count_by_transport[TRANSPORT_KIND_COUNT];
    struct list_node *wheel;
    size_t wheel_slots;
    size_t tick;
    size_t next_slot;
    struct list_node over_soft;
    struct event *tick_ev;
    struct event *deadline_ev;
    struct event *shutdown_ev;
    uint64_t next_id;
    bool shutting_down;
    void (*shutdown_done)(void *);
    void *shutdown_arg;
};

static void session_enter(struct session *s, enum session_state to)
{
    if (!allowed[s->state][to]) {
        log_error("session: impossible transition", "session=%" PRIu64 " from=%s to=%s", s->id,
                  state_names[s->state], state_names[to]);
        abort();
    }
    s->state = to;
}

static void member_write(struct hub_member *m, struct frame *const *frames, size_t count);
static size_t member_pending(const struct hub_member *m);

static const struct hub_member_ops session_ops = {
    .write = member_write,
    .pending = member_pending,
};

static struct session *session_of(const struct hub_member *m)
{
    return container_of(m, struct session, member);
}

static size_t output_pending(const struct session *s)
{
    return s->sink->ops->pending(s->sink);
}

static size_t member_pending(const struct hub_member *m)
{
    const struct session *s = session_of(m);
    return s->state == SESSION_OPEN ? output_pending(s) : 0;
}

static double age_seconds(const struct session *s)
{
    struct timeval now, age;
    event_base_gettimeofday_cached(s->all->base, &now);
    evutil_timersub(&now, &s->opened_at, &age);
    return (double)age.tv_sec + (double)age.tv_usec / 1e6;
}

static const char *consumer_of(const struct session *s)
{
    return s->member.consumer != NULL ? hub_consumer_id(s->member.consumer) : "";
}

/* Requests an abrupt end; the sink reports gone later. */
static void session_abort(struct session *s, enum close_reason reason)
{
    if (s->state != SESSION_OPEN && s->state != SESSION_ENDING)
        return;
    session_enter(s, SESSION_CLOSING);
    list_remove(&s->wheel_link);
    list_remove(&s->soft_link);
    s->sink->ops->abort(s->sink, reason);
}

/* Requests a clean end; the sink reports gone once it is written. */
static void session_end(struct session *s, enum close_reason reason)
{
    if (s->state != SESSION_OPEN)
        return;
    session_enter(s, SESSION_ENDING);
    list_remove(&s->wheel_link);
    list_remove(&s->soft_link);
    s->sink->ops->end(s->sink, reason);
}

void session_sink_gone(struct session_sink *sink, enum close_reason reason)
{
    struct session *s = sink->session;
    struct sessions *all = s->all;
    unsigned port = 0;
    const char *peer = sink->ops->peer(sink, &port);

    session_enter(s, SESSION_GONE);
    log_info("session closed",
             "session=%" PRIu64 " consumer=%s peer=%s port=%u transport=%s reason=%s age=%.3f",
             s->id, consumer_of(s), peer, port, transport_kind_name(sink->ops->kind),
             close_reason_name(reason), age_seconds(s));
    replay_member_leave(&s->member);
    hub_leave(all->hub, &s->member);
    list_remove(&s->link);
    list_remove(&s->wheel_link);
    list_remove(&s->soft_link);
    metrics.sessions_closed[reason]++;
    all->count--;
    all->count_by_transport[sink->ops->kind]--;
    if (s->expiry_ev != NULL)
        event_free(s->expiry_ev);
    sink->session = NULL;
    event_filter_free(&s->filter);
    free(s);
    if (all->shutting_down && all->count == 0)
        event_active(all->shutdown_ev, EV_TIMEOUT, 1);
}

/* A slow consumer is logged, within a rate limit: many clients can stall
 * at once. */
static struct log_limit slow_consumer_logs;

static void soft_limit_clear(struct session *s)
{
    s->soft_since_ms = 0;
    list_remove(&s->soft_link);
}

void session_sink_drained(struct session_sink *sink)
{
    struct session *s = sink->session;
    if (s == NULL || s->state != SESSION_OPEN)
        return;
    soft_limit_clear(s);
    replay_member_drained(&s->member);
}

/* Aborts a session that stayed above the soft limit for soft_seconds.
 * Returns false when the session closes. */
static bool soft_limit_check(struct session *s, int64_t now_ms)
{
    const struct session_settings *set = &s->all->settings;
    int64_t over_ms = now_ms - s->soft_since_ms;
    if (s->soft_since_ms == 0 || over_ms < (int64_t)set->soft_seconds * 1000)
        return true;
    unsigned dropped;
    if (log_limit_allow(&slow_consumer_logs, &dropped))
        log_warn("slow consumer over soft limit",
                 "session=%" PRIu64 " pending=%zu seconds=%.3f dropped=%u", s->id,
                 output_pending(s), (double)over_ms / 1000.0, dropped);
    session_abort(s, CLOSE_SLOW_CONSUMER);
    return false;
}

/* Judged on the backlog before a write, so one large event can always be
 * written to a client that keeps up. Returns false when the session closes. */
static bool limits_allow_write(struct session *s, int64_t now_ms)
{
    const struct session_settings *set = &s->all->settings;
    size_t pending = output_pending(s);
    if (pending > set->hard_bytes) {
        unsigned dropped;
        if (log_limit_allow(&slow_consumer_logs, &dropped))
            log_warn("slow consumer over hard limit",
                     "session=%" PRIu64 " pending=%zu limit=%zu dropped=%u", s->id, pending,
                     set->hard_bytes, dropped);
        session_abort(s, CLOSE_SLOW_CONSUMER);
        return false;
    }
    if (pending <= set->soft_bytes) {
        soft_limit_clear(s);
        return true;
    }
    return soft_limit_check(s, now_ms);
}

static void limits_note_write(struct session *s)
{
    if (s->soft_since_ms != 0 || output_pending(s) <= s->all->settings.soft_bytes)
        return;
    s->soft_since_ms = clock_monotonic_ms();
    list_append(&s->all->over_soft, &s->soft_link);
}

static void member_write(struct hub_member *m, struct frame *const *frames, size_t count)
{
    struct session *s = session_of(m);
    if (s->state != SESSION_OPEN)
        return;
    /* The common case, a client that keeps up: nothing pending, no limit
     * to judge, no clock to read. */
    bool keeping_up = s->soft_since_ms == 0 && output_pending(s) == 0;
    if (!keeping_up && !limits_allow_write(s, clock_monotonic_ms()))
        return;
    s->sink->ops->write_frames(s->sink, frames, count);
    metrics.events_delivered += count;
    if (s->state == SESSION_OPEN)
        limits_note_write(s);
}

/* Pending output of which the client took nothing since the last visit
 * (every heartbeat_seconds) starts the no-progress clock; the stream is cut
 * once that lasts write_timeout_seconds. Returns false when it closes. */
static bool progress_check(struct session *s, int64_t now_ms)
{
    uint64_t taken = s->sink->ops->taken(s->sink);
    if (output_pending(s) == 0 || taken != s->last_taken) {
        s->last_taken = taken;
        s->stall_since_ms = 0;
        return true;
    }
    if (s->stall_since_ms == 0) {
        s->stall_since_ms = now_ms;
        return true;
    }
    if (now_ms - s->stall_since_ms < (int64_t)s->all->settings.write_timeout_seconds * 1000)
        return true;
    unsigned dropped;
    if (log_limit_allow(&slow_consumer_logs, &dropped))
        log_warn("slow consumer took nothing",
                 "session=%" PRIu64 " pending=%zu seconds=%.3f dropped=%u", s->id,
                 output_pending(s), (double)(now_ms - s->stall_since_ms) / 1000.0, dropped);
    session_abort(s, CLOSE_SLOW_CONSUMER);
    return false;
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct sessions *all = arg;
    int64_t now = clock_monotonic_ms();
    int64_t unix_time = (int64_t)time(NULL);
    (void)fd;
    (void)what;

    all->tick = (all->tick + 1) % all->wheel_slots;
    struct list_node *slot = &all->wheel[all->tick];
    for (struct list_node *n = slot->next, *next; n != slot; n = next) {
        next = n->next;
        struct session *s = container_of(n, struct session, wheel_link);
        if (s->state == SESSION_OPEN && progress_check(s, now) && limits_allow_write(s, now)) {
            s->sink->ops->heartbeat(s->sink, unix_time);
            limits_note_write(s);
        }
    }
    /* Only the soft limit's clock runs here: the hard limit is judged when
     * something is about to be added, so a large replay page that a client
     * is reading steadily is never cut for its own size. */
    for (struct list_node *n = all->over_soft.next, *next; n != &all->over_soft; n = next) {
        next = n->next;
        struct session *s = container_of(n, struct session, soft_link);
        if (s->state == SESSION_OPEN)
            soft_limit_check(s, now);
    }
}

/* The credential that opened the stream has expired: end it cleanly; the
 * client reconnects with a fresh one (and Last-Event-ID, losing nothing). */
static void on_credential_expired(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    session_end(arg, CLOSE_TOKEN_EXPIRED);
}

static bool arm_expiry(struct session *s, int64_t expires_at)
{
    struct timeval now;
    event_base_gettimeofday_cached(s->all->base, &now);
    int64_t left = expires_at - (int64_t)now.tv_sec;
    struct timeval delay = {left > 0 ? (time_t)left : 0, 0};
    s->expiry_ev = evtimer_new(s->all->base, on_credential_expired, s);
    return s->expiry_ev != NULL && evtimer_add(s->expiry_ev, &delay) == 0;
}

struct session *session_new(struct sessions *all, const struct session_params *params)
{
    size_t consumer_len = strlen(params->consumer_id) + 1;
    size_t forwarded_len = params->forwarded_for != NULL ? strlen(params->forwarded_for) + 1 : 0;
    struct session *s = calloc(1, sizeof(*s) + consumer_len + forwarded_len);
    if (s == NULL)
        return NULL;
    s->all = all;
    s->state = SESSION_NEW;
    s->params = *params;
    memcpy(s->strings, params->consumer_id, consumer_len);
    s->params.consumer_id = s->strings;
    if (forwarded_len > 0) {
        memcpy(s->strings + consumer_len, params->forwarded_for, forwarded_len);
        s->params.forwarded_for = s->strings + consumer_len;
    }
    list_init(&s->link);
    list_init(&s->wheel_link);
    list_init(&s->soft_link);
    if (params->has_last_id)
        s->params.initial = 0;
    s->params.filter = NULL;
    bool catch_up = params->has_last_id || s->params.initial > 0;
    if ((params->filter != NULL && !event_filter_copy(&s->filter, params->filter)) ||
        (params->expires_at != 0 && !arm_expiry(s, params->expires_at)) ||
        !hub_join(all->hub, s->params.consumer_id, &s->member, &session_ops, catch_up,
                  params->has_last_id ? params->last_id : 0)) {
        session_discard(s);
        return NULL;
    }
    if (!event_filter_empty(&s->filter)) {
        s->params.filter = &s->filter;
        s->member.filter = &s->filter;
    }
    return s;
}

void session_discard(struct session *s)
{
    if (s->state != SESSION_NEW)
        abort();
    hub_leave(s->all->hub, &s->member);
    if (s->expiry_ev != NULL)
        event_free(s->expiry_ev);
    event_filter_free(&s->filter);
    free(s);
}

void session_start(struct session *s, struct session_sink *sink)
{
    struct sessions *all = s->all;
    unsigned port = 0;

    s->sink = sink;
    sink->session = s;
    s->id = ++all->next_id;
    session_enter(s, SESSION_OPEN);
    event_base_gettimeofday_cached(all->base, &s->opened_at);
    list_append(&all->open, &s->link);
    list_append(&all->wheel[all->next_slot], &s->wheel_link);
    all->next_slot = (all->next_slot + 1) % all->wheel_slots;
    all->count++;
    all->count_by_transport[sink->ops->kind]++;
    metrics.sessions_opened++;
    sink->ops->start(sink, all->settings.retry_ms);

    const char *peer = sink->ops->peer(sink, &port);
    const char *forwarded = s->params.forwarded_for != NULL ? s->params.forwarded_for : "-";
    if (s->params.has_last_id)
        log_info("session opened",
                 "session=%" PRIu64 " consumer=%s peer=%s port=%u transport=%s forwarded_for=%s "
                 "last_event_id=%" PRId64,
                 s->id, s->params.consumer_id, peer, port, transport_kind_name(sink->ops->kind),
                 forwarded, s->params.last_id);
    else
        log_info("session opened",
                 "session=%" PRIu64 " consumer=%s peer=%s port=%u transport=%s forwarded_for=%s",
                 s->id, s->params.consumer_id, peer, port, transport_kind_name(sink->ops->kind),
                 forwarded);
    if (s->params.has_last_id || s->params.initial > 0) {
        struct replay_start start = {s->params.initial, s->params.filter};
        replay_catch_up(all->replay, &s->member, &start);
    }
}

size_t sessions_count(const struct sessions *all)
{
    return all->count;
}

size_t sessions_count_by_transport(const struct sessions *all, enum transport_kind kind)
{
    return all->count_by_transport[kind];
}

size_t sessions_of_consumer(const struct sessions *all, const char *consumer_id)
{
    return hub_consumer_member_count(all->hub, consumer_id, strlen(consumer_id));
}

static void on_shutdown_deadline(evutil_socket_t fd, short what, void *arg)
{
    struct sessions *all = arg;
    (void)fd;
    (void)what;
    log_warn("shutdown deadline reached", "sessions_left=%zu", all->count);
    for (struct list_node *n = all->open.next, *next; n != &all->open; n = next) {
        next = n->next;
        session_abort(container_of(n, struct session, link), CLOSE_SHUTDOWN);
    }
}

static void on_shutdown_done(evutil_socket_t fd, short what, void *arg)
{
    struct sessions *all = arg;
    (void)fd;
    (void)what;
    event_del(all->deadline_ev);
    if (all->shutdown_done != NULL) {
        void (*done)(void *) = all->shutdown_done;
        all->shutdown_done = NULL;
        done(all->shutdown_arg);
    }
}

void sessions_shutdown(struct sessions *all, const struct timeval *deadline, void (*done)(void *),
                       void *arg)
{
    all->shutting_down = true;
    all->shutdown_done = done;
    all->shutdown_arg = arg;
    log_info("ending streams", "sessions=%zu", all->count);
    if (all->count == 0) {
        event_active(all->shutdown_ev, EV_TIMEOUT, 1);
        return;
    }
    for (struct list_node *n = all->open.next; n != &all->open; n = n->next)
        session_end(container_of(n, struct session, link), CLOSE_SHUTDOWN);
    evtimer_add(all->deadline_ev, deadline);
}

struct sessions *sessions_new(struct event_base *base, struct hub *hub, struct replay *replay,
                              const struct session_settings *settings)
{
    struct timeval one_second = {1, 0};
    struct sessions *all = calloc(1, sizeof(*all));
    if (all == NULL)
        return NULL;
    all->base = base;
    all->hub = hub;
    all->replay = replay;
    all->settings = *settings;
    list_init(&all->open);
    list_init(&all->over_soft);
    all->wheel_slots = (size_t)settings->heartbeat_seconds;
    all->wheel = calloc(all->wheel_slots, sizeof(*all->wheel));
    all->tick_ev = event_new(base, -1, EV_PERSIST, on_tick, all);
    all->deadline_ev = evtimer_new(base, on_shutdown_deadline, all);
    all->shutdown_ev = event_new(base, -1, 0, on_shutdown_done, all);
    if (all->wheel == NULL || all->tick_ev == NULL || all->deadline_ev == NULL ||
        all->shutdown_ev == NULL) {
        sessions_free(all);
        return NULL;
    }
    for (size_t i = 0; i < all->wheel_slots; i++)
        list_init(&all->wheel[i]);
    event_add(all->tick_ev, &one_second);
    return all;
}

void sessions_free(struct sessions *all)
{
    if (all == NULL)
        return;
    if (all->count > 0)
        log_error("sessions freed with streams open", "sessions=%zu", all->count);
    if (all->tick_ev != NULL)
        event_free(all->tick_ev);
    if (all->deadline_ev != NULL)
        event_free(all->deadline_ev);
    if (all->shutdown_ev != NULL)
        event_free(all->shutdown_ev);
    free(all->wheel);
    free(all);
}
