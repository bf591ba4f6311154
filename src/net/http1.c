/*
 * HTTP/1.1 on a connection, on the http_parser library.
 *
 * States and transitions (h1_enter() refuses any other):
 *
 *   READING --request complete--> HANDLING --answer queued--> WRITING
 *      ^                            |  \--open_sse--> STREAMING --end--> ENDING
 *      +-------- output written ----+   \--open_websocket--> (the connection is WebSocket)
 *
 * READING is the only state that reads: a pipelined request waits in the
 * kernel (or in the one read already taken) until the answer before it is
 * written, so a client that sends without reading grows nothing here. The
 * deadline is armed on entering READING and covers the whole request, idle
 * keep-alive time included; it is disarmed once the request is complete.
 *
 * Limits: the head within net/head.h's bounds (431 for size, 400 for
 * control characters), a body at most max_body_bytes (413, also decided from
 * Content-Length before reading it). Every error answer closes the
 * connection.
 *
 * STREAMING is an SSE response: chunked for HTTP/1.1, the raw body for
 * HTTP/1.0 (ended by closing). Its sink writes frames straight to the
 * socket in one sendmsg() when nothing is queued, and queues what the
 * socket does not take. The client has nothing to send on a stream: input
 * is read (so a close is seen at once) and discarded, and more than
 * STREAM_INPUT_MAX bytes of it close the stream.
 */
#include <http_parser.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/frame.h"
#include "core/sse.h"
#include "net/conn.h"
#include "net/exchange.h"
#include "net/head.h"
#include "net/websocket.h"
#include "ops/log.h"

#define STREAM_INPUT_MAX 4096
/* Frames at least this large are shared by reference instead of copied;
 * below it a copy into the output buffer is cheaper than the bookkeeping. */
#define SHARE_BY_REFERENCE_BYTES 256
/* Pieces of one write sent straight to the socket; longer runs (replay
 * pages) go through the output buffer, where one flush writes them all. */
#define MAX_DIRECT_PIECES 64

enum h1_state { H1_READING, H1_HANDLING, H1_WRITING, H1_STREAMING, H1_ENDING, H1_UPGRADED };

static const char *const h1_state_names[] = {"reading",   "handling", "writing",
                                             "streaming", "ending",   "upgraded"};

/* allowed[from][to] */
static const bool h1_allowed[6][6] = {
    [H1_READING] = {[H1_HANDLING] = true},
    [H1_HANDLING] = {[H1_WRITING] = true, [H1_STREAMING] = true, [H1_UPGRADED] = true},
    [H1_WRITING] = {[H1_READING] = true},
    [H1_STREAMING] = {[H1_ENDING] = true},
};

/* What only reading and answering a request needs; freed once a stream
 * starts, so an idle stream keeps just struct h1. */
struct h1_request {
    struct head head;
    struct evbuffer *body;
    struct exchange x;
};

struct h1 {
    struct conn *conn;
    enum h1_state state;
    http_parser parser;
    struct h1_request *req; /* while READING, HANDLING and WRITING */
    bool started;           /* a byte of the current request has arrived */
    enum http_error error;  /* HTTP_ERROR_COUNT: none */
    bool keep_alive;
    bool head_only;
    /* The stream. */
    struct session_sink sink;
    bool chunked;
    size_t stream_input;
    uint64_t queued; /* bytes handed to the socket or the output so far */
};

static const struct conn_protocol http1_protocol;
static const struct exchange_ops h1_exchange_ops;
static const struct session_sink_ops h1_sink_ops;
static void read_requests(struct h1 *h);

static void h1_enter(struct h1 *h, enum h1_state to)
{
    if (!h1_allowed[h->state][to]) {
        log_error("http1: impossible transition", "conn=%" PRIu64 " from=%s to=%s", h->conn->id,
                  h1_state_names[h->state], h1_state_names[to]);
        abort();
    }
    h->state = to;
}

/* ---- the request ---- */

