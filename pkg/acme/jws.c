/*
 * jws — keys, JWS, CSR and challenge certificates for the ACME client (see jws.h).
 */
#define _GNU_SOURCE /* asprintf */
#include "acme/jws.h"

#include <arpa/inet.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OID_ACME_IDENTIFIER "1.3.6.1.5.5.7.1.31"

char *oe_acme_b64url(const unsigned char *data, size_t len)
{
    if (len > (1u << 28))
        return NULL;
    char *out = malloc(4 * ((len + 2) / 3) + 1);
    if (!out)
        return NULL;
    int n = EVP_EncodeBlock((unsigned char *)out, data, (int)len);
    while (n > 0 && out[n - 1] == '=')
        n--;
    out[n] = '\0';
    for (int i = 0; i < n; i++) {
        if (out[i] == '+')
            out[i] = '-';
        else if (out[i] == '/')
            out[i] = '_';
    }
    return out;
}

int oe_acme_b64url_decode(const char *s, unsigned char **out, size_t *outlen)
{
    size_t len = strlen(s);
    while (len > 0 && s[len - 1] == '=')
        len--;
    if (len % 4 == 1 || len > (1u << 28))
        return -1;
    size_t padded = (len + 3) / 4 * 4, pad = padded - len;
    char *tmp = malloc(padded + 1);
    unsigned char *buf = malloc(padded / 4 * 3 + 1);
    if (!tmp || !buf) {
        free(tmp);
        free(buf);
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '-')
            c = '+';
        else if (c == '_')
            c = '/';
        else if (c == '+' || c == '/')
            c = '!'; /* not base64url: make EVP_DecodeBlock reject it */
        tmp[i] = c;
    }
    memset(tmp + len, '=', pad);
    tmp[padded] = '\0';
    int n = padded ? EVP_DecodeBlock(buf, (unsigned char *)tmp, (int)padded) : 0;
    free(tmp);
    if (n < 0 || (size_t)n < pad) {
        free(buf);
        return -1;
    }
    *out = buf;
    *outlen = (size_t)n - pad;
    return 0;
}

EVP_PKEY *oe_acme_key_new(enum oe_key_type type)
{
    switch (type) {
    case OE_KEY_EC384:
        return EVP_EC_gen("P-384");
    case OE_KEY_RSA2048:
        return EVP_RSA_gen(2048);
    case OE_KEY_EC256:
    default:
        return EVP_EC_gen("P-256");
    }
}

char *oe_acme_key_pem(EVP_PKEY *key, size_t *len)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *out = NULL;
    if (bio && PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) == 1) {
        char *data;
        long n = BIO_get_mem_data(bio, &data);
        if (n > 0 && (out = malloc((size_t)n + 1)) != NULL) {
            memcpy(out, data, (size_t)n);
            out[n] = '\0';
            if (len)
                *len = (size_t)n;
        }
    }
    BIO_free(bio);
    return out;
}

EVP_PKEY *oe_acme_key_from_pem(const char *pem, size_t len)
{
    if (len > 1 << 20)
        return NULL;
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    EVP_PKEY *key = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    return key;
}

/* Is key an EC key on P-256? (the only account key type we sign with) */
static int is_p256(EVP_PKEY *key)
{
    char group[32];
    return EVP_PKEY_base_id(key) == EVP_PKEY_EC &&
           EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), NULL) == 1 &&
           strcmp(group, "prime256v1") == 0;
}

static char *bn_b64url(EVP_PKEY *key, const char *param, int width)
{
    BIGNUM *bn = NULL;
    unsigned char buf[66];
    char *out = NULL;
    if (width <= (int)sizeof(buf) && EVP_PKEY_get_bn_param(key, param, &bn) == 1 &&
        BN_bn2binpad(bn, buf, width) == width)
        out = oe_acme_b64url(buf, (size_t)width);
    BN_free(bn);
    return out;
}

json_t *oe_acme_jwk(EVP_PKEY *key)
{
    if (!key || !is_p256(key))
        return NULL;
    char *x = bn_b64url(key, OSSL_PKEY_PARAM_EC_PUB_X, 32), *y = bn_b64url(key, OSSL_PKEY_PARAM_EC_PUB_Y, 32);
    json_t *jwk = NULL;
    if (x && y)
        jwk = json_pack("{s:s, s:s, s:s, s:s}", "crv", "P-256", "kty", "EC", "x", x, "y", y);
    free(x);
    free(y);
    return jwk;
}

