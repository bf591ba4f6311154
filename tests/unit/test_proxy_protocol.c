/* PROXY protocol v1 and v2 headers (net/proxy_protocol.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "net/proxy_protocol.h"

static enum proxy_result parse(const void *buf, size_t len, struct proxy_header *h)
{
    const char *why = NULL;
    enum proxy_result r = proxy_header_parse(buf, len, h, &why);
    if (r == PROXY_INVALID)
        assert_non_null(why);
    return r;
}

static void assert_ipv4(const struct proxy_header *h, const char *addr, uint16_t port)
{
    char text[INET_ADDRSTRLEN];
    const struct sockaddr_in *sin = (const struct sockaddr_in *)&h->source;
    assert_true(h->has_address);
    assert_int_equal(sin->sin_family, AF_INET);
    assert_non_null(inet_ntop(AF_INET, &sin->sin_addr, text, sizeof(text)));
    assert_string_equal(text, addr);
    assert_int_equal(ntohs(sin->sin_port), port);
}

static void v1__tcp4__address_and_length(void **state)
{
    (void)state;
    const char text[] = "PROXY TCP4 203.0.113.7 10.0.0.1 51234 4000\r\nGET / HTTP/1.1\r\n";
    struct proxy_header h;
    assert_int_equal(parse(text, sizeof(text) - 1, &h), PROXY_DONE);
    assert_int_equal(h.length, strlen("PROXY TCP4 203.0.113.7 10.0.0.1 51234 4000\r\n"));
    assert_ipv4(&h, "203.0.113.7", 51234);
}

static void v1__tcp6__address(void **state)
{
    (void)state;
    const char text[] = "PROXY TCP6 2001:db8::1 2001:db8::2 443 4000\r\n";
    struct proxy_header h;
    assert_int_equal(parse(text, sizeof(text) - 1, &h), PROXY_DONE);
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&h.source;
    assert_int_equal(sin6->sin6_family, AF_INET6);
    assert_int_equal(ntohs(sin6->sin6_port), 443);
    assert_int_equal(sin6->sin6_addr.s6_addr[15], 1);
}

static void v1__unknown__no_address(void **state)
{
    (void)state;
    const char text[] = "PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n";
    struct proxy_header h;
    assert_int_equal(parse(text, sizeof(text) - 1, &h), PROXY_DONE);
    assert_false(h.has_address);
    assert_int_equal(h.length, sizeof(text) - 1);
}

static void v1__every_prefix__need_more(void **state)
{
    (void)state;
    const char text[] = "PROXY TCP4 192.0.2.1 192.0.2.2 1 2\r\n";
    struct proxy_header h;
    for (size_t len = 0; len < sizeof(text) - 1; len++)
        assert_int_equal(parse(text, len, &h), PROXY_NEED_MORE);
    assert_int_equal(parse(text, sizeof(text) - 1, &h), PROXY_DONE);
}

static void v1__malformed__invalid(void **state)
{
    (void)state;
    const char *bad[] = {
        "GET / HTTP/1.1\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",       /* LF without CR */
        "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",       /* missing field */
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",   /* extra field */
        "PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n",    /* empty field */
        "PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n",       /* not an address */
        "PROXY TCP4 ::1 5.6.7.8 1 2\r\n",         /* wrong family */
        "PROXY TCP6 1.2.3.4 ::1 1 2\r\n",         /* wrong family */
        "PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n", /* port range */
        "PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n",    /* leading zero */
        "PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n",    /* sign */
        "PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n",     /* protocol */
        "proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n",     /* case */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct proxy_header h;
        if (parse(bad[i], strlen(bad[i]), &h) != PROXY_INVALID)
            fail_msg("accepted: %s", bad[i]);
    }
    /* No CRLF within the longest allowed line. */
    char long_line[200];
    memset(long_line, 'x', sizeof(long_line));
    memcpy(long_line, "PROXY TCP4 ", 11);
    struct proxy_header h;
    assert_int_equal(parse(long_line, sizeof(long_line), &h), PROXY_INVALID);
    /* A NUL inside the line. */
    const char nul[] = "PROXY TCP4 1.2.3.4\0 5.6.7.8 1 2\r\n";
    assert_int_equal(parse(nul, sizeof(nul) - 1, &h), PROXY_INVALID);
}

