/* policy — what may be stored and for how long (RFC 9111, shared cache). See cache.h. */
#include "cache/cache.h"

#include <string.h>
#include <strings.h>
#include <time.h>

#define MAX_TTL (10LL * 365 * 86400) /* clamp absurd lifetimes */

/* Parses delta-seconds; malformed or negative counts as 0 (stale: RFC 9111 1.2.2). */
static int64_t parse_delta(const char *s, size_t len)
{
    int64_t v = 0;
    if (len >= 2 && s[0] == '"' && s[len - 1] == '"') /* tolerated, though not in the grammar */
        s++, len -= 2;
    if (len == 0)
        return 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        if (v < MAX_TTL)
            v = v * 10 + (s[i] - '0');
    }
    return v > MAX_TTL ? MAX_TTL : v;
}

void oe_cache_parse_cc(const char *v, size_t len, oe_cache_cc_t *cc)
{
    h2o_iovec_t iter = h2o_iovec_init(v, len), val;
    const char *tok;
    size_t tlen;
    while ((tok = h2o_next_token(&iter, ',', &tlen, &val)) != NULL) {
        if (tlen == 1 && tok[0] == ',')
            continue;
#define IS(lit) (tlen == sizeof(lit) - 1 && strncasecmp(tok, lit, tlen) == 0)
        if (IS("no-store"))
            cc->no_store = 1;
        else if (IS("no-cache")) /* also the qualified form no-cache="set-cookie": not stored either */
            cc->no_cache = 1;
        else if (IS("private"))
            cc->private_ = 1;
        else if (IS("public"))
            cc->public_ = 1;
        else if (IS("max-age"))
            cc->max_age = parse_delta(val.base, val.len);
        else if (IS("s-maxage"))
            cc->s_maxage = parse_delta(val.base, val.len);
#undef IS
    }
}

static int parse_http_date(h2o_iovec_t v, time_t *out)
{
    struct tm tm;
    if (v.len == 0 || h2o_time_parse_rfc1123(v.base, v.len, &tm) != 0)
        return -1;
    *out = timegm(&tm);
    return 0;
}

static h2o_iovec_t header_value(const h2o_headers_t *h, const h2o_token_t *t)
{
    ssize_t i = h2o_find_header(h, t, -1);
    return i != -1 ? h->entries[i].value : h2o_iovec_init(NULL, 0);
}

int64_t oe_cache_response_ttl(const h2o_headers_t *headers)
{
    oe_cache_cc_t cc = OE_CACHE_CC_INIT;
    for (ssize_t i = -1; (i = h2o_find_header(headers, H2O_TOKEN_CACHE_CONTROL, i)) != -1;)
        oe_cache_parse_cc(headers->entries[i].value.base, headers->entries[i].value.len, &cc);
    if (cc.no_store || cc.no_cache || cc.private_)
        return 0;
    if (h2o_find_header(headers, H2O_TOKEN_SET_COOKIE, -1) != -1)
        return 0; /* per-user state: never shared */
    for (ssize_t i = -1; (i = h2o_find_header(headers, H2O_TOKEN_VARY, i)) != -1;)
        if (h2o_contains_token(headers->entries[i].value.base, headers->entries[i].value.len, H2O_STRLIT("*"), ','))
            return 0;

    int64_t lifetime = cc.s_maxage >= 0 ? cc.s_maxage : cc.max_age;
    if (lifetime < 0) { /* Expires - Date; no heuristic freshness: without a lifetime nothing is stored */
        time_t exp, date;
        h2o_iovec_t e = header_value(headers, H2O_TOKEN_EXPIRES);
        if (e.len == 0 || parse_http_date(e, &exp) != 0)
            return 0;
        if (parse_http_date(header_value(headers, H2O_TOKEN_DATE), &date) != 0)
            date = time(NULL);
        lifetime = exp > date ? (int64_t)(exp - date) : 0;
        if (lifetime > MAX_TTL)
            lifetime = MAX_TTL;
    }
    h2o_iovec_t age = header_value(headers, H2O_TOKEN_AGE);
    int64_t a = age.len != 0 ? parse_delta(age.base, age.len) : 0;
    return lifetime > a ? lifetime - a : 0;
}

int oe_cache_request_eligible(h2o_req_t *req)
{
    if (!h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET")) &&
        !h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD")))
        return 0;
    if (req->upgrade.base != NULL) /* WebSocket (or h2c) upgrade: a tunnel, not a response */
        return 0;
    if (h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1) != -1)
        return 0;
    if (req->authority.len + req->path.len > 8192)
        return 0; /* bounds the key */
    return 1;
}

/* The opaque part of an entity tag, without W/. */
static h2o_iovec_t opaque(const char *s, size_t len)
{
    if (len >= 2 && s[0] == 'W' && s[1] == '/')
        s += 2, len -= 2;
    return h2o_iovec_init(s, len);
}

int oe_cache_etag_matches(const char *inm, size_t inm_len, const char *etag, size_t etag_len)
{
    h2o_iovec_t want = opaque(etag, etag_len);
    const char *p = inm, *end = inm + inm_len;
    if (want.len == 0)
        return 0;
    while (p < end) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
            p++;
        if (p == end)
            break;
        if (*p == '*')
            return 1;
        const char *start = p;
        if (end - p >= 2 && p[0] == 'W' && p[1] == '/')
            p += 2;
        if (p < end && *p == '"') { /* quoted: commas may sit inside */
            const char *q = memchr(p + 1, '"', (size_t)(end - p - 1));
            p = q != NULL ? q + 1 : end;
        } else {
            while (p < end && *p != ',')
                p++;
        }
        h2o_iovec_t got = opaque(start, (size_t)(p - start));
        while (got.len > 0 && (got.base[got.len - 1] == ' ' || got.base[got.len - 1] == '\t'))
            got.len--;
        if (h2o_memis(got.base, got.len, want.base, want.len))
            return 1;
    }
    return 0;
}
