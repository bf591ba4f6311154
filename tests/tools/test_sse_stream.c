/*
 * Unit tests for sse_stream. Each test feeds a response (often cut at every
 * possible point, or every pair of points) and compares a transcript of the
 * callbacks with the expected one, so a split anywhere must not change what
 * is reported. Error messages are compared without their byte offset, which
 * depends on where the input was cut.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sse_stream.h"

#define TRANSCRIPT_BYTES (64 * 1024)
#define SHOWN_DATA_BYTES 120

struct rec {
    char text[TRANSCRIPT_BYTES];
    size_t len;
    int events;
    int stop_after_events; /* 0: never stop */
    bool stop_at_headers;
};

static void say(struct rec *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void say(struct rec *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(r->text + r->len, sizeof(r->text) - r->len, fmt, ap);
    va_end(ap);
    assert_true(n >= 0 && (size_t)n < sizeof(r->text) - r->len);
    r->len += (size_t)n;
}

/* Data as C-like text (\n, \r, \0 visible); long data by length only. */
static void say_data(struct rec *r, const char *data, size_t len)
{
    if (len > SHOWN_DATA_BYTES) {
        say(r, "<%zu bytes>", len);
        return;
    }
    for (size_t i = 0; i < len; i++) {
        if (data[i] == '\n')
            say(r, "\\n");
        else if (data[i] == '\r')
            say(r, "\\r");
        else if (data[i] == '\0')
            say(r, "\\0");
        else
            say(r, "%c", data[i]);
    }
}

static const char *framing_name(enum sse_framing f)
{
    static const char *const names[] = {"none", "chunked", "length", "close"};
    return names[f];
}

static bool on_headers(void *arg, const struct sse_response *resp)
{
    struct rec *r = arg;
    say(r, "headers HTTP/1.%d %d [%s] type=[%s] framing=%s sse=%d\n", resp->http_minor,
        resp->status, resp->reason, resp->content_type, framing_name(resp->framing),
        resp->event_stream);
    return !r->stop_at_headers;
}

static bool on_event(void *arg, const char *id, const char *type, const char *data, size_t len)
{
    struct rec *r = arg;
    say(r, "event id=[%s] type=[%s] data=[", id, type);
    say_data(r, data, len);
    say(r, "]\n");
    r->events++;
    return r->stop_after_events == 0 || r->events < r->stop_after_events;
}

static bool on_comment(void *arg, const char *text, size_t len)
{
    struct rec *r = arg;
    say(r, "comment [%.*s]\n", (int)len, text);
    return true;
}

static bool on_retry(void *arg, uint64_t ms)
{
    say(arg, "retry %llu\n", (unsigned long long)ms);
    return true;
}

static bool on_body_end(void *arg, const char *body, size_t len, bool truncated)
{
    struct rec *r = arg;
    if (body == NULL) {
        say(r, "end\n");
        return true;
    }
    say(r, "end body=[");
    say_data(r, body, len);
    say(r, "] truncated=%d\n", truncated);
    return true;
}

static const struct sse_callbacks callbacks = {
    .on_headers = on_headers,
    .on_event = on_event,
    .on_comment = on_comment,
    .on_retry = on_retry,
    .on_body_end = on_body_end,
};

static const char *result_name(enum sse_result res)
{
    static const char *const names[] = {"more", "end", "stopped", "error", "truncated"};
    return names[res];
}

/* Records the outcome; error messages lose their "(near byte N)" part. */
static void say_result(struct rec *r, const struct sse_stream *s, enum sse_result res)
{
    say(r, "%s", result_name(res));
    if (res == SSE_ERROR || res == SSE_TRUNCATED) {
        const char *msg = sse_stream_error(s);
        const char *cut = strstr(msg, " (near byte");
        if (cut == NULL)
            cut = strstr(msg, " (after ");
        say(r, ": %.*s", (int)(cut != NULL ? cut - msg : (ptrdiff_t)strlen(msg)), msg);
    }
}

struct run {
    const struct sse_limits *limits; /* NULL: defaults */
    bool finish;                     /* call sse_stream_finish() at the end */
    bool stop_at_headers;
    int stop_after_events;
};

/* Feeds in[0..len) in pieces cut at cuts[] (ascending), then finishes if
 * asked; the transcript ends with the last result. */
static void run_cuts(struct rec *r, const struct run *how, const char *in, size_t len,
                     const size_t *cuts, size_t ncuts)
{
    struct sse_stream s;
    enum sse_result res = SSE_MORE;
    size_t at = 0;

    memset(r, 0, sizeof(*r));
    r->stop_at_headers = how->stop_at_headers;
    r->stop_after_events = how->stop_after_events;
    sse_stream_init(&s, how->limits, &callbacks, r);
    for (size_t i = 0; i <= ncuts; i++) {
        size_t to = i < ncuts ? cuts[i] : len;
        res = sse_stream_feed(&s, in + at, to - at);
        at = to;
    }
    if (how->finish)
        res = sse_stream_finish(&s);
    say_result(r, &s, res);
    sse_stream_release(&s);
}

static const char *run_text(struct rec *r, const struct run *how, const char *in, size_t len)
{
    run_cuts(r, how, in, len, NULL, 0);
    return r->text;
}

/* Asserts that cutting in[] at every point and every pair of points (or
 * only every point when pairs is false) gives the transcript of one piece,
 * and that feeding one byte at a time does too. */
static void assert_split_invariant(const struct run *how, const char *in, size_t len, bool pairs)
{
    static struct rec whole, cut;
    run_text(&whole, how, in, len);
    for (size_t i = 0; i <= len; i++) {
        run_cuts(&cut, how, in, len, &i, 1);
        if (strcmp(whole.text, cut.text) != 0)
            fail_msg("cut at %zu:\n%s\nwhole:\n%s", i, cut.text, whole.text);
        for (size_t j = i; pairs && j <= len; j++) {
            size_t two[2] = {i, j};
            run_cuts(&cut, how, in, len, two, 2);
            if (strcmp(whole.text, cut.text) != 0)
                fail_msg("cuts at %zu,%zu:\n%s\nwhole:\n%s", i, j, cut.text, whole.text);
        }
    }
    size_t *every = malloc(len * sizeof(*every));
    assert_non_null(every);
    for (size_t i = 0; i < len; i++)
        every[i] = i;
    run_cuts(&cut, how, in, len, every, len);
    free(every);
    assert_string_equal(whole.text, cut.text);
}

#define S(lit) lit, sizeof(lit) - 1

static const struct run plain = {0};
static const struct run finishing = {.finish = true};

/* As event-piper sends it (libevent evhttp, HTTP/1.1, chunked). */
static const char realistic[] = "HTTP/1.1 200 OK\r\n"
                                "Content-Type: text/event-stream\r\n"
                                "Cache-Control: no-cache\r\n"
                                "X-Accel-Buffering: no\r\n"
                                "Transfer-Encoding: chunked\r\n"
                                "Date: Tue, 24 Nov 2026 18:31:56 GMT\r\n"
                                "\r\n"
                                "d\r\nretry: 2000\n\n\r\n"
                                "57\r\nid: 1\nevent: insert\ndata: {\"n\":0.1,\"foo\":\"bar\"}\n\n"
                                "id: 2\nevent: big\ndata: {\"x\":\"caf\xc3\xa9\"}\n\n\r\n"
                                "18\r\n: heartbeat 1795545116\n\n\r\n"
                                "0\r\n\r\n";

static const char realistic_transcript[] =
    "headers HTTP/1.1 200 [OK] type=[text/event-stream] framing=chunked sse=1\n"
    "retry 2000\n"
    "event id=[1] type=[insert] data=[{\"n\":0.1,\"foo\":\"bar\"}]\n"
    "event id=[2] type=[big] data=[{\"x\":\"caf\xc3\xa9\"}]\n"
    "comment [heartbeat 1795545116]\n"
    "end\n"
    "end";

static void feed__realistic_chunked_response__reports_everything(void **state)
{
    struct rec r;
    (void)state;
    assert_string_equal(realistic_transcript, run_text(&r, &plain, S(realistic)));
}

static void feed__realistic_chunked_response_cut_anywhere__same_transcript(void **state)
{
    (void)state;
    assert_split_invariant(&plain, S(realistic), true);
}

static bool copy_head(void *arg, const struct sse_response *resp)
{
    struct rec *r = arg;
    assert_int_equal(strlen(resp->head), resp->head_len);
    say(r, "%s", resp->head);
    return false;
}

static void feed__headers__raw_head_available(void **state)
{
    static const struct sse_callbacks head_only = {.on_headers = copy_head};
    struct sse_stream s;
    struct rec r = {0};
    (void)state;
    sse_stream_init(&s, NULL, &head_only, &r);
    assert_int_equal(SSE_STOPPED, sse_stream_feed(&s, S(realistic)));
    assert_string_equal("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                        "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\n"
                        "Transfer-Encoding: chunked\r\nDate: Tue, 24 Nov 2026 18:31:56 GMT\r\n",
                        r.text);
    sse_stream_release(&s);
}

static const char http10[] = "HTTP/1.0 200 OK\r\n"
                             "Content-Type: text/event-stream\r\n"
                             "Cache-Control: no-cache\r\n"
                             "\r\n"
                             "retry: 2000\n\n"
                             "id: 1\nevent: insert\ndata: {\"v\":1}\n\n"
                             ": heartbeat 1795545118\n\n";

static void finish__close_delimited_http10__ends_at_close(void **state)
{
    struct rec r;
    struct sse_limits limits;
    (void)state;
    sse_limits_default(&limits);
    limits.request_http10 = true;
    struct run how = {.limits = &limits, .finish = true};
    assert_string_equal("headers HTTP/1.0 200 [OK] type=[text/event-stream] framing=close sse=1\n"
                        "retry 2000\n"
                        "event id=[1] type=[insert] data=[{\"v\":1}]\n"
                        "comment [heartbeat 1795545118]\n"
                        "end\n"
                        "end",
                        run_text(&r, &how, S(http10)));
    assert_split_invariant(&how, S(http10), true);
}

static void feed__close_delimited_without_finish__more(void **state)
{
    struct rec r;
    (void)state;
    run_text(&r, &plain, S(http10));
    assert_non_null(strstr(r.text, "comment [heartbeat 1795545118]\nmore"));
}

static void feed__content_length_event_stream__ends_at_length(void **state)
{
    static const char in[] = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                             "Content-Length: 15\r\n\r\nid: 7\ndata: x\n\n";
    struct rec r;
    (void)state;
    assert_string_equal("headers HTTP/1.1 200 [OK] type=[text/event-stream] framing=length sse=1\n"
                        "event id=[7] type=[message] data=[x]\n"
                        "end\n"
                        "end",
                        run_text(&r, &plain, S(in)));
    assert_split_invariant(&plain, S(in), true);
}

#define SSE_HEAD "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n"

/* Runs an SSE body over HTTP/1.1 close-delimited framing, finishing. */
static const char *run_body(struct rec *r, const char *body, size_t len)
{
    static char in[8192];
    assert_true(sizeof(SSE_HEAD) - 1 + len <= sizeof(in));
    memcpy(in, SSE_HEAD, sizeof(SSE_HEAD) - 1);
    memcpy(in + sizeof(SSE_HEAD) - 1, body, len);
    run_text(r, &finishing, in, sizeof(SSE_HEAD) - 1 + len);
    const char *events = strchr(r->text, '\n');
    return events != NULL ? events + 1 : r->text; /* without the headers line */
}

static void body_split_invariant(const char *body, size_t len)
{
    static char in[8192];
    memcpy(in, SSE_HEAD, sizeof(SSE_HEAD) - 1);
    memcpy(in + sizeof(SSE_HEAD) - 1, body, len);
    assert_split_invariant(&finishing, in, sizeof(SSE_HEAD) - 1 + len, true);
}

static void feed__multi_line_data__joined_with_lf(void **state)
{
    static const char body[] = "data: one\ndata: two\ndata:\ndata:  four\n\n";
    struct rec r;
    (void)state;
    assert_string_equal("event id=[] type=[message] data=[one\\ntwo\\n\\n four]\nend\nend",
                        run_body(&r, S(body)));
}

static const char lf_body[] = "retry: 10\nid: 1\nevent: a\ndata: x\ndata: y\n\n: c\n\n"
                              "id: 2\ndata: z\n\n";
static const char lf_expected[] = "retry 10\n"
                                  "event id=[1] type=[a] data=[x\\ny]\n"
                                  "comment [c]\n"
                                  "event id=[2] type=[message] data=[z]\n"
                                  "end\nend";

static void feed__cr_only_line_endings__same_as_lf(void **state)
{
    static const char body[] = "retry: 10\rid: 1\revent: a\rdata: x\rdata: y\r\r: c\r\r"
                               "id: 2\rdata: z\r\r";
    struct rec r;
    (void)state;
    assert_string_equal(lf_expected, run_body(&r, S(body)));
    body_split_invariant(S(body));
}

static void feed__crlf_line_endings__same_as_lf(void **state)
{
    static const char body[] = "retry: 10\r\nid: 1\r\nevent: a\r\ndata: x\r\ndata: y\r\n\r\n"
                               ": c\r\n\r\nid: 2\r\ndata: z\r\n\r\n";
    struct rec r;
    (void)state;
    assert_string_equal(lf_expected, run_body(&r, S(body)));
    body_split_invariant(S(body));
}

static void feed__mixed_line_endings__each_break_counted_once(void **state)
{
    /* "\r\r\n" is a CR break then a CRLF break: a blank line. */
    static const char body[] = "retry: 10\r\nid: 1\revent: a\ndata: x\r\ndata: y\r\r\n: c\n\r"
                               "id: 2\r\ndata: z\n\r\n";
    struct rec r;
    (void)state;
    assert_string_equal(lf_expected, run_body(&r, S(body)));
    body_split_invariant(S(body));
}

static void feed__lf_line_endings__reference(void **state)
{
    struct rec r;
    (void)state;
    assert_string_equal(lf_expected, run_body(&r, S(lf_body)));
    body_split_invariant(S(lf_body));
}

static void feed__comments__reported_without_colon_and_one_space(void **state)
{
    static const char body[] = ": heartbeat 1\n:no space\n:  two spaces\n:\n\n";
    struct rec r;
    (void)state;
    assert_string_equal(
        "comment [heartbeat 1]\ncomment [no space]\ncomment [ two spaces]\ncomment []\nend\nend",
        run_body(&r, S(body)));
}

static void feed__retry__reported_in_milliseconds(void **state)
{
    static const char body[] = "retry: 0\nretry:2500\nretry: 123456789012345678\n";
    struct rec r;
    (void)state;
    assert_string_equal("retry 0\nretry 2500\nretry 123456789012345678\nend\nend",
                        run_body(&r, S(body)));
}

static void feed__bad_retry__error(void **state)
{
    static const char *const bodies[] = {"retry: 1s\n", "retry: -1\n",
                                         "retry:\n",    "retry\n",
                                         "retry:  5\n", "retry: 1234567890123456789\n"};
    struct rec r;
    (void)state;
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        const char *got = run_body(&r, bodies[i], strlen(bodies[i]));
        if (strstr(got, "error: retry value") != got)
            fail_msg("%s gave %s", bodies[i], got);
    }
}

