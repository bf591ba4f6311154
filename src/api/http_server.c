/*
 * HTTP routing and the accept path.
 *
 * evhttp's generic callback receives every request; a small route table maps
 * the path to a handler and the methods it accepts, so 404 and 405 come out
 * uniformly. Handlers validate input before anything is allocated for the
 * request, and everything they send back is built with jansson.
 *
 * Accepting: evhttp_bind_listener() installs evhttp's accept callback on our
 * listener, so the cap on accepts per pass is enforced from the bufferevent
 * factory evhttp calls for each new connection: after ACCEPTS_PER_PASS the
 * listener is disabled and re-enabled by a deferred event once the loop has
 * served everything else that was ready.
 */
#include "api/http_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <jansson.h>

#include "api/auth.h"
#include "api/demo.h"
#include "ops/log.h"
#include "api/request.h"

#define ACCEPTS_PER_PASS 256
#define ACCEPT_PAUSE_MS 250
#define LISTEN_BACKLOG 4096

struct http_server {
    struct event_base *base;
    const struct config *cfg;
    struct sessions *sessions;
    struct http_server_hooks hooks;
    struct auth *auth; /* NULL: no authentication */
    struct demo *demo;
    struct evhttp *http;
    struct evconnlistener *listener;
    struct event *resume_ev; /* re-enables accepting after a pass or a pause */
    struct event *pass_ev;   /* marks the end of an accept pass */
    unsigned accepted_in_pass;
    bool accepting;
    unsigned accept_errors_logged;
};

enum route_methods { ROUTE_GET = 1, ROUTE_HEAD = 2, ROUTE_POST = 4, ROUTE_OPTIONS = 8 };

struct route {
    const char *path;
    int methods;
    const char *allow; /* value of the Allow header on 405 */
    void (*handler)(struct http_server *server, struct evhttp_request *req);
};

static void send_json(struct evhttp_request *req, int code, const char *reason, json_t *body)
{
    struct evbuffer *out = evbuffer_new();
    char *text = json_dumps(body, JSON_COMPACT);
    struct evkeyvalq *headers = evhttp_request_get_output_headers(req);

    evhttp_add_header(headers, "Content-Type", "application/json");
    evhttp_add_header(headers, "Cache-Control", "no-store");
    if (out != NULL && text != NULL) {
        evbuffer_add(out, text, strlen(text));
        evbuffer_add(out, "\n", 1);
    }
    evhttp_send_reply(req, code, reason, out);
    if (out != NULL)
        evbuffer_free(out);
    free(text);
    json_decref(body);
}

static void send_error(struct evhttp_request *req, int code, const char *reason,
                       enum reject_reason metric, const char *error, const char *message)
{
    metrics.requests_rejected[metric]++;
    send_json(req, code, reason, json_pack("{s:s, s:s}", "error", error, "message", message));
}

/* ---- CORS ---- */

/* Whether origin is in CORS_ORIGINS (comma-separated, spaces allowed). */
static bool origin_listed(const char *list, const char *origin)
{
    size_t origin_len = strlen(origin);
    for (const char *p = list; *p != '\0';) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *end = p;
        while (*end != '\0' && *end != ',' && *end != ' ')
            end++;
        if ((size_t)(end - p) == origin_len && memcmp(p, origin, origin_len) == 0)
            return true;
        p = end;
    }
    return false;
}

static bool cors_wildcard(const struct http_server *server)
{
    return origin_listed(server->cfg->cors_origins, "*");
}

/* Whether origin names the host the request was sent to. Browsers send
 * Origin on same-origin POSTs too (the demo page's insert button), and those
 * need no CORS answer. The scheme is not compared: behind a proxy that ends
 * TLS the page is https while this service speaks http. */
static bool same_origin(struct evhttp_request *req, const char *origin)
{
    const char *host = evhttp_find_header(evhttp_request_get_input_headers(req), "Host");
    const char *authority = strstr(origin, "://");
    if (host == NULL || authority == NULL)
        return false;
    return strcasecmp(authority + 3, host) == 0;
}

/* Adds the CORS answer for the request's Origin, if it may have one.
 * Listed origins are echoed and may send credentials; "*" allows anyone to
 * read, without credentials. Returns false for a foreign origin. */
