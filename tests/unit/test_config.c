/* Settings: defaults, environment, flags, validation messages, --help. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ops/config.h"

/* A fake environment: NULL-terminated NAME=value pairs. */
static const char *const *fake_env;

static const char *fake_getenv(const char *name)
{
    size_t len = strlen(name);
    for (const char *const *e = fake_env; e != NULL && *e != NULL; e++) {
        if (strncmp(*e, name, len) == 0 && (*e)[len] == '=')
            return *e + len + 1;
    }
    return NULL;
}

struct load {
    enum config_result result;
    struct config cfg;
    char out[16384];
    char err[1024];
};

/* Loads with env and argv (argv without the program name); captures what
 * was printed. */
static void load(struct load *l, const char *const *env, int argc, const char *const *args)
{
    char *argv[32] = {"event-piper"};
    for (int i = 0; i < argc; i++)
        argv[i + 1] = (char *)args[i];
    fake_env = env;
    FILE *out = fmemopen(l->out, sizeof(l->out) - 1, "w");
    FILE *err = fmemopen(l->err, sizeof(l->err) - 1, "w");
    assert_non_null(out);
    assert_non_null(err);
    memset(l->out, 0, sizeof(l->out));
    memset(l->err, 0, sizeof(l->err));
    l->result = config_load(&l->cfg, argc + 1, argv, fake_getenv, out, err);
    fclose(out);
    fclose(err);
}

static void config_load__nothing_set__documented_defaults(void **state)
{
    (void)state;
    struct load l;
    load(&l, NULL, 0, NULL);
    assert_int_equal(l.result, CONFIG_OK);
    assert_int_equal(l.cfg.port, 4000);
    assert_int_equal(l.cfg.heartbeat_seconds, 15);
    assert_int_equal(l.cfg.retry_ms, 2000);
    assert_int_equal(l.cfg.max_header_bytes, 8 * 1024);
    assert_int_equal(l.cfg.session_buffer_hard_bytes, 8 * 1024 * 1024);
    assert_int_equal(l.cfg.replay_pool_size, 4);
    assert_int_equal(l.cfg.ingest, INGEST_PG_NOTIFY);
    assert_string_equal(l.cfg.database_url, "");
    config_free(&l.cfg);
}

static void config_load__retention__off_by_default_and_bounded(void **state)
{
    (void)state;
    struct load l;
    load(&l, NULL, 0, NULL);
    assert_int_equal(l.result, CONFIG_OK);
    assert_int_equal(l.cfg.retention_seconds, 0);
    assert_int_equal(l.cfg.retention_interval_seconds, 60);
    assert_int_equal(l.cfg.retention_batch_rows, 5000);
    assert_int_equal(l.cfg.retention_batch_pause_ms, 0);
    config_free(&l.cfg);

    const char *on[] = {"RETENTION_SECONDS=604800", "RETENTION_INTERVAL_SECONDS=5", NULL};
    load(&l, on, 0, NULL);
    assert_int_equal(l.result, CONFIG_OK);
    assert_int_equal(l.cfg.retention_seconds, 604800);
    assert_int_equal(l.cfg.retention_interval_seconds, 5);
    config_free(&l.cfg);

    const char *negative[] = {"RETENTION_SECONDS=-1", NULL};
    load(&l, negative, 0, NULL);
    assert_int_equal(l.result, CONFIG_INVALID);
    assert_non_null(strstr(l.err, "RETENTION_SECONDS"));

    const char *no_interval[] = {"RETENTION_INTERVAL_SECONDS=0", NULL};
    load(&l, no_interval, 0, NULL);
    assert_int_equal(l.result, CONFIG_INVALID);
    assert_non_null(strstr(l.err, "RETENTION_INTERVAL_SECONDS"));
}

