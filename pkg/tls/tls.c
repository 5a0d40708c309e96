/* tls — see tls.h. */
#include "tls/tls.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "challenge/challenge.h"
#include "h2o_compat.h"
#include "log/log.h"

#define SID_CTX "ott-edge"

static const char *tls12_ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                                   "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                                   "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
static const char *tls13_suites = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";
static const char *groups = "X25519:P-256:P-384";

/* One site's certificate. */
typedef struct slot {
    char name[OE_CONFIG_SITE_NAME_MAX + 1]; /* "" for the one unnamed certificate before oe_tls_set_sites() */
    SSL_CTX *ctx;                           /* NULL until loaded */
    oe_tls_info_t info;
} slot_t;

static SSL_CTX *front;
static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;
/* guarded by live_lock: */
static slot_t *slots; /* in cfg->sites order, so a site's index is its slot's */
static size_t nslots;
static size_t primary;               /* the default site's slot, else 0 */
static const oe_config_t *route_cfg; /* NULL: no routing, every handshake gets the primary */
static uint64_t swaps;

static void set_err(char *err, size_t errlen, const char *what)
{
    unsigned long e = ERR_peek_last_error();
    char detail[256] = "";
    if (e != 0)
        ERR_error_string_n(e, detail, sizeof(detail));
    ERR_clear_error();
    snprintf(err, errlen, "%s%s%s", what, e != 0 ? ": " : "", detail);
}

/* Settings shared by the front context and every certificate context. */
static int apply_common(SSL_CTX *ctx)
{
    static const h2o_iovec_t alpn[] = {{H2O_STRLIT("h2")}, {H2O_STRLIT("http/1.1")}, {NULL}};
    if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) || !SSL_CTX_set_cipher_list(ctx, tls12_ciphers) ||
        !SSL_CTX_set_ciphersuites(ctx, tls13_suites) || !SSL_CTX_set1_groups_list(ctx, groups) ||
        !SSL_CTX_set_session_id_context(ctx, (const unsigned char *)SID_CTX, sizeof(SID_CTX) - 1))
        return -1;
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    /* idle connections (days-long WebSockets) give their record buffers back */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    h2o_ssl_register_alpn_protocols(ctx, alpn);
    return 0;
}

/* Reads one TLS extension's bytes from the ClientHello. */
static int hello_ext(SSL *ssl, unsigned type, const unsigned char **p, size_t *len)
{
    return SSL_client_hello_get0_ext(ssl, type, p, len) == 1;
}

/* Extracts the SNI host name (RFC 6066 §3) into buf; returns 0 when absent/malformed. */
static int hello_sni(SSL *ssl, char *buf, size_t cap)
{
    const unsigned char *p;
    size_t len;
    if (!hello_ext(ssl, TLSEXT_TYPE_server_name, &p, &len) || len < 5)
        return 0;
    size_t list = ((size_t)p[0] << 8) | p[1];
    if (list + 2 != len || p[2] != TLSEXT_NAMETYPE_host_name)
        return 0;
    size_t n = ((size_t)p[3] << 8) | p[4];
    if (n == 0 || n + 5 > len || n >= cap)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = p[5 + i];
        buf[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
        if (c < 0x21 || c > 0x7e)
            return 0;
    }
    buf[n] = '\0';
    return 1;
}

/* Whether the client offers ALPN "acme-tls/1" (RFC 8737). */
static int hello_offers_acme(SSL *ssl)
{
    const unsigned char *p;
    size_t len;
    if (!hello_ext(ssl, TLSEXT_TYPE_application_layer_protocol_negotiation, &p, &len) || len < 2)
        return 0;
    size_t list = ((size_t)p[0] << 8) | p[1];
    if (list + 2 != len)
        return 0;
    for (size_t i = 2; i < len;) {
        size_t n = p[i];
        if (i + 1 + n > len)
            return 0;
        if (n == 10 && memcmp(p + i + 1, "acme-tls/1", 10) == 0)
            return 1;
        i += 1 + n;
    }
    return 0;
}

static oe_tls_sni_cb sni_observer;

void oe_tls_set_sni_observer(oe_tls_sni_cb cb)
{
    sni_observer = cb;
}

