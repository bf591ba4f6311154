/* Consumer sets and composite cursors (core/stream_cursor.c), and the
 * request's consumer lists (api/request.c). Tags below were computed
 * independently (FNV-1a in Python over "a\nb\n" and so on). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "api/request.h"
#include "core/stream_cursor.h"

static void set_of(struct consumer_set *s, const char *const *ids, size_t n)
{
    *s = (struct consumer_set){0};
    for (size_t i = 0; i < n; i++)
        assert_int_equal(consumer_set_add(s, ids[i], strlen(ids[i]), 32), CONSUMER_SET_ADDED);
    consumer_set_seal(s);
}

static void test_set_sorted_distinct_bounded(void **state)
{
    (void)state;
    struct consumer_set s = {0};
    assert_int_equal(consumer_set_add(&s, "b", 1, 3), CONSUMER_SET_ADDED);
    assert_int_equal(consumer_set_add(&s, "a", 1, 3), CONSUMER_SET_ADDED);
    assert_int_equal(consumer_set_add(&s, "b", 1, 3), CONSUMER_SET_DUPLICATE);
    assert_int_equal(consumer_set_add(&s, "c", 1, 3), CONSUMER_SET_ADDED);
    assert_int_equal(consumer_set_add(&s, "d", 1, 3), CONSUMER_SET_TOO_MANY);
    assert_int_equal(s.count, 3);
    assert_string_equal(s.ids[0], "a");
    assert_string_equal(s.ids[1], "b");
    assert_string_equal(s.ids[2], "c");
    assert_int_equal(consumer_set_find(&s, "c"), 2);
    assert_int_equal(consumer_set_find(&s, "z"), -1);
    consumer_set_seal(&s);
    struct consumer_set copy;
    assert_true(consumer_set_copy(&copy, &s));
    assert_int_equal(copy.count, 3);
    assert_int_equal(copy.tag, s.tag);
    assert_string_equal(copy.ids[1], "b");
    consumer_set_free(&copy);
    consumer_set_free(&s);
    assert_int_equal(s.count, 0);
}

static void test_tag_is_fnv1a_of_sorted_ids(void **state)
{
    (void)state;
    struct consumer_set s;
    const char *const ba[] = {"b", "a"};
    set_of(&s, ba, 2);
    assert_int_equal(s.tag, 0x7a256deeu);
    consumer_set_free(&s);
    const char *const one[] = {"a"};
    set_of(&s, one, 1);
    assert_int_equal(s.tag, 0x2524c6d2u);
    consumer_set_free(&s);
}

static void test_format_and_parse_round_trip(void **state)
{
    (void)state;
    struct consumer_set s;
    const char *const ab[] = {"a", "b"};
    set_of(&s, ab, 2);
    char text[64];
    int64_t positions[2] = {1040, 1042};
    size_t len = stream_cursor_format(text, 1042, positions, 2, s.tag);
    assert_string_equal(text, "1042~2.0~7a256dee");
    assert_int_equal(len, strlen(text));
    assert_true(len < stream_cursor_max_len(2));

    int64_t back[2] = {0, 0};
    assert_int_equal(stream_cursor_parse(text, &s, back), STREAM_CURSOR_COMPOSITE);
    assert_int_equal(back[0], 1040);
    assert_int_equal(back[1], 1042);

    /* A position above the base is a negative entry; none is empty. */
    int64_t mixed[2] = {7, STREAM_CURSOR_NONE};
    stream_cursor_format(text, 3, mixed, 2, s.tag);
    assert_string_equal(text, "3~-4.~7a256dee");
    assert_int_equal(stream_cursor_parse(" 3~-4.~7a256dee\t", &s, back), STREAM_CURSOR_COMPOSITE);
    assert_int_equal(back[0], 7);
    assert_int_equal(back[1], STREAM_CURSOR_NONE);

    /* Extremes stay exact. */
    int64_t far[2] = {0, INT64_MAX};
    char big[128];
    stream_cursor_format(big, INT64_MAX, far, 2, s.tag);
    assert_int_equal(stream_cursor_parse(big, &s, back), STREAM_CURSOR_COMPOSITE);
    assert_int_equal(back[0], 0);
    assert_int_equal(back[1], INT64_MAX);
    consumer_set_free(&s);
}