static bool cors_allow(struct http_server *server, struct evhttp_request *req)
{
    const char *origin = evhttp_find_header(evhttp_request_get_input_headers(req), "Origin");
    struct evkeyvalq *out = evhttp_request_get_output_headers(req);
    if (origin == NULL || same_origin(req, origin))
        return true;
    evhttp_add_header(out, "Vary", "Origin");
    if (origin_listed(server->cfg->cors_origins, origin)) {
        evhttp_add_header(out, "Access-Control-Allow-Origin", origin);
        evhttp_add_header(out, "Access-Control-Allow-Credentials", "true");
        return true;
    }
    if (cors_wildcard(server)) {
        evhttp_add_header(out, "Access-Control-Allow-Origin", "*");
        return true;
    }
    return false;
}

static void handle_preflight(struct http_server *server, struct evhttp_request *req,
                             const char *methods)
{
    if (evhttp_find_header(evhttp_request_get_input_headers(req), "Origin") == NULL) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", methods);
        evhttp_send_reply(req, 204, "No Content", NULL);
        return;
    }
    if (!cors_allow(server, req)) {
        send_error(req, 403, "Forbidden", REJECT_FORBIDDEN, "origin_not_allowed",
                   "this origin is not in CORS_ORIGINS");
        return;
    }
    struct evkeyvalq *out = evhttp_request_get_output_headers(req);
    evhttp_add_header(out, "Access-Control-Allow-Methods", methods);
    evhttp_add_header(out, "Access-Control-Allow-Headers",
                      "Last-Event-ID, X-Consumer-Id, Authorization, Content-Type");
    evhttp_add_header(out, "Access-Control-Max-Age", "600");
    evhttp_send_reply(req, 204, "No Content", NULL);
}

/* ---- who is asking ---- */

/* Header first, then the query parameter (EventSource cannot send headers). */
static const char *lookup(struct evhttp_request *req, struct evkeyvalq *query, const char *header,
                          const char *param)
{
    const char *value = evhttp_find_header(evhttp_request_get_input_headers(req), header);
    return value != NULL ? value : evhttp_find_header(query, param);
}

static const char *bearer_credential(struct evhttp_request *req, struct evkeyvalq *query)
{
    const char *value = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    if (value == NULL)
        return evhttp_find_header(query, "access_token");
    if (evutil_ascii_strncasecmp(value, "Bearer ", 7) != 0)
        return "";
    value += 7;
    while (*value == ' ')
        value++;
    return value;
}

/* With authentication on, checks the credential and the consumer asked
 * for (NULL: the credential's own). Answers 401/403 itself and returns
 * false; on success *id holds the identity. */
static bool authorize(struct http_server *server, struct evhttp_request *req,
                      struct evkeyvalq *query, const char *consumer, struct auth_identity *id)
{
    const char *why = NULL;
    const char *credential = bearer_credential(req, query);
    if (credential == NULL) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate", "Bearer");
        send_error(req, 401, "Unauthorized", REJECT_UNAUTHORIZED, "missing_token",
                   "send Authorization: Bearer <token> or ?access_token=");
        return false;
    }
    enum auth_result r = auth_check(server->auth, credential, time(NULL), id, &why);
    if (r != AUTH_OK) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
                          r == AUTH_EXPIRED ? "Bearer error=\"invalid_token\", "
                                              "error_description=\"expired\""
                                            : "Bearer error=\"invalid_token\"");
        send_error(req, 401, "Unauthorized", REJECT_UNAUTHORIZED,
                   r == AUTH_EXPIRED ? "token_expired" : "invalid_token", why);
        return false;
    }
    if (consumer != NULL && strcmp(consumer, id->consumer_id) != 0) {
        auth_identity_clear(id);
        send_error(req, 403, "Forbidden", REJECT_FORBIDDEN, "wrong_consumer",
                   "this credential does not allow that consumer id");
        return false;
    }
    return true;
}

/* ---- GET /events ---- */

static void open_stream(struct http_server *server, struct evhttp_request *req,
                        struct evkeyvalq *query)
{
    const char *consumer = lookup(req, query, "X-Consumer-Id", "consumer_id");
    const char *why = NULL;
    int64_t last_id = 0;
    struct auth_identity id = {0};