/* The slot of a site name (NULL: the primary); -1 when unknown. Call with live_lock held. */
static long find_slot(const char *site)
{
    if (site == NULL)
        return nslots > 0 ? (long)primary : -1;
    for (size_t i = 0; i < nslots; i++)
        if (strcmp(slots[i].name, site) == 0)
            return (long)i;
    return -1;
}

/* Runs once per handshake: picks the context that holds the certificate to present. */
static int on_client_hello(SSL *ssl, int *alert, void *arg)
{
    char name[256];
    (void)arg;
    if (hello_offers_acme(ssl)) {
        SSL_CTX *ch = hello_sni(ssl, name, sizeof(name)) ? oe_challenge_alpn_ctx(name) : NULL;
        if (ch == NULL) {
            *alert = SSL_AD_UNRECOGNIZED_NAME;
            return SSL_CLIENT_HELLO_ERROR;
        }
        SSL_set_SSL_CTX(ssl, ch); /* takes its own reference */
        SSL_CTX_free(ch);
        return SSL_CLIENT_HELLO_SUCCESS;
    }
    int have = -1; /* the SNI: not read yet */
    if (sni_observer != NULL) {
        /* libh2o's BIO carries its socket: that is how the server learns the name */
        have = hello_sni(ssl, name, sizeof(name));
        sni_observer(BIO_get_data(SSL_get_rbio(ssl)), have ? name : NULL);
    }
    pthread_mutex_lock(&live_lock);
    long i = -1; /* with one site (the one-site form) there is nothing to choose */
    if (nslots > 1 && route_cfg != NULL && (have >= 0 ? have : hello_sni(ssl, name, sizeof(name))))
        i = oe_config_site_for_host(route_cfg, name, strlen(name));
    SSL_CTX *cur = i >= 0 && (size_t)i < nslots ? slots[i].ctx : NULL;
    if (cur == NULL && nslots > 0)
        cur = slots[primary].ctx; /* unknown name, no SNI, or that site has nothing loaded */
    for (size_t j = 0; cur == NULL && j < nslots; j++)
        cur = slots[j].ctx;
    if (cur != NULL)
        SSL_CTX_up_ref(cur);
    pthread_mutex_unlock(&live_lock);
    if (cur == NULL) {
        *alert = SSL_AD_INTERNAL_ERROR;
        return SSL_CLIENT_HELLO_ERROR;
    }
    SSL_set_SSL_CTX(ssl, cur);
    SSL_CTX_free(cur);
    return SSL_CLIENT_HELLO_SUCCESS;
}

int oe_tls_init(char *err, size_t errlen)
{
    if (front != NULL)
        return 0;
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL || apply_common(ctx) != 0) {
        set_err(err, errlen, "tls: cannot set up the TLS context");
        SSL_CTX_free(ctx);
        return -1;
    }
    SSL_CTX_set_client_hello_cb(ctx, on_client_hello, NULL);
    /* TLS 1.3 tickets and TLS 1.2 session IDs both live on this fixed context, so they
     * keep working across certificate swaps and across worker threads. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    SSL_CTX_sess_set_cache_size(ctx, 20000);
    SSL_CTX_set_num_tickets(ctx, 1);
    slot_t *one = calloc(1, sizeof(*one));
    if (one == NULL) {
        snprintf(err, errlen, "tls: out of memory");
        SSL_CTX_free(ctx);
        return -1;
    }
    pthread_mutex_lock(&live_lock);
    slots = one;
    nslots = 1;
    primary = 0;
    route_cfg = NULL;
    pthread_mutex_unlock(&live_lock);
    front = ctx;
    return 0;
}

void oe_tls_shutdown(void)
{
    pthread_mutex_lock(&live_lock);
    for (size_t i = 0; i < nslots; i++)
        SSL_CTX_free(slots[i].ctx);
    free(slots);
    slots = NULL;
    nslots = 0;
    route_cfg = NULL;
    pthread_mutex_unlock(&live_lock);
    SSL_CTX_free(front);
    front = NULL;
}

int oe_tls_set_sites(const oe_config_t *cfg, char *err, size_t errlen)
{
    size_t n = cfg->sites_count;
    slot_t *ns = calloc(n > 0 ? n : 1, sizeof(*ns)), *old;
    size_t oldn;
    if (ns == NULL || n == 0) {
        free(ns);
        snprintf(err, errlen, n == 0 ? "tls: no sites" : "tls: out of memory");
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        snprintf(ns[i].name, sizeof(ns[i].name), "%s", cfg->sites[i].name);
    pthread_mutex_lock(&live_lock);
    old = slots;
    oldn = nslots;
    /* a site that stays keeps its certificate; the unnamed one goes to the primary site */
    size_t prim = cfg->default_site >= 0 ? (size_t)cfg->default_site : 0;
    for (size_t j = 0; j < oldn; j++) {
        size_t i = 0;
        if (old[j].ctx == NULL)
            continue;
        if (old[j].name[0] == '\0')
            i = prim;
        else
            for (i = 0; i < n && strcmp(ns[i].name, old[j].name) != 0; i++)
                ;
        if (i < n && ns[i].ctx == NULL) {
            ns[i].ctx = old[j].ctx;
            ns[i].info = old[j].info;
            old[j].ctx = NULL;
        }
    }
    slots = ns;
    nslots = n;
    primary = prim;
    route_cfg = cfg;
    pthread_mutex_unlock(&live_lock);
    for (size_t j = 0; j < oldn; j++)
        SSL_CTX_free(old[j].ctx); /* sites that are gone; handshakes that picked them hold references */
    free(old);
    return 0;
}

