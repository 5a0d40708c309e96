/*
 * cluster — see cluster.h.
 *
 * Keys, all under cluster.key_prefix P (default "ott-edge:"):
 *   P account            hash: key (sealed), url, directory, node
 *   P cert:<site>        hash: chain, key (sealed), directory, node, state, fence, updated,
 *                        not_before, not_after, serial, names, replaces, ari_start, ari_end
 *   P lock:<site>        "<node> <token>", PX cluster.lock_ttl
 *   P fence:<site>       counter: the lock tokens
 *   P state:<site>       hash: failures, next_attempt, last_error, node (shared backoff)
 *   P gen                hash: <site> -> generation, !chal -> challenge generation (no site name has "!")
 *   P nodes              hash: <node> -> last heartbeat (Unix time)
 *   P chal:<kind>:<id>   "<node>\n<payload>", EX 600 (kind http01: id token, payload key
 *                        authorization; kind alpn: id SNI name, payload cert + key PEM)
 *   P ack:<kind>:<id>    set of the replicas that mirrored it, EX 60
 *   P probe:<node>       written and deleted at start (permission check)
 *   channel P events     "cert <site> <gen>", "chal <node> <kind> <id>", "unchal <node> <kind> <id>"
 *
 * Sealed values: "oe-gcm1:" base64(nonce 12 | ciphertext | tag 16), AES-256-GCM with the
 * Redis key name and field as associated data (a value moved to another key fails too).
 */
#define _GNU_SOURCE
#include "cluster/cluster.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "challenge/challenge.h"
#include "log/log.h"
#include "metrics/metrics.h"
#include "util/dynlib.h"

/* hiredis is not linked (~50 KiB resident that a single node never needs): it is loaded
 * (util/dynlib) when cluster.redis is configured, and the calls below go through a table */
#define HIREDIS_SYMS(X)                                                                                                \
    X(redisConnectWithTimeout)                                                                                         \
    X(redisSetTimeout)                                                                                                 \
    X(redisEnableKeepAlive)                                                                                            \
    X(redisCommand)                                                                                                    \
    X(redisCommandArgv)                                                                                                \
    X(redisBufferRead)                                                                                                 \
    X(redisGetReplyFromReader)                                                                                         \
    X(freeReplyObject)                                                                                                 \
    X(redisFree)

OE_DYNLIB_DEFINE(hiredis_api_t, hiredis, hiredis_lib, HIREDIS_SYMS, "libhiredis.so.0.14", "libhiredis0.14");

#define redisConnectWithTimeout (hiredis.redisConnectWithTimeout)
#define redisSetTimeout         (hiredis.redisSetTimeout)
#define redisEnableKeepAlive    (hiredis.redisEnableKeepAlive)
#define redisCommand            (hiredis.redisCommand)
#define redisCommandArgv        (hiredis.redisCommandArgv)
#define redisBufferRead         (hiredis.redisBufferRead)
#define redisGetReplyFromReader (hiredis.redisGetReplyFromReader)
#define freeReplyObject         (hiredis.freeReplyObject)
#define redisFree               (hiredis.redisFree)

int oe_cluster_check_config(const oe_config_t *cfg, char *err, size_t errlen)
{
    char why[400];
    if (!cfg->cluster.redis || oe_dynlib_load(&hiredis_lib, why, sizeof(why)) == 0)
        return 0;
    snprintf(err, errlen, "config: cluster.redis: cluster mode needs hiredis: %s", why);
    return -1;
}

#define CONNECT_TIMEOUT_MS 2000
#define IO_TIMEOUT_MS      3000
#define RECONNECT_MS       1000
#define CHAL_TTL_S         600
#define ACK_WAIT_MS        (OE_CLUSTER_POLL_MS + 2000) /* long enough for a replica that only polls */
#define MAX_GENS           128
#define MAX_LOCKS          64
#define MAX_MIRRORS        256
#define VALUE_MAX          (1u << 20)
#define SEAL_TAG           "oe-gcm1:"

enum { K_HTTP01 = 0, K_ALPN = 1 };
static const char *const kind_names[] = {"http01", "alpn"};

struct gen_entry {
    char site[OE_CONFIG_SITE_NAME_MAX + 8];
    uint64_t gen;
};

struct held_lock {
    char site[OE_CONFIG_SITE_NAME_MAX + 1];
    uint64_t token;
    char value[160];
    int in_use, valid;
    uint64_t last_ok_ms; /* monotonic: last successful acquisition or extension */
};

struct mirror {
    int kind;
    char id[OE_CHALLENGE_TOKEN_MAX + 1];
    time_t expires;
};

struct oe_cluster {
    const oe_config_t *cfg;
    oe_redis_url_t url;
    char prefix[80];
    char node[80];
    char channel[128];
    unsigned char key[32];
    int have_key;
    uint64_t lock_ttl_ms;

    pthread_mutex_t mu; /* the command connection */
    redisContext *rc;
    uint64_t retry_at_ms;     /* no reconnection attempt before (monotonic) */
    uint64_t settle_until_ms; /* after an outage: no order before (monotonic; guarded by info_lock) */
    unsigned refused_logged;

    pthread_mutex_t st; /* guards everything below */
    pthread_cond_t cond;
    int stop;
    int force_poll;
    struct gen_entry gens[MAX_GENS];
    size_t ngens;
    uint64_t epoch;
    struct held_lock locks[MAX_LOCKS];
    struct mirror mirrors[MAX_MIRRORS];
    oe_cluster_change_cb cb;
    void *cb_data;

    pthread_t keeper, sub;
    int keeper_started, sub_started;
};

/* ---- process-wide state (status, metrics) ------------------------------------------- */

static pthread_mutex_t info_lock = PTHREAD_MUTEX_INITIALIZER;
static oe_cluster_info_t info;
static uint64_t lock_extend_failures;
static oe_cluster_t *the_cluster;

void oe_cluster_info(oe_cluster_info_t *out)
{
    pthread_mutex_lock(&info_lock);
    *out = info;
    pthread_mutex_unlock(&info_lock);
}

void oe_cluster_count_received(void)
{
    pthread_mutex_lock(&info_lock);
    info.received++;
    pthread_mutex_unlock(&info_lock);
}

oe_cluster_t *oe_cluster_get(void)
{
    return __atomic_load_n(&the_cluster, __ATOMIC_ACQUIRE);
}

