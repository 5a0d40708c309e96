/*
 * keys.c — the table of every configuration key (path, type, field, default, flags, doc)
 * and the per-key validation rules. Adding a key means adding one row here (and the
 * field in config.h); the YAML reader, the environment, the defaults, the printer and
 * the reference table all follow from it.
 */
#include "config/internal.h"
#include "log/log.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int is_ip(const char *s)
{
    unsigned char bin[16];

    return inet_pton(AF_INET, s, bin) == 1 || inet_pton(AF_INET6, s, bin) == 1;
}

/* A lower-case DNS name: labels of [a-z0-9-], 1..63 long, no leading/trailing '-'. */
static int is_dns_name(const char *s)
{
    size_t total = strlen(s), label = 0;
    const char *p, *last = s;
    int digits_only = 1;

    if (total == 0 || total > 253)
        return 0;
    for (p = s;; p++) {
        if (*p == '.' || *p == '\0') {
            if (label == 0 || label > 63 || p[-1] == '-' || *last == '-')
                return 0;
            if (*p == '\0')
                break;
            label = 0;
            last = p + 1;
            digits_only = 1;
            continue;
        }
        if (!islower((unsigned char)*p) && !isdigit((unsigned char)*p) && *p != '-')
            return 0;
        if (!isdigit((unsigned char)*p))
            digits_only = 0;
        label++;
    }
    return !digits_only; /* "1.2.3.400" is a bad address, not a name */
}

static int check_domains(oe_config_t *cfg, const keydef *k, char *msg, size_t len, size_t *bad)
{
    oe_strlist_t *l = oe_config_field(cfg, k);
    size_t i, j;

    for (i = 0; i < l->count; i++) {
        char *d = l->items[i], *p;
        size_t dl;
        *bad = i;
        for (p = d; *p != '\0'; p++)
            *p = (char)tolower((unsigned char)*p);
        dl = strlen(d);
        if (dl > 1 && d[dl - 1] == '.')
            d[dl - 1] = '\0';
        if (strchr(d, '*') != NULL) {
            /* only "*." + a name; whether DNS-01 is configured is checked once every key is read */
            if (d[0] != '*' || d[1] != '.' || strchr(d + 1, '*') != NULL || !is_dns_name(d + 2) ||
                strchr(d + 2, '.') == NULL) {
                snprintf(msg, len,
                         "invalid wildcard name \"%.64s\" (a wildcard is \"*.\" followed by a name with at least two "
                         "labels, e.g. *.example.com)",
                         d);
                return -1;
            }
        } else if (!is_ip(d) && !is_dns_name(d)) {
            snprintf(msg, len, "invalid name \"%.64s\" (use a DNS name like example.com or an IP address)", d);
            return -1;
        }
        for (j = 0; j < i; j++) {
            if (strcmp(l->items[j], d) == 0) {
                snprintf(msg, len, "\"%.64s\" is listed twice", d);
                return -1;
            }
        }
    }
    *bad = SIZE_MAX;
    return 0;
}

static int check_upstream(oe_config_t *cfg, const keydef *k, char *msg, size_t len, size_t *bad)
{
    oe_upstream_addr_t u;

    (void)bad;
    if (oe_config_parse_upstream(*(char **)oe_config_field(cfg, k), &u, msg, len) != 0)
        return -1;
    oe_config_upstream_free(&u);
    return 0;
}

static int listen_addr(const char *v, int may_be_empty, char *msg, size_t len)
{
    char host[256];
    uint16_t port;

    if (*v == '\0' && may_be_empty)
        return 0;
    if (oe_config_split_hostport(v, host, sizeof(host), &port) != 0) {
        snprintf(msg, len, "invalid address \"%.64s\" (use e.g. :443, 0.0.0.0:443, [::]:443, 127.0.0.1:8443%s)", v,
                 may_be_empty ? ", or \"\" to disable" : "");
        return -1;
    }
    return 0;
}

static int check_listen(oe_config_t *cfg, const keydef *k, char *msg, size_t len, size_t *bad)
{
    (void)bad;
    return listen_addr(*(char **)oe_config_field(cfg, k), 0, msg, len);
}

static int check_listen_opt(oe_config_t *cfg, const keydef *k, char *msg, size_t len, size_t *bad)
{
    (void)bad;
    return listen_addr(*(char **)oe_config_field(cfg, k), 1, msg, len);
}

static int check_nonempty(oe_config_t *cfg, const keydef *k, char *msg, size_t len, size_t *bad)
{
    (void)bad;
    if (**(char **)oe_config_field(cfg, k) == '\0') {
        snprintf(msg, len, "must not be empty");
        return -1;
    }
    return 0;
}

/* An HTTP header name (RFC 9110 token). */
static int check_header(oe_config_t *cfg, const keydef *k, char *msg, size_t len, size_t *bad)
{
    const char *h = *(char **)oe_config_field(cfg, k), *p;

    (void)bad;
    if (h == NULL)
        return 0;
    for (p = h; *p != '\0'; p++) {
        if (!isalnum((unsigned char)*p) && strchr("!#$%&'*+-.^_`|~", *p) == NULL) {
            snprintf(msg, len, "invalid header name \"%.64s\"", h);
            return -1;
        }
    }
    return 0;
}

