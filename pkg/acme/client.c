/*
 * client — the RFC 8555 flow (see client.h). Each step is one function that either
 * succeeds or fills err with what went wrong, including the server's problem document.
 */
#define _GNU_SOURCE /* asprintf */
#include "acme/client.h"

#include <jansson.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acme/jws.h"
#include "challenge/challenge.h"
#include "cluster/cluster.h"
#include "log/log.h"

#define BADNONCE_RETRIES     20
#define POLL_MAX_TRIES       600 /* bounded: at 2 s apart that is 20 min */
#define POLL_RETRY_AFTER_MAX 60
#define MAX_TYPES            4

enum { CH_HTTP01 = 0, CH_TLSALPN01 = 1, CH_DNS01 = 2, CH_COUNT = 3 };
static const char *const ch_names[] = {"http-01", "tls-alpn-01", "dns-01"};

static const char *ch_name(int t)
{
    return t >= 0 && t < CH_COUNT ? ch_names[t] : "none";
}

static int stopping(oe_acme_client_t *c)
{
    return c->stop && __atomic_load_n(c->stop, __ATOMIC_RELAXED);
}

int oe_acme_client_init(oe_acme_client_t *c, const oe_config_t *cfg, EVP_PKEY *account_key, const char *kid,
                        const int *stop, oe_acme_sleep_fn sleep, void *sleep_data, char *err, size_t errlen)
{
    memset(c, 0, sizeof(*c));
    c->cfg = cfg;
    c->stop = stop;
    c->sleep = sleep;
    c->sleep_data = sleep_data;
    c->poll_min_ms = 10;
    c->poll_max_ms = 2000;
    c->account_key = account_key;
    snprintf(c->kid, sizeof(c->kid), "%s", kid ? kid : "");
    if (oe_acme_thumbprint(account_key, c->thumbprint, sizeof(c->thumbprint)) != 0) {
        snprintf(err, errlen, "the ACME account key is not an EC P-256 key");
        return -1;
    }
    if (oe_config_challenge_on(cfg, "dns-01")) {
        oe_dns_opts_t o;
        oe_dns_opts_from_config(cfg, &o);
        o.stop = stop;
        if (!(c->dns = oe_dns_new(&o, err, errlen)))
            return -1;
    }
    c->http = oe_acme_http_new(cfg->acme.ca_file, stop, err, errlen);
    return c->http ? 0 : -1;
}

int oe_acme_client_set_account(oe_acme_client_t *c, EVP_PKEY *account_key, const char *kid, char *err, size_t errlen)
{
    if (oe_acme_thumbprint(account_key, c->thumbprint, sizeof(c->thumbprint)) != 0) {
        snprintf(err, errlen, "the ACME account key is not an EC P-256 key");
        return -1;
    }
    c->account_key = account_key;
    snprintf(c->kid, sizeof(c->kid), "%s", kid ? kid : "");
    return 0;
}

void oe_acme_client_free(oe_acme_client_t *c)
{
    oe_acme_http_free(c->http);
    c->http = NULL;
    oe_dns_free(c->dns);
    c->dns = NULL;
}

void oe_acme_cert_free(oe_acme_cert_t *cert)
{
    free(cert->chain_pem);
    if (cert->key_pem)
        OPENSSL_cleanse(cert->key_pem, cert->key_len);
    free(cert->key_pem);
    memset(cert, 0, sizeof(*cert));
}

/* ---- responses and problems ------------------------------------------------------ */

static void keep_nonce(oe_acme_client_t *c, const oe_acme_resp_t *r)
{
    if (!r->nonce[0])
        return;
    if (c->nonce_count == sizeof(c->nonces) / sizeof(c->nonces[0])) { /* full: drop the oldest */
        memmove(c->nonces[0], c->nonces[1], sizeof(c->nonces) - sizeof(c->nonces[0]));
        c->nonce_count--;
    }
    snprintf(c->nonces[c->nonce_count++], sizeof(c->nonces[0]), "%s", r->nonce);
}

/* Records what a failed response says (problem document, Retry-After) and writes a
 * message naming the step into err. */
static void fail_resp(oe_acme_client_t *c, const char *step, const oe_acme_resp_t *r, char *err, size_t errlen)
{
    memset(&c->problem, 0, sizeof(c->problem));
    c->last_status = r->status;
    if (r->body_len)
        oe_acme_parse_problem(r->body, r->body_len, &c->problem);
    uint64_t ra = 0;
    if ((r->status == 429 || r->status == 503) && r->retry_after[0] &&
        oe_acme_parse_retry_after(r->retry_after, strlen(r->retry_after), time(NULL), &ra) == 0)
        c->retry_after_s = ra;
    char status[16];
    snprintf(status, sizeof(status), "%ld", r->status);
    oe_log(r->status >= 500 || r->status == 429 ? OE_LOG_WARN : OE_LOG_ERROR, "acme_problem", "step", step, "status",
           status, "type", c->problem.type, "detail", c->problem.detail, "subproblems", c->problem.subproblems,
           "retry_after", r->retry_after, NULL);
    if (c->problem.type[0])
        snprintf(err, errlen, "%s failed (HTTP %ld): %s: %s%s%s", step, r->status, oe_acme_problem_short(&c->problem),
                 c->problem.detail, c->problem.subproblems[0] ? " — " : "", c->problem.subproblems);
    else
        snprintf(err, errlen, "%s failed: HTTP %ld from the ACME server", step, r->status);
}

