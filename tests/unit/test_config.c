/*
 * Unit tests of pkg/config: value parsers, defaults, YAML (block and flow), environment
 * overrides and *_FILE, every class of error message, printing with redaction, CIDR
 * matching, and robustness against hostile files. Every load passes its own envp so the
 * real environment never leaks in; files live in a mkdtemp directory.
 */
#include "config/config.h"
#include "log/log.h"

#include <arpa/inet.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int passed, failed;
static char tmpdir[256];
static char *noenv[] = {NULL};

#define CHECK(cond, ...)                                                                                               \
    do {                                                                                                               \
        if (cond) {                                                                                                    \
            passed++;                                                                                                  \
        } else {                                                                                                       \
            failed++;                                                                                                  \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                                                                \
            printf(__VA_ARGS__);                                                                                       \
            printf("\n");                                                                                              \
        }                                                                                                              \
    } while (0)

/* Writes content (len bytes; -1 for strlen) to tmpdir/name; returns the path (static buffer per slot). */
static const char *write_file_n(const char *name, const char *content, long len)
{
    static char paths[8][PATH_MAX];
    static int slot;
    char *path = paths[slot++ % 8];
    FILE *f;

    snprintf(path, PATH_MAX, "%s/%s", tmpdir, name);
    f = fopen(path, "wb");
    if (f == NULL) {
        perror(path);
        exit(1);
    }
    fwrite(content, 1, len < 0 ? strlen(content) : (size_t)len, f);
    fclose(f);
    return path;
}

static const char *write_file(const char *name, const char *content)
{
    return write_file_n(name, content, -1);
}

/* Loads YAML text (written to config.yaml) with the given environment. */
static oe_config_t *load(const char *yaml, char *const *envp, char *err)
{
    return oe_config_load(write_file("config.yaml", yaml), envp != NULL ? envp : noenv, err, OE_CONFIG_ERR_MAX);
}

static char *print_to_string(const oe_config_t *cfg)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    oe_config_print(cfg, f);
    fclose(f);
    return buf;
}

/* ---- value parsers ------------------------------------------------------------------- */

static void test_duration(void)
{
    static const struct {
        const char *in;
        uint64_t ms;
    } ok[] = {
        {"500ms", 500},
        {"30s", 30000},
        {"5m", 300000},
        {"2h", 7200000},
        {"7d", 604800000},
        {"1h30m", 5400000},
        {"90", 90000},
        {"0", 0},
        {"0s", 0},
        {"2s500ms", 2500},
        {"1d2h3m4s5ms", 93784005},
        {"24d", 2073600000},
        {"1ms", 1},
        {"120s", 120000},
    };
    static const char *const bad[] = {"",
                                      "7 days",
                                      "s",
                                      "5x",
                                      "-1s",
                                      "1.5h",
                                      "30 s",
                                      " 30s",
                                      "30s ",
                                      "1h30",
                                      "ms",
                                      "5S",
                                      "1w",
                                      "+5s",
                                      "0x10",
                                      "18446744073709551615s",
                                      "99999999999999999999",
                                      "18446744073709551615"};
    size_t i;
    uint64_t v;

    for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        v = 12345;
        CHECK(oe_config_parse_duration(ok[i].in, &v) == 0 && v == ok[i].ms, "duration %s -> %llu", ok[i].in,
              (unsigned long long)v);
    }
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK(oe_config_parse_duration(bad[i], &v) != 0, "duration \"%s\" should be rejected", bad[i]);
    CHECK(oe_config_parse_duration(NULL, &v) != 0, "NULL duration");
}

static void test_size(void)
{
    static const struct {
        const char *in;
        uint64_t n;
    } ok[] = {
        {"16MiB", 16ull << 20},
        {"512KiB", 512ull << 10},
        {"1GiB", 1ull << 30},
        {"10MB", 10000000},
        {"1024", 1024},
        {"0", 0},
        {"16M", 16ull << 20},
        {"1kb", 1000},
        {"2B", 2},
        {"1mib", 1ull << 20},
        {"2TiB", 2ull << 40},
        {"3GB", 3000000000ull},
    };
    static const char *const bad[] = {"", "MiB", "16 MiB", "-1", "1.5MiB", "16XB", "99999999999TiB", "16MiBs", " 1"};
    size_t i;
    uint64_t v;

    for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        v = 12345;
        CHECK(oe_config_parse_size(ok[i].in, &v) == 0 && v == ok[i].n, "size %s -> %llu", ok[i].in,
              (unsigned long long)v);
    }
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK(oe_config_parse_size(bad[i], &v) != 0, "size \"%s\" should be rejected", bad[i]);
}

static void test_bool(void)
{
    static const struct {
        const char *in;
        int v;
    } ok[] = {{"true", 1}, {"false", 0}, {"yes", 1}, {"no", 0},   {"on", 1},
              {"off", 0},  {"1", 1},     {"0", 0},   {"TRUE", 1}, {"Off", 0}};
    static const char *const bad[] = {"", "2", "tru", "y", "n", "enabled", " true"};
    size_t i;
    int v;

    for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        v = -1;
        CHECK(oe_config_parse_bool(ok[i].in, &v) == 0 && v == ok[i].v, "bool %s -> %d", ok[i].in, v);
    }
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK(oe_config_parse_bool(bad[i], &v) != 0, "bool \"%s\" should be rejected", bad[i]);
}

static void test_cidr_parse(void)
{
    static const struct {
        const char *in;
        int family;
        const char *addr; /* after clearing host bits */
        unsigned prefix;
    } ok[] = {
        {"10.0.0.0/8", AF_INET, "10.0.0.0", 8},
        {"10.1.2.3/8", AF_INET, "10.0.0.0", 8},
        {"192.168.1.77/26", AF_INET, "192.168.1.64", 26},
        {"192.0.2.7", AF_INET, "192.0.2.7", 32},
        {"0.0.0.0/0", AF_INET, "0.0.0.0", 0},
        {"::1", AF_INET6, "::1", 128},
        {"fd00::/8", AF_INET6, "fd00::", 8},
        {"fd12:3456::1/17", AF_INET6, "fd12:0:0:0:0:0:0:0", 17},
        {"2001:db8::ff/121", AF_INET6, "2001:db8::80", 121},
        {"::/0", AF_INET6, "::", 0},
        {"::ffff:10.0.0.0/104", AF_INET6, "::ffff:10.0.0.0", 104},
    };
    static const char *const bad[] = {
        "",   "10.0.0.0/33", "::/129",       "10.0.0.0/",  "10.0.0/8",    "abc",        "1.2.3.4/8x", " 10.0.0.0/8",
        "/8", "10.0.0.0/-1", "1.2.3.4/0008", "fd00::/8/8", "256.0.0.0/8", "10.0.0.0 /8"};
    size_t i;

    for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        oe_cidr_t c, want;
        memset(&want, 0, sizeof(want));
        inet_pton(ok[i].family, ok[i].addr, want.addr);
        memset(&c, 0xaa, sizeof(c));
        int rc = oe_config_parse_cidr(ok[i].in, &c);
        CHECK(rc == 0 && c.family == ok[i].family && c.prefix == ok[i].prefix && memcmp(c.addr, want.addr, 16) == 0,
              "cidr %s (rc %d, prefix %u)", ok[i].in, rc, c.prefix);
    }
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        oe_cidr_t c;
        CHECK(oe_config_parse_cidr(bad[i], &c) != 0, "cidr \"%s\" should be rejected", bad[i]);
    }
}

static int match(const char *const *ranges, size_t n, const char *ip)
{
    oe_cidr_t list[8];
    struct sockaddr_in sin;
    struct sockaddr_in6 sin6;
    size_t i;

    for (i = 0; i < n; i++)
        if (oe_config_parse_cidr(ranges[i], &list[i]) != 0)
            return -1;
    memset(&sin, 0, sizeof(sin));
    memset(&sin6, 0, sizeof(sin6));
    if (inet_pton(AF_INET, ip, &sin.sin_addr) == 1) {
        sin.sin_family = AF_INET;
        return oe_cidr_match(list, n, (struct sockaddr *)&sin);
    }
    if (inet_pton(AF_INET6, ip, &sin6.sin6_addr) == 1) {
        sin6.sin6_family = AF_INET6;
        return oe_cidr_match(list, n, (struct sockaddr *)&sin6);
    }
    return -1;
}

static void test_cidr_match(void)
{
    static const char *const v4[] = {"10.0.0.0/8", "192.168.1.0/24", "203.0.113.9"};
    static const char *const v6[] = {"fd00::/8", "::1", "2001:db8:1::/48"};
    static const char *const mixed[] = {"172.16.0.0/12", "::1"};
    static const char *const mapped_range[] = {"::ffff:100.64.0.0/106"};
    static const char *const any4[] = {"0.0.0.0/0"};
    static const char *const odd[] = {"10.0.0.0/9"};
    static const struct {
        const char *const *ranges;
        size_t n;
        const char *ip;
        int want;
    } cases[] = {
        {v4, 3, "10.1.2.3", 1},
        {v4, 3, "11.0.0.1", 0},
        {v4, 3, "192.168.1.255", 1},
        {v4, 3, "192.168.2.1", 0},
        {v4, 3, "203.0.113.9", 1},
        {v4, 3, "203.0.113.10", 0},
        {v4, 3, "::ffff:10.9.9.9", 1}, /* IPv4-mapped IPv6 matches an IPv4 range */
        {v4, 3, "::ffff:203.0.113.9", 1},
        {v4, 3, "::ffff:11.0.0.1", 0},
        {v4, 3, "::10.9.9.9", 0}, /* IPv4-compatible is not mapped */
        {v4, 3, "fd00::1", 0},
        {v6, 3, "fd12::1", 1},
        {v6, 3, "fe80::1", 0},
        {v6, 3, "::1", 1},
        {v6, 3, "::2", 0},
        {v6, 3, "2001:db8:1:ffff::1", 1},
        {v6, 3, "2001:db8:2::1", 0},
        {v6, 3, "10.1.2.3", 0},
        {v6, 3, "127.0.0.1", 0},
        {mixed, 2, "172.31.255.255", 1},
        {mixed, 2, "172.32.0.0", 0},
        {mixed, 2, "::1", 1},
        {mixed, 2, "::ffff:172.16.0.1", 1},
        {mapped_range, 1, "100.64.0.1", 1}, /* an IPv4 peer against a mapped range */
        {mapped_range, 1, "100.128.0.1", 0},
        {any4, 1, "1.2.3.4", 1},
        {any4, 1, "::ffff:1.2.3.4", 1},
        {any4, 1, "2001:db8::1", 0},
        {odd, 1, "10.127.255.255", 1},
        {odd, 1, "10.128.0.0", 0},
    };
    size_t i;
    struct sockaddr_un_like {
        sa_family_t family;
        char pad[32];
    } unix_sa = {AF_UNIX, {0}};
    oe_cidr_t c;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int got = match(cases[i].ranges, cases[i].n, cases[i].ip);
        CHECK(got == cases[i].want, "match %s against %s...: got %d want %d", cases[i].ip, cases[i].ranges[0], got,
              cases[i].want);
    }
    oe_config_parse_cidr("0.0.0.0/0", &c);
    CHECK(oe_cidr_match(&c, 1, (struct sockaddr *)&unix_sa) == 0, "non-IP family never matches");
    CHECK(oe_cidr_match(NULL, 0, (struct sockaddr *)&unix_sa) == 0, "empty list");
}

static void test_hostport(void)
{
    static const struct {
        const char *in;
        const char *host;
        unsigned port;
    } ok[] = {
        {":443", "", 443},
        {"0.0.0.0:443", "0.0.0.0", 443},
        {"[::]:443", "::", 443},
        {"127.0.0.1:8443", "127.0.0.1", 8443},
        {"[::1]:9901", "::1", 9901},
        {"localhost:80", "localhost", 80},
        {":1", "", 1},
        {":65535", "", 65535},
        {"8080", "", 8080},
    };
    static const char *const bad[] = {"",         ":",        ":0",      ":65536", ":99999",   "::1:443", "[::1]",
                                      "[::1]443", "[zz]:443", "1.2.3.4", "host:",  "host:abc", ":443 ",   " :443",
                                      "a b:443",  "[]:443",   ":-1",     ":+443",  "host:44x"};
    char host[64];
    uint16_t port;
    size_t i;

    for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        int rc = oe_config_split_hostport(ok[i].in, host, sizeof(host), &port);
        CHECK(rc == 0 && strcmp(host, ok[i].host) == 0 && port == ok[i].port, "hostport %s -> rc %d \"%s\" %u",
              ok[i].in, rc, rc == 0 ? host : "", rc == 0 ? port : 0);
    }
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK(oe_config_split_hostport(bad[i], host, sizeof(host), &port) != 0, "hostport \"%s\" should be rejected",
              bad[i]);
    CHECK(oe_config_split_hostport("localhost:80", host, 5, &port) != 0, "host longer than the buffer");
}

/* ---- loading ------------------------------------------------------------------------- */

static int list_is(const oe_strlist_t *l, int n, ...)
{
    va_list ap;
    int i, ok = (size_t)n == l->count;

    va_start(ap, n);
    for (i = 0; ok && i < n; i++)
        ok = strcmp(l->items[i], va_arg(ap, const char *)) == 0;
    va_end(ap);
    return ok;
}

