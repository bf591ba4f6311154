#include "api/request.h"

#include <stdlib.h>
#include <string.h>

#include "util/utf8.h"

bool request_consumer_id_valid(const char *id, size_t max_bytes, const char **why)
{
    size_t len = id != NULL ? strlen(id) : 0;
    if (len == 0) {
        *why = "consumer id is empty";
        return false;
    }
    if (len > max_bytes) {
        *why = "consumer id is too long";
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)id[i];
        if (c < 0x20 || c == 0x7f) {
            *why = "consumer id contains control characters";
            return false;
        }
    }
    if (!utf8_valid(id, len)) {
        *why = "consumer id is not valid UTF-8";
        return false;
    }
    /* C1 controls (U+0080..U+009F, encoded C2 80..C2 9F) are controls too;
     * U+0085 breaks lines in some log viewers. */
    for (size_t i = 0; i + 1 < len; i++) {
        if ((unsigned char)id[i] == 0xc2 && (unsigned char)id[i + 1] <= 0x9f) {
            *why = "consumer id contains control characters";
            return false;
        }
    }
    return true;
}

static enum request_consumers add_one(struct consumer_set *set, const char *id, size_t len,
                                      size_t max_bytes, size_t max_count, const char **why)
{
    char *copy = strndup(id, len);
    if (copy == NULL)
        return REQUEST_CONSUMERS_NO_MEMORY;
    enum request_consumers result = REQUEST_CONSUMERS_INVALID;
    if (strlen(copy) == len && request_consumer_id_valid(copy, max_bytes, why)) {
        switch (consumer_set_add(set, copy, len, max_count)) {
        case CONSUMER_SET_ADDED:
        case CONSUMER_SET_DUPLICATE:
            result = REQUEST_CONSUMERS_OK;
            break;
        case CONSUMER_SET_TOO_MANY:
            result = REQUEST_CONSUMERS_TOO_MANY;
            break;
        case CONSUMER_SET_NO_MEMORY:
            result = REQUEST_CONSUMERS_NO_MEMORY;
            break;
        }
    } else if (strlen(copy) != len) {
        *why = "consumer id contains control characters";
    }
    free(copy);
    return result;
}

enum request_consumers request_add_consumers(struct consumer_set *set, const char *value, bool list,
                                             size_t max_bytes, size_t max_count, const char **why)
{
    if (!list)
        return add_one(set, value, strlen(value), max_bytes, max_count, why);
    for (const char *p = value;;) {
        size_t n = strcspn(p, ",");
        const char *start = p, *end = p + n;
        while (start < end && (*start == ' ' || *start == '\t'))
            start++;
        while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        enum request_consumers result =
            add_one(set, start, (size_t)(end - start), max_bytes, max_count, why);
        if (result != REQUEST_CONSUMERS_OK)
            return result;
        if (p[n] == '\0')
            return REQUEST_CONSUMERS_OK;
        p += n + 1;
    }
}

enum last_event_id request_parse_last_event_id(const char *value, int64_t *out)
{
    if (value == NULL)
        return LAST_EVENT_ID_ABSENT;
    const char *p = value;
    while (*p == ' ' || *p == '\t')
        p++;
    const char *end = p + strlen(p);
    while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    if (p == end)
        return LAST_EVENT_ID_ABSENT;

    int64_t v = 0;
    for (; p < end; p++) {
        if (*p < '0' || *p > '9')
            return LAST_EVENT_ID_INVALID;
        int digit = *p - '0';
        if (v > (INT64_MAX - digit) / 10)
            return LAST_EVENT_ID_INVALID;
        v = v * 10 + digit;
    }
    *out = v;
    return LAST_EVENT_ID_PRESENT;
}
