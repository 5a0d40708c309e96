/* pool — upstream pools, health and balancing; see pool.h. */
#include "upstream/pool.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "httpget/httpget.h"
#include "log/log.h"
#include "upstream/internal.h"
#include "util/util.h"

#define RING_POINTS       160   /* consistent-hashing points per server */
#define EJECT_BACKOFF_MS  1000  /* first passive ejection; doubles ... */
#define EJECT_BACKOFF_MAX 60000 /* ... up to a minute */
#define PROBE_TIMEOUT_MS  2000  /* one probe, all in */
#define PROBE_CONNECT_MS  1000
#define MAX_POOLS         256 /* one per site (OE_CONFIG_MAX_SITES) */

typedef struct {
    uint64_t point;
    unsigned server;
} ring_point_t;

struct oe_upstream_pool {
    char *site;
    enum oe_balance balance;
    oe_upstream_server_t *servers[OE_UPSTREAM_MAX_SERVERS];
    size_t nservers;
    unsigned rr; /* round-robin cursor (atomic) */
    ring_point_t *ring;
    size_t nring;
};

/* The pools in service (the current configuration's), read by the prober, readiness,
 * metrics and status under the lock; replaced as a whole by oe_upstream_pools_activate().
 * Servers outlive pools: they are found again by site and URL when a reloaded configuration
 * still lists them, so their health, counters and idle connections carry over. */
static pthread_mutex_t pools_lock = PTHREAD_MUTEX_INITIALIZER;
static oe_upstream_pool_t *pools[MAX_POOLS];
static size_t npools;
static oe_upstream_server_t *registry; /* every server ever made (under pools_lock) */

/* ---- hashing ------------------------------------------------------------------------- */

uint64_t oe_upstream_hash(const void *data, size_t len)
{
    /* FNV-1a, then a 64-bit finaliser (splitmix64) so that nearby keys spread over the ring */
    const unsigned char *p = data;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebull;
    return h ^ (h >> 31);
}

static int cmp_point(const void *a, const void *b)
{
    const ring_point_t *x = a, *y = b;
    return x->point < y->point ? -1 : x->point > y->point;
}

/* Each server owns RING_POINTS points named after its URL: adding or removing a server
 * moves only the keys between its points and their predecessors. */
static int build_ring(oe_upstream_pool_t *p)
{
    if (p->nservers == 0)
        return 0;
    p->nring = p->nservers * RING_POINTS;
    if ((p->ring = calloc(p->nring, sizeof(*p->ring))) == NULL)
        return -1;
    for (size_t s = 0; s < p->nservers; s++) {
        for (unsigned i = 0; i < RING_POINTS; i++) {
            char name[600];
            int n = snprintf(name, sizeof(name), "%s#%u", p->servers[s]->url, i);
            p->ring[s * RING_POINTS + i] = (ring_point_t){oe_upstream_hash(name, (size_t)n), (unsigned)s};
        }
    }
    qsort(p->ring, p->nring, sizeof(*p->ring), cmp_point);
    return 0;
}

/* ---- pools ---------------------------------------------------------------------------- */

/* The server of site at a's URL: the one already known, or a new one. */
static oe_upstream_server_t *server_for(const oe_site_t *site, const oe_upstream_addr_t *a, char *err, size_t errlen)
{
    oe_upstream_server_t *s;
    pthread_mutex_lock(&pools_lock);
    for (s = registry; s != NULL; s = s->next)
        if (strcmp(s->site, site->name) == 0 && strcmp(s->url, a->url) == 0)
            break;
    if (s == NULL && (s = oe_upstream_server_new(a->url, a->host, a->port, err, errlen)) != NULL) {
        if ((s->site = strdup(site->name)) == NULL) {
            snprintf(err, errlen, "upstream pool: out of memory");
            pthread_mutex_unlock(&pools_lock);
            return NULL; /* (the half-made server is not registered; a few bytes) */
        }
        s->up = 1; /* until shown otherwise: requests flow at once; /readyz waits for an answer */
        s->next = registry;
        registry = s;
    }
    pthread_mutex_unlock(&pools_lock);
    if (s == NULL)
        return NULL;
    pthread_mutex_lock(&s->lock);
    snprintf(s->health_path, sizeof(s->health_path), "%s", site->proxy.health_path);
    s->health_interval_ms = site->proxy.health_interval_ms;
    s->rise = site->proxy.health_rise > 0 ? site->proxy.health_rise : 1;
    s->fall = site->proxy.health_fall > 0 ? site->proxy.health_fall : 1;
    pthread_mutex_unlock(&s->lock);
    return s;
}

