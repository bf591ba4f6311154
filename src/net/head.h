/*
 * head: a request's target and header fields as they arrive, for any
 * transport (HTTP/1.1 hands them in pieces, HTTP/2 in whole fields).
 *
 * Everything goes into one arena bounded by max_bytes (the request line or
 * :path plus every name and value, MAX_HEADER_BYTES), with at most
 * HEAD_MAX_FIELDS fields; control characters (NUL, CR, LF, the rest below
 * 0x20 but tab, and DEL) are refused rather than cut or passed on to logs
 * and PostgreSQL. head_finish() then lays the exchange's fields over the
 * arena: names in lower case, the target split into path and query.
 */
#ifndef PIPER_HEAD_H
#define PIPER_HEAD_H

#include <stdbool.h>
#include <stddef.h>

#include "net/exchange.h"
#include "net/http_error.h"

#define HEAD_MAX_FIELDS 100

struct head {
    char *arena;
    size_t len;
    size_t cap;
    size_t max_bytes;
    size_t target_len;
    size_t count;
    bool in_value;
    struct {
        size_t name;
        size_t value; /* 0 until a value piece arrives */
    } spans[HEAD_MAX_FIELDS];
    struct exchange_header fields[HEAD_MAX_FIELDS];
};

/* Starts (or restarts) an empty head; keeps the arena's memory. */
void head_reset(struct head *h, size_t max_bytes);
void head_free(struct head *h);

/* Each returns false with *error set: HEADER_TOO_LARGE, BAD_REQUEST
 * (control characters) or OUT_OF_MEMORY. The target must come first. */
bool head_add_target(struct head *h, const char *at, size_t len, enum http_error *error);
bool head_add_name(struct head *h, const char *at, size_t len, enum http_error *error);
bool head_add_value(struct head *h, const char *at, size_t len, enum http_error *error);

/* Points x's path, query, headers and header_count into the arena (valid
 * until head_reset or head_free). False (BAD_REQUEST) for a target that is
 * neither origin-form ("/..."), absolute-form nor "*". */
bool head_finish(struct head *h, struct exchange *x, enum http_error *error);

#endif
