/*
 * manager — the ACME thread: what is stored, when to renew, how long to back off.
 *
 * On start it serves a good stored certificate at once and makes no order while that
 * certificate is good. The thread then sleeps (interruptibly) until the renewal time
 * (ARI window when the CA offers one, else renew_before / one third of the lifetime),
 * runs one order, stores it and publishes it. A failure is retried with exponential
 * backoff and jitter (Retry-After of a 429/503 wins when longer); the backoff is saved in
 * acme-state.json so a crash-looping process cannot hammer the CA.
 *
 * Files in state_dir: account.key (0600), account.json ({"directory","url"}), cert.pem
 * (chain), cert.key (0600), acme-state.json. A new certificate is written as
 * cert.key.next first, then cert.pem, then cert.key.next is renamed to cert.key: after a
 * crash at any point either the old pair is intact, or cert.pem pairs with cert.key.next
 * and the load finishes the rename. A new cert is never paired with an old key.
 */
#define _GNU_SOURCE
#include "acme/acme.h"

#include <errno.h>
#include <jansson.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "acme/acme_parse.h"
#include "acme/client.h"
#include "acme/curl_api.h"
#include "acme/jws.h"
#include "log/log.h"
#include "store/store.h"
#include "tls/tls.h"
#include "util/util.h"

#define FILE_MAX          (1u << 20)
#define BACKOFF_BASE_MS   (60ull * 1000)        /* 1 min ... */
#define BACKOFF_CAP_MS    (24ull * 3600 * 1000) /* ... doubling to 1 day */
#define RETRY_AFTER_CAP_S (7ull * 24 * 3600)
#define WAKE_MAX_MS       (10ull * 60 * 1000) /* re-evaluate at least every 10 min */

struct oe_acme {
    const oe_config_t *cfg;
    pthread_t thread;
    int started;
    pthread_mutex_t lock; /* guards stop (with cond); everything else is the thread's own */
    pthread_cond_t cond;
    int stop;

    EVP_PKEY *account_key;
    char kid[OE_ACME_URL_MAX];
    int ca_changed; /* acme.directory differs from the one the stored state came from */

    /* the certificate we manage (from disk or the last order) */
    char *chain_pem;
    size_t chain_len;
    oe_tls_info_t info;
    int have_cert;  /* a real certificate for these domains is stored */
    int covers_all; /* it covers every configured domain */

    /* ARI */
    time_t ari_renew_at; /* 0: no window known */
    time_t ari_recheck_at;

    /* backoff (persisted) */
    unsigned failures;
    time_t next_attempt;
    char last_error[512];

    uint64_t backoff_base_ms;
};

/* What oe_acme_status() reports (the status page and /metrics): process-wide, so the
 * admin thread never reads a freed manager. */
static pthread_mutex_t metrics_lock = PTHREAD_MUTEX_INITIALIZER;
static oe_acme_status_t metrics;

/* ---- sleeping and stopping ------------------------------------------------------- */

static int stop_requested(oe_acme_t *a)
{
    return __atomic_load_n(&a->stop, __ATOMIC_RELAXED);
}

/* Sleeps ms or until stopped; returns non-zero when stopping. */
static int sleep_ms(void *data, uint64_t ms)
{
    oe_acme_t *a = data;
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += (time_t)(ms / 1000);
    deadline.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&a->lock);
    while (!a->stop) {
        if (pthread_cond_timedwait(&a->cond, &a->lock, &deadline) == ETIMEDOUT)
            break;
    }
    int stop = a->stop;
    pthread_mutex_unlock(&a->lock);
    return stop;
}

/* ---- persisted state ------------------------------------------------------------- */

static void save_state(oe_acme_t *a)
{
    char err[256];
    json_t *j = json_pack("{s:i, s:I, s:s}", "failures", (int)a->failures, "next_attempt", (json_int_t)a->next_attempt,
                          "last_error", a->last_error);
    char *txt = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
    json_decref(j);
    if (txt && oe_store_write(a->cfg->state_dir, "acme-state.json", txt, strlen(txt), 0600, err, sizeof(err)) != 0)
        oe_log(OE_LOG_ERROR, "acme_state_write_failed", "error", err, NULL);
    free(txt);
}

