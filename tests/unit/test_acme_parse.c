/* Unit tests for pkg/acme/acme_parse.h: problem documents, directory, Retry-After, Link,
 * timestamps, ARI windows, renewal time and backoff; plus random input for every parser. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acme/acme_parse.h"
#include "check.h"

#define S(x) x, strlen(x)

static void test_problem(void)
{
    oe_acme_problem_t p;
    const char *doc = "{\"type\":\"urn:ietf:params:acme:error:rejectedIdentifier\",\"detail\":\"Error creating new "
                      "order\",\"status\":400,\"subproblems\":[{\"type\":\"urn:ietf:params:acme:error:malformed\","
                      "\"detail\":\"Invalid underscore\",\"identifier\":{\"type\":\"dns\",\"value\":\"_x.example\"}},"
                      "{\"type\":\"urn:ietf:params:acme:error:rejectedIdentifier\",\"detail\":\"policy\","
                      "\"identifier\":{\"type\":\"dns\",\"value\":\"b.example\"}}]}";
    CHECK(oe_acme_parse_problem(S(doc), &p) == 0);
    CHECK(strcmp(p.type, "urn:ietf:params:acme:error:rejectedIdentifier") == 0);
    CHECK(strcmp(oe_acme_problem_short(&p), "rejectedIdentifier") == 0);
    CHECK(strcmp(p.detail, "Error creating new order") == 0);
    CHECK(p.status == 400);
    CHECK(strstr(p.subproblems, "_x.example: urn:ietf:params:acme:error:malformed: Invalid underscore") != NULL);
    CHECK(strstr(p.subproblems, "; b.example:") != NULL);

    CHECK(oe_acme_parse_problem(S("{\"type\":\"about:blank\"}"), &p) == 0 &&
          strcmp(oe_acme_problem_short(&p), "about:blank") == 0);
    CHECK(oe_acme_parse_problem(S("{\"type\":7,\"detail\":null,\"status\":\"x\"}"), &p) == 0 && p.type[0] == 0 &&
          p.status == 0);
    CHECK(oe_acme_parse_problem(S("[1,2]"), &p) == -1);
    CHECK(oe_acme_parse_problem(S("not json"), &p) == -1);
    CHECK(oe_acme_parse_problem("", 0, &p) == -1);
    CHECK(oe_acme_parse_problem(S("{\"type\":\"a\",\"type\":\"b\"}"), &p) == -1); /* duplicate keys */
    /* long detail is truncated, not overflowed */
    char big[4096];
    int n = snprintf(big, sizeof(big), "{\"detail\":\"");
    memset(big + n, 'x', 3000);
    strcpy(big + n + 3000, "\"}");
    CHECK(oe_acme_parse_problem(S(big), &p) == 0 && strlen(p.detail) == sizeof(p.detail) - 1);
}

static void test_directory(void)
{
    oe_acme_directory_t d;
    char err[256];
    const char *pebble =
        "{\"keyChange\":\"https://127.0.0.1:14000/rollover-account-key\",\"meta\":{\"externalAccountRequired\":true,"
        "\"termsOfService\":\"data:text/plain,Do%20what%20thou%20wilt\"},\"newAccount\":\"https://127.0.0.1:14000/"
        "sign-me-up\",\"newNonce\":\"https://127.0.0.1:14000/nonce-plz\",\"newOrder\":\"https://127.0.0.1:14000/"
        "order-plz\",\"revokeCert\":\"https://127.0.0.1:14000/revoke-cert\"}";
    CHECK(oe_acme_parse_directory(S(pebble), &d, err, sizeof(err)) == 0);
    CHECK(strcmp(d.new_order, "https://127.0.0.1:14000/order-plz") == 0);
    CHECK(strcmp(d.new_nonce, "https://127.0.0.1:14000/nonce-plz") == 0);
    CHECK(d.eab_required == 1 && d.renewal_info[0] == 0);
    CHECK(strncmp(d.terms_of_service, "data:", 5) == 0);
    CHECK(oe_acme_parse_directory(S("{\"newNonce\":\"n\",\"newAccount\":\"a\",\"newOrder\":\"o\",\"renewalInfo\":"
                                    "\"https://ca/ari/\"}"),
                                  &d, err, sizeof(err)) == 0 &&
          strcmp(d.renewal_info, "https://ca/ari/") == 0 && d.eab_required == 0);
    CHECK(oe_acme_parse_directory(S("{\"newNonce\":\"n\",\"newAccount\":\"a\"}"), &d, err, sizeof(err)) == -1 &&
          strstr(err, "newOrder"));
    CHECK(oe_acme_parse_directory(S("<html>"), &d, err, sizeof(err)) == -1 && strstr(err, "not a JSON object"));
}

