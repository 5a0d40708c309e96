/*
 * jws — the ACME module's cryptography, kept away from the network code: keys, JWK and
 * thumbprint (RFC 7638), flattened JWS (RFC 7515 / RFC 8555 §6.2), the EAB inner JWS
 * (§7.3.4), base64url, the CSR, the TLS-ALPN-01 challenge certificate (RFC 8737) and the
 * ARI certificate identifier (RFC 9773 §4.1).
 * Owns: OpenSSL objects it creates; returns malloc'ed strings the caller frees.
 * Must not touch: the network, files, logging, global state.
 */
#ifndef OE_ACME_JWS_H
#define OE_ACME_JWS_H

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stddef.h>

#include "config/config.h"

/* base64url without padding. Returns a malloc'ed string. */
char *oe_acme_b64url(const unsigned char *data, size_t len);
/* Decodes base64url (padding optional). Returns 0 with a malloc'ed buffer, or -1. */
int oe_acme_b64url_decode(const char *s, unsigned char **out, size_t *outlen);

/* A fresh private key: EC P-256, EC P-384 or RSA 2048. */
EVP_PKEY *oe_acme_key_new(enum oe_key_type type);
/* PKCS#8 PEM of a private key (malloc'ed, NUL-terminated). */
char *oe_acme_key_pem(EVP_PKEY *key, size_t *len);
/* Parses a PEM private key, or NULL. */
EVP_PKEY *oe_acme_key_from_pem(const char *pem, size_t len);

/* The public JWK of an EC P-256 key ({"crv","kty","x","y"}), or NULL for other keys. */
json_t *oe_acme_jwk(EVP_PKEY *key);
/* base64url SHA-256 of the canonical JWK (RFC 7638). Returns 0 or -1. */
int oe_acme_thumbprint(EVP_PKEY *key, char *out, size_t cap);

/* A flattened JWS (ES256) as compact JSON text. kid NULL means "jwk" is sent instead
 * (newAccount). payload NULL means POST-as-GET (empty payload). */
char *oe_acme_jws(EVP_PKEY *key, const char *kid, const char *nonce, const char *url, const char *payload, char *err,
                  size_t errlen);
/* The externalAccountBinding object: an HS256 JWS over the account JWK, with the EAB kid
 * and the newAccount URL; hmac_key_b64url is the CA-provided key. */
json_t *oe_acme_eab(EVP_PKEY *account_key, const char *eab_kid, const char *hmac_key_b64url, const char *url, char *err,
                    size_t errlen);

/* Whether the identifier is an IP address (RFC 8738) rather than a DNS name. */
int oe_acme_is_ip(const char *name);
/* The reverse-DNS name used as SNI for an IP identifier (RFC 8738 §6). */
int oe_acme_ip_arpa(const char *ip, char *out, size_t cap);

/* A CSR (DER, base64url) for names, signed by key. */
char *oe_acme_csr(EVP_PKEY *key, char *const *names, size_t count, char *err, size_t errlen);

/* The TLS-ALPN-01 challenge certificate for name: self-signed with a fresh P-256 key,
 * SAN = name, critical id-pe-acmeIdentifier = SHA-256(key_authz). */
int oe_acme_alpn_cert(const char *name, const char *key_authz, X509 **cert, EVP_PKEY **key, char *err, size_t errlen);

/* ARI certificate identifier of a PEM chain's first certificate:
 * base64url(AKI keyIdentifier) "." base64url(serial). Returns 0 or -1. */
int oe_acme_ari_cert_id(const char *pem, size_t len, char *out, size_t cap);

/* Issuer CN of the last certificate of a PEM chain (the one closest to the root). */
int oe_acme_chain_top_issuer(const char *pem, size_t len, char *out, size_t cap);

#endif
