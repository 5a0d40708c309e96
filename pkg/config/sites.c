/*
 * sites.c — the sites: each `sites` entry (or the one site the top-level domains +
 * upstream + tls.* make) resolved into an oe_site_t, with every per-site key inherited from
 * the top level unless the site sets it; the checks that span sites (unique names and
 * domains, a default_site that exists, a certificate for wildcard names); the upstream URL
 * parser; and the routing lookup oe_config_site_for_host().
 */
#include "config/internal.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SF(f) offsetof(oe_site_t, f)

const struct site_field oe_config_site_fields[OE_CONFIG_SITE_FIELDS] = {
    {"domains", SF(domains), 0},
    {"tls.cert_file", SF(cert_file), 0},
    {"tls.key_file", SF(key_file), 0},
    {"hsts", SF(hsts), 1},
    {"proxy.block_paths", SF(proxy.block_paths), 1},
    {"proxy.websocket_idle_timeout", SF(proxy.websocket_idle_timeout_ms), 1},
    {"proxy.max_body_size", SF(proxy.max_body_size), 1},
    {"proxy.upstream_timeout", SF(proxy.upstream_timeout_ms), 1},
    {"proxy.health_path", SF(proxy.health_path), 1},
    {"proxy.health_interval", SF(proxy.health_interval_ms), 1},
    {"proxy.health_rise", SF(proxy.health_rise), 1},
    {"proxy.health_fall", SF(proxy.health_fall), 1},
    {"cache.enabled", SF(cache_enabled), 1},
    {"compress.enabled", SF(compress_enabled), 1},
    {"access.allow", SF(access.allow), 1, SF(access.allow_count)},
    {"access.deny", SF(access.deny), 1, SF(access.deny_count)},
    {"access.basic_auth", SF(access.basic_auth), 1},
    {"access.pass_credentials", SF(access.pass_credentials), 1},
    {"access.rate.requests", SF(access.rate.requests), 1},
    {"access.rate.per", SF(access.rate.per_ms), 1},
    {"access.rate.burst", SF(access.rate.burst), 1},
    {"access.websocket_rate.requests", SF(access.websocket_rate.requests), 1},
    {"access.websocket_rate.per", SF(access.websocket_rate.per_ms), 1},
    {"access.websocket_rate.burst", SF(access.websocket_rate.burst), 1},
    {"access.max_connections", SF(access.max_connections), 1},
    {"access.max_websockets", SF(access.max_websockets), 1},
};

/* The last OE_CONFIG_ACCESS_KEYS site fields, in the same order. */
const char *const oe_config_access_key_paths[OE_CONFIG_ACCESS_KEYS] = {
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
};

const char *const *oe_config_access_keys(size_t *count)
{
    *count = OE_CONFIG_ACCESS_KEYS;
    return oe_config_access_key_paths;
}

const struct site_keydoc oe_config_site_keys[OE_CONFIG_SITE_KEYS] = {
    {"name", "string", "the first domain",
     "Names the site in logs, metrics, `default_site` and `state_dir`: lower-case letters, digits, `.`, `_` and `-`, "
     "unique. Keep it stable: the site's certificate is stored under it."},
    {"domains", "list", "`[]`",
     "Names this site answers for (Host, `:authority` and TLS SNI) and puts on its certificate: exact names, IP "
     "addresses, or `*.example.com` (one label; needs `tls.cert_file`). A name belongs to one site. Only the "
     "`default_site` may have none."},
    {"upstreams", "list", "(required)", "The site's upstream servers, one or more `http://host:port`."},
    {"upstream", "string", "unset", "One upstream server, instead of `upstreams`."},
    {"balance", "`round_robin` \\| `least_conn` \\| `hash`", "`round_robin`",
     "How requests are spread over `upstreams`. `least_conn` counts open WebSockets too."},
    {"hash_key", "string", "`client_ip`",
     "With `balance: hash`: `client_ip`, `header:NAME`, `cookie:NAME` or `path_segment:N` (N from 1: "
     "`path_segment:3` keys `/api/room/<name>` by the room)."},
    {"tls.cert_file", "string", "unset",
     "PEM certificate chain for this site's names. Unset: an ACME certificate for `domains` (self-signed when ACME is "
     "off)."},
    {"tls.key_file", "string", "unset", "PEM private key for `tls.cert_file`."},
    {"hsts", NULL, NULL, NULL},
    {"proxy.block_paths", NULL, NULL, NULL},
    {"proxy.websocket_idle_timeout", NULL, NULL, NULL},
    {"proxy.max_body_size", NULL, NULL, NULL},
    {"proxy.upstream_timeout", NULL, NULL, NULL},
    {"proxy.health_path", NULL, NULL, NULL},
    {"proxy.health_interval", NULL, NULL, NULL},
    {"proxy.health_rise", NULL, NULL, NULL},
    {"proxy.health_fall", NULL, NULL, NULL},
    {"cache.enabled", NULL, NULL, NULL},
    {"compress.enabled", NULL, NULL, NULL},
    {"access.allow", NULL, NULL, NULL},
    {"access.deny", NULL, NULL, NULL},
    {"access.basic_auth", NULL, NULL, NULL},
    {"access.pass_credentials", NULL, NULL, NULL},
    {"access.rate.requests", NULL, NULL, NULL},
    {"access.rate.per", NULL, NULL, NULL},
    {"access.rate.burst", NULL, NULL, NULL},
    {"access.websocket_rate.requests", NULL, NULL, NULL},
    {"access.websocket_rate.per", NULL, NULL, NULL},
    {"access.websocket_rate.burst", NULL, NULL, NULL},
    {"access.max_connections", NULL, NULL, NULL},
    {"access.max_websockets", NULL, NULL, NULL},
    {"paths", "list of paths", "top-level `paths`",
     "Path prefixes with access rules of their own: `[{prefix: /admin, access: {...}}]` (see `paths`). A site "
     "without `paths` takes the top-level list."},
    {NULL, NULL, NULL, NULL}, /* end; keeps the count a compile-time check */
};

