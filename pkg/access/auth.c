/*
 * access/auth.c — basic authentication's files and checks: each htpasswd file once in memory
 * (swapped whole on reload), a cache of the last password each user proved (an HMAC with a
 * key made at start, compared in constant time), and the verifier thread that runs the
 * expensive hash (bcrypt, yescrypt ...) off the worker loops: a worker queues the check and
 * gets the answer back through a libh2o multithread queue on its own loop.
 */
#include "access/auth.h"

#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "access/internal.h"

#define FILE_MAX      (4 * 1024 * 1024)
#define QUEUE_MAX     128 /* checks waiting for the verifier; beyond: "busy" */
#define MAX_RECEIVERS 256 /* worker threads with a receiver (one each) */

typedef struct cached {
    unsigned char mac[32];
    int valid;
} cached_t;

struct oe_access_authfile {
    char *path;
    pthread_mutex_t lock;
    oe_access_users_t *users; /* current */
    cached_t *ok;             /* per user of `users`: the last password it proved */
    unsigned gen;             /* bumped by each reload */
};

typedef struct job {
    h2o_multithread_message_t msg; /* back to the worker */
    h2o_multithread_receiver_t *receiver;
    struct job *next; /* in the verifier's queue */
    oe_access_authfile_t *f;
    unsigned gen;
    long idx; /* the user's index in that generation; -1: unknown user (checked against the decoy) */
    char *hash;
    char user[OE_ACCESS_USER_MAX + 1];
    char password[OE_ACCESS_PASSWORD_MAX + 1];
    int ok;
    h2o_req_t *req; /* NULL once the request is gone */
    struct job **slot;
    oe_access_auth_done_cb done;
    void *data;
} job_t;

typedef struct receiver {
    h2o_multithread_queue_t *queue;
    h2o_multithread_receiver_t r;
} receiver_t;

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    job_t *head, *tail;
    unsigned pending;
    int started;
    pthread_t thread;
    unsigned char key[32];
    receiver_t *receivers[MAX_RECEIVERS]; /* reachable for the process's life */
    unsigned nreceivers;
} V = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

static __thread receiver_t *my_receiver;

/* ---- files ----------------------------------------------------------------------------- */

oe_access_users_t *oe_access_auth_load(const char *path, char *err, size_t errlen)
{
    char why[256], perr[256];
    size_t len;
    char *text = oe_config_read_file_max(path, FILE_MAX, 1, &len, why, sizeof(why));
    oe_access_users_t *u;

    if (text == NULL) {
        snprintf(err, errlen, "cannot read \"%s\": %s", path, why);
        return NULL;
    }
    u = oe_access_users_parse(text, len, perr, sizeof(perr));
    OPENSSL_cleanse(text, len);
    free(text);
    if (u == NULL)
        snprintf(err, errlen, "\"%s\": %s", path, perr);
    return u;
}

oe_access_authfile_t *oe_access_authfile_open(const char *path, char *err, size_t errlen)
{
    oe_access_authfile_t *f = calloc(1, sizeof(*f));

    if (f == NULL || (f->path = strdup(path)) == NULL) {
        free(f);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&f->lock, NULL);
    if ((f->users = oe_access_auth_load(path, err, errlen)) == NULL ||
        (f->ok = calloc(oe_access_users_count(f->users), sizeof(cached_t))) == NULL) {
        if (f->users != NULL)
            snprintf(err, errlen, "out of memory");
        oe_access_authfile_free(f);
        return NULL;
    }
    return f;
}

void oe_access_authfile_free(oe_access_authfile_t *f)
{
    if (f == NULL)
        return;
    oe_access_users_free(f->users);
    free(f->ok);
    free(f->path);
    pthread_mutex_destroy(&f->lock);
    free(f);
}

const char *oe_access_authfile_path(const oe_access_authfile_t *f)
{
    return f->path;
}

