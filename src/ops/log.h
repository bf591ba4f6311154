/*
 * Structured logging to stderr, one line per record, as logfmt or JSON.
 *
 * A record is a level, a fixed message and fields given printf-style:
 *
 *     log_info("session opened", "session=%llu consumer=%s peer=%s", id, consumer, peer);
 *
 * The fields format is a space-separated list of key=value tokens where each
 * value is one printf conversion (%s %d %u %ld %lu %lld %llu %zu %f %g, with
 * optional precision) or a literal word. The compiler checks the arguments
 * against the format; this module quotes and escapes every value for the
 * chosen output format, so callers never worry about spaces or quotes in
 * strings that came from clients. Very long values are truncated.
 */
#ifndef PIPER_LOG_H
#define PIPER_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum log_level { LOG_LEVEL_DEBUG, LOG_LEVEL_INFO, LOG_LEVEL_WARN, LOG_LEVEL_ERROR };
enum log_format { LOG_FORMAT_LOGFMT, LOG_FORMAT_JSON };

/* Defaults are logfmt at info level. */
void log_configure(enum log_format format, enum log_level min_level);

bool log_enabled(enum log_level level);

/* Formats one record into buf (always NUL-terminated, ends with '\n' when
 * it fits) and returns its length. Exposed for the unit tests; log_write()
 * uses it and writes the line to stderr. */
size_t log_format_record(char *buf, size_t size, enum log_format format, enum log_level level,
                         const char *msg, const char *fields, va_list args);

/* A rate limit for one kind of line that outside input can repeat at will
 * (a client's bad request, a forged notification): at most
 * LOG_LIMIT_PER_SECOND such lines per second; the rest are dropped and
 * counted, and the next line written carries that count:
 *
 *     static struct log_limit limit;
 *     unsigned dropped;
 *     if (log_limit_allow(&limit, &dropped))
 *         log_warn("...", "... dropped=%u", ..., dropped);
 */
#define LOG_LIMIT_PER_SECOND 10

struct log_limit {
    int64_t window_start_ms;
    unsigned in_window;
    unsigned dropped;
};

bool log_limit_allow(struct log_limit *l, unsigned *dropped) __attribute__((warn_unused_result));
/* The same at a given monotonic time in milliseconds; for the unit tests. */
bool log_limit_allow_at(struct log_limit *l, int64_t now_ms, unsigned *dropped)
    __attribute__((warn_unused_result));

void log_write(enum log_level level, const char *msg, const char *fields, ...)
    __attribute__((format(printf, 3, 4)));
void log_debug(const char *msg, const char *fields, ...) __attribute__((format(printf, 2, 3)));
void log_info(const char *msg, const char *fields, ...) __attribute__((format(printf, 2, 3)));
void log_warn(const char *msg, const char *fields, ...) __attribute__((format(printf, 2, 3)));
void log_error(const char *msg, const char *fields, ...) __attribute__((format(printf, 2, 3)));

#endif
