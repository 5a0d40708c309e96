/* Unit tests for pkg/challenge: the HTTP-01 token table and the TLS-ALPN-01 contexts
 * (a real in-memory TLS handshake against the challenge context). */
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "acme/jws.h"
#include "challenge/challenge.h"
#include "check.h"

/* Handshakes a client offering alpn (wire format) with SNI against server ctx; returns 1
 * on success and copies the selected protocol. */
static int handshake(SSL_CTX *sctx, const char *sni, const unsigned char *alpn, unsigned alpn_len, char *proto,
                     size_t cap, X509 **peer)
{
    SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
    SSL *s = SSL_new(sctx), *c = SSL_new(cctx);
    BIO *sb, *cb;
    BIO_new_bio_pair(&sb, 0, &cb, 0);
    SSL_set_bio(s, sb, sb);
    SSL_set_bio(c, cb, cb);
    SSL_set_accept_state(s);
    SSL_set_connect_state(c);
    SSL_set_tlsext_host_name(c, sni);
    SSL_set_alpn_protos(c, alpn, alpn_len);
    int ok = 0;
    for (int i = 0; i < 50; i++) {
        int rc = SSL_do_handshake(c), rs = SSL_do_handshake(s);
        if (rc == 1 && rs == 1) {
            ok = 1;
            break;
        }
        int ec = SSL_get_error(c, rc), es = SSL_get_error(s, rs);
        if ((rc != 1 && ec != SSL_ERROR_WANT_READ && ec != SSL_ERROR_WANT_WRITE) ||
            (rs != 1 && es != SSL_ERROR_WANT_READ && es != SSL_ERROR_WANT_WRITE))
            break;
    }
    if (ok) {
        const unsigned char *p = NULL;
        unsigned n = 0;
        SSL_get0_alpn_selected(c, &p, &n);
        snprintf(proto, cap, "%.*s", (int)n, p ? (const char *)p : "");
        if (peer)
            *peer = SSL_get1_peer_certificate(c);
    }
    ERR_clear_error();
    SSL_free(s);
    SSL_free(c);
    SSL_CTX_free(cctx);
    return ok;
}

static void *hammer(void *arg)
{
    char buf[OE_CHALLENGE_KEYAUTHZ_MAX + 1];
    for (int i = 0; i < 2000; i++) {
        oe_challenge_http01_put("tok-thread", "ka-thread");
        oe_challenge_http01_get("tok-thread", 10, buf, sizeof(buf));
        SSL_CTX *c = oe_challenge_alpn_ctx("a.example");
        SSL_CTX_free(c);
    }
    return arg;
}

