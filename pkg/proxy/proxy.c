/* proxy — see proxy.h. */
#include "proxy/proxy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>

#include "access/access.h"
#include "cache/cache.h"
#include "compress/compress.h"
#include "log/log.h"
#include "metrics/metrics.h"
#include "pages/pages.h"
#include "proxy/exchange.h"
#include "proxy/forwarded.h"
#include "proxy/internal.h"
#include "upstream/pool.h"
#include "upstream/upstream.h"

/* What a site's requests run through: its own path configuration (handlers, filters,
 * loggers), its upstream pool and settings. Part of one generation. */
typedef struct site_rt {
    oe_proxy_gen_t *gen;
    const oe_config_t *cfg;
    const oe_site_t *site;
    h2o_pathconf_t pathconf;
    oe_proxy_target_t target;
    h2o_iovec_t real_ip_header; /* lower-cased; len 0 when unset */
} site_rt_t;

/* A generation's payload: its sites. */
typedef struct {
    site_rt_t *rt;
    size_t n;
} sites_t;

typedef struct {
    h2o_handler_t super;
    site_rt_t *rt;
} site_handler_t;

typedef struct {
    h2o_filter_t super;
    site_rt_t *rt;
} resp_filter_t;

typedef struct {
    h2o_logger_t super;
    site_rt_t *rt;
} access_logger_t;

/* ---- requests --------------------------------------------------------------------- */

static int path_is_blocked(const oe_site_t *site, h2o_iovec_t path)
{
    for (size_t i = 0; i < site->proxy.block_paths.count; i++) {
        const char *bp = site->proxy.block_paths.items[i];
        size_t n = strlen(bp);
        while (n > 1 && bp[n - 1] == '/')
            n--;
        /* case-insensitive like Express's routing; "/x" blocks "/x", "/x/" and "/x/..." */
        if (path.len >= n && strncasecmp(path.base, bp, n) == 0 && (path.len == n || path.base[n] == '/'))
            return 1;
    }
    return 0;
}

/* Deletes every header that carries forwarding information (names are lower-case here:
 * libh2o lower-cases HTTP/1 names, HTTP/2 requires it), plus `extra` when given. */
static void strip_forwarding(h2o_headers_t *headers, h2o_iovec_t extra)
{
    static const h2o_iovec_t names[] = {{H2O_STRLIT("x-forwarded-for")},  {H2O_STRLIT("x-forwarded-proto")},
                                        {H2O_STRLIT("x-forwarded-host")}, {H2O_STRLIT("x-forwarded-port")},
                                        {H2O_STRLIT("x-real-ip")},        {H2O_STRLIT("forwarded")}};
    for (size_t i = headers->size; i-- > 0;) {
        const h2o_iovec_t *name = headers->entries[i].name;
        int drop = name == &H2O_TOKEN_X_FORWARDED_FOR->buf ||
                   (extra.len != 0 && h2o_memis(name->base, name->len, extra.base, extra.len));
        for (size_t n = 0; !drop && n < sizeof(names) / sizeof(names[0]); n++)
            drop = h2o_memis(name->base, name->len, names[n].base, names[n].len);
        if (drop)
            h2o_delete_header(headers, (ssize_t)i);
    }
}

/* Joins every X-Forwarded-For line of the request (bounded) into one value. */
static h2o_iovec_t joined_xff(h2o_req_t *req)
{
    h2o_iovec_t parts[OE_FWD_MAX_HOPS * 2];
    size_t n = 0, total = 0;
    for (ssize_t i = -1; (i = h2o_find_header(&req->headers, H2O_TOKEN_X_FORWARDED_FOR, i)) != -1;) {
        if (n == sizeof(parts) / sizeof(parts[0]) - 1 || total > (size_t)OE_FWD_XFF_MAX * 4)
            break;
        if (n != 0)
            parts[n++] = h2o_iovec_init(H2O_STRLIT(","));
        parts[n++] = req->headers.entries[i].value;
        total += req->headers.entries[i].value.len;
    }
    if (n == 0)
        return h2o_iovec_init(NULL, 0);
    return h2o_concat_list(&req->pool, parts, n);
}

/* Request heads that libh2o lets through but that must not reach the upstream: an
 * HPACK-decoded header list far beyond what HTTP/1 is allowed (libh2o 2.2.5 has no
 * limit on the decoded size over HTTP/2), and over HTTP/1.1 a bad or missing Host
 * (RFC 9112 §3.2) or obsolete line folding (§5.2). Returns 1 when it answered. */
