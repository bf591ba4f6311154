/*
 * HTTP/2 on a connection, on nghttp2 (a protocol engine without I/O: it is
 * fed the connection's input and hands back frames to write).
 *
 * Every stream is an exchange. An SSE response is a stream whose DATA
 * frames carry the same frames as HTTP/1.1's chunks: each stream queues
 * its bytes (large frames by reference) and nghttp2 takes them as flow
 * control allows, without copying (NGHTTP2_DATA_FLAG_NO_COPY: the frame
 * header and the queued bytes go straight into the connection's output).
 * Writes of many streams in one loop pass are flushed once, so an event
 * fanned out to the 50 streams of a connection costs one socket write.
 *
 * One slow stream does not hold the others: its window runs out and its
 * bytes wait in its own queue, where the session's slow-consumer limits see
 * them and end that stream alone (RST_STREAM). The connection's output is
 * kept below OUTPUT_HIGH: past it nghttp2 is told to wait, and the
 * connection's write timeout cuts a client that reads nothing at all.
 *
 * Stream states (h2_stream_enter() refuses other transitions):
 *
 *   RECEIVING --request complete--> HANDLING --answer--> ANSWERED
 *                                       \--open_sse--> STREAMING --end--> ENDING
 *   Any state --stream closed (by either side)--> freed
 *
 * Defences (beyond nghttp2's own HPACK and framing checks): at most
 * H2_MAX_CONCURRENT_STREAMS streams; a head within MAX_HEADER_BYTES (HPACK
 * bombs are cut as the decoded fields arrive); a body within MAX_BODY_BYTES;
 * at most 8 CONTINUATION frames per head; rapid resets limited (burst 1000,
 * then 33 per second: CVE-2023-44487); at most 1000 SETTINGS and PING
 * acknowledgements waiting (floods); a connection with no stream, or with a
 * request still arriving, for REQUEST_TIMEOUT_SECONDS is closed.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <nghttp2/nghttp2.h>

#include "core/frame.h"
#include "core/sse.h"
#include "net/conn.h"
#include "net/exchange.h"
#include "net/head.h"
#include "ops/log.h"

/* nghttp2 is asked to wait while this much output is queued. */
#define OUTPUT_HIGH (256 * 1024)
/* Frames at least this large are queued by reference instead of copied. */
#define SHARE_BY_REFERENCE_BYTES 256

enum h2_stream_state { ST_RECEIVING, ST_HANDLING, ST_ANSWERED, ST_STREAMING, ST_ENDING };

static const char *const stream_state_names[] = {"receiving", "handling", "answered", "streaming",
                                                 "ending"};

static const bool stream_allowed[5][5] = {
    [ST_RECEIVING] = {[ST_HANDLING] = true},
    [ST_HANDLING] = {[ST_ANSWERED] = true, [ST_STREAMING] = true},
    [ST_STREAMING] = {[ST_ENDING] = true},
};

struct h2;

/* What only a request needs; freed once its stream streams. */
struct h2_request {
    struct head head;
    enum request_method method;
    /* Pseudo-headers come first, in any order; they enter the head (the
     * target, then :authority as host) when the first field or the end of
     * the head arrives. */
    char *path;
    char *authority;
    bool fields_begun;
    struct evbuffer *body;
    struct exchange x;
};

struct h2_stream {
    struct h2 *h2;
    int32_t id;
    enum h2_stream_state state;
    struct list_node link;         /* h2->streams */
    struct list_node drained_link; /* h2->drained, after its queue emptied */
    struct list_node ready_link;   /* h2->ready, a complete request */
    struct h2_request *req;
    struct evbuffer *queue; /* response bytes nghttp2 has not taken yet */
    bool body_done;         /* no more bytes will be queued: EOF after the queue */
    bool refused;           /* answered early (413, 431): ignore what follows */
    bool above_low;         /* the queue grew past HUB_LOW_WATERMARK */
    uint64_t queued;        /* bytes ever queued */
    bool departed;          /* closed while draining: reported gone with the connection */
    enum close_reason close_reason;
    struct session_sink sink;
};

