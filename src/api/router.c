/*
 * Routes and their handlers.
 *
 * A small route table maps the path to a handler and the methods it takes,
 * so 404 and 405 come out uniformly. Handlers validate input before
 * anything is allocated for the request, answer through the exchange API
 * (never knowing the transport), and build JSON with jansson.
 */
#include "api/router.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/buffer.h>
#include <jansson.h>

#include "api/history.h"
#include "api/query.h"
#include "api/request.h"
#include "ops/log.h"
#include "util/number.h"

struct router {
    const struct config *cfg;
    struct sessions *sessions;
    struct router_hooks hooks;
    struct auth *auth; /* NULL: no authentication */
    struct demo *demo;
    struct history *history;
};

enum route_methods { ROUTE_GET = 1, ROUTE_HEAD = 2, ROUTE_POST = 4, ROUTE_OPTIONS = 8 };

struct route {
    const char *path; /* a trailing '*' matches any rest (one segment) */
    int methods;
    const char *allow; /* value of the Allow header on 405 */
    void (*handler)(struct router *r, struct exchange *x);
};

static void respond_json(struct exchange *x, int status, json_t *body)
{
    char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (text == NULL) {
        exchange_respond_error(x, HTTP_ERROR_OUT_OF_MEMORY, NULL);
        return;
    }
    size_t len = strlen(text);
    exchange_add_header(x, "Cache-Control", "no-store");
    /* The newline makes curl output readable. */
    char *line = realloc(text, len + 2);
    if (line != NULL) {
        text = line;
        text[len++] = '\n';
    }
    exchange_respond(x, status, "application/json", text, len);
    free(text);
}

/* ---- CORS ---- */

/* Whether origin is in list (comma-separated, spaces allowed; empty
 * entries, as a trailing comma leaves, match nothing). */
static bool origin_listed(const char *list, const char *origin)
{
    size_t origin_len = strlen(origin);
    for (const char *p = list; *p != '\0';) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *end = p;
        while (*end != '\0' && *end != ',' && *end != ' ')
            end++;
        if (end > p && (size_t)(end - p) == origin_len && memcmp(p, origin, origin_len) == 0)
            return true;
        p = end;
    }
    return false;
}

/* Whether origin names the host the request was sent to. Browsers send
 * Origin on same-origin POSTs too (the demo page's insert button), and those
 * need no CORS answer. The scheme is not compared: behind a proxy that ends
 * TLS the page is https while this service speaks http. */
static bool same_origin(const struct exchange *x, const char *origin)
{
    const char *host = exchange_header(x, "host");
    if (host == NULL)
        host = exchange_header(x, ":authority");
    const char *authority = strstr(origin, "://");
    return host != NULL && authority != NULL && strcasecmp(authority + 3, host) == 0;
}

/* Adds the CORS answer for the request's Origin, if it may have one.
 * Listed origins are echoed and may send credentials; "*" allows anyone to
 * read, without credentials. Returns false for a foreign origin. */
static bool cors_allow(struct router *r, struct exchange *x)
{
    const char *origin = exchange_header(x, "origin");
    if (origin == NULL || same_origin(x, origin))
        return true;
    exchange_add_header(x, "Vary", "Origin");
    if (origin_listed(r->cfg->cors_origins, origin)) {
        exchange_add_header(x, "Access-Control-Allow-Origin", origin);
        exchange_add_header(x, "Access-Control-Allow-Credentials", "true");
        return true;
    }
    if (origin_listed(r->cfg->cors_origins, "*")) {
        exchange_add_header(x, "Access-Control-Allow-Origin", "*");
        return true;
    }
    return false;
}

static void handle_preflight(struct router *r, struct exchange *x, const char *methods)
{
    if (exchange_header(x, "origin") == NULL) {
        exchange_add_header(x, "Allow", methods);
        exchange_respond(x, 204, NULL, NULL, 0);
        return;
    }
    if (!cors_allow(r, x)) {
        exchange_respond_error(x, HTTP_ERROR_ORIGIN_NOT_ALLOWED, NULL);
        return;
    }
    exchange_add_header(x, "Access-Control-Allow-Methods", methods);
    exchange_add_header(x, "Access-Control-Allow-Headers",
                        "Last-Event-ID, X-Consumer-Id, Authorization, Content-Type, X-API-Key");
    exchange_add_header(x, "Access-Control-Max-Age", "600");
    exchange_respond(x, 204, NULL, NULL, 0);
}

