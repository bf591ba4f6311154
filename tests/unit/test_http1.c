/* HTTP/1.1 request limits (net/http1.c over net/server.c): a real server on
 * loopback with MAX_HEADER_BYTES 512 and MAX_BODY_BYTES 16, and a client
 * that sends raw bytes, half-closes and reads the answer to the end. The
 * handler counts what reaches it and answers with the body's length. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "net/conn.h"
#include "net/exchange.h"
#include "net/server.h"
#include "ops/log.h"
#include "util/clock.h"

#define MAX_BODY 16

struct fixture {
    struct event_base *base;
    struct net_server *server;
    long long port;
    int requests;
    char paths[4][64];
    size_t body_lens[4];
    char answer[8192];
    size_t answer_len;
};

static void on_request(void *arg, struct exchange *x)
{
    struct fixture *fx = arg;
    if (fx->requests < 4) {
        snprintf(fx->paths[fx->requests], sizeof(fx->paths[0]), "%s", x->path);
        fx->body_lens[fx->requests] = x->body_len;
    }
    fx->requests++;
    char body[32];
    int n = snprintf(body, sizeof(body), "body=%zu", x->body_len);
    exchange_respond(x, 200, "text/plain", body, (size_t)n);
}

static int setup(void **state)
{
    signal(SIGPIPE, SIG_IGN);
    log_configure(LOG_FORMAT_LOGFMT, LOG_LEVEL_ERROR);
    struct fixture *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    fx->base = event_base_new();
    struct net_settings ns = {
        .max_connections = 16,
        .request_timeout_seconds = 5,
        .write_timeout_seconds = 5,
        .max_header_bytes = 512,
        .max_body_bytes = MAX_BODY,
        .h2_max_concurrent_streams = 8,
        .ws_max_message_bytes = 1024,
    };
    struct net_handler handler = {on_request, fx};
    fx->server = net_server_new(fx->base, &ns, NULL, &handler);
    assert_non_null(fx->server);
    /* A free port: bound, read back, released, then listened on. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sin);
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    close(fd);
    fx->port = ntohs(sin.sin_port);
    assert_true(net_server_listen(fx->server, "127.0.0.1", fx->port));
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    net_server_free(fx->server);
    event_base_free(fx->base);
    free(fx);
    return 0;
}

/* Sends request, half-closes, and reads until the server closes (or 5 s). */
static const char *exchange_raw(struct fixture *fx, const char *request, size_t len)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET,
                              .sin_port = htons((uint16_t)fx->port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(send(fd, request, len, 0), (ssize_t)len);
    shutdown(fd, SHUT_WR);
    evutil_make_socket_nonblocking(fd);
    fx->answer_len = 0;
    int64_t deadline = clock_monotonic_ms() + 5000;
    for (;;) {
        event_base_loop(fx->base, EVLOOP_NONBLOCK);
        ssize_t n =
            recv(fd, fx->answer + fx->answer_len, sizeof(fx->answer) - 1 - fx->answer_len, 0);
        if (n > 0)
            fx->answer_len += (size_t)n;
        else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
            break;
        if (clock_monotonic_ms() > deadline)
            fail_msg("no end of answer within 5 s");
        usleep(1000);
    }
    close(fd);
    fx->answer[fx->answer_len] = '\0';
    return fx->answer;
}

static const char *exchange_text(struct fixture *fx, const char *request)
{
    return exchange_raw(fx, request, strlen(request));
}

static int count_status(const char *answer, const char *status_line)
{
    int n = 0;
    for (const char *p = answer; (p = strstr(p, status_line)) != NULL; p++)
        n++;
    return n;
}

static void body__within_limit__dispatched(void **state)
{
    struct fixture *fx = *state;
    const char *a = exchange_text(fx, "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 16\r\n\r\n"
                                      "0123456789abcdef");
    assert_non_null(strstr(a, "HTTP/1.1 200 "));
    assert_non_null(strstr(a, "body=16"));
    assert_int_equal(fx->requests, 1);
}

