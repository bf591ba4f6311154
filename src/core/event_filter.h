/*
 * Event filter: the event types a stream, a history page or a latest
 * request asks for (the repeated `type` query parameter). An empty filter
 * takes every type.
 *
 * A filtered stream's cursor keeps its meaning: events of other types move
 * the cursor without being written (hub.c), so a client resuming with the
 * last id it saw gets exactly the remaining events of its types.
 */
#ifndef PIPER_EVENT_FILTER_H
#define PIPER_EVENT_FILTER_H

#include <stdbool.h>
#include <stddef.h>

#include "core/frame.h"

#define EVENT_FILTER_MAX_TYPES 16

struct event_filter {
    size_t count;
    char *types[EVENT_FILTER_MAX_TYPES]; /* owned */
};

enum event_filter_result {
    EVENT_FILTER_ADDED,
    EVENT_FILTER_INVALID,
    EVENT_FILTER_TOO_MANY,
    EVENT_FILTER_NO_MEMORY
};

/* Adds a type (copied). Refused: an empty type, one with CR, LF or NUL (it
 * could not be an event's type), or more than EVENT_FILTER_MAX_TYPES. A
 * type given twice is kept once. */
enum event_filter_result event_filter_add(struct event_filter *f, const char *type);

/* A copy of src into dst (empty on failure, returns false). */
bool event_filter_copy(struct event_filter *dst, const struct event_filter *src)
    __attribute__((warn_unused_result));
void event_filter_free(struct event_filter *f);

bool event_filter_empty(const struct event_filter *f);
bool event_filter_match_type(const struct event_filter *f, const char *type, size_t len);
bool event_filter_match(const struct event_filter *f, const struct frame *frame);

/* The types as a PostgreSQL text[] literal ({"a","b\"c"}) in a new string
 * for a query parameter; NULL for an empty filter (every type) or when out
 * of memory (*failed then set). */
char *event_filter_sql_array(const struct event_filter *f, bool *failed);

#endif
