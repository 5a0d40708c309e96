/*
 * client — the RFC 8555 protocol flow, one small function per step: directory, nonces
 * (with the badNonce retry of §6.5), account (with EAB), order, authorizations and
 * challenges (HTTP-01, TLS-ALPN-01, DNS-01 through the dns module, falling back to the next
 * configured type when one fails), finalize with a CSR, polling, certificate download (with
 * an optional preferred chain), and ARI renewalInfo.
 * Owns: one ACME session (transport, nonce pool, account URL) and the challenge entries
 * it publishes while an order is in flight (removed before it returns).
 * Must not touch: files (the manager persists), the live certificate, listeners.
 */
#ifndef OE_ACME_CLIENT_H
#define OE_ACME_CLIENT_H

#include <openssl/evp.h>
#include <stdint.h>
#include <time.h>

#include "acme/acme_parse.h"
#include "acme/http.h"
#include "config/config.h"
#include "dns/dns.h"

/* Sleeps ms unless asked to stop; returns non-zero when stopping. */
typedef int (*oe_acme_sleep_fn)(void *data, uint64_t ms);

typedef struct oe_acme_client {
    const oe_config_t *cfg;
    oe_acme_http_t *http;
    const int *stop;
    oe_acme_sleep_fn sleep;
    void *sleep_data;
    uint64_t poll_min_ms, poll_max_ms; /* polling backoff when no Retry-After */

    oe_acme_directory_t dir;
    int have_dir;
    char nonces[4][256];
    unsigned nonce_count;
    uint64_t bad_nonces; /* badNonce retries so far (tests and logs) */
    oe_dns_t *dns;       /* DNS-01 provider; NULL when dns-01 is not configured */

    EVP_PKEY *account_key; /* borrowed; ES256 */
    char thumbprint[64];
    char kid[OE_ACME_URL_MAX]; /* account URL; "" until known */
    int kid_changed;           /* set when a new account URL was learned */

    /* about the last failure */
    oe_acme_problem_t problem;
    long last_status;
    uint64_t retry_after_s; /* from a 429/503 (0 when none) */
} oe_acme_client_t;

typedef struct oe_acme_cert {
    char *chain_pem;
    size_t chain_len;
    char *key_pem;
    size_t key_len;
} oe_acme_cert_t;

int oe_acme_client_init(oe_acme_client_t *c, const oe_config_t *cfg, EVP_PKEY *account_key, const char *kid,
                        const int *stop, oe_acme_sleep_fn sleep, void *sleep_data, char *err, size_t errlen);
void oe_acme_client_free(oe_acme_client_t *c);
/* Switches the session to another account key (borrowed) and URL ("" unknown). */
int oe_acme_client_set_account(oe_acme_client_t *c, EVP_PKEY *account_key, const char *kid, char *err, size_t errlen);

/* Fetches (or refetches) the directory. */
int oe_acme_client_directory(oe_acme_client_t *c, char *err, size_t errlen);

/* Runs a whole order for names (directory and account included when needed). replaces:
 * the ARI certificate id of the certificate being renewed, or NULL. On success fills out
 * (caller frees with oe_acme_cert_free). */
int oe_acme_client_issue(oe_acme_client_t *c, char *const *names, size_t count, const char *replaces,
                         oe_acme_cert_t *out, char *err, size_t errlen);
void oe_acme_cert_free(oe_acme_cert_t *cert);

/* ARI (RFC 9773): the suggested renewal window for a certificate id, and when to ask
 * again (Retry-After, default 6 h). Returns 0, 1 when the server has no ARI, -1 on error. */
int oe_acme_client_renewal_info(oe_acme_client_t *c, const char *cert_id, time_t *start, time_t *end,
                                uint64_t *recheck_s, char *err, size_t errlen);

#endif