static void config_load__environment__overrides_default(void **state)
{
    (void)state;
    const char *env[] = {"PORT=4001",
                         "HEARTBEAT_SECONDS=3",
                         "DATABASE_URL=postgresql:///x",
                         "SESSION_BUFFER_SOFT_BYTES=512k",
                         "INGEST=nats",
                         NULL};
    struct load l;
    load(&l, env, 0, NULL);
    assert_int_equal(l.result, CONFIG_OK);
    assert_int_equal(l.cfg.port, 4001);
    assert_int_equal(l.cfg.heartbeat_seconds, 3);
    assert_string_equal(l.cfg.database_url, "postgresql:///x");
    assert_int_equal(l.cfg.session_buffer_soft_bytes, 512 * 1024);
    assert_int_equal(l.cfg.ingest, INGEST_NATS);
    config_free(&l.cfg);
}

static void config_load__flags__override_environment(void **state)
{
    (void)state;
    const char *env[] = {"PORT=4001", "HEARTBEAT_SECONDS=3", NULL};
    const char *args[] = {"--port=4002", "--heartbeat-seconds", "7", "--replay-page-bytes", "2m"};
    struct load l;
    load(&l, env, 5, args);
    assert_int_equal(l.result, CONFIG_OK);
    assert_int_equal(l.cfg.port, 4002);
    assert_int_equal(l.cfg.heartbeat_seconds, 7);
    assert_int_equal(l.cfg.replay_page_bytes, 2 * 1024 * 1024);
    config_free(&l.cfg);
}

/* Each invalid value fails with one line naming the setting. */
static void assert_invalid(const char *assignment, const char *setting)
{
    const char *env[] = {assignment, NULL};
    struct load l;
    load(&l, env, 0, NULL);
    if (l.result != CONFIG_INVALID)
        fail_msg("accepted: %s", assignment);
    if (strstr(l.err, setting) == NULL)
        fail_msg("message for %s does not name %s: %s", assignment, setting, l.err);
    char *newline = strchr(l.err, '\n');
    assert_non_null(newline);
    assert_int_equal(newline[1], '\0');
}

static void config_load__invalid_values__one_line_naming_the_setting(void **state)
{
    (void)state;
    assert_invalid("PORT=0", "PORT");
    assert_invalid("PORT=65536", "PORT");
    assert_invalid("PORT=abc", "PORT");
    assert_invalid("PORT=", "PORT");
    assert_invalid("HEARTBEAT_SECONDS=-1", "HEARTBEAT_SECONDS");
    assert_invalid("HEARTBEAT_SECONDS=1.5", "HEARTBEAT_SECONDS");
    assert_invalid("MAX_HEADER_BYTES=8q", "MAX_HEADER_BYTES");
    assert_invalid("REPLAY_POOL_SIZE=0", "REPLAY_POOL_SIZE");
    assert_invalid("LOG_LEVEL=loud", "LOG_LEVEL");
    assert_invalid("INGEST=kafka", "INGEST");
    assert_invalid("PORT=99999999999999999999999", "PORT");
}

static void config_load__soft_limit_above_hard__refused(void **state)
{
    (void)state;
    const char *env[] = {"SESSION_BUFFER_SOFT_BYTES=2m", "SESSION_BUFFER_HARD_BYTES=1m", NULL};
    struct load l;
    load(&l, env, 0, NULL);
    assert_int_equal(l.result, CONFIG_INVALID);
    assert_non_null(strstr(l.err, "SESSION_BUFFER_SOFT_BYTES"));
}

static void config_load__unknown_flag_or_missing_value__refused(void **state)
{
    (void)state;
    struct load l;
    const char *unknown[] = {"--no-such-thing=1"};
    load(&l, NULL, 1, unknown);
    assert_int_equal(l.result, CONFIG_INVALID);
    assert_non_null(strstr(l.err, "--no-such-thing"));
    const char *dangling[] = {"--port"};
    load(&l, NULL, 1, dangling);
    assert_int_equal(l.result, CONFIG_INVALID);
    assert_non_null(strstr(l.err, "PORT"));
}

