/*
 * job — one ACME certificate (one site's names): what is stored, when to renew, how long to
 * back off. Each job runs on its own thread, so a site whose validation keeps failing never
 * delays another site's orders or renewals.
 *
 * On start it serves a good stored certificate at once and makes no order while that
 * certificate is good. The thread then sleeps (interruptibly) until the renewal time
 * (ARI window when the CA offers one, else renew_before / one third of the lifetime),
 * runs one order, stores it and publishes it to the site's slot in the tls module. A failure
 * is retried with exponential backoff and jitter (Retry-After of a 429/503 wins when
 * longer); the backoff is saved in acme-state.json so a crash-looping process cannot hammer
 * the CA.
 *
 * Files, in the job's directory: cert.pem (chain), cert.key (0600), acme-state.json. The
 * directory is state_dir itself in the one-site form (the layout ott-edge always had) and
 * state_dir/sites/<site name>/ with `sites`. A site whose directory holds no certificate
 * adopts state_dir/cert.pem when it is good and covers all the site's names (a one-site
 * state_dir moved to `sites`): no new order. A new certificate is written as cert.key.next
 * first, then cert.pem, then cert.key.next is renamed to cert.key: after a crash at any
 * point either the old pair is intact, or cert.pem pairs with cert.key.next and the load
 * finishes the rename. A new cert is never paired with an old key.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "acme/client.h"
#include "acme/jws.h"
#include "acme/manager.h"
#include "log/log.h"
#include "store/store.h"
#include "tls/tls.h"
#include "util/util.h"

#define FILE_MAX          (1u << 20)
#define BACKOFF_BASE_MS   (60ull * 1000)        /* 1 min ... */
#define BACKOFF_CAP_MS    (24ull * 3600 * 1000) /* ... doubling to 1 day */
#define RETRY_AFTER_CAP_S (7ull * 24 * 3600)
#define WAKE_MAX_MS       (10ull * 60 * 1000) /* re-evaluate at least every 10 min */

struct oe_acme_job {
    oe_acme_t *m;
    const oe_config_t *cfg;
    const oe_site_t *site;
    char dir[PATH_MAX]; /* where its files are */
    int own_dir;        /* dir is state_dir/sites/<name> (not the one-site layout) */
    size_t status;      /* its slot of what oe_acme_status() reports */
    pthread_t thread;
    int started;

    /* the certificate we manage (from disk or the last order) */
    char *chain_pem;
    size_t chain_len;
    oe_tls_info_t info;
    int have_cert;            /* a real certificate for these domains is stored */
    int covers_all;           /* it covers every configured domain */
    char cert_directory[512]; /* the ACME directory that issued it ("" when unknown) */

    /* ARI */
    time_t ari_renew_at; /* 0: no window known */
    time_t ari_recheck_at;

    /* backoff (persisted) */
    unsigned failures;
    time_t next_attempt;
    char last_error[512];

    uint64_t backoff_base_ms;

    /* cluster mode (m->cluster): what was last read from Redis */
    uint64_t sync_token; /* oe_cluster_sync_token() when the record was last read */
    int synced;          /* the record was read since Redis last came back */
    int deferred_logged; /* "no order while Redis is away" said once */
    char busy_logged[160];
    char rejected_logged[64]; /* the serial (or reason) of the last record rejected */
};

/* The job's status slot, locked; status_done() unlocks it. */
static oe_acme_status_t *status_begin(const oe_acme_job_t *j)
{
    pthread_mutex_lock(&oe_acme_status_lock);
    return oe_acme_status_slot(j->status);
}

static void status_done(void)
{
    pthread_mutex_unlock(&oe_acme_status_lock);
}

static int sleep_cb(void *data, uint64_t ms)
{
    return oe_acme_sleep(((oe_acme_job_t *)data)->m, ms);
}

/* Whether the stored certificate came from another ACME directory (e.g. staging before
 * production): then it is replaced at once. */
static int ca_changed(const oe_acme_job_t *j)
{
    const char *was = j->cert_directory[0] ? j->cert_directory : j->m->prev_directory;
    return j->have_cert && was[0] != '\0' && strcmp(was, j->cfg->acme.directory) != 0;
}

/* ---- persisted state ------------------------------------------------------------- */

static void save_state(oe_acme_job_t *j)
{
    char err[256];
    json_t *o =
        json_pack("{s:i, s:I, s:s, s:s}", "failures", (int)j->failures, "next_attempt", (json_int_t)j->next_attempt,
                  "last_error", j->last_error, "cert_directory", j->cert_directory);
    char *txt = o ? json_dumps(o, JSON_INDENT(2)) : NULL;
    json_decref(o);
    if (txt && oe_store_write(j->dir, "acme-state.json", txt, strlen(txt), 0600, err, sizeof(err)) != 0)
        oe_log(OE_LOG_ERROR, "acme_state_write_failed", "error", err, "site", j->site->name, NULL);
    free(txt);
}