static void test_defaults(void)
{
    char err[OE_CONFIG_ERR_MAX];
    oe_config_t *cfg = load("", NULL, err);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);

    CHECK(cfg != NULL, "empty file loads: %s", err);
    if (cfg == NULL)
        return;
    CHECK(cfg->source != NULL && strstr(cfg->source, "config.yaml") != NULL, "source");
    CHECK(cfg->domains.count == 0, "domains");
    CHECK(strcmp(cfg->upstream, "http://127.0.0.1:8080") == 0, "upstream");
    CHECK(cfg->threads == (cpus > 64 ? 64 : cpus < 1 ? 1 : cpus), "threads %d", cfg->threads);
    CHECK(strcmp(cfg->state_dir, "/var/lib/ott-edge") == 0, "state_dir");
    CHECK(strcmp(cfg->hsts, "max-age=31536000") == 0, "hsts");
    CHECK(strcmp(cfg->user, "") == 0, "user");
    CHECK(strcmp(cfg->listen.https, ":443") == 0, "listen.https");
    CHECK(strcmp(cfg->listen.http, ":80") == 0, "listen.http");
    CHECK(strcmp(cfg->listen.admin, ":9901") == 0, "listen.admin");
    CHECK(cfg->tls.cert_file == NULL && cfg->tls.key_file == NULL, "tls");
    CHECK(cfg->proxy.trusted_proxies_count == 0, "trusted_proxies");
    CHECK(cfg->proxy.real_ip_header == NULL, "real_ip_header");
    CHECK(cfg->proxy.websocket_idle_timeout_ms == 7ull * 86400000, "websocket_idle_timeout");
    CHECK(cfg->proxy.upstream_timeout_ms == 60000, "upstream_timeout");
    CHECK(cfg->proxy.upstream_keepalive_ms == 2000, "upstream_keepalive");
    CHECK(cfg->proxy.max_body_size == 16ull << 20, "max_body_size");
    CHECK(list_is(&cfg->proxy.block_paths, 1, "/api/status/metrics"), "block_paths");
    CHECK(strcmp(cfg->proxy.health_path, "/api/status") == 0, "health_path");
    CHECK(cfg->proxy.health_interval_ms == 5000, "health_interval");
    CHECK(cfg->client.request_timeout_ms == 10000, "request_timeout");
    CHECK(cfg->client.idle_timeout_ms == 120000, "idle_timeout");
    CHECK(cfg->client.handshake_timeout_ms == 10000, "handshake_timeout");
    CHECK(cfg->log.format == OE_LOG_FORMAT_TEXT && cfg->log.access == 0 && cfg->log.level == OE_LOG_INFO, "log");
    CHECK(cfg->shutdown.delay_ms == 5000 && cfg->shutdown.grace_ms == 25000, "shutdown");
    CHECK(cfg->acme.enabled == OE_AUTO, "acme.enabled");
    CHECK(strcmp(cfg->acme.directory, "https://acme-v02.api.letsencrypt.org/directory") == 0, "acme.directory");
    CHECK(cfg->acme.email == NULL && cfg->acme.ca_file == NULL, "acme email/ca_file");
    CHECK(cfg->acme.eab_kid == NULL && cfg->acme.eab_hmac_key == NULL, "eab");
    CHECK(list_is(&cfg->acme.challenges, 2, "tls-alpn-01", "http-01"), "challenges");
    CHECK(cfg->acme.key_type == OE_KEY_EC256, "key_type");
    CHECK(cfg->acme.renew_before_ms == 0, "renew_before");
    CHECK(cfg->acme.preferred_chain == NULL, "preferred_chain");
    CHECK(oe_config_acme_enabled(cfg) == 0, "no domains: acme off");
    oe_config_free(cfg);

    /* a comments-only file and an explicit empty document are the defaults too */
    cfg = load("# nothing here\n\n", NULL, err);
    CHECK(cfg != NULL, "comments only: %s", err);
    oe_config_free(cfg);
    cfg = load("---\n...\n", NULL, err);
    CHECK(cfg != NULL, "empty document: %s", err);
    oe_config_free(cfg);
    cfg = load("listen:\nacme:\n  eab:\n", NULL, err);
    CHECK(cfg != NULL && strcmp(cfg->listen.https, ":443") == 0, "empty groups: %s", err);
    oe_config_free(cfg);
}

static const char full_yaml[] = "# every key\n"
                                "domains:\n"
                                "  - Example.COM\n"
                                "  - www.example.com.\n"
                                "  - 192.0.2.1\n"
                                "upstream: http://127.0.0.1:3000/\n"
                                "threads: 3\n"
                                "state_dir: /tmp/state\n"
                                "hsts: \"\"\n"
                                "user: ott\n"
                                "listen:\n"
                                "  https: \"[::]:8443\"\n"
                                "  http: \"\"\n"
                                "  admin: 127.0.0.1:9902\n"
                                "tls:\n"
                                "  cert_file: /c.pem\n"
                                "  key_file: /k.pem\n"
                                "proxy:\n"
                                "  trusted_proxies: [10.0.0.0/8, \"::1\", 192.168.0.7/16]\n"
                                "  real_ip_header: CF-Connecting-IP\n"
                                "  websocket_idle_timeout: 1h30m\n"
                                "  upstream_timeout: 30s\n"
                                "  upstream_keepalive: 0\n"
                                "  max_body_size: 1GiB\n"
                                "  block_paths: [/a, /b/c]\n"
                                "  health_path: /healthz\n"
                                "  health_interval: 500ms\n"
                                "client:\n"
                                "  request_timeout: 11s\n"
                                "  idle_timeout: 2m\n"
                                "  handshake_timeout: 3s\n"
                                "log: {format: json, access: yes, level: debug}\n"
                                "shutdown:\n"
                                "  delay: 0\n"
                                "  grace: 1h\n"
                                "acme:\n"
                                "  enabled: true\n"
                                "  directory: letsencrypt-staging\n"
                                "  email: admin@example.com\n"
                                "  ca_file: /ca.pem\n"
                                "  eab:\n"
                                "    kid: kid-1\n"
                                "    hmac_key: c2VjcmV0LWhtYWMta2V5\n"
                                "  challenges: [http-01]\n"
                                "  key_type: rsa2048\n"
                                "  renew_before: 30d\n"
                                "  preferred_chain: ISRG Root X1\n";

static void test_full_file(void)
{
    char err[OE_CONFIG_ERR_MAX];
    oe_config_t *cfg = load(full_yaml, NULL, err);

    CHECK(cfg != NULL, "full file loads: %s", err);
    if (cfg == NULL)
        return;
    CHECK(list_is(&cfg->domains, 3, "example.com", "www.example.com", "192.0.2.1"), "domains lower-cased");
    CHECK(strcmp(cfg->upstream, "http://127.0.0.1:3000/") == 0, "upstream");
    CHECK(cfg->threads == 3, "threads");
    CHECK(strcmp(cfg->state_dir, "/tmp/state") == 0 && strcmp(cfg->hsts, "") == 0 && strcmp(cfg->user, "ott") == 0,
          "top strings");
    CHECK(strcmp(cfg->listen.https, "[::]:8443") == 0 && strcmp(cfg->listen.http, "") == 0 &&
              strcmp(cfg->listen.admin, "127.0.0.1:9902") == 0,
          "listen");
    CHECK(strcmp(cfg->tls.cert_file, "/c.pem") == 0 && strcmp(cfg->tls.key_file, "/k.pem") == 0, "tls");
    CHECK(cfg->proxy.trusted_proxies_count == 3 && cfg->proxy.trusted_proxies[2].prefix == 16 &&
              cfg->proxy.trusted_proxies[2].addr[2] == 0 && cfg->proxy.trusted_proxies[1].family == AF_INET6,
          "trusted_proxies");
    CHECK(strcmp(cfg->proxy.real_ip_header, "CF-Connecting-IP") == 0, "real_ip_header");
    CHECK(cfg->proxy.websocket_idle_timeout_ms == 5400000, "websocket_idle_timeout");
    CHECK(cfg->proxy.upstream_timeout_ms == 30000 && cfg->proxy.upstream_keepalive_ms == 0, "upstream timers");
    CHECK(cfg->proxy.max_body_size == 1ull << 30, "max_body_size");
    CHECK(list_is(&cfg->proxy.block_paths, 2, "/a", "/b/c"), "block_paths");
    CHECK(strcmp(cfg->proxy.health_path, "/healthz") == 0 && cfg->proxy.health_interval_ms == 500, "health");
    CHECK(cfg->client.request_timeout_ms == 11000 && cfg->client.idle_timeout_ms == 120000 &&
              cfg->client.handshake_timeout_ms == 3000,
          "client");
    CHECK(cfg->log.format == OE_LOG_FORMAT_JSON && cfg->log.access == 1 && cfg->log.level == OE_LOG_DEBUG, "log");
    CHECK(cfg->shutdown.delay_ms == 0 && cfg->shutdown.grace_ms == 3600000, "shutdown");
    CHECK(cfg->acme.enabled == OE_ON && oe_config_acme_enabled(cfg), "acme.enabled");
    CHECK(strcmp(cfg->acme.directory, "https://acme-staging-v02.api.letsencrypt.org/directory") == 0, "directory");
    CHECK(strcmp(cfg->acme.email, "admin@example.com") == 0 && strcmp(cfg->acme.ca_file, "/ca.pem") == 0, "email");
    CHECK(strcmp(cfg->acme.eab_kid, "kid-1") == 0 && strcmp(cfg->acme.eab_hmac_key, "c2VjcmV0LWhtYWMta2V5") == 0,
          "eab");
    CHECK(list_is(&cfg->acme.challenges, 1, "http-01"), "challenges");
    CHECK(cfg->acme.key_type == OE_KEY_RSA2048 && cfg->acme.renew_before_ms == 30ull * 86400000, "key/renew");
    CHECK(strcmp(cfg->acme.preferred_chain, "ISRG Root X1") == 0, "preferred_chain");
    oe_config_free(cfg);
}

static void test_flow_style(void)
{
    char err[OE_CONFIG_ERR_MAX];
    oe_config_t *cfg =
        load("{listen: {https: \"127.0.0.1:8443\", http: '127.0.0.1:8080'}, domains: [a.example, b.example],\n"
             " proxy: {trusted_proxies: []}, acme: {eab: {kid: k, hmac_key: h}, directory: "
             "\"https://localhost:14000/dir\"}}\n",
             NULL, err);

    CHECK(cfg != NULL, "flow style: %s", err);
    if (cfg != NULL) {
        CHECK(strcmp(cfg->listen.https, "127.0.0.1:8443") == 0 && strcmp(cfg->listen.http, "127.0.0.1:8080") == 0,
              "flow listen");
        CHECK(list_is(&cfg->domains, 2, "a.example", "b.example"), "flow domains");
        CHECK(strcmp(cfg->acme.directory, "https://localhost:14000/dir") == 0, "directory on localhost");
        CHECK(oe_config_acme_enabled(cfg) == 1, "auto with domains and no cert: on");
    }
    oe_config_free(cfg);

    /* a scalar for a list key is read like the environment form */
    cfg = load("domains: a.example, b.example\nproxy:\n  block_paths: \"\"\n", NULL, err);
    CHECK(cfg != NULL && list_is(&cfg->domains, 2, "a.example", "b.example") && cfg->proxy.block_paths.count == 0,
          "scalar list: %s", err);
    oe_config_free(cfg);

    /* dotted keys and a quoted empty list element are handled */
    cfg = load("\"listen.https\": \":8443\"\n", NULL, err);
    CHECK(cfg != NULL && strcmp(cfg->listen.https, ":8443") == 0, "dotted key: %s", err);
    oe_config_free(cfg);

    /* UTF-8 text passes through and prints back */
    cfg = load("acme:\n  preferred_chain: \"Root \u00fc \u2014 \U0001F512\"\n", NULL, err);
    CHECK(cfg != NULL && strcmp(cfg->acme.preferred_chain, "Root \xc3\xbc \xe2\x80\x94 \xf0\x9f\x94\x92") == 0,
          "UTF-8 value: %s", err);
    if (cfg != NULL) {
        char *out = print_to_string(cfg);
        CHECK(strstr(out, "Root \xc3\xbc") != NULL, "UTF-8 printed:\n%s", out);
        free(out);
    }
    oe_config_free(cfg);

    /* anchors (without aliases) and tags are harmless */
    cfg = load("upstream: &u !!str http://127.0.0.1:1234\n", NULL, err);
    CHECK(cfg != NULL && strcmp(cfg->upstream, "http://127.0.0.1:1234") == 0, "anchor + tag: %s", err);
    oe_config_free(cfg);
}

