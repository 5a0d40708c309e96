/* Unit tests for the HTTP/2 flood budgets (pkg/server/h2guard.c) and the abuse table. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "check.h"
#include "server/abuse.h"
#include "server/h2guard.h"

#define PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

static size_t frame(uint8_t *p, uint8_t type, uint8_t flags, uint32_t stream, size_t len)
{
    p[0] = (uint8_t)(len >> 16), p[1] = (uint8_t)(len >> 8), p[2] = (uint8_t)len;
    p[3] = type, p[4] = flags;
    p[5] = (uint8_t)(stream >> 24), p[6] = (uint8_t)(stream >> 16), p[7] = (uint8_t)(stream >> 8),
    p[8] = (uint8_t)stream;
    memset(p + 9, 0, len);
    return 9 + len;
}

int main(void)
{
    static uint8_t buf[1 << 20];
    size_t n = 0;
    oe_h2guard_t g = {0};

    /* a normal client: preface, settings, a few requests */
    memcpy(buf, PREFACE, sizeof(PREFACE) - 1);
    n = sizeof(PREFACE) - 1;
    n += frame(buf + n, 0x4, 0, 0, 12);
    for (uint32_t s = 1; s < 200; s += 2)
        n += frame(buf + n, 0x1, 0x5, s, 20);
    CHECK(oe_h2guard_scan(&g, buf, n, 1000) == NULL, "normal traffic passes");
    CHECK(g.headers == 100, "headers counted: %u", g.headers);

    /* an incomplete frame at the end is not counted yet */
    oe_h2guard_t g2 = {0};
    size_t cut = n - 5;
    oe_h2guard_scan(&g2, buf, cut, 1000);
    CHECK(g2.headers == 99, "partial frame not counted: %u", g2.headers);

    /* rapid reset: HEADERS + RST_STREAM pairs */
    oe_h2guard_t r = {.preface_seen = 1};
    n = 0;
    const char *why = NULL;
    uint32_t s = 1;
    for (int i = 0; i < 1000 && why == NULL; i++, s += 2) {
        n = frame(buf, 0x1, 0x5, s, 20);
        n += frame(buf + n, 0x3, 0, s, 4);
        why = oe_h2guard_scan(&r, buf, n, 2000);
    }
    CHECK(why != NULL && strstr(why, "rapid reset") != NULL, "rapid reset detected");
    CHECK(r.resets == OE_H2GUARD_MAX_RESETS, "detected at the budget: %u", r.resets);

    /* the window forgets: a slow canceller is fine */
    oe_h2guard_t slow = {.preface_seen = 1};
    why = NULL;
    for (int i = 0; i < 500 && why == NULL; i++) {
        n = frame(buf, 0x1, 0x5, 1, 20);
        n += frame(buf + n, 0x3, 0, 1, 4);
        why = oe_h2guard_scan(&slow, buf, n, (uint64_t)i * 1000); /* one per second */
    }
    CHECK(why == NULL, "one cancel per second is tolerated");

    /* PING flood */
    oe_h2guard_t p = {.preface_seen = 1};
    n = 0;
    for (int i = 0; i < OE_H2GUARD_MAX_CONTROL; i++)
        n += frame(buf + n, 0x6, 0, 0, 8);
    why = oe_h2guard_scan(&p, buf, n, 5);
    CHECK(why != NULL && strstr(why, "PING") != NULL, "ping flood detected");

    /* CONTINUATION flood: one header block that never ends */
    oe_h2guard_t c = {.preface_seen = 1};
    n = frame(buf, 0x1, 0x0, 1, 100);
    why = oe_h2guard_scan(&c, buf, n, 5);
    for (int i = 0; i < 100 && why == NULL; i++) {
        n = frame(buf, 0x9, 0x0, 1, 16384);
        why = oe_h2guard_scan(&c, buf, n, 5);
    }
    CHECK(why != NULL && strstr(why, "CONTINUATION") != NULL, "continuation flood detected");

    /* hostile bytes: no preface means no counting, never a crash */
    oe_h2guard_t h = {0};
    memset(buf, 0xff, 4096);
    CHECK(oe_h2guard_scan(&h, buf, 4096, 5) == NULL && h.headers == 0, "garbage ignored");

    /* abuse table: strikes, block, window, bounded */
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, "192.0.2.9", &a.sin_addr);
    oe_abuse_reset();
    CHECK(!oe_abuse_blocked((void *)&a, 100), "not blocked at first");
    CHECK(oe_abuse_strike((void *)&a, 100) == 0, "first strike does not block");
    CHECK(oe_abuse_strike((void *)&a, 200) == 1, "second strike blocks");
    CHECK(oe_abuse_blocked((void *)&a, 300), "blocked now");
    CHECK(!oe_abuse_blocked((void *)&a, 300 + OE_ABUSE_BLOCK_MS), "block expires");
    struct sockaddr_in b = a;
    inet_pton(AF_INET, "192.0.2.10", &b.sin_addr);
    CHECK(!oe_abuse_blocked((void *)&b, 300), "other peers unaffected");
    for (int i = 0; i < 5000; i++) { /* more peers than the table holds: stays bounded and sane */
        struct sockaddr_in x = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x0a000000u + (uint32_t)i)};
        oe_abuse_strike((void *)&x, 1000);
    }
    CHECK(1, "table survived 5000 peers");
    return CHECK_DONE();
}