const char *oe_cluster_node(const oe_cluster_t *c)
{
    return c->node;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void metrics_section(void *data, oe_metrics_out_t *o)
{
    (void)data;
    oe_cluster_info_t i;
    oe_cluster_info(&i);
    if (!i.enabled)
        return;
    pthread_mutex_lock(&info_lock);
    uint64_t ext = lock_extend_failures;
    pthread_mutex_unlock(&info_lock);
    time_t now = time(NULL);
    oe_metrics_gauge(o, "ott_edge_cluster_redis_up", "1 while Redis answers this replica.", i.up);
    oe_metrics_gauge(o, "ott_edge_cluster_locks_held", "Issuance locks this replica holds now.", i.locks_held);
    oe_metrics_gauge(o, "ott_edge_cluster_last_sync_age_seconds",
                     "Seconds since this replica last polled Redis successfully (-1: never).",
                     i.last_sync ? (double)(now - i.last_sync) : -1);
    oe_metrics_counter(o, "ott_edge_cluster_certificates_received_total",
                       "Certificates taken from records other replicas wrote.", (double)i.received);
    oe_metrics_counter(o, "ott_edge_cluster_lock_extend_failures_total",
                       "Lock extensions refused because the lock had expired and changed hands.", (double)ext);
}

/* Up/down transitions: logged once each, and a change callback when Redis is back. */
static void set_up(oe_cluster_t *c, int up, const char *why)
{
    pthread_mutex_lock(&info_lock);
    int was = info.up;
    info.up = up;
    if (!up) {
        if (was || !info.down_since)
            info.down_since = time(NULL);
        snprintf(info.last_error, sizeof(info.last_error), "%s", why ? why : "");
    } else {
        info.down_since = 0;
        if (!was) /* the other replicas reconnect (and register) within a poll: let them */
            c->settle_until_ms = now_ms() + OE_CLUSTER_POLL_MS + 1000;
    }
    pthread_mutex_unlock(&info_lock);
    if (was && !up) {
        oe_log(OE_LOG_WARN, "cluster_redis_down", "error", why ? why : "", "action",
               "serving the local copies in state_dir; no order while the lock cannot be taken", NULL);
    } else if (!was && up) {
        oe_log(OE_LOG_INFO, "cluster_redis_up", "node", c->node, NULL);
        pthread_mutex_lock(&c->st);
        c->epoch++;
        c->force_poll = 1;
        oe_cluster_change_cb cb = c->cb;
        void *d = c->cb_data;
        pthread_cond_broadcast(&c->cond);
        pthread_mutex_unlock(&c->st);
        if (cb)
            cb(d);
    }
}

uint64_t oe_cluster_settle_ms(oe_cluster_t *c)
{
    pthread_mutex_lock(&info_lock);
    uint64_t until = c->settle_until_ms, now = now_ms();
    pthread_mutex_unlock(&info_lock);
    return until > now ? until - now : 0;
}

int oe_cluster_up(oe_cluster_t *c)
{
    (void)c;
    pthread_mutex_lock(&info_lock);
    int up = info.up;
    pthread_mutex_unlock(&info_lock);
    return up;
}

/* ---- connections ----------------------------------------------------------------------- */

static int is_config_error(const char *s)
{
    return strncmp(s, "WRONGPASS", 9) == 0 || strncmp(s, "NOAUTH", 6) == 0 || strncmp(s, "NOPERM", 6) == 0 ||
           strstr(s, "invalid password") != NULL || strstr(s, "invalid username-password") != NULL ||
           strstr(s, "DB index is out of range") != NULL || strstr(s, "AUTH <password> called without") != NULL ||
           strstr(s, "without any password configured") != NULL;
}

/* Connects, logs in and selects the database. *fatal is set when Redis answered but refused
 * the configuration (wrong password, unknown user, wrong database). */
static redisContext *connect_redis(oe_cluster_t *c, const char *role, int *fatal, char *err, size_t errlen)
{
    *fatal = 0;
    struct timeval tv = {CONNECT_TIMEOUT_MS / 1000, (CONNECT_TIMEOUT_MS % 1000) * 1000};
    redisContext *r = redisConnectWithTimeout(c->url.host, c->url.port, tv);
    if (!r || r->err) {
        snprintf(err, errlen, "cannot connect to Redis at %s:%u: %s", c->url.host, (unsigned)c->url.port,
                 r ? r->errstr : "out of memory");
        redisFree(r);
        return NULL;
    }
    struct timeval io = {IO_TIMEOUT_MS / 1000, (IO_TIMEOUT_MS % 1000) * 1000};
    redisSetTimeout(r, io);
    redisEnableKeepAlive(r);
    redisReply *rep = NULL;
    if (c->url.password[0]) {
        rep = c->url.user[0] ? redisCommand(r, "AUTH %s %s", c->url.user, c->url.password)
                             : redisCommand(r, "AUTH %s", c->url.password);
        if (!rep || rep->type == REDIS_REPLY_ERROR) {
            if (rep) {
                *fatal = 1;
                snprintf(err, errlen, "Redis refused the login%s%s (cluster.redis): %s",
                         c->url.user[0] ? " of user " : "", c->url.user, rep->str);
            } else {
                snprintf(err, errlen, "Redis at %s:%u: %s", c->url.host, (unsigned)c->url.port, r->errstr);
            }
            goto fail;
        }
        freeReplyObject(rep);
    }
    if (c->url.db != 0) {
        rep = redisCommand(r, "SELECT %d", c->url.db);
        if (!rep || rep->type == REDIS_REPLY_ERROR) {
            if (rep) {
                *fatal = 1;
                snprintf(err, errlen, "Redis refused database %d (cluster.redis): %s", c->url.db, rep->str);
            } else {
                snprintf(err, errlen, "Redis at %s:%u: %s", c->url.host, (unsigned)c->url.port, r->errstr);
            }
            goto fail;
        }
        freeReplyObject(rep);
    }
    rep = redisCommand(r, "CLIENT SETNAME %s", role); /* for CLIENT LIST; an ACL may forbid it */
    if (!rep) {
        snprintf(err, errlen, "Redis at %s:%u: %s", c->url.host, (unsigned)c->url.port, r->errstr);
        goto fail_noreply;
    }
    freeReplyObject(rep);
    return r;
fail:
    freeReplyObject(rep);
fail_noreply:
    redisFree(r);
    return NULL;
}

/* The command connection, (re)connected when needed; call with c->mu held. */
static redisContext *cmd_conn(oe_cluster_t *c, char *err, size_t errlen)
{
    if (c->rc)
        return c->rc;
    uint64_t now = now_ms();
    if (now < c->retry_at_ms) {
        oe_cluster_info_t i;
        oe_cluster_info(&i);
        snprintf(err, errlen, "Redis unreachable: %s", i.last_error);
        return NULL;
    }
    int fatal = 0;
    char role[128];
    snprintf(role, sizeof(role), "ott-edge-%s-cmd", c->node);
    c->rc = connect_redis(c, role, &fatal, err, errlen);
    if (!c->rc) {
        c->retry_at_ms = now + RECONNECT_MS;
        set_up(c, 0, err);
        if (fatal && !c->refused_logged++) /* once until it works again */
            oe_log(OE_LOG_ERROR, "cluster_redis_refused", "error", err, "action", "retried every second", NULL);
        return NULL;
    }
    c->refused_logged = 0;
    return c->rc;
}

/* One command on the command connection (c->mu held). Returns the reply, or NULL with err
 * set (an I/O error drops the connection; an error reply is reported as such). */
static redisReply *run_argv(oe_cluster_t *c, int argc, const char **argv, const size_t *lens, char *err, size_t errlen)
{
    redisContext *r = cmd_conn(c, err, errlen);
    if (!r)
        return NULL;
    redisReply *rep = redisCommandArgv(r, argc, argv, lens);
    if (!rep) {
        snprintf(err, errlen, "Redis: %s", r->errstr[0] ? r->errstr : "connection lost");
        redisFree(r);
        c->rc = NULL;
        c->retry_at_ms = now_ms() + RECONNECT_MS / 4;
        set_up(c, 0, err);
        return NULL;
    }
    set_up(c, 1, NULL);
    if (rep->type == REDIS_REPLY_ERROR) {
        snprintf(err, errlen, "Redis: %s", rep->str);
        freeReplyObject(rep);
        return NULL;
    }
    return rep;
}

/* A command of NUL-terminated words (at most 32). */
static redisReply *run(oe_cluster_t *c, char *err, size_t errlen, int argc, ...)
{
    const char *argv[32];
    size_t lens[32];
    va_list ap;
    va_start(ap, argc);
    for (int i = 0; i < argc && i < 32; i++) {
        argv[i] = va_arg(ap, const char *);
        lens[i] = strlen(argv[i]);
    }
    va_end(ap);
    pthread_mutex_lock(&c->mu);
    redisReply *rep = run_argv(c, argc, argv, lens, err, errlen);
    pthread_mutex_unlock(&c->mu);
    return rep;
}

static uint64_t reply_u64(const redisReply *r)
{
    if (!r)
        return 0;
    if (r->type == REDIS_REPLY_INTEGER)
        return r->integer > 0 ? (uint64_t)r->integer : 0;
    if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS)
        return strtoull(r->str, NULL, 10);
    return 0;
}

static void keyname(const oe_cluster_t *c, char *out, size_t cap, const char *what, const char *id)
{
    snprintf(out, cap, "%s%s%s%s", c->prefix, what, id ? ":" : "", id ? id : "");
}

/* ---- sealing (AES-256-GCM) -------------------------------------------------------------- */

static char *b64(const unsigned char *d, size_t n)
{
    char *o = malloc(4 * ((n + 2) / 3) + 1);
    if (o)
        EVP_EncodeBlock((unsigned char *)o, d, (int)n);
    return o;
}

static int unb64(const char *s, size_t n, unsigned char **out, size_t *outlen)
{
    if (n == 0 || n % 4 != 0)
        return -1;
    unsigned char *o = malloc(n / 4 * 3 + 1);
    if (!o)
        return -1;
    int l = EVP_DecodeBlock(o, (const unsigned char *)s, (int)n);
    if (l < 0) {
        free(o);
        return -1;
    }
    size_t pad = (s[n - 1] == '=') + (s[n - 2] == '=');
    *out = o;
    *outlen = (size_t)l - pad;
    return 0;
}

