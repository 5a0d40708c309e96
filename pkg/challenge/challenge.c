/*
 * challenge — the HTTP-01 token table and the TLS-ALPN-01 context table (see challenge.h).
 *
 * Both are small fixed arrays behind one mutex each: a few entries live for the seconds
 * an authorization takes, so a linear scan is the simplest correct thing. Lookups copy
 * out (HTTP-01) or take a reference (TLS-ALPN-01) so nothing is used after unlock.
 */
#include "challenge/challenge.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define ALPN_NAME_MAX 256

struct http01_entry {
    char token[OE_CHALLENGE_TOKEN_MAX + 1];
    char key_authz[OE_CHALLENGE_KEYAUTHZ_MAX + 1];
};

struct alpn_entry {
    char name[ALPN_NAME_MAX];
    SSL_CTX *ctx;
};

static pthread_mutex_t http01_lock = PTHREAD_MUTEX_INITIALIZER;
static struct http01_entry http01[OE_CHALLENGE_MAX_ENTRIES];

static pthread_mutex_t alpn_lock = PTHREAD_MUTEX_INITIALIZER;
static struct alpn_entry alpn[OE_CHALLENGE_MAX_ENTRIES];

/* Tokens are base64url (RFC 8555 §8.3): anything else is rejected before any lookup. */
static int valid_token(const char *t, size_t len)
{
    if (len == 0 || len > OE_CHALLENGE_TOKEN_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = t[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
            return 0;
    }
    return 1;
}

int oe_challenge_http01_put(const char *token, const char *key_authz)
{
    if (!token || !key_authz || !valid_token(token, strlen(token)) || strlen(key_authz) > OE_CHALLENGE_KEYAUTHZ_MAX)
        return -1;
    int rc = -1;
    pthread_mutex_lock(&http01_lock);
    struct http01_entry *slot = NULL;
    for (size_t i = 0; i < OE_CHALLENGE_MAX_ENTRIES; i++) {
        if (strcmp(http01[i].token, token) == 0) {
            slot = &http01[i];
            break;
        }
        if (!slot && http01[i].token[0] == '\0')
            slot = &http01[i];
    }
    if (slot) {
        strcpy(slot->token, token);
        strcpy(slot->key_authz, key_authz);
        rc = 0;
    }
    pthread_mutex_unlock(&http01_lock);
    return rc;
}

void oe_challenge_http01_del(const char *token)
{
    if (!token || !*token)
        return;
    pthread_mutex_lock(&http01_lock);
    for (size_t i = 0; i < OE_CHALLENGE_MAX_ENTRIES; i++) {
        if (strcmp(http01[i].token, token) == 0)
            memset(&http01[i], 0, sizeof(http01[i]));
    }
    pthread_mutex_unlock(&http01_lock);
}

int oe_challenge_http01_get(const char *token, size_t token_len, char *buf, size_t cap)
{
    if (!token || !valid_token(token, token_len) || !buf || cap == 0)
        return -1;
    int rc = -1;
    pthread_mutex_lock(&http01_lock);
    for (size_t i = 0; i < OE_CHALLENGE_MAX_ENTRIES; i++) {
        if (strlen(http01[i].token) == token_len && memcmp(http01[i].token, token, token_len) == 0) {
            size_t n = strlen(http01[i].key_authz);
            if (n < cap) {
                memcpy(buf, http01[i].key_authz, n + 1);
                rc = (int)n;
            }
            break;
        }
    }
    pthread_mutex_unlock(&http01_lock);
    return rc;
}

/* RFC 8737 §3: the only protocol this context speaks is acme-tls/1. */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
                       unsigned int inlen, void *arg)
{
    static const unsigned char proto[] = "\x0a"
                                         "acme-tls/1";
    unsigned char *sel = NULL;
    if (SSL_select_next_proto(&sel, outlen, proto, sizeof(proto) - 1, in, inlen) != OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

static SSL_CTX *make_ctx(X509 *cert, EVP_PKEY *key, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        snprintf(err, errlen, "cannot create TLS context for the TLS-ALPN-01 challenge");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (SSL_CTX_use_certificate(ctx, cert) != 1 || SSL_CTX_use_PrivateKey(ctx, key) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(err, errlen, "TLS-ALPN-01 challenge certificate and key do not fit together");
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
    return ctx;
}

int oe_challenge_alpn_put(const char *name, X509 *cert, EVP_PKEY *key, char *err, size_t errlen)
{
    if (!name || !*name || strlen(name) >= ALPN_NAME_MAX || !cert || !key) {
        snprintf(err, errlen, "invalid TLS-ALPN-01 challenge entry");
        return -1;
    }
    SSL_CTX *ctx = make_ctx(cert, key, err, errlen); /* takes its own references */
    if (!ctx)
        return -1;
    SSL_CTX *old = NULL;
    int rc = -1;
    pthread_mutex_lock(&alpn_lock);
    struct alpn_entry *slot = NULL;
    for (size_t i = 0; i < OE_CHALLENGE_MAX_ENTRIES; i++) {
        if (alpn[i].ctx && strcasecmp(alpn[i].name, name) == 0) {
            slot = &alpn[i];
            break;
        }
        if (!slot && !alpn[i].ctx)
            slot = &alpn[i];
    }
    if (slot) {
        old = slot->ctx;
        snprintf(slot->name, sizeof(slot->name), "%s", name);
        slot->ctx = ctx;
        ctx = NULL;
        rc = 0;
    }
    pthread_mutex_unlock(&alpn_lock);
    SSL_CTX_free(old);
    if (rc != 0) {
        SSL_CTX_free(ctx);
        snprintf(err, errlen, "TLS-ALPN-01 challenge table is full (%d entries)", OE_CHALLENGE_MAX_ENTRIES);
    }
    return rc;
}

void oe_challenge_alpn_del(const char *name)
{
    if (!name)
        return;
    SSL_CTX *old = NULL;
    pthread_mutex_lock(&alpn_lock);
    for (size_t i = 0; i < OE_CHALLENGE_MAX_ENTRIES; i++) {
        if (alpn[i].ctx && strcasecmp(alpn[i].name, name) == 0) {
            old = alpn[i].ctx;
            memset(&alpn[i], 0, sizeof(alpn[i]));
            break;
        }
    }
    pthread_mutex_unlock(&alpn_lock);
    SSL_CTX_free(old);
}

SSL_CTX *oe_challenge_alpn_ctx(const char *name)
{
    if (!name || !*name || strlen(name) >= ALPN_NAME_MAX)
        return NULL;
    SSL_CTX *ctx = NULL;
    pthread_mutex_lock(&alpn_lock);
    for (size_t i = 0; i < OE_CHALLENGE_MAX_ENTRIES; i++) {
        if (alpn[i].ctx && strcasecmp(alpn[i].name, name) == 0) {
            ctx = alpn[i].ctx;
            SSL_CTX_up_ref(ctx);
            break;
        }
    }
    pthread_mutex_unlock(&alpn_lock);
    return ctx;
}

void oe_challenge_clear(void)
{
    pthread_mutex_lock(&http01_lock);
    memset(http01, 0, sizeof(http01));
    pthread_mutex_unlock(&http01_lock);

    SSL_CTX *old[OE_CHALLENGE_MAX_ENTRIES];
    size_t n = 0;
    pthread_mutex_lock(&alpn_lock);
    for (size_t i = 0; i < OE_CHALLENGE_MAX_ENTRIES; i++) {
        if (alpn[i].ctx)
            old[n++] = alpn[i].ctx;
        memset(&alpn[i], 0, sizeof(alpn[i]));
    }
    pthread_mutex_unlock(&alpn_lock);
    for (size_t i = 0; i < n; i++)
        SSL_CTX_free(old[i]);
}