static void config_load__invalid_int__exact_message(void **state)
{
    (void)state;
    const char *env[] = {"PORT=0", NULL};
    struct load l;
    load(&l, env, 0, NULL);
    assert_int_equal(l.result, CONFIG_INVALID);
    assert_string_equal(l.err,
                        "event-piper: invalid PORT '0': expected an integer from 1 to 65535\n");
    assert_null(l.cfg.database_url); /* nothing left to release */
    assert_null(l.cfg.bind_address);
}

static void config_load__invalid_choice__lists_the_choices(void **state)
{
    (void)state;
    const char *env[] = {"LOG_LEVEL=verbose", NULL};
    struct load l;
    load(&l, env, 0, NULL);
    assert_int_equal(l.result, CONFIG_INVALID);
    assert_string_equal(l.err, "event-piper: invalid LOG_LEVEL 'verbose': expected one of debug, "
                               "info, warn, error\n");
}

static void config_load__invalid_flag_value__names_the_setting(void **state)
{
    (void)state;
    const char *args[] = {"--session-buffer-hard-bytes=lots"};
    struct load l;
    load(&l, NULL, 1, args);
    assert_int_equal(l.result, CONFIG_INVALID);
    assert_string_equal(l.err, "event-piper: invalid SESSION_BUFFER_HARD_BYTES 'lots': expected a "
                               "size from 4096 to 17179869184 bytes (suffix k, m or g allowed)\n");
    const char *empty[] = {"--port="};
    load(&l, NULL, 1, empty);
    assert_int_equal(l.result, CONFIG_INVALID);
    assert_non_null(strstr(l.err, "invalid PORT ''"));
}

static long long load_bytes(const char *value)
{
    char assignment[64];
    snprintf(assignment, sizeof(assignment), "SESSION_BUFFER_HARD_BYTES=%s", value);
    /* The soft limit at its minimum, so the soft <= hard rule never
     * interferes. */
    const char *env[] = {assignment, "SESSION_BUFFER_SOFT_BYTES=4096", NULL};
    struct load l;
    load(&l, env, 0, NULL);
    if (l.result != CONFIG_OK)
        return -1;
    long long v = l.cfg.session_buffer_hard_bytes;
    config_free(&l.cfg);
    return v;
}

static void config_load__sizes__suffixes_are_powers_of_1024(void **state)
{
    (void)state;
    assert_int_equal(load_bytes("1048576"), 1048576);
    assert_int_equal(load_bytes("8k"), 8 * 1024);
    assert_int_equal(load_bytes("8K"), 8 * 1024);
    assert_int_equal(load_bytes("8kb"), 8 * 1024);
    assert_int_equal(load_bytes("3m"), 3 * 1024 * 1024);
    assert_int_equal(load_bytes("3MB"), 3 * 1024 * 1024);
    assert_int_equal(load_bytes("2g"), 2LL * 1024 * 1024 * 1024);
    assert_int_equal(load_bytes("16g"), 16LL * 1024 * 1024 * 1024); /* the maximum */
    assert_int_equal(load_bytes("4096"), 4096);                     /* the minimum */
}

static void config_load__bad_sizes__refused(void **state)
{
    (void)state;
    const char *bad[] = {"",
                         "k",
                         "-1k",
                         "+8k",
                         " 8k",
                         "8 k",
                         "8k ",
                         "8kk",
                         "8KiB",
                         "8b",
                         "8t",
                         "1.5m",
                         "0x10",
                         "4095",
                         "17g",
                         "99999999999g",
                         "99999999999999999999"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (load_bytes(bad[i]) != -1)
            fail_msg("SESSION_BUFFER_HARD_BYTES='%s' was accepted", bad[i]);
    }
}

static void config_load__bad_integers__refused(void **state)
{
    (void)state;
    const char *bad[] = {"PORT= 4000",
                         "PORT=4000 ",
                         "PORT=0x10",
                         "PORT=4k",
                         "PORT=4e3",
                         "PORT=-4000",
                         "MAX_SESSIONS=10000001",
                         "REPLAY_POOL_SIZE=257"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *env[] = {bad[i], NULL};
        struct load l;
        load(&l, env, 0, NULL);
        if (l.result != CONFIG_INVALID) {
            config_free(&l.cfg);
            fail_msg("accepted: %s", bad[i]);
        }
    }
}

