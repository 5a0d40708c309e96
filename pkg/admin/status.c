/*
 * status — what the status page, /status.json and the admin's own /metrics families show,
 * gathered in one place from the small read functions each module exposes (tls info,
 * upstream health, ACME status, the metrics counters, the cache counters, the log's
 * remembered events), plus a ring of counter samples so a freshly opened page has the
 * last ten minutes to draw. The JSON is written here and nowhere else (with jansson).
 */
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "acme/acme.h"
#include "admin/admin.h"
#include "admin/internal.h"
#include "cache/cache.h"
#include "cluster/cluster.h"
#include "log/log.h"
#include "proxy/proxy.h"
#include "server/server.h"
#include "tls/tls.h"
#include "upstream/pool.h"
#include "util/util.h"

#define EVENTS_SHOWN  20
#define ERRORS_SHOWN  5
#define RATE_MIN_MS   1000 /* live rates are measured over at least this long ... */
#define RATE_FIRST_MS 100  /* ... or this long just after start */

/* One reading of the counters (cumulative, as the workers count them). */
typedef struct sample {
    int64_t wall_ms;
    uint64_t mono_ms;
    uint64_t requests[OE_PROTO_COUNT];
    uint64_t r4xx, r5xx;
    uint64_t conns_open, ws_open;
    uint64_t cache_hits, cache_misses;
    uint64_t upstream_errors, upstream_timeouts;
    uint64_t abuse_closed, abuse_refused;
} sample_t;

/* The configuration the current answer describes: the generation in service, held by the
 * snapshot (take_snapshot .. free_snapshot); only the admin thread answers. */
static const oe_config_t *cfg, *startup_cfg;
static time_t started_at;
static pthread_mutex_t ring_lock = PTHREAD_MUTEX_INITIALIZER;
static sample_t ring[OE_ADMIN_HISTORY];
static unsigned ring_next, ring_count;
static uint64_t next_sample_ms;

/* Everything one answer shows, read once so /status.json and /metrics agree. */
typedef struct snapshot {
    time_t now;
    oe_tls_info_t *tls;     /* what each site serves, in cfg->sites order */
    uint64_t swaps;         /* certificates swapped in since start, all sites */
    oe_acme_status_t *acme; /* one per ACME certificate (at most one per site) */
    size_t nacme;
    int upstream_ok;
    const char *upstream_reason;
    int ready;
    const char *ready_reason;
    int draining;
    oe_proxy_gen_t *gen; /* held while the snapshot lives */
    uint64_t generation;
    oe_admin_reloads_t reloads;
} snapshot_t;

static int64_t wall_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static void read_counters(sample_t *s)
{
    oe_metrics_worker_t m;
    oe_cache_counters_t c;
    oe_metrics_sum(&m);
    oe_cache_counters(&c);
    *s = (sample_t){.wall_ms = wall_ms(), .mono_ms = oe_util_now_ms()};
    for (int p = 0; p < OE_PROTO_COUNT; p++)
        for (int k = 0; k < 6; k++)
            s->requests[p] += m.requests[p][k];
    for (int p = 0; p < OE_PROTO_COUNT; p++) {
        s->r4xx += m.requests[p][4];
        s->r5xx += m.requests[p][5];
    }
    s->conns_open = m.conns_accepted - m.conns_closed;
    s->ws_open = m.ws_opened - m.ws_closed;
    s->cache_hits = c.hits;
    s->cache_misses = c.misses;
    s->upstream_errors = m.upstream_errors;
    s->upstream_timeouts = m.upstream_timeouts;
    s->abuse_closed = m.abuse_closed;
    s->abuse_refused = m.abuse_refused;
}

void oe_admin_status_init(const oe_config_t *c)
{
    cfg = startup_cfg = c;
    started_at = time(NULL);
    /* the events the page lists: the log keeps them whatever log.level is */
    oe_log_remember("acme_");
    oe_log_remember("upstream_");
    next_sample_ms = 0;
    (void)oe_admin_status_tick();
}

