/*
 * SSE formatting. Sizes are computed exactly first so a frame is allocated
 * once and written in place, with no intermediate buffers.
 */
#include "core/sse.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

bool sse_type_valid(const char *type, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (type[i] == '\r' || type[i] == '\n' || type[i] == '\0')
            return false;
    }
    return true;
}

/* Length of the data line starting at p (up to CR, LF or end) and of the
 * line break after it (0, 1 or 2 bytes). */
static size_t data_line(const char *p, const char *end, size_t *break_len)
{
    /* memchr is much faster than a byte loop, and compact JSON (the usual
     * data) has no line break at all. */
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *cr = memchr(p, '\r', (size_t)((nl != NULL ? nl : end) - p));
    const char *q = cr != NULL ? cr : (nl != NULL ? nl : end);
    *break_len = 0;
    if (q < end)
        *break_len = (*q == '\r' && q + 1 < end && q[1] == '\n') ? 2 : 1;
    return (size_t)(q - p);
}

/* Writes id in decimal (what "%" PRId64 prints, without printf's cost,
 * which shows in replay profiles). */
static char *put_decimal(char *out, int64_t id)
{
    char digits[24];
    size_t n = 0;
    uint64_t v = id < 0 ? (uint64_t)0 - (uint64_t)id : (uint64_t)id;
    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    if (id < 0)
        *out++ = '-';
    while (n > 0)
        *out++ = digits[--n];
    return out;
}

size_t sse_event_size(int64_t id, size_t type_len, const char *data, size_t data_len)
{
    static const size_t data_prefix = sizeof("data: ") - 1;
    char digits[24];
    size_t n = sizeof("id: \n") - 1 + (size_t)(put_decimal(digits, id) - digits);
    if (type_len > 0)
        n += sizeof("event: \n") - 1 + type_len;

    const char *p = data;
    const char *end = data + data_len;
    for (;;) {
        size_t brk = 0;
        size_t line = data_line(p, end, &brk);
        n += data_prefix + line + 1;
        p += line + brk;
        if (brk == 0)
            break;
    }
    return n + 1; /* the blank line that dispatches the event */
}

static char *put(char *out, const char *s, size_t n)
{
    memcpy(out, s, n);
    return out + n;
}

size_t sse_write_event(char *out, int64_t id, const char *type, size_t type_len, const char *data,
                       size_t data_len)
{
    char *o = out;

    o = put(o, "id: ", 4);
    o = put_decimal(o, id);
    *o++ = '\n';
    if (type_len > 0) {
        o = put(o, "event: ", 7);
        o = put(o, type, type_len);
        *o++ = '\n';
    }
    const char *p = data;
    const char *end = data + data_len;
    for (;;) {
        size_t brk = 0;
        size_t line = data_line(p, end, &brk);
        o = put(o, "data: ", 6);
        o = put(o, p, line);
        *o++ = '\n';
        p += line + brk;
        if (brk == 0)
            break;
    }
    *o++ = '\n';
    return (size_t)(o - out);
}

size_t sse_write_comment(char *out, size_t size, const char *text)
{
    int n = snprintf(out, size, ": %s\n\n", text);
    if (n < 0 || (size_t)n >= size)
        return 0;
    return (size_t)n;
}

size_t sse_write_retry(char *out, size_t size, long long ms)
{
    int n = snprintf(out, size, "retry: %lld\n\n", ms);
    if (n < 0 || (size_t)n >= size)
        return 0;
    return (size_t)n;
}
