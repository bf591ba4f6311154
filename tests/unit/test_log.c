/* Structured log records: logfmt and JSON encodings, quoting, conversions,
 * truncation, level filtering. Records start with a wall-clock timestamp, so
 * tests check its shape and then compare the rest of the line exactly. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "ops/log.h"

static size_t format_record(char *buf, size_t size, enum log_format format, enum log_level level,
                            const char *msg, const char *fields, ...)
    __attribute__((format(printf, 6, 7)));

static size_t format_record(char *buf, size_t size, enum log_format format, enum log_level level,
                            const char *msg, const char *fields, ...)
{
    va_list args;
    va_start(args, fields);
    size_t n = log_format_record(buf, size, format, level, msg, fields, args);
    va_end(args);
    return n;
}

/* The same at info level without compile-time format checking, for a NULL
 * fields format. */
static size_t format_unchecked(char *buf, size_t size, enum log_format format, const char *msg,
                               const char *fields, ...)
{
    va_list args;
    va_start(args, fields);
    size_t n = log_format_record(buf, size, format, LOG_LEVEL_INFO, msg, fields, args);
    va_end(args);
    return n;
}

/* Checks "2026-11-24T19:30:42.123Z" at ts. */
static void assert_timestamp(const char *ts)
{
    const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ";
    for (size_t i = 0; i < sizeof(shape) - 1; i++) {
        if (shape[i] == 'd' ? (ts[i] < '0' || ts[i] > '9') : ts[i] != shape[i])
            fail_msg("bad timestamp at %zu: %.24s", i, ts);
    }
}

/* The record after its timestamp, e.g. " level=info msg=x\n". */
static const char *body(const char *line, enum log_format format)
{
    if (format == LOG_FORMAT_LOGFMT) {
        assert_true(strncmp(line, "ts=", 3) == 0);
        assert_timestamp(line + 3);
        return line + 3 + 24;
    }
    assert_true(strncmp(line, "{\"ts\":\"", 7) == 0);
    assert_timestamp(line + 7);
    assert_int_equal(line[7 + 24], '"');
    return line + 7 + 24 + 1;
}

static void log_format_record__logfmt__key_value_pairs(void **state)
{
    (void)state;
    char buf[512];
    size_t n = format_record(buf, sizeof(buf), LOG_FORMAT_LOGFMT, LOG_LEVEL_INFO, "session opened",
                             "session=%llu consumer=%s peer=%s", 42ULL, "toto", "127.0.0.1:51234");
    assert_int_equal(n, strlen(buf));
    assert_string_equal(body(buf, LOG_FORMAT_LOGFMT),
                        " level=info msg=\"session opened\" session=42 consumer=toto "
                        "peer=127.0.0.1:51234\n");
}

static void log_format_record__json__one_object_per_line(void **state)
{
    (void)state;
    char buf[512];
    size_t n =
        format_record(buf, sizeof(buf), LOG_FORMAT_JSON, LOG_LEVEL_WARN, "session closed",
                      "session=%llu consumer=%s age=%.3f reason=timeout", 42ULL, "toto", 1.5);
    assert_int_equal(n, strlen(buf));
    assert_string_equal(body(buf, LOG_FORMAT_JSON),
                        ",\"level\":\"warn\",\"msg\":\"session closed\",\"session\":42,"
                        "\"consumer\":\"toto\",\"age\":1.500,\"reason\":\"timeout\"}\n");
}

static void log_format_record__levels__named(void **state)
{
    (void)state;
    char buf[256];
    const char *expected[] = {" level=debug msg=m n=0\n", " level=info msg=m n=1\n",
                              " level=warn msg=m n=2\n", " level=error msg=m n=3\n"};
    enum log_level levels[] = {LOG_LEVEL_DEBUG, LOG_LEVEL_INFO, LOG_LEVEL_WARN, LOG_LEVEL_ERROR};
    for (size_t i = 0; i < 4; i++) {
        format_record(buf, sizeof(buf), LOG_FORMAT_LOGFMT, levels[i], "m", "n=%d", (int)i);
        assert_string_equal(body(buf, LOG_FORMAT_LOGFMT), expected[i]);
    }
}

