/*
 * Structured log records.
 *
 * The fields format doubles as a printf format so that the compiler checks
 * every call site, but the values are not spliced into the line as printf
 * would: each conversion is formatted on its own and then quoted for logfmt
 * or encoded for JSON. Values often come from clients (consumer ids, peer
 * addresses, bad notification payloads) and must never break a line apart.
 */
#include "ops/log.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "util/clock.h"
#include "util/utf8.h"

#define LOG_LINE_MAX 8192
#define LOG_VALUE_MAX 1024

static enum log_format log_output_format = LOG_FORMAT_LOGFMT;
static enum log_level log_min_level = LOG_LEVEL_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void log_configure(enum log_format format, enum log_level min_level)
{
    log_output_format = format;
    log_min_level = min_level;
}

bool log_enabled(enum log_level level)
{
    return level >= log_min_level;
}

struct line {
    char *buf;
    size_t size;
    size_t len;
};

static void line_append(struct line *l, const char *s, size_t n)
{
    if (l->len >= l->size)
        return;
    size_t room = l->size - l->len - 1;
    if (n > room)
        n = room;
    memcpy(l->buf + l->len, s, n);
    l->len += n;
    l->buf[l->len] = '\0';
}

static void line_puts(struct line *l, const char *s)
{
    line_append(l, s, strlen(s));
}

static void line_putc(struct line *l, char c)
{
    line_append(l, &c, 1);
}

static bool logfmt_needs_quotes(const char *s, size_t n)
{
    if (n == 0)
        return true;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= ' ' || c == '=' || c == '"' || c == '\\' || c >= 0x7f)
            return true;
    }
    return false;
}

/* Escapes shared by both formats: quotes, backslashes, control bytes, bytes
 * that are not UTF-8 (as the text "\xff": an escaped backslash then "xff",
 * so the line stays valid UTF-8 and valid JSON, and the byte stays visible) and U+2028/U+2029,
 * which some JSON readers (JavaScript's among them, before ES2019) take for line breaks. */
static void line_put_escaped(struct line *l, const char *s, size_t n)
{
    char hex[8];
    const unsigned char *end = (const unsigned char *)s + n;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x80) {
            size_t len = utf8_sequence_length((const unsigned char *)s + i, end);
            if (len == 0) {
                snprintf(hex, sizeof(hex), "\\\\x%02x", c);
                line_puts(l, hex);
            } else if (len == 3 && c == 0xe2 && (unsigned char)s[i + 1] == 0x80 &&
                       ((unsigned char)s[i + 2] == 0xa8 || (unsigned char)s[i + 2] == 0xa9)) {
                line_puts(l, (unsigned char)s[i + 2] == 0xa8 ? "\\u2028" : "\\u2029");
                i += 2;
            } else {
                line_append(l, s + i, len);
                i += len - 1;
            }
            continue;
        }
        switch (c) {
        case '"':
            line_puts(l, "\\\"");
            break;
        case '\\':
            line_puts(l, "\\\\");
            break;
        case '\n':
            line_puts(l, "\\n");
            break;
        case '\r':
            line_puts(l, "\\r");
            break;
        case '\t':
            line_puts(l, "\\t");
            break;
        default:
            if (c < 0x20 || c == 0x7f) {
                snprintf(hex, sizeof(hex), "\\u%04x", c);
                line_puts(l, hex);
            } else {
                line_putc(l, (char)c);
            }
        }
    }
}

static void line_put_value(struct line *l, enum log_format format, const char *v, size_t n,
                           bool is_number)
{
    if (format == LOG_FORMAT_JSON) {
        if (is_number) {
            line_append(l, v, n);
            return;
        }
        line_putc(l, '"');
        line_put_escaped(l, v, n);
        line_putc(l, '"');
        return;
    }
    if (!logfmt_needs_quotes(v, n)) {
        line_append(l, v, n);
        return;
    }
    line_putc(l, '"');
    line_put_escaped(l, v, n);
    line_putc(l, '"');
}

static void line_put_field(struct line *l, enum log_format format, const char *key, size_t key_len,
                           const char *v, size_t n, bool is_number)
{
    if (format == LOG_FORMAT_JSON) {
        line_puts(l, ",\"");
        line_put_escaped(l, key, key_len);
        line_puts(l, "\":");
    } else {
        line_putc(l, ' ');
        line_append(l, key, key_len);
        line_putc(l, '=');
    }
    line_put_value(l, format, v, n, is_number);
}

/* Formats one printf conversion taken from spec (e.g. "%.3f") with the
 * matching argument. Returns false for conversions this module does not
 * support, so a typo shows up as a visible "?" rather than a crash. */