static void config_load__bounds__inclusive(void **state)
{
    (void)state;
    const char *env[] = {"PORT=65535",
                         "RETRY_MS=0",
                         "REPLAY_IDLE_SECONDS=0",
                         "HELD_EVENTS_MAX=16",
                         "CONSUMER_ID_MAX_BYTES=4096",
                         NULL};
    struct load l;
    load(&l, env, 0, NULL);
    assert_int_equal(l.result, CONFIG_OK);
    assert_int_equal(l.cfg.port, 65535);
    assert_int_equal(l.cfg.retry_ms, 0);
    assert_int_equal(l.cfg.replay_idle_seconds, 0);
    assert_int_equal(l.cfg.held_events_max, 16);
    assert_int_equal(l.cfg.consumer_id_max_bytes, 4096);
    config_free(&l.cfg);
}

static void config_load__choices__mapped_to_enums(void **state)
{
    (void)state;
    const char *env[] = {"LOG_LEVEL=debug", "LOG_FORMAT=json", NULL};
    struct load l;
    load(&l, env, 0, NULL);
    assert_int_equal(l.result, CONFIG_OK);
    assert_int_equal(l.cfg.log_level, LOG_LEVEL_DEBUG);
    assert_int_equal(l.cfg.log_format, LOG_FORMAT_JSON);
    config_free(&l.cfg);
    const char *args[] = {"--log-level=error", "--log-format", "logfmt"};
    load(&l, NULL, 3, args);
    assert_int_equal(l.result, CONFIG_OK);
    assert_int_equal(l.cfg.log_level, LOG_LEVEL_ERROR);
    assert_int_equal(l.cfg.log_format, LOG_FORMAT_LOGFMT);
    config_free(&l.cfg);
}

static void config_load__string_flag_with_equals__value_kept_whole(void **state)
{
    (void)state;
    const char *env[] = {"DATABASE_URL=host=env", "BIND_ADDRESS=127.0.0.1", NULL};
    const char *args[] = {"--database-url=host=db dbname=events", "--bind-address", "::1"};
    struct load l;
    load(&l, env, 3, args);
    assert_int_equal(l.result, CONFIG_OK);
    assert_string_equal(l.cfg.database_url, "host=db dbname=events");
    assert_string_equal(l.cfg.bind_address, "::1");
    config_free(&l.cfg); /* ASan: the replaced env and default strings were freed */
    assert_null(l.cfg.database_url);
}

static void config_load__later_flag__wins(void **state)
{
    (void)state;
    const char *args[] = {"--port=4001", "--port=4002"};
    struct load l;
    load(&l, NULL, 2, args);
    assert_int_equal(l.result, CONFIG_OK);
    assert_int_equal(l.cfg.port, 4002);
    config_free(&l.cfg);
}

static void config_load__reconnect_min_above_max__refused(void **state)
{
    (void)state;
    const char *args[] = {"--pg-reconnect-min-ms=6000"}; /* max defaults to 5000 */
    struct load l;
    load(&l, NULL, 1, args);
    assert_int_equal(l.result, CONFIG_INVALID);
    assert_string_equal(l.err, "event-piper: invalid PG_RECONNECT_MIN_MS 6000: above "
                               "PG_RECONNECT_MAX_MS 5000\n");
}

static void config_load__ready_max_ingest_age__nats_only(void **state)
{
    (void)state;
    struct load l;
    load(&l, NULL, 0, NULL);
    assert_int_equal(l.result, CONFIG_OK);
    assert_int_equal(l.cfg.ready_max_ingest_age_seconds, 0);
    config_free(&l.cfg);
    const char *nats[] = {"INGEST=nats", "READY_MAX_INGEST_AGE_SECONDS=30", NULL};
    load(&l, nats, 0, NULL);
    assert_int_equal(l.result, CONFIG_OK);
    assert_int_equal(l.cfg.ready_max_ingest_age_seconds, 30);
    config_free(&l.cfg);
    /* No heartbeat reaches the LISTEN path: a quiet table would look stale. */
    const char *args[] = {"--ready-max-ingest-age-seconds=30"};
    load(&l, NULL, 1, args);
    assert_int_equal(l.result, CONFIG_INVALID);
    assert_string_equal(l.err, "event-piper: invalid READY_MAX_INGEST_AGE_SECONDS 30: needs "
                               "INGEST=nats\n");
}

