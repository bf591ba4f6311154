/* Parsing of the trigger's notification payloads (postgresql/schema.sql). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "notification.h"

static bool parse(const char *text, struct notification *n)
{
    const char *why = NULL;
    bool ok = notification_parse(text, strlen(text), n, &why);
    if (!ok)
        assert_non_null(why);
    return ok;
}

static void assert_span(const char *span, size_t len, const char *expected)
{
    assert_non_null(span);
    assert_int_equal(len, strlen(expected));
    assert_memory_equal(span, expected, len);
}

static void notification_parse__full_row__complete(void **state)
{
    (void)state;
    struct notification n;
    const char text[] = "{\"id\": 7, \"subscriber\": \"toto\", \"type\": \"insert\", "
                        "\"ts\": 1764000000.25, \"payload\": {\"foo\": \"bar\", \"n\": [1, 2]}}";
    assert_true(parse(text, &n));
    assert_int_equal(n.id, 7);
    assert_true(n.complete);
    assert_span(n.subscriber, n.subscriber_len, "toto");
    assert_span(n.type, n.type_len, "insert");
    assert_span(n.payload, n.payload_len, "{\"foo\": \"bar\", \"n\": [1, 2]}");
    assert_true(n.timestamp > 1764000000.2 && n.timestamp < 1764000000.3);
    notification_clear(&n);
}

static void notification_parse__escaped_subscriber__decoded(void **state)
{
    (void)state;
    struct notification n;
    assert_true(parse("{\"id\": 1, \"subscriber\": \"a\\\"b\\u00e9\"}", &n));
    assert_span(n.subscriber, n.subscriber_len, "a\"b\xc3\xa9");
    notification_clear(&n);
}

static void notification_parse__id_and_subscriber__fetch_needed(void **state)
{
    (void)state;
    struct notification n;
    assert_true(parse("{\"id\": 12, \"subscriber\": \"big\"}", &n));
    assert_int_equal(n.id, 12);
    assert_false(n.complete);
    assert_span(n.subscriber, n.subscriber_len, "big");
    notification_clear(&n);
}

static void notification_parse__id_only__no_subscriber(void **state)
{
    (void)state;
    struct notification n;
    assert_true(parse("{\"id\": 9223372036854775807}", &n));
    assert_int_equal(n.id, INT64_MAX);
    assert_false(n.complete);
    assert_null(n.subscriber);
    notification_clear(&n);
}

static void notification_parse__unknown_members__ignored(void **state)
{
    (void)state;
    struct notification n;
    assert_true(parse("{\"version\": 2, \"id\": 3, \"extra\": {\"x\": [1]}}", &n));
    assert_int_equal(n.id, 3);
    notification_clear(&n);
}

static void notification_parse__bad_input__refused(void **state)
{
    (void)state;
    const char *bad[] = {
        "",
        "not json",
        "[1, 2]",
        "{}",                                  /* no id */
        "{\"id\": 0}",                         /* ids are positive */
        "{\"id\": -4}",
        "{\"id\": 1.5}",
        "{\"id\": \"7\"}",                     /* a string is not an id */
        "{\"id\": 9223372036854775808}",       /* beyond int64 */
        "{\"id\": 1, \"subscriber\": 5}",      /* wrong type */
        "{\"id\": 1, \"subscriber\": \"x\"",   /* truncated */
        "{\"id\": 1} trailing",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct notification n;
        if (parse(bad[i], &n)) {
            notification_clear(&n);
            fail_msg("accepted: %s", bad[i]);
        }
    }
}

static void notification_parse_id__tokens__range_checked(void **state)
{
    (void)state;
    int64_t id = 0;
    assert_true(notification_parse_id("42", 2, &id));
    assert_int_equal(id, 42);
    assert_false(notification_parse_id("0", 1, &id));
    assert_false(notification_parse_id("", 0, &id));
    assert_false(notification_parse_id("4x", 2, &id));
    assert_false(notification_parse_id("99999999999999999999", 20, &id));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(notification_parse__full_row__complete),
        cmocka_unit_test(notification_parse__escaped_subscriber__decoded),
        cmocka_unit_test(notification_parse__id_and_subscriber__fetch_needed),
        cmocka_unit_test(notification_parse__id_only__no_subscriber),
        cmocka_unit_test(notification_parse__unknown_members__ignored),
        cmocka_unit_test(notification_parse__bad_input__refused),
        cmocka_unit_test(notification_parse_id__tokens__range_checked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