static void log_format_record__logfmt_hostile_values__quoted_and_escaped(void **state)
{
    (void)state;
    char buf[512];
    /* Client-controlled strings must not add fields or break the line. */
    format_record(buf, sizeof(buf), LOG_FORMAT_LOGFMT, LOG_LEVEL_INFO, "m",
                  "a=%s b=%s c=%s d=%s e=%s f=%s", "x y", "k=v", "say \"hi\"", "back\\slash",
                  "line\nbreak\r\t", "");
    assert_string_equal(body(buf, LOG_FORMAT_LOGFMT),
                        " level=info msg=m a=\"x y\" b=\"k=v\" c=\"say \\\"hi\\\"\" "
                        "d=\"back\\\\slash\" e=\"line\\nbreak\\r\\t\" f=\"\"\n");
}

static void log_format_record__control_bytes__unicode_escaped(void **state)
{
    (void)state;
    char buf[256];
    format_record(buf, sizeof(buf), LOG_FORMAT_LOGFMT, LOG_LEVEL_INFO, "m", "v=%s", "a\x01z\x7f");
    assert_string_equal(body(buf, LOG_FORMAT_LOGFMT), " level=info msg=m v=\"a\\u0001z\\u007f\"\n");
    format_record(buf, sizeof(buf), LOG_FORMAT_JSON, LOG_LEVEL_INFO, "m", "v=%s",
                  "a\x1b\"\xc3\xa9");
    assert_string_equal(body(buf, LOG_FORMAT_JSON),
                        ",\"level\":\"info\",\"msg\":\"m\",\"v\":\"a\\u001b\\\"\xc3\xa9\"}\n");
}

static void log_format_record__msg_with_quotes__escaped_in_both_formats(void **state)
{
    (void)state;
    char buf[256];
    format_unchecked(buf, sizeof(buf), LOG_FORMAT_JSON, "bad \"row\"\n", NULL);
    assert_string_equal(body(buf, LOG_FORMAT_JSON),
                        ",\"level\":\"info\",\"msg\":\"bad \\\"row\\\"\\n\"}\n");
    format_unchecked(buf, sizeof(buf), LOG_FORMAT_LOGFMT, "bad \"row\"\n", NULL);
    assert_string_equal(body(buf, LOG_FORMAT_LOGFMT), " level=info msg=\"bad \\\"row\\\"\\n\"\n");
}

static void log_format_record__integer_conversions__exact_digits(void **state)
{
    (void)state;
    char buf[512];
    format_record(buf, sizeof(buf), LOG_FORMAT_JSON, LOG_LEVEL_INFO, "m",
                  "d=%d i=%i u=%u ld=%ld lu=%lu lld=%lld llu=%llu zu=%zu", -1, 2, 3u, -4L, 5UL,
                  (long long)INT64_MIN, (unsigned long long)UINT64_MAX, (size_t)7);
    assert_string_equal(body(buf, LOG_FORMAT_JSON),
                        ",\"level\":\"info\",\"msg\":\"m\",\"d\":-1,\"i\":2,\"u\":3,\"ld\":-4,"
                        "\"lu\":5,\"lld\":-9223372036854775808,\"llu\":18446744073709551615,"
                        "\"zu\":7}\n");
}

static void log_format_record__hex_and_non_finite__strings_in_json(void **state)
{
    (void)state;
    char buf[256];
    /* JSON has no hex numbers and no infinities: those become strings. */
    format_record(buf, sizeof(buf), LOG_FORMAT_JSON, LOG_LEVEL_INFO, "m", "x=%x g=%g f=%f", 255u,
                  0.25, (double)INFINITY);
    assert_string_equal(body(buf, LOG_FORMAT_JSON),
                        ",\"level\":\"info\",\"msg\":\"m\",\"x\":\"ff\",\"g\":0.25,"
                        "\"f\":\"inf\"}\n");
}

