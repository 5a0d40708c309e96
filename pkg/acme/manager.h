/*
 * acme/manager.h — shared by manager.c and job.c only (nothing outside pkg/acme includes it).
 *
 * The manager owns what all certificates share: the ACME account (key and URL, one per
 * state_dir), the stop flag every job sleeps on, and every job's status (what
 * oe_acme_status() hands the admin module for the status page and /metrics). A job
 * (job.c) owns one certificate: one site's names, its files under state_dir, its renewal
 * schedule and its own backoff, on its own thread, so a site whose validation fails never
 * delays another site's orders or renewals.
 */
#ifndef OE_ACME_MANAGER_H
#define OE_ACME_MANAGER_H

#include <openssl/evp.h>
#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include "acme/acme.h"
#include "acme/acme_parse.h"
#include "cluster/cluster.h"
#include "config/config.h"

typedef struct oe_acme_job oe_acme_job_t;

struct oe_acme {
    const oe_config_t *cfg;
    pthread_mutex_t lock; /* guards stop (with cond) */
    pthread_cond_t cond;
    int stop;
    unsigned wake; /* bumped (under lock) when the cluster saw a change: sleeping jobs look again */

    oe_cluster_t *cluster; /* cluster.redis: the state shared with the other replicas; NULL: one node */
    int account_shared;    /* the account key is the one in Redis (cluster mode) */
    EVP_PKEY *retired[8];  /* account keys replaced by the shared one (freed at stop: clients borrowed them) */
    size_t nretired;

    /* the account, shared by every job */
    EVP_PKEY *account_key;        /* replaced only by oe_acme_account_share(), under account_lock */
    pthread_mutex_t account_lock; /* guards kid and writing account.json */
    char kid[OE_ACME_URL_MAX];
    char prev_directory[512]; /* the directory account.json was written for ("" when unknown) */

    oe_acme_job_t **jobs;
    size_t njobs;
};

/* Each job's status (oe_acme_status_t, acme.h) is kept process-wide, never freed while the
 * process runs, so the admin thread never reads a stopped manager. A job writes its own slot
 * only, with oe_acme_status_lock held. */
extern pthread_mutex_t oe_acme_status_lock;
/* The status slot of job i (call with oe_acme_status_lock held). */
oe_acme_status_t *oe_acme_status_slot(size_t i);

/* manager.c, for the jobs */
int oe_acme_stopping(oe_acme_t *m);
int oe_acme_sleep(oe_acme_t *m, uint64_t ms); /* non-zero when stopping */
void oe_acme_account_kid(oe_acme_t *m, char *kid, size_t cap);
void oe_acme_account_learned(oe_acme_t *m, const char *kid); /* stores it in account.json */
/* Cluster mode: makes the account the one shared in Redis (stores ours there when there is
 * none; adopts the stored one, with its URL, otherwise). Returns 0, or -1 with err. */
int oe_acme_account_share(oe_acme_t *m, char *err, size_t errlen);
/* The account key now (a reference the manager keeps until stop) and URL. */
EVP_PKEY *oe_acme_account_current(oe_acme_t *m, char *kid, size_t cap);

/* job.c */
/* A job for site i of m->cfg: checks its directory, loads (and serves) its stored
 * certificate, or adopts the one-site layout's certificate when it covers the site's names. */
oe_acme_job_t *oe_acme_job_new(oe_acme_t *m, size_t site, size_t status_slot, char *err, size_t errlen);
int oe_acme_job_start(oe_acme_job_t *j, char *err, size_t errlen);
void oe_acme_job_join(oe_acme_job_t *j); /* after the stop flag is set */
void oe_acme_job_free(oe_acme_job_t *j);

#endif