int oe_acme_thumbprint(EVP_PKEY *key, char *out, size_t cap)
{
    json_t *jwk = oe_acme_jwk(key);
    /* RFC 7638: members in lexicographic order, no whitespace */
    char *canon = jwk ? json_dumps(jwk, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(jwk);
    if (!canon)
        return -1;
    unsigned char md[32];
    unsigned int mdlen = 0;
    int ok = EVP_Digest(canon, strlen(canon), md, &mdlen, EVP_sha256(), NULL) == 1;
    free(canon);
    char *b = ok ? oe_acme_b64url(md, mdlen) : NULL;
    if (!b || strlen(b) >= cap) {
        free(b);
        return -1;
    }
    strcpy(out, b);
    free(b);
    return 0;
}

/* ES256 signature of data as raw r||s (64 bytes), as JWS wants, not DER. */
static int es256_sign(EVP_PKEY *key, const char *data, size_t len, unsigned char sig[64])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char der[128];
    size_t derlen = sizeof(der);
    int ok = md && EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) == 1 &&
             EVP_DigestSign(md, der, &derlen, (const unsigned char *)data, len) == 1;
    EVP_MD_CTX_free(md);
    if (!ok)
        return -1;
    const unsigned char *p = der;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)derlen);
    if (!es)
        return -1;
    const BIGNUM *r, *s;
    ECDSA_SIG_get0(es, &r, &s);
    ok = BN_bn2binpad(r, sig, 32) == 32 && BN_bn2binpad(s, sig + 32, 32) == 32;
    ECDSA_SIG_free(es);
    return ok ? 0 : -1;
}

/* {"protected": b64(header), "payload": b64(payload), "signature": b64(sig)} with sig from
 * either ES256 (key) or HS256 (hmac). */
static json_t *flattened(json_t *header, const char *payload, EVP_PKEY *key, const unsigned char *hmac, size_t hmaclen)
{
    json_t *out = NULL;
    char *hdr = json_dumps(header, JSON_COMPACT);
    char *h64 = hdr ? oe_acme_b64url((const unsigned char *)hdr, strlen(hdr)) : NULL;
    char *p64 = oe_acme_b64url((const unsigned char *)payload, strlen(payload));
    char *input = NULL, *s64 = NULL;
    if (!h64 || !p64 || asprintf(&input, "%s.%s", h64, p64) < 0)
        goto done;
    if (key) {
        unsigned char sig[64];
        if (es256_sign(key, input, strlen(input), sig) != 0)
            goto done;
        s64 = oe_acme_b64url(sig, sizeof(sig));
    } else {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int mdlen = 0;
        if (!HMAC(EVP_sha256(), hmac, (int)hmaclen, (const unsigned char *)input, strlen(input), md, &mdlen))
            goto done;
        s64 = oe_acme_b64url(md, mdlen);
    }
    if (s64)
        out = json_pack("{s:s, s:s, s:s}", "protected", h64, "payload", p64, "signature", s64);
done:
    free(hdr);
    free(h64);
    free(p64);
    free(input);
    free(s64);
    return out;
}

char *oe_acme_jws(EVP_PKEY *key, const char *kid, const char *nonce, const char *url, const char *payload, char *err,
                  size_t errlen)
{
    if (!key || !is_p256(key)) {
        snprintf(err, errlen, "the ACME account key must be an EC P-256 key (ES256)");
        return NULL;
    }
    json_t *hdr = json_pack("{s:s, s:s, s:s}", "alg", "ES256", "nonce", nonce ? nonce : "", "url", url);
    if (hdr && kid)
        json_object_set_new(hdr, "kid", json_string(kid));
    else if (hdr)
        json_object_set_new(hdr, "jwk", oe_acme_jwk(key));
    json_t *jws = hdr ? flattened(hdr, payload ? payload : "", key, NULL, 0) : NULL;
    json_decref(hdr);
    char *out = jws ? json_dumps(jws, JSON_COMPACT) : NULL;
    json_decref(jws);
    if (!out)
        snprintf(err, errlen, "cannot sign the ACME request (JWS)");
    return out;
}

json_t *oe_acme_eab(EVP_PKEY *account_key, const char *eab_kid, const char *hmac_key_b64url, const char *url, char *err,
                    size_t errlen)
{
    unsigned char *mac = NULL;
    size_t maclen = 0;
    if (oe_acme_b64url_decode(hmac_key_b64url, &mac, &maclen) != 0 || maclen == 0) {
        free(mac);
        snprintf(err, errlen, "acme.eab.hmac_key is not base64url as issued by the CA");
        return NULL;
    }
    json_t *jwk = oe_acme_jwk(account_key);
    char *payload = jwk ? json_dumps(jwk, JSON_COMPACT) : NULL;
    json_t *hdr = json_pack("{s:s, s:s, s:s}", "alg", "HS256", "kid", eab_kid, "url", url);
    json_t *out = payload && hdr ? flattened(hdr, payload, NULL, mac, maclen) : NULL;
    OPENSSL_cleanse(mac, maclen);
    free(mac);
    free(payload);
    json_decref(jwk);
    json_decref(hdr);
    if (!out)
        snprintf(err, errlen, "cannot build the external account binding");
    return out;
}

