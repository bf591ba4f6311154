/* Validation of what a client sends: consumer ids and Last-Event-ID. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "api/request.h"

static bool consumer_ok(const char *id, size_t max)
{
    const char *why = NULL;
    bool ok = request_consumer_id_valid(id, max, &why);
    if (!ok)
        assert_non_null(why); /* every refusal names its reason */
    return ok;
}

static void request_consumer_id_valid__plain_and_unicode__accepted(void **state)
{
    (void)state;
    assert_true(consumer_ok("toto", 256));
    assert_true(consumer_ok("user-42@example.com", 256));
    assert_true(consumer_ok("caf\xc3\xa9 \xe2\x82\xac", 256));
}

static void request_consumer_id_valid__empty__refused(void **state)
{
    (void)state;
    assert_false(consumer_ok("", 256));
}

static void request_consumer_id_valid__length_limit__inclusive(void **state)
{
    (void)state;
    assert_true(consumer_ok("abcd", 4));
    assert_false(consumer_ok("abcde", 4));
}

static void request_consumer_id_valid__control_characters__refused(void **state)
{
    (void)state;
    assert_false(consumer_ok("to\tto", 256));
    assert_false(consumer_ok("to\nto", 256));
    assert_false(consumer_ok("to\x7fto", 256));
}

static void request_consumer_id_valid__invalid_utf8__refused(void **state)
{
    (void)state;
    assert_false(consumer_ok("\xc3", 256));         /* truncated */
    assert_false(consumer_ok("\xc0\xaf", 256));     /* overlong */
    assert_false(consumer_ok("\xed\xa0\x80", 256)); /* surrogate */
    assert_false(consumer_ok("\xff", 256));
}

static void request_consumer_id_valid__refusals__exact_reasons(void **state)
{
    (void)state;
    const char *why = NULL;
    assert_false(request_consumer_id_valid("", 8, &why));
    assert_string_equal(why, "consumer id is empty");
    assert_false(request_consumer_id_valid(NULL, 8, &why));
    assert_string_equal(why, "consumer id is empty");
    assert_false(request_consumer_id_valid("123456789", 8, &why));
    assert_string_equal(why, "consumer id is too long");
    assert_false(request_consumer_id_valid("a\x01", 8, &why));
    assert_string_equal(why, "consumer id contains control characters");
    assert_false(request_consumer_id_valid("a\xfe", 8, &why));
    assert_string_equal(why, "consumer id is not valid UTF-8");
}

static void request_consumer_id_valid__limit_counts_bytes__not_characters(void **state)
{
    (void)state;
    /* "\xc3\xa9\xc3\xa9" is two characters but four bytes. */
    assert_true(consumer_ok("\xc3\xa9\xc3\xa9", 4));
    assert_false(consumer_ok("\xc3\xa9\xc3\xa9", 3));
    assert_true(consumer_ok("x", 1));
}

static void request_consumer_id_valid__spaces_and_punctuation__accepted(void **state)
{
    (void)state;
    assert_true(consumer_ok(" ", 256));
    assert_true(consumer_ok("a b:c/d?e=f&g\"h'i\\", 256));
    assert_true(consumer_ok("\xf0\x9f\x98\x80", 256)); /* U+1F600, four bytes */
}

/* BUG: C1 control characters (U+0080..U+009F, e.g. U+0085 NEXT LINE, which
 * some log viewers treat as a line break) are control characters in Unicode
 * (category Cc) but request_consumer_id_valid() only refuses bytes < 0x20
 * and 0x7f, so "a\xc2\x85b" is accepted. */
static void request_consumer_id_valid__c1_control_characters__refused(void **state)
{
    (void)state;
    assert_false(consumer_ok("a\xc2\x85"
                             "b",
                             256));             /* U+0085 NEXT LINE */
    assert_false(consumer_ok("\xc2\x80", 256)); /* U+0080 */
    assert_false(consumer_ok("\xc2\x9f", 256)); /* U+009F */
    assert_true(consumer_ok("\xc2\xa0", 256));  /* U+00A0, no-break space: not Cc */
}

static enum last_event_id parse(const char *value, int64_t *out)
{
    *out = -12345;
    return request_parse_last_event_id(value, out);
}

static void request_parse_last_event_id__digits__present(void **state)
{
    (void)state;
    int64_t v;
    assert_int_equal(parse("5", &v), LAST_EVENT_ID_PRESENT);
    assert_int_equal(v, 5);
    assert_int_equal(parse("0", &v), LAST_EVENT_ID_PRESENT);
    assert_int_equal(v, 0);
    assert_int_equal(parse("007", &v), LAST_EVENT_ID_PRESENT);
    assert_int_equal(v, 7);
    assert_int_equal(parse("9223372036854775807", &v), LAST_EVENT_ID_PRESENT);
    assert_int_equal(v, INT64_MAX);
}