int oe_config_is_site_key(const char *path)
{
    size_t i;

    if (strcmp(path, "name") == 0 || strcmp(path, "upstreams") == 0 || strcmp(path, "balance") == 0 ||
        strcmp(path, "hash_key") == 0)
        return 2;
    if (strcmp(path, "upstream") == 0)
        return 1;
    for (i = 0; i < OE_CONFIG_SITE_FIELDS; i++)
        if (strcmp(oe_config_site_fields[i].path, path) == 0)
            return 1;
    return 0;
}

/* ---- upstream URLs -------------------------------------------------------------------- */

void oe_config_upstream_free(oe_upstream_addr_t *u)
{
    free(u->url);
    free(u->host);
    free(u->authority);
    memset(u, 0, sizeof(*u));
}

int oe_config_parse_upstream(const char *url, oe_upstream_addr_t *out, char *msg, size_t len)
{
    char hostport[300], host[256], auth[300], full[320];
    const char *a, *slash;
    size_t alen, i;
    uint16_t port;

    memset(out, 0, sizeof(*out));
    if (url == NULL)
        goto bad;
    if (strncasecmp(url, "https://", 8) == 0) {
        snprintf(msg, len, "\"%.64s\": https upstreams are not supported yet (use http://host:port)", url);
        return -1;
    }
    if (strncasecmp(url, "http://", 7) != 0)
        goto bad;
    a = url + 7;
    slash = strchr(a, '/');
    if (slash != NULL && slash[1] != '\0') {
        snprintf(msg, len, "\"%.64s\": a path on the upstream is not supported (use http://host:port)", url);
        return -1;
    }
    alen = slash != NULL ? (size_t)(slash - a) : strlen(a);
    if (alen == 0 || alen >= sizeof(hostport))
        goto bad;
    memcpy(hostport, a, alen);
    hostport[alen] = '\0';
    if (oe_config_split_hostport(hostport, host, sizeof(host), &port) != 0 || host[0] == '\0')
        goto bad;
    for (i = 0; host[i] != '\0'; i++)
        host[i] = (char)tolower((unsigned char)host[i]);
    snprintf(auth, sizeof(auth), strchr(host, ':') != NULL ? "[%s]:%u" : "%s:%u", host, (unsigned)port);
    snprintf(full, sizeof(full), "http://%s", auth);
    out->port = port;
    if ((out->url = strdup(full)) == NULL || (out->host = strdup(host)) == NULL ||
        (out->authority = strdup(auth)) == NULL) {
        oe_config_upstream_free(out);
        return oe_config_nomem(msg, len);
    }
    return 0;
bad:
    snprintf(msg, len, "invalid upstream \"%.64s\" (use http://host:port, e.g. http://127.0.0.1:8080)",
             url != NULL ? url : "");
    return -1;
}

/* ---- routing -------------------------------------------------------------------------- */

/* Whether d (lower-case, NUL-terminated) equals h[0..n) ignoring case. */
static int name_eq(const char *d, const char *h, size_t n)
{
    return strncasecmp(d, h, n) == 0 && d[n] == '\0';
}

int oe_config_site_for_host(const oe_config_t *cfg, const char *host, size_t len)
{
    const char *dot;
    size_t i, j;

    if (cfg == NULL || host == NULL)
        return -1;
    if (len >= 2 && host[0] == '[' && host[len - 1] == ']') { /* an IPv6 literal as in a Host header */
        host++;
        len -= 2;
    }
    if (len > 1 && host[len - 1] == '.')
        len--;
    if (len == 0 || len > 253 || memchr(host, '\0', len) != NULL || memchr(host, '*', len) != NULL)
        return -1;
    for (i = 0; i < cfg->sites_count; i++) {
        const oe_strlist_t *d = &cfg->sites[i].domains;
        for (j = 0; j < d->count; j++)
            if (d->items[j][0] != '*' && name_eq(d->items[j], host, len))
                return (int)i;
    }
    /* "*.example.com" matches "x.example.com", not "example.com" nor "y.x.example.com" */
    dot = memchr(host, '.', len);
    if (dot == NULL || dot == host)
        return -1;
    for (i = 0; i < cfg->sites_count; i++) {
        const oe_strlist_t *d = &cfg->sites[i].domains;
        for (j = 0; j < d->count; j++)
            if (d->items[j][0] == '*' && name_eq(d->items[j] + 1, dot, len - (size_t)(dot - host)))
                return (int)i;
    }
    return -1;
}