/* ---- who is asking ---- */

/* Header first, then the query parameter (EventSource cannot send headers). */
static const char *lookup(const struct exchange *x, const struct query *q, const char *header,
                          const char *param)
{
    const char *value = exchange_header(x, header);
    return value != NULL ? value : query_get(q, param);
}

/* The credential: Authorization: Bearer, else ?access_token=, else (for a
 * browser's WebSocket, which cannot set headers) the first
 * Sec-WebSocket-Protocol value, which *subprotocol then echoes. */
static const char *credential_of(const struct exchange *x, const struct query *q, char *subprotocol,
                                 size_t size, bool *from_subprotocol)
{
    *from_subprotocol = false;
    const char *value = exchange_header(x, "authorization");
    if (value != NULL) {
        if (strncasecmp(value, "Bearer ", 7) != 0)
            return "";
        value += 7;
        while (*value == ' ')
            value++;
        return value;
    }
    if ((value = query_get(q, "access_token")) != NULL)
        return value;
    const char *protocols = exchange_header(x, "sec-websocket-protocol");
    if (protocols != NULL && x->websocket_request) {
        size_t n = strcspn(protocols, ", ");
        if (n > 0 && n < size) {
            memcpy(subprotocol, protocols, n);
            subprotocol[n] = '\0';
            *from_subprotocol = true;
            return subprotocol;
        }
    }
    return NULL;
}

/* With authentication on, checks the credential. Answers 401 itself and
 * returns false; on success *id holds the identity. */
static bool authorize(struct router *r, struct exchange *x, const char *credential,
                      struct auth_identity *id)
{
    const char *why = NULL;
    if (credential == NULL) {
        exchange_add_header(x, "WWW-Authenticate", "Bearer");
        exchange_respond_error(x, HTTP_ERROR_MISSING_TOKEN, NULL);
        return false;
    }
    enum auth_result result = auth_check(r->auth, credential, time(NULL), id, &why);
    if (result != AUTH_OK) {
        exchange_add_header(x, "WWW-Authenticate",
                            result == AUTH_EXPIRED
                                ? "Bearer error=\"invalid_token\", error_description=\"expired\""
                                : "Bearer error=\"invalid_token\"");
        exchange_respond_error(
            x, result == AUTH_EXPIRED ? HTTP_ERROR_TOKEN_EXPIRED : HTTP_ERROR_INVALID_TOKEN, why);
        return false;
    }
    return true;
}

/* ---- streams: GET /events (SSE or WebSocket), GET /ws/{consumer} ---- */

/* A stream of several consumers counts once for each. */
static bool over_client_limits(struct router *r, struct exchange *x,
                               const struct consumer_set *consumers)
{
    const struct config *cfg = r->cfg;
    const char *which = NULL;
    const char *consumer = consumers->ids[0];
    if (cfg->max_streams_per_ip > 0 && x->peer != NULL &&
        peer_streams(x->peer) >= (size_t)cfg->max_streams_per_ip)
        which = "client address";
    for (size_t i = 0; which == NULL && cfg->max_streams_per_consumer > 0 && i < consumers->count;
         i++) {
        consumer = consumers->ids[i];
        if (sessions_of_consumer(r->sessions, consumer) >= (size_t)cfg->max_streams_per_consumer)
            which = "consumer";
    }
    if (which == NULL)
        return false;
    log_debug("stream refused: per-client limit", "peer=%s consumer=%s limit=%s",
              x->peer != NULL ? peer_address(x->peer) : "?", consumer, which);
    exchange_add_header(x, "Retry-After", "5");
    exchange_respond_error(x, HTTP_ERROR_TOO_MANY_STREAMS,
                           strcmp(which, "consumer") == 0
                               ? "this consumer id has MAX_STREAMS_PER_CONSUMER streams open"
                               : "this client address has MAX_STREAMS_PER_IP streams open");
    return true;
}

/* The consumer ids a request names: the path's, else the X-Consumer-Id
 * header's list, else every consumer_id parameter. Answers the error itself
 * and returns false. */
