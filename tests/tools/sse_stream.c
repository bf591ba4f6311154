/*
 * A strict, incremental HTTP/1.x + SSE response parser (see sse_stream.h).
 *
 * Two state machines, one inside the other. The HTTP machine (state) reads
 * the head line by line into one buffer, then de-frames the body (chunked,
 * Content-Length or close-delimited) and passes body bytes on. The SSE
 * machine (line) turns body bytes into fields and events. Both are resumable
 * at any byte: every piece of state lives in struct sse_stream, and each step
 * consumes what it can (a span where possible, so long data lines are copied
 * with memcpy rather than byte by byte) and says how much it took.
 *
 * Errors are sticky: fail() records the message and moves to HTTP_ERROR,
 * and every loop stops as soon as the state is no longer a live one. A
 * callback returning false does the same with HTTP_STOPPED.
 */
#include "sse_stream.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define BUF_FIRST_ALLOC 64
#define CHUNK_SIZE_MAX_DIGITS 16
#define RETRY_MAX_DIGITS 18

enum http_state {
    HTTP_STATUS_LINE,
    HTTP_HEADERS,
    HTTP_BODY_LENGTH,
    HTTP_BODY_CLOSE,
    HTTP_CHUNK_SIZE,
    HTTP_CHUNK_SIZE_LF,
    HTTP_CHUNK_DATA,
    HTTP_CHUNK_DATA_CR,
    HTTP_CHUNK_DATA_LF,
    HTTP_TRAILERS,
    /* terminal states: nothing more is parsed */
    HTTP_DONE,
    HTTP_STOPPED,
    HTTP_ERROR,
};

enum line_state { LINE_BOM, LINE_START, LINE_FIELD, LINE_VALUE_START, LINE_VALUE };

enum sse_field { FIELD_NONE, FIELD_DATA, FIELD_ID, FIELD_EVENT, FIELD_RETRY, FIELD_COMMENT };

static const char *const field_names[] = {
    [FIELD_NONE] = "",       [FIELD_DATA] = "data",   [FIELD_ID] = "id",
    [FIELD_EVENT] = "event", [FIELD_RETRY] = "retry", [FIELD_COMMENT] = "comment",
};

/* ---- buffers ---------------------------------------------------------- */

enum buf_status { BUF_OK, BUF_OVER_LIMIT, BUF_NO_MEMORY };

/* Appends n bytes, keeping a NUL after the content. Grows by doubling, never
 * beyond max content bytes. */
static enum buf_status buf_append(struct sse_buf *b, const char *bytes, size_t n)
{
    if (n > b->max - b->len)
        return BUF_OVER_LIMIT;
    size_t need = b->len + n + 1;
    if (need > b->cap) {
        size_t cap = b->cap > 0 ? b->cap : BUF_FIRST_ALLOC;
        while (cap < need)
            cap *= 2;
        if (cap > b->max + 1)
            cap = b->max + 1;
        char *p = realloc(b->p, cap);
        if (p == NULL)
            return BUF_NO_MEMORY;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, bytes, n);
    b->len += n;
    b->p[b->len] = '\0';
    return BUF_OK;
}

static void buf_clear(struct sse_buf *b)
{
    b->len = 0;
    if (b->p != NULL)
        b->p[0] = '\0';
}

static const char *buf_str(const struct sse_buf *b)
{
    return b->p != NULL ? b->p : "";
}

/* Keeps the memory of old, empties it and sets its limit. */
static void buf_adopt(struct sse_buf *b, const struct sse_buf *old, size_t max)
{
    *b = *old;
    b->max = max;
    buf_clear(b);
}

