/* forwarded — see forwarded.h. */
#include "proxy/forwarded.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

/* Dotted quad of 4 bytes. glibc's inet_ntop formats IPv4 with sprintf, which was 3.5% of
 * the instructions of a proxied HTTP/1.1 request (callgrind); this runs once per request. */
static void ipv4_ntop(const unsigned char *b, char *buf, size_t cap)
{
    char tmp[16], *p = tmp;
    for (int i = 0; i < 4; i++) {
        unsigned v = b[i];
        if (v >= 100)
            *p++ = (char)('0' + v / 100);
        if (v >= 10)
            *p++ = (char)('0' + v / 10 % 10);
        *p++ = (char)('0' + v % 10);
        *p++ = i < 3 ? '.' : '\0';
    }
    if ((size_t)(p - tmp) <= cap)
        memcpy(buf, tmp, (size_t)(p - tmp));
}

void oe_forwarded_ntop(const struct sockaddr *sa, char *buf, size_t cap)
{
    buf[0] = '\0';
    if (sa == NULL)
        return;
    if (sa->sa_family == AF_INET) {
        ipv4_ntop((const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr, buf, cap);
    } else if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a))
            ipv4_ntop(a->s6_addr + 12, buf, cap);
        else
            inet_ntop(AF_INET6, a, buf, (socklen_t)cap);
    }
}

/* Parses one textual IP (optionally "[v6]") into a sockaddr; returns 0 on success. */
static int parse_ip(const char *s, size_t len, struct sockaddr_storage *ss, char *canon, size_t canon_cap)
{
    char tmp[OE_FWD_IP_MAX];
    if (len >= 2 && s[0] == '[' && s[len - 1] == ']') {
        s++;
        len -= 2;
    }
    if (len == 0 || len >= sizeof(tmp))
        return -1;
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, tmp, &v4->sin_addr) == 1)
        v4->sin_family = AF_INET;
    else if (inet_pton(AF_INET6, tmp, &v6->sin6_addr) == 1)
        v6->sin6_family = AF_INET6;
    else
        return -1;
    oe_forwarded_ntop((struct sockaddr *)ss, canon, canon_cap);
    return 0;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t';
}

/* Copies a NUL-terminated string into a fixed buffer (the hot path avoids snprintf). */
static size_t copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
    return n;
}

void oe_forwarded_compute(const oe_fwd_input_t *in, oe_fwd_result_t *out)
{
    /* only the small fields are cleared: this runs once per request */
    out->peer_ip[0] = out->client_ip[0] = out->xff[0] = '\0';
    oe_forwarded_ntop(in->peer, out->peer_ip, sizeof(out->peer_ip));
    out->trusted =
        in->peer != NULL && in->trusted_count != 0 && oe_cidr_match(in->trusted, in->trusted_count, in->peer);
    copy_str(out->client_ip, sizeof(out->client_ip), out->peer_ip);

    if (!out->trusted) { /* the common case: X-Forwarded-For is the peer alone */
        out->xff_len = copy_str(out->xff, sizeof(out->xff), out->peer_ip);
        return;
    }

    /* the hops the client claims, kept only from a trusted peer and only when they parse */
    char hops[OE_FWD_MAX_HOPS][OE_FWD_IP_MAX];
    int hop_trusted[OE_FWD_MAX_HOPS];
    size_t nhops = 0;
    if (in->xff != NULL) {
        size_t i = 0;
        while (i < in->xff_len) {
            size_t start = i;
            while (i < in->xff_len && in->xff[i] != ',')
                i++;
            size_t end = i++;
            while (start < end && is_space(in->xff[start]))
                start++;
            while (end > start && is_space(in->xff[end - 1]))
                end--;
            struct sockaddr_storage ss;
            char canon[OE_FWD_IP_MAX];
            if (parse_ip(in->xff + start, end - start, &ss, canon, sizeof(canon)) != 0)
                continue;
            if (nhops == OE_FWD_MAX_HOPS) { /* keep the rightmost ones: they are the closest hops */
                memmove(hops[0], hops[1], sizeof(hops[0]) * (OE_FWD_MAX_HOPS - 1));
                memmove(hop_trusted, hop_trusted + 1, sizeof(hop_trusted[0]) * (OE_FWD_MAX_HOPS - 1));
                nhops--;
            }
            memcpy(hops[nhops], canon, sizeof(canon));
            hop_trusted[nhops] = oe_cidr_match(in->trusted, in->trusted_count, (struct sockaddr *)&ss);
            nhops++;
        }
    }

    /* X-Forwarded-For: kept hops, then the peer */
    size_t len = 0;
    for (size_t h = 0; h < nhops; h++)
        len += (size_t)snprintf(out->xff + len, sizeof(out->xff) - len, "%s, ", hops[h]);
    len += (size_t)snprintf(out->xff + len, sizeof(out->xff) - len, "%s", out->peer_ip);
    out->xff_len = len < sizeof(out->xff) ? len : sizeof(out->xff) - 1;

    struct sockaddr_storage ss;
    char canon[OE_FWD_IP_MAX];
    if (in->real_ip != NULL && parse_ip(in->real_ip, in->real_ip_len, &ss, canon, sizeof(canon)) == 0) {
        copy_str(out->client_ip, sizeof(out->client_ip), canon);
        return;
    }
    for (size_t h = nhops; h > 0; h--) {
        if (!hop_trusted[h - 1]) {
            copy_str(out->client_ip, sizeof(out->client_ip), hops[h - 1]);
            return;
        }
    }
    if (nhops > 0)
        copy_str(out->client_ip, sizeof(out->client_ip), hops[0]);
}

static int host_char_ok(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
           c == '_';
}

int oe_forwarded_valid_host(const char *authority, size_t len, size_t *host_len)
{
    size_t hl = 0;
    if (len > 0 && authority[0] == '[') {
        const char *end = memchr(authority, ']', len);
        if (end == NULL)
            return 0;
        hl = (size_t)(end - authority) + 1;
        for (size_t i = 1; i + 1 < hl; i++)
            if (!(host_char_ok(authority[i]) || authority[i] == ':'))
                return 0;
    } else {
        while (hl < len && authority[hl] != ':')
            hl++;
        for (size_t i = 0; i < hl; i++)
            if (!host_char_ok(authority[i]))
                return 0;
    }
    if (hl == 0 || hl > 255)
        return 0;
    if (hl < len) { /* ":port" */
        if (authority[hl] != ':' || len - hl < 2 || len - hl > 6)
            return 0;
        for (size_t i = hl + 1; i < len; i++)
            if (authority[i] < '0' || authority[i] > '9')
                return 0;
    }
    if (host_len != NULL)
        *host_len = hl;
    return 1;
}
