/*
 * WebSocket streams: wslay's event API reads the client's frames (and
 * writes its own control answers, pong and close, whole, into the
 * connection's output); event messages, pings and the server's close are
 * framed here.
 *
 * States (ws_enter() refuses other transitions):
 *
 *   OPEN --end (shutdown, expiry), client misbehaves, client's close--> CLOSING
 *
 * CLOSING has sent (or queued) its close frame; the connection closes once
 * it is written.
 */
#include "net/websocket.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <wslay/wslay.h>

#include "core/frame.h"
#include "net/conn.h"
#include "ops/log.h"

#define MAX_DIRECT_FRAMES 32
/* Frames at least this large are shared by reference instead of copied. */
#define SHARE_BY_REFERENCE_BYTES 256

enum ws_state { WS_OPEN, WS_CLOSING };

struct ws {
    struct conn *conn;
    enum ws_state state;
    wslay_event_context_ptr ctx;
    struct session_sink sink;
    uint16_t violation; /* close code to answer a client's misbehaviour with */
    uint64_t queued;    /* bytes of ours handed to the socket or the output */
};

static const struct conn_protocol websocket_protocol;
static const struct session_sink_ops ws_sink_ops;

static void ws_enter(struct ws *w, enum ws_state to)
{
    if (!(w->state == WS_OPEN && to == WS_CLOSING)) {
        log_error("websocket: impossible transition", "conn=%" PRIu64, w->conn->id);
        abort();
    }
    w->state = to;
}

void websocket_accept_key(const char *key, char *out)
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned digest_len = 0;
    char text[64 + sizeof(guid)];
    /* The key is 24 characters (checked by the HTTP/1.1 layer). */
    int n = snprintf(text, sizeof(text), "%.64s%s", key, guid);
    EVP_Digest(text, (size_t)n, digest, &digest_len, EVP_sha1(), NULL);
    EVP_EncodeBlock((unsigned char *)out, digest, (int)digest_len);
}

size_t websocket_frame_header(unsigned char *out, unsigned opcode, size_t payload_len)
{
    out[0] = (unsigned char)(0x80 | opcode);
    if (payload_len < 126) {
        out[1] = (unsigned char)payload_len;
        return 2;
    }
    if (payload_len <= 0xffff) {
        out[1] = 126;
        out[2] = (unsigned char)(payload_len >> 8);
        out[3] = (unsigned char)payload_len;
        return 4;
    }
    out[1] = 127;
    for (int i = 0; i < 8; i++)
        out[2 + i] = (unsigned char)((uint64_t)payload_len >> (56 - 8 * i));
    return 10;
}

/* ---- wslay callbacks ---- */