uint64_t oe_admin_status_tick(void)
{
    uint64_t now = oe_util_now_ms();
    if (now < next_sample_ms)
        return next_sample_ms - now;
    next_sample_ms = now + OE_ADMIN_SAMPLE_MS;
    sample_t s;
    read_counters(&s);
    pthread_mutex_lock(&ring_lock);
    ring[ring_next] = s;
    ring_next = (ring_next + 1) % OE_ADMIN_HISTORY;
    if (ring_count < OE_ADMIN_HISTORY)
        ring_count++;
    pthread_mutex_unlock(&ring_lock);
    return OE_ADMIN_SAMPLE_MS;
}

/* Copies the ring, oldest first; returns how many. */
static unsigned history(sample_t *out)
{
    pthread_mutex_lock(&ring_lock);
    unsigned n = ring_count;
    for (unsigned i = 0; i < n; i++)
        out[i] = ring[(ring_next + OE_ADMIN_HISTORY - n + i) % OE_ADMIN_HISTORY];
    pthread_mutex_unlock(&ring_lock);
    return n;
}

static void free_snapshot(snapshot_t *s);

/* Returns 0, or -1 when out of memory (nothing to free then). */
static int take_snapshot(snapshot_t *s)
{
    memset(s, 0, sizeof(*s));
    s->now = time(NULL);
    s->gen = oe_proxy_gen_acquire();
    cfg = s->gen != NULL ? oe_proxy_gen_config(s->gen) : startup_cfg;
    s->generation = s->gen != NULL ? oe_proxy_gen_number(s->gen) : 0;
    oe_admin_reloads(&s->reloads);
    s->tls = calloc(cfg->sites_count, sizeof(*s->tls));
    s->acme = calloc(cfg->sites_count, sizeof(*s->acme));
    if (s->tls == NULL || s->acme == NULL) {
        free_snapshot(s);
        return -1;
    }
    for (size_t i = 0; i < cfg->sites_count; i++)
        oe_tls_info_for(cfg->sites[i].name, &s->tls[i]);
    s->swaps = oe_tls_swaps();
    s->nacme = oe_acme_status(s->acme, cfg->sites_count);
    s->upstream_ok = oe_upstream_ready(&s->upstream_reason);
    s->ready = oe_admin_ready(cfg, &s->ready_reason);
    s->draining = oe_server_draining();
    return 0;
}

static void free_snapshot(snapshot_t *s)
{
    free(s->tls);
    free(s->acme);
    s->tls = NULL;
    s->acme = NULL;
    oe_proxy_gen_release(s->gen);
    s->gen = NULL;
    cfg = startup_cfg;
}

/* Where site i's certificate comes from. */
static const char *cert_source(const snapshot_t *s, size_t i)
{
    if (!s->tls[i].loaded)
        return "none";
    if (s->tls[i].fallback)
        return "self-signed";
    return oe_config_site_acme(cfg, i) ? "acme" : "file";
}

/* Whether name is in the comma-separated list (a name on two sites' certificates gets one
 * expiry series). */
static int listed(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; (p = strstr(p, name)) != NULL; p += n)
        if ((p == list || p[-1] == ',') && (p[n] == ',' || p[n] == '\0'))
            return 1;
    return 0;
}

/* The certificate families: every served name (once), each site's certificate, and over all
 * sites whether a self-signed fallback is served and how many swaps there were. */
