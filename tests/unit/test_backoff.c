/* Back-off: doubling from min, capped at max, jittered within [d/2, d]. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/time.h>

#include <cmocka.h>

#include "util/backoff.h"

static void backoff_next_ms__attempts__within_doubling_window(void **state)
{
    (void)state;
    struct backoff b;
    backoff_init(&b, 100, 5000, 42);
    int ceiling = 100;
    for (int attempt = 0; attempt < 20; attempt++) {
        int d = backoff_next_ms(&b);
        if (d < ceiling / 2 || d > ceiling)
            fail_msg("attempt %d: %d ms outside [%d, %d]", attempt, d, ceiling / 2, ceiling);
        ceiling = ceiling * 2 > 5000 ? 5000 : ceiling * 2;
    }
}

static void backoff_reset__after_failures__back_to_min(void **state)
{
    (void)state;
    struct backoff b;
    backoff_init(&b, 100, 5000, 7);
    for (int i = 0; i < 10; i++)
        backoff_next_ms(&b);
    backoff_reset(&b);
    int d = backoff_next_ms(&b);
    assert_in_range(d, 50, 100);
}

static void backoff_next_ms__two_seeds__different_sequences(void **state)
{
    (void)state;
    struct backoff a, b;
    backoff_init(&a, 1000, 60000, 1);
    backoff_init(&b, 1000, 60000, 2);
    int same = 0;
    for (int i = 0; i < 16; i++)
        same += backoff_next_ms(&a) == backoff_next_ms(&b);
    assert_true(same < 16); /* jitter: instances do not reconnect in lock step */
}

static void backoff_next_tv__delay__split_into_seconds_and_micros(void **state)
{
    (void)state;
    struct backoff b;
    backoff_init(&b, 3000, 3000, 9);
    struct timeval tv;
    backoff_next_tv(&b, &tv);
    long ms = tv.tv_sec * 1000 + tv.tv_usec / 1000;
    assert_in_range(ms, 1500, 3000);
    assert_in_range(tv.tv_usec, 0, 999999);
}

static void backoff_next_ms__same_seed__same_sequence(void **state)
{
    (void)state;
    struct backoff a, b;
    backoff_init(&a, 100, 5000, 1234);
    backoff_init(&b, 100, 5000, 1234);
    for (int i = 0; i < 32; i++)
        assert_int_equal(backoff_next_ms(&a), backoff_next_ms(&b));
}

static void backoff_next_ms__at_cap__jitter_spans_lower_and_upper_half(void **state)
{
    (void)state;
    /* With min == max every delay is drawn from [500, 1000]; over many draws
     * both ends of the window are reached, so the jitter is not a constant. */
    struct backoff b;
    backoff_init(&b, 1000, 1000, 99);
    int lowest = 1000, highest = 500;
    for (int i = 0; i < 2000; i++) {
        int d = backoff_next_ms(&b);
        assert_in_range(d, 500, 1000);
        if (d < lowest)
            lowest = d;
        if (d > highest)
            highest = d;
    }
    assert_in_range(lowest, 500, 550);
    assert_in_range(highest, 950, 1000);
}

static void backoff_next_ms__zero_seed__still_jittered(void **state)
{
    (void)state;
    /* xorshift stays at 0 forever from a 0 state; init must replace it. */
    struct backoff b;
    backoff_init(&b, 1000, 1000, 0);
    int first = backoff_next_ms(&b);
    int differs = 0;
    for (int i = 0; i < 16; i++)
        differs += backoff_next_ms(&b) != first;
    assert_true(differs > 0);
}

static void backoff_next_ms__many_attempts__capped_without_overflow(void **state)
{
    (void)state;
    struct backoff b;
    backoff_init(&b, 1, 3600000, 5);
    for (int i = 0; i < 1000; i++) {
        int d = backoff_next_ms(&b);
        if (i >= 22) /* 2^22 > 3600000: at the cap from here on */
            assert_in_range(d, 1800000, 3600000);
        else
            assert_in_range(d, 0, 3600000);
    }
}

static void backoff_next_ms__min_of_one__zero_or_one(void **state)
{
    (void)state;
    /* [1/2, 1] in integer milliseconds is {0, 1}. */
    struct backoff b;
    backoff_init(&b, 1, 1, 3);
    for (int i = 0; i < 64; i++)
        assert_in_range(backoff_next_ms(&b), 0, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(backoff_next_ms__attempts__within_doubling_window),
        cmocka_unit_test(backoff_reset__after_failures__back_to_min),
        cmocka_unit_test(backoff_next_ms__two_seeds__different_sequences),
        cmocka_unit_test(backoff_next_tv__delay__split_into_seconds_and_micros),
        cmocka_unit_test(backoff_next_ms__same_seed__same_sequence),
        cmocka_unit_test(backoff_next_ms__at_cap__jitter_spans_lower_and_upper_half),
        cmocka_unit_test(backoff_next_ms__zero_seed__still_jittered),
        cmocka_unit_test(backoff_next_ms__many_attempts__capped_without_overflow),
        cmocka_unit_test(backoff_next_ms__min_of_one__zero_or_one),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
