/* UTF-8 validation per RFC 3629. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util/utf8.h"

static bool valid(const char *s)
{
    return utf8_valid(s, strlen(s));
}

static void utf8_valid__well_formed__accepted(void **state)
{
    (void)state;
    assert_true(valid(""));
    assert_true(valid("ascii"));
    assert_true(valid("\xc3\xa9"));         /* U+00E9 */
    assert_true(valid("\xe2\x82\xac"));     /* U+20AC */
    assert_true(valid("\xf0\x9f\x98\x80")); /* U+1F600 */
    assert_true(valid("\xf4\x8f\xbf\xbf")); /* U+10FFFF */
    assert_true(valid("\xef\xbf\xbd"));     /* U+FFFD */
}

static void utf8_valid__ill_formed__refused(void **state)
{
    (void)state;
    const char *bad[] = {
        "\x80",             /* lone continuation */
        "\xc3",             /* truncated */
        "\xe2\x82",         /* truncated */
        "\xc0\x80",         /* overlong NUL */
        "\xe0\x80\xaf",     /* overlong */
        "\xf0\x80\x80\xaf", /* overlong */
        "\xed\xa0\x80",     /* surrogate U+D800 */
        "\xed\xbf\xbf",     /* surrogate U+DFFF */
        "\xf4\x90\x80\x80", /* above U+10FFFF */
        "\xf5\x80\x80\x80",
        "\xff",
        "a\xc3(", /* bad continuation */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (valid(bad[i]))
            fail_msg("accepted sample %zu", i);
    }
}

static void utf8_sequence_length__each_width__length(void **state)
{
    (void)state;
    const unsigned char s[] = "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80";
    const unsigned char *end = s + sizeof(s) - 1;
    assert_int_equal(utf8_sequence_length(s, end), 1);
    assert_int_equal(utf8_sequence_length(s + 1, end), 2);
    assert_int_equal(utf8_sequence_length(s + 3, end), 3);
    assert_int_equal(utf8_sequence_length(s + 6, end), 4);
    /* Cut short by end: invalid, never a read past it. */
    assert_int_equal(utf8_sequence_length(s + 6, end - 1), 0);
}

/* The first and last valid lead/continuation pairs of each range of
 * RFC 3629's table, and the bytes just outside them. */
static void utf8_valid__range_boundaries__exact(void **state)
{
    (void)state;
    const char *good[] = {
        "\x7f",             /* U+007F, last one-byte */
        "\xc2\x80",         /* U+0080, first two-byte */
        "\xdf\xbf",         /* U+07FF */
        "\xe0\xa0\x80",     /* U+0800, first three-byte */
        "\xed\x9f\xbf",     /* U+D7FF, just below the surrogates */
        "\xee\x80\x80",     /* U+E000, just above them */
        "\xef\xbf\xbf",     /* U+FFFF */
        "\xf0\x90\x80\x80", /* U+10000, first four-byte */
        "\xf4\x8f\xbf\xbf", /* U+10FFFF, the last code point */
    };
    const char *bad[] = {
        "\xc1\xbf",             /* overlong U+007F */
        "\xe0\x9f\xbf",         /* overlong U+07FF */
        "\xf0\x8f\xbf\xbf",     /* overlong U+FFFF */
        "\xf4\x90\x80\x80",     /* U+110000 */
        "\xc2\xc0",             /* continuation above 0xBF */
        "\xe1\x80\x7f",         /* third byte not a continuation */
        "\xf1\x80\x80\xc0",     /* fourth byte not a continuation */
        "\xf8\x88\x80\x80\x80", /* five-byte form */
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        if (!valid(good[i]))
            fail_msg("refused good sample %zu", i);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (valid(bad[i]))
            fail_msg("accepted bad sample %zu", i);
    }
}

static void utf8_valid__nul_byte__valid_code_point(void **state)
{
    (void)state;
    /* U+0000 is valid UTF-8; callers that cannot carry it check for it. */
    assert_true(utf8_valid("a\0b", 3));
}

static void utf8_valid__length_bounds_the_scan(void **state)
{
    (void)state;
    /* A sequence cut by len is refused even though its bytes follow in
     * memory; on the heap with exactly len bytes, ASan sees any over-read. */
    char *cut = malloc(3);
    assert_non_null(cut);
    memcpy(cut, "a\xe2\x82", 3);
    assert_false(utf8_valid(cut, 3));
    assert_true(utf8_valid(cut, 1));
    free(cut);
    assert_false(utf8_valid("\xe2\x82\xac", 2));
    assert_true(utf8_valid("\xe2\x82\xac", 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(utf8_valid__well_formed__accepted),
        cmocka_unit_test(utf8_valid__ill_formed__refused),
        cmocka_unit_test(utf8_sequence_length__each_width__length),
        cmocka_unit_test(utf8_valid__range_boundaries__exact),
        cmocka_unit_test(utf8_valid__nul_byte__valid_code_point),
        cmocka_unit_test(utf8_valid__length_bounds_the_scan),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