static void test_env(void)
{
    char err[OE_CONFIG_ERR_MAX], var[PATH_MAX + 64], var2[PATH_MAX + 64];
    oe_config_t *cfg;

    {
        char *env[] = {"PATH=/usr/bin",
                       "OTT_EDGE_LISTEN_HTTPS=:8443",
                       "OTT_EDGE_DOMAINS= a.example ,B.example,",
                       "OTT_EDGE_PROXY_TRUSTED_PROXIES=10.0.0.0/8, ::1",
                       "OTT_EDGE_PROXY_WEBSOCKET_IDLE_TIMEOUT=2h",
                       "OTT_EDGE_PROXY_MAX_BODY_SIZE=1MiB",
                       "OTT_EDGE_LOG_ACCESS=on",
                       "OTT_EDGE_LOG_LEVEL=warn",
                       "OTT_EDGE_THREADS=2",
                       "OTT_EDGE_ACME_ENABLED=false",
                       "OTT_EDGE_ACME_DIRECTORY=zerossl",
                       "OTT_EDGE_ACME_KEY_TYPE=ec384",
                       "OTT_EDGE_TLS_CERT_FILE=/env-cert.pem",
                       "OTT_EDGE_TLS_KEY_FILE=/env-key.pem",
                       "OTT_EDGE_BIN=/x/ott-edge",
                       "OTT_EDGE_SANITIZE=1",
                       "OTT_EDGE_CONFIG=/does/not/matter",
                       NULL};
        /* file sets these too: env must win; file-only keys stay */
        cfg = load("listen:\n  https: \":7443\"\n  admin: \":9911\"\nthreads: 5\nlog:\n  level: error\n", env, err);
        CHECK(cfg != NULL, "env load: %s", err);
        if (cfg != NULL) {
            CHECK(strcmp(cfg->listen.https, ":8443") == 0, "env beats file");
            CHECK(strcmp(cfg->listen.admin, ":9911") == 0, "file value kept");
            CHECK(list_is(&cfg->domains, 2, "a.example", "b.example"), "env list trimmed, empty items dropped");
            CHECK(cfg->proxy.trusted_proxies_count == 2, "env cidr list");
            CHECK(cfg->proxy.websocket_idle_timeout_ms == 7200000, "env duration");
            CHECK(cfg->proxy.max_body_size == 1 << 20, "env size");
            CHECK(cfg->log.access == 1 && cfg->log.level == OE_LOG_WARN, "env bool/enum");
            CHECK(cfg->threads == 2, "env threads");
            CHECK(cfg->acme.enabled == OE_OFF && !oe_config_acme_enabled(cfg), "env acme.enabled");
            CHECK(strcmp(cfg->acme.directory, "https://acme.zerossl.com/v2/DV90") == 0, "zerossl");
            CHECK(cfg->acme.key_type == OE_KEY_EC384, "key_type");
            CHECK(strcmp(cfg->tls.cert_file, "/env-cert.pem") == 0, "TLS_CERT_FILE is the plain form of tls.cert_file");
        }
        oe_config_free(cfg);
    }

    /* OTT_EDGE_CONFIG names the file when no path is given */
    {
        const char *p = write_file("via-env.yaml", "upstream: http://127.0.0.1:9999\n");
        char *env[] = {var, NULL};
        snprintf(var, sizeof(var), "OTT_EDGE_CONFIG=%s", p);
        cfg = oe_config_load(NULL, env, err, sizeof(err));
        CHECK(cfg != NULL && cfg->source != NULL && strcmp(cfg->source, p) == 0 &&
                  strcmp(cfg->upstream, "http://127.0.0.1:9999") == 0,
              "OTT_EDGE_CONFIG: %s", err);
        oe_config_free(cfg);
    }

    /* environment alone (explicit path wins over OTT_EDGE_CONFIG; an empty list from env) */
    {
        char *env[] = {"OTT_EDGE_CONFIG=/nonexistent.yaml", "OTT_EDGE_PROXY_BLOCK_PATHS=", "OTT_EDGE_HSTS=", NULL};
        cfg = load("", env, err);
        CHECK(cfg != NULL && cfg->proxy.block_paths.count == 0 && strcmp(cfg->hsts, "") == 0, "empty env values: %s",
              err);
        oe_config_free(cfg);
    }

    /* _FILE: content with the trailing newline stripped */
    {
        const char *p = write_file("hmac", "s3cr3t-key\r\n");
        char *env[] = {var, "OTT_EDGE_ACME_EAB_KID=kid", "OTT_EDGE_DOMAINS=x.example", NULL};
        snprintf(var, sizeof(var), "OTT_EDGE_ACME_EAB_HMAC_KEY_FILE=%s", p);
        cfg = load("", env, err);
        CHECK(cfg != NULL && strcmp(cfg->acme.eab_hmac_key, "s3cr3t-key") == 0, "_FILE value: %s", err);
        oe_config_free(cfg);
    }
    {
        const char *p = write_file("cert-path", "/from-file/cert.pem\n");
        const char *q = write_file("key-path", "/from-file/key.pem\n");
        char *env[] = {var, var2, NULL};
        snprintf(var, sizeof(var), "OTT_EDGE_TLS_CERT_FILE_FILE=%s", p);
        snprintf(var2, sizeof(var2), "OTT_EDGE_TLS_KEY_FILE_FILE=%s", q);
        cfg = load("", env, err);
        CHECK(cfg != NULL && strcmp(cfg->tls.cert_file, "/from-file/cert.pem") == 0 &&
                  strcmp(cfg->tls.key_file, "/from-file/key.pem") == 0,
              "_FILE_FILE: %s", err);
        oe_config_free(cfg);
    }
    {
        const char *p = write_file("proxies", "10.0.0.0/8,\n192.168.0.0/16\n");
        char *env[] = {var, NULL};
        snprintf(var, sizeof(var), "OTT_EDGE_PROXY_TRUSTED_PROXIES_FILE=%s", p);
        cfg = load("", env, err);
        CHECK(cfg != NULL && cfg->proxy.trusted_proxies_count == 2, "list from _FILE: %s", err);
        oe_config_free(cfg);
    }
    /* the same variable twice: the first wins, as getenv() would */
    {
        char *env[] = {"OTT_EDGE_THREADS=2", "OTT_EDGE_THREADS=3", NULL};
        cfg = load("", env, err);
        CHECK(cfg != NULL && cfg->threads == 2, "duplicate env: %s", err);
        oe_config_free(cfg);
    }
}

/* Each bad input must fail with a message containing every listed fragment. */
static void test_errors(void)
{
    static const struct {
        const char *yaml;
        const char *env[3];
        const char *want[4];
    } cases[] = {
        /* unknown keys */
        {"upstream: http://127.0.0.1:8080\nlisten:\n  htps: \":443\"\n",
         {0},
         {"config.yaml:3:", "listen.htps", "unknown key"}},
        {"foo: 1\n", {0}, {"config.yaml:1:", "foo: unknown key"}},
        {"proxy:\n  trusted_proxies: []\n  nope:\n    deeper: 1\n", {0}, {":3:", "proxy.nope", "unknown key"}},
        {"", {"OTT_EDGE_LISTEN_HTTPZ=:1"}, {"config: OTT_EDGE_LISTEN_HTTPZ: unknown variable"}},
        {"", {"OTT_EDGE_FOO_FILE=/x"}, {"OTT_EDGE_FOO_FILE: unknown variable"}},
        /* wrong types */
        {"upstream:\n  host: x\n", {0}, {"config.yaml:2:", "upstream", "not a mapping"}},
        {"listen: \":443\"\n", {0}, {":1:", "listen", "expected a mapping"}},
        {"listen:\n  - a\n", {0}, {":2:", "listen", "expected a mapping", "a list"}},
        {"threads: [1, 2]\n", {0}, {":1:", "threads", "not a list"}},
        {"domains:\n  - a.example\n  - {x: 1}\n", {0}, {":3:", "domains", "single values"}},
        {"domains:\n  - a.example\n  -\n", {0}, {":3:", "domains", "empty list item"}},
        {"- a\n- b\n", {0}, {":1:", "top level must be a mapping"}},
        {"just a string\n", {0}, {":1:", "top level must be a mapping"}},
        {"? [a, b]\n: c\n", {0}, {":1:", "invalid key"}},
        /* durations */
        {"proxy:\n  websocket_idle_timeout: 7 days\n",
         {0},
         {"config.yaml:2: proxy.websocket_idle_timeout: invalid duration \"7 days\" (use e.g. 30s, 5m, 7d)"}},
        {"", {"OTT_EDGE_SHUTDOWN_GRACE=soon"}, {"config: OTT_EDGE_SHUTDOWN_GRACE: invalid duration \"soon\""}},
        {"proxy:\n  websocket_idle_timeout: 25d\n",
         {0},
         {":2:", "proxy.websocket_idle_timeout", "out of range", "24d"}},
        {"proxy:\n  websocket_idle_timeout: 500ms\n", {0}, {":2:", "websocket_idle_timeout", "out of range", "1s"}},
        {"shutdown:\n  grace: 2h\n", {0}, {":2:", "shutdown.grace", "out of range", "1h"}},
        {"", {"OTT_EDGE_SHUTDOWN_DELAY=61m"}, {"OTT_EDGE_SHUTDOWN_DELAY", "out of range"}},
        {"client:\n  request_timeout: 0\n", {0}, {":2:", "client.request_timeout", "out of range"}},
        /* sizes */
        {"proxy:\n  max_body_size: 16 megs\n", {0}, {":2:", "proxy.max_body_size", "invalid size \"16 megs\""}},
        {"", {"OTT_EDGE_PROXY_MAX_BODY_SIZE=0"}, {"OTT_EDGE_PROXY_MAX_BODY_SIZE", "out of range"}},
        /* CIDR */
        {"",
         {"OTT_EDGE_PROXY_TRUSTED_PROXIES=10.0.0.0/8,10.0.0.0/33"},
         {"config: OTT_EDGE_PROXY_TRUSTED_PROXIES: invalid CIDR \"10.0.0.0/33\""}},
        {"proxy:\n  trusted_proxies:\n    - 10.0.0.0/8\n    - 300.1.1.1\n",
         {0},
         {"config.yaml:4:", "proxy.trusted_proxies", "invalid CIDR \"300.1.1.1\""}},
        /* bool, int, enums */
        {"log:\n  access: maybe\n", {0}, {":2:", "log.access", "invalid boolean \"maybe\""}},
        {"threads: 0\n", {0}, {":1:", "threads", "1..64"}},
        {"threads: 65\n", {0}, {"threads", "1..64"}},
        {"", {"OTT_EDGE_THREADS=four"}, {"OTT_EDGE_THREADS", "invalid number"}},
        {"log:\n  format: xml\n", {0}, {":2:", "log.format", "\"xml\"", "text or json"}},
        {"log:\n  level: verbose\n", {0}, {"log.level", "debug, info, warn or error"}},
        {"acme:\n  key_type: rsa1024\n", {0}, {":2:", "acme.key_type", "ec256, ec384 or rsa2048"}},
        {"acme:\n  enabled: sometimes\n", {0}, {"acme.enabled", "auto, true or false"}},
        {"acme:\n  challenges: [dns-01]\n", {0}, {":2:", "acme.challenges", "dns-01"}},
        {"acme:\n  challenges:\n    - http-01\n    - http-01\n", {0}, {":4:", "acme.challenges", "twice"}},
        {"acme:\n  challenges: []\n", {0}, {":2:", "acme.challenges", "at least one"}},
        /* _FILE */
        {"",
         {"OTT_EDGE_ACME_EAB_HMAC_KEY_FILE=/nonexistent/hmac"},
         {"config: OTT_EDGE_ACME_EAB_HMAC_KEY_FILE: cannot read \"/nonexistent/hmac\"", "No such file"}},
        {"", {"OTT_EDGE_ACME_EAB_HMAC_KEY_FILE=/"}, {"OTT_EDGE_ACME_EAB_HMAC_KEY_FILE", "is a directory"}},
        {"",
         {"OTT_EDGE_ACME_EMAIL=a@b.example", "OTT_EDGE_ACME_EMAIL_FILE=/etc/hostname"},
         {"OTT_EDGE_ACME_EMAIL and OTT_EDGE_ACME_EMAIL_FILE are both set"}},
        {"",
         {"OTT_EDGE_ACME_EMAIL_FILE=/etc/hostname", "OTT_EDGE_ACME_EMAIL=a@b.example"},
         {"OTT_EDGE_ACME_EMAIL and OTT_EDGE_ACME_EMAIL_FILE are both set"}},
        /* upstream */
        {"upstream: https://127.0.0.1:8443\n", {0}, {":1:", "upstream", "https upstreams are not supported yet"}},
        {"upstream: 127.0.0.1:8080\n", {0}, {":1:", "upstream", "http://host:port"}},
        {"upstream: http://127.0.0.1\n", {0}, {"upstream", "invalid upstream"}},
        {"upstream: http://127.0.0.1:8080/ott\n", {0}, {"upstream", "path"}},
        {"", {"OTT_EDGE_UPSTREAM=http://:8080"}, {"OTT_EDGE_UPSTREAM", "invalid upstream"}},
        /* listeners */
        {"listen:\n  https: \"443:\"\n", {0}, {":2:", "listen.https", "invalid address \"443:\""}},
        {"listen:\n  https: \"\"\n", {0}, {":2:", "listen.https", "invalid address"}},
        {"listen:\n  admin: \"::1:9901\"\n", {0}, {":2:", "listen.admin", "[::]:443"}},
        {"", {"OTT_EDGE_LISTEN_HTTP=:70000"}, {"OTT_EDGE_LISTEN_HTTP", "invalid address"}},
        /* domains */
        {"domains: [\"*.example.com\"]\n", {0}, {":1:", "domains", "wildcard", "DNS-01"}},
        {"domains:\n  - ok.example\n  - bad_name.example\n", {0}, {":3:", "domains", "invalid name"}},
        {"domains: [a.example, A.EXAMPLE]\n", {0}, {"domains", "twice"}},
        {"", {"OTT_EDGE_DOMAINS=-bad.example"}, {"OTT_EDGE_DOMAINS", "invalid name"}},
        {"", {"OTT_EDGE_DOMAINS=1.2.3.400"}, {"OTT_EDGE_DOMAINS", "invalid name"}},
        /* pairs */
        {"tls:\n  cert_file: /c.pem\n", {0}, {"config.yaml:2:", "tls.cert_file", "must be given together"}},
        {"", {"OTT_EDGE_TLS_KEY_FILE=/k.pem"}, {"OTT_EDGE_TLS_KEY_FILE", "tls.key_file", "together"}},
        {"acme:\n  eab:\n    hmac_key: abc\n", {0}, {":3:", "acme.eab.hmac_key", "acme.eab.kid", "together"}},
        {"acme:\n  enabled: true\n", {0}, {":2:", "acme.enabled", "domains"}},
        /* paths, directory, email, header, misc strings */
        {"proxy:\n  block_paths: [/ok, metrics]\n",
         {0},
         {":2:", "proxy.block_paths", "\"metrics\" must start with '/'"}},
        {"proxy:\n  health_path: status\n", {0}, {"proxy.health_path", "must start with '/'"}},
        {"acme:\n  directory: http://ca.example/dir\n", {0}, {":2:", "acme.directory", "HTTPS only"}},
        {"acme:\n  directory: http://127.0.0.1:14000/dir\n", {0}, {"acme.directory", "acme.ca_file"}},
        {"acme:\n  directory: letsencrypt-prod\n", {0}, {"acme.directory", "invalid directory"}},
        {"acme:\n  directory: https:///x\n", {0}, {"acme.directory", "no host"}},
        {"acme:\n  email: not-an-address\n", {0}, {":2:", "acme.email", "invalid address"}},
        {"proxy:\n  real_ip_header: \"X Real IP\"\n", {0}, {"proxy.real_ip_header", "invalid header name"}},
        {"hsts: \"max-age=1\\r\\nX-Evil: 1\"\n", {0}, {":1:", "hsts", "control characters"}},
        {"hsts: \"a\\0b\"\n", {0}, {":1:", "hsts", "NUL"}},
        {"", {"OTT_EDGE_HSTS=max-age=1\xff"}, {"OTT_EDGE_HSTS", "not valid UTF-8"}},
        {"",
         {"OTT_EDGE_DOMAINS=a.example,b\xc0\xaf"
          "c"},
         {"OTT_EDGE_DOMAINS", "not valid UTF-8"}},
        {"", {"OTT_EDGE_ACME_PREFERRED_CHAIN=\xed\xa0\x80"}, {"OTT_EDGE_ACME_PREFERRED_CHAIN", "not valid UTF-8"}},
        {"state_dir: \"\"\n", {0}, {":1:", "state_dir", "must not be empty"}},
        /* YAML structure */
        {"threads: 2\nthreads: 3\n", {0}, {":2:", "threads", "duplicate key", "line 1"}},
        {"a: &x 1\nupstream: *x\n", {0}, {"unknown key"}},
        {"upstream: &x http://127.0.0.1:1\nhsts: *x\n", {0}, {":2:", "hsts", "aliases are not supported"}},
        {"domains: [*x]\n", {0}, {":1:", "domains", "not an alias"}},
        {"upstream: [\n", {0}, {"config.yaml:1:", "upstream", "not a list"}},
        {"upstream: \"abc\n", {0}, {"config.yaml:2:", "invalid YAML"}},
        {"domains: [a, b\n", {0}, {"config.yaml:2:", "invalid YAML"}},
        {"listen:\n  https: \":443\"\n bad indent: 1\n", {0}, {"config.yaml:", "invalid YAML"}},
        {"threads: 2\n---\nthreads: 3\n", {0}, {":2:", "only one YAML document"}},
        {"\"\": 1\n", {0}, {":1:", "invalid key"}},
    };
    size_t i, j;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char err[OE_CONFIG_ERR_MAX], *env[4] = {0};
        oe_config_t *cfg;
        for (j = 0; j < 3 && cases[i].env[j] != NULL; j++)
            env[j] = (char *)cases[i].env[j];
        cfg = load(cases[i].yaml, env, err);
        CHECK(cfg == NULL, "case %zu should fail (yaml %s)", i, cases[i].yaml);
        oe_config_free(cfg);
        if (cfg != NULL)
            continue;
        CHECK(strncmp(err, "config: ", 8) == 0 && strchr(err, '\n') == NULL, "case %zu: one line starting config: %s",
              i, err);
        for (j = 0; j < 4 && cases[i].want[j] != NULL; j++)
            CHECK(strstr(err, cases[i].want[j]) != NULL, "case %zu: \"%s\" not in: %s", i, cases[i].want[j], err);
    }
}