static void load_state(oe_acme_t *a)
{
    char err[256], *txt = NULL;
    size_t len = 0;
    int rc = oe_store_read(a->cfg->state_dir, "acme-state.json", 64 * 1024, &txt, &len, err, sizeof(err));
    if (rc != 0) {
        if (rc < 0)
            oe_log(OE_LOG_WARN, "acme_state_unreadable", "error", err, NULL);
        return;
    }
    json_t *j = json_loadb(txt, len, 0, NULL);
    json_t *f = json_object_get(j, "failures"), *n = json_object_get(j, "next_attempt");
    if (json_is_integer(f) && json_is_integer(n) && json_integer_value(f) >= 0 && json_integer_value(f) < 1000) {
        a->failures = (unsigned)json_integer_value(f);
        a->next_attempt = (time_t)json_integer_value(n);
        const char *e = json_string_value(json_object_get(j, "last_error"));
        snprintf(a->last_error, sizeof(a->last_error), "%s", e ? e : "");
        /* a clock set back or a hand-edited file must not park us for years */
        time_t now = time(NULL), max = now + (time_t)(BACKOFF_CAP_MS / 1000) * 2 + (time_t)RETRY_AFTER_CAP_S;
        if (a->next_attempt > max)
            a->next_attempt = max;
        if (a->failures > 0) {
            char fs[16], at[32];
            snprintf(fs, sizeof(fs), "%u", a->failures);
            snprintf(at, sizeof(at), "%lld", (long long)a->next_attempt);
            oe_log(OE_LOG_INFO, "acme_backoff_restored", "failures", fs, "next_attempt", at, "last_error",
                   a->last_error, NULL);
        }
    } else {
        oe_log(OE_LOG_WARN, "acme_state_corrupt", "file", "acme-state.json", "action", "ignored and replaced", NULL);
    }
    json_decref(j);
    free(txt);
}

/* ---- account --------------------------------------------------------------------- */

static int load_account(oe_acme_t *a, char *err, size_t errlen)
{
    const char *dir = a->cfg->state_dir;
    char *pem = NULL, *txt = NULL;
    size_t len = 0;
    int rc = oe_store_read(dir, "account.key", FILE_MAX, &pem, &len, err, errlen);
    if (rc < 0)
        return -1;
    if (rc == 0) {
        a->account_key = oe_acme_key_from_pem(pem, len);
        OPENSSL_cleanse(pem, len);
        free(pem);
        json_t *jwk = a->account_key ? oe_acme_jwk(a->account_key) : NULL;
        if (!jwk) {
            oe_log(OE_LOG_WARN, "acme_account_key_unusable", "file", "account.key", "action",
                   "a new account key is generated and a new account registered", NULL);
            EVP_PKEY_free(a->account_key);
            a->account_key = NULL;
        }
        json_decref(jwk);
    }
    if (!a->account_key) {
        a->account_key = oe_acme_key_new(OE_KEY_EC256);
        size_t klen = 0;
        char *kpem = a->account_key ? oe_acme_key_pem(a->account_key, &klen) : NULL;
        if (!kpem) {
            snprintf(err, errlen, "cannot generate the ACME account key");
            return -1;
        }
        rc = oe_store_write(dir, "account.key", kpem, klen, 0600, err, errlen);
        OPENSSL_cleanse(kpem, klen);
        free(kpem);
        if (rc != 0)
            return -1;
        oe_store_write(dir, "account.json", "{}\n", 3, 0600, err, errlen); /* the old URL belongs to the old key */
        oe_log(OE_LOG_INFO, "acme_account_key_created", "file", "account.key", NULL);
        return 0;
    }
    /* the account URL, if it was registered at this directory */
    if (oe_store_read(dir, "account.json", 64 * 1024, &txt, &len, err, errlen) == 0) {
        json_t *j = json_loadb(txt, len, 0, NULL);
        const char *d = json_string_value(json_object_get(j, "directory"));
        const char *u = json_string_value(json_object_get(j, "url"));
        if (!j)
            oe_log(OE_LOG_WARN, "acme_account_json_corrupt", "action", "the account is looked up again", NULL);
        else if (u && d && strcmp(d, a->cfg->acme.directory) == 0)
            snprintf(a->kid, sizeof(a->kid), "%s", u);
        else if (d && strcmp(d, a->cfg->acme.directory) != 0) {
            /* e.g. moved from letsencrypt-staging to production: replace the certificate now */
            a->ca_changed = 1;
            oe_log(OE_LOG_INFO, "acme_directory_changed", "was", d, "now", a->cfg->acme.directory, "action",
                   "a new account is registered and a new certificate ordered", NULL);
        }
        json_decref(j);
        free(txt);
    }
    return 0;
}