static void config_load__bad_arguments__refused_with_message(void **state)
{
    (void)state;
    struct load l;
    const char *positional[] = {"serve"};
    load(&l, NULL, 1, positional);
    assert_int_equal(l.result, CONFIG_INVALID);
    assert_string_equal(l.err, "event-piper: unknown option 'serve' (see --help)\n");
    const char *upper[] = {"--PORT=1"};
    load(&l, NULL, 1, upper);
    assert_int_equal(l.result, CONFIG_INVALID);
    assert_string_equal(l.err, "event-piper: unknown option '--PORT' (see --help)\n");
    const char *dangling[] = {"--port"};
    load(&l, NULL, 1, dangling);
    assert_string_equal(l.err, "event-piper: option '--port' (PORT) needs a value\n");
}

static void config_load__version__printed_and_exit_success(void **state)
{
    (void)state;
    const char *args[] = {"--version"};
    struct load l;
    load(&l, NULL, 1, args);
    assert_int_equal(l.result, CONFIG_EXIT_SUCCESS);
    assert_true(strncmp(l.out, "event-piper ", 12) == 0);
    assert_int_equal(l.out[strlen(l.out) - 1], '\n');
    assert_string_equal(l.err, "");
}

static void config_load__short_help_after_bad_env__env_error_first(void **state)
{
    (void)state;
    /* The environment is read before argv: a bad value stops even --help. */
    const char *env[] = {"PORT=x", NULL};
    const char *args[] = {"-h"};
    struct load l;
    load(&l, env, 1, args);
    assert_int_equal(l.result, CONFIG_INVALID);
    load(&l, NULL, 1, args);
    assert_int_equal(l.result, CONFIG_EXIT_SUCCESS);
    assert_non_null(strstr(l.out, "HEARTBEAT_SECONDS"));
}

