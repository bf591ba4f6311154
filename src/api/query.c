#include "api/query.h"

#include <stdlib.h>
#include <string.h>

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

/* Decodes [p, end) into out (NUL-terminated); false on a bad escape. */
static bool decode(const char *p, const char *end, char *out, size_t *len)
{
    size_t o = 0;
    for (; p < end; p++) {
        if (*p == '+') {
            out[o++] = ' ';
        } else if (*p == '%') {
            int hi, lo;
            if (end - p < 3 || (hi = hex_value(p[1])) < 0 || (lo = hex_value(p[2])) < 0)
                return false;
            char c = (char)(hi * 16 + lo);
            if (c == '\0')
                return false;
            out[o++] = c;
            p += 2;
        } else {
            out[o++] = *p;
        }
    }
    out[o] = '\0';
    *len = o;
    return true;
}

bool query_parse(const char *text, struct query *q)
{
    memset(q, 0, sizeof(*q));
    if (text == NULL || *text == '\0')
        return true;
    size_t len = strlen(text);
    /* Decoded text is never longer; one NUL per name and per value. */
    q->storage = malloc(len + 2 * QUERY_MAX_PARAMS + 2);
    if (q->storage == NULL)
        return false;
    size_t used = 0;
    for (const char *p = text; *p != '\0';) {
        const char *amp = strchr(p, '&');
        const char *end = amp != NULL ? amp : p + strlen(p);
        if (end > p) {
            if (q->count == QUERY_MAX_PARAMS)
                goto fail;
            const char *eq = memchr(p, '=', (size_t)(end - p));
            const char *name_end = eq != NULL ? eq : end;
            size_t n = 0;
            char *name = q->storage + used;
            if (!decode(p, name_end, name, &n))
                goto fail;
            used += n + 1;
            char *value = q->storage + used;
            if (!decode(eq != NULL ? eq + 1 : end, end, value, &n))
                goto fail;
            used += n + 1;
            q->params[q->count++] = (struct query_param){name, value};
        }
        p = amp != NULL ? amp + 1 : end;
    }
    return true;
fail:
    query_free(q);
    return false;
}

void query_free(struct query *q)
{
    free(q->storage);
    q->storage = NULL;
    q->count = 0;
}

const char *query_get(const struct query *q, const char *name)
{
    for (size_t i = 0; i < q->count; i++) {
        if (strcmp(q->params[i].name, name) == 0)
            return q->params[i].value;
    }
    return NULL;
}