static void buf_free(struct sse_buf *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

/* ---- state and errors ------------------------------------------------- */

static bool alive(const struct sse_stream *s)
{
    return s->state < HTTP_DONE;
}

static void fail(struct sse_stream *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fail(struct sse_stream *s, const char *fmt, ...)
{
    char msg[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(s->error, sizeof(s->error), "%s (near byte %llu)", msg, (unsigned long long)s->seen);
    s->state = HTTP_ERROR;
}

/* Records a callback's verdict; false stops the parser. */
static bool verdict(struct sse_stream *s, bool go_on)
{
    if (!go_on && alive(s))
        s->state = HTTP_STOPPED;
    return go_on;
}

static bool append_or_fail(struct sse_stream *s, struct sse_buf *b, const char *bytes, size_t n,
                           const char *what)
{
    switch (buf_append(b, bytes, n)) {
    case BUF_OK:
        return true;
    case BUF_OVER_LIMIT:
        fail(s, "%s longer than %zu bytes", what, b->max);
        return false;
    case BUF_NO_MEMORY:
        fail(s, "out of memory for %s", what);
        return false;
    }
    return false;
}

/* Copies at most 40 bytes of p for a message, '?' for anything unprintable. */
static const char *printable(char *out, size_t size, const char *p, size_t n)
{
    size_t i = 0;
    for (; i < n && i + 1 < size && i < 40; i++)
        out[i] = (p[i] >= 0x20 && p[i] < 0x7f) ? p[i] : '?';
    out[i] = '\0';
    return out;
}

void sse_limits_default(struct sse_limits *limits)
{
    limits->max_head_bytes = 64 * 1024;
    limits->max_line_bytes = 4 * 1024 * 1024;
    limits->max_event_bytes = 4 * 1024 * 1024;
    limits->max_body_bytes = 64 * 1024;
    limits->request_http10 = false;
}

void sse_stream_init(struct sse_stream *s, const struct sse_limits *limits,
                     const struct sse_callbacks *cb, void *arg)
{
    struct sse_limits defaults;
    sse_limits_default(&defaults);
    memset(s, 0, sizeof(*s));
    s->limits = limits != NULL ? *limits : defaults;
    if (s->limits.max_head_bytes == 0)
        s->limits.max_head_bytes = defaults.max_head_bytes;
    if (s->limits.max_line_bytes == 0)
        s->limits.max_line_bytes = defaults.max_line_bytes;
    if (s->limits.max_event_bytes == 0)
        s->limits.max_event_bytes = defaults.max_event_bytes;
    if (s->limits.max_body_bytes == 0)
        s->limits.max_body_bytes = defaults.max_body_bytes;
    if (cb != NULL)
        s->cb = *cb;
    s->arg = arg;
    sse_stream_reset(s);
}

void sse_stream_reset(struct sse_stream *s)
{
    struct sse_stream old = *s;
    const struct sse_limits *l = &old.limits;

    memset(s, 0, sizeof(*s));
    s->limits = old.limits;
    s->cb = old.cb;
    s->arg = old.arg;
    buf_adopt(&s->head, &old.head, l->max_head_bytes);
    buf_adopt(&s->value, &old.value, l->max_line_bytes);
    buf_adopt(&s->data, &old.data, l->max_event_bytes);
    buf_adopt(&s->type, &old.type, l->max_line_bytes);
    buf_adopt(&s->last_id, &old.last_id, l->max_line_bytes);
    buf_adopt(&s->body, &old.body, l->max_body_bytes);
    s->state = HTTP_STATUS_LINE;
    s->line = LINE_BOM;
    s->resp.reason = s->reason;
    s->resp.content_type = s->content_type;
}

void sse_stream_release(struct sse_stream *s)
{
    buf_free(&s->head);
    buf_free(&s->value);
    buf_free(&s->data);
    buf_free(&s->type);
    buf_free(&s->last_id);
    buf_free(&s->body);
}

const char *sse_stream_error(const struct sse_stream *s)
{
    return s->error;
}

bool sse_stream_event_has_id(const struct sse_stream *s)
{
    return s->event_id;
}

const char *sse_stream_last_event_id(const struct sse_stream *s)
{
    return buf_str(&s->last_id);
}

/* ---- UTF-8 ------------------------------------------------------------ */

/* The benchmarks parse hundreds of thousands of events a second with this
 * parser on the same CPUs as the service, so its two byte-by-byte loops
 * look at eight bytes at a time where they can. */
static const uint64_t ONES = 0x0101010101010101u, HIGHS = 0x8080808080808080u;

/* Length of the ASCII run at p. */
static size_t ascii_prefix(const char *p, size_t n)
{
    size_t i = 0;
    for (uint64_t v; i + 8 <= n; i += 8) {
        memcpy(&v, p + i, sizeof(v));
        if ((v & HIGHS) != 0)
            break;
    }
    while (i < n && (unsigned char)p[i] < 0x80)
        i++;
    return i;
}

/* Length of the run at p before the first CR or LF. */
static size_t line_length(const char *p, size_t n)
{
    size_t i = 0;
    for (uint64_t v; i + 8 <= n; i += 8) {
        memcpy(&v, p + i, sizeof(v));
        uint64_t cr = v ^ (ONES * '\r'), lf = v ^ (ONES * '\n');
        if ((((cr - ONES) & ~cr) | ((lf - ONES) & ~lf)) & HIGHS)
            break;
    }
    while (i < n && p[i] != '\r' && p[i] != '\n')
        i++;
    return i;
}

/* Validates n more bytes of the SSE body, carrying a partial sequence over
 * from one call to the next. */
static bool utf8_ok(struct sse_stream *s, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s->utf8_need == 0) {
            i += ascii_prefix(p + i, n - i);
            if (i == n)
                break;
        }
        unsigned char b = (unsigned char)p[i];
        if (s->utf8_need > 0) {
            if (b < s->utf8_lo || b > s->utf8_hi)
                goto bad;
            s->utf8_lo = 0x80;
            s->utf8_hi = 0xbf;
            s->utf8_need--;
            continue;
        }
        if (b < 0x80)
            continue;
        s->utf8_lo = 0x80;
        s->utf8_hi = 0xbf;
        if (b >= 0xc2 && b <= 0xdf) {
            s->utf8_need = 1;
        } else if (b >= 0xe0 && b <= 0xef) {
            s->utf8_need = 2;
            if (b == 0xe0)
                s->utf8_lo = 0xa0; /* overlong */
            else if (b == 0xed)
                s->utf8_hi = 0x9f; /* surrogates */
        } else if (b >= 0xf0 && b <= 0xf4) {
            s->utf8_need = 3;
            if (b == 0xf0)
                s->utf8_lo = 0x90; /* overlong */
            else if (b == 0xf4)
                s->utf8_hi = 0x8f; /* above U+10FFFF */
        } else {
            goto bad;
        }
        continue;
    bad:
        fail(s, "invalid UTF-8 byte 0x%02x in the event stream", b);
        return false;
    }
    return true;
}

/* ---- SSE lines -------------------------------------------------------- */

static bool count_line(struct sse_stream *s, size_t n)
{
    s->line_len += n;
    if (s->line_len <= s->limits.max_line_bytes)
        return true;
    fail(s, "line longer than %zu bytes", s->limits.max_line_bytes);
    return false;
}

static void dispatch(struct sse_stream *s)
{
    s->in_event = false;
    if (s->data.len == 0) {
        buf_clear(&s->type);
        s->event_id = false;
        return;
    }
    s->data.len--; /* the LF after the last data line */
    s->data.p[s->data.len] = '\0';
    const char *type = s->type.len > 0 ? s->type.p : "message";
    bool go_on = s->cb.on_event == NULL ||
                 s->cb.on_event(s->arg, buf_str(&s->last_id), type, s->data.p, s->data.len);
    s->event_id = false;
    buf_clear(&s->data);
    buf_clear(&s->type);
    verdict(s, go_on);
}

static void end_retry(struct sse_stream *s)
{
    char shown[48];
    const char *v = buf_str(&s->value);
    uint64_t ms = 0;
    bool ok = s->value.len > 0 && s->value.len <= RETRY_MAX_DIGITS;
    for (size_t i = 0; ok && i < s->value.len; i++) {
        ok = v[i] >= '0' && v[i] <= '9';
        ms = ms * 10 + (uint64_t)(v[i] - '0');
    }
    if (!ok) {
        fail(s, "retry value '%s' is not a number of milliseconds",
             printable(shown, sizeof(shown), v, s->value.len));
        return;
    }
    verdict(s, s->cb.on_retry == NULL || s->cb.on_retry(s->arg, ms));
}

/* A field line is complete (c is its line break). */
static void end_line(struct sse_stream *s, char c)
{
    s->after_cr = c == '\r';
    s->line = LINE_START;
    switch (s->field) {
    case FIELD_DATA:
        append_or_fail(s, &s->data, "\n", 1, "event data");
        break;
    case FIELD_ID:
        s->event_id = true;
        buf_clear(&s->last_id);
        append_or_fail(s, &s->last_id, buf_str(&s->value), s->value.len, "id");
        break;
    case FIELD_EVENT:
        buf_clear(&s->type);
        append_or_fail(s, &s->type, buf_str(&s->value), s->value.len, "event type");
        break;
    case FIELD_RETRY:
        end_retry(s);
        break;
    case FIELD_COMMENT:
        verdict(s, s->cb.on_comment == NULL ||
                       s->cb.on_comment(s->arg, buf_str(&s->value), s->value.len));
        break;
    case FIELD_NONE:
        break;
    }
}

/* The field name is complete: only the four SSE fields are accepted. */
static bool select_field(struct sse_stream *s)
{
    static const enum sse_field known[] = {FIELD_DATA, FIELD_ID, FIELD_EVENT, FIELD_RETRY};
    char shown[48];

    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        const char *name = field_names[known[i]];
        if (s->name_len == strlen(name) && memcmp(s->name, name, s->name_len) == 0) {
            s->field = known[i];
            s->in_event = s->in_event || known[i] != FIELD_RETRY;
            buf_clear(&s->value);
            return true;
        }
    }
    size_t shown_len = s->name_len < sizeof(s->name) ? s->name_len : sizeof(s->name);
    fail(s, "unknown field '%s%s'", printable(shown, sizeof(shown), s->name, shown_len),
         s->name_len > shown_len ? "..." : "");
    return false;
}

