/*
 * metrics — counters and gauges exposed on the admin listener's /metrics, and the one
 * writer of the Prometheus text format.
 *
 * Owns: the per-worker counter blocks (each written by one worker thread only, read by
 * the admin thread with relaxed atomics), the families rendered from them, and the
 * writer every other family goes through (oe_metrics_family/oe_metrics_sample): bounded
 * output, names and labels checked, label values escaped, each family written once (a
 * second family of the same name is dropped and logged, never sent).
 * Must not touch: sockets or h2o; other modules push numbers in or register a section
 * that writes their own families; admin pulls the text out.
 */
#ifndef OE_METRICS_H
#define OE_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "util/util.h"

#define OE_METRICS_MAX_WORKERS 64

enum { OE_PROTO_HTTP1 = 0, OE_PROTO_HTTP2 = 1, OE_PROTO_COUNT = 2 };

/* Written only by the owning worker thread. */
typedef struct oe_metrics_worker {
    uint64_t requests[OE_PROTO_COUNT][6]; /* [proto][status class 0..5: 0 = other] */
    uint64_t conns_accepted;
    uint64_t conns_closed;
    uint64_t ws_opened;
    uint64_t ws_closed;
    uint64_t upstream_errors;   /* 502 from the upstream side */
    uint64_t upstream_timeouts; /* 504 */
    uint64_t upstream_connects; /* new upstream connections opened for requests */
    uint64_t upstream_reused;   /* requests sent on an idle kept-alive connection */
    uint64_t tls_handshake_errors;
    uint64_t acme_tls_alpn_served;
    uint64_t http01_served;
    uint64_t redirects;
    uint64_t blocked;
    uint64_t misrouted;        /* 404/421: no site, or not the site the connection was opened for */
    uint64_t inflight_started; /* requests handed to the HTTPS handlers */
    uint64_t inflight_done;
    uint64_t handshakes_started;
    uint64_t handshakes_done;
    uint64_t abuse_closed;  /* connections cut for abuse (e.g. HTTP/2 rapid reset) */
    uint64_t abuse_refused; /* connections refused from a peer blocked for abuse */
    uint64_t heartbeat_ms;  /* last time the loop turned (monotonic ms) */
} oe_metrics_worker_t;

/* Returns the block for worker i (0 <= i < OE_METRICS_MAX_WORKERS). */
oe_metrics_worker_t *oe_metrics_worker(unsigned i);
void oe_metrics_set_worker_count(unsigned n);
unsigned oe_metrics_worker_count(void);

/* The calling worker thread's block (bound with oe_metrics_bind_thread); threads that
 * are not workers get a private block that is never rendered. */
oe_metrics_worker_t *oe_metrics_self(void);
void oe_metrics_bind_thread(unsigned i);
/* The calling worker thread's index, -1 for any other thread. */
int oe_metrics_thread_index(void);

/* Relaxed atomic add on a counter owned by the calling thread. */
static inline void oe_metrics_inc(uint64_t *c, uint64_t by)
{
    __atomic_store_n(c, __atomic_load_n(c, __ATOMIC_RELAXED) + by, __ATOMIC_RELAXED);
}
static inline uint64_t oe_metrics_get(const uint64_t *c)
{
    return __atomic_load_n(c, __ATOMIC_RELAXED);
}

/* Sums every worker's block into *out (heartbeat_ms: the oldest). */
void oe_metrics_sum(oe_metrics_worker_t *out);

/* ---- the writer ---------------------------------------------------------------------- */

typedef struct oe_metrics_out oe_metrics_out_t;
enum { OE_METRICS_COUNTER = 0, OE_METRICS_GAUGE = 1 };

/* Starts a family: writes its # HELP and # TYPE lines. Returns 0; -1 (and the family's
 * samples are dropped) when the name is not a valid metric name or was already written
 * in this rendering: one owner per family. */
int oe_metrics_family(oe_metrics_out_t *o, const char *name, int type, const char *help);
/* One sample of the family just started: its value, then label name/value pairs ended
 * by NULL. Label values are escaped; a bad label name drops the sample. */
void oe_metrics_sample(oe_metrics_out_t *o, double value, ...) __attribute__((sentinel));
/* A family with one unlabelled sample. */
void oe_metrics_counter(oe_metrics_out_t *o, const char *name, const char *help, double value);
void oe_metrics_gauge(oe_metrics_out_t *o, const char *name, const char *help, double value);

/* Sections appended to /metrics by the modules that own those families (cache, admin
 * ...): the callback writes them through o. At most 16 sections. */
typedef void (*oe_metrics_section_cb)(void *data, oe_metrics_out_t *o);
void oe_metrics_add_section(oe_metrics_section_cb cb, void *data);

/* Renders everything (at most 256 KiB; what does not fit is left out line by line);
 * returns a malloc'ed NUL-terminated string and its length, or NULL when out of memory. */
char *oe_metrics_render(size_t *len);

/* Kept for pkg/server and pkg/proxy until they call oe_util_now_ms() themselves. */
static inline uint64_t oe_now_ms(void)
{
    return oe_util_now_ms();
}

#endif