static void test_files(void)
{
    char err[OE_CONFIG_ERR_MAX], path[PATH_MAX + 32];
    oe_config_t *cfg;
    char *big;
    size_t n = 1024 * 1024 + 10;

    cfg = oe_config_load("/nonexistent/ott-edge.yaml", noenv, err, sizeof(err));
    CHECK(cfg == NULL && strstr(err, "/nonexistent/ott-edge.yaml") && strstr(err, "No such file"),
          "missing explicit file: %s", err);
    {
        char *env[] = {"OTT_EDGE_CONFIG=/nonexistent/env.yaml", NULL};
        cfg = oe_config_load(NULL, env, err, sizeof(err));
        CHECK(cfg == NULL && strstr(err, "/nonexistent/env.yaml") != NULL, "missing $OTT_EDGE_CONFIG: %s", err);
    }
    cfg = oe_config_load(tmpdir, noenv, err, sizeof(err));
    CHECK(cfg == NULL && strstr(err, "is a directory") != NULL, "directory as file: %s", err);

    snprintf(path, sizeof(path), "%s/unreadable.yaml", tmpdir);
    write_file("unreadable.yaml", "threads: 1\n");
    chmod(path, 0);
    if (geteuid() != 0) { /* root reads anything */
        cfg = oe_config_load(path, noenv, err, sizeof(err));
        CHECK(cfg == NULL && strstr(err, "Permission denied") != NULL, "unreadable file: %s", err);
    }

    /* more than 1 MiB */
    big = malloc(n);
    memset(big, '#', n);
    big[n - 1] = '\n';
    cfg = oe_config_load(write_file_n("big.yaml", big, (long)n), noenv, err, sizeof(err));
    CHECK(cfg == NULL && strstr(err, "larger than") != NULL, "oversized file: %s", err);
    free(big);

    /* a NULL or zero-size err buffer is tolerated */
    cfg = oe_config_load("/nonexistent/x", noenv, NULL, 0);
    CHECK(cfg == NULL, "NULL err");
}

/* ---- sites ----------------------------------------------------------------------------- */

static const char sites_yaml[] = "proxy:\n"                       /* 1 */
                                 "  websocket_idle_timeout: 1d\n" /* 2 */
                                 "  block_paths: [/top]\n"        /* 3 */
                                 "hsts: max-age=1\n"              /* 4 */
                                 "sites:\n"                       /* 5 */
                                 "  - name: ott\n"                /* 6 */
                                 "    domains: [OTT.example.com, www.ott.example.com.]\n"
                                 "    upstreams:\n"                   /* 8 */
                                 "      - http://10.0.0.2:8080\n"     /* 9 */
                                 "      - http://[::1]:8081/\n"       /* 10 */
                                 "    balance: least_conn\n"          /* 11 */
                                 "    proxy:\n"                       /* 12 */
                                 "      websocket_idle_timeout: 7d\n" /* 13 */
                                 "      health_rise: 4\n"             /* 14 */
                                 "      block_paths: []\n"            /* 15 */
                                 "    cache: {enabled: false}\n"      /* 16 */
                                 "  - domains: [blog.example.com, \"*.blog.example.com\"]\n"
                                 "    upstream: http://Blog.Internal:2368\n" /* 18 */
                                 "    balance: hash\n"                       /* 19 */
                                 "    hash_key: header:X-Room\n"             /* 20 */
                                 "    hsts: \"\"\n"                          /* 21 */
                                 "    tls:\n"                                /* 22 */
                                 "      cert_file: /blog.pem\n"              /* 23 */
                                 "      key_file: /blog.key\n"               /* 24 */
                                 "  - {name: api, domains: [api.example.com], upstreams: \"http://127.0.0.1:1, "
                                 "http://127.0.0.1:2\",\n"
                                 "     balance: hash, hash_key: \"path_segment:3\", compress: {enabled: no}}\n"
                                 "default_site: ott\n";

static void test_sites(void)
{
    char err[OE_CONFIG_ERR_MAX];
    char *env[] = {"OTT_EDGE_PROXY_MAX_BODY_SIZE=1MiB", "OTT_EDGE_PROXY_HEALTH_FALL=5", NULL};
    oe_config_t *cfg = load(sites_yaml, env, err);
    const oe_site_t *s;

    CHECK(cfg != NULL, "sites load: %s", err);
    if (cfg == NULL)
        return;
    CHECK(cfg->sites_listed == 1 && cfg->sites_count == 3 && cfg->default_site == 0, "three sites, default ott");
    CHECK(strcmp(cfg->default_site_name, "ott") == 0, "default_site_name");
    CHECK(cfg->domains.count == 0, "no top-level domains");
    CHECK(strcmp(cfg->upstream, "http://10.0.0.2:8080") == 0, "top-level upstream follows the first site: %s",
          cfg->upstream);

    s = &cfg->sites[0];
    CHECK(strcmp(s->name, "ott") == 0, "name");
    CHECK(list_is(&s->domains, 2, "ott.example.com", "www.ott.example.com"), "domains lower-cased, dot dropped");
    CHECK(s->upstreams_count == 2, "two upstreams");
    if (s->upstreams_count == 2) {
        CHECK(strcmp(s->upstreams[0].url, "http://10.0.0.2:8080") == 0 &&
                  strcmp(s->upstreams[0].host, "10.0.0.2") == 0 && s->upstreams[0].port == 8080 &&
                  strcmp(s->upstreams[0].authority, "10.0.0.2:8080") == 0,
              "upstream 0 parsed");
        CHECK(strcmp(s->upstreams[1].url, "http://[::1]:8081") == 0 && strcmp(s->upstreams[1].host, "::1") == 0 &&
                  s->upstreams[1].port == 8081 && strcmp(s->upstreams[1].authority, "[::1]:8081") == 0,
              "IPv6 upstream parsed: %s %s", s->upstreams[1].url, s->upstreams[1].authority);
    }
    CHECK(s->balance == OE_BALANCE_LEAST_CONN, "balance");
    CHECK(s->cert_file == NULL && s->key_file == NULL, "no cert: ACME");
    CHECK(s->proxy.websocket_idle_timeout_ms == 7ull * 86400000, "override: websocket_idle_timeout");
    CHECK(s->proxy.health_rise == 4 && s->proxy.health_fall == 5, "override rise, fall from env: %u %u",
          s->proxy.health_rise, s->proxy.health_fall);
    CHECK(s->proxy.block_paths.count == 0, "override: empty block_paths");
    CHECK(s->proxy.max_body_size == 1 << 20, "inherited from env: max_body_size");
    CHECK(strcmp(s->hsts, "max-age=1") == 0, "inherited hsts");
    CHECK(s->cache_enabled == 0 && s->compress_enabled == 1, "cache off here, compress inherited");
    CHECK(strcmp(s->proxy.health_path, "/api/status") == 0 && s->proxy.health_interval_ms == 5000 &&
              s->proxy.upstream_timeout_ms == 60000,
          "defaults inherited");
    CHECK(oe_config_site_acme(cfg, 0), "ott gets ACME");

    s = &cfg->sites[1];
    CHECK(strcmp(s->name, "blog.example.com") == 0, "default name: the first domain (%s)", s->name);
    CHECK(list_is(&s->domains, 2, "blog.example.com", "*.blog.example.com"), "wildcard with a cert file");
    CHECK(s->upstreams_count == 1 && strcmp(s->upstreams[0].url, "http://blog.internal:2368") == 0 &&
              strcmp(s->upstreams[0].host, "blog.internal") == 0,
          "single upstream, host lower-cased");
    CHECK(s->balance == OE_BALANCE_HASH && s->hash.kind == OE_HASH_HEADER && strcmp(s->hash.name, "x-room") == 0,
          "hash header, lower-cased");
    CHECK(strcmp(s->hsts, "") == 0, "hsts off for this site");
    CHECK(strcmp(s->cert_file, "/blog.pem") == 0 && strcmp(s->key_file, "/blog.key") == 0, "own certificate");
    CHECK(s->proxy.websocket_idle_timeout_ms == 86400000 && list_is(&s->proxy.block_paths, 1, "/top"),
          "inherited from the file's top level");
    CHECK(s->proxy.health_rise == 2 && s->proxy.health_fall == 5, "rise default, fall from env");
    CHECK(!oe_config_site_acme(cfg, 1), "no ACME with a cert file");

    s = &cfg->sites[2];
    CHECK(strcmp(s->name, "api") == 0 && s->upstreams_count == 2, "flow-style site, scalar upstream list");
    CHECK(s->balance == OE_BALANCE_HASH && s->hash.kind == OE_HASH_PATH_SEGMENT && s->hash.segment == 3 &&
              s->hash.name == NULL,
          "path_segment:3");
    CHECK(s->compress_enabled == 0 && s->cache_enabled == 1, "compress off here");

    CHECK(oe_config_acme_enabled(cfg), "auto: on (a site needs it)");
    CHECK(oe_config_site_by_name(cfg, "api") == 2 && oe_config_site_by_name(cfg, "nope") == -1, "by name");
    oe_config_free(cfg);

    /* other hash keys; default_site unset means none with sites */
    cfg = load("sites:\n"
               "  - {domains: [a.example], upstream: \"http://127.0.0.1:1\", balance: hash}\n"
               "  - {domains: [b.example], upstream: \"http://127.0.0.1:1\", balance: hash, hash_key: cookie:Sid}\n"
               "  - {domains: [c.example], upstream: \"http://127.0.0.1:1\", balance: HASH, hash_key: client_ip}\n",
               NULL, err);
    CHECK(cfg != NULL, "hash keys: %s", err);
    if (cfg != NULL) {
        CHECK(cfg->default_site == -1 && strcmp(cfg->default_site_name, "") == 0, "no default site");
        CHECK(cfg->sites[0].hash.kind == OE_HASH_CLIENT_IP, "hash defaults to client_ip");
        CHECK(cfg->sites[1].hash.kind == OE_HASH_COOKIE && strcmp(cfg->sites[1].hash.name, "Sid") == 0,
              "cookie name keeps its case");
        CHECK(cfg->sites[2].balance == OE_BALANCE_HASH && cfg->sites[2].hash.kind == OE_HASH_CLIENT_IP, "client_ip");
    }
    oe_config_free(cfg);

    /* a site without names, reached as the default site */
    cfg = load("default_site: catchall\nsites:\n"
               "  - {domains: [a.example], upstream: \"http://127.0.0.1:1\"}\n"
               "  - {name: catchall, upstream: \"http://127.0.0.1:2\"}\n",
               NULL, err);
    CHECK(cfg != NULL && cfg->default_site == 1 && cfg->sites[1].domains.count == 0 && !oe_config_site_acme(cfg, 1),
          "catch-all site without names: %s", err);
    oe_config_free(cfg);

    /* acme.enabled: false: nobody gets ACME; the routing table says self-signed */
    cfg = load("acme: {enabled: false}\nsites:\n  - {domains: [a.example], upstream: \"http://127.0.0.1:1\"}\n", NULL,
               err);
    CHECK(cfg != NULL && !oe_config_site_acme(cfg, 0) && !oe_config_acme_enabled(cfg), "ACME off: %s", err);
    oe_config_free(cfg);
}