/* Builds a v2 header: command, family/transport byte, address block,
 * extra TLV bytes. Returns its length. */
static size_t v2(uint8_t *out, uint8_t command, uint8_t fam, const uint8_t *addr, size_t addr_len,
                 size_t tlv_len)
{
    static const uint8_t sig[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
                                    0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};
    memcpy(out, sig, 12);
    out[12] = (uint8_t)(0x20 | command);
    out[13] = fam;
    size_t body = addr_len + tlv_len;
    out[14] = (uint8_t)(body >> 8);
    out[15] = (uint8_t)body;
    if (addr_len > 0)
        memcpy(out + 16, addr, addr_len);
    memset(out + 16 + addr_len, 0xee, tlv_len);
    return 16 + body;
}

static void v2__tcp4_with_tlvs__address_and_length(void **state)
{
    (void)state;
    uint8_t addr[12] = {198, 51, 100, 9, 10, 0, 0, 1, 0xc8, 0x3a, 0x0f, 0xa0};
    uint8_t buf[256];
    size_t len = v2(buf, 1, 0x11, addr, sizeof(addr), 20);
    struct proxy_header h;
    for (size_t i = 0; i < len; i++)
        assert_int_equal(parse(buf, i, &h), PROXY_NEED_MORE);
    assert_int_equal(parse(buf, len, &h), PROXY_DONE);
    assert_int_equal(h.length, len);
    assert_ipv4(&h, "198.51.100.9", 0xc83a);
}

static void v2__tcp6__address(void **state)
{
    (void)state;
    uint8_t addr[36] = {0x20, 0x01, 0x0d, 0xb8};
    addr[15] = 7;
    addr[32] = 0x01;
    addr[33] = 0xbb;
    uint8_t buf[128];
    size_t len = v2(buf, 1, 0x21, addr, sizeof(addr), 0);
    struct proxy_header h;
    assert_int_equal(parse(buf, len, &h), PROXY_DONE);
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&h.source;
    assert_int_equal(sin6->sin6_family, AF_INET6);
    assert_int_equal(sin6->sin6_addr.s6_addr[15], 7);
    assert_int_equal(ntohs(sin6->sin6_port), 443);
}

static void v2__local_and_unspec__no_address(void **state)
{
    (void)state;
    uint8_t addr[12] = {1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0, 2};
    uint8_t buf[64];
    struct proxy_header h;
    size_t len = v2(buf, 0, 0x11, addr, sizeof(addr), 0); /* LOCAL */
    assert_int_equal(parse(buf, len, &h), PROXY_DONE);
    assert_false(h.has_address);
    len = v2(buf, 1, 0x00, NULL, 0, 0); /* UNSPEC */
    assert_int_equal(parse(buf, len, &h), PROXY_DONE);
    assert_false(h.has_address);
    assert_int_equal(h.length, 16);
}

static void v2__malformed__invalid(void **state)
{
    (void)state;
    uint8_t addr[12] = {0};
    uint8_t buf[PROXY_HEADER_MAX + 64];
    struct proxy_header h;
    size_t len = v2(buf, 1, 0x11, addr, 8, 0); /* block too short for IPv4 */
    assert_int_equal(parse(buf, len, &h), PROXY_INVALID);
    len = v2(buf, 2, 0x11, addr, 12, 0); /* unknown command */
    assert_int_equal(parse(buf, len, &h), PROXY_INVALID);
    len = v2(buf, 1, 0x11, addr, 12, 0);
    buf[12] = 0x11; /* version 1 in a v2 signature */
    assert_int_equal(parse(buf, len, &h), PROXY_INVALID);
    len = v2(buf, 1, 0x11, addr, 12, PROXY_HEADER_MAX); /* too long */
    assert_int_equal(parse(buf, 16, &h), PROXY_INVALID);
    (void)len;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(v1__tcp4__address_and_length),
        cmocka_unit_test(v1__tcp6__address),
        cmocka_unit_test(v1__unknown__no_address),
        cmocka_unit_test(v1__every_prefix__need_more),
        cmocka_unit_test(v1__malformed__invalid),
        cmocka_unit_test(v2__tcp4_with_tlvs__address_and_length),
        cmocka_unit_test(v2__tcp6__address),
        cmocka_unit_test(v2__local_and_unspec__no_address),
        cmocka_unit_test(v2__malformed__invalid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
