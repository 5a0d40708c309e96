/*
 * manager — ACME for every site that needs it: the shared account, one job per certificate
 * (job.c), and every job's status for oe_acme_status().
 *
 * The schedule is one job per site whose certificate comes from ACME (no tls.cert_file),
 * each on its own thread with its own renewal time and backoff: an order that hangs or a
 * validation that keeps failing for one site never delays another's. The jobs share one
 * ACME account (account.key, 0600, and account.json {"directory","url"} in state_dir): the
 * first job that registers (or finds) it records its URL, and every job uses it for its next
 * order. Stopping sets one flag that every job's sleep and every ACME exchange watch.
 */
#define _GNU_SOURCE
#include "acme/acme.h"

#include <errno.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acme/curl_api.h"
#include "acme/jws.h"
#include "acme/manager.h"
#include "log/log.h"
#include "store/store.h"

#define FILE_MAX (1u << 20)

/* ---- status (process-wide) ------------------------------------------------------- */

pthread_mutex_t oe_acme_status_lock = PTHREAD_MUTEX_INITIALIZER;
static oe_acme_status_t *job_status; /* never freed: the admin thread may read it at any time */
static size_t job_status_cap;
static size_t job_status_count; /* the slots of the jobs set up so far */

oe_acme_status_t *oe_acme_status_slot(size_t i)
{
    return &job_status[i];
}

size_t oe_acme_status(oe_acme_status_t *out, size_t max)
{
    pthread_mutex_lock(&oe_acme_status_lock);
    size_t n = job_status_count < max ? job_status_count : max;
    if (n > 0)
        memcpy(out, job_status, n * sizeof(*out));
    pthread_mutex_unlock(&oe_acme_status_lock);
    return n;
}

/* Room for n jobs' status (kept from an earlier start when it is large enough); no slot is
 * reported until its job is set up (status_count). */
static int status_room(size_t n)
{
    pthread_mutex_lock(&oe_acme_status_lock);
    int ok = 1;
    if (n > job_status_cap) {
        oe_acme_status_t *ns = calloc(n, sizeof(*ns));
        if (ns != NULL) {
            free(job_status);
            job_status = ns;
            job_status_cap = n;
        }
        ok = ns != NULL;
    }
    job_status_count = 0;
    pthread_mutex_unlock(&oe_acme_status_lock);
    return ok ? 0 : -1;
}

static void status_count(size_t n)
{
    pthread_mutex_lock(&oe_acme_status_lock);
    job_status_count = n;
    pthread_mutex_unlock(&oe_acme_status_lock);
}

/* ---- sleeping and stopping ------------------------------------------------------- */

int oe_acme_stopping(oe_acme_t *m)
{
    return __atomic_load_n(&m->stop, __ATOMIC_RELAXED);
}

int oe_acme_sleep(oe_acme_t *m, uint64_t ms)
{
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += (time_t)(ms / 1000);
    deadline.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&m->lock);
    unsigned wake = m->wake;
    while (!m->stop && wake == m->wake) {
        if (pthread_cond_timedwait(&m->cond, &m->lock, &deadline) == ETIMEDOUT)
            break;
    }
    int stop = m->stop;
    pthread_mutex_unlock(&m->lock);
    return stop;
}

/* ---- the account ----------------------------------------------------------------- */

static int load_account(oe_acme_t *m, char *err, size_t errlen)
{
    const char *dir = m->cfg->state_dir;
    char *pem = NULL, *txt = NULL;
    size_t len = 0;
    int rc = oe_store_read(dir, "account.key", FILE_MAX, &pem, &len, err, errlen);
    if (rc < 0)
        return -1;
    if (rc == 0) {
        m->account_key = oe_acme_key_from_pem(pem, len);
        OPENSSL_cleanse(pem, len);
        free(pem);
        json_t *jwk = m->account_key ? oe_acme_jwk(m->account_key) : NULL;
        if (!jwk) {
            oe_log(OE_LOG_WARN, "acme_account_key_unusable", "file", "account.key", "action",
                   "a new account key is generated and a new account registered", NULL);
            EVP_PKEY_free(m->account_key);
            m->account_key = NULL;
        }
        json_decref(jwk);
    }
    if (!m->account_key) {
        m->account_key = oe_acme_key_new(OE_KEY_EC256);
        size_t klen = 0;
        char *kpem = m->account_key ? oe_acme_key_pem(m->account_key, &klen) : NULL;
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
        if (d)
            snprintf(m->prev_directory, sizeof(m->prev_directory), "%s", d);
        if (u && d && strcmp(d, m->cfg->acme.directory) == 0)
            snprintf(m->kid, sizeof(m->kid), "%s", u);
        else if (d && strcmp(d, m->cfg->acme.directory) != 0)
            /* e.g. moved from letsencrypt-staging to production: the certificates are replaced too */
            oe_log(OE_LOG_INFO, "acme_directory_changed", "was", d, "now", m->cfg->acme.directory, "action",
                   "a new account is registered", NULL);
        json_decref(j);
        free(txt);
    }
    return 0;
}

