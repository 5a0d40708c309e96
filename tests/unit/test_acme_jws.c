/* Unit tests for pkg/acme/jws.c: base64url, JWK/thumbprint, JWS signatures (verified with
 * OpenSSL), EAB, CSR contents, the TLS-ALPN-01 certificate, ARI cert id, IP helpers. */
#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acme/jws.h"
#include "check.h"

static int b64_is(const char *in, size_t len, const char *want)
{
    char *s = oe_acme_b64url((const unsigned char *)in, len);
    int ok = s && strcmp(s, want) == 0;
    free(s);
    return ok;
}

/* Decodes a base64url member of a JSON object into a NUL-terminated string. */
static char *dec(json_t *o, const char *key, size_t *len)
{
    unsigned char *out = NULL;
    size_t n = 0;
    const char *v = json_string_value(json_object_get(o, key));
    if (!v || oe_acme_b64url_decode(v, &out, &n) != 0)
        return NULL;
    unsigned char *z = realloc(out, n + 1);
    z[n] = 0;
    if (len)
        *len = n;
    return (char *)z;
}

static void test_b64(void)
{
    CHECK(b64_is("", 0, ""));
    CHECK(b64_is("f", 1, "Zg"));
    CHECK(b64_is("fo", 2, "Zm8"));
    CHECK(b64_is("foo", 3, "Zm9v"));
    CHECK(b64_is("\xfb\xff", 2, "-_8"));
    unsigned char *o = NULL;
    size_t n = 0;
    CHECK(oe_acme_b64url_decode("-_8", &o, &n) == 0 && n == 2 && o[0] == 0xfb && o[1] == 0xff);
    free(o);
    CHECK(oe_acme_b64url_decode("Zm8=", &o, &n) == 0 && n == 2 && memcmp(o, "fo", 2) == 0);
    free(o);
    CHECK(oe_acme_b64url_decode("", &o, &n) == 0 && n == 0);
    free(o);
    CHECK(oe_acme_b64url_decode("Z", &o, &n) == -1);
    CHECK(oe_acme_b64url_decode("+/8", &o, &n) == -1); /* standard alphabet is not base64url */
    CHECK(oe_acme_b64url_decode("Zm 9v", &o, &n) == -1);
}

static void test_keys(void)
{
    EVP_PKEY *k256 = oe_acme_key_new(OE_KEY_EC256), *k384 = oe_acme_key_new(OE_KEY_EC384),
             *rsa = oe_acme_key_new(OE_KEY_RSA2048);
    CHECK(k256 && EVP_PKEY_get_bits(k256) == 256);
    CHECK(k384 && EVP_PKEY_get_bits(k384) == 384);
    CHECK(rsa && EVP_PKEY_get_base_id(rsa) == EVP_PKEY_RSA && EVP_PKEY_get_bits(rsa) == 2048);
    size_t len = 0;
    char *pem = oe_acme_key_pem(k256, &len);
    CHECK(pem && strstr(pem, "BEGIN PRIVATE KEY") && len == strlen(pem));
    EVP_PKEY *back = pem ? oe_acme_key_from_pem(pem, len) : NULL;
    CHECK(back && EVP_PKEY_eq(back, k256) == 1);
    CHECK(oe_acme_key_from_pem("garbage", 7) == NULL);
    free(pem);
    EVP_PKEY_free(back);
    /* only P-256 makes a JWK */
    json_t *j = oe_acme_jwk(k384);
    CHECK(j == NULL);
    j = oe_acme_jwk(rsa);
    CHECK(j == NULL);
    char err[256];
    CHECK(oe_acme_jws(rsa, NULL, "n", "u", NULL, err, sizeof(err)) == NULL && strstr(err, "P-256"));
    EVP_PKEY_free(k256);
    EVP_PKEY_free(k384);
    EVP_PKEY_free(rsa);
}

