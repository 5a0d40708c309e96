/* access — see access.h. */
#include "access/access.h"

#include <arpa/inet.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "access/auth.h"
#include "access/internal.h"
#include "log/log.h"
#include "metrics/metrics.h"
#include "pages/pages.h"
#include "util/util.h"

#define TABLE_ENTRIES 65536 /* clients (and buckets) tracked at once: 3 MiB */
#define SCOPE_AUTH    2u    /* the bucket of failed passwords */
#define SCOPE_FIRST   3u    /* the first scope of a configured rate */
#define WS_ENV        "oe.access.ws"
/* wrong passwords: 10 at once, then one every 6 s per client */
static const oe_access_rate_t auth_failures = {.requests = 1, .per_ms = 6000, .burst = 10};

enum { L_RATE = 0, L_WS_RATE, L_MAX_CONNS, L_MAX_WS, L_AUTH, L_COUNT };
static const char *const limit_names[L_COUNT] = {"rate", "websocket_rate", "max_connections", "max_websockets",
                                                 "auth_failures"};

typedef struct rule {
    const oe_config_access_t *c;
    oe_access_range_t *allow, *deny; /* compiled c->allow, c->deny */
    oe_access_authfile_t *auth;      /* NULL: no basic authentication */
    oe_access_rate_t rate, ws_rate;
    uint32_t rate_scope, ws_scope; /* 0: no such bucket */
    int active;                    /* anything to check at all */
} rule_t;

typedef struct path_rule {
    const char *prefix;
    size_t plen;
    rule_t r;
} path_rule_t;

/* A site's counters, by name: they outlive the configuration a reload replaces. */
typedef struct counters {
    char *name;
    uint64_t denied, unauthorized, limited[L_COUNT]; /* atomics */
} counters_t;

/* One site's rules as one configuration (generation) has them; owned by its handler. */
typedef struct site_rules {
    const oe_site_t *site;
    counters_t *ctr;
    rule_t base;
    path_rule_t *paths; /* longest prefix first */
    size_t npaths;
    oe_access_range_t *trusted; /* proxy.trusted_proxies of this configuration */
    size_t ntrusted;
    unsigned v6_prefix;
    uint32_t top_max_conns; /* refused at accept already (0: none) */
    char *challenge;        /* WWW-Authenticate value */
} site_rules_t;

typedef struct handler {
    h2o_handler_t super;
    site_rules_t *sr;
} handler_t;

/* What the accept path needs (from the configuration last given to oe_access_init). */
typedef struct accept_rules {
    int count_conns;        /* some rule has max_connections: count at accept */
    uint32_t top_max_conns; /* refused at accept beyond it (0: none) */
    oe_access_range_t *trusted;
    size_t ntrusted;
    unsigned v6_prefix;
    struct accept_rules *prev; /* the ones before a reload: kept (and reachable), never freed */
} accept_rules_t;

/* Process-wide state, kept across configuration reloads (written under the lock). */
static struct {
    pthread_mutex_t lock;
    accept_rules_t *acc;          /* atomic pointer; older ones are kept (a few bytes per reload) */
    oe_access_table_t *table;     /* made when a limit or a password first needs it; never replaced */
    oe_access_authfile_t **files; /* by path */
    size_t nfiles;
    counters_t **ctrs; /* by site name */
    size_t nctrs;
    uint32_t next_scope; /* the buckets of a new configuration start afresh */
    int section_added;
    uint64_t conns_refused; /* atomic */
} A = {.lock = PTHREAD_MUTEX_INITIALIZER, .next_scope = SCOPE_FIRST};

static oe_access_table_t *table(void)
{
    return __atomic_load_n(&A.table, __ATOMIC_ACQUIRE);
}

/* ---- compiling ------------------------------------------------------------------------- */

