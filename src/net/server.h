/*
 * server: the service's listening port and every client connection on it.
 *
 * One port speaks cleartext HTTP/1.1 and HTTP/2 with prior knowledge (h2c),
 * or, with a TLS context, TLS with ALPN choosing h2 or http/1.1. An HTTP/1.1
 * GET may upgrade to WebSocket. Requests from any transport reach the
 * handler as exchanges (exchange.h).
 *
 * The limits every connection lives under are here, once, whatever the
 * protocol: MAX_CONNECTIONS open connections (accepting pauses at the cap),
 * a deadline for the PROXY header, the TLS handshake and each request
 * (REQUEST_TIMEOUT_SECONDS for the whole request, not an idle timer), a
 * request head of at most MAX_HEADER_BYTES and a body of at most
 * MAX_BODY_BYTES, no reading of pipelined requests while an answer is
 * pending, and WRITE_TIMEOUT_SECONDS for a client that takes nothing. Each
 * connection is tied to its client's address record (peers.h), for the
 * per-client limits the handler applies.
 */
#ifndef PIPER_SERVER_H
#define PIPER_SERVER_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/event.h>

#include "net/exchange.h"
#include "net/tls.h"
#include "ops/metrics.h"

struct net_settings {
    size_t max_connections;
    int request_timeout_seconds;
    int write_timeout_seconds;
    size_t max_header_bytes;
    size_t max_body_bytes;
    bool proxy_protocol;     /* every connection starts with a PROXY header */
    int socket_buffer_bytes; /* SO_SNDBUF; 0 leaves the kernel's autotuning */
    /* HTTP/2 */
    unsigned h2_max_concurrent_streams;
    /* WebSocket */
    size_t ws_max_message_bytes;
};

struct net_handler {
    /* A complete request; see exchange.h for how to answer it. */
    void (*request)(void *arg, struct exchange *x);
    void *arg;
};

struct net_server;

/* tls (NULL: cleartext) is borrowed and must outlive the server. */
struct net_server *net_server_new(struct event_base *base, const struct net_settings *settings,
                                  struct tls_context *tls, const struct net_handler *handler);

/* Binds and starts accepting; logs and returns false on failure. */
bool net_server_listen(struct net_server *server, const char *address, long long port)
    __attribute__((warn_unused_result));

/* Stops accepting and lets connections finish what is under way: idle
 * HTTP/1.1 connections close, others close after their current answer,
 * HTTP/2 connections get GOAWAY. Streams are ended by the sessions. */
void net_server_drain(struct net_server *server);
bool net_server_draining(const struct net_server *server);

void net_server_gauges(const struct net_server *server, struct metrics_gauges *g);

/* Closes every connection (their streams report gone) and frees. */
void net_server_free(struct net_server *server);

#endif
