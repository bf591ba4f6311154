/*
 * pg_listener: the ingest from PostgreSQL LISTEN/NOTIFY.
 *
 * Holds the instance's one long-lived connection, LISTENs on new_events and
 * publishes every event to the hub in notification order (which is commit
 * order). Rows too large for a notification are fetched by id on the same
 * connection; later events wait behind such a fetch so order is kept.
 *
 * On connect it reads the highest committed id and reports the ingest up to
 * the hub with a gap fill, because notifications sent while it was away are
 * gone. A lost connection (error, EOF, a probe unanswered within the ping
 * timeout) reports the ingest down and reconnects with back-off and jitter;
 * streams stay open meanwhile. Knows nothing about HTTP.
 */
#ifndef PIPER_PG_LISTENER_H
#define PIPER_PG_LISTENER_H

#include <stdbool.h>

#include <event2/event.h>

#include "hub.h"

#define PG_LISTENER_CHANNEL "new_events"

struct pg_listener_options {
    const char *conninfo;
    int reconnect_min_ms;
    int reconnect_max_ms;
    int ping_seconds;
    int ping_timeout_seconds;
    int connect_timeout_s;
};

struct pg_listener;

/* Starts connecting at once. Returns NULL on allocation failure. */
struct pg_listener *pg_listener_new(struct event_base *base, struct hub *hub,
                                    const struct pg_listener_options *options);
void pg_listener_free(struct pg_listener *l);

/* True while LISTEN is active and events flow to the hub. */
bool pg_listener_is_live(const struct pg_listener *l);

/* The server process id of the LISTEN connection (0 when not connected). */
int pg_listener_backend_pid(const struct pg_listener *l);

#endif
