/*
 * The accept path and the life of a connection.
 *
 * Accepting: our own evconnlistener, so that accept failures at the
 * file-descriptor limit pause accepting for a moment instead of spinning the
 * loop, accepts per loop pass are capped, and accepting stops while
 * MAX_CONNECTIONS connections are open (the kernel's backlog holds the rest
 * until one closes).
 *
 * A connection starts on the raw socket while it reads a PROXY header (with
 * MSG_PEEK, so that not one byte past the header is taken from the socket:
 * what follows may be a TLS hello that OpenSSL must read itself), then gets
 * a bufferevent (plain or OpenSSL), then a protocol. One deadline timer
 * covers every phase before a protocol takes over, and protocols re-arm it
 * for their own phases.
 */
#include "net/server.h"

#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/bufferevent_ssl.h>

#include "core/hub.h"
#include "net/conn.h"
#include "net/proxy_protocol.h"
#include "ops/log.h"

#define ACCEPTS_PER_PASS 256
#define ACCEPT_PAUSE_MS 250
#define LISTEN_BACKLOG 4096
/* Input buffered per connection before the protocol has consumed it. */
#define READ_HIGH_WATERMARK (64 * 1024)
/* Longest wait for the client's close after a closing answer is written. */
#define LINGER_SECONDS 2

static const char *const state_names[CONN_STATE_COUNT] = {"proxy", "tls",       "detect", "http1",
                                                          "h2",    "websocket", "closing"};

/* allowed[from][to] */
static const bool allowed[CONN_STATE_COUNT][CONN_STATE_COUNT] = {
    [CONN_PROXY] = {[CONN_TLS] = true, [CONN_DETECT] = true, [CONN_CLOSING] = true},
    [CONN_TLS] = {[CONN_HTTP1] = true, [CONN_H2] = true, [CONN_CLOSING] = true},
    [CONN_DETECT] = {[CONN_HTTP1] = true, [CONN_H2] = true, [CONN_CLOSING] = true},
    [CONN_HTTP1] = {[CONN_WEBSOCKET] = true, [CONN_CLOSING] = true},
    [CONN_H2] = {[CONN_CLOSING] = true},
    [CONN_WEBSOCKET] = {[CONN_CLOSING] = true},
};

static void conn_enter(struct conn *c, enum conn_state to)
{
    if (!allowed[c->state][to]) {
        log_error("connection: impossible transition", "conn=%" PRIu64 " from=%s to=%s", c->id,
                  state_names[c->state], state_names[to]);
        abort();
    }
    c->server->count_by_state[c->state]--;
    c->server->count_by_state[to]++;
    c->state = to;
}

struct evbuffer *conn_input(struct conn *c)
{
    return bufferevent_get_input(c->bev);
}

struct evbuffer *conn_output(struct conn *c)
{
    return bufferevent_get_output(c->bev);
}

const char *conn_peer_address(const struct conn *c)
{
    return c->peer != NULL ? peer_address(c->peer) : "?";
}

bool conn_closing(const struct conn *c)
{
    return c->state == CONN_CLOSING;
}

/* ---- closing ---- */

static void conn_free(struct conn *c)
{
    struct net_server *server = c->server;
    if (c->proto != NULL && c->proto->closing != NULL)
        c->proto->closing(c, c->close_reason);
    c->proto = NULL;
    if (c->bev != NULL)
        bufferevent_free(c->bev); /* closes the socket */
    else if (c->fd >= 0)
        evutil_closesocket(c->fd);
    if (c->deadline_ev != NULL)
        event_free(c->deadline_ev);
    if (c->proxy_ev != NULL)
        event_free(c->proxy_ev);
    free(c->proxy_buf);
    peer_put(server->peers, c->peer);
    list_remove(&c->link);
    list_remove(&c->close_link);
    server->count_by_state[c->state]--;
    server->count--;
    free(c);
    if (server->at_capacity && server->count < server->settings.max_connections) {
        server->at_capacity = false;
        if (server->accepting)
            event_active(server->resume_ev, EV_TIMEOUT, 1);
    }
}

