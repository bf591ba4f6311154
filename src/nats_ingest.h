/*
 * nats_ingest: the ingest from Debezium change events in NATS JetStream,
 * an alternative to pg_listener (INGEST=nats). Knows nothing about HTTP.
 *
 * cnats is a blocking, threaded client, so it never runs on the loop
 * thread. A worker thread owns the NATS connection and an ephemeral pull
 * consumer on NATS_SUBJECT; it parses each message (debezium.c, pure) and
 * queues the result. The loop thread is woken through an eventfd, and it
 * alone builds frames, publishes to the hub, logs and counts: the worker
 * touches no libevent, hub or metrics state.
 *
 * Position: the worker remembers the stream sequence of the last message it
 * queued. Whenever the consumer has to be recreated (NATS restarted, the
 * consumer vanished), it starts again right after that sequence, so nothing
 * JetStream stored is skipped; messages seen twice (Debezium is
 * at-least-once) are dropped by the hub's per-stream rule "id > cursor".
 * The first consumer starts after the stream's last message, whose id seeds
 * the hub's high-water mark.
 *
 * Messages are acknowledged (AckAll) once queued, whatever their content, so
 * a malformed message never blocks the stream. The queue is bounded: when
 * the loop falls behind, the worker stops fetching.
 */
#ifndef PIPER_NATS_INGEST_H
#define PIPER_NATS_INGEST_H

#include <stdbool.h>

#include <event2/event.h>

#include "hub.h"

struct nats_ingest_options {
    const char *url;     /* one URL or a comma-separated list */
    const char *subject; /* Debezium's <prefix>.<schema>.<table> */
    const char *stream;  /* empty: the stream that holds subject */
    int reconnect_ms;
};

struct nats_ingest;

/* Validates the options and starts the worker, which connects in the
 * background (and retries forever). Returns NULL with a logged reason. */
struct nats_ingest *nats_ingest_new(struct event_base *base, struct hub *hub,
                                    const struct nats_ingest_options *options);

/* Stops the worker, closes the connection and releases cnats. */
void nats_ingest_free(struct nats_ingest *n);

/* True while a consumer is established and events flow to the hub. */
bool nats_ingest_is_live(const struct nats_ingest *n);

#endif