int oe_acme_is_ip(const char *name)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, name, buf) == 1 || inet_pton(AF_INET6, name, buf) == 1;
}

int oe_acme_ip_arpa(const char *ip, char *out, size_t cap)
{
    unsigned char a[16];
    size_t used = 0;
    if (inet_pton(AF_INET, ip, a) == 1) {
        int n = snprintf(out, cap, "%u.%u.%u.%u.in-addr.arpa", a[3], a[2], a[1], a[0]);
        return n < 0 || (size_t)n >= cap ? -1 : 0;
    }
    if (inet_pton(AF_INET6, ip, a) != 1 || cap < 74)
        return -1;
    static const char hex[] = "0123456789abcdef";
    for (int i = 15; i >= 0; i--) {
        out[used++] = hex[a[i] & 15];
        out[used++] = '.';
        out[used++] = hex[a[i] >> 4];
        out[used++] = '.';
    }
    strcpy(out + used, "ip6.arpa");
    return 0;
}

/* subjectAltName entries for names: DNS, or IP for address literals. */
static GENERAL_NAMES *make_sans(char *const *names, size_t count)
{
    GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
    for (size_t i = 0; gens && i < count; i++) {
        GENERAL_NAME *gen = GENERAL_NAME_new();
        unsigned char ip[16];
        int iplen = inet_pton(AF_INET, names[i], ip) == 1 ? 4 : inet_pton(AF_INET6, names[i], ip) == 1 ? 16 : 0;
        ASN1_STRING *s = iplen ? ASN1_OCTET_STRING_new() : ASN1_IA5STRING_new();
        int ok = gen && s &&
                 (iplen ? ASN1_OCTET_STRING_set(s, ip, iplen) : ASN1_STRING_set(s, names[i], (int)strlen(names[i])));
        if (!ok) {
            ASN1_STRING_free(s);
            GENERAL_NAME_free(gen);
            GENERAL_NAMES_free(gens);
            return NULL;
        }
        GENERAL_NAME_set0_value(gen, iplen ? GEN_IPADD : GEN_DNS, s);
        sk_GENERAL_NAME_push(gens, gen);
    }
    return gens;
}

char *oe_acme_csr(EVP_PKEY *key, char *const *names, size_t count, char *err, size_t errlen)
{
    X509_REQ *req = X509_REQ_new();
    GENERAL_NAMES *sans = count ? make_sans(names, count) : NULL;
    STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
    unsigned char *der = NULL;
    char *out = NULL;
    int len;
    if (!req || !sans || !exts)
        goto done;
    X509_REQ_set_version(req, X509_REQ_VERSION_1);
    /* CN = the first DNS name when it fits (64 chars); the SANs are what counts */
    if (!oe_acme_is_ip(names[0]) && strlen(names[0]) <= 64) {
        X509_NAME *subj = X509_REQ_get_subject_name(req);
        if (!X509_NAME_add_entry_by_txt(subj, "CN", MBSTRING_ASC, (const unsigned char *)names[0], -1, -1, 0))
            goto done;
    }
    if (X509_REQ_set_pubkey(req, key) != 1 || X509V3_add1_i2d(&exts, NID_subject_alt_name, sans, 0, 0) != 1 ||
        X509_REQ_add_extensions(req, exts) != 1 || X509_REQ_sign(req, key, EVP_sha256()) <= 0)
        goto done;
    len = i2d_X509_REQ(req, &der);
    if (len > 0)
        out = oe_acme_b64url(der, (size_t)len);
done:
    if (!out)
        snprintf(err, errlen, "cannot build the certificate signing request");
    OPENSSL_free(der);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    GENERAL_NAMES_free(sans);
    X509_REQ_free(req);
    return out;
}