struct h2 {
    struct conn *conn;
    nghttp2_session *session;
    struct list_node streams;
    struct list_node drained;
    /* Requests completed by the input just read, handed to the application
     * only once nghttp2 has taken all of it: a handler never runs inside
     * nghttp2, and nothing is answered on a connection the same input turns
     * out to break. */
    struct list_node ready;
    struct list_node departed; /* streams closed while going away, see stream_depart() */
    size_t stream_count;
    size_t receiving; /* streams whose request is still arriving */
    struct event *flush_ev;
    bool going_away; /* GOAWAY sent: no new streams */
    bool sent_reset; /* a RST_STREAM was sent, see on_begin_frame() */
};

static const struct exchange_ops h2_exchange_ops;
static const struct session_sink_ops h2_sink_ops;

static void stream_enter(struct h2_stream *st, enum h2_stream_state to)
{
    if (!stream_allowed[st->state][to]) {
        log_error("h2: impossible transition", "conn=%" PRIu64 " stream=%d from=%s to=%s",
                  st->h2->conn->id, st->id, stream_state_names[st->state], stream_state_names[to]);
        abort();
    }
    if (st->state == ST_RECEIVING)
        st->h2->receiving--;
    st->state = to;
}

static void schedule_flush(struct h2 *h2)
{
    event_active(h2->flush_ev, EV_TIMEOUT, 1);
}

/* The deadline runs while the connection has no stream (idle) or while a
 * request is arriving (slow clients): armed when either starts, so it
 * measures from then. */
static void update_deadline(struct h2 *h2)
{
    struct conn *c = h2->conn;
    bool due = h2->stream_count == 0 || h2->receiving > 0;
    if (due && (c->deadline_ev == NULL || !evtimer_pending(c->deadline_ev, NULL)))
        conn_arm_deadline(c, c->server->settings.request_timeout_seconds);
    else if (!due)
        conn_disarm_deadline(c);
}

/* ---- streams ---- */

static void request_free(struct h2_stream *st)
{
    struct h2_request *r = st->req;
    if (r == NULL)
        return;
    exchange_release(&r->x);
    head_free(&r->head);
    free(r->path);
    free(r->authority);
    if (r->body != NULL)
        evbuffer_free(r->body);
    free(r);
    st->req = NULL;
}

static void stream_free(struct h2_stream *st)
{
    struct h2 *h2 = st->h2;
    if (st->state == ST_RECEIVING)
        h2->receiving--;
    if (st->state == ST_HANDLING && st->req != NULL)
        exchange_abort(&st->req->x);
    if (st->state == ST_STREAMING || st->state == ST_ENDING) {
        peer_stream_closed(h2->conn->peer);
        if (st->sink.session != NULL)
            session_sink_gone(&st->sink, st->close_reason);
    }
    request_free(st);
    if (st->queue != NULL)
        evbuffer_free(st->queue);
    list_remove(&st->link);
    list_remove(&st->drained_link);
    list_remove(&st->ready_link);
    if (!st->departed)
        h2->stream_count--;
    free(st);
}

/* After GOAWAY (the server drains), a stream that ended is reported gone
 * only with its connection, once the connection's last bytes (its END_STREAM
 * and the GOAWAY) are written: the process exits as soon as every stream is
 * gone, which nghttp2 declares when it has produced those bytes, not when
 * the socket took them. Returns false for a stream to free at once. */
static bool stream_depart(struct h2_stream *st)
{
    struct h2 *h2 = st->h2;
    if (!h2->going_away || conn_closing(h2->conn) || st->sink.session == NULL ||
        (st->state != ST_STREAMING && st->state != ST_ENDING))
        return false;
    st->departed = true;
    list_remove(&st->link);
    list_remove(&st->drained_link);
    list_append(&h2->departed, &st->link);
    h2->stream_count--;
    return true;
}

static struct h2_stream *stream_of(struct h2 *h2, int32_t id)
{
    return nghttp2_session_get_stream_user_data(h2->session, id);
}

static void note_queued(struct h2_stream *st, size_t len)
{
    st->queued += len;
    if (evbuffer_get_length(st->queue) > HUB_LOW_WATERMARK)
        st->above_low = true;
}

static bool queue_add(struct h2_stream *st, const char *bytes, size_t len)
{
    if (st->queue == NULL && (st->queue = evbuffer_new()) == NULL)
        return false;
    if (evbuffer_add(st->queue, bytes, len) != 0)
        return false;
    note_queued(st, len);
    return true;
}

static void unref_frame(const void *data, size_t len, void *extra)
{
    (void)data;
    (void)len;
    frame_unref(extra);
}

