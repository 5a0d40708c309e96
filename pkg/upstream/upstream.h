/*
 * upstream — the servers ott-edge proxies to, and the TCP connections to them.
 *
 * Owns: one object per upstream server (its address, resolved once when it is an IP
 * literal, else on each new connection off the event loop through libh2o's resolver
 * threads; its request/error/connection counters), connecting with a deadline, TCP
 * options on upstream sockets (no Nagle, keepalive), and the idle keep-alive connections
 * of each worker thread: LIFO per server, kept inside the worker's event loop and still
 * polled, so that a close or unasked-for bytes from the upstream drop a connection before
 * it is reused, and so that reuse costs no system call.
 * Must not touch: HTTP (the proxy speaks it over these sockets), requests, clients.
 * Idle connections are ott-edge's own: libh2o's shared socket pool is not used, so no
 * interposition on libh2o is needed.
 */
#ifndef OE_UPSTREAM_H
#define OE_UPSTREAM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "h2o_compat.h"

typedef struct oe_upstream_server oe_upstream_server_t;

/* TCP keepalive on a socket (client or upstream): idle seconds before the first probe,
 * seconds between probes, probes before the connection is dropped; enabled 0 turns it off. */
typedef struct oe_tcp_keepalive {
    int enabled;
    unsigned idle_s, interval_s, count;
} oe_tcp_keepalive_t;
void oe_upstream_set_keepalive(int fd, const oe_tcp_keepalive_t *ka);
/* The proxy.tcp_keepalive* keys as such settings. */
#define oe_config_tcp_keepalive(cfg)                                                                                   \
    ((oe_tcp_keepalive_t){.enabled = (cfg)->proxy.tcp_keepalive,                                                       \
                          .idle_s = (unsigned)((cfg)->proxy.tcp_keepalive_idle_ms / 1000),                             \
                          .interval_s = (unsigned)((cfg)->proxy.tcp_keepalive_interval_ms / 1000),                     \
                          .count = (unsigned)(cfg)->proxy.tcp_keepalive_count})

/* Settings every upstream socket gets (set once at start-up, before any worker runs). */
void oe_upstream_configure(const oe_tcp_keepalive_t *ka);

/* A server at host:port ("127.0.0.1", "ott", "::1"); url is how it is named in logs and
 * metrics. Returns NULL with a message on failure. Servers live until the process ends. */
oe_upstream_server_t *oe_upstream_server_new(const char *url, const char *host, uint16_t port, char *err,
                                             size_t errlen);
const char *oe_upstream_server_url(const oe_upstream_server_t *srv);

/* An idle kept-alive connection to srv from the calling worker's pool, or NULL. */
h2o_socket_t *oe_upstream_idle_take(oe_upstream_server_t *srv, h2o_loop_t *loop);
/* Keeps a connection that finished a response cleanly for reuse (for keepalive_ms at
 * most), or closes it when the pool is full or keepalive_ms is 0. */
void oe_upstream_idle_put(oe_upstream_server_t *srv, h2o_socket_t *sock, uint64_t keepalive_ms);

/* A worker thread that stops: closes its idle connections (run the loop once more after
 * it, so that libh2o frees the sockets). */
void oe_upstream_thread_exit(void);

/* Opens a new connection to srv within timeout_ms. cb gets the connected socket, or NULL
 * and a reason; it is always called later from the loop, never from inside this call. */
typedef struct oe_upstream_connect oe_upstream_connect_t;
typedef void (*oe_upstream_connect_cb)(void *data, h2o_socket_t *sock, const char *err);
oe_upstream_connect_t *oe_upstream_connect(h2o_context_t *ctx, oe_upstream_server_t *srv, uint64_t timeout_ms,
                                           oe_upstream_connect_cb cb, void *data);
/* Abandons a connect in progress: cb is not called. */
void oe_upstream_connect_cancel(oe_upstream_connect_t *c);

#endif