static void config_load__help__lists_every_setting(void **state)
{
    (void)state;
    /* Every field of struct config, as "NAME --flag" and its default. */
    const char *entries[][2] = {
        {"DATABASE_URL                 --database-url", "(default: empty)"},
        {"BIND_ADDRESS                 --bind-address", "(default: 0.0.0.0)"},
        {"PORT                         --port", "(default: 4000)"},
        {"HEARTBEAT_SECONDS            --heartbeat-seconds", "(default: 15)"},
        {"RETRY_MS                     --retry-ms", "(default: 2000)"},
        {"MAX_SESSIONS                 --max-sessions", "(default: 10000)"},
        {"CONSUMER_ID_MAX_BYTES        --consumer-id-max-bytes", "(default: 256)"},
        {"MAX_HEADER_BYTES             --max-header-bytes", "(default: 8k)"},
        {"REQUEST_TIMEOUT_SECONDS      --request-timeout-seconds", "(default: 10)"},
        {"WRITE_TIMEOUT_SECONDS        --write-timeout-seconds", "(default: 60)"},
        {"SESSION_BUFFER_SOFT_BYTES    --session-buffer-soft-bytes", "(default: 1m)"},
        {"SESSION_BUFFER_SOFT_SECONDS  --session-buffer-soft-seconds", "(default: 10)"},
        {"SESSION_BUFFER_HARD_BYTES    --session-buffer-hard-bytes", "(default: 8m)"},
        {"HELD_EVENTS_MAX              --held-events-max", "(default: 10000)"},
        {"REPLAY_POOL_SIZE             --replay-pool-size", "(default: 4)"},
        {"REPLAY_PAGE_ROWS             --replay-page-rows", "(default: 1000)"},
        {"REPLAY_PAGE_BYTES            --replay-page-bytes", "(default: 1m)"},
        {"REPLAY_IDLE_SECONDS          --replay-idle-seconds", "(default: 30)"},
        {"PG_RECONNECT_MIN_MS          --pg-reconnect-min-ms", "(default: 100)"},
        {"PG_RECONNECT_MAX_MS          --pg-reconnect-max-ms", "(default: 5000)"},
        {"PG_PING_SECONDS              --pg-ping-seconds", "(default: 10)"},
        {"PG_PING_TIMEOUT_SECONDS      --pg-ping-timeout-seconds", "(default: 5)"},
        {"SHUTDOWN_SECONDS             --shutdown-seconds", "(default: 10)"},
        {"LOG_LEVEL                    --log-level", "(default: info)"},
        {"LOG_FORMAT                   --log-format", "(default: logfmt)"},
        {"INGEST                       --ingest", "(default: pg_notify)"},
    };
    const char *args[] = {"--help"};
    struct load l;
    load(&l, NULL, 1, args);
    assert_int_equal(l.result, CONFIG_EXIT_SUCCESS);
    assert_string_equal(l.err, "");
    for (size_t i = 0; i < sizeof(entries) / sizeof(entries[0]); i++) {
        /* The entry's second line holds the help text and the default. */
        const char *at = strstr(l.out, entries[i][0]);
        if (at == NULL)
            fail_msg("--help does not list %s", entries[i][0]);
        const char *second_line = strchr(at, '\n');
        assert_non_null(second_line);
        const char *end = strchr(second_line + 1, '\n');
        assert_non_null(end);
        const char *def = strstr(second_line, entries[i][1]);
        if (def == NULL || def > end)
            fail_msg("--help entry %s lacks %s", entries[i][0], entries[i][1]);
    }
    assert_non_null(strstr(l.out, "--help, --version"));
}

static void config_mask_conninfo__passwords__masked(void **state)
{
    (void)state;
    char out[256];
    config_mask_conninfo("postgresql://app:s3cret@db:5432/events", out, sizeof(out));
    assert_null(strstr(out, "s3cret"));
    assert_non_null(strstr(out, "***"));
    config_mask_conninfo("host=db user=app password=s3cret dbname=events", out, sizeof(out));
    assert_null(strstr(out, "s3cret"));
    assert_non_null(strstr(out, "dbname=events"));
    config_mask_conninfo("postgresql:///event_piper?host=/tmp", out, sizeof(out));
    assert_string_equal(out, "postgresql:///event_piper?host=/tmp");
}

static void assert_masked(const char *conninfo, const char *expected)
{
    char out[256];
    config_mask_conninfo(conninfo, out, sizeof(out));
    if (strcmp(out, expected) != 0)
        fail_msg("mask('%s') = '%s', expected '%s'", conninfo, out, expected);
}

static void config_mask_conninfo__forms__exact_output(void **state)
{
    (void)state;
    assert_masked("postgresql://app:s3cret@db:5432/events", "postgresql://app:***@db:5432/events");
    assert_masked("postgres://:s3cret@db", "postgres://:***@db");
    assert_masked("postgresql://app@db:5432/events", "postgresql://app@db:5432/events");
    assert_masked("postgresql://db/events?user=app&password=s3cret&sslmode=require",
                  "postgresql://db/events?user=app&password=***&sslmode=require");
    assert_masked("postgresql://db/events?password=s3cret", "postgresql://db/events?password=***");
    assert_masked("password=s3cret host=db", "password=*** host=db");
    assert_masked("host=db password='s3 cr\\'et' dbname=events",
                  "host=db password=*** dbname=events");
    assert_masked("host=db user=password=x", "host=db user=password=x"); /* not a keyword */
    assert_masked("", "");
    assert_masked("host=db sslpassword=k3y sslkey=/k", "host=db sslpassword=*** sslkey=/k");
    assert_masked("postgresql://db/e?sslpassword=k3y", "postgresql://db/e?sslpassword=***");
    /* NATS: user:password, a bare token, and a list of servers */
    assert_masked("nats://app:s3cret@nats:4222", "nats://app:***@nats:4222");
    assert_masked("nats://t0ken@nats:4222", "nats://***@nats:4222");
    assert_masked("nats://a:s3cret@n1:4222,nats://t0ken@n2:4222",
                  "nats://a:***@n1:4222,nats://***@n2:4222");
    assert_masked("tls://t0ken@nats", "tls://***@nats");
    assert_masked("nats://nats:4222", "nats://nats:4222");
}

