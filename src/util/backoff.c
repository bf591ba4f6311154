#include "util/backoff.h"

void backoff_init(struct backoff *b, int min_ms, int max_ms, uint64_t seed)
{
    b->min_ms = min_ms;
    b->max_ms = max_ms;
    b->attempt = 0;
    b->rng = seed != 0 ? seed : UINT64_C(0x9E3779B97F4A7C15);
}

static uint64_t next_random(struct backoff *b)
{
    uint64_t x = b->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    b->rng = x;
    return x;
}

int backoff_next_ms(struct backoff *b)
{
    long long d = b->min_ms;
    for (unsigned i = 0; i < b->attempt && d < b->max_ms; i++)
        d *= 2;
    if (d > b->max_ms)
        d = b->max_ms;
    if (b->attempt < 64)
        b->attempt++;
    long long half = d / 2;
    long long span = d - half + 1;
    return (int)(half + (long long)(next_random(b) % (uint64_t)span));
}

void backoff_next_tv(struct backoff *b, struct timeval *tv)
{
    int ms = backoff_next_ms(b);
    tv->tv_sec = ms / 1000;
    tv->tv_usec = (ms % 1000) * 1000;
}

void backoff_reset(struct backoff *b)
{
    b->attempt = 0;
}
