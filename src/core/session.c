/*
 * SSE sessions on top of evhttp.
 *
 * evhttp ownership rules (libevent 2.1) shape this file:
 * - While a stream is open the request belongs to its connection. If the
 *   client goes away, evhttp detaches the request from the connection and
 *   then frees the connection, calling our close callback: in that case
 *   (evhttp_request_get_connection(req) == NULL) we must free the request.
 * - When we end a stream ourselves, we either finish the reply (graceful:
 *   evhttp frees the request after the last byte, calling on_complete) or
 *   free the connection (abrupt: the request goes with it). In both cases the
 *   close callback is cleared first so it cannot run on a freed session.
 * - evhttp's own timeouts would kill a quiet stream; the stream's socket gets
 *   only a write timeout (no progress while output is pending), set after
 *   the reply starts.
 *
 * A session is in one of three states: OPEN (streaming), CLOSING (abrupt end
 * requested, carried out by close_ev) and ENDING (graceful end in progress).
 * Only OPEN sessions write. Every path out goes through session_destroy().
 */
#include "core/session.h"

#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>

#include "ops/log.h"
#include "core/sse.h"

/* Frames at least this large are shared by reference instead of copied;
 * below it a copy into the output buffer is cheaper than the bookkeeping. */
#define SHARE_BY_REFERENCE_BYTES 256
/* Unread request bytes kept per stream (clients have nothing to send). */
#define INPUT_HIGH_WATERMARK (64 * 1024)
#define MAX_WRITE_BYTES_PER_CALL (256 * 1024)
/* Pieces of one write sent straight to the socket; longer runs (replay
 * pages) go through the output buffer, where one flush writes them all. */
#define MAX_DIRECT_PIECES 64

enum session_state { SESSION_OPEN, SESSION_CLOSING, SESSION_ENDING };

/* A run of bytes to send; frame (when set) keeps them alive if queued. */
struct piece {
    const char *bytes;
    size_t len;
    struct frame *frame;
};

struct session {
    struct hub_member member;
    struct sessions *all;
    struct list_node link;       /* all->open */
    struct list_node wheel_link; /* heartbeat slot */
    struct list_node soft_link;  /* all->over_soft while above the soft limit */
    struct list_node close_link; /* all->closing while CLOSING */
    struct evhttp_request *req;
    struct evhttp_connection *evcon;
    /* The connection's socket and output, fixed for its life; kept here
     * because the libevent getters take a lock on every delivery. */
    evutil_socket_t fd;
    struct evbuffer *out;
    uint64_t id;
    enum session_state state;
    enum close_reason reason;
    int64_t soft_since_ms; /* monotonic; 0 while at or below the soft limit */
    bool chunked;          /* HTTP/1.1 chunked reply; HTTP/1.0 gets raw bytes */
    struct timeval opened_at;
    struct event *expiry_ev; /* only for streams opened with an expiring credential */
};

struct sessions {
    struct event_base *base;
    struct hub *hub;
    struct replay *replay;
    struct session_settings settings;
    struct list_node open;
    size_t count;
    struct list_node *wheel;
    size_t wheel_slots;
    size_t tick;
    size_t next_slot;
    struct list_node over_soft;
    struct list_node closing;
    struct event *tick_ev;
    struct event *close_ev;
    struct event *deadline_ev;
    struct event *shutdown_ev;
    struct evbuffer *scratch;
    uint64_t next_id;
    bool shutting_down;
    void (*shutdown_done)(void *);
    void *shutdown_arg;
};

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
    return evbuffer_get_length(s->out);
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

