/*
 * values.c — the value syntaxes of the configuration: durations, sizes, booleans,
 * CIDR ranges and listener addresses, plus the CIDR membership test used by the proxy.
 * Pure functions: no allocation, no global state.
 */
#include "config/config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <string.h>
#include <strings.h>

/* Reads a run of decimal digits into *out. Returns the number of digits, 0 on none or overflow. */
static size_t read_uint(const char *s, uint64_t *out)
{
    uint64_t n = 0;
    size_t i = 0;

    while (isdigit((unsigned char)s[i])) {
        unsigned d = (unsigned)(s[i] - '0');
        if (n > (UINT64_MAX - d) / 10)
            return 0;
        n = n * 10 + d;
        i++;
    }
    *out = n;
    return i;
}

/* "500ms", "30s", "5m", "2h", "7d", "1h30m"; a bare number is seconds. */
int oe_config_parse_duration(const char *s, uint64_t *out_ms)
{
    uint64_t total = 0, n, mult;
    size_t len;

    if (s == NULL || *s == '\0')
        return -1;
    len = read_uint(s, &n);
    if (len > 0 && s[len] == '\0') {
        if (n > UINT64_MAX / 1000)
            return -1;
        *out_ms = n * 1000;
        return 0;
    }
    while (*s != '\0') {
        if ((len = read_uint(s, &n)) == 0)
            return -1;
        s += len;
        if (s[0] == 'm' && s[1] == 's') {
            mult = 1;
            s += 2;
        } else {
            switch (*s) {
            case 's':
                mult = 1000;
                break;
            case 'm':
                mult = 60 * 1000;
                break;
            case 'h':
                mult = 3600 * 1000;
                break;
            case 'd':
                mult = 86400 * 1000;
                break;
            default:
                return -1;
            }
            s++;
        }
        if (n > UINT64_MAX / mult || total > UINT64_MAX - n * mult)
            return -1;
        total += n * mult;
    }
    *out_ms = total;
    return 0;
}

/* "1024" (bytes), "10KB"/"10MB"/"10GB"/"10TB" (powers of 1000), "512KiB"/"16MiB"/"1GiB"/"1TiB"
 * and nginx-style "16K"/"16M"/"16G" (powers of 1024). Units are case-insensitive. */
int oe_config_parse_size(const char *s, uint64_t *out_bytes)
{
    static const struct {
        const char *unit;
        uint64_t mult;
    } units[] = {
        {"", 1},
        {"b", 1},
        {"k", 1ull << 10},
        {"kib", 1ull << 10},
        {"kb", 1000ull},
        {"m", 1ull << 20},
        {"mib", 1ull << 20},
        {"mb", 1000000ull},
        {"g", 1ull << 30},
        {"gib", 1ull << 30},
        {"gb", 1000000000ull},
        {"t", 1ull << 40},
        {"tib", 1ull << 40},
        {"tb", 1000000000000ull},
    };
    uint64_t n;
    size_t len, i;

    if (s == NULL || (len = read_uint(s, &n)) == 0)
        return -1;
    for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcasecmp(s + len, units[i].unit) == 0) {
            if (n > UINT64_MAX / units[i].mult)
                return -1;
            *out_bytes = n * units[i].mult;
            return 0;
        }
    }
    return -1;
}

/* true/false, yes/no, on/off, 1/0 (case-insensitive). */
int oe_config_parse_bool(const char *s, int *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    size_t i;

    if (s == NULL)
        return -1;
    for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return -1;
}

/* "10.0.0.0/8", "fd00::/8"; a bare address is a single host (/32 or /128). Host bits are cleared. */
int oe_config_parse_cidr(const char *s, oe_cidr_t *out)
{
    char addr[INET6_ADDRSTRLEN + 1];
    const char *slash;
    size_t alen;
    unsigned max, i;
    uint64_t prefix;
    oe_cidr_t c;

    if (s == NULL)
        return -1;
    slash = strchr(s, '/');
    alen = slash != NULL ? (size_t)(slash - s) : strlen(s);
    if (alen == 0 || alen >= sizeof(addr))
        return -1;
    memcpy(addr, s, alen);
    addr[alen] = '\0';

    memset(&c, 0, sizeof(c));
    if (strchr(addr, ':') != NULL) {
        c.family = AF_INET6;
        max = 128;
    } else {
        c.family = AF_INET;
        max = 32;
    }
    if (inet_pton(c.family, addr, c.addr) != 1)
        return -1;
    if (slash == NULL) {
        prefix = max;
    } else {
        size_t plen = read_uint(slash + 1, &prefix);
        if (plen == 0 || plen > 3 || slash[1 + plen] != '\0' || prefix > max)
            return -1;
    }
    c.prefix = (unsigned)prefix;
    for (i = 0; i < max / 8; i++) {
        unsigned bit = i * 8;
        if (bit >= c.prefix)
            c.addr[i] = 0;
        else if (bit + 8 > c.prefix)
            c.addr[i] &= (unsigned char)(0xff << (8 - (c.prefix - bit)));
    }
    *out = c;
    return 0;
}