static void load_state(oe_acme_job_t *j)
{
    char err[256], *txt = NULL;
    size_t len = 0;
    int rc = oe_store_read(j->dir, "acme-state.json", 64 * 1024, &txt, &len, err, sizeof(err));
    if (rc != 0) {
        if (rc < 0)
            oe_log(OE_LOG_WARN, "acme_state_unreadable", "error", err, "site", j->site->name, NULL);
        return;
    }
    json_t *o = json_loadb(txt, len, 0, NULL);
    json_t *f = json_object_get(o, "failures"), *n = json_object_get(o, "next_attempt");
    if (json_is_integer(f) && json_is_integer(n) && json_integer_value(f) >= 0 && json_integer_value(f) < 1000) {
        j->failures = (unsigned)json_integer_value(f);
        j->next_attempt = (time_t)json_integer_value(n);
        const char *e = json_string_value(json_object_get(o, "last_error"));
        const char *d = json_string_value(json_object_get(o, "cert_directory"));
        snprintf(j->last_error, sizeof(j->last_error), "%s", e ? e : "");
        snprintf(j->cert_directory, sizeof(j->cert_directory), "%s", d ? d : "");
        /* a clock set back or a hand-edited file must not park us for years */
        time_t now = time(NULL), max = now + (time_t)(BACKOFF_CAP_MS / 1000) * 2 + (time_t)RETRY_AFTER_CAP_S;
        if (j->next_attempt > max)
            j->next_attempt = max;
        if (j->failures > 0) {
            char fs[16], at[32];
            snprintf(fs, sizeof(fs), "%u", j->failures);
            snprintf(at, sizeof(at), "%lld", (long long)j->next_attempt);
            oe_log(OE_LOG_INFO, "acme_backoff_restored", "failures", fs, "next_attempt", at, "last_error",
                   j->last_error, "site", j->site->name, NULL);
        }
    } else {
        oe_log(OE_LOG_WARN, "acme_state_corrupt", "file", "acme-state.json", "action", "ignored and replaced", "site",
               j->site->name, NULL);
    }
    json_decref(o);
    free(txt);
}

/* ---- the certificate ------------------------------------------------------------- */

/* Whether name is among the comma-separated names. */
static int has_name(const char *names, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = names; *p;) {
        const char *e = strchr(p, ',');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == n && strncasecmp(p, name, n) == 0)
            return 1;
        if (!e)
            break;
        p = e + 1;
    }
    return 0;
}

static int covers(const oe_acme_job_t *j, const oe_tls_info_t *info)
{
    for (size_t i = 0; i < j->site->domains.count; i++)
        if (!has_name(info->names, j->site->domains.items[i]))
            return 0;
    return 1;
}

/* Takes chain (malloc'ed) as the managed certificate. */
static void set_cert(oe_acme_job_t *j, char *chain, size_t len, const oe_tls_info_t *info)
{
    free(j->chain_pem);
    j->chain_pem = chain;
    j->chain_len = len;
    j->info = *info;
    j->have_cert = 1;
    j->covers_all = covers(j, info);
    j->ari_renew_at = 0;
    j->ari_recheck_at = 0;
    oe_acme_status_t *st = status_begin(j);
    st->have_cert = 1;
    snprintf(st->names, sizeof(st->names), "%s", info->names);
    st->not_after = info->not_after;
    st->ari_start = st->ari_end = 0;
    status_done();
}

static void cleanse_free(char *p, size_t len)
{
    if (p)
        OPENSSL_cleanse(p, len);
    free(p);
}

/* Writes a certificate into the job's directory: the key under a temporary name first (see
 * the top comment). */
static int write_cert(const char *dir, const char *chain, size_t clen, const char *key, size_t klen, char *err,
                      size_t errlen)
{
    if (oe_store_write(dir, "cert.key.next", key, klen, 0600, err, errlen) != 0 ||
        oe_store_write(dir, "cert.pem", chain, clen, 0644, err, errlen) != 0)
        return -1;
    return oe_store_rename(dir, "cert.key.next", "cert.key", err, errlen);
}

/*
 * The one-site layout's certificate (state_dir/cert.pem + cert.key), copied into a site's
 * own directory when it is good and covers all the site's names: moving a one-site
 * state_dir to `sites` makes no new order.
 */
static void adopt_legacy(oe_acme_job_t *j)
{
    const char *root = j->cfg->state_dir;
    char err[512], *chain = NULL, *key = NULL;
    size_t clen = 0, klen = 0;
    oe_tls_info_t info;
    if (oe_store_read(root, "cert.pem", FILE_MAX, &chain, &clen, err, sizeof(err)) != 0 ||
        oe_store_read(root, "cert.key", FILE_MAX, &key, &klen, err, sizeof(err)) != 0)
        goto out;
    if (oe_tls_pem_info(chain, clen, &info, err, sizeof(err)) != 0 ||
        !oe_tls_pem_pair_matches(chain, clen, key, klen) || info.not_after <= time(NULL) || !covers(j, &info))
        goto out;
    if (write_cert(j->dir, chain, clen, key, klen, err, sizeof(err)) != 0) {
        oe_log(OE_LOG_WARN, "acme_adopt_failed", "error", err, "site", j->site->name, NULL);
        goto out;
    }
    oe_log(OE_LOG_INFO, "acme_stored_certificate_adopted", "from", root, "names", info.names, "serial", info.serial,
           "site", j->site->name, NULL);
out:
    free(chain);
    cleanse_free(key, klen);
}