static void log_format_record__null_string__empty_value(void **state)
{
    (void)state;
    char buf[256];
    /* Unchecked: the compiler rightly refuses a literal NULL for %s. */
    format_unchecked(buf, sizeof(buf), LOG_FORMAT_LOGFMT, "m", "v=%s n=%d", (const char *)NULL, 1);
    assert_string_equal(body(buf, LOG_FORMAT_LOGFMT), " level=info msg=m v=\"\" n=1\n");
}

static void log_format_record__no_fields__level_and_msg_only(void **state)
{
    (void)state;
    char buf[256];
    format_unchecked(buf, sizeof(buf), LOG_FORMAT_JSON, "started", NULL);
    assert_string_equal(body(buf, LOG_FORMAT_JSON), ",\"level\":\"info\",\"msg\":\"started\"}\n");
    format_unchecked(buf, sizeof(buf), LOG_FORMAT_LOGFMT, "started", "");
    assert_string_equal(body(buf, LOG_FORMAT_LOGFMT), " level=info msg=started\n");
}

static void log_format_record__unsupported_conversion__question_mark_then_stop(void **state)
{
    (void)state;
    char buf[256];
    /* %hd is valid printf but not supported here: shown as "?", and the
     * rest is not read (the argument list can no longer be trusted). */
    format_record(buf, sizeof(buf), LOG_FORMAT_LOGFMT, LOG_LEVEL_INFO, "m", "a=%d b=%hd c=%d", 1,
                  (short)2, 3);
    assert_string_equal(body(buf, LOG_FORMAT_LOGFMT), " level=info msg=m a=1 b=?\n");
}

static void log_format_record__malformed_fields__stop_at_the_bad_token(void **state)
{
    (void)state;
    char buf[256];
    format_record(buf, sizeof(buf), LOG_FORMAT_LOGFMT, LOG_LEVEL_INFO, "m", "a=%d  lonely b=%d", 1,
                  2);
    assert_string_equal(body(buf, LOG_FORMAT_LOGFMT), " level=info msg=m a=1\n");
}

static void log_format_record__long_value__truncated_line_still_ends(void **state)
{
    (void)state;
    size_t big = 5000;
    char *value = malloc(big + 1);
    assert_non_null(value);
    memset(value, 'v', big);
    value[big] = '\0';
    char buf[8192];
    size_t n = format_record(buf, sizeof(buf), LOG_FORMAT_LOGFMT, LOG_LEVEL_INFO, "m", "v=%s n=%d",
                             value, 7);
    free(value);
    assert_int_equal(n, strlen(buf));
    const char *b = body(buf, LOG_FORMAT_LOGFMT);
    const char *v = strstr(b, " v=");
    assert_non_null(v);
    size_t run = strspn(v + 3, "v");
    assert_true(run >= 100 && run < big); /* "Very long values are truncated" */
    assert_string_equal(v + 3 + run, " n=7\n");
}

static void log_format_record__small_buffer__terminated_with_newline(void **state)
{
    (void)state;
    char buf[40];
    memset(buf, 'Z', sizeof(buf));
    size_t n = format_record(buf, sizeof(buf), LOG_FORMAT_JSON, LOG_LEVEL_INFO,
                             "a message much longer than the buffer", "k=%s", "v");
    assert_int_equal(n, sizeof(buf) - 1);
    assert_int_equal(strlen(buf), n);
    assert_int_equal(buf[n - 1], '\n');
    char two[2] = {'Z', 'Z'};
    n = format_unchecked(two, sizeof(two), LOG_FORMAT_LOGFMT, "m", NULL);
    assert_int_equal(n, 1);
    assert_string_equal(two, "\n");
    char untouched = 'Z';
    assert_int_equal(format_unchecked(&untouched, 0, LOG_FORMAT_LOGFMT, "m", NULL), 0);
    assert_int_equal(untouched, 'Z');
}