static void body__content_length_over_limit__413_not_dispatched(void **state)
{
    struct fixture *fx = *state;
    /* The body bytes look like a second request: they must not become
     * one. */
    const char *a = exchange_text(fx, "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 38\r\n\r\n"
                                      "GET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_true(strncmp(a, "HTTP/1.1 413 ", 13) == 0);
    assert_non_null(strstr(a, "body_too_large"));
    assert_int_equal(fx->requests, 0);
    assert_int_equal(count_status(a, "HTTP/1.1 "), 1);
}

static void body__chunked_over_limit__413_not_dispatched(void **state)
{
    struct fixture *fx = *state;
    const char *a = exchange_text(fx, "POST /p HTTP/1.1\r\nHost: h\r\n"
                                      "Transfer-Encoding: chunked\r\n\r\n"
                                      "a\r\n0123456789\r\na\r\n0123456789\r\n0\r\n\r\n");
    assert_true(strncmp(a, "HTTP/1.1 413 ", 13) == 0);
    assert_int_equal(fx->requests, 0);
}

static void body__chunked_within_limit__joined(void **state)
{
    struct fixture *fx = *state;
    const char *a = exchange_text(fx, "POST /p HTTP/1.1\r\nHost: h\r\n"
                                      "Transfer-Encoding: chunked\r\n\r\n"
                                      "8\r\n01234567\r\n8\r\n01234567\r\n0\r\n\r\n");
    assert_non_null(strstr(a, "body=16"));
    assert_int_equal(fx->requests, 1);
}

static void head__over_max_header_bytes__431(void **state)
{
    struct fixture *fx = *state;
    char request[1024];
    char value[600];
    memset(value, 'v', sizeof(value) - 1);
    value[sizeof(value) - 1] = '\0';
    snprintf(request, sizeof(request), "GET / HTTP/1.1\r\nHost: h\r\nX-Big: %s\r\n\r\n", value);
    const char *a = exchange_text(fx, request);
    assert_true(strncmp(a, "HTTP/1.1 431 ", 13) == 0);
    assert_non_null(strstr(a, "header_too_large"));
    assert_int_equal(fx->requests, 0);
}

static void head__control_bytes__400(void **state)
{
    struct fixture *fx = *state;
    static const char nul[] = "GET / HTTP/1.1\r\nHost: h\r\nX-Consumer-Id: a\0b\r\n\r\n";
    const char *a = exchange_raw(fx, nul, sizeof(nul) - 1);
    assert_true(strncmp(a, "HTTP/1.1 400 ", 13) == 0);
    a = exchange_text(fx, "GET / HTTP/1.1\r\nHost: h\r\nX-Consumer-Id: a\x7f"
                          "b\r\n\r\n");
    assert_true(strncmp(a, "HTTP/1.1 400 ", 13) == 0);
    a = exchange_text(fx, "GET /\x01 HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_true(strncmp(a, "HTTP/1.1 400 ", 13) == 0);
    assert_int_equal(fx->requests, 0);
}

static void target__absolute_form_without_path__400_not_dispatched(void **state)
{
    struct fixture *fx = *state;
    /* Found by fuzz_server: this reached the handler with no path. */
    const char *a = exchange_text(fx, "GET http://example.com HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_true(strncmp(a, "HTTP/1.1 400 ", 13) == 0);
    a = exchange_text(fx, "GET *x HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_true(strncmp(a, "HTTP/1.1 400 ", 13) == 0);
    assert_int_equal(fx->requests, 0);
    a = exchange_text(fx, "GET http://example.com/ok?a=1 HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_true(strncmp(a, "HTTP/1.1 200 ", 13) == 0);
    assert_string_equal(fx->paths[0], "/ok");
}

static void pipelined__answered_in_order(void **state)
{
    struct fixture *fx = *state;
    const char *a = exchange_text(fx, "GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
                                      "POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nxyz"
                                      "GET /c HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_int_equal(fx->requests, 3);
    assert_string_equal(fx->paths[0], "/a");
    assert_string_equal(fx->paths[1], "/b");
    assert_string_equal(fx->paths[2], "/c");
    assert_int_equal(fx->body_lens[1], 3);
    assert_int_equal(count_status(a, "HTTP/1.1 200 "), 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(body__within_limit__dispatched, setup, teardown),
        cmocka_unit_test_setup_teardown(body__content_length_over_limit__413_not_dispatched, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(body__chunked_over_limit__413_not_dispatched, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(body__chunked_within_limit__joined, setup, teardown),
        cmocka_unit_test_setup_teardown(head__over_max_header_bytes__431, setup, teardown),
        cmocka_unit_test_setup_teardown(head__control_bytes__400, setup, teardown),
        cmocka_unit_test_setup_teardown(target__absolute_form_without_path__400_not_dispatched,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(pipelined__answered_in_order, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