static bool format_conversion(const char *spec, size_t spec_len, va_list *args, char *out,
                              size_t out_size, bool *is_number)
{
    char fmt[32];
    if (spec_len >= sizeof(fmt))
        return false;
    memcpy(fmt, spec, spec_len);
    fmt[spec_len] = '\0';

    char conv = spec[spec_len - 1];
    const char *length = spec + 1;
    while (*length == '.' || *length == '-' || (*length >= '0' && *length <= '9'))
        length++;
    size_t length_len = (size_t)(spec + spec_len - 1 - length);

    *is_number = conv != 's';
    switch (conv) {
    case 's': {
        const char *s = va_arg(*args, const char *);
        snprintf(out, out_size, fmt, s != NULL ? s : "");
        return true;
    }
    case 'f':
    case 'g': {
        double d = va_arg(*args, double);
        snprintf(out, out_size, fmt, d);
        if (d != d || d > 1e308 || d < -1e308)
            *is_number = false; /* NaN and infinities are not JSON numbers */
        return true;
    }
    case 'd':
    case 'i':
    case 'u':
    case 'x':
        break;
    default:
        return false;
    }
    if (length_len == 0) {
        if (conv == 'd' || conv == 'i')
            snprintf(out, out_size, fmt, va_arg(*args, int));
        else
            snprintf(out, out_size, fmt, va_arg(*args, unsigned));
    } else if (length_len == 1 && *length == 'l') {
        if (conv == 'd' || conv == 'i')
            snprintf(out, out_size, fmt, va_arg(*args, long));
        else
            snprintf(out, out_size, fmt, va_arg(*args, unsigned long));
    } else if (length_len == 2 && length[0] == 'l' && length[1] == 'l') {
        if (conv == 'd' || conv == 'i')
            snprintf(out, out_size, fmt, va_arg(*args, long long));
        else
            snprintf(out, out_size, fmt, va_arg(*args, unsigned long long));
    } else if (length_len == 1 && *length == 'z') {
        snprintf(out, out_size, fmt, va_arg(*args, size_t));
    } else {
        return false;
    }
    if (conv == 'x')
        *is_number = false;
    return true;
}

static void line_put_timestamp(struct line *l, enum log_format format)
{
    struct timeval tv;
    struct tm tm;
    char ts[40];
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    size_t n = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, sizeof(ts) - n, ".%03ldZ", (long)(tv.tv_usec / 1000));
    if (format == LOG_FORMAT_JSON) {
        line_puts(l, "{\"ts\":\"");
        line_puts(l, ts);
        line_puts(l, "\"");
    } else {
        line_puts(l, "ts=");
        line_puts(l, ts);
    }
}

size_t log_format_record(char *buf, size_t size, enum log_format format, enum log_level level,
                         const char *msg, const char *fields, va_list args)
{
    struct line l = {buf, size, 0};
    char value[LOG_VALUE_MAX];
    va_list ap;

    if (size == 0)
        return 0;
    buf[0] = '\0';
    va_copy(ap, args);
    line_put_timestamp(&l, format);
    line_put_field(&l, format, "level", 5, level_names[level], strlen(level_names[level]), false);
    line_put_field(&l, format, "msg", 3, msg, strlen(msg), false);

    const char *p = fields != NULL ? fields : "";
    while (*p != '\0') {
        while (*p == ' ')
            p++;
        const char *key = p;
        while (*p != '\0' && *p != '=' && *p != ' ')
            p++;
        size_t key_len = (size_t)(p - key);
        if (key_len == 0 || *p != '=')
            break; /* malformed format: stop rather than misread arguments */
        p++;
        const char *v = p;
        if (*v == '%') {
            const char *spec_end = v + 1;
            while (*spec_end != '\0' && strchr("sdiufgx", *spec_end) == NULL)
                spec_end++;
            if (*spec_end == '\0')
                break;
            spec_end++;
            bool is_number = false;
            if (!format_conversion(v, (size_t)(spec_end - v), &ap, value, sizeof(value),
                                   &is_number)) {
                line_put_field(&l, format, key, key_len, "?", 1, false);
                break;
            }
            line_put_field(&l, format, key, key_len, value, strlen(value), is_number);
            p = spec_end;
        } else {
            while (*p != '\0' && *p != ' ')
                p++;
            line_put_field(&l, format, key, key_len, v, (size_t)(p - v), false);
        }
    }
    va_end(ap);
    if (format == LOG_FORMAT_JSON)
        line_putc(&l, '}');
    if (l.size < 2) { /* no room for a line at all */
        l.buf[0] = '\0';
        return 0;
    }
    if (l.len + 1 >= l.size)
        l.len = l.size - 2; /* always keep room for the newline */
    l.buf[l.len++] = '\n';
    l.buf[l.len] = '\0';
    return l.len;
}

static void log_vwrite(enum log_level level, const char *msg, const char *fields, va_list args)
{
    static char buf[LOG_LINE_MAX];
    if (!log_enabled(level))
        return;
    size_t n = log_format_record(buf, sizeof(buf), log_output_format, level, msg, fields, args);
    fwrite(buf, 1, n, stderr);
}

void log_write(enum log_level level, const char *msg, const char *fields, ...)
{
    va_list args;
    va_start(args, fields);
    log_vwrite(level, msg, fields, args);
    va_end(args);
}

void log_debug(const char *msg, const char *fields, ...)
{
    va_list args;
    va_start(args, fields);
    log_vwrite(LOG_LEVEL_DEBUG, msg, fields, args);
    va_end(args);
}

void log_info(const char *msg, const char *fields, ...)
{
    va_list args;
    va_start(args, fields);
    log_vwrite(LOG_LEVEL_INFO, msg, fields, args);
    va_end(args);
}

void log_warn(const char *msg, const char *fields, ...)
{
    va_list args;
    va_start(args, fields);
    log_vwrite(LOG_LEVEL_WARN, msg, fields, args);
    va_end(args);
}

void log_error(const char *msg, const char *fields, ...)
{
    va_list args;
    va_start(args, fields);
    log_vwrite(LOG_LEVEL_ERROR, msg, fields, args);
    va_end(args);
}

bool log_limit_allow(struct log_limit *l, unsigned *dropped)
{
    return log_limit_allow_at(l, clock_monotonic_ms(), dropped);
}

bool log_limit_allow_at(struct log_limit *l, int64_t now, unsigned *dropped)
{
    if (now - l->window_start_ms >= 1000) {
        l->window_start_ms = now;
        l->in_window = 0;
    }
    if (l->in_window >= LOG_LIMIT_PER_SECOND) {
        l->dropped++;
        return false;
    }
    l->in_window++;
    *dropped = l->dropped;
    l->dropped = 0;
    return true;
}