static bool queue_frame(struct h2_stream *st, struct frame *f)
{
    if (f->len < SHARE_BY_REFERENCE_BYTES)
        return queue_add(st, f->bytes, f->len);
    if (st->queue == NULL && (st->queue = evbuffer_new()) == NULL)
        return false;
    if (evbuffer_add_reference(st->queue, f->bytes, f->len, unref_frame, frame_ref(f)) == 0) {
        note_queued(st, f->len);
        return true;
    }
    frame_unref(f);
    return false;
}

/* More bytes (or the end) for nghttp2 to take. */
static void stream_resume(struct h2_stream *st)
{
    nghttp2_session_resume_data(st->h2->session, st->id);
    schedule_flush(st->h2);
}

/* ---- nghttp2 callbacks ---- */

static ssize_t on_send(nghttp2_session *session, const uint8_t *data, size_t len, int flags,
                       void *user)
{
    struct h2 *h2 = user;
    (void)session;
    (void)flags;
    struct evbuffer *out = conn_output(h2->conn);
    if (evbuffer_get_length(out) >= OUTPUT_HIGH)
        return NGHTTP2_ERR_WOULDBLOCK;
    if (evbuffer_add(out, data, len) != 0)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    return (ssize_t)len;
}

static int on_send_data(nghttp2_session *session, nghttp2_frame *frame, const uint8_t *framehd,
                        size_t length, nghttp2_data_source *source, void *user)
{
    struct h2 *h2 = user;
    struct h2_stream *st = source->ptr;
    struct evbuffer *out = conn_output(h2->conn);
    (void)session;
    (void)frame;
    if (evbuffer_get_length(out) >= OUTPUT_HIGH)
        return NGHTTP2_ERR_WOULDBLOCK;
    evbuffer_add(out, framehd, 9);
    if (length > 0 && evbuffer_remove_buffer(st->queue, out, length) != (int)length)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    if (st->state == ST_STREAMING && st->above_low &&
        evbuffer_get_length(st->queue) <= HUB_LOW_WATERMARK) {
        st->above_low = false;
        if (!list_node_linked(&st->drained_link))
            list_append(&h2->drained, &st->drained_link);
    }
    return 0;
}

static ssize_t read_body(nghttp2_session *session, int32_t id, uint8_t *buf, size_t length,
                         uint32_t *flags, nghttp2_data_source *source, void *user)
{
    struct h2_stream *st = source->ptr;
    (void)session;
    (void)id;
    (void)buf;
    (void)user;
    size_t queued = st->queue != NULL ? evbuffer_get_length(st->queue) : 0;
    if (queued == 0) {
        if (st->body_done) {
            *flags |= NGHTTP2_DATA_FLAG_EOF;
            return 0;
        }
        return NGHTTP2_ERR_DEFERRED;
    }
    size_t n = queued < length ? queued : length;
    *flags |= NGHTTP2_DATA_FLAG_NO_COPY;
    if (n == queued && st->body_done)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

static int on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame, void *user)
{
    struct h2 *h2 = user;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    struct h2_stream *st = calloc(1, sizeof(*st));
    if (st != NULL && (st->req = calloc(1, sizeof(*st->req))) == NULL) {
        free(st);
        st = NULL;
    }
    if (st == NULL)
        return nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->hd.stream_id,
                                         NGHTTP2_INTERNAL_ERROR);
    st->h2 = h2;
    st->id = frame->hd.stream_id;
    st->state = ST_RECEIVING;
    st->close_reason = CLOSE_CLIENT_GONE;
    list_init(&st->drained_link);
    list_init(&st->ready_link);
    list_append(&h2->streams, &st->link);
    head_reset(&st->req->head, h2->conn->server->settings.max_header_bytes);
    h2->stream_count++;
    h2->receiving++;
    nghttp2_session_set_stream_user_data(session, st->id, st);
    return 0;
}

/* Answers a request that cannot be taken (head or body too large, a bad
 * head) and ignores the rest of it. */
static void refuse(struct h2_stream *st, enum http_error e);

/* Keeps a pseudo-header's value (at most once each, within the head's
 * size limit). */