static int refuse_bad_head(h2o_req_t *req)
{
    size_t total = 0;
    for (size_t i = 0; i < req->headers.size; i++)
        total += req->headers.entries[i].name->len + req->headers.entries[i].value.len + 4;
    if (req->headers.size > OE_PROXY_MAX_HEADERS || total > OE_PROXY_MAX_HEADER_BYTES) {
        oe_pages_send(req, 431, "Request Header Fields Too Large", "Too many or too large request headers.");
        return 1;
    }
    if (req->version >= 0x200)
        return 0;
    const char *why = NULL;
    for (size_t i = 0; i < req->headers.size && why == NULL; i++)
        if (req->headers.entries[i].name->len == 0) /* libh2o's parser keeps obs-fold lines nameless */
            why = "Obsolete line folding is not accepted (RFC 9112 §5.2).";
    /* without a Host header libh2o substitutes the host configuration's own name */
    int no_host =
        req->input.authority.base == NULL || req->input.authority.base == req->hostconf->authority.hostport.base;
    if (req->version >= 0x101 && no_host)
        why = "A Host header is required.";
    else if (!no_host && !oe_forwarded_valid_host(req->input.authority.base, req->input.authority.len, NULL))
        why = "The Host header is not a valid host name.";
    /* (Content-Length / Transfer-Encoding never reach this point: libh2o consumes them,
     * preferring Transfer-Encoding, and the upstream always gets one unambiguous length.) */
    if (why == NULL)
        return 0;
    req->http1_is_persistent = 0; /* the rest of the stream cannot be trusted */
    oe_pages_send(req, 400, "Bad Request", why);
    return 1;
}

static int on_req(h2o_handler_t *_self, h2o_req_t *req)
{
    site_rt_t *self = ((site_handler_t *)_self)->rt;
    const oe_config_t *cfg = self->cfg;

    if (req->version >= 0x200 && req->input.path.len == 0) {
        /* RFC 9113 §8.3.1: an empty :path is malformed (libh2o would make it "/"). An
         * errored send ends the stream with RST_STREAM(PROTOCOL_ERROR). */
        static h2o_generator_t reset = {NULL, NULL};
        req->res.status = 400;
        req->res.reason = "Bad Request";
        h2o_start_response(req, &reset);
        h2o_send(req, NULL, 0, H2O_SEND_STATE_ERROR);
        return 0;
    }
    if (refuse_bad_head(req))
        return 0;
    if (req->entity.base != NULL && req->entity.len > self->site->proxy.max_body_size) {
        req->http1_is_persistent = 0;
        oe_pages_send(req, 413, "Payload Too Large", "The request body is too large.");
        return 0;
    }

    if (path_is_blocked(self->site, req->path_normalized)) {
        oe_metrics_inc(&oe_metrics_self()->blocked, 1);
        oe_pages_send(req, 404, "Not Found", "Not found.");
        return 0;
    }

    struct sockaddr_storage ss;
    socklen_t sl = req->conn->callbacks->get_peername(req->conn, (void *)&ss);
    oe_fwd_input_t in = {.peer = sl != 0 ? (void *)&ss : NULL,
                         .trusted = cfg->proxy.trusted_proxies,
                         .trusted_count = cfg->proxy.trusted_proxies_count};
    h2o_iovec_t xff = joined_xff(req);
    in.xff = xff.base;
    in.xff_len = xff.len;
    if (self->real_ip_header.len != 0) {
        ssize_t i = h2o_find_header_by_str(&req->headers, self->real_ip_header.base, self->real_ip_header.len, -1);
        if (i != -1) {
            in.real_ip = req->headers.entries[i].value.base;
            in.real_ip_len = req->headers.entries[i].value.len;
        }
    }
    oe_fwd_result_t fwd;
    oe_forwarded_compute(&in, &fwd);

    /* nothing the client said about forwarding passes as-is (one pass over the headers) */
    strip_forwarding(&req->headers, fwd.trusted ? h2o_iovec_init(NULL, 0) : self->real_ip_header);

    h2o_add_header(&req->pool, &req->headers, H2O_TOKEN_X_FORWARDED_FOR, NULL,
                   h2o_strdup(&req->pool, fwd.xff, fwd.xff_len).base, fwd.xff_len);
    h2o_add_header_by_str(&req->pool, &req->headers, H2O_STRLIT("x-forwarded-proto"), 0, NULL, H2O_STRLIT("https"));
    h2o_add_header_by_str(&req->pool, &req->headers, H2O_STRLIT("x-forwarded-host"), 0, NULL, req->authority.base,
                          req->authority.len);
    size_t cl = strlen(fwd.client_ip);
    h2o_add_header_by_str(&req->pool, &req->headers, H2O_STRLIT("x-real-ip"), 0, NULL,
                          h2o_strdup(&req->pool, fwd.client_ip, cl).base, cl);
    return -1; /* on to the reverse proxy */
}

