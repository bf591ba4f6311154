/* Debezium change events (tests/fixtures/debezium/), as Debezium Server's
 * NATS JetStream sink publishes them for public.events: captured from the
 * real Debezium Server 2.7.3 by tests/tools/debezium-capture (the README
 * there says which fixture is real, derived or hand-written). Run from the
 * repository root (make unit does). */
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

/* cmocka 1.1 has no floating-point assertion. */
static void assert_close(double actual, double expected, double tolerance)
{
    double diff = actual > expected ? actual - expected : expected - actual;
    if (diff > tolerance)
        fail_msg("%.9f differs from %.9f by more than %g", actual, expected, tolerance);
}

/* 2026-11-24T10:15:30.123456Z */
#define FIXTURE_TS 1795515330.123456

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

static enum debezium_outcome parse_fixture(const char *name, bool forward_updates,
                                           struct debezium_event *ev, const char **why)
{
    size_t len = 0;
    char *text = load(name, &len);
    enum debezium_outcome outcome = debezium_parse(text, len, forward_updates, ev, why);
    free(text);
    return outcome;
}

static void assert_event(const struct debezium_event *ev, int64_t id, char op, const char *type,
                         const char *subscriber, const char *payload, double ts)
{
    assert_int_equal(ev->id, id);
    assert_int_equal(ev->op, op);
    assert_string_equal(ev->type, type);
    assert_int_equal(ev->type_len, strlen(type));
    assert_string_equal(ev->subscriber, subscriber);
    assert_int_equal(ev->subscriber_len, strlen(subscriber));
    assert_string_equal(ev->payload, payload);
    assert_int_equal(ev->payload_len, strlen(payload));
    assert_close(ev->timestamp, ts, 1e-6);
}

static void debezium_parse__create_wrapped__event(void **state)
{
    (void)state;
    struct debezium_event ev;
    const char *why = NULL;
    assert_int_equal(parse_fixture("create_wrapped.json", false, &ev, &why), DEBEZIUM_EVENT);
    assert_event(&ev, 42, 'c', "insert", "toto", "{\"foo\": \"bar\"}", FIXTURE_TS);
    debezium_event_clear(&ev);
}

static void debezium_parse__create_plain__event(void **state)
{
    (void)state;
    struct debezium_event ev;
    const char *why = NULL;
    assert_int_equal(parse_fixture("create_plain.json", false, &ev, &why), DEBEZIUM_EVENT);
    assert_event(&ev, 43, 'c', "insert", "titi", "{\"n\": 1, \"ok\": true}", FIXTURE_TS);
    debezium_event_clear(&ev);
}

static void debezium_parse__snapshot_read__event(void **state)
{
    (void)state;
    struct debezium_event ev;
    const char *why = NULL;
    assert_int_equal(parse_fixture("snapshot_read.json", false, &ev, &why), DEBEZIUM_EVENT);
    assert_event(&ev, 7, 'r', "seed", "toto", "{\"foo\": \"bar\"}", 1767323045.0);
    debezium_event_clear(&ev);
}

static void debezium_parse__update__ignored_unless_forwarded(void **state)
{
    (void)state;
    struct debezium_event ev;
    const char *why = NULL;
    assert_int_equal(parse_fixture("update.json", false, &ev, &why), DEBEZIUM_IGNORED);
    assert_null(ev.payload);
    assert_int_equal(parse_fixture("update.json", true, &ev, &why), DEBEZIUM_EVENT);
    assert_event(&ev, 42, 'u', "insert", "toto", "{\"foo\": \"baz\"}", FIXTURE_TS);
    debezium_event_clear(&ev);
}

static void debezium_parse__no_event_messages__ignored(void **state)
{
    (void)state;
    const char *names[] = {"delete.json", "truncate.json", "tombstone_null.json",
                           "tombstone_empty.json"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        struct debezium_event ev;
        const char *why = NULL;
        if (parse_fixture(names[i], true, &ev, &why) != DEBEZIUM_IGNORED)
            fail_msg("%s: expected IGNORED", names[i]);
        assert_null(ev.type);
        debezium_event_clear(&ev);
    }
}

