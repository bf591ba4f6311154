/*
 * Latency histogram for the benchmark client: microsecond buckets up to
 * 100 ms, then 100 us buckets up to 10 s, one overflow bucket. Fixed size
 * (about 800 KB), no allocation after latency_new, exact below 100 ms.
 *
 * The producer (bench/producer.c) stamps each payload with "t": the
 * CLOCK_REALTIME microseconds of the insert; latency_stamp finds it.
 */
#ifndef PIPER_LATENCY_H
#define PIPER_LATENCY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct latency;

struct latency *latency_new(void);
void latency_free(struct latency *h);

/* Negative values (clock skew) count as 0. */
void latency_record(struct latency *h, int64_t us);

uint64_t latency_count(const struct latency *h);
int64_t latency_max(const struct latency *h);

/* The smallest recorded value v such that at least q (0..1) of the values
 * are <= v, to the bucket's resolution; -1 when nothing was recorded. */
int64_t latency_quantile(const struct latency *h, double q);

/* Writes one line "<value_us> <count>" per non-empty bucket, in increasing
 * order, the value being what latency_quantile reports for that bucket.
 * Adding up the counts of several such files gives the histogram of all
 * their values together. False on a write error. */
bool latency_write(const struct latency *h, FILE *f);

/* The integer after the first "t": key of a JSON object's text (compact or
 * not). False when there is none. */
bool latency_stamp(const char *data, size_t len, int64_t *t_us);

#endif
