/*
 * stream-load: holds many event streams open over one transport and reads
 * everything they carry, for bench/transports.sh.
 *
 *   stream-load --port P --proto h1|h2|ws [--tls] [--connections N]
 *               [--streams M] [--path /events] [--header 'Name: value']...
 *               [--source-ips A-B] [--duration S]
 *
 * h1: one SSE stream per connection (HTTP/1.1 GET, chunked or not).
 * h2: M SSE streams per connection, HTTP/2 (nghttp2) with prior knowledge
 *     in cleartext, or ALPN h2 over TLS; flow-control windows are handed
 *     back as data is consumed.
 * ws: one WebSocket per connection (RFC 6455 upgrade); pings are answered.
 * --tls: TLS without certificate checks (the benchmark's cert is
 * self-signed), ALPN h2 or http/1.1.
 *
 * An SSE event is counted at each "\ndata:" in a stream's bytes (every
 * event of event-piper and of Nchan has an id line before its data line;
 * heartbeat comments have none), a WebSocket event at each complete text
 * or binary message. Unlike sse-client it checks nothing about ids: it
 * exists so that the client's own cost is the same small one whatever the
 * transport. Connections open at most 200 per 10 ms. On SIGTERM, SIGINT
 * or after --duration it prints one line on stderr:
 *   total events=E bytes=B streams=S refused=R closed=C
 * (streams: answered 200 or 101; refused: any other answer or a failed
 * connection; closed: streams the server ended) and exits 0.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define MARKER "\ndata:"
#define MARKER_LEN 6
#define MAX_HEADERS 16
#define OPEN_PER_TICK 200

enum proto { PROTO_H1, PROTO_H2, PROTO_WS };

struct options {
    const char *host;
    int port;
    enum proto proto;
    bool tls;
    long connections;
    long streams;
    const char *path;
    const char *headers[MAX_HEADERS];
    int header_count;
    uint32_t source_first, source_last;
    bool has_sources;
    double duration;
};

struct totals {
    uint64_t events, bytes, streams, refused, closed;
};

/* Per stream: the tail of the bytes seen so far that could begin a marker. */
struct stream {
    size_t matched; /* bytes of MARKER matched at the end of the data so far */
    bool open;
};

struct conn {
    struct load *load;
    evutil_socket_t fd;
    struct event *connecting;
    struct bufferevent *bev;
    nghttp2_session *h2;
    struct stream *streams; /* h2: index (id - 1) / 2; h1 and ws: one */
    bool head_done;         /* h1, ws: the answer's head was read */
    bool dead;
};

struct load {
    struct options o;
    struct event_base *base;
    struct sockaddr_in server;
    SSL_CTX *ssl;
    struct conn *conns;
    long next;
    struct event *opener, *stopper, *sigterm, *sigint;
    struct totals t;
};

/* ---- counting ------------------------------------------------------------ */

static void count_markers(struct load *l, struct stream *s, const uint8_t *p, size_t n)
{
    size_t m = s->matched;
    for (size_t i = 0; i < n; i++) {
        /* MARKER begins with its only '\n', so a mismatch restarts at 0 or 1. */
        if (p[i] == (uint8_t)MARKER[m]) {
            if (++m == MARKER_LEN) {
                l->t.events++;
                m = 0;
            }
        } else {
            m = p[i] == '\n' ? 1 : 0;
        }
    }
    s->matched = m;
    l->t.bytes += n;
}

static void conn_drop(struct conn *c, bool refused)
{
    if (c->dead)
        return;
    c->dead = true;
    if (refused)
        c->load->t.refused++;
    if (c->connecting != NULL)
        event_free(c->connecting);
    c->connecting = NULL;
    if (c->h2 != NULL)
        nghttp2_session_del(c->h2);
    c->h2 = NULL;
    if (c->bev != NULL)
        bufferevent_free(c->bev); /* closes the socket */
    else if (c->fd >= 0)
        close(c->fd);
    c->bev = NULL;
    c->fd = -1;
}

/* ---- HTTP/2 ----------------------------------------------------------------- */

static ssize_t h2_send(nghttp2_session *s, const uint8_t *data, size_t len, int flags, void *arg)
{
    (void)s;
    (void)flags;
    struct conn *c = arg;
    if (bufferevent_write(c->bev, data, len) != 0)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    return (ssize_t)len;
}

