/* Unit tests for the certificate store (pkg/tls/tls.c): swaps, fallback flag, a
 * mismatched pair refused with the old certificate kept, PEM helpers; and with several
 * sites, the certificate each SNI name gets, checked with real in-memory TLS handshakes
 * through the front context (exact and wildcard names, unknown names and no SNI to the
 * default site or the first, per-site swaps, sites kept by name across oe_tls_set_sites). */
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"

#include "check.h"
#include "tls/tls.h"

/* Makes a self-signed PEM certificate + key for cn. */
static void make_pem(const char *cn, char **cert, char **key)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    ASN1_INTEGER_set(X509_get_serialNumber(x), 4242);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(x));
    X509_set_pubkey(x, k);
    X509_sign(x, k, EVP_sha256());
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(b, x);
    char *p;
    long n = BIO_get_mem_data(b, &p);
    *cert = strndup(p, (size_t)n);
    BIO_free(b);
    b = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
    n = BIO_get_mem_data(b, &p);
    *key = strndup(p, (size_t)n);
    BIO_free(b);
    X509_free(x);
    EVP_PKEY_free(k);
}

static int last_sni_site; /* oe_tls_sni_site() of the server side of the last handshake */

/* A TLS handshake over a memory BIO pair with the front context; returns the CN of the
 * certificate served (static buffer), or "" when the handshake failed. */
static const char *served_cn(const char *sni)
{
    static char cn[256];
    SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
    SSL *c = SSL_new(cctx), *s = SSL_new(oe_tls_front_ctx());
    BIO *bc = NULL, *bs = NULL;
    BIO_new_bio_pair(&bc, 0, &bs, 0);
    SSL_set_bio(c, bc, bc);
    SSL_set_bio(s, bs, bs);
    if (sni != NULL)
        SSL_set_tlsext_host_name(c, sni);
    SSL_set_connect_state(c);
    SSL_set_accept_state(s);
    int cdone = 0, sdone = 0;
    for (int i = 0; i < 50 && !(cdone && sdone); i++) {
        if (!cdone)
            cdone = SSL_do_handshake(c) == 1;
        if (!sdone)
            sdone = SSL_do_handshake(s) == 1;
    }
    cn[0] = '\0';
    last_sni_site = cdone && sdone ? oe_tls_sni_site(s) : -2;
    X509 *x = cdone && sdone ? SSL_get1_peer_certificate(c) : NULL;
    if (x != NULL)
        X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof(cn));
    X509_free(x);
    SSL_free(c);
    SSL_free(s);
    SSL_CTX_free(cctx);
    ERR_clear_error();
    return cn;
}

static oe_config_t *load_yaml(const char *yaml)
{
    char path[] = "/tmp/test_tls.XXXXXX", err[OE_CONFIG_ERR_MAX];
    static char *noenv[] = {NULL};
    int fd = mkstemp(path);
    if (fd < 0 || write(fd, yaml, strlen(yaml)) != (ssize_t)strlen(yaml))
        return NULL;
    close(fd);
    oe_config_t *cfg = oe_config_load(path, noenv, err, sizeof(err));
    unlink(path);
    if (cfg == NULL)
        fprintf(stderr, "config: %s\n", err);
    return cfg;
}