SSL_CTX *oe_tls_front_ctx(void)
{
    return front;
}

static time_t asn1_to_time(const ASN1_TIME *t)
{
    struct tm tm;
    if (t == NULL || !ASN1_TIME_to_tm(t, &tm))
        return 0;
    return timegm(&tm);
}

static void name_cn(X509_NAME *n, char *buf, size_t cap)
{
    buf[0] = '\0';
    if (n != NULL && X509_NAME_get_text_by_NID(n, NID_commonName, buf, (int)cap) < 0)
        buf[0] = '\0';
}

static void cert_info(X509 *x, oe_tls_info_t *out)
{
    memset(out, 0, sizeof(*out));
    out->not_before = asn1_to_time(X509_get0_notBefore(x));
    out->not_after = asn1_to_time(X509_get0_notAfter(x));
    name_cn(X509_get_subject_name(x), out->subject, sizeof(out->subject));
    name_cn(X509_get_issuer_name(x), out->issuer, sizeof(out->issuer));
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    if (bn != NULL) {
        char *hex = BN_bn2hex(bn);
        if (hex != NULL)
            snprintf(out->serial, sizeof(out->serial), "%s", hex);
        OPENSSL_free(hex);
        BN_free(bn);
    }
    GENERAL_NAMES *sans = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    size_t len = 0;
    for (int i = 0; sans != NULL && i < sk_GENERAL_NAME_num(sans); i++) {
        const GENERAL_NAME *gn = sk_GENERAL_NAME_value(sans, i);
        char item[256] = "";
        if (gn->type == GEN_DNS) {
            snprintf(item, sizeof(item), "%.*s", ASN1_STRING_length(gn->d.dNSName),
                     (const char *)ASN1_STRING_get0_data(gn->d.dNSName));
        } else if (gn->type == GEN_IPADD) {
            const unsigned char *ip = ASN1_STRING_get0_data(gn->d.iPAddress);
            int iplen = ASN1_STRING_length(gn->d.iPAddress);
            if (iplen == 4 || iplen == 16)
                inet_ntop(iplen == 4 ? AF_INET : AF_INET6, ip, item, sizeof(item));
        }
        if (item[0] != '\0' && len + strlen(item) + 2 < sizeof(out->names))
            len += (size_t)snprintf(out->names + len, sizeof(out->names) - len, "%s%s", len ? "," : "", item);
    }
    GENERAL_NAMES_free(sans);
}

struct oe_tls_cert {
    SSL_CTX *ctx;
    oe_tls_info_t info;
};

