/*
 * pool.h — upstream pools: a site's servers, their health, and which one a request goes to
 * (part of the upstream module; its public face, included through upstream.h users).
 *
 * Owns: one pool per site (its servers, its balancing policy), each server's health
 * (state machine fed by the active prober and by what proxied requests see: `fall`
 * failures in a row eject a server, `rise` good probes take it back, with a back-off that
 * doubles on repeated ejections), the per-server counters (requests, errors, requests in
 * flight, open WebSockets), consistent hashing, readiness per site, the per-server
 * metrics and the status rows.
 * Must not touch: HTTP or requests (the proxy computes a hash key and reports outcomes).
 */
#ifndef OE_UPSTREAM_POOL_H
#define OE_UPSTREAM_POOL_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "metrics/metrics.h"
#include "upstream/upstream.h"

#define OE_UPSTREAM_MAX_SERVERS 64 /* per site (a tried-servers mask is one 64-bit word) */

typedef struct oe_upstream_pool oe_upstream_pool_t;

/* Builds the pool of site (its servers from site->upstreams: a server this site already
 * had under the same URL is the same object, with its health, counters and idle
 * connections). Not in service until activated. */
oe_upstream_pool_t *oe_upstream_pool_new(const oe_site_t *site, char *err, size_t errlen);
/* Frees a pool no longer in service and no longer used by any request (its servers stay). */
void oe_upstream_pool_free(oe_upstream_pool_t *pool);
/* Puts exactly these pools in service (the prober, readiness, metrics and status follow
 * them); the previous list is forgotten. Returns -1 when there are too many. */
int oe_upstream_pools_activate(oe_upstream_pool_t *const *pools, size_t n);

/*
 * A server for one request: a healthy one not in `tried` (bit i = server i), chosen by
 * the site's balance (round_robin, least_conn counting requests in flight and open
 * WebSockets, or consistent hashing of `key`). NULL when none is left: the caller answers
 * 502 at once. *index gets the server's bit position.
 */
oe_upstream_server_t *oe_upstream_pick(oe_upstream_pool_t *pool, uint64_t key, uint64_t tried, unsigned *index);
size_t oe_upstream_pool_size(const oe_upstream_pool_t *pool);
const char *oe_upstream_pool_site(const oe_upstream_pool_t *pool);

/* A 64-bit hash for consistent hashing keys (stable across runs and machines). */
uint64_t oe_upstream_hash(const void *data, size_t len);

/* What happened to a request on srv: ok (any answer below 500), or a failure (connect
 * failed, timed out, broken response, or a 5xx) with a short reason for the status page. */
void oe_upstream_report(oe_upstream_server_t *srv, int ok, const char *why);

/* Requests in flight and open WebSockets per server (least_conn, metrics). */
void oe_upstream_active(oe_upstream_server_t *srv, int delta);
void oe_upstream_websockets(oe_upstream_server_t *srv, int delta);

/* The active prober: one thread, each server every health_interval (GET health_path;
 * any answer below 500 is good). */
int oe_upstream_prober_start(char *err, size_t errlen);
void oe_upstream_prober_stop(void);

/* Ready when every site has a server that is up and has answered since start; else 0
 * and a reason naming the site. */
int oe_upstream_ready(const char **reason);

/* One row per server, for the status page. */
typedef struct oe_upstream_status {
    const char *site;
    const char *url;
    int up;
    int answered;
    char last_error[160];
    uint64_t last_error_at; /* Unix time; 0: never */
    uint64_t requests, errors, active, websockets;
} oe_upstream_status_t;
size_t oe_upstream_status(oe_upstream_status_t *out, size_t max);

/* The per-server families of /metrics (owned here). */
void oe_upstream_metrics(void *data, oe_metrics_out_t *o);

#endif
