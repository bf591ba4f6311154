/* Debezium messages (tests/fixtures/debezium/), as Debezium Server's NATS
 * JetStream sink publishes them for public.events: captured from the real
 * Debezium Server 2.7.3 by tests/tools/debezium-capture (the README there
 * says which fixture is real, derived or hand-written). Every fixture has an
 * exact expected outcome below, and a fixture without one fails the run.
 * Run from the repository root (make unit does). */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ingest/debezium.h"

#ifndef FIXTURES_DIR
#define FIXTURES_DIR "tests/fixtures/debezium"
#endif

#define TABLE "piper.public.events"
#define HEARTBEATS "__debezium-heartbeat.piper"
#define TRANSACTIONS "piper.transaction"

static char *load(const char *name, size_t *len)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", FIXTURES_DIR, name);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open fixture %s", path);
    char *buf = malloc(1 << 20);
    assert_non_null(buf);
    *len = fread(buf, 1, 1 << 20, f);
    fclose(f);
    return buf;
}

/* What a message must give: the outcome, then for hints the op, id and
 * subscriber, for ignored change events the op, for invalid ones the
 * reason. */
struct expect {
    const char *subject;
    enum debezium_outcome outcome;
    char op;
    int64_t id;
    const char *subscriber; /* hints */
    const char *why;        /* DEBEZIUM_INVALID */
};

static const char *outcome_name(enum debezium_outcome o)
{
    static const char *const names[] = {"HINT", "IGNORED", "HEARTBEAT", "TRANSACTION", "INVALID"};
    return names[o];
}

static void check(const char *label, const char *text, size_t len, const struct expect *e)
{
    struct debezium_hint hint;
    const char *why = "unset";
    enum debezium_outcome outcome = debezium_parse(e->subject, text, len, &hint, &why);
    if (outcome != e->outcome)
        fail_msg("%s on %s: %s (%s), expected %s", label, e->subject ? e->subject : "NULL",
                 outcome_name(outcome), why ? why : "-", outcome_name(e->outcome));
    if (outcome == DEBEZIUM_INVALID) {
        if (why == NULL || strcmp(why, e->why) != 0)
            fail_msg("%s: reason '%s', expected '%s'", label, why ? why : "NULL", e->why);
    } else if (why != NULL) {
        fail_msg("%s: reason '%s' set on a valid message", label, why);
    }
    if (hint.op != e->op)
        fail_msg("%s: op '%c' (%d), expected '%c'", label, hint.op, hint.op, e->op);
    if (outcome == DEBEZIUM_HINT) {
        if (hint.id != e->id)
            fail_msg("%s: id %lld, expected %lld", label, (long long)hint.id, (long long)e->id);
        assert_non_null(hint.subscriber);
        if (strcmp(hint.subscriber, e->subscriber) != 0 ||
            hint.subscriber_len != strlen(e->subscriber))
            fail_msg("%s: subscriber '%s' (%zu bytes), expected '%s'", label, hint.subscriber,
                     hint.subscriber_len, e->subscriber);
    } else {
        assert_int_equal(hint.id, 0);
        assert_null(hint.subscriber);
        assert_int_equal(hint.subscriber_len, 0);
    }
    debezium_hint_clear(&hint);
}

static void check_fixture(const char *name, const struct expect *e)
{
    size_t len = 0;
    char *text = load(name, &len);
    check(name, text, len, e);
    free(text);
}

#define HINT(op_, id_, sub_)                                                                       \
    {                                                                                              \
        TABLE, DEBEZIUM_HINT, op_, id_, sub_, NULL                                                 \
    }
#define IGNORED(op_)                                                                               \
    {                                                                                              \
        TABLE, DEBEZIUM_IGNORED, op_, 0, NULL, NULL                                                \
    }
#define INVALID(subject_, why_)                                                                    \
    {                                                                                              \
        subject_, DEBEZIUM_INVALID, 0, 0, NULL, why_                                               \
    }

/* Every file of tests/fixtures/debezium/, on the subject it was (or would
 * be) published on. */