static void test_sites(void)
{
    char err[512] = "";
    oe_tls_info_t info;
    oe_config_t *cfg = load_yaml("default_site: b\n"
                                 "sites:\n"
                                 "  - {name: a, domains: [a.test, \"*.w.test\"], upstream: \"http://127.0.0.1:1\",\n"
                                 "     tls: {cert_file: /x, key_file: /y}}\n"
                                 "  - {name: b, domains: [b.test], upstream: \"http://127.0.0.1:1\"}\n"
                                 "  - {name: c, domains: [c.test], upstream: \"http://127.0.0.1:1\"}\n");
    oe_config_t *cfg2 = load_yaml("sites:\n"
                                  "  - {name: b, domains: [b.test], upstream: \"http://127.0.0.1:1\"}\n"
                                  "  - {name: d, domains: [d.test], upstream: \"http://127.0.0.1:1\"}\n");
    CHECK(cfg != NULL && cfg2 != NULL, "configs load");
    if (cfg == NULL || cfg2 == NULL)
        return;
    CHECK(oe_tls_init(err, sizeof(err)) == 0, "init: %s", err);
    CHECK(oe_tls_set_sites(cfg, err, sizeof(err)) == 0, "set_sites: %s", err);
    CHECK(strcmp(served_cn("a.test"), "") == 0, "nothing loaded: the handshake fails");

    char *ca, *ka, *cb, *kb, *ca2, *ka2;
    make_pem("site-a", &ca, &ka);
    make_pem("site-b", &cb, &kb);
    make_pem("site-a-2", &ca2, &ka2);
    CHECK(oe_tls_publish_pem_for("a", ca, strlen(ca), ka, strlen(ka), err, sizeof(err)) == 0, "a: %s", err);
    CHECK(strcmp(served_cn("b.test"), "site-a") == 0, "b has nothing yet: a loaded one is served, got %s",
          served_cn("b.test"));
    CHECK(oe_tls_publish_pem_for("b", cb, strlen(cb), kb, strlen(kb), err, sizeof(err)) == 0, "b: %s", err);
    CHECK(oe_tls_publish_pem_for("nope", cb, strlen(cb), kb, strlen(kb), err, sizeof(err)) != 0 &&
              strstr(err, "nope") != NULL,
          "unknown site refused: %s", err);

    static const struct {
        const char *sni, *cn;
        int site; /* oe_tls_sni_site() */
    } cases[] = {
        {"a.test", "site-a", 0},        /* exact */
        {"A.TEST", "site-a", 0},        /* any case */
        {"x.w.test", "site-a", 0},      /* wildcard */
        {"b.test", "site-b", 1},        /* exact */
        {"unknown.test", "site-b", -1}, /* the default site */
        {NULL, "site-b", -1},           /* no SNI: the default */
        {"y.x.w.test", "site-b", -1},   /* one label only */
        {"c.test", "site-b", 2},        /* c has nothing loaded: the default's */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *got = served_cn(cases[i].sni);
        CHECK(strcmp(got, cases[i].cn) == 0, "SNI %s -> %s, want %s", cases[i].sni ? cases[i].sni : "(none)", got,
              cases[i].cn);
        CHECK(last_sni_site == cases[i].site, "SNI %s: oe_tls_sni_site %d, want %d",
              cases[i].sni ? cases[i].sni : "(none)", last_sni_site, cases[i].site);
    }
    CHECK(oe_tls_sni_site(NULL) == -1, "no connection");

    /* c gets a self-signed certificate of its own */
    char *cnames[] = {"c.test"};
    CHECK(oe_tls_use_selfsigned_for("c", cnames, 1, err, sizeof(err)) == 0, "c self-signed: %s", err);
    CHECK(strcmp(served_cn("c.test"), "c.test") == 0, "c's own, got %s", served_cn("c.test"));
    CHECK(oe_tls_info_for("c", &info) == 0 && info.fallback && strcmp(info.names, "c.test") == 0, "c's info");

    /* a swap of one site leaves the others alone */
    oe_tls_info_t before_b;
    oe_tls_info_for("b", &before_b);
    uint64_t swaps = oe_tls_swaps();
    CHECK(oe_tls_publish_pem_for("a", ca2, strlen(ca2), ka2, strlen(ka2), err, sizeof(err)) == 0, "a again: %s", err);
    CHECK(strcmp(served_cn("a.test"), "site-a-2") == 0 && strcmp(served_cn("b.test"), "site-b") == 0, "only a changed");
    CHECK(oe_tls_swaps() == swaps + 1, "one swap counted");
    CHECK(oe_tls_info_for("a", &info) == 0 && strcmp(info.subject, "site-a-2") == 0 && info.generation == swaps + 1,
          "a's info");
    CHECK(oe_tls_info_for("b", &info) == 0 && info.generation == before_b.generation, "b's info unchanged");
    CHECK(oe_tls_info_for("nope", &info) == -1 && !info.loaded, "unknown site: -1");
    oe_tls_info(&info);
    CHECK(strcmp(info.subject, "site-b") == 0, "the primary is the default site");
    /* a mismatched pair for one site keeps its certificate */
    CHECK(oe_tls_publish_pem_for("b", ca, strlen(ca), kb, strlen(kb), err, sizeof(err)) != 0, "mismatch refused");
    CHECK(strcmp(served_cn("b.test"), "site-b") == 0, "b kept");

    /* new sites: b keeps its certificate by name, a and c are gone, d has none (the first's is served) */
    CHECK(oe_tls_set_sites(cfg2, err, sizeof(err)) == 0, "set_sites again: %s", err);
    CHECK(oe_tls_info_for("a", &info) == -1, "a is gone");
    CHECK(oe_tls_info_for("b", &info) == 0 && strcmp(info.subject, "site-b") == 0, "b kept by name");
    CHECK(oe_tls_info_for("d", &info) == 0 && !info.loaded, "d empty");
    CHECK(strcmp(served_cn("d.test"), "site-b") == 0 && strcmp(served_cn("a.test"), "site-b") == 0,
          "no default site: the first site's");

    /* the one-site form: every name gets the one certificate */
    oe_config_t *one = load_yaml("domains: [one.test]\n");
    CHECK(one != NULL && oe_tls_set_sites(one, err, sizeof(err)) == 0, "one site: %s", err);
    CHECK(oe_tls_publish_pem(ca, strlen(ca), ka, strlen(ka), err, sizeof(err)) == 0, "publish without a name: %s", err);
    CHECK(strcmp(served_cn("one.test"), "site-a") == 0 && strcmp(served_cn("other.test"), "site-a") == 0 &&
              strcmp(served_cn(NULL), "site-a") == 0,
          "one site serves every name");
    oe_tls_shutdown();
    oe_config_free(one);
    oe_config_free(cfg);
    oe_config_free(cfg2);
    free(ca), free(ka), free(cb), free(kb), free(ca2), free(ka2);
}