static void feed__event_without_data__not_dispatched_but_id_kept(void **state)
{
    static const char body[] = "id: 5\nevent: nothing\n\ndata: x\n\nid\ndata: y\n\n";
    struct rec r;
    (void)state;
    assert_string_equal("event id=[5] type=[message] data=[x]\n"
                        "event id=[] type=[message] data=[y]\nend\nend",
                        run_body(&r, S(body)));
}

static void last_event_id__after_id_only_block__returns_id(void **state)
{
    static const char in[] = SSE_HEAD "id: 41\ndata: a\n\nid: 42\n\n";
    struct sse_stream s;
    struct rec r = {0};
    (void)state;
    sse_stream_init(&s, NULL, &callbacks, &r);
    assert_int_equal(SSE_MORE, sse_stream_feed(&s, S(in)));
    assert_string_equal("42", sse_stream_last_event_id(&s));
    assert_int_equal(1, r.events);
    sse_stream_reset(&s);
    assert_string_equal("", sse_stream_last_event_id(&s));
    sse_stream_release(&s);
}

static void feed__events_without_id_line__reuse_last_id(void **state)
{
    static const char body[] = "data: a\n\nid: 9\ndata: b\n\ndata: c\n\n";
    struct rec r;
    (void)state;
    assert_string_equal("event id=[] type=[message] data=[a]\n"
                        "event id=[9] type=[message] data=[b]\n"
                        "event id=[9] type=[message] data=[c]\nend\nend",
                        run_body(&r, S(body)));
}