/*
 * Loads cert.pem + cert.key, finishing an interrupted write (cert.key.next), checks they
 * pair, parse and are not expired, and serves them. Anything wrong is reported and the
 * files are left to be replaced by the next order.
 */
static void load_cert(oe_acme_job_t *j)
{
    const char *dir = j->dir, *site = j->site->name;
    char err[512], *chain = NULL, *key = NULL, *next = NULL;
    size_t clen = 0, klen = 0, nlen = 0;
    int crc = oe_store_read(dir, "cert.pem", FILE_MAX, &chain, &clen, err, sizeof(err));
    if (crc == 1 && j->own_dir) {
        adopt_legacy(j);
        crc = oe_store_read(dir, "cert.pem", FILE_MAX, &chain, &clen, err, sizeof(err));
    }
    if (crc < 0)
        oe_log(OE_LOG_WARN, "acme_stored_certificate_unusable", "error", err, "site", site, NULL);
    if (crc != 0)
        goto out;
    int krc = oe_store_read(dir, "cert.key", FILE_MAX, &key, &klen, err, sizeof(err));
    int nrc = oe_store_read(dir, "cert.key.next", FILE_MAX, &next, &nlen, err, sizeof(err));
    if (nrc == 0 && oe_tls_pem_pair_matches(chain, clen, next, nlen) &&
        !(krc == 0 && oe_tls_pem_pair_matches(chain, clen, key, klen))) {
        /* crashed between writing cert.pem and renaming the key: finish the job */
        if (oe_store_rename(dir, "cert.key.next", "cert.key", err, sizeof(err)) == 0) {
            oe_log(OE_LOG_INFO, "acme_stored_key_recovered", "file", "cert.key.next", "site", site, NULL);
            cleanse_free(key, klen);
            key = next, klen = nlen, next = NULL, krc = 0;
        }
    }
    if (krc != 0) {
        oe_log(OE_LOG_WARN, "acme_stored_certificate_unusable", "error",
               krc > 0 ? "cert.pem exists but cert.key is missing" : err, "action", "a new certificate is ordered",
               "site", site, NULL);
        goto out;
    }
    oe_tls_info_t info;
    if (oe_tls_pem_info(chain, clen, &info, err, sizeof(err)) != 0) {
        oe_log(OE_LOG_WARN, "acme_stored_certificate_unusable", "file", "cert.pem", "error", err, "action",
               "a new certificate is ordered", "site", site, NULL);
        goto out;
    }
    if (!oe_tls_pem_pair_matches(chain, clen, key, klen)) {
        oe_log(OE_LOG_WARN, "acme_stored_certificate_unusable", "error", "cert.key does not match cert.pem", "action",
               "a new certificate is ordered", "site", site, NULL);
        goto out;
    }
    if (info.not_after <= time(NULL)) {
        oe_log(OE_LOG_WARN, "acme_stored_certificate_expired", "names", info.names, "action",
               "a new certificate is ordered", "site", site, NULL);
        goto out;
    }
    if (oe_tls_publish_pem_for(site, chain, clen, key, klen, err, sizeof(err)) != 0) {
        oe_log(OE_LOG_WARN, "acme_stored_certificate_unusable", "error", err, "action", "a new certificate is ordered",
               "site", site, NULL);
        goto out;
    }
    set_cert(j, chain, clen, &info);
    chain = NULL;
    char exp[32];
    snprintf(exp, sizeof(exp), "%lld", (long long)info.not_after);
    oe_log(OE_LOG_INFO, "acme_stored_certificate", "names", info.names, "serial", info.serial, "not_after", exp,
           "covers_domains", j->covers_all ? "true" : "false", "site", site, NULL);
out:
    free(chain);
    cleanse_free(key, klen);
    cleanse_free(next, nlen);
}

/* Stores a new certificate and serves it. */
static int store_and_publish(oe_acme_job_t *j, oe_acme_cert_t *cert, char *err, size_t errlen)
{
    oe_tls_info_t info;
    if (oe_tls_pem_info(cert->chain_pem, cert->chain_len, &info, err, errlen) != 0)
        return -1;
    if (write_cert(j->dir, cert->chain_pem, cert->chain_len, cert->key_pem, cert->key_len, err, errlen) != 0)
        return -1;
    if (oe_tls_publish_pem_for(j->site->name, cert->chain_pem, cert->chain_len, cert->key_pem, cert->key_len, err,
                               errlen) != 0)
        return -1;
    set_cert(j, cert->chain_pem, cert->chain_len, &info);
    cert->chain_pem = NULL;
    return 0;
}

/* ---- scheduling ------------------------------------------------------------------ */