static void test_one_site(void)
{
    char err[OE_CONFIG_ERR_MAX];
    oe_config_t *cfg;

    cfg = load("", NULL, err);
    CHECK(cfg != NULL && cfg->sites_count == 1 && !cfg->sites_listed, "defaults: one site: %s", err);
    if (cfg != NULL) {
        const oe_site_t *s = &cfg->sites[0];
        CHECK(strcmp(s->name, "default") == 0 && s->domains.count == 0, "no domains: named default");
        CHECK(cfg->default_site == 0 && strcmp(cfg->default_site_name, "default") == 0, "the one site is the default");
        CHECK(s->upstreams_count == 1 && strcmp(s->upstreams[0].url, "http://127.0.0.1:8080") == 0 &&
                  s->upstreams[0].port == 8080,
              "default upstream parsed");
        CHECK(s->balance == OE_BALANCE_ROUND_ROBIN && s->proxy.health_rise == 2 && s->proxy.health_fall == 3,
              "defaults");
        CHECK(cfg->proxy.health_rise == 2 && cfg->proxy.health_fall == 3, "top-level rise/fall defaults");
        CHECK(!oe_config_site_acme(cfg, 0), "no domains: no ACME");
    }
    oe_config_free(cfg);

    {
        char *env[] = {"OTT_EDGE_DOMAINS=Ott.Example.com,www.ott.example.com", "OTT_EDGE_UPSTREAM=http://ott:3000",
                       "OTT_EDGE_PROXY_WEBSOCKET_IDLE_TIMEOUT=2h", "OTT_EDGE_CACHE_ENABLED=false", NULL};
        cfg = load("hsts: \"\"\nproxy:\n  health_rise: 7\n", env, err);
        CHECK(cfg != NULL, "one site from env: %s", err);
        if (cfg != NULL) {
            const oe_site_t *s = &cfg->sites[0];
            CHECK(strcmp(s->name, "ott.example.com") == 0, "named by its first domain: %s", s->name);
            CHECK(list_is(&s->domains, 2, "ott.example.com", "www.ott.example.com"), "domains");
            CHECK(strcmp(s->upstreams[0].url, "http://ott:3000") == 0 && strcmp(s->upstreams[0].host, "ott") == 0,
                  "upstream from env");
            CHECK(s->proxy.websocket_idle_timeout_ms == 7200000 && s->cache_enabled == 0 && strcmp(s->hsts, "") == 0 &&
                      s->proxy.health_rise == 7,
                  "every value from the top level");
            CHECK(oe_config_site_acme(cfg, 0) && cfg->default_site == 0, "ACME, default");
        }
        oe_config_free(cfg);
    }

    /* a wildcard with a certificate file; the one site is not the default with default_site: "" */
    cfg = load("domains: [\"*.example.com\", example.com]\ntls: {cert_file: /c, key_file: /k}\ndefault_site: \"\"\n",
               NULL, err);
    CHECK(cfg != NULL && cfg->default_site == -1 && strcmp(cfg->sites[0].name, "_.example.com") == 0 &&
              strcmp(cfg->sites[0].cert_file, "/c") == 0 && !oe_config_acme_enabled(cfg),
          "wildcard + cert file, no default: %s", err);
    oe_config_free(cfg);
    cfg = load("domains: [a.example]\ndefault_site: a.example\n", NULL, err);
    CHECK(cfg != NULL && cfg->default_site == 0, "default_site naming the one site: %s", err);
    oe_config_free(cfg);

    /* acme.enabled: true with a cert file in the one-site form: ACME replaces the file, as before */
    cfg = load("domains: [a.example]\ntls: {cert_file: /c, key_file: /k}\nacme: {enabled: true}\n", NULL, err);
    CHECK(cfg != NULL && oe_config_site_acme(cfg, 0), "one site, acme on + cert file: %s", err);
    oe_config_free(cfg);
}

static void test_sites_errors(void)
{
    static const struct {
        const char *yaml;
        const char *env[2];
        const char *want[4];
    } cases[] = {
        {"sites: []\n", {0}, {":1:", "sites", "empty"}},
        {"sites:\n", {0}, {":1:", "sites", "expected a list"}},
        {"sites: {a: 1}\n", {0}, {":1:", "sites", "a mapping"}},
        {"sites:\n  - just-a-name\n", {0}, {":2:", "sites[0]", "expected a mapping"}},
        {"sites:\n  - [a]\n", {0}, {":2:", "sites[0]", "a list"}},
        {"sites:\n  - domains: [a.example]\n", {0}, {":2:", "sites[0]", "no upstreams"}},
        {"sites:\n  - domains: [a.example]\n    upstreams: []\n", {0}, {":3:", "sites[0].upstreams", "empty"}},
        {"sites:\n  - domains: [a.example]\n    upstreams: [http://127.0.0.1:1, \"ftp://x\"]\n",
         {0},
         {":3:", "sites[0].upstreams", "invalid upstream \"ftp://x\""}},
        {"sites:\n  - domains: [a.example]\n    upstreams:\n      - http://127.0.0.1:1\n      - http://127.0.0.1:1/\n",
         {0},
         {":5:", "sites[0].upstreams", "twice"}},
        {"sites:\n  - domains: [a.example]\n    upstreams: [{a: 1}]\n", {0}, {":3:", "sites[0].upstreams", "single"}},
        {"sites:\n  - domains: [a.example]\n    upstream: http://127.0.0.1:1\n    upstreams: [http://127.0.0.1:2]\n",
         {0},
         {":3:", "sites[0].upstream", "not both"}},
        {"sites:\n  - domains: [a.example]\n    upstream: https://127.0.0.1:1\n",
         {0},
         {":3:", "sites[0].upstream", "https"}},
        {"sites:\n  - {domains: [a.example], upstream: \"http://127.0.0.1:1\"}\n  - domains: [b.example]\n"
         "    upstream: http://127.0.0.1:1\n    proxy:\n      max_body_size: 12XB\n",
         {0},
         {":6:", "sites[1].proxy.max_body_size", "invalid size"}},
        {"sites:\n  - domains: [a.example]\n    upstream: http://127.0.0.1:1\n    proxy:\n      trusted_proxies: []\n",
         {0},
         {":5:", "sites[0].proxy.trusted_proxies", "not a per-site key"}},
        {"sites:\n  - domains: [a.example]\n    upstream: http://127.0.0.1:1\n    acme:\n      email: a@b.example\n",
         {0},
         {":5:", "sites[0].acme.email", "not a per-site key"}},
        {"sites:\n  - domains: [a.example]\n    upstream: http://127.0.0.1:1\n    colour: red\n",
         {0},
         {":4:", "sites[0].colour", "unknown key"}},
        {"sites:\n  - domains: [a.example]\n    upstream: http://127.0.0.1:1\n    sites: []\n",
         {0},
         {":4:", "sites[0].sites", "unknown key"}},
        {"sites:\n  - domains: [a.example]\n    domains: [b.example]\n", {0}, {":3:", "sites[0].domains", "duplicate"}},
        {"sites:\n  - {name: a, name: b}\n", {0}, {":2:", "sites[0].name", "duplicate"}},
        {"sites:\n  - {domains: [a.example], upstream: \"http://127.0.0.1:1\"}\n"
         "sites:\n  - {domains: [b.example], upstream: \"http://127.0.0.1:1\"}\n",
         {0},
         {":3:", "sites", "duplicate"}},
        {"sites:\n  - domains: [a.example]\n    upstream: http://127.0.0.1:1\n    name: Blog\n",
         {0},
         {":4:", "sites[0].name", "invalid name \"Blog\""}},
        {"sites:\n  - domains: [a.example]\n    upstream: http://127.0.0.1:1\n    name: ../x\n",
         {0},
         {":4:", "sites[0].name", "invalid name"}},
        {"sites:\n  - {name: x, domains: [a.example], upstream: \"http://127.0.0.1:1\"}\n"
         "  - {name: x, domains: [b.example], upstream: \"http://127.0.0.1:1\"}\n",
         {0},
         {":3:", "sites[1].name", "also sites[0]"}},
        {"sites:\n  - {domains: [a.example, b.example], upstream: \"http://127.0.0.1:1\"}\n"
         "  - {domains: [B.example], upstream: \"http://127.0.0.1:1\"}\n",
         {0},
         {":3:", "sites[1].domains", "\"b.example\" is also in sites[0] (a.example)"}},
        {"sites:\n  - {domains: [\"*.x.example\"], upstream: \"http://127.0.0.1:1\", tls: {cert_file: /c, key_file: "
         "/k}}\n  - {domains: [\"*.x.example\"], upstream: \"http://127.0.0.1:1\", tls: {cert_file: /c, key_file: "
         "/k}}\n",
         {0},
         {":3:", "sites[1].domains", "also in sites[0]"}},
        {"sites:\n  - domains: [\"*.x.example\"]\n    upstream: http://127.0.0.1:1\n",
         {0},
         {":2:", "sites[0].domains", "wildcard", "tls.cert_file"}},
        {"sites:\n  - domains: [\"*.example\"]\n", {0}, {":2:", "sites[0].domains", "invalid wildcard"}},
        {"sites:\n  - domains: [\"a.*.example\"]\n", {0}, {":2:", "sites[0].domains", "invalid wildcard"}},
        {"sites:\n  - domains: [\"**.x.example\"]\n", {0}, {":2:", "sites[0].domains", "invalid wildcard"}},
        {"sites:\n  - domains: [a.example]\n    upstream: http://127.0.0.1:1\n    tls:\n      key_file: /k\n",
         {0},
         {":5:", "sites[0].tls.key_file", "together"}},
        {"sites:\n  - domains: [a.example]\n    upstream: http://127.0.0.1:1\n    balance: random\n",
         {0},
         {":4:", "sites[0].balance", "round_robin, least_conn or hash"}},
        {"sites:\n  - domains: [a.example]\n    upstream: http://127.0.0.1:1\n    hash_key: client_ip\n",
         {0},
         {":4:", "sites[0].hash_key", "needs balance: hash"}},
        {"sites:\n  - domains: [a.example]\n    upstream: http://127.0.0.1:1\n    balance: hash\n"
         "    hash_key: path_segment:0\n",
         {0},
         {":5:", "sites[0].hash_key", "path_segment"}},
        {"sites:\n  - domains: [a.example]\n    upstream: http://127.0.0.1:1\n    balance: hash\n"
         "    hash_key: \"header:\"\n",
         {0},
         {":5:", "sites[0].hash_key", "missing"}},
        {"sites:\n  - domains: [a.example]\n    upstream: http://127.0.0.1:1\n    balance: hash\n"
         "    hash_key: \"cookie:a b\"\n",
         {0},
         {":5:", "sites[0].hash_key", "invalid cookie name"}},
        {"sites:\n  - domains: [a.example]\n    upstream: http://127.0.0.1:1\n    balance: hash\n"
         "    hash_key: ip\n",
         {0},
         {":5:", "sites[0].hash_key", "client_ip, header:NAME"}},
        {"sites:\n  - domains: [a.example]\n    upstream: http://127.0.0.1:1\n    balance: [x]\n",
         {0},
         {":4:", "sites[0].balance", "single value"}},
        {"sites:\n  - domains: [a.example]\n    upstream: http://127.0.0.1:1\n    name: \"a\\0b\"\n",
         {0},
         {":4:", "sites[0].name", "NUL"}},
        {"sites:\n  - upstream: http://127.0.0.1:1\n", {0}, {":2:", "sites[0].domains", "default_site"}},
        {"default_site: nope\nsites:\n  - {domains: [a.example], upstream: \"http://127.0.0.1:1\"}\n",
         {0},
         {":1:", "default_site", "no site is named \"nope\""}},
        {"domains: [a.example]\ndefault_site: b.example\n", {0}, {":2:", "default_site", "the one site"}},
        /* with sites, the top-level keys that belong to a site are refused */
        {"domains: [x.example]\nsites:\n  - {domains: [a.example], upstream: \"http://127.0.0.1:1\"}\n",
         {0},
         {":1:", "domains", "not used with sites"}},
        {"upstream: http://127.0.0.1:9\nsites:\n  - {domains: [a.example], upstream: \"http://127.0.0.1:1\"}\n",
         {0},
         {":1:", "upstream", "sites[].upstreams"}},
        {"sites:\n  - {domains: [a.example], upstream: \"http://127.0.0.1:1\"}\n",
         {"OTT_EDGE_DOMAINS=x.example"},
         {"OTT_EDGE_DOMAINS", "domains", "not used with sites"}},
        {"sites:\n  - {domains: [a.example], upstream: \"http://127.0.0.1:1\"}\n",
         {"OTT_EDGE_TLS_CERT_FILE=/c"},
         {"OTT_EDGE_TLS_CERT_FILE", "together"}},
        {"acme: {enabled: true}\nsites:\n  - {domains: [a.example], upstream: \"http://127.0.0.1:1\", tls: "
         "{cert_file: /c, key_file: /k}}\n",
         {0},
         {":1:", "acme.enabled", "no site needs it"}},
        {"domains: [\"*.x.example\"]\n", {0}, {":1:", "domains", "wildcard", "tls.cert_file"}},
        {"", {"OTT_EDGE_DOMAINS=*.x.example"}, {"OTT_EDGE_DOMAINS", "wildcard", "DNS-01"}},
        {"proxy:\n  health_rise: 0\n", {0}, {":2:", "proxy.health_rise", "1..100"}},
        {"", {"OTT_EDGE_PROXY_HEALTH_FALL=101"}, {"OTT_EDGE_PROXY_HEALTH_FALL", "1..100"}},
        {"sites:\n  - domains: [a.example]\n    upstream: http://127.0.0.1:1\n    proxy: {health_fall: 0}\n",
         {0},
         {":4:", "sites[0].proxy.health_fall", "1..100"}},
    };
    size_t i, j;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char err[OE_CONFIG_ERR_MAX], *env[3] = {0};
        oe_config_t *cfg;
        for (j = 0; j < 2 && cases[i].env[j] != NULL; j++)
            env[j] = (char *)cases[i].env[j];
        cfg = load(cases[i].yaml, env, err);
        CHECK(cfg == NULL, "sites case %zu should fail (yaml %s)", i, cases[i].yaml);
        oe_config_free(cfg);
        if (cfg != NULL)
            continue;
        CHECK(strncmp(err, "config: ", 8) == 0 && strchr(err, '\n') == NULL, "sites case %zu: one line: %s", i, err);
        for (j = 0; j < 4 && cases[i].want[j] != NULL; j++)
            CHECK(strstr(err, cases[i].want[j]) != NULL, "sites case %zu: \"%s\" not in: %s", i, cases[i].want[j], err);
    }

    /* at most OE_CONFIG_MAX_SITES sites */
    {
        char err[OE_CONFIG_ERR_MAX], *buf = malloc(64 * (OE_CONFIG_MAX_SITES + 2));
        size_t n = (size_t)sprintf(buf, "sites:\n");
        oe_config_t *cfg;
        for (i = 0; i <= OE_CONFIG_MAX_SITES; i++)
            n += (size_t)sprintf(buf + n, "  - {domains: [s%zu.example], upstream: \"http://127.0.0.1:1\"}\n", i);
        cfg = load(buf, NULL, err);
        CHECK(cfg == NULL && strstr(err, "too many sites") != NULL, "too many sites: %s", err);
        oe_config_free(cfg);
        *strrchr(buf, '-') = '\0'; /* drop the last one */
        cfg = load(buf, NULL, err);
        CHECK(cfg != NULL && cfg->sites_count == OE_CONFIG_MAX_SITES, "the maximum loads: %s", err);
        if (cfg != NULL)
            CHECK(oe_config_site_for_host(cfg, "s255.example", 12) == 255, "the last site routes");
        oe_config_free(cfg);
        free(buf);
    }
}

