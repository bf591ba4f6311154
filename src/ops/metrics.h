/*
 * Process-wide counters, rendered in the Prometheus text exposition format.
 *
 * Counters are plain integers in one global struct, incremented on the loop
 * thread by the module that sees the event; gauges that describe current
 * state (open sessions, pool use) are read from their owners at render time
 * and passed in, so they can never drift from the truth.
 */
#ifndef PIPER_METRICS_H
#define PIPER_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include <event2/buffer.h>

#include "net/http_error.h"

/* Why a stream ended; also the value of the reason label. */
enum close_reason {
    CLOSE_CLIENT_GONE,
    CLOSE_SLOW_CONSUMER,
    CLOSE_SHUTDOWN,
    CLOSE_WRITE_ERROR,
    CLOSE_TOKEN_EXPIRED,
    CLOSE_PROTOCOL_ERROR, /* the client sent what its protocol does not allow */
    CLOSE_REASON_COUNT
};

/* What carries a connection or a stream; also the value of the transport
 * label. */
enum transport_kind { TRANSPORT_HTTP1, TRANSPORT_H2, TRANSPORT_WEBSOCKET, TRANSPORT_KIND_COUNT };

/* Why an incoming event was dropped. */
enum invalid_reason {
    INVALID_NOTIFICATION, /* unparsable PostgreSQL notification */
    INVALID_MESSAGE,      /* malformed Debezium change event */
    INVALID_ROW,          /* the row cannot become an SSE event */
    INVALID_MISSING_ROW,  /* notified row not found when fetched */
    INVALID_REASON_COUNT
};

/* Why a stream was told its history is gone (replay.h). */
enum history_gone_reason { HISTORY_GONE_PRUNED, HISTORY_GONE_UNKNOWN_CURSOR, HISTORY_GONE_COUNT };

/* The REST history endpoints, for the endpoint label. */
enum history_endpoint { HISTORY_ENDPOINT_HISTORY, HISTORY_ENDPOINT_LATEST, HISTORY_ENDPOINT_COUNT };

#define LAG_BUCKET_COUNT 12
#define PRUNE_BUCKET_COUNT 12

/* How a retention run ended; also the value of the result label. */
enum retention_result {
    RETENTION_PRUNED,  /* held the lock and deleted every row due (maybe none) */
    RETENTION_SKIPPED, /* another instance held the lock */
    RETENTION_FAILED,  /* an error or a lost connection ended it */
    RETENTION_RESULT_COUNT
};

struct metrics {
    uint64_t sessions_opened;
    uint64_t sessions_closed[CLOSE_REASON_COUNT];
    uint64_t requests_rejected[HTTP_ERROR_COUNT]; /* by error code */
    uint64_t events_received;
    uint64_t events_ignored; /* valid change events that make no SSE event */
    uint64_t events_invalid[INVALID_REASON_COUNT];
    uint64_t events_delivered;
    uint64_t bytes_written;
    uint64_t replay_queries;
    uint64_t replay_rows;
    uint64_t held_overflows;
    uint64_t history_gone[HISTORY_GONE_COUNT];
    uint64_t history_requests[HISTORY_ENDPOINT_COUNT]; /* answered with 200 or 404 */
    uint64_t listener_reconnects;
    uint64_t connections_accepted;
    uint64_t connections_limited; /* times accepting paused at MAX_CONNECTIONS */
    uint64_t tls_handshake_failures;
    uint64_t confirm_reads;                 /* reads of hinted rows from the table */
    uint64_t confirm_resyncs;               /* hints dropped, streams resynchronised */
    uint64_t ingest_heartbeats;             /* Debezium heartbeats taken from NATS */
    uint64_t ingest_transactions;           /* Debezium transaction metadata taken */
    uint64_t lag_buckets[LAG_BUCKET_COUNT]; /* non-cumulative counts */
    uint64_t lag_count;
    double lag_sum;
    uint64_t retention_rows_pruned;
    uint64_t retention_runs[RETENTION_RESULT_COUNT];
    uint64_t prune_buckets[PRUNE_BUCKET_COUNT]; /* delete batches, non-cumulative */
    uint64_t prune_count;
    double prune_sum;
};

extern struct metrics metrics;

struct metrics_gauges {
    size_t sessions_open;
    size_t streams_open[TRANSPORT_KIND_COUNT];
    /* By transport, plus connections not yet speaking one (PROXY header,
     * TLS handshake) at index TRANSPORT_KIND_COUNT. */
    size_t connections_open[TRANSPORT_KIND_COUNT + 1];
    size_t client_addresses;
    size_t consumers;
    size_t replay_jobs;
    size_t replay_pool_open;
    size_t replay_pool_in_use;
    size_t replay_pool_waiting;
    size_t replay_budget_bytes;
    size_t replay_budget_waiting;
    size_t long_polls_waiting; /* history requests held by wait= */
    int ingest_connected;
    size_t ingest_backlog; /* hints and confirmed rows not yet published */
    double started_at;     /* Unix seconds */
    /* Seconds since the NATS ingest last took a message; negative: no NATS
     * ingest, and the gauge is left out. */
    double ingest_message_age;
};

const char *close_reason_name(enum close_reason r);
const char *transport_kind_name(enum transport_kind k);

/* Records the time from an event's row timestamp to its delivery. */
void metrics_observe_lag(double seconds);

/* Records the duration of one retention delete batch (one transaction). */
void metrics_observe_prune_batch(double seconds);

/* Appends the exposition text to out. */
void metrics_render(struct evbuffer *out, const struct metrics_gauges *g);

#endif