/* The value to store for a private key: sealed when a key is configured, else as is. */
static char *seal(const oe_cluster_t *c, const char *aad, const char *pt, size_t len, size_t *outlen)
{
    if (!c->have_key) {
        char *o = malloc(len + 1);
        if (o) {
            memcpy(o, pt, len);
            o[len] = '\0';
            *outlen = len;
        }
        return o;
    }
    unsigned char *buf = malloc(12 + len + 16);
    EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
    char *res = NULL;
    int n = 0, f = 0;
    if (!buf || !x || RAND_bytes(buf, 12) != 1 || EVP_EncryptInit_ex(x, EVP_aes_256_gcm(), NULL, c->key, buf) != 1 ||
        EVP_EncryptUpdate(x, NULL, &n, (const unsigned char *)aad, (int)strlen(aad)) != 1 ||
        EVP_EncryptUpdate(x, buf + 12, &n, (const unsigned char *)pt, (int)len) != 1 ||
        EVP_EncryptFinal_ex(x, buf + 12 + n, &f) != 1 ||
        EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_GET_TAG, 16, buf + 12 + n + f) != 1)
        goto out;
    char *enc = b64(buf, 12 + (size_t)n + (size_t)f + 16);
    if (enc && asprintf(&res, "%s%s", SEAL_TAG, enc) < 0)
        res = NULL;
    free(enc);
    if (res)
        *outlen = strlen(res);
out:
    EVP_CIPHER_CTX_free(x);
    if (buf)
        OPENSSL_cleanse(buf, 12 + len + 16);
    free(buf);
    return res;
}

/* Opens a stored private key value. Returns 0 (out malloc'ed, NUL-terminated) or -1 with err. */
static int unseal(const oe_cluster_t *c, const char *aad, const char *v, size_t vlen, char **out, size_t *outlen,
                  char *err, size_t errlen)
{
    size_t tl = strlen(SEAL_TAG);
    if (vlen < tl || memcmp(v, SEAL_TAG, tl) != 0) {
        if (c->have_key) {
            snprintf(err, errlen,
                     "the private key in %s is stored in clear although cluster.encryption_key_file is set (written by "
                     "a replica without the key?): refused",
                     aad);
            return -1;
        }
        *out = malloc(vlen + 1);
        if (!*out) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        memcpy(*out, v, vlen);
        (*out)[vlen] = '\0';
        *outlen = vlen;
        return 0;
    }
    if (!c->have_key) {
        snprintf(
            err, errlen,
            "the private key in %s is encrypted: set cluster.encryption_key_file to the key the other replicas use",
            aad);
        return -1;
    }
    unsigned char *raw = NULL;
    size_t rl = 0;
    if (unb64(v + tl, vlen - tl, &raw, &rl) != 0 || rl < 12 + 16) {
        free(raw);
        snprintf(err, errlen, "the encrypted private key in %s is truncated or corrupt", aad);
        return -1;
    }
    size_t ctl = rl - 12 - 16;
    char *pt = malloc(ctl + 1);
    EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
    int n = 0, f = 0,
        ok = pt && x && EVP_DecryptInit_ex(x, EVP_aes_256_gcm(), NULL, c->key, raw) == 1 &&
             EVP_DecryptUpdate(x, NULL, &n, (const unsigned char *)aad, (int)strlen(aad)) == 1 &&
             EVP_DecryptUpdate(x, (unsigned char *)pt, &n, raw + 12, (int)ctl) == 1 &&
             EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_SET_TAG, 16, raw + 12 + ctl) == 1 &&
             EVP_DecryptFinal_ex(x, (unsigned char *)pt + n, &f) == 1;
    EVP_CIPHER_CTX_free(x);
    OPENSSL_cleanse(raw, rl);
    free(raw);
    if (!ok) {
        if (pt)
            OPENSSL_cleanse(pt, ctl + 1);
        free(pt);
        snprintf(err, errlen,
                 "the private key in %s cannot be decrypted with cluster.encryption_key_file (encrypted under another "
                 "key, or altered): refused",
                 aad);
        return -1;
    }
    size_t ptl = (size_t)n + (size_t)f;
    pt[ptl] = '\0';
    *out = pt;
    *outlen = ptl;
    return 0;
}

/* ---- generations and the change callback ------------------------------------------------- */

/* Records a site's generation (c->st held); returns 1 when it changed. */
static int gen_set(oe_cluster_t *c, const char *site, uint64_t gen)
{
    for (size_t i = 0; i < c->ngens; i++) {
        if (strcmp(c->gens[i].site, site) == 0) {
            if (c->gens[i].gen == gen)
                return 0;
            c->gens[i].gen = gen;
            return 1;
        }
    }
    if (c->ngens == MAX_GENS)
        return 1;
    snprintf(c->gens[c->ngens].site, sizeof(c->gens[0].site), "%s", site);
    c->gens[c->ngens++].gen = gen;
    return 1;
}

static void notify(oe_cluster_t *c)
{
    pthread_mutex_lock(&c->st);
    oe_cluster_change_cb cb = c->cb;
    void *d = c->cb_data;
    pthread_mutex_unlock(&c->st);
    if (cb)
        cb(d);
}

void oe_cluster_on_change(oe_cluster_t *c, oe_cluster_change_cb cb, void *data)
{
    pthread_mutex_lock(&c->st);
    c->cb = cb;
    c->cb_data = data;
    pthread_mutex_unlock(&c->st);
}

uint64_t oe_cluster_sync_token(oe_cluster_t *c, const char *site)
{
    uint64_t t;
    pthread_mutex_lock(&c->st);
    t = c->epoch << 40;
    for (size_t i = 0; i < c->ngens; i++)
        if (strcmp(c->gens[i].site, site) == 0)
            t += c->gens[i].gen & ((1ull << 40) - 1);
    pthread_mutex_unlock(&c->st);
    return t;
}

/* ---- the challenge mirror ------------------------------------------------------------------ */

static int kind_of(const char *s)
{
    return strcmp(s, "http01") == 0 ? K_HTTP01 : strcmp(s, "alpn") == 0 ? K_ALPN : -1;
}

/* Whether (kind, id) is mirrored already (c->st held). */
static struct mirror *mirror_find(oe_cluster_t *c, int kind, const char *id)
{
    for (size_t i = 0; i < MAX_MIRRORS; i++)
        if (c->mirrors[i].id[0] && c->mirrors[i].kind == kind && strcmp(c->mirrors[i].id, id) == 0)
            return &c->mirrors[i];
    return NULL;
}

static void mirror_drop(oe_cluster_t *c, int kind, const char *id)
{
    pthread_mutex_lock(&c->st);
    struct mirror *m = mirror_find(c, kind, id);
    if (m)
        memset(m, 0, sizeof(*m));
    pthread_mutex_unlock(&c->st);
    if (!m)
        return; /* never remove what this replica's own ACME client published */
    if (kind == K_HTTP01)
        oe_challenge_http01_del(id);
    else
        oe_challenge_alpn_del(id);
}

/* Installs a record read from Redis ("<node>\n<payload>") into the local table. */
static int mirror_install(oe_cluster_t *c, int kind, const char *id, const char *v, size_t vlen)
{
    const char *nl = memchr(v, '\n', vlen);
    if (!nl)
        return -1;
    if ((size_t)(nl - v) == strlen(c->node) && memcmp(v, c->node, (size_t)(nl - v)) == 0)
        return 1; /* our own */
    const char *payload = nl + 1;
    size_t plen = vlen - (size_t)(payload - v);
    int rc = -1;
    char err[256] = "";
    if (kind == K_HTTP01) {
        char ka[OE_CHALLENGE_KEYAUTHZ_MAX + 1];
        if (plen < sizeof(ka)) {
            memcpy(ka, payload, plen);
            ka[plen] = '\0';
            rc = oe_challenge_http01_put(id, ka);
        }
    } else {
        BIO *b = BIO_new_mem_buf(payload, (int)plen);
        X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
        EVP_PKEY *k = x ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
        if (x && k)
            rc = oe_challenge_alpn_put(id, x, k, err, sizeof(err));
        X509_free(x);
        EVP_PKEY_free(k);
        BIO_free(b);
    }
    if (rc != 0) {
        oe_log(OE_LOG_WARN, "cluster_challenge_rejected", "kind", kind_names[kind], "id", id, "error",
               err[0] ? err : "malformed record", NULL);
        return -1;
    }
    pthread_mutex_lock(&c->st);
    struct mirror *m = mirror_find(c, kind, id);
    for (size_t i = 0; !m && i < MAX_MIRRORS; i++)
        if (!c->mirrors[i].id[0])
            m = &c->mirrors[i];
    if (m) {
        m->kind = kind;
        snprintf(m->id, sizeof(m->id), "%s", id);
        m->expires = time(NULL) + CHAL_TTL_S;
    }
    pthread_mutex_unlock(&c->st);
    oe_log(OE_LOG_INFO, "cluster_challenge_mirrored", "kind", kind_names[kind], "id", id, NULL);
    return 0;
}