    if (!cors_allow(server, req)) {
        send_error(req, 403, "Forbidden", REJECT_FORBIDDEN, "origin_not_allowed",
                   "this origin is not in CORS_ORIGINS");
        return;
    }
    if (server->auth != NULL) {
        if (!authorize(server, req, query, consumer, &id))
            return;
        consumer = id.consumer_id;
    }
    if (consumer == NULL) {
        send_error(req, 400, "Bad Request", REJECT_BAD_REQUEST, "missing_consumer_id",
                   "the X-Consumer-Id header (or consumer_id parameter) is required");
        goto done;
    }
    if (!request_consumer_id_valid(consumer, (size_t)server->cfg->consumer_id_max_bytes, &why)) {
        send_error(req, 400, "Bad Request", REJECT_BAD_REQUEST, "invalid_consumer_id", why);
        goto done;
    }
    enum last_event_id has_last =
        request_parse_last_event_id(lookup(req, query, "Last-Event-ID", "last_event_id"), &last_id);
    if (has_last == LAST_EVENT_ID_INVALID) {
        send_error(req, 400, "Bad Request", REJECT_BAD_REQUEST, "invalid_last_event_id",
                   "Last-Event-ID must be a non-negative integer");
        goto done;
    }
    if (sessions_count(server->sessions) >= (size_t)server->cfg->max_sessions) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", "5");
        send_error(req, 503, "Service Unavailable", REJECT_TOO_MANY_SESSIONS, "too_many_sessions",
                   "this instance is at its stream limit; retry later or elsewhere");
        goto done;
    }
    if (!session_start(server->sessions, req, consumer, has_last == LAST_EVENT_ID_PRESENT, last_id,
                       id.expires_at)) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", "5");
        send_error(req, 503, "Service Unavailable", REJECT_TOO_MANY_SESSIONS, "out_of_memory",
                   "cannot open a stream now; retry later");
    }
done:
    auth_identity_clear(&id);
}

static void handle_events(struct http_server *server, struct evhttp_request *req)
{
    struct evkeyvalq query;
    const char *text = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));

    if (evhttp_request_get_command(req) == EVHTTP_REQ_OPTIONS) {
        handle_preflight(server, req, "GET, OPTIONS");
        return;
    }
    if (!server->accepting) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", "1");
        send_error(req, 503, "Service Unavailable", REJECT_SHUTTING_DOWN, "shutting_down",
                   "this instance is shutting down; reconnect");
        return;
    }
    TAILQ_INIT(&query);
    if (text != NULL && evhttp_parse_query_str(text, &query) != 0) {
        send_error(req, 400, "Bad Request", REJECT_BAD_REQUEST, "invalid_query",
                   "the query string is malformed");
        return;
    }
    open_stream(server, req, &query);
    evhttp_clear_headers(&query);
}

/* ---- the demo page ---- */

static void handle_page(struct http_server *server, struct evhttp_request *req, const char *path)
{
    const struct demo_file *f = server->demo != NULL ? demo_find(server->demo, path) : NULL;
    if (f == NULL) {
        send_error(req, 404, "Not Found", REJECT_NOT_FOUND, "not_found", "no such path");
        return;
    }
    struct evkeyvalq *out = evhttp_request_get_output_headers(req);
    struct evbuffer *body = evbuffer_new();
    evhttp_add_header(out, "Content-Type", f->content_type);
    evhttp_add_header(out, "Cache-Control", "no-cache");
    evhttp_add_header(out, "X-Content-Type-Options", "nosniff");
    if (body != NULL && evhttp_request_get_command(req) == EVHTTP_REQ_GET)
        evbuffer_add_reference(body, f->bytes, f->len, NULL, NULL);
    evhttp_send_reply(req, 200, "OK", body);
    if (body != NULL)
        evbuffer_free(body);
}

/* A demo insert waiting for the database; the connection close callback
 * cancels it if the client leaves first (evhttp then frees the request). */
struct pending_insert {
    struct evhttp_request *req;
    struct demo_insert *insert;
};

static void on_insert_client_gone(struct evhttp_connection *evcon, void *arg)
{
    struct pending_insert *p = arg;
    (void)evcon;
    demo_insert_cancel(p->insert);
    free(p);
}