oe_upstream_pool_t *oe_upstream_pool_new(const oe_site_t *site, char *err, size_t errlen)
{
    oe_upstream_pool_t *p = calloc(1, sizeof(*p));
    if (p == NULL || (p->site = strdup(site->name)) == NULL)
        goto nomem;
    if (site->upstreams_count > OE_UPSTREAM_MAX_SERVERS) {
        snprintf(err, errlen, "site %s: at most %d upstreams", site->name, OE_UPSTREAM_MAX_SERVERS);
        goto fail;
    }
    p->balance = site->balance;
    for (size_t i = 0; i < site->upstreams_count; i++) {
        oe_upstream_server_t *s = server_for(site, &site->upstreams[i], err, errlen);
        if (s == NULL)
            goto fail;
        p->servers[p->nservers++] = s;
    }
    if (p->balance == OE_BALANCE_HASH && build_ring(p) != 0)
        goto nomem;
    return p;
nomem:
    snprintf(err, errlen, "upstream pool: out of memory");
fail:
    oe_upstream_pool_free(p);
    return NULL;
}

void oe_upstream_pool_free(oe_upstream_pool_t *p)
{
    if (p == NULL)
        return;
    free(p->ring);
    free(p->site);
    free(p);
}

int oe_upstream_pools_activate(oe_upstream_pool_t *const *list, size_t n)
{
    if (n > MAX_POOLS)
        return -1;
    pthread_mutex_lock(&pools_lock);
    for (size_t i = 0; i < n; i++)
        pools[i] = list[i];
    npools = n;
    pthread_mutex_unlock(&pools_lock);
    return 0;
}

size_t oe_upstream_pool_size(const oe_upstream_pool_t *pool)
{
    return pool->nservers;
}

const char *oe_upstream_pool_site(const oe_upstream_pool_t *pool)
{
    return pool->site;
}

static int usable(const oe_upstream_pool_t *p, unsigned i, uint64_t tried, uint64_t now)
{
    const oe_upstream_server_t *s = p->servers[i];
    return !(tried >> i & 1) && __atomic_load_n(&s->up, __ATOMIC_RELAXED) &&
           now >= __atomic_load_n(&s->eject_until_ms, __ATOMIC_RELAXED);
}

oe_upstream_server_t *oe_upstream_pick(oe_upstream_pool_t *p, uint64_t key, uint64_t tried, unsigned *index)
{
    unsigned n = (unsigned)p->nservers, best = n;
    uint64_t now = oe_util_now_ms();
    if (n == 1) {
        /* a lone server is always tried (as nginx does): a 502 then comes from the real
         * attempt, and a restarted upstream is served at once */
        best = tried & 1 ? 1 : 0;
    } else if (p->balance == OE_BALANCE_HASH) {
        /* the first point at or after the key, walking on past servers that cannot take it */
        size_t lo = 0, hi = p->nring;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (p->ring[mid].point < key)
                lo = mid + 1;
            else
                hi = mid;
        }
        for (size_t k = 0; k < p->nring && best == n; k++) {
            unsigned s = p->ring[(lo + k) % p->nring].server;
            if (usable(p, s, tried, now))
                best = s;
        }
    } else {
        unsigned start = __atomic_fetch_add(&p->rr, 1, __ATOMIC_RELAXED) % n;
        uint64_t best_load = UINT64_MAX;
        for (unsigned k = 0; k < n; k++) {
            unsigned s = (start + k) % n;
            if (!usable(p, s, tried, now))
                continue;
            if (p->balance == OE_BALANCE_ROUND_ROBIN) {
                best = s;
                break;
            }
            uint64_t load = __atomic_load_n(&p->servers[s]->active, __ATOMIC_RELAXED) +
                            __atomic_load_n(&p->servers[s]->websockets, __ATOMIC_RELAXED);
            if (load < best_load) {
                best_load = load;
                best = s;
            }
        }
    }
    if (best >= n)
        return NULL;
    *index = best;
    return p->servers[best];
}

