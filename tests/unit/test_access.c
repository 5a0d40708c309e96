/* test_access — the pure parts of pkg/access: client keys and CIDR decisions, the token
 * bucket's arithmetic, the client table's bound and eviction rule, the htpasswd parser with
 * real libxcrypt hashes, the Basic credentials parser and path-prefix matching. */
#include <arpa/inet.h>
#include <crypt.h>
#include <stdlib.h>
#include <string.h>

#include "access/internal.h"
#include "check.h"
#include "config/config.h"

static struct sockaddr_storage addr(const char *s)
{
    struct sockaddr_storage ss;
    int rc = oe_access_parse_ip(s, strlen(s), &ss);
    CHECK(rc == 0, "parse %s", s);
    return ss;
}

static int in(const char *ip, const char *const *cidrs, size_t n)
{
    oe_cidr_t c[8];
    struct sockaddr_storage ss = addr(ip);
    for (size_t i = 0; i < n; i++)
        CHECK(oe_config_parse_cidr(cidrs[i], &c[i]) == 0, "cidr %s", cidrs[i]);
    return oe_cidr_match(c, n, (struct sockaddr *)&ss);
}

static void test_cidr_and_keys(void)
{
    static const char *const friends[] = {"192.0.2.0/24", "2001:db8:1::/48", "198.51.100.7"};
    struct sockaddr_storage ss;
    oe_access_key_t a, b;

    CHECK(in("192.0.2.1", friends, 3) && in("192.0.2.255", friends, 3), "inside /24");
    CHECK(!in("192.0.3.1", friends, 3), "outside /24");
    CHECK(in("198.51.100.7", friends, 3) && !in("198.51.100.8", friends, 3), "single address");
    CHECK(in("2001:db8:1:ffff::1", friends, 3) && !in("2001:db8:2::1", friends, 3), "IPv6 /48");
    CHECK(in("::ffff:192.0.2.9", friends, 3), "IPv4-mapped IPv6 matches an IPv4 range");
    {
        static const char *const all[] = {"0.0.0.0/0"};
        static const char *const all6[] = {"::/0"};
        CHECK(in("203.0.113.5", all, 1) && !in("2001:db8::1", all, 1), "0.0.0.0/0 is every IPv4 address only");
        CHECK(in("2001:db8::1", all6, 1), "::/0");
    }
    CHECK(oe_access_parse_ip("1.2.3", 5, &ss) != 0 && oe_access_parse_ip("", 0, &ss) != 0 &&
              oe_access_parse_ip("1.2.3.4 ", 8, &ss) != 0 && oe_access_parse_ip("[::1]", 5, &ss) != 0,
          "non-addresses refused");

    /* keys: IPv4 and its mapped form are one client; IPv6 by prefix */
    ss = addr("192.0.2.1");
    oe_access_key_of((struct sockaddr *)&ss, 64, &a);
    ss = addr("::ffff:192.0.2.1");
    oe_access_key_of((struct sockaddr *)&ss, 64, &b);
    CHECK(memcmp(&a, &b, sizeof(a)) == 0, "IPv4 = IPv4-mapped");
    ss = addr("192.0.2.2");
    oe_access_key_of((struct sockaddr *)&ss, 64, &b);
    CHECK(memcmp(&a, &b, sizeof(a)) != 0, "IPv4 addresses are keyed whole");
    ss = addr("2001:db8:1:2:aaaa::1");
    oe_access_key_of((struct sockaddr *)&ss, 64, &a);
    ss = addr("2001:db8:1:2:bbbb::7");
    oe_access_key_of((struct sockaddr *)&ss, 64, &b);
    CHECK(memcmp(&a, &b, sizeof(a)) == 0, "one /64 is one client");
    ss = addr("2001:db8:1:3::1");
    oe_access_key_of((struct sockaddr *)&ss, 64, &b);
    CHECK(memcmp(&a, &b, sizeof(a)) != 0, "another /64 is another client");
    oe_access_key_of((struct sockaddr *)&ss, 56, &b);
    ss = addr("2001:db8:1:2::1");
    oe_access_key_of((struct sockaddr *)&ss, 56, &a);
    CHECK(memcmp(&a, &b, sizeof(a)) == 0, "with ipv6_prefix 56, 2001:db8:1:2::/64 and :3::/64 are one client");
    ss = addr("2001:db8:1:2::1");
    oe_access_key_of((struct sockaddr *)&ss, 60, &a);
    ss = addr("2001:db8:1:f::1");
    oe_access_key_of((struct sockaddr *)&ss, 60, &b);
    CHECK(memcmp(&a, &b, sizeof(a)) == 0, "a /60 cuts inside a byte");
    ss = addr("2001:db8:1:12::1");
    oe_access_key_of((struct sockaddr *)&ss, 60, &b);
    CHECK(memcmp(&a, &b, sizeof(a)) != 0, "... and keeps the bits before it");
    ss = addr("2001:db8::1");
    oe_access_key_of((struct sockaddr *)&ss, 128, &a);
    ss = addr("2001:db8::2");
    oe_access_key_of((struct sockaddr *)&ss, 128, &b);
    CHECK(memcmp(&a, &b, sizeof(a)) != 0, "/128 keys each address");
}

