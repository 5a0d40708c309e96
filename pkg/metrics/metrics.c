/* metrics — see metrics.h. */
#include "metrics/metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log/log.h"

#define MAX_SECTIONS 16
#define RENDER_CAP   (256 * 1024)
#define MAX_FAMILIES 256
#define NAME_MAX_LEN 127

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
static int duplicate_logged;

struct oe_metrics_out {
    oe_util_buf_t b;
    int full; /* a line did not fit: nothing more is written */
    int skip; /* the current family was refused: drop its samples */
    char family[NAME_MAX_LEN + 1];
    uint64_t seen[MAX_FAMILIES]; /* hashes of the family names written so far */
    unsigned nseen;
};

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

int oe_metrics_thread_index(void)
{
    return self_block != NULL ? (int)(self_block - workers) : -1;
}

void oe_metrics_set_worker_count(unsigned n)
{
    worker_count = n > OE_METRICS_MAX_WORKERS ? OE_METRICS_MAX_WORKERS : n;
}

unsigned oe_metrics_worker_count(void)
{
    return worker_count;
}

void oe_metrics_sum(oe_metrics_worker_t *out)
{
    /* the block is all uint64_t counters: sum it field by field */
    uint64_t *o = (uint64_t *)out;
    size_t n = sizeof(*out) / sizeof(uint64_t), hb = offsetof(oe_metrics_worker_t, heartbeat_ms) / sizeof(uint64_t);
    memset(out, 0, sizeof(*out));
    for (unsigned w = 0; w < worker_count; w++) {
        const uint64_t *in = (const uint64_t *)&workers[w];
        for (size_t i = 0; i < n; i++) {
            uint64_t v = oe_metrics_get(&in[i]);
            if (i == hb)
                o[i] = w == 0 || v < o[i] ? v : o[i];
            else
                o[i] += v;
        }
    }
}

void oe_metrics_add_section(oe_metrics_section_cb cb, void *data)
{
    pthread_mutex_lock(&section_lock);
    if (section_count < MAX_SECTIONS) {
        sections[section_count].cb = cb;
        sections[section_count].data = data;
        section_count++;
    } else {
        oe_log(OE_LOG_ERROR, "metrics_section_dropped", "msg", "too many /metrics sections (raise MAX_SECTIONS)", NULL);
    }
    pthread_mutex_unlock(&section_lock);
}

/* ---- the writer ------------------------------------------------------------------------ */

static int valid_name(const char *s, int colon_ok)
{
    size_t n = strlen(s);
    if (n == 0 || n > NAME_MAX_LEN || (s[0] >= '0' && s[0] <= '9'))
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
              (colon_ok && c == ':')))
            return 0;
    }
    return 1;
}

static uint64_t name_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* Appends one complete line built by the callers below, or nothing once the output is full. */
static void end_line(oe_metrics_out_t *o, size_t mark)
{
    if (o->b.truncated) {
        oe_util_buf_rewind(&o->b, mark);
        o->full = 1;
    }
}

/* Escapes a HELP text (backslash, newline) or a label value (also '"'). */
static void put_escaped(oe_util_buf_t *b, const char *s, int quote)
{
    for (const char *p = s; *p; p++) {
        if (*p == '\\')
            oe_util_buf_put(b, "\\\\", 2);
        else if (*p == '\n')
            oe_util_buf_put(b, "\\n", 2);
        else if (quote && *p == '"')
            oe_util_buf_put(b, "\\\"", 2);
        else
            oe_util_buf_put(b, p, 1);
    }
}

