/*
 * cluster — several ott-edge replicas sharing one ACME account, the certificates, the
 * challenges, the issuance locks and the failure backoff through one Redis (hiredis, loaded
 * at run time), when cluster.redis is set. Without it nothing here runs.
 *
 * Owns: the Redis connections (one for commands, shared by the ACME threads under a mutex,
 * and one subscribed to the events channel), its two threads (the subscriber, and the
 * keeper: heartbeat, generation poll, lock extension, expiry of mirrored challenges), the
 * Lua scripts of the locks and of the fenced certificate write, the AES-256-GCM sealing of
 * private keys, and the mirror of other replicas' challenge records into the local
 * challenge table (so the listeners only ever read local memory).
 * Must not touch: event loops and listeners (nothing an event loop calls reaches Redis),
 * files (the ACME module keeps state_dir as the local copy), the live certificates (the ACME
 * module validates what it reads from here and publishes it to the tls module).
 *
 * Every call below that talks to Redis blocks for at most a few seconds (connect and read
 * timeouts) and is made from the ACME threads only.
 */
#ifndef OE_CLUSTER_H
#define OE_CLUSTER_H

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "config/config.h"

#define OE_CLUSTER_POLL_MS 5000 /* the fallback poll (and heartbeat) of every replica */

typedef struct oe_cluster oe_cluster_t;

/* Whether cluster mode, when cluster.redis is set, can run here: hiredis (loaded at run
 * time, not linked) must load. Loads it; returns 0, or -1 with a message naming the key and
 * the package to install (a configuration error: exit 2). Without cluster.redis it does
 * nothing, and hiredis is never mapped. oe_cluster_start() checks it too. */
int oe_cluster_check_config(const oe_config_t *cfg, char *err, size_t errlen);

/* Reads the key file, connects once and checks that the configuration can work: AUTH,
 * SELECT and the user's permissions on the prefix's keys and channel. Returns NULL with a
 * message when it cannot (wrong password, ACL denial, wrong database, bad key file: exit 2);
 * an unreachable Redis is logged and retried in the background (not an error). Then starts
 * the two threads. One per process; oe_cluster_get() returns it. Call it before the listeners
 * accept: it registers this replica (the others then wait for its acknowledgement of their
 * challenges) and mirrors every challenge already published, so a validation that the load
 * balancer sends to a replica just started finds its answer. */
oe_cluster_t *oe_cluster_start(const oe_config_t *cfg, char *err, size_t errlen);
/* Releases held locks, stops the threads, disconnects. NULL is accepted. */
void oe_cluster_stop(oe_cluster_t *c);
/* The running cluster, or NULL (single node). */
oe_cluster_t *oe_cluster_get(void);

/* Whether the command connection to Redis works now. */
int oe_cluster_up(oe_cluster_t *c);
const char *oe_cluster_node(const oe_cluster_t *c);
/* After Redis came back from an outage: how long (ms) to hold off ordering, so that the other
 * replicas have reconnected and registered, and acknowledge the order's challenges (one poll
 * interval and a second). 0 otherwise (also at start: replicas register before they listen). */
uint64_t oe_cluster_settle_ms(oe_cluster_t *c);

/* Called (from the cluster's threads) whenever something another replica wrote may have
 * changed: a certificate's generation, Redis reconnected or found emptied. */
typedef void (*oe_cluster_change_cb)(void *data);
void oe_cluster_on_change(oe_cluster_t *c, oe_cluster_change_cb cb, void *data);
/* A number that changes whenever the site's record may have changed (its generation as last
 * seen by a PUBLISH or the poll, and every reconnection). In memory only. */
uint64_t oe_cluster_sync_token(oe_cluster_t *c, const char *site);

/* ---- the ACME account ---- */
typedef struct oe_cluster_account {
    char *key_pem; /* the shared account key (decrypted); caller frees (cleansed) */
    size_t key_len;
    char url[1024];      /* "" until registered */
    char directory[512]; /* the directory the URL belongs to */
} oe_cluster_account_t;
/* Stores key_pem as the shared account key unless one is stored, and returns the shared one.
 * Returns 0, -1 when Redis fails, -2 when the stored record is unusable (message in err). */
int oe_cluster_account_claim(oe_cluster_t *c, const char *key_pem, size_t key_len, oe_cluster_account_t *out, char *err,
                             size_t errlen);