static struct stream *h2_stream(struct conn *c, int32_t id)
{
    long i = (id - 1) / 2;
    return id > 0 && i < c->load->o.streams ? &c->streams[i] : NULL;
}

static int h2_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
                   void *arg)
{
    (void)s;
    (void)flags;
    struct conn *c = arg;
    struct stream *st = h2_stream(c, id);
    if (st != NULL)
        count_markers(c->load, st, data, len);
    return 0;
}

static int h2_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
                     const uint8_t *value, size_t vlen, uint8_t flags, void *arg)
{
    (void)s;
    (void)flags;
    struct conn *c = arg;
    struct stream *st = h2_stream(c, f->hd.stream_id);
    if (st == NULL || nlen != 7 || memcmp(name, ":status", 7) != 0)
        return 0;
    if (vlen == 3 && memcmp(value, "200", 3) == 0) {
        st->open = true;
        c->load->t.streams++;
    } else {
        c->load->t.refused++;
    }
    return 0;
}

static int h2_closed(nghttp2_session *s, int32_t id, uint32_t code, void *arg)
{
    (void)s;
    (void)code;
    struct conn *c = arg;
    struct stream *st = h2_stream(c, id);
    if (st != NULL && st->open) {
        st->open = false;
        c->load->t.closed++;
    }
    return 0;
}

static nghttp2_session_callbacks *h2_callbacks(void)
{
    static nghttp2_session_callbacks *cbs;
    if (cbs == NULL) {
        nghttp2_session_callbacks_new(&cbs);
        nghttp2_session_callbacks_set_send_callback(cbs, h2_send);
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, h2_data);
        nghttp2_session_callbacks_set_on_header_callback(cbs, h2_header);
        nghttp2_session_callbacks_set_on_stream_close_callback(cbs, h2_closed);
    }
    return cbs;
}

static bool h2_start(struct conn *c)
{
    const struct options *o = &c->load->o;
    char authority[64];
    nghttp2_nv nv[5 + MAX_HEADERS];
    char names[MAX_HEADERS][64];
    snprintf(authority, sizeof(authority), "%s:%d", o->host, o->port);
#define NV(n, v)                                                                                   \
    ((nghttp2_nv){(uint8_t *)(n), (uint8_t *)(v), strlen(n), strlen(v), NGHTTP2_NV_FLAG_NONE})
    size_t k = 0;
    nv[k++] = NV(":method", "GET");
    nv[k++] = NV(":scheme", o->tls ? "https" : "http");
    nv[k++] = NV(":authority", authority);
    nv[k++] = NV(":path", o->path);
    nv[k++] = NV("accept", "text/event-stream"); /* Nchan serves EventSource only to it */
    for (int i = 0; i < o->header_count; i++) {
        const char *colon = strchr(o->headers[i], ':');
        size_t n = (size_t)(colon - o->headers[i]);
        for (size_t j = 0; j < n && j < sizeof(names[i]) - 1; j++)
            names[i][j] = (char)(o->headers[i][j] | 0x20); /* HTTP/2 names are lower case */
        names[i][n < sizeof(names[i]) ? n : sizeof(names[i]) - 1] = '\0';
        const char *v = colon + 1;
        while (*v == ' ')
            v++;
        nv[k++] = NV(names[i], v);
    }
#undef NV
    if (nghttp2_session_client_new(&c->h2, h2_callbacks(), c) != 0)
        return false;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20},
    };
    nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, iv, 2);
    nghttp2_session_set_local_window_size(c->h2, NGHTTP2_FLAG_NONE, 0, 16 << 20);
    for (long i = 0; i < o->streams; i++)
        if (nghttp2_submit_request(c->h2, NULL, nv, k, NULL, NULL) < 0)
            return false;
    return nghttp2_session_send(c->h2) == 0;
}

/* ---- HTTP/1.1 and WebSocket ------------------------------------------------- */

