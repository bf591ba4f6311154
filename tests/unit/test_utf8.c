/* UTF-8 validation per RFC 3629. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "utf8.h"

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
        "a\xc3(",           /* bad continuation */
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(utf8_valid__well_formed__accepted),
        cmocka_unit_test(utf8_valid__ill_formed__refused),
        cmocka_unit_test(utf8_sequence_length__each_width__length),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
