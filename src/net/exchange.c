#include "net/exchange.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *exchange_header(const struct exchange *x, const char *name)
{
    for (size_t i = 0; i < x->header_count; i++) {
        if (strcasecmp(x->headers[i].name, name) == 0)
            return x->headers[i].value;
    }
    return NULL;
}

void exchange_add_header(struct exchange *x, const char *name, const char *value)
{
    size_t n = strlen(name) + 1, v = strlen(value) + 1;
    if (x->response_headers_len + n + v > x->response_headers_cap) {
        size_t cap = x->response_headers_cap == 0 ? 256 : x->response_headers_cap;
        while (cap < x->response_headers_len + n + v)
            cap *= 2;
        char *grown = realloc(x->response_headers, cap);
        if (grown == NULL) {
            x->response_headers_failed = true;
            return;
        }
        x->response_headers = grown;
        x->response_headers_cap = cap;
    }
    memcpy(x->response_headers + x->response_headers_len, name, n);
    memcpy(x->response_headers + x->response_headers_len + n, value, v);
    x->response_headers_len += n + v;
}

bool exchange_next_header(const struct exchange *x, size_t *pos, const char **name,
                          const char **value)
{
    if (*pos >= x->response_headers_len)
        return false;
    *name = x->response_headers + *pos;
    *value = *name + strlen(*name) + 1;
    *pos += strlen(*name) + strlen(*value) + 2;
    return true;
}

void exchange_respond(struct exchange *x, int status, const char *content_type, const char *body,
                      size_t len)
{
    if (content_type != NULL)
        exchange_add_header(x, "Content-Type", content_type);
    if (x->response_headers_failed) {
        /* Whatever was asked, the client learns it cannot be served now. */
        static const char busy[] = "{\"error\":\"out_of_memory\"}\n";
        x->response_headers_len = 0;
        metrics.requests_rejected[HTTP_ERROR_OUT_OF_MEMORY]++;
        x->ops->respond(x, 503, busy, sizeof(busy) - 1);
        return;
    }
    x->ops->respond(x, status, body, len);
}

void exchange_respond_error(struct exchange *x, enum http_error e, const char *message)
{
    char body[512];
    size_t len = http_error_body(e, message, body, sizeof(body));
    metrics.requests_rejected[e]++;
    exchange_add_header(x, "Cache-Control", "no-store");
    exchange_respond(x, http_error_status(e), "application/json", body, len);
}

struct session_sink *exchange_open_sse(struct exchange *x)
{
    if (x->response_headers_failed)
        return NULL;
    return x->ops->open_sse(x);
}

struct session_sink *exchange_open_websocket(struct exchange *x, const char *subprotocol)
{
    if (x->response_headers_failed || x->ops->open_websocket == NULL)
        return NULL;
    return x->ops->open_websocket(x, subprotocol);
}

void exchange_on_abort(struct exchange *x, void (*fn)(void *arg), void *arg)
{
    x->on_abort = fn;
    x->abort_arg = arg;
}

void exchange_abort(struct exchange *x)
{
    void (*fn)(void *) = x->on_abort;
    x->on_abort = NULL;
    if (fn != NULL)
        fn(x->abort_arg);
    exchange_release(x);
}

void exchange_release(struct exchange *x)
{
    free(x->response_headers);
    x->response_headers = NULL;
    x->response_headers_len = 0;
    x->response_headers_cap = 0;
    x->response_headers_failed = false;
    x->on_abort = NULL;
}