static bool keep_pseudo(struct h2_request *r, char **slot, const char *v, size_t len,
                        enum http_error *error)
{
    if (*slot != NULL || r->fields_begun) {
        *error = HTTP_ERROR_BAD_REQUEST;
        return false;
    }
    if (len + 1 > r->head.max_bytes) {
        *error = HTTP_ERROR_HEADER_TOO_LARGE;
        return false;
    }
    if ((*slot = strndup(v, len)) == NULL) {
        *error = HTTP_ERROR_OUT_OF_MEMORY;
        return false;
    }
    return true;
}

static bool begin_fields(struct h2_request *r, enum http_error *error)
{
    if (r->fields_begun)
        return true;
    r->fields_begun = true;
    if (r->path == NULL) {
        *error = HTTP_ERROR_BAD_REQUEST;
        return false;
    }
    if (!head_add_target(&r->head, r->path, strlen(r->path), error))
        return false;
    /* What HTTP/1.1 calls Host (the CORS same-origin check reads it). */
    return r->authority == NULL ||
           (head_add_name(&r->head, "host", 4, error) &&
            head_add_value(&r->head, r->authority, strlen(r->authority), error));
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                     size_t name_len, const uint8_t *value, size_t value_len, uint8_t flags,
                     void *user)
{
    struct h2 *h2 = user;
    struct h2_stream *st = stream_of(h2, frame->hd.stream_id);
    enum http_error error = HTTP_ERROR_BAD_REQUEST;
    (void)session;
    (void)flags;
    if (st == NULL || st->refused || st->req == NULL)
        return 0;
    struct h2_request *r = st->req;
    const char *n = (const char *)name, *v = (const char *)value;
    bool ok = true;
    if (name_len > 0 && n[0] == ':') {
        if (name_len == 5 && memcmp(n, ":path", 5) == 0) {
            ok = keep_pseudo(r, &r->path, v, value_len, &error);
        } else if (name_len == 10 && memcmp(n, ":authority", 10) == 0) {
            ok = keep_pseudo(r, &r->authority, v, value_len, &error);
        } else if (name_len == 7 && memcmp(n, ":method", 7) == 0) {
            r->method = value_len == 3 && memcmp(v, "GET", 3) == 0       ? METHOD_GET
                        : value_len == 4 && memcmp(v, "HEAD", 4) == 0    ? METHOD_HEAD
                        : value_len == 4 && memcmp(v, "POST", 4) == 0    ? METHOD_POST
                        : value_len == 7 && memcmp(v, "OPTIONS", 7) == 0 ? METHOD_OPTIONS
                                                                         : METHOD_OTHER;
        }
        /* :scheme is not needed; nghttp2 has checked the pseudo-headers. */
    } else {
        ok = begin_fields(r, &error) && head_add_name(&r->head, n, name_len, &error) &&
             head_add_value(&r->head, v, value_len, &error);
    }
    if (!ok)
        refuse(st, error);
    return 0;
}

static int on_data_chunk(nghttp2_session *session, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *user)
{
    struct h2 *h2 = user;
    struct h2_stream *st = stream_of(h2, id);
    (void)session;
    (void)flags;
    if (st == NULL || st->refused || st->state != ST_RECEIVING || st->req == NULL)
        return 0;
    struct h2_request *r = st->req;
    if (r->body == NULL && (r->body = evbuffer_new()) == NULL) {
        refuse(st, HTTP_ERROR_OUT_OF_MEMORY);
        return 0;
    }
    if (evbuffer_get_length(r->body) + len > h2->conn->server->settings.max_body_bytes) {
        refuse(st, HTTP_ERROR_BODY_TOO_LARGE);
        return 0;
    }
    evbuffer_add(r->body, data, len);
    return 0;
}

