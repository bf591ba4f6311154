/*
 * Prometheus text format, version 0.0.4: HELP and TYPE lines, then samples;
 * histograms as cumulative _bucket{le=...} series plus _sum and _count.
 */
#include "ops/metrics.h"

#include <inttypes.h>

#ifndef PIPER_VERSION
#define PIPER_VERSION "dev"
#endif

struct metrics metrics;

/* Upper bounds of the lag buckets, in seconds; the last bucket is +Inf. */
static const double lag_bounds[LAG_BUCKET_COUNT - 1] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                        0.05,   0.1,   0.25,   1,     5};

/* Upper bounds of the retention batch buckets, in seconds. */
static const double prune_bounds[PRUNE_BUCKET_COUNT - 1] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                            0.1,   0.25,   0.5,   1,    5};

static const char *const close_names[CLOSE_REASON_COUNT] = {
    "client_gone", "slow_consumer", "shutdown", "write_error", "token_expired", "protocol_error"};
static const char *const transport_names[TRANSPORT_KIND_COUNT] = {"http1", "h2", "websocket"};
static const char *const history_gone_names[HISTORY_GONE_COUNT] = {"pruned", "unknown_cursor"};
static const char *const history_endpoint_names[HISTORY_ENDPOINT_COUNT] = {"history", "latest"};
static const char *const retention_result_names[RETENTION_RESULT_COUNT] = {"pruned", "skipped",
                                                                           "failed"};
static const char *const invalid_names[INVALID_REASON_COUNT] = {"bad_notification", "bad_message",
                                                                "bad_row", "missing_row"};

const char *close_reason_name(enum close_reason r)
{
    return close_names[r];
}

const char *transport_kind_name(enum transport_kind k)
{
    return transport_names[k];
}

/* One observation into a histogram's non-cumulative buckets (count
 * buckets: one per bound, then +Inf). */
static void observe(const double *bounds, size_t count, uint64_t *buckets, uint64_t *n, double *sum,
                    double seconds)
{
    size_t i = 0;
    if (seconds < 0)
        seconds = 0; /* clocks of database and service differ slightly */
    while (i < count - 1 && seconds > bounds[i])
        i++;
    buckets[i]++;
    (*n)++;
    *sum += seconds;
}

void metrics_observe_lag(double seconds)
{
    observe(lag_bounds, LAG_BUCKET_COUNT, metrics.lag_buckets, &metrics.lag_count, &metrics.lag_sum,
            seconds);
}

void metrics_observe_prune_batch(double seconds)
{
    observe(prune_bounds, PRUNE_BUCKET_COUNT, metrics.prune_buckets, &metrics.prune_count,
            &metrics.prune_sum, seconds);
}

