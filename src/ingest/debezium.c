/*
 * Debezium envelope parsing with jansson. Every failure path releases the
 * parsed tree; the event owns copies of what it keeps.
 */
#include "ingest/debezium.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

/* What Debezium sends in place of a large value it did not read (an
 * unchanged TOASTed column in an update without REPLICA IDENTITY FULL). */
#define UNAVAILABLE_VALUE "__debezium_unavailable_value"

void debezium_event_clear(struct debezium_event *ev)
{
    free(ev->type);
    free(ev->subscriber);
    free(ev->payload);
    memset(ev, 0, sizeof(*ev));
}

static bool all_space(const char *text, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (text[i] != ' ' && text[i] != '\t' && text[i] != '\r' && text[i] != '\n')
            return false;
    }
    return true;
}

static bool parse_digits(const char **p, const char *end, int count, int *out)
{
    int v = 0;
    for (int i = 0; i < count; i++) {
        if (*p >= end || **p < '0' || **p > '9')
            return false;
        v = v * 10 + (**p - '0');
        (*p)++;
    }
    *out = v;
    return true;
}

static bool expect(const char **p, const char *end, char c)
{
    if (*p >= end || **p != c)
        return false;
    (*p)++;
    return true;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * days-from-civil reasoning: shift the year to start in March). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int days_in_month(int y, int m)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : days[m - 1];
}

static bool parse_offset(const char **p, const char *end, int *offset_seconds)
{
    if (*p < end && (**p == 'Z' || **p == 'z')) {
        (*p)++;
        *offset_seconds = 0;
        return true;
    }
    if (*p >= end || (**p != '+' && **p != '-'))
        return false;
    int sign = **p == '-' ? -1 : 1;
    (*p)++;
    int hours, minutes;
    if (!parse_digits(p, end, 2, &hours))
        return false;
    if (*p < end && **p == ':')
        (*p)++;
    if (!parse_digits(p, end, 2, &minutes) || hours > 23 || minutes > 59)
        return false;
    *offset_seconds = sign * (hours * 3600 + minutes * 60);
    return true;
}

bool debezium_parse_timestamp(const char *s, size_t len, double *unix_seconds)
{
    const char *p = s, *end = s + len;
    int year, month, day, hour, minute, second, offset;
    if (!parse_digits(&p, end, 4, &year) || !expect(&p, end, '-') ||
        !parse_digits(&p, end, 2, &month) || !expect(&p, end, '-') ||
        !parse_digits(&p, end, 2, &day))
        return false;
    if (p >= end || (*p != 'T' && *p != 't' && *p != ' '))
        return false;
    p++;
    if (!parse_digits(&p, end, 2, &hour) || !expect(&p, end, ':') ||
        !parse_digits(&p, end, 2, &minute) || !expect(&p, end, ':') ||
        !parse_digits(&p, end, 2, &second))
        return false;
    if (month < 1 || month > 12 || day < 1 || day > days_in_month(year, month) || hour > 23 ||
        minute > 59 || second > 60)
        return false;
    double fraction = 0, scale = 0.1;
    if (p < end && *p == '.') {
        p++;
        int digits = 0;
        while (p < end && *p >= '0' && *p <= '9') {
            if (digits++ < 9)
                fraction += (*p - '0') * scale;
            scale /= 10;
            p++;
        }
        if (digits == 0 || digits > 9)
            return false;
    }
    if (!parse_offset(&p, end, &offset) || p != end)
        return false;
    int64_t seconds =
        days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second - offset;
    *unix_seconds = (double)seconds + fraction;
    return true;
}

/* The envelope: the value of "payload" when the message carries a schema. */
static json_t *envelope_of(json_t *root)
{
    json_t *payload = json_object_get(root, "payload");
    if (json_object_get(root, "schema") != NULL)
        return payload;
    return root;
}

static bool copy_string(json_t *value, char **out, size_t *out_len)
{
    const char *s = json_string_value(value);
    size_t len = json_string_length(value);
    if (s == NULL || len == 0 || memchr(s, '\0', len) != NULL)
        return false;
    *out = strndup(s, len);
    *out_len = len;
    return *out != NULL;
}

/* after.payload: usually a string of JSON text (io.debezium.data.Json),
 * kept as sent once validated, so frame.c compacts it with every value
 * untouched; some converters send the object itself, which is re-encoded. */
