#include "util/sql_array.h"

#include <stdlib.h>
#include <string.h>

char *sql_text_array(const char *const *items, size_t count)
{
    size_t size = 3;
    for (size_t i = 0; i < count; i++)
        size += 2 * strlen(items[i]) + 3;
    char *out = malloc(size);
    if (out == NULL)
        return NULL;
    size_t o = 0;
    out[o++] = '{';
    for (size_t i = 0; i < count; i++) {
        if (i > 0)
            out[o++] = ',';
        out[o++] = '"';
        /* Inside a quoted element only '"' and '\' need escaping. */
        for (const char *p = items[i]; *p != '\0'; p++) {
            if (*p == '"' || *p == '\\')
                out[o++] = '\\';
            out[o++] = *p;
        }
        out[o++] = '"';
    }
    out[o++] = '}';
    out[o] = '\0';
    return out;
}