/* The file object of an htpasswd path (one per path, re-read on reload). A.lock held. */
static oe_access_authfile_t *authfile_for(const char *path, char *err, size_t errlen)
{
    for (size_t i = 0; i < A.nfiles; i++)
        if (strcmp(oe_access_authfile_path(A.files[i]), path) == 0)
            return A.files[i];
    oe_access_authfile_t **nf = realloc(A.files, (A.nfiles + 1) * sizeof(oe_access_authfile_t *)), *f;
    if (nf == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    A.files = nf;
    if ((f = oe_access_authfile_open(path, err, errlen)) == NULL)
        return NULL;
    A.files[A.nfiles++] = f;
    return f;
}

/* The counters of a site name. A.lock held. */
static counters_t *counters_for(const char *name)
{
    for (size_t i = 0; i < A.nctrs; i++)
        if (strcmp(A.ctrs[i]->name, name) == 0)
            return A.ctrs[i];
    counters_t **n = realloc(A.ctrs, (A.nctrs + 1) * sizeof(counters_t *)), *c;
    if (n == NULL)
        return NULL;
    A.ctrs = n;
    if ((c = calloc(1, sizeof(*c))) == NULL || (c->name = strdup(name)) == NULL) {
        free(c);
        return NULL;
    }
    A.ctrs[A.nctrs++] = c;
    return c;
}

static void rate_of(const oe_config_rate_t *c, oe_access_rate_t *r)
{
    r->requests = (uint64_t)c->requests;
    r->per_ms = c->per_ms > 0 ? c->per_ms : 1000;
    r->burst = c->burst > 0 ? (uint64_t)c->burst : (uint64_t)c->requests;
}

/* parent: the site's rule for a paths entry (a rate the entry does not set is the site's
 * bucket), NULL for the site. A.lock held. */
static int compile(rule_t *r, const oe_config_access_t *c, const rule_t *parent, int own_rate, int own_ws_rate,
                   char *err, size_t errlen)
{
    memset(r, 0, sizeof(*r));
    r->c = c;
    if (oe_access_ranges_compile(c->allow, c->allow_count, &r->allow) != 0 ||
        oe_access_ranges_compile(c->deny, c->deny_count, &r->deny) != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (c->basic_auth != NULL && (r->auth = authfile_for(c->basic_auth, err, errlen)) == NULL)
        return -1;
    if (parent != NULL && !own_rate) {
        r->rate = parent->rate;
        r->rate_scope = parent->rate_scope;
    } else if (c->rate.requests > 0) {
        rate_of(&c->rate, &r->rate);
        r->rate_scope = A.next_scope++;
    }
    if (parent != NULL && !own_ws_rate) {
        r->ws_rate = parent->ws_rate;
        r->ws_scope = parent->ws_scope;
    } else if (c->websocket_rate.requests > 0) {
        rate_of(&c->websocket_rate, &r->ws_rate);
        r->ws_scope = A.next_scope++;
    }
    r->active = c->allow_count > 0 || c->deny_count > 0 || r->auth != NULL || r->rate_scope != 0 || r->ws_scope != 0 ||
                c->max_connections > 0 || c->max_websockets > 0;
    return 0;
}

static void free_rule(rule_t *r)
{
    free(r->allow);
    free(r->deny);
}

static void free_site_rules(site_rules_t *sr)
{
    if (sr == NULL)
        return;
    free_rule(&sr->base);
    for (size_t i = 0; i < sr->npaths; i++)
        free_rule(&sr->paths[i].r);
    free(sr->paths);
    free(sr->trusted);
    free(sr->challenge);
    free(sr);
}

/* Whether an access block needs the client table (a limit, or passwords: wrong ones are counted). */
static int block_needs_table(const oe_config_access_t *a)
{
    return a->rate.requests > 0 || a->websocket_rate.requests > 0 || a->max_connections > 0 || a->max_websockets > 0 ||
           a->basic_auth != NULL;
}

static int cmp_paths(const void *a, const void *b)
{
    const path_rule_t *x = a, *y = b;
    return x->plen < y->plen ? 1 : x->plen > y->plen ? -1 : 0;
}

static void render_metrics(void *data, oe_metrics_out_t *o);

/* What cfg's rules need process-wide: the client table, the password verifier, the metrics
 * section, a set of counters per site name. Changes nothing a previous configuration relies
 * on (so a reload that fails later leaves the server as it was). */
static int prepare(const oe_config_t *cfg, char *err, size_t errlen)
{
    int need_table = cfg->access.max_connections > 0, auth = 0, rc = -1;

    pthread_mutex_lock(&A.lock);
    for (size_t i = 0; i < cfg->sites_count; i++) {
        const oe_site_t *s = &cfg->sites[i];
        if (counters_for(s->name) == NULL) {
            snprintf(err, errlen, "access: out of memory");
            goto out;
        }
        need_table |= block_needs_table(&s->access);
        auth |= s->access.basic_auth != NULL;
        for (size_t j = 0; j < s->paths_count; j++) {
            need_table |= block_needs_table(&s->paths[j].access);
            auth |= s->paths[j].access.basic_auth != NULL;
        }
    }
    if (need_table && A.table == NULL) {
        oe_access_table_t *t = oe_access_table_new(TABLE_ENTRIES);
        if (t == NULL) {
            snprintf(err, errlen, "access: out of memory (client table)");
            goto out;
        }
        __atomic_store_n(&A.table, t, __ATOMIC_RELEASE);
    }
    if (auth && oe_access_auth_start(err, errlen) != 0)
        goto out;
    if (!A.section_added) {
        oe_metrics_add_section(render_metrics, NULL);
        A.section_added = 1;
    }
    rc = 0;
out:
    pthread_mutex_unlock(&A.lock);
    return rc;
}

int oe_access_init(const oe_config_t *cfg, char *err, size_t errlen)
{
    accept_rules_t *acc = calloc(1, sizeof(*acc));

    if (prepare(cfg, err, errlen) != 0) {
        free(acc);
        return -1;
    }
    if (acc == NULL ||
        oe_access_ranges_compile(cfg->proxy.trusted_proxies, cfg->proxy.trusted_proxies_count, &acc->trusted) != 0) {
        free(acc);
        snprintf(err, errlen, "access: out of memory");
        return -1;
    }
    acc->ntrusted = cfg->proxy.trusted_proxies_count;
    acc->v6_prefix = (unsigned)cfg->access_ipv6_prefix;
    acc->top_max_conns = cfg->access.max_connections > 0 ? (uint32_t)cfg->access.max_connections : 0;
    acc->count_conns = acc->top_max_conns > 0;
    for (size_t i = 0; i < cfg->sites_count; i++) {
        const oe_site_t *s = &cfg->sites[i];
        acc->count_conns |= s->access.max_connections > 0;
        for (size_t j = 0; j < s->paths_count; j++)
            acc->count_conns |= s->paths[j].access.max_connections > 0;
    }
    acc->prev = __atomic_load_n(&A.acc, __ATOMIC_ACQUIRE);
    __atomic_store_n(&A.acc, acc, __ATOMIC_RELEASE); /* the previous one stays readable (never freed) */
    return 0;
}

/* Compiles site's rules (one configuration's); NULL with a message on failure. */
static site_rules_t *compile_site(const oe_config_t *cfg, const oe_site_t *site, char *err, size_t errlen)
{
    site_rules_t *sr = calloc(1, sizeof(*sr));
    char challenge[160];

    pthread_mutex_lock(&A.lock);
    if (sr == NULL || (sr->paths = calloc(site->paths_count > 0 ? site->paths_count : 1, sizeof(*sr->paths))) == NULL ||
        (sr->ctr = counters_for(site->name)) == NULL ||
        oe_access_ranges_compile(cfg->proxy.trusted_proxies, cfg->proxy.trusted_proxies_count, &sr->trusted) != 0) {
        snprintf(err, errlen, "access: out of memory");
        goto fail;
    }
    sr->site = site;
    sr->ntrusted = cfg->proxy.trusted_proxies_count;
    sr->v6_prefix = (unsigned)cfg->access_ipv6_prefix;
    sr->top_max_conns = cfg->access.max_connections > 0 ? (uint32_t)cfg->access.max_connections : 0;
    snprintf(challenge, sizeof(challenge), "Basic realm=\"%s\", charset=\"UTF-8\"", site->name);
    if ((sr->challenge = strdup(challenge)) == NULL) {
        snprintf(err, errlen, "access: out of memory");
        goto fail;
    }
    if (compile(&sr->base, &site->access, NULL, 1, 1, err, errlen) != 0)
        goto fail;
    for (size_t j = 0; j < site->paths_count; j++) {
        const oe_config_path_t *p = &site->paths[j];
        path_rule_t *pr = &sr->paths[j];
        pr->prefix = p->prefix;
        pr->plen = strlen(p->prefix);
        sr->npaths = j + 1;
        if (compile(&pr->r, &p->access, &sr->base, p->own_rate, p->own_websocket_rate, err, errlen) != 0)
            goto fail;
    }
    qsort(sr->paths, sr->npaths, sizeof(*sr->paths), cmp_paths);
    pthread_mutex_unlock(&A.lock);
    return sr;
fail:
    pthread_mutex_unlock(&A.lock);
    free_site_rules(sr);
    return NULL;
}

/* Checks the htpasswd file of one access block (label: its key, for messages), once per file. */
static int check_block(const oe_config_access_t *a, const char *label, const char **seen, size_t *nseen, char *err,
                       size_t errlen)
{
    char why[512];
    oe_access_users_t *u;

    if (a->basic_auth == NULL)
        return 0;
    for (size_t i = 0; i < *nseen; i++)
        if (strcmp(seen[i], a->basic_auth) == 0)
            return 0;
    if ((u = oe_access_auth_load(a->basic_auth, why, sizeof(why))) == NULL) {
        snprintf(err, errlen, "config: %s.basic_auth: %s", label, why);
        return -1;
    }
    oe_access_users_free(u);
    if (*nseen < 64)
        seen[(*nseen)++] = a->basic_auth;
    return 0;
}

int oe_access_check(const oe_config_t *cfg, char *err, size_t errlen)
{
    const char *seen[64];
    size_t nseen = 0;
    char label[96];

    if (check_block(&cfg->access, "access", seen, &nseen, err, errlen) != 0)
        return -1;
    for (size_t j = 0; j < cfg->paths_count; j++) {
        snprintf(label, sizeof(label), "paths[%zu].access", j);
        if (check_block(&cfg->paths[j].access, label, seen, &nseen, err, errlen) != 0)
            return -1;
    }
    for (size_t i = 0; cfg->sites_listed && i < cfg->sites_count; i++) {
        const oe_site_t *s = &cfg->sites[i];
        snprintf(label, sizeof(label), "sites[%zu].access", i);
        if (check_block(&s->access, label, seen, &nseen, err, errlen) != 0)
            return -1;
        for (size_t j = 0; j < s->paths_count; j++) {
            snprintf(label, sizeof(label), "sites[%zu].paths[%zu].access", i, j);
            if (check_block(&s->paths[j].access, label, seen, &nseen, err, errlen) != 0)
                return -1;
        }
    }
    return 0;
}

/* ---- answers --------------------------------------------------------------------------- */

static void count(uint64_t *c)
{
    __atomic_fetch_add(c, 1, __ATOMIC_RELAXED);
}

static int deny(site_rules_t *sr, h2o_req_t *req)
{
    count(&sr->ctr->denied);
    oe_pages_send(req, 403, "Forbidden", "Access to this site is not allowed from your address.");
    return 0;
}

static int too_many(site_rules_t *sr, h2o_req_t *req, int kind, uint64_t retry_ms)
{
    count(&sr->ctr->limited[kind]);
    if (retry_ms > 0) {
        char *v = h2o_mem_alloc_pool(&req->pool, 24);
        int n = snprintf(v, 24, "%llu", (unsigned long long)((retry_ms + 999) / 1000));
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL, v, (size_t)n);
    }
    if (kind == L_MAX_CONNS)
        req->http1_is_persistent = 0;
    oe_pages_send(req, 429, "Too Many Requests",
                  kind == L_MAX_WS      ? "Too many WebSockets open from your address."
                  : kind == L_MAX_CONNS ? "Too many connections open from your address."
                  : kind == L_AUTH      ? "Too many wrong passwords from your address: wait a little."
                                        : "Too many requests from your address: slow down.");
    return 0;
}

static int unauthorized(site_rules_t *sr, h2o_req_t *req)
{
    count(&sr->ctr->unauthorized);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, NULL, sr->challenge,
                   strlen(sr->challenge));
    oe_pages_send(req, 401, "Unauthorized", "This site needs a user name and a password.");
    return 0;
}

