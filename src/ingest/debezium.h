/*
 * Debezium change events for the events table, as Debezium Server's NATS
 * JetStream sink publishes them (JSON converter), turned into events.
 *
 * Accepted shapes: the envelope {"before", "after", "source", "op", "ts_ms"}
 * alone or wrapped as {"schema": ..., "payload": <envelope>}. Fields are
 * looked up by name. Columns arrive as Debezium encodes them: id an
 * integer, timestamp an ISO-8601 string (ZonedTimestamp), payload a JSON
 * string holding the jsonb value (io.debezium.data.Json).
 *
 * op c (insert) and r (snapshot read) make events; u makes one only when
 * asked (forward_updates); d, t and tombstones (empty or null messages) make
 * none. Anything else is invalid, with a short reason. Pure and
 * thread-safe: the NATS worker thread parses, the loop thread publishes.
 */
#ifndef PIPER_DEBEZIUM_H
#define PIPER_DEBEZIUM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum debezium_outcome {
    DEBEZIUM_EVENT,   /* ev is filled: release with debezium_event_clear() */
    DEBEZIUM_IGNORED, /* valid, but no event (update, delete, truncate, tombstone) */
    DEBEZIUM_INVALID, /* *why says what is wrong */
};

struct debezium_event {
    int64_t id;
    char op;
    char *type; /* owned, NUL-terminated */
    size_t type_len;
    char *subscriber; /* owned */
    size_t subscriber_len;
    char *payload; /* owned: JSON text of an object (frame.c compacts it) */
    size_t payload_len;
    double timestamp; /* Unix seconds; 0 when absent */
};

/* On anything but DEBEZIUM_EVENT, ev holds nothing to release. */
enum debezium_outcome debezium_parse(const char *text, size_t len, bool forward_updates,
                                     struct debezium_event *ev, const char **why);

/* Safe on a zeroed or already cleared event. */
void debezium_event_clear(struct debezium_event *ev);

/* "2026-11-24T10:15:30.123456Z", or with an offset (+01:00, -0530); the
 * fraction is optional. False when malformed or out of range. */
bool debezium_parse_timestamp(const char *s, size_t len, double *unix_seconds);

#endif
