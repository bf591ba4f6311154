/* Request heads and their limits (net/head.c): header bytes, field count,
 * control characters, request targets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "net/head.h"

struct fixture {
    struct head h;
    struct exchange x;
    enum http_error error;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    head_reset(&f->h, 8192);
    f->error = HTTP_ERROR_COUNT;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    head_free(&f->h);
    free(f);
    return 0;
}

static bool target(struct fixture *f, const char *text)
{
    return head_add_target(&f->h, text, strlen(text), &f->error);
}

static bool field(struct fixture *f, const char *name, const char *value)
{
    return head_add_name(&f->h, name, strlen(name), &f->error) &&
           head_add_value(&f->h, value, strlen(value), &f->error);
}

static bool finish(struct fixture *f)
{
    return head_finish(&f->h, &f->x, &f->error);
}

static void head_finish__pieces__path_query_and_lower_case_names(void **state)
{
    struct fixture *f = *state;
    /* Pieces as http_parser hands them over at a read boundary. */
    assert_true(target(f, "/eve"));
    assert_true(target(f, "nts?consumer=c1&x=%20"));
    assert_true(head_add_name(&f->h, "X-Cons", 6, &f->error));
    assert_true(head_add_name(&f->h, "umer-ID", 7, &f->error));
    assert_true(head_add_value(&f->h, "c", 1, &f->error));
    assert_true(head_add_value(&f->h, "1", 1, &f->error));
    /* http_parser reports an empty value as a piece of length 0. */
    assert_true(field(f, "Empty", ""));
    assert_true(field(f, "Host", "example.com\tx"));
    assert_true(finish(f));
    assert_string_equal(f->x.path, "/events");
    assert_string_equal(f->x.query, "consumer=c1&x=%20");
    assert_int_equal(f->x.header_count, 3);
    assert_string_equal(f->x.headers[0].name, "x-consumer-id");
    assert_string_equal(f->x.headers[0].value, "c1");
    assert_string_equal(f->x.headers[1].name, "empty");
    assert_string_equal(f->x.headers[1].value, "");
    assert_string_equal(f->x.headers[2].value, "example.com\tx"); /* tab is allowed */
}

static void head_finish__no_query__query_null(void **state)
{
    struct fixture *f = *state;
    assert_true(target(f, "/healthz"));
    assert_true(finish(f));
    assert_string_equal(f->x.path, "/healthz");
    assert_null(f->x.query);
    assert_int_equal(f->x.header_count, 0);
}

static void head_add__control_characters__bad_request(void **state)
{
    struct fixture *f = *state;
    static const char *const bad[] = {"a\0b", "a\rb", "a\nb", "a\x01", "a\x1f", "a\x7f"};
    static const size_t lens[] = {3, 3, 3, 2, 2, 2};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        /* In a value (a NUL once cut the consumer id short, issue 15)... */
        head_reset(&f->h, 8192);
        assert_true(target(f, "/"));
        assert_true(head_add_name(&f->h, "X-Consumer-Id", 13, &f->error));
        f->error = HTTP_ERROR_COUNT;
        assert_false(head_add_value(&f->h, bad[i], lens[i], &f->error));
        assert_int_equal(f->error, HTTP_ERROR_BAD_REQUEST);
        /* ... in a name ... */
        head_reset(&f->h, 8192);
        assert_true(target(f, "/"));
        f->error = HTTP_ERROR_COUNT;
        assert_false(head_add_name(&f->h, bad[i], lens[i], &f->error));
        assert_int_equal(f->error, HTTP_ERROR_BAD_REQUEST);
        /* ... and in the target. */
        head_reset(&f->h, 8192);
        f->error = HTTP_ERROR_COUNT;
        assert_false(head_add_target(&f->h, bad[i], lens[i], &f->error));
        assert_int_equal(f->error, HTTP_ERROR_BAD_REQUEST);
    }
}

