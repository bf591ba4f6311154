/*
 * Service settings.
 *
 * Every setting is read from an environment variable and may be overridden
 * by a command-line flag of the same name (HEARTBEAT_SECONDS and
 * --heartbeat-seconds). One declarative table in config.c drives parsing,
 * validation, --help and the effective-configuration log line, so adding a
 * setting is one line there plus a field here.
 */
#ifndef PIPER_CONFIG_H
#define PIPER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "ops/log.h"

enum ingest_kind { INGEST_PG_NOTIFY, INGEST_NATS };

struct config {
    char *database_url;
    char *bind_address;
    long long port;
    long long heartbeat_seconds;
    long long retry_ms;
    long long max_sessions;
    long long max_connections; /* 0 in the table: max_sessions + 1000, set at load */
    long long max_streams_per_ip;
    long long max_streams_per_consumer;
    long long max_consumers_per_stream;
    long long proxy_protocol;
    char *tls_cert_file;
    char *tls_key_file;
    long long h2_max_concurrent_streams;
    long long consumer_id_max_bytes;
    long long max_header_bytes;
    long long max_body_bytes;
    long long request_timeout_seconds;
    long long write_timeout_seconds;
    long long session_buffer_soft_bytes;
    long long session_buffer_soft_seconds;
    long long session_buffer_hard_bytes;
    long long session_socket_buffer_bytes;
    long long held_events_max;
    long long replay_pool_size;
    long long replay_page_rows;
    long long replay_page_bytes;
    long long replay_buffer_bytes;
    long long replay_idle_seconds;
    long long pg_reconnect_min_ms;
    long long pg_reconnect_max_ms;
    long long pg_ping_seconds;
    long long pg_ping_timeout_seconds;
    long long shutdown_seconds;
    long long retention_seconds;
    long long retention_interval_seconds;
    long long retention_batch_rows;
    long long retention_batch_pause_ms;
    long long log_level;  /* enum log_level */
    long long log_format; /* enum log_format */
    long long ingest;     /* enum ingest_kind */
    char *nats_url;
    char *nats_subject;
    char *nats_stream;
    long long nats_reconnect_ms;
    long long ready_max_ingest_age_seconds;
    char *cors_origins;
    char *jwt_hs256_secret;
    char *jwt_rs256_public_key_file;
    char *jwt_consumer_claim;
    char *api_keys_file;
    char *jwt_audience;
    char *jwt_issuer;
    long long jwt_allow_no_exp;
    long long jwt_leeway_seconds;
    long long token_ttl_seconds;
    char *metrics_token;
    long long demo;
    char *demo_dir;
};

enum config_result { CONFIG_OK, CONFIG_EXIT_SUCCESS, CONFIG_INVALID };

/* Fills cfg from defaults, then the environment (through getenv_fn, so tests
 * can supply their own), then argv. On CONFIG_INVALID a one-line message
 * naming the setting has been written to err. --help and --version print to
 * out and return CONFIG_EXIT_SUCCESS. The strings in cfg are owned by cfg:
 * release them with config_free(). */
enum config_result config_load(struct config *cfg, int argc, char **argv,
                               const char *(*getenv_fn)(const char *), FILE *out, FILE *err)
    __attribute__((warn_unused_result));

void config_free(struct config *cfg);

/* Logs the effective settings, with any password in DATABASE_URL masked. */
void config_log(const struct config *cfg);

/* Writes conninfo with the value of any password=... or :password@ replaced
 * by "***" into out (always NUL-terminated). */
void config_mask_conninfo(const char *conninfo, char *out, size_t size);

#endif
