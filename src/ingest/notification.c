/*
 * Notification parsing on top of the JSON member scanner, which validates
 * the whole text (members this parser ignores included) without building a
 * tree.
 */
#include "ingest/notification.h"

#include <stdlib.h>
#include <string.h>

#include "util/json_text.h"

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

/* Decodes a string member; a decoded string is never longer than its raw
 * form. */
static bool take_string(const struct json_member *m, char **out, size_t *out_len)
{
    if (m->kind != JSON_KIND_STRING)
        return false;
    char *text = malloc(m->value_len);
    if (text == NULL || !json_string_decode(m->value, m->value_len, text, out_len)) {
        free(text);
        return false;
    }
    *out = text;
    return true;
}

bool notification_parse(const char *text, size_t len, struct notification *n, const char **why)
{
    struct json_members it;
    struct json_member m;
    bool have_id = false;
    int rc;

    memset(n, 0, sizeof(*n));
    if (!json_members_begin(&it, text, len)) {
        *why = "not a JSON object";
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
            if (n->subscriber != NULL || !take_string(&m, &n->subscriber, &n->subscriber_len)) {
                *why = "subscriber is not a string";
                goto fail;
            }
        } else if (json_string_equals(m.key, m.key_len, "type")) {
            if (n->type != NULL || !take_string(&m, &n->type, &n->type_len)) {
                *why = "type is not a string";
                goto fail;
            }
        } else if (json_string_equals(m.key, m.key_len, "ts")) {
            char number[64];
            char *end = NULL;
            if (m.kind != JSON_KIND_NUMBER || m.value_len >= sizeof(number)) {
                *why = "ts is not a number";
                goto fail;
            }
            memcpy(number, m.value, m.value_len);
            number[m.value_len] = '\0';
            n->ts = strtod(number, &end);
            if (end != number + m.value_len) {
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
    n->has_row = n->type != NULL && n->payload != NULL;
    return true;

fail:
    notification_clear(n);
    return false;
}

void notification_clear(struct notification *n)
{
    free(n->subscriber);
    free(n->type);
    memset(n, 0, sizeof(*n));
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

bool notification_split_signed(const char *text, size_t len, unsigned char mac[32],
                               const char **body, size_t *body_len)
{
    if (len <= NOTIFICATION_MAC_HEX + 1 || text[NOTIFICATION_MAC_HEX] != ' ')
        return false;
    for (size_t i = 0; i < 32; i++) {
        int hi = hex_digit(text[2 * i]), lo = hex_digit(text[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        mac[i] = (unsigned char)(hi << 4 | lo);
    }
    *body = text + NOTIFICATION_MAC_HEX + 1;
    *body_len = len - NOTIFICATION_MAC_HEX - 1;
    return true;
}