/* ---- health ---------------------------------------------------------------------------- */

static void set_error(oe_upstream_server_t *s, const char *why)
{
    pthread_mutex_lock(&s->lock);
    snprintf(s->last_error, sizeof(s->last_error), "%s", why);
    s->last_error_at = (uint64_t)time(NULL);
    pthread_mutex_unlock(&s->lock);
}

/*
 * The health state machine. `fall` failures in a row take a server down; `rise` good
 * answers in a row bring it back. A server that requests themselves found failing
 * (passive) is also left alone for a back-off (1 s, doubling per ejection in a row, at
 * most a minute) before requests try it again, even once its health checks pass.
 */
static void record(oe_upstream_server_t *s, int ok, const char *why, int passive)
{
    uint64_t now = oe_util_now_ms();
    if (ok) {
        __atomic_store_n(&s->answered, 1, __ATOMIC_RELAXED);
        __atomic_store_n(&s->fails, 0, __ATOMIC_RELAXED);
        if (__atomic_load_n(&s->up, __ATOMIC_RELAXED))
            return;
        if (__atomic_add_fetch(&s->oks, 1, __ATOMIC_RELAXED) >= s->rise) {
            int was = 0;
            if (__atomic_compare_exchange_n(&s->up, &was, 1, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
                oe_log(OE_LOG_INFO, "upstream_up", "site", s->site, "url", s->url, NULL);
        }
        return;
    }
    __atomic_add_fetch(&s->errors, 1, __ATOMIC_RELAXED);
    __atomic_store_n(&s->oks, 0, __ATOMIC_RELAXED);
    set_error(s, why);
    unsigned fails = __atomic_add_fetch(&s->fails, 1, __ATOMIC_RELAXED);
    int was = 1;
    if (fails < s->fall || !__atomic_compare_exchange_n(&s->up, &was, 0, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        return;
    char ms[24] = "0";
    if (passive) {
        unsigned e = __atomic_add_fetch(&s->ejections, 1, __ATOMIC_RELAXED);
        uint64_t backoff = EJECT_BACKOFF_MS << (e > 7 ? 6 : e - 1);
        if (backoff > EJECT_BACKOFF_MAX)
            backoff = EJECT_BACKOFF_MAX;
        __atomic_store_n(&s->eject_until_ms, now + backoff, __ATOMIC_RELAXED);
        snprintf(ms, sizeof(ms), "%llu", (unsigned long long)backoff);
    }
    oe_log(OE_LOG_WARN, "upstream_down", "site", s->site, "url", s->url, "error", why, "ejected_ms", ms, NULL);
}

void oe_upstream_report(oe_upstream_server_t *s, int ok, const char *why)
{
    record(s, ok, why, 1);
}

void oe_upstream_active(oe_upstream_server_t *s, int delta)
{
    if (delta > 0)
        __atomic_add_fetch(&s->requests, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&s->active, (uint64_t)(int64_t)delta, __ATOMIC_RELAXED);
}

void oe_upstream_websockets(oe_upstream_server_t *s, int delta)
{
    __atomic_add_fetch(&s->websockets, (uint64_t)(int64_t)delta, __ATOMIC_RELAXED);
}

/* A server that has been up long enough drops its ejection history. */
static void settle(oe_upstream_server_t *s, uint64_t now)
{
    if (__atomic_load_n(&s->up, __ATOMIC_RELAXED) && __atomic_load_n(&s->ejections, __ATOMIC_RELAXED) != 0 &&
        now > __atomic_load_n(&s->eject_until_ms, __ATOMIC_RELAXED) + EJECT_BACKOFF_MAX)
        __atomic_store_n(&s->ejections, 0, __ATOMIC_RELAXED);
}

/* ---- the prober ------------------------------------------------------------------------ */

static pthread_t prober;
static int prober_running;
static pthread_mutex_t stop_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t stop_cond;
static int stop_requested;

static void probe(oe_upstream_server_t *s)
{
    char path[sizeof(s->health_path)];
    pthread_mutex_lock(&s->lock);
    memcpy(path, s->health_path, sizeof(path));
    pthread_mutex_unlock(&s->lock);
    oe_httpget_req_t req = {.host = s->host,
                            .port = s->port,
                            .path = path,
                            .user_agent = "ott-edge-health/" OE_VERSION,
                            .head_only = 1,
                            .timeout_ms = PROBE_TIMEOUT_MS,
                            .connect_timeout_ms = PROBE_CONNECT_MS};
    oe_httpget_resp_t resp;
    char buf[1024], e[256], why[300];
    int rc = oe_httpget(&req, buf, sizeof(buf), &resp, e, sizeof(e));
    if (rc == OE_HTTPGET_OK && resp.status < 500) {
        record(s, 1, "", 0);
        return;
    }
    if (rc == OE_HTTPGET_OK)
        snprintf(why, sizeof(why), "health check %s answered %d", path, resp.status);
    else
        snprintf(why, sizeof(why), "health check %s: %s", path, e);
    record(s, 0, why, 0);
}

/* The servers in service now (pointers stay valid: servers are never freed). */
static size_t active_servers(oe_upstream_server_t **out, size_t max)
{
    size_t k = 0;
    pthread_mutex_lock(&pools_lock);
    for (size_t i = 0; i < npools; i++)
        for (size_t j = 0; j < pools[i]->nservers && k < max; j++)
            out[k++] = pools[i]->servers[j];
    pthread_mutex_unlock(&pools_lock);
    return k;
}

#define MAX_ACTIVE (MAX_POOLS * OE_UPSTREAM_MAX_SERVERS)

static void *prober_main(void *arg)
{
    static oe_upstream_server_t *list[MAX_ACTIVE];
    (void)arg;
    pthread_mutex_lock(&stop_lock);
    while (!stop_requested) {
        pthread_mutex_unlock(&stop_lock);
        uint64_t now = oe_util_now_ms(), wake = now + 1000;
        size_t n = active_servers(list, MAX_ACTIVE);
        for (size_t k = 0; k < n; k++) {
            oe_upstream_server_t *s = list[k];
            if (s->next_probe_ms <= now) {
                probe(s);
                now = oe_util_now_ms();
                s->next_probe_ms = now + s->health_interval_ms;
            }
            settle(s, now);
            if (s->next_probe_ms < wake)
                wake = s->next_probe_ms;
        }
        pthread_mutex_lock(&stop_lock);
        now = oe_util_now_ms();
        if (!stop_requested && wake > now) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            uint64_t ns = (uint64_t)ts.tv_nsec + (wake - now) * 1000000ull;
            ts.tv_sec += (time_t)(ns / 1000000000ull);
            ts.tv_nsec = (long)(ns % 1000000000ull);
            pthread_cond_timedwait(&stop_cond, &stop_lock, &ts);
        }
    }
    pthread_mutex_unlock(&stop_lock);
    return NULL;
}

int oe_upstream_prober_start(char *err, size_t errlen)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* a wall-clock jump does not stretch an interval */
    pthread_cond_init(&stop_cond, &ca);
    pthread_condattr_destroy(&ca);
    stop_requested = 0;
    if (pthread_create(&prober, NULL, prober_main, NULL) != 0) {
        snprintf(err, errlen, "upstream: cannot start the health-check thread");
        return -1;
    }
    prober_running = 1;
    return 0;
}

void oe_upstream_prober_stop(void)
{
    if (!prober_running)
        return;
    pthread_mutex_lock(&stop_lock);
    stop_requested = 1;
    pthread_cond_signal(&stop_cond);
    pthread_mutex_unlock(&stop_lock);
    pthread_join(prober, NULL);
    prober_running = 0;
}

/* ---- readiness, status, metrics ---------------------------------------------------------- */

int oe_upstream_ready(const char **reason)
{
    static __thread char why[200];
    pthread_mutex_lock(&pools_lock);
    size_t n = npools;
    for (size_t i = 0; i < n; i++) {
        oe_upstream_pool_t *p = pools[i];
        int any = 0, answered = 0;
        for (size_t k = 0; k < p->nservers && !any; k++) {
            oe_upstream_server_t *s = p->servers[k];
            answered |= __atomic_load_n(&s->answered, __ATOMIC_RELAXED);
            any = __atomic_load_n(&s->up, __ATOMIC_RELAXED) && __atomic_load_n(&s->answered, __ATOMIC_RELAXED);
        }
        if (!any) {
            snprintf(why, sizeof(why), n > 1 ? "site %s: %s" : "%s%s", n > 1 ? p->site : "",
                     answered ? "upstream is not answering" : "upstream has not answered yet");
            *reason = why;
            pthread_mutex_unlock(&pools_lock);
            return 0;
        }
    }
    pthread_mutex_unlock(&pools_lock);
    *reason = "";
    return 1;
}

size_t oe_upstream_status(oe_upstream_status_t *out, size_t max)
{
    size_t k = 0;
    pthread_mutex_lock(&pools_lock);
    for (size_t i = 0; i < npools; i++) {
        oe_upstream_pool_t *p = pools[i];
        for (size_t j = 0; j < p->nservers && k < max; j++, k++) {
            oe_upstream_server_t *s = p->servers[j];
            oe_upstream_status_t *o = &out[k];
            o->site = p->site;
            o->url = s->url;
            o->up = __atomic_load_n(&s->up, __ATOMIC_RELAXED);
            o->answered = __atomic_load_n(&s->answered, __ATOMIC_RELAXED);
            o->requests = __atomic_load_n(&s->requests, __ATOMIC_RELAXED);
            o->errors = __atomic_load_n(&s->errors, __ATOMIC_RELAXED);
            o->active = __atomic_load_n(&s->active, __ATOMIC_RELAXED);
            o->websockets = __atomic_load_n(&s->websockets, __ATOMIC_RELAXED);
            pthread_mutex_lock(&s->lock);
            memcpy(o->last_error, s->last_error, sizeof(o->last_error));
            o->last_error_at = s->last_error_at;
            pthread_mutex_unlock(&s->lock);
        }
    }
    pthread_mutex_unlock(&pools_lock);
    return k;
}

void oe_upstream_metrics(void *data, oe_metrics_out_t *o)
{
    static const struct {
        const char *name;
        int type;
        const char *help;
    } fams[] = {
        {"ott_edge_upstream_server_up", OE_METRICS_GAUGE, "1 while the upstream server takes requests (per site)."},
        {"ott_edge_upstream_server_requests_total", OE_METRICS_COUNTER, "Requests sent to the upstream server."},
        {"ott_edge_upstream_server_errors_total", OE_METRICS_COUNTER,
         "Failed requests and health checks (connect, timeout, bad answer, 5xx)."},
        {"ott_edge_upstream_server_active_requests", OE_METRICS_GAUGE, "Requests in flight to the upstream server."},
        {"ott_edge_upstream_server_websockets", OE_METRICS_GAUGE, "WebSockets open to the upstream server."},
    };
    (void)data;
    pthread_mutex_lock(&pools_lock);
    for (size_t f = 0; f < sizeof(fams) / sizeof(fams[0]); f++) {
        if (oe_metrics_family(o, fams[f].name, fams[f].type, fams[f].help) != 0)
            continue;
        for (size_t i = 0; i < npools; i++) {
            oe_upstream_pool_t *p = pools[i];
            for (size_t j = 0; j < p->nservers; j++) {
                oe_upstream_server_t *s = p->servers[j];
                const uint64_t v[] = {
                    (uint64_t)__atomic_load_n(&s->up, __ATOMIC_RELAXED),
                    __atomic_load_n(&s->requests, __ATOMIC_RELAXED), __atomic_load_n(&s->errors, __ATOMIC_RELAXED),
                    __atomic_load_n(&s->active, __ATOMIC_RELAXED), __atomic_load_n(&s->websockets, __ATOMIC_RELAXED)};
                oe_metrics_sample(o, (double)v[f], "site", p->site, "server", s->url, NULL);
            }
        }
    }
    pthread_mutex_unlock(&pools_lock);
}