static uint32_t rnd32(void)
{
    uint32_t r = 0;
    if (RAND_bytes((unsigned char *)&r, sizeof(r)) != 1)
        r = (uint32_t)time(NULL) * 2654435761u;
    return r;
}

/* When the next order should run (wall clock). */
static time_t due_time(oe_acme_job_t *j)
{
    time_t due;
    if (!j->have_cert || !j->covers_all || ca_changed(j) || j->info.not_after <= time(NULL))
        due = 0;
    else if (j->ari_renew_at)
        due = j->ari_renew_at;
    else
        due = oe_acme_renew_at(j->info.not_before, j->info.not_after, j->cfg->acme.renew_before_ms / 1000);
    if (j->failures > 0 && j->next_attempt > due)
        due = j->next_attempt;
    oe_acme_status_t *st = status_begin(j);
    st->next_attempt = due ? due : time(NULL);
    st->failures = j->failures;
    status_done();
    return due;
}

/* Asks the CA's ARI endpoint (if any) when to renew; picks a random time in the window. */
static void check_ari(oe_acme_job_t *j, oe_acme_client_t *c)
{
    time_t now = time(NULL);
    if (!j->have_cert || !j->covers_all || ca_changed(j) || now < j->ari_recheck_at)
        return;
    char id[512], err[512];
    time_t start, end;
    uint64_t recheck = 6 * 3600;
    j->ari_recheck_at = now + 3600; /* on any failure, try again in an hour */
    if (oe_acme_ari_cert_id(j->chain_pem, j->chain_len, id, sizeof(id)) != 0)
        return;
    int rc = oe_acme_client_renewal_info(c, id, &start, &end, &recheck, err, sizeof(err));
    if (rc == 1) {
        j->ari_recheck_at = now + 24 * 3600;
        return;
    }
    if (rc != 0) {
        oe_log(OE_LOG_WARN, "acme_renewal_info_failed", "error", err, "site", j->site->name, NULL);
        return;
    }
    time_t at = start + (end > start ? (time_t)(rnd32() % (uint32_t)(end - start)) : 0);
    j->ari_renew_at = at;
    j->ari_recheck_at = now + (time_t)recheck;
    oe_acme_status_t *st = status_begin(j);
    st->ari_start = start, st->ari_end = end;
    status_done();
    char s[32];
    snprintf(s, sizeof(s), "%lld", (long long)at);
    oe_log(OE_LOG_INFO, "acme_renewal_info", "renew_at", s, "site", j->site->name, NULL);
}

static void on_failure(oe_acme_job_t *j, oe_acme_client_t *c, const char *err)
{
    uint64_t delay_ms = oe_acme_backoff_ms(j->failures + 1, j->backoff_base_ms, BACKOFF_CAP_MS, rnd32());
    uint64_t ra = c ? c->retry_after_s : 0;
    if (ra > RETRY_AFTER_CAP_S)
        ra = RETRY_AFTER_CAP_S;
    if (ra * 1000 > delay_ms)
        delay_ms = ra * 1000;
    time_t next = time(NULL) + (time_t)((delay_ms + 999) / 1000);
    j->failures++;
    j->next_attempt = next;
    snprintf(j->last_error, sizeof(j->last_error), "%s", err);
    oe_acme_status_t *st = status_begin(j);
    st->failed++;
    st->last_failure = time(NULL);
    snprintf(st->last_error, sizeof(st->last_error), "%s", err);
    status_done();
    save_state(j);
    if (j->m->cluster && oe_cluster_backoff_put(j->m->cluster, j->site->name, j->failures, j->next_attempt, err) != 0)
        oe_log(OE_LOG_WARN, "cluster_backoff_write_failed", "site", j->site->name, NULL);
    char n[16], in[32];
    snprintf(n, sizeof(n), "%u", j->failures);
    snprintf(in, sizeof(in), "%.3f", (double)delay_ms / 1000.0);
    oe_log(OE_LOG_ERROR, "acme_failed", "error", err, "failures", n, "retry_in_s", in, "site", j->site->name, NULL);
}

static void cluster_sync(oe_acme_job_t *j, uint64_t token, int force);

/*
 * Cluster mode: writes the new certificate to Redis under the lock's fencing token before it
 * is stored locally and served. Returns 0 to go on (written, or Redis unreachable: the
 * certificate is served and written back later), 1 when the fencing refused it (a newer
 * certificate is in Redis and is taken instead).
 */
