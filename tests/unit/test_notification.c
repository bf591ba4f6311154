/* Parsing of the trigger's notification payloads (postgresql/schema.sql). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ingest/notification.h"

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

/* What triggers before this version sent: the whole row. Only the id and
 * the subscriber are taken; the rest is read from the table. */
static void notification_parse__whole_row__every_column_taken(void **state)
{
    (void)state;
    struct notification n;
    const char text[] = "{\"id\": 7, \"subscriber\": \"toto\", \"type\": \"insert\", "
                        "\"ts\": 1764000000.25, \"payload\": {\"foo\": \"bar\", \"n\": [1, 2]}}";
    assert_true(parse(text, &n));
    assert_int_equal(n.id, 7);
    assert_span(n.subscriber, n.subscriber_len, "toto");
    assert_true(n.has_row);
    assert_span(n.type, n.type_len, "insert");
    assert_true(n.ts == 1764000000.25);
    assert_span(n.payload, n.payload_len, "{\"foo\": \"bar\", \"n\": [1, 2]}");
    notification_clear(&n);
    /* a hint carries no row */
    assert_true(parse("{\"id\": 7, \"subscriber\": \"toto\"}", &n));
    assert_false(n.has_row);
    notification_clear(&n);
}

static void notification_split_signed__shapes(void **state)
{
    (void)state;
    unsigned char mac[32];
    const char *body = NULL;
    size_t body_len = 0;
    char text[160];
    snprintf(text, sizeof(text), "%s {\"id\":1}",
             "00ff102030405060708090a0b0c0d0e0f00112233445566778899aabbccddeeff");
    assert_false(notification_split_signed(text, strlen(text), mac, &body, &body_len)); /* 65 */
    snprintf(text, sizeof(text), "%s {\"id\":1}",
             "00ff102030405060708090a0b0c0d0e0f0112233445566778899aabbccddeeff");
    assert_true(notification_split_signed(text, strlen(text), mac, &body, &body_len));
    assert_int_equal(mac[0], 0x00);
    assert_int_equal(mac[1], 0xff);
    assert_int_equal(mac[31], 0xff);
    assert_span(body, body_len, "{\"id\":1}");
    text[3] = 'F'; /* upper case is not what the trigger sends */
    assert_false(notification_split_signed(text, strlen(text), mac, &body, &body_len));
    assert_false(notification_split_signed("{\"id\":1}", 8, mac, &body, &body_len));
    memset(text, 'a', 64);
    text[64] = ' ';
    assert_false(notification_split_signed(text, 65, mac, &body, &body_len)); /* no body */
}

static void notification_parse__bad_row_members__refused(void **state)
{
    (void)state;
    struct notification n;
    assert_false(parse("{\"id\": 7, \"type\": 3}", &n));
    assert_false(parse("{\"id\": 7, \"ts\": \"x\"}", &n));
    assert_false(parse("{\"id\": 7, \"type\": \"a\", \"type\": \"b\"}", &n));
}

static void notification_parse__escaped_subscriber__decoded(void **state)
{
    (void)state;
    struct notification n;
    assert_true(parse("{\"id\": 1, \"subscriber\": \"a\\\"b\\u00e9\"}", &n));
    assert_span(n.subscriber, n.subscriber_len, "a\"b\xc3\xa9");
    notification_clear(&n);
}

/* The text PostgreSQL's json_build_object() produces (" : " separators),
 * as the trigger in postgresql/schema.sql sends it. */
static void notification_parse__trigger_text__id_and_subscriber(void **state)
{
    (void)state;
    struct notification n;
    assert_true(parse("{\"id\" : 12, \"subscriber\" : \"big\"}", &n));
    assert_int_equal(n.id, 12);
    assert_span(n.subscriber, n.subscriber_len, "big");
    notification_clear(&n);
}

static void notification_parse__id_only__no_subscriber(void **state)
{
    (void)state;
    struct notification n;
    assert_true(parse("{\"id\": 9223372036854775807}", &n));
    assert_int_equal(n.id, INT64_MAX);
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
    /* Members the parser ignores must still be valid JSON. */
    assert_refused("{\"id\": 1, \"payload\": {\"a\": }}", "invalid JSON");
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

static void notification_parse__large_subscriber__decoded_intact(void **state)
{
    (void)state;
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
    assert_int_equal(n.subscriber[big - 1], 's');
    assert_int_equal(n.subscriber[big], '\0');
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
        cmocka_unit_test(notification_parse__whole_row__every_column_taken),
        cmocka_unit_test(notification_split_signed__shapes),
        cmocka_unit_test(notification_parse__bad_row_members__refused),
        cmocka_unit_test(notification_parse__escaped_subscriber__decoded),
        cmocka_unit_test(notification_parse__trigger_text__id_and_subscriber),
        cmocka_unit_test(notification_parse__id_only__no_subscriber),
        cmocka_unit_test(notification_parse__unknown_members__ignored),
        cmocka_unit_test(notification_parse__bad_input__refused),
        cmocka_unit_test(notification_parse__malformed__exact_reasons),
        cmocka_unit_test(notification_parse__id_forms__only_plain_positive_integers),
        cmocka_unit_test(notification_parse__escaped_key__recognised),
        cmocka_unit_test(notification_parse__large_subscriber__decoded_intact),
        cmocka_unit_test(notification_parse__text_not_terminated__stays_within_len),
        cmocka_unit_test(notification_clear__twice__harmless),
        cmocka_unit_test(notification_parse_id__tokens__range_checked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
