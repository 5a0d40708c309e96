/*
 * fuzz_forwarded — the X-Forwarded-For trust rules (oe_forwarded_compute) on hostile input.
 * Layout: byte 0 picks the peer family (IPv4, IPv6, IPv4-mapped IPv6, none), then 16 bytes
 * of peer address, byte 17 the number of trusted ranges (each: family byte, 16 address
 * bytes, prefix byte), then "xff\n" and the real-IP header value (rest; absent when no
 * separator). Checks the result's invariants.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "proxy/forwarded.h"

#define CHECK(x)                                                                                                       \
    do {                                                                                                               \
        if (!(x))                                                                                                      \
            __builtin_trap();                                                                                          \
    } while (0)

static int is_ip(const char *s)
{
    unsigned char b[16];
    return inet_pton(AF_INET, s, b) == 1 || inet_pton(AF_INET6, s, b) == 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 64 * 1024)
        return 0;
    fuzz_reader_t r = {data, size};
    uint8_t fam = fuzz_byte(&r) % 4;
    uint8_t a[16] = {0};
    for (int i = 0; i < 16; i++)
        a[i] = fuzz_byte(&r);

    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in *v4 = (void *)&ss;
    struct sockaddr_in6 *v6 = (void *)&ss;
    if (fam == 0) {
        v4->sin_family = AF_INET;
        memcpy(&v4->sin_addr, a, 4);
    } else if (fam == 1) {
        v6->sin6_family = AF_INET6;
        memcpy(&v6->sin6_addr, a, 16);
    } else if (fam == 2) {
        v6->sin6_family = AF_INET6;
        memset(v6->sin6_addr.s6_addr + 10, 0xff, 2);
        memcpy(v6->sin6_addr.s6_addr + 12, a, 4);
    }

    oe_cidr_t trusted[8];
    size_t nt = fuzz_byte(&r) % 9;
    for (size_t i = 0; i < nt; i++) {
        uint8_t f = fuzz_byte(&r);
        trusted[i].family = (f & 1) ? AF_INET6 : AF_INET;
        for (int j = 0; j < 16; j++)
            trusted[i].addr[j] = fuzz_byte(&r);
        trusted[i].prefix = fuzz_byte(&r) % (trusted[i].family == AF_INET ? 33 : 129);
    }

    size_t xlen, rlen;
    int has_real = 0;
    char *xff = fuzz_next(&r, '\n', &xlen);
    has_real = r.left > 0;
    char *real = fuzz_next(&r, '\n', &rlen);

    oe_fwd_input_t in = {
        .peer = fam == 3 ? NULL : (struct sockaddr *)&ss,
        .trusted = nt ? trusted : NULL,
        .trusted_count = nt,
        .xff = xlen || (size & 1) ? xff : NULL,
        .xff_len = xlen,
        .real_ip = has_real ? real : NULL,
        .real_ip_len = rlen,
    };
    oe_fwd_result_t out;
    oe_forwarded_compute(&in, &out);

    CHECK(memchr(out.peer_ip, '\0', sizeof(out.peer_ip)) != NULL);
    CHECK(memchr(out.client_ip, '\0', sizeof(out.client_ip)) != NULL);
    CHECK(out.xff_len < sizeof(out.xff) && strlen(out.xff) == out.xff_len);
    /* nothing but addresses, commas and spaces may go upstream */
    for (size_t i = 0; i < out.xff_len; i++) {
        char c = out.xff[i];
        CHECK((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || c == '.' || c == ':' || c == ',' || c == ' ');
    }
    if (in.peer != NULL) {
        CHECK(is_ip(out.peer_ip));
        CHECK(is_ip(out.client_ip));
        /* the peer always ends the list */
        size_t pl = strlen(out.peer_ip);
        CHECK(out.xff_len >= pl && strcmp(out.xff + out.xff_len - pl, out.peer_ip) == 0);
        if (!out.trusted) {
            CHECK(strcmp(out.client_ip, out.peer_ip) == 0);
            CHECK(strcmp(out.xff, out.peer_ip) == 0);
        }
    } else {
        CHECK(!out.trusted);
    }
    free(xff);
    free(real);
    return 0;
}
