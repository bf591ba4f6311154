/*
 * conn: one client connection, for the protocol modules (http1, h2, ws).
 *
 * States and transitions (conn_enter() refuses any other):
 *
 *   PROXY --header--> TLS --handshake, ALPN h2--> H2
 *     |                 \--handshake, http/1.1 or none--> HTTP1
 *     +--(cleartext)--> DETECT --preface--> H2
 *                         \--anything else--> HTTP1 --upgrade--> WEBSOCKET
 *   (PROXY is skipped without PROXY_PROTOCOL, TLS without a TLS context.)
 *   Any state --close--> CLOSING --> freed.
 *
 * A protocol module runs the connection through its conn_protocol hooks and
 * keeps its own state in c->proto_state. Closing is a request: conn_close()
 * marks the connection and a loop event frees it, after calling the
 * protocol's closing hook, which releases its state (and reports its
 * streams gone). So nothing is freed under a caller's feet.
 */
#ifndef PIPER_CONN_H
#define PIPER_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "net/peers.h"
#include "net/server.h"
#include "util/list.h"

enum conn_state {
    CONN_PROXY,
    CONN_TLS,
    CONN_DETECT,
    CONN_HTTP1,
    CONN_H2,
    CONN_WEBSOCKET,
    CONN_CLOSING,
    CONN_STATE_COUNT
};

struct conn;

struct conn_protocol {
    enum conn_state state; /* the state the protocol runs the connection in */
    enum transport_kind kind;
    void (*read)(struct conn *c);     /* input arrived (conn_input) */
    void (*drained)(struct conn *c);  /* all output has been written */
    void (*deadline)(struct conn *c); /* the armed deadline passed */
    /* The server drains: finish what is under way, start nothing new. */
    void (*drain)(struct conn *c);
    /* The connection ends: release proto_state; write nothing more. */
    void (*closing)(struct conn *c, enum close_reason why);
};

struct net_server {
    struct event_base *base;
    struct net_settings settings;
    struct tls_context *tls;
    struct net_handler handler;
    struct peers *peers;
    struct evconnlistener *listener;
    struct list_node conns;
    struct list_node closing;
    size_t count;
    size_t count_by_state[CONN_STATE_COUNT];
    struct event *close_ev;  /* frees what was closed */
    struct event *resume_ev; /* re-enables accepting after a pass or a pause */
    struct event *pass_ev;   /* marks the end of an accept pass */
    unsigned accepted_in_pass;
    bool accepting;
    bool draining;
    bool at_capacity;
    unsigned accept_errors_logged;
    uint64_t next_id;
};

struct conn {
    struct net_server *server;
    struct list_node link;       /* server->conns */
    struct list_node close_link; /* server->closing */
    uint64_t id;
    enum conn_state state;
    evutil_socket_t fd;
    struct bufferevent *bev;
    bool tls;
    struct peer *peer;
    uint16_t peer_port;
    const struct conn_protocol *proto;
    void *proto_state;
    struct event *deadline_ev;
    struct event *proxy_ev; /* reads the PROXY header from the raw socket */
    uint8_t *proxy_buf;
    size_t proxy_have;
    enum close_reason close_reason;
    bool close_after_flush;
    bool lingering; /* written and shut for writing: reading until EOF */
};

struct evbuffer *conn_input(struct conn *c);
struct evbuffer *conn_output(struct conn *c);

/* Hands the connection to a protocol (its state becomes proto->state). */
void conn_set_protocol(struct conn *c, const struct conn_protocol *proto, void *proto_state);

/* Arms the deadline (seconds from now), replacing any; or disarms it. */
void conn_arm_deadline(struct conn *c, int seconds);
void conn_disarm_deadline(struct conn *c);

void conn_set_reading(struct conn *c, bool on);

/* A connection that now carries a stream: writes of up to 256 KiB per
 * system call (a replay page in a few), and the drained hook called once
 * output is down to HUB_LOW_WATERMARK, not only when empty. */
void conn_tune_for_stream(struct conn *c);

/* Starts writing output (for data added to conn_output() directly). */
void conn_flush(struct conn *c);

/* For a cleartext connection with nothing queued: writes iov straight to
 * the socket (one system call) and returns the bytes taken, which may be
 * fewer than offered; the caller queues the rest. Returns 0 for a TLS
 * connection or when output is queued. */
size_t conn_send_direct(struct conn *c, const struct iovec *iov, int count);

/* Requests the end of the connection: at once, or once the output is
 * written. The latter then shuts the socket for writing and reads (and
 * discards) until the client closes or LINGER_SECONDS pass, so that input
 * the client sent meanwhile does not make the kernel reset the connection
 * before the client has read the last answer. */
void conn_close(struct conn *c, enum close_reason why);
void conn_close_after_flush(struct conn *c, enum close_reason why);
bool conn_closing(const struct conn *c);

/* For the protocol modules' logs: "conn=12 peer=203.0.113.7:51234". */
const char *conn_peer_address(const struct conn *c);

/* The protocols (http1.c, h2.c, ws.c) start here. */
void http1_start(struct conn *c);
void h2_start(struct conn *c);

#endif