/* Builds a certificate context from a key and a chain (leaf first); nothing is served yet. */
static oe_tls_cert_t *build(EVP_PKEY *key, STACK_OF(X509) * chain, int fallback, char *err, size_t errlen)
{
    if (sk_X509_num(chain) < 1) {
        snprintf(err, errlen, "tls: no certificate found in the PEM data");
        return NULL;
    }
    oe_tls_cert_t *c = calloc(1, sizeof(*c));
    SSL_CTX *ctx = c != NULL ? SSL_CTX_new(TLS_server_method()) : NULL;
    if (ctx == NULL || apply_common(ctx) != 0) {
        set_err(err, errlen, "tls: cannot create a certificate context");
        SSL_CTX_free(ctx);
        free(c);
        return NULL;
    }
    c->ctx = ctx;
    X509 *leaf = sk_X509_value(chain, 0);
    if (SSL_CTX_use_certificate(ctx, leaf) != 1) {
        set_err(err, errlen, "tls: certificate rejected");
        oe_tls_cert_free(c);
        return NULL;
    }
    for (int i = 1; i < sk_X509_num(chain); i++) {
        if (SSL_CTX_add1_chain_cert(ctx, sk_X509_value(chain, i)) != 1) {
            set_err(err, errlen, "tls: intermediate certificate rejected");
            oe_tls_cert_free(c);
            return NULL;
        }
    }
    if (SSL_CTX_use_PrivateKey(ctx, key) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
        set_err(err, errlen, "tls: the private key does not match the certificate");
        oe_tls_cert_free(c);
        return NULL;
    }
    cert_info(leaf, &c->info);
    c->info.loaded = 1;
    c->info.fallback = fallback;
    return c;
}

void oe_tls_cert_free(oe_tls_cert_t *c)
{
    if (c == NULL)
        return;
    SSL_CTX_free(c->ctx);
    free(c);
}

int oe_tls_cert_install(const char *site, oe_tls_cert_t *c, char *err, size_t errlen)
{
    char name[OE_CONFIG_SITE_NAME_MAX + 1];
    oe_tls_info_t info = c->info;
    pthread_mutex_lock(&live_lock);
    long i = find_slot(site);
    SSL_CTX *old = NULL;
    if (i >= 0) {
        old = slots[i].ctx;
        slots[i].ctx = c->ctx;
        info.generation = ++swaps;
        slots[i].info = info;
        snprintf(name, sizeof(name), "%s", slots[i].name);
        c->ctx = NULL;
    }
    pthread_mutex_unlock(&live_lock);
    oe_tls_cert_free(c);
    if (i < 0) {
        snprintf(err, errlen, "tls: no site is named \"%.64s\"", site != NULL ? site : "");
        return -1;
    }
    SSL_CTX_free(old); /* handshakes that picked it hold their own reference */
    oe_log(OE_LOG_INFO, "certificate_loaded", "subject", info.subject, "names", info.names, "issuer", info.issuer,
           "serial", info.serial, "fallback", info.fallback ? "true" : "false", name[0] ? "site" : NULL, name, NULL);
    return 0;
}

/* Builds a certificate context and swaps it in as the site's (NULL: the primary). */
static int swap_in(const char *site, EVP_PKEY *key, STACK_OF(X509) * chain, int fallback, char *err, size_t errlen)
{
    oe_tls_cert_t *c = build(key, chain, fallback, err, errlen);
    return c != NULL ? oe_tls_cert_install(site, c, err, errlen) : -1;
}

static STACK_OF(X509) * read_chain(BIO *bio)
{
    STACK_OF(X509) *chain = sk_X509_new_null();
    X509 *x;
    while (chain != NULL && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        if (sk_X509_push(chain, x) == 0) {
            X509_free(x);
            break;
        }
    }
    ERR_clear_error(); /* the loop ends on "no start line" */
    return chain;
}

static int load_pem(const char *site, BIO *cbio, BIO *kbio, const char *what, char *err, size_t errlen)
{
    STACK_OF(X509) *chain = read_chain(cbio);
    EVP_PKEY *key = PEM_read_bio_PrivateKey(kbio, NULL, NULL, NULL);
    int rc = -1;
    if (chain == NULL || sk_X509_num(chain) == 0) {
        snprintf(err, errlen, "tls: %s: no PEM certificate found", what);
    } else if (key == NULL) {
        set_err(err, errlen, "tls: no usable PEM private key found");
    } else {
        rc = swap_in(site, key, chain, 0, err, errlen);
    }
    sk_X509_pop_free(chain, X509_free);
    EVP_PKEY_free(key);
    return rc;
}

