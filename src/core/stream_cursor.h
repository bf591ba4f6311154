/*
 * Stream cursor: which consumers a stream follows, and the text that tells
 * a client where it stands in each of them.
 *
 * Ids are in commit order per subscriber only (schema.sql's per-subscriber
 * lock): b's row 1042 can reach a stream before a's row 1040. A stream that
 * follows a and b and has sent 1042 then 1040 cannot be resumed from one
 * number: "after 1040" repeats 1042, "after 1042" loses 1040. So a stream of
 * several consumers keeps one position per consumer, and its cursor (the
 * SSE id, the WebSocket "id", a history page's next_after) carries them all:
 *
 *     <base>~<d1>.<d2>. ... .<dk>~<tag>
 *
 * over the consumers sorted by bytes, c1 < c2 < ... < ck. The position of ci
 * is base - di (di may be negative); an empty di says ci has no position
 * yet (it resumes live, as a stream without Last-Event-ID does). tag is
 * FNV-1a (32 bits, 8 lower-case hex digits) of the sorted ids, each
 * followed by '\n', so a cursor is never applied to another set of
 * consumers. A stream's events use the row's own id as base: the text
 * before the first '~' is the row id, and that consumer's di is 0.
 *
 * A stream of one consumer keeps plain decimal ids. A plain decimal cursor
 * given to several consumers is that position for each of them.
 *
 * Pure; the sets own their strings.
 */
#ifndef PIPER_STREAM_CURSOR_H
#define PIPER_STREAM_CURSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* "No position yet" in a position array. */
#define STREAM_CURSOR_NONE INT64_MIN

/* The most consumers a set can ever hold, whatever MAX_CONSUMERS_PER_STREAM
 * says; bounds the cursor's length. */
#define CONSUMER_SET_LIMIT 1000

struct consumer_set {
    char **ids; /* sorted by strcmp, distinct; owned */
    size_t count;
    size_t capacity;
    uint32_t tag; /* valid after consumer_set_seal() */
};

enum consumer_set_add {
    CONSUMER_SET_ADDED,
    CONSUMER_SET_DUPLICATE, /* already there: nothing changed */
    CONSUMER_SET_TOO_MANY,  /* more than max distinct ids */
    CONSUMER_SET_NO_MEMORY,
};

/* A zeroed struct is an empty set. */
enum consumer_set_add consumer_set_add(struct consumer_set *s, const char *id, size_t len,
                                       size_t max);
/* Computes the tag; call once every id is in. */
void consumer_set_seal(struct consumer_set *s);
/* Index of id in the set, or -1. */
long consumer_set_find(const struct consumer_set *s, const char *id);
bool consumer_set_copy(struct consumer_set *dst, const struct consumer_set *src);
void consumer_set_free(struct consumer_set *s);

enum stream_cursor_kind {
    STREAM_CURSOR_ABSENT,    /* NULL, empty or blank: no cursor */
    STREAM_CURSOR_PLAIN,     /* one decimal position for every consumer */
    STREAM_CURSOR_COMPOSITE, /* a position per consumer */
    STREAM_CURSOR_INVALID,   /* malformed */
    STREAM_CURSOR_MISMATCH,  /* well formed, but made for another set */
};

/* Parses a cursor for set (sealed): fills positions[0..set->count) on
 * PLAIN and COMPOSITE. Spaces and tabs around the text are allowed.
 * Positions are 0..INT64_MAX or STREAM_CURSOR_NONE. */
enum stream_cursor_kind stream_cursor_parse(const char *text, const struct consumer_set *set,
                                            int64_t *positions);

/* Bytes stream_cursor_format() may write for count consumers, NUL included. */
size_t stream_cursor_max_len(size_t count);

/* Writes the cursor of positions (count entries, over a set with tag) with
 * base, NUL-terminated, into buf of at least stream_cursor_max_len(count)
 * bytes. Returns its length. */
size_t stream_cursor_format(char *buf, int64_t base, const int64_t *positions, size_t count,
                            uint32_t tag);

#endif