static int prefix_equal(const unsigned char *a, const unsigned char *net, unsigned prefix)
{
    unsigned whole = prefix / 8, rest = prefix % 8;

    if (memcmp(a, net, whole) != 0)
        return 0;
    if (rest == 0)
        return 1;
    return ((a[whole] ^ net[whole]) & (0xff << (8 - rest)) & 0xff) == 0;
}

int oe_cidr_match(const oe_cidr_t *list, size_t count, const struct sockaddr *sa)
{
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    unsigned char a4[4], a6[16];
    int has4 = 0;
    size_t i;

    if (list == NULL || sa == NULL)
        return 0;
    /* Compare each range in its own family: an IPv4 peer is also seen as ::ffff:a.b.c.d
     * and an IPv4-mapped IPv6 peer also as a.b.c.d. */
    if (sa->sa_family == AF_INET) {
        memcpy(a4, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        memcpy(a6, mapped, 12);
        memcpy(a6 + 12, a4, 4);
        has4 = 1;
    } else if (sa->sa_family == AF_INET6) {
        memcpy(a6, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
        if (memcmp(a6, mapped, 12) == 0) {
            memcpy(a4, a6 + 12, 4);
            has4 = 1;
        }
    } else {
        return 0;
    }
    for (i = 0; i < count; i++) {
        if (list[i].family == AF_INET && has4 && list[i].prefix <= 32 && prefix_equal(a4, list[i].addr, list[i].prefix))
            return 1;
        if (list[i].family == AF_INET6 && list[i].prefix <= 128 && prefix_equal(a6, list[i].addr, list[i].prefix))
            return 1;
    }
    return 0;
}

static int valid_hostname(const char *h, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)h[i];
        if (!isalnum(c) && c != '-' && c != '.')
            return 0;
    }
    return 1;
}

/* ":443", "443", "0.0.0.0:443", "localhost:443", "[::]:443", "[::1]:8443". host is "" for any. */
int oe_config_split_hostport(const char *s, char *host, size_t hostlen, uint16_t *port)
{
    const char *h, *p;
    size_t hl, plen;
    uint64_t n;

    if (s == NULL || *s == '\0' || host == NULL || port == NULL)
        return -1;
    if (s[0] == '[') {
        char v6[INET6_ADDRSTRLEN + 1];
        unsigned char bin[16];
        const char *close = strchr(s, ']');
        if (close == NULL || close[1] != ':')
            return -1;
        h = s + 1;
        hl = (size_t)(close - h);
        if (hl == 0 || hl >= sizeof(v6))
            return -1;
        memcpy(v6, h, hl);
        v6[hl] = '\0';
        if (inet_pton(AF_INET6, v6, bin) != 1)
            return -1;
        p = close + 2;
    } else {
        const char *colon = strrchr(s, ':');
        if (colon == NULL) { /* a bare port */
            h = s;
            hl = 0;
            p = s;
        } else {
            if (memchr(s, ':', (size_t)(colon - s)) != NULL)
                return -1; /* IPv6 without brackets: ambiguous */
            h = s;
            hl = (size_t)(colon - s);
            if (!valid_hostname(h, hl))
                return -1;
            p = colon + 1;
        }
    }
    plen = read_uint(p, &n);
    if (plen == 0 || plen > 5 || p[plen] != '\0' || n < 1 || n > 65535)
        return -1;
    if (hl + 1 > hostlen)
        return -1;
    memcpy(host, h, hl);
    host[hl] = '\0';
    *port = (uint16_t)n;
    return 0;
}

/* "ns1.example.com", "192.0.2.1", "2001:db8::1", "[2001:db8::1]", or any form
 * oe_config_split_hostport() takes with a host. */
int oe_config_split_hostport_opt(const char *s, char *host, size_t hostlen, uint16_t *port, uint16_t default_port)
{
    unsigned char bin[16];
    size_t len;

    if (s == NULL || *s == '\0' || host == NULL || port == NULL)
        return -1;
    len = strlen(s);
    if (inet_pton(AF_INET6, s, bin) == 1) { /* a bare IPv6 address: its colons are not a port */
        if (len + 1 > hostlen)
            return -1;
        memcpy(host, s, len + 1);
        *port = default_port;
        return 0;
    }
    if (s[0] == '[' && s[len - 1] == ']') {
        char v6[INET6_ADDRSTRLEN + 1];
        if (len - 2 >= sizeof(v6) || len - 2 + 1 > hostlen)
            return -1;
        memcpy(v6, s + 1, len - 2);
        v6[len - 2] = '\0';
        if (inet_pton(AF_INET6, v6, bin) != 1)
            return -1;
        memcpy(host, v6, len - 1);
        *port = default_port;
        return 0;
    }
    if (strchr(s, ':') != NULL)
        return oe_config_split_hostport(s, host, hostlen, port) == 0 && host[0] != '\0' ? 0 : -1;
    if (!valid_hostname(s, len) || len + 1 > hostlen)
        return -1;
    memcpy(host, s, len + 1);
    *port = default_port;
    return 0;
}