/* Ready for the next request; false when out of memory. */
static bool request_reset(struct h1 *h)
{
    h->started = false;
    h->error = HTTP_ERROR_COUNT;
    if (h->req == NULL && (h->req = calloc(1, sizeof(*h->req))) == NULL)
        return false;
    struct h1_request *r = h->req;
    head_reset(&r->head, h->conn->server->settings.max_header_bytes);
    if (r->body != NULL)
        evbuffer_drain(r->body, evbuffer_get_length(r->body));
    exchange_release(&r->x);
    memset(&r->x, 0, sizeof(r->x));
    return true;
}

static void request_release(struct h1 *h)
{
    struct h1_request *r = h->req;
    if (r == NULL)
        return;
    exchange_release(&r->x);
    head_free(&r->head);
    if (r->body != NULL)
        evbuffer_free(r->body);
    free(r);
    h->req = NULL;
}

static int on_message_begin(http_parser *p)
{
    struct h1 *h = p->data;
    h->started = true;
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    struct h1 *h = p->data;
    h->started = true;
    return head_add_target(&h->req->head, at, len, &h->error) ? 0 : 1;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    struct h1 *h = p->data;
    return head_add_name(&h->req->head, at, len, &h->error) ? 0 : 1;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    struct h1 *h = p->data;
    return head_add_value(&h->req->head, at, len, &h->error) ? 0 : 1;
}

static enum request_method method_of(unsigned method)
{
    switch (method) {
    case HTTP_GET:
        return METHOD_GET;
    case HTTP_HEAD:
        return METHOD_HEAD;
    case HTTP_POST:
        return METHOD_POST;
    case HTTP_OPTIONS:
        return METHOD_OPTIONS;
    default:
        return METHOD_OTHER;
    }
}

/* Whether a comma-separated header value lists token (any case). */
static bool lists_token(const char *value, const char *token)
{
    size_t n = strlen(token);
    for (const char *p = value; p != NULL && *p != '\0';) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *end = p;
        while (*end != '\0' && *end != ',')
            end++;
        const char *last = end;
        while (last > p && (last[-1] == ' ' || last[-1] == '\t'))
            last--;
        if ((size_t)(last - p) == n && strncasecmp(p, token, n) == 0)
            return true;
        p = end;
    }
    return false;
}

/* RFC 6455, 4.2.1: what makes a GET a WebSocket handshake. */
static bool websocket_upgrade_valid(const struct exchange *x, const http_parser *p)
{
    const char *upgrade = exchange_header(x, "upgrade");
    const char *connection = exchange_header(x, "connection");
    const char *key = exchange_header(x, "sec-websocket-key");
    const char *version = exchange_header(x, "sec-websocket-version");
    return x->method == METHOD_GET && p->http_major == 1 && p->http_minor >= 1 && upgrade != NULL &&
           lists_token(upgrade, "websocket") && connection != NULL &&
           lists_token(connection, "upgrade") && key != NULL && strlen(key) == 24 &&
           version != NULL && strcmp(version, "13") == 0;
}

static int on_headers_complete(http_parser *p)
{
    struct h1 *h = p->data;
    struct exchange *x = &h->req->x;
    size_t max_body = h->conn->server->settings.max_body_bytes;

    /* Errors return -1: to http_parser, 1 from this callback means "no
     * body follows", which would hand the request on with its body read as
     * the next request. */
    x->method = method_of(p->method);
    /* Not 1 to refuse: from this callback http_parser takes 1 as "no body
     * follows" and 2 as "upgrade", and would complete the message. */
    if (!head_finish(&h->req->head, x, &h->error))
        return -1;
    if ((p->flags & F_CONTENTLENGTH) && p->content_length > max_body) {
        h->error = HTTP_ERROR_BODY_TOO_LARGE;
        return -1;
    }
    const char *expect = exchange_header(x, "expect");
    if (expect != NULL && strcasecmp(expect, "100-continue") == 0 && p->http_minor >= 1) {
        static const char go_on[] = "HTTP/1.1 100 Continue\r\n\r\n";
        evbuffer_add(conn_output(h->conn), go_on, sizeof(go_on) - 1);
        conn_flush(h->conn);
    }
    x->websocket_request = websocket_upgrade_valid(x, p);
    h->head_only = x->method == METHOD_HEAD;
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct h1 *h = p->data;
    struct h1_request *r = h->req;
    if (r->body == NULL && (r->body = evbuffer_new()) == NULL) {
        h->error = HTTP_ERROR_OUT_OF_MEMORY;
        return 1;
    }
    if (evbuffer_get_length(r->body) + len > h->conn->server->settings.max_body_bytes) {
        h->error = HTTP_ERROR_BODY_TOO_LARGE;
        return 1;
    }
    if (evbuffer_add(r->body, at, len) != 0) {
        h->error = HTTP_ERROR_OUT_OF_MEMORY;
        return 1;
    }
    return 0;
}

