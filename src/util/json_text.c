/*
 * A recursive-descent JSON scanner that copies tokens verbatim.
 *
 * One scanner serves three jobs: validating, compacting (copy every token,
 * drop whitespace) and locating object members (validate and remember spans).
 * Recursion depth is bounded by JSON_MAX_DEPTH so hostile input cannot
 * exhaust the stack. Strings are checked for UTF-8 validity and escapes for
 * well-formed surrogate pairs, because the output goes to EventSource clients
 * that must be able to decode it.
 */
#include "util/json_text.h"

#include <stdint.h>
#include <string.h>

#include "util/utf8.h"

struct scanner {
    const char *p;
    const char *end;
    char *out; /* NULL when only validating */
    size_t out_len;
    int depth;
};

static enum json_kind scan_value(struct scanner *s);

static void emit(struct scanner *s, const char *from, size_t n)
{
    if (s->out != NULL)
        memcpy(s->out + s->out_len, from, n);
    s->out_len += n;
}

static void skip_ws(struct scanner *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
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

/* Reads the four hex digits after "\u" at p; returns -1 if malformed. */
static long read_hex4(const char *p, const char *end)
{
    long v = 0;
    if (end - p < 4)
        return -1;
    for (int i = 0; i < 4; i++) {
        int h = hex_value(p[i]);
        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    return v;
}

/* Validates the escape at s->p (pointing after the backslash) and advances
 * past it. */
static bool scan_escape(struct scanner *s)
{
    if (s->p >= s->end)
        return false;
    char c = *s->p;
    if (strchr("\"\\/bfnrt", c) != NULL && c != '\0') {
        s->p++;
        return true;
    }
    if (c != 'u')
        return false;
    long cp = read_hex4(s->p + 1, s->end);
    if (cp < 0)
        return false;
    s->p += 5;
    if (cp >= 0xDC00 && cp <= 0xDFFF)
        return false; /* low surrogate without a high one */
    if (cp < 0xD800 || cp > 0xDBFF)
        return true;
    if (s->end - s->p < 6 || s->p[0] != '\\' || s->p[1] != 'u')
        return false;
    long low = read_hex4(s->p + 2, s->end);
    if (low < 0xDC00 || low > 0xDFFF)
        return false;
    s->p += 6;
    return true;
}

/* Length of the run at p of bytes a string may hold as they are: ASCII
 * from 0x20 up, except the quote and the backslash. Looks at eight bytes at
 * a time (string bodies are most of a payload's bytes) and stops at the
 * first group holding any other byte, which the caller then reads one by
 * one. The tests for "some byte is zero" and "some byte is below n" are
 * exact about whether one exists, which is all that is asked. */
static size_t plain_run(const char *p, const char *end)
{
    const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
    const char *start = p;
    while (end - p >= 8) {
        uint64_t v;
        memcpy(&v, p, sizeof(v));
        uint64_t quote = v ^ (ones * '"');
        uint64_t backslash = v ^ (ones * '\\');
        uint64_t special = ((quote - ones) & ~quote) | ((backslash - ones) & ~backslash) |
                           ((v - ones * 0x20) & ~v) | v;
        if ((special & highs) != 0)
            break;
        p += 8;
    }
    return (size_t)(p - start);
}

static bool scan_string(struct scanner *s)
{
    const char *start = s->p;
    s->p++; /* opening quote */
    while (s->p < s->end) {
        s->p += plain_run(s->p, s->end);
        if (s->p >= s->end)
            break;
        unsigned char c = (unsigned char)*s->p;
        if (c == '"') {
            s->p++;
            emit(s, start, (size_t)(s->p - start));
            return true;
        }
        if (c == '\\') {
            s->p++;
            if (!scan_escape(s))
                return false;
            continue;
        }
        if (c < 0x20)
            return false;
        if (c < 0x80) { /* plain ASCII, the common case: no decoding */
            s->p++;
            continue;
        }
        size_t n = utf8_sequence_length((const unsigned char *)s->p, (const unsigned char *)s->end);
        if (n == 0)
            return false;
        s->p += n;
    }
    return false;
}

static bool scan_digits(struct scanner *s)
{
    const char *start = s->p;
    while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
        s->p++;
    return s->p > start;
}

static bool scan_number(struct scanner *s)
{
    const char *start = s->p;
    if (*s->p == '-')
        s->p++;
    if (s->p >= s->end)
        return false;
    if (*s->p == '0') {
        s->p++;
    } else if (!scan_digits(s)) {
        return false;
    }
    if (s->p < s->end && *s->p == '.') {
        s->p++;
        if (!scan_digits(s))
            return false;
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        s->p++;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
            s->p++;
        if (!scan_digits(s))
            return false;
    }
    emit(s, start, (size_t)(s->p - start));
    return true;
}

static bool scan_literal(struct scanner *s, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
        return false;
    emit(s, s->p, n);
    s->p += n;
    return true;
}

static bool scan_expect(struct scanner *s, char c)
{
    skip_ws(s);
    if (s->p >= s->end || *s->p != c)
        return false;
    emit(s, s->p, 1);
    s->p++;
    return true;
}

static bool scan_object(struct scanner *s)
{
    emit(s, s->p, 1);
    s->p++;
    skip_ws(s);
    if (s->p < s->end && *s->p == '}') {
        emit(s, s->p, 1);
        s->p++;
        return true;
    }
    for (;;) {
        skip_ws(s);
        if (s->p >= s->end || *s->p != '"' || !scan_string(s))
            return false;
        if (!scan_expect(s, ':'))
            return false;
        skip_ws(s);
        if (scan_value(s) == JSON_KIND_INVALID)
            return false;
        skip_ws(s);
        if (s->p >= s->end)
            return false;
        char c = *s->p;
        emit(s, s->p, 1);
        s->p++;
        if (c == '}')
            return true;
        if (c != ',')
            return false;
    }
}

static bool scan_array(struct scanner *s)
{
    emit(s, s->p, 1);
    s->p++;
    skip_ws(s);
    if (s->p < s->end && *s->p == ']') {
        emit(s, s->p, 1);
        s->p++;
        return true;
    }
    for (;;) {
        skip_ws(s);
        if (scan_value(s) == JSON_KIND_INVALID)
            return false;
        skip_ws(s);
        if (s->p >= s->end)
            return false;
        char c = *s->p;
        emit(s, s->p, 1);
        s->p++;
        if (c == ']')
            return true;
        if (c != ',')
            return false;
    }
}

static enum json_kind scan_container(struct scanner *s, bool is_object)
{
    if (s->depth >= JSON_MAX_DEPTH)
        return JSON_KIND_INVALID;
    s->depth++;
    bool ok = is_object ? scan_object(s) : scan_array(s);
    s->depth--;
    if (!ok)
        return JSON_KIND_INVALID;
    return is_object ? JSON_KIND_OBJECT : JSON_KIND_ARRAY;
}

static enum json_kind scan_value(struct scanner *s)
{
    if (s->p >= s->end)
        return JSON_KIND_INVALID;
    switch (*s->p) {
    case '{':
        return scan_container(s, true);
    case '[':
        return scan_container(s, false);
    case '"':
        return scan_string(s) ? JSON_KIND_STRING : JSON_KIND_INVALID;
    case 't':
        return scan_literal(s, "true") ? JSON_KIND_TRUE : JSON_KIND_INVALID;
    case 'f':
        return scan_literal(s, "false") ? JSON_KIND_FALSE : JSON_KIND_INVALID;
    case 'n':
        return scan_literal(s, "null") ? JSON_KIND_NULL : JSON_KIND_INVALID;
    default:
        if (*s->p == '-' || (*s->p >= '0' && *s->p <= '9'))
            return scan_number(s) ? JSON_KIND_NUMBER : JSON_KIND_INVALID;
        return JSON_KIND_INVALID;
    }
}

size_t json_compact(const char *text, size_t len, char *out, enum json_kind *kind)
{
    struct scanner s = {text, text + len, out, 0, 0};
    skip_ws(&s);
    enum json_kind k = scan_value(&s);
    skip_ws(&s);
    if (k == JSON_KIND_INVALID || s.p != s.end) {
        *kind = JSON_KIND_INVALID;
        return 0;
    }
    *kind = k;
    return s.out_len;
}

enum { MEMBERS_FIRST, MEMBERS_NEXT, MEMBERS_DONE, MEMBERS_ERROR };

bool json_members_begin(struct json_members *it, const char *text, size_t len)
{
    struct scanner s = {text, text + len, NULL, 0, 0};
    skip_ws(&s);
    it->end = s.end;
    if (s.p >= s.end || *s.p != '{') {
        it->p = s.p;
        it->state = MEMBERS_ERROR;
        return false;
    }
    it->p = s.p + 1;
    it->state = MEMBERS_FIRST;
    return true;
}

static int members_finish(struct json_members *it, struct scanner *s)
{
    s->p++; /* closing brace */
    skip_ws(s);
    it->p = s->p;
    it->state = s->p == s->end ? MEMBERS_DONE : MEMBERS_ERROR;
    return it->state == MEMBERS_DONE ? 0 : -1;
}

int json_members_next(struct json_members *it, struct json_member *m)
{
    struct scanner s = {it->p, it->end, NULL, 0, 1};

    if (it->state == MEMBERS_DONE)
        return 0;
    if (it->state == MEMBERS_ERROR)
        return -1;
    skip_ws(&s);
    if (s.p >= s.end)
        goto error;
    if (*s.p == '}')
        return members_finish(it, &s);
    if (it->state == MEMBERS_NEXT) {
        if (*s.p != ',')
            goto error;
        s.p++;
        skip_ws(&s);
    }
    if (s.p >= s.end || *s.p != '"')
        goto error;
    m->key = s.p;
    if (!scan_string(&s))
        goto error;
    m->key_len = (size_t)(s.p - m->key);
    skip_ws(&s);
    if (s.p >= s.end || *s.p != ':')
        goto error;
    s.p++;
    skip_ws(&s);
    m->value = s.p;
    m->kind = scan_value(&s);
    if (m->kind == JSON_KIND_INVALID)
        goto error;
    m->value_len = (size_t)(s.p - m->value);
    it->p = s.p;
    it->state = MEMBERS_NEXT;
    return 1;

error:
    it->state = MEMBERS_ERROR;
    return -1;
}

static size_t utf8_encode(unsigned long cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static char simple_escape(char c)
{
    switch (c) {
    case 'b':
        return '\b';
    case 'f':
        return '\f';
    case 'n':
        return '\n';
    case 'r':
        return '\r';
    case 't':
        return '\t';
    default:
        return c; /* '"', '\\' and '/' stand for themselves */
    }
}

bool json_string_decode(const char *raw, size_t raw_len, char *out, size_t *out_len)
{
    struct scanner s = {raw, raw + raw_len, NULL, 0, 0};
    if (raw_len < 2 || raw[0] != '"' || !scan_string(&s) || s.p != s.end)
        return false;

    size_t o = 0;
    const char *p = raw + 1;
    const char *end = raw + raw_len - 1;
    while (p < end) {
        if (*p != '\\') {
            out[o++] = *p++;
            continue;
        }
        p++;
        if (*p != 'u') {
            out[o++] = simple_escape(*p);
            p++;
            continue;
        }
        unsigned long cp = (unsigned long)read_hex4(p + 1, end);
        p += 5;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            unsigned long low = (unsigned long)read_hex4(p + 2, end);
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
            p += 6;
        }
        if (cp == 0)
            return false;
        o += utf8_encode(cp, out + o);
    }
    out[o] = '\0';
    *out_len = o;
    return true;
}

bool json_string_equals(const char *raw, size_t raw_len, const char *name)
{
    size_t n = strlen(name);
    /* Keys we look for are plain ASCII, so an unescaped exact match is the
     * common case; fall back to decoding only when the key has escapes. */
    if (raw_len == n + 2 && memcmp(raw + 1, name, n) == 0)
        return raw[0] == '"' && raw[raw_len - 1] == '"';
    if (memchr(raw, '\\', raw_len) == NULL || raw_len > 256)
        return false;
    char decoded[256];
    size_t decoded_len = 0;
    if (!json_string_decode(raw, raw_len, decoded, &decoded_len))
        return false;
    return decoded_len == n && memcmp(decoded, name, n) == 0;
}

size_t json_escape(char *out, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c < 0x20) {
            memcpy(out + o, "\\u00", 4);
            out[o + 4] = hex[c >> 4];
            out[o + 5] = hex[c & 15];
            o += 6;
        } else {
            out[o++] = (char)c;
        }
    }
    return o;
}
