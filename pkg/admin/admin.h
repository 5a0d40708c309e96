/*
 * admin — the admin listener: GET /livez, /readyz, /metrics, /status.json, the status
 * page at /, and POST /reload.
 *
 * Owns: its own thread, event loop and h2o context (plain HTTP), the readiness rules
 * (every site's certificate loaded and not its fallback while ACME is to replace it,
 * upstream answered recently, not draining), the status page and its JSON (status.c: the
 * one place that JSON is written, with a ring of counter samples for the charts), the
 * /metrics families about the certificates, ACME, the upstream and readiness, and the
 * client side of `ott-edge healthcheck` and `ott-edge status`, and who may read it
 * (admin.allow, the bearer token of admin.token_file).
 * Must not touch: the proxy's listeners or handlers; it reads other modules' state only
 * through their headers (server.h, tls.h, proxy.h, acme.h, cache.h, metrics.h, log.h).
 */
#ifndef OE_ADMIN_H
#define OE_ADMIN_H

#include <stddef.h>
#include <stdio.h>

#include "config/config.h"

typedef struct oe_admin oe_admin_t;

/* Checks admin.token_file (readable, one token of at least 16 printable characters), for
 * check-config and before start. Returns 0, or -1 with a message naming the key. */
int oe_admin_check(const oe_config_t *cfg, char *err, size_t errlen);
/* SIGHUP: re-reads admin.token_file (when it fails, the token in memory stays; logged). */
void oe_admin_reload(void);

/* Binds cfg->listen.admin and starts the admin thread. admin.allow and admin.token_file
 * guard the status page, /status.json and /metrics; /livez and /readyz stay open. */
oe_admin_t *oe_admin_start(const oe_config_t *cfg, char *err, size_t errlen);
void oe_admin_stop(oe_admin_t *admin);
/* After a binary upgrade: closes this process's copy of the listening socket (the new
 * process accepts on it) and ends each open connection after its next answer; probes and
 * scrapes keep being answered meanwhile. */
void oe_admin_stop_accepting(oe_admin_t *admin);
/* The listening socket (handed to a new process in a binary upgrade); -1 for NULL. */
int oe_admin_listen_fd(const oe_admin_t *admin);

/* Configuration reloads. main notes each result (SIGHUP, POST /reload); /metrics, the
 * status page and POST /reload show it. message: the error, or what the reload changed. */
void oe_admin_note_reload(int ok, const char *message);
/* The `reload` subcommand: POST /reload on the admin address (as healthcheck does), which
 * makes the running ott-edge reload its configuration and answers with the result (with the
 * bearer token of token_file when not NULL); prints it to out. Returns 0 when the reload succeeded, 1 otherwise
 * (message in err). */
int oe_admin_reload_request(const char *admin_addr, const char *token_file, FILE *out, char *err, size_t errlen);

/* Readiness as /readyz reports it: returns 1 when ready, else 0 with a short reason (one
 * that names the site whose certificate is missing; valid until the calling thread's next
 * call). */
int oe_admin_ready(const oe_config_t *cfg, const char **reason);

/* The healthcheck subcommand: GET path on the admin address (host:port, "" host means
 * 127.0.0.1) with a short timeout; returns 0 for a 200 answer, 1 otherwise (message in
 * err). Needs no curl binary. */
int oe_admin_healthcheck(const char *admin_addr, const char *path, char *err, size_t errlen);

/* The status subcommand: reads /status.json from the admin address (as healthcheck does),
 * with the bearer token of token_file when not NULL (admin.token_file), and prints a short
 * summary to out. Returns 0, or 1 with a message in err. */
int oe_admin_status_print(const char *admin_addr, const char *token_file, FILE *out, char *err, size_t errlen);

#endif