int oe_tls_load_files(const char *cert_file, const char *key_file, char *err, size_t errlen)
{
    return oe_tls_load_files_for(NULL, cert_file, key_file, err, errlen);
}

oe_tls_cert_t *oe_tls_cert_from_files(const char *cert_file, const char *key_file, char *err, size_t errlen)
{
    BIO *c = BIO_new_file(cert_file, "r"), *k = BIO_new_file(key_file, "r");
    oe_tls_cert_t *cert = NULL;
    if (c == NULL) {
        snprintf(err, errlen, "tls.cert_file: cannot read %s", cert_file);
    } else if (k == NULL) {
        snprintf(err, errlen, "tls.key_file: cannot read %s", key_file);
    } else {
        STACK_OF(X509) *chain = read_chain(c);
        EVP_PKEY *key = PEM_read_bio_PrivateKey(k, NULL, NULL, NULL);
        char e[384] = "";
        if (chain == NULL || sk_X509_num(chain) == 0) {
            snprintf(err, errlen, "tls.cert_file: %s: no PEM certificate found", cert_file);
        } else if (key == NULL) {
            set_err(e, sizeof(e), "no usable PEM private key found");
            snprintf(err, errlen, "tls.key_file: %s: %s", key_file, e);
        } else if ((cert = build(key, chain, 0, e, sizeof(e))) == NULL) {
            /* "tls.cert_file: /etc/a.pem: the private key does not match the certificate" */
            snprintf(err, errlen, "tls.cert_file: %s: %s", cert_file, strncmp(e, "tls: ", 5) == 0 ? e + 5 : e);
        }
        sk_X509_pop_free(chain, X509_free);
        EVP_PKEY_free(key);
    }
    ERR_clear_error();
    BIO_free(c);
    BIO_free(k);
    return cert;
}

int oe_tls_load_files_for(const char *site, const char *cert_file, const char *key_file, char *err, size_t errlen)
{
    BIO *c = BIO_new_file(cert_file, "r"), *k = BIO_new_file(key_file, "r");
    int rc = -1;
    if (c == NULL)
        snprintf(err, errlen, "tls.cert_file: cannot read %s", cert_file);
    else if (k == NULL)
        snprintf(err, errlen, "tls.key_file: cannot read %s", key_file);
    else
        rc = load_pem(site, c, k, cert_file, err, errlen);
    ERR_clear_error();
    BIO_free(c);
    BIO_free(k);
    return rc;
}

int oe_tls_publish_pem(const char *chain_pem, size_t chain_len, const char *key_pem, size_t key_len, char *err,
                       size_t errlen)
{
    return oe_tls_publish_pem_for(NULL, chain_pem, chain_len, key_pem, key_len, err, errlen);
}

int oe_tls_publish_pem_for(const char *site, const char *chain_pem, size_t chain_len, const char *key_pem,
                           size_t key_len, char *err, size_t errlen)
{
    BIO *c = BIO_new_mem_buf(chain_pem, (int)chain_len), *k = BIO_new_mem_buf(key_pem, (int)key_len);
    int rc = c != NULL && k != NULL ? load_pem(site, c, k, "certificate", err, errlen) : -1;
    BIO_free(c);
    BIO_free(k);
    return rc;
}

static int is_ip(const char *s)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

int oe_tls_use_selfsigned(char *const *names, size_t count, char *err, size_t errlen)
{
    return oe_tls_use_selfsigned_for(NULL, names, count, err, errlen);
}

