/*
 * acme — certificates from an ACME CA (RFC 8555), in the background: one per site whose
 * certificate comes from ACME (oe_config_site_acme), each for that site's domains.
 *
 * Owns: the account key and URL (one account for all sites), orders, challenges
 * (publishing HTTP-01 tokens and TLS-ALPN-01 certificates through the challenge module,
 * DNS-01 TXT records through the dns module), CSR and certificate keys, renewal
 * scheduling, retry/backoff and its persisted state, all under cfg->state_dir through the
 * store module. A new certificate is stored on disk first, then handed to the tls module
 * with oe_tls_publish_pem_for(site name).
 * Must not touch: listeners, sockets of the server, h2o. It runs on its own threads (one
 * per certificate, so one site's failures never delay another's) and never blocks request
 * serving.
 */
#ifndef OE_ACME_H
#define OE_ACME_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "config/config.h"

typedef struct oe_acme oe_acme_t;

/*
 * Checks state_dir is writable, loads every valid stored certificate and serves it at once
 * (no order is made while it is good), then starts one thread per certificate. Returns
 * NULL with a message on a fatal setup error (e.g. state_dir not writable).
 */
oe_acme_t *oe_acme_start(const oe_config_t *cfg, char *err, size_t errlen);

/* Asks every thread to stop (an ACME exchange in progress is abandoned at its next step)
 * and joins them. NULL is accepted. */
void oe_acme_stop(oe_acme_t *acme);

/* What the manager knows about a certificate it manages (one per site that gets its
 * certificate from ACME), for the status page and /metrics (read by the admin module;
 * times are Unix seconds, 0 for "none"). */
typedef struct oe_acme_status {
    char site[OE_CONFIG_SITE_NAME_MAX + 1]; /* the site whose certificate this is */
    int active;                             /* the manager runs */
    int have_cert;                          /* a certificate from this CA is stored and served */
    char names[1024];
    time_t not_after;
    time_t next_attempt;       /* when the next order is due (renewal or retry) */
    time_t ari_start, ari_end; /* the CA's suggested renewal window (ARI), if it offers one */
    unsigned failures;         /* orders failed in a row */
    uint64_t ok, failed;       /* orders completed since start, by result */
    time_t last_success;       /* last certificate installed from an order (this process) */
    time_t last_failure;
    char last_error[512]; /* the last problem (kept after a later success) */
} oe_acme_status_t;

/* Copies the status of up to max managed certificates into out, in cfg->sites order;
 * returns how many (0 when ACME is off; at most cfg->sites_count). Thread-safe. */
size_t oe_acme_status(oe_acme_status_t *out, size_t max);

#endif
