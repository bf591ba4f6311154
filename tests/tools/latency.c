#include "latency.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define FINE_LIMIT_US 100000 /* 1 us buckets below this */
#define COARSE_STEP_US 100
#define COARSE_LIMIT_US 10000000 /* 100 us buckets below this */
#define FINE_BUCKETS FINE_LIMIT_US
#define COARSE_BUCKETS ((COARSE_LIMIT_US - FINE_LIMIT_US) / COARSE_STEP_US)
#define BUCKETS (FINE_BUCKETS + COARSE_BUCKETS + 1) /* + overflow */

struct latency {
    uint64_t count;
    int64_t max;
    uint32_t buckets[BUCKETS];
};

struct latency *latency_new(void)
{
    return calloc(1, sizeof(struct latency));
}

void latency_free(struct latency *h)
{
    free(h);
}

static size_t bucket_of(int64_t us)
{
    if (us < FINE_LIMIT_US)
        return (size_t)us;
    if (us < COARSE_LIMIT_US)
        return FINE_BUCKETS + (size_t)((us - FINE_LIMIT_US) / COARSE_STEP_US);
    return BUCKETS - 1;
}

/* The largest value a bucket holds (the overflow bucket reports the max). */
static int64_t bucket_top(const struct latency *h, size_t b)
{
    if (b < FINE_BUCKETS)
        return (int64_t)b;
    if (b < BUCKETS - 1)
        return FINE_LIMIT_US + (int64_t)(b - FINE_BUCKETS + 1) * COARSE_STEP_US - 1;
    return h->max;
}

void latency_record(struct latency *h, int64_t us)
{
    if (us < 0)
        us = 0;
    h->buckets[bucket_of(us)]++;
    h->count++;
    if (us > h->max)
        h->max = us;
}

uint64_t latency_count(const struct latency *h)
{
    return h->count;
}

int64_t latency_max(const struct latency *h)
{
    return h->count > 0 ? h->max : -1;
}

int64_t latency_quantile(const struct latency *h, double q)
{
    if (h->count == 0)
        return -1;
    uint64_t rank = (uint64_t)(q * (double)h->count + 0.5);
    if (rank < 1)
        rank = 1;
    if (rank > h->count)
        rank = h->count;
    uint64_t seen = 0;
    for (size_t b = 0; b < BUCKETS; b++) {
        seen += h->buckets[b];
        if (seen >= rank) {
            int64_t top = bucket_top(h, b);
            return top < h->max ? top : h->max;
        }
    }
    return h->max;
}

bool latency_write(const struct latency *h, FILE *f)
{
    for (size_t b = 0; b < BUCKETS; b++) {
        if (h->buckets[b] == 0)
            continue;
        int64_t top = bucket_top(h, b);
        if (fprintf(f, "%" PRId64 " %" PRIu32 "\n", top < h->max ? top : h->max, h->buckets[b]) < 0)
            return false;
    }
    return fflush(f) == 0;
}

bool latency_stamp(const char *data, size_t len, int64_t *t_us)
{
    static const char key[] = "\"t\"";
    const char *end = data + len;
    for (const char *p = data; p + sizeof(key) - 1 <= end; p++) {
        p = memchr(p, '"', (size_t)(end - p));
        if (p == NULL || (size_t)(end - p) < sizeof(key) - 1)
            return false;
        if (memcmp(p, key, sizeof(key) - 1) != 0)
            continue;
        const char *v = p + sizeof(key) - 1;
        while (v < end && (*v == ' ' || *v == ':'))
            v++;
        if (v == end || *v < '0' || *v > '9')
            return false;
        int64_t n = 0;
        while (v < end && *v >= '0' && *v <= '9' && n < INT64_MAX / 10)
            n = n * 10 + (*v++ - '0');
        *t_us = n;
        return true;
    }
    return false;
}