static void h1_start(struct conn *c)
{
    const struct options *o = &c->load->o;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    evbuffer_add_printf(out, "GET %s HTTP/1.1\r\nHost: %s:%d\r\n", o->path, o->host, o->port);
    if (o->proto == PROTO_WS)
        evbuffer_add_printf(out, "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                                 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                 "Sec-WebSocket-Version: 13\r\n");
    else
        evbuffer_add_printf(out, "Accept: text/event-stream\r\n");
    for (int i = 0; i < o->header_count; i++)
        evbuffer_add_printf(out, "%s\r\n", o->headers[i]);
    evbuffer_add(out, "\r\n", 2);
}

/* The answer's head: status 200 (SSE) or 101 (WebSocket) opens the stream. */
static bool read_head(struct conn *c, struct evbuffer *in)
{
    struct evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
    if (end.pos < 0)
        return evbuffer_get_length(in) < 16384;
    char status[13] = {0};
    evbuffer_copyout(in, status, 12);
    const char *want = c->load->o.proto == PROTO_WS ? " 101" : " 200";
    evbuffer_drain(in, (size_t)end.pos + 4);
    c->head_done = true;
    if (strncmp(status, "HTTP/1.", 7) != 0 || strncmp(status + 8, want, 4) != 0)
        return false;
    c->streams[0].open = true;
    c->load->t.streams++;
    return true;
}

/* Server frames are unmasked; pings get a masked pong with their payload. */
static void ws_read(struct conn *c, struct evbuffer *in)
{
    for (;;) {
        size_t have = evbuffer_get_length(in);
        if (have < 2)
            return;
        uint8_t h[10];
        evbuffer_copyout(in, h, have < 10 ? have : 10);
        size_t hl = 2;
        uint64_t len = h[1] & 0x7f;
        if (len == 126) {
            hl = 4;
            if (have < hl)
                return;
            len = (uint64_t)h[2] << 8 | h[3];
        } else if (len == 127) {
            hl = 10;
            if (have < hl)
                return;
            len = 0;
            for (int i = 2; i < 10; i++)
                len = len << 8 | h[i];
        }
        if (have < hl + len)
            return;
        unsigned opcode = h[0] & 0x0f;
        bool fin = h[0] & 0x80;
        evbuffer_drain(in, hl);
        c->load->t.bytes += hl + len;
        if ((opcode == 1 || opcode == 2 || opcode == 0) && fin) {
            c->load->t.events++;
        } else if (opcode == 9 && len <= 125) {
            uint8_t pong[6 + 125];
            pong[0] = 0x8a;
            pong[1] = (uint8_t)(0x80 | len);
            memset(pong + 2, 0, 4); /* a zero mask: the payload goes as is */
            evbuffer_remove(in, pong + 6, len);
            bufferevent_write(c->bev, pong, 6 + len);
            continue;
        } else if (opcode == 8) {
            if (c->streams[0].open)
                c->load->t.closed++;
            c->streams[0].open = false;
        }
        evbuffer_drain(in, len);
    }
}

/* ---- connections --------------------------------------------------------- */

static void on_read(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    if (c->load->o.proto == PROTO_H2) {
        struct evbuffer_iovec v[16];
        while (evbuffer_get_length(in) > 0) {
            int n = evbuffer_peek(in, -1, NULL, v, 16);
            size_t used = 0;
            for (int i = 0; i < n && i < 16; i++) {
                if (nghttp2_session_mem_recv(c->h2, v[i].iov_base, v[i].iov_len) < 0) {
                    conn_drop(c, false);
                    return;
                }
                used += v[i].iov_len;
            }
            evbuffer_drain(in, used);
        }
        if (nghttp2_session_send(c->h2) != 0)
            conn_drop(c, false);
        return;
    }
    if (!c->head_done) {
        if (!read_head(c, in)) {
            if (c->head_done)
                conn_drop(c, true);
            return;
        }
    }
    if (c->load->o.proto == PROTO_WS) {
        ws_read(c, in);
        return;
    }
    struct evbuffer_iovec v[16];
    while (evbuffer_get_length(in) > 0) {
        int n = evbuffer_peek(in, -1, NULL, v, 16);
        size_t used = 0;
        for (int i = 0; i < n && i < 16; i++) {
            count_markers(c->load, &c->streams[0], v[i].iov_base, v[i].iov_len);
            used += v[i].iov_len;
        }
        evbuffer_drain(in, used);
    }
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    struct conn *c = arg;
    if (what & BEV_EVENT_CONNECTED)
        return;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        long open = 0;
        long n = c->load->o.proto == PROTO_H2 ? c->load->o.streams : 1;
        for (long i = 0; i < n; i++)
            open += c->streams[i].open;
        c->load->t.closed += (uint64_t)open;
        conn_drop(c, open == 0 && !c->head_done && c->load->o.proto != PROTO_H2);
    }
}

