/*
 * The payload of a new_events notification, as written by the trigger in
 * postgresql/schema.sql. Three shapes, chosen by the trigger so a NOTIFY
 * never exceeds PostgreSQL's 8000-byte limit:
 *
 *   {"id": 7, "subscriber": "toto", "type": "insert", "ts": 1764000000.25,
 *    "payload": {...}}                         the whole row: deliver as is
 *   {"id": 7, "subscriber": "toto"}           too large: fetch row 7 if a
 *                                              local stream wants "toto"
 *   {"id": 7}                                 even the subscriber is too
 *                                              large: fetch row 7
 *
 * Unknown members are ignored so the trigger can grow. Parsing is strict
 * about the members it knows: id is a positive integer, strings are strings.
 */
#ifndef PIPER_NOTIFICATION_H
#define PIPER_NOTIFICATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct notification {
    int64_t id;
    bool complete;    /* type and payload present: no fetch needed */
    char *subscriber; /* NULL when absent; points into strings */
    size_t subscriber_len;
    char *type; /* NULL unless complete; points into strings */
    size_t type_len;
    const char *payload; /* raw JSON span inside the parsed text */
    size_t payload_len;
    double timestamp; /* 0 when absent */
    char *strings;    /* owns the decoded strings */
};

/* Parses text into n. On success n must later be released with
 * notification_clear(); payload points into text, so text must outlive n.
 * On failure returns false with *why set to a short static reason, and n
 * holds nothing to release. */
bool notification_parse(const char *text, size_t len, struct notification *n, const char **why)
    __attribute__((warn_unused_result));

void notification_clear(struct notification *n);

/* Parses a JSON integer token in 1..INT64_MAX. */
bool notification_parse_id(const char *token, size_t len, int64_t *id);

#endif
