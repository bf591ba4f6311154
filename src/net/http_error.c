#include "net/http_error.h"

#include <stdio.h>
#include <string.h>

struct http_error_info {
    const char *code;
    int status;
    const char *message;
};

static const struct http_error_info errors[HTTP_ERROR_COUNT] = {
#define HTTP_ERROR_INFO(name, code, status, message) {code, status, message},
    HTTP_ERRORS(HTTP_ERROR_INFO)
#undef HTTP_ERROR_INFO
};

const char *http_error_code(enum http_error e)
{
    return errors[e].code;
}

int http_error_status(enum http_error e)
{
    return errors[e].status;
}

const char *http_status_text(int status)
{
    switch (status) {
    case 101:
        return "Switching Protocols";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 413:
        return "Content Too Large";
    case 426:
        return "Upgrade Required";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    default:
        return "Unknown";
    }
}

/* Messages may quote client input (a reason from a parser): escaped as JSON
 * strings want, non-ASCII bytes passed through (callers give UTF-8). */
static size_t put_json_string(char *out, size_t size, size_t o, const char *s)
{
    for (; *s != '\0' && o + 7 < size; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            o += (size_t)snprintf(out + o, size - o, "\\u%04x", c);
        } else {
            out[o++] = (char)c;
        }
    }
    return o;
}

size_t http_error_body(enum http_error e, const char *message, char *out, size_t size)
{
    size_t o = 0;
    if (size < 64)
        return 0;
    o += (size_t)snprintf(out, size, "{\"error\":\"%s\",\"message\":\"", errors[e].code);
    o = put_json_string(out, size - 4, o, message != NULL ? message : errors[e].message);
    memcpy(out + o, "\"}\n", 4);
    return o + 3;
}