static void session_destroy(struct session *s, enum close_reason reason)
{
    struct sessions *all = s->all;
    char *peer = NULL;
    ev_uint16_t port = 0;

    if (s->evcon != NULL)
        evhttp_connection_get_peer(s->evcon, &peer, &port);
    log_info("session closed", "session=%" PRIu64 " consumer=%s peer=%s port=%u reason=%s age=%.3f",
             s->id, s->member.consumer != NULL ? hub_consumer_id(s->member.consumer) : "",
             peer != NULL ? peer : "", (unsigned)port, close_reason_name(reason), age_seconds(s));
    replay_member_leave(&s->member);
    hub_leave(all->hub, &s->member);
    list_remove(&s->link);
    list_remove(&s->wheel_link);
    list_remove(&s->soft_link);
    list_remove(&s->close_link);
    metrics.sessions_closed[reason]++;
    all->count--;
    if (s->expiry_ev != NULL)
        event_free(s->expiry_ev);
    free(s);
    if (all->shutting_down && all->count == 0)
        event_active(all->shutdown_ev, EV_TIMEOUT, 1);
}

/* Requests an abrupt end; close_ev carries it out from the loop. */
static void session_close(struct session *s, enum close_reason reason)
{
    if (s->state == SESSION_CLOSING)
        return;
    s->state = SESSION_CLOSING;
    s->reason = reason;
    list_append(&s->all->closing, &s->close_link);
    event_active(s->all->close_ev, EV_TIMEOUT, 1);
}

static void on_close_requested(evutil_socket_t fd, short what, void *arg)
{
    struct sessions *all = arg;
    struct list_node *n;
    (void)fd;
    (void)what;
    while ((n = list_pop(&all->closing)) != NULL) {
        struct session *s = container_of(n, struct session, close_link);
        struct evhttp_connection *evcon = s->evcon;
        evhttp_connection_set_closecb(evcon, NULL, NULL);
        session_destroy(s, s->reason);
        evhttp_connection_free(evcon); /* frees the request too */
    }
}

/* evhttp: the connection is going away (client gone, write error or
 * timeout, or the server being freed). */
static void on_connection_close(struct evhttp_connection *evcon, void *arg)
{
    struct session *s = arg;
    enum close_reason reason = CLOSE_CLIENT_GONE;
    (void)evcon;

    if (evhttp_request_get_connection(s->req) == NULL)
        evhttp_request_free(s->req); /* detached by evhttp: ours to free */
    if (s->state == SESSION_CLOSING)
        reason = s->reason;
    else if (s->state == SESSION_ENDING)
        reason = s->reason;
    session_destroy(s, reason);
}

/* evhttp: the graceful end was fully written; evhttp frees the request and
 * may keep or close the connection, so our close callback must go. */
static void on_reply_complete(struct evhttp_request *req, void *arg)
{
    struct session *s = arg;
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    if (evcon != NULL)
        evhttp_connection_set_closecb(evcon, NULL, NULL);
    session_destroy(s, s->reason);
}

/* Monotonic milliseconds, never 0: the soft limit's clock must not jump
 * with the wall clock, and a second's granularity would cut a client that
 * crossed the limit a moment before the second turned. */
static int64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + 1;
}

static void soft_limit_clear(struct session *s)
{
    s->soft_since_ms = 0;
    list_remove(&s->soft_link);
}

/* Closes a session that stayed above the soft limit for soft_seconds.
 * Returns false when the session closes. */
static bool soft_limit_check(struct session *s, int64_t now_ms)
{
    const struct session_settings *set = &s->all->settings;
    int64_t over_ms = now_ms - s->soft_since_ms;
    if (s->soft_since_ms == 0 || over_ms < (int64_t)set->soft_seconds * 1000)
        return true;
    log_warn("slow consumer over soft limit", "session=%" PRIu64 " pending=%zu seconds=%.3f", s->id,
             output_pending(s), (double)over_ms / 1000.0);
    session_close(s, CLOSE_SLOW_CONSUMER);
    return false;
}

/* Judged on the backlog before a write, so one large event can always be
 * written to a client that keeps up. Returns false when the session closes. */
