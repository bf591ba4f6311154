/*
 * pg_listener: the ingest from PostgreSQL LISTEN/NOTIFY.
 *
 * Holds the instance's one long-lived connection and LISTENs on new_events.
 * A notification is only a hint (anyone can send one): its id goes to the
 * confirmer (confirm.h), which reads the rows back from the table on this
 * same connection and publishes them, in notification order (which is
 * commit order).
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

#include "core/hub.h"

#define PG_LISTENER_CHANNEL "new_events"

struct pg_listener_options {
    const char *conninfo;
    int reconnect_min_ms;
    int reconnect_max_ms;
    int ping_seconds;
    int ping_timeout_seconds;
    int connect_timeout_s;
    size_t hints_max; /* hints waiting to be confirmed before a resync */
};

struct pg_listener;

/* Starts connecting at once. Returns NULL on allocation failure. */
struct pg_listener *pg_listener_new(struct event_base *base, struct hub *hub,
                                    const struct pg_listener_options *options);
void pg_listener_free(struct pg_listener *l);

/* True while LISTEN is active and events flow to the hub. */
bool pg_listener_is_live(const struct pg_listener *l);

/* Hints and confirmed rows not yet published, for /metrics. */
size_t pg_listener_backlog(const struct pg_listener *l);

#endif