int main(void)
{
    char err[512] = "";
    oe_tls_info_t info;
    CHECK(oe_tls_init(err, sizeof(err)) == 0, "init: %s", err);
    CHECK(oe_tls_front_ctx() != NULL, "front ctx");
    oe_tls_info(&info);
    CHECK(!info.loaded, "nothing loaded at first");

    char *names[] = {"a.example.test", "127.0.0.1"};
    CHECK(oe_tls_use_selfsigned(names, 2, err, sizeof(err)) == 0, "selfsigned: %s", err);
    oe_tls_info(&info);
    CHECK(info.loaded && info.fallback, "fallback flagged");
    CHECK(strcmp(info.names, "a.example.test,127.0.0.1") == 0, "names: %s", info.names);
    CHECK(info.not_after > info.not_before, "dates");
    uint64_t gen = info.generation;

    char *c1, *k1, *c2, *k2;
    make_pem("one.test", &c1, &k1);
    make_pem("two.test", &c2, &k2);
    CHECK(oe_tls_pem_pair_matches(c1, strlen(c1), k1, strlen(k1)), "pair 1 matches");
    CHECK(!oe_tls_pem_pair_matches(c1, strlen(c1), k2, strlen(k2)), "mixed pair does not match");
    CHECK(!oe_tls_pem_pair_matches("junk", 4, k2, strlen(k2)), "junk does not match");

    CHECK(oe_tls_publish_pem(c1, strlen(c1), k1, strlen(k1), err, sizeof(err)) == 0, "publish: %s", err);
    oe_tls_info(&info);
    CHECK(!info.fallback && strcmp(info.subject, "one.test") == 0, "one.test served, got %s", info.subject);
    CHECK(info.generation == gen + 1, "generation bumped");
    CHECK(strcmp(info.serial, "1092") == 0, "serial hex 4242 = 1092, got %s", info.serial);

    err[0] = '\0';
    CHECK(oe_tls_publish_pem(c2, strlen(c2), k1, strlen(k1), err, sizeof(err)) != 0, "mismatch refused");
    CHECK(strstr(err, "does not match") != NULL, "clear message: %s", err);
    oe_tls_info(&info);
    CHECK(strcmp(info.subject, "one.test") == 0, "old certificate kept after a failed swap");
    CHECK(oe_tls_publish_pem("garbage", 7, k1, strlen(k1), err, sizeof(err)) != 0, "garbage refused");
    CHECK(oe_tls_load_files("/nonexistent/cert.pem", "/nonexistent/key.pem", err, sizeof(err)) != 0 &&
              strstr(err, "tls.cert_file") != NULL,
          "missing file names the key: %s", err);

    oe_tls_info_t pi;
    CHECK(oe_tls_pem_info(c2, strlen(c2), &pi, err, sizeof(err)) == 0 && strcmp(pi.subject, "two.test") == 0,
          "pem_info");
    CHECK(oe_tls_pem_info("nope", 4, &pi, err, sizeof(err)) != 0, "pem_info on junk fails");

    /* many swaps in a row stay consistent (refcounts: each old context is freed) */
    for (int i = 0; i < 200; i++)
        oe_tls_publish_pem(i % 2 ? c1 : c2, strlen(i % 2 ? c1 : c2), i % 2 ? k1 : k2, strlen(i % 2 ? k1 : k2), err,
                           sizeof(err));
    oe_tls_info(&info);
    CHECK(strcmp(info.subject, "one.test") == 0, "last swap wins");

    free(c1), free(k1), free(c2), free(k2);
    oe_tls_shutdown();

    test_sites();
    return CHECK_DONE();
}