/* The cluster saw something change (another replica's certificate, Redis back): every job
 * looks again at once instead of at its next wake-up. */
static void on_cluster_change(void *data)
{
    oe_acme_t *m = data;
    pthread_mutex_lock(&m->lock);
    m->wake++;
    pthread_cond_broadcast(&m->cond);
    pthread_mutex_unlock(&m->lock);
}

int oe_acme_account_share(oe_acme_t *m, char *err, size_t errlen)
{
    if (!m->cluster)
        return 0;
    size_t klen = 0;
    pthread_mutex_lock(&m->account_lock);
    char *pem = oe_acme_key_pem(m->account_key, &klen);
    pthread_mutex_unlock(&m->account_lock);
    if (!pem) {
        snprintf(err, errlen, "cannot encode the account key");
        return -1;
    }
    oe_cluster_account_t a;
    int rc = oe_cluster_account_claim(m->cluster, pem, klen, &a, err, errlen);
    int same = rc == 0 && a.key_len == klen && memcmp(a.key_pem, pem, klen) == 0;
    OPENSSL_cleanse(pem, klen);
    free(pem);
    if (rc != 0) {
        if (rc == -2)
            oe_log(OE_LOG_ERROR, "cluster_account_rejected", "error", err, "action",
                   "the local account is used; no order until the shared one is readable", NULL);
        return -1;
    }
    EVP_PKEY *key = same ? NULL : oe_acme_key_from_pem(a.key_pem, a.key_len);
    json_t *jwk = key ? oe_acme_jwk(key) : NULL;
    if (!same && !jwk) {
        EVP_PKEY_free(key);
        oe_cluster_account_free(&a);
        snprintf(err, errlen, "the shared ACME account key in Redis is not a usable EC P-256 key");
        oe_log(OE_LOG_ERROR, "cluster_account_rejected", "error", err, NULL);
        return -1;
    }
    json_decref(jwk);
    char e[256];
    pthread_mutex_lock(&m->account_lock);
    if (!same) {
        if (m->nretired < sizeof(m->retired) / sizeof(m->retired[0])) {
            m->retired[m->nretired++] = m->account_key;
        } else {
            EVP_PKEY_free(m->retired[0]); /* the oldest: no client holds it any more */
            for (size_t i = 1; i < m->nretired; i++)
                m->retired[i - 1] = m->retired[i];
            m->retired[m->nretired - 1] = m->account_key;
        }
        m->account_key = key;
        /* the local copy follows the shared account */
        if (oe_store_write(m->cfg->state_dir, "account.key", a.key_pem, a.key_len, 0600, e, sizeof(e)) != 0)
            oe_log(OE_LOG_WARN, "acme_account_write_failed", "error", e, NULL);
        m->kid[0] = '\0';
    }
    if (a.url[0] && strcmp(a.directory, m->cfg->acme.directory) == 0)
        snprintf(m->kid, sizeof(m->kid), "%s", a.url);
    else if (!same)
        m->kid[0] = '\0';
    m->account_shared = 1;
    pthread_mutex_unlock(&m->account_lock);
    oe_log(OE_LOG_INFO, "cluster_account", "source", same ? "this replica's key (now shared)" : "the shared key", "url",
           a.url[0] ? a.url : "(not registered yet)", NULL);
    /* a URL we know and Redis does not (registered while Redis was away) */
    if (same && !a.url[0] && m->kid[0])
        oe_cluster_account_set_url(m->cluster, m->cfg->acme.directory, m->kid, e, sizeof(e));
    oe_cluster_account_free(&a);
    return 0;
}

EVP_PKEY *oe_acme_account_current(oe_acme_t *m, char *kid, size_t cap)
{
    pthread_mutex_lock(&m->account_lock);
    EVP_PKEY *k = m->account_key;
    snprintf(kid, cap, "%s", m->kid);
    pthread_mutex_unlock(&m->account_lock);
    return k;
}

void oe_acme_account_kid(oe_acme_t *m, char *kid, size_t cap)
{
    pthread_mutex_lock(&m->account_lock);
    snprintf(kid, cap, "%s", m->kid);
    pthread_mutex_unlock(&m->account_lock);
}

