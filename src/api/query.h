/*
 * query: the parameters of a request's query string.
 *
 * "a=1&b=x%20y&a=2": names and values are percent-decoded ('+' is a
 * space), a name may repeat (every value is kept, in order), and a
 * parameter without '=' has an empty value. Refused: a malformed escape, an
 * escape of NUL (ids must travel in C strings), or more than QUERY_MAX_PARAMS
 * parameters. Pure; the request layer answers a refusal with 400
 * invalid_query.
 */
#ifndef PIPER_QUERY_H
#define PIPER_QUERY_H

#include <stdbool.h>
#include <stddef.h>

#define QUERY_MAX_PARAMS 64

struct query_param {
    const char *name;
    const char *value;
};

struct query {
    struct query_param params[QUERY_MAX_PARAMS];
    size_t count;
    char *storage; /* owned: the decoded text */
};

/* text may be NULL (no query). On false, q holds nothing to free. */
bool query_parse(const char *text, struct query *q) __attribute__((warn_unused_result));
void query_free(struct query *q);

/* The first value of name, or NULL. */
const char *query_get(const struct query *q, const char *name);

#endif
