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

/* A consumer id is 1..max_bytes bytes of UTF-8 without control characters
 * (it is matched against the subscriber column and logged). On failure
 * *why is a short static reason. */
bool request_consumer_id_valid(const char *id, size_t max_bytes, const char **why);

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