int oe_metrics_family(oe_metrics_out_t *o, const char *name, int type, const char *help)
{
    o->skip = 1;
    if (!valid_name(name, 1)) {
        oe_log(OE_LOG_ERROR, "metrics_bad_name", "name", name, NULL);
        return -1;
    }
    uint64_t h = name_hash(name);
    for (unsigned i = 0; i < o->nseen; i++) {
        if (o->seen[i] == h) {
            if (!__atomic_exchange_n(&duplicate_logged, 1, __ATOMIC_RELAXED))
                oe_log(OE_LOG_ERROR, "metrics_duplicate_family", "name", name, "msg",
                       "a second writer of this family was dropped", NULL);
            return -1;
        }
    }
    if (o->nseen < MAX_FAMILIES)
        o->seen[o->nseen++] = h;
    if (o->full)
        return 0; /* counted as written, so a duplicate is still refused */
    snprintf(o->family, sizeof(o->family), "%s", name);
    o->skip = 0;
    size_t mark = o->b.len;
    oe_util_buf_printf(&o->b, "# HELP %s ", name);
    put_escaped(&o->b, help, 0);
    oe_util_buf_printf(&o->b, "\n# TYPE %s %s\n", name, type == OE_METRICS_COUNTER ? "counter" : "gauge");
    end_line(o, mark);
    return 0;
}

static void put_value(oe_util_buf_t *b, double v)
{
    if (isnan(v))
        oe_util_buf_puts(b, "NaN");
    else if (isinf(v))
        oe_util_buf_puts(b, v > 0 ? "+Inf" : "-Inf");
    else if (v > -9007199254740992.0 && v < 9007199254740992.0 && v == (double)(long long)v)
        oe_util_buf_printf(b, "%lld", (long long)v); /* integers exactly, as Prometheus writes them */
    else
        oe_util_buf_printf(b, "%.9g", v);
}

void oe_metrics_sample(oe_metrics_out_t *o, double value, ...)
{
    if (o->skip || o->full)
        return;
    size_t mark = o->b.len;
    oe_util_buf_puts(&o->b, o->family);
    va_list ap;
    va_start(ap, value);
    const char *k;
    int first = 1;
    while ((k = va_arg(ap, const char *)) != NULL) {
        const char *v = va_arg(ap, const char *);
        if (!valid_name(k, 0) || strncmp(k, "__", 2) == 0) {
            va_end(ap);
            oe_log(OE_LOG_ERROR, "metrics_bad_label", "family", o->family, "label", k, NULL);
            oe_util_buf_rewind(&o->b, mark);
            return;
        }
        oe_util_buf_printf(&o->b, "%s%s=\"", first ? "{" : ",", k);
        put_escaped(&o->b, v != NULL ? v : "", 1);
        oe_util_buf_put(&o->b, "\"", 1);
        first = 0;
    }
    va_end(ap);
    oe_util_buf_puts(&o->b, first ? " " : "} ");
    put_value(&o->b, value);
    oe_util_buf_put(&o->b, "\n", 1);
    end_line(o, mark);
}

void oe_metrics_counter(oe_metrics_out_t *o, const char *name, const char *help, double value)
{
    if (oe_metrics_family(o, name, OE_METRICS_COUNTER, help) == 0)
        oe_metrics_sample(o, value, NULL);
}

void oe_metrics_gauge(oe_metrics_out_t *o, const char *name, const char *help, double value)
{
    if (oe_metrics_family(o, name, OE_METRICS_GAUGE, help) == 0)
        oe_metrics_sample(o, value, NULL);
}

/* ---- rendering ------------------------------------------------------------------------- */