static void feed__field_forms__one_space_removed_name_alone_empty(void **state)
{
    static const char body[] = "event:a\ndata:x\n\nevent:  b\ndata\n\nevent:\ndata: \n\n";
    struct rec r;
    (void)state;
    assert_string_equal("event id=[] type=[a] data=[x]\n"
                        "event id=[] type=[ b] data=[]\n"
                        "event id=[] type=[message] data=[]\nend\nend",
                        run_body(&r, S(body)));
}

static void feed__data_with_nul__kept_with_length(void **state)
{
    static const char body[] = "data: a\0b\n\n";
    struct rec r;
    (void)state;
    assert_string_equal("event id=[] type=[message] data=[a\\0b]\nend\nend", run_body(&r, S(body)));
}

static void feed__nul_outside_data__error(void **state)
{
    static const struct {
        const char *body;
        size_t len;
        const char *expected;
    } cases[] = {
        {S("id: 1\0002\n"), "error: id line contains NUL"},
        {S("event: a\0\n"), "error: event line contains NUL"},
        {S(": a\0\n"), "error: comment line contains NUL"},
        {S("retry: \0\n"), "error: retry line contains NUL"},
        {S("da\0ta: x\n"), "error: unknown field 'da?ta'"},
    };
    struct rec r;
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_string_equal(cases[i].expected, run_body(&r, cases[i].body, cases[i].len));
}