/* ---- the decision ---------------------------------------------------------------------- */

static const rule_t *rule_for(const site_rules_t *sr, h2o_iovec_t path)
{
    for (size_t i = 0; i < sr->npaths; i++)
        if (oe_access_prefix_match(sr->paths[i].prefix, sr->paths[i].plen, path.base, path.len))
            return &sr->paths[i].r;
    return &sr->base;
}

/* Numeric text of an address (IPv4-mapped IPv6 as IPv4). */
static void ntop(const struct sockaddr_storage *ss, char *buf, size_t cap)
{
    const void *a = &((const struct sockaddr_in *)ss)->sin_addr;
    int af = AF_INET;
    if (ss->ss_family == AF_INET6) {
        const struct in6_addr *a6 = &((const struct sockaddr_in6 *)ss)->sin6_addr;
        a = IN6_IS_ADDR_V4MAPPED(a6) ? (const void *)(a6->s6_addr + 12) : (const void *)a6;
        af = IN6_IS_ADDR_V4MAPPED(a6) ? AF_INET : AF_INET6;
    }
    if (inet_ntop(af, a, buf, (socklen_t)cap) == NULL)
        snprintf(buf, cap, "?");
}

/* The client as the proxy's trust rules saw it (x-real-ip), else the peer. */
static int client_of(h2o_req_t *req, struct sockaddr_storage *ss)
{
    ssize_t i = h2o_find_header_by_str(&req->headers, H2O_STRLIT("x-real-ip"), -1);
    if (i != -1 && oe_access_parse_ip(req->headers.entries[i].value.base, req->headers.entries[i].value.len, ss) == 0)
        return 0;
    memset(ss, 0, sizeof(*ss));
    return req->conn->callbacks->get_peername(req->conn, (void *)ss) != 0 ? 0 : -1;
}