static void certificate_metrics(const snapshot_t *s, oe_metrics_out_t *o)
{
    size_t cap = cfg->sites_count * sizeof(s->tls[0].names) + 1, len = 0;
    char *seen = calloc(1, cap);
    int any_fallback = 0;
    if (oe_metrics_family(o, "ott_edge_certificate_expiry_seconds", OE_METRICS_GAUGE,
                          "Seconds until the served certificate expires, per name.") == 0 &&
        seen != NULL) {
        for (size_t i = 0; i < cfg->sites_count; i++) {
            if (!s->tls[i].loaded)
                continue;
            char names[sizeof(s->tls[i].names)], *save = NULL;
            memcpy(names, s->tls[i].names, sizeof(names));
            for (char *n = strtok_r(names, ",", &save); n != NULL; n = strtok_r(NULL, ",", &save)) {
                if (listed(seen, n))
                    continue;
                len += (size_t)snprintf(seen + len, cap - len, "%s%s", len ? "," : "", n);
                oe_metrics_sample(o, (double)(s->tls[i].not_after - s->now), "name", n, NULL);
            }
        }
    }
    free(seen);
    if (oe_metrics_family(o, "ott_edge_site_certificate_expiry_seconds", OE_METRICS_GAUGE,
                          "Seconds until the certificate a site serves expires.") == 0)
        for (size_t i = 0; i < cfg->sites_count; i++)
            if (s->tls[i].loaded)
                oe_metrics_sample(o, (double)(s->tls[i].not_after - s->now), "site", cfg->sites[i].name, NULL);
    if (oe_metrics_family(o, "ott_edge_site_certificate_self_signed", OE_METRICS_GAUGE,
                          "1 while a site serves the generated self-signed certificate.") == 0)
        for (size_t i = 0; i < cfg->sites_count; i++)
            oe_metrics_sample(o, s->tls[i].loaded && s->tls[i].fallback, "site", cfg->sites[i].name, NULL);
    for (size_t i = 0; i < cfg->sites_count; i++)
        any_fallback |= s->tls[i].loaded && s->tls[i].fallback;
    oe_metrics_gauge(o, "ott_edge_certificate_self_signed",
                     "1 while some site serves the generated self-signed certificate.", any_fallback);
    oe_metrics_counter(o, "ott_edge_certificate_swaps_total", "Certificates loaded since start.", (double)s->swaps);
}

/* ---- /metrics ------------------------------------------------------------------------ */

static void acme_metrics(const snapshot_t *s, oe_metrics_out_t *o);

void oe_admin_status_metrics(void *data, oe_metrics_out_t *o)
{
    (void)data;
    snapshot_t s;
    if (take_snapshot(&s) != 0)
        return;
    if (oe_metrics_family(o, "ott_edge_build_info", OE_METRICS_GAUGE, "Always 1; the version is in the label.") == 0)
        oe_metrics_sample(o, 1, "version", OE_VERSION, NULL);
    oe_metrics_gauge(o, "ott_edge_start_time_seconds", "When this process started (Unix time).", (double)started_at);
    certificate_metrics(&s, o);
    oe_metrics_gauge(o, "ott_edge_upstream_up", "1 while every site has an upstream server up.", s.upstream_ok);
    oe_metrics_gauge(o, "ott_edge_ready", "1 when /readyz answers 200.", s.ready);
    oe_metrics_gauge(o, "ott_edge_config_generation",
                     "The configuration generation in service: 1 at start, +1 per successful reload.",
                     (double)s.generation);
    if (oe_metrics_family(o, "ott_edge_config_reloads_total", OE_METRICS_COUNTER,
                          "Configuration reloads (SIGHUP, POST /reload) by result.") == 0) {
        oe_metrics_sample(o, (double)s.reloads.ok, "result", "ok", NULL);
        oe_metrics_sample(o, (double)s.reloads.failed, "result", "failed", NULL);
    }
    oe_metrics_gauge(o, "ott_edge_config_last_reload_success", "1 when the last reload succeeded (1 before any).",
                     s.reloads.last_at == 0 || s.reloads.last_ok);
    oe_metrics_gauge(o, "ott_edge_draining", "1 once a shutdown has begun.", s.draining);
    acme_metrics(&s, o);
    free_snapshot(&s);
}

/* The ACME families (none while ACME is off): over all certificates (the families the
 * one-site form always had: sums, the earliest, the most, the latest), then per site. */