/* Records the account URL learned at directory (for the account key given). */
int oe_cluster_account_set_url(oe_cluster_t *c, const char *directory, const char *url, char *err, size_t errlen);
void oe_cluster_account_free(oe_cluster_account_t *a);

/* ---- certificates ---- */
typedef struct oe_cluster_cert {
    char *chain; /* PEM chain */
    size_t chain_len;
    char *key; /* PEM private key, decrypted */
    size_t key_len;
    char directory[512]; /* the ACME directory that issued it */
    char node[80];       /* the replica that wrote it */
    char state[32];      /* "issued" or "reseeded" */
    uint64_t fence;      /* the lock token it was written under */
} oe_cluster_cert_t;
/* Metadata written with a certificate (strings may be ""). */
typedef struct oe_cluster_meta {
    const char *directory, *serial, *names, *replaces, *state;
    time_t not_before, not_after, ari_start, ari_end;
} oe_cluster_meta_t;
/* The site's record. Returns 0, 1 when there is none, -1 when Redis fails, -2 when the record
 * is unusable (incomplete, or its key cannot be decrypted: err says why). */
int oe_cluster_cert_get(oe_cluster_t *c, const char *site, oe_cluster_cert_t *out, char *err, size_t errlen);
/* Writes the site's record in one atomic step (a Lua script), only while this replica still
 * holds the site's lock under token and no record written under a newer token exists; bumps
 * the site's generation, clears the shared backoff and publishes the change. Returns 0, 1
 * when refused by the fencing (err says why: the newer certificate stays), -1 on error. */
int oe_cluster_cert_put(oe_cluster_t *c, const char *site, uint64_t token, const char *chain, size_t chain_len,
                        const char *key, size_t key_len, const oe_cluster_meta_t *meta, char *err, size_t errlen);
void oe_cluster_cert_free(oe_cluster_cert_t *cert);

/* ---- issuance locks (one per site): TTL cluster.lock_ttl, fencing token, kept alive by the
 * keeper thread every third of the TTL (compare-and-extend), released by compare-and-delete. */
/* Returns 0 (acquired, *token set), 1 when another replica holds it (holder names it, *left_ms
 * is its remaining TTL), -1 on error. */
int oe_cluster_lock(oe_cluster_t *c, const char *site, uint64_t *token, char *holder, size_t holder_cap,
                    uint64_t *left_ms, char *err, size_t errlen);
/* 1 while the lock taken under token is still ours (its last extension succeeded). */
int oe_cluster_lock_held(oe_cluster_t *c, const char *site, uint64_t token);
void oe_cluster_unlock(oe_cluster_t *c, const char *site, uint64_t token);

/* ---- shared failure backoff, so N replicas do not each retry a failing order ---- */
/* Returns 0, 1 when none is stored, -1 on error. */
int oe_cluster_backoff_get(oe_cluster_t *c, const char *site, unsigned *failures, time_t *next_attempt,
                           char *last_error, size_t cap);
int oe_cluster_backoff_put(oe_cluster_t *c, const char *site, unsigned failures, time_t next_attempt,
                           const char *last_error);

/* ---- challenges: written with a TTL and announced; every other live replica mirrors them
 * into its own challenge table. put waits (a few seconds at most) until every live replica
 * acknowledged, so the CA's validation can land on any of them; a non-zero *stop (read
 * atomically; NULL: none) ends the wait. Returns 0, or -1. */
int oe_cluster_http01_put(oe_cluster_t *c, const char *token, const char *key_authz, const int *stop, char *err,
                          size_t errlen);
void oe_cluster_http01_del(oe_cluster_t *c, const char *token);
int oe_cluster_alpn_put(oe_cluster_t *c, const char *name, X509 *cert, EVP_PKEY *key, const int *stop, char *err,
                        size_t errlen);
void oe_cluster_alpn_del(oe_cluster_t *c, const char *name);

/* ---- what /readyz and the status show (process-wide, from memory, never Redis) ---- */
typedef struct oe_cluster_info {
    int enabled;       /* cluster.redis is set and the module runs */
    int up;            /* Redis answers */
    time_t down_since; /* when it stopped answering (0 while up) */
    time_t last_sync;  /* last successful poll */
    unsigned locks_held;
    uint64_t received; /* certificates taken from other replicas' records */
    char node[80];
    char last_error[256];
} oe_cluster_info_t;
void oe_cluster_info(oe_cluster_info_t *out);
/* The ACME module counts a certificate taken from another replica's record. */
void oe_cluster_count_received(void);

#endif
