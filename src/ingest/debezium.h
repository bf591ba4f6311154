/*
 * What a message from Debezium Server's NATS JetStream sink (JSON converter)
 * means for the events table: a hint, a heartbeat, or nothing.
 *
 * A change event is only a hint (confirm.h): the service reads the row back
 * from the table, so all it takes from a message is the op, the id of the
 * `after` row and its subscriber. The row's type, timestamp and payload are
 * never looked at: the table has them, exactly. (Debezium sends a jsonb
 * payload as a string, which may hold a 401-digit number, and a timestamp
 * that may be "infinity": neither can make a message invalid.)
 *
 * Accepted, plain or wrapped as {"schema": ..., "payload": <value>}:
 *   - change events, envelope version 2: {"before", "after", "source",
 *     "transaction", "op", "ts_ms", "ts_us", "ts_ns"}; members other than
 *     op, after and source.table are not read. op c (insert) and r
 *     (snapshot read) give a hint; u, d and t give none, nor do change
 *     events of a table other than "events" (source.table), which a
 *     wildcard subject can bring;
 *   - tombstones: an empty message, null, or a wrapper with a null payload;
 *   - heartbeats, {"ts_ms": n} (no op, no status), on
 *     __debezium-heartbeat.<prefix>;
 *   - transaction metadata, {"status": "BEGIN"|"END", "id": "...", ...},
 *     on <prefix>.transaction.
 * The subject decides what a message must be: on a heartbeat subject only
 * a heartbeat is valid; on a subject whose last token is "transaction",
 * transaction metadata or a change event (a table may be named so); on any
 * other subject only a change event or a tombstone.
 *
 * The whole message must be valid JSON (RFC 8259, util/json_text.h); the
 * scanner walks members without building a tree, so numbers of any size are
 * fine anywhere. The id must be a JSON integer in 1..INT64_MAX, parsed
 * exactly. Members read twice (a duplicate key) make a message invalid.
 *
 * Pure and thread-safe: the NATS worker thread parses, the loop thread
 * hands the hint on.
 */
#ifndef PIPER_DEBEZIUM_H
#define PIPER_DEBEZIUM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum debezium_outcome {
    DEBEZIUM_HINT,        /* op c or r: hint is filled, release it with debezium_hint_clear() */
    DEBEZIUM_IGNORED,     /* a valid change event naming no new row: u, d, t, a tombstone, or
                           * another table (hint->op says which op, 0 for a tombstone) */
    DEBEZIUM_HEARTBEAT,   /* Debezium is alive */
    DEBEZIUM_TRANSACTION, /* transaction metadata: nothing to do */
    DEBEZIUM_INVALID,     /* *why says what is wrong */
};

struct debezium_hint {
    char op;          /* 'c', 'r', 'u', 'd' or 't'; 0 when not a change event */
    int64_t id;       /* the after row's id, 1..INT64_MAX (hints only) */
    char *subscriber; /* owned, NUL-terminated, may be empty (hints only) */
    size_t subscriber_len;
};

/* Parses the message text[0..len) published on subject (NULL: the table's
 * subject). On anything but DEBEZIUM_HINT, hint holds nothing to release;
 * on DEBEZIUM_INVALID, *why is a short static reason, else NULL. */
enum debezium_outcome debezium_parse(const char *subject, const char *text, size_t len,
                                     struct debezium_hint *hint, const char **why);

/* Safe on a zeroed or already cleared hint. */
void debezium_hint_clear(struct debezium_hint *hint);

/* The subject Debezium sends the heartbeats of the connector that publishes
 * on nats_subject to: __debezium-heartbeat.<prefix>, where prefix is what
 * nats_subject leaves of <prefix>.<schema>.<table> (piper.public.events,
 * piper.*.*) or the tokens before a final ">" (piper.>). Writes it to out
 * (NUL-terminated) and returns true; false when no prefix can be told (a
 * wildcard in it, fewer tokens, or no room). */
bool debezium_heartbeat_subject(const char *nats_subject, char *out, size_t size);

#endif
