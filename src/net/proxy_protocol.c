/*
 * Both versions are recognised by their first bytes; a prefix of either is
 * NEED_MORE, anything else INVALID at once, so a client that does not speak
 * the protocol is refused after its first read rather than at the deadline.
 */
#include "net/proxy_protocol.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "util/number.h"

static const uint8_t v2_signature[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
                                         0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};
static const char v1_prefix[] = "PROXY ";
#define V1_MAX 107

static bool is_prefix(const uint8_t *buf, size_t len, const void *of, size_t of_len)
{
    return memcmp(buf, of, len < of_len ? len : of_len) == 0;
}

/* Splits the v1 line (without CRLF) at spaces; more than max fields
 * returns max + 1. */
static size_t split_fields(char *line, char **fields, size_t max)
{
    size_t n = 0;
    for (char *p = line;;) {
        if (n == max)
            return max + 1;
        fields[n++] = p;
        char *space = strchr(p, ' ');
        if (space == NULL)
            return n;
        *space = '\0';
        p = space + 1;
    }
}

static bool parse_port(const char *text, uint16_t *port)
{
    int64_t v = 0;
    size_t len = strlen(text);
    /* No leading zeros, as the specification asks of v1 numbers. */
    if (len == 0 || (len > 1 && text[0] == '0') || !parse_int64(text, len, 0, 65535, &v))
        return false;
    *port = (uint16_t)v;
    return true;
}

static enum proxy_result parse_v1(const uint8_t *buf, size_t len, struct proxy_header *out,
                                  const char **why)
{
    const uint8_t *end = memchr(buf, '\n', len < V1_MAX ? len : V1_MAX);
    if (end == NULL) {
        if (len >= V1_MAX) {
            *why = "PROXY v1 line too long";
            return PROXY_INVALID;
        }
        return PROXY_NEED_MORE;
    }
    size_t line_len = (size_t)(end - buf);
    if (line_len == 0 || buf[line_len - 1] != '\r') {
        *why = "PROXY v1 line does not end with CRLF";
        return PROXY_INVALID;
    }
    char line[V1_MAX + 1];
    memcpy(line, buf, line_len - 1);
    line[line_len - 1] = '\0';
    if (memchr(line, '\0', line_len - 1) != NULL) {
        *why = "PROXY v1 line holds a NUL";
        return PROXY_INVALID;
    }
    char *f[6];
    size_t n = split_fields(line, f, 6);
    memset(out, 0, sizeof(*out));
    out->length = line_len + 1;
    if (n >= 2 && strcmp(f[1], "UNKNOWN") == 0)
        return PROXY_DONE; /* the rest of the line is to be ignored */
    if (n != 6 || (strcmp(f[1], "TCP4") != 0 && strcmp(f[1], "TCP6") != 0)) {
        *why = "PROXY v1 line is not 'PROXY TCP4|TCP6 src dst sport dport'";
        return PROXY_INVALID;
    }
    uint16_t sport, dport;
    if (!parse_port(f[4], &sport) || !parse_port(f[5], &dport)) {
        *why = "PROXY v1 port out of range";
        return PROXY_INVALID;
    }
    if (f[1][3] == '4') {
        struct sockaddr_in *sin = (struct sockaddr_in *)&out->source;
        struct in_addr dst;
        if (inet_pton(AF_INET, f[2], &sin->sin_addr) != 1 || inet_pton(AF_INET, f[3], &dst) != 1) {
            *why = "PROXY v1 address is not IPv4";
            return PROXY_INVALID;
        }
        sin->sin_family = AF_INET;
        sin->sin_port = htons(sport);
        out->source_len = sizeof(*sin);
    } else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&out->source;
        struct in6_addr dst;
        if (inet_pton(AF_INET6, f[2], &sin6->sin6_addr) != 1 ||
            inet_pton(AF_INET6, f[3], &dst) != 1) {
            *why = "PROXY v1 address is not IPv6";
            return PROXY_INVALID;
        }
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(sport);
        out->source_len = sizeof(*sin6);
    }
    out->has_address = true;
    return PROXY_DONE;
}

static enum proxy_result parse_v2(const uint8_t *buf, size_t len, struct proxy_header *out,
                                  const char **why)
{
    if (len < 16)
        return PROXY_NEED_MORE;
    uint8_t version = buf[12] >> 4, command = buf[12] & 0x0f;
    uint8_t family = buf[13] >> 4, transport = buf[13] & 0x0f;
    size_t body = ((size_t)buf[14] << 8) | buf[15];
    if (version != 2 || command > 1) {
        *why = "PROXY v2 version or command unknown";
        return PROXY_INVALID;
    }
    if (16 + body > PROXY_HEADER_MAX) {
        *why = "PROXY v2 header too long";
        return PROXY_INVALID;
    }
    if (len < 16 + body)
        return PROXY_NEED_MORE;
    memset(out, 0, sizeof(*out));
    out->length = 16 + body;
    /* LOCAL: the balancer speaking for itself; UNSPEC, UDP and unix
     * sockets carry no TCP client address. */
    if (command == 0 || transport != 1 || (family != 1 && family != 2))
        return PROXY_DONE;
    const uint8_t *a = buf + 16;
    if (family == 1) {
        if (body < 12) {
            *why = "PROXY v2 IPv4 address block too short";
            return PROXY_INVALID;
        }
        struct sockaddr_in *sin = (struct sockaddr_in *)&out->source;
        sin->sin_family = AF_INET;
        memcpy(&sin->sin_addr, a, 4);
        memcpy(&sin->sin_port, a + 8, 2);
        out->source_len = sizeof(*sin);
    } else {
        if (body < 36) {
            *why = "PROXY v2 IPv6 address block too short";
            return PROXY_INVALID;
        }
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&out->source;
        sin6->sin6_family = AF_INET6;
        memcpy(&sin6->sin6_addr, a, 16);
        memcpy(&sin6->sin6_port, a + 32, 2);
        out->source_len = sizeof(*sin6);
    }
    out->has_address = true;
    return PROXY_DONE;
}

enum proxy_result proxy_header_parse(const uint8_t *buf, size_t len, struct proxy_header *out,
                                     const char **why)
{
    if (len == 0)
        return PROXY_NEED_MORE;
    if (is_prefix(buf, len, v2_signature, sizeof(v2_signature)))
        return len < sizeof(v2_signature) ? PROXY_NEED_MORE : parse_v2(buf, len, out, why);
    if (is_prefix(buf, len, v1_prefix, sizeof(v1_prefix) - 1))
        return len < sizeof(v1_prefix) - 1 ? PROXY_NEED_MORE : parse_v1(buf, len, out, why);
    *why = "connection does not start with a PROXY protocol header";
    return PROXY_INVALID;
}
