/*
 * admin/internal.h — shared between the files of the admin module only (admin.c,
 * status.c, client.c); nothing outside pkg/admin/ includes it.
 */
#ifndef OE_ADMIN_INTERNAL_H
#define OE_ADMIN_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <time.h>

#include "config/config.h"
#include "h2o_compat.h"
#include "httpget/httpget.h"
#include "metrics/metrics.h"

/* status.c: what the status page, /status.json and the admin's /metrics families show.
 * init once before the admin thread starts; tick on the admin thread (takes a sample of
 * the counters every OE_ADMIN_SAMPLE_MS, keeping OE_ADMIN_HISTORY of them: 10 minutes;
 * returns the ms until the next sample is due, the admin loop's longest sleep). */
#define OE_ADMIN_SAMPLE_MS 2000
#define OE_ADMIN_HISTORY   300
void oe_admin_status_init(const oe_config_t *cfg);
uint64_t oe_admin_status_tick(void);
/* /status.json: a malloc'ed JSON document and its length, or NULL when out of memory. */
char *oe_admin_status_json(size_t *len);
/* The /metrics families the admin module owns (certificate, ACME, upstream, readiness). */
void oe_admin_status_metrics(void *data, oe_metrics_out_t *o);

/* status_page.c: the page served at GET / (self-contained HTML, generated from
 * pkg/admin/status.html at build time). */
extern const char oe_admin_status_html[];
extern const size_t oe_admin_status_html_len;

/* admin.c: answers 403 (peer not in admin.allow, as the configuration in service says) or
 * 401 (needs_token and no right bearer token from admin.token_file); returns 1 when it did. */
int oe_admin_refused(h2o_req_t *req, int needs_token);
/* client.c: one request from a command-line client to the admin listener: req gets the
 * host, port and the bearer token of token_file (when not NULL; wiped after use) filled in.
 * Returns 0 with the answer in buf/resp; 1 with a message (bad address, unreadable token);
 * 2 when the exchange failed (the reason in err, for the caller to frame). where gets
 * "host:port" ("[v6]:port") for messages. */
int oe_admin_request(const char *admin_addr, const char *token_file, oe_httpget_req_t *req, char *buf, size_t cap,
                     oe_httpget_resp_t *resp, char *where, size_t wherelen, char *err, size_t errlen);
/* client.c: "Bearer TOKEN" from admin.token_file (its first line). 0, or -1 with a message. */
int oe_admin_bearer(const char *token_file, char *out, size_t cap, char *err, size_t errlen);

/* admin.c: answers req with body (copied) and Cache-Control: no-store. */
void oe_admin_send_text(h2o_req_t *req, int status, const char *reason, const char *ctype, const char *body,
                        size_t len);

/* reload.c: the POST /reload handler, and the reload results for status.c. */
void oe_admin_register_reload(h2o_hostconf_t *host);
typedef struct oe_admin_reloads {
    uint64_t ok, failed;
    time_t last_at; /* 0: none yet */
    int last_ok;
    char last_message[512];
} oe_admin_reloads_t;
void oe_admin_reloads(oe_admin_reloads_t *out);

/* client.c: where the command-line clients (healthcheck, status) reach the admin
 * listener: HOST:PORT with a wildcard host turned into loopback. Returns 0, or -1 with
 * a message. */
int oe_admin_target(const char *admin_addr, char *host, size_t hostlen, uint16_t *port, char *err, size_t errlen);

#endif