/* BUG: libpq accepts spaces around '=' ("password = s3cret") and any
 * whitespace between settings (tab, newline): PQconninfoParse() reads the
 * password "s3cret" from each of these, but config_mask_conninfo() only
 * recognises "password=" right after a space, '?', '&' or the start, so the
 * password reaches the "configuration" log line in clear. */
static void config_mask_conninfo__libpq_whitespace_forms__masked(void **state)
{
    (void)state;
    const char *forms[] = {"host=db password = s3cret dbname=x", "host=db password= s3cret",
                           "host=db\tpassword=s3cret", "host=db\npassword=s3cret"};
    for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
        char out[256];
        config_mask_conninfo(forms[i], out, sizeof(out));
        if (strstr(out, "s3cret") != NULL)
            fail_msg("password shown: '%s'", out);
    }
}

static void config_mask_conninfo__small_buffer__terminated_and_masked(void **state)
{
    (void)state;
    char out[16];
    memset(out, 'Z', sizeof(out));
    config_mask_conninfo("postgresql://app:s3cret@db/events", out, sizeof(out));
    assert_int_equal(strlen(out), sizeof(out) - 1);
    assert_null(strstr(out, "s3c"));
    char tiny[1] = {'Z'};
    config_mask_conninfo("password=s3cret", tiny, sizeof(tiny));
    assert_int_equal(tiny[0], '\0');
    char nothing = 'Z';
    config_mask_conninfo("x", &nothing, 0);
    assert_int_equal(nothing, 'Z');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(config_load__nothing_set__documented_defaults),
        cmocka_unit_test(config_load__environment__overrides_default),
        cmocka_unit_test(config_load__flags__override_environment),
        cmocka_unit_test(config_load__invalid_values__one_line_naming_the_setting),
        cmocka_unit_test(config_load__soft_limit_above_hard__refused),
        cmocka_unit_test(config_load__unknown_flag_or_missing_value__refused),
        cmocka_unit_test(config_load__invalid_int__exact_message),
        cmocka_unit_test(config_load__invalid_choice__lists_the_choices),
        cmocka_unit_test(config_load__invalid_flag_value__names_the_setting),
        cmocka_unit_test(config_load__sizes__suffixes_are_powers_of_1024),
        cmocka_unit_test(config_load__bad_sizes__refused),
        cmocka_unit_test(config_load__bad_integers__refused),
        cmocka_unit_test(config_load__bounds__inclusive),
        cmocka_unit_test(config_load__choices__mapped_to_enums),
        cmocka_unit_test(config_load__string_flag_with_equals__value_kept_whole),
        cmocka_unit_test(config_load__later_flag__wins),
        cmocka_unit_test(config_load__reconnect_min_above_max__refused),
        cmocka_unit_test(config_load__ready_max_ingest_age__nats_only),
        cmocka_unit_test(config_load__bad_arguments__refused_with_message),
        cmocka_unit_test(config_load__version__printed_and_exit_success),
        cmocka_unit_test(config_load__short_help_after_bad_env__env_error_first),
        cmocka_unit_test(config_load__help__lists_every_setting),
        cmocka_unit_test(config_mask_conninfo__passwords__masked),
        cmocka_unit_test(config_mask_conninfo__forms__exact_output),
        cmocka_unit_test(config_mask_conninfo__libpq_whitespace_forms__masked),
        cmocka_unit_test(config_mask_conninfo__small_buffer__terminated_and_masked),
        cmocka_unit_test(config_load__retention__off_by_default_and_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
