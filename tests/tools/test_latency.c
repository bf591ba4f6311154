/* cmocka tests for the benchmark client's latency histogram and stamp parser. */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
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
    latency_record(h, -5);       /* clock skew: counted as 0 */
    latency_record(h, 150050);   /* 100 us bucket 150000..150099 */
    latency_record(h, 20000000); /* beyond 10 s */
    assert_int_equal(latency_quantile(h, 0.0), 0);
    assert_int_equal(latency_quantile(h, 0.6), 150099);
    assert_int_equal(latency_quantile(h, 1.0), 20000000);
    latency_free(h);
}

/* Two histograms written and their lines added up give the quantiles of
 * all values together, whatever the split. */
static void test_write_merges(void **state)
{
    (void)state;
    struct latency *a = latency_new(), *b = latency_new(), *all = latency_new();
    for (int64_t v = 0; v < 3000; v++) {
        int64_t us = v * v % 150007; /* both fine and coarse buckets */
        latency_record(v % 3 == 0 ? a : b, us);
        latency_record(all, us);
    }
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    assert_non_null(f);
    assert_true(latency_write(a, f));
    assert_true(latency_write(b, f));
    fclose(f);

    struct latency *merged = latency_new();
    int64_t value;
    unsigned count;
    int used;
    for (const char *p = text; sscanf(p, "%" SCNd64 " %u\n%n", &value, &count, &used) == 2;
         p += used)
        for (unsigned i = 0; i < count; i++)
            latency_record(merged, value);
    const double qs[] = {0.0, 0.5, 0.9, 0.99, 0.999, 1.0};
    for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++)
        assert_int_equal(latency_quantile(merged, qs[i]), latency_quantile(all, qs[i]));
    assert_int_equal(latency_count(merged), 3000);
    free(text);
    latency_free(a);
    latency_free(b);
    latency_free(all);
    latency_free(merged);
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
        cmocka_unit_test(test_write_merges),
        cmocka_unit_test(test_stamp),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
