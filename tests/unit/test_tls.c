/* Unit tests for the certificate store (pkg/tls/tls.c): swaps, fallback flag, a
 * mismatched pair refused with the old certificate kept, PEM helpers. */
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

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
    return CHECK_DONE();
}