static void on_connected(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct conn *c = arg;
    struct load *l = c->load;
    int err = 0;
    socklen_t len = sizeof(err);
    event_free(c->connecting);
    c->connecting = NULL;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
        conn_drop(c, true);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (l->ssl != NULL) {
        SSL *ssl = SSL_new(l->ssl);
        SSL_set_tlsext_host_name(ssl, "localhost");
        c->bev = bufferevent_openssl_socket_new(l->base, fd, ssl, BUFFEREVENT_SSL_CONNECTING,
                                                BEV_OPT_CLOSE_ON_FREE);
    } else {
        c->bev = bufferevent_socket_new(l->base, fd, BEV_OPT_CLOSE_ON_FREE);
    }
    if (c->bev == NULL) {
        conn_drop(c, true);
        return;
    }
    c->fd = -1; /* the bufferevent owns it */
    bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    if (l->o.proto == PROTO_H2) {
        if (!h2_start(c))
            conn_drop(c, true);
    } else {
        h1_start(c);
    }
}

static void conn_open(struct load *l, struct conn *c)
{
    int one = 1;
    c->load = l;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        c->fd = -1;
        conn_drop(c, true);
        return;
    }
    if (l->o.has_sources) {
        uint32_t span = l->o.source_last - l->o.source_first + 1;
        struct sockaddr_in sin = {.sin_family = AF_INET};
        sin.sin_addr.s_addr = htonl(l->o.source_first + (uint32_t)(l->next % span));
        setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
        if (bind(c->fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
            conn_drop(c, true);
            return;
        }
    }
    if (connect(c->fd, (struct sockaddr *)&l->server, sizeof(l->server)) != 0 &&
        errno != EINPROGRESS) {
        conn_drop(c, true);
        return;
    }
    c->connecting = event_new(l->base, c->fd, EV_WRITE, on_connected, c);
    event_add(c->connecting, NULL);
}

static void on_open_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct load *l = arg;
    for (int i = 0; i < OPEN_PER_TICK && l->next < l->o.connections; i++, l->next++)
        conn_open(l, &l->conns[l->next]);
    if (l->next < l->o.connections) {
        struct timeval tick = {0, 10000};
        evtimer_add(l->opener, &tick);
    }
}

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    event_base_loopbreak(((struct load *)arg)->base);
}

/* ---- options and main ------------------------------------------------------ */

static void usage(void)
{
    fprintf(stderr, "usage: stream-load --port P --proto h1|h2|ws [--tls] [--connections N] "
                    "[--streams M] [--path P] [--header 'N: v']... [--source-ips A-B] "
                    "[--duration S] [--host 127.0.0.1]\n");
    exit(64);
}

static bool parse_ips(struct options *o, const char *v)
{
    char first[32], last[32];
    const char *dash = strchr(v, '-');
    size_t n = dash != NULL ? (size_t)(dash - v) : strlen(v);
    struct in_addr a, b;
    if (n >= sizeof(first))
        return false;
    memcpy(first, v, n);
    first[n] = '\0';
    snprintf(last, sizeof(last), "%s", dash != NULL ? dash + 1 : first);
    if (inet_pton(AF_INET, first, &a) != 1 || inet_pton(AF_INET, last, &b) != 1)
        return false;
    o->source_first = ntohl(a.s_addr);
    o->source_last = ntohl(b.s_addr);
    o->has_sources = o->source_last >= o->source_first;
    return o->has_sources;
}