static int cluster_put(oe_acme_job_t *j, uint64_t token, const oe_acme_cert_t *cert, const char *replaces)
{
    char err[512];
    oe_tls_info_t info;
    if (oe_tls_pem_info(cert->chain_pem, cert->chain_len, &info, err, sizeof(err)) != 0)
        return 0;                           /* store_and_publish reports it */
    oe_acme_status_t *st = status_begin(j); /* the CA's renewal window (ARI) of the certificate it replaces */
    time_t ari_start = st->ari_start, ari_end = st->ari_end;
    status_done();
    oe_cluster_meta_t meta = {j->cfg->acme.directory, info.serial,    info.names, replaces, "issued",
                              info.not_before,        info.not_after, ari_start,  ari_end};
    int rc = oe_cluster_cert_put(j->m->cluster, j->site->name, token, cert->chain_pem, cert->chain_len, cert->key_pem,
                                 cert->key_len, &meta, err, sizeof(err));
    if (rc == 1) {
        oe_log(OE_LOG_ERROR, "cluster_write_fenced", "site", j->site->name, "serial", info.serial, "error", err,
               "action", "this certificate is dropped; the one in Redis is served", NULL);
        j->synced = 0;
        cluster_sync(j, 0, 1);
        return 1;
    }
    if (rc < 0)
        oe_log(OE_LOG_WARN, "cluster_write_failed", "site", j->site->name, "error", err, "action",
               "served and kept in state_dir; written to Redis when it is back", NULL);
    else
        oe_log(OE_LOG_INFO, "cluster_certificate_shared", "site", j->site->name, "serial", info.serial, NULL);
    return 0;
}

static void run_order(oe_acme_job_t *j, oe_acme_client_t *c, uint64_t token)
{
    char err[1024];
    if (oe_store_check_writable(j->dir, err, sizeof(err)) != 0) {
        on_failure(j, NULL, err);
        return;
    }
    /* the account another job may have registered meanwhile */
    char kid[OE_ACME_URL_MAX];
    oe_acme_account_kid(j->m, kid, sizeof(kid));
    if (kid[0] != '\0')
        snprintf(c->kid, sizeof(c->kid), "%s", kid);
    char replaces[512] = "";
    if (j->have_cert && j->chain_pem && c->dir.renewal_info[0])
        oe_acme_ari_cert_id(j->chain_pem, j->chain_len, replaces, sizeof(replaces));
    char nd[16];
    snprintf(nd, sizeof(nd), "%zu", j->site->domains.count);
    oe_log(OE_LOG_INFO, "acme_order_start", "domains", nd, "renewal", j->have_cert ? "true" : "false", "site",
           j->site->name, NULL);
    oe_acme_cert_t cert;
    uint64_t t0 = oe_util_now_ms();
    int rc = oe_acme_client_issue(c, j->site->domains.items, j->site->domains.count, replaces[0] ? replaces : NULL,
                                  &cert, err, sizeof(err));
    if (c->kid_changed) {
        oe_acme_account_learned(j->m, c->kid);
        c->kid_changed = 0;
    }
    if (rc == 0 && token && cluster_put(j, token, &cert, replaces) == 1) {
        oe_acme_cert_free(&cert);
        return; /* not a failure: another replica's newer certificate is served */
    }
    if (rc == 0 && store_and_publish(j, &cert, err, sizeof(err)) != 0)
        rc = -1;
    oe_acme_cert_free(&cert);
    if (rc != 0) {
        if (!oe_acme_stopping(j->m))
            on_failure(j, c, err);
        return;
    }
    j->failures = 0;
    j->next_attempt = 0;
    j->last_error[0] = '\0';
    snprintf(j->cert_directory, sizeof(j->cert_directory), "%s", j->cfg->acme.directory);
    oe_acme_status_t *st = status_begin(j);
    st->ok++;
    st->last_success = time(NULL);
    status_done();
    save_state(j);
    char ms[32], exp[32], bn[32];
    snprintf(ms, sizeof(ms), "%llu", (unsigned long long)(oe_util_now_ms() - t0));
    snprintf(bn, sizeof(bn), "%llu", (unsigned long long)c->bad_nonces);
    snprintf(exp, sizeof(exp), "%lld", (long long)j->info.not_after);
    oe_log(OE_LOG_INFO, "acme_certificate_installed", "names", j->info.names, "serial", j->info.serial, "not_after",
           exp, "duration_ms", ms, "bad_nonce_retries", bn, "site", j->site->name, NULL);
}

/* ---- cluster mode -------------------------------------------------------------------- */

static int local_good(const oe_acme_job_t *j)
{
    return j->have_cert && j->covers_all && !ca_changed(j) && j->info.not_after > time(NULL);
}

/* Whether another replica's record can be served for this site; why says what is wrong. */
static int record_usable(const oe_acme_job_t *j, const oe_cluster_cert_t *r, oe_tls_info_t *info, char *why, size_t cap)
{
    char err[256];
    if (oe_tls_pem_info(r->chain, r->chain_len, info, err, sizeof(err)) != 0) {
        snprintf(why, cap, "the chain in Redis does not parse (truncated or corrupt): %s", err);
        return 0;
    }
    if (!oe_tls_pem_pair_matches(r->chain, r->chain_len, r->key, r->key_len)) {
        snprintf(why, cap, "the key in Redis does not match its certificate (serial %s)", info->serial);
        return 0;
    }
    if (info->not_after <= time(NULL)) {
        snprintf(why, cap, "the certificate in Redis (serial %s) has expired", info->serial);
        return 0;
    }
    if (!covers(j, info)) {
        snprintf(why, cap, "the certificate in Redis (serial %s) does not cover every name of the site", info->serial);
        return 0;
    }
    return 1;
}