static void test_plain_means_every_consumer(void **state)
{
    (void)state;
    struct consumer_set s;
    const char *const ab[] = {"a", "b"};
    set_of(&s, ab, 2);
    int64_t back[2] = {-5, -5};
    assert_int_equal(stream_cursor_parse("17", &s, back), STREAM_CURSOR_PLAIN);
    assert_int_equal(back[0], 17);
    assert_int_equal(back[1], 17);
    assert_int_equal(stream_cursor_parse(NULL, &s, back), STREAM_CURSOR_ABSENT);
    assert_int_equal(stream_cursor_parse("  ", &s, back), STREAM_CURSOR_ABSENT);
    assert_int_equal(stream_cursor_parse("9223372036854775808", &s, back), STREAM_CURSOR_INVALID);
    consumer_set_free(&s);
}

static void test_refuses_malformed_and_foreign(void **state)
{
    (void)state;
    struct consumer_set s;
    const char *const ab[] = {"a", "b"};
    set_of(&s, ab, 2);
    int64_t back[2];
    const char *const malformed[] = {
        "-1",
        "x",
        "5~0.0",
        "5~0.0~",
        "5~0.0~7a256de",
        "5~0.0~7A256DEE",
        "5~0.0~7a256deex",
        "~0.0~7a256dee",
        "5~0.x~7a256dee",
        "5~0.--1~7a256dee",
        "5~0.-~7a256dee",
        "5~6.0~7a256dee",                    /* position below 0 */
        "1~-9223372036854775807.0~7a256dee", /* position past INT64_MAX */
        "5 ~0.0~7a256dee",
        "5~0. 0~7a256dee",
    };
    for (size_t i = 0; i < sizeof(malformed) / sizeof(*malformed); i++)
        assert_int_equal(stream_cursor_parse(malformed[i], &s, back), STREAM_CURSOR_INVALID);
    /* Well formed, for other sets: another tag, or another count. */
    assert_int_equal(stream_cursor_parse("5~0.0~00000000", &s, back), STREAM_CURSOR_MISMATCH);
    assert_int_equal(stream_cursor_parse("5~0.0.0~7a256dee", &s, back), STREAM_CURSOR_MISMATCH);
    assert_int_equal(stream_cursor_parse("5~0~7a256dee", &s, back), STREAM_CURSOR_MISMATCH);
    consumer_set_free(&s);
}

static void test_request_consumer_lists(void **state)
{
    (void)state;
    struct consumer_set s = {0};
    const char *why = NULL;
    assert_int_equal(request_add_consumers(&s, " b ,a,\tb", true, 256, 32, &why),
                     REQUEST_CONSUMERS_OK);
    assert_int_equal(s.count, 2);
    assert_string_equal(s.ids[0], "a");
    assert_string_equal(s.ids[1], "b");
    /* A query value is one id, commas included. */
    assert_int_equal(request_add_consumers(&s, "c,d", false, 256, 32, &why), REQUEST_CONSUMERS_OK);
    assert_int_equal(consumer_set_find(&s, "c,d"), 2);
    assert_int_equal(request_add_consumers(&s, "e,,f", true, 256, 32, &why),
                     REQUEST_CONSUMERS_INVALID);
    assert_string_equal(why, "consumer id is empty");
    assert_int_equal(request_add_consumers(&s, "x\001", false, 256, 32, &why),
                     REQUEST_CONSUMERS_INVALID);
    assert_int_equal(request_add_consumers(&s, "long-one", false, 4, 32, &why),
                     REQUEST_CONSUMERS_INVALID);
    assert_int_equal(request_add_consumers(&s, "g,h", true, 256, 4, &why),
                     REQUEST_CONSUMERS_TOO_MANY);
    consumer_set_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_set_sorted_distinct_bounded),
        cmocka_unit_test(test_tag_is_fnv1a_of_sorted_ids),
        cmocka_unit_test(test_format_and_parse_round_trip),
        cmocka_unit_test(test_plain_means_every_consumer),
        cmocka_unit_test(test_refuses_malformed_and_foreign),
        cmocka_unit_test(test_request_consumer_lists),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
