/* Parsing of the trigger's notification payloads (postgresql/schema.sql). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
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
        "{}",          /* no id */
        "{\"id\": 0}", /* ids are positive */
        "{\"id\": -4}",
        "{\"id\": 1.5}",
        "{\"id\": \"7\"}",                   /* a string is not an id */
        "{\"id\": 9223372036854775808}",     /* beyond int64 */
        "{\"id\": 1, \"subscriber\": 5}",    /* wrong type */
        "{\"id\": 1, \"subscriber\": \"x\"", /* truncated */
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

/* The text PostgreSQL's json_build_object() produces (" : " separators),
 * as the trigger in postgresql/schema.sql sends it. */
static void notification_parse__json_build_object_text__complete(void **state)
{
    (void)state;
    struct notification n;
    const char text[] =
        "{\"id\" : 1234567, \"subscriber\" : \"toto\", \"type\" : \"user.created\", "
        "\"ts\" : 1764000000.250000, \"payload\" : {\"n\": 0.10, \"s\": \"x\"}}";
    assert_true(parse(text, &n));
    assert_int_equal(n.id, 1234567);
    assert_true(n.complete);
    assert_span(n.subscriber, n.subscriber_len, "toto");
    assert_span(n.type, n.type_len, "user.created");
    assert_span(n.payload, n.payload_len, "{\"n\": 0.10, \"s\": \"x\"}");
    assert_true(n.timestamp == 1764000000.25);
    notification_clear(&n);
}

static void notification_parse__payload_not_an_object__kept_for_the_frame(void **state)
{
    (void)state;
    /* Parsing passes the payload span through whatever its kind; the frame
     * refuses non-objects (FRAME_PAYLOAD_NOT_OBJECT). */
    const char *payloads[] = {"[1, 2]", "\"text\"", "42", "null", "true"};
    for (size_t i = 0; i < sizeof(payloads) / sizeof(payloads[0]); i++) {
        char text[128];
        snprintf(text, sizeof(text),
                 "{\"id\": 1, \"subscriber\": \"s\", \"type\": \"t\", \"payload\": %s}",
                 payloads[i]);
        struct notification n;
        assert_true(parse(text, &n));
        assert_true(n.complete);
        assert_span(n.payload, n.payload_len, payloads[i]);
        notification_clear(&n);
    }
}

static void notification_parse__member_order__irrelevant(void **state)
{
    (void)state;
    struct notification n;
    assert_true(parse("{\"payload\": {}, \"type\": \"t\", \"subscriber\": \"s\", \"id\": 5}", &n));
    assert_int_equal(n.id, 5);
    assert_true(n.complete);
    assert_span(n.payload, n.payload_len, "{}");
    assert_true(n.timestamp == 0); /* ts absent */
    notification_clear(&n);
}

static void notification_parse__empty_and_unicode_strings__decoded(void **state)
{
    (void)state;
    struct notification n;
    assert_true(parse("{\"id\": 2, \"subscriber\": \"\", \"type\": \"\\u00e9v\xc3\xa9nement\", "
                      "\"payload\": {}}",
                      &n));
    assert_non_null(n.subscriber);
    assert_int_equal(n.subscriber_len, 0);
    assert_string_equal(n.subscriber, "");
    assert_span(n.type, n.type_len, "\xc3\xa9v\xc3\xa9nement");
    assert_string_equal(n.type, "\xc3\xa9v\xc3\xa9nement"); /* NUL-terminated */
    notification_clear(&n);
}

/* Each refusal names its reason; the exact reasons are what gets logged. */
static void assert_refused(const char *text, const char *reason)
{
    struct notification n;
    const char *why = NULL;
    if (notification_parse(text, strlen(text), &n, &why)) {
        notification_clear(&n);
        fail_msg("accepted: %s", text);
    }
    assert_non_null(why);
    if (strcmp(why, reason) != 0)
        fail_msg("'%s': reason '%s', expected '%s'", text, why, reason);
}

static void notification_parse__malformed__exact_reasons(void **state)
{
    (void)state;
    assert_refused("", "not a JSON object");
    assert_refused("[{\"id\": 1}]", "not a JSON object");
    assert_refused("\"{\\\"id\\\": 1}\"", "not a JSON object");
    assert_refused("{\"id\": 1,}", "invalid JSON");
    assert_refused("{\"id\": 1} {}", "invalid JSON");
    assert_refused("{\"subscriber\": \"s\"}", "id missing");
    assert_refused("{\"id\": null}", "id is not a positive integer");
    assert_refused("{\"id\": true}", "id is not a positive integer");
    assert_refused("{\"id\": 1, \"subscriber\": null}", "subscriber is not a string");
    assert_refused("{\"id\": 1, \"subscriber\": \"a\", \"subscriber\": \"b\"}",
                   "subscriber is not a string");
    assert_refused("{\"id\": 1, \"subscriber\": \"a\\u0000b\"}", "subscriber is not a string");
    assert_refused("{\"id\": 1, \"subscriber\": \"s\", \"type\": 3, \"payload\": {}}",
                   "type is not a string");
    assert_refused("{\"id\": 1, \"ts\": \"yesterday\"}", "ts is not a number");
    assert_refused("{\"id\": 1, \"subscriber\": \"s\", \"type\": \"t\"}",
                   "type and payload must come together");
    assert_refused("{\"id\": 1, \"subscriber\": \"s\", \"payload\": {}}",
                   "type and payload must come together");
    assert_refused("{\"id\": 1, \"type\": \"t\", \"payload\": {}}", "subscriber missing");
}