static const struct {
    const char *name;
    struct expect e;
} fixtures[] = {
    /* Real messages. */
    {"snapshot_read.json", HINT('r', 7, "toto")},
    {"create_wrapped.json", HINT('c', 42, "toto")},
    {"create_plain.json", HINT('c', 43, "titi")},
    {"nested_payload.json", HINT('c', 44, "toto")},
    {"unicode_payload.json", HINT('c', 45, "zo\xc3\xab")},
    /* A 30-digit integer and 1e400 as 401 digits in the payload string. */
    {"create_numbers.json", HINT('c', 46, "toto")},
    /* Timestamps "infinity" and "-infinity": the table's row is read. */
    {"create_infinity.json", HINT('c', 47, "toto")},
    {"create_minus_infinity.json", HINT('c', 48, "toto")},
    /* The table allows it; frame.c refuses the row read back (bad_row). */
    {"payload_array.json", HINT('c', 49, "toto")},
    {"create_large.json", HINT('c', 50, "toto")},
    {"update.json", IGNORED('u')},
    {"payload_unavailable.json", IGNORED('u')},
    {"delete.json", IGNORED('d')},
    {"truncate.json", IGNORED('t')},
    {"heartbeat.json", {HEARTBEATS, DEBEZIUM_HEARTBEAT, 0, 0, NULL, NULL}},
    {"transaction_begin.json", {TRANSACTIONS, DEBEZIUM_TRANSACTION, 0, 0, NULL, NULL}},
    {"transaction_end.json", {TRANSACTIONS, DEBEZIUM_TRANSACTION, 0, 0, NULL, NULL}},
    /* Made from a real message. The payload and the timestamp are not
     * read: the table has them. */
    {"truncated.json", INVALID(TABLE, "not JSON")},
    {"bad_timestamp.json", HINT('c', 42, "toto")},
    {"payload_not_json.json", HINT('c', 42, "toto")},
    {"id_string.json", INVALID(TABLE, "id is not a positive integer")},
    {"missing_after.json", INVALID(TABLE, "missing after")},
    {"subscriber_missing.json", INVALID(TABLE, "missing subscriber")},
    {"unknown_op.json", INVALID(TABLE, "unknown op")},
    /* Hand-written. */
    {"tombstone_empty.json", IGNORED(0)},
    {"tombstone_null.json", IGNORED(0)},
    {"payload_object.json", HINT('c', 46, "toto")},
};

#define FIXTURE_COUNT (sizeof(fixtures) / sizeof(fixtures[0]))

static void debezium_parse__every_fixture__exact_outcome(void **state)
{
    (void)state;
    for (size_t i = 0; i < FIXTURE_COUNT; i++)
        check_fixture(fixtures[i].name, &fixtures[i].e);
}

static void debezium_parse__fixture_directory__every_file_has_an_expectation(void **state)
{
    (void)state;
    DIR *dir = opendir(FIXTURES_DIR);
    assert_non_null(dir);
    struct dirent *d;
    size_t seen = 0;
    while ((d = readdir(dir)) != NULL) {
        size_t len = strlen(d->d_name);
        if (len < 5 || strcmp(d->d_name + len - 5, ".json") != 0)
            continue;
        size_t i = 0;
        while (i < FIXTURE_COUNT && strcmp(fixtures[i].name, d->d_name) != 0)
            i++;
        if (i == FIXTURE_COUNT)
            fail_msg("fixture %s has no expected outcome in test_debezium.c", d->d_name);
        seen++;
    }
    closedir(dir);
    assert_int_equal(seen, FIXTURE_COUNT);
}

