/*
 * admin — the admin listener: GET /livez, /readyz and /metrics.
 *
 * Owns: its own thread, event loop and h2o context (plain HTTP), the readiness rules
 * (certificate loaded and not a fallback while ACME is on, upstream answered recently,
 * not draining), and the `ott-edge healthcheck` client side.
 * Must not touch: the proxy's listeners or handlers; it reads server state through
 * server.h and tls.h and metrics through metrics.h.
 */
#ifndef OE_ADMIN_H
#define OE_ADMIN_H

#include <stddef.h>

#include "config/config.h"

typedef struct oe_admin oe_admin_t;

/* Binds cfg->listen.admin and starts the admin thread. */
oe_admin_t *oe_admin_start(const oe_config_t *cfg, char *err, size_t errlen);
void oe_admin_stop(oe_admin_t *admin);

/* Readiness as /readyz reports it: returns 1 when ready, else 0 with a short reason. */
int oe_admin_ready(const oe_config_t *cfg, const char **reason);

/* The healthcheck subcommand: GET path on the admin address (host:port, "" host means
 * 127.0.0.1) with a short timeout; returns 0 for a 200 answer, 1 otherwise (message in
 * err). Needs no curl binary. */
int oe_admin_healthcheck(const char *admin_addr, const char *path, char *err, size_t errlen);

#endif