static void feed__unknown_field__error(void **state)
{
    struct rec r;
    (void)state;
    assert_string_equal("error: unknown field 'foo'", run_body(&r, S("foo: bar\n")));
    assert_string_equal("error: unknown field 'Data'", run_body(&r, S("Data: x\n")));
    assert_string_equal("error: unknown field 'data '", run_body(&r, S("data : x\n")));
    assert_string_equal("error: unknown field 'verylong...'",
                        run_body(&r, S("verylongfieldname: x\n")));
    assert_string_equal("error: unknown field 'x'", run_body(&r, S("x\n")));
}

static void feed__line_limit__longer_line_rejected(void **state)
{
    struct sse_limits limits;
    struct rec r;
    (void)state;
    sse_limits_default(&limits);
    limits.max_line_bytes = 10;
    struct run how = {.limits = &limits, .finish = true};
    /* "data: 1234" is 10 bytes: accepted; one more is not. */
    assert_non_null(
        strstr(run_text(&r, &how, S(SSE_HEAD "data: 1234\n\n")), "data=[1234]\nend\nend"));
    assert_non_null(strstr(run_text(&r, &how, S(SSE_HEAD "data: 12345\n\n")),
                           "error: line longer than 10 bytes"));
    assert_non_null(strstr(run_text(&r, &how, S(SSE_HEAD ": 123456789\n\n")),
                           "error: line longer than 10 bytes"));
    assert_split_invariant(&how, S(SSE_HEAD "data: 1234\ndata: 12345\n\n"), false);
}

static void feed__event_limit__larger_event_rejected(void **state)
{
    struct sse_limits limits;
    struct rec r;
    (void)state;
    sse_limits_default(&limits);
    limits.max_event_bytes = 8; /* data plus one LF per line */
    struct run how = {.limits = &limits, .finish = true};
    assert_non_null(strstr(run_text(&r, &how, S(SSE_HEAD "data: abc\ndata: def\n\n")),
                           "data=[abc\\ndef]\nend\nend"));
    assert_non_null(strstr(run_text(&r, &how, S(SSE_HEAD "data: abc\ndata: defg\n\n")),
                           "error: event data longer than 8 bytes"));
}

static void feed__large_event__delivered_intact(void **state)
{
    size_t payload = 1024 * 1024;
    size_t len = sizeof(SSE_HEAD) - 1 + 6 + payload + 2;
    char *in = malloc(len);
    struct rec r;
    (void)state;
    assert_non_null(in);
    memcpy(in, SSE_HEAD "data: ", sizeof(SSE_HEAD) - 1 + 6);
    memset(in + sizeof(SSE_HEAD) - 1 + 6, 'z', payload);
    memcpy(in + len - 2, "\n\n", 2);
    size_t cuts[] = {100, 4096, 65536, 65537, 700000};
    run_cuts(&r, &finishing, in, len, cuts, sizeof(cuts) / sizeof(cuts[0]));
    assert_non_null(strstr(r.text, "event id=[] type=[message] data=[<1048576 bytes>]\nend\nend"));
    free(in);
}

static void feed__byte_order_mark__skipped(void **state)
{
    static const char body[] = "\xef\xbb\xbf"
                               "data: x\n\n";
    struct rec r;
    (void)state;
    assert_string_equal("event id=[] type=[message] data=[x]\nend\nend", run_body(&r, S(body)));
    body_split_invariant(S(body));
    assert_string_equal("error: unknown field (the line starts with a partial byte order mark)",
                        run_body(&r, S("\xef\xbb"
                                       "data: x\n\n")));
    /* Only at the start of the stream. */
    assert_non_null(strstr(run_body(&r, S("data: x\n\n\xef\xbb\xbf"
                                          "data: y\n\n")),
                           "error: unknown field"));
}

static void feed__valid_utf8__accepted_wherever_cut(void **state)
{
    /* 2, 3 and 4 byte sequences, the extremes of each range. */
    static const char body[] = "event: \xc2\x80\xdf\xbf\n"
                               "data: \xe0\xa0\x80\xed\x9f\xbf\xef\xbf\xbf\xf0\x90\x80\x80"
                               "\xf4\x8f\xbf\xbf\n\n";
    struct rec r;
    (void)state;
    assert_non_null(strstr(run_body(&r, S(body)), "end\nend"));
    body_split_invariant(S(body));
}

static void feed__invalid_utf8__error(void **state)
{
    static const struct {
        const char *body;
        size_t len;
    } cases[] = {
        {S("data: \xc0\x80\n\n")},         /* overlong */
        {S("data: \xe0\x9f\xbf\n\n")},     /* overlong */
        {S("data: \xed\xa0\x80\n\n")},     /* surrogate */
        {S("data: \xf4\x90\x80\x80\n\n")}, /* above U+10FFFF */
        {S("data: \xf5\x80\x80\x80\n\n")},
        {S("data: \x80\n\n")},  /* lone continuation */
        {S("data: \xc3\n\n")},  /* cut by the line break */
        {S(": \xe2\x82\n\n")},  /* in a comment */
        {S("event: \xff\n\n")}, /* in a type */
    };
    struct rec r;
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *got = run_body(&r, cases[i].body, cases[i].len);
        if (strstr(got, "error: invalid UTF-8 byte") != got)
            fail_msg("case %zu gave %s", i, got);
    }
}

/* Lines are scanned eight bytes at a time for line breaks and non-ASCII
 * bytes: each must be found at any offset within and across groups. */