static void notification_parse__id_forms__only_plain_positive_integers(void **state)
{
    (void)state;
    const char *bad[] = {"0",
                         "-0",
                         "-1",
                         "1.0",
                         "1e3",
                         "1E0",
                         "9223372036854775808",
                         "18446744073709551616",
                         "99999999999999999999999999"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char text[64];
        snprintf(text, sizeof(text), "{\"id\": %s}", bad[i]);
        assert_refused(text, "id is not a positive integer");
    }
    struct notification n;
    assert_true(parse("{\"id\": 9223372036854775806}", &n));
    assert_int_equal(n.id, INT64_MAX - 1);
    notification_clear(&n);
    assert_true(parse("{\"id\": 1}", &n));
    assert_int_equal(n.id, 1);
    notification_clear(&n);
}

static void notification_parse__escaped_key__recognised(void **state)
{
    (void)state;
    struct notification n;
    assert_true(parse("{\"\\u0069d\": 8, \"sub\\u0073criber\": \"s\"}", &n));
    assert_int_equal(n.id, 8);
    assert_span(n.subscriber, n.subscriber_len, "s");
    notification_clear(&n);
}

static void notification_parse__large_subscriber_and_type__decoded_intact(void **state)
{
    (void)state;
    /* Both strings decoded into the one buffer sized from the text. */
    size_t big = 100000;
    char *text = malloc(2 * big + 128);
    assert_non_null(text);
    char *p = text;
    p += sprintf(p, "{\"id\": 3, \"subscriber\": \"");
    memset(p, 's', big);
    p += big;
    p += sprintf(p, "\", \"type\": \"");
    memset(p, 't', big);
    p += big;
    p += sprintf(p, "\", \"payload\": {}}");
    struct notification n;
    assert_true(parse(text, &n));
    assert_int_equal(n.subscriber_len, big);
    assert_int_equal(n.type_len, big);
    assert_int_equal(n.subscriber[big - 1], 's');
    assert_int_equal(n.type[0], 't');
    assert_int_equal(n.type[big], '\0');
    notification_clear(&n);
    free(text);
}

static void notification_parse__text_not_terminated__stays_within_len(void **state)
{
    (void)state;
    /* Exactly len bytes on the heap, no NUL: ASan reports any over-read. */
    const char src[] = "{\"id\": 77, \"subscriber\": \"abc\"}";
    size_t len = sizeof(src) - 1;
    char *text = malloc(len);
    assert_non_null(text);
    memcpy(text, src, len);
    struct notification n;
    const char *why = NULL;
    assert_true(notification_parse(text, len, &n, &why));
    assert_int_equal(n.id, 77);
    notification_clear(&n);
    /* Cut before the closing brace: invalid, and still no over-read. */
    assert_false(notification_parse(text, len - 1, &n, &why));
    free(text);
}

static void notification_clear__twice__harmless(void **state)
{
    (void)state;
    struct notification n;
    assert_true(parse("{\"id\": 1, \"subscriber\": \"s\"}", &n));
    notification_clear(&n);
    assert_null(n.strings);
    assert_null(n.subscriber);
    notification_clear(&n);
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
    assert_false(notification_parse_id("007", 3, &id)); /* not a JSON integer */
    assert_false(notification_parse_id("-1", 2, &id));
    assert_false(notification_parse_id("9223372036854775808", 19, &id));
    assert_true(notification_parse_id("9223372036854775807", 19, &id));
    assert_int_equal(id, INT64_MAX);
    /* Only len bytes are read: "12" of "123". */
    assert_true(notification_parse_id("123", 2, &id));
    assert_int_equal(id, 12);
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
        cmocka_unit_test(notification_parse__json_build_object_text__complete),
        cmocka_unit_test(notification_parse__payload_not_an_object__kept_for_the_frame),
        cmocka_unit_test(notification_parse__member_order__irrelevant),
        cmocka_unit_test(notification_parse__empty_and_unicode_strings__decoded),
        cmocka_unit_test(notification_parse__malformed__exact_reasons),
        cmocka_unit_test(notification_parse__id_forms__only_plain_positive_integers),
        cmocka_unit_test(notification_parse__escaped_key__recognised),
        cmocka_unit_test(notification_parse__large_subscriber_and_type__decoded_intact),
        cmocka_unit_test(notification_parse__text_not_terminated__stays_within_len),
        cmocka_unit_test(notification_clear__twice__harmless),
        cmocka_unit_test(notification_parse_id__tokens__range_checked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