static int trusted(const site_rules_t *sr, const oe_access_key_t *addr)
{
    return sr->ntrusted > 0 && oe_access_ranges_match(sr->trusted, sr->ntrusted, addr);
}

static int is_websocket(h2o_req_t *req)
{
    return req->upgrade.base != NULL && req->version == 0x101 &&
           h2o_lcstris(req->upgrade.base, req->upgrade.len, H2O_STRLIT("websocket"));
}

static void strip_credentials(h2o_req_t *req)
{
    ssize_t i;
    while ((i = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1)) != -1)
        h2o_delete_header(&req->headers, i);
}

static void on_ws_reservation_dispose(void *p)
{
    uint32_t *ticket = p;
    if (*ticket != 0)
        oe_access_table_release(table(), *ticket, OE_ACCESS_WEBSOCKETS);
}

/* State of a password check that runs on the verifier (in the request's pool). */
typedef struct pending {
    handler_t *h;
    const rule_t *r;
    char client[64];
    char user[OE_ACCESS_USER_MAX + 1];
    oe_access_key_t key;
    int tracked;
} pending_t;

static void auth_failed(pending_t *pd, h2o_req_t *req, const char *why)
{
    if (pd->tracked) {
        uint64_t retry;
        oe_access_table_take(table(), &pd->key, SCOPE_AUTH, &auth_failures, oe_util_now_ms(), &retry);
    }
    oe_log(OE_LOG_WARN, "basic_auth_failed", "site", pd->h->sr->site->name, "client", pd->client, "user", pd->user,
           "reason", why, NULL);
    unauthorized(pd->h->sr, req);
}