static int check_path(oe_config_t *cfg, const keydef *k, char *msg, size_t len, size_t *bad)
{
    const char *p = *(char **)oe_config_field(cfg, k);

    (void)bad;
    if (p[0] != '/') {
        snprintf(msg, len, "\"%.64s\" must start with '/'", p);
        return -1;
    }
    return 0;
}

static int check_paths(oe_config_t *cfg, const keydef *k, char *msg, size_t len, size_t *bad)
{
    oe_strlist_t *l = oe_config_field(cfg, k);
    size_t i;

    for (i = 0; i < l->count; i++) {
        if (l->items[i][0] != '/') {
            *bad = i;
            snprintf(msg, len, "\"%.64s\" must start with '/'", l->items[i]);
            return -1;
        }
    }
    return 0;
}

/* compress.types: media types ("text/html"), a type with any subtype ("text/" + "*") or a
 * structured-syntax suffix ("+json"); lower-cased. */
static int check_media_types(oe_config_t *cfg, const keydef *k, char *msg, size_t len, size_t *bad)
{
    oe_strlist_t *l = oe_config_field(cfg, k);
    size_t i;
    char *p;

    for (i = 0; i < l->count; i++) {
        const char *t = l->items[i], *slash = strchr(t, '/');
        int ok = t[0] == '+' ? t[1] != '\0' : slash != NULL && slash != t && slash[1] != '\0';
        for (p = l->items[i]; ok && *p != '\0'; p++) {
            *p = (char)tolower((unsigned char)*p);
            ok = isalnum((unsigned char)*p) || strchr("/+-.*_", *p) != NULL;
        }
        if (!ok) {
            *bad = i;
            snprintf(msg, len, "\"%.64s\" is not a media type (text/html), type/* or +suffix", l->items[i]);
            return -1;
        }
    }
    return 0;
}

/* Resolves the CA names to their directory URL, then checks the URL. */
static int check_directory(oe_config_t *cfg, const keydef *k, char *msg, size_t len, size_t *bad)
{
    static const struct {
        const char *name, *url;
    } cas[] = {
        {"letsencrypt", "https://acme-v02.api.letsencrypt.org/directory"},
        {"letsencrypt-staging", "https://acme-staging-v02.api.letsencrypt.org/directory"},
        {"zerossl", "https://acme.zerossl.com/v2/DV90"},
    };
    char **dir = oe_config_field(cfg, k);
    const char *u = *dir, *auth, *end;
    size_t i;

    (void)bad;
    for (i = 0; i < sizeof(cas) / sizeof(cas[0]); i++) {
        if (strcasecmp(u, cas[i].name) == 0) {
            char *url = strdup(cas[i].url);
            if (url == NULL)
                return oe_config_nomem(msg, len);
            free(*dir);
            *dir = url;
            return 0;
        }
    }
    if (strncasecmp(u, "http://", 7) == 0) { /* RFC 8555 §6.1 */
        snprintf(msg, len,
                 "\"%.64s\": ACME speaks HTTPS only (RFC 8555 section 6.1); a local test CA such as pebble serves "
                 "HTTPS: give its CA certificate in acme.ca_file",
                 u);
        return -1;
    }
    if (strncasecmp(u, "https://", 8) != 0) {
        snprintf(msg, len,
                 "invalid directory \"%.64s\" (use letsencrypt, letsencrypt-staging, zerossl or an https:// URL)", u);
        return -1;
    }
    auth = u + 8;
    end = auth + strcspn(auth, "/?#");
    if (end == auth) {
        snprintf(msg, len, "invalid directory URL \"%.64s\" (no host)", u);
        return -1;
    }
    return 0;
}

static int check_email(oe_config_t *cfg, const keydef *k, char *msg, size_t len, size_t *bad)
{
    const char *e = *(char **)oe_config_field(cfg, k), *at;

    (void)bad;
    if (e == NULL)
        return 0;
    at = strchr(e, '@');
    if (at == NULL || at == e || at[1] == '\0' || strchr(at + 1, '@') != NULL || strpbrk(e, " ,;<>") != NULL) {
        snprintf(msg, len, "invalid address \"%.64s\" (use e.g. admin@example.com)", e);
        return -1;
    }
    return 0;
}

static int check_challenges(oe_config_t *cfg, const keydef *k, char *msg, size_t len, size_t *bad)
{
    oe_strlist_t *l = oe_config_field(cfg, k);
    size_t i, j;

    if (l->count == 0) {
        snprintf(msg, len, "at least one challenge type is needed (tls-alpn-01, http-01, dns-01)");
        return -1;
    }
    for (i = 0; i < l->count; i++) {
        *bad = i;
        if (strcmp(l->items[i], "tls-alpn-01") != 0 && strcmp(l->items[i], "http-01") != 0 &&
            strcmp(l->items[i], "dns-01") != 0) {
            snprintf(msg, len, "invalid challenge type \"%.64s\" (use tls-alpn-01, http-01 or dns-01)", l->items[i]);
            return -1;
        }
        for (j = 0; j < i; j++) {
            if (strcmp(l->items[i], l->items[j]) == 0) {
                snprintf(msg, len, "\"%s\" is listed twice", l->items[i]);
                return -1;
            }
        }
    }
    *bad = SIZE_MAX;
    return 0;
}