/* An optional UTF-8 byte order mark, before anything else. Any line that
 * starts like a BOM but is not one begins with a non-ASCII byte, so it can
 * only be an unknown field. */
static size_t bom_step(struct sse_stream *s, const char *p)
{
    static const char bom[] = "\xef\xbb\xbf";
    if (p[0] == bom[s->bom_matched]) {
        if (utf8_ok(s, p, 1) && ++s->bom_matched == 3)
            s->line = LINE_START;
        return 1;
    }
    if (s->bom_matched > 0) {
        fail(s, "unknown field (the line starts with a partial byte order mark)");
        return 1;
    }
    s->line = LINE_START;
    return 0;
}

static size_t start_step(struct sse_stream *s, const char *p)
{
    char c = p[0];
    if (s->after_cr) {
        s->after_cr = false;
        if (c == '\n')
            return 1; /* the LF of a CRLF */
    }
    s->line_len = 0;
    if (c == '\r' || c == '\n') {
        s->after_cr = c == '\r';
        dispatch(s);
        return 1;
    }
    if (c == ':') {
        s->field = FIELD_COMMENT;
        buf_clear(&s->value);
        s->line = LINE_VALUE_START;
        count_line(s, 1);
        return 1;
    }
    s->name_len = 0;
    s->field = FIELD_NONE;
    s->line = LINE_FIELD;
    return 0;
}