static void acme_metrics(const snapshot_t *s, oe_metrics_out_t *o)
{
    if (s->nacme == 0)
        return;
    uint64_t ok = 0, failed = 0;
    time_t next = 0, last_ok = 0, last_failed = 0;
    unsigned failures = 0;
    for (size_t i = 0; i < s->nacme; i++) {
        const oe_acme_status_t *a = &s->acme[i];
        ok += a->ok, failed += a->failed;
        if (next == 0 || (a->next_attempt != 0 && a->next_attempt < next))
            next = a->next_attempt;
        failures = a->failures > failures ? a->failures : failures;
        last_ok = a->last_success > last_ok ? a->last_success : last_ok;
        last_failed = a->last_failure > last_failed ? a->last_failure : last_failed;
    }
    if (oe_metrics_family(o, "ott_edge_acme_renewals_total", OE_METRICS_COUNTER,
                          "ACME orders completed, by result (all sites).") == 0) {
        oe_metrics_sample(o, (double)ok, "result", "ok", NULL);
        oe_metrics_sample(o, (double)failed, "result", "failed", NULL);
    }
    oe_metrics_gauge(o, "ott_edge_acme_next_attempt_timestamp_seconds",
                     "When the next ACME order is due (Unix time; the earliest of all sites).", (double)next);
    oe_metrics_gauge(o, "ott_edge_acme_consecutive_failures", "ACME orders failed in a row (the most of any site).",
                     failures);
    oe_metrics_gauge(o, "ott_edge_acme_last_success_timestamp_seconds",
                     "When ACME last installed a certificate (Unix time; 0: not since start).", (double)last_ok);
    oe_metrics_gauge(o, "ott_edge_acme_last_failure_timestamp_seconds",
                     "When an ACME order last failed (Unix time; 0: not since start).", (double)last_failed);
    if (oe_metrics_family(o, "ott_edge_acme_site_renewals_total", OE_METRICS_COUNTER,
                          "ACME orders completed for a site's certificate, by result.") == 0)
        for (size_t i = 0; i < s->nacme; i++) {
            oe_metrics_sample(o, (double)s->acme[i].ok, "site", s->acme[i].site, "result", "ok", NULL);
            oe_metrics_sample(o, (double)s->acme[i].failed, "site", s->acme[i].site, "result", "failed", NULL);
        }
    if (oe_metrics_family(o, "ott_edge_acme_site_next_attempt_timestamp_seconds", OE_METRICS_GAUGE,
                          "When the next ACME order for a site is due (Unix time).") == 0)
        for (size_t i = 0; i < s->nacme; i++)
            oe_metrics_sample(o, (double)s->acme[i].next_attempt, "site", s->acme[i].site, NULL);
    if (oe_metrics_family(o, "ott_edge_acme_site_consecutive_failures", OE_METRICS_GAUGE,
                          "ACME orders for a site failed in a row.") == 0)
        for (size_t i = 0; i < s->nacme; i++)
            oe_metrics_sample(o, s->acme[i].failures, "site", s->acme[i].site, NULL);
}

/* ---- /status.json ---------------------------------------------------------------------- */

static json_t *time_or_null(time_t t)
{
    return t > 0 ? json_integer((json_int_t)t) : json_null();
}

static json_t *str_or_null(const char *s)
{
    return s != NULL && s[0] != '\0' ? json_string(s) : json_null();
}

/* Cluster mode as this replica sees it (from memory: the status never asks Redis); null
 * when cluster.redis is not set. */
static json_t *cluster_json(void)
{
    oe_cluster_info_t ci;
    oe_cluster_info(&ci);
    if (!ci.enabled)
        return json_null();
    return json_pack("{s:s, s:b, s:o, s:o, s:I, s:I, s:o}", "node", ci.node, "redis_up", ci.up, "down_since",
                     time_or_null(ci.down_since), "last_sync", time_or_null(ci.last_sync), "locks_held",
                     (json_int_t)ci.locks_held, "certificates_received", (json_int_t)ci.received, "last_error",
                     str_or_null(ci.last_error));
}

/* "a,b,c" -> ["a","b","c"] */
static json_t *name_list(const char *names)
{
    json_t *a = json_array();
    const char *p = names;
    while (a != NULL && *p != '\0') {
        size_t l = strcspn(p, ",");
        if (l > 0)
            json_array_append_new(a, json_stringn(p, l));
        p += l;
        if (*p == ',')
            p++;
    }
    return a;
}