/* Reads one challenge record, installs it and acknowledges it. */
static void mirror_fetch(oe_cluster_t *c, int kind, const char *id)
{
    char k[512], ack[512], err[256];
    snprintf(k, sizeof(k), "%schal:%s:%s", c->prefix, kind_names[kind], id);
    redisReply *r = run(c, err, sizeof(err), 2, "GET", k);
    if (!r)
        return;
    int rc = r->type == REDIS_REPLY_STRING ? mirror_install(c, kind, id, r->str, r->len) : -1;
    freeReplyObject(r);
    if (rc != 0)
        return;
    snprintf(ack, sizeof(ack), "%sack:%s:%s", c->prefix, kind_names[kind], id);
    if ((r = run(c, err, sizeof(err), 3, "SADD", ack, c->node)) != NULL)
        freeReplyObject(r);
    if ((r = run(c, err, sizeof(err), 3, "EXPIRE", ack, "60")) != NULL)
        freeReplyObject(r);
}

/* The poll's fallback for missed announcements: every challenge record not mirrored yet. */
static void mirror_scan(oe_cluster_t *c)
{
    char cursor[32] = "0", match[128], err[256];
    snprintf(match, sizeof(match), "%schal:*", c->prefix);
    size_t pl = strlen(c->prefix) + 5;
    for (int rounds = 0; rounds < 100; rounds++) {
        redisReply *r = run(c, err, sizeof(err), 6, "SCAN", cursor, "MATCH", match, "COUNT", "200");
        if (!r)
            return;
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element[0]->type != REDIS_REPLY_STRING) {
            freeReplyObject(r);
            return;
        }
        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        redisReply *keys = r->element[1];
        for (size_t i = 0; keys->type == REDIS_REPLY_ARRAY && i < keys->elements; i++) {
            const char *kn = keys->element[i]->str;
            if (keys->element[i]->type != REDIS_REPLY_STRING || strlen(kn) <= pl)
                continue;
            char kind[16];
            const char *rest = kn + pl, *colon = strchr(rest, ':');
            if (!colon || (size_t)(colon - rest) >= sizeof(kind))
                continue;
            memcpy(kind, rest, (size_t)(colon - rest));
            kind[colon - rest] = '\0';
            int kd = kind_of(kind);
            if (kd < 0)
                continue;
            pthread_mutex_lock(&c->st);
            int have = mirror_find(c, kd, colon + 1) != NULL;
            pthread_mutex_unlock(&c->st);
            if (!have)
                mirror_fetch(c, kd, colon + 1);
        }
        freeReplyObject(r);
        if (strcmp(cursor, "0") == 0)
            break;
    }
}

static void mirror_expire(oe_cluster_t *c)
{
    time_t now = time(NULL);
    for (size_t i = 0; i < MAX_MIRRORS; i++) {
        pthread_mutex_lock(&c->st);
        struct mirror m = c->mirrors[i];
        int old = m.id[0] && m.expires <= now;
        pthread_mutex_unlock(&c->st);
        if (old)
            mirror_drop(c, m.kind, m.id);
    }
}

/* ---- the keeper: heartbeat, poll, lock extension ---------------------------------------- */

static const char LUA_EXTEND[] = "if redis.call('GET', KEYS[1]) == ARGV[1] then "
                                 "return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end";
static const char LUA_UNLOCK[] = "if redis.call('GET', KEYS[1]) == ARGV[1] then "
                                 "return redis.call('DEL', KEYS[1]) else return 0 end";

static void update_locks_held(oe_cluster_t *c)
{
    unsigned n = 0;
    for (size_t i = 0; i < MAX_LOCKS; i++)
        n += c->locks[i].in_use && c->locks[i].valid;
    pthread_mutex_lock(&info_lock);
    info.locks_held = n;
    pthread_mutex_unlock(&info_lock);
}

static void extend_locks(oe_cluster_t *c)
{
    char ttl[32], err[256];
    snprintf(ttl, sizeof(ttl), "%llu", (unsigned long long)c->lock_ttl_ms);
    for (size_t i = 0; i < MAX_LOCKS; i++) {
        pthread_mutex_lock(&c->st);
        struct held_lock l = c->locks[i];
        pthread_mutex_unlock(&c->st);
        if (!l.in_use || !l.valid)
            continue;
        char k[256];
        keyname(c, k, sizeof(k), "lock", l.site);
        redisReply *r = run(c, err, sizeof(err), 6, "EVAL", LUA_EXTEND, "1", k, l.value, ttl);
        int lost = 0;
        if (r) {
            lost = reply_u64(r) != 1;
            freeReplyObject(r);
        } else if (now_ms() - l.last_ok_ms >= c->lock_ttl_ms) {
            lost = 1; /* Redis unreachable for longer than the TTL: it expired there */
        }
        pthread_mutex_lock(&c->st);
        if (c->locks[i].in_use && c->locks[i].token == l.token) {
            if (lost)
                c->locks[i].valid = 0;
            else if (r)
                c->locks[i].last_ok_ms = now_ms();
        }
        update_locks_held(c);
        pthread_mutex_unlock(&c->st);
        if (lost) {
            char tok[32];
            snprintf(tok, sizeof(tok), "%llu", (unsigned long long)l.token);
            pthread_mutex_lock(&info_lock);
            lock_extend_failures++;
            pthread_mutex_unlock(&info_lock);
            oe_log(OE_LOG_ERROR, "cluster_lock_lost", "site", l.site, "token", tok, "error",
                   r ? "the lock expired (this process was paused or cut off longer than cluster.lock_ttl) and is no "
                       "longer ours: the extension was refused"
                     : "Redis unreachable for longer than cluster.lock_ttl",
                   "action", "this replica's certificate write will be refused by the fencing token", NULL);
        }
    }
}

/* HGETALL gen: which sites (and the challenges) changed since the last look. */
static void poll_generations(oe_cluster_t *c)
{
    char k[256], err[256], now_s[32];
    keyname(c, k, sizeof(k), "nodes", NULL);
    snprintf(now_s, sizeof(now_s), "%lld", (long long)time(NULL));
    redisReply *r = run(c, err, sizeof(err), 4, "HSET", k, c->node, now_s);
    if (!r)
        return;
    freeReplyObject(r);
    keyname(c, k, sizeof(k), "gen", NULL);
    if (!(r = run(c, err, sizeof(err), 2, "HGETALL", k)))
        return;
    int changed = 0, chal = 0;
    pthread_mutex_lock(&c->st);
    if (r->type == REDIS_REPLY_ARRAY) {
        if (r->elements == 0 && c->ngens > 0) {
            /* every generation is gone: Redis was emptied (restarted without persistence) */
            c->ngens = 0;
            c->epoch++;
            changed = 1;
        }
        for (size_t i = 0; i + 1 < r->elements; i += 2) {
            const char *f = r->element[i]->str;
            if (r->element[i]->type != REDIS_REPLY_STRING)
                continue;
            int d = gen_set(c, f, reply_u64(r->element[i + 1]));
            if (strcmp(f, "!chal") == 0)
                chal |= d;
            else
                changed |= d;
        }
    }
    pthread_mutex_unlock(&c->st);
    freeReplyObject(r);
    pthread_mutex_lock(&info_lock);
    info.last_sync = time(NULL);
    pthread_mutex_unlock(&info_lock);
    if (chal)
        mirror_scan(c);
    if (changed)
        notify(c);
}

static void *keeper_main(void *arg)
{
    oe_cluster_t *c = arg;
    uint64_t next_poll = 0;
    pthread_mutex_lock(&c->st);
    while (!c->stop) {
        int locks = 0;
        for (size_t i = 0; i < MAX_LOCKS; i++)
            locks |= c->locks[i].in_use && c->locks[i].valid;
        int force = c->force_poll;
        c->force_poll = 0;
        pthread_mutex_unlock(&c->st);

        uint64_t now = now_ms();
        if (force || now >= next_poll) {
            poll_generations(c);
            mirror_expire(c);
            next_poll = now_ms() + OE_CLUSTER_POLL_MS;
        }
        if (locks)
            extend_locks(c);
        uint64_t period = locks ? c->lock_ttl_ms / 3 : OE_CLUSTER_POLL_MS;
        uint64_t wait = period;
        now = now_ms();
        if (next_poll > now && next_poll - now < wait)
            wait = next_poll - now;

        struct timespec dl;
        clock_gettime(CLOCK_MONOTONIC, &dl);
        dl.tv_sec += (time_t)(wait / 1000);
        dl.tv_nsec += (long)(wait % 1000) * 1000000L;
        if (dl.tv_nsec >= 1000000000L) {
            dl.tv_sec++;
            dl.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&c->st);
        if (!c->stop && !c->force_poll)
            pthread_cond_timedwait(&c->cond, &c->st, &dl);
    }
    pthread_mutex_unlock(&c->st);
    return NULL;
}