/* BUG: with size 1 there is room for the NUL only, but log_format_record()
 * writes '\n' into buf[0] and the NUL into buf[1], one byte past the buffer
 * (the "keep room for the newline" adjustment needs size >= 2 and is skipped),
 * and returns 1. Expected: buf[0] == '\0', return 0, nothing past buf[0]. */
static void log_format_record__one_byte_buffer__only_terminator(void **state)
{
    (void)state;
    char buf[2] = {'Z', 'Z'};
    size_t n = format_unchecked(buf, 1, LOG_FORMAT_LOGFMT, "m", NULL);
    assert_int_equal(buf[1], 'Z'); /* nothing written past the buffer */
    assert_int_equal(buf[0], '\0');
    assert_int_equal(n, 0);
}

static int restore_defaults(void **state)
{
    (void)state;
    log_configure(LOG_FORMAT_LOGFMT, LOG_LEVEL_INFO);
    return 0;
}

static void log_enabled__configured_level__that_level_and_above(void **state)
{
    (void)state;
    assert_false(log_enabled(LOG_LEVEL_DEBUG)); /* default: info */
    assert_true(log_enabled(LOG_LEVEL_INFO));
    log_configure(LOG_FORMAT_JSON, LOG_LEVEL_WARN);
    assert_false(log_enabled(LOG_LEVEL_INFO));
    assert_true(log_enabled(LOG_LEVEL_WARN));
    assert_true(log_enabled(LOG_LEVEL_ERROR));
    log_configure(LOG_FORMAT_LOGFMT, LOG_LEVEL_DEBUG);
    assert_true(log_enabled(LOG_LEVEL_DEBUG));
}

/* Runs the log calls with stderr sent to a temporary file; returns what was
 * written (caller frees). */
static char *capture_stderr(void (*emit)(void))
{
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_true(dup2(fileno(tmp), STDERR_FILENO) >= 0);
    emit();
    fflush(stderr);
    assert_true(dup2(saved, STDERR_FILENO) >= 0);
    close(saved);

    long size = ftell(tmp);
    assert_true(size >= 0);
    char *text = calloc(1, (size_t)size + 1);
    assert_non_null(text);
    rewind(tmp);
    assert_int_equal(fread(text, 1, (size_t)size, tmp), (size_t)size);
    fclose(tmp);
    return text;
}

static void emit_each_level(void)
{
    log_debug("dropped", "n=%d", 1);
    log_info("dropped", "n=%d", 2);
    log_warn("kept", "n=%d", 3);
    log_error("kept", "n=%d consumer=%s", 4, "a b");
    log_write(LOG_LEVEL_INFO, "dropped", "n=%d", 5);
}

static void log_write__below_min_level__not_written(void **state)
{
    (void)state;
    log_configure(LOG_FORMAT_JSON, LOG_LEVEL_WARN);
    char *out = capture_stderr(emit_each_level);
    /* Exactly two lines: the warning and the error, in the chosen format. */
    char *first_end = strchr(out, '\n');
    assert_non_null(first_end);
    char *second = first_end + 1;
    char *second_end = strchr(second, '\n');
    assert_non_null(second_end);
    assert_int_equal(second_end[1], '\0');
    *first_end = '\0';
    *second_end = '\0';
    assert_string_equal(body(out, LOG_FORMAT_JSON),
                        ",\"level\":\"warn\",\"msg\":\"kept\",\"n\":3}");
    assert_string_equal(body(second, LOG_FORMAT_JSON),
                        ",\"level\":\"error\",\"msg\":\"kept\",\"n\":4,\"consumer\":\"a b\"}");
    free(out);
}

