/*
 * UTF-8 validation (RFC 3629: no overlong forms, no surrogates, nothing above
 * U+10FFFF). Text that reaches PostgreSQL as a query parameter or a client as
 * SSE data must be valid UTF-8, so outside input is checked here first.
 */
#ifndef PIPER_UTF8_H
#define PIPER_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* Length of the valid sequence starting at p (1 to 4), or 0 if invalid or
 * truncated before end. p must be before end. */
size_t utf8_sequence_length(const unsigned char *p, const unsigned char *end);

bool utf8_valid(const char *text, size_t len);

#endif
