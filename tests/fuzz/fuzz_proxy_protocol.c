/*
 * PROXY protocol headers (net/proxy_protocol.c): the first bytes of every
 * connection when PROXY_PROTOCOL=1, so anything a client can send. The
 * input is the start of a connection. Parsing must never read past it; a
 * parsed header lies within it and within PROXY_HEADER_MAX; every prefix of
 * an accepted header is either incomplete or the same header; a refusal
 * says why; an address is an IPv4 or IPv6 one of the right length.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <netinet/in.h>

#include "net/proxy_protocol.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A copy of exactly the input's length, so ASan sees any overread. */
    uint8_t *buf = malloc(size > 0 ? size : 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);

    struct proxy_header h;
    const char *why = NULL;
    enum proxy_result r = proxy_header_parse(buf, size, &h, &why);
    if ((r == PROXY_INVALID) != (why != NULL))
        abort();
    if (r == PROXY_DONE) {
        if (h.length == 0 || h.length > size || h.length > PROXY_HEADER_MAX)
            abort();
        if (h.has_address &&
            !((h.source.ss_family == AF_INET && h.source_len == sizeof(struct sockaddr_in)) ||
              (h.source.ss_family == AF_INET6 && h.source_len == sizeof(struct sockaddr_in6))))
            abort();
        /* The header alone parses the same, and any shorter prefix of it
         * only asks for more. */
        struct proxy_header again;
        why = NULL;
        if (proxy_header_parse(buf, h.length, &again, &why) != PROXY_DONE ||
            again.length != h.length || again.has_address != h.has_address)
            abort();
        for (size_t cut = 0; cut < h.length; cut += 1 + cut / 8) {
            why = NULL;
            if (proxy_header_parse(buf, cut, &again, &why) != PROXY_NEED_MORE)
                abort();
        }
    }
    free(buf);
    return 0;
}