static void test_retry_after(void)
{
    uint64_t s = 99;
    time_t now = 1445412480; /* Wed, 21 Oct 2015 07:28:00 GMT */
    CHECK(oe_acme_parse_retry_after(S("120"), now, &s) == 0 && s == 120);
    CHECK(oe_acme_parse_retry_after(S(" 5 "), now, &s) == 0 && s == 5);
    CHECK(oe_acme_parse_retry_after(S("0"), now, &s) == 0 && s == 0);
    CHECK(oe_acme_parse_retry_after(S("99999999999999999999999"), now, &s) == 0 && s == 30ull * 24 * 3600);
    CHECK(oe_acme_parse_retry_after(S("Wed, 21 Oct 2015 07:28:00 GMT"), now - 60, &s) == 0 && s == 60);
    CHECK(oe_acme_parse_retry_after(S("Wed, 21 Oct 2015 07:28:00 GMT"), now + 60, &s) == 0 && s == 0);
    CHECK(oe_acme_parse_retry_after(S("Wednesday, 21-Oct-15 07:28:00 GMT"), now - 1, &s) == 0 && s == 1);
    CHECK(oe_acme_parse_retry_after(S("Wed Oct 21 07:28:00 2015"), now - 5, &s) == 0 && s == 5); /* asctime */
    CHECK(oe_acme_parse_retry_after(S("Wed, 21 Oct 2015 07:28:00 GMT and more"), now, &s) == -1);
    CHECK(oe_acme_parse_retry_after(S("Wed, 21 Oct 2015 07:28"), now, &s) == -1);
    CHECK(oe_acme_parse_retry_after(S("Wed, 32 Oct 2015 07:28:00 GMT"), now, &s) == -1);
    CHECK(oe_acme_parse_retry_after(S("soon"), now, &s) == -1);
    CHECK(oe_acme_parse_retry_after(S("-5"), now, &s) == -1);
    CHECK(oe_acme_parse_retry_after(S(""), now, &s) == -1);
    CHECK(oe_acme_parse_retry_after(S("1.5"), now, &s) == -1);
}

static void test_link(void)
{
    char urls[4][OE_ACME_URL_MAX];
    const char *v = "<https://ca/cert/1/1>;rel=\"alternate\", <https://ca/dir>;rel=\"index\", "
                    "<https://ca/cert/1/2>; title=\"a, b\"; rel=alternate";
    CHECK(oe_acme_parse_link(S(v), "alternate", urls, 4) == 2);
    CHECK(strcmp(urls[0], "https://ca/cert/1/1") == 0 && strcmp(urls[1], "https://ca/cert/1/2") == 0);
    CHECK(oe_acme_parse_link(S(v), "index", urls, 4) == 1 && strcmp(urls[0], "https://ca/dir") == 0);
    CHECK(oe_acme_parse_link(S(v), "up", urls, 4) == 0);
    CHECK(oe_acme_parse_link(S(v), "alternate", urls, 1) == 1); /* bounded by max */
    CHECK(oe_acme_parse_link(S("<https://x/up>; rel=\"up alternate\""), "ALTERNATE", urls, 4) == 1);
    CHECK(oe_acme_parse_link(S("<https://x/a>;rel=alternates"), "alternate", urls, 4) == 0);
    CHECK(oe_acme_parse_link(S("garbage"), "alternate", urls, 4) == 0);
    CHECK(oe_acme_parse_link(S("<unterminated;rel=alternate"), "alternate", urls, 4) == 0);
    CHECK(oe_acme_parse_link(S("<https://x/q>;rel=\"alternate"), "alternate", urls, 4) == 1); /* lenient quote */
    CHECK(oe_acme_parse_link("", 0, "alternate", urls, 4) == 0);
    static char longv[OE_ACME_URL_MAX + 64];
    longv[0] = '<';
    memset(longv + 1, 'a', OE_ACME_URL_MAX + 10);
    strcpy(longv + 1 + OE_ACME_URL_MAX + 10, ">;rel=alternate");
    CHECK(oe_acme_parse_link(S(longv), "alternate", urls, 4) == 0); /* too long: skipped */
}

static void test_time(void)
{
    time_t t;
    CHECK(oe_acme_parse_timestamp(S("2025-01-02T03:04:05Z"), &t) == 0 && t == 1735787045);
    CHECK(oe_acme_parse_timestamp(S("2025-01-02T03:04:05.123456789Z"), &t) == 0 && t == 1735787045);
    CHECK(oe_acme_parse_timestamp(S("2025-01-02T04:04:05+01:00"), &t) == 0 && t == 1735787045);
    CHECK(oe_acme_parse_timestamp(S("2025-01-02T02:34:05-00:30"), &t) == 0 && t == 1735787045);
    CHECK(oe_acme_parse_timestamp(S("2025-01-02t03:04:05z"), &t) == 0 && t == 1735787045);
    CHECK(oe_acme_parse_timestamp(S("2025-01-02T03:04:05"), &t) == -1);
    CHECK(oe_acme_parse_timestamp(S("2025-01-02T03:04:05Zjunk"), &t) == -1);
    CHECK(oe_acme_parse_timestamp(S("2025-01-02 03:04:05Z"), &t) == -1);
    CHECK(oe_acme_parse_timestamp(S("yesterday"), &t) == -1);

    time_t a, b;
    CHECK(oe_acme_parse_renewal_info(S("{\"suggestedWindow\":{\"start\":\"2025-01-02T03:04:05Z\",\"end\":"
                                       "\"2025-01-03T03:04:05Z\"},\"explanationURL\":\"https://x\"}"),
                                     &a, &b) == 0 &&
          a == 1735787045 && b == 1735787045 + 86400);
    CHECK(oe_acme_parse_renewal_info(S("{\"suggestedWindow\":{\"start\":\"2025-01-03T03:04:05Z\",\"end\":"
                                       "\"2025-01-02T03:04:05Z\"}}"),
                                     &a, &b) == -1);
    CHECK(oe_acme_parse_renewal_info(S("{\"suggestedWindow\":{}}"), &a, &b) == -1);
    CHECK(oe_acme_parse_renewal_info(S("[]"), &a, &b) == -1);
}

