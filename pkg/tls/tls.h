/*
 * tls — the certificate store behind every HTTPS listener.
 *
 * Owns: the one fixed "front" SSL_CTX that all listeners and threads hand to h2o
 * (protocol versions, ciphers, ALPN, session tickets), and one live certificate context
 * per site, keyed by the site's name, that its ClientHello callback selects per handshake:
 * the SNI name picks the site (oe_config_site_for_host), and a name no site has, or no
 * SNI, gets the default site's certificate, else the first site's. Publishing a new
 * certificate swaps that site's context under a lock with reference counting: handshakes
 * already under way and open connections keep the context they started with, so a swap
 * never disturbs a connection. The ClientHello callback also routes ALPN "acme-tls/1"
 * to the challenge module's per-name context (TLS-ALPN-01).
 * Must not touch: sockets, files other than the ones it is asked to load, ACME logic.
 *
 * The functions without a site name act on the primary certificate: the default site's,
 * else the first site's (the only one before oe_tls_set_sites(), and in the one-site form).
 */
#ifndef OE_TLS_H
#define OE_TLS_H

#include <openssl/ssl.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "config/config.h"
#include "h2o_compat.h"

typedef struct oe_tls_info {
    int loaded;   /* a certificate is being served */
    int fallback; /* it is the generated self-signed one */
    time_t not_before;
    time_t not_after;
    char serial[80];     /* hex */
    char subject[256];   /* subject CN */
    char issuer[256];    /* issuer CN */
    char names[1024];    /* comma-separated DNS/IP SANs */
    uint64_t generation; /* oe_tls_swaps() when this certificate was swapped in */
} oe_tls_info_t;

/* Creates the front context. Call once before any listener starts. */
int oe_tls_init(char *err, size_t errlen);
void oe_tls_shutdown(void);

/* Session resumption (TLS 1.3 tickets, TLS 1.2 tickets and session IDs) for lifetime_s
 * seconds, 0 turning it off; the ticket keys rotate every lifetime/3 (tickets.c). */
int oe_tls_set_session_lifetime(uint64_t lifetime_s, char *err, size_t errlen);

/* Called from inside every handshake (not TLS-ALPN-01's) with the connection's libh2o
 * socket and its TLS server name (lower-cased; NULL when none): the server keeps which
 * site a connection was opened for. */
typedef void (*oe_tls_sni_cb)(h2o_socket_t *sock, const char *server_name);
void oe_tls_set_sni_observer(oe_tls_sni_cb cb);

/* Serves one certificate per site of cfg, keyed by site name. A name that was already known
 * keeps its certificate (so a future configuration reload does not drop it); the others start
 * with none until one is loaded. cfg is used for SNI routing and must stay valid until the
 * next call or oe_tls_shutdown(). Returns 0, or -1 with a message. */
int oe_tls_set_sites(const oe_config_t *cfg, char *err, size_t errlen);

/* A certificate read and checked (chain, key, the key matching the leaf) but not served yet:
 * a configuration reload prepares every file before it changes anything. */
typedef struct oe_tls_cert oe_tls_cert_t;
oe_tls_cert_t *oe_tls_cert_from_files(const char *cert_file, const char *key_file, char *err, size_t errlen);
/* Serves c as the site's certificate (c is consumed, also on failure). */
int oe_tls_cert_install(const char *site, oe_tls_cert_t *c, char *err, size_t errlen);
void oe_tls_cert_free(oe_tls_cert_t *c);

/* Per-site forms of the functions below; site NULL means the primary certificate. They
 * fail with a message naming the site when it is unknown. */
int oe_tls_load_files_for(const char *site, const char *cert_file, const char *key_file, char *err, size_t errlen);
int oe_tls_publish_pem_for(const char *site, const char *chain_pem, size_t chain_len, const char *key_pem,
                           size_t key_len, char *err, size_t errlen);
int oe_tls_use_selfsigned_for(const char *site, char *const *names, size_t count, char *err, size_t errlen);
/* A snapshot of what a site serves; -1 (and *out zeroed) for an unknown site. */
int oe_tls_info_for(const char *site, oe_tls_info_t *out);
/* Certificates swapped in since start, all sites together. */
uint64_t oe_tls_swaps(void);

/* The site (index into the cfg given to oe_tls_set_sites) that the connection's SNI names, by
 * the same rule that chose its certificate; -1 when the client sent no SNI or a name no site
 * has (the default site is not applied). For the Host/SNI check of a request. */
int oe_tls_sni_site(SSL *ssl);

/* The SSL_CTX to give every HTTPS listener (never freed or replaced while running). */
SSL_CTX *oe_tls_front_ctx(void);

/* Loads a PEM chain + key from files and swaps them in; the old certificate stays
 * served on any failure. Returns 0, or -1 with a message. */
int oe_tls_load_files(const char *cert_file, const char *key_file, char *err, size_t errlen);

/* Same from memory (what ACME calls after storing a new certificate). */
int oe_tls_publish_pem(const char *chain_pem, size_t chain_len, const char *key_pem, size_t key_len, char *err,
                       size_t errlen);

/* Generates and serves a self-signed certificate (EC P-256) for the names (or
 * "localhost" when none). It is flagged as the fallback. */
int oe_tls_use_selfsigned(char *const *names, size_t count, char *err, size_t errlen);

/* A snapshot of what is being served. */
void oe_tls_info(oe_tls_info_t *out);

/* Reads the certificate dates and names of a PEM chain's first certificate (used by
 * the ACME module to decide whether a stored certificate is still good). */
int oe_tls_pem_info(const char *chain_pem, size_t chain_len, oe_tls_info_t *out, char *err, size_t errlen);

/* Whether a PEM chain and a PEM private key belong together. */
int oe_tls_pem_pair_matches(const char *chain_pem, size_t chain_len, const char *key_pem, size_t key_len);

#endif
