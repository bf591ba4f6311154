/* SSE wire format: events, multi-line data, comments, retry. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sse.h"

/* Formats an event and checks the size prediction matches the bytes. */
static char *format_event(int64_t id, const char *type, const char *data, size_t data_len)
{
    size_t size = sse_event_size(id, strlen(type), data, data_len);
    char *out = malloc(size + 1);
    assert_non_null(out);
    size_t written = sse_write_event(out, id, type, strlen(type), data, data_len);
    assert_int_equal(written, size);
    out[written] = '\0';
    return out;
}

static void sse_write_event__single_line__id_event_data_blank(void **state)
{
    (void)state;
    char *out = format_event(1, "insert", "{\"foo\":\"bar\"}", 13);
    assert_string_equal(out, "id: 1\nevent: insert\ndata: {\"foo\":\"bar\"}\n\n");
    free(out);
}

static void sse_write_event__multiline_data__one_data_line_each(void **state)
{
    (void)state;
    const char data[] = "a\nb\r\nc\rd";
    char *out = format_event(42, "t", data, sizeof(data) - 1);
    assert_string_equal(out, "id: 42\nevent: t\ndata: a\ndata: b\ndata: c\ndata: d\n\n");
    free(out);
}

static void sse_write_event__trailing_newline__empty_last_data_line(void **state)
{
    (void)state;
    char *out = format_event(7, "t", "x\n", 2);
    assert_string_equal(out, "id: 7\nevent: t\ndata: x\ndata: \n\n");
    free(out);
}

static void sse_write_event__empty_type__no_event_line(void **state)
{
    (void)state;
    char *out = format_event(3, "", "{}", 2);
    assert_string_equal(out, "id: 3\ndata: {}\n\n");
    free(out);
}

static void sse_write_event__empty_data__one_empty_data_line(void **state)
{
    (void)state;
    char *out = format_event(9, "t", "", 0);
    assert_string_equal(out, "id: 9\nevent: t\ndata: \n\n");
    free(out);
}

static void sse_write_event__largest_id__all_digits(void **state)
{
    (void)state;
    char *out = format_event(INT64_MAX, "t", "{}", 2);
    assert_string_equal(out, "id: 9223372036854775807\nevent: t\ndata: {}\n\n");
    free(out);
}

static void sse_type_valid__line_breaks_and_nul__rejected(void **state)
{
    (void)state;
    assert_true(sse_type_valid("insert", 6));
    assert_true(sse_type_valid("", 0));
    assert_false(sse_type_valid("a\nb", 3));
    assert_false(sse_type_valid("a\rb", 3));
    assert_false(sse_type_valid("a\0b", 3));
}

static void sse_write_comment__fits__colon_text_blank(void **state)
{
    (void)state;
    char out[64];
    size_t n = sse_write_comment(out, sizeof(out), "heartbeat 1700000000");
    assert_string_equal(out, ": heartbeat 1700000000\n\n");
    assert_int_equal(n, strlen(out));
}

static void sse_write_comment__too_small__returns_zero(void **state)
{
    (void)state;
    char out[8];
    assert_int_equal(sse_write_comment(out, sizeof(out), "heartbeat 1700000000"), 0);
}

static void sse_write_retry__value__retry_field(void **state)
{
    (void)state;
    char out[48];
    size_t n = sse_write_retry(out, sizeof(out), 2000);
    assert_string_equal(out, "retry: 2000\n\n");
    assert_int_equal(n, 13);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sse_write_event__single_line__id_event_data_blank),
        cmocka_unit_test(sse_write_event__multiline_data__one_data_line_each),
        cmocka_unit_test(sse_write_event__trailing_newline__empty_last_data_line),
        cmocka_unit_test(sse_write_event__empty_type__no_event_line),
        cmocka_unit_test(sse_write_event__empty_data__one_empty_data_line),
        cmocka_unit_test(sse_write_event__largest_id__all_digits),
        cmocka_unit_test(sse_type_valid__line_breaks_and_nul__rejected),
        cmocka_unit_test(sse_write_comment__fits__colon_text_blank),
        cmocka_unit_test(sse_write_comment__too_small__returns_zero),
        cmocka_unit_test(sse_write_retry__value__retry_field),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
