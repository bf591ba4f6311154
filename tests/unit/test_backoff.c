/* Back-off: doubling from min, capped at max, jittered within [d/2, d]. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/time.h>

#include <cmocka.h>

#include "backoff.h"

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(backoff_next_ms__attempts__within_doubling_window),
        cmocka_unit_test(backoff_reset__after_failures__back_to_min),
        cmocka_unit_test(backoff_next_ms__two_seeds__different_sequences),
        cmocka_unit_test(backoff_next_tv__delay__split_into_seconds_and_micros),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