static void test_jwk_and_jws(void)
{
    EVP_PKEY *key = oe_acme_key_new(OE_KEY_EC256);
    json_t *jwk = oe_acme_jwk(key);
    CHECK(jwk && strcmp(json_string_value(json_object_get(jwk, "kty")), "EC") == 0);
    CHECK(strcmp(json_string_value(json_object_get(jwk, "crv")), "P-256") == 0);

    /* x,y must equal the uncompressed public point read another way */
    unsigned char pt[65];
    size_t ptlen = 0;
    CHECK(EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, pt, sizeof(pt), &ptlen) == 1 &&
          ptlen == 65 && pt[0] == 4);
    char *x = oe_acme_b64url(pt + 1, 32), *y = oe_acme_b64url(pt + 33, 32);
    CHECK(strcmp(json_string_value(json_object_get(jwk, "x")), x) == 0);
    CHECK(strcmp(json_string_value(json_object_get(jwk, "y")), y) == 0);

    /* RFC 7638 thumbprint: SHA-256 over {"crv","kty","x","y"} in that order, no spaces */
    char canon[512], tp[64];
    snprintf(canon, sizeof(canon), "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}", x, y);
    unsigned char md[32];
    unsigned mdlen;
    EVP_Digest(canon, strlen(canon), md, &mdlen, EVP_sha256(), NULL);
    char *want = oe_acme_b64url(md, 32);
    CHECK(oe_acme_thumbprint(key, tp, sizeof(tp)) == 0 && strcmp(tp, want) == 0 && strlen(tp) == 43);
    CHECK(oe_acme_thumbprint(key, tp, 10) == -1);
    free(want);
    free(x);
    free(y);

    /* JWS with kid */
    char err[256];
    char *jws = oe_acme_jws(key, "https://ca/acct/1", "nonce-1", "https://ca/new-order", "{\"a\":1}", err, sizeof(err));
    CHECK(jws != NULL);
    json_t *o = json_loads(jws, 0, NULL);
    CHECK(json_is_object(o) && json_object_size(o) == 3);
    char *hdr = dec(o, "protected", NULL), *payload = dec(o, "payload", NULL);
    size_t siglen = 0;
    char *sig = dec(o, "signature", &siglen);
    json_t *h = hdr ? json_loads(hdr, 0, NULL) : NULL;
    CHECK(h && strcmp(json_string_value(json_object_get(h, "alg")), "ES256") == 0);
    CHECK(h && strcmp(json_string_value(json_object_get(h, "kid")), "https://ca/acct/1") == 0);
    CHECK(h && strcmp(json_string_value(json_object_get(h, "nonce")), "nonce-1") == 0);
    CHECK(h && strcmp(json_string_value(json_object_get(h, "url")), "https://ca/new-order") == 0);
    CHECK(h && json_object_get(h, "jwk") == NULL);
    CHECK(payload && strcmp(payload, "{\"a\":1}") == 0);
    CHECK(siglen == 64);

    /* verify: raw r||s -> DER, then EVP_DigestVerify over "protected.payload" */
    if (siglen == 64) {
        ECDSA_SIG *es = ECDSA_SIG_new();
        ECDSA_SIG_set0(es, BN_bin2bn((unsigned char *)sig, 32, NULL), BN_bin2bn((unsigned char *)sig + 32, 32, NULL));
        unsigned char *der = NULL;
        int derlen = i2d_ECDSA_SIG(es, &der);
        char input[2048];
        snprintf(input, sizeof(input), "%s.%s", json_string_value(json_object_get(o, "protected")),
                 json_string_value(json_object_get(o, "payload")));
        EVP_MD_CTX *md_ctx = EVP_MD_CTX_new();
        CHECK(EVP_DigestVerifyInit(md_ctx, NULL, EVP_sha256(), NULL, key) == 1 &&
              EVP_DigestVerify(md_ctx, der, (size_t)derlen, (unsigned char *)input, strlen(input)) == 1);
        input[0] ^= 1; /* tampered input fails */
        EVP_DigestVerifyInit(md_ctx, NULL, EVP_sha256(), NULL, key);
        CHECK(EVP_DigestVerify(md_ctx, der, (size_t)derlen, (unsigned char *)input, strlen(input)) != 1);
        EVP_MD_CTX_free(md_ctx);
        OPENSSL_free(der);
        ECDSA_SIG_free(es);
    }
    json_decref(h);
    json_decref(o);
    free(hdr);
    free(payload);
    free(sig);
    free(jws);

    /* JWS with jwk (newAccount) and POST-as-GET (empty payload) */
    jws = oe_acme_jws(key, NULL, "n2", "https://ca/new-acct", NULL, err, sizeof(err));
    o = jws ? json_loads(jws, 0, NULL) : NULL;
    CHECK(o && strcmp(json_string_value(json_object_get(o, "payload")), "") == 0);
    hdr = dec(o, "protected", NULL);
    h = hdr ? json_loads(hdr, 0, NULL) : NULL;
    CHECK(h && json_object_get(h, "kid") == NULL && json_equal(json_object_get(h, "jwk"), jwk));
    json_decref(h);
    json_decref(o);
    free(hdr);
    free(jws);

    /* EAB: HS256 over the account JWK with the CA's kid and the newAccount URL */
    const char *mac_b64 = "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W";
    json_t *eab = oe_acme_eab(key, "kid-1", mac_b64, "https://ca/new-acct", err, sizeof(err));
    CHECK(eab != NULL);
    hdr = dec(eab, "protected", NULL);
    payload = dec(eab, "payload", NULL);
    sig = dec(eab, "signature", &siglen);
    h = hdr ? json_loads(hdr, 0, NULL) : NULL;
    CHECK(h && strcmp(json_string_value(json_object_get(h, "alg")), "HS256") == 0);
    CHECK(h && strcmp(json_string_value(json_object_get(h, "kid")), "kid-1") == 0);
    CHECK(h && strcmp(json_string_value(json_object_get(h, "url")), "https://ca/new-acct") == 0);
    CHECK(h && json_object_get(h, "nonce") == NULL);
    json_t *pj = payload ? json_loads(payload, 0, NULL) : NULL;
    CHECK(pj && json_equal(pj, jwk));
    unsigned char *mac = NULL;
    size_t maclen = 0;
    oe_acme_b64url_decode(mac_b64, &mac, &maclen);
    char input[2048];
    snprintf(input, sizeof(input), "%s.%s", json_string_value(json_object_get(eab, "protected")),
             json_string_value(json_object_get(eab, "payload")));
    unsigned char hm[32];
    unsigned hmlen = 0;
    HMAC(EVP_sha256(), mac, (int)maclen, (unsigned char *)input, strlen(input), hm, &hmlen);
    CHECK(siglen == 32 && memcmp(sig, hm, 32) == 0);
    free(mac);
    json_decref(pj);
    json_decref(h);
    json_decref(eab);
    free(hdr);
    free(payload);
    free(sig);
    CHECK(oe_acme_eab(key, "kid-1", "not base64!", "u", err, sizeof(err)) == NULL && strstr(err, "hmac_key"));

    json_decref(jwk);
    EVP_PKEY_free(key);
}

