/*
 * metrics — counters and gauges exposed on the admin listener's /metrics.
 *
 * Owns: the per-worker counter blocks (each written by one worker thread only, read by
 * the admin thread with relaxed atomics) and process-wide counters, and the Prometheus
 * text rendering of all of them.
 * Must not touch: sockets or h2o; other modules push numbers in, admin pulls text out.
 */
#ifndef OE_METRICS_H
#define OE_METRICS_H

#include <stddef.h>
#include <stdint.h>

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

/* Relaxed atomic add on a counter owned by the calling thread. */
static inline void oe_metrics_inc(uint64_t *c, uint64_t by)
{
    __atomic_store_n(c, __atomic_load_n(c, __ATOMIC_RELAXED) + by, __ATOMIC_RELAXED);
}
static inline uint64_t oe_metrics_get(const uint64_t *c)
{
    return __atomic_load_n(c, __ATOMIC_RELAXED);
}

/* Extra sections appended to /metrics (e.g. by the ACME manager): the callback writes
 * Prometheus text into buf (at most cap bytes) and returns the length written. */
typedef size_t (*oe_metrics_section_cb)(void *data, char *buf, size_t cap);
void oe_metrics_add_section(oe_metrics_section_cb cb, void *data);

/* Renders everything; returns a malloc'ed NUL-terminated string. */
char *oe_metrics_render(void);

uint64_t oe_now_ms(void); /* CLOCK_MONOTONIC in ms */

#endif
