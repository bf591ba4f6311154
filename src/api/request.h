/*
 * Validation of the values a client sends to open a stream. Pure functions:
 * the HTTP layer looks the values up (header first, then query parameter)
 * and turns a failure into a 400 with the reason given here.
 */
#ifndef PIPER_REQUEST_H
#define PIPER_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/stream_cursor.h"

/* A consumer id is 1..max_bytes bytes of UTF-8 without control characters
 * (it is matched against the subscriber column and logged). On failure
 * *why is a short static reason. */
bool request_consumer_id_valid(const char *id, size_t max_bytes, const char **why);

enum request_consumers {
    REQUEST_CONSUMERS_OK,
    REQUEST_CONSUMERS_INVALID,  /* *why says which rule an id broke */
    REQUEST_CONSUMERS_TOO_MANY, /* more than max_count distinct ids */
    REQUEST_CONSUMERS_NO_MEMORY,
};

/* Adds the consumer ids of one value to set: a query parameter's value is
 * one id; a header's (list) is a comma-separated list, spaces and tabs
 * around each id ignored, so there an id cannot contain a comma. Each id
 * must pass request_consumer_id_valid(); repeats collapse. */
enum request_consumers request_add_consumers(struct consumer_set *set, const char *value, bool list,
                                             size_t max_bytes, size_t max_count, const char **why);

enum last_event_id {
    LAST_EVENT_ID_ABSENT,  /* no value, or an empty one (what a browser sends
                              when it has seen no id) */
    LAST_EVENT_ID_PRESENT, /* *out holds it */
    LAST_EVENT_ID_INVALID,
};

/* Parses a Last-Event-ID value: decimal digits for 0..INT64_MAX, spaces and
 * tabs around them allowed. NULL means absent. */
enum last_event_id request_parse_last_event_id(const char *value, int64_t *out);

#endif
