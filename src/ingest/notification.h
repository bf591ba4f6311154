/*
 * The payload of a new_events notification.
 *
 * Any role can send anything on the channel, so a notification is either a
 * signed row or a hint. The trigger in postgresql/schema.sql sends
 *
 *     <HMAC-SHA256 of the JSON, 64 lower-case hex digits> <space>
 *     {"id": 7, "subscriber": "toto", "type": "t", "ts": 1.5, "payload": {...}}
 *
 * signed with a key only the table's owner and the service can read, or,
 * for rows too large for PostgreSQL's 8000-byte limit, the hint
 * {"id": 7, "subscriber": "toto"} ({"id": 7} when even that would not
 * fit). The listener delivers a row whose MAC it verified and reads the row
 * back from the table (confirm.h) for anything else, taking only the id and
 * the subscriber (to skip rows nobody here wants). Unknown members are
 * ignored, so the trigger can grow; parsing is strict about the members it
 * knows: id a positive integer, subscriber and type strings, ts a number,
 * payload any JSON value (the frame checks it is an object).
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
    /* The row's other columns, when the notification carries them (only
     * ever trusted after the signature is checked). */
    bool has_row; /* type and payload were both present */
    char *type;   /* owned */
    size_t type_len;
    double ts;           /* 0 when absent */
    const char *payload; /* raw JSON span inside the parsed text */
    size_t payload_len;
};

#define NOTIFICATION_MAC_HEX 64

/* Splits a signed notification, "<64 lower-case hex digits> <body>", into
 * the MAC (decoded into mac[32]) and the body. False when text does not
 * have that shape (a hint, or anything else). Pure; checks nothing else. */
bool notification_split_signed(const char *text, size_t len, unsigned char mac[32],
                               const char **body, size_t *body_len);

/* Parses text into n. On success n must later be released with
 * notification_clear(). On failure returns false with *why set to a short
 * static reason, and n holds nothing to release. */
bool notification_parse(const char *text, size_t len, struct notification *n, const char **why)
    __attribute__((warn_unused_result));

void notification_clear(struct notification *n);

/* Parses a JSON integer token in 1..INT64_MAX. */
bool notification_parse_id(const char *token, size_t len, int64_t *id);

#endif