static json_t *event_json(const oe_log_event_t *e)
{
    json_t *fields = json_object();
    size_t pos = 0;
    const char *k, *v;
    while (oe_log_event_next(e, &pos, &k, &v) == 0)
        json_object_set_new(fields, k, json_string(v));
    return json_pack("{s:I, s:s, s:s, s:o}", "at_ms", (json_int_t)e->at_ms, "level", oe_log_level_name(e->level),
                     "event", e->event, "fields", fields);
}

static json_t *acme_json(const oe_acme_status_t *a)
{
    json_t *ari = a->ari_start > 0
                      ? json_pack("{s:I, s:I}", "start", (json_int_t)a->ari_start, "end", (json_int_t)a->ari_end)
                      : json_null();
    return json_pack("{s:o, s:o, s:i, s:I, s:I, s:o, s:o, s:o}", "next_attempt", time_or_null(a->next_attempt),
                     "ari_window", ari, "consecutive_failures", (int)a->failures, "orders_ok", (json_int_t)a->ok,
                     "orders_failed", (json_int_t)a->failed, "last_success", time_or_null(a->last_success),
                     "last_problem", str_or_null(a->last_error), "last_problem_at", time_or_null(a->last_failure));
}

/* The ACME job of site i, or NULL. */
static const oe_acme_status_t *site_acme(const snapshot_t *s, size_t i)
{
    for (size_t k = 0; k < s->nacme; k++)
        if (strcmp(s->acme[k].site, cfg->sites[i].name) == 0)
            return &s->acme[k];
    return NULL;
}

/* What site i serves (null when nothing), with its ACME job's state (null without one). */
static json_t *certificate_json(const snapshot_t *s, size_t i)
{
    const oe_tls_info_t *t = &s->tls[i];
    if (!t->loaded)
        return json_null();
    double days = (double)(t->not_after - s->now) / 86400.0;
    json_t *c = json_pack("{s:s, s:o, s:s, s:s, s:s, s:I, s:I, s:f}", "source", cert_source(s, i), "names",
                          name_list(t->names), "subject", t->subject, "issuer", t->issuer, "serial", t->serial,
                          "not_before", (json_int_t)t->not_before, "not_after", (json_int_t)t->not_after, "days_left",
                          (double)(long long)(days * 10) / 10.0);
    const oe_acme_status_t *a = site_acme(s, i);
    if (c != NULL)
        json_object_set_new(c, "acme", a != NULL ? acme_json(a) : json_null());
    return c;
}

/* Rate per second of a counter between two samples. */
#define RATE(a, b, field)                                                                                              \
    ((b)->mono_ms > (a)->mono_ms ? (double)((b)->field - (a)->field) * 1000.0 / (double)((b)->mono_ms - (a)->mono_ms)  \
                                 : 0.0)

static json_t *ratio_or_null(uint64_t hits, uint64_t misses)
{
    return hits + misses > 0 ? json_real((double)hits / (double)(hits + misses)) : json_null();
}

#define MAX_SERVERS_SHOWN 1024

