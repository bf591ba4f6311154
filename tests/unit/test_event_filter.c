/* Event filters: what a type parameter may be, matching frames by type,
 * and the text[] literal handed to PostgreSQL. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/event_filter.h"

static struct frame *typed(const char *type)
{
    enum frame_error err;
    struct frame *f = frame_new_event(1, type, strlen(type), "{}", 2, 0.0, &err);
    assert_non_null(f);
    return f;
}

static void event_filter_add__bad_types__refused(void **state)
{
    (void)state;
    struct event_filter f = {0};
    assert_int_equal(event_filter_add(&f, ""), EVENT_FILTER_INVALID);
    assert_int_equal(event_filter_add(&f, "a\nb"), EVENT_FILTER_INVALID);
    assert_int_equal(event_filter_add(&f, "a\rb"), EVENT_FILTER_INVALID);
    assert_int_equal(f.count, 0);
    assert_true(event_filter_empty(&f));
}

static void event_filter_add__duplicates_and_limit(void **state)
{
    (void)state;
    struct event_filter f = {0};
    char name[16];
    assert_int_equal(event_filter_add(&f, "x"), EVENT_FILTER_ADDED);
    assert_int_equal(event_filter_add(&f, "x"), EVENT_FILTER_ADDED);
    assert_int_equal(f.count, 1);
    for (int i = 1; i < EVENT_FILTER_MAX_TYPES; i++) {
        snprintf(name, sizeof(name), "t%d", i);
        assert_int_equal(event_filter_add(&f, name), EVENT_FILTER_ADDED);
    }
    assert_int_equal(event_filter_add(&f, "one-more"), EVENT_FILTER_TOO_MANY);
    assert_int_equal(event_filter_add(&f, "x"), EVENT_FILTER_ADDED); /* already there */
    event_filter_free(&f);
    assert_int_equal(f.count, 0);
}

static void event_filter_match__frames__by_exact_type(void **state)
{
    (void)state;
    struct event_filter f = {0};
    struct frame *order = typed("order"), *orders = typed("orders"), *plain = typed("");
    assert_true(event_filter_match(&f, order)); /* empty: everything */
    assert_true(event_filter_match(NULL, plain));
    assert_int_equal(event_filter_add(&f, "order"), EVENT_FILTER_ADDED);
    assert_true(event_filter_match(&f, order));
    assert_false(event_filter_match(&f, orders));
    assert_false(event_filter_match(&f, plain));
    frame_unref(order);
    frame_unref(orders);
    frame_unref(plain);
    event_filter_free(&f);
}

static void event_filter_sql_array__quotes__escaped(void **state)
{
    (void)state;
    struct event_filter f = {0}, copy;
    bool failed = true;
    assert_null(event_filter_sql_array(&f, &failed));
    assert_false(failed);
    assert_int_equal(event_filter_add(&f, "a"), EVENT_FILTER_ADDED);
    assert_int_equal(event_filter_add(&f, "say \"hi\""), EVENT_FILTER_ADDED);
    assert_int_equal(event_filter_add(&f, "back\\slash,{x}"), EVENT_FILTER_ADDED);
    assert_true(event_filter_copy(&copy, &f));
    char *text = event_filter_sql_array(&copy, &failed);
    assert_string_equal(text, "{\"a\",\"say \\\"hi\\\"\",\"back\\\\slash,{x}\"}");
    free(text);
    event_filter_free(&copy);
    event_filter_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(event_filter_add__bad_types__refused),
        cmocka_unit_test(event_filter_add__duplicates_and_limit),
        cmocka_unit_test(event_filter_match__frames__by_exact_type),
        cmocka_unit_test(event_filter_sql_array__quotes__escaped),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    frame_release_scratch();
    return failed;
}