static void dispatch(struct h2_stream *st)
{
    struct h2 *h2 = st->h2;
    struct conn *c = h2->conn;
    struct h2_request *r = st->req;
    struct exchange *x = &r->x;
    enum http_error error = HTTP_ERROR_BAD_REQUEST;

    if (!begin_fields(r, &error) || !head_finish(&r->head, x, &error)) {
        refuse(st, error);
        return;
    }
    stream_enter(st, ST_HANDLING);
    x->method = r->method;
    x->body = r->body != NULL ? (const char *)evbuffer_pullup(r->body, -1) : NULL;
    x->body_len = r->body != NULL ? evbuffer_get_length(r->body) : 0;
    x->peer = c->peer;
    x->peer_port = c->peer_port;
    x->transport = TRANSPORT_H2;
    x->tls = c->tls;
    x->keeps_connection = true;
    x->ops = &h2_exchange_ops;
    x->transport_state = st;
    c->server->handler.request(c->server->handler.arg, x);
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user)
{
    struct h2 *h2 = user;
    (void)session;
    if ((frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) ||
        !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
        return 0;
    struct h2_stream *st = stream_of(h2, frame->hd.stream_id);
    if (st != NULL && st->state == ST_RECEIVING && !st->refused)
        list_append(&h2->ready, &st->ready_link);
    return 0;
}

static int on_stream_close(nghttp2_session *session, int32_t id, uint32_t error_code, void *user)
{
    struct h2 *h2 = user;
    struct h2_stream *st = stream_of(h2, id);
    (void)error_code;
    if (st == NULL)
        return 0;
    nghttp2_session_set_stream_user_data(session, id, NULL);
    if (!stream_depart(st))
        stream_free(st);
    return 0;
}

/* nghttp2 ignores a HEADERS frame whose stream id is below the last one it
 * took: it cannot tell a stream opened out of order (a connection error,
 * RFC 9113 5.1.1) from trailers for a stream it has reset (to be ignored).
 * Trailers can only come for a stream reset while its request was arriving,
 * and every such reset is a RST_STREAM we sent: until this connection has
 * sent one, such a frame opens a stream out of order. */
static int on_begin_frame(nghttp2_session *session, const nghttp2_frame_hd *hd, void *user)
{
    struct h2 *h2 = user;
    if (hd->type == NGHTTP2_HEADERS && !h2->sent_reset && (hd->stream_id & 1) == 1 &&
        hd->stream_id < nghttp2_session_get_last_proc_stream_id(session) &&
        nghttp2_session_find_stream(session, hd->stream_id) == NULL)
        nghttp2_session_terminate_session(session, NGHTTP2_PROTOCOL_ERROR);
    return 0;
}

static int on_frame_send(nghttp2_session *session, const nghttp2_frame *frame, void *user)
{
    struct h2 *h2 = user;
    (void)session;
    if (frame->hd.type == NGHTTP2_RST_STREAM)
        h2->sent_reset = true;
    return 0;
}

static nghttp2_session_callbacks *callbacks;

static bool callbacks_ready(void)
{
    if (callbacks != NULL)
        return true;
    if (nghttp2_session_callbacks_new(&callbacks) != 0)
        return false;
    nghttp2_session_callbacks_set_send_callback(callbacks, on_send);
    nghttp2_session_callbacks_set_send_data_callback(callbacks, on_send_data);
    nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, on_begin_headers);
    nghttp2_session_callbacks_set_on_begin_frame_callback(callbacks, on_begin_frame);
    nghttp2_session_callbacks_set_on_frame_send_callback(callbacks, on_frame_send);
    nghttp2_session_callbacks_set_on_header_callback(callbacks, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, on_data_chunk);
    nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, on_frame_recv);
    nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, on_stream_close);
    return true;
}

/* ---- answers ---- */

/* Submits a response: the fixed fields, then the exchange's added ones
 * (lower-cased, as HTTP/2 requires). */
static int submit_response(struct h2_stream *st, int status, const char *const *fixed,
                           size_t fixed_count, const struct exchange *x, bool with_body)
{
    nghttp2_nv nv[48];
    char status_text[4], names[32][64];
    size_t n = 0, pos = 0, renamed = 0;
    const char *name, *value;
    snprintf(status_text, sizeof(status_text), "%d", status);
    nv[n++] =
        (nghttp2_nv){(uint8_t *)":status", (uint8_t *)status_text, 7, 3, NGHTTP2_NV_FLAG_NONE};
    for (size_t i = 0; i + 1 < fixed_count * 2 && n < 47; i += 2)
        nv[n++] = (nghttp2_nv){(uint8_t *)fixed[i], (uint8_t *)fixed[i + 1], strlen(fixed[i]),
                               strlen(fixed[i + 1]), NGHTTP2_NV_FLAG_NONE};
    while (x != NULL && exchange_next_header(x, &pos, &name, &value) && n < 47 && renamed < 32) {
        size_t len = strlen(name);
        if (len >= sizeof(names[0]))
            continue;
        for (size_t i = 0; i <= len; i++)
            names[renamed][i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] + 32 : name[i]);
        nv[n++] = (nghttp2_nv){(uint8_t *)names[renamed++], (uint8_t *)value, len, strlen(value),
                               NGHTTP2_NV_FLAG_NONE};
    }
    nghttp2_data_provider provider = {.source.ptr = st, .read_callback = read_body};
    return nghttp2_submit_response(st->h2->session, st->id, nv, n, with_body ? &provider : NULL);
}

