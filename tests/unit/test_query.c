/* Query strings (api/query.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "api/query.h"

static void query_parse__plain_and_repeated__every_value_in_order(void **state)
{
    (void)state;
    struct query q;
    assert_true(query_parse("consumer_id=a&type=x&consumer_id=b&flag", &q));
    assert_int_equal(q.count, 4);
    assert_string_equal(query_get(&q, "consumer_id"), "a");
    assert_string_equal(q.params[2].name, "consumer_id");
    assert_string_equal(q.params[2].value, "b");
    assert_string_equal(query_get(&q, "flag"), "");
    assert_null(query_get(&q, "missing"));
    query_free(&q);
}

static void query_parse__escapes__decoded(void **state)
{
    (void)state;
    struct query q;
    assert_true(query_parse("c%C3%A9=a+b%2Bc&%3D=%26", &q));
    assert_string_equal(q.params[0].name, "c\xc3\xa9");
    assert_string_equal(q.params[0].value, "a b+c");
    assert_string_equal(q.params[1].name, "=");
    assert_string_equal(q.params[1].value, "&");
    query_free(&q);
}

static void query_parse__empty_parts__skipped(void **state)
{
    (void)state;
    struct query q;
    assert_true(query_parse("&&a=1&", &q));
    assert_int_equal(q.count, 1);
    query_free(&q);
    assert_true(query_parse(NULL, &q));
    assert_int_equal(q.count, 0);
    assert_true(query_parse("", &q));
    assert_int_equal(q.count, 0);
}

static void query_parse__bad_escapes_and_nul__refused(void **state)
{
    (void)state;
    const char *bad[] = {"a=%", "a=%4", "a=%zz", "a=%00", "%00=1", "a=1&b=%g1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct query q;
        if (query_parse(bad[i], &q)) {
            query_free(&q);
            fail_msg("accepted: %s", bad[i]);
        }
        assert_null(q.storage);
    }
}

static void query_parse__too_many_params__refused(void **state)
{
    (void)state;
    char text[QUERY_MAX_PARAMS * 4 + 8] = "";
    for (int i = 0; i < QUERY_MAX_PARAMS; i++)
        strcat(text, "a=1&");
    struct query q;
    assert_true(query_parse(text, &q));
    assert_int_equal(q.count, QUERY_MAX_PARAMS);
    query_free(&q);
    strcat(text, "b=2");
    assert_false(query_parse(text, &q));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(query_parse__plain_and_repeated__every_value_in_order),
        cmocka_unit_test(query_parse__escapes__decoded),
        cmocka_unit_test(query_parse__empty_parts__skipped),
        cmocka_unit_test(query_parse__bad_escapes_and_nul__refused),
        cmocka_unit_test(query_parse__too_many_params__refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
