/*
 * nats_ingest: the ingest from Debezium change events in NATS JetStream,
 * an alternative to pg_listener (INGEST=nats). Knows nothing about HTTP.
 *
 * cnats is a blocking, threaded client, so it never runs on the loop
 * thread. A worker thread owns the NATS connection and an ephemeral pull
 * consumer on NATS_SUBJECT; it parses each message (debezium.c, pure) and
 * queues the result. The loop thread is woken through an eventfd, and it
 * alone hands the messages on, logs and counts: the worker touches no
 * libevent, hub or metrics state.
 *
 * Anyone allowed to publish on the subject can publish anything, so a
 * message is only a hint: its id and subscriber go to the confirmer
 * (confirm.h), which reads the row back from the table through the replay
 * pool. What is delivered is always the table's row.
 *
 * Position: the worker remembers the stream sequence of the last message it
 * queued. Whenever the consumer has to be recreated (NATS restarted, the
 * consumer vanished), it starts again right after that sequence, so nothing
 * JetStream stored is skipped; messages seen twice (Debezium is
 * at-least-once) are dropped by the hub's per-stream rule "id > cursor".
 * The first consumer starts after the stream's last message; the hub's
 * high-water mark is read from the table.
 *
 * Messages are acknowledged (AckAll) once queued, whatever their content, so
 * a malformed message never blocks the stream. The queue is bounded: when
 * the loop falls behind, the worker stops fetching.
 *
 * Heartbeats and transaction metadata (debezium.h): the consumer gets them
 * when NATS_SUBJECT covers their subjects (a wildcard). Heartbeats are also
 * read apart, with a plain NATS subscription, on
 * __debezium-heartbeat.<prefix> as debezium_heartbeat_subject() derives it
 * from the subject (piper.public.events: __debezium-heartbeat.piper), so
 * that a quiet table does not look like a stopped Debezium. Neither makes
 * an event; both count as messages taken for nats_ingest_message_age().
 */
#ifndef PIPER_NATS_INGEST_H
#define PIPER_NATS_INGEST_H

#include <stdbool.h>

#include <event2/event.h>

#include "core/hub.h"
#include "db/pg_pool.h"

struct nats_ingest_options {
    const char *url;      /* one URL or a comma-separated list */
    const char *subject;  /* Debezium's <prefix>.<schema>.<table> */
    const char *stream;   /* empty: the stream that holds subject */
    int reconnect_ms;     /* first delay between attempts ... */
    int reconnect_max_ms; /* ... doubling up to this, with jitter */
    size_t hints_max;     /* messages waiting to be confirmed before a resync */
};

struct nats_ingest;

/* Validates the options and starts the worker, which connects in the
 * background (and retries forever). Returns NULL with a logged reason. */
/* pool reads the messages' rows back from the table (confirm.h). */
struct nats_ingest *nats_ingest_new(struct event_base *base, struct hub *hub, struct pg_pool *pool,
                                    const struct nats_ingest_options *options);

/* Stops the worker, closes the connection and releases cnats. */
void nats_ingest_free(struct nats_ingest *n);

/* True while a consumer is established and events flow to the hub. */
bool nats_ingest_is_live(const struct nats_ingest *n);

/* Messages and confirmed rows not yet published, for /metrics. */
size_t nats_ingest_backlog(const struct nats_ingest *n);

/* Seconds since the loop last took a message of any kind (change event,
 * malformed message, heartbeat, transaction metadata); before the first
 * one, since nats_ingest_new(). */
double nats_ingest_message_age(const struct nats_ingest *n);

#endif