/* The servers of one site: state, counts, recent errors. */
static json_t *upstream_json(const char *site, const oe_upstream_status_t *u, size_t nu, const sample_t *h, unsigned n,
                             const sample_t *now)
{
    /* 502/504 answered over the history kept (up to ten minutes), all sites together */
    uint64_t e502 = n > 0 ? now->upstream_errors - h[0].upstream_errors : 0;
    uint64_t e504 = n > 0 ? now->upstream_timeouts - h[0].upstream_timeouts : 0;
    oe_log_event_t ev[ERRORS_SHOWN];
    size_t ne = oe_log_recent("upstream_", ev, ERRORS_SHOWN);
    json_t *list = json_array();
    for (size_t k = 0; k < nu; k++) {
        if (strcmp(u[k].site, site) != 0)
            continue;
        json_t *errors = json_array();
        for (size_t i = 0; i < ne; i++) {
            const char *url = oe_log_event_field(&ev[i], "url");
            if (strcmp(ev[i].event, "upstream_down") == 0 && url != NULL && strcmp(url, u[k].url) == 0)
                json_array_append_new(errors, json_pack("{s:I, s:s}", "at_ms", (json_int_t)ev[i].at_ms, "error",
                                                        oe_log_event_field(&ev[i], "error") ?: ""));
        }
        char reason[200];
        if (!u[k].answered)
            snprintf(reason, sizeof(reason), "upstream has not answered yet");
        else
            snprintf(reason, sizeof(reason), "upstream is not answering%s%s%s", u[k].last_error[0] ? " (" : "",
                     u[k].last_error, u[k].last_error[0] ? ")" : "");
        int up = u[k].up && u[k].answered;
        json_array_append_new(
            list, json_pack("{s:s, s:s, s:o, s:I, s:I, s:I, s:I, s:I, s:I, s:i, s:o}", "url", u[k].url, "state",
                            up ? "up" : "down", "reason", up ? json_null() : json_string(reason), "requests",
                            (json_int_t)u[k].requests, "errors", (json_int_t)u[k].errors, "active",
                            (json_int_t)u[k].active, "websockets", (json_int_t)u[k].websockets, "errors_502",
                            (json_int_t)e502, "errors_504", (json_int_t)e504, "window_s",
                            n > 0 ? (int)((now->mono_ms - h[0].mono_ms) / 1000) : 0, "recent_errors", errors));
    }
    return list;
}

static json_t *sites_json(const snapshot_t *s, const sample_t *h, unsigned n, const sample_t *now)
{
    static oe_upstream_status_t u[MAX_SERVERS_SHOWN]; /* the admin thread's alone */
    size_t nu = oe_upstream_status(u, MAX_SERVERS_SHOWN);
    json_t *list = json_array();
    for (size_t i = 0; i < cfg->sites_count; i++) {
        const oe_site_t *site = &cfg->sites[i];
        json_t *domains = json_array();
        for (size_t d = 0; d < site->domains.count; d++)
            json_array_append_new(domains, json_string(site->domains.items[d]));
        json_array_append_new(list, json_pack("{s:s, s:o, s:o, s:o}", "name", site->name, "domains", domains,
                                              "certificate", certificate_json(s, i), "upstreams",
                                              upstream_json(site->name, u, nu, h, n, now)));
    }
    return list;
}

static json_t *live_json(const sample_t *h, unsigned n, const sample_t *now)
{
    /* rates against the newest sample at least RATE_MIN_MS old (just after start: the first) */
    const sample_t *base = n > 0 && now->mono_ms - h[0].mono_ms >= RATE_FIRST_MS ? &h[0] : NULL;
    for (unsigned i = n; i-- > 0;)
        if (now->mono_ms - h[i].mono_ms >= RATE_MIN_MS) {
            base = &h[i];
            break;
        }
    json_t *rps = json_null(), *r4 = json_null(), *r5 = json_null(), *hit = json_null();
    if (base != NULL) {
        rps = json_real(RATE(base, now, requests[0]) + RATE(base, now, requests[1]));
        r4 = json_real(RATE(base, now, r4xx));
        r5 = json_real(RATE(base, now, r5xx));
    }
    oe_cache_counters_t c;
    oe_cache_counters(&c);
    if (c.enabled)
        hit = ratio_or_null(c.hits, c.misses);
    oe_metrics_worker_t m;
    oe_metrics_sum(&m);
    return json_pack("{s:I, s:n, s:I, s:I, s:o, s:o, s:o, s:{s:I, s:I, s:I}, s:o, s:{s:b, s:I, s:I, s:I}, "
                     "s:{s:I, s:I}, s:n}",
                     "connections", (json_int_t)now->conns_open, "connections_by_protocol", "websockets",
                     (json_int_t)now->ws_open, "requests_in_flight", (json_int_t)(m.inflight_started - m.inflight_done),
                     "requests_per_s", rps, "r4xx_per_s", r4, "r5xx_per_s", r5, "requests", "http1",
                     (json_int_t)now->requests[0], "http2", (json_int_t)now->requests[1], "total",
                     (json_int_t)(now->requests[0] + now->requests[1]), "cache_hit_ratio", hit, "cache", "enabled",
                     c.enabled, "hits", (json_int_t)c.hits, "misses", (json_int_t)c.misses, "stored_bytes",
                     (json_int_t)c.stored_bytes, "flood_guard", "cut", (json_int_t)now->abuse_closed, "refused",
                     (json_int_t)now->abuse_refused, "rate_limited");
}

