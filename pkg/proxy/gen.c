/*
 * gen — generations (part of the proxy module; see proxy.h). A generation is everything
 * built from one configuration; the router takes the one in service for each request and a
 * request or a WebSocket holds it (a per-worker count, written only by its worker) until
 * it ends, so a reload never changes what is already under way. A retired generation is
 * freed once every worker has turned its loop since it was retired (so none can be about to
 * take it) and nothing holds it.
 */
#include <pthread.h>
#include <stdlib.h>

#include "metrics/metrics.h"
#include "proxy/internal.h"
#include "util/util.h"

struct oe_proxy_gen {
    uint64_t number;
    const oe_config_t *cfg;
    oe_proxy_gen_free_cb free_cfg;
    void *payload;
    void (*free_payload)(void *);
    uint64_t refs[OE_METRICS_MAX_WORKERS]; /* each written by its worker only */
    uint64_t refs_other;                   /* other threads (atomic) */
    uint64_t retired_at_ms;                /* 0 while in service */
    struct oe_proxy_gen *next_retired;
};

static oe_proxy_gen_t *current; /* read by any thread (atomic), written by the main thread */
static pthread_mutex_t other_lock = PTHREAD_MUTEX_INITIALIZER; /* threads other than workers */
static oe_proxy_gen_t *retired;                                /* the main thread's */
static uint64_t generations;

oe_proxy_gen_t *oe_proxy_gen_new(const oe_config_t *cfg, void *payload, void (*free_payload)(void *))
{
    oe_proxy_gen_t *g = calloc(1, sizeof(*g));
    if (g == NULL)
        return NULL;
    g->cfg = cfg;
    g->payload = payload;
    g->free_payload = free_payload;
    return g;
}

void *oe_proxy_gen_payload(const oe_proxy_gen_t *g)
{
    return g->payload;
}

static void gen_free(oe_proxy_gen_t *g)
{
    g->free_payload(g->payload);
    if (g->free_cfg != NULL)
        g->free_cfg((oe_config_t *)g->cfg);
    free(g);
}

void oe_proxy_gen_discard(oe_proxy_gen_t *g)
{
    g->free_cfg = NULL; /* the caller still owns the configuration */
    gen_free(g);
}

void oe_proxy_gen_swap(oe_proxy_gen_t *g, oe_proxy_gen_free_cb free_cfg)
{
    g->free_cfg = free_cfg;
    g->number = ++generations;
    pthread_mutex_lock(&other_lock);
    oe_proxy_gen_t *old = __atomic_exchange_n(&current, g, __ATOMIC_ACQ_REL);
    pthread_mutex_unlock(&other_lock);
    if (old != NULL) {
        old->retired_at_ms = oe_util_now_ms();
        old->next_retired = retired;
        retired = old;
    }
}

oe_proxy_gen_t *oe_proxy_gen_current(void)
{
    return __atomic_load_n(&current, __ATOMIC_ACQUIRE);
}

oe_proxy_gen_t *oe_proxy_gen_acquire(void)
{
    /* not a worker: the loop-turn rule does not cover this thread, the lock does (a swap
     * cannot come between taking the pointer and holding it) */
    pthread_mutex_lock(&other_lock);
    oe_proxy_gen_t *g = __atomic_load_n(&current, __ATOMIC_ACQUIRE);
    if (g != NULL)
        __atomic_add_fetch(&g->refs_other, 1, __ATOMIC_ACQ_REL);
    pthread_mutex_unlock(&other_lock);
    return g;
}

const oe_config_t *oe_proxy_gen_config(const oe_proxy_gen_t *g)
{
    return g->cfg;
}

uint64_t oe_proxy_gen_number(const oe_proxy_gen_t *g)
{
    return g->number;
}

void oe_proxy_gen_hold(oe_proxy_gen_t *g)
{
    int w = oe_metrics_thread_index();
    if (w >= 0)
        __atomic_store_n(&g->refs[w], __atomic_load_n(&g->refs[w], __ATOMIC_RELAXED) + 1, __ATOMIC_RELEASE);
    else
        __atomic_add_fetch(&g->refs_other, 1, __ATOMIC_ACQ_REL);
}

void oe_proxy_gen_release(oe_proxy_gen_t *g)
{
    if (g == NULL)
        return;
    int w = oe_metrics_thread_index();
    if (w >= 0)
        __atomic_store_n(&g->refs[w], __atomic_load_n(&g->refs[w], __ATOMIC_RELAXED) - 1, __ATOMIC_RELEASE);
    else
        __atomic_sub_fetch(&g->refs_other, 1, __ATOMIC_ACQ_REL);
}

size_t oe_proxy_gen_collect(uint64_t (*turned_after)(uint64_t ms))
{
    size_t left = 0;
    for (oe_proxy_gen_t **p = &retired; *p != NULL;) {
        oe_proxy_gen_t *g = *p;
        uint64_t held = __atomic_load_n(&g->refs_other, __ATOMIC_ACQUIRE);
        for (unsigned w = 0; w < OE_METRICS_MAX_WORKERS; w++)
            held += __atomic_load_n(&g->refs[w], __ATOMIC_ACQUIRE);
        if (held == 0 && turned_after(g->retired_at_ms)) {
            *p = g->next_retired;
            gen_free(g);
        } else {
            p = &g->next_retired;
            left++;
        }
    }
    return left;
}