static int route(const oe_config_t *cfg, const char *host)
{
    return oe_config_site_for_host(cfg, host, strlen(host));
}

static void test_routing(void)
{
    char err[OE_CONFIG_ERR_MAX];
    oe_config_t *cfg =
        load("sites:\n"
             "  - {name: wild, domains: [\"*.example.com\"], upstream: \"http://127.0.0.1:1\",\n"
             "     tls: {cert_file: /c, key_file: /k}}\n"
             "  - {name: exact, domains: [www.example.com, example.com, \"192.0.2.1\", \"2001:db8::1\"],\n"
             "     upstream: \"http://127.0.0.1:2\"}\n"
             "  - {name: deep, domains: [\"*.b.example.com\"], upstream: \"http://127.0.0.1:3\",\n"
             "     tls: {cert_file: /c, key_file: /k}}\n"
             "  - {name: other, domains: [example.org], upstream: \"http://127.0.0.1:4\"}\n",
             NULL, err);
    static const struct {
        const char *host;
        int site;
    } cases[] = {
        {"www.example.com", 1},  /* exact beats the wildcard listed earlier */
        {"example.com", 1},      /* the wildcard does not match its own base name */
        {"a.example.com", 0},    /* one label */
        {"A.Example.COM", 0},    /* any case */
        {"WWW.EXAMPLE.COM", 1},  /* any case, exact */
        {"www.example.com.", 1}, /* a trailing dot */
        {"a.example.com.", 0},
        {"x.b.example.com", 2}, /* the deeper wildcard */
        {"b.example.com", 0},   /* one label under *.example.com */
        {"y.x.b.example.com", -1},
        {"y.a.example.com", -1}, /* two labels: no match */
        {"example.org", 3},
        {"www.example.org", -1},
        {"example.net", -1},
        {"com", -1},
        {".example.com", -1}, /* an empty first label */
        {"*.example.com", -1},
        {"", -1},
        {".", -1},
        {"192.0.2.1", 1},
        {"2001:db8::1", 1},
        {"[2001:db8::1]", 1},
        {"2001:DB8::1", 1},
        {"192.0.2.2", -1},
        {"www.example.com:443", -1}, /* the caller strips the port */
        {"wwww.example.com", 0},
    };
    size_t i;

    CHECK(cfg != NULL, "routing config: %s", err);
    if (cfg == NULL)
        return;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        CHECK(route(cfg, cases[i].host) == cases[i].site, "route \"%s\" -> %d, want %d", cases[i].host,
              route(cfg, cases[i].host), cases[i].site);
    CHECK(oe_config_site_for_host(cfg, "www.example.comXXX", 15) == 1, "length, not NUL, ends the name");
    CHECK(oe_config_site_for_host(cfg, "a.example.com\0x", 15) == -1, "an embedded NUL never matches");
    CHECK(oe_config_site_for_host(cfg, NULL, 0) == -1 && oe_config_site_for_host(NULL, "a", 1) == -1, "NULL");
    CHECK(cfg->default_site == -1, "no default");
    oe_config_free(cfg);

    /* the one-site form: its names route to it, anything else is the caller's default */
    cfg = load("domains: [ott.example]\n", NULL, err);
    CHECK(cfg != NULL && route(cfg, "OTT.example") == 0 && route(cfg, "other.example") == -1 && cfg->default_site == 0,
          "one site: %s", err);
    oe_config_free(cfg);
}

static void test_sites_print(void)
{
    char err[OE_CONFIG_ERR_MAX];
    oe_config_t *cfg = load(sites_yaml, NULL, err), *again;
    char *out, *out2;

    CHECK(cfg != NULL, "load: %s", err);
    if (cfg == NULL)
        return;
    out = print_to_string(cfg);
    CHECK(strstr(out, "\nsites:\n- name: ott\n") != NULL, "sites printed:\n%s", out);
    CHECK(strstr(out, "\ndomains:") == NULL && strstr(out, "\nupstream:") == NULL &&
              strstr(out, "\ntls:\n  cert_file") == NULL && strstr(out, "\ntls:\n  session_lifetime:") != NULL,
          "no top-level site keys with sites (tls.session_lifetime stays):\n%s", out);
    CHECK(strstr(out, "  hash_key: header:x-room\n") != NULL && strstr(out, "  hash_key: path_segment:3\n") != NULL,
          "hash keys printed");
    CHECK(strstr(out, "default_site: ott\n") != NULL, "default_site printed");
    CHECK(strstr(out, "# routing table") != NULL, "routing table");
    CHECK(strstr(out, "#   ott               ott.example.com, www.ott.example.com") != NULL ||
              strstr(out, "ott.example.com, www.ott.example.com  http://10.0.0.2:8080, http://[::1]:8081") != NULL,
          "a row per site:\n%s", out);
    CHECK(strstr(out, "least_conn") != NULL && strstr(out, "hash header:x-room") != NULL &&
              strstr(out, "file /blog.pem") != NULL && strstr(out, "ACME") != NULL,
          "balance and certificate columns");
    CHECK(strstr(out, "any other name: site ott (the default site)") != NULL, "default in the table");
    CHECK(strstr(out, "#   ott: proxy.block_paths=[], proxy.websocket_idle_timeout=7d, proxy.health_rise=4, "
                      "cache.enabled=false\n") != NULL,
          "overrides of ott:\n%s", out);
    CHECK(strstr(out, "#   blog.example.com: hsts=\n") != NULL, "overrides of blog");
    CHECK(strstr(out, "#   api: compress.enabled=false\n") != NULL, "overrides of api");
    again = oe_config_load(write_file("printed-sites.yaml", out), noenv, err, sizeof(err));
    CHECK(again != NULL, "printed sites reload: %s\n%s", err, out);
    if (again != NULL) {
        out2 = print_to_string(again);
        CHECK(strcmp(strchr(out, '\n'), strchr(out2, '\n')) == 0, "sites round trip:\n%s\n---\n%s", out, out2);
        free(out2);
    }
    oe_config_free(again);
    free(out);
    oe_config_free(cfg);

    /* one site: the same top-level output as before, plus the table */
    cfg = load("domains: [a.example]\nupstream: http://127.0.0.1:3000\n", NULL, err);
    out = print_to_string(cfg);
    CHECK(strstr(out, "\ndomains: [a.example]\n") != NULL && strstr(out, "\nsites:") == NULL, "one site printed");
    CHECK(strstr(out, "any other name: site a.example (the default site)") != NULL &&
              strstr(out, "http://127.0.0.1:3000  round_robin  ACME") != NULL,
          "one-site table:\n%s", out);
    CHECK(strstr(out, "per-site settings") == NULL, "no overrides section for one site");
    free(out);
    oe_config_free(cfg);
}

/* ---- printing ------------------------------------------------------------------------ */

static const char *const all_keys[] = {
    "domains",
    "upstream",
    "threads",
    "state_dir",
    "hsts",
    "user",
    "default_site",
    "listen.https",
    "listen.http",
    "listen.admin",
    "tls.cert_file",
    "tls.key_file",
    "tls.session_lifetime",
    "proxy.trusted_proxies",
    "proxy.real_ip_header",
    "proxy.websocket_idle_timeout",
    "proxy.upstream_timeout",
    "proxy.upstream_keepalive",
    "proxy.max_body_size",
    "proxy.block_paths",
    "proxy.health_path",
    "proxy.health_interval",
    "proxy.tcp_keepalive",
    "proxy.tcp_keepalive_idle",
    "proxy.tcp_keepalive_interval",
    "proxy.tcp_keepalive_count",
    "proxy.health_rise",
    "proxy.health_fall",
    "client.request_timeout",
    "client.idle_timeout",
    "client.handshake_timeout",
    "log.format",
    "log.access",
    "log.level",
    "shutdown.delay",
    "shutdown.grace",
    "shutdown.upgrade_grace",
    "compress.enabled",
    "compress.types",
    "compress.min_size",
    "compress.level",
    "cache.enabled",
    "cache.max_size",
    "cache.max_object",
    "cache.lock_timeout",
    "acme.enabled",
    "acme.directory",
    "acme.email",
    "acme.ca_file",
    "acme.eab.kid",
    "acme.eab.hmac_key",
    "acme.challenges",
    "acme.key_type",
    "acme.renew_before",
    "acme.retry_base",
    "acme.preferred_chain",
    "acme.dns.provider",
    "acme.dns.rfc2136.server",
    "acme.dns.rfc2136.key_name",
    "acme.dns.rfc2136.key_algorithm",
    "acme.dns.rfc2136.key_secret",
    "acme.dns.exec.command",
    "acme.dns.resolvers",
    "acme.dns_propagation_timeout",
    "access.allow",
    "access.deny",
    "access.basic_auth",
    "access.pass_credentials",
    "access.rate.requests",
    "access.rate.per",
    "access.rate.burst",
    "access.websocket_rate.requests",
    "access.websocket_rate.per",
    "access.websocket_rate.burst",
    "access.max_connections",
    "access.max_websockets",
    "access.ipv6_prefix",
    "admin.allow",
    "admin.token_file",
    "cluster.redis",
    "cluster.key_prefix",
    "cluster.lock_ttl",
    "cluster.node_id",
    "cluster.encryption_key_file",
};