/* ---- the subscriber --------------------------------------------------------------------- */

static void on_message(oe_cluster_t *c, const char *msg, size_t len)
{
    char buf[600], *save = NULL;
    if (len >= sizeof(buf))
        return;
    memcpy(buf, msg, len);
    buf[len] = '\0';
    char *verb = strtok_r(buf, " ", &save);
    if (!verb)
        return;
    if (strcmp(verb, "cert") == 0) {
        char *site = strtok_r(NULL, " ", &save), *g = strtok_r(NULL, " ", &save);
        if (!site || !g)
            return;
        pthread_mutex_lock(&c->st);
        int d = gen_set(c, site, strtoull(g, NULL, 10));
        pthread_mutex_unlock(&c->st);
        if (d)
            notify(c);
    } else if (strcmp(verb, "chal") == 0 || strcmp(verb, "unchal") == 0) {
        char *node = strtok_r(NULL, " ", &save), *kind = strtok_r(NULL, " ", &save), *id = strtok_r(NULL, " ", &save);
        int kd = kind ? kind_of(kind) : -1;
        if (!node || kd < 0 || !id || strcmp(node, c->node) == 0 || strlen(id) > OE_CHALLENGE_TOKEN_MAX)
            return;
        if (verb[0] == 'c')
            mirror_fetch(c, kd, id);
        else
            mirror_drop(c, kd, id);
    }
}

static int sub_sleep(oe_cluster_t *c, uint64_t ms)
{
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += (time_t)(ms / 1000);
    dl.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&c->st);
    if (!c->stop)
        pthread_cond_timedwait(&c->cond, &c->st, &dl);
    int stop = c->stop;
    pthread_mutex_unlock(&c->st);
    return stop;
}

static int stopping(oe_cluster_t *c)
{
    pthread_mutex_lock(&c->st);
    int s = c->stop;
    pthread_mutex_unlock(&c->st);
    return s;
}

static void *sub_main(void *arg)
{
    oe_cluster_t *c = arg;
    char err[512], role[128];
    snprintf(role, sizeof(role), "ott-edge-%s-sub", c->node);
    int logged = 0;
    while (!stopping(c)) {
        int fatal = 0;
        redisContext *s = connect_redis(c, role, &fatal, err, sizeof(err));
        redisReply *r = s ? redisCommand(s, "SUBSCRIBE %s", c->channel) : NULL;
        if (!r || r->type == REDIS_REPLY_ERROR) {
            if (!logged++)
                oe_log(OE_LOG_WARN, "cluster_subscribe_failed", "error",
                       r   ? r->str
                       : s ? s->errstr
                           : err,
                       "action", "retried every second; the poll catches up meanwhile", NULL);
            freeReplyObject(r);
            redisFree(s);
            if (sub_sleep(c, RECONNECT_MS))
                break;
            continue;
        }
        freeReplyObject(r);
        if (logged)
            oe_log(OE_LOG_INFO, "cluster_subscribed", "channel", c->channel, NULL);
        logged = 0;
        /* messages may have been missed while not subscribed: look now */
        pthread_mutex_lock(&c->st);
        c->force_poll = 1;
        pthread_cond_broadcast(&c->cond);
        pthread_mutex_unlock(&c->st);
        while (!stopping(c)) {
            void *rep = NULL;
            if (redisGetReplyFromReader(s, &rep) != REDIS_OK)
                break;
            if (rep) {
                redisReply *m = rep;
                if (m->type == REDIS_REPLY_ARRAY && m->elements == 3 && m->element[0]->type == REDIS_REPLY_STRING &&
                    strcmp(m->element[0]->str, "message") == 0 && m->element[2]->type == REDIS_REPLY_STRING)
                    on_message(c, m->element[2]->str, m->element[2]->len);
                freeReplyObject(m);
                continue;
            }
            struct pollfd p = {.fd = s->fd, .events = POLLIN};
            int pr = poll(&p, 1, 500);
            if (pr < 0 && errno != EINTR)
                break;
            if (pr > 0 && redisBufferRead(s) != REDIS_OK)
                break;
        }
        if (!stopping(c))
            oe_log(OE_LOG_WARN, "cluster_subscriber_lost", "error", s->errstr[0] ? s->errstr : "connection closed",
                   "action", "reconnecting; the poll catches up meanwhile", NULL);
        redisFree(s);
    }
    return NULL;
}

/* ---- start / stop ----------------------------------------------------------------------- */

/* Checks that the user may use the prefix's keys, scripts and channel; warns on an evicting
 * maxmemory-policy. Returns 0, 1 when Redis is unreachable, -1 (fatal) with err. */
static int probe(oe_cluster_t *c, char *err, size_t errlen)
{
    char k[256], e[512];
    keyname(c, k, sizeof(k), "probe", c->node);
    redisReply *r =
        run(c, e, sizeof(e), 5, "EVAL",
            "redis.call('SET', KEYS[1], ARGV[1], 'PX', 5000) return redis.call('DEL', KEYS[1])", "1", k, "x");
    if (r) {
        freeReplyObject(r);
        char hello[160];
        snprintf(hello, sizeof(hello), "hello %s", c->node);
        r = run(c, e, sizeof(e), 3, "PUBLISH", c->channel, hello);
    }
    if (!r) {
        if (!oe_cluster_up(c) && !is_config_error(e)) {
            oe_log(OE_LOG_WARN, "cluster_redis_unreachable", "error", e, "action",
                   "serving the local copies in state_dir; retried in the background", NULL);
            return 1;
        }
        snprintf(err, errlen,
                 "cluster.redis: %s (the Redis user needs the keys and channel under cluster.key_prefix \"%s\": ACL "
                 "~%s* &%s* with +@read +@write +@scripting +@pubsub +@connection; see README, Several replicas)",
                 e, c->prefix, c->prefix, c->prefix);
        return -1;
    }
    freeReplyObject(r);
    r = run(c, e, sizeof(e), 3, "CONFIG", "GET", "maxmemory-policy");
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 && r->element[1]->type == REDIS_REPLY_STRING &&
        strncmp(r->element[1]->str, "allkeys-", 8) == 0)
        oe_log(OE_LOG_WARN, "cluster_redis_may_evict", "maxmemory_policy", r->element[1]->str, "error",
               "Redis may evict any key when full, including the shared certificates, account and locks", "action",
               "use maxmemory-policy noeviction or volatile-* (ott-edge's lasting keys have no TTL)", NULL);
    else if (!r)
        oe_log(OE_LOG_DEBUG, "cluster_config_get_refused", "error", e, NULL);
    freeReplyObject(r);
    return 0;
}

static void destroy(oe_cluster_t *c)
{
    if (c->rc)
        redisFree(c->rc);
    OPENSSL_cleanse(c->key, sizeof(c->key));
    OPENSSL_cleanse(&c->url, sizeof(c->url));
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->st);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

