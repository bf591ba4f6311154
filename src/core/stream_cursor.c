/*
 * Consumer sets are sorted arrays: a set is built once per request (at most
 * CONSUMER_SET_LIMIT ids, binary-searched), and its order is the order of a
 * cursor's entries.
 */
#include "core/stream_cursor.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/number.h"

#define TAG_DIGITS 8

/* Position where id is, or would be inserted; *found says which. */
static size_t set_search(const struct consumer_set *s, const char *id, bool *found)
{
    size_t lo = 0, hi = s->count;
    *found = false;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int cmp = strcmp(s->ids[mid], id);
        if (cmp == 0) {
            *found = true;
            return mid;
        }
        if (cmp < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

enum consumer_set_add consumer_set_add(struct consumer_set *s, const char *id, size_t len,
                                       size_t max)
{
    char *copy = malloc(len + 1);
    if (copy == NULL)
        return CONSUMER_SET_NO_MEMORY;
    memcpy(copy, id, len);
    copy[len] = '\0';
    bool found;
    size_t at = set_search(s, copy, &found);
    if (found) {
        free(copy);
        return CONSUMER_SET_DUPLICATE;
    }
    if (s->count >= max || s->count >= CONSUMER_SET_LIMIT) {
        free(copy);
        return CONSUMER_SET_TOO_MANY;
    }
    if (s->count == s->capacity) {
        size_t capacity = s->capacity == 0 ? 4 : s->capacity * 2;
        char **bigger = realloc(s->ids, capacity * sizeof(*bigger));
        if (bigger == NULL) {
            free(copy);
            return CONSUMER_SET_NO_MEMORY;
        }
        s->ids = bigger;
        s->capacity = capacity;
    }
    memmove(s->ids + at + 1, s->ids + at, (s->count - at) * sizeof(*s->ids));
    s->ids[at] = copy;
    s->count++;
    return CONSUMER_SET_ADDED;
}

void consumer_set_seal(struct consumer_set *s)
{
    uint32_t h = 0x811c9dc5u;
    for (size_t i = 0; i < s->count; i++) {
        for (const unsigned char *p = (const unsigned char *)s->ids[i]; *p != '\0'; p++)
            h = (h ^ *p) * 0x01000193u;
        h = (h ^ '\n') * 0x01000193u;
    }
    s->tag = h;
}

long consumer_set_find(const struct consumer_set *s, const char *id)
{
    bool found;
    size_t at = set_search(s, id, &found);
    return found ? (long)at : -1;
}

bool consumer_set_copy(struct consumer_set *dst, const struct consumer_set *src)
{
    *dst = (struct consumer_set){0};
    if (src->count == 0)
        return true;
    dst->ids = calloc(src->count, sizeof(*dst->ids));
    if (dst->ids == NULL)
        return false;
    dst->capacity = src->count;
    for (size_t i = 0; i < src->count; i++) {
        if ((dst->ids[i] = strdup(src->ids[i])) == NULL) {
            consumer_set_free(dst);
            return false;
        }
        dst->count++;
    }
    dst->tag = src->tag;
    return true;
}

void consumer_set_free(struct consumer_set *s)
{
    for (size_t i = 0; i < s->count; i++)
        free(s->ids[i]);
    free(s->ids);
    *s = (struct consumer_set){0};
}

static size_t digits_len(const char *p, const char *end)
{
    size_t n = 0;
    while (p + n < end && p[n] >= '0' && p[n] <= '9')
        n++;
    return n;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* One entry, "" or [-]digits, ending at stop; fills *position from base. */
static bool parse_entry(const char *p, const char *stop, int64_t base, int64_t *position)
{
    if (p == stop) {
        *position = STREAM_CURSOR_NONE;
        return true;
    }
    bool negative = *p == '-';
    if (negative)
        p++;
    int64_t delta = 0;
    size_t n = digits_len(p, stop);
    if (n == 0 || p + n != stop || !parse_int64(p, n, 0, INT64_MAX, &delta))
        return false;
    /* base - delta (or base + delta) must be a position, 0..INT64_MAX. */
    if (negative) {
        if (delta > INT64_MAX - base)
            return false;
        *position = base + delta;
    } else {
        if (delta > base)
            return false;
        *position = base - delta;
    }
    return true;
}

static enum stream_cursor_kind parse_composite(const char *p, const char *end,
                                               const struct consumer_set *set, int64_t *positions)
{
    int64_t base = 0;
    size_t n = digits_len(p, end);
    if (n == 0 || p + n == end || p[n] != '~' || !parse_int64(p, n, 0, INT64_MAX, &base))
        return STREAM_CURSOR_INVALID;
    p += n + 1;
    /* The tag is the last TAG_DIGITS characters, after the second '~'. */
    if (end - p < TAG_DIGITS + 1 || end[-TAG_DIGITS - 1] != '~')
        return STREAM_CURSOR_INVALID;
    const char *entries_end = end - TAG_DIGITS - 1;
    uint32_t tag = 0;
    for (const char *t = entries_end + 1; t < end; t++) {
        int v = hex_value(*t);
        if (v < 0)
            return STREAM_CURSOR_INVALID;
        tag = tag << 4 | (uint32_t)v;
    }
    size_t count = 0;
    bool mismatch = tag != set->tag;
    for (const char *entry = p;; count++) {
        const char *stop = memchr(entry, '.', (size_t)(entries_end - entry));
        if (stop == NULL)
            stop = entries_end;
        int64_t position = 0;
        if (!parse_entry(entry, stop, base, &position))
            return STREAM_CURSOR_INVALID;
        if (count < set->count)
            positions[count] = position;
        if (stop == entries_end)
            break;
        entry = stop + 1;
    }
    return mismatch || count + 1 != set->count ? STREAM_CURSOR_MISMATCH : STREAM_CURSOR_COMPOSITE;
}

enum stream_cursor_kind stream_cursor_parse(const char *text, const struct consumer_set *set,
                                            int64_t *positions)
{
    if (text == NULL)
        return STREAM_CURSOR_ABSENT;
    while (*text == ' ' || *text == '\t')
        text++;
    const char *end = text + strlen(text);
    while (end > text && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    if (text == end)
        return STREAM_CURSOR_ABSENT;
    if (digits_len(text, end) == (size_t)(end - text)) {
        int64_t position = 0;
        if (!parse_int64(text, (size_t)(end - text), 0, INT64_MAX, &position))
            return STREAM_CURSOR_INVALID;
        for (size_t i = 0; i < set->count; i++)
            positions[i] = position;
        return STREAM_CURSOR_PLAIN;
    }
    return parse_composite(text, end, set, positions);
}

size_t stream_cursor_max_len(size_t count)
{
    /* base, two '~', an entry (sign and 19 digits) and a '.' per
     * consumer, the tag, NUL. */
    return 20 + 2 + count * 21 + TAG_DIGITS + 1;
}

size_t stream_cursor_format(char *buf, int64_t base, const int64_t *positions, size_t count,
                            uint32_t tag)
{
    char *o = buf;
    o += sprintf(o, "%" PRId64 "~", base);
    for (size_t i = 0; i < count; i++) {
        if (i > 0)
            *o++ = '.';
        if (positions[i] != STREAM_CURSOR_NONE)
            o += sprintf(o, "%" PRId64, base - positions[i]);
    }
    o += sprintf(o, "~%08" PRIx32, tag);
    return (size_t)(o - buf);
}