static void refuse(struct h2_stream *st, enum http_error e)
{
    char body[256];
    char length[24];
    size_t len = http_error_body(e, NULL, body, sizeof(body));
    metrics.requests_rejected[e]++;
    st->refused = true;
    if (st->state == ST_RECEIVING)
        stream_enter(st, ST_HANDLING);
    stream_enter(st, ST_ANSWERED);
    snprintf(length, sizeof(length), "%zu", len);
    const char *fixed[] = {"content-type", "application/json", "cache-control",
                           "no-store",     "content-length",   length};
    st->body_done = true;
    if (!queue_add(st, body, len) ||
        submit_response(st, http_error_status(e), fixed, 3, NULL, true) != 0)
        nghttp2_submit_rst_stream(st->h2->session, NGHTTP2_FLAG_NONE, st->id,
                                  NGHTTP2_INTERNAL_ERROR);
    schedule_flush(st->h2);
}

static void h2_respond(struct exchange *x, int status, const char *body, size_t len)
{
    struct h2_stream *st = x->transport_state;
    char length[24];
    bool with_body = x->method != METHOD_HEAD && body != NULL && len > 0 && status != 204;
    snprintf(length, sizeof(length), "%zu", len);
    const char *fixed[] = {"content-length", length};
    stream_enter(st, ST_ANSWERED);
    st->body_done = true;
    if ((with_body && !queue_add(st, body, len)) ||
        submit_response(st, status, fixed, status == 204 ? 0 : 1, x, with_body) != 0)
        nghttp2_submit_rst_stream(st->h2->session, NGHTTP2_FLAG_NONE, st->id,
                                  NGHTTP2_INTERNAL_ERROR);
    exchange_release(x);
    schedule_flush(st->h2);
}

static struct session_sink *h2_open_sse(struct exchange *x)
{
    struct h2_stream *st = x->transport_state;
    static const char *const fixed[] = {"content-type", "text/event-stream", "cache-control",
                                        "no-cache"};
    if (submit_response(st, 200, fixed, 2, x, true) != 0)
        return NULL;
    stream_enter(st, ST_STREAMING);
    request_free(st); /* the exchange with it */
    peer_stream_opened(st->h2->conn->peer);
    st->sink.ops = &h2_sink_ops;
    schedule_flush(st->h2);
    return &st->sink;
}

static const struct exchange_ops h2_exchange_ops = {
    .respond = h2_respond,
    .open_sse = h2_open_sse,
    .open_websocket = NULL, /* RFC 8441 is not offered */
};

/* ---- the sink ---- */

static struct h2_stream *stream_of_sink(const struct session_sink *sink)
{
    return container_of(sink, struct h2_stream, sink);
}