static void debezium_parse__nested_payload__kept_verbatim(void **state)
{
    (void)state;
    struct debezium_event ev;
    const char *why = NULL;
    assert_int_equal(parse_fixture("nested_payload.json", false, &ev, &why), DEBEZIUM_EVENT);
    /* As jsonb prints it: keys ordered by length, then bytes. */
    assert_event(
        &ev, 44, 'c', "insert", "toto",
        "{\"note\": null, \"tags\": [\"x\", \"y\"], \"order\": {\"id\": 9, \"lines\": "
        "[{\"qty\": 2, \"sku\": \"a-1\"}, {\"qty\": 1, \"sku\": \"b-2\"}]}, \"total\": 12.5}",
        FIXTURE_TS);
    debezium_event_clear(&ev);
}

static void debezium_parse__unicode_and_escapes__decoded_once(void **state)
{
    (void)state;
    struct debezium_event ev;
    const char *why = NULL;
    assert_int_equal(parse_fixture("unicode_payload.json", false, &ev, &why), DEBEZIUM_EVENT);
    /* jsonb puts "tab" first; Debezium sends the emoji as a \uD83D\uDE00 pair. */
    assert_event(&ev, 45, 'c', "message", "zo\xc3\xab",
                 "{\"tab\": \"a\\tb\", \"text\": \"caf\xc3\xa9 \\\"quoted\\\" back\\\\slash "
                 "\xe2\x98\x83 \xf0\x9f\x98\x80\"}",
                 FIXTURE_TS);
    debezium_event_clear(&ev);
}

static void debezium_parse__payload_already_object__reencoded(void **state)
{
    (void)state;
    struct debezium_event ev;
    const char *why = NULL;
    assert_int_equal(parse_fixture("payload_object.json", false, &ev, &why), DEBEZIUM_EVENT);
    assert_event(&ev, 46, 'c', "insert", "toto", "{\"already\":\"an object\"}", 0);
    debezium_event_clear(&ev);
}

static void debezium_parse__malformed_fixtures__invalid_with_reason(void **state)
{
    (void)state;
    const struct {
        const char *name;
        const char *why;
    } cases[] = {
        {"truncated.json", "not JSON"},
        {"missing_after.json", "missing after"},
        {"id_string.json", "id is not a positive integer"},
        {"payload_not_json.json", "payload is not JSON"},
        {"payload_array.json", "payload is not a JSON object"},
        {"payload_unavailable.json", "payload unavailable"},
        {"unknown_op.json", "unknown op"},
        {"bad_timestamp.json", "bad timestamp"},
        {"subscriber_missing.json", "subscriber is not a non-empty string"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct debezium_event ev;
        const char *why = NULL;
        if (parse_fixture(cases[i].name, true, &ev, &why) != DEBEZIUM_INVALID)
            fail_msg("%s: expected INVALID", cases[i].name);
        assert_non_null(why);
        if (strcmp(why, cases[i].why) != 0)
            fail_msg("%s: reason '%s', expected '%s'", cases[i].name, why, cases[i].why);
        assert_null(ev.payload);
    }
}

static void debezium_parse__odd_inputs__never_an_event(void **state)
{
    (void)state;
    const char *inputs[] = {
        "[]",
        "42",
        "\"c\"",
        "{}",
        "{\"op\": 5}",
        "{\"op\": \"cc\", \"after\": {}}",
        "{\"op\": \"c\", \"after\": []}",
        "{\"op\": \"c\", \"after\": {\"id\": 0}}",
        "{\"op\": \"c\", \"after\": {\"id\": -3}}",
        "{\"op\": \"c\", \"after\": {\"id\": 1.5}}",
        "{\"op\": \"c\", \"after\": {\"id\": 1, \"subscriber\": \"\", \"type\": \"t\", "
        "\"payload\": \"{}\"}}",
        "{\"op\": \"c\", \"after\": {\"id\": 1, \"subscriber\": \"s\", \"type\": \"a\\nb\", "
        "\"payload\": \"{}\"}}",
        "{\"op\": \"c\", \"after\": {\"id\": 1, \"subscriber\": \"s\\u0000x\", \"type\": \"t\", "
        "\"payload\": \"{}\"}}",
        "{\"op\": \"c\", \"after\": {\"id\": 1, \"subscriber\": \"s\", \"type\": \"t\", "
        "\"payload\": 7}}",
        "{\"op\": \"c\", \"after\": {\"id\": 1, \"subscriber\": \"s\", \"type\": \"t\", "
        "\"timestamp\": 5, \"payload\": \"{}\"}}",
        "{\"schema\": {}, \"payload\": 3}",
        "{\"op\": \"c\", \"after\": {\"id\": 1, \"subscriber\": \"s\", \"type\": \"t\", "
        "\"payload\": \"{}\"}} trailing",
    };
    for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
        struct debezium_event ev;
        const char *why = NULL;
        enum debezium_outcome outcome =
            debezium_parse(inputs[i], strlen(inputs[i]), true, &ev, &why);
        if (outcome != DEBEZIUM_INVALID || why == NULL)
            fail_msg("input %zu (%s): expected INVALID with a reason", i, inputs[i]);
    }
}

