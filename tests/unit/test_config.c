/* Settings: defaults, environment, flags, validation messages, --help. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"

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

static void config_load__environment__overrides_default(void **state)
{
    (void)state;
    const char *env[] = {"PORT=4001", "HEARTBEAT_SECONDS=3", "DATABASE_URL=postgresql:///x",
                         "SESSION_BUFFER_SOFT_BYTES=512k", "INGEST=nats", NULL};
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

static void config_load__help__lists_every_setting(void **state)
{
    (void)state;
    const char *args[] = {"--help"};
    struct load l;
    load(&l, NULL, 1, args);
    assert_int_equal(l.result, CONFIG_EXIT_SUCCESS);
    const char *names[] = {"DATABASE_URL", "--database-url", "PORT", "--port", "HEARTBEAT_SECONDS",
                           "--heartbeat-seconds", "MAX_SESSIONS", "REPLAY_POOL_SIZE",
                           "SESSION_BUFFER_HARD_BYTES", "SHUTDOWN_SECONDS", "LOG_FORMAT",
                           "INGEST"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strstr(l.out, names[i]) == NULL)
            fail_msg("--help does not mention %s", names[i]);
    }
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(config_load__nothing_set__documented_defaults),
        cmocka_unit_test(config_load__environment__overrides_default),
        cmocka_unit_test(config_load__flags__override_environment),
        cmocka_unit_test(config_load__invalid_values__one_line_naming_the_setting),
        cmocka_unit_test(config_load__soft_limit_above_hard__refused),
        cmocka_unit_test(config_load__unknown_flag_or_missing_value__refused),
        cmocka_unit_test(config_load__help__lists_every_setting),
        cmocka_unit_test(config_mask_conninfo__passwords__masked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