static void feed__special_byte_at_every_offset__found(void **state)
{
    static const char *const bad[] = {"\xc0\x80", "\xed\xa0\x80", "\x80",
                                      "\xc3"
                                      "A",
                                      "\xff"};
    static const char *const good[] = {"\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80"};
    static const char letters[] = "abcdefghijklmnopqrstuvwxyz";
    char body[128], expected[128];
    struct rec r;
    (void)state;
    for (int at = 0; at < 20; at++) {
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            int len = snprintf(body, sizeof(body), "data: %.*s%sxyz\n\n", at, letters, bad[i]);
            const char *got = run_body(&r, body, (size_t)len);
            if (strstr(got, "error: invalid UTF-8 byte") != got)
                fail_msg("bad %zu at %d gave %s", i, at, got);
        }
        for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
            /* One line ending in LF, the next in CR LF, the last in CR. */
            int len = snprintf(body, sizeof(body), "data: %.*s%s\ndata: %.*s\r\ndata: %s%.*s\r\r",
                               at, letters, good[i], at, letters, good[i], 20 - at, letters);
            snprintf(expected, sizeof(expected), "%.*s%s\\n%.*s\\n%s%.*s]", at, letters, good[i],
                     at, letters, good[i], 20 - at, letters);
            const char *got = run_body(&r, body, (size_t)len);
            const char *data = strstr(got, "data=[");
            if (data == NULL || strncmp(data + 6, expected, strlen(expected)) != 0)
                fail_msg("good %zu at %d gave %s", i, at, got);
        }
    }
}

static void finish__partial_utf8_at_close__truncated(void **state)
{
    struct rec r;
    (void)state;
    assert_string_equal("truncated: connection closed inside a partial UTF-8 sequence",
                        run_body(&r, S("data: \xe2\x82")));
}

/* A chunked response with the given body framing after the head. */
static const char *run_chunked(struct rec *r, const char *chunks, size_t len)
{
    static char in[4096];
    static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                               "Transfer-Encoding: chunked\r\n\r\n";
    memcpy(in, head, sizeof(head) - 1);
    memcpy(in + sizeof(head) - 1, chunks, len);
    run_text(r, &finishing, in, sizeof(head) - 1 + len);
    const char *rest = strchr(r->text, '\n');
    return rest != NULL ? rest + 1 : r->text;
}

static void feed__chunk_sizes__hex_any_case_and_leading_zeros(void **state)
{
    static const char chunks[] = "000A\r\ndata: abc\n\r\n"
                                 "1\r\n\n\r\n"
                                 "0a\r\ndata: def\n\r\n"
                                 "1\r\n\n\r\n"
                                 "0000\r\n\r\n";
    struct rec r;
    (void)state;
    assert_string_equal("event id=[] type=[message] data=[abc]\n"
                        "event id=[] type=[message] data=[def]\nend\nend",
                        run_chunked(&r, S(chunks)));
}

static void feed__malformed_chunk_size__error(void **state)
{
    static const struct {
        const char *chunks;
        size_t len;
        const char *expected;
    } cases[] = {
        {S("g\r\n"), "error: bad chunk size: unexpected byte 0x67"},
        {S("\r\n"), "error: empty chunk size"},
        {S("-1\r\n"), "error: bad chunk size: unexpected byte 0x2d"},
        {S(" 5\r\n"), "error: bad chunk size: unexpected byte 0x20"},
        {S("5 \r\n"), "error: bad chunk size: unexpected byte 0x20"},
        {S("5;ext=1\r\n"), "error: bad chunk size: unexpected byte 0x3b"},
        {S("0x5\r\n"), "error: bad chunk size: unexpected byte 0x78"},
        {S("5\n"), "error: bad chunk size: unexpected byte 0x0a"},
        {S("5\rX"), "error: chunk size not followed by CRLF"},
        {S("00000000000000001\r\n"), "error: chunk size longer than 16 hex digits"},
    };
    struct rec r;
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_string_equal(cases[i].expected, run_chunked(&r, cases[i].chunks, cases[i].len));
}

static void feed__chunk_data_without_crlf__error(void **state)
{
    struct rec r;
    (void)state;
    assert_string_equal("error: chunk data not followed by CRLF",
                        run_chunked(&r, S("2\r\n: x\n\n\r\n")));
    assert_string_equal("error: chunk data not followed by CRLF", run_chunked(&r, S("2\r\n: \rX")));
    assert_string_equal("error: chunk data not followed by CRLF",
                        run_chunked(&r, S("2\r\n: \n\r\n")));
}

static void feed__bytes_after_last_chunk__error(void **state)
{
    struct rec r;
    (void)state;
    assert_string_equal("end\nerror: 1 bytes after the end of the response",
                        run_chunked(&r, S("0\r\n\r\nX")));
}

static void feed__trailers_after_last_chunk__accepted(void **state)
{
    struct rec r;
    (void)state;
    assert_string_equal("comment [x]\nend\nend",
                        run_chunked(&r, S("5\r\n: x\n\n\r\n0\r\nX-Trailer: yes\r\n\r\n")));
    assert_string_equal("error: header line without a name and colon",
                        run_chunked(&r, S("0\r\nbroken\r\n\r\n")));
}

static void feed__last_chunk_inside_event__error(void **state)
{
    struct rec r;
    (void)state;
    assert_string_equal("error: the event stream ended inside an event not ended by a blank line",
                        run_chunked(&r, S("8\r\ndata: x\n\r\n0\r\n\r\n")));
    assert_string_equal("error: the event stream ended inside a partial line",
                        run_chunked(&r, S("7\r\ndata: x\r\n0\r\n\r\n")));
}

static void finish__chunked_body_incomplete__truncated(void **state)
{
    struct rec r;
    (void)state;
    assert_string_equal("comment [x]\ntruncated: connection closed before the end of the body",
                        run_chunked(&r, S("5\r\n: x\n\n\r\n")));
    assert_string_equal("truncated: connection closed before the end of the body",
                        run_chunked(&r, S("5\r\n: x")));
    assert_string_equal("truncated: connection closed before the end of the body",
                        run_chunked(&r, S("0\r\n")));
}

static void finish__close_delimited_inside_event__truncated(void **state)
{
    struct rec r;
    (void)state;
    assert_string_equal("event id=[] type=[message] data=[a]\n"
                        "truncated: connection closed inside an event not ended by a blank line",
                        run_body(&r, S("data: a\n\ndata: b\n")));
    assert_string_equal("truncated: connection closed inside a partial line",
                        run_body(&r, S("data: b")));
    assert_string_equal("truncated: connection closed inside a partial UTF-8 sequence",
                        run_body(&r, S("\xef\xbb")));
    assert_string_equal("truncated: connection closed inside a partial line",
                        run_body(&r, S("\xef\xbb\xbf"
                                       "data")));
}