static void on_verified(h2o_req_t *req, int ok, void *data)
{
    pending_t *pd = data;
    if (!ok) {
        auth_failed(pd, req, "wrong password or unknown user");
        return;
    }
    if (!pd->r->c->pass_credentials)
        strip_credentials(req);
    h2o_delegate_request(req, &pd->h->super);
}

static int basic_auth(handler_t *h, const rule_t *r, h2o_req_t *req, const char *client, const oe_access_key_t *key,
                      int tracked)
{
    site_rules_t *sr = h->sr;
    ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
    char password[OE_ACCESS_PASSWORD_MAX + 1];
    pending_t *pd;
    uint64_t retry = 0;
    int rc;

    if (i == -1)
        return unauthorized(sr, req); /* a browser's first request: not logged */
    pd = h2o_mem_alloc_pool(&req->pool, sizeof(*pd));
    memset(pd, 0, sizeof(*pd));
    pd->h = h;
    pd->r = r;
    pd->tracked = tracked;
    if (tracked)
        pd->key = *key;
    snprintf(pd->client, sizeof(pd->client), "%s", client);
    rc = oe_access_parse_basic(req->headers.entries[i].value.base, req->headers.entries[i].value.len, pd->user,
                               sizeof(pd->user), password, sizeof(password));
    if (rc != 0) {
        pd->user[0] = '\0';
        if (rc == -1) /* other credentials (an app's Bearer token): the browser has none for us yet */
            return unauthorized(sr, req);
        auth_failed(pd, req, "malformed Basic credentials");
        return 0;
    }
    if (oe_access_auth_proven(r->auth, pd->user, password)) {
        rc = OE_ACCESS_AUTH_OK;
    } else if (tracked &&
               oe_access_table_peek(table(), key, SCOPE_AUTH, &auth_failures, oe_util_now_ms(), &retry) == 0) {
        OPENSSL_cleanse(password, sizeof(password)); /* too many wrong ones: no hash computed */
        return too_many(sr, req, L_AUTH, retry);
    } else {
        rc = oe_access_auth_check(r->auth, req, pd->user, password, on_verified, pd);
    }
    OPENSSL_cleanse(password, sizeof(password));
    if (rc == OE_ACCESS_AUTH_OK) {
        if (!r->c->pass_credentials)
            strip_credentials(req);
        return -1;
    }
    if (rc == OE_ACCESS_AUTH_PENDING)
        return 0; /* on_verified goes on */
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL, H2O_STRLIT("1"));
    oe_pages_send(req, 503, "Service Unavailable", "Too many password checks at once: retry in a moment.");
    return 0;
}

