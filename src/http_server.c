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
#include "http_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <jansson.h>

#include "log.h"
#include "request.h"

#define ACCEPTS_PER_PASS 256
#define ACCEPT_PAUSE_MS 250
#define LISTEN_BACKLOG 4096

struct http_server {
    struct event_base *base;
    const struct config *cfg;
    struct sessions *sessions;
    struct http_server_hooks hooks;
    struct evhttp *http;
    struct evconnlistener *listener;
    struct event *resume_ev;  /* re-enables accepting after a pass or a pause */
    struct event *pass_ev;    /* marks the end of an accept pass */
    unsigned accepted_in_pass;
    bool accepting;
    unsigned accept_errors_logged;
};

enum route_methods { ROUTE_GET = 1, ROUTE_HEAD = 2 };

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

static void handle_events(struct http_server *server, struct evhttp_request *req)
{
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    const char *consumer = evhttp_find_header(in, "X-Consumer-Id");
    const char *why = NULL;
    int64_t last_id = 0;

    if (!server->accepting) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", "1");
        send_error(req, 503, "Service Unavailable", REJECT_SHUTTING_DOWN, "shutting_down",
                   "this instance is shutting down; reconnect");
        return;
    }
    if (consumer == NULL) {
        send_error(req, 400, "Bad Request", REJECT_BAD_REQUEST, "missing_consumer_id",
                   "the X-Consumer-Id header is required");
        return;
    }
    if (!request_consumer_id_valid(consumer, (size_t)server->cfg->consumer_id_max_bytes, &why)) {
        send_error(req, 400, "Bad Request", REJECT_BAD_REQUEST, "invalid_consumer_id", why);
        return;
    }
    enum last_event_id has_last =
        request_parse_last_event_id(evhttp_find_header(in, "Last-Event-ID"), &last_id);
    if (has_last == LAST_EVENT_ID_INVALID) {
        send_error(req, 400, "Bad Request", REJECT_BAD_REQUEST, "invalid_last_event_id",
                   "Last-Event-ID must be a non-negative integer");
        return;
    }
    if (sessions_count(server->sessions) >= (size_t)server->cfg->max_sessions) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", "5");
        send_error(req, 503, "Service Unavailable", REJECT_TOO_MANY_SESSIONS, "too_many_sessions",
                   "this instance is at its stream limit; retry later or elsewhere");
        return;
    }
    if (!session_start(server->sessions, req, consumer, has_last == LAST_EVENT_ID_PRESENT,
                       last_id)) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", "5");
        send_error(req, 503, "Service Unavailable", REJECT_TOO_MANY_SESSIONS, "out_of_memory",
                   "cannot open a stream now; retry later");
    }
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

static const struct route routes[] = {
    {"/events", ROUTE_GET, "GET", handle_events},
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
                                    const struct http_server_hooks *hooks)
{
    struct http_server *server = calloc(1, sizeof(*server));
    if (server == NULL)
        return NULL;
    server->base = base;
    server->cfg = cfg;
    server->sessions = sessions;
    server->hooks = *hooks;
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

    snprintf(spec, sizeof(spec), strchr(server->cfg->bind_address, ':') != NULL ? "[%s]:%lld"
                                                                                : "%s:%lld",
             server->cfg->bind_address, server->cfg->port);
    memset(&ss, 0, sizeof(ss));
    if (evutil_parse_sockaddr_port(spec, (struct sockaddr *)&ss, &ss_len) != 0) {
        log_error("invalid BIND_ADDRESS", "value=%s", server->cfg->bind_address);
        return false;
    }
    server->listener = evconnlistener_new_bind(
        server->base, NULL, NULL,
        LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_DISABLED,
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
