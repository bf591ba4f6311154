/* Event filters (see event_filter.h). A handful of short types at most, so a
 * linear scan beats any index. */
#include "core/event_filter.h"

#include <stdlib.h>
#include <string.h>

#include "core/sse.h"
#include "util/sql_array.h"

enum event_filter_result event_filter_add(struct event_filter *f, const char *type)
{
    size_t len = strlen(type);
    if (len == 0 || !sse_type_valid(type, len))
        return EVENT_FILTER_INVALID;
    if (event_filter_match_type(f, type, len) && f->count > 0)
        return EVENT_FILTER_ADDED;
    if (f->count == EVENT_FILTER_MAX_TYPES)
        return EVENT_FILTER_TOO_MANY;
    char *copy = strdup(type);
    if (copy == NULL)
        return EVENT_FILTER_NO_MEMORY;
    f->types[f->count++] = copy;
    return EVENT_FILTER_ADDED;
}

bool event_filter_copy(struct event_filter *dst, const struct event_filter *src)
{
    memset(dst, 0, sizeof(*dst));
    for (size_t i = 0; i < src->count; i++) {
        if (event_filter_add(dst, src->types[i]) != EVENT_FILTER_ADDED) {
            event_filter_free(dst);
            return false;
        }
    }
    return true;
}

void event_filter_free(struct event_filter *f)
{
    for (size_t i = 0; i < f->count; i++)
        free(f->types[i]);
    f->count = 0;
}

bool event_filter_empty(const struct event_filter *f)
{
    return f == NULL || f->count == 0;
}

bool event_filter_match_type(const struct event_filter *f, const char *type, size_t len)
{
    if (event_filter_empty(f))
        return true;
    for (size_t i = 0; i < f->count; i++)
        if (strlen(f->types[i]) == len && memcmp(f->types[i], type, len) == 0)
            return true;
    return false;
}

bool event_filter_match(const struct event_filter *f, const struct frame *frame)
{
    if (event_filter_empty(f))
        return true;
    size_t len = 0;
    const char *type = frame_type(frame, &len);
    return event_filter_match_type(f, type, len);
}

char *event_filter_sql_array(const struct event_filter *f, bool *failed)
{
    *failed = false;
    if (event_filter_empty(f))
        return NULL;
    char *out = sql_text_array((const char *const *)f->types, f->count);
    *failed = out == NULL;
    return out;
}