static void on_demo_inserted(void *arg, int64_t id, const char *error)
{
    struct pending_insert *p = arg;
    struct evhttp_connection *evcon = evhttp_request_get_connection(p->req);
    if (evcon != NULL)
        evhttp_connection_set_closecb(evcon, NULL, NULL);
    if (id > 0)
        send_json(p->req, 201, "Created", json_pack("{s:I}", "id", (json_int_t)id));
    else
        send_error(p->req, 503, "Service Unavailable", REJECT_BAD_REQUEST, "insert_failed", error);
    free(p);
}

static json_t *read_json_body(struct evhttp_request *req)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    const char *bytes = (const char *)evbuffer_pullup(in, (ev_ssize_t)len);
    return bytes != NULL ? json_loadb(bytes, len, 0, NULL) : NULL;
}

/* POST /demo/events {"consumer_id": "...", "type": "...", "payload": {...}} */
static void handle_demo_insert(struct http_server *server, struct evhttp_request *req)
{
    const char *why = NULL;
    struct auth_identity id = {0};
    json_t *body = NULL;
    char *payload = NULL;

    if (evhttp_request_get_command(req) == EVHTTP_REQ_OPTIONS) {
        handle_preflight(server, req, "POST, OPTIONS");
        return;
    }
    if (!server->cfg->demo) {
        send_error(req, 404, "Not Found", REJECT_NOT_FOUND, "demo_disabled",
                   "test inserts are off; start the service with DEMO=1");
        return;
    }
    if (!cors_allow(server, req)) {
        send_error(req, 403, "Forbidden", REJECT_FORBIDDEN, "origin_not_allowed",
                   "this origin is not in CORS_ORIGINS");
        return;
    }
    body = read_json_body(req);
    const char *consumer = json_string_value(json_object_get(body, "consumer_id"));
    const char *type = json_string_value(json_object_get(body, "type"));
    json_t *payload_value = json_object_get(body, "payload");
    if (!json_is_object(body) || consumer == NULL || !json_is_object(payload_value)) {
        send_error(req, 400, "Bad Request", REJECT_BAD_REQUEST, "invalid_body",
                   "expected {\"consumer_id\": string, \"type\": string, \"payload\": object}");
        goto done;
    }
    if (server->auth != NULL) {
        struct evkeyvalq none;
        TAILQ_INIT(&none);
        if (!authorize(server, req, &none, consumer, &id))
            goto done;
    }
    if (!request_consumer_id_valid(consumer, (size_t)server->cfg->consumer_id_max_bytes, &why)) {
        send_error(req, 400, "Bad Request", REJECT_BAD_REQUEST, "invalid_consumer_id", why);
        goto done;
    }
    if (type == NULL || type[0] == '\0' || strpbrk(type, "\r\n") != NULL) {
        send_error(req, 400, "Bad Request", REJECT_BAD_REQUEST, "invalid_type",
                   "type must be a non-empty string without line breaks");
        goto done;
    }
    payload = json_dumps(payload_value, JSON_COMPACT);
    struct pending_insert *p = calloc(1, sizeof(*p));
    if (payload == NULL || p == NULL ||
        (p->insert = demo_insert(server->demo, consumer, type, payload, on_demo_inserted, p)) ==
            NULL) {
        free(p);
        send_error(req, 503, "Service Unavailable", REJECT_BAD_REQUEST, "out_of_memory",
                   "cannot insert now");
        goto done;
    }
    p->req = req;
    evhttp_connection_set_closecb(evhttp_request_get_connection(req), on_insert_client_gone, p);
done:
    free(payload);
    json_decref(body);
    auth_identity_clear(&id);
}

static void handle_healthz(struct http_server *server, struct evhttp_request *req)
{
    (void)server;
    send_json(req, 200, "OK", json_pack("{s:s}", "status", "ok"));
}

static void handle_readyz(struct http_server *server, struct evhttp_request *req)
{
    const char *reason = NULL;
    if (!server->accepting) {
        send_json(req, 503, "Service Unavailable",
                  json_pack("{s:s, s:s}", "status", "not_ready", "reason", "shutting down"));
        return;
    }
    if (!server->hooks.ready(server->hooks.arg, &reason)) {
        send_json(req, 503, "Service Unavailable",
                  json_pack("{s:s, s:s}", "status", "not_ready", "reason", reason));
        return;
    }
    send_json(req, 200, "OK", json_pack("{s:s}", "status", "ready"));
}