int main(void)
{
    char buf[OE_CHALLENGE_KEYAUTHZ_MAX + 1], err[256];

    /* HTTP-01 */
    CHECK(oe_challenge_http01_put("abc_DEF-123", "abc_DEF-123.thumb") == 0);
    CHECK(oe_challenge_http01_get("abc_DEF-123", 11, buf, sizeof(buf)) == 17 && strcmp(buf, "abc_DEF-123.thumb") == 0);
    CHECK(oe_challenge_http01_get("abc_DEF-123xyz", 11, buf, sizeof(buf)) == 17); /* only token_len bytes count */
    CHECK(oe_challenge_http01_get("abc_DEF-12", 10, buf, sizeof(buf)) == -1);
    CHECK(oe_challenge_http01_get("abc_DEF-123", 11, buf, 5) == -1); /* does not fit: refused, no overflow */
    CHECK(oe_challenge_http01_put("abc_DEF-123", "replaced") == 0);
    CHECK(oe_challenge_http01_get("abc_DEF-123", 11, buf, sizeof(buf)) == 8 && strcmp(buf, "replaced") == 0);
    oe_challenge_http01_del("abc_DEF-123");
    CHECK(oe_challenge_http01_get("abc_DEF-123", 11, buf, sizeof(buf)) == -1);

    /* hostile tokens */
    CHECK(oe_challenge_http01_put("../etc/passwd", "x") == -1);
    CHECK(oe_challenge_http01_put("", "x") == -1);
    CHECK(oe_challenge_http01_put("a b", "x") == -1);
    CHECK(oe_challenge_http01_get("a%2Fb", 5, buf, sizeof(buf)) == -1);
    CHECK(oe_challenge_http01_get("", 0, buf, sizeof(buf)) == -1);
    CHECK(oe_challenge_http01_get(NULL, 3, buf, sizeof(buf)) == -1);
    static char longtok[OE_CHALLENGE_TOKEN_MAX + 2];
    memset(longtok, 'a', sizeof(longtok) - 1);
    CHECK(oe_challenge_http01_put(longtok, "x") == -1);
    CHECK(oe_challenge_http01_get(longtok, strlen(longtok), buf, sizeof(buf)) == -1);
    longtok[OE_CHALLENGE_TOKEN_MAX] = '\0';
    CHECK(oe_challenge_http01_put(longtok, "x") == 0);
    CHECK(oe_challenge_http01_get(longtok, OE_CHALLENGE_TOKEN_MAX, buf, sizeof(buf)) == 1);
    static char longka[OE_CHALLENGE_KEYAUTHZ_MAX + 2];
    memset(longka, 'k', sizeof(longka) - 1);
    CHECK(oe_challenge_http01_put("t", longka) == -1);

    /* bounded: the table fills up and then refuses */
    oe_challenge_clear();
    int ok = 0;
    for (int i = 0; i < OE_CHALLENGE_MAX_ENTRIES + 5; i++) {
        char t[32];
        snprintf(t, sizeof(t), "tok%d", i);
        if (oe_challenge_http01_put(t, "ka") == 0)
            ok++;
    }
    CHECK(ok == OE_CHALLENGE_MAX_ENTRIES);
    oe_challenge_http01_del("tok7");
    CHECK(oe_challenge_http01_put("again", "ka") == 0);
    oe_challenge_clear();
    CHECK(oe_challenge_http01_get("again", 5, buf, sizeof(buf)) == -1);

    /* TLS-ALPN-01 */
    X509 *cert = NULL;
    EVP_PKEY *key = NULL;
    CHECK(oe_acme_alpn_cert("a.example", "token.thumb", &cert, &key, err, sizeof(err)) == 0);
    CHECK(oe_challenge_alpn_put("a.example", cert, key, err, sizeof(err)) == 0);
    X509_free(cert); /* the table holds its own references */
    EVP_PKEY_free(key);
    CHECK(oe_challenge_alpn_ctx("b.example") == NULL);
    CHECK(oe_challenge_alpn_ctx(NULL) == NULL);
    SSL_CTX *ctx = oe_challenge_alpn_ctx("A.Example");
    CHECK(ctx != NULL);
    if (ctx) {
        char proto[32] = "";
        X509 *peer = NULL;
        static const unsigned char acme[] = "\x0a"
                                            "acme-tls/1",
                                   h2[] = "\x02"
                                          "h2";
        CHECK(handshake(ctx, "a.example", acme, sizeof(acme) - 1, proto, sizeof(proto), &peer) == 1);
        CHECK(strcmp(proto, "acme-tls/1") == 0);
        CHECK(peer != NULL && X509_check_host(peer, "a.example", 0, 0, NULL) == 1);
        X509_free(peer);
        /* anything but acme-tls/1 is refused */
        CHECK(handshake(ctx, "a.example", h2, sizeof(h2) - 1, proto, sizeof(proto), NULL) == 0);
        SSL_CTX_free(ctx);
    }
    /* replace and delete keep references right (ASan checks the rest) */
    CHECK(oe_acme_alpn_cert("a.example", "other", &cert, &key, err, sizeof(err)) == 0);
    ctx = oe_challenge_alpn_ctx("a.example");
    CHECK(oe_challenge_alpn_put("a.example", cert, key, err, sizeof(err)) == 0);
    oe_challenge_alpn_del("a.example");
    CHECK(oe_challenge_alpn_ctx("a.example") == NULL);
    SSL_CTX_free(ctx); /* the old context outlived its table entry */
    CHECK(oe_challenge_alpn_put("a.example", cert, key, err, sizeof(err)) == 0);

    /* concurrent use */
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, hammer, NULL);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    CHECK(oe_challenge_http01_get("tok-thread", 10, buf, sizeof(buf)) == 9);
    X509_free(cert);
    EVP_PKEY_free(key);
    oe_challenge_clear();
    CHECK(oe_challenge_alpn_ctx("a.example") == NULL);

    return CHECK_DONE();
}