static bool requested_consumers(struct router *r, struct exchange *x, const struct query *q,
                                const char *path_consumer, struct consumer_set *set)
{
    const char *why = NULL;
    size_t max_bytes = (size_t)r->cfg->consumer_id_max_bytes;
    size_t max_count = (size_t)r->cfg->max_consumers_per_stream;
    const char *header = exchange_header(x, "x-consumer-id");
    enum request_consumers result = REQUEST_CONSUMERS_OK;
    if (path_consumer != NULL)
        result = request_add_consumers(set, path_consumer, false, max_bytes, max_count, &why);
    else if (header != NULL)
        result = request_add_consumers(set, header, true, max_bytes, max_count, &why);
    for (size_t i = 0;
         path_consumer == NULL && header == NULL && i < q->count && result == REQUEST_CONSUMERS_OK;
         i++)
        if (strcmp(q->params[i].name, "consumer_id") == 0)
            result =
                request_add_consumers(set, q->params[i].value, false, max_bytes, max_count, &why);
    switch (result) {
    case REQUEST_CONSUMERS_OK:
        return true;
    case REQUEST_CONSUMERS_INVALID:
        exchange_respond_error(x, HTTP_ERROR_INVALID_CONSUMER_ID, why);
        return false;
    case REQUEST_CONSUMERS_TOO_MANY:
        exchange_respond_error(x, HTTP_ERROR_TOO_MANY_CONSUMERS, NULL);
        return false;
    case REQUEST_CONSUMERS_NO_MEMORY:
        break;
    }
    exchange_respond_error(x, HTTP_ERROR_OUT_OF_MEMORY, NULL);
    return false;
}

/* Without requested ids the stream follows every consumer the credential
 * names; otherwise each must be one of them. Answers 403 itself. */
static bool consumers_allowed(struct router *r, struct exchange *x, const struct auth_identity *id,
                              struct consumer_set *set)
{
    const char *why = NULL;
    if (set->count == 0) {
        for (size_t i = 0; i < id->consumer_count; i++) {
            enum request_consumers result = request_add_consumers(
                set, id->consumer_ids[i], false, (size_t)r->cfg->consumer_id_max_bytes,
                (size_t)r->cfg->max_consumers_per_stream, &why);
            if (result == REQUEST_CONSUMERS_TOO_MANY) {
                exchange_respond_error(x, HTTP_ERROR_TOO_MANY_CONSUMERS,
                                       "the credential names more consumers than "
                                       "MAX_CONSUMERS_PER_STREAM; ask for some");
                return false;
            }
            if (result != REQUEST_CONSUMERS_OK) {
                exchange_respond_error(x,
                                       result == REQUEST_CONSUMERS_NO_MEMORY
                                           ? HTTP_ERROR_OUT_OF_MEMORY
                                           : HTTP_ERROR_INVALID_CONSUMER_ID,
                                       why);
                return false;
            }
        }
        return true;
    }
    for (size_t i = 0; i < set->count; i++) {
        if (!auth_identity_allows(id, set->ids[i])) {
            exchange_respond_error(x, HTTP_ERROR_WRONG_CONSUMER, NULL);
            return false;
        }
    }
    return true;
}

/* Who asks for whose events, for streams and history alike: CORS, the
 * consumer ids and the credential (when authentication is on). Fills set
 * (sealed) and returns true; otherwise answers the error itself. The caller
 * frees set and clears *id in both cases. */
static bool resolve_consumers(struct router *r, struct exchange *x, const struct query *q,
                              const char *path_consumer, struct auth_identity *id,
                              struct consumer_set *set, char *subprotocol, size_t size,
                              bool *in_subprotocol)
{
    *in_subprotocol = false;
    if (!cors_allow(r, x)) {
        exchange_respond_error(x, HTTP_ERROR_ORIGIN_NOT_ALLOWED, NULL);
        return false;
    }
    if (r->auth != NULL &&
        !authorize(r, x, credential_of(x, q, subprotocol, size, in_subprotocol), id))
        return false;
    if (!requested_consumers(r, x, q, path_consumer, set) ||
        (r->auth != NULL && !consumers_allowed(r, x, id, set)))
        return false;
    if (set->count == 0) {
        exchange_respond_error(x, HTTP_ERROR_MISSING_CONSUMER_ID, NULL);
        return false;
    }
    consumer_set_seal(set);
    return true;
}

/* A Last-Event-ID or after= for set: positions gets one entry per consumer
 * (owned by the caller), or stays NULL when absent. Answers error itself
 * and returns false. */
