/*
 * cluster.c — the parsers of the cluster.* values that the cluster module needs again at run
 * time: the Redis URL and the encryption key file (see config.h).
 */
#include <ctype.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/config.h"

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Copies [s, e) percent-decoded into out. */
static int pct_decode(const char *s, const char *e, char *out, size_t cap)
{
    size_t n = 0;
    for (; s < e; s++) {
        int c = (unsigned char)*s;
        if (c == '%') {
            if (e - s < 3 || hexval(s[1]) < 0 || hexval(s[2]) < 0)
                return -1;
            c = hexval(s[1]) * 16 + hexval(s[2]);
            s += 2;
        }
        if (n + 1 >= cap || c == 0)
            return -1;
        out[n++] = (char)c;
    }
    out[n] = '\0';
    return 0;
}

int oe_config_parse_redis_url(const char *url, oe_redis_url_t *out, char *msg, size_t len)
{
    oe_redis_url_t u;
    memset(&u, 0, sizeof(u));
    u.port = 6379;
    if (strncasecmp(url, "redis://", 8) != 0) {
        snprintf(msg, len, "use redis://[user:password@]host:port[/db]");
        return -1;
    }
    const char *p = url + 8, *end = p + strcspn(p, "/?#");
    const char *at = NULL;
    for (const char *q = p; q < end; q++)
        if (*q == '@')
            at = q;
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (colon) {
            if (pct_decode(p, colon, u.user, sizeof(u.user)) != 0 ||
                pct_decode(colon + 1, at, u.password, sizeof(u.password)) != 0) {
                snprintf(msg, len, "the user or password of the Redis URL is too long or badly %%-encoded");
                return -1;
            }
        } else if (pct_decode(p, at, u.password, sizeof(u.password)) != 0) {
            snprintf(msg, len, "the password of the Redis URL is too long or badly %%-encoded");
            return -1;
        }
        p = at + 1;
    }
    const char *hs = p, *he;
    if (*p == '[') {
        he = memchr(p, ']', (size_t)(end - p));
        if (!he) {
            snprintf(msg, len, "the Redis URL has an unterminated [IPv6] host");
            return -1;
        }
        hs = p + 1;
        p = he + 1;
    } else {
        he = p;
        while (he < end && *he != ':')
            he++;
        p = he;
    }
    if (he == hs || (size_t)(he - hs) >= sizeof(u.host)) {
        snprintf(msg, len, "the Redis URL has no host");
        return -1;
    }
    memcpy(u.host, hs, (size_t)(he - hs));
    if (p < end && *p == ':') {
        char *pe;
        errno = 0;
        unsigned long port = strtoul(p + 1, &pe, 10);
        if (pe != end || pe == p + 1 || port == 0 || port > 65535 || errno) {
            snprintf(msg, len, "the Redis URL has a bad port");
            return -1;
        }
        u.port = (uint16_t)port;
    } else if (p != end) {
        snprintf(msg, len, "the Redis URL has a bad host");
        return -1;
    }
    if (*end == '/' && end[1] != '\0') {
        char *de;
        errno = 0;
        long db = strtol(end + 1, &de, 10);
        if (*de != '\0' || db < 0 || db > 100000 || errno || !isdigit((unsigned char)end[1])) {
            snprintf(msg, len, "the Redis URL's database must be a number (redis://host:6379/0)");
            return -1;
        }
        u.db = (int)db;
    } else if (*end != '\0' && !(*end == '/' && end[1] == '\0')) {
        snprintf(msg, len, "the Redis URL takes no query or fragment");
        return -1;
    }
    if (out)
        *out = u;
    OPENSSL_cleanse(&u, sizeof(u));
    return 0;
}

int oe_config_read_key32(const char *file, unsigned char key[32], char *msg, size_t len)
{
    unsigned char buf[256];
    FILE *f = fopen(file, "rb");
    if (!f) {
        snprintf(msg, len, "cannot read %.200s: %s", file, strerror(errno));
        return -1;
    }
    size_t n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    int rc = -1;
    if (n == 32) {
        memcpy(key, buf, 32);
        rc = 0;
    } else {
        while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
            n--;
        if (n == 64) {
            rc = 0;
            for (size_t i = 0; i < 32 && rc == 0; i++) {
                int h = hexval(buf[2 * i]), l = hexval(buf[2 * i + 1]);
                if (h < 0 || l < 0)
                    rc = -1;
                else
                    key[i] = (unsigned char)(h * 16 + l);
            }
        }
        if (rc != 0 && n == 44 && buf[43] == '=' && buf[42] != '=') {
            unsigned char dec[36];
            if (EVP_DecodeBlock(dec, buf, 44) == 33) { /* 32 bytes + the padding's zero byte */
                memcpy(key, dec, 32);
                rc = 0;
            }
            OPENSSL_cleanse(dec, sizeof(dec));
        }
    }
    OPENSSL_cleanse(buf, sizeof(buf));
    if (rc != 0)
        snprintf(msg, len,
                 "%.200s does not hold a 32-byte key (32 raw bytes, 64 hex digits or 44 characters of base64; make one "
                 "with `openssl rand -base64 32`)",
                 file);
    return rc;
}