/* The compiled ranges give oe_cidr_match()'s answers, for every family combination. */
static void test_ranges(void)
{
    static const char *const cidrs[] = {
        "10.0.0.0/8",      "192.0.2.7",          "0.0.0.0/0", "2001:db8::/32", "::/0", "::ffff:0:0/96", "fe80::1/128",
        "198.51.100.0/25", "2001:db8:8000::/33", "0.0.0.0/1", "128.0.0.0/1",   "::/1", "192.0.2.0/31"};
    static const char *const addrs[] = {"10.1.2.3",
                                        "11.0.0.1",
                                        "192.0.2.7",
                                        "192.0.2.6",
                                        "::ffff:10.9.9.9",
                                        "2001:db8::1",
                                        "2001:db9::1",
                                        "fe80::1",
                                        "fe80::2",
                                        "198.51.100.1",
                                        "198.51.100.200",
                                        "2001:db8:8000::5",
                                        "::1",
                                        "0.0.0.0",
                                        "255.255.255.255",
                                        "::"};
    size_t nc = sizeof(cidrs) / sizeof(cidrs[0]), na = sizeof(addrs) / sizeof(addrs[0]), agree = 0;

    for (size_t i = 0; i < nc; i++) {
        oe_cidr_t c;
        oe_access_range_t *r;
        CHECK(oe_config_parse_cidr(cidrs[i], &c) == 0, "cidr %s", cidrs[i]);
        CHECK(oe_access_ranges_compile(&c, 1, &r) == 0, "compile %s", cidrs[i]);
        for (size_t j = 0; j < na; j++) {
            struct sockaddr_storage ss = addr(addrs[j]);
            oe_access_key_t k;
            oe_access_key_of((struct sockaddr *)&ss, 128, &k);
            int want = oe_cidr_match(&c, 1, (struct sockaddr *)&ss), got = oe_access_ranges_match(r, 1, &k);
            CHECK(want == got, "%s in %s: oe_cidr_match %d, compiled %d", addrs[j], cidrs[i], want, got);
            agree += want == got;
        }
        free(r);
    }
    CHECK(agree == nc * na);
    oe_access_range_t *none;
    CHECK(oe_access_ranges_compile(NULL, 0, &none) == 0 && none == NULL, "no ranges");
}