static json_t *resp_json(const oe_acme_resp_t *r, const char *step, char *err, size_t errlen)
{
    json_t *j = json_loadb(r->body, r->body_len, 0, NULL);
    if (!json_is_object(j)) {
        json_decref(j);
        snprintf(err, errlen, "%s: the ACME server sent a response that is not a JSON object", step);
        return NULL;
    }
    return j;
}

static const char *jstr(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* ---- directory and nonces -------------------------------------------------------- */

int oe_acme_client_directory(oe_acme_client_t *c, char *err, size_t errlen)
{
    oe_acme_resp_t r;
    const char *url = c->cfg->acme.directory;
    if (oe_acme_http_do(c->http, "GET", url, NULL, NULL, &r, err, errlen) != 0)
        return -1;
    int rc = -1;
    if (r.status != 200)
        fail_resp(c, "directory", &r, err, errlen);
    else
        rc = oe_acme_parse_directory(r.body, r.body_len, &c->dir, err, errlen);
    oe_acme_resp_free(&r);
    if (rc == 0) {
        c->have_dir = 1;
        oe_log(OE_LOG_INFO, "acme_directory", "url", url, "ari", c->dir.renewal_info[0] ? "yes" : "no", NULL);
    }
    return rc;
}

static int take_nonce(oe_acme_client_t *c, char *out, size_t cap, char *err, size_t errlen)
{
    if (c->nonce_count > 0) {
        snprintf(out, cap, "%s", c->nonces[--c->nonce_count]);
        return 0;
    }
    oe_acme_resp_t r;
    if (oe_acme_http_do(c->http, "HEAD", c->dir.new_nonce, NULL, NULL, &r, err, errlen) != 0)
        return -1;
    int rc = -1;
    if ((r.status == 200 || r.status == 204) && r.nonce[0]) {
        snprintf(out, cap, "%s", r.nonce);
        rc = 0;
    } else {
        snprintf(err, errlen, "newNonce: HTTP %ld without a Replay-Nonce", r.status);
    }
    oe_acme_resp_free(&r);
    return rc;
}

/*
 * A signed POST (payload NULL = POST-as-GET). Uses the account URL as kid, or the JWK
 * when use_jwk (newAccount). A badNonce rejection is retried with the fresh nonce the
 * server sent along (RFC 8555 §6.5). Returns 0 when a response arrived.
 */
static int post(oe_acme_client_t *c, const char *url, const char *payload, int use_jwk, const char *accept,
                oe_acme_resp_t *r, char *err, size_t errlen)
{
    for (int attempt = 0; attempt <= BADNONCE_RETRIES; attempt++) {
        char nonce[256];
        if (stopping(c)) {
            snprintf(err, errlen, "stopped");
            return -1;
        }
        if (take_nonce(c, nonce, sizeof(nonce), err, errlen) != 0)
            return -1;
        char *body = oe_acme_jws(c->account_key, use_jwk ? NULL : c->kid, nonce, url, payload, err, errlen);
        if (!body)
            return -1;
        int rc = oe_acme_http_do(c->http, "POST", url, body, accept, r, err, errlen);
        free(body);
        if (rc != 0)
            return -1;
        keep_nonce(c, r);
        if (r->status == 400 && strstr(r->content_type, "problem")) {
            oe_acme_problem_t p;
            if (oe_acme_parse_problem(r->body, r->body_len, &p) == 0 &&
                strcmp(oe_acme_problem_short(&p), "badNonce") == 0 && attempt < BADNONCE_RETRIES) {
                c->bad_nonces++;
                oe_log(OE_LOG_DEBUG, "acme_bad_nonce", "url", url, NULL);
                oe_acme_resp_free(r);
                continue;
            }
        }
        return 0;
    }
    return -1; /* not reached */
}

/* ---- account --------------------------------------------------------------------- */

static int new_account(oe_acme_client_t *c, char *err, size_t errlen)
{
    const oe_config_t *cfg = c->cfg;
    int eab = cfg->acme.eab_kid && cfg->acme.eab_hmac_key;
    if (c->dir.eab_required && !eab) {
        snprintf(err, errlen,
                 "the ACME server requires External Account Binding: set acme.eab.kid and acme.eab.hmac_key "
                 "(from your CA account)");
        return -1;
    }
    json_t *req = json_pack("{s:b}", "termsOfServiceAgreed", 1);
    if (cfg->acme.email && *cfg->acme.email) {
        char contact[512];
        snprintf(contact, sizeof(contact), "mailto:%s", cfg->acme.email);
        json_object_set_new(req, "contact", json_pack("[s]", contact));
    }
    if (eab) {
        json_t *b =
            oe_acme_eab(c->account_key, cfg->acme.eab_kid, cfg->acme.eab_hmac_key, c->dir.new_account, err, errlen);
        if (!b) {
            json_decref(req);
            return -1;
        }
        json_object_set_new(req, "externalAccountBinding", b);
    }
    char *payload = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    oe_acme_resp_t r;
    int rc = payload ? post(c, c->dir.new_account, payload, 1, NULL, &r, err, errlen) : -1;
    free(payload);
    if (rc != 0)
        return -1;
    rc = -1;
    if (r.status != 200 && r.status != 201) {
        fail_resp(c, eab ? "newAccount (with external account binding)" : "newAccount", &r, err, errlen);
        if (eab && (r.status == 401 || r.status == 403 || r.status == 400)) {
            size_t n = strlen(err);
            snprintf(err + n, errlen - n, " (check acme.eab.kid and acme.eab.hmac_key against your CA account)");
        }
    } else if (!r.location[0]) {
        snprintf(err, errlen, "newAccount: the ACME server sent no account URL (Location)");
    } else {
        json_t *acct = resp_json(&r, "newAccount", err, errlen);
        const char *status = acct ? jstr(acct, "status") : NULL;
        if (acct && status && strcmp(status, "valid") != 0) {
            snprintf(err, errlen,
                     "the ACME account %s is %s; delete account.key and account.json in state_dir to "
                     "register a new one",
                     r.location, status);
        } else if (acct) {
            snprintf(c->kid, sizeof(c->kid), "%s", r.location);
            c->kid_changed = 1;
            oe_log(OE_LOG_INFO, "acme_account", "url", c->kid, "created", r.status == 201 ? "true" : "false", "eab",
                   eab ? "true" : "false", NULL);
            rc = 0;
        }
        json_decref(acct);
    }
    oe_acme_resp_free(&r);
    return rc;
}

/* ---- order ----------------------------------------------------------------------- */

struct order {
    char url[OE_ACME_URL_MAX];
    char finalize[OE_ACME_URL_MAX];
    char certificate[OE_ACME_URL_MAX];
    char status[32];
    char (*authz)[OE_ACME_URL_MAX];
    size_t authz_count;
};

/* Copies status, finalize, certificate and authorizations from an order object. */
static int read_order(json_t *o, struct order *ord, size_t max_authz, char *err, size_t errlen)
{
    const char *s = jstr(o, "status"), *f = jstr(o, "finalize"), *cert = jstr(o, "certificate");
    if (!s || !f) {
        snprintf(err, errlen, "the ACME server sent an order without status or finalize URL");
        return -1;
    }
    snprintf(ord->status, sizeof(ord->status), "%s", s);
    snprintf(ord->finalize, sizeof(ord->finalize), "%s", f);
    snprintf(ord->certificate, sizeof(ord->certificate), "%s", cert ? cert : "");
    json_t *az = json_object_get(o, "authorizations"), *v;
    size_t i;
    if (json_is_array(az) && ord->authz && max_authz > 0) {
        if (json_array_size(az) > max_authz) {
            snprintf(err, errlen, "the ACME server sent %zu authorizations for %zu names", json_array_size(az),
                     max_authz);
            return -1;
        }
        ord->authz_count = 0;
        json_array_foreach(az, i, v)
        {
            if (json_is_string(v))
                snprintf(ord->authz[ord->authz_count++], OE_ACME_URL_MAX, "%s", json_string_value(v));
        }
    }
    return 0;
}

static int new_order(oe_acme_client_t *c, char *const *names, size_t count, const char *replaces, struct order *ord,
                     char *err, size_t errlen)
{
    json_t *ids = json_array();
    for (size_t i = 0; i < count; i++)
        json_array_append_new(
            ids, json_pack("{s:s, s:s}", "type", oe_acme_is_ip(names[i]) ? "ip" : "dns", "value", names[i]));
    json_t *req = json_pack("{s:o}", "identifiers", ids);
    if (replaces && c->dir.renewal_info[0])
        json_object_set_new(req, "replaces", json_string(replaces));
    char *payload = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    oe_acme_resp_t r;
    int rc = payload ? post(c, c->dir.new_order, payload, 0, NULL, &r, err, errlen) : -1;
    free(payload);
    if (rc != 0)
        return -1;
    rc = -1;
    if (r.status != 201 && r.status != 200) {
        fail_resp(c, "newOrder", &r, err, errlen);
    } else if (!r.location[0]) {
        snprintf(err, errlen, "newOrder: the ACME server sent no order URL (Location)");
    } else {
        json_t *o = resp_json(&r, "newOrder", err, errlen);
        if (o && read_order(o, ord, count, err, errlen) == 0) {
            snprintf(ord->url, sizeof(ord->url), "%s", r.location);
            oe_log(OE_LOG_INFO, "acme_order", "url", ord->url, "status", ord->status, NULL);
            rc = 0;
        }
        json_decref(o);
    }
    oe_acme_resp_free(&r);
    return rc;
}

/* POST-as-GET of url returning the parsed JSON object (or NULL with err). */
static json_t *get_json(oe_acme_client_t *c, const char *url, const char *step, oe_acme_resp_t *keep, char *err,
                        size_t errlen)
{
    oe_acme_resp_t r;
    if (post(c, url, NULL, 0, NULL, &r, err, errlen) != 0)
        return NULL;
    json_t *j = NULL;
    if (r.status != 200)
        fail_resp(c, step, &r, err, errlen);
    else
        j = resp_json(&r, step, err, errlen);
    if (keep && j)
        *keep = r;
    else
        oe_acme_resp_free(&r);
    return j;
}

/* Delay before the next poll: Retry-After when the server gives one (capped), else a
 * short doubling backoff. */
static uint64_t poll_delay(oe_acme_client_t *c, const oe_acme_resp_t *r, uint64_t *backoff)
{
    uint64_t ra;
    if (r && r->retry_after[0] &&
        oe_acme_parse_retry_after(r->retry_after, strlen(r->retry_after), time(NULL), &ra) == 0)
        return (ra > POLL_RETRY_AFTER_MAX ? POLL_RETRY_AFTER_MAX : ra) * 1000;
    uint64_t d = *backoff;
    *backoff = d * 2 > c->poll_max_ms ? c->poll_max_ms : d * 2;
    return d;
}

static int nap(oe_acme_client_t *c, uint64_t ms, char *err, size_t errlen)
{
    if (c->sleep(c->sleep_data, ms)) {
        snprintf(err, errlen, "stopped");
        return -1;
    }
    return 0;
}

/* ---- authorizations and challenges ----------------------------------------------- */

struct authz {
    char url[OE_ACME_URL_MAX];
    char ch_url[OE_ACME_URL_MAX]; /* the chosen challenge, answered once its material is out */
    char name[256];               /* identifier value */
    char alpn_name[256];          /* SNI under which the TLS-ALPN-01 cert is published */
    char token[OE_CHALLENGE_TOKEN_MAX + 1];
    oe_dns_record_t dns; /* the DNS-01 TXT record */
    int type;            /* CH_* in use, -1 when already valid */
    int done;
};

static int challenge_type(const char *s)
{
    for (int i = 0; i < CH_COUNT; i++)
        if (strcmp(s, ch_name(i)) == 0)
            return i;
    return -1;
}

/* ---- DNS-01 solver: a TXT record through the dns module ----------------------------- */

/* Writes _acme-challenge.<name> = base64url(SHA-256(key authorization)) (RFC 8555 §8.4). */
static int dns01_present(oe_acme_client_t *c, struct authz *a, const char *key_authz, char *err, size_t errlen)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (!c->dns) {
        snprintf(err, errlen, "dns-01 for %s: acme.dns.provider is not set", a->name);
        return -1;
    }
    if (EVP_Digest(key_authz, strlen(key_authz), md, &mdlen, EVP_sha256(), NULL) != 1) {
        snprintf(err, errlen, "dns-01 for %s: cannot hash the key authorization", a->name);
        return -1;
    }
    char *digest = oe_acme_b64url(md, mdlen);
    if (!digest) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int rc = oe_dns_present(c->dns, a->name, digest, &a->dns, err, errlen);
    free(digest);
    return rc;
}