/* The families this module owns: what the worker blocks count. */
static void render_workers(oe_metrics_out_t *o)
{
    static const char *protos[] = {"http1", "http2"};
    static const char *classes[] = {"other", "1xx", "2xx", "3xx", "4xx", "5xx"};
    oe_metrics_worker_t s;
    oe_metrics_sum(&s);

    if (oe_metrics_family(o, "ott_edge_requests_total", OE_METRICS_COUNTER,
                          "Requests answered on the HTTPS listener, by protocol and status class.") == 0)
        for (int p = 0; p < OE_PROTO_COUNT; p++)
            for (int c = 0; c < 6; c++)
                oe_metrics_sample(o, (double)s.requests[p][c], "protocol", protos[p], "code", classes[c], NULL);
    oe_metrics_counter(o, "ott_edge_connections_accepted_total",
                       "Client connections accepted (all listeners but admin).", (double)s.conns_accepted);
    oe_metrics_gauge(o, "ott_edge_connections_open", "Client connections open now.",
                     (double)(s.conns_accepted - s.conns_closed));
    oe_metrics_gauge(o, "ott_edge_websockets_open",
                     "Client connections upgraded (or upgrading) to WebSocket, open now.",
                     (double)(s.ws_opened - s.ws_closed));
    oe_metrics_counter(o, "ott_edge_websockets_total", "WebSocket upgrades requested.", (double)s.ws_opened);
    oe_metrics_gauge(o, "ott_edge_requests_in_flight", "Requests being answered now.",
                     (double)(s.inflight_started - s.inflight_done));
    oe_metrics_counter(o, "ott_edge_upstream_errors_total", "Requests answered 502 because the upstream failed.",
                       (double)s.upstream_errors);
    oe_metrics_counter(o, "ott_edge_upstream_timeouts_total",
                       "Requests answered 504 because the upstream was too slow.", (double)s.upstream_timeouts);
    oe_metrics_counter(o, "ott_edge_upstream_connections_opened_total",
                       "Upstream connections opened for requests (keep-alive pool empty).",
                       (double)s.upstream_connects);
    oe_metrics_counter(o, "ott_edge_upstream_connections_reused_total",
                       "Requests sent on an idle kept-alive upstream connection.", (double)s.upstream_reused);
    oe_metrics_counter(o, "ott_edge_tls_handshake_errors_total", "TLS handshakes that failed or timed out.",
                       (double)s.tls_handshake_errors);
    oe_metrics_counter(o, "ott_edge_acme_tls_alpn_challenges_total", "TLS-ALPN-01 validation handshakes answered.",
                       (double)s.acme_tls_alpn_served);
    oe_metrics_counter(o, "ott_edge_acme_http01_served_total", "HTTP-01 tokens served.", (double)s.http01_served);
    oe_metrics_counter(o, "ott_edge_http_redirects_total", "Requests redirected from HTTP to HTTPS.",
                       (double)s.redirects);
    oe_metrics_counter(o, "ott_edge_abusive_connections_closed_total",
                       "Connections cut for abuse (e.g. HTTP/2 streams opened and cancelled at once).",
                       (double)s.abuse_closed);
    oe_metrics_counter(o, "ott_edge_abusive_connections_refused_total",
                       "Connections refused because their peer was recently cut for abuse.", (double)s.abuse_refused);
    oe_metrics_counter(o, "ott_edge_blocked_requests_total", "Requests refused by proxy.block_paths.",
                       (double)s.blocked);
    oe_metrics_counter(o, "ott_edge_misrouted_requests_total",
                       "Requests no site takes (404), or for another site than their connection's (421).",
                       (double)s.misrouted);
}

char *oe_metrics_render(size_t *len)
{
    oe_metrics_out_t *o = calloc(1, sizeof(*o));
    char *buf = malloc(RENDER_CAP);
    if (o == NULL || buf == NULL) {
        free(o);
        free(buf);
        return NULL;
    }
    oe_util_buf_init(&o->b, buf, RENDER_CAP);
    render_workers(o);
    pthread_mutex_lock(&section_lock);
    for (unsigned i = 0; i < section_count; i++)
        sections[i].cb(sections[i].data, o);
    pthread_mutex_unlock(&section_lock);
    if (o->full)
        oe_log(OE_LOG_WARN, "metrics_truncated", "msg", "/metrics is larger than 256 KiB: the rest was left out", NULL);
    if (len != NULL)
        *len = o->b.len;
    free(o);
    return buf;
}
