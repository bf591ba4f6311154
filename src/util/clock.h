/*
 * clock: the two clocks the service reads.
 *
 * Wall time (Unix seconds) is for what is compared with the outside world:
 * a row's timestamp, a token's exp, log lines. The monotonic clock is for
 * every duration and deadline inside the process, which must not jump when
 * the wall clock is set.
 */
#ifndef PIPER_CLOCK_H
#define PIPER_CLOCK_H

#include <stdint.h>

double clock_wall_seconds(void);
int64_t clock_monotonic_ns(void);
/* Monotonic milliseconds, never 0, so 0 can mean "not set". */
int64_t clock_monotonic_ms(void);

#endif
