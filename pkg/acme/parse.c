/*
 * parse — pure parsers and scheduling arithmetic for the ACME client (see acme_parse.h).
 */
#define _GNU_SOURCE /* strptime, timegm */
#include "acme/acme_parse.h"

#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define MAX_RETRY_AFTER_S (30ull * 24 * 3600)

static void copy_str(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

/* Copies a string member of obj into dst ("" when absent or not a string). */
static void get_str(json_t *obj, const char *key, char *dst, size_t cap)
{
    json_t *v = json_object_get(obj, key);
    copy_str(dst, cap, json_is_string(v) ? json_string_value(v) : "");
}

int oe_acme_parse_problem(const char *json, size_t len, oe_acme_problem_t *out)
{
    memset(out, 0, sizeof(*out));
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(root)) {
        json_decref(root);
        return -1;
    }
    get_str(root, "type", out->type, sizeof(out->type));
    get_str(root, "detail", out->detail, sizeof(out->detail));
    json_t *st = json_object_get(root, "status");
    if (json_is_integer(st) && json_integer_value(st) >= 0 && json_integer_value(st) < 1000)
        out->status = (int)json_integer_value(st);

    json_t *subs = json_object_get(root, "subproblems");
    size_t i, used = 0;
    json_t *sub;
    if (json_is_array(subs)) {
        json_array_foreach(subs, i, sub)
        {
            if (!json_is_object(sub) || used >= sizeof(out->subproblems) - 1)
                continue;
            char type[128], detail[256], ident[128] = "";
            get_str(sub, "type", type, sizeof(type));
            get_str(sub, "detail", detail, sizeof(detail));
            json_t *id = json_object_get(sub, "identifier");
            if (json_is_object(id))
                get_str(id, "value", ident, sizeof(ident));
            int n = snprintf(out->subproblems + used, sizeof(out->subproblems) - used, "%s%s: %s: %s", used ? "; " : "",
                             ident, type, detail);
            if (n < 0)
                break;
            used += (size_t)n;
            if (used >= sizeof(out->subproblems))
                used = sizeof(out->subproblems) - 1;
        }
    }
    json_decref(root);
    return 0;
}

const char *oe_acme_problem_short(const oe_acme_problem_t *p)
{
    static const char prefix[] = "urn:ietf:params:acme:error:";
    if (strncmp(p->type, prefix, sizeof(prefix) - 1) == 0)
        return p->type + sizeof(prefix) - 1;
    return p->type;
}

int oe_acme_parse_directory(const char *json, size_t len, oe_acme_directory_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    json_error_t jerr;
    json_t *root = json_loadb(json, len, 0, &jerr);
    if (!json_is_object(root)) {
        snprintf(err, errlen, "ACME directory is not a JSON object%s%s", root ? "" : ": ", root ? "" : jerr.text);
        json_decref(root);
        return -1;
    }
    get_str(root, "newNonce", out->new_nonce, sizeof(out->new_nonce));
    get_str(root, "newAccount", out->new_account, sizeof(out->new_account));
    get_str(root, "newOrder", out->new_order, sizeof(out->new_order));
    get_str(root, "revokeCert", out->revoke_cert, sizeof(out->revoke_cert));
    get_str(root, "keyChange", out->key_change, sizeof(out->key_change));
    get_str(root, "renewalInfo", out->renewal_info, sizeof(out->renewal_info));
    json_t *meta = json_object_get(root, "meta");
    if (json_is_object(meta)) {
        get_str(meta, "termsOfService", out->terms_of_service, sizeof(out->terms_of_service));
        out->eab_required = json_is_true(json_object_get(meta, "externalAccountRequired"));
    }
    json_decref(root);
    const char *missing = !out->new_nonce[0]     ? "newNonce"
                          : !out->new_account[0] ? "newAccount"
                          : !out->new_order[0]   ? "newOrder"
                                                 : NULL;
    if (missing) {
        snprintf(err, errlen, "ACME directory has no %s URL (is acme.directory an ACME directory URL?)", missing);
        return -1;
    }
    return 0;
}