/* The subject says what a message must be. */
static void debezium_parse__fixtures_on_other_subjects__by_subject_and_shape(void **state)
{
    (void)state;
    const struct {
        const char *name;
        struct expect e;
    } cases[] = {
        /* Not what the table's subject carries. */
        {"heartbeat.json", INVALID(TABLE, "missing op")},
        {"transaction_begin.json", INVALID(TABLE, "missing op")},
        {"heartbeat.json", INVALID(NULL, "missing op")},
        /* Not what a heartbeat subject carries. */
        {"create_wrapped.json", INVALID(HEARTBEATS, "not a heartbeat")},
        {"transaction_end.json", INVALID(HEARTBEATS, "not a heartbeat")},
        {"tombstone_null.json", {HEARTBEATS, DEBEZIUM_IGNORED, 0, 0, NULL, NULL}},
        /* A table named "transaction" publishes change events there. */
        {"create_plain.json", {"piper.public.transaction", DEBEZIUM_HINT, 'c', 43, "titi", NULL}},
        {"create_plain.json", {TRANSACTIONS, DEBEZIUM_HINT, 'c', 43, "titi", NULL}},
        {"heartbeat.json", INVALID(TRANSACTIONS, "not transaction metadata")},
        /* A longer topic prefix, a subject without one. */
        {"heartbeat.json", {"__debezium-heartbeat.my.app", DEBEZIUM_HEARTBEAT, 0, 0, NULL, NULL}},
        {"heartbeat.json", INVALID("__debezium-heartbeat", "missing op")},
        {"create_wrapped.json", {NULL, DEBEZIUM_HINT, 'c', 42, "toto", NULL}},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        check_fixture(cases[i].name, &cases[i].e);
}

static void debezium_parse__messages__exact_outcome(void **state)
{
    (void)state;
    const struct {
        const char *text;
        struct expect e;
    } cases[] = {
        {"[]", INVALID(TABLE, "message is not a JSON object")},
        {"42", INVALID(TABLE, "message is not a JSON object")},
        {"\"c\"", INVALID(TABLE, "message is not a JSON object")},
        {"nul", INVALID(TABLE, "not JSON")},
        {" null ", IGNORED(0)},
        {"{}", INVALID(TABLE, "missing op")},
        {"{\"op\": 5}", INVALID(TABLE, "unknown op")},
        {"{\"op\": null}", INVALID(TABLE, "unknown op")},
        {"{\"op\": \"cc\", \"after\": {}}", INVALID(TABLE, "unknown op")},
        {"{\"op\": \"C\", \"after\": {}}", INVALID(TABLE, "unknown op")},
        {"{\"op\": \"c\", \"after\": []}", INVALID(TABLE, "missing after")},
        {"{\"op\": \"c\", \"after\": null}", INVALID(TABLE, "missing after")},
        {"{\"op\": \"r\"}", INVALID(TABLE, "missing after")},
        {"{\"op\": \"c\", \"after\": {\"subscriber\": \"s\"}}", INVALID(TABLE, "missing id")},
        {"{\"op\": \"c\", \"after\": {\"id\": 0, \"subscriber\": \"s\"}}",
         INVALID(TABLE, "id is not a positive integer")},
        {"{\"op\": \"c\", \"after\": {\"id\": -3, \"subscriber\": \"s\"}}",
         INVALID(TABLE, "id is not a positive integer")},
        {"{\"op\": \"c\", \"after\": {\"id\": 1.5, \"subscriber\": \"s\"}}",
         INVALID(TABLE, "id is not a positive integer")},
        {"{\"op\": \"c\", \"after\": {\"id\": 1e3, \"subscriber\": \"s\"}}",
         INVALID(TABLE, "id is not a positive integer")},
        {"{\"op\": \"c\", \"after\": {\"id\": 9223372036854775808, \"subscriber\": \"s\"}}",
         INVALID(TABLE, "id is not a positive integer")},
        {"{\"op\": \"c\", \"after\": {\"id\": null, \"subscriber\": \"s\"}}",
         INVALID(TABLE, "id is not a positive integer")},
        {"{\"op\": \"c\", \"after\": {\"id\": 9223372036854775807, \"subscriber\": \"s\"}}",
         HINT('c', INT64_MAX, "s")},
        {"{\"op\": \"c\", \"after\": {\"id\": 1}}", INVALID(TABLE, "missing subscriber")},
        {"{\"op\": \"c\", \"after\": {\"id\": 1, \"subscriber\": 5}}",
         INVALID(TABLE, "subscriber is not a string")},
        {"{\"op\": \"c\", \"after\": {\"id\": 1, \"subscriber\": null}}",
         INVALID(TABLE, "subscriber is not a string")},
        {"{\"op\": \"c\", \"after\": {\"id\": 1, \"subscriber\": \"s\\u0000x\"}}",
         INVALID(TABLE, "subscriber is not a string")},
        /* The table allows an empty subscriber; no stream can want it. */
        {"{\"op\": \"c\", \"after\": {\"id\": 1, \"subscriber\": \"\"}}", HINT('c', 1, "")},
        {"{\"op\": \"c\", \"after\": {\"id\": 5, \"subscriber\": \"a\\\"b\\u00e9\\ud83d\\ude00\"}}",
         HINT('c', 5, "a\"b\xc3\xa9\xf0\x9f\x98\x80")},
        /* Keys are compared decoded. */
        {"{\"\\u006fp\": \"c\", \"after\": {\"i\\u0064\": 2, \"subscriber\": \"s\"}}",
         HINT('c', 2, "s")},
        /* Numbers beyond any C type, anywhere but the id, and columns the
         * hint does not need in any form. */
        {"{\"op\": \"c\", \"ts_ms\": 1e400, \"after\": {\"id\": 3, \"subscriber\": \"s\", "
         "\"type\": \"a\\nb\", \"timestamp\": \"infinity\", \"payload\": "
         "123456789012345678901234567890}, "
         "\"before\": {\"x\": -1e-400}}",
         HINT('c', 3, "s")},
        {"{\"op\": \"c\", \"after\": {\"id\": 4, \"subscriber\": \"s\", \"payload\": 7, "
         "\"timestamp\": 5}}",
         HINT('c', 4, "s")},
        /* Change events of other tables (a wildcard subject). */
        {"{\"op\": \"c\", \"source\": {\"table\": \"orders\"}, \"after\": {\"id\": \"uuid\"}}",
         IGNORED('c')},
        {"{\"op\": \"c\", \"source\": {\"table\": \"events\"}, \"after\": {\"id\": 6, "
         "\"subscriber\": \"s\"}}",
         HINT('c', 6, "s")},
        {"{\"op\": \"c\", \"source\": {\"db\": \"x\"}, \"after\": {\"id\": 6, \"subscriber\": "
         "\"s\"}}",
         HINT('c', 6, "s")},
        /* Updates, deletes and truncates need no after. */
        {"{\"op\": \"u\"}", IGNORED('u')},
        {"{\"op\": \"d\", \"after\": null}", IGNORED('d')},
        /* Duplicate members the parser reads. */
        {"{\"op\": \"c\", \"op\": \"d\", \"after\": {\"id\": 1, \"subscriber\": \"s\"}}",
         INVALID(TABLE, "duplicate member")},
        {"{\"op\": \"c\", \"after\": {\"id\": 1, \"id\": 2, \"subscriber\": \"s\"}}",
         INVALID(TABLE, "duplicate member")},
        {"{\"op\": \"c\", \"after\": {\"id\": 1, \"subscriber\": \"s\"}, \"after\": {}}",
         INVALID(TABLE, "duplicate member")},
        /* Not JSON. */
        {"{\"op\": \"c\", \"after\": {\"id\": 1, \"subscriber\": \"s\"}} trailing",
         INVALID(TABLE, "not JSON")},
        {"{\"op\": \"c\", \"after\": {\"id\": 1, \"subscriber\": \"\xff\"}}",
         INVALID(TABLE, "not JSON")},
        {"{\"op\": \"c\", \"after\": {\"id\": 01, \"subscriber\": \"s\"}}",
         INVALID(TABLE, "not JSON")},
        {"{\"op\": \"c\" \"after\": {}}", INVALID(TABLE, "not JSON")},
        /* The wrapper. */
        {"{\"schema\": null, \"payload\": null}", IGNORED(0)},
        {"{\"schema\": {}, \"payload\": 3}", INVALID(TABLE, "payload is not a JSON object")},
        {"{\"schema\": {}}", INVALID(TABLE, "missing payload")},
        {"{\"payload\": {\"op\": \"c\"}, \"schema\": {}, \"op\": \"u\"}",
         INVALID(TABLE, "missing after")},
        {"{\"schema\": {}, \"payload\": {\"schema\": {}, \"payload\": {\"op\": \"u\"}}}",
         INVALID(TABLE, "missing op")},
        /* Heartbeats and transaction metadata, plain. */
        {"{\"ts_ms\": 1796460506084}", {HEARTBEATS, DEBEZIUM_HEARTBEAT, 0, 0, NULL, NULL}},
        {"{\"ts_ms\": \"1\"}", INVALID(HEARTBEATS, "not a heartbeat")},
        {"{}", INVALID(HEARTBEATS, "not a heartbeat")},
        {"{\"ts_ms\": 1, \"op\": \"c\"}", INVALID(HEARTBEATS, "not a heartbeat")},
        {"{\"status\": \"END\", \"id\": \"1:2\", \"event_count\": 1}",
         {TRANSACTIONS, DEBEZIUM_TRANSACTION, 0, 0, NULL, NULL}},
        {"{\"status\": \"MIDDLE\", \"id\": \"1:2\"}",
         INVALID(TRANSACTIONS, "not transaction metadata")},
        {"{\"status\": \"BEGIN\", \"id\": 1}", INVALID(TRANSACTIONS, "not transaction metadata")},
        {"{\"status\": \"BEGIN\", \"id\": \"1:2\"}", INVALID(TABLE, "missing op")},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char label[64];
        snprintf(label, sizeof(label), "message %zu", i);
        check(label, cases[i].text, strlen(cases[i].text), &cases[i].e);
    }
}

static void debezium_parse__deep_nesting__invalid_not_a_crash(void **state)
{
    (void)state;
    size_t depth = 100000;
    char *text = malloc(2 * depth + 64);
    assert_non_null(text);
    size_t n = (size_t)sprintf(text, "{\"op\": \"c\", \"before\": ");
    memset(text + n, '[', depth);
    memset(text + n + depth, ']', depth);
    n += 2 * depth;
    n += (size_t)sprintf(text + n, ", \"after\": {\"id\": 1, \"subscriber\": \"s\"}}");
    const struct expect e = INVALID(TABLE, "not JSON");
    check("deep", text, n, &e);
    free(text);
}

static void debezium_parse__length_bounds__nothing_read_beyond(void **state)
{
    (void)state;
    /* Only the first len bytes count: the rest of the buffer is garbage. */
    const char text[] = "{\"op\": \"c\", \"after\": {\"id\": 12, \"subscriber\": \"ab\"}}GARBAGE";
    const struct expect e = HINT('c', 12, "ab");
    check("bounded", text, strlen(text) - strlen("GARBAGE"), &e);
    const struct expect cut = INVALID(TABLE, "not JSON");
    check("cut", text, 20, &cut);
}

static void debezium_hint_clear__twice__safe(void **state)
{
    (void)state;
    struct debezium_hint hint;
    memset(&hint, 0, sizeof(hint));
    debezium_hint_clear(&hint);
    debezium_hint_clear(&hint);
}

static void debezium_heartbeat_subject__subjects__derived_or_refused(void **state)
{
    (void)state;
    const struct {
        const char *subject;
        const char *heartbeats; /* NULL: none */
    } cases[] = {
        {"piper.public.events", "__debezium-heartbeat.piper"},
        {"my.app.public.events", "__debezium-heartbeat.my.app"},
        {"piper.*.*", "__debezium-heartbeat.piper"},
        {"piper.public.*", "__debezium-heartbeat.piper"},
        {"piper.>", "__debezium-heartbeat.piper"},
        {"a.b.>", "__debezium-heartbeat.a.b"},
        {"*.*.*", NULL},
        {"*.public.events", NULL},
        {">", NULL},
        {"events", NULL},
        {"public.events", NULL},
        {".public.events", NULL},
        {"a..public.events", NULL},
        {"pi*per.public.events", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[128];
        bool ok = debezium_heartbeat_subject(cases[i].subject, out, sizeof(out));
        if (cases[i].heartbeats == NULL) {
            if (ok)
                fail_msg("%s: gave %s, expected none", cases[i].subject, out);
        } else if (!ok || strcmp(out, cases[i].heartbeats) != 0) {
            fail_msg("%s: gave %s, expected %s", cases[i].subject, ok ? out : "none",
                     cases[i].heartbeats);
        }
    }
    char small[26]; /* one byte short of __debezium-heartbeat.piper */
    assert_false(debezium_heartbeat_subject("piper.public.events", small, sizeof(small)));
    char exact[27];
    assert_true(debezium_heartbeat_subject("piper.public.events", exact, sizeof(exact)));
    assert_string_equal(exact, "__debezium-heartbeat.piper");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(debezium_parse__every_fixture__exact_outcome),
        cmocka_unit_test(debezium_parse__fixture_directory__every_file_has_an_expectation),
        cmocka_unit_test(debezium_parse__fixtures_on_other_subjects__by_subject_and_shape),
        cmocka_unit_test(debezium_parse__messages__exact_outcome),
        cmocka_unit_test(debezium_parse__deep_nesting__invalid_not_a_crash),
        cmocka_unit_test(debezium_parse__length_bounds__nothing_read_beyond),
        cmocka_unit_test(debezium_hint_clear__twice__safe),
        cmocka_unit_test(debezium_heartbeat_subject__subjects__derived_or_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