static void debezium_parse__wrapped_tombstone__ignored(void **state)
{
    (void)state;
    struct debezium_event ev;
    const char *why = NULL;
    const char text[] = "{\"schema\": null, \"payload\": null}";
    assert_int_equal(debezium_parse(text, strlen(text), false, &ev, &why), DEBEZIUM_IGNORED);
}

static void debezium_event_clear__twice__safe(void **state)
{
    (void)state;
    struct debezium_event ev;
    memset(&ev, 0, sizeof(ev));
    debezium_event_clear(&ev);
    debezium_event_clear(&ev);
}

static double ts(const char *text)
{
    double v = -12345;
    if (!debezium_parse_timestamp(text, strlen(text), &v))
        fail_msg("timestamp '%s' refused", text);
    return v;
}

static void debezium_parse_timestamp__formats__unix_seconds(void **state)
{
    (void)state;
    assert_close(ts("2026-11-24T10:15:30.123456Z"), FIXTURE_TS, 1e-6);
    assert_close(ts("2026-11-24T10:15:30Z"), 1795515330.0, 1e-9);
    assert_close(ts("2026-11-24T11:15:30+01:00"), 1795515330.0, 1e-9);
    assert_close(ts("2026-11-24T04:45:30-0530"), 1795515330.0, 1e-9);
    assert_close(ts("2026-11-24T10:15:30.123456789Z"), 1795515330.123456789, 1e-6);
    assert_close(ts("2024-02-29T00:00:00Z"), 1709164800.0, 1e-9);
    assert_close(ts("1970-01-01T00:00:00Z"), 0.0, 1e-9);
    assert_close(ts("1969-12-31T23:59:59Z"), -1.0, 1e-9);
    assert_close(ts("2026-11-24 10:15:30Z"), 1795515330.0, 1e-9);
}

static void debezium_parse_timestamp__malformed__refused(void **state)
{
    (void)state;
    const char *bad[] = {"",
                         "garbage",
                         "2026-13-01T00:00:00Z",
                         "2026-00-10T00:00:00Z",
                         "2023-02-29T00:00:00Z",
                         "2026-04-31T00:00:00Z",
                         "2026-11-24T24:00:00Z",
                         "2026-11-24T10:60:00Z",
                         "2026-11-24T10:15:30",
                         "2026-11-24T10:15:30.Z",
                         "2026-11-24T10:15:30.1234567890Z",
                         "2026-11-24T10:15:30Zjunk",
                         "2026-11-24T10:15",
                         "2026-11-24",
                         "2026-11-24T10:15:30+25:00"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        double v;
        if (debezium_parse_timestamp(bad[i], strlen(bad[i]), &v))
            fail_msg("timestamp '%s' accepted", bad[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(debezium_parse__create_wrapped__event),
        cmocka_unit_test(debezium_parse__create_plain__event),
        cmocka_unit_test(debezium_parse__snapshot_read__event),
        cmocka_unit_test(debezium_parse__update__ignored_unless_forwarded),
        cmocka_unit_test(debezium_parse__no_event_messages__ignored),
        cmocka_unit_test(debezium_parse__nested_payload__kept_verbatim),
        cmocka_unit_test(debezium_parse__unicode_and_escapes__decoded_once),
        cmocka_unit_test(debezium_parse__payload_already_object__reencoded),
        cmocka_unit_test(debezium_parse__malformed_fixtures__invalid_with_reason),
        cmocka_unit_test(debezium_parse__odd_inputs__never_an_event),
        cmocka_unit_test(debezium_parse__wrapped_tombstone__ignored),
        cmocka_unit_test(debezium_event_clear__twice__safe),
        cmocka_unit_test(debezium_parse_timestamp__formats__unix_seconds),
        cmocka_unit_test(debezium_parse_timestamp__malformed__refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