static void test_schedule(void)
{
    time_t nb = 1700000000, day = 86400;
    CHECK(oe_acme_renew_at(nb, nb + 90 * day, 0) == nb + 60 * day);        /* one third left */
    CHECK(oe_acme_renew_at(nb, nb + 90 * day, 30 * day) == nb + 60 * day); /* explicit */
    CHECK(oe_acme_renew_at(nb, nb + 90 * day, 10 * day) == nb + 80 * day);
    CHECK(oe_acme_renew_at(nb, nb + 90 * day, 100 * day) == nb + 60 * day); /* longer than the lifetime */
    CHECK(oe_acme_renew_at(nb, nb + 30, 0) == nb + 20);                     /* short-lived test certs */
    CHECK(oe_acme_renew_at(nb, nb - 5, 0) == nb - 5);

    const uint64_t base = 60000, cap = 86400000;
    CHECK(oe_acme_backoff_ms(0, base, cap, 123) == 0);
    uint64_t prev_max = 0;
    int grows = 1, bounded = 1;
    for (unsigned f = 1; f < 40; f++) {
        uint64_t lo = oe_acme_backoff_ms(f, base, cap, 0), hi = oe_acme_backoff_ms(f, base, cap, 0xffffffffu);
        uint64_t mid = oe_acme_backoff_ms(f, base, cap, 0x9e3779b9u);
        if (lo < prev_max && lo < cap)
            grows = 0; /* the shortest next delay is longer than the longest previous one */
        if (hi >= lo + lo / 2 || mid < lo || mid >= lo + lo / 2)
            bounded = 0;
        prev_max = hi;
    }
    CHECK(grows && bounded);
    CHECK(oe_acme_backoff_ms(1, base, cap, 0) == base);
    CHECK(oe_acme_backoff_ms(2, base, cap, 0) == 2 * base);
    CHECK(oe_acme_backoff_ms(1, base, cap, 7) == base + 7);
    CHECK(oe_acme_backoff_ms(1000, base, cap, 0) == cap);
    CHECK(oe_acme_backoff_ms(3, 0, cap, 0) == 4); /* base 0 is treated as 1 ms */
}

/* Random bytes and mutated valid inputs must never crash (run under ASan). */
static void test_random(void)
{
    static const char *seeds[] = {
        "{\"type\":\"urn:ietf:params:acme:error:badNonce\",\"subproblems\":[{\"identifier\":{\"value\":\"x\"}}]}",
        "<https://a/b>;rel=\"alternate\", <https://c>;rel=up",
        "Wed, 21 Oct 2015 07:28:00 GMT",
        "2025-01-02T03:04:05.5+01:00",
        "{\"suggestedWindow\":{\"start\":\"2025-01-02T03:04:05Z\",\"end\":\"2025-01-03T03:04:05Z\"}}",
    };
    unsigned seed = 12345;
    char buf[256];
    for (int i = 0; i < 20000; i++) {
        const char *s = seeds[i % 5];
        size_t len = strlen(s);
        if (len > sizeof(buf))
            len = sizeof(buf);
        memcpy(buf, s, len);
        for (int k = 0; k < 4; k++) {
            seed = seed * 1103515245 + 12345;
            buf[(seed >> 8) % len] = (char)(seed >> 16);
        }
        size_t cut = (seed >> 4) % (len + 1);
        oe_acme_problem_t p;
        oe_acme_directory_t d;
        char err[128], urls[2][OE_ACME_URL_MAX];
        uint64_t ra;
        time_t t, t2;
        oe_acme_parse_problem(buf, cut, &p);
        oe_acme_parse_directory(buf, cut, &d, err, sizeof(err));
        oe_acme_parse_retry_after(buf, cut, 0, &ra);
        oe_acme_parse_link(buf, cut, "alternate", urls, 2);
        oe_acme_parse_timestamp(buf, cut, &t);
        oe_acme_parse_renewal_info(buf, cut, &t, &t2);
    }
    CHECK_PASS();
}

int main(void)
{
    test_problem();
    test_directory();
    test_retry_after();
    test_link();
    test_time();
    test_schedule();
    test_random();
    return CHECK_DONE();
}