/* acme.dns.rfc2136.server: "host", "host:port", "ip", "[v6]:port". */
static int check_dns_server(oe_config_t *cfg, const keydef *k, char *msg, size_t len, size_t *bad)
{
    const char *v = *(char **)oe_config_field(cfg, k);
    char host[256];
    uint16_t port;

    (void)bad;
    if (v != NULL && (oe_config_split_hostport_opt(v, host, sizeof(host), &port, 53) != 0 || host[0] == '\0')) {
        snprintf(msg, len, "invalid DNS server \"%.64s\" (use host:port, e.g. ns1.example.com:53 or 192.0.2.1)", v);
        return -1;
    }
    return 0;
}

/* acme.dns.rfc2136.key_name: a DNS name as the server spells it ("acme-key", "acme.key."). */
static int check_key_name(oe_config_t *cfg, const keydef *k, char *msg, size_t len, size_t *bad)
{
    const char *v = *(char **)oe_config_field(cfg, k), *p;

    (void)bad;
    if (v == NULL)
        return 0;
    for (p = v; *p != '\0'; p++)
        if (!isalnum((unsigned char)*p) && strchr("-_.", *p) == NULL)
            break;
    if (*p != '\0' || strlen(v) > 253 || strstr(v, "..") != NULL || v[0] == '.') {
        snprintf(msg, len, "invalid TSIG key name \"%.64s\" (letters, digits, '-', '_' and '.')", v);
        return -1;
    }
    return 0;
}

/* acme.dns.rfc2136.key_secret: standard base64 (padding optional), not empty. */
static int check_base64(oe_config_t *cfg, const keydef *k, char *msg, size_t len, size_t *bad)
{
    const char *v = *(char **)oe_config_field(cfg, k);
    size_t n, pad = 0, i;

    (void)bad;
    if (v == NULL)
        return 0;
    n = strlen(v);
    while (n > 0 && v[n - 1] == '=' && pad < 2)
        n--, pad++;
    for (i = 0; i < n; i++)
        if (!isalnum((unsigned char)v[i]) && v[i] != '+' && v[i] != '/')
            break;
    if (n == 0 || i < n || n % 4 == 1 || (pad > 0 && (n + pad) % 4 != 0)) {
        snprintf(msg, len, "the TSIG secret is not base64 (as in the server's key file, e.g. from tsig-keygen)");
        return -1;
    }
    return 0;
}

/* cluster.redis: redis://[user:password@]host:port[/db]. rediss:// is a known limit (hiredis 0.14 has no TLS). */
static int check_redis_url(oe_config_t *cfg, const keydef *k, char *msg, size_t len, size_t *bad)
{
    const char *u = *(char **)oe_config_field(cfg, k), *p;

    (void)bad;
    if (u == NULL)
        return 0;
    for (p = u; *p; p++) {
        if ((unsigned char)*p < 0x21 || *p == 0x7f) {
            snprintf(msg, len, "the Redis URL has a space or control character");
            return -1;
        }
    }
    if (strncasecmp(u, "rediss://", 9) == 0) {
        snprintf(msg, len,
                 "rediss:// (TLS to Redis) is a known limit: Debian's hiredis 0.14 has no TLS. Reach Redis over a "
                 "private network with redis://, or through a local TLS tunnel (stunnel, spiped) as "
                 "redis://127.0.0.1:PORT");
        return -1;
    }
    if (strncasecmp(u, "redis://", 8) != 0) {
        snprintf(msg, len, "use redis://[user:password@]host:port[/db] (the Redis URL of OTT's Redis)");
        return -1;
    }
    return oe_config_parse_redis_url(u, NULL, msg, len);
}

/* cluster.key_prefix and cluster.node_id: printable, no spaces, at most 64 bytes. */
static int check_cluster_word(oe_config_t *cfg, const keydef *k, char *msg, size_t len, size_t *bad)
{
    const char *s = *(char **)oe_config_field(cfg, k), *p;

    (void)bad;
    if (s == NULL)
        return 0;
    if (*s == '\0' || strlen(s) > 64) {
        snprintf(msg, len, "must be 1 to 64 characters");
        return -1;
    }
    for (p = s; *p; p++) {
        if (!isalnum((unsigned char)*p) && strchr(":._-", *p) == NULL) {
            snprintf(msg, len, "\"%.64s\": use letters, digits and : . _ - only", s);
            return -1;
        }
    }
    return 0;
}

/* cluster.encryption_key_file: a readable file of 32 bytes (raw, or 64 hex digits, or base64). */
static int check_key_file(oe_config_t *cfg, const keydef *k, char *msg, size_t len, size_t *bad)
{
    const char *f = *(char **)oe_config_field(cfg, k);
    unsigned char key[32];

    (void)bad;
    if (f == NULL)
        return 0;
    return oe_config_read_key32(f, key, msg, len);
}

