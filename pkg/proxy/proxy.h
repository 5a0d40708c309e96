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
 * A generation: each site's request path built from one configuration (its own h2o path
 * configuration with the trust rules, block_paths, the edge cache and compression when the
 * site has them, the reverse proxy to the site's upstream pool, HSTS and the access log).
 * A SIGHUP builds a new one and publishes it; requests and WebSockets under way keep the
 * one they started with.
 */
typedef struct oe_proxy_gen oe_proxy_gen_t;
typedef void (*oe_proxy_decorate_cb)(h2o_pathconf_t *site_path, void *data); /* e.g. the server's logger */
typedef void (*oe_proxy_gen_free_cb)(oe_config_t *cfg);

/* Builds a generation for cfg (not in service yet). router is the listener's path (its MIME
 * map is shared); decorate is called on each site's path. NULL with a message on failure. */
oe_proxy_gen_t *oe_proxy_gen_build(h2o_globalconf_t *gc, h2o_pathconf_t *router, const oe_config_t *cfg,
                                   oe_proxy_decorate_cb decorate, void *data, char *err, size_t errlen);
/* Puts g in service (its pools too) and retires the previous one; free_cfg (may be NULL)
 * frees g's configuration when g itself is freed. Main thread. */
void oe_proxy_gen_publish(h2o_globalconf_t *gc, oe_proxy_gen_t *g, oe_proxy_gen_free_cb free_cfg);
/* The generation in service. A worker may use it for the rest of its loop turn; holding it
 * longer (a request, a WebSocket) takes oe_proxy_gen_hold() ... oe_proxy_gen_release(). */
oe_proxy_gen_t *oe_proxy_gen_current(void);
/* For threads other than the workers (admin, main): the generation in service, already held
 * (let go with oe_proxy_gen_release()); NULL before the first. */
oe_proxy_gen_t *oe_proxy_gen_acquire(void);
const oe_config_t *oe_proxy_gen_config(const oe_proxy_gen_t *g);
uint64_t oe_proxy_gen_number(const oe_proxy_gen_t *g);
h2o_pathconf_t *oe_proxy_gen_site_path(oe_proxy_gen_t *g, size_t i);
oe_proxy_gen_t *oe_proxy_gen_of_path(h2o_pathconf_t *site_path);
void oe_proxy_gen_hold(oe_proxy_gen_t *g);
void oe_proxy_gen_release(oe_proxy_gen_t *g); /* NULL is accepted */
/* Frees the retired generations nothing holds any more, once turned_after(retired_at_ms)
 * says every worker has turned its loop since. Main thread. Returns how many are left. */
size_t oe_proxy_gen_collect(uint64_t (*turned_after)(uint64_t ms));

/* A worker thread that stops: frees what the proxy keeps per thread (spare response
 * buffers, idle upstream connections). Run the loop once more afterwards. */
void oe_proxy_thread_exit(void);

#endif