static X509_REQ *decode_csr(const char *b64)
{
    unsigned char *der = NULL;
    size_t len = 0;
    if (oe_acme_b64url_decode(b64, &der, &len) != 0)
        return NULL;
    const unsigned char *p = der;
    X509_REQ *req = d2i_X509_REQ(NULL, &p, (long)len);
    free(der);
    return req;
}

static void test_csr(void)
{
    char err[256];
    EVP_PKEY *key = oe_acme_key_new(OE_KEY_EC256);
    char *names[] = {"a.ott-edge.test", "b.ott-edge.test", "127.0.0.1", "::1"};
    char *csr = oe_acme_csr(key, names, 4, err, sizeof(err));
    CHECK(csr && !strchr(csr, '=') && !strchr(csr, '+') && !strchr(csr, '/'));
    X509_REQ *req = csr ? decode_csr(csr) : NULL;
    CHECK(req != NULL);
    if (req) {
        EVP_PKEY *pub = X509_REQ_get0_pubkey(req);
        CHECK(X509_REQ_verify(req, pub) == 1);
        CHECK(EVP_PKEY_eq(pub, key) == 1);
        char cn[256] = "";
        X509_NAME_get_text_by_NID(X509_REQ_get_subject_name(req), NID_commonName, cn, sizeof(cn));
        CHECK(strcmp(cn, "a.ott-edge.test") == 0);
        STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
        GENERAL_NAMES *sans = X509V3_get_d2i(exts, NID_subject_alt_name, NULL, NULL);
        CHECK(sans && sk_GENERAL_NAME_num(sans) == 4);
        int dns = 0, ip4 = 0, ip6 = 0;
        for (int i = 0; sans && i < sk_GENERAL_NAME_num(sans); i++) {
            GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);
            if (g->type == GEN_DNS && !strncmp((const char *)ASN1_STRING_get0_data(g->d.dNSName), names[i], 15))
                dns++;
            if (g->type == GEN_IPADD && ASN1_STRING_length(g->d.iPAddress) == 4 &&
                !memcmp(ASN1_STRING_get0_data(g->d.iPAddress), "\x7f\0\0\1", 4))
                ip4++;
            if (g->type == GEN_IPADD && ASN1_STRING_length(g->d.iPAddress) == 16)
                ip6++;
        }
        CHECK(dns == 2 && ip4 == 1 && ip6 == 1);
        GENERAL_NAMES_free(sans);
        sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
        X509_REQ_free(req);
    }
    free(csr);
    EVP_PKEY_free(key);

    /* RSA key, IP first: no CN, still valid */
    key = oe_acme_key_new(OE_KEY_RSA2048);
    char *ipfirst[] = {"127.0.0.1"};
    csr = oe_acme_csr(key, ipfirst, 1, err, sizeof(err));
    req = csr ? decode_csr(csr) : NULL;
    CHECK(req && X509_REQ_verify(req, X509_REQ_get0_pubkey(req)) == 1 &&
          X509_NAME_entry_count(X509_REQ_get_subject_name(req)) == 0);
    X509_REQ_free(req);
    free(csr);
    EVP_PKEY_free(key);
}

