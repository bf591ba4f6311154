#include "net/head.h"

#include <http_parser.h>
#include <stdlib.h>
#include <string.h>

void head_reset(struct head *h, size_t max_bytes)
{
    h->len = 0;
    h->max_bytes = max_bytes;
    h->target_len = 0;
    h->count = 0;
    h->in_value = false;
}

void head_free(struct head *h)
{
    free(h->arena);
    h->arena = NULL;
    h->cap = 0;
    h->len = 0;
}

static bool append(struct head *h, const char *at, size_t len, enum http_error *error)
{
    if (h->len + len + 1 > h->max_bytes) {
        *error = HTTP_ERROR_HEADER_TOO_LARGE;
        return false;
    }
    if (h->len + len + 1 > h->cap) {
        size_t cap = h->cap == 0 ? 1024 : h->cap;
        while (cap < h->len + len + 1)
            cap *= 2;
        if (cap > h->max_bytes)
            cap = h->max_bytes;
        char *grown = realloc(h->arena, cap);
        if (grown == NULL) {
            *error = HTTP_ERROR_OUT_OF_MEMORY;
            return false;
        }
        h->arena = grown;
        h->cap = cap;
    }
    memcpy(h->arena + h->len, at, len);
    h->len += len;
    return true;
}

static bool text_allowed(const char *at, size_t len, enum http_error *error)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)at[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f) {
            *error = HTTP_ERROR_BAD_REQUEST;
            return false;
        }
    }
    return true;
}

bool head_add_target(struct head *h, const char *at, size_t len, enum http_error *error)
{
    if (!text_allowed(at, len, error) || !append(h, at, len, error))
        return false;
    h->target_len += len;
    return true;
}

bool head_add_name(struct head *h, const char *at, size_t len, enum http_error *error)
{
    if (h->count == 0 || h->in_value) {
        if (h->count == HEAD_MAX_FIELDS) {
            *error = HTTP_ERROR_HEADER_TOO_LARGE;
            return false;
        }
        /* Ends the target or the previous value. */
        if (!append(h, "", 1, error))
            return false;
        h->spans[h->count].name = h->len;
        h->spans[h->count++].value = 0;
        h->in_value = false;
    }
    return text_allowed(at, len, error) && append(h, at, len, error);
}

bool head_add_value(struct head *h, const char *at, size_t len, enum http_error *error)
{
    if (h->count == 0) {
        *error = HTTP_ERROR_BAD_REQUEST;
        return false;
    }
    if (!text_allowed(at, len, error))
        return false;
    if (!h->in_value) {
        if (!append(h, "", 1, error))
            return false;
        h->spans[h->count - 1].value = h->len;
        h->in_value = true;
    }
    return append(h, at, len, error);
}

bool head_finish(struct head *h, struct exchange *x, enum http_error *error)
{
    if (!append(h, "", 1, error))
        return false;
    char *target = h->arena;
    target[h->target_len] = '\0';
    if (target[0] != '/' && strcmp(target, "*") != 0) {
        /* absolute-form, what a client talking to a proxy sends */
        struct http_parser_url u;
        http_parser_url_init(&u);
        /* http_parser takes any target starting with '*' as a path
         * ("*x"): only a URL with a scheme and a host, whose path starts
         * with '/', is absolute-form. */
        if (http_parser_parse_url(target, h->target_len, 0, &u) != 0 ||
            (u.field_set & (1 << UF_SCHEMA | 1 << UF_HOST | 1 << UF_PATH)) !=
                (1 << UF_SCHEMA | 1 << UF_HOST | 1 << UF_PATH) ||
            target[u.field_data[UF_PATH].off] != '/') {
            *error = HTTP_ERROR_BAD_REQUEST;
            return false;
        }
        target += u.field_data[UF_PATH].off;
    }
    char *question = strchr(target, '?');
    if (question != NULL)
        *question = '\0';
    x->path = target;
    x->query = question != NULL ? question + 1 : NULL;
    for (size_t i = 0; i < h->count; i++) {
        char *name = h->arena + h->spans[i].name;
        for (char *c = name; *c != '\0'; c++)
            *c = (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
        h->fields[i].name = name;
        h->fields[i].value = h->spans[i].value != 0 ? h->arena + h->spans[i].value : "";
    }
    x->headers = h->fields;
    x->header_count = h->count;
    return true;
}
