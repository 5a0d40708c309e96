/* Unit tests for the X-Forwarded-For trust rules (pkg/proxy/forwarded.c). */
#include <arpa/inet.h>
#include <string.h>

#include "check.h"
#include "proxy/forwarded.h"

static struct sockaddr_storage addr(const char *ip)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in *v4 = (void *)&ss;
    struct sockaddr_in6 *v6 = (void *)&ss;
    if (inet_pton(AF_INET, ip, &v4->sin_addr) == 1)
        v4->sin_family = AF_INET;
    else if (inet_pton(AF_INET6, ip, &v6->sin6_addr) == 1)
        v6->sin6_family = AF_INET6;
    return ss;
}

static oe_fwd_result_t run(const char *peer, const oe_cidr_t *trusted, size_t n, const char *xff, const char *real)
{
    struct sockaddr_storage ss = addr(peer);
    oe_fwd_input_t in = {.peer = (void *)&ss, .trusted = trusted, .trusted_count = n};
    if (xff != NULL) {
        in.xff = xff;
        in.xff_len = strlen(xff);
    }
    if (real != NULL) {
        in.real_ip = real;
        in.real_ip_len = strlen(real);
    }
    oe_fwd_result_t r;
    oe_forwarded_compute(&in, &r);
    return r;
}

int main(void)
{
    oe_cidr_t trusted[2];
    CHECK(oe_config_parse_cidr("10.0.0.0/8", &trusted[0]) == 0, "parse cidr");
    CHECK(oe_config_parse_cidr("::1", &trusted[1]) == 0, "parse cidr v6");

    /* untrusted peer: everything the client claims is dropped */
    oe_fwd_result_t r = run("203.0.113.7", trusted, 2, "1.2.3.4, 5.6.7.8", "9.9.9.9");
    CHECK(!r.trusted, "203.0.113.7 is not trusted");
    CHECK(strcmp(r.xff, "203.0.113.7") == 0, "untrusted xff = peer, got %s", r.xff);
    CHECK(strcmp(r.client_ip, "203.0.113.7") == 0, "untrusted client = peer, got %s", r.client_ip);

    /* trusted peer: hops kept, peer appended, client = rightmost untrusted hop */
    r = run("10.1.2.3", trusted, 2, "1.2.3.4, 10.9.9.9", NULL);
    CHECK(r.trusted, "10.1.2.3 trusted");
    CHECK(strcmp(r.xff, "1.2.3.4, 10.9.9.9, 10.1.2.3") == 0, "trusted xff appended, got %s", r.xff);
    CHECK(strcmp(r.client_ip, "1.2.3.4") == 0, "client = rightmost untrusted, got %s", r.client_ip);

    /* the real-IP header wins from a trusted peer */
    r = run("10.1.2.3", trusted, 2, "1.2.3.4", "198.51.100.1");
    CHECK(strcmp(r.client_ip, "198.51.100.1") == 0, "real ip honoured, got %s", r.client_ip);
    r = run("10.1.2.3", trusted, 2, NULL, "not-an-ip");
    CHECK(strcmp(r.client_ip, "10.1.2.3") == 0, "garbage real ip ignored, got %s", r.client_ip);

    /* garbage elements are dropped, spaces trimmed, IPv6 canonicalised */
    r = run("10.1.2.3", trusted, 2, " evil\r\nX: 1 ,2001:DB8::1,,  , [2001:db8::2] ", NULL);
    CHECK(strcmp(r.xff, "2001:db8::1, 2001:db8::2, 10.1.2.3") == 0, "sanitised xff, got %s", r.xff);

    /* all hops trusted: the leftmost is the client */
    r = run("10.1.2.3", trusted, 2, "10.0.0.1, 10.0.0.2", NULL);
    CHECK(strcmp(r.client_ip, "10.0.0.1") == 0, "all trusted -> leftmost, got %s", r.client_ip);

    /* IPv6 loopback peer, trusted; mapped IPv4 shown as IPv4 */
    r = run("::1", trusted, 2, "192.0.2.1", NULL);
    CHECK(r.trusted && strcmp(r.xff, "192.0.2.1, ::1") == 0, "v6 peer, got %s", r.xff);
    r = run("::ffff:10.0.0.5", trusted, 2, "192.0.2.1", NULL);
    CHECK(r.trusted && strcmp(r.peer_ip, "10.0.0.5") == 0, "mapped peer trusted as v4, got %s", r.peer_ip);

    /* hostile length: only the rightmost OE_FWD_MAX_HOPS hops survive, bounded output */
    char big[20000];
    size_t len = 0;
    for (int i = 0; i < 1000; i++)
        len += (size_t)snprintf(big + len, sizeof(big) - len, "%s192.0.2.%d", i ? "," : "", i % 250);
    r = run("10.1.2.3", trusted, 2, big, NULL);
    CHECK(r.xff_len < OE_FWD_XFF_MAX, "bounded xff");
    int commas = 0;
    for (size_t i = 0; i < r.xff_len; i++)
        commas += r.xff[i] == ',';
    CHECK(commas == OE_FWD_MAX_HOPS, "kept %d hops + peer, got %d commas", OE_FWD_MAX_HOPS, commas);
    CHECK(strstr(r.xff, "192.0.2.249, 10.1.2.3") != NULL, "rightmost hops kept: %s", r.xff);

    /* IPv4 formatting agrees with inet_ntop on edge values and a spread of addresses */
    int ntop_bad = 0;
    char want[INET_ADDRSTRLEN], got[OE_FWD_IP_MAX];
    for (unsigned long v = 0; v <= 0xffffffffUL && !ntop_bad; v += 0x01010101UL / 7 + 13) {
        unsigned long vs[] = {v, 0, 0xffffffffUL, 0x0a006409UL, 0x7f000001UL, 0x01020300UL};
        for (size_t k = 0; k < sizeof(vs) / sizeof(vs[0]) && !ntop_bad; k++) {
            struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl((uint32_t)vs[k])};
            inet_ntop(AF_INET, &sin.sin_addr, want, sizeof(want));
            oe_forwarded_ntop((struct sockaddr *)&sin, got, sizeof(got));
            ntop_bad = strcmp(want, got) != 0;
        }
    }
    CHECK(!ntop_bad, "ntop %s, got %s", want, got);
    struct sockaddr_in6 mapped = {.sin6_family = AF_INET6};
    inet_pton(AF_INET6, "::ffff:192.0.2.200", &mapped.sin6_addr);
    char ip[OE_FWD_IP_MAX];
    oe_forwarded_ntop((struct sockaddr *)&mapped, ip, sizeof(ip));
    CHECK(strcmp(ip, "192.0.2.200") == 0, "mapped v4 shown as v4, got %s", ip);
    oe_forwarded_ntop((struct sockaddr *)&mapped, ip, 8);
    CHECK(ip[0] == '\0', "too small a buffer gets an empty string, got %s", ip);

    /* no trusted list at all */
    r = run("127.0.0.1", NULL, 0, "1.1.1.1", NULL);
    CHECK(!r.trusted && strcmp(r.xff, "127.0.0.1") == 0, "empty trust list");
    return CHECK_DONE();
}