static bool parse_cursor(struct exchange *x, const char *text, const struct consumer_set *set,
                         enum http_error error, int64_t **positions)
{
    *positions = malloc(set->count * sizeof(**positions));
    if (*positions == NULL) {
        exchange_respond_error(x, HTTP_ERROR_OUT_OF_MEMORY, NULL);
        return false;
    }
    switch (stream_cursor_parse(text, set, *positions)) {
    case STREAM_CURSOR_PLAIN:
    case STREAM_CURSOR_COMPOSITE:
        return true;
    case STREAM_CURSOR_ABSENT:
        free(*positions);
        *positions = NULL;
        return true;
    case STREAM_CURSOR_INVALID:
        exchange_respond_error(x, error, NULL);
        break;
    case STREAM_CURSOR_MISMATCH:
        exchange_respond_error(x, error, "this cursor was made for another set of consumer ids");
        break;
    }
    free(*positions);
    *positions = NULL;
    return false;
}

/* The repeated type parameter. Answers the error itself and returns false. */
static bool parse_types(struct exchange *x, const struct query *q, struct event_filter *filter)
{
    for (size_t i = 0; i < q->count; i++) {
        if (strcmp(q->params[i].name, "type") != 0)
            continue;
        switch (event_filter_add(filter, q->params[i].value)) {
        case EVENT_FILTER_ADDED:
            break;
        case EVENT_FILTER_INVALID:
            exchange_respond_error(x, HTTP_ERROR_INVALID_TYPE, NULL);
            return false;
        case EVENT_FILTER_TOO_MANY:
            exchange_respond_error(x, HTTP_ERROR_TOO_MANY_TYPES, NULL);
            return false;
        case EVENT_FILTER_NO_MEMORY:
            exchange_respond_error(x, HTTP_ERROR_OUT_OF_MEMORY, NULL);
            return false;
        }
    }
    return true;
}

/* An optional integer parameter within [min, max]; *out keeps its default
 * when the parameter is absent. */
static bool parse_bounded(const struct query *q, const char *name, int64_t min, int64_t max,
                          int64_t *out)
{
    const char *text = query_get(q, name);
    if (text == NULL)
        return true;
    return parse_int64(text, strlen(text), min, max, out);
}

static void open_stream(struct router *r, struct exchange *x, const struct query *q,
                        const char *path_consumer, bool websocket)
{
    int64_t initial = 0;
    int64_t *positions = NULL;
    struct auth_identity id = {0};
    struct consumer_set consumers = {0};
    struct event_filter filter = {0};
    char subprotocol[4096];
    bool credential_in_subprotocol = false;
    if (!resolve_consumers(r, x, q, path_consumer, &id, &consumers, subprotocol,
                           sizeof(subprotocol), &credential_in_subprotocol) ||
        !parse_cursor(x, lookup(x, q, "last-event-id", "last_event_id"), &consumers,
                      HTTP_ERROR_INVALID_LAST_EVENT_ID, &positions))
        goto done;
    const char *initial_text = query_get(q, "initial");
    if (initial_text != NULL && strcmp(initial_text, "latest") == 0)
        initial = 1;
    else if (!parse_bounded(q, "initial", 1, 1000, &initial)) {
        exchange_respond_error(x, HTTP_ERROR_INVALID_INITIAL, NULL);
        goto done;
    }
    if (!parse_types(x, q, &filter))
        goto done;
    if (r->hooks.draining(r->hooks.arg)) {
        exchange_add_header(x, "Retry-After", "1");
        exchange_respond_error(x, HTTP_ERROR_SHUTTING_DOWN, NULL);
        goto done;
    }
    if (sessions_count(r->sessions) >= (size_t)r->cfg->max_sessions) {
        exchange_add_header(x, "Retry-After", "5");
        exchange_respond_error(x, HTTP_ERROR_TOO_MANY_SESSIONS, NULL);
        goto done;
    }
    if (over_client_limits(r, x, &consumers))
        goto done;
    struct session_params params = {
        .consumers = &consumers,
        .positions = positions,
        .initial = (int)initial,
        .filter = &filter,
        .expires_at = id.expires_at,
        .forwarded_for = exchange_header(x, "x-forwarded-for"),
    };
    struct session *s = session_new(r->sessions, &params);
    struct session_sink *sink = NULL;
    if (s != NULL)
        sink = websocket
                   ? exchange_open_websocket(x, credential_in_subprotocol ? subprotocol : NULL)
                   : exchange_open_sse(x);
    if (sink == NULL) {
        if (s != NULL)
            session_discard(s);
        exchange_add_header(x, "Retry-After", "5");
        exchange_respond_error(x, HTTP_ERROR_OUT_OF_MEMORY, "cannot open a stream now");
        goto done;
    }
    session_start(s, sink);
done:
    free(positions);
    consumer_set_free(&consumers);
    event_filter_free(&filter);
    auth_identity_clear(&id);
}

