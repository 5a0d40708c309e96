/*
 * challenge — ACME challenge material shared between the ACME side and the listeners.
 *
 * Owns: the HTTP-01 token table (token -> key authorization) that the HTTP listener
 * answers from, and the TLS-ALPN-01 table (name -> SSL_CTX holding a challenge
 * certificate whose ALPN callback selects "acme-tls/1"). Both tables are process-wide,
 * mutex-protected, bounded in size, and shared by all threads.
 * Must not touch: the network, ACME protocol logic, or the live certificate.
 */
#ifndef OE_CHALLENGE_H
#define OE_CHALLENGE_H

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stddef.h>

#define OE_CHALLENGE_MAX_ENTRIES  256
#define OE_CHALLENGE_TOKEN_MAX    256
#define OE_CHALLENGE_KEYAUTHZ_MAX 512

/* HTTP-01. put replaces an existing token. Returns 0, or -1 (bad token or table full). */
int oe_challenge_http01_put(const char *token, const char *key_authz);
void oe_challenge_http01_del(const char *token);
/* Copies the key authorization for the token into buf (NUL-terminated); returns its
 * length, or -1 when the token is unknown or malformed. Safe on hostile input. */
int oe_challenge_http01_get(const char *token, size_t token_len, char *buf, size_t cap);

/* TLS-ALPN-01. The table takes its own references to cert and key. */
int oe_challenge_alpn_put(const char *name, X509 *cert, EVP_PKEY *key, char *err, size_t errlen);
void oe_challenge_alpn_del(const char *name);
/* A new reference to the challenge context for the SNI name, or NULL. */
SSL_CTX *oe_challenge_alpn_ctx(const char *name);

/* Drops everything (tests, shutdown). */
void oe_challenge_clear(void);

#endif