static void handle_metrics(struct http_server *server, struct evhttp_request *req)
{
    struct metrics_gauges gauges;
    struct evbuffer *out = evbuffer_new();
    if (out == NULL) {
        evhttp_send_error(req, 503, NULL);
        return;
    }
    memset(&gauges, 0, sizeof(gauges));
    server->hooks.gauges(server->hooks.arg, &gauges);
    metrics_render(out, &gauges);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "text/plain; version=0.0.4; charset=utf-8");
    evhttp_send_reply(req, 200, "OK", out);
    evbuffer_free(out);
}

static void handle_demo_page(struct http_server *server, struct evhttp_request *req)
{
    handle_page(server, req, evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req)));
}

static const struct route routes[] = {
    {"/events", ROUTE_GET | ROUTE_OPTIONS, "GET, OPTIONS", handle_events},
    {"/demo/events", ROUTE_POST | ROUTE_OPTIONS, "POST, OPTIONS", handle_demo_insert},
    {"/", ROUTE_GET | ROUTE_HEAD, "GET, HEAD", handle_demo_page},
    {"/index.html", ROUTE_GET | ROUTE_HEAD, "GET, HEAD", handle_demo_page},
    {"/app.js", ROUTE_GET | ROUTE_HEAD, "GET, HEAD", handle_demo_page},
    {"/style.css", ROUTE_GET | ROUTE_HEAD, "GET, HEAD", handle_demo_page},
    {"/healthz", ROUTE_GET | ROUTE_HEAD, "GET, HEAD", handle_healthz},
    {"/readyz", ROUTE_GET | ROUTE_HEAD, "GET, HEAD", handle_readyz},
    {"/metrics", ROUTE_GET | ROUTE_HEAD, "GET, HEAD", handle_metrics},
};

static int method_bit(enum evhttp_cmd_type type)
{
    switch (type) {
    case EVHTTP_REQ_GET:
        return ROUTE_GET;
    case EVHTTP_REQ_HEAD:
        return ROUTE_HEAD;
    case EVHTTP_REQ_POST:
        return ROUTE_POST;
    case EVHTTP_REQ_OPTIONS:
        return ROUTE_OPTIONS;
    default:
        return 0;
    }
}

static void on_request(struct evhttp_request *req, void *arg)
{
    struct http_server *server = arg;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;

    if (path == NULL || *path == '\0')
        path = "/";
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        if (strcmp(path, routes[i].path) != 0)
            continue;
        if ((method_bit(evhttp_request_get_command(req)) & routes[i].methods) == 0) {
            evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", routes[i].allow);
            send_error(req, 405, "Method Not Allowed", REJECT_METHOD, "method_not_allowed",
                       "this method is not allowed on this path");
            return;
        }
        routes[i].handler(server, req);
        return;
    }
    send_error(req, 404, "Not Found", REJECT_NOT_FOUND, "not_found", "no such path");
}

static void on_pass_end(evutil_socket_t fd, short what, void *arg)
{
    struct http_server *server = arg;
    (void)fd;
    (void)what;
    server->accepted_in_pass = 0;
    if (server->accepting && !evtimer_pending(server->resume_ev, NULL))
        evconnlistener_enable(server->listener);
}

/* evhttp asks for a bufferevent for every accepted connection: the one place
 * we see each accept, so it counts the pass. */
static struct bufferevent *on_new_connection(struct event_base *base, void *arg)
{
    struct http_server *server = arg;
    if (server->accepted_in_pass++ == 0)
        event_active(server->pass_ev, EV_TIMEOUT, 1);
    if (server->accepted_in_pass >= ACCEPTS_PER_PASS)
        evconnlistener_disable(server->listener);
    return bufferevent_socket_new(base, -1, 0);
}

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
    struct http_server *server = arg;
    (void)fd;
    (void)what;
    if (server->accepting)
        evconnlistener_enable(server->listener);
}

/* The listener's error callback receives the listener's user pointer, which
 * evhttp_bind_listener() replaced with the evhttp, so the server it belongs
 * to is found here. A process has one listening server. */
static struct http_server *accept_error_server;

/* accept() failed with something other than "try again": most often the
 * descriptor limit. Pause instead of spinning on a socket that stays
 * readable; connections closing meanwhile free descriptors. */