static void parse(struct options *o, int argc, char **argv)
{
    *o = (struct options){.host = "127.0.0.1", .connections = 1, .streams = 1, .path = "/events"};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--tls") == 0) {
            o->tls = true;
            continue;
        }
        if (i + 1 >= argc)
            usage();
        const char *v = argv[++i];
        if (strcmp(a, "--host") == 0)
            o->host = v;
        else if (strcmp(a, "--port") == 0)
            o->port = atoi(v);
        else if (strcmp(a, "--proto") == 0 && strcmp(v, "h1") == 0)
            o->proto = PROTO_H1;
        else if (strcmp(a, "--proto") == 0 && strcmp(v, "h2") == 0)
            o->proto = PROTO_H2;
        else if (strcmp(a, "--proto") == 0 && strcmp(v, "ws") == 0)
            o->proto = PROTO_WS;
        else if (strcmp(a, "--connections") == 0)
            o->connections = atol(v);
        else if (strcmp(a, "--streams") == 0)
            o->streams = atol(v);
        else if (strcmp(a, "--path") == 0)
            o->path = v;
        else if (strcmp(a, "--header") == 0 && o->header_count < MAX_HEADERS && strchr(v, ':'))
            o->headers[o->header_count++] = v;
        else if (strcmp(a, "--source-ips") == 0 && parse_ips(o, v))
            ;
        else if (strcmp(a, "--duration") == 0)
            o->duration = atof(v);
        else
            usage();
    }
    if (o->port <= 0 || o->connections < 1 || o->streams < 1 ||
        (o->proto != PROTO_H2 && o->streams != 1))
        usage();
}

static SSL_CTX *tls_context(enum proto p)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL)
        return NULL;
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    static const unsigned char h2[] = "\x02h2";
    static const unsigned char h1[] = "\x08http/1.1";
    if (p == PROTO_H2)
        SSL_CTX_set_alpn_protos(ctx, h2, sizeof(h2) - 1);
    else
        SSL_CTX_set_alpn_protos(ctx, h1, sizeof(h1) - 1);
    return ctx;
}

int main(int argc, char **argv)
{
    struct load l = {0};
    parse(&l.o, argc, argv);
    signal(SIGPIPE, SIG_IGN);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    l.server.sin_family = AF_INET;
    l.server.sin_port = htons((uint16_t)l.o.port);
    if (inet_pton(AF_INET, l.o.host, &l.server.sin_addr) != 1) {
        fprintf(stderr, "stream-load: --host must be an IPv4 address\n");
        return 64;
    }
    if (l.o.tls && (l.ssl = tls_context(l.o.proto)) == NULL) {
        fprintf(stderr, "stream-load: no TLS context\n");
        return 1;
    }
    l.base = event_base_new();
    l.conns = calloc((size_t)l.o.connections, sizeof(*l.conns));
    if (l.base == NULL || l.conns == NULL)
        return 1;
    for (long i = 0; i < l.o.connections; i++) {
        l.conns[i].fd = -1;
        l.conns[i].streams = calloc((size_t)l.o.streams, sizeof(struct stream));
        if (l.conns[i].streams == NULL)
            return 1;
    }
    l.opener = evtimer_new(l.base, on_open_tick, &l);
    l.sigterm = evsignal_new(l.base, SIGTERM, on_stop, &l);
    l.sigint = evsignal_new(l.base, SIGINT, on_stop, &l);
    evsignal_add(l.sigterm, NULL);
    evsignal_add(l.sigint, NULL);
    if (l.o.duration > 0) {
        struct timeval d = {(time_t)l.o.duration,
                            (suseconds_t)((l.o.duration - (time_t)l.o.duration) * 1e6)};
        l.stopper = evtimer_new(l.base, on_stop, &l);
        evtimer_add(l.stopper, &d);
    }
    struct timeval now = {0, 0};
    evtimer_add(l.opener, &now);
    event_base_dispatch(l.base);

    fprintf(stderr,
            "total events=%" PRIu64 " bytes=%" PRIu64 " streams=%" PRIu64 " refused=%" PRIu64
            " closed=%" PRIu64 "\n",
            l.t.events, l.t.bytes, l.t.streams, l.t.refused, l.t.closed);
    for (long i = 0; i < l.o.connections; i++) {
        conn_drop(&l.conns[i], false);
        free(l.conns[i].streams);
    }
    free(l.conns);
    event_free(l.opener);
    event_free(l.sigterm);
    event_free(l.sigint);
    if (l.stopper != NULL)
        event_free(l.stopper);
    if (l.ssl != NULL)
        SSL_CTX_free(l.ssl);
    event_base_free(l.base);
    return 0;
}