void oe_acme_account_learned(oe_acme_t *m, const char *kid)
{
    char err[256];
    pthread_mutex_lock(&m->account_lock);
    snprintf(m->kid, sizeof(m->kid), "%s", kid);
    json_t *j = json_pack("{s:s, s:s}", "directory", m->cfg->acme.directory, "url", m->kid);
    char *txt = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
    json_decref(j);
    if (txt && oe_store_write(m->cfg->state_dir, "account.json", txt, strlen(txt), 0600, err, sizeof(err)) != 0)
        oe_log(OE_LOG_ERROR, "acme_account_write_failed", "error", err, NULL);
    pthread_mutex_unlock(&m->account_lock);
    free(txt);
    if (m->cluster && oe_cluster_account_set_url(m->cluster, m->cfg->acme.directory, kid, err, sizeof(err)) != 0)
        oe_log(OE_LOG_WARN, "cluster_account_write_failed", "error", err, "action", "written when Redis is back", NULL);
}

/* ---- start / stop ---------------------------------------------------------------- */

static void destroy(oe_acme_t *m)
{
    if (m->cluster)
        oe_cluster_on_change(m->cluster, NULL, NULL);
    for (size_t i = 0; i < m->njobs; i++)
        oe_acme_job_free(m->jobs[i]);
    free(m->jobs);
    EVP_PKEY_free(m->account_key);
    for (size_t i = 0; i < m->nretired; i++)
        EVP_PKEY_free(m->retired[i]);
    pthread_cond_destroy(&m->cond);
    pthread_mutex_destroy(&m->lock);
    pthread_mutex_destroy(&m->account_lock);
    free(m);
}

oe_acme_t *oe_acme_start(const oe_config_t *cfg, char *err, size_t errlen)
{
    size_t need = 0;
    for (size_t i = 0; i < cfg->sites_count; i++)
        need += oe_config_site_acme(cfg, i) != 0;
    if (need == 0) {
        snprintf(err, errlen, "acme: no site needs a certificate from ACME (set domains)");
        return NULL;
    }
    if (!cfg->state_dir || !*cfg->state_dir) {
        snprintf(err, errlen, "acme: state_dir is not set");
        return NULL;
    }
    char e[768];
    /* libcurl is loaded (and initialised) here, not linked: a missing libcurl4 is a clear
     * start-up error, never a crash in a job thread later */
    if (oe_curl_api(e, sizeof(e)) == NULL) {
        snprintf(err, errlen, "acme: %s", e);
        return NULL;
    }
    if (oe_store_mkdirs(cfg->state_dir, e, sizeof(e)) != 0 ||
        oe_store_check_writable(cfg->state_dir, e, sizeof(e)) != 0) {
        snprintf(err, errlen, "acme: state_dir: %s", e);
        return NULL;
    }
    oe_acme_t *m = calloc(1, sizeof(*m));
    if (!m || !(m->jobs = calloc(need, sizeof(oe_acme_job_t *))) || status_room(need) != 0) {
        free(m ? m->jobs : NULL);
        free(m);
        snprintf(err, errlen, "acme: out of memory");
        return NULL;
    }
    m->cfg = cfg;
    pthread_mutex_init(&m->lock, NULL);
    pthread_mutex_init(&m->account_lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&m->cond, &ca);
    pthread_condattr_destroy(&ca);

    if (load_account(m, e, sizeof(e)) != 0) {
        snprintf(err, errlen, "acme: %s", e);
        destroy(m);
        return NULL;
    }
    /* cluster mode: one account for every replica (when Redis is away, before the first order) */
    if ((m->cluster = oe_cluster_get()) != NULL) {
        if (oe_cluster_up(m->cluster))
            oe_acme_account_share(m, e, sizeof(e));
        oe_cluster_on_change(m->cluster, on_cluster_change, m);
    }
    /* every stored certificate is served before any thread starts */
    for (size_t i = 0; i < cfg->sites_count; i++) {
        if (!oe_config_site_acme(cfg, i))
            continue;
        if ((m->jobs[m->njobs] = oe_acme_job_new(m, i, m->njobs, err, errlen)) == NULL) {
            destroy(m);
            return NULL;
        }
        m->njobs++;
        status_count(m->njobs);
    }
    for (size_t i = 0; i < m->njobs; i++) {
        if (oe_acme_job_start(m->jobs[i], err, errlen) != 0) {
            oe_acme_stop(m);
            return NULL;
        }
    }
    return m;
}

void oe_acme_stop(oe_acme_t *m)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->lock);
    __atomic_store_n(&m->stop, 1, __ATOMIC_RELAXED);
    pthread_cond_broadcast(&m->cond);
    pthread_mutex_unlock(&m->lock);
    for (size_t i = 0; i < m->njobs; i++)
        oe_acme_job_join(m->jobs[i]);
    destroy(m);
}