static void on_close_requested(evutil_socket_t fd, short what, void *arg)
{
    struct net_server *server = arg;
    struct list_node *n;
    (void)fd;
    (void)what;
    while ((n = list_pop(&server->closing)) != NULL)
        conn_free(container_of(n, struct conn, close_link));
}

void conn_close(struct conn *c, enum close_reason why)
{
    if (list_node_linked(&c->close_link))
        return;
    if (c->state != CONN_CLOSING) {
        c->close_reason = why;
        conn_enter(c, CONN_CLOSING);
    }
    if (c->bev != NULL)
        bufferevent_disable(c->bev, EV_READ | EV_WRITE);
    if (c->proxy_ev != NULL)
        event_del(c->proxy_ev);
    if (c->deadline_ev != NULL)
        event_del(c->deadline_ev);
    list_append(&c->server->closing, &c->close_link);
    event_active(c->server->close_ev, EV_TIMEOUT, 1);
}

static void linger(struct conn *c)
{
    c->lingering = true;
    shutdown(c->fd, SHUT_WR);
    evbuffer_drain(conn_input(c), evbuffer_get_length(conn_input(c)));
    bufferevent_enable(c->bev, EV_READ);
    conn_arm_deadline(c, LINGER_SECONDS);
}

void conn_close_after_flush(struct conn *c, enum close_reason why)
{
    if (c->state == CONN_CLOSING)
        return;
    c->close_reason = why;
    conn_enter(c, CONN_CLOSING);
    c->close_after_flush = true;
    bufferevent_disable(c->bev, EV_READ);
    /* The write callback must mean "all written" now, whatever low
     * watermark the protocol used. */
    bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
    if (evbuffer_get_length(conn_output(c)) == 0)
        linger(c);
    else
        bufferevent_enable(c->bev, EV_WRITE);
}

/* ---- deadlines, reading, writing ---- */

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    (void)fd;
    (void)what;
    if (c->lingering) {
        conn_close(c, c->close_reason);
        return;
    }
    if (c->state == CONN_CLOSING)
        return;
    if (c->proto != NULL && c->proto->deadline != NULL) {
        c->proto->deadline(c);
        return;
    }
    /* Before any protocol: the PROXY header or the TLS handshake. */
    conn_close(c, CLOSE_CLIENT_GONE);
}

void conn_arm_deadline(struct conn *c, int seconds)
{
    struct timeval tv = {seconds, 0};
    if (c->deadline_ev == NULL)
        c->deadline_ev = evtimer_new(c->server->base, on_deadline, c);
    if (c->deadline_ev == NULL || evtimer_add(c->deadline_ev, &tv) != 0)
        conn_close(c, CLOSE_WRITE_ERROR); /* without a deadline it would be unbounded */
}

void conn_disarm_deadline(struct conn *c)
{
    /* Freed rather than kept: an idle stream should cost as little as
     * possible, and a deadline is re-armed at most once per request. */
    if (c->deadline_ev != NULL) {
        event_free(c->deadline_ev);
        c->deadline_ev = NULL;
    }
}

void conn_set_reading(struct conn *c, bool on)
{
    if (c->state == CONN_CLOSING)
        return;
    if (on)
        bufferevent_enable(c->bev, EV_READ);
    else
        bufferevent_disable(c->bev, EV_READ);
}

void conn_tune_for_stream(struct conn *c)
{
    /* libevent writes at most 16 KiB per call by default: a replay page
     * would then take dozens of trips through the loop. */
    bufferevent_set_max_single_write(c->bev, 256 * 1024);
    bufferevent_setwatermark(c->bev, EV_WRITE, HUB_LOW_WATERMARK, 0);
}

/* Largest TLS record's payload. */
#define TLS_RECORD_BYTES 16384

void conn_flush(struct conn *c)
{
    struct evbuffer *out = conn_output(c);
    size_t len = evbuffer_get_length(out);
    if (len == 0)
        return;
    /* libevent's OpenSSL bufferevent makes one SSL_write(), so one record and
     * one send(), per chain of the output; a delivery is several chains
     * (chunk header, shared frame, CRLF; an HTTP/2 connection has two per
     * stream), which made TLS fan-out cost twice cleartext's. One chain per
     * record instead: the copy is far cheaper than the calls, and a chain
     * already that long is left as it is. */
    if (c->tls)
        evbuffer_pullup(out, (ev_ssize_t)(len < TLS_RECORD_BYTES ? len : TLS_RECORD_BYTES));
    bufferevent_enable(c->bev, EV_WRITE);
}

