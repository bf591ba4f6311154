/*
 * sse_stream: a strict, incremental parser for one HTTP/1.x response that
 * carries a Server-Sent Events body, for the project's test client.
 *
 * Contract
 * - Pure: no I/O, no clocks, no globals. Bytes go in through
 *   sse_stream_feed() in pieces split anywhere (one byte at a time is fine);
 *   results come out through callbacks, in order, from inside the feed call.
 * - Bounded: memory never exceeds the limits (head, line, event data, kept
 *   body) plus a few fixed buffers. Buffers grow by doubling up to their
 *   limit and are kept across sse_stream_reset(), so a long stream allocates
 *   nothing in the steady state.
 * - Strict: anything malformed is an error (SSE_ERROR, message from
 *   sse_stream_error()), and the parser stays in error. Beyond HTTP/1.1 and
 *   the WHATWG SSE grammar it also rejects what this project's server never
 *   sends: chunk extensions, unknown SSE fields, NUL outside data, invalid
 *   UTF-8, a non-digit retry, a line or event over its limit, and bytes after
 *   the end of the response.
 *
 * HTTP: status line and headers end in CRLF; header names are compared
 * without case. The body is chunked (Transfer-Encoding: chunked, HTTP/1.1
 * only), Content-Length delimited, or close-delimited (neither header; it
 * ends at sse_stream_finish()). 204 and 304 have no body; 1xx is an error.
 *
 * SSE (status 200 with Content-Type text/event-stream, parameters allowed):
 * lines end in LF, CRLF or CR; a leading BOM is skipped; "field: value" with
 * one optional space after the colon; "data" lines are joined with LF; an
 * event is dispatched at a blank line if it has data (type "message" when no
 * event field); "id" sets the last event id, kept across events and updated
 * even when no event is dispatched; "retry" must be all digits; a line
 * starting with ':' is a comment. Any other response body is collected (up
 * to max_body_bytes, the rest counted as truncated) and handed over at its
 * end.
 */
#ifndef SSE_STREAM_H
#define SSE_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum sse_result {
    SSE_MORE,      /* everything consumed; the response is not over yet */
    SSE_END,       /* the response ended (on_body_end ran); more bytes are an error */
    SSE_STOPPED,   /* a callback returned false; the rest was not parsed */
    SSE_ERROR,     /* malformed input, see sse_stream_error() */
    SSE_TRUNCATED, /* sse_stream_finish() only: the connection ended early */
};

enum sse_framing {
    SSE_FRAMING_NONE,    /* no body (204, 304, Content-Length: 0) */
    SSE_FRAMING_CHUNKED, /* Transfer-Encoding: chunked */
    SSE_FRAMING_LENGTH,  /* Content-Length */
    SSE_FRAMING_CLOSE,   /* ends when the connection closes */
};

/* What on_headers sees. Pointers are valid during the callback only. */
struct sse_response {
    int http_minor;           /* HTTP/1.<minor> */
    int status;               /* 100..999 */
    const char *reason;       /* reason phrase, cut to 127 bytes */
    const char *content_type; /* "" when absent */
    bool event_stream;        /* 200 + text/event-stream: the body is parsed as SSE */
    enum sse_framing framing;
    uint64_t content_length; /* with SSE_FRAMING_LENGTH */
    const char *head;        /* status line and header lines, CRLF-separated, NUL-terminated */
    size_t head_len;
};

/*
 * Callbacks run from inside sse_stream_feed() or sse_stream_finish().
 * Returning false stops parsing at once (SSE_STOPPED); the parser must then
 * be reset before it is fed again. Any callback may be NULL (= continue).
 * Strings are NUL-terminated and valid during the call only.
 */
struct sse_callbacks {
    bool (*on_headers)(void *arg, const struct sse_response *resp);
    /* id: the last event id ("" if none was ever set; see
     * sse_stream_event_has_id()); type: "message" when the event had no
     * event field; data may contain NUL (data_len counts). */
    bool (*on_event)(void *arg, const char *id, const char *type, const char *data,
                     size_t data_len);
    /* text: the comment after ':' and one optional space. */
    bool (*on_comment)(void *arg, const char *text, size_t len);
    bool (*on_retry)(void *arg, uint64_t ms);
    /* The response is complete. For an SSE body, body is NULL; otherwise the
     * collected body (NUL-terminated) and whether bytes beyond
     * max_body_bytes were dropped. */
    bool (*on_body_end)(void *arg, const char *body, size_t len, bool truncated);
};