static int on_req(h2o_handler_t *_self, h2o_req_t *req)
{
    handler_t *self = (void *)_self;
    site_rules_t *sr = self->sr;
    const rule_t *r = rule_for(sr, req->path_normalized);
    const oe_config_access_t *c = r->c;
    oe_access_table_t *t = table();
    struct sockaddr_storage client;
    oe_access_key_t addr, key;
    int tracked = 0;

    if (!r->active)
        return -1;
    if (client_of(req, &client) != 0 || oe_access_key_of((void *)&client, 128, &addr) != 0)
        return deny(sr, req); /* no address at all: nothing to decide on */
    if (c->deny_count > 0 && oe_access_ranges_match(r->deny, c->deny_count, &addr))
        return deny(sr, req);
    if (c->allow_count > 0 && !oe_access_ranges_match(r->allow, c->allow_count, &addr))
        return deny(sr, req);
    if (t != NULL && !trusted(sr, &addr)) {
        uint64_t now = oe_util_now_ms(), retry = 0;
        int ws = is_websocket(req);
        oe_access_key_of((void *)&client, sr->v6_prefix, &key);
        tracked = 1;
        /* connections are counted by the TCP peer at accept; the top-level limit refused the excess there */
        if (c->max_connections > 0 && (sr->top_max_conns == 0 || (uint32_t)c->max_connections < sr->top_max_conns)) {
            struct sockaddr_storage peer;
            oe_access_key_t pa, pk;
            if (req->conn->callbacks->get_peername(req->conn, (void *)&peer) != 0 &&
                oe_access_key_of((void *)&peer, 128, &pa) == 0 && !trusted(sr, &pa) &&
                oe_access_key_of((void *)&peer, sr->v6_prefix, &pk) == 0 &&
                oe_access_table_open(t, &pk, OE_ACCESS_CONNS) > (uint32_t)c->max_connections)
                return too_many(sr, req, L_MAX_CONNS, 0);
        }
        if (ws && r->ws_scope != 0) {
            if (oe_access_table_take(t, &key, r->ws_scope, &r->ws_rate, now, &retry) == 0)
                return too_many(sr, req, L_WS_RATE, retry);
        } else if (r->rate_scope != 0) {
            if (oe_access_table_take(t, &key, r->rate_scope, &r->rate, now, &retry) == 0)
                return too_many(sr, req, L_RATE, retry);
        }
        if (ws && c->max_websockets > 0) {
            uint32_t ticket;
            if (oe_access_table_acquire(t, &key, OE_ACCESS_WEBSOCKETS, (uint32_t)c->max_websockets, now, &ticket) == 0)
                return too_many(sr, req, L_MAX_WS, 0);
            if (ticket != 0) { /* held until the tunnel closes, or the request ends without one */
                uint32_t *slot = h2o_mem_alloc_shared(&req->pool, sizeof(*slot), on_ws_reservation_dispose);
                *slot = ticket;
                *h2o_req_getenv(req, H2O_STRLIT(WS_ENV), 1) = h2o_iovec_init(slot, 0);
            }
        }
    }
    if (r->auth != NULL) {
        char text[INET6_ADDRSTRLEN + 8];
        ntop(&client, text, sizeof(text));
        return basic_auth(self, r, req, text, &key, tracked);
    }
    return -1;
}