static bool limits_allow_write(struct session *s, int64_t now_ms)
{
    const struct session_settings *set = &s->all->settings;
    size_t pending = output_pending(s);
    if (pending > set->hard_bytes) {
        log_warn("slow consumer over hard limit", "session=%" PRIu64 " pending=%zu limit=%zu",
                 s->id, pending, set->hard_bytes);
        session_close(s, CLOSE_SLOW_CONSUMER);
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
    s->soft_since_ms = monotonic_ms();
    list_append(&s->all->over_soft, &s->soft_link);
}

/* libevent keeps an emptied buffer's last chain (about 1 KiB) for reuse.
 * An idle stream has thousands of siblings and nothing to buffer, so the
 * memory is worth more than the reuse: draining zero bytes from an empty
 * buffer frees its chains. */
static void release_empty_chains(struct evbuffer *buf)
{
    if (evbuffer_get_length(buf) == 0)
        evbuffer_drain(buf, 0);
}

static void on_drained(struct evhttp_connection *evcon, void *arg)
{
    struct session *s = arg;
    (void)evcon;
    if (s->state != SESSION_OPEN)
        return;
    release_empty_chains(s->out);
    soft_limit_clear(s);
    replay_member_drained(&s->member);
}

static void unref_frame(const void *data, size_t len, void *extra)
{
    (void)data;
    (void)len;
    frame_unref(extra);
}

/* Appends bytes to the connection's output; a slice of a large frame is
 * shared by reference instead of copied. */
static void append_output(struct evbuffer *out, const char *bytes, size_t len, struct frame *f)
{
    if (len == 0)
        return;
    if (f != NULL && len >= SHARE_BY_REFERENCE_BYTES) {
        if (evbuffer_add_reference(out, bytes, len, unref_frame, frame_ref(f)) == 0)
            return;
        frame_unref(f); /* the reference was not taken */
    }
    evbuffer_add(out, bytes, len);
}

/* Writes "<len in hex>\r\n" to out (at least 19 bytes) and returns its
 * length. Written out by hand: snprintf was half of the user-space
 * instructions per delivery in the fan-out (callgrind, bench/RESULTS.md). */
static size_t chunk_head(char *out, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    char digits[16];
    size_t n = 0;
    do {
        digits[n++] = hex[len & 0xf];
        len >>= 4;
    } while (len != 0);
    for (size_t i = 0; i < n; i++)
        out[i] = digits[n - 1 - i];
    out[n] = '\r';
    out[n + 1] = '\n';
    return n + 2;
}

/* Sends pieces as one HTTP chunk (or raw, for an HTTP/1.0 client).
 *
 * When nothing is waiting in the connection's output, the pieces go to the
 * kernel at once in one sendmsg(): one system call per delivery instead of
 * the poll-write-poll round trip of handing them to the bufferevent. What
 * the socket does not take is appended to the output, which the bufferevent
 * drains as the socket allows and which then calls on_drained (installed as
 * the connection's write callback by the stream's first chunk). A send
 * error is left for the bufferevent to find on its own write. */
static size_t emit(struct session *s, const struct piece *pieces, size_t count)
{
    struct evbuffer *out = s->out;
    struct iovec iov[MAX_DIRECT_PIECES + 2];
    char head[24];
    size_t body = 0, n = 0;

    for (size_t i = 0; i < count; i++)
        body += pieces[i].len;
    if (body == 0)
        return 0;
    size_t head_len = s->chunked ? chunk_head(head, body) : 0;
    size_t tail_len = s->chunked ? 2 : 0;
    size_t sent = 0;

    if (evbuffer_get_length(out) == 0 && count <= MAX_DIRECT_PIECES) {
        iov[n++] = (struct iovec){head, head_len};
        for (size_t i = 0; i < count; i++)
            iov[n++] = (struct iovec){(void *)pieces[i].bytes, pieces[i].len};
        iov[n++] = (struct iovec){"\r\n", tail_len};
        struct msghdr msg = {.msg_iov = iov, .msg_iovlen = n};
        ssize_t r = sendmsg(s->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
        sent = r > 0 ? (size_t)r : 0;
        if (sent == head_len + body + tail_len)
            return body;
    }

    /* Append what was not sent, skipping the first `sent` bytes. */
    size_t skip = sent;
    size_t take = skip < head_len ? head_len - skip : 0;
    append_output(out, head + head_len - take, take, NULL);
    skip = skip > head_len ? skip - head_len : 0;
    for (size_t i = 0; i < count; i++) {
        size_t off = skip < pieces[i].len ? skip : pieces[i].len;
        append_output(out, pieces[i].bytes + off, pieces[i].len - off, pieces[i].frame);
        skip -= off;
    }
    append_output(out, "\r\n" + (skip < tail_len ? skip : tail_len),
                  tail_len - (skip < tail_len ? skip : tail_len), NULL);
    return body;
}

static void member_write(struct hub_member *m, struct frame *const *frames, size_t count)
{
    struct session *s = session_of(m);
    struct piece direct[MAX_DIRECT_PIECES];
    struct piece *pieces = count <= MAX_DIRECT_PIECES ? direct : malloc(count * sizeof(*pieces));
    /* The common case, a client that keeps up: nothing pending, no limit
     * to judge, no clock to read. */
    bool keeping_up = s->state == SESSION_OPEN && s->soft_since_ms == 0 && output_pending(s) == 0;

    if (s->state != SESSION_OPEN || (!keeping_up && !limits_allow_write(s, monotonic_ms()))) {
        if (pieces != direct)
            free(pieces);
        return;
    }
    if (pieces == NULL) {
        /* Without memory for the list the stream cannot stay exact: end it,
         * the client resumes with Last-Event-ID. */
        log_error("cannot write events: out of memory", "session=%" PRIu64, s->id);
        session_close(s, CLOSE_WRITE_ERROR);
        return;
    }
    for (size_t i = 0; i < count; i++)
        pieces[i] = (struct piece){frames[i]->bytes, frames[i]->len, frames[i]};
    metrics.bytes_written += emit(s, pieces, count);
    metrics.events_delivered += count;
    if (pieces != direct)
        free(pieces);
    limits_note_write(s);
}

static void write_text(struct session *s, const char *text, size_t len)
{
    struct piece piece = {text, len, NULL};
    metrics.bytes_written += emit(s, &piece, 1);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct sessions *all = arg;
    char text[64], line[80];
    int64_t now = monotonic_ms();
    (void)fd;
    (void)what;

    snprintf(text, sizeof(text), "heartbeat %lld", (long long)time(NULL));
    size_t len = sse_write_comment(line, sizeof(line), text);

    all->tick = (all->tick + 1) % all->wheel_slots;
    struct list_node *slot = &all->wheel[all->tick];
    for (struct list_node *n = slot->next, *next; n != slot; n = next) {
        next = n->next;
        struct session *s = container_of(n, struct session, wheel_link);
        if (s->state == SESSION_OPEN && limits_allow_write(s, now)) {
            write_text(s, line, len);
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

static void tune_socket(struct session *s)
{
    struct bufferevent *bev = evhttp_connection_get_bufferevent(s->evcon);
    evutil_socket_t fd = s->fd;
    int on = 1;
    unsigned user_timeout_ms = (unsigned)s->all->settings.write_timeout_seconds * 1000u;
    struct timeval write_timeout = {s->all->settings.write_timeout_seconds, 0};

    /* Events are small and latency matters: no Nagle delay. A peer that
     * vanished without a FIN is dropped once data stays unacknowledged for
     * the write timeout. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
    setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout_ms, sizeof(user_timeout_ms));
    bufferevent_set_timeouts(bev, NULL, &write_timeout);
    bufferevent_setwatermark(bev, EV_READ, 0, INPUT_HIGH_WATERMARK);
    /* libevent writes at most 16 KiB per call by default: a replay page
     * would then take a dozen trips through the event loop, each with its
     * own poll and write. */
    bufferevent_set_max_single_write(bev, MAX_WRITE_BYTES_PER_CALL);
    /* Autotuning lets the kernel hold up to tcp_wmem's maximum (4 MiB by
     * default) for a client that stopped reading, before anything is
     * pending here where the slow-consumer limits see it. A fixed buffer
     * bounds that kernel memory per stream and lets the limits act sooner. */
    int sndbuf = s->all->settings.socket_buffer_bytes;
    if (sndbuf > 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
}

static void session_end(struct session *s, enum close_reason reason);

/* The credential that opened the stream has expired: end it cleanly; the
 * client reconnects with a fresh one (and Last-Event-ID, losing nothing). */
static void on_credential_expired(evutil_socket_t fd, short what, void *arg)
{
    struct session *s = arg;
    static const char notice[] = ": credential expired\n\n";
    (void)fd;
    (void)what;
    if (s->state != SESSION_OPEN)
        return;
    write_text(s, notice, sizeof(notice) - 1);
    session_end(s, CLOSE_TOKEN_EXPIRED);
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

bool session_start(struct sessions *all, struct evhttp_request *req, const char *consumer_id,
                   bool has_last_id, int64_t last_id, int64_t expires_at)
{
    char retry[48];
    char *peer = NULL;
    ev_uint16_t port = 0;

    struct session *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return false;
    if (!hub_join(all->hub, consumer_id, &s->member, &session_ops, has_last_id, last_id)) {
        free(s);
        return false;
    }
    s->all = all;
    if (expires_at != 0 && !arm_expiry(s, expires_at)) {
        hub_leave(all->hub, &s->member);
        if (s->expiry_ev != NULL)
            event_free(s->expiry_ev);
        free(s);
        return false;
    }
    s->req = req;
    s->evcon = evhttp_request_get_connection(req);
    struct bufferevent *bev = evhttp_connection_get_bufferevent(s->evcon);
    s->fd = bufferevent_getfd(bev);
    s->out = bufferevent_get_output(bev);
    s->id = ++all->next_id;
    s->state = SESSION_OPEN;
    list_init(&s->soft_link);
    list_init(&s->close_link);
    event_base_gettimeofday_cached(all->base, &s->opened_at);
    list_append(&all->open, &s->link);
    list_append(&all->wheel[all->next_slot], &s->wheel_link);
    all->next_slot = (all->next_slot + 1) % all->wheel_slots;
    all->count++;

    struct evkeyvalq *headers = evhttp_request_get_output_headers(req);
    evhttp_add_header(headers, "Content-Type", "text/event-stream");
    evhttp_add_header(headers, "Cache-Control", "no-cache");
    evhttp_add_header(headers, "X-Accel-Buffering", "no");
    evhttp_send_reply_start(req, 200, "OK");
    evhttp_connection_set_closecb(s->evcon, on_connection_close, s);
    evhttp_request_set_on_complete_cb(req, on_reply_complete, s);
    tune_socket(s);
    s->chunked = evhttp_find_header(headers, "Transfer-Encoding") != NULL;
    /* The first chunk goes through evhttp to install on_drained as the
     * connection's write callback, which emit() relies on. */
    evbuffer_add(all->scratch, retry,
                 sse_write_retry(retry, sizeof(retry), all->settings.retry_ms));
    metrics.bytes_written += evbuffer_get_length(all->scratch);
    evhttp_send_reply_chunk_with_cb(req, all->scratch, on_drained, s);

    metrics.sessions_opened++;
    evhttp_connection_get_peer(s->evcon, &peer, &port);
    /* Behind a load balancer the peer is the proxy; the client's address as
     * the proxy reports it (unverified: any client can send the header)
     * lets an operator follow one client across reconnects. */
    const char *forwarded =
        evhttp_find_header(evhttp_request_get_input_headers(req), "X-Forwarded-For");
    if (forwarded == NULL)
        forwarded = "-";
    if (has_last_id)
        log_info("session opened",
                 "session=%" PRIu64
                 " consumer=%s peer=%s port=%u forwarded_for=%s last_event_id=%" PRId64,
                 s->id, consumer_id, peer != NULL ? peer : "", (unsigned)port, forwarded, last_id);
    else
        log_info("session opened",
                 "session=%" PRIu64 " consumer=%s peer=%s port=%u forwarded_for=%s", s->id,
                 consumer_id, peer != NULL ? peer : "", (unsigned)port, forwarded);
    /* Both header lists have served their purpose (the reply's are on the
     * wire, the request's were read; consumer_id may point into them, so
     * this comes last). An idle stream should cost as little memory as
     * possible; session_end() adds back the one header evhttp reads at the
     * end. */
    evhttp_clear_headers(headers);
    evhttp_clear_headers(evhttp_request_get_input_headers(req));
    release_empty_chains(bufferevent_get_input(bev));
    release_empty_chains(evhttp_request_get_input_buffer(req));
    release_empty_chains(evhttp_request_get_output_buffer(req));
    if (has_last_id)
        replay_catch_up(all->replay, &s->member);
    return true;
}

size_t sessions_count(const struct sessions *all)
{
    return all->count;
}

/* Ends a stream cleanly. evhttp may complete the reply (and so destroy s)
 * before this returns; s must not be used after the call. */
static void session_end(struct session *s, enum close_reason reason)
{
    s->state = SESSION_ENDING;
    s->reason = reason;
    list_remove(&s->wheel_link);
    soft_limit_clear(s);
    evhttp_add_header(evhttp_request_get_output_headers(s->req), "Connection", "close");
    evhttp_send_reply_end(s->req);
}

static void on_shutdown_deadline(evutil_socket_t fd, short what, void *arg)
{
    struct sessions *all = arg;
    (void)fd;
    (void)what;
    log_warn("shutdown deadline reached", "sessions_left=%zu", all->count);
    for (struct list_node *n = all->open.next; n != &all->open; n = n->next)
        session_close(container_of(n, struct session, link), CLOSE_SHUTDOWN);
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
    struct list_node ending;

    all->shutting_down = true;
    all->shutdown_done = done;
    all->shutdown_arg = arg;
    log_info("ending streams", "sessions=%zu", all->count);
    if (all->count == 0) {
        event_active(all->shutdown_ev, EV_TIMEOUT, 1);
        return;
    }
    /* session_end() may free the session at once: walk a private list. */
    list_init(&ending);
    for (struct list_node *n = all->open.next, *next; n != &all->open; n = next) {
        next = n->next;
        struct session *s = container_of(n, struct session, link);
        if (s->state == SESSION_OPEN) {
            list_remove(&s->wheel_link);
            list_append(&ending, &s->wheel_link);
        }
    }
    struct list_node *n;
    while ((n = list_pop(&ending)) != NULL)
        session_end(container_of(n, struct session, wheel_link), CLOSE_SHUTDOWN);
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
    list_init(&all->closing);
    all->wheel_slots = (size_t)settings->heartbeat_seconds;
    all->wheel = calloc(all->wheel_slots, sizeof(*all->wheel));
    all->tick_ev = event_new(base, -1, EV_PERSIST, on_tick, all);
    all->close_ev = event_new(base, -1, 0, on_close_requested, all);
    all->deadline_ev = evtimer_new(base, on_shutdown_deadline, all);
    all->shutdown_ev = event_new(base, -1, 0, on_shutdown_done, all);
    all->scratch = evbuffer_new();
    if (all->wheel == NULL || all->tick_ev == NULL || all->close_ev == NULL ||
        all->deadline_ev == NULL || all->shutdown_ev == NULL || all->scratch == NULL) {
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
    if (all->close_ev != NULL) {
        for (struct list_node *n = all->open.next; n != &all->open; n = n->next) {
            struct session *s = container_of(n, struct session, link);
            if (s->state != SESSION_CLOSING)
                session_close(s, CLOSE_SHUTDOWN);
        }
        on_close_requested(-1, 0, all);
    }
    if (all->tick_ev != NULL)
        event_free(all->tick_ev);
    if (all->close_ev != NULL)
        event_free(all->close_ev);
    if (all->deadline_ev != NULL)
        event_free(all->deadline_ev);
    if (all->shutdown_ev != NULL)
        event_free(all->shutdown_ev);
    if (all->scratch != NULL)
        evbuffer_free(all->scratch);
    free(all->wheel);
    free(all);
}