static void head_add__header_bytes__limit_inclusive(void **state)
{
    struct fixture *f = *state;
    /* The arena holds the target, each name and value and a NUL after
     * each ("/" NUL "a" NUL "0123456789" NUL: 15 bytes), and never fills
     * its last byte: 16 is the least limit for this head. */
    head_reset(&f->h, 16);
    assert_true(target(f, "/"));
    assert_true(field(f, "a", "0123456789"));
    assert_true(finish(f));
    assert_string_equal(f->x.headers[0].value, "0123456789");

    head_reset(&f->h, 15);
    assert_true(target(f, "/"));
    assert_true(field(f, "a", "0123456789"));
    assert_false(finish(f));
    assert_int_equal(f->error, HTTP_ERROR_HEADER_TOO_LARGE);

    head_reset(&f->h, 16);
    f->error = HTTP_ERROR_COUNT;
    assert_true(target(f, "/"));
    assert_false(field(f, "a", "0123456789xy"));
    assert_int_equal(f->error, HTTP_ERROR_HEADER_TOO_LARGE);

    head_reset(&f->h, 4);
    f->error = HTTP_ERROR_COUNT;
    assert_false(target(f, "/abcd"));
    assert_int_equal(f->error, HTTP_ERROR_HEADER_TOO_LARGE);
}

static void head_add__too_many_fields__header_too_large(void **state)
{
    struct fixture *f = *state;
    assert_true(target(f, "/"));
    for (int i = 0; i < HEAD_MAX_FIELDS; i++)
        assert_true(field(f, "x", "y"));
    assert_false(head_add_name(&f->h, "x", 1, &f->error));
    assert_int_equal(f->error, HTTP_ERROR_HEADER_TOO_LARGE);
}

static void head_add_value__before_any_name__bad_request(void **state)
{
    struct fixture *f = *state;
    assert_true(target(f, "/"));
    assert_false(head_add_value(&f->h, "v", 1, &f->error));
    assert_int_equal(f->error, HTTP_ERROR_BAD_REQUEST);
}

static void head_finish__target_forms(void **state)
{
    struct fixture *f = *state;
    static const struct {
        const char *target;
        const char *path; /* NULL: refused */
        const char *query;
    } cases[] = {
        {"/", "/", NULL},
        {"*", "*", NULL},
        {"http://example.com/events?a=1", "/events", "a=1"},
        {"https://example.com:8443/x", "/x", NULL},
        /* Found by fuzz_head: http_parser takes these as paths. */
        {"*x", NULL, NULL},
        {"*tp://example.com/x", NULL, NULL},
        {"http://example.com", NULL, NULL},
        {"events", NULL, NULL},
        {"", NULL, NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        head_reset(&f->h, 8192);
        memset(&f->x, 0, sizeof(f->x));
        f->error = HTTP_ERROR_COUNT;
        assert_true(target(f, cases[i].target));
        bool ok = finish(f);
        if (cases[i].path == NULL) {
            if (ok)
                fail_msg("target '%s' accepted as path '%s'", cases[i].target, f->x.path);
            assert_int_equal(f->error, HTTP_ERROR_BAD_REQUEST);
            continue;
        }
        if (!ok)
            fail_msg("target '%s' refused", cases[i].target);
        assert_string_equal(f->x.path, cases[i].path);
        if (cases[i].query == NULL)
            assert_null(f->x.query);
        else
            assert_string_equal(f->x.query, cases[i].query);
    }
}

static void head_reset__reuse__nothing_left_over(void **state)
{
    struct fixture *f = *state;
    assert_true(target(f, "/first"));
    assert_true(field(f, "A", "1"));
    assert_true(finish(f));
    head_reset(&f->h, 8192);
    assert_true(target(f, "/second"));
    assert_true(finish(f));
    assert_string_equal(f->x.path, "/second");
    assert_int_equal(f->x.header_count, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(head_finish__pieces__path_query_and_lower_case_names, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(head_finish__no_query__query_null, setup, teardown),
        cmocka_unit_test_setup_teardown(head_add__control_characters__bad_request, setup, teardown),
        cmocka_unit_test_setup_teardown(head_add__header_bytes__limit_inclusive, setup, teardown),
        cmocka_unit_test_setup_teardown(head_add__too_many_fields__header_too_large, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(head_add_value__before_any_name__bad_request, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(head_finish__target_forms, setup, teardown),
        cmocka_unit_test_setup_teardown(head_reset__reuse__nothing_left_over, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
