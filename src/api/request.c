#include "api/request.h"

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