static int on_message_complete(http_parser *p)
{
    /* One request at a time: the parser stops here, and what follows stays
     * unread until this one is answered. */
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings parser_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ---- answers ---- */

static void write_status_line(struct evbuffer *out, const struct h1 *h, int status)
{
    evbuffer_add_printf(out, "HTTP/1.%d %d %s\r\n", h->parser.http_minor >= 1 ? 1 : 0, status,
                        http_status_text(status));
}

static void write_added_headers(struct evbuffer *out, const struct exchange *x)
{
    size_t pos = 0;
    const char *name, *value;
    while (exchange_next_header(x, &pos, &name, &value))
        evbuffer_add_printf(out, "%s: %s\r\n", name, value);
}

/* An error answer for a request that never became an exchange (or whose
 * exchange is unusable), then the connection closes. */
static void reject(struct h1 *h, enum http_error e)
{
    char body[256];
    struct evbuffer *out = conn_output(h->conn);
    size_t len = http_error_body(e, NULL, body, sizeof(body));
    int status = http_error_status(e);
    metrics.requests_rejected[e]++;
    evbuffer_add_printf(out,
                        "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                        "Cache-Control: no-store\r\nContent-Length: %zu\r\n"
                        "Connection: close\r\n\r\n",
                        status, http_status_text(status), len);
    evbuffer_add(out, body, len);
    log_debug("request refused", "conn=%" PRIu64 " peer=%s error=%s", h->conn->id,
              conn_peer_address(h->conn), http_error_code(e));
    conn_close_after_flush(h->conn, CLOSE_PROTOCOL_ERROR);
}

static void h1_respond(struct exchange *x, int status, const char *body, size_t len)
{
    struct h1 *h = x->transport_state;
    struct evbuffer *out = conn_output(h->conn);
    bool keep_alive = h->keep_alive && !net_server_draining(h->conn->server);

    write_status_line(out, h, status);
    write_added_headers(out, x);
    if (status != 204)
        evbuffer_add_printf(out, "Content-Length: %zu\r\n", len);
    if (!keep_alive)
        evbuffer_add(out, "Connection: close\r\n", 19);
    else if (h->parser.http_minor == 0)
        evbuffer_add(out, "Connection: keep-alive\r\n", 24);
    evbuffer_add(out, "\r\n", 2);
    if (!h->head_only && body != NULL && status != 204)
        evbuffer_add(out, body, len);
    h->keep_alive = keep_alive;
    exchange_release(x);
    h1_enter(h, H1_WRITING);
    conn_flush(h->conn);
}

/* Hands the request to the application. */
static void dispatch(struct h1 *h)
{
    struct h1_request *r = h->req;
    struct exchange *x = &r->x;
    struct conn *c = h->conn;

    conn_disarm_deadline(c);
    conn_set_reading(c, false);
    h1_enter(h, H1_HANDLING);
    x->body = r->body != NULL ? (const char *)evbuffer_pullup(r->body, -1) : NULL;
    x->body_len = r->body != NULL ? evbuffer_get_length(r->body) : 0;
    x->peer = c->peer;
    x->peer_port = c->peer_port;
    x->transport = TRANSPORT_HTTP1;
    x->tls = c->tls;
    x->ops = &h1_exchange_ops;
    x->transport_state = h;
    /* An upgrade the application does not take (h2c, or a WebSocket request
     * to a path without WebSocket) leaves the parser past the request:
     * answer and close. */
    h->keep_alive = http_should_keep_alive(&h->parser) && !h->parser.upgrade;
    x->keeps_connection = h->keep_alive;
    c->server->handler.request(c->server->handler.arg, x);
}

/* Feeds the parser what has arrived, up to the end of one request. */
static void read_requests(struct h1 *h)
{
    struct evbuffer *in = conn_input(h->conn);
    while (h->state == H1_READING && evbuffer_get_length(in) > 0) {
        struct evbuffer_iovec v;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            return;
        size_t used = http_parser_execute(&h->parser, &parser_settings, v.iov_base, v.iov_len);
        enum http_errno err = HTTP_PARSER_ERRNO(&h->parser);
        evbuffer_drain(in, used);
        if (err == HPE_PAUSED) {
            http_parser_pause(&h->parser, 0);
            dispatch(h);
            return;
        }
        if (err != HPE_OK || h->parser.upgrade) {
            if (err == HPE_OK) /* upgrade without a complete message: not for us */
                h->error = HTTP_ERROR_BAD_REQUEST;
            if (h->error == HTTP_ERROR_COUNT)
                h->error = err == HPE_HEADER_OVERFLOW ? HTTP_ERROR_HEADER_TOO_LARGE
                                                      : HTTP_ERROR_BAD_REQUEST;
            reject(h, h->error);
            return;
        }
    }
}

static void start_reading(struct h1 *h)
{
    if (!request_reset(h)) {
        conn_close(h->conn, CLOSE_WRITE_ERROR);
        return;
    }
    conn_arm_deadline(h->conn, h->conn->server->settings.request_timeout_seconds);
    conn_set_reading(h->conn, true);
    read_requests(h);
}

/* ---- the stream (an SSE response) ---- */

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

static void unref_frame(const void *data, size_t len, void *extra)
{
    (void)data;
    (void)len;
    frame_unref(extra);
}

/* Appends bytes to the output; a slice of a large frame is shared by
 * reference instead of copied. */
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

/* The i-th piece of a write: either one text, or the frames' bytes. */
struct pieces {
    const char *text;
    size_t text_len;
    struct frame *const *frames;
    size_t count;
};

static size_t piece_count(const struct pieces *p)
{
    return p->frames != NULL ? p->count : 1;
}

static const char *piece_bytes(const struct pieces *p, size_t i, size_t *len, struct frame **frame)
{
    if (p->frames == NULL) {
        *len = p->text_len;
        *frame = NULL;
        return p->text;
    }
    *len = p->frames[i]->len;
    *frame = p->frames[i];
    return p->frames[i]->bytes;
}

/* Sends the pieces as one HTTP chunk (or raw, for an HTTP/1.0 client): when
 * nothing is queued, straight to the socket in one system call, queuing
 * only what the socket did not take. */
static void emit(struct h1 *h, const struct pieces *p)
{
    struct evbuffer *out = conn_output(h->conn);
    struct iovec iov[MAX_DIRECT_PIECES + 2];
    char head[24];
    size_t body = 0, n = 0, count = piece_count(p), len;
    struct frame *f;

    for (size_t i = 0; i < count; i++) {
        piece_bytes(p, i, &len, &f);
        body += len;
    }
    if (body == 0)
        return;
    size_t head_len = h->chunked ? chunk_head(head, body) : 0;
    size_t tail_len = h->chunked ? 2 : 0;
    size_t sent = 0;
    metrics.bytes_written += body;
    h->queued += head_len + body + tail_len;

    if (count <= MAX_DIRECT_PIECES) {
        iov[n++] = (struct iovec){head, head_len};
        for (size_t i = 0; i < count; i++) {
            const char *bytes = piece_bytes(p, i, &len, &f);
            iov[n++] = (struct iovec){(void *)bytes, len};
        }
        iov[n++] = (struct iovec){"\r\n", tail_len};
        sent = conn_send_direct(h->conn, iov, (int)n);
        if (sent == head_len + body + tail_len)
            return;
    }
    /* Queue what was not sent, skipping the first `sent` bytes. */
    size_t skip = sent;
    size_t take = skip < head_len ? head_len - skip : 0;
    append_output(out, head + head_len - take, take, NULL);
    skip = skip > head_len ? skip - head_len : 0;
    for (size_t i = 0; i < count; i++) {
        const char *bytes = piece_bytes(p, i, &len, &f);
        size_t off = skip < len ? skip : len;
        append_output(out, bytes + off, len - off, f);
        skip -= off;
    }
    size_t tail_skip = skip < tail_len ? skip : tail_len;
    append_output(out, "\r\n" + tail_skip, tail_len - tail_skip, NULL);
    conn_flush(h->conn);
}

static struct h1 *h1_of_sink(const struct session_sink *sink)
{
    return container_of(sink, struct h1, sink);
}

static void sink_write_text(struct h1 *h, const char *text, size_t len)
{
    struct pieces p = {.text = text, .text_len = len};
    emit(h, &p);
}

static void sink_start(struct session_sink *sink, long long retry_ms)
{
    char retry[48];
    sink_write_text(h1_of_sink(sink), retry, sse_write_retry(retry, sizeof(retry), retry_ms));
}

static void sink_write_frames(struct session_sink *sink, struct frame *const *frames, size_t count)
{
    struct pieces p = {.frames = frames, .count = count};
    emit(h1_of_sink(sink), &p);
}

static void sink_heartbeat(struct session_sink *sink, int64_t unix_time)
{
    char text[48], line[64];
    snprintf(text, sizeof(text), "heartbeat %" PRId64, unix_time);
    sink_write_text(h1_of_sink(sink), line, sse_write_comment(line, sizeof(line), text));
}

static size_t sink_pending(const struct session_sink *sink)
{
    return evbuffer_get_length(conn_output(h1_of_sink(sink)->conn));
}

static uint64_t sink_taken(const struct session_sink *sink)
{
    return h1_of_sink(sink)->queued - sink_pending(sink);
}

static void sink_end(struct session_sink *sink, enum close_reason why)
{
    struct h1 *h = h1_of_sink(sink);
    static const char expired[] = ": credential expired\n\n";
    if (why == CLOSE_TOKEN_EXPIRED)
        sink_write_text(h, expired, sizeof(expired) - 1);
    if (h->chunked) {
        evbuffer_add(conn_output(h->conn), "0\r\n\r\n", 5);
        h->queued += 5;
    }
    h1_enter(h, H1_ENDING);
    conn_close_after_flush(h->conn, why);
}

static void sink_abort(struct session_sink *sink, enum close_reason why)
{
    conn_close(h1_of_sink(sink)->conn, why);
}

static const char *sink_peer(const struct session_sink *sink, unsigned *port)
{
    const struct conn *c = h1_of_sink(sink)->conn;
    *port = c->peer_port;
    return conn_peer_address(c);
}

static const struct session_sink_ops h1_sink_ops = {
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

static struct session_sink *h1_open_sse(struct exchange *x)
{
    struct h1 *h = x->transport_state;
    struct evbuffer *out = conn_output(h->conn);

    h->chunked = h->parser.http_minor >= 1;
    write_status_line(out, h, 200);
    evbuffer_add_printf(out, "Content-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
                             "X-Accel-Buffering: no\r\n");
    write_added_headers(out, x);
    evbuffer_add_printf(out, h->chunked ? "Transfer-Encoding: chunked\r\n\r\n"
                                        : "Connection: close\r\n\r\n");
    h1_enter(h, H1_STREAMING);
    request_release(h); /* the exchange with it */
    peer_stream_opened(h->conn->peer);
    h->sink.ops = &h1_sink_ops;
    conn_tune_for_stream(h->conn);
    /* Reading goes on, only to see the client leave. */
    conn_set_reading(h->conn, true);
    conn_flush(h->conn);
    return &h->sink;
}

static struct session_sink *h1_open_websocket(struct exchange *x, const char *subprotocol)
{
    struct h1 *h = x->transport_state;
    struct conn *c = h->conn;
    if (!x->websocket_request)
        return NULL;
    struct evbuffer *out = conn_output(c);
    char accept[WEBSOCKET_ACCEPT_LEN + 1];
    websocket_accept_key(exchange_header(x, "sec-websocket-key"), accept);
    evbuffer_add_printf(out,
                        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                        "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n",
                        accept);
    if (subprotocol != NULL)
        evbuffer_add_printf(out, "Sec-WebSocket-Protocol: %s\r\n", subprotocol);
    write_added_headers(out, x);
    evbuffer_add(out, "\r\n", 2);
    h1_enter(h, H1_UPGRADED);
    request_release(h);
    free(h);
    /* Bytes after the request are the client's first frames. */
    return websocket_start(c);
}

static const struct exchange_ops h1_exchange_ops = {
    .respond = h1_respond,
    .open_sse = h1_open_sse,
    .open_websocket = h1_open_websocket,
};

/* ---- connection hooks ---- */

static void http1_read(struct conn *c)
{
    struct h1 *h = c->proto_state;
    struct evbuffer *in = conn_input(c);
    if (h->state == H1_READING) {
        read_requests(h);
        return;
    }
    if (h->state == H1_STREAMING || h->state == H1_ENDING) {
        h->stream_input += evbuffer_get_length(in);
        evbuffer_drain(in, evbuffer_get_length(in));
        if (h->stream_input > STREAM_INPUT_MAX)
            conn_close(c, CLOSE_PROTOCOL_ERROR);
    }
}

static void release_empty_chains(struct evbuffer *buf)
{
    /* libevent keeps an emptied buffer's last chain (about 1 KiB) for
     * reuse; an idle stream has thousands of siblings and nothing to
     * buffer, so draining zero bytes from the empty buffer frees it. */
    if (evbuffer_get_length(buf) == 0)
        evbuffer_drain(buf, 0);
}

static void http1_drained(struct conn *c)
{
    struct h1 *h = c->proto_state;
    if (h->state == H1_STREAMING) {
        release_empty_chains(conn_output(c));
        session_sink_drained(&h->sink); /* at HUB_LOW_WATERMARK (conn_tune_for_stream) */
        return;
    }
    if (h->state != H1_WRITING)
        return;
    if (!h->keep_alive) {
        conn_close(c, CLOSE_CLIENT_GONE);
        return;
    }
    h1_enter(h, H1_READING);
    start_reading(h);
}

static void http1_deadline(struct conn *c)
{
    struct h1 *h = c->proto_state;
    if (h->state != H1_READING)
        return;
    if (h->started)
        reject(h, HTTP_ERROR_REQUEST_TIMEOUT);
    else
        conn_close(c, CLOSE_CLIENT_GONE); /* an idle keep-alive connection */
}

static void http1_drain(struct conn *c)
{
    struct h1 *h = c->proto_state;
    h->keep_alive = false;
    if (h->state == H1_READING && !h->started)
        conn_close(c, CLOSE_SHUTDOWN);
}

static void http1_closing(struct conn *c, enum close_reason why)
{
    struct h1 *h = c->proto_state;
    if (h == NULL)
        return;
    if (h->state == H1_HANDLING && h->req != NULL)
        exchange_abort(&h->req->x);
    if ((h->state == H1_STREAMING || h->state == H1_ENDING) && h->sink.ops != NULL) {
        peer_stream_closed(c->peer);
        if (h->sink.session != NULL)
            session_sink_gone(&h->sink, why);
    }
    request_release(h);
    free(h);
    c->proto_state = NULL;
}

static const struct conn_protocol http1_protocol = {
    .state = CONN_HTTP1,
    .kind = TRANSPORT_HTTP1,
    .read = http1_read,
    .drained = http1_drained,
    .deadline = http1_deadline,
    .drain = http1_drain,
    .closing = http1_closing,
};

void http1_start(struct conn *c)
{
    struct h1 *h = calloc(1, sizeof(*h));
    if (h == NULL) {
        conn_close(c, CLOSE_WRITE_ERROR);
        return;
    }
    h->conn = c;
    h->state = H1_READING;
    http_parser_init(&h->parser, HTTP_REQUEST);
    h->parser.data = h;
    conn_set_protocol(c, &http1_protocol, h);
    start_reading(h);
}