int oe_tls_use_selfsigned_for(const char *site, char *const *names, size_t count, char *err, size_t errlen)
{
    static char *const localhost[] = {"localhost"};
    if (count == 0) {
        names = localhost;
        count = 1;
    }
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    STACK_OF(X509) *chain = sk_X509_new_null();
    int rc = -1;
    char san[2048] = "";
    size_t sl = 0;
    for (size_t i = 0; i < count && sl < sizeof(san) - 300; i++)
        sl += (size_t)snprintf(san + sl, sizeof(san) - sl, "%s%s:%s", i ? "," : "", is_ip(names[i]) ? "IP" : "DNS",
                               names[i]);
    if (key == NULL || x == NULL || chain == NULL)
        goto fail;
    unsigned char serial[16];
    BIGNUM *bn = NULL;
    RAND_bytes(serial, sizeof(serial));
    serial[0] &= 0x7f;
    bn = BN_bin2bn(serial, sizeof(serial), NULL);
    X509_set_version(x, 2);
    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
    BN_free(bn);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 90L * 24 * 3600);
    X509_NAME *subj = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(subj, "O", MBSTRING_ASC, (const unsigned char *)"ott-edge self-signed", -1, -1, 0);
    X509_NAME_add_entry_by_txt(subj, "CN", MBSTRING_ASC, (const unsigned char *)names[0], -1, -1, 0);
    X509_set_issuer_name(x, subj);
    X509_set_pubkey(x, key);
    X509V3_CTX v3;
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san);
    if (ext == NULL || !X509_add_ext(x, ext, -1)) {
        X509_EXTENSION_free(ext);
        set_err(err, errlen, "tls: cannot build the self-signed certificate's names");
        goto fail;
    }
    X509_EXTENSION_free(ext);
    if (!X509_sign(x, key, EVP_sha256())) {
        set_err(err, errlen, "tls: cannot sign the self-signed certificate");
        goto fail;
    }
    sk_X509_push(chain, x);
    x = NULL;
    rc = swap_in(site, key, chain, 1, err, errlen);
fail:
    if (rc != 0 && err[0] == '\0')
        set_err(err, errlen, "tls: cannot generate a self-signed certificate");
    X509_free(x);
    sk_X509_pop_free(chain, X509_free);
    EVP_PKEY_free(key);
    return rc;
}

void oe_tls_info(oe_tls_info_t *out)
{
    oe_tls_info_for(NULL, out);
}

int oe_tls_info_for(const char *site, oe_tls_info_t *out)
{
    pthread_mutex_lock(&live_lock);
    long i = find_slot(site);
    if (i >= 0)
        *out = slots[i].info;
    else
        memset(out, 0, sizeof(*out));
    pthread_mutex_unlock(&live_lock);
    return i >= 0 ? 0 : -1;
}

int oe_tls_sni_site(SSL *ssl)
{
    const char *sni = ssl != NULL ? SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name) : NULL;
    int i = -1;
    if (sni == NULL)
        return -1;
    pthread_mutex_lock(&live_lock);
    if (route_cfg != NULL)
        i = oe_config_site_for_host(route_cfg, sni, strlen(sni));
    pthread_mutex_unlock(&live_lock);
    return i;
}

uint64_t oe_tls_swaps(void)
{
    pthread_mutex_lock(&live_lock);
    uint64_t n = swaps;
    pthread_mutex_unlock(&live_lock);
    return n;
}

int oe_tls_pem_info(const char *chain_pem, size_t chain_len, oe_tls_info_t *out, char *err, size_t errlen)
{
    BIO *b = BIO_new_mem_buf(chain_pem, (int)chain_len);
    X509 *x = b != NULL ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    if (x == NULL) {
        set_err(err, errlen, "tls: no PEM certificate found");
        return -1;
    }
    cert_info(x, out);
    out->loaded = 1;
    X509_free(x);
    return 0;
}

int oe_tls_pem_pair_matches(const char *chain_pem, size_t chain_len, const char *key_pem, size_t key_len)
{
    BIO *c = BIO_new_mem_buf(chain_pem, (int)chain_len), *k = BIO_new_mem_buf(key_pem, (int)key_len);
    X509 *x = c != NULL ? PEM_read_bio_X509(c, NULL, NULL, NULL) : NULL;
    EVP_PKEY *key = k != NULL ? PEM_read_bio_PrivateKey(k, NULL, NULL, NULL) : NULL;
    int ok = x != NULL && key != NULL && X509_check_private_key(x, key) == 1;
    ERR_clear_error();
    X509_free(x);
    EVP_PKEY_free(key);
    BIO_free(c);
    BIO_free(k);
    return ok;
}
