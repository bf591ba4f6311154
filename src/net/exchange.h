/*
 * exchange: one HTTP request and its answer, whatever carried it (an
 * HTTP/1.1 connection, or one stream of an HTTP/2 connection).
 *
 * The transport reads the request within its limits (head, body, time) and
 * hands it to the application's handler, which answers exactly once:
 *
 *   - exchange_respond(): a complete response, now or later (then the
 *     handler registers exchange_on_abort() in case the client leaves
 *     first);
 *   - exchange_open_sse(): a 200 text/event-stream response whose body a
 *     session writes from then on, through the returned sink;
 *   - exchange_open_websocket(): for a WebSocket upgrade request (HTTP/1.1),
 *     the 101 answer; the connection then carries WebSocket messages
 *     written by a session through the returned sink.
 *
 * After answering, the handler must not touch the exchange again: the
 * transport frees it when the answer is written or the client is gone.
 * Request fields stay valid until then; header names are lower case.
 */
#ifndef PIPER_EXCHANGE_H
#define PIPER_EXCHANGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/session.h"
#include "net/http_error.h"
#include "net/peers.h"
#include "ops/metrics.h"

struct exchange;

enum request_method {
    METHOD_GET,
    METHOD_HEAD,
    METHOD_POST,
    METHOD_OPTIONS,
    METHOD_OTHER,
};

struct exchange_header {
    const char *name; /* lower case */
    const char *value;
};

/* How the transport carries out an exchange's answer. */
struct exchange_ops {
    /* Sends status, the added headers and body; ends the exchange. */
    void (*respond)(struct exchange *x, int status, const char *body, size_t len);
    /* Starts the event stream; NULL when it cannot (the exchange is then
     * still open and the caller answers). */
    struct session_sink *(*open_sse)(struct exchange *x);
    struct session_sink *(*open_websocket)(struct exchange *x, const char *subprotocol);
};

struct exchange {
    /* The request (read only). */
    enum request_method method;
    const char *path;  /* the raw path (not percent-decoded), "/..." */
    const char *query; /* after '?', raw; NULL without one */
    const struct exchange_header *headers;
    size_t header_count;
    const char *body;
    size_t body_len;
    struct peer *peer; /* the client (after the PROXY protocol) */
    uint16_t peer_port;
    enum transport_kind transport;
    bool tls;
    bool websocket_request; /* a valid RFC 6455 upgrade request */
    bool keeps_connection;  /* HTTP/1.1 keep-alive (for the 503 of a drain) */

    /* The answer's headers, added by the handler ("name\0value\0" pairs). */
    char *response_headers;
    size_t response_headers_len;
    size_t response_headers_cap;
    bool response_headers_failed; /* out of memory: answer 503 instead */

    void (*on_abort)(void *arg);
    void *abort_arg;

    /* The transport's. */
    const struct exchange_ops *ops;
    void *transport_state;
};

/* The value of the first header named name (any case), or NULL. */
const char *exchange_header(const struct exchange *x, const char *name);

/* Adds a response header (copied). */
void exchange_add_header(struct exchange *x, const char *name, const char *value);

/* Walks the added headers: *pos starts at 0; false after the last. */
bool exchange_next_header(const struct exchange *x, size_t *pos, const char **name,
                          const char **value);

/* Answers with body (may be NULL) of the given content type. */
void exchange_respond(struct exchange *x, int status, const char *content_type, const char *body,
                      size_t len);

/* Answers with the JSON error body of e (message NULL: the default) and
 * counts it in event_piper_requests_rejected_total. */
void exchange_respond_error(struct exchange *x, enum http_error e, const char *message);

struct session_sink *exchange_open_sse(struct exchange *x) __attribute__((warn_unused_result));
struct session_sink *exchange_open_websocket(struct exchange *x, const char *subprotocol)
    __attribute__((warn_unused_result));

/* For an answer given later: fn(arg) runs if the client goes away first;
 * the exchange is gone after it. */
void exchange_on_abort(struct exchange *x, void (*fn)(void *arg), void *arg);

/* For transports: calls the abort callback if one is set, and frees the
 * added headers. */
void exchange_abort(struct exchange *x);
void exchange_release(struct exchange *x);

#endif
