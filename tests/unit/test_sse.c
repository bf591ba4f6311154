/* SSE wire format: events, multi-line data, comments, retry. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/sse.h"

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

static void sse_write_event__crlf_and_cr_breaks__each_one_line_break(void **state)
{
    (void)state;
    /* CRLF is one break, CR CR is two, and a lone CR at the end leaves an
     * empty last line. */
    const char data[] = "a\r\rb\r\n\nc\r";
    char *out = format_event(5, "t", data, sizeof(data) - 1);
    assert_string_equal(out, "id: 5\nevent: t\ndata: a\ndata: \ndata: b\ndata: \ndata: c\n"
                             "data: \n\n");
    free(out);
}

static void sse_write_event__only_line_breaks__empty_data_lines(void **state)
{
    (void)state;
    char *out = format_event(6, "t", "\r\n", 2);
    assert_string_equal(out, "id: 6\nevent: t\ndata: \ndata: \n\n");
    free(out);
}

static void sse_write_event__colon_and_spaces_in_data__kept_verbatim(void **state)
{
    (void)state;
    /* A data line starting with a colon or a space is still data: only the
     * field prefix is ours. */
    const char data[] = ":not a comment\n  two spaces";
    char *out = format_event(8, "t", data, sizeof(data) - 1);
    assert_string_equal(out, "id: 8\nevent: t\ndata: :not a comment\ndata:   two spaces\n\n");
    free(out);
}

static void sse_write_event__sizes_of_ids__match_written(void **state)
{
    (void)state;
    const int64_t ids[] = {1, 9, 10, 99, 100, 1000000, INT64_C(1) << 40, INT64_MAX};
    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
        char expected[64];
        snprintf(expected, sizeof(expected), "id: %lld\ndata: x\n\n", (long long)ids[i]);
        char *out = format_event(ids[i], "", "x", 1);
        assert_string_equal(out, expected);
        free(out);
    }
}

static void sse_write_event__does_not_write_past_size(void **state)
{
    (void)state;
    /* Exactly sse_event_size() bytes on the heap: ASan reports any byte
     * written beyond them. */
    const char data[] = "l1\nl2\r\nl3";
    size_t size = sse_event_size(77, 4, data, sizeof(data) - 1);
    char *out = malloc(size);
    assert_non_null(out);
    assert_int_equal(sse_write_event(out, 77, "type", 4, data, sizeof(data) - 1), size);
    assert_memory_equal(out, "id: 77\nevent: type\ndata: l1\ndata: l2\ndata: l3\n\n", size);
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

static void sse_write_comment__exact_fit__written(void **state)
{
    (void)state;
    /* ": hb\n\n" is 6 bytes plus the terminating NUL. */
    char out[7];
    assert_int_equal(sse_write_comment(out, sizeof(out), "hb"), 6);
    assert_string_equal(out, ": hb\n\n");
    char small[6];
    assert_int_equal(sse_write_comment(small, sizeof(small), "hb"), 0);
}

static void sse_write_comment__empty_text__colon_space_only(void **state)
{
    (void)state;
    char out[16];
    assert_int_equal(sse_write_comment(out, sizeof(out), ""), 4);
    assert_string_equal(out, ": \n\n");
}

static void sse_write_retry__value__retry_field(void **state)
{
    (void)state;
    char out[48];
    size_t n = sse_write_retry(out, sizeof(out), 2000);
    assert_string_equal(out, "retry: 2000\n\n");
    assert_int_equal(n, 13);
}

static void sse_write_retry__zero_and_too_small__zero_field_or_nothing(void **state)
{
    (void)state;
    char out[16];
    assert_int_equal(sse_write_retry(out, sizeof(out), 0), 10);
    assert_string_equal(out, "retry: 0\n\n");
    char small[10];
    assert_int_equal(sse_write_retry(small, sizeof(small), 0), 0);
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
        cmocka_unit_test(sse_write_event__crlf_and_cr_breaks__each_one_line_break),
        cmocka_unit_test(sse_write_event__only_line_breaks__empty_data_lines),
        cmocka_unit_test(sse_write_event__colon_and_spaces_in_data__kept_verbatim),
        cmocka_unit_test(sse_write_event__sizes_of_ids__match_written),
        cmocka_unit_test(sse_write_event__does_not_write_past_size),
        cmocka_unit_test(sse_type_valid__line_breaks_and_nul__rejected),
        cmocka_unit_test(sse_write_comment__fits__colon_text_blank),
        cmocka_unit_test(sse_write_comment__too_small__returns_zero),
        cmocka_unit_test(sse_write_comment__exact_fit__written),
        cmocka_unit_test(sse_write_comment__empty_text__colon_space_only),
        cmocka_unit_test(sse_write_retry__value__retry_field),
        cmocka_unit_test(sse_write_retry__zero_and_too_small__zero_field_or_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