static void save_account(oe_acme_t *a)
{
    char err[256];
    json_t *j = json_pack("{s:s, s:s}", "directory", a->cfg->acme.directory, "url", a->kid);
    char *txt = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
    json_decref(j);
    if (txt && oe_store_write(a->cfg->state_dir, "account.json", txt, strlen(txt), 0600, err, sizeof(err)) != 0)
        oe_log(OE_LOG_ERROR, "acme_account_write_failed", "error", err, NULL);
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

/* Takes chain (malloc'ed) as the managed certificate and updates what metrics read. */
static void set_cert(oe_acme_t *a, char *chain, size_t len, const oe_tls_info_t *info)
{
    int all = 1;
    for (size_t i = 0; i < a->cfg->domains.count; i++)
        if (!has_name(info->names, a->cfg->domains.items[i]))
            all = 0;
    free(a->chain_pem);
    a->chain_pem = chain;
    a->chain_len = len;
    a->info = *info;
    a->have_cert = 1;
    a->covers_all = all;
    a->ari_renew_at = 0;
    a->ari_recheck_at = 0;
    pthread_mutex_lock(&metrics_lock);
    metrics.have_cert = 1;
    snprintf(metrics.names, sizeof(metrics.names), "%s", info->names);
    metrics.not_after = info->not_after;
    metrics.ari_start = metrics.ari_end = 0;
    pthread_mutex_unlock(&metrics_lock);
}

/*
 * Loads cert.pem + cert.key, finishing an interrupted write (cert.key.next), checks they
 * pair, parse and are not expired, and serves them. Anything wrong is reported and the
 * files are left to be replaced by the next order.
 */
static void load_cert(oe_acme_t *a)
{
    const char *dir = a->cfg->state_dir;
    char err[512], *chain = NULL, *key = NULL, *next = NULL;
    size_t clen = 0, klen = 0, nlen = 0;
    int crc = oe_store_read(dir, "cert.pem", FILE_MAX, &chain, &clen, err, sizeof(err));
    if (crc < 0)
        oe_log(OE_LOG_WARN, "acme_stored_certificate_unusable", "error", err, NULL);
    if (crc != 0)
        goto out;
    int krc = oe_store_read(dir, "cert.key", FILE_MAX, &key, &klen, err, sizeof(err));
    int nrc = oe_store_read(dir, "cert.key.next", FILE_MAX, &next, &nlen, err, sizeof(err));
    if (nrc == 0 && oe_tls_pem_pair_matches(chain, clen, next, nlen) &&
        !(krc == 0 && oe_tls_pem_pair_matches(chain, clen, key, klen))) {
        /* crashed between writing cert.pem and renaming the key: finish the job */
        if (oe_store_rename(dir, "cert.key.next", "cert.key", err, sizeof(err)) == 0) {
            oe_log(OE_LOG_INFO, "acme_stored_key_recovered", "file", "cert.key.next", NULL);
            if (key)
                OPENSSL_cleanse(key, klen);
            free(key);
            key = next, klen = nlen, next = NULL, krc = 0;
        }
    }
    if (krc != 0) {
        oe_log(OE_LOG_WARN, "acme_stored_certificate_unusable", "error",
               krc > 0 ? "cert.pem exists but cert.key is missing" : err, "action", "a new certificate is ordered",
               NULL);
        goto out;
    }
    oe_tls_info_t info;
    if (oe_tls_pem_info(chain, clen, &info, err, sizeof(err)) != 0) {
        oe_log(OE_LOG_WARN, "acme_stored_certificate_unusable", "file", "cert.pem", "error", err, "action",
               "a new certificate is ordered", NULL);
        goto out;
    }
    if (!oe_tls_pem_pair_matches(chain, clen, key, klen)) {
        oe_log(OE_LOG_WARN, "acme_stored_certificate_unusable", "error", "cert.key does not match cert.pem", "action",
               "a new certificate is ordered", NULL);
        goto out;
    }
    if (info.not_after <= time(NULL)) {
        oe_log(OE_LOG_WARN, "acme_stored_certificate_expired", "names", info.names, "action",
               "a new certificate is ordered", NULL);
        goto out;
    }
    if (oe_tls_publish_pem(chain, clen, key, klen, err, sizeof(err)) != 0) {
        oe_log(OE_LOG_WARN, "acme_stored_certificate_unusable", "error", err, "action", "a new certificate is ordered",
               NULL);
        goto out;
    }
    set_cert(a, chain, clen, &info);
    chain = NULL;
    char exp[32];
    snprintf(exp, sizeof(exp), "%lld", (long long)info.not_after);
    oe_log(OE_LOG_INFO, "acme_stored_certificate", "names", info.names, "serial", info.serial, "not_after", exp,
           "covers_domains", a->covers_all ? "true" : "false", NULL);
out:
    free(chain);
    if (key)
        OPENSSL_cleanse(key, klen);
    if (next)
        OPENSSL_cleanse(next, nlen);
    free(key);
    free(next);
}

/* Stores a new certificate (key first under a temporary name, see the top comment) and
 * serves it. */
static int store_and_publish(oe_acme_t *a, oe_acme_cert_t *cert, char *err, size_t errlen)
{
    const char *dir = a->cfg->state_dir;
    oe_tls_info_t info;
    if (oe_tls_pem_info(cert->chain_pem, cert->chain_len, &info, err, errlen) != 0)
        return -1;
    if (oe_store_write(dir, "cert.key.next", cert->key_pem, cert->key_len, 0600, err, errlen) != 0 ||
        oe_store_write(dir, "cert.pem", cert->chain_pem, cert->chain_len, 0644, err, errlen) != 0)
        return -1;
    if (oe_store_rename(dir, "cert.key.next", "cert.key", err, errlen) != 0)
        return -1;
    if (oe_tls_publish_pem(cert->chain_pem, cert->chain_len, cert->key_pem, cert->key_len, err, errlen) != 0)
        return -1;
    set_cert(a, cert->chain_pem, cert->chain_len, &info);
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
static time_t due_time(oe_acme_t *a)
{
    time_t due;
    if (!a->have_cert || !a->covers_all || a->ca_changed || a->info.not_after <= time(NULL))
        due = 0;
    else if (a->ari_renew_at)
        due = a->ari_renew_at;
    else
        due = oe_acme_renew_at(a->info.not_before, a->info.not_after, a->cfg->acme.renew_before_ms / 1000);
    if (a->failures > 0 && a->next_attempt > due)
        due = a->next_attempt;
    pthread_mutex_lock(&metrics_lock);
    metrics.next_attempt = due ? due : time(NULL);
    metrics.failures = a->failures;
    pthread_mutex_unlock(&metrics_lock);
    return due;
}

/* Asks the CA's ARI endpoint (if any) when to renew; picks a random time in the window. */
static void check_ari(oe_acme_t *a, oe_acme_client_t *c)
{
    time_t now = time(NULL);
    if (!a->have_cert || !a->covers_all || a->ca_changed || now < a->ari_recheck_at)
        return;
    char id[512], err[512];
    time_t start, end;
    uint64_t recheck = 6 * 3600;
    a->ari_recheck_at = now + 3600; /* on any failure, try again in an hour */
    if (oe_acme_ari_cert_id(a->chain_pem, a->chain_len, id, sizeof(id)) != 0)
        return;
    int rc = oe_acme_client_renewal_info(c, id, &start, &end, &recheck, err, sizeof(err));
    if (rc == 1) {
        a->ari_recheck_at = now + 24 * 3600;
        return;
    }
    if (rc != 0) {
        oe_log(OE_LOG_WARN, "acme_renewal_info_failed", "error", err, NULL);
        return;
    }
    time_t at = start + (end > start ? (time_t)(rnd32() % (uint32_t)(end - start)) : 0);
    a->ari_renew_at = at;
    a->ari_recheck_at = now + (time_t)recheck;
    pthread_mutex_lock(&metrics_lock);
    metrics.ari_start = start, metrics.ari_end = end;
    pthread_mutex_unlock(&metrics_lock);
    char s[32];
    snprintf(s, sizeof(s), "%lld", (long long)at);
    oe_log(OE_LOG_INFO, "acme_renewal_info", "renew_at", s, NULL);
}

static void on_failure(oe_acme_t *a, oe_acme_client_t *c, const char *err)
{
    uint64_t delay_ms = oe_acme_backoff_ms(a->failures + 1, a->backoff_base_ms, BACKOFF_CAP_MS, rnd32());
    uint64_t ra = c ? c->retry_after_s : 0;
    if (ra > RETRY_AFTER_CAP_S)
        ra = RETRY_AFTER_CAP_S;
    if (ra * 1000 > delay_ms)
        delay_ms = ra * 1000;
    time_t next = time(NULL) + (time_t)((delay_ms + 999) / 1000);
    a->failures++;
    a->next_attempt = next;
    snprintf(a->last_error, sizeof(a->last_error), "%s", err);
    pthread_mutex_lock(&metrics_lock);
    metrics.failed++;
    metrics.last_failure = time(NULL);
    snprintf(metrics.last_error, sizeof(metrics.last_error), "%s", err);
    pthread_mutex_unlock(&metrics_lock);
    save_state(a);
    char n[16], in[32];
    snprintf(n, sizeof(n), "%u", a->failures);
    snprintf(in, sizeof(in), "%.3f", (double)delay_ms / 1000.0);
    oe_log(OE_LOG_ERROR, "acme_failed", "error", err, "failures", n, "retry_in_s", in, NULL);
}

static void run_order(oe_acme_t *a, oe_acme_client_t *c)
{
    char err[1024];
    if (oe_store_check_writable(a->cfg->state_dir, err, sizeof(err)) != 0) {
        on_failure(a, NULL, err);
        return;
    }
    char replaces[512] = "";
    if (a->have_cert && a->chain_pem && c->dir.renewal_info[0])
        oe_acme_ari_cert_id(a->chain_pem, a->chain_len, replaces, sizeof(replaces));
    char nd[16];
    snprintf(nd, sizeof(nd), "%zu", a->cfg->domains.count);
    oe_log(OE_LOG_INFO, "acme_order_start", "domains", nd, "renewal", a->have_cert ? "true" : "false", NULL);
    oe_acme_cert_t cert;
    uint64_t t0 = oe_util_now_ms();
    int rc = oe_acme_client_issue(c, a->cfg->domains.items, a->cfg->domains.count, replaces[0] ? replaces : NULL, &cert,
                                  err, sizeof(err));
    if (c->kid_changed) {
        snprintf(a->kid, sizeof(a->kid), "%s", c->kid);
        save_account(a);
        c->kid_changed = 0;
    }
    if (rc == 0 && store_and_publish(a, &cert, err, sizeof(err)) != 0)
        rc = -1;
    oe_acme_cert_free(&cert);
    if (rc != 0) {
        if (!stop_requested(a))
            on_failure(a, c, err);
        return;
    }
    a->failures = 0;
    a->next_attempt = 0;
    a->last_error[0] = '\0';
    a->ca_changed = 0;
    pthread_mutex_lock(&metrics_lock);
    metrics.ok++;
    metrics.last_success = time(NULL);
    pthread_mutex_unlock(&metrics_lock);
    save_state(a);
    char ms[32], exp[32], bn[32];
    snprintf(ms, sizeof(ms), "%llu", (unsigned long long)(oe_util_now_ms() - t0));
    snprintf(bn, sizeof(bn), "%llu", (unsigned long long)c->bad_nonces);
    snprintf(exp, sizeof(exp), "%lld", (long long)a->info.not_after);
    oe_log(OE_LOG_INFO, "acme_certificate_installed", "names", a->info.names, "serial", a->info.serial, "not_after",
           exp, "duration_ms", ms, "bad_nonce_retries", bn, NULL);
}

static void *manager_main(void *arg)
{
    oe_acme_t *a = arg;
    oe_acme_client_t c;
    char err[512];
    if (oe_acme_client_init(&c, a->cfg, a->account_key, a->kid, &a->stop, sleep_ms, a, err, sizeof(err)) != 0) {
        oe_log(OE_LOG_ERROR, "acme_failed", "error", err, NULL);
        return NULL;
    }
    time_t logged_due = -1;
    while (!stop_requested(a)) {
        check_ari(a, &c);
        time_t due = due_time(a), now = time(NULL);
        if (due > now) {
            if (due != logged_due) {
                char s[32], in[32];
                snprintf(s, sizeof(s), "%lld", (long long)due);
                snprintf(in, sizeof(in), "%lld", (long long)(due - now));
                oe_log(OE_LOG_INFO, "acme_next_attempt", "at", s, "in_s", in, NULL);
                logged_due = due;
            }
            uint64_t ms = (uint64_t)(due - now) * 1000;
            if (sleep_ms(a, ms > WAKE_MAX_MS ? WAKE_MAX_MS : ms))
                break;
            continue;
        }
        run_order(a, &c);
    }
    oe_acme_client_free(&c);
    return NULL;
}

/* ---- status ---------------------------------------------------------------------- */

size_t oe_acme_status(oe_acme_status_t *out, size_t max)
{
    pthread_mutex_lock(&metrics_lock);
    int active = metrics.active;
    if (active && max > 0)
        *out = metrics;
    pthread_mutex_unlock(&metrics_lock);
    return active && max > 0 ? 1 : 0;
}

/* ---- start / stop ---------------------------------------------------------------- */

static void destroy(oe_acme_t *a)
{
    EVP_PKEY_free(a->account_key);
    free(a->chain_pem);
    pthread_cond_destroy(&a->cond);
    pthread_mutex_destroy(&a->lock);
    free(a);
}

oe_acme_t *oe_acme_start(const oe_config_t *cfg, char *err, size_t errlen)
{
    if (cfg->domains.count == 0) {
        snprintf(err, errlen, "acme: no domains to certify (set domains)");
        return NULL;
    }
    if (!cfg->state_dir || !*cfg->state_dir) {
        snprintf(err, errlen, "acme: state_dir is not set");
        return NULL;
    }
    char e[768];
    /* libcurl is loaded (and initialised) here, not linked: a missing libcurl4 is a clear
     * start-up error, never a crash in the manager thread later */
    if (oe_curl_api(e, sizeof(e)) == NULL) {
        snprintf(err, errlen, "acme: %s", e);
        return NULL;
    }
    if (oe_store_mkdirs(cfg->state_dir, e, sizeof(e)) != 0 ||
        oe_store_check_writable(cfg->state_dir, e, sizeof(e)) != 0) {
        snprintf(err, errlen, "acme: state_dir: %s", e);
        return NULL;
    }
    oe_acme_t *a = calloc(1, sizeof(*a));
    if (!a) {
        snprintf(err, errlen, "acme: out of memory");
        return NULL;
    }
    a->cfg = cfg;
    pthread_mutex_init(&a->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&a->cond, &ca);
    pthread_condattr_destroy(&ca);
    a->backoff_base_ms = cfg->acme.retry_base_ms > 0 ? cfg->acme.retry_base_ms : BACKOFF_BASE_MS;

    if (load_account(a, e, sizeof(e)) != 0) {
        snprintf(err, errlen, "acme: %s", e);
        destroy(a);
        return NULL;
    }
    load_state(a);
    load_cert(a);
    due_time(a);
    pthread_mutex_lock(&metrics_lock);
    metrics.active = 1;
    snprintf(metrics.site, sizeof(metrics.site), "%s", cfg->sites[cfg->default_site >= 0 ? cfg->default_site : 0].name);
    if (a->last_error[0] != '\0' && metrics.last_error[0] == '\0') /* restored from acme-state.json */
        snprintf(metrics.last_error, sizeof(metrics.last_error), "%s", a->last_error);
    pthread_mutex_unlock(&metrics_lock);
    if (pthread_create(&a->thread, NULL, manager_main, a) != 0) {
        snprintf(err, errlen, "acme: cannot start the manager thread");
        destroy(a);
        return NULL;
    }
    a->started = 1;
    return a;
}

void oe_acme_stop(oe_acme_t *a)
{
    if (!a)
        return;
    pthread_mutex_lock(&a->lock);
    __atomic_store_n(&a->stop, 1, __ATOMIC_RELAXED);
    pthread_cond_broadcast(&a->cond);
    pthread_mutex_unlock(&a->lock);
    if (a->started)
        pthread_join(a->thread, NULL);
    destroy(a);
}