static ssize_t on_wslay_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
                             void *user)
{
    struct ws *w = user;
    (void)flags;
    int n = evbuffer_remove(conn_input(w->conn), buf, len);
    if (n <= 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    return n;
}

/* wslay's own frames (pong, close) go whole into the output, so they never
 * interleave with ours. */
static ssize_t on_wslay_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len,
                             int flags, void *user)
{
    struct ws *w = user;
    (void)flags;
    if (evbuffer_add(conn_output(w->conn), data, len) != 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    return (ssize_t)len;
}

static void on_frame_start(wslay_event_context_ptr ctx,
                           const struct wslay_event_on_frame_recv_start_arg *arg, void *user)
{
    struct ws *w = user;
    (void)ctx;
    if (!wslay_is_ctrl_frame(arg->opcode) && w->violation == 0)
        w->violation = WSLAY_CODE_UNSUPPORTED_DATA;
}

static const struct wslay_event_callbacks wslay_callbacks = {
    .recv_callback = on_wslay_recv,
    .send_callback = on_wslay_send,
    .on_frame_recv_start_callback = on_frame_start,
};

/* ---- closing ---- */

/* Queues a close frame and closes the connection once it is written. */
static void close_with(struct ws *w, uint16_t code, const char *reason, enum close_reason why)
{
    if (w->state == WS_CLOSING)
        return;
    ws_enter(w, WS_CLOSING);
    wslay_event_queue_close(w->ctx, code, (const uint8_t *)reason, strlen(reason));
    wslay_event_send(w->ctx);
    conn_close_after_flush(w->conn, why);
}

static void ws_read(struct conn *c)
{
    struct ws *w = c->proto_state;
    if (w->state != WS_OPEN) {
        evbuffer_drain(conn_input(c), evbuffer_get_length(conn_input(c)));
        return;
    }
    int rv = wslay_event_recv(w->ctx);
    if (w->violation != 0) {
        close_with(w, w->violation, "this endpoint only sends", CLOSE_PROTOCOL_ERROR);
        return;
    }
    if (rv != 0 || !wslay_event_get_read_enabled(w->ctx)) {
        /* A protocol error or an oversized frame (wslay has queued its close
         * code), or the client's close (wslay has queued the answer). */
        bool client_closed = rv == 0 && wslay_event_get_close_received(w->ctx);
        ws_enter(w, WS_CLOSING);
        wslay_event_send(w->ctx);
        conn_close_after_flush(c, client_closed ? CLOSE_CLIENT_GONE : CLOSE_PROTOCOL_ERROR);
        return;
    }
    if (wslay_event_want_write(w->ctx)) {
        wslay_event_send(w->ctx); /* pongs */
        conn_flush(c);
    }
}

static void ws_drained(struct conn *c)
{
    struct ws *w = c->proto_state;
    if (w->state == WS_OPEN)
        session_sink_drained(&w->sink);
}

static void ws_closing(struct conn *c, enum close_reason why)
{
    struct ws *w = c->proto_state;
    if (w == NULL)
        return;
    peer_stream_closed(c->peer);
    if (w->sink.session != NULL)
        session_sink_gone(&w->sink, why);
    wslay_event_context_free(w->ctx);
    free(w);
    c->proto_state = NULL;
}

static const struct conn_protocol websocket_protocol = {
    .state = CONN_WEBSOCKET,
    .kind = TRANSPORT_WEBSOCKET,
    .read = ws_read,
    .drained = ws_drained,
    .closing = ws_closing,
};

/* ---- the sink ---- */

static struct ws *ws_of(const struct session_sink *sink)
{
    return container_of(sink, struct ws, sink);
}

static void unref_frame(const void *data, size_t len, void *extra)
{
    (void)data;
    (void)len;
    frame_unref(extra);
}

/* Writes frames' messages: straight to the socket when nothing is queued,
 * queuing what it does not take. */
static void write_messages(struct ws *w, struct frame *const *frames, size_t count)
{
    struct evbuffer *out = conn_output(w->conn);
    unsigned char heads[MAX_DIRECT_FRAMES][10];
    struct iovec iov[2 * MAX_DIRECT_FRAMES];
    size_t total = 0, n = 0;

    for (size_t done = 0; done < count; done += n / 2) {
        size_t batch = count - done < MAX_DIRECT_FRAMES ? count - done : MAX_DIRECT_FRAMES;
        n = 0;
        total = 0;
        for (size_t i = 0; i < batch; i++) {
            size_t len = 0;
            const char *text = frame_ws_text(frames[done + i], &len);
            if (text == NULL) {
                log_error("cannot write events: out of memory", "conn=%" PRIu64, w->conn->id);
                conn_close(w->conn, CLOSE_WRITE_ERROR);
                return;
            }
            size_t head = websocket_frame_header(heads[i], WSLAY_TEXT_FRAME, len);
            iov[n++] = (struct iovec){heads[i], head};
            iov[n++] = (struct iovec){(void *)text, len};
            total += head + len;
            w->queued += head + len;
            metrics.bytes_written += len;
        }
        size_t sent = conn_send_direct(w->conn, iov, (int)n);
        if (sent == total)
            continue;
        for (size_t i = 0; i < n; i++) {
            size_t skip = sent < iov[i].iov_len ? sent : iov[i].iov_len;
            sent -= skip;
            const char *bytes = (const char *)iov[i].iov_base + skip;
            size_t len = iov[i].iov_len - skip;
            struct frame *f = i % 2 == 1 ? frames[done + i / 2] : NULL;
            if (len == 0)
                continue;
            if (f != NULL && len >= SHARE_BY_REFERENCE_BYTES &&
                evbuffer_add_reference(out, bytes, len, unref_frame, frame_ref(f)) == 0)
                continue;
            if (f != NULL && len >= SHARE_BY_REFERENCE_BYTES)
                frame_unref(f); /* the reference was not taken */
            evbuffer_add(out, bytes, len);
        }
        conn_flush(w->conn);
    }
}

static void sink_start(struct session_sink *sink, long long retry_ms)
{
    (void)sink;
    (void)retry_ms; /* WebSocket clients choose their own reconnect delay */
}

static void sink_write_frames(struct session_sink *sink, struct frame *const *frames, size_t count)
{
    struct ws *w = ws_of(sink);
    if (w->state == WS_OPEN)
        write_messages(w, frames, count);
}

static void sink_heartbeat(struct session_sink *sink, int64_t unix_time)
{
    struct ws *w = ws_of(sink);
    unsigned char head[10];
    char text[32];
    int len = snprintf(text, sizeof(text), "%" PRId64, unix_time);
    size_t head_len = websocket_frame_header(head, WSLAY_PING, (size_t)len);
    struct iovec iov[2] = {{head, head_len}, {text, (size_t)len}};
    w->queued += head_len + (size_t)len;
    size_t sent = conn_send_direct(w->conn, iov, 2);
    if (sent == head_len + (size_t)len)
        return;
    struct evbuffer *out = conn_output(w->conn);
    for (int i = 0; i < 2; i++) {
        size_t skip = sent < iov[i].iov_len ? sent : iov[i].iov_len;
        sent -= skip;
        evbuffer_add(out, (const char *)iov[i].iov_base + skip, iov[i].iov_len - skip);
    }
    conn_flush(w->conn);
}

static size_t sink_pending(const struct session_sink *sink)
{
    return evbuffer_get_length(conn_output(ws_of(sink)->conn));
}

/* wslay's own frames are not counted, so this may run behind by a pong or
 * two; a client that takes nothing still never moves it. */
static uint64_t sink_taken(const struct session_sink *sink)
{
    const struct ws *w = ws_of(sink);
    size_t pending = sink_pending(sink);
    return w->queued > pending ? w->queued - pending : 0;
}

static void sink_end(struct session_sink *sink, enum close_reason why)
{
    struct ws *w = ws_of(sink);
    if (why == CLOSE_TOKEN_EXPIRED)
        close_with(w, WSLAY_CODE_POLICY_VIOLATION, "credential expired", why);
    else
        close_with(w, WSLAY_CODE_GOING_AWAY, "server shutting down", why);
}

static void sink_abort(struct session_sink *sink, enum close_reason why)
{
    struct ws *w = ws_of(sink);
    /* A slow consumer gets a close frame after what it has not read yet;
     * it is cut at once if even that cannot be written. */
    if (why == CLOSE_SLOW_CONSUMER && w->state == WS_OPEN) {
        ws_enter(w, WS_CLOSING);
        wslay_event_queue_close(w->ctx, 1013, (const uint8_t *)"slow consumer", 13);
        wslay_event_send(w->ctx);
    }
    conn_close(w->conn, why);
}

static const char *sink_peer(const struct session_sink *sink, unsigned *port)
{
    const struct conn *c = ws_of(sink)->conn;
    *port = c->peer_port;
    return conn_peer_address(c);
}

static const struct session_sink_ops ws_sink_ops = {
    .kind = TRANSPORT_WEBSOCKET,
    .start = sink_start,
    .write_frames = sink_write_frames,
    .heartbeat = sink_heartbeat,
    .pending = sink_pending,
    .taken = sink_taken,
    .end = sink_end,
    .abort = sink_abort,
    .peer = sink_peer,
};

struct session_sink *websocket_start(struct conn *c)
{
    struct ws *w = calloc(1, sizeof(*w));
    if (w == NULL || wslay_event_context_server_init(&w->ctx, &wslay_callbacks, w) != 0) {
        free(w);
        c->proto_state = NULL;
        conn_close(c, CLOSE_WRITE_ERROR);
        return NULL;
    }
    w->conn = c;
    w->state = WS_OPEN;
    w->sink.ops = &ws_sink_ops;
    wslay_event_config_set_no_buffering(w->ctx, 1);
    wslay_event_config_set_max_recv_msg_length(w->ctx, c->server->settings.ws_max_message_bytes);
    conn_set_protocol(c, &websocket_protocol, w);
    conn_tune_for_stream(c);
    peer_stream_opened(c->peer);
    conn_set_reading(c, true);
    conn_flush(c);
    if (evbuffer_get_length(conn_input(c)) > 0)
        ws_read(c);
    return &w->sink;
}