/* acme.dns.resolvers: IP addresses with an optional port ("192.0.2.53", "127.0.0.1:5353", "[::1]:53"). */
static int check_resolvers(oe_config_t *cfg, const keydef *k, char *msg, size_t len, size_t *bad)
{
    oe_strlist_t *l = oe_config_field(cfg, k);
    size_t i;

    for (i = 0; i < l->count; i++) {
        char host[256];
        uint16_t port;
        if (oe_config_split_hostport_opt(l->items[i], host, sizeof(host), &port, 53) != 0 || !is_ip(host)) {
            *bad = i;
            snprintf(msg, len, "invalid resolver \"%.64s\" (an IP address with an optional port, e.g. 192.0.2.53:53)",
                     l->items[i]);
            return -1;
        }
    }
    *bad = SIZE_MAX;
    return 0;
}

/* ---- the table ------------------------------------------------------------------------ */

static const struct enumval log_formats[] = {{"text", OE_LOG_FORMAT_TEXT}, {"json", OE_LOG_FORMAT_JSON}, {NULL, 0}};
static const struct enumval log_levels[] = {
    {"debug", OE_LOG_DEBUG}, {"info", OE_LOG_INFO}, {"warn", OE_LOG_WARN}, {"error", OE_LOG_ERROR}, {NULL, 0}};
static const struct enumval key_types[] = {
    {"ec256", OE_KEY_EC256}, {"ec384", OE_KEY_EC384}, {"rsa2048", OE_KEY_RSA2048}, {NULL, 0}};
static const struct enumval dns_providers[] = {
    {"none", OE_DNS_NONE}, {"rfc2136", OE_DNS_RFC2136}, {"exec", OE_DNS_EXEC}, {"", OE_DNS_NONE}, {NULL, 0}};
static const struct enumval tsig_algorithms[] = {
    {"hmac-sha256", OE_TSIG_HMAC_SHA256}, {"hmac-sha512", OE_TSIG_HMAC_SHA512}, {NULL, 0}};
static const struct enumval tristates[] = {{"auto", OE_AUTO}, {"true", OE_ON}, {"false", OE_OFF}, {"yes", OE_ON},
                                           {"no", OE_OFF},    {"on", OE_ON},   {"off", OE_OFF},   {"1", OE_ON},
                                           {"0", OE_OFF},     {NULL, 0}};

#define OFF(f) offsetof(oe_config_t, f)

