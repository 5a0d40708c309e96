/*
 * tls — the certificate store behind every HTTPS listener.
 *
 * Owns: the one fixed "front" SSL_CTX that all listeners and threads hand to h2o
 * (protocol versions, ciphers, ALPN, session tickets), and the live certificate
 * context that its ClientHello callback selects per handshake. Publishing a new
 * certificate swaps that live context under a lock with reference counting: handshakes
 * already under way and open connections keep the context they started with, so a swap
 * never disturbs a connection. The ClientHello callback also routes ALPN "acme-tls/1"
 * to the challenge module's per-name context (TLS-ALPN-01).
 * Must not touch: sockets, files other than the ones it is asked to load, ACME logic.
 */
#ifndef OE_TLS_H
#define OE_TLS_H

#include <openssl/ssl.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

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
    uint64_t generation; /* increases on every swap */
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