/* ---- GET /events/history and GET /events/latest ---- */

static void answer_history(struct router *r, struct exchange *x, bool latest)
{
    struct query q;
    struct auth_identity id = {0};
    struct consumer_set consumers = {0};
    struct event_filter filter = {0};
    char subprotocol[8];
    bool unused = false;
    int64_t *after = NULL, limit = HISTORY_LIMIT_DEFAULT, wait = 0;

    if (x->method == METHOD_OPTIONS) {
        handle_preflight(r, x, "GET, OPTIONS");
        return;
    }
    if (!query_parse(x->query, &q)) {
        exchange_respond_error(x, HTTP_ERROR_INVALID_QUERY, NULL);
        return;
    }
    if (!resolve_consumers(r, x, &q, NULL, &id, &consumers, subprotocol, sizeof(subprotocol),
                           &unused) ||
        !parse_types(x, &q, &filter))
        goto done;
    if (!latest) {
        if (!parse_cursor(x, query_get(&q, "after"), &consumers, HTTP_ERROR_INVALID_AFTER, &after))
            goto done;
        if (!parse_bounded(&q, "limit", 1, HISTORY_LIMIT_MAX, &limit)) {
            exchange_respond_error(x, HTTP_ERROR_INVALID_LIMIT, NULL);
            goto done;
        }
        if (!parse_bounded(&q, "wait", 0, HISTORY_WAIT_MAX_SECONDS, &wait)) {
            exchange_respond_error(x, HTTP_ERROR_INVALID_WAIT, NULL);
            goto done;
        }
    }
    if (wait > 0 && over_client_limits(r, x, &consumers))
        goto done;
    exchange_add_header(x, "Cache-Control", "no-store");
    struct history_query hq = {
        .consumers = &consumers,
        .filter = &filter,
        .latest = latest,
        .after = after,
        .limit = (int)limit,
        .wait_seconds = (int)wait,
    };
    history_answer(r->history, x, &hq);
done:
    free(after);
    consumer_set_free(&consumers);
    event_filter_free(&filter);
    auth_identity_clear(&id);
    query_free(&q);
}

static void handle_history(struct router *r, struct exchange *x)
{
    answer_history(r, x, false);
}

static void handle_latest(struct router *r, struct exchange *x)
{
    answer_history(r, x, true);
}

static void handle_events(struct router *r, struct exchange *x)
{
    struct query q;
    if (x->method == METHOD_OPTIONS) {
        handle_preflight(r, x, "GET, OPTIONS");
        return;
    }
    if (!query_parse(x->query, &q)) {
        exchange_respond_error(x, HTTP_ERROR_INVALID_QUERY, NULL);
        return;
    }
    open_stream(r, x, &q, NULL, x->websocket_request);
    query_free(&q);
}

/* GET /ws/{consumer_id}: the DataStream seed's URL shape, WebSocket only. */
static void handle_ws_path(struct router *r, struct exchange *x)
{
    struct query q;
    char consumer[1024];
    const char *rest = x->path + strlen("/ws/");
    if (!x->websocket_request) {
        exchange_add_header(x, "Upgrade", "websocket");
        exchange_respond_error(x, HTTP_ERROR_BAD_REQUEST, "this path takes WebSocket requests");
        return;
    }
    struct query path = {0};
    /* The segment is percent-decoded like a query value. */
    if (strlen(rest) >= sizeof(consumer) / 2 || !query_parse(rest, &path) || path.count != 1) {
        query_free(&path);
        exchange_respond_error(x, HTTP_ERROR_INVALID_CONSUMER_ID, NULL);
        return;
    }
    snprintf(consumer, sizeof(consumer), "%s", path.params[0].name);
    query_free(&path);
    if (!query_parse(x->query, &q)) {
        exchange_respond_error(x, HTTP_ERROR_INVALID_QUERY, NULL);
        return;
    }
    open_stream(r, x, &q, consumer, true);
    query_free(&q);
}

