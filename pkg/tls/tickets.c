/*
 * tickets — TLS session ticket keys for the front context (part of the tls module).
 *
 * Returning browsers resume (one round trip less, no signature) for tls.session_lifetime
 * (default 18h; nginx's default is 5 min, OpenSSL's 2 h). Forward secrecy is kept by
 * rotating the ticket encryption key every lifetime/3: new tickets always use the newest
 * key, the three before it only decrypt (and a ticket under an old key is re-issued under
 * the new one), and no key is kept longer than 4/3 of the lifetime. Keys are random, in
 * memory only, never logged or stored: a restart means one full handshake per returning
 * client.
 */
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "tls/tls.h"

#define NKEYS 4

typedef struct {
    unsigned char name[16];
    unsigned char aes[32];
    unsigned char hmac[32];
    time_t created;
    int valid;
} ticket_key_t;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static ticket_key_t keys[NKEYS]; /* keys[0] is the newest */
static uint64_t rotate_s;

static time_t now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec;
}

/* Makes a new newest key when the current one is due (call with lock held). */
static int rotate_if_due(time_t now)
{
    if (keys[0].valid && (uint64_t)(now - keys[0].created) < rotate_s)
        return 0;
    ticket_key_t k = {.created = now, .valid = 1};
    if (RAND_bytes(k.name, sizeof(k.name)) != 1 || RAND_bytes(k.aes, sizeof(k.aes)) != 1 ||
        RAND_bytes(k.hmac, sizeof(k.hmac)) != 1)
        return keys[0].valid ? 0 : -1;
    OPENSSL_cleanse(&keys[NKEYS - 1], sizeof(keys[0]));
    memmove(&keys[1], &keys[0], sizeof(keys[0]) * (NKEYS - 1));
    keys[0] = k;
    OPENSSL_cleanse(&k, sizeof(k));
    return 0;
}

static int set_mac(EVP_MAC_CTX *hctx, const unsigned char *key)
{
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
                           OSSL_PARAM_construct_end()};
    return EVP_MAC_CTX_set_params(hctx, params) && EVP_MAC_init(hctx, key, 32, NULL);
}

/* OpenSSL's ticket key callback: 1 = use this key, 2 = decrypted, issue a new ticket
 * (under the newest key), 0 = unknown key (full handshake), -1 = error. */
static int on_ticket_key(SSL *ssl, unsigned char name[16], unsigned char *iv, EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx,
                         int enc)
{
    ticket_key_t k;
    int idx = -1, ret;
    pthread_mutex_lock(&lock);
    time_t now = now_s();
    if (enc) {
        if (rotate_if_due(now) == 0 && keys[0].valid)
            idx = 0;
    } else {
        for (int i = 0; i < NKEYS; i++)
            if (keys[i].valid && memcmp(keys[i].name, name, 16) == 0 &&
                (uint64_t)(now - keys[i].created) < rotate_s * NKEYS)
                idx = i;
    }
    if (idx >= 0)
        k = keys[idx];
    pthread_mutex_unlock(&lock);
    if (idx < 0)
        return enc ? -1 : 0;
    if (enc) {
        memcpy(name, k.name, 16);
        ret = RAND_bytes(iv, EVP_MAX_IV_LENGTH) == 1 && EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k.aes, iv) &&
                      set_mac(hctx, k.hmac)
                  ? 1
                  : -1;
    } else {
        /* 2 also for every TLS 1.3 resumption: TLS 1.3 clients use a ticket once (RFC 8446
         * C.4), and OpenSSL sends a fresh one after a resumption only when told to renew;
         * with 1 a returning client alternated between resumed and full handshakes */
        int renew = idx != 0 || SSL_version(ssl) >= TLS1_3_VERSION;
        ret = EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k.aes, iv) && set_mac(hctx, k.hmac) ? (renew ? 2 : 1)
                                                                                                    : -1;
    }
    OPENSSL_cleanse(&k, sizeof(k));
    return ret;
}

int oe_tls_set_session_lifetime(uint64_t lifetime_s, char *err, size_t errlen)
{
    SSL_CTX *ctx = oe_tls_front_ctx();
    if (ctx == NULL) {
        snprintf(err, errlen, "tls: not initialised");
        return -1;
    }
    if (lifetime_s == 0) {
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
        SSL_CTX_set_num_tickets(ctx, 0);
        return 0;
    }
    pthread_mutex_lock(&lock);
    rotate_s = lifetime_s / (NKEYS - 1) > 0 ? lifetime_s / (NKEYS - 1) : 1;
    int rc = rotate_if_due(now_s());
    pthread_mutex_unlock(&lock);
    SSL_CTX_set_timeout(ctx, (long)lifetime_s);
    if (rc != 0 || SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, on_ticket_key) != 1) {
        snprintf(err, errlen, "tls: cannot set up session ticket keys");
        return -1;
    }
    return 0;
}