/* HTTP-date (RFC 9110 §5.6.7): IMF-fixdate, and the obsolete RFC 850 and asctime forms
 * that recipients must accept. Returns -1 when s is none of them. */
static time_t http_date(const char *s)
{
    static const char *const formats[] = {
        "%a, %d %b %Y %H:%M:%S GMT", /* Sun, 06 Nov 1994 08:49:37 GMT */
        "%A, %d-%b-%y %H:%M:%S GMT", /* Sunday, 06-Nov-94 08:49:37 GMT */
        "%a %b %e %H:%M:%S %Y",      /* Sun Nov  6 08:49:37 1994 */
    };
    for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++) {
        struct tm tm;
        memset(&tm, 0, sizeof(tm));
        const char *end = strptime(s, formats[i], &tm);
        if (end != NULL && *end == '\0') {
            time_t t = timegm(&tm);
            if (t != -1)
                return t;
        }
    }
    return -1;
}

int oe_acme_parse_retry_after(const char *value, size_t len, time_t now, uint64_t *out_s)
{
    char buf[128];
    while (len > 0 && isspace((unsigned char)*value))
        value++, len--;
    while (len > 0 && isspace((unsigned char)value[len - 1]))
        len--;
    if (len == 0 || len >= sizeof(buf))
        return -1;
    memcpy(buf, value, len);
    buf[len] = '\0';

    int digits = 1;
    for (size_t i = 0; i < len; i++)
        if (!isdigit((unsigned char)buf[i]))
            digits = 0;
    if (digits) {
        uint64_t v = 0;
        for (size_t i = 0; i < len; i++) {
            v = v * 10 + (uint64_t)(buf[i] - '0');
            if (v > MAX_RETRY_AFTER_S) {
                v = MAX_RETRY_AFTER_S;
                break;
            }
        }
        *out_s = v;
        return 0;
    }
    time_t t = http_date(buf);
    if (t == -1)
        return -1;
    uint64_t d = t > now ? (uint64_t)(t - now) : 0;
    *out_s = d > MAX_RETRY_AFTER_S ? MAX_RETRY_AFTER_S : d;
    return 0;
}

/* Does the rel parameter value (space-separated list) contain rel? */
static int rel_matches(const char *v, size_t vlen, const char *rel)
{
    size_t rlen = strlen(rel), i = 0;
    while (i < vlen) {
        while (i < vlen && v[i] == ' ')
            i++;
        size_t start = i;
        while (i < vlen && v[i] != ' ')
            i++;
        if (i - start == rlen && strncasecmp(v + start, rel, rlen) == 0)
            return 1;
    }
    return 0;
}

size_t oe_acme_parse_link(const char *s, size_t len, const char *rel, char (*urls)[OE_ACME_URL_MAX], size_t max)
{
    size_t i = 0, found = 0;
    while (i < len && found < max) {
        while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == ','))
            i++;
        if (i >= len || s[i] != '<')
            break; /* malformed: stop rather than guess */
        size_t ustart = ++i;
        while (i < len && s[i] != '>')
            i++;
        if (i >= len)
            break;
        size_t ulen = i - ustart;
        i++;
        int match = 0;
        /* parameters: ; name [= token | "quoted"] ... up to the next top-level comma */
        while (i < len && s[i] != ',') {
            while (i < len && (s[i] == ' ' || s[i] == '\t'))
                i++;
            if (i >= len || s[i] == ',')
                break;
            if (s[i] != ';') {
                i++; /* junk: skip it */
                continue;
            }
            i++;
            while (i < len && (s[i] == ' ' || s[i] == '\t'))
                i++;
            size_t nstart = i;
            while (i < len && s[i] != '=' && s[i] != ';' && s[i] != ',' && s[i] != ' ')
                i++;
            size_t nlen = i - nstart;
            while (i < len && s[i] == ' ')
                i++;
            const char *val = "";
            size_t vlen = 0;
            if (i < len && s[i] == '=') {
                i++;
                while (i < len && s[i] == ' ')
                    i++;
                if (i < len && s[i] == '"') {
                    size_t vstart = ++i;
                    while (i < len && s[i] != '"') {
                        if (s[i] == '\\' && i + 1 < len)
                            i++;
                        i++;
                    }
                    val = s + vstart;
                    vlen = (i < len ? i : len) - vstart;
                    if (i < len)
                        i++;
                } else {
                    size_t vstart = i;
                    while (i < len && s[i] != ';' && s[i] != ',' && s[i] != ' ')
                        i++;
                    val = s + vstart;
                    vlen = i - vstart;
                }
            }
            if (nlen == 3 && strncasecmp(s + nstart, "rel", 3) == 0 && rel_matches(val, vlen, rel))
                match = 1;
        }
        if (match && ulen > 0 && ulen < OE_ACME_URL_MAX) {
            memcpy(urls[found], s + ustart, ulen);
            urls[found][ulen] = '\0';
            found++;
        }
    }
    return found;
}

