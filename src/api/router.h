/*
 * router: what the service answers, whatever transport carried the request.
 *
 * Routes: GET /events (the SSE stream, or a WebSocket with Upgrade; the
 * consumer id and last id from headers or the consumer_id / last_event_id
 * query parameters, headers winning; initial=N and repeated type=
 * parameters; CORS preflight with OPTIONS), GET /events/history and
 * GET /events/latest (history.h, same consumer id and authentication),
 * GET /ws/{consumer_id} (WebSocket), GET /healthz and /manage/health,
 * GET /readyz, GET /metrics (a bearer METRICS_TOKEN when set), the demo page
 * at / and POST /demo/events (DEMO=1 only). Every error is a JSON body with
 * a stable code from net/http_error.h.
 *
 * A stream is admitted only within every limit: the instance's MAX_SESSIONS
 * (503), and per client address and per consumer id MAX_STREAMS_PER_IP and
 * MAX_STREAMS_PER_CONSUMER (429 too_many_streams, with Retry-After).
 */
#ifndef PIPER_ROUTER_H
#define PIPER_ROUTER_H

#include <stdbool.h>

#include "api/auth.h"
#include "api/demo.h"
#include "api/history.h"
#include "core/session.h"
#include "net/exchange.h"
#include "ops/config.h"
#include "ops/metrics.h"

struct router_hooks {
    /* True when events can flow; otherwise *reason says why not. */
    bool (*ready)(void *arg, const char **reason);
    void (*gauges)(void *arg, struct metrics_gauges *g);
    /* True once the service drains (SIGTERM): no new streams. */
    bool (*draining)(void *arg);
    void *arg;
};

struct router;

/* auth (NULL: authentication off), demo and sessions are borrowed. The
 * auth pointer is read at every request, so it may be replaced (SIGHUP)
 * with router_set_auth(). */
struct router *router_new(const struct config *cfg, struct sessions *sessions,
                          struct history *history, const struct router_hooks *hooks,
                          struct auth *auth, struct demo *demo);
void router_free(struct router *r);
void router_set_auth(struct router *r, struct auth *auth);

/* The net layer's request handler (struct net_handler's request). */
void router_handle(void *router, struct exchange *x);

#endif