static void test_bucket(void)
{
    oe_access_rate_t r = {.requests = 10, .per_ms = 1000, .burst = 5};
    uint64_t units = oe_access_bucket_full(&r), stamp = 1000, retry = 0;
    int passed = 0;

    /* a burst of 5 passes, the 6th does not: all at the same instant */
    for (int i = 0; i < 6; i++)
        passed += oe_access_bucket_take(&units, &stamp, &r, 1000, &retry);
    CHECK(passed == 5, "burst of 5: %d passed", passed);
    CHECK(retry == 100, "next one in 100 ms (10/s): %llu", (unsigned long long)retry);
    CHECK(oe_access_bucket_take(&units, &stamp, &r, 1099, &retry) == 0 && retry == 1, "not at 99 ms (1 ms left)");
    CHECK(oe_access_bucket_take(&units, &stamp, &r, 1100, &retry) == 1, "one at 100 ms");
    CHECK(oe_access_bucket_take(&units, &stamp, &r, 1100, &retry) == 0, "and only one");
    /* exactly 10 per second over a long run, whatever the spacing of the requests */
    passed = 0;
    for (uint64_t t = 1100; t <= 11100; t += 8)
        passed += oe_access_bucket_take(&units, &stamp, &r, t, &retry);
    CHECK(passed == 100, "10 s at 10/s: %d passed", passed);
    /* a long pause fills the bucket to the burst, no more */
    passed = 0;
    for (int i = 0; i < 20; i++)
        passed += oe_access_bucket_take(&units, &stamp, &r, 1000000, &retry);
    CHECK(passed == 5, "after a pause: the burst (%d)", passed);
    /* the clock going back changes nothing */
    CHECK(oe_access_bucket_take(&units, &stamp, &r, 5, &retry) == 0, "no refill from the past");
    /* slow rates: 3 per minute */
    oe_access_rate_t m = {.requests = 3, .per_ms = 60000, .burst = 3};
    units = oe_access_bucket_full(&m), stamp = 0;
    for (int i = 0; i < 3; i++)
        CHECK(oe_access_bucket_take(&units, &stamp, &m, 0, &retry) == 1, "3 at once");
    CHECK(oe_access_bucket_take(&units, &stamp, &m, 0, &retry) == 0 && retry == 20000, "then every 20 s (%llu)",
          (unsigned long long)retry);
    CHECK(oe_access_bucket_take(&units, &stamp, &m, 19999, &retry) == 0, "not before");
    CHECK(oe_access_bucket_take(&units, &stamp, &m, 20000, &retry) == 1, "at 20 s");
    /* the largest values the configuration allows do not overflow */
    oe_access_rate_t big = {.requests = 1000000, .per_ms = 86400000, .burst = 1000000};
    units = 0, stamp = 0;
    CHECK(oe_access_bucket_take(&units, &stamp, &big, UINT64_MAX / 2, &retry) == 1 &&
              units == oe_access_bucket_full(&big) - big.per_ms,
          "huge pause, huge bucket");
}

/* Keys that differ in their last bytes. */
static oe_access_key_t key_n(uint32_t n)
{
    oe_access_key_t k = {{0}};
    k.b[0] = 0x20;
    memcpy(k.b + 12, &n, 4);
    return k;
}

