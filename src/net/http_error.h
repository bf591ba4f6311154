/*
 * http_error: every error answer the service gives, in one table.
 *
 * Each error has a stable code (the "error" member of the JSON body, and
 * the reason label of event_piper_requests_rejected_total), an HTTP status
 * and a default message. Transports use the protocol errors (a malformed
 * request, a head or body too large, a request too slow); the API layer the
 * rest. README's error table lists exactly these.
 */
#ifndef PIPER_HTTP_ERROR_H
#define PIPER_HTTP_ERROR_H

#include <stddef.h>

/* X(name, code, status, message) */
#define HTTP_ERRORS(X)                                                                             \
    X(BAD_REQUEST, "bad_request", 400, "the request is not valid HTTP")                            \
    X(INVALID_QUERY, "invalid_query", 400, "the query string is malformed")                        \
    X(MISSING_CONSUMER_ID, "missing_consumer_id", 400,                                             \
      "the X-Consumer-Id header (or consumer_id parameter) is required")                           \
    X(INVALID_CONSUMER_ID, "invalid_consumer_id", 400, "the consumer id is not valid")             \
    X(TOO_MANY_CONSUMERS, "too_many_consumers", 400,                                               \
      "more consumer ids than MAX_CONSUMERS_PER_STREAM")                                           \
    X(INVALID_LAST_EVENT_ID, "invalid_last_event_id", 400,                                         \
      "Last-Event-ID must be a non-negative integer or a cursor sent by this stream")              \
    X(INVALID_BODY, "invalid_body", 400,                                                           \
      "expected {\"consumer_id\": string, \"type\": string, \"payload\": object}")                 \
    X(INVALID_TYPE, "invalid_type", 400, "type must be a non-empty string without line breaks")    \
    X(TOO_MANY_TYPES, "too_many_types", 400, "at most 16 type parameters")                         \
    X(INVALID_INITIAL, "invalid_initial", 400, "initial must be 1 to 1000, or latest")             \
    X(INVALID_AFTER, "invalid_after", 400, "after must be a non-negative integer or a next_after") \
    X(INVALID_LIMIT, "invalid_limit", 400, "limit must be 1 to 1000")                              \
    X(INVALID_WAIT, "invalid_wait", 400, "wait must be 0 to 60 seconds")                           \
    X(MISSING_TOKEN, "missing_token", 401, "send Authorization: Bearer <token> or ?access_token=") \
    X(API_KEY_REQUIRED, "api_key_required", 401,                                                   \
      "send an API key as X-API-Key or Authorization: Bearer")                                     \
    X(INVALID_TOKEN, "invalid_token", 401, "the credential is not valid")                          \
    X(TOKEN_EXPIRED, "token_expired", 401, "the credential has expired")                           \
    X(WRONG_CONSUMER, "wrong_consumer", 403, "this credential does not allow that consumer id")    \
    X(ORIGIN_NOT_ALLOWED, "origin_not_allowed", 403, "this origin is not in CORS_ORIGINS")         \
    X(NOT_FOUND, "not_found", 404, "no such path")                                                 \
    X(NO_EVENTS, "no_events", 404, "this consumer has no events of these types")                   \
    X(DEMO_DISABLED, "demo_disabled", 404, "the demo is off; start the service with DEMO=1")       \
    X(TOKENS_DISABLED, "tokens_disabled", 404,                                                     \
      "issuing tokens needs JWT_HS256_SECRET (and API keys to trade)")                             \
    X(METHOD_NOT_ALLOWED, "method_not_allowed", 405, "this method is not allowed on this path")    \
    X(REQUEST_TIMEOUT, "request_timeout", 408,                                                     \
      "the request did not arrive within REQUEST_TIMEOUT_SECONDS")                                 \
    X(BODY_TOO_LARGE, "body_too_large", 413, "the request body is larger than MAX_BODY_BYTES")     \
    X(TOO_MANY_STREAMS, "too_many_streams", 429,                                                   \
      "this client or consumer has as many streams open as allowed")                               \
    X(HEADER_TOO_LARGE, "header_too_large", 431,                                                   \
      "the request head is larger than MAX_HEADER_BYTES")                                          \
    X(TOO_MANY_SESSIONS, "too_many_sessions", 503,                                                 \
      "this instance is at its stream limit; retry later or elsewhere")                            \
    X(SHUTTING_DOWN, "shutting_down", 503, "this instance is shutting down; reconnect")            \
    X(OUT_OF_MEMORY, "out_of_memory", 503, "cannot serve this request now; retry later")           \
    X(INSERT_FAILED, "insert_failed", 503, "the database did not take the insert; retry later")    \
    X(HISTORY_FAILED, "history_failed", 503, "the database did not answer; retry later")

enum http_error {
#define HTTP_ERROR_ENUM(name, code, status, message) HTTP_ERROR_##name,
    HTTP_ERRORS(HTTP_ERROR_ENUM)
#undef HTTP_ERROR_ENUM
        HTTP_ERROR_COUNT
};

const char *http_error_code(enum http_error e);
int http_error_status(enum http_error e);

/* "Not Found" for 404 and so on ("Unknown" for codes it does not know). */
const char *http_status_text(int status);

/* Writes the error body {"error":"<code>","message":"<message>"} plus a
 * newline into out (NUL-terminated) and returns its length; message NULL
 * means the default. The message is JSON-escaped. */
size_t http_error_body(enum http_error e, const char *message, char *out, size_t size);

#endif
