/*
 * Exponential back-off with jitter for reconnection attempts.
 *
 * The n-th delay is drawn uniformly from [d/2, d] where d = min * 2^n capped
 * at max: doubling keeps a dead server from being hammered, the random half
 * keeps many instances from reconnecting in lock step after a shared outage.
 */
#ifndef PIPER_BACKOFF_H
#define PIPER_BACKOFF_H

#include <stdint.h>
#include <sys/time.h>

struct backoff {
    int min_ms;
    int max_ms;
    unsigned attempt;
    uint64_t rng; /* xorshift state; any non-zero seed */
};

void backoff_init(struct backoff *b, int min_ms, int max_ms, uint64_t seed);
/* The delay before the next attempt, in milliseconds. */
int backoff_next_ms(struct backoff *b);
void backoff_next_tv(struct backoff *b, struct timeval *tv);
/* Call after a success so the next failure starts from min again. */
void backoff_reset(struct backoff *b);

#endif
