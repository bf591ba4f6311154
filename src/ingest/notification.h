/*
 * The payload of a new_events notification: a hint, never an event.
 *
 * The trigger in postgresql/schema.sql sends {"id": 7, "subscriber": "toto"}
 * for every inserted row ({"id": 7} when even the subscriber would not fit
 * PostgreSQL's 8000-byte limit). Any role can send anything on the channel,
 * so the service only takes the id (and the subscriber, to skip rows nobody
 * here wants) and reads the row itself from the table (confirm.h). Older
 * triggers sent the whole row; its other members are ignored, as are
 * unknown ones, so the trigger can grow. Parsing is strict about the members
 * it knows: id is a positive integer, subscriber a string.
 */
#ifndef PIPER_NOTIFICATION_H
#define PIPER_NOTIFICATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct notification {
    int64_t id;
    char *subscriber; /* NULL when absent; owned */
    size_t subscriber_len;
};

/* Parses text into n. On success n must later be released with
 * notification_clear(). On failure returns false with *why set to a short
 * static reason, and n holds nothing to release. */
bool notification_parse(const char *text, size_t len, struct notification *n, const char **why)
    __attribute__((warn_unused_result));

void notification_clear(struct notification *n);

/* Parses a JSON integer token in 1..INT64_MAX. */
bool notification_parse_id(const char *token, size_t len, int64_t *id);

#endif
