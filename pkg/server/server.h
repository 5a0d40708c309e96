/*
 * server — the listeners and the worker threads.
 *
 * Owns: binding the HTTPS and HTTP sockets (one SO_REUSEPORT socket per worker), one
 * event loop + h2o context per worker thread, the accept path (TLS handshake with a
 * timeout, then ALPN dispatch: h2, http/1.1, or acme-tls/1 which is closed after the
 * handshake), the HTTP listener's handler (HTTP-01 tokens from the challenge table,
 * 308 to HTTPS for the rest), connection/in-flight/WebSocket accounting, and the drain
 * sequence's listener side (stop accepting, GOAWAY).
 * Must not touch: ACME, configuration parsing, certificate selection (tls does that).
 */
#ifndef OE_SERVER_H
#define OE_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "handover/handover.h"

typedef struct oe_server oe_server_t;

/* Binds every listening socket (call before dropping privileges). */
oe_server_t *oe_server_bind(const oe_config_t *cfg, char *err, size_t errlen);
/* The listening sockets (HTTPS and HTTP, every worker's), for handing them to a new
 * ott-edge in an upgrade; returns how many were written to out. */
size_t oe_server_listen_fds(oe_server_t *srv, oe_handover_fd_t *out, size_t max);

/* Starts the worker threads; requests are served from now on. */
int oe_server_start(oe_server_t *srv, char *err, size_t errlen);

/* A new configuration (SIGHUP): each site's path is built anew and put in service;
 * requests and WebSockets under way keep the configuration they started with. cfg is
 * the server's from now on (freed with its generation). Listening addresses, threads and
 * client timeouts stay as they were. Returns 0, or -1 with a message (nothing changed). */
int oe_server_reload(oe_server_t *srv, oe_config_t *cfg, char *err, size_t errlen);
/* Frees the configurations nothing uses any more; returns how many are still waiting. */
size_t oe_server_collect(void);
/* The configuration generation in service (1 at start, +1 per reload). */
uint64_t oe_server_generation(void);

/* Drain, step 1: /readyz reports 503 from now on; serving continues. */
void oe_server_set_draining(oe_server_t *srv);
int oe_server_draining(void);
/* Drain, step 2: close the listening sockets and send HTTP/2 GOAWAY (asynchronous;
 * each worker does it on its next loop turn). */
void oe_server_stop_accepting(oe_server_t *srv);
/* Drain, step 3: every open WebSocket is ended with a 1001 close frame both ways (each
 * worker on its next loop turn; the closing handshakes take at most
 * OE_TUNNEL_CLOSE_WAIT_MS). Returns at once. */
void oe_server_close_websockets(oe_server_t *srv);
/* Open WebSockets (all workers). */
uint64_t oe_server_websockets(oe_server_t *srv);
/* Work still under way: in-flight requests + handshakes + HTTP/1 connections whose first
 * request has not come yet (+ open WebSockets when
 * count_websockets). */
uint64_t oe_server_busy(oe_server_t *srv, int count_websockets);
/* Stops the loops (open connections are closed) and joins the threads. */
void oe_server_stop(oe_server_t *srv);

/* 1 when every worker loop turned within max_age_ms. */
int oe_server_loops_alive(uint64_t max_age_ms);

#endif