static size_t field_step(struct sse_stream *s, const char *p)
{
    char c = p[0];
    if (!utf8_ok(s, p, 1))
        return 1;
    if (c == ':') {
        if (select_field(s) && count_line(s, 1))
            s->line = LINE_VALUE_START;
        return 1;
    }
    if (c == '\r' || c == '\n') {
        if (select_field(s)) /* a name alone: the value is empty */
            end_line(s, c);
        return 1;
    }
    if (s->name_len < sizeof(s->name))
        s->name[s->name_len] = c;
    s->name_len++;
    if (s->name_len > sizeof(s->name))
        select_field(s); /* too long for any known name: fails */
    else
        count_line(s, 1);
    return 1;
}

static size_t value_start_step(struct sse_stream *s, const char *p)
{
    s->line = LINE_VALUE;
    if (p[0] != ' ')
        return 0;
    count_line(s, 1);
    return 1;
}

static bool append_value(struct sse_stream *s, const char *p, size_t n)
{
    if (s->field == FIELD_DATA)
        return append_or_fail(s, &s->data, p, n, "event data");
    if (memchr(p, '\0', n) != NULL) {
        fail(s, "%s line contains NUL", field_names[s->field]);
        return false;
    }
    return append_or_fail(s, &s->value, p, n, field_names[s->field]);
}

