/*
 * exchange.h — one proxied request (part of the proxy module; nothing outside
 * pkg/proxy includes this).
 *
 * Owns: writing the request to the upstream over HTTP/1.1 (hop-by-hop headers dropped,
 * cookies joined, a Content-Length for the buffered body), parsing the response head
 * (picohttpparser, bounded), streaming the body back with flow control (at most
 * OE_PROXY_BUF bytes per request are held: the upstream socket is not read again until
 * the client side has taken the last piece, so a client that never reads stalls its
 * upstream by TCP backpressure instead of growing our memory), keeping the upstream
 * connection for reuse only when the response ended exactly where its framing said,
 * choosing the server from the site's pool (hash key from the request), retries (a
 * server that cannot be connected to: the next one; a request sent but not answered:
 * idempotent ones once elsewhere, others 502; a reused keep-alive connection found
 * closed: once on a fresh one), reporting each outcome to the pool's health, 502/504
 * pages, and handing a 101 to the tunnel module.
 */
#ifndef OE_PROXY_EXCHANGE_H
#define OE_PROXY_EXCHANGE_H

#include <stdint.h>

#include "config/config.h"
#include "h2o_compat.h"
#include "upstream/pool.h"
#include "upstream/upstream.h"

#define OE_PROXY_BUF (32 * 1024) /* per proxied response: head limit and flow-control budget */

typedef struct oe_proxy_target {
    struct oe_proxy_gen *gen; /* held by a WebSocket for its life */
    oe_upstream_pool_t *pool;
    const oe_site_t *site;        /* balance and hash key */
    uint64_t upstream_timeout_ms; /* no response head (or no body progress) by then: 504 / cut */
    uint64_t connect_timeout_ms;
    uint64_t keepalive_ms; /* idle upstream connections kept this long; 0: none */
    uint64_t websocket_idle_ms;
} oe_proxy_target_t;

/* Sends req to the target and answers it with the upstream's response. target must
 * outlive the request. */
void oe_proxy_exchange_start(h2o_req_t *req, const oe_proxy_target_t *target);

#endif