static void log_format_record__invalid_utf8__escaped_text_valid_json(void **state)
{
    (void)state;
    char buf[256];
    /* a lone continuation byte, a truncated sequence, an overlong '/' */
    format_record(buf, sizeof(buf), LOG_FORMAT_JSON, LOG_LEVEL_INFO, "m", "v=%s",
                  "a\x80"
                  "b\xe2\x82"
                  "c\xc0\xaf");
    assert_string_equal(body(buf, LOG_FORMAT_JSON),
                        ",\"level\":\"info\",\"msg\":\"m\",\"v\":"
                        "\"a\\\\x80b\\\\xe2\\\\x82c\\\\xc0\\\\xaf\"}\n");
    format_record(buf, sizeof(buf), LOG_FORMAT_LOGFMT, LOG_LEVEL_INFO, "m", "v=%s", "\xff");
    assert_string_equal(body(buf, LOG_FORMAT_LOGFMT), " level=info msg=m v=\"\\\\xff\"\n");
}

static void log_format_record__line_separators__escaped(void **state)
{
    (void)state;
    char buf[256];
    format_record(buf, sizeof(buf), LOG_FORMAT_JSON, LOG_LEVEL_INFO, "m", "v=%s",
                  "a\xe2\x80\xa8"
                  "b\xe2\x80\xa9"
                  "c\xe2\x80\xa6");
    assert_string_equal(body(buf, LOG_FORMAT_JSON), ",\"level\":\"info\",\"msg\":\"m\",\"v\":"
                                                    "\"a\\u2028b\\u2029c\xe2\x80\xa6\"}\n");
}

static void log_limit_allow__burst__ten_per_second_then_dropped_count(void **state)
{
    (void)state;
    struct log_limit limit = {0};
    unsigned dropped = 99;
    for (int i = 0; i < LOG_LIMIT_PER_SECOND; i++) {
        assert_true(log_limit_allow_at(&limit, 5000 + i, &dropped));
        assert_int_equal(dropped, 0);
    }
    for (int i = 0; i < 25; i++)
        assert_false(log_limit_allow_at(&limit, 5500, &dropped));
    /* still the same second */
    assert_false(log_limit_allow_at(&limit, 5999, &dropped));
    /* the next window's first line carries the count */
    assert_true(log_limit_allow_at(&limit, 6000, &dropped));
    assert_int_equal(dropped, 26);
    assert_true(log_limit_allow_at(&limit, 6001, &dropped));
    assert_int_equal(dropped, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(log_format_record__logfmt__key_value_pairs),
        cmocka_unit_test(log_format_record__json__one_object_per_line),
        cmocka_unit_test(log_format_record__levels__named),
        cmocka_unit_test(log_format_record__logfmt_hostile_values__quoted_and_escaped),
        cmocka_unit_test(log_format_record__control_bytes__unicode_escaped),
        cmocka_unit_test(log_format_record__msg_with_quotes__escaped_in_both_formats),
        cmocka_unit_test(log_format_record__integer_conversions__exact_digits),
        cmocka_unit_test(log_format_record__hex_and_non_finite__strings_in_json),
        cmocka_unit_test(log_format_record__null_string__empty_value),
        cmocka_unit_test(log_format_record__no_fields__level_and_msg_only),
        cmocka_unit_test(log_format_record__unsupported_conversion__question_mark_then_stop),
        cmocka_unit_test(log_format_record__malformed_fields__stop_at_the_bad_token),
        cmocka_unit_test(log_format_record__long_value__truncated_line_still_ends),
        cmocka_unit_test(log_format_record__small_buffer__terminated_with_newline),
        cmocka_unit_test(log_format_record__one_byte_buffer__only_terminator),
        cmocka_unit_test(log_format_record__invalid_utf8__escaped_text_valid_json),
        cmocka_unit_test(log_format_record__line_separators__escaped),
        cmocka_unit_test(log_limit_allow__burst__ten_per_second_then_dropped_count),
        cmocka_unit_test_teardown(log_enabled__configured_level__that_level_and_above,
                                  restore_defaults),
        cmocka_unit_test_teardown(log_write__below_min_level__not_written, restore_defaults),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