oe_cluster_t *oe_cluster_start(const oe_config_t *cfg, char *err, size_t errlen)
{
    char e[512];
    if (!cfg->cluster.redis) {
        snprintf(err, errlen, "cluster: cluster.redis is not set");
        return NULL;
    }
    if (oe_cluster_check_config(cfg, err, errlen) != 0)
        return NULL;
    oe_cluster_t *c = calloc(1, sizeof(*c));
    if (!c) {
        snprintf(err, errlen, "cluster: out of memory");
        return NULL;
    }
    c->cfg = cfg; /* read here only: a reload may free it */
    pthread_mutex_init(&c->mu, NULL);
    pthread_mutex_init(&c->st, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->cond, &ca);
    pthread_condattr_destroy(&ca);
    if (oe_config_parse_redis_url(cfg->cluster.redis, &c->url, e, sizeof(e)) != 0) {
        snprintf(err, errlen, "cluster.redis: %s", e);
        destroy(c);
        return NULL;
    }
    snprintf(c->prefix, sizeof(c->prefix), "%s", cfg->cluster.key_prefix ? cfg->cluster.key_prefix : "ott-edge:");
    if (cfg->cluster.node_id) {
        snprintf(c->node, sizeof(c->node), "%s", cfg->cluster.node_id);
    } else {
        char h[64] = "";
        if (gethostname(h, sizeof(h) - 1) != 0 || !h[0])
            snprintf(h, sizeof(h), "node-%ld", (long)getpid());
        for (char *p = h; *p; p++)
            if (*p == ' ')
                *p = '-';
        snprintf(c->node, sizeof(c->node), "%s", h);
    }
    snprintf(c->channel, sizeof(c->channel), "%sevents", c->prefix);
    c->lock_ttl_ms = cfg->cluster.lock_ttl_ms ? cfg->cluster.lock_ttl_ms : 60000;
    if (cfg->cluster.encryption_key_file) {
        if (oe_config_read_key32(cfg->cluster.encryption_key_file, c->key, e, sizeof(e)) != 0) {
            snprintf(err, errlen, "cluster.encryption_key_file: %s", e);
            destroy(c);
            return NULL;
        }
        c->have_key = 1;
    }
    pthread_mutex_lock(&info_lock);
    memset(&info, 0, sizeof(info));
    info.enabled = 1;
    info.up = 1; /* so the first failure is logged as a transition */
    snprintf(info.node, sizeof(info.node), "%s", c->node);
    pthread_mutex_unlock(&info_lock);

    /* once: the configuration must be able to work */
    int fatal = 0;
    char role[128];
    snprintf(role, sizeof(role), "ott-edge-%s-cmd", c->node);
    c->rc = connect_redis(c, role, &fatal, e, sizeof(e));
    if (!c->rc) {
        if (fatal) {
            snprintf(err, errlen, "%s", e);
            destroy(c);
            return NULL;
        }
        c->retry_at_ms = now_ms() + RECONNECT_MS;
        set_up(c, 0, e);
    }
    if (c->rc && probe(c, err, errlen) < 0) {
        destroy(c);
        return NULL;
    }
    if (c->rc) {
        /* the first heartbeat now: a replica ordering from now on waits for this one's acknowledgements */
        char k[256], now_s[32];
        keyname(c, k, sizeof(k), "nodes", NULL);
        snprintf(now_s, sizeof(now_s), "%lld", (long long)time(NULL));
        freeReplyObject(run(c, e, sizeof(e), 4, "HSET", k, c->node, now_s));
        /* ... and every challenge already out, before this replica accepts a connection */
        mirror_scan(c);
    }
    if (c->rc)
        oe_log(OE_LOG_INFO, "cluster_connected", "redis", c->url.host, "db", c->url.db ? "selected" : "0", "node",
               c->node, "prefix", c->prefix, "encryption", c->have_key ? "aes-256-gcm" : "none", NULL);
    if (!c->have_key)
        oe_log(OE_LOG_WARN, "cluster_keys_in_clear", "msg",
               "private keys are stored in Redis in clear: set cluster.encryption_key_file (recommended)", NULL);

    static int metrics_added;
    if (!metrics_added++)
        oe_metrics_add_section(metrics_section, NULL);
    if (pthread_create(&c->keeper, NULL, keeper_main, c) != 0) {
        snprintf(err, errlen, "cluster: cannot start a thread");
        destroy(c);
        return NULL;
    }
    c->keeper_started = 1;
    if (pthread_create(&c->sub, NULL, sub_main, c) == 0)
        c->sub_started = 1;
    else
        oe_log(OE_LOG_WARN, "cluster_subscribe_failed", "error", "cannot start the subscriber thread", "action",
               "the poll alone catches changes", NULL);
    __atomic_store_n(&the_cluster, c, __ATOMIC_RELEASE);
    return c;
}

void oe_cluster_stop(oe_cluster_t *c)
{
    if (!c)
        return;
    __atomic_store_n(&the_cluster, NULL, __ATOMIC_RELEASE);
    pthread_mutex_lock(&c->st);
    c->stop = 1;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->st);
    if (c->keeper_started)
        pthread_join(c->keeper, NULL);
    if (c->sub_started)
        pthread_join(c->sub, NULL);
    char k[256], err[256];
    for (size_t i = 0; i < MAX_LOCKS; i++)
        if (c->locks[i].in_use)
            oe_cluster_unlock(c, c->locks[i].site, c->locks[i].token);
    if (oe_cluster_up(c)) {
        keyname(c, k, sizeof(k), "nodes", NULL);
        redisReply *r = run(c, err, sizeof(err), 3, "HDEL", k, c->node);
        freeReplyObject(r);
    }
    pthread_mutex_lock(&info_lock);
    info.enabled = 0;
    pthread_mutex_unlock(&info_lock);
    destroy(c);
}

/* ---- the account ------------------------------------------------------------------------- */

void oe_cluster_account_free(oe_cluster_account_t *a)
{
    if (a->key_pem)
        OPENSSL_cleanse(a->key_pem, a->key_len);
    free(a->key_pem);
    a->key_pem = NULL;
}

int oe_cluster_account_claim(oe_cluster_t *c, const char *key_pem, size_t key_len, oe_cluster_account_t *out, char *err,
                             size_t errlen)
{
    static const char lua[] = "if redis.call('HEXISTS', KEYS[1], 'key') == 0 then "
                              "redis.call('HSET', KEYS[1], 'key', ARGV[1], 'node', ARGV[2]) end "
                              "return redis.call('HMGET', KEYS[1], 'key', 'url', 'directory')";
    char k[256], aad[300];
    memset(out, 0, sizeof(*out));
    keyname(c, k, sizeof(k), "account", NULL);
    snprintf(aad, sizeof(aad), "%s key", k);
    size_t sl = 0;
    char *sealed = seal(c, aad, key_pem, key_len, &sl);
    if (!sealed) {
        snprintf(err, errlen, "cannot seal the account key");
        return -1;
    }
    const char *argv[] = {"EVAL", lua, "1", k, sealed, c->node};
    size_t lens[] = {4, sizeof(lua) - 1, 1, strlen(k), sl, strlen(c->node)};
    pthread_mutex_lock(&c->mu);
    redisReply *r = run_argv(c, 6, argv, lens, err, errlen);
    pthread_mutex_unlock(&c->mu);
    OPENSSL_cleanse(sealed, sl);
    free(sealed);
    if (!r)
        return -1;
    int rc = -2;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 && r->element[0]->type == REDIS_REPLY_STRING) {
        if (unseal(c, aad, r->element[0]->str, r->element[0]->len, &out->key_pem, &out->key_len, err, errlen) == 0) {
            if (r->element[1]->type == REDIS_REPLY_STRING)
                snprintf(out->url, sizeof(out->url), "%s", r->element[1]->str);
            if (r->element[2]->type == REDIS_REPLY_STRING)
                snprintf(out->directory, sizeof(out->directory), "%s", r->element[2]->str);
            rc = 0;
        }
    } else {
        snprintf(err, errlen, "the shared account record %s is malformed", k);
    }
    freeReplyObject(r);
    return rc;
}

int oe_cluster_account_set_url(oe_cluster_t *c, const char *directory, const char *url, char *err, size_t errlen)
{
    char k[256];
    keyname(c, k, sizeof(k), "account", NULL);
    redisReply *r = run(c, err, errlen, 6, "HSET", k, "url", url, "directory", directory);
    if (!r)
        return -1;
    freeReplyObject(r);
    return 0;
}

/* ---- certificates ----------------------------------------------------------------------- */

void oe_cluster_cert_free(oe_cluster_cert_t *cert)
{
    free(cert->chain);
    if (cert->key)
        OPENSSL_cleanse(cert->key, cert->key_len);
    free(cert->key);
    cert->chain = cert->key = NULL;
}