static enum debezium_outcome take_payload(json_t *value, struct debezium_event *ev,
                                          const char **why)
{
    json_t *object = NULL;
    if (json_is_string(value)) {
        if (strcmp(json_string_value(value), UNAVAILABLE_VALUE) == 0) {
            *why = "payload unavailable";
            return DEBEZIUM_INVALID;
        }
        object = json_loadb(json_string_value(value), json_string_length(value), 0, NULL);
        if (object == NULL) {
            *why = "payload is not JSON";
            return DEBEZIUM_INVALID;
        }
    } else if (json_is_object(value)) {
        object = json_incref(value);
    } else {
        *why = value == NULL ? "missing payload" : "payload is not a JSON string";
        return DEBEZIUM_INVALID;
    }
    bool is_object = json_is_object(object);
    if (is_object && json_is_string(value))
        ev->payload = strndup(json_string_value(value), json_string_length(value));
    else if (is_object)
        ev->payload = json_dumps(object, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(object);
    if (!is_object) {
        *why = "payload is not a JSON object";
        return DEBEZIUM_INVALID;
    }
    if (ev->payload == NULL) {
        *why = "out of memory";
        return DEBEZIUM_INVALID;
    }
    ev->payload_len = strlen(ev->payload);
    return DEBEZIUM_EVENT;
}

static enum debezium_outcome take_row(json_t *after, struct debezium_event *ev, const char **why)
{
    json_t *id = json_object_get(after, "id");
    if (!json_is_integer(id) || json_integer_value(id) < 1) {
        *why = "id is not a positive integer";
        return DEBEZIUM_INVALID;
    }
    ev->id = json_integer_value(id);
    if (!copy_string(json_object_get(after, "subscriber"), &ev->subscriber, &ev->subscriber_len)) {
        *why = "subscriber is not a non-empty string";
        return DEBEZIUM_INVALID;
    }
    if (!copy_string(json_object_get(after, "type"), &ev->type, &ev->type_len) ||
        strpbrk(ev->type, "\r\n") != NULL) {
        *why = "type is not a one-line string";
        return DEBEZIUM_INVALID;
    }
    json_t *ts = json_object_get(after, "timestamp");
    if (json_is_string(ts)) {
        if (!debezium_parse_timestamp(json_string_value(ts), json_string_length(ts),
                                      &ev->timestamp)) {
            *why = "bad timestamp";
            return DEBEZIUM_INVALID;
        }
    } else if (ts != NULL && !json_is_null(ts)) {
        *why = "timestamp is not a string";
        return DEBEZIUM_INVALID;
    }
    return take_payload(json_object_get(after, "payload"), ev, why);
}

static enum debezium_outcome parse_envelope(json_t *envelope, bool forward_updates,
                                            struct debezium_event *ev, const char **why)
{
    if (json_is_null(envelope) || envelope == NULL)
        return DEBEZIUM_IGNORED; /* a wrapped tombstone */
    if (!json_is_object(envelope)) {
        *why = "message is not a JSON object";
        return DEBEZIUM_INVALID;
    }
    const char *op = json_string_value(json_object_get(envelope, "op"));
    if (op == NULL || strlen(op) != 1 || strchr("crudt", op[0]) == NULL) {
        *why = "unknown op";
        return DEBEZIUM_INVALID;
    }
    if (op[0] == 'd' || op[0] == 't' || (op[0] == 'u' && !forward_updates))
        return DEBEZIUM_IGNORED;
    json_t *after = json_object_get(envelope, "after");
    if (!json_is_object(after)) {
        *why = "missing after";
        return DEBEZIUM_INVALID;
    }
    ev->op = op[0];
    return take_row(after, ev, why);
}

enum debezium_outcome debezium_parse(const char *text, size_t len, bool forward_updates,
                                     struct debezium_event *ev, const char **why)
{
    memset(ev, 0, sizeof(*ev));
    *why = NULL;
    if (text == NULL || all_space(text, len))
        return DEBEZIUM_IGNORED; /* tombstone */
    json_error_t error;
    json_t *root = json_loadb(text, len, JSON_DECODE_ANY, &error);
    if (root == NULL) {
        *why = "not JSON";
        return DEBEZIUM_INVALID;
    }
    enum debezium_outcome outcome = DEBEZIUM_IGNORED;
    if (json_is_object(root))
        outcome = parse_envelope(envelope_of(root), forward_updates, ev, why);
    else if (!json_is_null(root)) {
        *why = "message is not a JSON object";
        outcome = DEBEZIUM_INVALID;
    }
    json_decref(root);
    if (outcome != DEBEZIUM_EVENT)
        debezium_event_clear(ev);
    return outcome;
}