int oe_acme_parse_timestamp(const char *s, size_t len, time_t *out)
{
    char buf[64];
    if (len < 20 || len >= sizeof(buf))
        return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    const char *p = strptime(buf, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!p) {
        buf[10] = buf[10] == 't' ? 'T' : buf[10];
        p = strptime(buf, "%Y-%m-%dT%H:%M:%S", &tm);
        if (!p)
            return -1;
    }
    if (*p == '.') { /* fractional seconds: ignored */
        p++;
        if (!isdigit((unsigned char)*p))
            return -1;
        while (isdigit((unsigned char)*p))
            p++;
    }
    long offset = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1;
        if (!isdigit((unsigned char)p[1]) || !isdigit((unsigned char)p[2]) || p[3] != ':' ||
            !isdigit((unsigned char)p[4]) || !isdigit((unsigned char)p[5]))
            return -1;
        int hh = (p[1] - '0') * 10 + (p[2] - '0'), mm = (p[4] - '0') * 10 + (p[5] - '0');
        if (hh > 23 || mm > 59)
            return -1;
        offset = sign * (hh * 3600L + mm * 60L);
        p += 6;
    } else {
        return -1;
    }
    if (*p != '\0')
        return -1;
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return -1;
    *out = t - offset;
    return 0;
}

int oe_acme_parse_renewal_info(const char *json, size_t len, time_t *start, time_t *end)
{
    json_t *root = json_loadb(json, len, 0, NULL);
    json_t *win = json_object_get(root, "suggestedWindow");
    json_t *s = json_object_get(win, "start"), *e = json_object_get(win, "end");
    int rc = -1;
    if (json_is_string(s) && json_is_string(e) &&
        oe_acme_parse_timestamp(json_string_value(s), json_string_length(s), start) == 0 &&
        oe_acme_parse_timestamp(json_string_value(e), json_string_length(e), end) == 0 && *end >= *start)
        rc = 0;
    json_decref(root);
    return rc;
}

time_t oe_acme_renew_at(time_t not_before, time_t not_after, uint64_t renew_before_s)
{
    if (not_after <= not_before)
        return not_after; /* nonsense dates: renew now-ish */
    uint64_t lifetime = (uint64_t)(not_after - not_before);
    if (renew_before_s == 0 || renew_before_s >= lifetime)
        renew_before_s = lifetime / 3;
    return not_after - (time_t)renew_before_s;
}

uint64_t oe_acme_backoff_ms(unsigned failures, uint64_t base_ms, uint64_t cap_ms, uint32_t rnd)
{
    if (failures == 0)
        return 0;
    uint64_t d = base_ms ? base_ms : 1;
    for (unsigned i = 1; i < failures && d < cap_ms; i++)
        d *= 2;
    if (d > cap_ms)
        d = cap_ms;
    uint64_t jitter = d / 2 ? (uint64_t)rnd % (d / 2) : 0;
    return d + jitter;
}
