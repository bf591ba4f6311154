/*
 * A client connection, end to end (net/server.c, conn, http1.c, head.c,
 * h2.c, websocket.c): the bytes any client can send to the port. Two real
 * servers listen on loopback in this process, one cleartext and one
 * expecting the PROXY protocol; the first input byte picks one, and the
 * rest is sent on a fresh TCP connection, which the client then closes.
 * The handler answers like the service does in shape: /events opens an SSE
 * stream, a valid upgrade request a WebSocket stream (whose client frames
 * websocket.c then parses), anything else a small answer; the streams are
 * real sessions on a real hub.
 *
 * After each input the loop runs until the server has freed every
 * connection: a crash, a leak, a refused state transition (abort) or a
 * connection still open after LINGER_LIMIT_SECONDS is a finding.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "core/hub.h"
#include "core/session.h"
#include "net/conn.h"
#include "net/exchange.h"
#include "net/server.h"
#include "ops/log.h"
#include "util/clock.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define LINGER_LIMIT_SECONDS 10

static struct event_base *base;
static struct hub *hub;
static struct sessions *sessions;
static struct net_server *servers[2];
static long long ports[2];

static void on_request(void *arg, struct exchange *x)
{
    (void)arg;
    bool websocket = x->websocket_request;
    if (websocket || strcmp(x->path, "/events") == 0) {
        struct session_params params = {.consumer_id = "fuzz"};
        struct session *s = session_new(sessions, &params);
        if (s == NULL) {
            exchange_respond_error(x, HTTP_ERROR_OUT_OF_MEMORY, NULL);
            return;
        }
        struct session_sink *sink =
            websocket ? exchange_open_websocket(x, exchange_header(x, "sec-websocket-protocol"))
                      : exchange_open_sse(x);
        if (sink == NULL) {
            session_discard(s);
            exchange_respond_error(x, HTTP_ERROR_OUT_OF_MEMORY, NULL);
            return;
        }
        session_start(s, sink);
        return;
    }
    /* Something of every part of the request, so it is all read. */
    char body[128];
    int n = snprintf(body, sizeof(body), "%s %s %zu %zu", x->path, x->query ? x->query : "-",
                     x->header_count, x->body_len);
    size_t len = n < 0 ? 0 : (size_t)n < sizeof(body) ? (size_t)n : sizeof(body) - 1;
    exchange_add_header(x, "X-Fuzz", x->header_count > 0 ? x->headers[0].value : "none");
    exchange_respond(x, 200, "text/plain", body, len);
}

/* A free loopback port: bound, read back, released. */
static long long free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sin);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
        getsockname(fd, (struct sockaddr *)&sin, &len) != 0)
        abort();
    close(fd);
    return ntohs(sin.sin_port);
}

static void setup(void)
{
    signal(SIGPIPE, SIG_IGN);
    log_configure(LOG_FORMAT_LOGFMT, LOG_LEVEL_ERROR);
    base = event_base_new();
    hub = hub_new(1000);
    struct session_settings ss = {
        .heartbeat_seconds = 1,
        .retry_ms = 1000,
        .soft_bytes = 64 * 1024,
        .soft_seconds = 1,
        .hard_bytes = 256 * 1024,
        .write_timeout_seconds = 1,
    };
    sessions = sessions_new(base, hub, NULL, &ss);
    if (base == NULL || hub == NULL || sessions == NULL)
        abort();
    struct net_handler handler = {on_request, NULL};
    for (int i = 0; i < 2; i++) {
        struct net_settings ns = {
            .max_connections = 64,
            .request_timeout_seconds = 2,
            .write_timeout_seconds = 2,
            .max_header_bytes = 8192,
            .max_body_bytes = 4096,
            .proxy_protocol = i == 1,
            .h2_max_concurrent_streams = 8,
            .ws_max_message_bytes = 1024,
        };
        servers[i] = net_server_new(base, &ns, NULL, &handler);
        ports[i] = free_port();
        if (servers[i] == NULL || !net_server_listen(servers[i], "127.0.0.1", ports[i]))
            abort();
    }
}

struct client {
    evutil_socket_t fd;
    struct event *ev;
    const uint8_t *data;
    size_t len;
    size_t sent;
    bool closed;
};

static void on_client(evutil_socket_t fd, short what, void *arg)
{
    struct client *c = arg;
    (void)what;
    while (c->sent < c->len) {
        ssize_t n = send(fd, c->data + c->sent, c->len - c->sent, MSG_NOSIGNAL);
        if (n <= 0)
            break;
        c->sent += (size_t)n;
    }
    /* Everything sent (or the server stopped reading and answered): the
     * client goes away, as a client may at any point. */
    char buf[4096];
    ssize_t n;
    while ((n = recv(fd, buf, sizeof(buf), 0)) > 0)
        ;
    if (c->sent == c->len || n == 0 || (n < 0 && errno != EAGAIN)) {
        event_del(c->ev);
        close(fd);
        c->closed = true;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (base == NULL)
        setup();
    if (size == 0)
        return 0;
    int which = data[0] & 1;
    struct client c = {.data = data + 1, .len = size - 1};
    c.fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET,
                              .sin_port = htons((uint16_t)ports[which]),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (c.fd < 0 || connect(c.fd, (struct sockaddr *)&sin, sizeof(sin)) != 0)
        abort();
    evutil_make_socket_nonblocking(c.fd);
    c.ev = event_new(base, c.fd, EV_READ | EV_WRITE | EV_PERSIST, on_client, &c);
    event_add(c.ev, NULL);
    uint64_t accepted_before = servers[which]->next_id;

    /* Until the connection was accepted, the client has gone and the server
     * has freed everything. */
    int64_t deadline = clock_monotonic_ms() + LINGER_LIMIT_SECONDS * 1000;
    for (;;) {
        event_base_loop(base, EVLOOP_ONCE);
        bool accepted = servers[which]->next_id != accepted_before;
        if (c.closed && accepted && servers[0]->count + servers[1]->count == 0)
            break;
        if (clock_monotonic_ms() > deadline) {
            fprintf(stderr, "connection still open %ds after the client left\n",
                    LINGER_LIMIT_SECONDS);
            abort();
        }
    }
    event_free(c.ev);
    if (sessions_count(sessions) != 0)
        abort();
    return 0;
}