size_t conn_send_direct(struct conn *c, const struct iovec *iov, int count)
{
    if (c->tls || c->state == CONN_CLOSING || evbuffer_get_length(conn_output(c)) > 0)
        return 0;
    struct msghdr msg = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)count};
    ssize_t r = sendmsg(c->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    /* An error is left for the bufferevent to find on its own write. */
    return r > 0 ? (size_t)r : 0;
}

/* ---- bufferevent callbacks ---- */

static void on_read(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;
    (void)bev;
    if (c->lingering)
        evbuffer_drain(conn_input(c), evbuffer_get_length(conn_input(c)));
    else if (c->state != CONN_CLOSING && c->proto != NULL)
        c->proto->read(c);
}

static void on_write(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;
    (void)bev;
    if (c->close_after_flush) {
        if (!c->lingering)
            linger(c);
        return;
    }
    if (c->state != CONN_CLOSING && c->proto != NULL && c->proto->drained != NULL)
        c->proto->drained(c);
}

static void start_protocol(struct conn *c);

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    struct conn *c = arg;
    (void)bev;
    if (what & BEV_EVENT_CONNECTED) {
        /* The TLS handshake is done; the deadline runs on for the first
         * request. */
        start_protocol(c);
        return;
    }
    if (c->state == CONN_TLS) {
        metrics.tls_handshake_failures++;
        log_debug("TLS handshake failed", "conn=%" PRIu64 " peer=%s error=%s", c->id,
                  conn_peer_address(c), tls_last_error());
        conn_close(c, CLOSE_CLIENT_GONE);
        return;
    }
    /* Output waited WRITE_TIMEOUT_SECONDS without the client taking a
     * byte: seen by the bufferevent's timer, or first by the kernel
     * (TCP_USER_TIMEOUT, set to the same time, also covers a zero window),
     * which ends the socket with ETIMEDOUT. */
    if ((what & BEV_EVENT_TIMEOUT) ||
        ((what & BEV_EVENT_ERROR) && EVUTIL_SOCKET_ERROR() == ETIMEDOUT)) {
        conn_close(c, CLOSE_SLOW_CONSUMER);
        return;
    }
    /* EOF, or a reset seen on a read or a write: the client is gone. */
    conn_close(c, CLOSE_CLIENT_GONE);
}

void conn_set_protocol(struct conn *c, const struct conn_protocol *proto, void *proto_state)
{
    conn_enter(c, proto->state);
    c->proto = proto;
    c->proto_state = proto_state;
}

/* Cleartext: HTTP/2 with prior knowledge starts with this preface; anything
 * else is HTTP/1.1. One byte decides for almost every request ('G', 'O',
 * 'H'); "P" waits for "PR" against "POST". A connection that starts like
 * the preface ("PRI ") but is not it is neither: it is closed. */
static const char h2_preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

static void detect_read(struct conn *c)
{
    struct evbuffer *in = conn_input(c);
    size_t have = evbuffer_get_length(in);
    size_t n = have < sizeof(h2_preface) - 1 ? have : sizeof(h2_preface) - 1;
    const char *bytes = (const char *)evbuffer_pullup(in, (ev_ssize_t)n);
    if (n == 0)
        return;
    if (memcmp(bytes, h2_preface, n) != 0) {
        if (n >= 4 && memcmp(bytes, "PRI ", 4) == 0) {
            conn_close(c, CLOSE_PROTOCOL_ERROR);
            return;
        }
        http1_start(c);
        return;
    }
    if (n == sizeof(h2_preface) - 1)
        h2_start(c);
}

static const struct conn_protocol detect_protocol = {
    .state = CONN_DETECT,
    .kind = TRANSPORT_HTTP1,
    .read = detect_read,
};