/* ---- the demo page and POST /demo/events ---- */

static void handle_page(struct router *r, struct exchange *x)
{
    if (!r->cfg->demo) {
        exchange_respond_error(x, HTTP_ERROR_DEMO_DISABLED, NULL);
        return;
    }
    const struct demo_file *f = demo_find(r->demo, x->path);
    if (f == NULL) {
        exchange_respond_error(x, HTTP_ERROR_NOT_FOUND, NULL);
        return;
    }
    exchange_add_header(x, "Cache-Control", "no-cache");
    exchange_add_header(x, "X-Content-Type-Options", "nosniff");
    exchange_respond(x, 200, f->content_type, f->bytes, f->len);
}

/* A demo insert waiting for the database; if the client leaves first the
 * exchange's abort callback cancels it. */
struct pending_insert {
    struct exchange *x;
    struct demo_insert *insert;
};

static void on_insert_client_gone(void *arg)
{
    struct pending_insert *p = arg;
    demo_insert_cancel(p->insert);
    free(p);
}

static void on_demo_inserted(void *arg, int64_t id, const char *error)
{
    struct pending_insert *p = arg;
    if (id > 0)
        respond_json(p->x, 201, json_pack("{s:I}", "id", (json_int_t)id));
    else
        exchange_respond_error(p->x, HTTP_ERROR_INSERT_FAILED, error);
    free(p);
}

/* POST /demo/events {"consumer_id": "...", "type": "...", "payload": {...}} */
static void handle_demo_insert(struct router *r, struct exchange *x)
{
    const char *why = NULL;
    struct auth_identity id = {0};
    json_t *body = NULL;
    char *payload = NULL;

    if (x->method == METHOD_OPTIONS) {
        handle_preflight(r, x, "POST, OPTIONS");
        return;
    }
    if (!r->cfg->demo) {
        exchange_respond_error(x, HTTP_ERROR_DEMO_DISABLED, NULL);
        return;
    }
    if (!cors_allow(r, x)) {
        exchange_respond_error(x, HTTP_ERROR_ORIGIN_NOT_ALLOWED, NULL);
        return;
    }
    body = x->body != NULL ? json_loadb(x->body, x->body_len, 0, NULL) : NULL;
    const char *consumer = json_string_value(json_object_get(body, "consumer_id"));
    const char *type = json_string_value(json_object_get(body, "type"));
    json_t *payload_value = json_object_get(body, "payload");
    if (!json_is_object(body) || consumer == NULL || !json_is_object(payload_value)) {
        exchange_respond_error(x, HTTP_ERROR_INVALID_BODY, NULL);
        goto done;
    }
    if (r->auth != NULL) {
        struct query none = {0};
        char unused[8];
        bool in_subprotocol = false;
        if (!authorize(r, x, credential_of(x, &none, unused, sizeof(unused), &in_subprotocol), &id))
            goto done;
        if (!auth_identity_allows(&id, consumer)) {
            exchange_respond_error(x, HTTP_ERROR_WRONG_CONSUMER, NULL);
            goto done;
        }
    }
    if (!request_consumer_id_valid(consumer, (size_t)r->cfg->consumer_id_max_bytes, &why)) {
        exchange_respond_error(x, HTTP_ERROR_INVALID_CONSUMER_ID, why);
        goto done;
    }
    if (type == NULL || type[0] == '\0' || strpbrk(type, "\r\n") != NULL) {
        exchange_respond_error(x, HTTP_ERROR_INVALID_TYPE, NULL);
        goto done;
    }
    payload = json_dumps(payload_value, JSON_COMPACT);
    struct pending_insert *p = calloc(1, sizeof(*p));
    if (payload == NULL || p == NULL ||
        (p->insert = demo_insert(r->demo, consumer, type, payload, on_demo_inserted, p)) == NULL) {
        free(p);
        exchange_respond_error(x, HTTP_ERROR_OUT_OF_MEMORY, "cannot insert now");
        goto done;
    }
    p->x = x;
    exchange_on_abort(x, on_insert_client_gone, p);
done:
    free(payload);
    json_decref(body);
    auth_identity_clear(&id);
}

