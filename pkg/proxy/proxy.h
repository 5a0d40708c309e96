/*
 * proxy — what happens to a request on the HTTPS listener.
 *
 * Owns: each site's request path (its h2o path configuration), proxy.block_paths, the
 * forwarded-header surgery (trust rules in forwarded.c), the reverse proxy (exchange.c:
 * HTTP/1.1 to the site's upstream pool with flow control, retries, WebSocket hand-over to
 * the tunnel module), response touches (HSTS, small 4xx/5xx pages), per-request metrics
 * and the access log.
 * Must not touch: listeners, TLS, which site a request belongs to (the server's router
 * decides), connection accounting, upstream sockets and health (upstream owns those).
 */
#ifndef OE_PROXY_H
#define OE_PROXY_H

#include <stddef.h>

#include "config/config.h"
#include "h2o_compat.h"

#define OE_PROXY_MAX_HEADERS      100         /* request header lines, as libh2o's HTTP/1 */
#define OE_PROXY_MAX_HEADER_BYTES (64 * 1024) /* decoded request header bytes */

/*
 * Builds each site's request path: its own h2o path configuration with the trust rules,
 * block_paths, the edge cache and compression when the site has them, the reverse proxy to
 * the site's upstream pool, HSTS and the access log. router is the listener's path (its
 * MIME map is shared). Call once, before any context is created.
 */
int oe_proxy_setup(h2o_globalconf_t *gc, h2o_pathconf_t *router, const oe_config_t *cfg, char *err, size_t errlen);

/* The path configuration whose handlers serve site i (index into cfg->sites); NULL for
 * an unknown index. The server's router switches a request to it. */
h2o_pathconf_t *oe_proxy_site_path(size_t i);

/* A worker thread that stops: frees what the proxy keeps per thread (spare response
 * buffers, idle upstream connections). Run the loop once more afterwards. */
void oe_proxy_thread_exit(void);

/* Sends a small error page (JSON when the client asks for JSON, else HTML). */
void oe_proxy_send_error(h2o_req_t *req, int status, const char *reason, const char *message);

#endif
