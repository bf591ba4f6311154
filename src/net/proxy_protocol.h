/*
 * proxy_protocol: the header a load balancer (haproxy's send-proxy and
 * send-proxy-v2) puts before a connection's first byte to say whom it
 * carries. Pure parsing, no I/O.
 *
 * Behind a balancer every connection comes from the balancer's address, so
 * per-client limits and logs need the client's address from this header.
 * It is only trusted when PROXY_PROTOCOL=1: then every connection must start
 * with one, and a connection without it is closed (a client that could
 * reach the port directly must not be able to claim any address).
 *
 * Version 1 is a text line, "PROXY TCP4 <src> <dst> <sport> <dport>\r\n"
 * (TCP6 likewise, or "PROXY UNKNOWN ...\r\n"), at most 107 bytes. Version 2
 * is binary: a 12-byte signature, version and command, family, a 16-bit
 * length, the addresses, then optional TLVs, which are skipped. A LOCAL
 * command (the balancer's own health check) or an UNKNOWN/UNSPEC family
 * carries no client address: the connection's own address is used.
 */
#ifndef PIPER_PROXY_PROTOCOL_H
#define PIPER_PROXY_PROTOCOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Longest header accepted: a v2 header with up to 2 KiB of TLVs. */
#define PROXY_HEADER_MAX (16 + 2048)

enum proxy_result {
    PROXY_NEED_MORE, /* a valid prefix: read more */
    PROXY_DONE,      /* *out is filled */
    PROXY_INVALID,   /* *why says why */
};

struct proxy_header {
    size_t length;    /* bytes of the header, to consume */
    bool has_address; /* false: LOCAL or unknown family */
    struct sockaddr_storage source;
    socklen_t source_len;
};

/* Parses the start of a connection's bytes. */
enum proxy_result proxy_header_parse(const uint8_t *buf, size_t len, struct proxy_header *out,
                                     const char **why);

#endif
