/* cmocka tests for the benchmark client's latency histogram and stamp parser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "latency.h"

static void test_empty(void **state)
{
    (void)state;
    struct latency *h = latency_new();
    assert_int_equal(latency_count(h), 0);
    assert_int_equal(latency_quantile(h, 0.5), -1);
    assert_int_equal(latency_max(h), -1);
    latency_free(h);
}

static void test_exact_below_100ms(void **state)
{
    (void)state;
    struct latency *h = latency_new();
    for (int64_t v = 1; v <= 1000; v++)
        latency_record(h, v);
    assert_int_equal(latency_quantile(h, 0.5), 500);
    assert_int_equal(latency_quantile(h, 0.99), 990);
    assert_int_equal(latency_quantile(h, 1.0), 1000);
    assert_int_equal(latency_max(h), 1000);
    latency_free(h);
}

static void test_coarse_and_overflow(void **state)
{
    (void)state;
    struct latency *h = latency_new();
    latency_record(h, -5);          /* clock skew: counted as 0 */
    latency_record(h, 150050);      /* 100 us bucket 150000..150099 */
    latency_record(h, 20000000);    /* beyond 10 s */
    assert_int_equal(latency_quantile(h, 0.0), 0);
    assert_int_equal(latency_quantile(h, 0.6), 150099);
    assert_int_equal(latency_quantile(h, 1.0), 20000000);
    latency_free(h);
}

static void test_stamp(void **state)
{
    (void)state;
    int64_t t = 0;
    const char *compact = "{\"pad\":\"\\\"t\\\"\",\"t\":1795572034117123}";
    assert_true(latency_stamp(compact, strlen(compact), &t));
    assert_int_equal(t, 1795572034117123);
    const char *spaced = "{\"n\": 1, \"t\": 42}";
    assert_true(latency_stamp(spaced, strlen(spaced), &t));
    assert_int_equal(t, 42);
    assert_false(latency_stamp("{\"n\":1}", 7, &t));
    assert_false(latency_stamp("{\"t\":\"x\"}", 9, &t));
    assert_false(latency_stamp("{\"t", 3, &t));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_exact_below_100ms),
        cmocka_unit_test(test_coarse_and_overflow),
        cmocka_unit_test(test_stamp),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