/* After the TLS handshake, ALPN has chosen. */
static void start_protocol(struct conn *c)
{
    const char *alpn = tls_selected_protocol(bufferevent_openssl_get_ssl(c->bev));
    if (alpn != NULL && strcmp(alpn, "h2") == 0)
        h2_start(c);
    else
        http1_start(c);
}

/* Gives the connection its bufferevent, once the PROXY header (if any) is
 * consumed from the socket. */
static void open_stream(struct conn *c)
{
    struct net_server *server = c->server;
    if (server->tls != NULL) {
        SSL *ssl = tls_new_session(server->tls);
        c->bev = ssl != NULL ? bufferevent_openssl_socket_new(server->base, c->fd, ssl,
                                                              BUFFEREVENT_SSL_ACCEPTING,
                                                              BEV_OPT_CLOSE_ON_FREE)
                             : NULL;
        if (c->bev == NULL && ssl != NULL)
            SSL_free(ssl);
        c->tls = true;
    } else {
        c->bev = bufferevent_socket_new(server->base, c->fd, BEV_OPT_CLOSE_ON_FREE);
    }
    if (c->bev == NULL) {
        log_error("cannot set up a connection: out of memory", "conn=%" PRIu64, c->id);
        conn_close(c, CLOSE_WRITE_ERROR);
        return;
    }
    struct timeval write_timeout = {server->settings.write_timeout_seconds, 0};
    bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
    bufferevent_set_timeouts(c->bev, NULL, &write_timeout);
    bufferevent_setwatermark(c->bev, EV_READ, 0, READ_HIGH_WATERMARK);
    bufferevent_enable(c->bev, EV_READ);
    if (c->tls) {
        conn_enter(c, CONN_TLS);
        return; /* on_event(CONNECTED) goes on */
    }
    /* The deadline armed at accept still runs: the first request must
     * arrive within it. */
    conn_set_protocol(c, &detect_protocol, NULL);
    detect_read(c);
}

/* ---- the PROXY header, read from the raw socket ---- */

static void proxy_read(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    struct proxy_header header;
    const char *why = NULL;
    (void)what;

    ssize_t n = recv(fd, c->proxy_buf + c->proxy_have, PROXY_HEADER_MAX - c->proxy_have, MSG_PEEK);
    if (n <= 0) {
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        conn_close(c, CLOSE_CLIENT_GONE);
        return;
    }
    enum proxy_result r =
        proxy_header_parse(c->proxy_buf, c->proxy_have + (size_t)n, &header, &why);
    /* Take from the socket exactly what belongs to the header: everything
     * peeked while it is incomplete (level-triggered polling would spin on
     * bytes left there), only its rest once it is complete. */
    size_t take = r == PROXY_DONE ? header.length - c->proxy_have : (size_t)n;
    if (r != PROXY_INVALID && recv(fd, c->proxy_buf + c->proxy_have, take, 0) != (ssize_t)take) {
        conn_close(c, CLOSE_CLIENT_GONE);
        return;
    }
    c->proxy_have += take;
    if (r == PROXY_NEED_MORE)
        return;
    if (r == PROXY_INVALID) {
        metrics.requests_rejected[HTTP_ERROR_BAD_REQUEST]++;
        static struct log_limit limit;
        unsigned dropped;
        if (log_limit_allow(&limit, &dropped))
            log_warn("connection refused: bad PROXY header",
                     "conn=%" PRIu64 " peer=%s reason=%s dropped=%u", c->id, conn_peer_address(c),
                     why, dropped);
        conn_close(c, CLOSE_CLIENT_GONE);
        return;
    }
    if (header.has_address) {
        struct peer *p = peer_get(c->server->peers, (struct sockaddr *)&header.source);
        if (p == NULL) {
            conn_close(c, CLOSE_WRITE_ERROR);
            return;
        }
        peer_put(c->server->peers, c->peer);
        c->peer = p;
        c->peer_port = ntohs(header.source.ss_family == AF_INET
                                 ? ((struct sockaddr_in *)&header.source)->sin_port
                                 : ((struct sockaddr_in6 *)&header.source)->sin6_port);
    }
    event_free(c->proxy_ev);
    c->proxy_ev = NULL;
    free(c->proxy_buf);
    c->proxy_buf = NULL;
    open_stream(c);
}