/* Removes the record again (after validation, or when the order failed or stopped). */
static void dns01_cleanup(oe_acme_client_t *c, struct authz *a)
{
    char err[512];
    if (c->dns && a->dns.attempted && oe_dns_cleanup(c->dns, &a->dns, err, sizeof(err)) != 0)
        oe_log(OE_LOG_ERROR, "acme_dns_cleanup_failed", "name", a->name, "fqdn", a->dns.fqdn, "error", err, NULL);
}

/* Waits until every DNS-01 record of the order is answered by the name servers that count. */
static int dns01_wait(oe_acme_client_t *c, struct authz *as, size_t n, char *err, size_t errlen)
{
    oe_dns_record_t **recs = calloc(n ? n : 1, sizeof(oe_dns_record_t *));
    size_t k = 0;
    if (!recs) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        if (as[i].type == CH_DNS01 && as[i].dns.attempted)
            recs[k++] = &as[i].dns;
    uint64_t waited = 0;
    int rc = k ? oe_dns_wait_visible(c->dns, recs, k, c->sleep, c->sleep_data, &waited, err, errlen) : 0;
    free(recs);
    return rc;
}

static void unpublish(oe_acme_client_t *c, struct authz *a)
{
    oe_cluster_t *cl = oe_cluster_get(); /* cluster mode: the other replicas drop their copies too */
    if (a->type == CH_HTTP01 && a->token[0]) {
        oe_challenge_http01_del(a->token);
        if (cl)
            oe_cluster_http01_del(cl, a->token);
    } else if (a->type == CH_TLSALPN01 && a->alpn_name[0]) {
        oe_challenge_alpn_del(a->alpn_name);
        if (cl)
            oe_cluster_alpn_del(cl, a->alpn_name);
    } else if (a->type == CH_DNS01)
        dns01_cleanup(c, a);
    a->token[0] = a->alpn_name[0] = '\0';
}

