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

/* A session's membership of one consumer's streams in the hub. */
struct session_member {
    struct hub_member hub;
    struct session *session;
    /* Joined for initial=N: its position is not known until the replay has
     * decided where it starts (it has written, or gone live). */
    bool start_pending;
};

struct session {
    struct session_member *members; /* member_count, in consumer order */
    size_t member_count;
    uint32_t consumers_tag;      /* with several members: the set's tag */
    struct session_member first; /* members[0] for a stream of one consumer */
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
    return container_of(m, struct session_member, hub)->session;
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

/* For logs: the first consumer (the count is logged beside it). */
static const char *consumer_of(const struct session *s)
{
    const struct hub_member *m = &s->members[0].hub;
    return m->consumer != NULL ? hub_consumer_id(m->consumer) : "";
}

static void members_leave(struct session *s)
{
    for (size_t i = 0; i < s->member_count; i++) {
        replay_member_leave(&s->members[i].hub);
        hub_leave(s->all->hub, &s->members[i].hub);
    }
}

static void session_free_storage(struct session *s)
{
    if (s->expiry_ev != NULL)
        event_free(s->expiry_ev);
    event_filter_free(&s->filter);
    if (s->members != &s->first)
        free(s->members);
    free(s);
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
             "session=%" PRIu64 " consumer=%s peer=%s port=%u transport=%s reason=%s age=%.3f "
             "consumers=%zu",
             s->id, consumer_of(s), peer, port, transport_kind_name(sink->ops->kind),
             close_reason_name(reason), age_seconds(s), s->member_count);
    members_leave(s);
    list_remove(&s->link);
    list_remove(&s->wheel_link);
    list_remove(&s->soft_link);
    metrics.sessions_closed[reason]++;
    all->count--;
    all->count_by_transport[sink->ops->kind]--;
    sink->session = NULL;
    session_free_storage(s);
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
    for (size_t i = 0; i < s->member_count; i++)
        replay_member_drained(&s->members[i].hub);
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

/* Scratch for composite cursors, reused across writes (loop thread only). */
static int64_t *cursor_positions;
static char *cursor_text;
static size_t cursor_capacity; /* consumers the scratch holds */

static bool cursor_scratch_reserve(size_t count)
{
    if (count <= cursor_capacity)
        return true;
    int64_t *positions = realloc(cursor_positions, count * sizeof(*positions));
    if (positions != NULL)
        cursor_positions = positions;
    char *text = realloc(cursor_text, stream_cursor_max_len(count));
    if (text != NULL)
        cursor_text = text;
    if (positions == NULL || text == NULL)
        return false;
    cursor_capacity = count;
    return true;
}

void session_release_scratch(void)
{
    free(cursor_positions);
    free(cursor_text);
    cursor_positions = NULL;
    cursor_text = NULL;
    cursor_capacity = 0;
}

/* Where a member stands, for its entry of the cursor. */
static int64_t member_position(const struct session_member *sm)
{
    if (sm->hub.cursor == HUB_CURSOR_UNSET ||
        (sm->start_pending && sm->hub.state != HUB_MEMBER_LIVE))
        return STREAM_CURSOR_NONE;
    return sm->hub.cursor;
}

/* Writes frames of one member of a stream of several consumers, each with
 * the stream's cursor after it. Returns false when out of memory. */
static bool write_with_cursors(struct session *s, struct session_member *writer,
                               struct frame *const *frames, size_t count)
{
    enum { BATCH = 64 };
    struct frame *copies[BATCH];
    size_t index = (size_t)(writer - s->members);