/* ---- POST /auth/token ---- */

/* A short-lived token for the API key's consumers, so that a browser gets a
 * token from its own backend and never holds the key. Only an API key can
 * ask: a token cannot extend its own life this way. */
static void handle_token(struct router *r, struct exchange *x)
{
    struct auth_identity id = {0};
    const char *why = NULL;
    if (x->method == METHOD_OPTIONS) {
        handle_preflight(r, x, "POST, OPTIONS");
        return;
    }
    if (!auth_can_issue(r->auth)) {
        exchange_respond_error(x, HTTP_ERROR_TOKENS_DISABLED, NULL);
        return;
    }
    if (!cors_allow(r, x)) {
        exchange_respond_error(x, HTTP_ERROR_ORIGIN_NOT_ALLOWED, NULL);
        return;
    }
    const char *key = exchange_header(x, "x-api-key");
    const char *bearer = exchange_header(x, "authorization");
    if (key == NULL && bearer != NULL && strncasecmp(bearer, "Bearer ", 7) == 0)
        key = bearer + 7;
    if (key == NULL || strncmp(key, "sk_", 3) != 0) {
        exchange_add_header(x, "WWW-Authenticate", "Bearer");
        exchange_respond_error(x, HTTP_ERROR_API_KEY_REQUIRED, NULL);
        return;
    }
    if (auth_check(r->auth, key, time(NULL), &id, &why) != AUTH_OK) {
        exchange_add_header(x, "WWW-Authenticate", "Bearer error=\"invalid_token\"");
        exchange_respond_error(x, HTTP_ERROR_INVALID_TOKEN, why);
        return;
    }
    int ttl = (int)r->cfg->token_ttl_seconds;
    char *token = auth_issue_token_for(r->auth, &id, ttl, time(NULL));
    /* consumer_id (the first) stays for clients written before a key could
     * name several consumers. */
    json_t *consumers = json_array();
    for (size_t i = 0; consumers != NULL && i < id.consumer_count; i++) {
        if (json_array_append_new(consumers, json_string(id.consumer_ids[i])) != 0) {
            json_decref(consumers);
            consumers = NULL;
        }
    }
    if (token == NULL || consumers == NULL) {
        json_decref(consumers);
        exchange_respond_error(x, HTTP_ERROR_OUT_OF_MEMORY, NULL);
    } else {
        respond_json(x, 200,
                     json_pack("{s:s, s:i, s:s, s:o}", "token", token, "expires_in", ttl,
                               "consumer_id", id.consumer_id, "consumer_ids", consumers));
    }
    free(token);
    auth_identity_clear(&id);
}

/* ---- operations ---- */

static void handle_healthz(struct router *r, struct exchange *x)
{
    (void)r;
    respond_json(x, 200, json_pack("{s:s}", "status", "ok"));
}

static void handle_readyz(struct router *r, struct exchange *x)
{
    const char *reason = "shutting down";
    if (!r->hooks.draining(r->hooks.arg) && r->hooks.ready(r->hooks.arg, &reason)) {
        respond_json(x, 200, json_pack("{s:s}", "status", "ready"));
        return;
    }
    respond_json(x, 503, json_pack("{s:s, s:s}", "status", "not_ready", "reason", reason));
}

/* Same time whatever the first differing byte is, so a token cannot be
 * guessed byte by byte from response times. */
static bool equal_constant_time(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned char diff = la != lb;
    for (size_t i = 0; i < la; i++)
        diff |= (unsigned char)a[i] ^ (unsigned char)b[i % (lb > 0 ? lb : 1)];
    return diff == 0;
}