static int publish(oe_acme_client_t *c, struct authz *a, const char *token, char *err, size_t errlen)
{
    char *ka = NULL;
    if (asprintf(&ka, "%s.%s", token, c->thumbprint) < 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int rc = -1;
    if (a->type == CH_DNS01) {
        rc = dns01_present(c, a, ka, err, errlen);
    } else if (a->type == CH_HTTP01) {
        if (oe_challenge_http01_put(token, ka) == 0) {
            snprintf(a->token, sizeof(a->token), "%s", token);
            rc = 0;
            /* cluster mode: every replica behind the load balancer must answer it */
            oe_cluster_t *cl = oe_cluster_get();
            if (cl && oe_cluster_http01_put(cl, token, ka, c->stop, err, errlen) != 0)
                rc = -1;
        } else {
            snprintf(err, errlen, "cannot publish HTTP-01 token for %s (malformed token or table full)", a->name);
        }
    } else {
        X509 *cert = NULL;
        EVP_PKEY *key = NULL;
        if (oe_acme_is_ip(a->name)) {
            if (oe_acme_ip_arpa(a->name, a->alpn_name, sizeof(a->alpn_name)) != 0)
                snprintf(a->alpn_name, sizeof(a->alpn_name), "%s", a->name);
        } else {
            snprintf(a->alpn_name, sizeof(a->alpn_name), "%s", a->name);
        }
        oe_cluster_t *cl = oe_cluster_get();
        if (oe_acme_alpn_cert(a->name, ka, &cert, &key, err, errlen) == 0 &&
            oe_challenge_alpn_put(a->alpn_name, cert, key, err, errlen) == 0 &&
            (!cl || oe_cluster_alpn_put(cl, a->alpn_name, cert, key, c->stop, err, errlen) == 0))
            rc = 0;
        else if (a->alpn_name[0]) {
            oe_challenge_alpn_del(a->alpn_name); /* harmless when it was not put */
            a->alpn_name[0] = '\0';
        }
        X509_free(cert);
        EVP_PKEY_free(key);
    }
    free(ka);
    return rc;
}

/*
 * Fetches an authorization and, if pending, publishes the material of the first challenge
 * whose type is allowed (types[], in preference order); respond_authz() then tells the CA.
 * Leaves a->type = -1 when already valid.
 */
static int prepare_authz(oe_acme_client_t *c, struct authz *a, const int *types, size_t ntypes, char *err,
                         size_t errlen)
{
    json_t *az = get_json(c, a->url, "authorization", NULL, err, errlen);
    if (!az)
        return -1;
    int rc = -1;
    json_t *id = json_object_get(az, "identifier");
    const char *status = jstr(az, "status"), *value = json_is_object(id) ? jstr(id, "value") : NULL;
    if (!status || !value) {
        snprintf(err, errlen, "the ACME server sent an authorization without status or identifier");
        goto done;
    }
    snprintf(a->name, sizeof(a->name), "%s", value);
    if (strcmp(status, "valid") == 0) {
        /* the CA reused an authorization this account already holds: nothing to validate */
        oe_log(OE_LOG_INFO, "acme_authorization_reused", "name", a->name, NULL);
        a->type = -1;
        a->done = 1;
        rc = 0;
        goto done;
    }
    if (strcmp(status, "pending") != 0) {
        snprintf(err, errlen, "authorization for %s is %s", a->name, status);
        goto done;
    }
    json_t *chs = json_object_get(az, "challenges"), *ch;
    for (size_t t = 0; t < ntypes; t++) {
        size_t i;
        json_array_foreach(chs, i, ch)
        {
            const char *type = jstr(ch, "type"), *url = jstr(ch, "url"), *token = jstr(ch, "token");
            if (!type || !url || !token || challenge_type(type) != types[t])
                continue;
            a->type = types[t];
            snprintf(a->ch_url, sizeof(a->ch_url), "%s", url);
            rc = publish(c, a, token, err, errlen);
            goto done;
        }
    }
    snprintf(err, errlen, "the ACME server offers none of the configured challenge types (acme.challenges) for %s",
             a->name);
done:
    json_decref(az);
    return rc;
}

/* Tells the CA the chosen challenge is ready to be validated. */
static int respond_authz(oe_acme_client_t *c, struct authz *a, char *err, size_t errlen)
{
    if (a->done || !a->ch_url[0])
        return 0;
    oe_log(OE_LOG_INFO, "acme_challenge", "name", a->name, "type", ch_name(a->type), NULL);
    oe_acme_resp_t r;
    if (post(c, a->ch_url, "{}", 0, NULL, &r, err, errlen) != 0)
        return -1;
    int rc = 0;
    if (r.status != 200) {
        fail_resp(c, "challenge response", &r, err, errlen);
        rc = -1;
    }
    oe_acme_resp_free(&r);
    return rc;
}

/* The error of the failed challenge in an invalid authorization, as the problem. */
static void authz_problem(oe_acme_client_t *c, json_t *az, struct authz *a, char *err, size_t errlen)
{
    json_t *chs = json_object_get(az, "challenges"), *ch;
    size_t i;
    memset(&c->problem, 0, sizeof(c->problem));
    json_array_foreach(chs, i, ch)
    {
        json_t *e = json_object_get(ch, "error");
        const char *type = jstr(ch, "type");
        if (json_is_object(e) && type && challenge_type(type) == a->type) {
            char *txt = json_dumps(e, JSON_COMPACT);
            if (txt)
                oe_acme_parse_problem(txt, strlen(txt), &c->problem);
            free(txt);
        }
    }
    oe_log(OE_LOG_ERROR, "acme_problem", "step", "validation", "name", a->name, "challenge", ch_name(a->type), "type",
           c->problem.type, "detail", c->problem.detail, NULL);
    snprintf(err, errlen, "%s validation of %s failed: %s: %s", ch_name(a->type), a->name,
             c->problem.type[0] ? oe_acme_problem_short(&c->problem) : "unknown", c->problem.detail);
}

/* Polls every started authorization until all are valid; on the first invalid one
 * returns -2 with *failed_type set (so the caller can try the next type). */
static int wait_authzs(oe_acme_client_t *c, struct authz *as, size_t n, int *failed_type, char *err, size_t errlen)
{
    uint64_t backoff = c->poll_min_ms;
    for (int tries = 0; tries < POLL_MAX_TRIES; tries++) {
        size_t pending = 0;
        oe_acme_resp_t last = {0};
        for (size_t i = 0; i < n; i++) {
            if (as[i].done)
                continue;
            oe_acme_resp_t r;
            json_t *az = get_json(c, as[i].url, "authorization", &r, err, errlen);
            if (!az)
                return -1;
            const char *status = jstr(az, "status");
            if (status && strcmp(status, "valid") == 0) {
                as[i].done = 1;
                oe_log(OE_LOG_INFO, "acme_authorization_valid", "name", as[i].name, "type", ch_name(as[i].type), NULL);
                unpublish(c, &as[i]);
            } else if (status && (strcmp(status, "pending") == 0 || strcmp(status, "processing") == 0)) {
                pending++;
                oe_acme_resp_free(&last);
                last = r;
                r.body = NULL;
            } else {
                authz_problem(c, az, &as[i], err, errlen);
                *failed_type = as[i].type;
                json_decref(az);
                oe_acme_resp_free(&r);
                oe_acme_resp_free(&last);
                return -2;
            }
            json_decref(az);
            oe_acme_resp_free(&r);
        }
        if (pending == 0) {
            oe_acme_resp_free(&last);
            return 0;
        }
        uint64_t d = poll_delay(c, &last, &backoff);
        oe_acme_resp_free(&last);
        if (nap(c, d, err, errlen) != 0)
            return -1;
    }
    snprintf(err, errlen, "authorizations still pending after %d polls", POLL_MAX_TRIES);
    return -1;
}

/* ---- finalize and download ------------------------------------------------------- */

static int finalize(oe_acme_client_t *c, struct order *ord, char *const *names, size_t count, oe_acme_cert_t *out,
                    char *err, size_t errlen)
{
    EVP_PKEY *key = oe_acme_key_new(c->cfg->acme.key_type);
    if (!key) {
        snprintf(err, errlen, "cannot generate the certificate key");
        return -1;
    }
    char *csr = oe_acme_csr(key, names, count, err, errlen);
    char *payload = NULL;
    int rc = -1;
    if (!csr || asprintf(&payload, "{\"csr\":\"%s\"}", csr) < 0) {
        payload = NULL;
        goto done;
    }
    oe_acme_resp_t r;
    if (post(c, ord->finalize, payload, 0, NULL, &r, err, errlen) != 0)
        goto done;
    if (r.status != 200) {
        fail_resp(c, "finalize", &r, err, errlen);
        oe_acme_resp_free(&r);
        goto done;
    }
    oe_acme_resp_free(&r);
    oe_log(OE_LOG_INFO, "acme_finalize", "order", ord->url, NULL);

    /* poll the order until the certificate is ready */
    uint64_t backoff = c->poll_min_ms;
    for (int tries = 0;; tries++) {
        json_t *o = get_json(c, ord->url, "order", &r, err, errlen);
        if (!o)
            goto done;
        int ok = read_order(o, ord, 0, err, errlen) == 0;
        json_decref(o);
        if (!ok) {
            oe_acme_resp_free(&r);
            goto done;
        }
        if (strcmp(ord->status, "valid") == 0 && ord->certificate[0]) {
            oe_acme_resp_free(&r);
            break;
        }
        if (strcmp(ord->status, "processing") != 0 && strcmp(ord->status, "ready") != 0) {
            snprintf(err, errlen, "order %s became %s after finalize", ord->url, ord->status);
            oe_acme_resp_free(&r);
            goto done;
        }
        uint64_t d = poll_delay(c, &r, &backoff);
        oe_acme_resp_free(&r);
        if (tries >= POLL_MAX_TRIES) {
            snprintf(err, errlen, "order %s still %s after %d polls", ord->url, ord->status, tries);
            goto done;
        }
        if (nap(c, d, err, errlen) != 0)
            goto done;
    }
    out->key_pem = oe_acme_key_pem(key, &out->key_len);
    if (!out->key_pem) {
        snprintf(err, errlen, "cannot encode the certificate key");
        goto done;
    }
    rc = 0;
done:
    free(payload);
    free(csr);
    EVP_PKEY_free(key);
    return rc;
}

static int download(oe_acme_client_t *c, const char *url, oe_acme_resp_t *r, char *err, size_t errlen)
{
    if (post(c, url, NULL, 0, "application/pem-certificate-chain", r, err, errlen) != 0)
        return -1;
    if (r->status != 200) {
        fail_resp(c, "certificate download", r, err, errlen);
        oe_acme_resp_free(r);
        return -1;
    }
    if (!strstr(r->body, "-----BEGIN CERTIFICATE-----")) {
        snprintf(err, errlen, "certificate download: the ACME server sent no PEM certificate chain");
        oe_acme_resp_free(r);
        return -1;
    }
    return 0;
}

/* Downloads the chain, switching to an alternate (Link rel="alternate") whose top issuer
 * CN is acme.preferred_chain when one is configured and the default does not match. */
static int download_chain(oe_acme_client_t *c, const char *url, oe_acme_cert_t *out, char *err, size_t errlen)
{
    oe_acme_resp_t r;
    if (download(c, url, &r, err, errlen) != 0)
        return -1;
    const char *want = c->cfg->acme.preferred_chain;
    char issuer[256];
    if (want && *want &&
        !(oe_acme_chain_top_issuer(r.body, r.body_len, issuer, sizeof(issuer)) == 0 && strcmp(issuer, want) == 0)) {
        char(*alts)[OE_ACME_URL_MAX] = calloc(8, OE_ACME_URL_MAX);
        size_t n = alts ? oe_acme_parse_link(r.links, strlen(r.links), "alternate", alts, 8) : 0;
        int found = 0;
        for (size_t i = 0; i < n && !found; i++) {
            oe_acme_resp_t alt;
            char aerr[256];
            if (download(c, alts[i], &alt, aerr, sizeof(aerr)) != 0)
                continue;
            if (oe_acme_chain_top_issuer(alt.body, alt.body_len, issuer, sizeof(issuer)) == 0 &&
                strcmp(issuer, want) == 0) {
                oe_acme_resp_free(&r);
                r = alt;
                found = 1;
            } else {
                oe_acme_resp_free(&alt);
            }
        }
        free(alts);
        oe_log(found ? OE_LOG_INFO : OE_LOG_WARN, "acme_preferred_chain", "issuer", want, "found",
               found ? "true" : "false", NULL);
    }
    out->chain_pem = r.body;
    out->chain_len = r.body_len;
    r.body = NULL;
    oe_acme_resp_free(&r);
    return 0;
}

/* ---- the whole flow -------------------------------------------------------------- */

static int is_account_gone(const oe_acme_client_t *c)
{
    const char *t = oe_acme_problem_short(&c->problem);
    return strcmp(t, "accountDoesNotExist") == 0 ||
           (c->last_status == 400 && strcmp(t, "malformed") == 0 && strstr(c->problem.detail, "account"));
}

int oe_acme_client_issue(oe_acme_client_t *c, char *const *names, size_t count, const char *replaces,
                         oe_acme_cert_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    memset(&c->problem, 0, sizeof(c->problem));
    c->retry_after_s = 0;
    c->last_status = 0;
    if (count == 0 || count > 100) {
        snprintf(err, errlen, "between 1 and 100 domains can be put on one certificate (got %zu)", count);
        return -1;
    }
    if (oe_acme_client_directory(c, err, errlen) != 0)
        return -1;
    if (!c->kid[0] && new_account(c, err, errlen) != 0)
        return -1;

    /* challenge types in preference order, each dropped once it failed */
    int types[MAX_TYPES];
    size_t ntypes = 0;
    const oe_strlist_t *pref = &c->cfg->acme.challenges;
    for (size_t i = 0; i < pref->count && ntypes < MAX_TYPES; i++) {
        int t = challenge_type(pref->items[i]);
        if (t >= 0)
            types[ntypes++] = t;
    }
    if (ntypes == 0) {
        types[ntypes++] = CH_TLSALPN01;
        types[ntypes++] = CH_HTTP01;
    }

    struct authz *as = calloc(count, sizeof(*as));
    char(*authz_urls)[OE_ACME_URL_MAX] = calloc(count, OE_ACME_URL_MAX);
    int rc = -1;
    if (!as || !authz_urls) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    for (;;) {
        struct order ord;
        memset(&ord, 0, sizeof(ord));
        ord.authz = authz_urls;
        if (new_order(c, names, count, replaces, &ord, err, errlen) != 0) {
            if (!is_account_gone(c))
                goto out;
            /* the CA forgot the account (e.g. a test CA restarted): register again */
            oe_log(OE_LOG_WARN, "acme_account_gone", "url", c->kid, NULL);
            c->kid[0] = '\0';
            if (new_account(c, err, errlen) != 0 || new_order(c, names, count, replaces, &ord, err, errlen) != 0)
                goto out;
        }
        int failed_type = -1, wrc = 0;
        size_t started = 0;
        if (strcmp(ord.status, "pending") == 0) {
            /* publish every challenge's material, wait for DNS-01 records to be visible, then
             * tell the CA: it validates nothing that is not out yet */
            memset(as, 0, count * sizeof(*as));
            int dns01 = 0;
            for (size_t i = 0; i < ord.authz_count && wrc == 0; i++) {
                snprintf(as[i].url, sizeof(as[i].url), "%s", ord.authz[i]);
                as[i].type = -1;
                started = i + 1;
                wrc = prepare_authz(c, &as[i], types, ntypes, err, errlen);
                dns01 |= as[i].type == CH_DNS01;
                if (wrc != 0 && as[i].type == CH_DNS01 && strcmp(err, "stopped") != 0) {
                    wrc = -2; /* the DNS provider failed: like a failed validation, try the next type */
                    failed_type = CH_DNS01;
                }
            }
            if (wrc == 0 && dns01 && dns01_wait(c, as, started, err, errlen) != 0) {
                wrc = strcmp(err, "stopped") != 0 ? -2 : -1;
                failed_type = CH_DNS01;
            }
            for (size_t i = 0; i < started && wrc == 0; i++)
                wrc = respond_authz(c, &as[i], err, errlen);
            if (wrc == 0)
                wrc = wait_authzs(c, as, started, &failed_type, err, errlen);
            for (size_t i = 0; i < started; i++)
                unpublish(c, &as[i]);
        } else if (strcmp(ord.status, "ready") != 0 && strcmp(ord.status, "valid") != 0) {
            snprintf(err, errlen, "new order %s is %s", ord.url, ord.status);
            goto out;
        }
        if (wrc == -2) {
            /* drop the failed type and start over with a new order (the old one is invalid) */
            size_t k = 0;
            for (size_t i = 0; i < ntypes; i++)
                if (types[i] != failed_type)
                    types[k++] = types[i];
            if (k == 0 || k == ntypes)
                goto out;
            ntypes = k;
            oe_log(OE_LOG_WARN, "acme_challenge_fallback", "failed", ch_name(failed_type), "next", ch_name(types[0]),
                   "error", err, NULL);
            continue;
        }
        if (wrc != 0)
            goto out;
        if (strcmp(ord.status, "valid") != 0 && finalize(c, &ord, names, count, out, err, errlen) != 0)
            goto out;
        if (!out->key_pem) {
            snprintf(err, errlen, "order %s was already valid with a key we do not hold", ord.url);
            goto out;
        }
        if (download_chain(c, ord.certificate, out, err, errlen) != 0)
            goto out;
        oe_log(OE_LOG_INFO, "acme_certificate", "url", ord.certificate, NULL);
        rc = 0;
        break;
    }
out:
    free(as);
    free(authz_urls);
    if (rc != 0)
        oe_acme_cert_free(out);
    return rc;
}

int oe_acme_client_renewal_info(oe_acme_client_t *c, const char *cert_id, time_t *start, time_t *end,
                                uint64_t *recheck_s, char *err, size_t errlen)
{
    if (!c->have_dir && oe_acme_client_directory(c, err, errlen) != 0)
        return -1;
    if (!c->dir.renewal_info[0])
        return 1;
    char url[OE_ACME_URL_MAX + 256];
    const char *base = c->dir.renewal_info;
    size_t bl = strlen(base);
    snprintf(url, sizeof(url), "%s%s%s", base, bl && base[bl - 1] == '/' ? "" : "/", cert_id);
    oe_acme_resp_t r;
    if (oe_acme_http_do(c->http, "GET", url, NULL, NULL, &r, err, errlen) != 0)
        return -1;
    int rc = -1;
    if (r.status != 200) {
        fail_resp(c, "renewalInfo", &r, err, errlen);
    } else if (oe_acme_parse_renewal_info(r.body, r.body_len, start, end) != 0) {
        snprintf(err, errlen, "renewalInfo: malformed suggestedWindow");
    } else {
        uint64_t ra = 6 * 3600;
        if (r.retry_after[0])
            oe_acme_parse_retry_after(r.retry_after, strlen(r.retry_after), time(NULL), &ra);
        *recheck_s = ra < 60 ? 60 : ra;
        rc = 0;
    }
    oe_acme_resp_free(&r);
    return rc;
}