static void test_table(void)
{
    oe_access_rate_t r = {.requests = 1, .per_ms = 1000, .burst = 2};
    oe_access_table_stats_t st;
    uint64_t retry;
    uint32_t t[16];

    /* one set of 8 ways: the eviction order is observable */
    oe_access_table_t *tb = oe_access_table_new(8);
    CHECK(tb != NULL && oe_access_table_capacity(tb) == 8, "8 entries");
    for (uint32_t i = 0; i < 8; i++) {
        oe_access_key_t k = key_n(i);
        CHECK(oe_access_table_take(tb, &k, 5, &r, 100 + i, &retry) == 1, "client %u first request", i);
        CHECK(oe_access_table_take(tb, &k, 5, &r, 100 + i, &retry) == 1, "client %u second", i);
        CHECK(oe_access_table_take(tb, &k, 5, &r, 100 + i, &retry) == 0, "client %u third: limited", i);
    }
    oe_access_table_stats(tb, &st);
    CHECK(st.used == 8 && st.evictions == 0, "full, no eviction yet");
    /* client 0 was used least recently: a 9th client takes its entry, so client 0 starts full again */
    oe_access_key_t k8 = key_n(8), k0 = key_n(0), k1 = key_n(1);
    CHECK(oe_access_table_take(tb, &k8, 5, &r, 200, &retry) == 1, "9th client");
    oe_access_table_stats(tb, &st);
    CHECK(st.evictions == 1 && st.used == 8, "one eviction, still 8 used");
    CHECK(oe_access_table_take(tb, &k1, 5, &r, 201, &retry) == 0, "client 1 still limited (not evicted)");
    CHECK(oe_access_table_take(tb, &k0, 5, &r, 202, &retry) == 1, "client 0 evicted: it starts again full");

    /* entries with connections open are never evicted */
    oe_access_table_free(tb);
    tb = oe_access_table_new(8);
    for (uint32_t i = 0; i < 8; i++) {
        oe_access_key_t k = key_n(100 + i);
        CHECK(oe_access_table_acquire(tb, &k, OE_ACCESS_CONNS, 2, 10, &t[i]) == 1 && t[i] != 0, "conn %u", i);
    }
    {
        oe_access_key_t k = key_n(100);
        uint32_t x, y;
        CHECK(oe_access_table_acquire(tb, &k, OE_ACCESS_CONNS, 2, 11, &x) == 1, "second conn of client 100");
        CHECK(oe_access_table_acquire(tb, &k, OE_ACCESS_CONNS, 2, 11, &y) == 0 && y == 0, "third: at the limit");
        CHECK(oe_access_table_open(tb, &k, OE_ACCESS_CONNS) == 2, "2 open");
        CHECK(oe_access_table_acquire(tb, &k, OE_ACCESS_WEBSOCKETS, 1, 11, &y) == 1, "WebSockets counted apart");
        CHECK(oe_access_table_acquire(tb, &k, OE_ACCESS_WEBSOCKETS, 1, 11, &y) == 0, "WebSocket limit");
        oe_access_key_t other = key_n(999);
        uint32_t z;
        CHECK(oe_access_table_acquire(tb, &other, OE_ACCESS_CONNS, 2, 12, &z) == -1 && z == 0,
              "every way has connections open: the new client is not tracked");
        CHECK(oe_access_table_take(tb, &other, 7, &r, 12, &retry) == -1, "nor its bucket");
        oe_access_table_stats(tb, &st);
        CHECK(st.untracked == 2 && st.evictions == 0, "untracked counted (%llu)", (unsigned long long)st.untracked);
        oe_access_table_release(tb, x, OE_ACCESS_CONNS);
        CHECK(oe_access_table_open(tb, &k, OE_ACCESS_CONNS) == 1, "released one");
        /* client 103 closes everything: its entry becomes the one to take */
        oe_access_table_release(tb, t[3], OE_ACCESS_CONNS);
        oe_access_table_release(tb, t[3], OE_ACCESS_CONNS); /* twice: no underflow */
        CHECK(oe_access_table_acquire(tb, &other, OE_ACCESS_CONNS, 2, 13, &z) == 1, "now it is tracked");
        oe_access_key_t k103 = key_n(103);
        CHECK(oe_access_table_open(tb, &k103, OE_ACCESS_CONNS) == 0, "in client 103's entry");
        oe_access_key_t k105 = key_n(105);
        CHECK(oe_access_table_open(tb, &k105, OE_ACCESS_CONNS) == 1, "the others stay");
    }
    oe_access_table_free(tb);

    /* the bound: a million clients through a table of 4096 entries */
    tb = oe_access_table_new(4096);
    size_t bytes = oe_access_table_bytes(tb);
    for (uint32_t i = 0; i < 1000000; i++) {
        oe_access_key_t k = key_n(i * 2654435761u);
        oe_access_table_take(tb, &k, 3, &r, i, &retry);
    }
    oe_access_table_stats(tb, &st);
    CHECK(st.used == 4096 && st.evictions == 1000000 - 4096 && oe_access_table_bytes(tb) == bytes,
          "a million clients: %llu used, %llu evictions, memory unchanged", (unsigned long long)st.used,
          (unsigned long long)st.evictions);
    oe_access_table_free(tb);
}

static char *hash_of(const char *prefix, unsigned long cost, const char *password)
{
    char setting[CRYPT_GENSALT_OUTPUT_SIZE];
    struct crypt_data cd;
    memset(&cd, 0, sizeof(cd));
    if (crypt_gensalt_rn(prefix, cost, NULL, 0, setting, sizeof(setting)) == NULL ||
        crypt_rn(password, setting, &cd, sizeof(cd)) == NULL)
        return NULL;
    return strdup(cd.output);
}