/* ---- responses -------------------------------------------------------------------- */

static void on_setup_ostream(h2o_filter_t *_self, h2o_req_t *req, h2o_ostream_t **slot)
{
    const char *hsts = ((resp_filter_t *)_self)->rt->site->hsts;
    if (hsts[0] != '\0' && h2o_find_header(&req->res.headers, H2O_TOKEN_STRICT_TRANSPORT_SECURITY, -1) == -1)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_STRICT_TRANSPORT_SECURITY, NULL, hsts, strlen(hsts));
    h2o_setup_next_ostream(req, slot);
}

/* ---- the reverse proxy -------------------------------------------------------------- */

static int on_proxy_req(h2o_handler_t *_self, h2o_req_t *req)
{
    oe_proxy_exchange_start(req, &((site_handler_t *)_self)->rt->target);
    return 0;
}

/* ---- metrics and access log -------------------------------------------------------- */

static void on_log(h2o_logger_t *_self, h2o_req_t *req)
{
    access_logger_t *self = (void *)_self;
    int proto = req->version >= 0x200 ? OE_PROTO_HTTP2 : OE_PROTO_HTTP1;
    int status = req->res.status;

    if (!self->rt->cfg->log.access || !oe_log_enabled(OE_LOG_INFO))
        return;
    char client[OE_FWD_IP_MAX] = "", st[8], bytes[24], dur[24];
    ssize_t i = h2o_find_header_by_str(&req->headers, H2O_STRLIT("x-real-ip"), -1);
    if (i != -1) { /* set by on_req from the trust rules */
        snprintf(client, sizeof(client), "%.*s", (int)req->headers.entries[i].value.len,
                 req->headers.entries[i].value.base);
    } else {
        struct sockaddr_storage ss;
        if (req->conn->callbacks->get_peername(req->conn, (void *)&ss) != 0)
            oe_forwarded_ntop((void *)&ss, client, sizeof(client));
    }
    snprintf(st, sizeof(st), "%d", status);
    snprintf(bytes, sizeof(bytes), "%zu", req->bytes_sent);
    struct timeval now;
    gettimeofday(&now, NULL);
    double ms = (double)(now.tv_sec - req->timestamps.request_begin_at.tv_sec) * 1e3 +
                (double)(now.tv_usec - req->timestamps.request_begin_at.tv_usec) / 1e3;
    snprintf(dur, sizeof(dur), "%.3f", ms);
    char method[32], path[1024], host[256];
    snprintf(method, sizeof(method), "%.*s", (int)req->method.len, req->method.base);
    snprintf(path, sizeof(path), "%.*s", (int)req->path.len, req->path.base);
    snprintf(host, sizeof(host), "%.*s", (int)req->authority.len, req->authority.base);
    oe_log(OE_LOG_INFO, "access", "client", client, "method", method, "host", host, "path", path, "status", st, "bytes",
           bytes, "duration_ms", dur, "protocol", proto == OE_PROTO_HTTP2 ? "h2" : "http/1.1", "site",
           self->rt->site->name, NULL);
}

/* ---- registration ------------------------------------------------------------------ */

static h2o_handler_t *add_handler(site_rt_t *rt, int (*on_req_cb)(h2o_handler_t *, h2o_req_t *))
{
    site_handler_t *h = (void *)h2o_create_handler(&rt->pathconf, sizeof(*h));
    h->super.on_req = on_req_cb;
    h->rt = rt;
    return &h->super;
}

/* One site's request path: trust rules, edge cache, compression, the reverse proxy to its
 * pool; HSTS and the access log on the way out. */
