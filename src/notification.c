/*
 * Notification payload parsing on top of the JSON member scanner. The
 * payload member is kept as a raw span (not decoded) so that the frame can
 * re-encode it with its numbers exactly as PostgreSQL wrote them.
 */
#include "notification.h"

#include <stdlib.h>
#include <string.h>

#include "json_text.h"

bool notification_parse_id(const char *token, size_t len, int64_t *id)
{
    int64_t v = 0;
    if (len == 0 || len > 19)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (token[i] < '0' || token[i] > '9')
            return false;
        int digit = token[i] - '0';
        if (v > (INT64_MAX - digit) / 10)
            return false;
        v = v * 10 + digit;
    }
    if (v <= 0 || (len > 1 && token[0] == '0'))
        return false;
    *id = v;
    return true;
}

static bool parse_timestamp(const char *token, size_t len, double *out)
{
    char buf[64];
    char *end = NULL;
    if (len == 0 || len >= sizeof(buf))
        return false;
    memcpy(buf, token, len);
    buf[len] = '\0';
    double v = strtod(buf, &end);
    if (end != buf + len)
        return false;
    *out = v;
    return true;
}

/* Decodes a string member into the next free part of n->strings. */
static bool take_string(struct notification *n, size_t *used, const struct json_member *m,
                        char **out, size_t *out_len)
{
    if (m->kind != JSON_KIND_STRING)
        return false;
    char *dst = n->strings + *used;
    if (!json_string_decode(m->value, m->value_len, dst, out_len))
        return false;
    *out = dst;
    *used += *out_len + 1;
    return true;
}

bool notification_parse(const char *text, size_t len, struct notification *n, const char **why)
{
    struct json_members it;
    struct json_member m;
    size_t used = 0;
    bool have_id = false;
    int rc;

    memset(n, 0, sizeof(*n));
    if (!json_members_begin(&it, text, len)) {
        *why = "not a JSON object";
        return false;
    }
    /* Decoded strings are never longer than their raw form; two of them
     * plus terminators fit in len + 2 bytes. */
    n->strings = malloc(len + 2);
    if (n->strings == NULL) {
        *why = "out of memory";
        return false;
    }
    while ((rc = json_members_next(&it, &m)) == 1) {
        if (json_string_equals(m.key, m.key_len, "id")) {
            if (m.kind != JSON_KIND_NUMBER ||
                !notification_parse_id(m.value, m.value_len, &n->id)) {
                *why = "id is not a positive integer";
                goto fail;
            }
            have_id = true;
        } else if (json_string_equals(m.key, m.key_len, "subscriber")) {
            if (n->subscriber != NULL ||
                !take_string(n, &used, &m, &n->subscriber, &n->subscriber_len)) {
                *why = "subscriber is not a string";
                goto fail;
            }
        } else if (json_string_equals(m.key, m.key_len, "type")) {
            if (n->type != NULL || !take_string(n, &used, &m, &n->type, &n->type_len)) {
                *why = "type is not a string";
                goto fail;
            }
        } else if (json_string_equals(m.key, m.key_len, "ts")) {
            if (m.kind != JSON_KIND_NUMBER ||
                !parse_timestamp(m.value, m.value_len, &n->timestamp)) {
                *why = "ts is not a number";
                goto fail;
            }
        } else if (json_string_equals(m.key, m.key_len, "payload")) {
            n->payload = m.value;
            n->payload_len = m.value_len;
        }
    }
    if (rc < 0) {
        *why = "invalid JSON";
        goto fail;
    }
    if (!have_id) {
        *why = "id missing";
        goto fail;
    }
    if ((n->type == NULL) != (n->payload == NULL)) {
        *why = "type and payload must come together";
        goto fail;
    }
    n->complete = n->type != NULL;
    if (n->complete && n->subscriber == NULL) {
        *why = "subscriber missing";
        goto fail;
    }
    return true;

fail:
    notification_clear(n);
    return false;
}

void notification_clear(struct notification *n)
{
    free(n->strings);
    memset(n, 0, sizeof(*n));
}