static void test_htpasswd(void)
{
    char *bc = hash_of("$2b$", 4, "apple"), *by = hash_of("$2y$", 4, "apricot"), *sha = hash_of("$6$", 1000, "banana"),
         *ye = hash_of("$y$", 0, "cherry");
    char text[2048], err[256];
    struct crypt_data *cd = calloc(1, sizeof(*cd));

    CHECK(bc && by && sha && ye && cd, "hashes made");
    snprintf(text, sizeof(text), "# users\r\nzoe:%s\r\n\nalice:%s\nbob:%s   \n  \ncarol:%s", by, bc, sha, ye);
    oe_access_users_t *u = oe_access_users_parse(text, strlen(text), err, sizeof(err));
    CHECK(u != NULL, "parses: %s", err);
    if (u != NULL) {
        CHECK(oe_access_users_count(u) == 4, "4 users");
        long a = oe_access_users_find(u, "alice", 5), b = oe_access_users_find(u, "bob", 3),
             c = oe_access_users_find(u, "carol", 5), z = oe_access_users_find(u, "zoe", 3);
        CHECK(a >= 0 && b >= 0 && c >= 0 && z >= 0, "all found");
        CHECK(oe_access_users_find(u, "alic", 4) < 0 && oe_access_users_find(u, "alicea", 6) < 0 &&
                  oe_access_users_find(u, "Alice", 5) < 0,
              "exact names only");
        CHECK(oe_access_verify(oe_access_users_hash(u, a), "apple", cd), "bcrypt $2b$ right");
        CHECK(!oe_access_verify(oe_access_users_hash(u, a), "apple ", cd), "bcrypt wrong");
        CHECK(oe_access_verify(oe_access_users_hash(u, z), "apricot", cd), "bcrypt $2y$ right");
        CHECK(oe_access_verify(oe_access_users_hash(u, b), "banana", cd), "SHA-512-crypt right (trailing blanks cut)");
        CHECK(!oe_access_verify(oe_access_users_hash(u, b), "Banana", cd), "SHA-512-crypt wrong");
        CHECK(oe_access_verify(oe_access_users_hash(u, c), "cherry", cd), "yescrypt right");
        CHECK(!oe_access_verify(oe_access_users_hash(u, c), "", cd), "yescrypt empty password");
        const char *decoy = oe_access_users_decoy(u);
        CHECK(decoy != NULL && strncmp(decoy, "$2b$04$", 7) == 0,
              "the decoy is like the first user's hash (alice, sorted first): %s", decoy ? decoy : "(null)");
        CHECK(!oe_access_verify(decoy, "", cd) && !oe_access_verify(decoy, "apple", cd), "the decoy matches nothing");
        CHECK(!oe_access_verify("garbage", "x", cd) && !oe_access_verify("", "", cd), "not hashes: no match");
        oe_access_users_free(u);
    }
    /* what is refused, with the line */
    static const struct {
        const char *text, *want;
    } bad[] = {
        {"", "no users"},
        {"# only a comment\n", "no users"},
        {"alice\n", "line 1: expected user:hash"},
        {":$2b$04$abcdefghijklmnopqrstuu\n", "line 1: expected user:hash"},
        {"alice:plain\n", "line 1 (user \"alice\"): a weak hash kind"},
        {"\n\nalice:$apr1$abc$def\n", "line 3 (user \"alice\"): not a hash libxcrypt knows"},
        {"alice:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n", "not a hash libxcrypt knows"},
        {"alice:$1$abcdefgh$abcdefghijklmnopqrstuv\n", "a weak hash kind"},
        {"alice:\n", "not a hash libxcrypt knows"},
        {"al\x01ice:$2b$04$abcdefghijklmnopqrstuu\n", "a control character"},
        /* costs that would stall every login (and the decoy made at load): found by fuzz_access */
        {"alice:$2b$20$abcdefghijklmnopqrstuuabcdefghijklmnopqrstuvwxyz012\n", "a bcrypt cost above 14"},
        {"alice:$6$rounds=99999999$abcdefgh$abc\n", "more than 1000000 SHA-512-crypt rounds"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        u = oe_access_users_parse(bad[i].text, strlen(bad[i].text), err, sizeof(err));
        CHECK(u == NULL && strstr(err, bad[i].want) != NULL, "bad htpasswd %zu: wanted \"%s\", got \"%s\"", i,
              bad[i].want, u ? "(parsed)" : err);
        oe_access_users_free(u);
    }
    snprintf(text, sizeof(text), "a:%s\nb:%s\na:%s\n", bc, sha, ye);
    u = oe_access_users_parse(text, strlen(text), err, sizeof(err));
    CHECK(u == NULL && strstr(err, "\"a\" is listed twice"), "duplicate user: %s", err);
    oe_access_users_free(u);
    u = oe_access_users_parse("a:$2b$04$abc\0def\n", 17, err, sizeof(err));
    CHECK(u == NULL && strstr(err, "NUL"), "NUL byte: %s", err);
    oe_access_users_free(u);
    free(bc);
    free(by);
    free(sha);
    free(ye);
    free(cd);
}

static int basic(const char *value, const char *user, const char *password)
{
    char u[OE_ACCESS_USER_MAX + 1], p[OE_ACCESS_PASSWORD_MAX + 1];
    int rc = oe_access_parse_basic(value, strlen(value), u, sizeof(u), p, sizeof(p));
    if (rc == 0 && user != NULL)
        CHECK(strcmp(u, user) == 0 && strcmp(p, password) == 0, "%s -> %s / %s (got %s / %s)", value, user, password, u,
              p);
    return rc;
}

static void test_basic(void)
{
    char big[1200] = "Basic ";
    CHECK(basic("Basic YWxpY2U6YXBwbGU=", "alice", "apple") == 0, "alice:apple");
    CHECK(basic("basic   YWxpY2U6YXBwbGU=  ", "alice", "apple") == 0, "any case, blanks");
    CHECK(basic("BASIC YTpiOmM=", "a", "b:c") == 0, "the first colon splits (a:b:c)");
    CHECK(basic("Basic YTo=", "a", "") == 0, "empty password");
    CHECK(basic("Basic OmI=", "", "b") == 0, "empty user (then unknown)");
    CHECK(basic("Basic w6nDqTrDvMO8", "\xc3\xa9\xc3\xa9", "\xc3\xbc\xc3\xbc") == 0, "UTF-8");
    CHECK(basic("Bearer abc.def", NULL, NULL) == -1, "Bearer: not Basic");
    CHECK(basic("Basicx YTpi", NULL, NULL) == -1, "Basicx");
    CHECK(basic("Basic", NULL, NULL) == -1, "no credentials");
    CHECK(basic("Basic ", NULL, NULL) == -2, "empty credentials");
    CHECK(basic("Basic YWxpY2U=", NULL, NULL) == -2, "no colon");
    CHECK(basic("Basic !!!!", NULL, NULL) == -2, "not base64");
    CHECK(basic("Basic YWxpY2U6YXBwbGU", NULL, NULL) == -2, "not a multiple of 4");
    CHECK(basic("Basic YW=pY2U6", NULL, NULL) == -2, "padding inside");
    CHECK(basic("Basic YToNCg==", NULL, NULL) == -2, "control characters (a:\\r\\n)");
    CHECK(basic("Basic YTpiAA==", NULL, NULL) == -2, "NUL in the password");
    for (size_t i = 6; i < sizeof(big) - 1; i++)
        big[i] = 'Q';
    big[sizeof(big) - 1] = '\0';
    CHECK(basic(big, NULL, NULL) == -2, "too long");
}

static void test_prefix(void)
{
    CHECK(oe_access_prefix_match("/admin", 6, "/admin", 6), "itself");
    CHECK(oe_access_prefix_match("/admin", 6, "/admin/", 7) && oe_access_prefix_match("/admin", 6, "/admin/x/y", 10),
          "below it");
    CHECK(oe_access_prefix_match("/admin", 6, "/ADMIN/x", 8), "any case (Express ignores it)");
    CHECK(!oe_access_prefix_match("/admin", 6, "/administrator", 14), "not a longer name");
    CHECK(!oe_access_prefix_match("/admin", 6, "/adm", 4) && !oe_access_prefix_match("/admin", 6, "/", 1), "shorter");
    CHECK(!oe_access_prefix_match("/admin", 6, "/x/admin", 8), "a prefix, not a substring");
    CHECK(oe_access_prefix_match("/", 1, "/", 1) && oe_access_prefix_match("/", 1, "/anything", 9), "/ covers all");
    CHECK(oe_access_prefix_match("/api/room/create", 16, "/api/room/create", 16) &&
              !oe_access_prefix_match("/api/room/create", 16, "/api/room/created", 17),
          "OTT's room creation");
}

int main(void)
{
    test_cidr_and_keys();
    test_ranges();
    test_bucket();
    test_table();
    test_htpasswd();
    test_basic();
    test_prefix();
    return CHECK_DONE();
}