/* Sized by the initialiser: a count that differs from OE_CONFIG_NKEYS fails to compile. */
const keydef oe_config_keys[] = {
    {"domains", T_LIST, OFF(domains), 0, "", 0, NULL, 0, 0, check_domains,
     "Names served and put on the certificate: DNS names (lower-cased) or IP addresses. A wildcard such as "
     "`*.example.com` (one label) needs `tls.cert_file`, or DNS-01 (`dns-01` in `acme.challenges` and an "
     "`acme.dns.provider`): ACME issues wildcards only over DNS-01."},
    {"upstream", T_STR, OFF(upstream), 0, "http://127.0.0.1:8080", 0, NULL, 0, 0, check_upstream,
     "OTT's address, `http://host:port`. HTTPS upstreams are not supported yet."},
    {"threads", T_INT, OFF(threads), 0, NULL, F_CPUS, NULL, 1, 64, NULL, "Worker threads, 1 to 64."},
    {"state_dir", T_STR, OFF(state_dir), 0, "/var/lib/ott-edge", 0, NULL, 0, 0, check_nonempty,
     "Directory for the ACME account, certificates and renewal state."},
    {"hsts", T_STR, OFF(hsts), 0, "max-age=31536000", 0, NULL, 0, 0, NULL,
     "`Strict-Transport-Security` value on HTTPS responses. `\"\"` disables it."},
    {"user", T_STR, OFF(user), 0, "", 0, NULL, 0, 0, NULL,
     "When started as root, switch to this user after binding the ports. `\"\"` keeps the current user."},
    {"default_site", T_STR, OFF(default_site_name), 0, NULL, 0, NULL, 0, 0, NULL,
     "The site (its `name`) that serves a host name no site lists. Unset: none with `sites`, the one site "
     "without. `\"\"`: none (unknown names get 404)."},

    {"listen.https", T_STR, OFF(listen.https), 0, ":443", F_ADDRESS, NULL, 0, 0, check_listen, "HTTPS listener."},
    {"listen.http", T_STR, OFF(listen.http), 0, ":80", F_ADDRESS, NULL, 0, 0, check_listen_opt,
     "HTTP listener for ACME HTTP-01 and redirects to HTTPS. `\"\"` disables it."},
    {"listen.admin", T_STR, OFF(listen.admin), 0, ":9901", F_ADDRESS, NULL, 0, 0, check_listen_opt,
     "Admin listener for the status page (`/`, `/status.json`), `/livez`, `/readyz` and `/metrics`. `\"\"` disables "
     "it."},

    {"tls.cert_file", T_STR, OFF(tls.cert_file), 0, NULL, F_OPTIONAL, NULL, 0, 0, NULL,
     "PEM certificate chain to serve instead of an ACME certificate. Set it together with `tls.key_file`."},
    {"tls.key_file", T_STR, OFF(tls.key_file), 0, NULL, F_OPTIONAL, NULL, 0, 0, NULL,
     "PEM private key for `tls.cert_file`."},

    {"tls.session_lifetime", T_DURATION, OFF(tls.session_lifetime_ms), 0, "18h", 0, NULL, 0, 7 * DAY, NULL,
     "How long a TLS session can be resumed (returning browsers skip the full handshake). The ticket keys rotate "
     "every third of it, in memory only. `0` turns resumption off."},

    {"proxy.trusted_proxies", T_CIDRS, OFF(proxy.trusted_proxies), OFF(proxy.trusted_proxies_count), "", 0, NULL, 0, 0,
     NULL,
     "Peers whose `X-Forwarded-*` headers and `real_ip_header` are trusted. These headers are discarded when they come "
     "from any other peer."},
    {"proxy.real_ip_header", T_STR, OFF(proxy.real_ip_header), 0, NULL, F_OPTIONAL, NULL, 0, 0, check_header,
     "Header that carries the client IP, such as `CF-Connecting-IP`. It is honoured only from trusted proxies."},
    {"proxy.websocket_idle_timeout", T_DURATION, OFF(proxy.websocket_idle_timeout_ms), 0, "7d", 0, NULL, SEC, TIMER_MAX,
     NULL, "Closes a WebSocket after this long with no traffic. The range is 1s to 24d."},
    {"proxy.upstream_timeout", T_DURATION, OFF(proxy.upstream_timeout_ms), 0, "60s", 0, NULL, 1, TIMER_MAX, NULL,
     "Returns 504 if the upstream has not sent a response head by then."},
    {"proxy.upstream_keepalive", T_DURATION, OFF(proxy.upstream_keepalive_ms), 0, "2s", 0, NULL, 0, TIMER_MAX, NULL,
     "How long idle upstream connections are kept. Keep it below Node's 5s. `0` disables keep-alive."},
    {"proxy.max_body_size", T_SIZE, OFF(proxy.max_body_size), 0, "16MiB", 0, NULL, 1, 0, NULL,
     "Largest request body accepted. Larger bodies get 413."},
    {"proxy.block_paths", T_LIST, OFF(proxy.block_paths), 0, "/api/status/metrics", 0, NULL, 0, 0, check_paths,
     "Path prefixes that get 404 at the edge. Each must start with `/`."},
    {"proxy.health_path", T_STR, OFF(proxy.health_path), 0, "/api/status", 0, NULL, 0, 0, check_path,
     "Upstream path polled to decide `/readyz`."},
    {"proxy.health_interval", T_DURATION, OFF(proxy.health_interval_ms), 0, "5s", 0, NULL, 100, TIMER_MAX, NULL,
     "How often `proxy.health_path` is polled (at least 100ms)."},
    {"proxy.health_rise", T_INT, OFF(proxy.health_rise), 0, "2", 0, NULL, 1, 100, NULL,
     "Good health checks in a row that take an ejected upstream server back."},
    {"proxy.health_fall", T_INT, OFF(proxy.health_fall), 0, "3", 0, NULL, 1, 100, NULL,
     "Failed health checks or requests in a row that eject an upstream server."},

    {"proxy.tcp_keepalive", T_BOOL, OFF(proxy.tcp_keepalive), 0, "true", 0, NULL, 0, 0, NULL,
     "TCP keepalive probes on client and upstream connections, so that NAT and firewall mappings of idle WebSockets "
     "stay open (OTT's nginx guide turns on `proxy_socket_keepalive` for the same reason)."},
    {"proxy.tcp_keepalive_idle", T_DURATION, OFF(proxy.tcp_keepalive_idle_ms), 0, "60s", 0, NULL, SEC, 2 * HOUR, NULL,
     "Idle time before the first keepalive probe (1s to 2h)."},
    {"proxy.tcp_keepalive_interval", T_DURATION, OFF(proxy.tcp_keepalive_interval_ms), 0, "10s", 0, NULL, SEC, HOUR,
     NULL, "Time between keepalive probes (1s to 1h)."},
    {"proxy.tcp_keepalive_count", T_INT, OFF(proxy.tcp_keepalive_count), 0, "6", 0, NULL, 1, 100, NULL,
     "Unanswered probes before the connection is dropped (1 to 100)."},

    {"client.request_timeout", T_DURATION, OFF(client.request_timeout_ms), 0, "10s", 0, NULL, 1, TIMER_MAX, NULL,
     "HTTP/1 timeout for the request head and for keep-alive idle time."},
    {"client.idle_timeout", T_DURATION, OFF(client.idle_timeout_ms), 0, "120s", 0, NULL, 1, TIMER_MAX, NULL,
     "HTTP/2 connection idle timeout."},
    {"client.handshake_timeout", T_DURATION, OFF(client.handshake_timeout_ms), 0, "10s", 0, NULL, 1, TIMER_MAX, NULL,
     "TLS handshake timeout."},

    {"log.format", T_ENUM, OFF(log.format), 0, "text", 0, log_formats, 0, 0, NULL, "Log line format on stderr."},
    {"log.access", T_BOOL, OFF(log.access), 0, "false", 0, NULL, 0, 0, NULL, "Writes one access log line per request."},
    {"log.level", T_ENUM, OFF(log.level), 0, "info", 0, log_levels, 0, 0, NULL, "Lowest level that is logged."},

    {"shutdown.delay", T_DURATION, OFF(shutdown.delay_ms), 0, "5s", 0, NULL, 0, HOUR, NULL,
     "After SIGTERM, keeps serving this long with `/readyz` returning 503, then stops accepting connections. At most "
     "1h."},
    {"shutdown.grace", T_DURATION, OFF(shutdown.grace_ms), 0, "25s", 0, NULL, 0, HOUR, NULL,
     "After that, lets in-flight requests finish for up to this long. At most 1h."},
    {"shutdown.upgrade_grace", T_DURATION, OFF(shutdown.upgrade_grace_ms), 0, "1h", 0, NULL, 0, TIMER_MAX, NULL,
     "After a binary upgrade (SIGUSR2) the old process keeps its open connections, WebSockets included, for up to "
     "this long, then ends the WebSockets left with a 1001 close frame (clients reconnect to the new process)."},

    {"compress.enabled", T_BOOL, OFF(compress.enabled), 0, "true", 0, NULL, 0, 0, NULL,
     "Compresses responses (brotli or gzip, from `Accept-Encoding`) whose type is in `compress.types`."},
    {"compress.types", T_LIST, OFF(compress.types), 0,
     "text/*,application/javascript,application/json,application/xml,application/wasm,image/svg+xml,+json,+xml", 0,
     NULL, 0, 0, check_media_types,
     "Media types to compress: `type/subtype`, `type/*` or a `+suffix` such as `+json`. Images, video and woff2 "
     "fonts are compressed already."},
    {"compress.min_size", T_SIZE, OFF(compress.min_size), 0, "1KiB", 0, NULL, 0, 0, NULL,
     "Bodies smaller than this are sent uncompressed."},
    {"compress.level", T_INT, OFF(compress.level), 0, "5", 0, NULL, 1, 9, NULL,
     "Compression level from 1 to 9, used as the gzip level and the brotli quality."},
    {"cache.enabled", T_BOOL, OFF(cache.enabled), 0, "true", 0, NULL, 0, 0, NULL,
     "Keeps responses the upstream marks cacheable (`Cache-Control: public`, `max-age`, `s-maxage`, `Expires`) in "
     "memory and answers repeats from there."},
    {"cache.max_size", T_SIZE, OFF(cache.max_size), 0, "64MiB", 0, NULL, 64 * 1024, 0, NULL,
     "Memory for cached responses. Least recently used entries are evicted beyond it."},
    {"cache.max_object", T_SIZE, OFF(cache.max_object), 0, "8MiB", 0, NULL, 1, 0, NULL,
     "Largest response body that is cached. Larger responses are passed through."},
    {"cache.lock_timeout", T_DURATION, OFF(cache.lock_timeout_ms), 0, "1s", 0, NULL, 0, 60 * SEC, NULL,
     "How long a request waits for an identical one already fetching the same URL before going upstream itself "
     "(`0`: as long as that fetch takes)."},

    {"acme.enabled", T_ENUM, OFF(acme.enabled), 0, "auto", 0, tristates, 0, 0, NULL,
     "`auto` turns ACME on when `domains` is set and `tls.cert_file` is not. `true` requires `domains`."},
    {"acme.directory", T_STR, OFF(acme.directory), 0, "letsencrypt", 0, NULL, 0, 0, check_directory,
     "One of `letsencrypt`, `letsencrypt-staging` or `zerossl`, or an `https://` directory URL (ACME is HTTPS "
     "only; for a private CA give its certificate in `acme.ca_file`)."},
    {"acme.email", T_STR, OFF(acme.email), 0, NULL, F_OPTIONAL, NULL, 0, 0, check_email,
     "Contact address registered with the CA."},
    {"acme.ca_file", T_STR, OFF(acme.ca_file), 0, NULL, F_OPTIONAL, NULL, 0, 0, NULL,
     "PEM bundle to trust for the ACME server, for private CAs and tests. When unset, the system trust store is used."},
    {"acme.eab.kid", T_STR, OFF(acme.eab_kid), 0, NULL, F_OPTIONAL, NULL, 0, 0, NULL,
     "External Account Binding key ID. Set it together with `acme.eab.hmac_key`."},
    {"acme.eab.hmac_key", T_STR, OFF(acme.eab_hmac_key), 0, NULL, F_OPTIONAL | F_SECRET, NULL, 0, 0, NULL,
     "External Account Binding HMAC key (base64url). Prefer `OTT_EDGE_ACME_EAB_HMAC_KEY_FILE`."},
    {"acme.challenges", T_LIST, OFF(acme.challenges), 0, "tls-alpn-01,http-01", 0, NULL, 0, 0, check_challenges,
     "Challenge types in order of preference: `tls-alpn-01`, `http-01`, `dns-01`. If one fails, the next is tried."},
    {"acme.key_type", T_ENUM, OFF(acme.key_type), 0, "ec256", 0, key_types, 0, 0, NULL, "Key type of the certificate."},
    {"acme.renew_before", T_DURATION, OFF(acme.renew_before_ms), 0, "0", 0, NULL, 0, 365 * DAY, NULL,
     "Renew this long before expiry. `0` renews when one third of the lifetime remains."},
    {"acme.retry_base", T_DURATION, OFF(acme.retry_base_ms), 0, "1m", 0, NULL, 100, DAY, NULL,
     "Delay before the first retry after a failed attempt; it doubles (with jitter) up to one day."},
    {"acme.preferred_chain", T_STR, OFF(acme.preferred_chain), 0, NULL, F_OPTIONAL, NULL, 0, 0, NULL,
     "Issuer CN of the alternate chain to prefer, such as `ISRG Root X1`. By default the CA's default chain is used."},
    {"acme.dns.provider", T_ENUM, OFF(acme.dns.provider), 0, "none", 0, dns_providers, 0, 0, NULL,
     "How DNS-01 records are written: `rfc2136` (dynamic DNS update signed with TSIG) or `exec` (your program). "
     "Needed for `dns-01` in `acme.challenges`."},
    {"acme.dns.rfc2136.server", T_STR, OFF(acme.dns.rfc2136.server), 0, NULL, F_OPTIONAL, NULL, 0, 0, check_dns_server,
     "DNS server that accepts the updates (the zone's primary), `host:port`; the port defaults to 53."},
    {"acme.dns.rfc2136.key_name", T_STR, OFF(acme.dns.rfc2136.key_name), 0, NULL, F_OPTIONAL, NULL, 0, 0,
     check_key_name,
     "TSIG key name as the DNS server knows it. Set it together with `acme.dns.rfc2136.key_secret`; without both, "
     "updates are sent unsigned."},
    {"acme.dns.rfc2136.key_algorithm", T_ENUM, OFF(acme.dns.rfc2136.key_algorithm), 0, "hmac-sha256", 0,
     tsig_algorithms, 0, 0, NULL, "TSIG algorithm of the key."},
    {"acme.dns.rfc2136.key_secret", T_STR, OFF(acme.dns.rfc2136.key_secret), 0, NULL, F_OPTIONAL | F_SECRET, NULL, 0, 0,
     check_base64, "TSIG secret (base64). Prefer `OTT_EDGE_ACME_DNS_RFC2136_KEY_SECRET_FILE`."},
    {"acme.dns.exec.command", T_STR, OFF(acme.dns.exec.command), 0, NULL, F_OPTIONAL, NULL, 0, 0, NULL,
     "Program run as `COMMAND present FQDN VALUE` and `COMMAND cleanup FQDN VALUE` to write and remove the TXT "
     "record (lego's `exec` interface). Exit status 0 means done; its output is logged."},
    {"acme.dns.resolvers", T_LIST, OFF(acme.dns.resolvers), 0, "", 0, NULL, 0, 0, check_resolvers,
     "DNS servers (`ip` or `ip:port`) for the DNS-01 lookups (CNAME, SOA) and the propagation check. Empty: the "
     "system resolver looks up, and every authoritative name server of the zone is checked."},
    {"acme.dns_propagation_timeout", T_DURATION, OFF(acme.dns_propagation_timeout_ms), 0, "2m", 0, NULL, SEC, HOUR,
     NULL,
     "How long to wait until every name server answers a new DNS-01 record before giving up. Also the longest one "
     "run of `acme.dns.exec.command` may take."},

    {"access.allow", T_CIDRS, OFF(access.allow), OFF(access.allow_count), "", 0, NULL, 0, 0, NULL,
     "Only clients in these ranges are served (the others get 403). `[]`: everyone not in `access.deny`. The client "
     "is the address the `proxy.trusted_proxies` rules give (a trusted proxy's `X-Forwarded-For`, else the peer)."},
    {"access.deny", T_CIDRS, OFF(access.deny), OFF(access.deny_count), "", 0, NULL, 0, 0, NULL,
     "Clients in these ranges get 403, even when `access.allow` lists them."},
    {"access.basic_auth", T_STR, OFF(access.basic_auth), 0, NULL, F_OPTIONAL, NULL, 0, 0, NULL,
     "An htpasswd file (`user:hash` lines: bcrypt, SHA-512-crypt or yescrypt, e.g. from `htpasswd -B` or `mkpasswd "
     "-m bcrypt`): requests need one of its users (HTTP basic authentication, else 401). Re-read on `SIGHUP`. `\"\"`: "
     "none."},
    {"access.pass_credentials", T_BOOL, OFF(access.pass_credentials), 0, "false", 0, NULL, 0, 0, NULL,
     "Sends the `Authorization` header on to the upstream after basic authentication (by default it is removed)."},
    {"access.rate.requests", T_INT, OFF(access.rate.requests), 0, "0", 0, NULL, 0, 1000000, NULL,
     "Requests a client may make per `access.rate.per` (a token bucket per client; over it: 429 with "
     "`Retry-After`). `0`: no limit. A rate is one value: a site or paths entry that sets any of its keys replaces "
     "the whole rate (the keys it leaves out take their defaults)."},
    {"access.rate.per", T_DURATION, OFF(access.rate.per_ms), 0, "1s", 0, NULL, 1, DAY, NULL,
     "The period of `access.rate.requests` (1ms to 1d)."},
    {"access.rate.burst", T_INT, OFF(access.rate.burst), 0, "0", 0, NULL, 0, 1000000, NULL,
     "Requests a client may make at once, from a full bucket. `0`: `access.rate.requests`."},
    {"access.websocket_rate.requests", T_INT, OFF(access.websocket_rate.requests), 0, "0", 0, NULL, 0, 1000000, NULL,
     "WebSocket upgrades a client may make per `access.websocket_rate.per`, in a bucket of their own (upgrades "
     "then do not count in `access.rate`). `0`: upgrades count as requests."},
    {"access.websocket_rate.per", T_DURATION, OFF(access.websocket_rate.per_ms), 0, "1s", 0, NULL, 1, DAY, NULL,
     "The period of `access.websocket_rate.requests` (1ms to 1d)."},
    {"access.websocket_rate.burst", T_INT, OFF(access.websocket_rate.burst), 0, "0", 0, NULL, 0, 1000000, NULL,
     "WebSocket upgrades a client may make at once. `0`: `access.websocket_rate.requests`."},
    {"access.max_connections", T_INT, OFF(access.max_connections), 0, "0", 0, NULL, 0, 1000000, NULL,
     "Open connections per client address. At the top level, connections beyond it are closed at accept, before "
     "TLS; in a site or a path, the client's requests there get 429. Trusted proxies are not counted. `0`: no limit."},
    {"access.max_websockets", T_INT, OFF(access.max_websockets), 0, "0", 0, NULL, 0, 1000000, NULL,
     "Open WebSockets per client; an upgrade beyond it gets 429 before it reaches the upstream. `0`: no limit."},
    {"access.ipv6_prefix", T_INT, OFF(access_ipv6_prefix), 0, "64", 0, NULL, 16, 128, NULL,
     "IPv6 clients are counted by this prefix (one `/64` is usually one customer). Top level only."},
    {"admin.allow", T_CIDRS, OFF(admin.allow), OFF(admin.allow_count), "", 0, NULL, 0, 0, NULL,
     "Peers allowed on the admin listener's status page, `/status.json` and `/metrics` (others get 403). `[]`: "
     "any. `/livez` and `/readyz` stay open."},
    {"admin.token_file", T_STR, OFF(admin.token_file), 0, NULL, F_OPTIONAL, NULL, 0, 0, NULL,
     "A file holding a bearer token that `/status.json` and `/metrics` then require (`Authorization: Bearer "
     "TOKEN`; the status page asks for it). Re-read on `SIGHUP`."},

    {"cluster.redis", T_STR, OFF(cluster.redis), 0, NULL, F_OPTIONAL | F_SECRET, NULL, 0, 0, check_redis_url,
     "Several replicas: `redis://[user:password@]host:port[/db]` of a Redis (OTT's) that the replicas share the ACME "
     "account, certificates, challenges and locks through (see Several replicas). Unset: one node, `state_dir` "
     "only. Prefer `OTT_EDGE_CLUSTER_REDIS_FILE` when it holds a password. `rediss://` (TLS) is not supported."},
    {"cluster.key_prefix", T_STR, OFF(cluster.key_prefix), 0, "ott-edge:", 0, NULL, 0, 0, check_cluster_word,
     "Prefix of every Redis key and channel ott-edge uses; it never touches other keys (give its Redis user "
     "`~ott-edge:*`)."},
    {"cluster.lock_ttl", T_DURATION, OFF(cluster.lock_ttl_ms), 0, "60s", 0, NULL, SEC, HOUR, NULL,
     "Lifetime of a certificate's issuance lock; the holder extends it every third of it, so a crashed holder's lock "
     "is free after at most this long (1s to 1h)."},
    {"cluster.node_id", T_STR, OFF(cluster.node_id), 0, NULL, F_OPTIONAL, NULL, 0, 0, check_cluster_word,
     "This replica's name in locks and logs. Unset: the host name (the pod name in Kubernetes)."},
    {"cluster.encryption_key_file", T_STR, OFF(cluster.encryption_key_file), 0, NULL, F_OPTIONAL, NULL, 0, 0,
     check_key_file,
     "File with 32 random bytes (raw, 64 hex digits or base64, e.g. `openssl rand -base64 32`): private keys and "
     "the account key are stored in Redis AES-256-GCM encrypted. Recommended; every replica needs the same key."},
};