static void test_alpn_cert(void)
{
    char err[256];
    X509 *x = NULL;
    EVP_PKEY *k = NULL;
    const char *ka = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI";
    CHECK(oe_acme_alpn_cert("a.ott-edge.test", ka, &x, &k, err, sizeof(err)) == 0);
    CHECK(X509_check_host(x, "a.ott-edge.test", 0, 0, NULL) == 1);
    CHECK(X509_check_private_key(x, k) == 1);
    CHECK(X509_verify(x, k) == 1);
    ASN1_OBJECT *oid = OBJ_txt2obj("1.3.6.1.5.5.7.1.31", 1);
    int idx = X509_get_ext_by_OBJ(x, oid, -1);
    CHECK(idx >= 0);
    X509_EXTENSION *ext = idx >= 0 ? X509_get_ext(x, idx) : NULL;
    CHECK(ext && X509_EXTENSION_get_critical(ext) == 1);
    if (ext) {
        ASN1_OCTET_STRING *v = X509_EXTENSION_get_data(ext);
        unsigned char want[34] = {0x04, 0x20};
        unsigned mdlen;
        EVP_Digest(ka, strlen(ka), want + 2, &mdlen, EVP_sha256(), NULL);
        CHECK(ASN1_STRING_length(v) == 34 && memcmp(ASN1_STRING_get0_data(v), want, 34) == 0);
    }
    ASN1_OBJECT_free(oid);
    X509_free(x);
    EVP_PKEY_free(k);

    /* IP identifier: the SAN is an IP address */
    CHECK(oe_acme_alpn_cert("127.0.0.1", ka, &x, &k, err, sizeof(err)) == 0);
    CHECK(X509_check_ip_asc(x, "127.0.0.1", 0) == 1);
    X509_free(x);
    EVP_PKEY_free(k);
}

static void test_ip(void)
{
    char out[128];
    CHECK(oe_acme_is_ip("127.0.0.1") && oe_acme_is_ip("::1") && !oe_acme_is_ip("a.example") && !oe_acme_is_ip("1.2.3"));
    CHECK(oe_acme_ip_arpa("127.0.0.1", out, sizeof(out)) == 0 && strcmp(out, "1.0.0.127.in-addr.arpa") == 0);
    CHECK(oe_acme_ip_arpa("::1", out, sizeof(out)) == 0 &&
          strcmp(out, "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa") == 0);
    CHECK(oe_acme_ip_arpa("a.example", out, sizeof(out)) == -1);
}

/* RFC 9773 §4.1 example: AKI 69:88:5B:6B:87:46:40:41:E1:B3:7B:84:7B:A0:AE:2C:DE:01:C8:D4,
 * serial 00:87:65:43:21 -> "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE" */
static void test_ari_id(void)
{
    static const unsigned char aki[20] = {0x69, 0x88, 0x5B, 0x6B, 0x87, 0x46, 0x40, 0x41, 0xE1, 0xB3,
                                          0x7B, 0x84, 0x7B, 0xA0, 0xAE, 0x2C, 0xDE, 0x01, 0xC8, 0xD4};
    EVP_PKEY *k = oe_acme_key_new(OE_KEY_EC256);
    X509 *x = X509_new();
    X509_set_version(x, X509_VERSION_3);
    ASN1_INTEGER_set_uint64(X509_get_serialNumber(x), 0x87654321);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"leaf", -1, -1, 0);
    X509_set_issuer_name(x, n);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, k);
    AUTHORITY_KEYID *akid = AUTHORITY_KEYID_new();
    akid->keyid = ASN1_OCTET_STRING_new();
    ASN1_OCTET_STRING_set(akid->keyid, aki, sizeof(aki));
    X509_add1_ext_i2d(x, NID_authority_key_identifier, akid, 0, 0);
    AUTHORITY_KEYID_free(akid);
    X509_sign(x, k, EVP_sha256());
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(b, x);
    char *pem;
    long len = BIO_get_mem_data(b, &pem);
    char id[256], issuer[64];
    CHECK(oe_acme_ari_cert_id(pem, (size_t)len, id, sizeof(id)) == 0 &&
          strcmp(id, "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE") == 0);
    CHECK(oe_acme_ari_cert_id(pem, (size_t)len, id, 10) == -1);
    CHECK(oe_acme_ari_cert_id("junk", 4, id, sizeof(id)) == -1);
    CHECK(oe_acme_chain_top_issuer(pem, (size_t)len, issuer, sizeof(issuer)) == 0 && strcmp(issuer, "leaf") == 0);
    CHECK(oe_acme_chain_top_issuer("junk", 4, issuer, sizeof(issuer)) == -1);
    BIO_free(b);
    X509_free(x);
    EVP_PKEY_free(k);
}

int main(void)
{
    test_b64();
    test_keys();
    test_jwk_and_jws();
    test_csr();
    test_alpn_cert();
    test_ip();
    test_ari_id();
    return CHECK_DONE();
}
