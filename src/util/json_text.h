/*
 * JSON text scanning without building a tree.
 *
 * Events carry their payload as JSON text produced by PostgreSQL (jsonb
 * output, or a Debezium string holding it). The service must re-encode it
 * compactly without changing a single value: numbers keep their exact digits
 * (jsonb numerics are arbitrary precision; a double round trip would turn 0.1
 * into 0.10000000000000001), strings keep their escapes, and key order is
 * kept. These functions validate strictly (RFC 8259, UTF-8, nesting depth
 * limit) and only drop insignificant whitespace.
 *
 * All functions are pure and never read outside [text, text + len).
 */
#ifndef PIPER_JSON_TEXT_H
#define PIPER_JSON_TEXT_H

#include <stdbool.h>
#include <stddef.h>

enum json_kind {
    JSON_KIND_INVALID,
    JSON_KIND_OBJECT,
    JSON_KIND_ARRAY,
    JSON_KIND_STRING,
    JSON_KIND_NUMBER,
    JSON_KIND_TRUE,
    JSON_KIND_FALSE,
    JSON_KIND_NULL,
};

/* Writes s as the inside of a JSON string (quotes, backslashes and
 * control bytes escaped; other bytes as they are, so s should be UTF-8)
 * into out, which needs room for 6 * len bytes. Returns the length. */
size_t json_escape(char *out, const char *s, size_t len);

/* Deepest nesting of arrays and objects accepted. */
#define JSON_MAX_DEPTH 512

/* Validates that text holds exactly one JSON value (whitespace around it is
 * allowed) and writes its compact form to out, which must have room for len
 * bytes (the compact form is never longer). out may be NULL to validate only.
 * Returns the compact length and sets *kind, or returns 0 and sets *kind to
 * JSON_KIND_INVALID when the text is not valid JSON. */
size_t json_compact(const char *text, size_t len, char *out, enum json_kind *kind);

/* One member of an object: key and value as raw JSON text spans. The key span
 * includes its quotes and escapes; decode it with json_string_decode(). */
struct json_member {
    const char *key;
    size_t key_len;
    const char *value;
    size_t value_len;
    enum json_kind kind;
};

/* Walks the members of the JSON object in text, in document order.
 * json_members_begin() returns false if text does not start (after
 * whitespace) with an object. json_members_next() returns 1 with the next
 * member, 0 after the last one, -1 on invalid JSON (including anything but
 * whitespace after the closing brace). */
struct json_members {
    const char *p;
    const char *end;
    int state;
};

bool json_members_begin(struct json_members *it, const char *text, size_t len);
int json_members_next(struct json_members *it, struct json_member *m);

/* Decodes a raw JSON string token (with its quotes) into out, which must hold
 * raw_len bytes; the result is NUL-terminated and *out_len is its length.
 * Returns false for invalid tokens and for strings containing U+0000, which
 * cannot travel in C strings. */
bool json_string_decode(const char *raw, size_t raw_len, char *out, size_t *out_len);

/* True when the raw string token (with quotes) decodes to exactly name. */
bool json_string_equals(const char *raw, size_t raw_len, const char *name);

#endif