static int setup_site(site_rt_t *rt, h2o_globalconf_t *gc, h2o_pathconf_t *router, char *err, size_t errlen)
{
    const oe_config_t *cfg = rt->cfg;
    const oe_site_t *site = rt->site;
    h2o_config_init_pathconf(&rt->pathconf, gc, "/", router->mimemap);
    rt->pathconf.error_log.emit_request_errors = 0; /* the exchange logs upstream errors itself */
    if (cfg->proxy.real_ip_header != NULL && cfg->proxy.real_ip_header[0] != '\0') {
        size_t n = strlen(cfg->proxy.real_ip_header);
        char *lc = h2o_mem_alloc(n + 1);
        memcpy(lc, cfg->proxy.real_ip_header, n + 1);
        h2o_strtolower(lc, n);
        rt->real_ip_header = h2o_iovec_init(lc, n);
    }
    add_handler(rt, on_req);
    if (oe_access_register(&rt->pathconf, cfg, site, err, errlen) != 0) /* after on_req (x-real-ip), before the cache */
        return -1;
    /* cache before compress: libh2o runs filters in reverse registration order (cache.h) */
    if (site->cache_enabled && oe_cache_register(&rt->pathconf, cfg, err, errlen) != 0)
        return -1;
    if (site->compress_enabled)
        oe_compress_register(&rt->pathconf, cfg);
    if ((rt->target.pool = oe_upstream_pool_new(site, err, errlen)) == NULL)
        return -1;
    uint64_t connect_ms = site->proxy.upstream_timeout_ms < 5000 ? site->proxy.upstream_timeout_ms : 5000;
    rt->target.gen = rt->gen;
    rt->target.site = site;
    rt->target.upstream_timeout_ms = site->proxy.upstream_timeout_ms;
    rt->target.connect_timeout_ms = connect_ms;
    rt->target.keepalive_ms = cfg->proxy.upstream_keepalive_ms;
    rt->target.websocket_idle_ms = site->proxy.websocket_idle_timeout_ms;
    add_handler(rt, on_proxy_req);
    resp_filter_t *f = (void *)h2o_create_filter(&rt->pathconf, sizeof(*f));
    f->super.on_setup_ostream = on_setup_ostream;
    f->rt = rt;
    access_logger_t *l = (void *)h2o_create_logger(&rt->pathconf, sizeof(*l));
    l->super.log_access = on_log;
    l->rt = rt;
    return 0;
}

/* Frees a generation's sites (gen.c calls it when the generation is freed). */
static void free_sites(void *data)
{
    sites_t *ss = data;
    for (size_t i = 0; i < ss->n; i++) {
        h2o_config_dispose_pathconf(&ss->rt[i].pathconf);
        oe_upstream_pool_free(ss->rt[i].target.pool);
        free(ss->rt[i].real_ip_header.base);
    }
    free(ss->rt);
    free(ss);
}

oe_proxy_gen_t *oe_proxy_gen_build(h2o_globalconf_t *gc, h2o_pathconf_t *router, const oe_config_t *cfg,
                                   oe_proxy_decorate_cb decorate, void *data, char *err, size_t errlen)
{
    sites_t *ss = calloc(1, sizeof(*ss));
    oe_proxy_gen_t *g = NULL;
    if (ss == NULL || (ss->rt = calloc(cfg->sites_count, sizeof(*ss->rt))) == NULL ||
        (g = oe_proxy_gen_new(cfg, ss, free_sites)) == NULL) {
        snprintf(err, errlen, "proxy: out of memory");
        if (ss != NULL)
            free(ss->rt);
        free(ss);
        return NULL;
    }
    for (size_t i = 0; i < cfg->sites_count; i++) {
        site_rt_t *rt = &ss->rt[i];
        rt->gen = g;
        rt->cfg = cfg;
        rt->site = &cfg->sites[i];
        ss->n = i + 1;
        if (setup_site(rt, gc, router, err, errlen) != 0) {
            oe_proxy_gen_discard(g);
            return NULL;
        }
        if (decorate != NULL)
            decorate(&rt->pathconf, data);
    }
    return g;
}

void oe_proxy_gen_publish(h2o_globalconf_t *gc, oe_proxy_gen_t *g, oe_proxy_gen_free_cb free_cfg)
{
    static int once;
    sites_t *ss = oe_proxy_gen_payload(g);
    oe_upstream_pool_t *pools[OE_CONFIG_MAX_SITES];
    size_t n = 0, body = 0;
    for (size_t i = 0; i < ss->n && n < OE_CONFIG_MAX_SITES; i++) {
        pools[n++] = ss->rt[i].target.pool;
        if (ss->rt[i].site->proxy.max_body_size > body)
            body = ss->rt[i].site->proxy.max_body_size;
    }
    oe_tcp_keepalive_t ka = oe_config_tcp_keepalive(oe_proxy_gen_config(g));
    oe_upstream_configure(&ka);
    /* libh2o reads request bodies up to this (one word, read per request); each site's
     * own limit is checked in on_req */
    __atomic_store_n(&gc->max_request_entity_size, body, __ATOMIC_RELAXED);
    oe_upstream_pools_activate(pools, n);
    oe_proxy_gen_swap(g, free_cfg);
    if (!once) {
        oe_metrics_add_section(oe_upstream_metrics, NULL);
        once = 1;
    }
}

h2o_pathconf_t *oe_proxy_gen_site_path(oe_proxy_gen_t *g, size_t i)
{
    sites_t *ss = oe_proxy_gen_payload(g);
    return i < ss->n ? &ss->rt[i].pathconf : NULL;
}

oe_proxy_gen_t *oe_proxy_gen_of_path(h2o_pathconf_t *pc)
{
    return H2O_STRUCT_FROM_MEMBER(site_rt_t, pathconf, pc)->gen;
}