static size_t value_step(struct sse_stream *s, const char *p, size_t n)
{
    size_t k = line_length(p, n);
    if (!utf8_ok(s, p, k < n ? k + 1 : k))
        return k;
    if (k > 0 && !(count_line(s, k) && append_value(s, p, k)))
        return k;
    if (k == n)
        return k;
    end_line(s, p[k]);
    return k + 1;
}

/* Parses SSE body bytes. Every byte goes through utf8_ok() except the ASCII
 * ones start_step() and value_start_step() consume: they follow a validated
 * line break or colon, where no multi-byte sequence can be open. */
static void sse_bytes(struct sse_stream *s, const char *p, size_t n)
{
    size_t i = 0;
    while (i < n && alive(s)) {
        switch ((enum line_state)s->line) {
        case LINE_BOM:
            i += bom_step(s, p + i);
            break;
        case LINE_START:
            i += start_step(s, p + i);
            break;
        case LINE_FIELD:
            i += field_step(s, p + i);
            break;
        case LINE_VALUE_START:
            i += value_start_step(s, p + i);
            break;
        case LINE_VALUE:
            i += value_step(s, p + i, n - i);
            break;
        }
    }
}

/* Whether an SSE body may end here; sets why when it may not. */
static bool sse_at_boundary(const struct sse_stream *s, const char **why)
{
    if (s->utf8_need > 0)
        *why = "a partial UTF-8 sequence";
    else if (s->line != LINE_START && !(s->line == LINE_BOM && s->bom_matched == 0))
        *why = "a partial line";
    else if (s->in_event)
        *why = "an event not ended by a blank line";
    else
        return true;
    return false;
}

/* ---- HTTP body ---------------------------------------------------------- */

static void body_end(struct sse_stream *s)
{
    const char *why = NULL;
    if (s->resp.event_stream && !sse_at_boundary(s, &why)) {
        fail(s, "the event stream ended inside %s", why);
        return;
    }
    s->state = HTTP_DONE;
    if (s->cb.on_body_end == NULL)
        return;
    bool go_on = s->resp.event_stream
                     ? s->cb.on_body_end(s->arg, NULL, 0, false)
                     : s->cb.on_body_end(s->arg, buf_str(&s->body), s->body.len, s->body_truncated);
    if (!go_on)
        s->state = HTTP_STOPPED;
}

static void body_bytes(struct sse_stream *s, const char *p, size_t n)
{
    if (s->resp.event_stream) {
        sse_bytes(s, p, n);
        return;
    }
    size_t room = s->body.max - s->body.len;
    size_t keep = n < room ? n : room;
    if (keep < n)
        s->body_truncated = true;
    if (keep > 0)
        append_or_fail(s, &s->body, p, keep, "response body");
}