static void finish__inside_head__truncated(void **state)
{
    struct rec r;
    (void)state;
    assert_string_equal("truncated: connection closed before the response",
                        run_text(&r, &finishing, "", 0));
    assert_string_equal("truncated: connection closed inside the status line",
                        run_text(&r, &finishing, S("HTTP/1.1 200")));
    assert_string_equal("truncated: connection closed inside the response head",
                        run_text(&r, &finishing, S("HTTP/1.1 200 OK\r\nContent-Type: te")));
}

static void feed__chunked_and_http10__error(void **state)
{
    static const char chunked[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                                  "Transfer-Encoding: chunked\r\n\r\n";
    static const char chunked10[] = "HTTP/1.0 200 OK\r\nContent-Type: text/event-stream\r\n"
                                    "Transfer-Encoding: chunked\r\n\r\n";
    struct sse_limits limits;
    struct rec r;
    (void)state;
    sse_limits_default(&limits);
    limits.request_http10 = true;
    struct run how = {.limits = &limits};
    assert_string_equal("error: chunked Transfer-Encoding in reply to an HTTP/1.0 request",
                        run_text(&r, &how, S(chunked)));
    assert_string_equal("error: chunked Transfer-Encoding in an HTTP/1.0 response",
                        run_text(&r, &plain, S(chunked10)));
}

static void feed__bad_framing_headers__error(void **state)
{
    static const struct {
        const char *in;
        size_t len;
        const char *expected;
    } cases[] = {
        {S("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
         "error: unsupported Transfer-Encoding 'gzip, chunked'"},
        {S("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"),
         "error: both Transfer-Encoding and Content-Length"},
        {S("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n"),
         "error: more than one Content-Length header"},
        {S("HTTP/1.1 200 OK\r\nContent-Length: 5x\r\n\r\n"), "error: invalid Content-Length"},
        {S("HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n"), "error: invalid Content-Length"},
        {S("HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n"), "error: invalid Content-Length"},
        {S("HTTP/1.1 200 OK\r\nContent-Type: a\r\nContent-Type: b\r\n\r\n"),
         "error: more than one or an empty Content-Type header"},
    };
    struct rec r;
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_string_equal(cases[i].expected, run_text(&r, &plain, cases[i].in, cases[i].len));
}

static void feed__malformed_head__error(void **state)
{
    static const struct {
        const char *in;
        size_t len;
        const char *expected;
    } cases[] = {
        {S("HTTP/1.1 200\r\n\r\n"), "error: malformed status line 'HTTP/1.1 200'"},
        {S("HTTP/2.0 200 OK\r\n\r\n"), "error: malformed status line 'HTTP/2.0 200 OK'"},
        {S("HTTP/1.2 200 OK\r\n\r\n"), "error: malformed status line 'HTTP/1.2 200 OK'"},
        {S("HTTP/1.1 20 OK\r\n\r\n"), "error: malformed status line 'HTTP/1.1 20 OK'"},
        {S("HTTP/1.1 2000 OK\r\n\r\n"), "error: malformed status line 'HTTP/1.1 2000 OK'"},
        {S("HTTP/1.1 099 OK\r\n\r\n"), "error: malformed status line 'HTTP/1.1 099 OK'"},
        {S("http/1.1 200 OK\r\n\r\n"), "error: malformed status line 'http/1.1 200 OK'"},
        {S("HTTP/1.1 200 O\x01K\r\n\r\n"), "error: malformed status line 'HTTP/1.1 200 O?K'"},
        {S("HTTP/1.1 200 OK\n\r\n"), "error: line in the response head not ended by CRLF"},
        {S("HTTP/1.1 200 OK\r\nA: b\n\r\n"), "error: line in the response head not ended by CRLF"},
        {S("HTTP/1.1 200 OK\r\nA: b\rc\r\n\r\n"),
         "error: CR or NUL inside a line of the response head"},
        {S("HTTP/1.1 200 OK\r\nA: b\0c\r\n\r\n"),
         "error: CR or NUL inside a line of the response head"},
        {S("HTTP/1.1 200 OK\r\nNoColon\r\n\r\n"), "error: header line without a name and colon"},
        {S("HTTP/1.1 200 OK\r\n: v\r\n\r\n"), "error: header line without a name and colon"},
        {S("HTTP/1.1 200 OK\r\nA : v\r\n\r\n"), "error: invalid byte 0x20 in a header name"},
        {S("HTTP/1.1 200 OK\r\nA: v\r\n folded\r\n\r\n"),
         "error: obsolete line folding in the response head"},
        {S("HTTP/1.1 200 OK\r\nA: v\x7f\r\n\r\n"), "error: control character in a header value"},
        {S("HTTP/1.1 101 Switching Protocols\r\n\r\n"),
         "error: interim response 101 not supported"},
    };
    struct rec r;
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_string_equal(cases[i].expected, run_text(&r, &plain, cases[i].in, cases[i].len));
}

static void feed__head_over_limit__error(void **state)
{
    struct sse_limits limits;
    struct rec r;
    (void)state;
    sse_limits_default(&limits);
    limits.max_head_bytes = 40;
    struct run how = {.limits = &limits};
    assert_string_equal(
        "error: response head longer than 40 bytes",
        run_text(&r, &how, S("HTTP/1.1 200 OK\r\nX-Long: 0123456789012345\r\n\r\n")));
    assert_split_invariant(&how, S("HTTP/1.1 200 OK\r\nX-Long: 0123456789012345\r\n\r\n"), true);
}

static void feed__header_names_any_case__recognized(void **state)
{
    static const char in[] = "HTTP/1.1 200 OK\r\nCONTENT-TYPE:text/event-stream\r\n"
                             "transfer-ENCODING:   Chunked  \r\n\r\n"
                             "9\r\ndata: x\n\n\r\n0\r\n\r\n";
    struct rec r;
    (void)state;
    assert_string_equal("headers HTTP/1.1 200 [OK] type=[text/event-stream] framing=chunked sse=1\n"
                        "event id=[] type=[message] data=[x]\nend\nend",
                        run_text(&r, &plain, S(in)));
}

static void feed__content_type_variants__event_stream_or_not(void **state)
{
    static const struct {
        const char *type;
        bool sse;
    } cases[] = {
        {"text/event-stream", true},
        {"Text/Event-Stream", true},
        {"text/event-stream; charset=utf-8", true},
        {"text/event-stream ;charset=utf-8", true},
        {"text/event-streams", false},
        {"text/plain", false},
    };
    struct rec r;
    char in[256];
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int n =
            snprintf(in, sizeof(in), "HTTP/1.1 200 OK\r\nContent-Type: %s\r\n\r\n", cases[i].type);
        run_text(&r, &plain, in, (size_t)n);
        assert_non_null(strstr(r.text, cases[i].sse ? "sse=1" : "sse=0"));
    }
}

static void feed__error_response_with_content_length__body_reported(void **state)
{
    static const char in[] = "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n"
                             "Cache-Control: no-store\r\nDate: Tue, 24 Nov 2026 18:32:00 GMT\r\n"
                             "Content-Length: 81\r\n\r\n"
                             "{\"error\":\"missing_consumer_id\",\"message\":\"the X-Consumer-Id "
                             "header is required\"}\n";
    struct rec r;
    (void)state;
    assert_string_equal("headers HTTP/1.1 400 [Bad Request] type=[application/json] "
                        "framing=length sse=0\n"
                        "end body=[{\"error\":\"missing_consumer_id\",\"message\":\"the "
                        "X-Consumer-Id header is required\"}\\n] truncated=0\n"
                        "end",
                        run_text(&r, &plain, S(in)));
    assert_split_invariant(&plain, S(in), false);
}

static void finish__error_response_close_delimited__body_reported(void **state)
{
    static const char in[] =
        "HTTP/1.0 503 Service Unavailable\r\nContent-Type: application/json\r\n"
        "Retry-After: 5\r\n\r\n{\"error\":\"too_many_sessions\"}";
    struct rec r;
    (void)state;
    assert_string_equal("headers HTTP/1.0 503 [Service Unavailable] type=[application/json] "
                        "framing=close sse=0\n"
                        "end body=[{\"error\":\"too_many_sessions\"}] truncated=0\n"
                        "end",
                        run_text(&r, &finishing, S(in)));
}

static void feed__body_over_limit__kept_part_and_truncated(void **state)
{
    static const char in[] = "HTTP/1.1 404 Not Found\r\nContent-Length: 10\r\n\r\n0123456789";
    struct sse_limits limits;
    struct rec r;
    (void)state;
    sse_limits_default(&limits);
    limits.max_body_bytes = 4;
    struct run how = {.limits = &limits};
    assert_non_null(strstr(run_text(&r, &how, S(in)), "end body=[0123] truncated=1\nend"));
}

static void feed__200_not_event_stream__body_collected(void **state)
{
    static const char in[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 9\r\n"
                             "\r\ndata: x\n\n";
    struct rec r;
    (void)state;
    assert_non_null(strstr(run_text(&r, &plain, S(in)), "end body=[data: x\\n\\n] truncated=0"));
}

static void feed__no_body_statuses__end_at_headers(void **state)
{
    struct rec r;
    (void)state;
    assert_string_equal("headers HTTP/1.1 204 [No Content] type=[] framing=none sse=0\n"
                        "end body=[] truncated=0\nend",
                        run_text(&r, &plain, S("HTTP/1.1 204 No Content\r\n\r\n")));
    assert_string_equal("headers HTTP/1.1 500 [] type=[] framing=none sse=0\n"
                        "end body=[] truncated=0\nend",
                        run_text(&r, &plain, S("HTTP/1.1 500 \r\nContent-Length: 0\r\n\r\n")));
}

static void feed__callback_returns_false__stopped_and_sticky(void **state)
{
    struct sse_stream s;
    struct rec r = {0};
    (void)state;
    r.stop_after_events = 1;
    sse_stream_init(&s, NULL, &callbacks, &r);
    assert_int_equal(SSE_STOPPED, sse_stream_feed(&s, S(realistic)));
    assert_int_equal(1, r.events);
    assert_int_equal(SSE_STOPPED, sse_stream_feed(&s, S("more")));
    assert_int_equal(SSE_STOPPED, sse_stream_finish(&s));
    assert_int_equal(1, r.events);
    sse_stream_release(&s);

    struct run how = {.stop_at_headers = true};
    assert_string_equal("headers HTTP/1.1 200 [OK] type=[text/event-stream] framing=chunked sse=1\n"
                        "stopped",
                        run_text(&r, &how, S(realistic)));
}

static void feed__after_error__error_again(void **state)
{
    struct sse_stream s;
    struct rec r = {0};
    (void)state;
    sse_stream_init(&s, NULL, &callbacks, &r);
    assert_int_equal(SSE_ERROR, sse_stream_feed(&s, S(SSE_HEAD "bogus: 1\n")));
    const char *msg = sse_stream_error(&s);
    assert_non_null(strstr(msg, "unknown field 'bogus'"));
    assert_int_equal(SSE_ERROR, sse_stream_feed(&s, S("data: fine\n\n")));
    assert_int_equal(SSE_ERROR, sse_stream_finish(&s));
    assert_int_equal(0, r.events);
    sse_stream_release(&s);
}

static void reset__after_error__parses_next_response(void **state)
{
    struct sse_stream s;
    struct rec r = {0};
    (void)state;
    sse_stream_init(&s, NULL, &callbacks, &r);
    assert_int_equal(SSE_ERROR, sse_stream_feed(&s, S(SSE_HEAD "id: 3\nbogus\n")));
    sse_stream_reset(&s);
    assert_string_equal("", sse_stream_error(&s));
    assert_string_equal("", sse_stream_last_event_id(&s));
    memset(&r, 0, sizeof(r));
    assert_int_equal(SSE_END, sse_stream_feed(&s, S(realistic)));
    assert_string_equal(realistic_transcript, strcat(r.text, "end"));
    sse_stream_release(&s);
}

static void feed__error_message__names_byte_offset(void **state)
{
    struct sse_stream s;
    (void)state;
    sse_stream_init(&s, NULL, NULL, NULL);
    assert_int_equal(SSE_ERROR, sse_stream_feed(&s, S("HTTP/1.1 200 OK\r\nContent-Type: "
                                                      "text/event-stream\r\nTransfer-Encoding: "
                                                      "chunked\r\n\r\nZ")));
    assert_string_equal("bad chunk size: unexpected byte 0x5a (near byte 80)",
                        sse_stream_error(&s));
    sse_stream_release(&s);
}

static void feed__mutated_realistic_response__same_result_whole_or_byte_by_byte(void **state)
{
    static const char replacements[] = {'\0', '\r', '\n', ':', ' ', 'x', '0', '\xff'};
    static struct rec whole, bytes;
    char in[sizeof(realistic)];
    size_t len = sizeof(realistic) - 1;
    size_t every[sizeof(realistic)];
    (void)state;
    for (size_t i = 0; i < len; i++)
        every[i] = i;
    for (size_t at = 0; at < len; at++) {
        for (size_t k = 0; k < sizeof(replacements); k++) {
            memcpy(in, realistic, len);
            in[at] = replacements[k];
            run_cuts(&whole, &finishing, in, len, NULL, 0);
            run_cuts(&bytes, &finishing, in, len, every, len);
            if (strcmp(whole.text, bytes.text) != 0)
                fail_msg("byte %zu set to 0x%02x:\n%s\nwhole:\n%s", at,
                         (unsigned char)replacements[k], bytes.text, whole.text);
        }
    }
}

static void feed__error_mid_stream_cut_anywhere__same_events_then_error(void **state)
{
    static const char in[] = SSE_HEAD "id: 1\ndata: a\n\nid: 2\ndata: b\n\nretry: soon\n\n";
    struct rec r;
    (void)state;
    assert_non_null(strstr(run_text(&r, &finishing, S(in)),
                           "data=[b]\nerror: retry value 'soon' is not a number of milliseconds"));
    assert_split_invariant(&finishing, S(in), true);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(feed__realistic_chunked_response__reports_everything),
        cmocka_unit_test(feed__realistic_chunked_response_cut_anywhere__same_transcript),
        cmocka_unit_test(feed__headers__raw_head_available),
        cmocka_unit_test(finish__close_delimited_http10__ends_at_close),
        cmocka_unit_test(feed__close_delimited_without_finish__more),
        cmocka_unit_test(feed__content_length_event_stream__ends_at_length),
        cmocka_unit_test(feed__multi_line_data__joined_with_lf),
        cmocka_unit_test(feed__lf_line_endings__reference),
        cmocka_unit_test(feed__cr_only_line_endings__same_as_lf),
        cmocka_unit_test(feed__crlf_line_endings__same_as_lf),
        cmocka_unit_test(feed__mixed_line_endings__each_break_counted_once),
        cmocka_unit_test(feed__comments__reported_without_colon_and_one_space),
        cmocka_unit_test(feed__retry__reported_in_milliseconds),
        cmocka_unit_test(feed__bad_retry__error),
        cmocka_unit_test(feed__event_without_data__not_dispatched_but_id_kept),
        cmocka_unit_test(last_event_id__after_id_only_block__returns_id),
        cmocka_unit_test(feed__events_without_id_line__reuse_last_id),
        cmocka_unit_test(feed__field_forms__one_space_removed_name_alone_empty),
        cmocka_unit_test(feed__data_with_nul__kept_with_length),
        cmocka_unit_test(feed__nul_outside_data__error),
        cmocka_unit_test(feed__unknown_field__error),
        cmocka_unit_test(feed__line_limit__longer_line_rejected),
        cmocka_unit_test(feed__event_limit__larger_event_rejected),
        cmocka_unit_test(feed__large_event__delivered_intact),
        cmocka_unit_test(feed__byte_order_mark__skipped),
        cmocka_unit_test(feed__valid_utf8__accepted_wherever_cut),
        cmocka_unit_test(feed__invalid_utf8__error),
        cmocka_unit_test(feed__special_byte_at_every_offset__found),
        cmocka_unit_test(finish__partial_utf8_at_close__truncated),
        cmocka_unit_test(feed__chunk_sizes__hex_any_case_and_leading_zeros),
        cmocka_unit_test(feed__malformed_chunk_size__error),
        cmocka_unit_test(feed__chunk_data_without_crlf__error),
        cmocka_unit_test(feed__bytes_after_last_chunk__error),
        cmocka_unit_test(feed__trailers_after_last_chunk__accepted),
        cmocka_unit_test(feed__last_chunk_inside_event__error),
        cmocka_unit_test(finish__chunked_body_incomplete__truncated),
        cmocka_unit_test(finish__close_delimited_inside_event__truncated),
        cmocka_unit_test(finish__inside_head__truncated),
        cmocka_unit_test(feed__chunked_and_http10__error),
        cmocka_unit_test(feed__bad_framing_headers__error),
        cmocka_unit_test(feed__malformed_head__error),
        cmocka_unit_test(feed__head_over_limit__error),
        cmocka_unit_test(feed__header_names_any_case__recognized),
        cmocka_unit_test(feed__content_type_variants__event_stream_or_not),
        cmocka_unit_test(feed__error_response_with_content_length__body_reported),
        cmocka_unit_test(finish__error_response_close_delimited__body_reported),
        cmocka_unit_test(feed__body_over_limit__kept_part_and_truncated),
        cmocka_unit_test(feed__200_not_event_stream__body_collected),
        cmocka_unit_test(feed__no_body_statuses__end_at_headers),
        cmocka_unit_test(feed__callback_returns_false__stopped_and_sticky),
        cmocka_unit_test(feed__after_error__error_again),
        cmocka_unit_test(reset__after_error__parses_next_response),
        cmocka_unit_test(feed__error_message__names_byte_offset),
        cmocka_unit_test(feed__mutated_realistic_response__same_result_whole_or_byte_by_byte),
        cmocka_unit_test(feed__error_mid_stream_cut_anywhere__same_events_then_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