int oe_config_site_by_name(const oe_config_t *cfg, const char *name)
{
    size_t i;

    for (i = 0; name != NULL && i < cfg->sites_count; i++)
        if (strcmp(cfg->sites[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* ---- printing helpers ----------------------------------------------------------------- */

const char *oe_config_balance_name(enum oe_balance b)
{
    return b == OE_BALANCE_LEAST_CONN ? "least_conn" : b == OE_BALANCE_HASH ? "hash" : "round_robin";
}

void oe_config_hash_key_text(const oe_site_t *s, char *buf, size_t len)
{
    switch (s->hash.kind) {
    case OE_HASH_HEADER:
        snprintf(buf, len, "header:%s", s->hash.name);
        break;
    case OE_HASH_COOKIE:
        snprintf(buf, len, "cookie:%s", s->hash.name);
        break;
    case OE_HASH_PATH_SEGMENT:
        snprintf(buf, len, "path_segment:%u", s->hash.segment);
        break;
    default:
        snprintf(buf, len, "client_ip");
        break;
    }
}

void oe_config_site_view(const oe_site_t *s, oe_config_t *view)
{
    size_t i;

    memset(view, 0, sizeof(*view));
    for (i = 0; i < OE_CONFIG_SITE_FIELDS; i++) {
        const struct site_field *f = &oe_config_site_fields[i];
        const keydef *k = oe_config_find_key(f->path);
        size_t sz = k->type == T_STR || k->type == T_CIDRS  ? sizeof(char *)
                    : k->type == T_LIST                     ? sizeof(oe_strlist_t)
                    : k->type == T_BOOL || k->type == T_INT ? sizeof(int)
                                                            : sizeof(uint64_t);
        memcpy((char *)view + k->off, (const char *)s + f->off, sz);
        if (k->type == T_CIDRS)
            memcpy((char *)view + k->off2, (const char *)s + f->off2, sizeof(size_t));
    }
}

/* ---- resolving ------------------------------------------------------------------------ */

void oe_config_free_access(oe_config_access_t *a)
{
    free(a->allow);
    free(a->deny);
    free(a->basic_auth);
    memset(a, 0, sizeof(*a));
}

void oe_config_free_paths(oe_config_path_t *paths, size_t count)
{
    size_t i;

    for (i = 0; paths != NULL && i < count; i++) {
        free(paths[i].prefix);
        oe_config_free_access(&paths[i].access);
    }
    free(paths);
}

void oe_config_free_paths_src(paths_src *p)
{
    size_t i;

    for (i = 0; p->items != NULL && i < p->count; i++) {
        free(p->items[i].prefix);
        oe_config_free(p->items[i].over);
    }
    free(p->items);
    memset(p, 0, sizeof(*p));
}

static void free_site(oe_site_t *s)
{
    size_t i;

    oe_config_free_access(&s->access);
    oe_config_free_paths(s->paths, s->paths_count);
    free(s->name);
    oe_config_free_list(&s->domains);
    for (i = 0; i < s->upstreams_count; i++)
        oe_config_upstream_free(&s->upstreams[i]);
    free(s->upstreams);
    free(s->hash.name);
    free(s->cert_file);
    free(s->key_file);
    free(s->hsts);
    oe_config_free_list(&s->proxy.block_paths);
    free(s->proxy.health_path);
}

void oe_config_free_sites(oe_config_t *cfg)
{
    size_t i;

    for (i = 0; i < cfg->sites_count; i++)
        free_site(&cfg->sites[i]);
    free(cfg->sites);
    cfg->sites = NULL;
    cfg->sites_count = 0;
}

void oe_config_free_site_srcs(loader *ld)
{
    size_t i;

    for (i = 0; ld->sites != NULL && i < ld->nsites; i++) {
        site_src *s = &ld->sites[i];
        oe_config_free(s->over);
        free(s->name);
        free(s->balance);
        free(s->hash_key);
        oe_config_free_list(&s->upstreams);
        free(s->upstream_lines);
        oe_config_free_paths_src(&s->paths);
    }
    free(ld->sites);
    ld->sites = NULL;
    ld->nsites = 0;
}

/* Copies key k's value from a configuration (the top level, or the overrides a site or a paths
 * entry sets) to dst (and, for T_CIDRS, the count to dst_count). */
static int copy_value(const keydef *k, void *dst, size_t *dst_count, const oe_config_t *from)
{
    const void *src = (const char *)from + k->off;
    size_t i;

    switch (k->type) {
    case T_CIDRS: {
        const oe_cidr_t *c = *(oe_cidr_t *const *)src;
        size_t n = *(const size_t *)((const char *)from + k->off2);
        oe_cidr_t *d = calloc(n > 0 ? n : 1, sizeof(*d));
        if (d == NULL)
            return -1;
        if (n > 0)
            memcpy(d, c, n * sizeof(*d));
        *(oe_cidr_t **)dst = d;
        if (dst_count != NULL)
            *dst_count = n;
        return 0;
    }
    case T_STR: {
        const char *v = *(char *const *)src;
        if (v != NULL && (*(char **)dst = strdup(v)) == NULL)
            return -1;
        return 0;
    }
    case T_LIST: {
        const oe_strlist_t *l = src;
        oe_strlist_t *d = dst;
        if ((d->items = calloc(l->count > 0 ? l->count : 1, sizeof(char *))) == NULL)
            return -1;
        for (i = 0; i < l->count; i++, d->count++)
            if ((d->items[i] = strdup(l->items[i])) == NULL)
                return -1;
        return 0;
    }
    case T_BOOL:
    case T_INT:
        memcpy(dst, src, sizeof(int));
        return 0;
    default:
        memcpy(dst, src, sizeof(uint64_t));
        return 0;
    }
}

/* Copies field f of from (a configuration: the top level or a site's overrides) into s. */
static int copy_field(oe_site_t *s, const struct site_field *f, const oe_config_t *from)
{
    const keydef *k = oe_config_find_key(f->path);

    return copy_value(k, (char *)s + f->off, f->off2 != 0 ? (size_t *)((char *)s + f->off2) : NULL, from);
}

/* "config: FILE:LINE: sites[N].key: message" (or without the line / the key). */
static int site_fail(loader *ld, size_t i, const char *key, size_t line, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int site_fail(loader *ld, size_t i, const char *key, size_t line, const char *fmt, ...)
{
    char msg[OE_CONFIG_ERR_MAX], where[300] = "";
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (line != 0)
        snprintf(where, sizeof(where), "%s:%zu: ", ld->file, line);
    return oe_config_fail(ld, "%ssites[%zu]%s%s: %s", where, i, key ? "." : "", key ? key : "", msg);
}

/* Where a top-level key was set: "file:7: " or "OTT_EDGE_X: "; "" when not set. */
static int top_set(const loader *ld, const char *path, char *buf, size_t len)
{
    size_t ki = (size_t)(oe_config_find_key(path) - oe_config_keys);

    buf[0] = '\0';
    if (ld->env[ki][0] == '\0' && ld->line[ki] == 0)
        return 0;
    oe_config_origin(ld, ki, buf, len);
    return 1;
}

static int valid_site_name(const char *n)
{
    size_t i, l = strlen(n);

    if (l == 0 || l > OE_CONFIG_SITE_NAME_MAX || n[0] == '.' || n[0] == '-')
        return 0;
    for (i = 0; i < l; i++)
        if (!(islower((unsigned char)n[i]) || isdigit((unsigned char)n[i]) || strchr("._-", n[i]) != NULL))
            return 0;
    return 1;
}

/* The name a site gets when it has none: its first domain, made a valid name. */
static char *default_name(const oe_strlist_t *domains)
{
    const char *d = domains->count > 0 ? domains->items[0] : "default";
    char *n = strndup(d, OE_CONFIG_SITE_NAME_MAX);
    char *p;

    for (p = n; p != NULL && *p != '\0'; p++)
        if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '.' || *p == '-'))
            *p = '_';
    if (n != NULL && (n[0] == '.' || n[0] == '-'))
        n[0] = '_';
    return n;
}

static int parse_hash_key(oe_site_t *s, const char *v, char *msg, size_t len)
{
    const char *colon = strchr(v, ':');

    if (strcmp(v, "client_ip") == 0) {
        s->hash.kind = OE_HASH_CLIENT_IP;
        return 0;
    }
    if (colon != NULL && (strncmp(v, "header:", 7) == 0 || strncmp(v, "cookie:", 7) == 0)) {
        const char *n = colon + 1, *p;
        int header = v[0] == 'h';
        if (*n == '\0') {
            snprintf(msg, len, "\"%.64s\": the %s name is missing", v, header ? "header" : "cookie");
            return -1;
        }
        for (p = n; *p != '\0'; p++) {
            if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f || strchr("\"(),/:;<=>?@[\\]{}", *p) != NULL) {
                snprintf(msg, len, "\"%.64s\": invalid %s name", v, header ? "header" : "cookie");
                return -1;
            }
        }
        s->hash.kind = header ? OE_HASH_HEADER : OE_HASH_COOKIE;
        if ((s->hash.name = strdup(n)) == NULL)
            return oe_config_nomem(msg, len);
        if (header)
            for (char *q = s->hash.name; *q != '\0'; q++)
                *q = (char)tolower((unsigned char)*q);
        return 0;
    }
    if (strncmp(v, "path_segment:", 13) == 0) {
        const char *n = v + 13;
        unsigned long seg = 0;
        size_t i;
        for (i = 0; i < 4 && isdigit((unsigned char)n[i]); i++)
            seg = seg * 10 + (unsigned long)(n[i] - '0');
        if (i == 0 || n[i] != '\0' || seg < 1 || seg > 64) {
            snprintf(msg, len, "\"%.64s\": path_segment needs a number from 1 to 64 (path_segment:3)", v);
            return -1;
        }
        s->hash.kind = OE_HASH_PATH_SEGMENT;
        s->hash.segment = (unsigned)seg;
        return 0;
    }
    snprintf(msg, len, "invalid hash key \"%.64s\" (use client_ip, header:NAME, cookie:NAME or path_segment:N)", v);
    return -1;
}

/* Wildcard names: ACME can only get a wildcard certificate over DNS-01, so a site with one
 * needs its own certificate file unless dns-01 is among acme.challenges (config.c checks
 * that it then has a provider). Returns the index of the first wildcard name that lacks
 * a way to its certificate, or -1. */
static long wildcard_without_certificate(const oe_config_t *cfg, const oe_site_t *s)
{
    size_t j;

    if (s->cert_file != NULL || oe_config_challenge_on(cfg, "dns-01"))
        return -1;
    for (j = 0; j < s->domains.count; j++)
        if (s->domains.items[j][0] == '*')
            return (long)j;
    return -1;
}

/* ---- access and paths ------------------------------------------------------------------ */

/* A rate ({requests, per, burst}) is one value: a level that sets any of its keys replaces
 * the enclosing level's whole rate, and the keys it leaves out take their defaults. Returns
 * 1 when path is a rate key and line[] (one level's) sets a key of the same rate. */
static int rate_group_set(const char *path, const size_t *line)
{
    static const char *const groups[] = {"access.rate.", "access.websocket_rate."};

    for (size_t g = 0; g < 2; g++) {
        size_t n = strlen(groups[g]);
        if (strncmp(path, groups[g], n) != 0)
            continue;
        for (size_t i = 0; i < OE_CONFIG_NKEYS; i++)
            if (line[i] != 0 && strncmp(oe_config_keys[i].path, groups[g], n) == 0)
                return 1;
    }
    return 0;
}

/* The built-in defaults of the rate keys, for the ones a level leaves out of its rate. */
static const oe_config_t *access_defaults(void)
{
    static oe_config_t d;
    static int made;
    char msg[OE_CONFIG_ERR_MAX];
    size_t bad;

    if (!made) {
        for (size_t a = 0; a < OE_CONFIG_ACCESS_KEYS; a++) {
            const keydef *k = oe_config_find_key(oe_config_access_key_paths[a]);
            if (strncmp(k->path, "access.rate.", 12) == 0 || strncmp(k->path, "access.websocket_rate.", 22) == 0)
                oe_config_set_scalar(&d, k, k->def, msg, sizeof(msg), &bad); /* numbers: nothing allocated */
        }
        made = 1;
    }
    return &d;
}

/* Where key k (an access.* key, whose offset is into oe_config_t) sits in an access block. */
static void *access_field(oe_config_access_t *a, size_t off)
{
    return (char *)a + (off - offsetof(oe_config_t, access));
}

/* The rate key that makes no sense in a, or NULL: a burst without requests. */
static const char *bad_rate(const oe_config_access_t *a)
{
    if (a->rate.requests == 0 && a->rate.burst > 0)
        return "access.rate.burst";
    if (a->websocket_rate.requests == 0 && a->websocket_rate.burst > 0)
        return "access.websocket_rate.burst";
    return NULL;
}

static const char *requests_of(const char *burst_key)
{
    return strncmp(burst_key, "access.rate.", 12) == 0 ? "access.rate.requests" : "access.websocket_rate.requests";
}

/* The top-level access block's own checks (site blocks are checked as they are resolved). */
static int check_top_access(loader *ld)
{
    const char *bad = bad_rate(&ld->cfg->access);
    char where[300];

    if (bad == NULL)
        return 0;
    oe_config_origin(ld, (size_t)(oe_config_find_key(bad) - oe_config_keys), where, sizeof(where));
    return oe_config_fail(ld, "%s: %s: a burst needs %s (the rate it refills at)", where, bad, requests_of(bad));
}

/* Resolves a paths list for a site whose access block is base: each entry takes the keys it
 * sets, and base's value for the others. label names the list in messages ("paths",
 * "sites[1].paths"). */
static int resolve_paths(loader *ld, const paths_src *src, const oe_config_access_t *base, const char *label,
                         oe_config_path_t **out, size_t *out_count)
{
    oe_config_t *view = calloc(1, sizeof(*view));
    oe_config_path_t *paths = NULL;
    size_t i, j, a;
    int rc = -1;

    *out = NULL;
    *out_count = 0;
    if (src->items == NULL || src->count == 0) {
        free(view);
        return 0;
    }
    if (view == NULL || (paths = calloc(src->count, sizeof(*paths))) == NULL) {
        oe_config_fail(ld, "out of memory");
        goto out;
    }
    view->access = *base; /* shallow: only read */
    *out = paths;
    for (i = 0; i < src->count; i++) {
        const path_src *e = &src->items[i];
        oe_config_path_t *pth = &paths[i];
        const char *bad;
        *out_count = i + 1;
        if ((pth->prefix = strdup(e->prefix)) == NULL) {
            oe_config_fail(ld, "out of memory");
            goto out;
        }
        for (a = 0; a < OE_CONFIG_ACCESS_KEYS; a++) {
            const keydef *k = oe_config_find_key(oe_config_access_key_paths[a]);
            size_t ki = (size_t)(k - oe_config_keys);
            int own = e->line[ki] != 0;
            const oe_config_t *from = own ? e->over : rate_group_set(k->path, e->line) ? access_defaults() : view;
            if (copy_value(k, access_field(&pth->access, k->off),
                           k->type == T_CIDRS ? access_field(&pth->access, k->off2) : NULL, from) != 0) {
                oe_config_fail(ld, "out of memory");
                goto out;
            }
            if (own) {
                pth->set |= 1u << a;
                if (strncmp(k->path, "access.rate.", 12) == 0)
                    pth->own_rate = 1;
                else if (strncmp(k->path, "access.websocket_rate.", 22) == 0)
                    pth->own_websocket_rate = 1;
            }
        }
        if ((bad = bad_rate(&pth->access)) != NULL) {
            size_t bl = e->line[oe_config_find_key(bad) - oe_config_keys];
            oe_config_fail(ld, "%s:%zu: %s[%zu].%s: a burst needs %s (the rate it refills at)", ld->file,
                           bl != 0 ? bl : e->at, label, i, bad, requests_of(bad));
            goto out;
        }
        for (j = 0; j < i; j++) {
            if (strcasecmp(paths[j].prefix, pth->prefix) == 0) {
                oe_config_fail(ld, "%s:%zu: %s[%zu].prefix: \"%.64s\" is also %s[%zu]'s (one entry per prefix)",
                               ld->file, e->prefix_line, label, i, pth->prefix, label, j);
                goto out;
            }
        }
    }
    rc = 0;
out:
    free(view);
    return rc;
}

int oe_config_resolve_top_paths(loader *ld)
{
    oe_config_t *cfg = ld->cfg;

    if (check_top_access(ld) != 0)
        return -1;
    return resolve_paths(ld, &ld->paths, &cfg->access, "paths", &cfg->paths, &cfg->paths_count);
}

/* A site's paths: its own list, else the top-level one, resolved against the site's access. */
static int resolve_site_paths(loader *ld, size_t i, oe_site_t *s, const paths_src *own)
{
    char label[48];

    if (own != NULL && own->items != NULL) {
        snprintf(label, sizeof(label), "sites[%zu].paths", i);
        return resolve_paths(ld, own, &s->access, label, &s->paths, &s->paths_count);
    }
    snprintf(label, sizeof(label), "paths (in sites[%zu])", i);
    if (!ld->cfg->sites_listed)
        snprintf(label, sizeof(label), "paths");
    return resolve_paths(ld, &ld->paths, &s->access, label, &s->paths, &s->paths_count);
}

/* The one site made from the top-level keys (no `sites` in the configuration). */
static int resolve_one_site(loader *ld)
{
    oe_config_t *cfg = ld->cfg;
    oe_site_t *s;
    char msg[OE_CONFIG_ERR_MAX], where[300];
    size_t i;
    long w;

    if ((cfg->sites = calloc(1, sizeof(*cfg->sites))) == NULL)
        return oe_config_fail(ld, "out of memory");
    cfg->sites_count = 1;
    s = &cfg->sites[0];
    for (i = 0; i < OE_CONFIG_SITE_FIELDS; i++)
        if (copy_field(s, &oe_config_site_fields[i], cfg) != 0)
            return oe_config_fail(ld, "out of memory");
    if ((s->name = default_name(&s->domains)) == NULL || (s->upstreams = calloc(1, sizeof(*s->upstreams))) == NULL)
        return oe_config_fail(ld, "out of memory");
    if (oe_config_parse_upstream(cfg->upstream, &s->upstreams[0], msg, sizeof(msg)) != 0)
        return oe_config_fail(ld, "upstream: %s", msg);
    s->upstreams_count = 1;
    if (resolve_site_paths(ld, 0, s, NULL) != 0)
        return -1;
    if ((w = wildcard_without_certificate(cfg, s)) >= 0) {
        size_t ki = (size_t)(oe_config_find_key("domains") - oe_config_keys);
        oe_config_origin(ld, ki, where, sizeof(where));
        return oe_config_fail(ld,
                              "%s: domains: wildcard name \"%.64s\" needs tls.cert_file and tls.key_file, or DNS-01 "
                              "(dns-01 in acme.challenges and an acme.dns.provider): ACME issues wildcard "
                              "certificates only over DNS-01",
                              where, s->domains.items[w]);
    }
    if (cfg->default_site_name == NULL || strcmp(cfg->default_site_name, s->name) == 0) {
        cfg->default_site = 0;
    } else if (cfg->default_site_name[0] == '\0') {
        cfg->default_site = -1;
    } else {
        top_set(ld, "default_site", where, sizeof(where));
        return oe_config_fail(ld, "%s: default_site: no site is named \"%.64s\" (the one site is \"%s\")", where,
                              cfg->default_site_name, s->name);
    }
    return 0;
}

/* Site i from its source: own keys, overrides, then what it inherits. */
static int resolve_site(loader *ld, size_t i)
{
    oe_config_t *cfg = ld->cfg;
    site_src *src = &ld->sites[i];
    oe_site_t *s = &cfg->sites[i];
    size_t ui = (size_t)(oe_config_find_key("upstream") - oe_config_keys);
    size_t cki = (size_t)(oe_config_find_key("tls.cert_file") - oe_config_keys);
    size_t kki = (size_t)(oe_config_find_key("tls.key_file") - oe_config_keys);
    char msg[OE_CONFIG_ERR_MAX];
    size_t f, j;
    long w;

    for (f = 0; f < OE_CONFIG_SITE_FIELDS; f++) {
        const struct site_field *sf = &oe_config_site_fields[f];
        size_t ki = (size_t)(oe_config_find_key(sf->path) - oe_config_keys);
        const oe_config_t *from = src->line[ki] != 0                    ? src->over
                                  : rate_group_set(sf->path, src->line) ? access_defaults()
                                  : sf->inherit                         ? cfg
                                                                        : NULL;
        if (from != NULL && copy_field(s, sf, from) != 0)
            return oe_config_fail(ld, "out of memory");
    }
    /* name */
    if (src->name != NULL) {
        if (!valid_site_name(src->name))
            return site_fail(ld, i, "name", src->name_line,
                             "invalid name \"%.64s\" (use at most %d lower-case letters, digits, '.', '_' or '-', "
                             "starting with a letter, digit or '_')",
                             src->name, OE_CONFIG_SITE_NAME_MAX);
        s->name = strdup(src->name);
    } else {
        s->name = default_name(&s->domains);
    }
    if (s->name == NULL)
        return oe_config_fail(ld, "out of memory");
    /* upstreams */
    if (src->upstreams_line != 0 && src->line[ui] != 0)
        return site_fail(ld, i, "upstream", src->line[ui], "set upstreams or upstream, not both");
    if (src->upstreams_line == 0 && src->line[ui] == 0)
        return site_fail(ld, i, NULL, src->at, "no upstreams (add upstreams: [http://host:port])");
    if (src->line[ui] != 0) {
        if ((s->upstreams = calloc(1, sizeof(*s->upstreams))) == NULL)
            return oe_config_fail(ld, "out of memory");
        if (oe_config_parse_upstream(src->over->upstream, &s->upstreams[0], msg, sizeof(msg)) != 0)
            return site_fail(ld, i, "upstream", src->line[ui], "%s", msg);
        s->upstreams_count = 1;
    } else {
        if (src->upstreams.count == 0)
            return site_fail(ld, i, "upstreams", src->upstreams_line, "the list is empty (list at least one server)");
        if ((s->upstreams = calloc(src->upstreams.count, sizeof(*s->upstreams))) == NULL)
            return oe_config_fail(ld, "out of memory");
        for (j = 0; j < src->upstreams.count; j++) {
            size_t k;
            if (oe_config_parse_upstream(src->upstreams.items[j], &s->upstreams[j], msg, sizeof(msg)) != 0)
                return site_fail(ld, i, "upstreams", src->upstream_lines[j], "%s", msg);
            s->upstreams_count = j + 1;
            for (k = 0; k < j; k++)
                if (strcmp(s->upstreams[k].url, s->upstreams[j].url) == 0)
                    return site_fail(ld, i, "upstreams", src->upstream_lines[j], "\"%s\" is listed twice",
                                     s->upstreams[j].url);
        }
    }
    /* balance, hash_key */
    if (src->balance != NULL) {
        if (strcasecmp(src->balance, "round_robin") == 0)
            s->balance = OE_BALANCE_ROUND_ROBIN;
        else if (strcasecmp(src->balance, "least_conn") == 0)
            s->balance = OE_BALANCE_LEAST_CONN;
        else if (strcasecmp(src->balance, "hash") == 0)
            s->balance = OE_BALANCE_HASH;
        else
            return site_fail(ld, i, "balance", src->balance_line,
                             "invalid value \"%.64s\" (use round_robin, least_conn or hash)", src->balance);
    }
    if (src->hash_key != NULL) {
        if (s->balance != OE_BALANCE_HASH)
            return site_fail(ld, i, "hash_key", src->hash_key_line, "hash_key needs balance: hash");
        if (parse_hash_key(s, src->hash_key, msg, sizeof(msg)) != 0)
            return site_fail(ld, i, "hash_key", src->hash_key_line, "%s", msg);
    }
    /* access, paths */
    {
        const char *bad = bad_rate(&s->access);
        if (bad != NULL) {
            size_t bl = src->line[oe_config_find_key(bad) - oe_config_keys];
            if (bl == 0)
                bl = src->line[oe_config_find_key(requests_of(bad)) - oe_config_keys];
            return site_fail(ld, i, bad, bl != 0 ? bl : src->at, "a burst needs %s (the rate it refills at)",
                             requests_of(bad));
        }
    }
    if (resolve_site_paths(ld, i, s, &src->paths) != 0)
        return -1;
    /* certificate files */
    if ((s->cert_file == NULL) != (s->key_file == NULL))
        return site_fail(ld, i, s->cert_file ? "tls.cert_file" : "tls.key_file",
                         s->cert_file ? src->line[cki] : src->line[kki],
                         "tls.cert_file and tls.key_file must be given together");
    if ((w = wildcard_without_certificate(ld->cfg, s)) >= 0)
        return site_fail(ld, i, "domains", src->line[oe_config_find_key("domains") - oe_config_keys],
                         "wildcard name \"%.64s\" needs tls.cert_file and tls.key_file, or DNS-01 (dns-01 in "
                         "acme.challenges and an acme.dns.provider): ACME issues wildcard certificates only over "
                         "DNS-01",
                         s->domains.items[w]);
    return 0;
}

/* With `sites`: builds every site, then the checks across sites. */
static int resolve_listed_sites(loader *ld)
{
    static const char *const top_only[] = {"domains", "upstream", "tls.cert_file", "tls.key_file"};
    oe_config_t *cfg = ld->cfg;
    size_t i, j, a, b, di = (size_t)(oe_config_find_key("domains") - oe_config_keys);
    char where[300];

    cfg->sites_listed = 1;
    for (i = 0; i < sizeof(top_only) / sizeof(top_only[0]); i++)
        if (top_set(ld, top_only[i], where, sizeof(where)))
            return oe_config_fail(ld, "%s: %s: not used with sites (set sites[].%s in each site)", where, top_only[i],
                                  strcmp(top_only[i], "upstream") == 0 ? "upstreams" : top_only[i]);
    if ((cfg->sites = calloc(ld->nsites, sizeof(*cfg->sites))) == NULL)
        return oe_config_fail(ld, "out of memory");
    for (i = 0; i < ld->nsites; i++) {
        cfg->sites_count = i + 1;
        if (resolve_site(ld, i) != 0)
            return -1;
    }
    for (i = 0; i < cfg->sites_count; i++) {
        const oe_site_t *s = &cfg->sites[i];
        for (a = 0; a < s->domains.count; a++)
            for (j = 0; j < i; j++)
                for (b = 0; b < cfg->sites[j].domains.count; b++)
                    if (strcmp(s->domains.items[a], cfg->sites[j].domains.items[b]) == 0)
                        return site_fail(ld, i, "domains", ld->sites[i].line[di],
                                         "\"%.64s\" is also in sites[%zu] (%s): a name belongs to one site",
                                         s->domains.items[a], j, cfg->sites[j].name);
        for (j = 0; j < i; j++)
            if (strcmp(cfg->sites[j].name, s->name) == 0)
                return site_fail(ld, i, "name", ld->sites[i].name_line ? ld->sites[i].name_line : ld->sites[i].at,
                                 "the name \"%s\" is also sites[%zu]'s (set a unique name)", s->name, j);
    }
    cfg->default_site = -1;
    if (cfg->default_site_name != NULL && cfg->default_site_name[0] != '\0' &&
        (cfg->default_site = oe_config_site_by_name(cfg, cfg->default_site_name)) < 0) {
        top_set(ld, "default_site", where, sizeof(where));
        return oe_config_fail(ld, "%s: default_site: no site is named \"%.64s\"", where, cfg->default_site_name);
    }
    for (i = 0; i < cfg->sites_count; i++)
        if (cfg->sites[i].domains.count == 0 && (int)i != cfg->default_site)
            return site_fail(ld, i, "domains", ld->sites[i].line[di] ? ld->sites[i].line[di] : ld->sites[i].at,
                             "a site without names is reached only as the default_site (list its domains, or set "
                             "default_site: %s)",
                             cfg->sites[i].name);
    /* the top-level upstream stays meaningful for code that still reads it */
    free(cfg->upstream);
    if ((cfg->upstream = strdup(cfg->sites[0].upstreams[0].url)) == NULL)
        return oe_config_fail(ld, "out of memory");
    return 0;
}

int oe_config_resolve_sites(loader *ld)
{
    oe_config_t *cfg = ld->cfg;
    char *resolved;

    if (oe_config_resolve_top_paths(ld) != 0)
        return -1;
    if ((ld->nsites > 0 ? resolve_listed_sites(ld) : resolve_one_site(ld)) != 0)
        return -1;
    /* default_site as resolved, so the printed configuration reads back the same */
    resolved = strdup(cfg->default_site >= 0 && cfg->sites != NULL && cfg->sites[cfg->default_site].name != NULL
                          ? cfg->sites[cfg->default_site].name
                          : "");
    if (resolved == NULL)
        return oe_config_fail(ld, "out of memory");
    free(cfg->default_site_name);
    cfg->default_site_name = resolved;
    return 0;
}
