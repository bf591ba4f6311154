/* Validation of what a client sends: consumer ids and Last-Event-ID. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "request.h"

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
    const char *bad[] = {"abc", "-1", "+1", "1.5", "1e3", "12abc", "1 2", "0x10",
                         "9223372036854775808", "99999999999999999999999"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (parse(bad[i], &v) != LAST_EVENT_ID_INVALID)
            fail_msg("'%s' was accepted", bad[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(request_consumer_id_valid__plain_and_unicode__accepted),
        cmocka_unit_test(request_consumer_id_valid__empty__refused),
        cmocka_unit_test(request_consumer_id_valid__length_limit__inclusive),
        cmocka_unit_test(request_consumer_id_valid__control_characters__refused),
        cmocka_unit_test(request_consumer_id_valid__invalid_utf8__refused),
        cmocka_unit_test(request_parse_last_event_id__digits__present),
        cmocka_unit_test(request_parse_last_event_id__surrounding_blanks__present),
        cmocka_unit_test(request_parse_last_event_id__null_or_empty__absent),
        cmocka_unit_test(request_parse_last_event_id__not_a_count__invalid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
