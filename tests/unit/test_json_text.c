/* JSON compaction that keeps every value's text, and the member iterator. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util/json_text.h"

/* Compacts text; returns a NUL-terminated copy of the result (NULL when
 * invalid) and the kind. */
static char *compact(const char *text, enum json_kind *kind)
{
    size_t len = strlen(text);
    /* The input gets exactly len bytes on the heap, no terminator, so ASan
     * reports any read past the end. */
    char *in = malloc(len > 0 ? len : 1);
    char *out = malloc(len + 1);
    assert_non_null(in);
    assert_non_null(out);
    memcpy(in, text, len);
    size_t n = json_compact(in, len, out, kind);
    assert_true(n <= len);
    free(in);
    if (n == 0) {
        assert_int_equal(*kind, JSON_KIND_INVALID);
        free(out);
        return NULL;
    }
    out[n] = '\0';
    return out;
}

static void assert_compacts_to(const char *text, const char *expected, enum json_kind kind)
{
    enum json_kind got;
    char *out = compact(text, &got);
    if (out == NULL)
        fail_msg("refused: %s", text);
    assert_string_equal(out, expected);
    assert_int_equal(got, kind);
    free(out);
}

static void assert_invalid(const char *text)
{
    enum json_kind kind;
    char *out = compact(text, &kind);
    if (out != NULL) {
        free(out);
        fail_msg("accepted: %s", text);
    }
}

static void json_compact__jsonb_output__whitespace_dropped(void **state)
{
    (void)state;
    assert_compacts_to("{\"foo\": \"bar\", \"list\": [1, 2, {\"x\": null}]}",
                       "{\"foo\":\"bar\",\"list\":[1,2,{\"x\":null}]}", JSON_KIND_OBJECT);
    assert_compacts_to(" \t\r\n[ true , false ]\n", "[true,false]", JSON_KIND_ARRAY);
}

static void json_compact__numbers__digits_kept_verbatim(void **state)
{
    (void)state;
    assert_compacts_to("{\"a\": 0.1, \"b\": 1.000, \"c\": -0, \"d\": 1E+400, "
                       "\"e\": 123456789012345678901234567890}",
                       "{\"a\":0.1,\"b\":1.000,\"c\":-0,\"d\":1E+400,"
                       "\"e\":123456789012345678901234567890}",
                       JSON_KIND_OBJECT);
}

static void json_compact__strings__escapes_and_spaces_kept(void **state)
{
    (void)state;
    assert_compacts_to("{\"k\": \"a b\\n\\\"q\\\" \\u00e9 \xe2\x82\xac\"}",
                       "{\"k\":\"a b\\n\\\"q\\\" \\u00e9 \xe2\x82\xac\"}", JSON_KIND_OBJECT);
}

/* Strings are scanned eight bytes at a time: every kind of byte that
 * needs a look must be found at any offset within and across groups. */
static void json_compact__special_byte_at_every_offset__found(void **state)
{
    (void)state;
    static const char *const valid[] = {"\\\"", "\\\\", "\xc3\xa9", "\xe2\x82\xac", "\\u00e9", " "};
    static const char *const invalid[] = {"\x01", "\x1f", "\n", "\xff", "\xc3", "\"x", "\\q"};
    char body[64], text[96];
    for (size_t at = 0; at < 20; at++) {
        for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++) {
            snprintf(body, sizeof(body), "%.*s%s%.*s", (int)at, "abcdefghijklmnopqrstuvwxyz",
                     valid[i], (int)(19 - at), "ABCDEFGHIJKLMNOPQRSTUVWXYZ");
            snprintf(text, sizeof(text), "{\"k\": \"%s\"}", body);
            char expected[96];
            snprintf(expected, sizeof(expected), "{\"k\":\"%s\"}", body);
            assert_compacts_to(text, expected, JSON_KIND_OBJECT);
        }
        for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
            snprintf(text, sizeof(text), "{\"k\": \"%.*s%s%.*s\"}", (int)at,
                     "abcdefghijklmnopqrstuvwxyz", invalid[i], (int)(19 - at),
                     "ABCDEFGHIJKLMNOPQRSTUVWXYZ");
            assert_invalid(text);
        }
    }
}