static void request_parse_last_event_id__surrounding_blanks__present(void **state)
{
    (void)state;
    int64_t v;
    assert_int_equal(parse("  12\t", &v), LAST_EVENT_ID_PRESENT);
    assert_int_equal(v, 12);
}

static void request_parse_last_event_id__null_or_empty__absent(void **state)
{
    (void)state;
    int64_t v;
    assert_int_equal(parse(NULL, &v), LAST_EVENT_ID_ABSENT);
    assert_int_equal(parse("", &v), LAST_EVENT_ID_ABSENT);
}

static void request_parse_last_event_id__not_a_count__invalid(void **state)
{
    (void)state;
    int64_t v;
    const char *bad[] = {"abc",
                         "-1",
                         "+1",
                         "1.5",
                         "1e3",
                         "12abc",
                         "1 2",
                         "0x10",
                         "9223372036854775808",
                         "99999999999999999999999"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (parse(bad[i], &v) != LAST_EVENT_ID_INVALID)
            fail_msg("'%s' was accepted", bad[i]);
    }
}

static void request_parse_last_event_id__leading_zeros__value_kept(void **state)
{
    (void)state;
    int64_t v;
    assert_int_equal(parse("0000000000000000000000009223372036854775807", &v),
                     LAST_EVENT_ID_PRESENT);
    assert_int_equal(v, INT64_MAX);
    assert_int_equal(parse("000", &v), LAST_EVENT_ID_PRESENT);
    assert_int_equal(v, 0);
}

static void request_parse_last_event_id__only_blanks__absent(void **state)
{
    (void)state;
    int64_t v;
    assert_int_equal(parse(" ", &v), LAST_EVENT_ID_ABSENT);
    assert_int_equal(parse(" \t \t", &v), LAST_EVENT_ID_ABSENT);
}

static void request_parse_last_event_id__other_whitespace__invalid(void **state)
{
    (void)state;
    int64_t v;
    /* Only spaces and tabs are trimmed. */
    const char *bad[] = {"\n12",
                         "12\r",
                         "12\n",
                         "\v12",
                         "\xc2\xa0"
                         "12",
                         "-0",
                         "- 1",
                         "١٢"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (parse(bad[i], &v) != LAST_EVENT_ID_INVALID)
            fail_msg("sample %zu was not refused", i);
    }
}

static void request_parse_last_event_id__overflow_boundary__invalid_above_max(void **state)
{
    (void)state;
    int64_t v;
    assert_int_equal(parse("9223372036854775806", &v), LAST_EVENT_ID_PRESENT);
    assert_int_equal(v, INT64_MAX - 1);
    assert_int_equal(parse("9223372036854775809", &v), LAST_EVENT_ID_INVALID);
    assert_int_equal(parse("18446744073709551615", &v), LAST_EVENT_ID_INVALID);
    assert_int_equal(parse("18446744073709551616", &v), LAST_EVENT_ID_INVALID);
    assert_int_equal(parse("-9223372036854775808", &v), LAST_EVENT_ID_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(request_consumer_id_valid__plain_and_unicode__accepted),
        cmocka_unit_test(request_consumer_id_valid__empty__refused),
        cmocka_unit_test(request_consumer_id_valid__length_limit__inclusive),
        cmocka_unit_test(request_consumer_id_valid__control_characters__refused),
        cmocka_unit_test(request_consumer_id_valid__invalid_utf8__refused),
        cmocka_unit_test(request_consumer_id_valid__refusals__exact_reasons),
        cmocka_unit_test(request_consumer_id_valid__limit_counts_bytes__not_characters),
        cmocka_unit_test(request_consumer_id_valid__spaces_and_punctuation__accepted),
        cmocka_unit_test(request_consumer_id_valid__c1_control_characters__refused),
        cmocka_unit_test(request_parse_last_event_id__digits__present),
        cmocka_unit_test(request_parse_last_event_id__surrounding_blanks__present),
        cmocka_unit_test(request_parse_last_event_id__null_or_empty__absent),
        cmocka_unit_test(request_parse_last_event_id__not_a_count__invalid),
        cmocka_unit_test(request_parse_last_event_id__leading_zeros__value_kept),
        cmocka_unit_test(request_parse_last_event_id__only_blanks__absent),
        cmocka_unit_test(request_parse_last_event_id__other_whitespace__invalid),
        cmocka_unit_test(request_parse_last_event_id__overflow_boundary__invalid_above_max),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