/* Another replica's certificate: stored in the local copy, then served. */
static void adopt(oe_acme_job_t *j, const oe_cluster_cert_t *r, const oe_tls_info_t *info)
{
    char err[512];
    const char *site = j->site->name;
    if (write_cert(j->dir, r->chain, r->chain_len, r->key, r->key_len, err, sizeof(err)) != 0)
        oe_log(OE_LOG_WARN, "cluster_local_copy_failed", "site", site, "error", err, "action",
               "served from memory; the local copy stays the old one", NULL);
    if (oe_tls_publish_pem_for(site, r->chain, r->chain_len, r->key, r->key_len, err, sizeof(err)) != 0) {
        oe_log(OE_LOG_ERROR, "cluster_certificate_rejected", "site", site, "error", err, "action",
               "the served certificate is kept", NULL);
        return;
    }
    char *chain = strdup(r->chain);
    if (!chain)
        return;
    set_cert(j, chain, r->chain_len, info);
    snprintf(j->cert_directory, sizeof(j->cert_directory), "%s",
             r->directory[0] ? r->directory : j->cfg->acme.directory);
    j->failures = 0;
    j->next_attempt = 0;
    j->last_error[0] = '\0';
    save_state(j);
    oe_cluster_count_received();
    char exp[32];
    snprintf(exp, sizeof(exp), "%lld", (long long)info->not_after);
    oe_log(OE_LOG_INFO, "cluster_certificate_received", "site", site, "serial", info->serial, "from", r->node,
           "not_after", exp, NULL);
}

/*
 * Writes this replica's good local certificate to Redis: Redis came back empty (a restart
 * without persistence), or holds an unusable or older record. Under the site's lock (token,
 * or taken here), so the fencing orders it with any issuance; no new order is made.
 */
static void reseed(oe_acme_job_t *j, uint64_t token)
{
    oe_cluster_t *cl = j->m->cluster;
    const char *site = j->site->name;
    char err[512], holder[160], *key = NULL;
    size_t klen = 0;
    uint64_t left = 0;
    int own = 0;
    if (!token) {
        if (oe_cluster_lock(cl, site, &token, holder, sizeof(holder), &left, err, sizeof(err)) != 0)
            return; /* someone else is at it (or Redis is away): look again later */
        own = 1;
    }
    oe_cluster_cert_t r;
    oe_tls_info_t info;
    int rc = oe_cluster_cert_get(cl, site, &r, err, sizeof(err));
    int newer = rc == 0 && record_usable(j, &r, &info, err, sizeof(err)) &&
                (strcmp(info.serial, j->info.serial) == 0 || info.not_after >= j->info.not_after);
    oe_cluster_cert_free(&r);
    if (rc == -1 || newer)
        goto out;
    if (oe_store_read(j->dir, "cert.key", FILE_MAX, &key, &klen, err, sizeof(err)) != 0 ||
        !oe_tls_pem_pair_matches(j->chain_pem, j->chain_len, key, klen))
        goto out;
    oe_cluster_meta_t meta = {j->cert_directory[0] ? j->cert_directory : j->cfg->acme.directory,
                              j->info.serial,
                              j->info.names,
                              "",
                              "reseeded",
                              j->info.not_before,
                              j->info.not_after,
                              0,
                              0};
    rc = oe_cluster_cert_put(cl, site, token, j->chain_pem, j->chain_len, key, klen, &meta, err, sizeof(err));
    if (rc == 0) {
        oe_log(OE_LOG_INFO, "cluster_certificate_reseeded", "site", site, "serial", j->info.serial, "msg",
               "Redis had no usable record: this replica's local copy was written back (no new order)", NULL);
        /* Redis came back empty: the shared account goes back too (ours, or the one stored) */
        if (oe_acme_account_share(j->m, err, sizeof(err)) != 0)
            oe_log(OE_LOG_WARN, "cluster_account_write_failed", "error", err, NULL);
    } else
        oe_log(OE_LOG_WARN, "cluster_reseed_failed", "site", site, "error", err, NULL);
out:
    cleanse_free(key, klen);
    if (own)
        oe_cluster_unlock(cl, site, token);
}

/* Brings the job in line with Redis when something may have changed there (a PUBLISH, the
 * poll, Redis back): takes another replica's newer certificate, or writes ours back. */