int oe_acme_alpn_cert(const char *name, const char *key_authz, X509 **cert_out, EVP_PKEY **key_out, char *err,
                      size_t errlen)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    char *const names[1] = {(char *)name};
    GENERAL_NAMES *sans = make_sans(names, 1);
    ASN1_OBJECT *oid = OBJ_txt2obj(OID_ACME_IDENTIFIER, 1);
    ASN1_OCTET_STRING *inner = ASN1_OCTET_STRING_new(), *outer = ASN1_OCTET_STRING_new();
    X509_EXTENSION *ext = NULL;
    unsigned char *der = NULL;
    int ok = 0;
    unsigned char md[32], serial[16];
    unsigned int mdlen = 0;

    if (!key || !x || !sans || !oid || !inner || !outer)
        goto done;
    /* extnValue = DER of OCTET STRING (SHA-256 of the key authorization), critical */
    if (EVP_Digest(key_authz, strlen(key_authz), md, &mdlen, EVP_sha256(), NULL) != 1 ||
        ASN1_OCTET_STRING_set(inner, md, (int)mdlen) != 1)
        goto done;
    int derlen = i2d_ASN1_OCTET_STRING(inner, &der);
    if (derlen <= 0 || ASN1_OCTET_STRING_set(outer, der, derlen) != 1 ||
        !(ext = X509_EXTENSION_create_by_OBJ(NULL, oid, 1, outer)))
        goto done;

    X509_set_version(x, X509_VERSION_3);
    if (RAND_bytes(serial, sizeof(serial)) != 1)
        goto done;
    serial[0] &= 0x7f;
    BIGNUM *bn = BN_bin2bn(serial, sizeof(serial), NULL);
    ok = bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
    BN_free(bn);
    if (!ok)
        goto done;
    ok = 0;
    X509_NAME *subj = X509_get_subject_name(x);
    if (!X509_NAME_add_entry_by_txt(subj, "CN", MBSTRING_ASC, (const unsigned char *)"ott-edge ACME TLS-ALPN-01", -1,
                                    -1, 0) ||
        X509_set_issuer_name(x, subj) != 1 || !X509_gmtime_adj(X509_getm_notBefore(x), -3600) ||
        !X509_gmtime_adj(X509_getm_notAfter(x), 7 * 24 * 3600) || X509_set_pubkey(x, key) != 1 ||
        X509_add1_ext_i2d(x, NID_subject_alt_name, sans, 0, 0) != 1 || X509_add_ext(x, ext, -1) != 1 ||
        X509_sign(x, key, EVP_sha256()) <= 0)
        goto done;
    ok = 1;
done:
    OPENSSL_free(der);
    X509_EXTENSION_free(ext);
    ASN1_OCTET_STRING_free(inner);
    ASN1_OCTET_STRING_free(outer);
    ASN1_OBJECT_free(oid);
    GENERAL_NAMES_free(sans);
    if (!ok) {
        X509_free(x);
        EVP_PKEY_free(key);
        snprintf(err, errlen, "cannot build the TLS-ALPN-01 challenge certificate for %s", name);
        return -1;
    }
    *cert_out = x;
    *key_out = key;
    return 0;
}

static X509 *first_cert(const char *pem, size_t len)
{
    if (len > 1 << 20)
        return NULL;
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    X509 *x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    return x;
}

int oe_acme_ari_cert_id(const char *pem, size_t len, char *out, size_t cap)
{
    X509 *x = first_cert(pem, len);
    if (!x)
        return -1;
    int rc = -1;
    const ASN1_OCTET_STRING *akid = X509_get0_authority_key_id(x);
    const ASN1_INTEGER *serial = X509_get0_serialNumber(x);
    /* the serial's DER content octets (with a leading 0x00 when the top bit is set) */
    unsigned char *der = NULL;
    int derlen = i2d_ASN1_INTEGER(serial, &der);
    if (akid && derlen > 2 && der[1] < 0x80) {
        char *a = oe_acme_b64url(ASN1_STRING_get0_data(akid), (size_t)ASN1_STRING_length(akid));
        char *s = oe_acme_b64url(der + 2, (size_t)derlen - 2);
        if (a && s) {
            int n = snprintf(out, cap, "%s.%s", a, s);
            rc = n < 0 || (size_t)n >= cap ? -1 : 0;
        }
        free(a);
        free(s);
    }
    OPENSSL_free(der);
    X509_free(x);
    return rc;
}

int oe_acme_chain_top_issuer(const char *pem, size_t len, char *out, size_t cap)
{
    if (len > 1 << 20 || cap == 0)
        return -1;
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    X509 *last = NULL, *x;
    while (bio && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        X509_free(last);
        last = x;
    }
    ERR_clear_error();
    BIO_free(bio);
    if (!last)
        return -1;
    out[0] = '\0';
    int n = X509_NAME_get_text_by_NID(X509_get_issuer_name(last), NID_commonName, out, (int)cap);
    X509_free(last);
    return n < 0 ? -1 : 0;
}