int oe_access_authfile_reload(oe_access_authfile_t *f, size_t *users, char *err, size_t errlen)
{
    oe_access_users_t *u = oe_access_auth_load(f->path, err, errlen), *old;
    cached_t *ok, *old_ok;

    if (u == NULL)
        return -1;
    if ((ok = calloc(oe_access_users_count(u), sizeof(cached_t))) == NULL) {
        oe_access_users_free(u);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    pthread_mutex_lock(&f->lock);
    old = f->users;
    old_ok = f->ok;
    f->users = u;
    f->ok = ok;
    f->gen++;
    pthread_mutex_unlock(&f->lock);
    *users = oe_access_users_count(u);
    oe_access_users_free(old); /* jobs hold copies of their hash, never a pointer into this */
    free(old_ok);
    return 0;
}

/* ---- the verifier ---------------------------------------------------------------------- */

static void mac_of(const char *user, const char *password, unsigned char out[32])
{
    char buf[OE_ACCESS_USER_MAX + OE_ACCESS_PASSWORD_MAX + 2];
    int len = snprintf(buf, sizeof(buf), "%s:%s", user, password);
    unsigned int n = 32;

    if (len < 0 || (size_t)len >= sizeof(buf))
        len = (int)sizeof(buf) - 1; /* cannot happen: both are bounded by the parser */
    HMAC(EVP_sha256(), V.key, sizeof(V.key), (const unsigned char *)buf, (size_t)len, out, &n);
    OPENSSL_cleanse(buf, sizeof(buf));
}

static void *verifier_main(void *arg)
{
    struct crypt_data *cd = arg;

    for (;;) {
        pthread_mutex_lock(&V.lock);
        while (V.head == NULL)
            pthread_cond_wait(&V.cond, &V.lock);
        job_t *j = V.head;
        if ((V.head = j->next) == NULL)
            V.tail = NULL;
        V.pending--;
        pthread_mutex_unlock(&V.lock);
        j->ok = oe_access_verify(j->hash, j->password, cd) && j->idx >= 0;
        OPENSSL_cleanse(cd, sizeof(*cd));
        h2o_multithread_send_message(j->receiver, &j->msg);
    }
    return NULL;
}

int oe_access_auth_start(char *err, size_t errlen)
{
    pthread_mutex_lock(&V.lock);
    if (V.started) {
        pthread_mutex_unlock(&V.lock);
        return 0;
    }
    struct crypt_data *cd = calloc(1, sizeof(*cd));
    if (cd == NULL || RAND_bytes(V.key, sizeof(V.key)) != 1 ||
        pthread_create(&V.thread, NULL, verifier_main, cd) != 0) {
        pthread_mutex_unlock(&V.lock);
        free(cd);
        snprintf(err, errlen, "access: cannot start the password verifier thread");
        return -1;
    }
    pthread_detach(V.thread);
    V.started = 1;
    pthread_mutex_unlock(&V.lock);
    return 0;
}

static void free_job(job_t *j)
{
    OPENSSL_cleanse(j->password, sizeof(j->password));
    free(j->hash);
    free(j);
}

/* On the worker's loop: the verifier's answers. */
static void on_results(h2o_multithread_receiver_t *r, h2o_linklist_t *messages)
{
    (void)r;
    for (h2o_linklist_t *node = messages->next, *next; node != messages; node = next) {
        next = node->next;
        job_t *j = H2O_STRUCT_FROM_MEMBER(job_t, msg.link, node);
        h2o_linklist_unlink(node);
        if (j->ok) {
            unsigned char mac[32];
            mac_of(j->user, j->password, mac);
            pthread_mutex_lock(&j->f->lock);
            if (j->f->gen == j->gen) {
                memcpy(j->f->ok[j->idx].mac, mac, sizeof(mac));
                j->f->ok[j->idx].valid = 1;
            }
            pthread_mutex_unlock(&j->f->lock);
        }
        if (j->req != NULL) {
            *j->slot = NULL;
            j->done(j->req, j->ok, j->data);
        }
        free_job(j);
    }
}

static void on_slot_dispose(void *p)
{
    job_t **slot = p;
    if (*slot != NULL)
        (*slot)->req = NULL;
}

static receiver_t *receiver_for(h2o_req_t *req)
{
    if (my_receiver != NULL)
        return my_receiver;
    receiver_t *rc = calloc(1, sizeof(*rc));
    if (rc == NULL)
        return NULL;
    pthread_mutex_lock(&V.lock);
    if (V.nreceivers == MAX_RECEIVERS) {
        pthread_mutex_unlock(&V.lock);
        free(rc);
        return NULL;
    }
    V.receivers[V.nreceivers++] = rc;
    pthread_mutex_unlock(&V.lock);
    rc->queue = h2o_multithread_create_queue(req->conn->ctx->loop);
    h2o_multithread_register_receiver(rc->queue, &rc->r, on_results);
    my_receiver = rc;
    return rc;
}

int oe_access_auth_proven(oe_access_authfile_t *f, const char *user, const char *password)
{
    unsigned char mac[32];
    long idx;
    int ok;

    mac_of(user, password, mac);
    pthread_mutex_lock(&f->lock);
    idx = oe_access_users_find(f->users, user, strlen(user));
    ok = idx >= 0 && f->ok[idx].valid && CRYPTO_memcmp(f->ok[idx].mac, mac, sizeof(mac)) == 0;
    pthread_mutex_unlock(&f->lock);
    return ok;
}

int oe_access_auth_check(oe_access_authfile_t *f, h2o_req_t *req, const char *user, const char *password,
                         oe_access_auth_done_cb done, void *data)
{
    unsigned char mac[32];
    receiver_t *rc;
    job_t *j;
    long idx;

    mac_of(user, password, mac);
    pthread_mutex_lock(&f->lock);
    idx = oe_access_users_find(f->users, user, strlen(user));
    if (idx >= 0 && f->ok[idx].valid && CRYPTO_memcmp(f->ok[idx].mac, mac, sizeof(mac)) == 0) {
        pthread_mutex_unlock(&f->lock);
        return OE_ACCESS_AUTH_OK;
    }
    if ((rc = receiver_for(req)) == NULL || (j = calloc(1, sizeof(*j))) == NULL) {
        pthread_mutex_unlock(&f->lock);
        return OE_ACCESS_AUTH_BUSY;
    }
    j->hash = strdup(idx >= 0 ? oe_access_users_hash(f->users, idx) : oe_access_users_decoy(f->users));
    j->gen = f->gen;
    pthread_mutex_unlock(&f->lock);
    if (j->hash == NULL) {
        free(j);
        return OE_ACCESS_AUTH_BUSY;
    }
    j->receiver = &rc->r;
    j->f = f;
    j->idx = idx;
    snprintf(j->user, sizeof(j->user), "%s", user);
    snprintf(j->password, sizeof(j->password), "%s", password);
    j->req = req;
    j->done = done;
    j->data = data;
    pthread_mutex_lock(&V.lock);
    if (!V.started || V.pending >= QUEUE_MAX) {
        pthread_mutex_unlock(&V.lock);
        free_job(j);
        return OE_ACCESS_AUTH_BUSY;
    }
    /* the request may end (client gone) before the answer: its pool then unlinks it */
    j->slot = h2o_mem_alloc_shared(&req->pool, sizeof(job_t *), on_slot_dispose);
    *j->slot = j;
    if (V.tail != NULL)
        V.tail->next = j;
    else
        V.head = j;
    V.tail = j;
    V.pending++;
    pthread_cond_signal(&V.cond);
    pthread_mutex_unlock(&V.lock);
    return OE_ACCESS_AUTH_PENDING;
}