static void cluster_sync(oe_acme_job_t *j, uint64_t token, int force)
{
    oe_cluster_t *cl = j->m->cluster;
    const char *site = j->site->name;
    if (!oe_cluster_up(cl)) {
        j->synced = 0;
        return;
    }
    uint64_t t = oe_cluster_sync_token(cl, site);
    if (!force && j->synced && t == j->sync_token)
        return;
    oe_cluster_cert_t r;
    oe_tls_info_t info;
    char err[512];
    int rc = oe_cluster_cert_get(cl, site, &r, err, sizeof(err));
    if (rc == -1) {
        j->synced = 0;
        return;
    }
    j->synced = 1;
    j->sync_token = t;
    if (rc == 0 && !record_usable(j, &r, &info, err, sizeof(err)))
        rc = -2;
    if (rc == 0 && r.directory[0] && strcmp(r.directory, j->cfg->acme.directory) != 0)
        rc = 1; /* issued by another CA than the configured one: replaced like an absent record */
    if (rc == -2) {
        char sig[64];
        snprintf(sig, sizeof(sig), "%.40s/%llu", err, (unsigned long long)t);
        if (strcmp(sig, j->rejected_logged) != 0)
            oe_log(OE_LOG_ERROR, "cluster_certificate_rejected", "site", site, "error", err, "action",
                   local_good(j) ? "the served certificate is kept and written back to Redis"
                                 : "the served certificate is kept",
                   NULL);
        snprintf(j->rejected_logged, sizeof(j->rejected_logged), "%s", sig);
    }
    if (rc == 0) {
        if (!j->have_cert || strcmp(info.serial, j->info.serial) != 0) {
            if (!local_good(j) || info.not_after >= j->info.not_after)
                adopt(j, &r, &info);
            else
                reseed(j, token); /* ours is newer (Redis restored from an old copy) */
        }
    } else if (local_good(j)) {
        reseed(j, token);
    }
    oe_cluster_cert_free(&r);
}

/* Cluster mode: an order is due. Only the replica holding the site's lock orders; the others
 * wait for its PUBLISH. Nothing is ordered while Redis is away or the shared backoff says wait. */
static void cluster_order(oe_acme_job_t *j, oe_acme_client_t *c)
{
    oe_acme_t *m = j->m;
    oe_cluster_t *cl = m->cluster;
    const char *site = j->site->name;
    char err[512], holder[160], le[512];
    if (!oe_cluster_up(cl)) {
        if (!j->deferred_logged)
            oe_log(OE_LOG_WARN, "cluster_order_deferred", "site", site, "reason",
                   "Redis unreachable: no order while the issuance lock cannot be taken", "action",
                   j->have_cert ? "the local copy is served meanwhile"
                                : "the self-signed certificate is served meanwhile",
                   NULL);
        j->deferred_logged = 1;
        oe_acme_sleep(m, OE_CLUSTER_POLL_MS);
        return;
    }
    j->deferred_logged = 0;
    uint64_t settle = oe_cluster_settle_ms(cl);
    if (settle > 0) {
        char ms[32];
        snprintf(ms, sizeof(ms), "%llu", (unsigned long long)settle);
        oe_log(OE_LOG_INFO, "cluster_order_settling", "site", site, "wait_ms", ms, "reason",
               "Redis is back: the other replicas reconnect first, so that they can answer the challenges", NULL);
        oe_acme_sleep(m, settle);
        return;
    }
    unsigned f = 0;
    time_t na = 0, now = time(NULL);
    if (oe_cluster_backoff_get(cl, site, &f, &na, le, sizeof(le)) == 0 && f > 0 && na > now &&
        (na > j->next_attempt || j->failures == 0)) {
        j->failures = f;
        j->next_attempt = na;
        snprintf(j->last_error, sizeof(j->last_error), "%s", le);
        save_state(j);
        char fs[16], in[32];
        snprintf(fs, sizeof(fs), "%u", f);
        snprintf(in, sizeof(in), "%lld", (long long)(na - now));
        oe_log(OE_LOG_INFO, "cluster_backoff_shared", "site", site, "failures", fs, "retry_in_s", in, "last_error", le,
               NULL);
        return;
    }
    uint64_t token = 0, left = 0;
    int rc = oe_cluster_lock(cl, site, &token, holder, sizeof(holder), &left, err, sizeof(err));
    if (rc != 0) {
        if (rc == 1 && strcmp(holder, j->busy_logged) != 0)
            oe_log(OE_LOG_INFO, "cluster_lock_busy", "site", site, "holder", holder, "msg",
                   "another replica is ordering: its certificate is taken when it is written", NULL);
        if (rc == 1)
            snprintf(j->busy_logged, sizeof(j->busy_logged), "%s", holder);
        uint64_t ms = rc == 1 && left + 50 < OE_CLUSTER_POLL_MS ? left + 50 : OE_CLUSTER_POLL_MS;
        oe_acme_sleep(m, ms);
        return;
    }
    j->busy_logged[0] = '\0';
    cluster_sync(j, token, 1); /* it may have been done just before we got the lock */
    if (due_time(j) > time(NULL)) {
        oe_cluster_unlock(cl, site, token);
        return;
    }
    if (!m->account_shared && oe_acme_account_share(m, err, sizeof(err)) != 0) {
        oe_log(OE_LOG_WARN, "cluster_order_deferred", "site", site, "reason", err, NULL);
        oe_cluster_unlock(cl, site, token);
        oe_acme_sleep(m, OE_CLUSTER_POLL_MS);
        return;
    }
    char kid[OE_ACME_URL_MAX];
    EVP_PKEY *key = oe_acme_account_current(m, kid, sizeof(kid));
    if ((key != c->account_key || strcmp(kid, c->kid) != 0) &&
        oe_acme_client_set_account(c, key, kid, err, sizeof(err)) != 0) {
        on_failure(j, NULL, err);
        oe_cluster_unlock(cl, site, token);
        return;
    }
    run_order(j, c, token);
    oe_cluster_unlock(cl, site, token);
}