static size_t length_step(struct sse_stream *s, const char *p, size_t n)
{
    size_t take = n < s->remaining ? n : (size_t)s->remaining;
    body_bytes(s, p, take);
    s->remaining -= take;
    if (s->remaining == 0 && alive(s))
        body_end(s);
    return take;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static void chunk_size_byte(struct sse_stream *s, char c)
{
    int v = hex_value(c);
    if (v >= 0) {
        if (++s->chunk_digits > CHUNK_SIZE_MAX_DIGITS)
            fail(s, "chunk size longer than %d hex digits", CHUNK_SIZE_MAX_DIGITS);
        s->remaining = s->remaining * 16 + (uint64_t)v;
    } else if (c == '\r' && s->chunk_digits > 0) {
        s->state = HTTP_CHUNK_SIZE_LF;
    } else if (c == '\r') {
        fail(s, "empty chunk size");
    } else {
        fail(s, "bad chunk size: unexpected byte 0x%02x", (unsigned char)c);
    }
}

static void trailers_start(struct sse_stream *s)
{
    buf_clear(&s->head);
    s->line_start = 0;
    s->state = HTTP_TRAILERS;
}

static size_t chunked_step(struct sse_stream *s, const char *p, size_t n)
{
    switch (s->state) {
    case HTTP_CHUNK_SIZE:
        chunk_size_byte(s, p[0]);
        return 1;
    case HTTP_CHUNK_SIZE_LF:
        if (p[0] != '\n')
            fail(s, "chunk size not followed by CRLF");
        else if (s->remaining == 0)
            trailers_start(s);
        else
            s->state = HTTP_CHUNK_DATA;
        return 1;
    case HTTP_CHUNK_DATA: {
        size_t take = n < s->remaining ? n : (size_t)s->remaining;
        body_bytes(s, p, take);
        s->remaining -= take;
        if (s->remaining == 0 && alive(s))
            s->state = HTTP_CHUNK_DATA_CR;
        return take;
    }
    case HTTP_CHUNK_DATA_CR:
    case HTTP_CHUNK_DATA_LF:
        if (p[0] != (s->state == HTTP_CHUNK_DATA_CR ? '\r' : '\n')) {
            fail(s, "chunk data not followed by CRLF");
        } else if (s->state == HTTP_CHUNK_DATA_CR) {
            s->state = HTTP_CHUNK_DATA_LF;
        } else {
            s->state = HTTP_CHUNK_SIZE;
            s->chunk_digits = 0;
        }
        return 1;
    default:
        return 0;
    }
}

/* ---- HTTP head ---------------------------------------------------------- */

static bool is_tchar(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static bool has_ctl(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return true;
    }
    return false;
}

static bool name_is(const char *name, size_t len, const char *want)
{
    return len == strlen(want) && strncasecmp(name, want, len) == 0;
}

static void parse_status_line(struct sse_stream *s, const char *line, size_t len)
{
    const char *d = line + 9;
    if (len < 13 || memcmp(line, "HTTP/1.", 7) != 0 || (line[7] != '0' && line[7] != '1') ||
        line[8] != ' ' || d[0] < '1' || d[0] > '9' || d[1] < '0' || d[1] > '9' || d[2] < '0' ||
        d[2] > '9' || line[12] != ' ' || has_ctl(line + 13, len - 13)) {
        char shown[48];
        fail(s, "malformed status line '%s'", printable(shown, sizeof(shown), line, len));
        return;
    }
    s->resp.http_minor = line[7] - '0';
    s->resp.status = (d[0] - '0') * 100 + (d[1] - '0') * 10 + (d[2] - '0');
    size_t reason_len = len - 13 < sizeof(s->reason) ? len - 13 : sizeof(s->reason) - 1;
    memcpy(s->reason, line + 13, reason_len);
    s->reason[reason_len] = '\0';
    s->state = HTTP_HEADERS;
}

static bool parse_content_length(struct sse_stream *s, const char *v, size_t n)
{
    uint64_t len = 0;
    if (s->have_length) {
        fail(s, "more than one Content-Length header");
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9' || i >= 18) {
            fail(s, "invalid Content-Length");
            return false;
        }
        len = len * 10 + (uint64_t)(v[i] - '0');
    }
    if (n == 0) {
        fail(s, "invalid Content-Length");
        return false;
    }
    s->have_length = true;
    s->resp.content_length = len;
    return true;
}

