#include "util/number.h"

bool parse_int64(const char *text, size_t len, int64_t min, int64_t max, int64_t *out)
{
    size_t i = 0;
    bool negative = len > 0 && text[0] == '-';
    if (negative)
        i++;
    if (i == len)
        return false;
    /* Accumulate as a negative number: its range includes INT64_MIN. */
    int64_t v = 0;
    for (; i < len; i++) {
        if (text[i] < '0' || text[i] > '9')
            return false;
        int digit = text[i] - '0';
        if (v < (INT64_MIN + digit) / 10)
            return false;
        v = v * 10 - digit;
    }
    if (!negative) {
        if (v == INT64_MIN)
            return false;
        v = -v;
    }
    if (v < min || v > max)
        return false;
    *out = v;
    return true;
}