static void family(struct evbuffer *out, const char *name, const char *type, const char *help)
{
    evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void counter(struct evbuffer *out, const char *name, const char *help, uint64_t v)
{
    family(out, name, "counter", help);
    evbuffer_add_printf(out, "%s %" PRIu64 "\n", name, v);
}

static void gauge(struct evbuffer *out, const char *name, const char *help, double v)
{
    family(out, name, "gauge", help);
    evbuffer_add_printf(out, "%s %.17g\n", name, v);
}

static void labelled(struct evbuffer *out, const char *name, const char *help, const char *label,
                     const char *const *names, const uint64_t *values, size_t count)
{
    family(out, name, "counter", help);
    for (size_t i = 0; i < count; i++)
        evbuffer_add_printf(out, "%s{%s=\"%s\"} %" PRIu64 "\n", name, label, names[i], values[i]);
}

/* A histogram's series after its family line: cumulative buckets, sum and
 * count. */
static void histogram_series(struct evbuffer *out, const char *name, const double *bounds,
                             size_t count, const uint64_t *buckets, uint64_t n, double sum)
{
    uint64_t cumulative = 0;
    for (size_t i = 0; i < count - 1; i++) {
        cumulative += buckets[i];
        evbuffer_add_printf(out, "%s_bucket{le=\"%g\"} %" PRIu64 "\n", name, bounds[i], cumulative);
    }
    cumulative += buckets[count - 1];
    evbuffer_add_printf(out, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n", name, cumulative);
    evbuffer_add_printf(out, "%s_sum %.9g\n", name, sum);
    evbuffer_add_printf(out, "%s_count %" PRIu64 "\n", name, n);
}

void metrics_render(struct evbuffer *out, const struct metrics_gauges *g)
{
    family(out, "event_piper_build_info", "gauge", "Build information; the value is always 1.");
    evbuffer_add_printf(out, "event_piper_build_info{version=\"%s\"} 1\n", PIPER_VERSION);
    gauge(out, "event_piper_start_time_seconds", "Unix time the process started.", g->started_at);
    gauge(out, "event_piper_sessions_open", "Streams currently open (all transports).",
          (double)g->sessions_open);
    family(out, "event_piper_streams_open", "gauge", "Streams currently open, by transport.");
    for (size_t i = 0; i < TRANSPORT_KIND_COUNT; i++)
        evbuffer_add_printf(out, "event_piper_streams_open{transport=\"%s\"} %zu\n",
                            transport_names[i], g->streams_open[i]);
    family(out, "event_piper_connections_open", "gauge",
           "Client connections open, by transport (none: PROXY header or TLS handshake).");
    for (size_t i = 0; i <= TRANSPORT_KIND_COUNT; i++)
        evbuffer_add_printf(out, "event_piper_connections_open{transport=\"%s\"} %zu\n",
                            i < TRANSPORT_KIND_COUNT ? transport_names[i] : "none",
                            g->connections_open[i]);
    gauge(out, "event_piper_client_addresses", "Distinct client addresses with a connection open.",
          (double)g->client_addresses);
    counter(out, "event_piper_connections_accepted_total", "Client connections accepted.",
            metrics.connections_accepted);
    counter(out, "event_piper_connections_limited_total",
            "Times accepting paused because MAX_CONNECTIONS connections were open.",
            metrics.connections_limited);
    counter(out, "event_piper_tls_handshake_failures_total",
            "TLS handshakes that failed (bad client hello, no common protocol or version).",
            metrics.tls_handshake_failures);
    gauge(out, "event_piper_consumers", "Distinct consumer ids with at least one open stream.",
          (double)g->consumers);
    counter(out, "event_piper_sessions_opened_total", "SSE streams opened.",
            metrics.sessions_opened);
    labelled(out, "event_piper_sessions_closed_total", "SSE streams closed, by reason.", "reason",
             close_names, metrics.sessions_closed, CLOSE_REASON_COUNT);
    family(out, "event_piper_requests_rejected_total", "counter",
           "Requests answered with an error, by error code.");
    for (size_t i = 0; i < HTTP_ERROR_COUNT; i++)
        evbuffer_add_printf(out, "event_piper_requests_rejected_total{reason=\"%s\"} %" PRIu64 "\n",
                            http_error_code((enum http_error)i), metrics.requests_rejected[i]);
    counter(out, "event_piper_events_received_total", "Events received from the ingest.",
            metrics.events_received);
    counter(out, "event_piper_events_ignored_total",
            "Change events received that make no SSE event (updates, deletes, tombstones).",
            metrics.events_ignored);
    labelled(out, "event_piper_events_invalid_total",
             "Incoming events dropped because they could not be delivered, by reason.", "reason",
             invalid_names, metrics.events_invalid, INVALID_REASON_COUNT);
    counter(out, "event_piper_events_delivered_total",
            "Events written to streams (one per stream that got it), live and replayed.",
            metrics.events_delivered);
    counter(out, "event_piper_bytes_written_total", "Bytes of SSE body written to streams.",
            metrics.bytes_written);
    counter(out, "event_piper_replay_queries_total", "Replay page queries run.",
            metrics.replay_queries);
    counter(out, "event_piper_replay_rows_total", "Rows read by replay queries.",
            metrics.replay_rows);
    gauge(out, "event_piper_replay_jobs", "Replays in progress.", (double)g->replay_jobs);
    gauge(out, "event_piper_replay_pool_connections", "Replay pool connections open.",
          (double)g->replay_pool_open);
    gauge(out, "event_piper_replay_pool_in_use", "Replay pool connections lent to a replay.",
          (double)g->replay_pool_in_use);
    gauge(out, "event_piper_replay_pool_waiting", "Replays waiting for a pool connection.",
          (double)g->replay_pool_waiting);
    gauge(out, "event_piper_replay_budget_bytes",
          "Replay budget reserved now (REPLAY_BUFFER_BYTES bounds it).",
          (double)g->replay_budget_bytes);
    gauge(out, "event_piper_replay_budget_waiting", "Replays waiting for replay budget.",
          (double)g->replay_budget_waiting);
    counter(out, "event_piper_held_overflows_total",
            "Times a catching-up stream held too many live events and re-read them from the "
            "table instead.",
            metrics.held_overflows);
    labelled(out, "event_piper_history_gone_total",
             "history-gone signals sent to streams, by reason.", "reason", history_gone_names,
             metrics.history_gone, HISTORY_GONE_COUNT);
    labelled(out, "event_piper_history_requests_total",
             "REST history requests answered (200 or 404), by endpoint.", "endpoint",
             history_endpoint_names, metrics.history_requests, HISTORY_ENDPOINT_COUNT);
    gauge(out, "event_piper_history_long_polls_waiting",
          "History requests waiting (wait=) for a row to arrive.", (double)g->long_polls_waiting);
    counter(out, "event_piper_listener_reconnects_total",
            "Times the ingest connection was re-established after a loss.",
            metrics.listener_reconnects);
    counter(out, "event_piper_ingest_confirm_reads_total",
            "Reads of hinted rows (notifications, NATS messages) back from the events table.",
            metrics.confirm_reads);
    counter(out, "event_piper_ingest_resyncs_total",
            "Times hints were dropped (backlog full, a read failed) and live streams caught up "
            "from the table instead.",
            metrics.confirm_resyncs);
    gauge(out, "event_piper_ingest_backlog",
          "Hints waiting to be confirmed and confirmed rows waiting to be published.",
          (double)g->ingest_backlog);
    counter(out, "event_piper_ingest_heartbeats_total", "Debezium heartbeats taken from NATS.",
            metrics.ingest_heartbeats);
    counter(out, "event_piper_ingest_transaction_messages_total",
            "Debezium transaction metadata messages (BEGIN, END) taken from NATS and skipped.",
            metrics.ingest_transactions);
    if (g->ingest_message_age >= 0)
        gauge(out, "event_piper_ingest_last_message_age_seconds",
              "Seconds since the NATS ingest last took a message or heartbeat (since the start "
              "before the first).",
              g->ingest_message_age);
    gauge(out, "event_piper_listener_connected",
          "1 when the ingest connection is up and listening, else 0.", (double)g->ingest_connected);

    family(out, "event_piper_notification_lag_seconds", "histogram",
           "Seconds from an event's row timestamp to its hand-off to the streams.");
    histogram_series(out, "event_piper_notification_lag_seconds", lag_bounds, LAG_BUCKET_COUNT,
                     metrics.lag_buckets, metrics.lag_count, metrics.lag_sum);

    /* Retention: 0 on instances with it off, so sums over instances need no
     * special case. */
    counter(out, "event_piper_retention_rows_pruned_total",
            "Rows deleted from the events table by retention (this instance).",
            metrics.retention_rows_pruned);
    labelled(out, "event_piper_retention_runs_total",
             "Retention runs, by result: pruned (held the lock, deleted all rows due), skipped "
             "(another instance held it), failed.",
             "result", retention_result_names, metrics.retention_runs, RETENTION_RESULT_COUNT);
    family(out, "event_piper_retention_prune_seconds", "histogram",
           "Duration of each retention delete batch (one transaction).");
    histogram_series(out, "event_piper_retention_prune_seconds", prune_bounds, PRUNE_BUCKET_COUNT,
                     metrics.prune_buckets, metrics.prune_count, metrics.prune_sum);
}