static void on_accept_error(struct evconnlistener *listener, void *arg)
{
    struct http_server *server = accept_error_server;
    (void)arg; /* evhttp's own pointer, not ours: see accept_error_server */
    int err = EVUTIL_SOCKET_ERROR();
    struct timeval pause = {0, ACCEPT_PAUSE_MS * 1000};

    evconnlistener_disable(listener);
    evtimer_add(server->resume_ev, &pause);
    if (server->accept_errors_logged++ % 100 == 0)
        log_warn("accept failed; pausing", "error=%s pause_ms=%d sessions=%zu",
                 evutil_socket_error_to_string(err), ACCEPT_PAUSE_MS,
                 sessions_count(server->sessions));
}

struct http_server *http_server_new(struct event_base *base, const struct config *cfg,
                                    struct sessions *sessions,
                                    const struct http_server_hooks *hooks, struct auth *auth,
                                    struct demo *demo)
{
    struct http_server *server = calloc(1, sizeof(*server));
    if (server == NULL)
        return NULL;
    server->base = base;
    server->cfg = cfg;
    server->sessions = sessions;
    server->hooks = *hooks;
    server->auth = auth;
    server->demo = demo;
    server->http = evhttp_new(base);
    server->resume_ev = evtimer_new(base, on_resume, server);
    server->pass_ev = event_new(base, -1, 0, on_pass_end, server);
    if (server->http == NULL || server->resume_ev == NULL || server->pass_ev == NULL) {
        http_server_free(server);
        return NULL;
    }
    evhttp_set_gencb(server->http, on_request, server);
    evhttp_set_bevcb(server->http, on_new_connection, server);
    evhttp_set_timeout(server->http, (int)cfg->request_timeout_seconds);
    evhttp_set_max_headers_size(server->http, (ev_ssize_t)cfg->max_header_bytes);
    evhttp_set_max_body_size(server->http, 64 * 1024);
    evhttp_set_allowed_methods(server->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                                 EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                                 EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
    return server;
}

bool http_server_listen(struct http_server *server)
{
    struct sockaddr_storage ss;
    int ss_len = (int)sizeof(ss);
    char spec[300];

    snprintf(spec, sizeof(spec),
             strchr(server->cfg->bind_address, ':') != NULL ? "[%s]:%lld" : "%s:%lld",
             server->cfg->bind_address, server->cfg->port);
    memset(&ss, 0, sizeof(ss));
    if (evutil_parse_sockaddr_port(spec, (struct sockaddr *)&ss, &ss_len) != 0) {
        log_error("invalid BIND_ADDRESS", "value=%s", server->cfg->bind_address);
        return false;
    }
    server->listener = evconnlistener_new_bind(server->base, NULL, NULL,
                                               LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
                                                   LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_DISABLED,
                                               LISTEN_BACKLOG, (struct sockaddr *)&ss, ss_len);
    if (server->listener == NULL) {
        log_error("cannot listen", "address=%s port=%lld error=%s", server->cfg->bind_address,
                  server->cfg->port, evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
        return false;
    }
    if (evhttp_bind_listener(server->http, server->listener) == NULL) {
        evconnlistener_free(server->listener);
        server->listener = NULL;
        log_error("cannot attach the listener", "port=%lld", server->cfg->port);
        return false;
    }
    accept_error_server = server;
    evconnlistener_set_error_cb(server->listener, on_accept_error);
    server->accepting = true;
    evconnlistener_enable(server->listener);
    log_info("http listening", "address=%s port=%lld", server->cfg->bind_address,
             server->cfg->port);
    return true;
}

void http_server_stop_accepting(struct http_server *server)
{
    server->accepting = false;
    if (server->listener != NULL)
        evconnlistener_disable(server->listener);
    event_del(server->resume_ev);
}

void http_server_free(struct http_server *server)
{
    if (server == NULL)
        return;
    if (server->http != NULL)
        evhttp_free(server->http); /* frees the bound listener too */
    if (server->resume_ev != NULL)
        event_free(server->resume_ev);
    if (server->pass_ev != NULL)
        event_free(server->pass_ev);
    if (accept_error_server == server)
        accept_error_server = NULL;
    free(server);
}