int oe_cluster_cert_get(oe_cluster_t *c, const char *site, oe_cluster_cert_t *out, char *err, size_t errlen)
{
    char k[256], aad[300];
    memset(out, 0, sizeof(*out));
    keyname(c, k, sizeof(k), "cert", site);
    redisReply *r = run(c, err, errlen, 2, "HGETALL", k);
    if (!r)
        return -1;
    int rc = 1;
    const redisReply *chain = NULL, *key = NULL;
    if (r->type != REDIS_REPLY_ARRAY) {
        rc = -2;
        snprintf(err, errlen, "%s is not a hash", k);
        goto out;
    }
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const redisReply *f = r->element[i], *v = r->element[i + 1];
        if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
            continue;
        if (strcmp(f->str, "chain") == 0)
            chain = v;
        else if (strcmp(f->str, "key") == 0)
            key = v;
        else if (strcmp(f->str, "directory") == 0)
            snprintf(out->directory, sizeof(out->directory), "%s", v->str);
        else if (strcmp(f->str, "node") == 0)
            snprintf(out->node, sizeof(out->node), "%s", v->str);
        else if (strcmp(f->str, "state") == 0)
            snprintf(out->state, sizeof(out->state), "%s", v->str);
        else if (strcmp(f->str, "fence") == 0)
            out->fence = strtoull(v->str, NULL, 10);
    }
    if (r->elements == 0)
        goto out;
    rc = -2;
    if (!chain || !key || chain->len == 0 || chain->len > VALUE_MAX || key->len > VALUE_MAX) {
        snprintf(err, errlen, "%s is incomplete (no chain or no key)", k);
        goto out;
    }
    snprintf(aad, sizeof(aad), "%s key", k);
    if (unseal(c, aad, key->str, key->len, &out->key, &out->key_len, err, errlen) != 0)
        goto out;
    if (!(out->chain = malloc(chain->len + 1))) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    memcpy(out->chain, chain->str, chain->len);
    out->chain[chain->len] = '\0';
    out->chain_len = chain->len;
    rc = 0;
out:
    freeReplyObject(r);
    if (rc != 0)
        oe_cluster_cert_free(out);
    return rc;
}

int oe_cluster_cert_put(oe_cluster_t *c, const char *site, uint64_t token, const char *chain, size_t chain_len,
                        const char *key, size_t key_len, const oe_cluster_meta_t *meta, char *err, size_t errlen)
{
    /* Atomic: the lock must still be ours (a holder paused past its TTL has lost it), and no
     * record may carry a newer token (the lock expired and a later holder wrote). The same
     * token may write twice: a write-back, then the order the lock was taken for. */
    static const char lua[] = "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {0, 'lock'} end "
                              "local f = tonumber(redis.call('HGET', KEYS[2], 'fence') or '0') or 0 "
                              "if f > tonumber(ARGV[2]) then return {0, 'fence'} end "
                              "redis.call('DEL', KEYS[2]) "
                              "redis.call('HSET', KEYS[2], unpack(ARGV, 6)) "
                              "redis.call('DEL', KEYS[4]) "
                              "local g = redis.call('HINCRBY', KEYS[3], ARGV[3], 1) "
                              "redis.call('PUBLISH', ARGV[4], ARGV[5] .. ' ' .. g) "
                              "return {1, g}";
    char lockk[256], certk[256], genk[256], statek[256], aad[300], lockv[160], tok[32], msg[256];
    keyname(c, lockk, sizeof(lockk), "lock", site);
    keyname(c, certk, sizeof(certk), "cert", site);
    keyname(c, genk, sizeof(genk), "gen", NULL);
    keyname(c, statek, sizeof(statek), "state", site);
    snprintf(aad, sizeof(aad), "%s key", certk);
    snprintf(lockv, sizeof(lockv), "%s %llu", c->node, (unsigned long long)token);
    snprintf(tok, sizeof(tok), "%llu", (unsigned long long)token);
    snprintf(msg, sizeof(msg), "cert %s", site);
    size_t sl = 0;
    char *sealed = seal(c, aad, key, key_len, &sl);
    if (!sealed) {
        snprintf(err, errlen, "cannot seal the private key");
        return -1;
    }
    char nb[32], na[32], as[32], ae[32], now[32];
    snprintf(nb, sizeof(nb), "%lld", (long long)meta->not_before);
    snprintf(na, sizeof(na), "%lld", (long long)meta->not_after);
    snprintf(as, sizeof(as), "%lld", (long long)meta->ari_start);
    snprintf(ae, sizeof(ae), "%lld", (long long)meta->ari_end);
    snprintf(now, sizeof(now), "%lld", (long long)time(NULL));
#define S(x) ((x) ? (x) : "")
    const char *argv[] = {"EVAL",       lua,
                          "4",          lockk,
                          certk,        genk,
                          statek,       lockv,
                          tok,          site,
                          c->channel,   msg,
                          "chain",      chain,
                          "key",        sealed,
                          "directory",  S(meta->directory),
                          "node",       c->node,
                          "state",      S(meta->state),
                          "fence",      tok,
                          "updated",    now,
                          "not_before", nb,
                          "not_after",  na,
                          "serial",     S(meta->serial),
                          "names",      S(meta->names),
                          "replaces",   S(meta->replaces),
                          "ari_start",  as,
                          "ari_end",    ae};
#undef S
    size_t argc = sizeof(argv) / sizeof(argv[0]), lens[sizeof(argv) / sizeof(argv[0])];
    for (size_t i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    lens[13] = chain_len;
    lens[15] = sl;
    pthread_mutex_lock(&c->mu);
    redisReply *r = run_argv(c, (int)argc, argv, lens, err, errlen);
    pthread_mutex_unlock(&c->mu);
    OPENSSL_cleanse(sealed, sl);
    free(sealed);
    if (!r)
        return -1;
    int rc = -1;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 2) {
        if (reply_u64(r->element[0]) == 1) {
            rc = 0;
            pthread_mutex_lock(&c->st);
            gen_set(c, site, reply_u64(r->element[1]));
            pthread_mutex_unlock(&c->st);
        } else {
            rc = 1;
            const char *why = r->element[1]->type == REDIS_REPLY_STRING ? r->element[1]->str : "?";
            snprintf(err, errlen, "%s",
                     strcmp(why, "lock") == 0
                         ? "the issuance lock is no longer ours (it expired while this replica was paused or cut off): "
                           "the certificate in Redis is kept"
                         : "a certificate written under a newer lock token is in Redis: it is kept");
        }
    } else {
        snprintf(err, errlen, "unexpected answer to the certificate write");
    }
    freeReplyObject(r);
    return rc;
}

/* ---- locks ------------------------------------------------------------------------------- */

int oe_cluster_lock(oe_cluster_t *c, const char *site, uint64_t *token, char *holder, size_t holder_cap,
                    uint64_t *left_ms, char *err, size_t errlen)
{
    static const char lua[] = "local v = redis.call('GET', KEYS[1]) "
                              "if v then return {0, v, redis.call('PTTL', KEYS[1])} end "
                              "local t = redis.call('INCR', KEYS[2]) "
                              "redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. t, 'PX', ARGV[2]) "
                              "return {1, tostring(t), tonumber(ARGV[2])}";
    char lockk[256], fencek[256], ttl[32];
    keyname(c, lockk, sizeof(lockk), "lock", site);
    keyname(c, fencek, sizeof(fencek), "fence", site);
    snprintf(ttl, sizeof(ttl), "%llu", (unsigned long long)c->lock_ttl_ms);
    redisReply *r = run(c, err, errlen, 7, "EVAL", lua, "2", lockk, fencek, c->node, ttl);
    if (!r)
        return -1;
    int rc = -1;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 3) {
        if (reply_u64(r->element[0]) == 1) {
            *token = reply_u64(r->element[1]);
            rc = 0;
        } else {
            if (holder)
                snprintf(holder, holder_cap, "%s",
                         r->element[1]->type == REDIS_REPLY_STRING ? r->element[1]->str : "?");
            if (left_ms)
                *left_ms = r->element[2]->type == REDIS_REPLY_INTEGER && r->element[2]->integer > 0
                               ? (uint64_t)r->element[2]->integer
                               : 0;
            rc = 1;
        }
    } else {
        snprintf(err, errlen, "unexpected answer to the lock script");
    }
    freeReplyObject(r);
    if (rc != 0)
        return rc;
    pthread_mutex_lock(&c->st);
    struct held_lock *slot = NULL;
    for (size_t i = 0; i < MAX_LOCKS && !slot; i++)
        if (!c->locks[i].in_use)
            slot = &c->locks[i];
    if (slot) {
        memset(slot, 0, sizeof(*slot));
        snprintf(slot->site, sizeof(slot->site), "%s", site);
        slot->token = *token;
        snprintf(slot->value, sizeof(slot->value), "%s %llu", c->node, (unsigned long long)*token);
        slot->in_use = slot->valid = 1;
        slot->last_ok_ms = now_ms();
    }
    update_locks_held(c);
    pthread_cond_broadcast(&c->cond); /* the keeper extends it from now on */
    pthread_mutex_unlock(&c->st);
    char t[32];
    snprintf(t, sizeof(t), "%llu", (unsigned long long)*token);
    oe_log(OE_LOG_INFO, "cluster_lock_acquired", "site", site, "token", t, "node", c->node, NULL);
    return 0;
}

