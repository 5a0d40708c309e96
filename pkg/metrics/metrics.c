/* metrics — see metrics.h. */
#include "metrics/metrics.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_SECTIONS 8
#define RENDER_CAP   (256 * 1024)

static oe_metrics_worker_t workers[OE_METRICS_MAX_WORKERS];
static unsigned worker_count = 1;
static __thread oe_metrics_worker_t *self_block;
static __thread oe_metrics_worker_t unbound_block;
static struct {
    oe_metrics_section_cb cb;
    void *data;
} sections[MAX_SECTIONS];
static unsigned section_count;
static pthread_mutex_t section_lock = PTHREAD_MUTEX_INITIALIZER;

oe_metrics_worker_t *oe_metrics_worker(unsigned i)
{
    return &workers[i < OE_METRICS_MAX_WORKERS ? i : OE_METRICS_MAX_WORKERS - 1];
}

oe_metrics_worker_t *oe_metrics_self(void)
{
    return self_block != NULL ? self_block : &unbound_block;
}

void oe_metrics_bind_thread(unsigned i)
{
    self_block = oe_metrics_worker(i);
}

void oe_metrics_set_worker_count(unsigned n)
{
    worker_count = n > OE_METRICS_MAX_WORKERS ? OE_METRICS_MAX_WORKERS : n;
}

unsigned oe_metrics_worker_count(void)
{
    return worker_count;
}

void oe_metrics_add_section(oe_metrics_section_cb cb, void *data)
{
    pthread_mutex_lock(&section_lock);
    if (section_count < MAX_SECTIONS) {
        sections[section_count].cb = cb;
        sections[section_count].data = data;
        section_count++;
    }
    pthread_mutex_unlock(&section_lock);
}

uint64_t oe_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

typedef struct {
    char *buf;
    size_t len, cap;
} out_t;

static void outf(out_t *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void outf(out_t *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        o->len += (size_t)n < o->cap - o->len ? (size_t)n : o->cap - o->len - 1;
}

/* Sums one counter over all workers. */
#define SUM(field)                                                                                                     \
    ({                                                                                                                 \
        uint64_t s_ = 0;                                                                                               \
        for (unsigned w_ = 0; w_ < worker_count; w_++)                                                                 \
            s_ += oe_metrics_get(&workers[w_].field);                                                                  \
        s_;                                                                                                            \
    })

static void counter(out_t *o, const char *name, const char *help, uint64_t v)
{
    outf(o, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name, name, (unsigned long long)v);
}

static void gauge(out_t *o, const char *name, const char *help, long long v)
{
    outf(o, "# HELP %s %s\n# TYPE %s gauge\n%s %lld\n", name, help, name, name, v);
}

char *oe_metrics_render(void)
{
    out_t o = {malloc(RENDER_CAP), 0, RENDER_CAP};
    if (o.buf == NULL)
        return NULL;
    o.buf[0] = '\0';
    static const char *protos[] = {"http1", "http2"};
    static const char *classes[] = {"other", "1xx", "2xx", "3xx", "4xx", "5xx"};

    outf(&o, "# HELP ott_edge_requests_total Requests answered on the HTTPS listener, by protocol and status class.\n"
             "# TYPE ott_edge_requests_total counter\n");
    for (int p = 0; p < OE_PROTO_COUNT; p++)
        for (int c = 0; c < 6; c++)
            outf(&o, "ott_edge_requests_total{protocol=\"%s\",code=\"%s\"} %llu\n", protos[p], classes[c],
                 (unsigned long long)SUM(requests[p][c]));

    uint64_t accepted = SUM(conns_accepted), closed = SUM(conns_closed);
    uint64_t ws_open = SUM(ws_opened), ws_closed = SUM(ws_closed);
    counter(&o, "ott_edge_connections_accepted_total", "Client connections accepted (all listeners but admin).",
            accepted);
    gauge(&o, "ott_edge_connections_open", "Client connections open now.", (long long)(accepted - closed));
    gauge(&o, "ott_edge_websockets_open", "Client connections upgraded (or upgrading) to WebSocket, open now.",
          (long long)(ws_open - ws_closed));
    counter(&o, "ott_edge_websockets_total", "WebSocket upgrades requested.", ws_open);
    gauge(&o, "ott_edge_requests_in_flight", "Requests being answered now.",
          (long long)(SUM(inflight_started) - SUM(inflight_done)));
    counter(&o, "ott_edge_upstream_errors_total", "Requests answered 502 because the upstream failed.",
            SUM(upstream_errors));
    counter(&o, "ott_edge_upstream_timeouts_total", "Requests answered 504 because the upstream was too slow.",
            SUM(upstream_timeouts));
    counter(&o, "ott_edge_upstream_connections_opened_total",
            "Upstream connections opened for requests (keep-alive pool empty).", SUM(upstream_connects));
    counter(&o, "ott_edge_upstream_connections_reused_total",
            "Requests sent on an idle kept-alive upstream connection.", SUM(upstream_reused));
    counter(&o, "ott_edge_tls_handshake_errors_total", "TLS handshakes that failed or timed out.",
            SUM(tls_handshake_errors));
    counter(&o, "ott_edge_acme_tls_alpn_challenges_total", "TLS-ALPN-01 validation handshakes answered.",
            SUM(acme_tls_alpn_served));
    counter(&o, "ott_edge_acme_http01_served_total", "HTTP-01 tokens served.", SUM(http01_served));
    counter(&o, "ott_edge_http_redirects_total", "Requests redirected from HTTP to HTTPS.", SUM(redirects));
    counter(&o, "ott_edge_abusive_connections_closed_total",
            "Connections cut for abuse (e.g. HTTP/2 streams opened and cancelled at once).", SUM(abuse_closed));
    counter(&o, "ott_edge_abusive_connections_refused_total",
            "Connections refused because their peer was recently cut for abuse.", SUM(abuse_refused));
    counter(&o, "ott_edge_blocked_requests_total", "Requests refused by proxy.block_paths.", SUM(blocked));

    pthread_mutex_lock(&section_lock);
    for (unsigned i = 0; i < section_count; i++)
        if (o.cap - o.len > 1)
            o.len += sections[i].cb(sections[i].data, o.buf + o.len, o.cap - o.len - 1);
    pthread_mutex_unlock(&section_lock);
    o.buf[o.len] = '\0';
    return o.buf;
}