static void header_known(struct sse_stream *s, const char *name, size_t name_len, const char *v,
                         size_t n)
{
    char shown[48];
    if (name_is(name, name_len, "content-length")) {
        parse_content_length(s, v, n);
    } else if (name_is(name, name_len, "transfer-encoding")) {
        if (!name_is(v, n, "chunked"))
            fail(s, "unsupported Transfer-Encoding '%s'", printable(shown, sizeof(shown), v, n));
        else if (s->have_chunked)
            fail(s, "more than one Transfer-Encoding header");
        s->have_chunked = true;
    } else if (name_is(name, name_len, "content-type")) {
        if (s->content_type[0] != '\0' || n == 0)
            fail(s, "more than one or an empty Content-Type header");
        else if (n >= sizeof(s->content_type))
            fail(s, "Content-Type longer than %zu bytes", sizeof(s->content_type) - 1);
        else
            memcpy(s->content_type, v, n);
    }
}

/* "Name: value" (trailers too, with known == false). */
static void parse_header(struct sse_stream *s, const char *line, size_t len, bool known)
{
    if (line[0] == ' ' || line[0] == '\t') {
        fail(s, "obsolete line folding in the response head");
        return;
    }
    const char *colon = memchr(line, ':', len);
    if (colon == NULL || colon == line) {
        fail(s, "header line without a name and colon");
        return;
    }
    size_t name_len = (size_t)(colon - line);
    for (size_t i = 0; i < name_len; i++) {
        if (!is_tchar(line[i])) {
            fail(s, "invalid byte 0x%02x in a header name", (unsigned char)line[i]);
            return;
        }
    }
    const char *v = colon + 1;
    const char *end = line + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    if (has_ctl(v, (size_t)(end - v))) {
        fail(s, "control character in a header value");
        return;
    }
    if (known)
        header_known(s, line, name_len, v, (size_t)(end - v));
}

/* text/event-stream, any case, optionally followed by parameters. */
static bool is_event_stream(const char *content_type)
{
    static const char want[] = "text/event-stream";
    size_t n = sizeof(want) - 1;
    if (strncasecmp(content_type, want, n) != 0)
        return false;
    const char *rest = content_type + n;
    while (*rest == ' ' || *rest == '\t')
        rest++;
    return *rest == '\0' || *rest == ';';
}

static bool framing_check(struct sse_stream *s)
{
    if (s->resp.status < 200) {
        fail(s, "interim response %d not supported", s->resp.status);
        return false;
    }
    if (!s->have_chunked)
        return true;
    if (s->resp.http_minor == 0)
        fail(s, "chunked Transfer-Encoding in an HTTP/1.0 response");
    else if (s->limits.request_http10)
        fail(s, "chunked Transfer-Encoding in reply to an HTTP/1.0 request");
    else if (s->have_length)
        fail(s, "both Transfer-Encoding and Content-Length");
    return alive(s);
}

static void headers_end(struct sse_stream *s, size_t blank_at)
{
    struct sse_response *r = &s->resp;
    if (!framing_check(s))
        return;
    if (r->status == 204 || r->status == 304)
        r->framing = SSE_FRAMING_NONE;
    else if (s->have_chunked)
        r->framing = SSE_FRAMING_CHUNKED;
    else if (s->have_length)
        r->framing = r->content_length > 0 ? SSE_FRAMING_LENGTH : SSE_FRAMING_NONE;
    else
        r->framing = SSE_FRAMING_CLOSE;
    r->event_stream = r->status == 200 && is_event_stream(s->content_type);
    s->head.p[blank_at] = '\0';
    r->head = s->head.p;
    r->head_len = blank_at;
    if (s->cb.on_headers != NULL && !verdict(s, s->cb.on_headers(s->arg, r)))
        return;
    static const int next[] = {
        [SSE_FRAMING_NONE] = HTTP_DONE,
        [SSE_FRAMING_CHUNKED] = HTTP_CHUNK_SIZE,
        [SSE_FRAMING_LENGTH] = HTTP_BODY_LENGTH,
        [SSE_FRAMING_CLOSE] = HTTP_BODY_CLOSE,
    };
    s->remaining = r->framing == SSE_FRAMING_LENGTH ? r->content_length : 0;
    if (r->framing == SSE_FRAMING_NONE)
        body_end(s);
    else
        s->state = next[r->framing];
}