static void handle_metrics(struct router *r, struct exchange *x)
{
    const char *token = r->cfg->metrics_token;
    if (token[0] != '\0') {
        const char *auth = exchange_header(x, "authorization");
        if (auth == NULL || strncasecmp(auth, "Bearer ", 7) != 0) {
            exchange_add_header(x, "WWW-Authenticate", "Bearer");
            exchange_respond_error(x, HTTP_ERROR_MISSING_TOKEN,
                                   "send Authorization: Bearer "
                                   "<METRICS_TOKEN>");
            return;
        }
        if (!equal_constant_time(auth + 7, token)) {
            exchange_add_header(x, "WWW-Authenticate", "Bearer error=\"invalid_token\"");
            exchange_respond_error(x, HTTP_ERROR_INVALID_TOKEN, "not the METRICS_TOKEN");
            return;
        }
    }
    struct metrics_gauges gauges;
    struct evbuffer *out = evbuffer_new();
    if (out == NULL) {
        exchange_respond_error(x, HTTP_ERROR_OUT_OF_MEMORY, NULL);
        return;
    }
    memset(&gauges, 0, sizeof(gauges));
    r->hooks.gauges(r->hooks.arg, &gauges);
    metrics_render(out, &gauges);
    size_t len = evbuffer_get_length(out);
    exchange_respond(x, 200, "text/plain; version=0.0.4; charset=utf-8",
                     (const char *)evbuffer_pullup(out, -1), len);
    evbuffer_free(out);
}

static const struct route routes[] = {
    {"/events", ROUTE_GET | ROUTE_OPTIONS, "GET, OPTIONS", handle_events},
    {"/events/history", ROUTE_GET | ROUTE_OPTIONS, "GET, OPTIONS", handle_history},
    {"/events/latest", ROUTE_GET | ROUTE_OPTIONS, "GET, OPTIONS", handle_latest},
    {"/ws/*", ROUTE_GET, "GET", handle_ws_path},
    {"/demo/events", ROUTE_POST | ROUTE_OPTIONS, "POST, OPTIONS", handle_demo_insert},
    {"/auth/token", ROUTE_POST | ROUTE_OPTIONS, "POST, OPTIONS", handle_token},
    {"/", ROUTE_GET | ROUTE_HEAD, "GET, HEAD", handle_page},
    {"/index.html", ROUTE_GET | ROUTE_HEAD, "GET, HEAD", handle_page},
    {"/app.js", ROUTE_GET | ROUTE_HEAD, "GET, HEAD", handle_page},
    {"/style.css", ROUTE_GET | ROUTE_HEAD, "GET, HEAD", handle_page},
    {"/healthz", ROUTE_GET | ROUTE_HEAD, "GET, HEAD", handle_healthz},
    {"/manage/health", ROUTE_GET | ROUTE_HEAD, "GET, HEAD", handle_healthz},
    {"/readyz", ROUTE_GET | ROUTE_HEAD, "GET, HEAD", handle_readyz},
    {"/metrics", ROUTE_GET | ROUTE_HEAD, "GET, HEAD", handle_metrics},
};

static int method_bit(enum request_method m)
{
    switch (m) {
    case METHOD_GET:
        return ROUTE_GET;
    case METHOD_HEAD:
        return ROUTE_HEAD;
    case METHOD_POST:
        return ROUTE_POST;
    case METHOD_OPTIONS:
        return ROUTE_OPTIONS;
    case METHOD_OTHER:
        return 0;
    }
    return 0;
}

static bool path_matches(const char *pattern, const char *path)
{
    size_t n = strlen(pattern);
    if (pattern[n - 1] != '*')
        return strcmp(pattern, path) == 0;
    /* A prefix and one non-empty segment. */
    return strncmp(pattern, path, n - 1) == 0 && path[n - 1] != '\0' &&
           strchr(path + n - 1, '/') == NULL;
}

void router_handle(void *arg, struct exchange *x)
{
    struct router *r = arg;
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        if (!path_matches(routes[i].path, x->path))
            continue;
        if ((method_bit(x->method) & routes[i].methods) == 0) {
            exchange_add_header(x, "Allow", routes[i].allow);
            exchange_respond_error(x, HTTP_ERROR_METHOD_NOT_ALLOWED, NULL);
            return;
        }
        routes[i].handler(r, x);
        return;
    }
    exchange_respond_error(x, HTTP_ERROR_NOT_FOUND, NULL);
}

struct router *router_new(const struct config *cfg, struct sessions *sessions,
                          struct history *history, const struct router_hooks *hooks,
                          struct auth *auth, struct demo *demo)
{
    struct router *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->cfg = cfg;
    r->sessions = sessions;
    r->hooks = *hooks;
    r->auth = auth;
    r->demo = demo;
    r->history = history;
    return r;
}

void router_free(struct router *r)
{
    free(r);
}

void router_set_auth(struct router *r, struct auth *auth)
{
    r->auth = auth;
}