    if (!cursor_scratch_reserve(s->member_count))
        return false;
    writer->start_pending = false;
    for (size_t i = 0; i < s->member_count; i++)
        cursor_positions[i] = member_position(&s->members[i]);
    for (size_t done = 0; done < count;) {
        size_t n = 0;
        bool failed = false;
        for (; n < BATCH && done + n < count && !failed; n++) {
            const struct frame *f = frames[done + n];
            cursor_positions[index] = f->id;
            size_t len = stream_cursor_format(cursor_text, f->id, cursor_positions, s->member_count,
                                              s->consumers_tag);
            copies[n] = frame_with_id(f, cursor_text, len);
            failed = copies[n] == NULL;
        }
        if (failed)
            n--;
        if (n > 0)
            s->sink->ops->write_frames(s->sink, copies, n);
        for (size_t i = 0; i < n; i++)
            frame_unref(copies[i]);
        if (failed)
            return false;
        done += n;
    }
    return true;
}

static void member_write(struct hub_member *m, struct frame *const *frames, size_t count)
{
    struct session_member *sm = container_of(m, struct session_member, hub);
    struct session *s = sm->session;
    if (s->state != SESSION_OPEN)
        return;
    /* The common case, a client that keeps up: nothing pending, no limit
     * to judge, no clock to read. */
    bool keeping_up = s->soft_since_ms == 0 && output_pending(s) == 0;
    if (!keeping_up && !limits_allow_write(s, clock_monotonic_ms()))
        return;
    if (s->member_count == 1) {
        s->sink->ops->write_frames(s->sink, frames, count);
    } else if (!write_with_cursors(s, sm, frames, count)) {
        /* A frame left out would be a gap: end the stream, and the client
         * resumes from the last cursor it received. */
        log_error("stream cut: out of memory", "session=%" PRIu64, s->id);
        session_abort(s, CLOSE_WRITE_ERROR);
        return;
    }
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

/* Joins member i of s to the hub for consumer_id, from position (or live
 * with STREAM_CURSOR_NONE and no initial=N). */
static bool member_join(struct session *s, size_t i, const char *consumer_id, int64_t position)
{
    struct session_member *sm = &s->members[i];
    bool resume = position != STREAM_CURSOR_NONE;
    bool catch_up = resume || s->params.initial > 0;
    sm->session = s;
    sm->start_pending = !resume && s->params.initial > 0;
    if (!hub_join(s->all->hub, consumer_id, &sm->hub, &session_ops, catch_up,
                  resume ? position : 0))
        return false;
    if (!event_filter_empty(&s->filter))
        sm->hub.filter = &s->filter;
    s->member_count++;
    return true;
}

static bool members_join(struct session *s, const struct session_params *params)
{
    const struct consumer_set *set = params->consumers;
    if (set == NULL || set->count <= 1) {
        const char *id = set != NULL ? set->ids[0] : params->consumer_id;
        int64_t position = params->has_last_id ? params->last_id : STREAM_CURSOR_NONE;
        if (set != NULL && params->positions != NULL)
            position = params->positions[0];
        s->members = &s->first;
        return member_join(s, 0, id, position);
    }
    s->members = calloc(set->count, sizeof(*s->members));
    if (s->members == NULL)
        return false;
    s->consumers_tag = set->tag;
    for (size_t i = 0; i < set->count; i++) {
        int64_t position = params->positions != NULL ? params->positions[i] : STREAM_CURSOR_NONE;
        if (!member_join(s, i, set->ids[i], position))
            return false;
    }
    return true;
}

/* Whether any member resumes from a position the client sent. */
static bool resumes(const struct session_params *params)
{
    if (params->consumers == NULL)
        return params->has_last_id;
    if (params->positions == NULL)
        return false;
    for (size_t i = 0; i < params->consumers->count; i++)
        if (params->positions[i] != STREAM_CURSOR_NONE)
            return true;
    return false;
}

struct session *session_new(struct sessions *all, const struct session_params *params)
{
    const char *first = params->consumers != NULL ? params->consumers->ids[0] : params->consumer_id;
    size_t consumer_len = strlen(first) + 1;
    size_t forwarded_len = params->forwarded_for != NULL ? strlen(params->forwarded_for) + 1 : 0;
    struct session *s = calloc(1, sizeof(*s) + consumer_len + forwarded_len);
    if (s == NULL)
        return NULL;
    s->all = all;
    s->state = SESSION_NEW;
    s->params = *params;
    memcpy(s->strings, first, consumer_len);
    s->params.consumer_id = s->strings;
    s->params.consumers = NULL; /* the hub keeps the ids; only these are kept */
    s->params.positions = NULL;
    s->params.has_last_id = resumes(params);
    if (forwarded_len > 0) {
        memcpy(s->strings + consumer_len, params->forwarded_for, forwarded_len);
        s->params.forwarded_for = s->strings + consumer_len;
    }
    list_init(&s->link);
    list_init(&s->wheel_link);
    list_init(&s->soft_link);
    if (s->params.has_last_id)
        s->params.initial = 0;
    s->params.filter = NULL;
    s->members = &s->first;
    if ((params->filter != NULL && !event_filter_copy(&s->filter, params->filter)) ||
        (params->expires_at != 0 && !arm_expiry(s, params->expires_at)) ||
        !members_join(s, params)) {
        session_discard(s);
        return NULL;
    }
    if (!event_filter_empty(&s->filter))
        s->params.filter = &s->filter;
    return s;
}

void session_discard(struct session *s)
{
    if (s->state != SESSION_NEW)
        abort();
    members_leave(s);
    session_free_storage(s);
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
    if (s->params.has_last_id && s->member_count == 1)
        log_info("session opened",
                 "session=%" PRIu64 " consumer=%s peer=%s port=%u transport=%s forwarded_for=%s "
                 "last_event_id=%" PRId64,
                 s->id, s->params.consumer_id, peer, port, transport_kind_name(sink->ops->kind),
                 forwarded, s->members[0].hub.cursor);
    else
        log_info("session opened",
                 "session=%" PRIu64 " consumer=%s peer=%s port=%u transport=%s forwarded_for=%s "
                 "consumers=%zu resume=%s",
                 s->id, s->params.consumer_id, peer, port, transport_kind_name(sink->ops->kind),
                 forwarded, s->member_count, s->params.has_last_id ? "yes" : "no");
    /* Members joined CATCHING_UP at a position, or for initial=N, replay;
     * those joined live wait for nothing (or, before the ingest's first
     * position, for its resync). */
    struct replay_start start = {s->params.initial, s->params.filter};
    for (size_t i = 0; i < s->member_count; i++) {
        struct session_member *sm = &s->members[i];
        if (sm->hub.state == HUB_MEMBER_CATCHING_UP && sm->hub.cursor != HUB_CURSOR_UNSET)
            replay_catch_up(all->replay, &sm->hub, &start);
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