/* Per-interval series for the charts, oldest first (one point per pair of samples). */
static json_t *history_json(const sample_t *h, unsigned n)
{
    json_t *t = json_array(), *rps = json_array(), *r4 = json_array(), *r5 = json_array(), *conns = json_array(),
           *ws = json_array(), *hit = json_array();
    for (unsigned i = 1; i < n; i++) {
        const sample_t *a = &h[i - 1], *b = &h[i];
        json_array_append_new(t, json_integer((json_int_t)(b->wall_ms / 1000)));
        json_array_append_new(rps, json_real(RATE(a, b, requests[0]) + RATE(a, b, requests[1])));
        json_array_append_new(r4, json_real(RATE(a, b, r4xx)));
        json_array_append_new(r5, json_real(RATE(a, b, r5xx)));
        json_array_append_new(conns, json_integer((json_int_t)b->conns_open));
        json_array_append_new(ws, json_integer((json_int_t)b->ws_open));
        json_array_append_new(hit, ratio_or_null(b->cache_hits - a->cache_hits, b->cache_misses - a->cache_misses));
    }
    return json_pack("{s:i, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "interval_s", OE_ADMIN_SAMPLE_MS / 1000, "t", t,
                     "requests_per_s", rps, "r4xx_per_s", r4, "r5xx_per_s", r5, "connections", conns, "websockets", ws,
                     "cache_hit_ratio", hit);
}

char *oe_admin_status_json(size_t *len)
{
    snapshot_t s;
    sample_t now;
    if (take_snapshot(&s) != 0)
        return NULL;
    read_counters(&now);
    sample_t *h = malloc(sizeof(sample_t) * OE_ADMIN_HISTORY);
    oe_log_event_t *ev = malloc(sizeof(oe_log_event_t) * EVENTS_SHOWN);
    if (h == NULL || ev == NULL) {
        free(h);
        free(ev);
        free_snapshot(&s);
        return NULL;
    }
    unsigned n = history(h);
    json_t *events = json_array();
    size_t ne = oe_log_recent("acme_", ev, EVENTS_SHOWN);
    for (size_t i = 0; i < ne; i++)
        json_array_append_new(events, event_json(&ev[i]));
    json_t *config =
        json_pack("{s:I, s:I, s:I, s:o, s:o, s:o}", "generation", (json_int_t)s.generation, "reloads_ok",
                  (json_int_t)s.reloads.ok, "reloads_failed", (json_int_t)s.reloads.failed, "last_reload",
                  time_or_null(s.reloads.last_at), "last_reload_result",
                  s.reloads.last_at == 0 ? json_null() : json_string(s.reloads.last_ok ? "ok" : "failed"),
                  "last_reload_message", s.reloads.last_at == 0 ? json_null() : str_or_null(s.reloads.last_message));
    json_t *doc =
        json_pack("{s:s, s:I, s:I, s:I, s:b, s:o, s:b, s:o, s:o, s:o, s:o, s:o, s:o}", "version", OE_VERSION, "pid",
                  (json_int_t)getpid(), "now", (json_int_t)s.now, "started", (json_int_t)started_at, "ready", s.ready,
                  "ready_reason", s.ready ? json_null() : str_or_null(s.ready_reason), "draining", s.draining, "config",
                  config, "cluster", cluster_json(), "sites", sites_json(&s, h, n, &now), "live", live_json(h, n, &now),
                  "history", history_json(h, n), "acme_events", events);
    free(h);
    free(ev);
    free_snapshot(&s);
    char *text = doc != NULL ? json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(4)) : NULL;
    json_decref(doc);
    if (text != NULL && len != NULL)
        *len = strlen(text);
    return text;
}