/* ---- accepting ---- */

static void tune_socket(struct net_server *server, evutil_socket_t fd)
{
    int on = 1;
    unsigned user_timeout_ms = (unsigned)server->settings.write_timeout_seconds * 1000u;
    /* Events are small and latency matters: no Nagle delay. A peer that
     * vanished without a FIN is dropped once data stays unacknowledged for
     * the write timeout. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
    setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout_ms, sizeof(user_timeout_ms));
    /* Autotuning lets the kernel hold up to tcp_wmem's maximum (4 MiB by
     * default) for a client that stopped reading, before anything is
     * pending here where the slow-consumer limits see it. A fixed buffer
     * bounds that kernel memory per connection. */
    int sndbuf = server->settings.socket_buffer_bytes;
    if (sndbuf > 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
}

static void on_pass_end(evutil_socket_t fd, short what, void *arg)
{
    struct net_server *server = arg;
    (void)fd;
    (void)what;
    server->accepted_in_pass = 0;
    if (server->accepting && !server->at_capacity && !evtimer_pending(server->resume_ev, NULL))
        evconnlistener_enable(server->listener);
}

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
    struct net_server *server = arg;
    (void)fd;
    (void)what;
    if (server->accepting && !server->at_capacity)
        evconnlistener_enable(server->listener);
}

static void on_accept(struct evconnlistener *listener, evutil_socket_t fd, struct sockaddr *addr,
                      int addr_len, void *arg)
{
    struct net_server *server = arg;
    (void)addr_len;

    if (server->accepted_in_pass++ == 0)
        event_active(server->pass_ev, EV_TIMEOUT, 1);
    if (server->accepted_in_pass >= ACCEPTS_PER_PASS)
        evconnlistener_disable(listener);
    metrics.connections_accepted++;

    struct conn *c = calloc(1, sizeof(*c));
    if (c == NULL || (c->peer = peer_get(server->peers, addr)) == NULL) {
        free(c);
        evutil_closesocket(fd);
        return;
    }
    c->server = server;
    c->fd = fd;
    c->id = ++server->next_id;
    c->peer_port = ntohs(addr->sa_family == AF_INET ? ((struct sockaddr_in *)addr)->sin_port
                                                    : ((struct sockaddr_in6 *)addr)->sin6_port);
    c->state = CONN_PROXY;
    list_init(&c->close_link);
    list_append(&server->conns, &c->link);
    server->count++;
    server->count_by_state[CONN_PROXY]++;
    if (server->count >= server->settings.max_connections) {
        server->at_capacity = true;
        metrics.connections_limited++;
        evconnlistener_disable(listener);
    }
    tune_socket(server, fd);
    conn_arm_deadline(c, server->settings.request_timeout_seconds);
    if (!server->settings.proxy_protocol) {
        open_stream(c);
        return;
    }
    c->proxy_buf = malloc(PROXY_HEADER_MAX);
    c->proxy_ev = event_new(server->base, fd, EV_READ | EV_PERSIST, proxy_read, c);
    if (c->proxy_buf == NULL || c->proxy_ev == NULL || event_add(c->proxy_ev, NULL) != 0)
        conn_close(c, CLOSE_WRITE_ERROR);
}

/* accept() failed with something other than "try again": most often the
 * descriptor limit. Pause instead of spinning on a socket that stays
 * readable; connections closing meanwhile free descriptors. */
static void on_accept_error(struct evconnlistener *listener, void *arg)
{
    struct net_server *server = arg;
    int err = EVUTIL_SOCKET_ERROR();
    struct timeval pause = {0, ACCEPT_PAUSE_MS * 1000};

    evconnlistener_disable(listener);
    evtimer_add(server->resume_ev, &pause);
    if (server->accept_errors_logged++ % 100 == 0)
        log_warn("accept failed; pausing", "error=%s pause_ms=%d connections=%zu",
                 evutil_socket_error_to_string(err), ACCEPT_PAUSE_MS, server->count);
}