static void on_dispose(h2o_handler_t *_self)
{
    free_site_rules(((handler_t *)_self)->sr);
}

int oe_access_register(h2o_pathconf_t *pc, const oe_config_t *cfg, const oe_site_t *site, char *err, size_t errlen)
{
    site_rules_t *sr;

    if (prepare(cfg, err, errlen) != 0 || (sr = compile_site(cfg, site, err, errlen)) == NULL)
        return -1;
    if (!sr->base.active && sr->npaths == 0) { /* (a paths entry replaces the site's rules, even with none) */
        free_site_rules(sr);                   /* no rules: no handler, no cost */
        return 0;
    }
    handler_t *h = (void *)h2o_create_handler(pc, sizeof(*h));
    h->super.on_req = on_req;
    h->super.dispose = on_dispose; /* when this configuration's paths are disposed (a reload) */
    h->sr = sr;
    return 0;
}

/* ---- connections and WebSockets ---------------------------------------------------------- */

int oe_access_conn_open(h2o_socket_t *sock, uint32_t *ticket)
{
    struct sockaddr_storage ss;
    oe_access_key_t key;

    *ticket = 0;
    const accept_rules_t *acc = __atomic_load_n(&A.acc, __ATOMIC_ACQUIRE);
    oe_access_table_t *t = table();

    if (acc == NULL || !acc->count_conns || t == NULL || h2o_socket_getpeername(sock, (void *)&ss) == 0 ||
        oe_access_key_of((void *)&ss, 128, &key) != 0 ||
        (acc->ntrusted > 0 && oe_access_ranges_match(acc->trusted, acc->ntrusted, &key)))
        return 0;
    oe_access_key_of((void *)&ss, acc->v6_prefix, &key);
    if (oe_access_table_acquire(t, &key, OE_ACCESS_CONNS, acc->top_max_conns, oe_util_now_ms(), ticket) == 0) {
        count(&A.conns_refused);
        if (oe_log_enabled(OE_LOG_DEBUG)) {
            char ip[INET6_ADDRSTRLEN + 8] = "";
            ntop(&ss, ip, sizeof(ip));
            oe_log(OE_LOG_DEBUG, "connection_refused", "peer", ip, "reason", "access.max_connections", NULL);
        }
        return -1;
    }
    return 0;
}

void oe_access_conn_close(uint32_t ticket)
{
    if (ticket != 0 && table() != NULL)
        oe_access_table_release(table(), ticket, OE_ACCESS_CONNS);
}