/* The keys a site in `sites` may set. */
static const char *const site_keys[] = {
    "name",
    "domains",
    "upstreams",
    "upstream",
    "balance",
    "hash_key",
    "tls.cert_file",
    "tls.key_file",
    "hsts",
    "proxy.block_paths",
    "proxy.websocket_idle_timeout",
    "proxy.max_body_size",
    "proxy.upstream_timeout",
    "proxy.health_path",
    "proxy.health_interval",
    "proxy.health_rise",
    "proxy.health_fall",
    "cache.enabled",
    "compress.enabled",
    "access.allow",
    "access.deny",
    "access.basic_auth",
    "access.pass_credentials",
    "access.rate.requests",
    "access.rate.per",
    "access.rate.burst",
    "access.websocket_rate.requests",
    "access.websocket_rate.per",
    "access.websocket_rate.burst",
    "access.max_connections",
    "access.max_websockets",
    "paths",
};

static void env_of(const char *key, char *buf, size_t len)
{
    size_t i = strlen("OTT_EDGE_");

    snprintf(buf, len, "OTT_EDGE_");
    for (; *key != '\0' && i + 1 < len; key++)
        buf[i++] = *key == '.' ? '_' : (char)(*key >= 'a' && *key <= 'z' ? *key - 32 : *key);
    buf[i] = '\0';
}

/* "  leaf: " at the indentation of the key's depth, at a line start. */
static int printed(const char *out, const char *key)
{
    char pat[128];
    const char *leaf = strrchr(key, '.');
    int depth = 0;
    const char *p;

    for (p = key; *p; p++)
        depth += *p == '.';
    snprintf(pat, sizeof(pat), "\n%*s%s:", depth * 2, "", leaf ? leaf + 1 : key);
    return strstr(out, pat) != NULL;
}

static void test_print(void)
{
    char err[OE_CONFIG_ERR_MAX];
    oe_config_t *cfg = load(full_yaml, NULL, err), *again;
    char *out, *out2;
    size_t i;

    CHECK(cfg != NULL, "load: %s", err);
    if (cfg == NULL)
        return;
    out = print_to_string(cfg);
    CHECK(strstr(out, "c2VjcmV0LWhtYWMta2V5") == NULL, "secret not printed");
    CHECK(strstr(out, "hmac_key: <redacted>") != NULL || strstr(out, "hmac_key: '<redacted>'") != NULL ||
              strstr(out, "hmac_key: \"<redacted>\"") != NULL,
          "secret redacted:\n%s", out);
    for (i = 0; i < sizeof(all_keys) / sizeof(all_keys[0]); i++)
        CHECK(printed(out, all_keys[i]), "key %s printed:\n%s", all_keys[i], out);
    CHECK(strstr(out, "websocket_idle_timeout: 1h30m\n") != NULL, "duration printed readably");
    CHECK(strstr(out, "max_body_size: 1GiB\n") != NULL, "size printed readably");
    CHECK(strstr(out, "health_interval: 500ms\n") != NULL, "ms printed");
    CHECK(strstr(out, "192.168.0.0/16") != NULL && strstr(out, "::1/128") != NULL, "cidrs printed");
    CHECK(strstr(out, "level: debug\n") != NULL && strstr(out, "format: json\n") != NULL, "enums printed");
    CHECK(strstr(out, "http: \"\"\n") != NULL, "empty string quoted");

    /* the printed configuration reads back to the same configuration */
    again = oe_config_load(write_file("printed.yaml", out), noenv, err, sizeof(err));
    CHECK(again != NULL, "printed config reloads: %s\n%s", err, out);
    if (again != NULL) {
        out2 = print_to_string(again);
        CHECK(strcmp(strchr(out, '\n'), strchr(out2, '\n')) == 0, "round trip:\n%s\n---\n%s", out, out2);
        free(out2);
    }
    oe_config_free(again);
    free(out);
    oe_config_free(cfg);

    /* defaults: unset values print as null and read back */
    cfg = load("", NULL, err);
    out = print_to_string(cfg);
    CHECK(strstr(out, "cert_file: null\n") != NULL && strstr(out, "hmac_key: null\n") != NULL, "unset printed null");
    CHECK(strstr(out, "websocket_idle_timeout: 7d\n") != NULL && strstr(out, "max_body_size: 16MiB\n") != NULL,
          "default units");
    CHECK(strstr(out, "renew_before: 0s\n") != NULL, "zero duration");
    for (i = 0; i < sizeof(all_keys) / sizeof(all_keys[0]); i++)
        CHECK(printed(out, all_keys[i]), "default key %s printed", all_keys[i]);
    again = oe_config_load(write_file("printed2.yaml", out), noenv, err, sizeof(err));
    CHECK(again != NULL, "printed defaults reload: %s", err);
    oe_config_free(again);
    free(out);
    oe_config_free(cfg);
}

/* ---- access and paths ------------------------------------------------------------------- */

static int has(const char *hay, const char *needle)
{
    return hay != NULL && strstr(hay, needle) != NULL;
}

