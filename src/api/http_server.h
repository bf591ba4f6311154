/*
 * http_server: the HTTP front door (libevent evhttp).
 *
 * Routes: GET /events (the SSE stream; consumer id and last id from headers
 * or the consumer_id / last_event_id query parameters, headers winning;
 * CORS preflight with OPTIONS), GET /healthz, GET /readyz, GET /metrics, the
 * demo page at / and POST /demo/events (DEMO=1 only). Every error is a short JSON body with a
 * stable "error" code: 400 for bad input, 404 for unknown paths, 405 (with Allow) for other
 * methods, 503 (with Retry-After) when full or shutting down.
 *
 * The listening socket is our own evconnlistener so that accept failures at
 * the file-descriptor limit pause accepting for a moment instead of spinning
 * the loop, and so that accepts per loop pass are capped.
 */
#ifndef PIPER_HTTP_SERVER_H
#define PIPER_HTTP_SERVER_H

#include <stdbool.h>

#include <event2/event.h>

#include "api/auth.h"
#include "ops/config.h"
#include "api/demo.h"
#include "ops/metrics.h"
#include "core/session.h"

/* What the server needs to know about the rest of the service. */
struct http_server_hooks {
    /* True when events can flow; otherwise *reason says why not. */
    bool (*ready)(void *arg, const char **reason);
    void (*gauges)(void *arg, struct metrics_gauges *g);
    void *arg;
};

struct http_server;

/* auth (NULL: authentication off) and demo are borrowed and must outlive
 * the server. */
struct http_server *http_server_new(struct event_base *base, const struct config *cfg,
                                    struct sessions *sessions,
                                    const struct http_server_hooks *hooks, struct auth *auth,
                                    struct demo *demo);

/* Binds and starts accepting; logs and returns false on failure. */
bool http_server_listen(struct http_server *server) __attribute__((warn_unused_result));

/* Stops accepting new connections; requests on open connections get 503. */
void http_server_stop_accepting(struct http_server *server);

/* Frees the server and every connection it still has. */
void http_server_free(struct http_server *server);

#endif