struct sse_limits {
    size_t max_head_bytes;  /* status line + headers (and, separately, trailers) */
    size_t max_line_bytes;  /* one SSE line, line break excluded */
    size_t max_event_bytes; /* one event's data, LF separators included */
    size_t max_body_bytes;  /* kept of a non-SSE body */
    bool request_http10;    /* the request was HTTP/1.0: chunked replies are errors */
};

/* Defaults: head 64 KiB, line 4 MiB, event 4 MiB, body 64 KiB, HTTP/1.1. */
void sse_limits_default(struct sse_limits *limits);

/* A growable byte buffer bounded by max (internal; exposed for embedding). */
struct sse_buf {
    char *p;
    size_t len;
    size_t cap;
    size_t max;
};

/* The parser. Embed it; its fields are private. */
struct sse_stream {
    struct sse_limits limits;
    struct sse_callbacks cb;
    void *arg;
    int state;     /* enum http_state in sse_stream.c */
    int line;      /* enum line_state in sse_stream.c */
    uint64_t seen; /* bytes consumed of this response, for error messages */
    struct sse_response resp;
    char reason[128];
    char content_type[256];
    struct sse_buf head; /* the head being read (then the trailers) */
    size_t line_start;   /* where the current head line starts in head */
    bool have_length;
    bool have_chunked;
    uint64_t remaining; /* bytes left in this chunk or Content-Length body */
    unsigned chunk_digits;
    /* SSE */
    unsigned bom_matched;
    bool after_cr;   /* the last line ended in CR: skip one LF */
    bool in_event;   /* a field line was seen since the last blank line */
    bool event_id;   /* the event being read has an id field of its own */
    int field;       /* enum sse_field in sse_stream.c */
    char name[8];    /* field name so far (longer names are unknown) */
    size_t name_len; /* bytes of the name seen */
    size_t line_len; /* bytes of the current line */
    unsigned utf8_need;
    unsigned char utf8_lo, utf8_hi;
    struct sse_buf value;   /* the value of id, event, retry or comment */
    struct sse_buf data;    /* the event's data lines, each followed by LF */
    struct sse_buf type;    /* the event's type */
    struct sse_buf last_id; /* the last event id */
    struct sse_buf body;    /* a non-SSE body */
    bool body_truncated;
    char error[192];
};

/* Prepares s for a response. limits NULL means sse_limits_default(); cb is
 * copied; arg is passed to every callback. Allocates nothing. */
void sse_stream_init(struct sse_stream *s, const struct sse_limits *limits,
                     const struct sse_callbacks *cb, void *arg);

/* Forgets the current response (state, last event id, error) so s can
 * parse the next one, on a new connection. Keeps its buffers. */
void sse_stream_reset(struct sse_stream *s);

/* Frees the buffers. s may be initialized again afterwards. */
void sse_stream_release(struct sse_stream *s);

/* Parses len more bytes. Returns SSE_MORE, SSE_END, SSE_STOPPED or
 * SSE_ERROR; after SSE_ERROR or SSE_STOPPED it returns the same again. */
enum sse_result sse_stream_feed(struct sse_stream *s, const void *bytes, size_t len);

/* The connection ended. SSE_END if that completes the response (a
 * close-delimited body with no partial line or event) or it was complete
 * already; SSE_TRUNCATED if it ended early (message in sse_stream_error());
 * SSE_ERROR/SSE_STOPPED if it was in that state. */
enum sse_result sse_stream_finish(struct sse_stream *s);

/* Why parsing failed or the response was truncated; "" otherwise. */
const char *sse_stream_error(const struct sse_stream *s);

/* During on_event: whether the event carried an id field of its own (an
 * event without one, such as event-piper's history-gone signal, only
 * repeats the last id). */
bool sse_stream_event_has_id(const struct sse_stream *s);

/* The last event id ("" if none), as a reconnecting client would send it. */
const char *sse_stream_last_event_id(const struct sse_stream *s);

#endif
