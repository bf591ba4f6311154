/*
 * Server-Sent Events wire format (WHATWG HTML, "Server-sent events").
 *
 * Pure formatting, no I/O. An event is written as
 *
 *     id: <id>\nevent: <type>\ndata: <line 1>\ndata: <line 2>\n\n
 *
 * where data is split at every CR, LF or CRLF (a client joins the data lines
 * back with LF), the event line is left out for an empty type (clients then
 * dispatch a plain "message"), and comments start with a colon.
 */
#ifndef PIPER_SSE_H
#define PIPER_SSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* An event type goes on one line: it must not contain CR, LF or NUL. */
bool sse_type_valid(const char *type, size_t len);

/* Exact size of the event written by sse_write_event(). */
size_t sse_event_size(int64_t id, size_t type_len, const char *data, size_t data_len);

/* Writes the event into out, which must hold sse_event_size() bytes; returns
 * the bytes written. The type must satisfy sse_type_valid(). */
size_t sse_write_event(char *out, int64_t id, const char *type, size_t type_len, const char *data,
                       size_t data_len);

/* Writes ": <text>\n\n" (text must be one line) into out, NUL-terminated,
 * and returns its length, or 0 if it does not fit. */
size_t sse_write_comment(char *out, size_t size, const char *text);

/* Writes "retry: <ms>\n\n" into out, NUL-terminated; returns its length. */
size_t sse_write_retry(char *out, size_t size, long long ms);

#endif
