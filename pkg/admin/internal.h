/*
 * admin/internal.h — shared between the files of the admin module only (admin.c,
 * status.c, client.c); nothing outside pkg/admin/ includes it.
 */
#ifndef OE_ADMIN_INTERNAL_H
#define OE_ADMIN_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "metrics/metrics.h"

/* status.c: what the status page, /status.json and the admin's /metrics families show.
 * init once before the admin thread starts; tick on the admin thread (takes a sample of
 * the counters every OE_ADMIN_SAMPLE_MS, keeping OE_ADMIN_HISTORY of them: 10 minutes). */
#define OE_ADMIN_SAMPLE_MS 2000
#define OE_ADMIN_HISTORY   300
void oe_admin_status_init(const oe_config_t *cfg);
void oe_admin_status_tick(void);
/* /status.json: a malloc'ed JSON document and its length, or NULL when out of memory. */
char *oe_admin_status_json(size_t *len);
/* The /metrics families the admin module owns (certificate, ACME, upstream, readiness). */
void oe_admin_status_metrics(void *data, oe_metrics_out_t *o);

/* status_page.c: the page served at GET / (self-contained HTML, generated from
 * pkg/admin/status.html at build time). */
extern const char oe_admin_status_html[];
extern const size_t oe_admin_status_html_len;

/* client.c: where the command-line clients (healthcheck, status) reach the admin
 * listener: HOST:PORT with a wildcard host turned into loopback. Returns 0, or -1 with
 * a message. */
int oe_admin_target(const char *admin_addr, char *host, size_t hostlen, uint16_t *port, char *err, size_t errlen);

#endif