void *oe_access_ws_open(h2o_req_t *req)
{
    h2o_iovec_t *v = h2o_req_getenv(req, H2O_STRLIT(WS_ENV), 0);
    uint32_t *slot, ticket;

    if (v == NULL || (slot = (uint32_t *)v->base) == NULL || *slot == 0)
        return NULL;
    ticket = *slot;
    *slot = 0; /* the request's end no longer gives it back: the tunnel's end does */
    return (void *)(uintptr_t)ticket;
}

void oe_access_ws_closed(void *ticket)
{
    if (ticket != NULL && table() != NULL)
        oe_access_table_release(table(), (uint32_t)(uintptr_t)ticket, OE_ACCESS_WEBSOCKETS);
}

/* ---- reload ---------------------------------------------------------------------------- */

void oe_access_reload(void)
{
    pthread_mutex_lock(&A.lock);
    for (size_t i = 0; i < A.nfiles; i++) {
        char err[512], n[24];
        size_t users = 0;
        if (oe_access_authfile_reload(A.files[i], &users, err, sizeof(err)) != 0) {
            oe_log(OE_LOG_ERROR, "access_reload_failed", "error", err, "msg", "the users read before stay", NULL);
            continue;
        }
        snprintf(n, sizeof(n), "%zu", users);
        oe_log(OE_LOG_INFO, "access_reloaded", "file", oe_access_authfile_path(A.files[i]), "users", n, NULL);
    }
    pthread_mutex_unlock(&A.lock);
}

/* ---- metrics --------------------------------------------------------------------------- */

static double get(const uint64_t *c)
{
    return (double)__atomic_load_n(c, __ATOMIC_RELAXED);
}

static void render_metrics(void *data, oe_metrics_out_t *o)
{
    oe_access_table_stats_t st = {0};
    oe_access_table_t *t = table();
    (void)data;

    if (t != NULL)
        oe_access_table_stats(t, &st);
    pthread_mutex_lock(&A.lock);
    if (oe_metrics_family(o, "ott_edge_access_denied_total", OE_METRICS_COUNTER,
                          "Requests answered 403 by access.allow or access.deny, per site.") == 0)
        for (size_t i = 0; i < A.nctrs; i++)
            oe_metrics_sample(o, get(&A.ctrs[i]->denied), "site", A.ctrs[i]->name, NULL);
    if (oe_metrics_family(o, "ott_edge_access_unauthorized_total", OE_METRICS_COUNTER,
                          "Requests answered 401 by access.basic_auth (no, wrong or malformed credentials), per "
                          "site.") == 0)
        for (size_t i = 0; i < A.nctrs; i++)
            oe_metrics_sample(o, get(&A.ctrs[i]->unauthorized), "site", A.ctrs[i]->name, NULL);
    if (oe_metrics_family(o, "ott_edge_access_limited_total", OE_METRICS_COUNTER,
                          "Requests answered 429, per site and limit (rate, websocket_rate, max_connections, "
                          "max_websockets, auth_failures).") == 0)
        for (size_t i = 0; i < A.nctrs; i++)
            for (int k = 0; k < L_COUNT; k++)
                oe_metrics_sample(o, get(&A.ctrs[i]->limited[k]), "site", A.ctrs[i]->name, "limit", limit_names[k],
                                  NULL);
    pthread_mutex_unlock(&A.lock);
    oe_metrics_counter(o, "ott_edge_access_connections_refused_total",
                       "Connections closed at accept: the peer had the top-level access.max_connections open.",
                       get(&A.conns_refused));
    oe_metrics_gauge(o, "ott_edge_access_clients", "Entries in use in the access client table.", (double)st.used);
    oe_metrics_gauge(o, "ott_edge_access_clients_capacity",
                     "Entries the access client table holds at most (0: no limit configured, no table).",
                     t != NULL ? (double)oe_access_table_capacity(t) : 0);
    oe_metrics_counter(o, "ott_edge_access_evictions_total",
                       "Access client table entries taken over by a new client (the least recently used one with "
                       "nothing open).",
                       (double)st.evictions);
    oe_metrics_counter(o, "ott_edge_access_untracked_total",
                       "New clients not tracked (so not limited) because every entry they could take had "
                       "connections or WebSockets open.",
                       (double)st.untracked);
}