static void test_access(void)
{
    char err[OE_CONFIG_ERR_MAX];
    oe_config_t *cfg, *again;
    char *out, *out2;

    /* top level: the one site takes the block; the paths are resolved against it */
    cfg = load("upstream: http://127.0.0.1:8080\n"
               "access:\n"
               "  allow: [10.0.0.0/8, \"2001:db8::/32\"]\n"
               "  deny: [10.9.0.0/16]\n"
               "  rate: {requests: 10, per: 2s, burst: 20}\n"
               "  max_connections: 50\n"
               "  ipv6_prefix: 56\n"
               "paths:\n"
               "  - prefix: /Admin/\n"
               "    access: {basic_auth: /etc/ott-edge/htpasswd, pass_credentials: true}\n"
               "  - prefix: /api/room/create\n"
               "    access:\n"
               "      rate: {requests: 3, per: 1m}\n"
               "admin: {allow: [127.0.0.1], token_file: /run/token}\n",
               NULL, err);
    CHECK(cfg != NULL, "access config loads: %s", err);
    if (cfg != NULL) {
        const oe_site_t *s = &cfg->sites[0];
        CHECK(cfg->access.allow_count == 2 && cfg->access.deny_count == 1, "allow/deny parsed");
        CHECK(cfg->access.rate.requests == 10 && cfg->access.rate.per_ms == 2000 && cfg->access.rate.burst == 20,
              "rate parsed");
        CHECK(cfg->access.websocket_rate.requests == 0 && cfg->access.websocket_rate.per_ms == 1000,
              "websocket_rate defaults");
        CHECK(cfg->access_ipv6_prefix == 56 && cfg->access.max_connections == 50, "ipv6_prefix, max_connections");
        CHECK(cfg->admin.allow_count == 1 && cfg->admin.token_file && strcmp(cfg->admin.token_file, "/run/token") == 0,
              "admin keys");
        CHECK(s->access.allow_count == 2 && s->access.rate.requests == 10, "the one site has the top-level block");
        CHECK(s->paths_count == 2 && cfg->paths_count == 2, "paths on the site and the top level");
        if (s->paths_count == 2) {
            const oe_config_path_t *a = &s->paths[0], *b = &s->paths[1];
            CHECK(strcmp(a->prefix, "/Admin") == 0, "trailing slash trimmed: %s", a->prefix);
            CHECK(a->access.basic_auth && strcmp(a->access.basic_auth, "/etc/ott-edge/htpasswd") == 0 &&
                      a->access.pass_credentials,
                  "path's own keys");
            CHECK(a->access.allow_count == 2 && a->access.rate.requests == 10 && !a->own_rate,
                  "path inherits the site's keys (and the site's bucket)");
            CHECK(a->set == ((1u << 2) | (1u << 3)), "set mask %#x", a->set);
            CHECK(b->own_rate && b->access.rate.requests == 3 && b->access.rate.per_ms == 60000 &&
                      b->access.rate.burst == 0,
                  "own rate: one value, so the burst it leaves out is the default (= requests), not the site's");
            CHECK(!b->own_websocket_rate && b->access.basic_auth == NULL, "nothing else of its own");
        }
        out = print_to_string(cfg);
        CHECK(has(out, "paths:\n- prefix: /Admin\n  access:\n    basic_auth: /etc/ott-edge/htpasswd\n"),
              "paths printed:\n%s", out);
        again = oe_config_load(write_file("printed-access.yaml", out), noenv, err, sizeof(err));
        CHECK(again != NULL, "printed access config reloads: %s\n%s", err, out);
        if (again != NULL) {
            out2 = print_to_string(again);
            CHECK(strcmp(strchr(out, '\n'), strchr(out2, '\n')) == 0, "round trip:\n%s\n---\n%s", out, out2);
            CHECK(again->sites[0].paths_count == 2 && again->sites[0].paths[1].own_rate &&
                      !again->sites[0].paths[0].own_rate,
                  "own rates survive the round trip");
            free(out2);
        }
        oe_config_free(again);
        free(out);
    }
    oe_config_free(cfg);

    /* sites: key-by-key inheritance of the top-level block; a site's own paths or the top-level ones */
    cfg = load("acme: {enabled: false}\n"
               "access: {allow: [10.0.0.0/8], rate: {requests: 10}, max_websockets: 4}\n"
               "paths: [{prefix: /x, access: {deny: [10.1.0.0/16]}}]\n"
               "sites:\n"
               "  - name: a\n"
               "    domains: [a.test]\n"
               "    upstream: http://127.0.0.1:1\n"
               "  - name: b\n"
               "    domains: [b.test]\n"
               "    upstream: http://127.0.0.1:2\n"
               "    access: {allow: [], max_websockets: 2, websocket_rate: {requests: 1, per: 10s}}\n"
               "    paths:\n"
               "      - prefix: /admin\n"
               "        access: {basic_auth: /h, rate: {requests: 1, per: 10s}}\n",
               NULL, err);
    CHECK(cfg != NULL, "sites with access load: %s", err);
    if (cfg != NULL && cfg->sites_count == 2) {
        const oe_site_t *a = &cfg->sites[0], *b = &cfg->sites[1];
        CHECK(a->access.allow_count == 1 && a->access.max_websockets == 4 && a->access.rate.requests == 10,
              "site a inherits the top-level block");
        CHECK(a->paths_count == 1 && strcmp(a->paths[0].prefix, "/x") == 0 && a->paths[0].access.allow_count == 1 &&
                  a->paths[0].access.deny_count == 1,
              "site a takes the top-level paths, resolved against its block");
        CHECK(b->paths[0].access.rate.per_ms == 10000 && b->paths[0].access.rate.burst == 0, "the entry's whole rate");
        CHECK(b->access.allow_count == 0 && b->access.max_websockets == 2 && b->access.rate.requests == 10 &&
                  b->access.websocket_rate.requests == 1 && b->access.websocket_rate.per_ms == 10000,
              "site b overrides allow and max_websockets, inherits rate");
        CHECK(b->paths_count == 1 && strcmp(b->paths[0].prefix, "/admin") == 0 && b->paths[0].own_rate &&
                  b->paths[0].access.max_websockets == 2 && b->paths[0].access.allow_count == 0,
              "site b's own paths, resolved against b");
        out = print_to_string(cfg);
        CHECK(has(out, "#   b: access.allow=[], access.websocket_rate.requests=1, access.websocket_rate.per=10s, "
                       "access.max_websockets=2"),
              "differences listed:\n%s", out);
        again = oe_config_load(write_file("printed-sites-access.yaml", out), noenv, err, sizeof(err));
        CHECK(again != NULL, "printed sites+access reloads: %s\n%s", err, out);
        if (again != NULL) {
            out2 = print_to_string(again);
            CHECK(strcmp(strchr(out, '\n'), strchr(out2, '\n')) == 0, "round trip:\n%s\n---\n%s", out, out2);
            free(out2);
        }
        oe_config_free(again);
        free(out);
    }
    oe_config_free(cfg);

    /* a site's rate is one value too */
    cfg = load("acme: {enabled: false}\n"
               "access: {rate: {requests: 10, per: 1m, burst: 30}}\n"
               "sites:\n"
               "  - {name: a, domains: [a.test], upstream: \"http://127.0.0.1:1\", access: {rate: {requests: 4}}}\n"
               "  - {name: b, domains: [b.test], upstream: \"http://127.0.0.1:2\"}\n",
               NULL, err);
    CHECK(cfg != NULL && cfg->sites[0].access.rate.requests == 4 && cfg->sites[0].access.rate.per_ms == 1000 &&
              cfg->sites[0].access.rate.burst == 0 && cfg->sites[1].access.rate.per_ms == 60000 &&
              cfg->sites[1].access.rate.burst == 30,
          "a site's rate replaces the top-level one whole: %s", err);
    oe_config_free(cfg);

    /* the environment */
    {
        char *env[] = {"OTT_EDGE_ACCESS_ALLOW=192.0.2.0/24,2001:db8::/48", "OTT_EDGE_ACCESS_RATE_REQUESTS=7",
                       "OTT_EDGE_ADMIN_ALLOW=127.0.0.1", NULL};
        cfg = load("", env, err);
        CHECK(cfg != NULL && cfg->access.allow_count == 2 && cfg->access.rate.requests == 7 &&
                  cfg->sites[0].access.allow_count == 2 && cfg->admin.allow_count == 1,
              "access keys from the environment: %s", err);
        oe_config_free(cfg);
    }

    /* errors name the key and the line */
    static const struct {
        const char *yaml, *want;
    } bad[] = {
        {"access:\n  rate: {burst: 5}\n", "config.yaml:2: access.rate.burst: a burst needs access.rate.requests"},
        {"access: {websocket_rate: {burst: 2}}\n", "access.websocket_rate.burst: a burst needs"},
        {"access: {ipv6_prefix: 8}\n", "access.ipv6_prefix: invalid number \"8\" (use 16..128)"},
        {"access: {rate: {requests: -1}}\n", "access.rate.requests"},
        {"access: {rate: {per: 0s}}\n", "access.rate.per: duration \"0s\" is out of range"},
        {"access: {allow: [10.0.0.300]}\n", "config.yaml:1: access.allow: invalid CIDR \"10.0.0.300\""},
        {"access: {bogus: 1}\n", "access.bogus: unknown key"},
        {"paths: [{prefix: admin}]\n", "config.yaml:1: paths[0].prefix: \"admin\": must start with '/'"},
        {"paths: [{prefix: \"/a?b\"}]\n", "paths[0].prefix: \"/a?b\": a path prefix has no query"},
        {"paths:\n  - access: {}\n", "config.yaml:2: paths[0]: no prefix"},
        {"paths: [{prefix: /a, foo: 1}]\n", "paths[0]: unknown key (a paths entry has prefix and access)"},
        {"paths: [{prefix: /a, access: {ipv6_prefix: 48}}]\n", "paths[0].access.ipv6_prefix: not a per-path key"},
        {"paths: [{prefix: /a, access: {upstream: x}}]\n", "paths[0].access.upstream: unknown key"},
        {"paths: [{prefix: /a, access: {allow: [x]}}]\n", "paths[0].access.allow: invalid CIDR \"x\""},
        {"paths: [{prefix: /a}, {prefix: /A/}]\n", "paths[1].prefix: \"/A\" is also paths[0]'s"},
        {"paths:\n- prefix: /a\n  access:\n    rate: {burst: 3}\n",
         "config.yaml:4: paths[0].access.rate.burst: a burst"},
        {"paths: /a\n", "paths: expected a list"},
        {"paths: [/a]\n", "paths[0]: expected a mapping"},
        {"paths: [{prefix: /a, prefix: /b}]\n", "paths[0].prefix: duplicate key"},
        {"paths: [{prefix: /a, access: [1]}]\n", "paths[0].access: expected a mapping"},
        {"acme: {enabled: false}\nsites:\n- name: a\n  domains: [a.test]\n  upstream: http://127.0.0.1:1\n"
         "  access: {ipv6_prefix: 48}\n",
         "sites[0].access.ipv6_prefix: not a per-site key"},
        {"acme: {enabled: false}\nsites:\n- name: a\n  domains: [a.test]\n  upstream: http://127.0.0.1:1\n"
         "  access:\n    rate: {burst: 4}\n",
         "config.yaml:7: sites[0].access.rate.burst: a burst needs access.rate.requests"},
        {"acme: {enabled: false}\nsites:\n- name: a\n  domains: [a.test]\n  upstream: http://127.0.0.1:1\n"
         "  paths: [{prefix: /q, access: {deny: [nope]}}]\n",
         "sites[0].paths[0].access.deny: invalid CIDR \"nope\""},
        {"acme: {enabled: false}\nsites:\n- name: a\n  domains: [a.test]\n  upstream: http://127.0.0.1:1\n"
         "  admin: {allow: [10.0.0.0/8]}\n",
         "sites[0].admin.allow: not a per-site key"},
        {"admin: {allow: [10.0.0.0/33]}\n", "admin.allow: invalid CIDR"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cfg = load(bad[i].yaml, NULL, err);
        CHECK(cfg == NULL && has(err, bad[i].want), "bad access config %zu:\n%s\nwanted: %s\ngot:    %s", i,
              bad[i].yaml, bad[i].want, cfg ? "(loaded)" : err);
        oe_config_free(cfg);
    }
}

/* Every key is accepted from its environment name, and docs/configuration.md holds the
 * reference table exactly as the key table generates it. */
static void test_every_key_env_and_docs(void)
{
    char docpath[PATH_MAX], *doc = NULL, *ref, *line, *save = NULL, name[96], err[OE_CONFIG_ERR_MAX];
    const char *slash;
    size_t i, len = 0, rows = 0;
    FILE *f;

    slash = strrchr(__FILE__, '/');
    snprintf(docpath, sizeof(docpath), "%.*s/../../docs/configuration.md", slash ? (int)(slash - __FILE__) : 1,
             slash ? __FILE__ : ".");
    if ((f = fopen(docpath, "r")) != NULL) {
        doc = calloc(1, 1 << 20);
        len = fread(doc, 1, (1 << 20) - 1, f);
        fclose(f);
    }
    CHECK(doc != NULL && len > 0, "docs/configuration.md readable at %s", docpath);
    /* the README carries the same table */
    char readmepath[PATH_MAX], *readme = NULL;
    snprintf(readmepath, sizeof(readmepath), "%.*s/../../README.md", slash ? (int)(slash - __FILE__) : 1,
             slash ? __FILE__ : ".");
    if ((f = fopen(readmepath, "r")) != NULL) {
        readme = calloc(1, 1 << 20);
        if (readme != NULL && fread(readme, 1, (1 << 20) - 1, f) == 0) {
            free(readme);
            readme = NULL;
        }
        fclose(f);
    }
    CHECK(readme != NULL, "README.md readable at %s", readmepath);
    {
        size_t rlen = 0;
        FILE *m = open_memstream(&ref, &rlen);
        oe_config_print_reference(m);
        fclose(m);
    }
    for (line = strtok_r(ref, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save), rows++) {
        CHECK(doc == NULL || strstr(doc, line) != NULL, "docs/configuration.md lacks the generated row:\n%s", line);
        CHECK(readme == NULL || strstr(readme, line) != NULL, "README.md lacks the generated row:\n%s", line);
    }
    /* the key table (a header, a row per key and one each for sites and paths), then the site keys' table */
    CHECK(rows == 2 + sizeof(all_keys) / sizeof(all_keys[0]) + 2 + 2 + sizeof(site_keys) / sizeof(site_keys[0]),
          "reference has a row per key (%zu)", rows);
    for (i = 0; doc != NULL && i < sizeof(site_keys) / sizeof(site_keys[0]); i++) {
        char cell[128];
        snprintf(cell, sizeof(cell), "\n| `%s` | ", site_keys[i]);
        CHECK(strstr(doc, cell) != NULL, "site key %s documented", site_keys[i]);
    }
    free(ref);
    free(readme);

    for (i = 0; i < sizeof(all_keys) / sizeof(all_keys[0]); i++) {
        char var[200], *env[] = {var, NULL};
        oe_config_t *cfg;
        env_of(all_keys[i], name, sizeof(name));
        if (doc != NULL) {
            char cell[256];
            snprintf(cell, sizeof(cell), "| `%s` | `%s` |", all_keys[i], name);
            CHECK(strstr(doc, cell) != NULL, "%s / %s documented", all_keys[i], name);
        }
        /* a value of the wrong shape must fail naming the variable: proves the name is known */
        snprintf(var, sizeof(var), "%s=\x01", name);
        cfg = load("", env, err);
        CHECK(cfg == NULL && strstr(err, name) != NULL && strstr(err, "unknown variable") == NULL, "%s recognised: %s",
              name, err);
        oe_config_free(cfg);
    }
    free(doc);
}

/* ---- robustness ---------------------------------------------------------------------- */

static void test_hostile(void)
{
    char err[OE_CONFIG_ERR_MAX];
    oe_config_t *cfg;
    size_t i, n;
    char *buf;
    unsigned seed = 12345;

    /* deep nesting, both styles */
    n = 200000;
    buf = malloc(2 * n + 16);
    memset(buf, '[', n);
    memset(buf + n, ']', n);
    buf[2 * n] = '\0';
    cfg = load(buf, NULL, err);
    CHECK(cfg == NULL, "deep flow nesting rejected: %s", err);
    memcpy(buf, "domains: ", 9);
    cfg = load(buf, NULL, err);
    CHECK(cfg == NULL, "deep nesting in a list rejected: %s", err);
    {
        size_t pos = 0;
        for (i = 0; i < 2000 && pos + 4000 < 2 * n; i++) {
            memset(buf + pos, ' ', i);
            pos += i;
            pos += (size_t)sprintf(buf + pos, "proxy:\n");
        }
        buf[pos] = '\0';
        cfg = load(buf, NULL, err);
        CHECK(cfg == NULL, "deep block nesting rejected: %s", err);
    }
    free(buf);

    /* billion laughs: aliases are refused before anything expands */
    cfg = load("a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\n"
               "c: &c [*b, *b, *b, *b, *b, *b, *b, *b]\ndomains: *c\n",
               NULL, err);
    CHECK(cfg == NULL, "alias bomb rejected");

    /* a huge scalar (just under 1 MiB) */
    n = 1000 * 1000;
    buf = malloc(n + 32);
    strcpy(buf, "hsts: ");
    memset(buf + 6, 'a', n);
    strcpy(buf + 6 + n, "\n");
    cfg = load(buf, NULL, err);
    CHECK(cfg != NULL && strlen(cfg->hsts) == n, "huge scalar: %s", err);
    oe_config_free(cfg);
    buf[0] = 'x';
    cfg = load(buf, NULL, err);
    CHECK(cfg == NULL && strlen(err) < OE_CONFIG_ERR_MAX, "huge unknown key message bounded");
    free(buf);

    /* many list items */
    buf = malloc(64 * 1024);
    strcpy(buf, "proxy:\n  block_paths: [");
    for (i = 0; i < 2000; i++)
        strcat(buf, "/p,");
    strcat(buf, "/q]\n");
    cfg = load(buf, NULL, err);
    CHECK(cfg == NULL && strstr(err, "too many") != NULL, "too many items: %s", err);
    free(buf);

    /* binary garbage and NUL bytes */
    cfg = oe_config_load(write_file_n("nul.yaml", "threads: 2\0\n", 12), noenv, err, sizeof(err));
    CHECK(cfg == NULL, "NUL byte in file rejected");
    cfg = oe_config_load(write_file_n("bad-utf8.yaml", "hsts: \xff\xfe\n", 9), noenv, err, sizeof(err));
    CHECK(cfg == NULL && strstr(err, "not valid YAML") != NULL, "invalid UTF-8: %s", err);

    /* random bytes and random mutations of a valid file: never crash, always a clean message */
    buf = malloc(4096);
    for (i = 0; i < 3000; i++) {
        size_t len, j;
        if (i % 2 == 0) {
            len = (size_t)(rand_r(&seed) % 512);
            for (j = 0; j < len; j++)
                buf[j] = (char)(rand_r(&seed) % 256);
        } else {
            const char *base = i % 4 == 1 ? full_yaml : sites_yaml; /* mutations of both forms */
            len = strlen(base);
            memcpy(buf, base, len);
            for (j = 0; j < 4; j++) {
                static const char pool[] = "[]{}:,-&*!|>'\"#%@` \n\t?0aZ.\\";
                buf[rand_r(&seed) % len] = pool[rand_r(&seed) % (sizeof(pool) - 1)];
            }
        }
        cfg = oe_config_load(write_file_n("fuzz.yaml", buf, (long)len), noenv, err, sizeof(err));
        if (cfg != NULL) {
            char *out = print_to_string(cfg);
            CHECK(strstr(out, "preferred_chain:") != NULL, "fuzz %zu: printed in full", i);
            free(out);
            oe_config_free(cfg);
        } else if (strncmp(err, "config: ", 8) != 0 || strchr(err, '\n') != NULL) {
            CHECK(0, "fuzz %zu: bad message: %s", i, err);
        }
    }
    passed++;
    free(buf);

    /* random environment values for every key */
    for (i = 0; i < 2000; i++) {
        char var[160], name[96], *env[] = {var, NULL};
        size_t j, len = (size_t)(rand_r(&seed) % 40);
        env_of(all_keys[rand_r(&seed) % (sizeof(all_keys) / sizeof(all_keys[0]))], name, sizeof(name));
        j = (size_t)snprintf(var, sizeof(var), "%s=", name);
        for (; len > 0; len--)
            var[j++] = (char)(1 + rand_r(&seed) % 255);
        var[j] = '\0';
        cfg = load("", env, err);
        if (cfg != NULL) {
            char *out = print_to_string(cfg);
            CHECK(strstr(out, "preferred_chain:") != NULL, "printed in full for %s", name);
            free(out);
        }
        oe_config_free(cfg);
    }
    passed++;
}

static void rm_tmpdir(void)
{
    char cmd[PATH_MAX + 16];

    if (tmpdir[0] != '\0' && strncmp(tmpdir, "/tmp/", 5) == 0) {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", tmpdir);
    }
}

int main(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_config.XXXXXX");
    if (mkdtemp(tmpdir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    test_duration();
    test_size();
    test_bool();
    test_cidr_parse();
    test_cidr_match();
    test_hostport();
    test_defaults();
    test_full_file();
    test_flow_style();
    test_env();
    test_errors();
    test_files();
    test_sites();
    test_one_site();
    test_sites_errors();
    test_routing();
    test_sites_print();
    test_print();
    test_every_key_env_and_docs();
    test_access();
    test_hostile();
    rm_tmpdir();
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
