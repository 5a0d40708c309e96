/*
 * proxy — what happens to a request on the HTTPS listener.
 *
 * Owns: proxy.block_paths, the forwarded-header surgery (trust rules in forwarded.c),
 * the reverse proxy to the upstream (libh2o's proxy: WebSocket tunnels; idle keep-alive
 * connections held per worker loop by pool.c), response touches (HSTS, small 502/504 error pages), per-request metrics
 * and the access log, and the upstream health state (health.c: an active prober plus what proxied requests observe).
 * Must not touch: listeners, TLS, connection accounting (server owns those).
 */
#ifndef OE_PROXY_H
#define OE_PROXY_H

#include <stddef.h>

#include "config/config.h"
#include "h2o_compat.h"

#define OE_PROXY_MAX_HEADERS      100         /* request header lines, as libh2o's HTTP/1 */
#define OE_PROXY_MAX_HEADER_BYTES (64 * 1024) /* decoded request header bytes */

/* Registers the handlers, filter and logger on the HTTPS host's "/" path (after the
 * server's own accounting handler). Call once, before any context is created. */
int oe_proxy_register(h2o_globalconf_t *gc, h2o_pathconf_t *pc, const oe_config_t *cfg, char *err, size_t errlen);

/* A worker thread that stops: frees what the proxy keeps per thread (spare response
 * buffers, idle upstream connections). Run the loop once more afterwards. */
void oe_proxy_thread_exit(void);

/* Sends a small error page (JSON when the client asks for JSON, else HTML). */
void oe_proxy_send_error(h2o_req_t *req, int status, const char *reason, const char *message);

/* Upstream health. start/stop run the active prober thread (every
 * proxy.health_interval, GET proxy.health_path; any answer below 500 counts). */
int oe_proxy_health_start(const oe_config_t *cfg, char *err, size_t errlen);
void oe_proxy_health_stop(void);
/* What proxied requests observed (called by the proxy's filter; thread-safe). */
void oe_proxy_health_observe(int ok);
/* 1 when the upstream answered recently and not failed since; else 0 with a reason. */
int oe_proxy_health_ok(const char **reason);

#endif
