/* JSON compaction that keeps every value's text, and the member iterator. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "json_text.h"

/* Compacts text; returns a NUL-terminated copy of the result (NULL when
 * invalid) and the kind. */
static char *compact(const char *text, enum json_kind *kind)
{
    size_t len = strlen(text);
    char *out = malloc(len + 1);
    assert_non_null(out);
    size_t n = json_compact(text, len, out, kind);
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
    const char *bad[] = {"",        "{",          "{\"a\" 1}",   "{\"a\":1,}",  "[1,]",
                         "01",      "1.",         ".5",          "+1",          "tru",
                         "\"a",     "\"\\x\"",    "\"\\u12\"",   "{} {}",       "{'a':1}",
                         "\"\t\"",  "\"\xc3\"",   "\"\xed\xa0\x80\"", "NaN",    "[1 2]"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_invalid(bad[i]);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(json_compact__jsonb_output__whitespace_dropped),
        cmocka_unit_test(json_compact__numbers__digits_kept_verbatim),
        cmocka_unit_test(json_compact__strings__escapes_and_spaces_kept),
        cmocka_unit_test(json_compact__scalars__kind_reported),
        cmocka_unit_test(json_compact__invalid_text__refused),
        cmocka_unit_test(json_compact__nesting__limited_to_max_depth),
        cmocka_unit_test(json_members__object__members_in_order),
        cmocka_unit_test(json_members__garbage_after_object__error),
        cmocka_unit_test(json_members_begin__not_an_object__false),
        cmocka_unit_test(json_string_decode__escapes__decoded),
        cmocka_unit_test(json_string_decode__nul_or_lone_surrogate__refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