int oe_cluster_lock_held(oe_cluster_t *c, const char *site, uint64_t token)
{
    int held = 0;
    pthread_mutex_lock(&c->st);
    for (size_t i = 0; i < MAX_LOCKS; i++)
        if (c->locks[i].in_use && c->locks[i].token == token && strcmp(c->locks[i].site, site) == 0)
            held = c->locks[i].valid;
    pthread_mutex_unlock(&c->st);
    return held;
}

void oe_cluster_unlock(oe_cluster_t *c, const char *site, uint64_t token)
{
    char lockk[256], v[160], err[256];
    pthread_mutex_lock(&c->st);
    for (size_t i = 0; i < MAX_LOCKS; i++)
        if (c->locks[i].in_use && c->locks[i].token == token && strcmp(c->locks[i].site, site) == 0)
            memset(&c->locks[i], 0, sizeof(c->locks[i]));
    update_locks_held(c);
    pthread_mutex_unlock(&c->st);
    keyname(c, lockk, sizeof(lockk), "lock", site);
    snprintf(v, sizeof(v), "%s %llu", c->node, (unsigned long long)token);
    redisReply *r = run(c, err, sizeof(err), 5, "EVAL", LUA_UNLOCK, "1", lockk, v);
    if (r && reply_u64(r) != 1)
        oe_log(OE_LOG_WARN, "cluster_unlock_refused", "site", site, "error",
               "the lock was no longer ours (it had expired): left to its holder", NULL);
    freeReplyObject(r);
}

/* ---- shared backoff ------------------------------------------------------------------- */

int oe_cluster_backoff_get(oe_cluster_t *c, const char *site, unsigned *failures, time_t *next_attempt,
                           char *last_error, size_t cap)
{
    char k[256], err[256];
    keyname(c, k, sizeof(k), "state", site);
    redisReply *r = run(c, err, sizeof(err), 5, "HMGET", k, "failures", "next_attempt", "last_error");
    if (!r)
        return -1;
    int rc = 1;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 && r->element[0]->type == REDIS_REPLY_STRING &&
        r->element[1]->type == REDIS_REPLY_STRING) {
        unsigned long f = strtoul(r->element[0]->str, NULL, 10);
        *failures = f < 1000 ? (unsigned)f : 1000;
        *next_attempt = (time_t)strtoll(r->element[1]->str, NULL, 10);
        snprintf(last_error, cap, "%s", r->element[2]->type == REDIS_REPLY_STRING ? r->element[2]->str : "");
        rc = 0;
    }
    freeReplyObject(r);
    return rc;
}

int oe_cluster_backoff_put(oe_cluster_t *c, const char *site, unsigned failures, time_t next_attempt,
                           const char *last_error)
{
    char k[256], err[256], f[16], n[32];
    keyname(c, k, sizeof(k), "state", site);
    snprintf(f, sizeof(f), "%u", failures);
    snprintf(n, sizeof(n), "%lld", (long long)next_attempt);
    redisReply *r = run(c, err, sizeof(err), 10, "HSET", k, "failures", f, "next_attempt", n, "last_error",
                        last_error ? last_error : "", "node", c->node);
    if (!r)
        return -1;
    freeReplyObject(r);
    return 0;
}

/* ---- challenges --------------------------------------------------------------------------- */

/* How many other replicas sent a heartbeat recently. */
static size_t live_peers(oe_cluster_t *c)
{
    char k[256], err[256];
    keyname(c, k, sizeof(k), "nodes", NULL);
    redisReply *r = run(c, err, sizeof(err), 2, "HGETALL", k);
    size_t n = 0;
    time_t now = time(NULL);
    for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2) {
        if (r->element[i]->type != REDIS_REPLY_STRING || strcmp(r->element[i]->str, c->node) == 0)
            continue;
        time_t t = (time_t)reply_u64(r->element[i + 1]);
        n += t + 3 * OE_CLUSTER_POLL_MS / 1000 >= now;
    }
    freeReplyObject(r);
    return n;
}

static int chal_put(oe_cluster_t *c, int kind, const char *id, const char *payload, size_t plen, const int *stop,
                    char *err, size_t errlen)
{
    char k[512], ack[512], genk[256], ttl[16], msg[600];
    snprintf(k, sizeof(k), "%schal:%s:%s", c->prefix, kind_names[kind], id);
    snprintf(ack, sizeof(ack), "%sack:%s:%s", c->prefix, kind_names[kind], id);
    keyname(c, genk, sizeof(genk), "gen", NULL);
    snprintf(ttl, sizeof(ttl), "%d", CHAL_TTL_S);
    snprintf(msg, sizeof(msg), "chal %s %s %s", c->node, kind_names[kind], id);
    size_t nl = strlen(c->node);
    char *v = malloc(nl + 1 + plen);
    if (!v) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    memcpy(v, c->node, nl);
    v[nl] = '\n';
    memcpy(v + nl + 1, payload, plen);
    const char *argv[] = {"SET", k, v, "EX", ttl};
    size_t lens[] = {3, strlen(k), nl + 1 + plen, 2, strlen(ttl)};
    pthread_mutex_lock(&c->mu);
    redisReply *r = run_argv(c, 5, argv, lens, err, errlen);
    pthread_mutex_unlock(&c->mu);
    free(v);
    if (!r)
        return -1;
    freeReplyObject(r);
    size_t peers = 0;
    if ((r = run(c, err, errlen, 2, "DEL", ack)) != NULL)
        freeReplyObject(r);
    if ((r = run(c, err, errlen, 4, "HINCRBY", genk, "!chal", "1")) != NULL)
        freeReplyObject(r);
    if (!(r = run(c, err, errlen, 3, "PUBLISH", c->channel, msg)))
        return -1;
    freeReplyObject(r);
    /* wait until every live replica has it in memory: the CA may ask any of them */
    uint64_t end = now_ms() + ACK_WAIT_MS;
    size_t acked = 0;
    for (;;) {
        peers = live_peers(c); /* again each time: a replica starting meanwhile is waited for too */
        if (peers == 0)
            break;
        if ((r = run(c, err, errlen, 2, "SCARD", ack)) == NULL)
            break;
        acked = (size_t)reply_u64(r);
        freeReplyObject(r);
        if (acked >= peers || now_ms() >= end || (stop && __atomic_load_n(stop, __ATOMIC_RELAXED)))
            break;
        usleep(20000);
    }
    char a[24], p[24];
    snprintf(a, sizeof(a), "%zu", acked);
    snprintf(p, sizeof(p), "%zu", peers);
    if (acked < peers)
        oe_log(OE_LOG_WARN, "cluster_challenge_unacknowledged", "kind", kind_names[kind], "id", id, "acknowledged", a,
               "live_replicas", p, "msg", "a validation landing on a silent replica may fail", NULL);
    else
        oe_log(OE_LOG_INFO, "cluster_challenge_shared", "kind", kind_names[kind], "id", id, "acknowledged", a, NULL);
    return 0;
}

static void chal_del(oe_cluster_t *c, int kind, const char *id)
{
    char k[512], msg[600], err[256];
    snprintf(k, sizeof(k), "%schal:%s:%s", c->prefix, kind_names[kind], id);
    snprintf(msg, sizeof(msg), "unchal %s %s %s", c->node, kind_names[kind], id);
    redisReply *r = run(c, err, sizeof(err), 2, "DEL", k);
    freeReplyObject(r);
    if ((r = run(c, err, sizeof(err), 3, "PUBLISH", c->channel, msg)) != NULL)
        freeReplyObject(r);
}

int oe_cluster_http01_put(oe_cluster_t *c, const char *token, const char *key_authz, const int *stop, char *err,
                          size_t errlen)
{
    return chal_put(c, K_HTTP01, token, key_authz, strlen(key_authz), stop, err, errlen);
}

void oe_cluster_http01_del(oe_cluster_t *c, const char *token)
{
    chal_del(c, K_HTTP01, token);
}

int oe_cluster_alpn_put(oe_cluster_t *c, const char *name, X509 *cert, EVP_PKEY *key, const int *stop, char *err,
                        size_t errlen)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *data = NULL;
    long len = 0;
    if (!b || PEM_write_bio_X509(b, cert) != 1 || PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL) != 1 ||
        (len = BIO_get_mem_data(b, &data)) <= 0) {
        BIO_free(b);
        snprintf(err, errlen, "cannot encode the TLS-ALPN-01 certificate");
        return -1;
    }
    int rc = chal_put(c, K_ALPN, name, data, (size_t)len, stop, err, errlen);
    BIO_free(b);
    return rc;
}

void oe_cluster_alpn_del(oe_cluster_t *c, const char *name)
{
    chal_del(c, K_ALPN, name);
}