/* A complete head line (status, header or trailer) ends at head.len. */
static void head_line(struct sse_stream *s)
{
    size_t start = s->line_start;
    char *line = s->head.p + start;
    size_t len = s->head.len - start - 1; /* without the LF */

    if (len == 0 || line[len - 1] != '\r') {
        fail(s, "line in the response head not ended by CRLF");
        return;
    }
    len--;
    if (memchr(line, '\r', len) != NULL || memchr(line, '\0', len) != NULL) {
        fail(s, "CR or NUL inside a line of the response head");
        return;
    }
    s->line_start = s->head.len;
    if (s->state == HTTP_STATUS_LINE)
        parse_status_line(s, line, len);
    else if (len > 0)
        parse_header(s, line, len, s->state == HTTP_HEADERS);
    else if (s->state == HTTP_HEADERS)
        headers_end(s, start);
    else
        body_end(s); /* the blank line after the trailers */
}

static size_t head_step(struct sse_stream *s, const char *p, size_t n)
{
    const char *lf = memchr(p, '\n', n);
    size_t take = lf != NULL ? (size_t)(lf - p) + 1 : n;
    const char *what = s->state == HTTP_TRAILERS ? "trailer section" : "response head";
    if (append_or_fail(s, &s->head, p, take, what) && lf != NULL)
        head_line(s);
    return take;
}

/* ---- entry points ------------------------------------------------------- */

static size_t http_step(struct sse_stream *s, const char *p, size_t n)
{
    switch (s->state) {
    case HTTP_STATUS_LINE:
    case HTTP_HEADERS:
    case HTTP_TRAILERS:
        return head_step(s, p, n);
    case HTTP_BODY_LENGTH:
        return length_step(s, p, n);
    case HTTP_BODY_CLOSE:
        body_bytes(s, p, n);
        return n;
    default:
        return chunked_step(s, p, n);
    }
}

static enum sse_result result_of(const struct sse_stream *s)
{
    switch (s->state) {
    case HTTP_DONE:
        return SSE_END;
    case HTTP_STOPPED:
        return SSE_STOPPED;
    case HTTP_ERROR:
        return SSE_ERROR;
    default:
        return SSE_MORE;
    }
}

enum sse_result sse_stream_feed(struct sse_stream *s, const void *bytes, size_t len)
{
    const char *p = bytes;
    size_t i = 0;
    while (i < len && alive(s)) {
        size_t n = http_step(s, p + i, len - i);
        i += n;
        s->seen += n;
    }
    if (i < len && s->state == HTTP_DONE)
        fail(s, "%zu bytes after the end of the response", len - i);
    return result_of(s);
}

static enum sse_result truncated(struct sse_stream *s, const char *why)
{
    snprintf(s->error, sizeof(s->error), "connection closed %s (after %llu bytes)", why,
             (unsigned long long)s->seen);
    s->state = HTTP_ERROR;
    return SSE_TRUNCATED;
}

enum sse_result sse_stream_finish(struct sse_stream *s)
{
    const char *why = NULL;
    switch (s->state) {
    case HTTP_STATUS_LINE:
        return truncated(s, s->seen == 0 ? "before the response" : "inside the status line");
    case HTTP_HEADERS:
        return truncated(s, "inside the response head");
    case HTTP_BODY_CLOSE:
        if (s->resp.event_stream && !sse_at_boundary(s, &why)) {
            char msg[96];
            snprintf(msg, sizeof(msg), "inside %s", why);
            return truncated(s, msg);
        }
        body_end(s);
        return result_of(s);
    case HTTP_DONE:
    case HTTP_STOPPED:
    case HTTP_ERROR:
        return result_of(s);
    default:
        return truncated(s, "before the end of the body");
    }
}