struct net_server *net_server_new(struct event_base *base, const struct net_settings *settings,
                                  struct tls_context *tls, const struct net_handler *handler)
{
    struct net_server *server = calloc(1, sizeof(*server));
    if (server == NULL)
        return NULL;
    server->base = base;
    server->settings = *settings;
    server->tls = tls;
    server->handler = *handler;
    list_init(&server->conns);
    list_init(&server->closing);
    server->peers = peers_new();
    server->close_ev = event_new(base, -1, 0, on_close_requested, server);
    server->resume_ev = evtimer_new(base, on_resume, server);
    server->pass_ev = event_new(base, -1, 0, on_pass_end, server);
    if (server->peers == NULL || server->close_ev == NULL || server->resume_ev == NULL ||
        server->pass_ev == NULL) {
        net_server_free(server);
        return NULL;
    }
    return server;
}

bool net_server_listen(struct net_server *server, const char *address, long long port)
{
    struct sockaddr_storage ss;
    int ss_len = (int)sizeof(ss);
    char spec[300];

    snprintf(spec, sizeof(spec), strchr(address, ':') != NULL ? "[%s]:%lld" : "%s:%lld", address,
             port);
    memset(&ss, 0, sizeof(ss));
    if (evutil_parse_sockaddr_port(spec, (struct sockaddr *)&ss, &ss_len) != 0) {
        log_error("invalid BIND_ADDRESS", "value=%s", address);
        return false;
    }
    server->listener = evconnlistener_new_bind(server->base, on_accept, server,
                                               LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
                                                   LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_DISABLED,
                                               LISTEN_BACKLOG, (struct sockaddr *)&ss, ss_len);
    if (server->listener == NULL) {
        log_error("cannot listen", "address=%s port=%lld error=%s", address, port,
                  evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
        return false;
    }
    evconnlistener_set_error_cb(server->listener, on_accept_error);
    server->accepting = true;
    evconnlistener_enable(server->listener);
    log_info("listening", "address=%s port=%lld tls=%d proxy_protocol=%d", address, port,
             server->tls != NULL, server->settings.proxy_protocol);
    return true;
}

void net_server_drain(struct net_server *server)
{
    server->accepting = false;
    server->draining = true;
    if (server->listener != NULL)
        evconnlistener_disable(server->listener);
    event_del(server->resume_ev);
    for (struct list_node *n = server->conns.next, *next; n != &server->conns; n = next) {
        next = n->next;
        struct conn *c = container_of(n, struct conn, link);
        if (c->state == CONN_CLOSING)
            continue;
        if (c->proto != NULL && c->proto->drain != NULL)
            c->proto->drain(c);
        else if (c->state == CONN_PROXY || c->state == CONN_TLS || c->state == CONN_DETECT)
            conn_close(c, CLOSE_SHUTDOWN);
    }
}

bool net_server_draining(const struct net_server *server)
{
    return server->draining;
}

void net_server_gauges(const struct net_server *server, struct metrics_gauges *g)
{
    g->connections_open[TRANSPORT_HTTP1] =
        server->count_by_state[CONN_HTTP1] + server->count_by_state[CONN_DETECT];
    g->connections_open[TRANSPORT_H2] = server->count_by_state[CONN_H2];
    g->connections_open[TRANSPORT_WEBSOCKET] = server->count_by_state[CONN_WEBSOCKET];
    g->connections_open[TRANSPORT_KIND_COUNT] =
        server->count_by_state[CONN_PROXY] + server->count_by_state[CONN_TLS];
    g->client_addresses = peers_count(server->peers);
}

void net_server_free(struct net_server *server)
{
    if (server == NULL)
        return;
    if (server->listener != NULL)
        evconnlistener_free(server->listener);
    while (!list_empty(&server->conns)) {
        struct conn *c = container_of(server->conns.next, struct conn, link);
        conn_close(c, CLOSE_SHUTDOWN);
        conn_free(c);
    }
    if (server->close_ev != NULL)
        event_free(server->close_ev);
    if (server->resume_ev != NULL)
        event_free(server->resume_ev);
    if (server->pass_ev != NULL)
        event_free(server->pass_ev);
    peers_free(server->peers);
    free(server);
}
