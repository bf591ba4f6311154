/*
 * Query strings (api/query.c): the text after '?' of any request. An
 * accepted string yields at most QUERY_MAX_PARAMS parameters, each a
 * NUL-terminated name and value inside the decoded storage, with no NUL
 * decoded into them; query_get finds the first value of every name.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/query.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The query reaches the parser as a C string: stop at a NUL. */
    char *text = malloc(size + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    size_t len = strlen(text);

    struct query q;
    if (query_parse(text, &q)) {
        if (q.count > QUERY_MAX_PARAMS)
            abort();
        for (size_t i = 0; i < q.count; i++) {
            const char *name = q.params[i].name;
            const char *value = q.params[i].value;
            /* Decoding never lengthens: each lies within len + 1 bytes. */
            if (strlen(name) > len || strlen(value) > len)
                abort();
            const char *first = query_get(&q, name);
            if (first == NULL)
                abort();
            for (size_t j = 0; j < i; j++) {
                if (strcmp(q.params[j].name, name) == 0) {
                    if (first != q.params[j].value)
                        abort();
                    break;
                }
            }
        }
        query_free(&q);
    }
    free(text);
    return 0;
}