static void sink_fail(struct h2_stream *st)
{
    log_error("cannot write events: out of memory", "conn=%" PRIu64 " stream=%d", st->h2->conn->id,
              st->id);
    st->close_reason = CLOSE_WRITE_ERROR;
    nghttp2_submit_rst_stream(st->h2->session, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
    schedule_flush(st->h2);
}

static void sink_text(struct h2_stream *st, const char *text, size_t len)
{
    if (st->departed)
        return;
    if (!queue_add(st, text, len)) {
        sink_fail(st);
        return;
    }
    metrics.bytes_written += len;
    stream_resume(st);
}

static void sink_start(struct session_sink *sink, long long retry_ms)
{
    char retry[48];
    sink_text(stream_of_sink(sink), retry, sse_write_retry(retry, sizeof(retry), retry_ms));
}

static void sink_write_frames(struct session_sink *sink, struct frame *const *frames, size_t count)
{
    struct h2_stream *st = stream_of_sink(sink);
    if (st->state != ST_STREAMING)
        return;
    for (size_t i = 0; i < count; i++) {
        if (!queue_frame(st, frames[i])) {
            sink_fail(st);
            return;
        }
        metrics.bytes_written += frames[i]->len;
    }
    stream_resume(st);
}

static void sink_heartbeat(struct session_sink *sink, int64_t unix_time)
{
    char text[48], line[64];
    snprintf(text, sizeof(text), "heartbeat %" PRId64, unix_time);
    sink_text(stream_of_sink(sink), line, sse_write_comment(line, sizeof(line), text));
}

static size_t sink_pending(const struct session_sink *sink)
{
    const struct h2_stream *st = stream_of_sink(sink);
    return st->queue != NULL ? evbuffer_get_length(st->queue) : 0;
}

/* What nghttp2 has taken from the queue, which flow control lets it take
 * only as the client reads. */
static uint64_t sink_taken(const struct session_sink *sink)
{
    return stream_of_sink(sink)->queued - sink_pending(sink);
}

static void sink_end(struct session_sink *sink, enum close_reason why)
{
    struct h2_stream *st = stream_of_sink(sink);
    static const char expired[] = ": credential expired\n\n";
    if (why == CLOSE_TOKEN_EXPIRED)
        sink_text(st, expired, sizeof(expired) - 1);
    stream_enter(st, ST_ENDING);
    st->close_reason = why;
    st->body_done = true;
    stream_resume(st);
}

static void sink_abort(struct session_sink *sink, enum close_reason why)
{
    struct h2_stream *st = stream_of_sink(sink);
    st->close_reason = why;
    if (st->departed) { /* its connection did not finish writing in time */
        conn_close(st->h2->conn, why);
        return;
    }
    nghttp2_submit_rst_stream(st->h2->session, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_CANCEL);
    schedule_flush(st->h2);
}

static const char *sink_peer(const struct session_sink *sink, unsigned *port)
{
    const struct conn *c = stream_of_sink(sink)->h2->conn;
    *port = c->peer_port;
    return conn_peer_address(c);
}

static const struct session_sink_ops h2_sink_ops = {
    .kind = TRANSPORT_H2,
    .start = sink_start,
    .write_frames = sink_write_frames,
    .heartbeat = sink_heartbeat,
    .pending = sink_pending,
    .taken = sink_taken,
    .end = sink_end,
    .abort = sink_abort,
    .peer = sink_peer,
};

/* ---- the connection ---- */

/* Hands nghttp2's output to the connection, tells drained streams, and
 * closes the connection once neither side has anything more to say. */
static void flush(struct h2 *h2)
{
    struct conn *c = h2->conn;
    if (conn_closing(c))
        return;
    int rv = nghttp2_session_send(h2->session);
    if (rv != 0) {
        log_debug("h2 send failed", "conn=%" PRIu64 " error=%s", c->id, nghttp2_strerror(rv));
        conn_close(c, CLOSE_WRITE_ERROR);
        return;
    }
    conn_flush(c);
    struct list_node *n;
    while ((n = list_pop(&h2->drained)) != NULL) {
        struct h2_stream *st = container_of(n, struct h2_stream, drained_link);
        session_sink_drained(&st->sink);
    }
    if (!nghttp2_session_want_read(h2->session) && !nghttp2_session_want_write(h2->session)) {
        conn_close_after_flush(c, h2->going_away ? CLOSE_SHUTDOWN : CLOSE_CLIENT_GONE);
        return;
    }
    update_deadline(h2);
}

static void on_flush(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    flush(arg);
}

static void h2_read(struct conn *c)
{
    struct h2 *h2 = c->proto_state;
    struct evbuffer *in = conn_input(c);
    while (evbuffer_get_length(in) > 0 && !conn_closing(c)) {
        struct evbuffer_iovec v;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            break;
        ssize_t used = nghttp2_session_mem_recv(h2->session, v.iov_base, v.iov_len);
        if (used < 0) {
            /* A protocol error or a flood. nghttp2 has queued a GOAWAY for
             * most, but not for every fatal error (too many CONTINUATION
             * frames, a callback failure): the client must still learn why
             * (terminating again is a no-op when a GOAWAY is queued). */
            log_debug("h2 connection refused", "conn=%" PRIu64 " peer=%s error=%s", c->id,
                      conn_peer_address(c), nghttp2_strerror((int)used));
            (void)nghttp2_session_terminate_session(
                h2->session, used == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS ? NGHTTP2_ENHANCE_YOUR_CALM
                                                                        : NGHTTP2_PROTOCOL_ERROR);
            evbuffer_drain(in, evbuffer_get_length(in));
            nghttp2_session_send(h2->session);
            conn_close_after_flush(c, CLOSE_PROTOCOL_ERROR);
            return;
        }
        evbuffer_drain(in, (size_t)used);
    }
    struct list_node *n;
    while ((n = list_pop(&h2->ready)) != NULL)
        dispatch(container_of(n, struct h2_stream, ready_link));
    flush(h2);
}

static void h2_drained(struct conn *c)
{
    flush(c->proto_state);
}

static void h2_deadline(struct conn *c)
{
    struct h2 *h2 = c->proto_state;
    /* Idle, or a request that did not arrive in time. */
    nghttp2_submit_goaway(
        h2->session, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(h2->session),
        h2->receiving > 0 ? NGHTTP2_ENHANCE_YOUR_CALM : NGHTTP2_NO_ERROR, NULL, 0);
    nghttp2_session_send(h2->session);
    conn_close_after_flush(c, CLOSE_CLIENT_GONE);
}

static void h2_drain(struct conn *c)
{
    struct h2 *h2 = c->proto_state;
    h2->going_away = true;
    nghttp2_submit_goaway(h2->session, NGHTTP2_FLAG_NONE,
                          nghttp2_session_get_last_proc_stream_id(h2->session), NGHTTP2_NO_ERROR,
                          NULL, 0);
    schedule_flush(h2);
}

static void h2_closing(struct conn *c, enum close_reason why)
{
    struct h2 *h2 = c->proto_state;
    if (h2 == NULL)
        return;
    /* Every stream still open ends with the connection. */
    while (!list_empty(&h2->streams)) {
        struct h2_stream *st = container_of(h2->streams.next, struct h2_stream, link);
        if (st->close_reason == CLOSE_CLIENT_GONE)
            st->close_reason = why;
        nghttp2_session_set_stream_user_data(h2->session, st->id, NULL);
        stream_free(st);
    }
    while (!list_empty(&h2->departed))
        stream_free(container_of(h2->departed.next, struct h2_stream, link));
    nghttp2_session_del(h2->session);
    event_free(h2->flush_ev);
    free(h2);
    c->proto_state = NULL;
}

static const struct conn_protocol h2_protocol = {
    .state = CONN_H2,
    .kind = TRANSPORT_H2,
    .read = h2_read,
    .drained = h2_drained,
    .deadline = h2_deadline,
    .drain = h2_drain,
    .closing = h2_closing,
};

void h2_start(struct conn *c)
{
    const struct net_settings *set = &c->server->settings;
    struct h2 *h2 = calloc(1, sizeof(*h2));
    nghttp2_option *option = NULL;
    if (h2 == NULL || !callbacks_ready() || nghttp2_option_new(&option) != 0)
        goto fail;
    h2->conn = c;
    list_init(&h2->streams);
    list_init(&h2->drained);
    list_init(&h2->ready);
    list_init(&h2->departed);
    nghttp2_option_set_max_continuations(option, 8);
    nghttp2_option_set_stream_reset_rate_limit(option, 1000, 33);
    nghttp2_option_set_max_outbound_ack(option, 1000);
    nghttp2_option_set_max_settings(option, 32);
    int rv = nghttp2_session_server_new2(&h2->session, callbacks, h2, option);
    nghttp2_option_del(option);
    option = NULL;
    h2->flush_ev = rv == 0 ? event_new(c->server->base, -1, 0, on_flush, h2) : NULL;
    if (h2->flush_ev == NULL)
        goto fail;
    nghttp2_settings_entry settings[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, set->h2_max_concurrent_streams},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, (uint32_t)set->max_header_bytes},
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
    };
    if (nghttp2_submit_settings(h2->session, NGHTTP2_FLAG_NONE, settings, 3) != 0)
        goto fail;
    /* Keep nghttp2's output from outgrowing OUTPUT_HIGH by much: the
     * drained hook (the write callback) runs once it is below a quarter. */
    bufferevent_setwatermark(c->bev, EV_WRITE, OUTPUT_HIGH / 4, 0);
    conn_set_protocol(c, &h2_protocol, h2);
    update_deadline(h2);
    h2_read(c);
    return;
fail:
    if (option != NULL)
        nghttp2_option_del(option);
    if (h2 != NULL && h2->session != NULL)
        nghttp2_session_del(h2->session);
    free(h2);
    conn_close(c, CLOSE_WRITE_ERROR);
}