static void json_compact__scalars__kind_reported(void **state)
{
    (void)state;
    assert_compacts_to("\"s\"", "\"s\"", JSON_KIND_STRING);
    assert_compacts_to(" 42 ", "42", JSON_KIND_NUMBER);
    assert_compacts_to("null", "null", JSON_KIND_NULL);
    assert_compacts_to("true", "true", JSON_KIND_TRUE);
}

static void json_compact__invalid_text__refused(void **state)
{
    (void)state;
    const char *bad[] = {
        "",          "{",     "{\"a\" 1}", "{\"a\":1,}", "[1,]",     "01",
        "1.",        ".5",    "+1",        "tru",        "\"a",      "\"\\x\"",
        "\"\\u12\"", "{} {}", "{'a':1}",   "\"\t\"",     "\"\xc3\"", "\"\xed\xa0\x80\"",
        "NaN",       "[1 2]"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_invalid(bad[i]);
}

static void json_compact__unicode_escapes__kept_as_written(void **state)
{
    (void)state;
    /* Escapes are copied, not decoded: \u00e9 stays six bytes, case kept. */
    assert_compacts_to("[\"\\u00e9\", \"\\u00E9\", \"\\ud83d\\ude00\", \"\\u0000\"]",
                       "[\"\\u00e9\",\"\\u00E9\",\"\\ud83d\\ude00\",\"\\u0000\"]", JSON_KIND_ARRAY);
    /* Raw UTF-8 and DEL need no escape in JSON. */
    assert_compacts_to("\"\xf0\x9f\x98\x80\x7f\"", "\"\xf0\x9f\x98\x80\x7f\"", JSON_KIND_STRING);
}

static void json_compact__bad_escapes_and_surrogates__refused(void **state)
{
    (void)state;
    const char *bad[] = {
        "\"\\ud83d\"",        /* high surrogate alone */
        "\"\\ud83dx\"",       /* high surrogate, then text */
        "\"\\ud83d\\u0041\"", /* high surrogate, then not a low one */
        "\"\\ude00\"",        /* low surrogate alone */
        "\"\\u00g0\"",        /* not hex */
        "\"\\U00e9\"",        /* escapes are case sensitive */
        "\"\\",               /* escape cut by the end */
        "\"\\u00",            /* \u cut by the end */
        "\"\\ud83d\\ude\"",   /* low half cut short */
        "\"\\'\"",            /* not a JSON escape */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_invalid(bad[i]);
}

static void json_compact__malformed_numbers__refused(void **state)
{
    (void)state;
    const char *bad[] = {"-",    "-a",    "1e",  "1e+",      "1.e5",      "-01",  "[-01]",    "00",
                         "[.1]", "1.2.3", "0x1", "Infinity", "-Infinity", "[1e]", "{\"a\":-}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_invalid(bad[i]);
}

static void json_compact__valid_numbers__kind_number_verbatim(void **state)
{
    (void)state;
    const char *good[] = {
        "0",    "-0",      "-0.0",          "1e5",
        "1E-5", "2.5e+10", "-123.456e-789", "100000000000000000000000000000000000000000.5"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_compacts_to(good[i], good[i], JSON_KIND_NUMBER);
}

static void json_compact__structural_garbage__refused(void **state)
{
    (void)state;
    const char *bad[] = {"{\"a\":1 \"b\":2}",
                         "{,\"a\":1}",
                         "{\"a\"}",
                         "{1:2}",
                         "[,1]",
                         "[1,,2]",
                         "]",
                         "}",
                         "{\"a\":1]",
                         "[1}",
                         "nul",
                         "truex",
                         "\xef\xbb\xbf{}" /* BOM */,
                         "\"\n\"",
                         "{\"a\":\"b\" , }",
                         "  ",
                         "\v{}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_invalid(bad[i]);
}

static void json_compact__empty_containers_and_keys__kept(void **state)
{
    (void)state;
    assert_compacts_to("{ }", "{}", JSON_KIND_OBJECT);
    assert_compacts_to("[ ]", "[]", JSON_KIND_ARRAY);
    assert_compacts_to("{\"\" : [ {} , [ ] ] }", "{\"\":[{},[]]}", JSON_KIND_OBJECT);
    /* Duplicate keys are JSON text like any other: kept, in order. */
    assert_compacts_to("{\"a\": 1, \"a\": 2}", "{\"a\":1,\"a\":2}", JSON_KIND_OBJECT);
    assert_compacts_to("false", "false", JSON_KIND_FALSE);
}

static void json_compact__validate_only__same_length(void **state)
{
    (void)state;
    const char text[] = "{ \"a\" : [ 1 , 2 ] }";
    enum json_kind kind;
    assert_int_equal(json_compact(text, strlen(text), NULL, &kind), strlen("{\"a\":[1,2]}"));
    assert_int_equal(kind, JSON_KIND_OBJECT);
}

static void json_compact__objects_nested_at_limit__accepted_then_refused(void **state)
{
    (void)state;
    /* Objects count towards the depth like arrays: {"a":{"a":...{}...}}. */
    size_t depth = JSON_MAX_DEPTH + 1;
    char *text = malloc(depth * 6 + 1);
    assert_non_null(text);
    char *p = text;
    for (size_t i = 0; i < depth - 1; i++)
        p += sprintf(p, "{\"a\":");
    p += sprintf(p, "{}");
    for (size_t i = 0; i < depth - 1; i++)
        *p++ = '}';
    *p = '\0';
    enum json_kind kind;
    assert_int_equal(json_compact(text, strlen(text), NULL, &kind), 0);
    assert_int_equal(kind, JSON_KIND_INVALID);
    /* One level less: from the second '{' on it is JSON_MAX_DEPTH deep. */
    const char *inner = text + strlen("{\"a\":");
    size_t inner_len = strlen(inner) - 1;
    assert_int_equal(json_compact(inner, inner_len, NULL, &kind), inner_len);
    assert_int_equal(kind, JSON_KIND_OBJECT);
    free(text);
}

static char *nested(size_t depth)
{
    char *text = malloc(2 * depth + 1);
    assert_non_null(text);
    memset(text, '[', depth);
    memset(text + depth, ']', depth);
    text[2 * depth] = '\0';
    return text;
}

static void json_compact__nesting__limited_to_max_depth(void **state)
{
    (void)state;
    enum json_kind kind;
    char *ok = nested(JSON_MAX_DEPTH);
    assert_int_equal(json_compact(ok, strlen(ok), NULL, &kind), strlen(ok));
    char *deep = nested(JSON_MAX_DEPTH + 1);
    assert_int_equal(json_compact(deep, strlen(deep), NULL, &kind), 0);
    assert_int_equal(kind, JSON_KIND_INVALID);
    free(ok);
    free(deep);
}

static void json_members__object__members_in_order(void **state)
{
    (void)state;
    const char text[] = " {\"a\": 1, \"b\\u0063\": [true, {}], \"d\": \"x\"} ";
    struct json_members it;
    struct json_member m;
    assert_true(json_members_begin(&it, text, strlen(text)));

    assert_int_equal(json_members_next(&it, &m), 1);
    assert_true(json_string_equals(m.key, m.key_len, "a"));
    assert_int_equal(m.kind, JSON_KIND_NUMBER);
    assert_int_equal(m.value_len, 1);
    assert_memory_equal(m.value, "1", 1);

    assert_int_equal(json_members_next(&it, &m), 1);
    assert_true(json_string_equals(m.key, m.key_len, "bc"));
    assert_int_equal(m.kind, JSON_KIND_ARRAY);
    assert_int_equal(m.value_len, strlen("[true, {}]"));

    assert_int_equal(json_members_next(&it, &m), 1);
    assert_true(json_string_equals(m.key, m.key_len, "d"));
    assert_int_equal(m.kind, JSON_KIND_STRING);

    assert_int_equal(json_members_next(&it, &m), 0);
}

static void json_members__garbage_after_object__error(void **state)
{
    (void)state;
    const char text[] = "{\"a\": 1} x";
    struct json_members it;
    struct json_member m;
    assert_true(json_members_begin(&it, text, strlen(text)));
    assert_int_equal(json_members_next(&it, &m), 1);
    assert_int_equal(json_members_next(&it, &m), -1);
}

static void json_members_begin__not_an_object__false(void **state)
{
    (void)state;
    struct json_members it;
    assert_false(json_members_begin(&it, "[1]", 3));
    assert_false(json_members_begin(&it, "", 0));
}

static void json_members__empty_object__done_at_once(void **state)
{
    (void)state;
    struct json_members it;
    struct json_member m;
    assert_true(json_members_begin(&it, " { } ", 5));
    assert_int_equal(json_members_next(&it, &m), 0);
    assert_int_equal(json_members_next(&it, &m), 0); /* stays done */
}

static void json_members__malformed_object__error_and_stays_error(void **state)
{
    (void)state;
    const char *bad[] = {"{\"a\":1,}",        "{,\"a\":1}", "{\"a\" 1}",   "{\"a\":}",
                         "{\"a\":1 \"b\":2}", "{\"a\":1",   "{\"a\":[1,}", "{a:1}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct json_members it;
        struct json_member m;
        assert_true(json_members_begin(&it, bad[i], strlen(bad[i])));
        int rc;
        int steps = 0;
        while ((rc = json_members_next(&it, &m)) == 1)
            steps++;
        if (rc != -1)
            fail_msg("'%s' ended with %d after %d members", bad[i], rc, steps);
        assert_int_equal(json_members_next(&it, &m), -1);
    }
}

static void json_members__nested_values__spans_cover_whole_value(void **state)
{
    (void)state;
    const char text[] = "{\"o\": {\"x\": [1, {\"y\": \"}\"}]}, \"s\": \"a\\\"}\", \"n\": null}";
    struct json_members it;
    struct json_member m;
    assert_true(json_members_begin(&it, text, strlen(text)));
    assert_int_equal(json_members_next(&it, &m), 1);
    assert_int_equal(m.kind, JSON_KIND_OBJECT);
    assert_int_equal(m.value_len, strlen("{\"x\": [1, {\"y\": \"}\"}]}"));
    assert_memory_equal(m.value, "{\"x\": [1, {\"y\": \"}\"}]}", m.value_len);
    assert_int_equal(json_members_next(&it, &m), 1);
    assert_int_equal(m.key_len, 3);
    assert_memory_equal(m.key, "\"s\"", 3);
    assert_memory_equal(m.value, "\"a\\\"}\"", m.value_len);
    assert_int_equal(json_members_next(&it, &m), 1);
    assert_int_equal(m.kind, JSON_KIND_NULL);
    assert_int_equal(json_members_next(&it, &m), 0);
}

static void json_string_equals__raw_and_escaped_keys__decoded_comparison(void **state)
{
    (void)state;
    assert_true(json_string_equals("\"id\"", 4, "id"));
    assert_true(json_string_equals("\"\\u0069d\"", 9, "id"));
    assert_true(json_string_equals("\"\\u0069\\u0064\"", 14, "id"));
    assert_false(json_string_equals("\"ids\"", 5, "id"));
    assert_false(json_string_equals("\"i\"", 3, "id"));
    assert_false(json_string_equals("\"\\u0069\"", 8, "id"));
    assert_false(json_string_equals("\"ID\"", 4, "id"));
}

static void json_string_decode__escapes__decoded(void **state)
{
    (void)state;
    const char raw[] = "\"a\\tb\\\"\\u00e9\\ud83d\\ude00\\/\"";
    char out[sizeof(raw)];
    size_t len = 0;
    assert_true(json_string_decode(raw, strlen(raw), out, &len));
    assert_string_equal(out, "a\tb\"\xc3\xa9\xf0\x9f\x98\x80/");
    assert_int_equal(len, strlen(out));
}

static void json_string_decode__nul_or_lone_surrogate__refused(void **state)
{
    (void)state;
    char out[32];
    size_t len;
    assert_false(json_string_decode("\"a\\u0000b\"", 10, out, &len));
    assert_false(json_string_decode("\"\\ud83d\"", 8, out, &len));
    assert_false(json_string_decode("\"abc", 4, out, &len));
}

static void json_string_decode__all_simple_escapes__decoded(void **state)
{
    (void)state;
    const char raw[] = "\"\\b\\f\\n\\r\\t\\\\\\/\\\"\"";
    char out[sizeof(raw)];
    size_t len = 99;
    assert_true(json_string_decode(raw, strlen(raw), out, &len));
    assert_int_equal(len, 8);
    assert_memory_equal(out, "\b\f\n\r\t\\/\"", 9);
}

static void json_string_decode__code_point_widths__utf8_encoded(void **state)
{
    (void)state;
    /* U+007F, U+0080, U+07FF, U+0800, U+FFFF, U+10000, U+10FFFF */
    const char raw[] = "\"\\u007f\\u0080\\u07ff\\u0800\\uffff\\ud800\\udc00\\udbff\\udfff\"";
    char out[sizeof(raw)];
    size_t len = 0;
    assert_true(json_string_decode(raw, strlen(raw), out, &len));
    const char expected[] = "\x7f\xc2\x80\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf\xf0\x90\x80\x80"
                            "\xf4\x8f\xbf\xbf";
    assert_int_equal(len, sizeof(expected) - 1);
    assert_memory_equal(out, expected, sizeof(expected));
}

static void json_string_decode__not_a_single_token__refused(void **state)
{
    (void)state;
    char out[32];
    size_t len;
    assert_false(json_string_decode("abc", 3, out, &len));      /* no quotes */
    assert_false(json_string_decode("\"", 1, out, &len));       /* lone quote */
    assert_false(json_string_decode("\"a\"b", 4, out, &len));   /* trailing text */
    assert_false(json_string_decode("\"a\"\"", 4, out, &len));  /* two tokens */
    assert_false(json_string_decode("\"\\q\"", 4, out, &len));  /* bad escape */
    assert_false(json_string_decode("\"\xc3\"", 3, out, &len)); /* bad UTF-8 */
    assert_true(json_string_decode("\"\"", 2, out, &len));
    assert_int_equal(len, 0);
    assert_string_equal(out, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(json_compact__jsonb_output__whitespace_dropped),
        cmocka_unit_test(json_compact__numbers__digits_kept_verbatim),
        cmocka_unit_test(json_compact__strings__escapes_and_spaces_kept),
        cmocka_unit_test(json_compact__special_byte_at_every_offset__found),
        cmocka_unit_test(json_compact__scalars__kind_reported),
        cmocka_unit_test(json_compact__invalid_text__refused),
        cmocka_unit_test(json_compact__unicode_escapes__kept_as_written),
        cmocka_unit_test(json_compact__bad_escapes_and_surrogates__refused),
        cmocka_unit_test(json_compact__malformed_numbers__refused),
        cmocka_unit_test(json_compact__valid_numbers__kind_number_verbatim),
        cmocka_unit_test(json_compact__structural_garbage__refused),
        cmocka_unit_test(json_compact__empty_containers_and_keys__kept),
        cmocka_unit_test(json_compact__validate_only__same_length),
        cmocka_unit_test(json_compact__nesting__limited_to_max_depth),
        cmocka_unit_test(json_compact__objects_nested_at_limit__accepted_then_refused),
        cmocka_unit_test(json_members__object__members_in_order),
        cmocka_unit_test(json_members__garbage_after_object__error),
        cmocka_unit_test(json_members_begin__not_an_object__false),
        cmocka_unit_test(json_members__empty_object__done_at_once),
        cmocka_unit_test(json_members__malformed_object__error_and_stays_error),
        cmocka_unit_test(json_members__nested_values__spans_cover_whole_value),
        cmocka_unit_test(json_string_equals__raw_and_escaped_keys__decoded_comparison),
        cmocka_unit_test(json_string_decode__escapes__decoded),
        cmocka_unit_test(json_string_decode__nul_or_lone_surrogate__refused),
        cmocka_unit_test(json_string_decode__all_simple_escapes__decoded),
        cmocka_unit_test(json_string_decode__code_point_widths__utf8_encoded),
        cmocka_unit_test(json_string_decode__not_a_single_token__refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