static void *job_main(void *arg)
{
    oe_acme_job_t *j = arg;
    oe_acme_client_t c;
    char err[512], kid[OE_ACME_URL_MAX];
    EVP_PKEY *account_key = oe_acme_account_current(j->m, kid, sizeof(kid));
    if (oe_acme_client_init(&c, j->cfg, account_key, kid, &j->m->stop, sleep_cb, j, err, sizeof(err)) != 0) {
        oe_log(OE_LOG_ERROR, "acme_failed", "error", err, "site", j->site->name, NULL);
        return NULL;
    }
    time_t logged_due = -1;
    while (!oe_acme_stopping(j->m)) {
        if (j->m->cluster)
            cluster_sync(j, 0, 0);
        check_ari(j, &c);
        time_t due = due_time(j), now = time(NULL);
        if (due > now) {
            if (due != logged_due) {
                char s[32], in[32];
                snprintf(s, sizeof(s), "%lld", (long long)due);
                snprintf(in, sizeof(in), "%lld", (long long)(due - now));
                oe_log(OE_LOG_INFO, "acme_next_attempt", "at", s, "in_s", in, "site", j->site->name, NULL);
                logged_due = due;
            }
            uint64_t ms = (uint64_t)(due - now) * 1000;
            if (oe_acme_sleep(j->m, ms > WAKE_MAX_MS ? WAKE_MAX_MS : ms))
                break;
            continue;
        }
        if (j->m->cluster)
            cluster_order(j, &c);
        else
            run_order(j, &c, 0);
    }
    oe_acme_client_free(&c);
    return NULL;
}

/* ---- life cycle ------------------------------------------------------------------ */

oe_acme_job_t *oe_acme_job_new(oe_acme_t *m, size_t site, size_t status_slot, char *err, size_t errlen)
{
    const oe_config_t *cfg = m->cfg;
    oe_acme_job_t *j = calloc(1, sizeof(*j));
    char e[512];
    if (!j) {
        snprintf(err, errlen, "acme: out of memory");
        return NULL;
    }
    j->m = m;
    j->cfg = cfg;
    j->site = &cfg->sites[site];
    j->status = status_slot;
    j->backoff_base_ms = cfg->acme.retry_base_ms > 0 ? cfg->acme.retry_base_ms : BACKOFF_BASE_MS;
    j->own_dir = cfg->sites_listed;
    int n = j->own_dir ? snprintf(j->dir, sizeof(j->dir), "%s/sites/%s", cfg->state_dir, j->site->name)
                       : snprintf(j->dir, sizeof(j->dir), "%s", cfg->state_dir);
    if (n < 0 || (size_t)n >= sizeof(j->dir)) {
        snprintf(err, errlen, "acme: state_dir: path too long for site %s", j->site->name);
        free(j);
        return NULL;
    }
    if (j->own_dir &&
        (oe_store_mkdirs(j->dir, e, sizeof(e)) != 0 || oe_store_check_writable(j->dir, e, sizeof(e)) != 0)) {
        snprintf(err, errlen, "acme: state_dir: %s", e);
        free(j);
        return NULL;
    }
    oe_acme_status_t *st = status_begin(j);
    memset(st, 0, sizeof(*st));
    snprintf(st->site, sizeof(st->site), "%s", j->site->name);
    st->active = 1;
    status_done();
    load_state(j);
    if (j->last_error[0] != '\0') { /* restored from acme-state.json */
        st = status_begin(j);
        snprintf(st->last_error, sizeof(st->last_error), "%s", j->last_error);
        status_done();
    }
    load_cert(j);
    if (ca_changed(j))
        oe_log(OE_LOG_INFO, "acme_directory_changed", "was",
               j->cert_directory[0] ? j->cert_directory : m->prev_directory, "now", cfg->acme.directory, "action",
               "a new certificate is ordered", "site", j->site->name, NULL);
    due_time(j);
    return j;
}

int oe_acme_job_start(oe_acme_job_t *j, char *err, size_t errlen)
{
    if (pthread_create(&j->thread, NULL, job_main, j) != 0) {
        snprintf(err, errlen, "acme: cannot start the thread for site %s", j->site->name);
        return -1;
    }
    j->started = 1;
    return 0;
}

void oe_acme_job_join(oe_acme_job_t *j)
{
    if (j->started)
        pthread_join(j->thread, NULL);
    j->started = 0;
}

void oe_acme_job_free(oe_acme_job_t *j)
{
    if (!j)
        return;
    free(j->chain_pem);
    free(j);
}
