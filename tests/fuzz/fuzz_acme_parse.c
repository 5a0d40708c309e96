/*
 * fuzz_acme_parse — every parser in pkg/acme/acme_parse.h on the same hostile bytes:
 * problem documents, the directory, Retry-After, Link, RFC 3339 timestamps, ARI
 * renewalInfo; plus the scheduling arithmetic fed with whatever the parsers returned.
 * The input is copied to an exact-size heap buffer (no NUL) so any read past len is caught.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "acme/acme_parse.h"

#define CHECK(x)                                                                                                       \
    do {                                                                                                               \
        if (!(x))                                                                                                      \
            __builtin_trap();                                                                                          \
    } while (0)

static void check_str(const char *s, size_t cap)
{
    CHECK(memchr(s, '\0', cap) != NULL); /* every fixed buffer stays NUL-terminated */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const rels[] = {"up", "alternate", "index", "terms-of-service"};
    if (size > 128 * 1024)
        return 0;
    char *buf = malloc(size ? size : 1);
    if (size)
        memcpy(buf, data, size);

    oe_acme_problem_t p;
    memset(&p, 0x41, sizeof(p));
    if (oe_acme_parse_problem(buf, size, &p) == 0) {
        check_str(p.type, sizeof(p.type));
        check_str(p.detail, sizeof(p.detail));
        check_str(p.subproblems, sizeof(p.subproblems));
        const char *s = oe_acme_problem_short(&p);
        CHECK(s != NULL && s >= p.type && s <= p.type + strlen(p.type));
    }

    static oe_acme_directory_t d;
    char err[256];
    err[0] = '\0';
    if (oe_acme_parse_directory(buf, size, &d, err, sizeof(err)) == 0) {
        check_str(d.new_nonce, sizeof(d.new_nonce));
        check_str(d.new_account, sizeof(d.new_account));
        check_str(d.new_order, sizeof(d.new_order));
        check_str(d.renewal_info, sizeof(d.renewal_info));
        check_str(d.terms_of_service, sizeof(d.terms_of_service));
    } else {
        CHECK(err[0] != '\0');
    }

    uint64_t ra = 0;
    if (oe_acme_parse_retry_after(buf, size, 1735689600 /* 2025-01-01 */, &ra) == 0)
        CHECK(ra <= 30ull * 86400);

    static char urls[4][OE_ACME_URL_MAX];
    const char *rel = rels[size ? data[size - 1] % 4 : 0];
    size_t nl = oe_acme_parse_link(buf, size, rel, urls, 4);
    CHECK(nl <= 4);
    for (size_t i = 0; i < nl; i++)
        CHECK(strlen(urls[i]) < OE_ACME_URL_MAX);

    time_t t = 0;
    (void)oe_acme_parse_timestamp(buf, size, &t);

    time_t start = 0, end = 0;
    if (oe_acme_parse_renewal_info(buf, size, &start, &end) == 0)
        CHECK(end >= start);

    /* the arithmetic on whatever came out */
    (void)oe_acme_renew_at(start, end, ra);
    (void)oe_acme_renew_at(t, t + (time_t)(ra % 100000), 0);
    uint32_t rnd = 0;
    memcpy(&rnd, data, size < 4 ? size : 4);
    uint64_t cap = 1 + ra * 1000;
    uint64_t b = oe_acme_backoff_ms((unsigned)(rnd % 200), 1 + rnd % 60000, cap, rnd);
    CHECK(b <= cap + cap / 2);

    free(buf);
    return 0;
}
