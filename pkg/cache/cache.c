/* cache — the h2o side of the edge cache: lookup handler, capture filter, waking
 * coalesced requests, metrics (see cache.h; the store is store.c/store.h, the rules policy.c). */
#include "cache/cache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache/store.h"
#include "compress/compress.h"
#include "metrics/metrics.h"
#include "util/util.h"

#define PASS_TTL_MS       60000 /* a URL answered uncacheable is not coalesced for this long */
#define ERROR_PASS_TTL_MS 2000  /* nor, briefly, one answered with an error */
#define MAX_WAITS         2     /* times a request may wait for another's fetch */
#define ENV_NAME          "oe.cache"

enum { ROLE_NONE = 0, ROLE_LEADER, ROLE_WAITER, ROLE_HIT };

typedef struct {
    h2o_handler_t super;
} handler_t;

/* One per worker thread: where coalesced requests parked on that thread are woken. */
typedef struct {
    h2o_multithread_queue_t *queue;
    h2o_multithread_receiver_t receiver;
    h2o_timeout_t lock_timeout; /* cache.lock_timeout for the requests parked on this thread */
} thread_q_t;

struct waiter;

/* Per-request state (in the request's pool; found through req->env). */
typedef struct reqstate {
    handler_t *h;
    h2o_req_t *req;
    int role;
    int waits;                   /* times parked behind another's fetch (at most MAX_WAITS) */
    h2o_iovec_t base;            /* key without Vary'd values */
    oe_cache_pending_t *pending; /* leader: the miss others wait on, until resolved */
    struct waiter *waiter;       /* parked: the store's queue entry */
    oe_cache_obj_t *hit;         /* the object being sent (a reference) */
    h2o_generator_t gen;
    h2o_iovec_t bodyvec;
    /* capture (leader with a storable response) */
    oe_cache_obj_t *snap; /* status line and headers, body filled at the end */
    oe_cache_obj_t *vary_marker;
    char *buf;
    size_t len, cap;
    int64_t ttl;
    h2o_iovec_t inm, ims;           /* a leader's conditionals, held back from the upstream */
    int swallow;                    /* the leader's client gets a 304: the body is only stored */
    h2o_timeout_entry_t wait_timer; /* a waiter's cache.lock_timeout */
} reqstate_t;

typedef struct waiter {
    h2o_multithread_message_t msg;
    oe_cache_waiter_t w;
    reqstate_t *st; /* NULL once the request went away after being woken */
    thread_q_t *tq;
} waiter_t;

static oe_cache_settings_t settings;
static oe_cache_store_t *store;
static __thread thread_q_t *my_tq;
/* keeps them reachable for leak checkers (volatile: a write-only array would be optimised away) */
static thread_q_t *volatile all_tq[OE_METRICS_MAX_WORKERS * 2];
static unsigned n_tq;
static uint64_t stat_hits, stat_misses, stat_coalesced, stat_not_modified, stat_lock_timeouts;

static void on_wake(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages);
static void on_wait_timeout(h2o_timeout_entry_t *entry);
static int lookup(reqstate_t *st);

/* ---- settings ---------------------------------------------------------------------- */

void oe_cache_settings_from_config(const oe_config_t *cfg, oe_cache_settings_t *out)
{
    *out = (oe_cache_settings_t){.enabled = cfg->cache.enabled,
                                 .max_size = cfg->cache.max_size,
                                 .max_object = cfg->cache.max_object,
                                 .lock_timeout_ms = cfg->cache.lock_timeout_ms};
    if (out->max_object > out->max_size)
        out->max_object = out->max_size;
}

/* ---- keys -------------------------------------------------------------------------- */

static h2o_iovec_t base_key(h2o_req_t *req, int enc)
{
    size_t n = 2 + req->authority.len + 1 + req->path.len;
    char *k = h2o_mem_alloc_pool(&req->pool, n);
    k[0] = (char)('0' + enc);
    k[1] = '|';
    memcpy(k + 2, req->authority.base, req->authority.len);
    h2o_strtolower(k + 2, req->authority.len);
    k[2 + req->authority.len] = '|';
    memcpy(k + 3 + req->authority.len, req->path.base, req->path.len);
    return h2o_iovec_init(k, n);
}

/* base + for each Vary'd name: "\n" name "=" the request's values (all lines, ","-joined). */
static h2o_iovec_t vary_key(h2o_req_t *req, h2o_iovec_t base, h2o_iovec_t names)
{
    h2o_iovec_t parts[64];
    size_t n = 0;
    parts[n++] = base;
    const char *p = names.base, *end = names.base + names.len;
    while (p < end && n + 4 < sizeof(parts) / sizeof(parts[0])) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = (size_t)((nl != NULL ? nl : end) - p);
        parts[n++] = h2o_iovec_init(H2O_STRLIT("\n"));
        parts[n++] = h2o_iovec_init(p, len); /* the name */
        parts[n++] = h2o_iovec_init(H2O_STRLIT("="));
        int first = 1;
        for (ssize_t i = -1; (i = h2o_find_header_by_str(&req->headers, p, len, i)) != -1 &&
                             n + 4 < sizeof(parts) / sizeof(parts[0]);) {
            if (!first)
                parts[n++] = h2o_iovec_init(H2O_STRLIT(","));
            parts[n++] = req->headers.entries[i].value;
            first = 0;
        }
        p += len + 1;
    }
    return h2o_concat_list(&req->pool, parts, n);
}

/* The response's Vary names, lower-case, "\n"-separated, without accept-encoding (the
 * coding is in the key already). Returns -1 for "Vary: *". */
static int vary_names(h2o_req_t *req, h2o_iovec_t *out)
{
    char buf[1024];
    size_t used = 0;
    for (ssize_t i = -1; (i = h2o_find_header(&req->res.headers, H2O_TOKEN_VARY, i)) != -1;) {
        h2o_iovec_t iter = req->res.headers.entries[i].value;
        const char *tok;
        size_t tlen;
        while ((tok = h2o_next_token(&iter, ',', &tlen, NULL)) != NULL) {
            if (tlen == 0 || (tlen == 1 && tok[0] == ','))
                continue;
            if (tlen == 1 && tok[0] == '*')
                return -1;
            if (h2o_lcstris(tok, tlen, H2O_STRLIT("accept-encoding")))
                continue;
            if (used + tlen + 1 > sizeof(buf))
                return -1; /* absurdly long: treat as uncacheable */
            if (used != 0)
                buf[used++] = '\n';
            memcpy(buf + used, tok, tlen);
            h2o_strtolower(buf + used, tlen);
            used += tlen;
        }
    }
    *out = h2o_strdup(&req->pool, buf, used);
    return 0;
}

/* ---- per-request state ------------------------------------------------------------- */

static void finish_leader(reqstate_t *st, oe_cache_obj_t *obj, oe_cache_obj_t *marker)
{
    h2o_linklist_t woken;
    h2o_linklist_init_anchor(&woken);
    oe_cache_store_resolve(store, st->pending, obj, marker, oe_util_now_ms(), &woken);
    st->pending = NULL;
    while (!h2o_linklist_is_empty(&woken)) { /* unlink before sending: the receiver frees it */
        waiter_t *wt = H2O_STRUCT_FROM_MEMBER(waiter_t, w.link, woken.next);
        h2o_linklist_unlink(&wt->w.link);
        h2o_multithread_send_message(&wt->tq->receiver, &wt->msg);
    }
}

static oe_cache_obj_t *pass_marker(h2o_iovec_t key, uint64_t ttl_ms)
{
    oe_cache_obj_t *m = oe_cache_obj_new(OE_CACHE_PASS, key.base, key.len, 0, 0, h2o_iovec_init(NULL, 0));
    if (m != NULL)
        m->expires_ms = oe_util_now_ms() + ttl_ms;
    return m;
}

static void on_state_dispose(void *p)
{
    reqstate_t *st = p;
    if (h2o_timeout_is_linked(&st->wait_timer))
        h2o_timeout_unlink(&st->wait_timer);
    if (st->pending != NULL) /* the leader went away before its response ended */
        finish_leader(st, NULL, NULL);
    if (st->waiter != NULL) {
        if (oe_cache_store_cancel_wait(store, &st->waiter->w))
            free(st->waiter);
        else
            st->waiter->st = NULL; /* the wake-up message frees it */
    }
    oe_cache_obj_release(st->hit);
    oe_cache_obj_release(st->snap);
    oe_cache_obj_release(st->vary_marker);
    free(st->buf);
}

static reqstate_t *get_state(h2o_req_t *req)
{
    h2o_iovec_t *v = h2o_req_getenv(req, H2O_STRLIT(ENV_NAME), 0);
    return v != NULL ? (reqstate_t *)v->base : NULL;
}

int oe_cache_served(h2o_req_t *req)
{
    reqstate_t *st = get_state(req);
    return st != NULL && st->role == ROLE_HIT;
}

static thread_q_t *thread_queue(h2o_req_t *req)
{
    if (my_tq == NULL) {
        thread_q_t *tq = calloc(1, sizeof(*tq));
        if (tq == NULL)
            return NULL;
        tq->queue = h2o_multithread_create_queue(req->conn->ctx->loop);
        h2o_multithread_register_receiver(tq->queue, &tq->receiver, on_wake);
        h2o_timeout_init(req->conn->ctx->loop, &tq->lock_timeout, settings.lock_timeout_ms);
        unsigned i = __atomic_fetch_add(&n_tq, 1, __ATOMIC_RELAXED);
        if (i < sizeof(all_tq) / sizeof(all_tq[0]))
            all_tq[i] = tq;
        my_tq = tq;
    }
    return my_tq;
}

/* ---- answering from the cache ------------------------------------------------------ */

static h2o_iovec_t req_header(h2o_req_t *req, const h2o_token_t *t)
{
    ssize_t i = h2o_find_header(&req->headers, t, -1);
    return i != -1 ? req->headers.entries[i].value : h2o_iovec_init(NULL, 0);
}

/* Whether the conditionals (If-None-Match, If-Modified-Since values; NULL when absent)
 * say the client's copy of o is current. */
static int not_modified(h2o_iovec_t inm, h2o_iovec_t ims, oe_cache_obj_t *o)
{
    if (inm.base != NULL) /* RFC 9110 13.2.2: If-None-Match wins over If-Modified-Since */
        return o->etag.len != 0 && oe_cache_etag_matches(inm.base, inm.len, o->etag.base, o->etag.len);
    if (ims.base == NULL || o->last_modified.len == 0)
        return 0;
    struct tm a, b;
    if (h2o_time_parse_rfc1123(ims.base, ims.len, &a) != 0 ||
        h2o_time_parse_rfc1123(o->last_modified.base, o->last_modified.len, &b) != 0)
        return 0;
    return timegm(&b) <= timegm(&a);
}

/* What a 304 carries (RFC 9110 15.4.5). */
static int keep_on_304(const oe_cache_header_t *h)
{
    return h->token == H2O_TOKEN_CACHE_CONTROL || h->token == H2O_TOKEN_ETAG || h->token == H2O_TOKEN_EXPIRES ||
           h->token == H2O_TOKEN_VARY || h->token == H2O_TOKEN_LAST_MODIFIED || h->token == H2O_TOKEN_CONTENT_LOCATION;
}

static void serve(reqstate_t *st, oe_cache_obj_t *o)
{
    h2o_req_t *req = st->req;
    int nm = not_modified(req_header(req, H2O_TOKEN_IF_NONE_MATCH), req_header(req, H2O_TOKEN_IF_MODIFIED_SINCE), o);
    st->role = ROLE_HIT;
    st->hit = o; /* released when the request is disposed: the body is sent straight from it */
    req->res.status = nm ? 304 : 200;
    req->res.reason = nm ? "Not Modified" : "OK";
    req->compress_hint = H2O_COMPRESS_HINT_DISABLE; /* stored in its final coding */
    for (size_t i = 0; i < o->nheaders; i++) {
        const oe_cache_header_t *h = &o->headers[i];
        if (nm && !keep_on_304(h))
            continue;
        if (h->token != NULL)
            h2o_add_header(&req->pool, &req->res.headers, h->token, NULL, h->value.base, h->value.len);
        else
            h2o_add_header_by_str(&req->pool, &req->res.headers, h->name.base, h->name.len, 0, NULL, h->value.base,
                                  h->value.len);
    }
    int64_t age = o->age_at_store + (int64_t)((oe_util_now_ms() - o->stored_ms) / 1000);
    char *agebuf = h2o_mem_alloc_pool(&req->pool, 24);
    int alen = snprintf(agebuf, 24, "%lld", (long long)age);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_AGE, NULL, agebuf, (size_t)alen);
    __atomic_fetch_add(&stat_hits, 1, __ATOMIC_RELAXED);
    if (nm)
        __atomic_fetch_add(&stat_not_modified, 1, __ATOMIC_RELAXED);

    st->gen = (h2o_generator_t){NULL, NULL};
    if (nm) {
        req->res.content_length = SIZE_MAX;
        h2o_start_response(req, &st->gen);
        h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
        return;
    }
    req->res.content_length = o->body.len;
    h2o_start_response(req, &st->gen);
    if (h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"))) {
        h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
    } else {
        st->bodyvec = o->body;
        h2o_send(req, &st->bodyvec, 1, H2O_SEND_STATE_FINAL);
    }
}

static int client_says_no_cache(h2o_req_t *req)
{
    oe_cache_cc_t cc = OE_CACHE_CC_INIT;
    for (ssize_t i = -1; (i = h2o_find_header(&req->headers, H2O_TOKEN_CACHE_CONTROL, i)) != -1;)
        oe_cache_parse_cc(req->headers.entries[i].value.base, req->headers.entries[i].value.len, &cc);
    if (cc.no_cache || cc.max_age == 0)
        return 1;
    ssize_t i = h2o_find_header_by_str(&req->headers, H2O_STRLIT("pragma"), -1);
    return i != -1 && h2o_contains_token(req->headers.entries[i].value.base, req->headers.entries[i].value.len,
                                         H2O_STRLIT("no-cache"), ',');
}

/* Returns 0 when the request was answered or parked, -1 to go on to the upstream. */
static int lookup(reqstate_t *st)
{
    h2o_req_t *req = st->req;
    int is_get = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET"));
    int use_stored = !client_says_no_cache(req);
    int can_lead = is_get && req->version >= 0x101 && h2o_find_header(&req->headers, H2O_TOKEN_RANGE, -1) == -1;
    h2o_iovec_t key = st->base;

    oe_cache_obj_t *m = oe_cache_store_get(store, st->base.base, st->base.len, oe_util_now_ms());
    if (m != NULL) {
        int pass = m->kind == OE_CACHE_PASS;
        if (m->kind == OE_CACHE_VARY)
            key = vary_key(req, st->base, m->vary);
        oe_cache_obj_release(m);
        if (pass) { /* known uncacheable: straight upstream, without a second trip to the store */
            __atomic_fetch_add(&stat_misses, 1, __ATOMIC_RELAXED);
            return -1;
        }
    }

    waiter_t *w = NULL;
    thread_q_t *tq = thread_queue(req);
    if (can_lead && st->waits < MAX_WAITS && tq != NULL && (w = calloc(1, sizeof(*w))) != NULL) {
        w->st = st; /* set before the waiter is visible to other threads */
        w->tq = tq;
        st->waiter = w;
    }
    oe_cache_obj_t *hit = NULL;
    oe_cache_pending_t *p = NULL;
    int r = oe_cache_store_acquire(store, key.base, key.len, oe_util_now_ms(), use_stored, can_lead,
                                   w != NULL ? &w->w : NULL, &hit, &p);
    if (r == OE_CACHE_WAIT) {
        st->role = ROLE_WAITER;
        st->waits++;
        if (settings.lock_timeout_ms != 0) { /* a slow or long-polling URL must not queue its callers */
            st->wait_timer.cb = on_wait_timeout;
            h2o_timeout_link(req->conn->ctx->loop, &tq->lock_timeout, &st->wait_timer);
        }
        __atomic_fetch_add(&stat_coalesced, 1, __ATOMIC_RELAXED);
        return 0;
    }
    st->waiter = NULL;
    free(w);
    if (r == OE_CACHE_HIT) {
        serve(st, hit);
        return 0;
    }
    if (r == OE_CACHE_LEAD) {
        st->role = ROLE_LEADER;
        st->pending = p;
        /* fetch the whole response to store it; the conditionals are answered here */
        st->inm = req_header(req, H2O_TOKEN_IF_NONE_MATCH);
        st->ims = req_header(req, H2O_TOKEN_IF_MODIFIED_SINCE);
        ssize_t i;
        while ((i = h2o_find_header(&req->headers, H2O_TOKEN_IF_NONE_MATCH, -1)) != -1)
            h2o_delete_header(&req->headers, i);
        while ((i = h2o_find_header(&req->headers, H2O_TOKEN_IF_MODIFIED_SINCE, -1)) != -1)
            h2o_delete_header(&req->headers, i);
    }
    __atomic_fetch_add(&stat_misses, 1, __ATOMIC_RELAXED);
    return -1;
}

static void resume(reqstate_t *st, oe_cache_obj_t *obj)
{
    h2o_req_t *req = st->req;
    if (obj != NULL && obj->kind == OE_CACHE_OBJ) {
        /* the leader's response fits this request unless a Vary'd header differs */
        h2o_iovec_t want = obj->vary.len != 0 ? vary_key(req, st->base, obj->vary) : st->base;
        if (h2o_memis(want.base, want.len, obj->key.base, obj->key.len)) {
            serve(st, obj);
            return;
        }
    }
    /* nothing fits (the leader failed or went away, or a Vary'd header differs): look again.
     * A URL found uncacheable has a PASS marker by now, so that goes straight upstream. */
    oe_cache_obj_release(obj);
    st->role = ROLE_NONE;
    if (lookup(st) != 0)
        h2o_delegate_request(req, &st->h->super);
}

static void on_wake(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    (void)receiver;
    for (h2o_linklist_t *node = messages->next, *next; node != messages; node = next) {
        next = node->next;
        waiter_t *w = H2O_STRUCT_FROM_MEMBER(waiter_t, msg.link, node);
        h2o_linklist_unlink(node);
        reqstate_t *st = w->st;
        oe_cache_obj_t *obj = w->w.obj;
        free(w);
        if (st == NULL) { /* its request is gone */
            oe_cache_obj_release(obj);
            continue;
        }
        st->waiter = NULL;
        if (h2o_timeout_is_linked(&st->wait_timer))
            h2o_timeout_unlink(&st->wait_timer);
        resume(st, obj);
    }
}

/* A coalesced miss waited cache.lock_timeout for the first request's answer: it goes to the
 * upstream itself (uncached), unless its wake-up is already on the way. */
static void on_wait_timeout(h2o_timeout_entry_t *entry)
{
    reqstate_t *st = H2O_STRUCT_FROM_MEMBER(reqstate_t, wait_timer, entry);
    if (st->waiter == NULL || !oe_cache_store_cancel_wait(store, &st->waiter->w))
        return; /* woken meanwhile: on_wake resumes it */
    free(st->waiter);
    st->waiter = NULL;
    st->role = ROLE_NONE;
    __atomic_fetch_add(&stat_lock_timeouts, 1, __ATOMIC_RELAXED);
    h2o_delegate_request(st->req, &st->h->super);
}

static int on_req(h2o_handler_t *_self, h2o_req_t *req)
{
    if (!oe_cache_request_eligible(req))
        return -1;
    reqstate_t *st = h2o_mem_alloc_shared(&req->pool, sizeof(*st), on_state_dispose);
    memset(st, 0, sizeof(*st));
    st->h = (handler_t *)_self;
    st->req = req;
    st->base = base_key(req, oe_compress_choose(req));
    *h2o_req_getenv(req, H2O_STRLIT(ENV_NAME), 1) = h2o_iovec_init(st, 0);
    return lookup(st);
}

/* ---- capturing a leader's response ------------------------------------------------- */

typedef struct {
    h2o_ostream_t super;
    reqstate_t *st;
} capture_t;

static void give_up(reqstate_t *st, uint64_t pass_ttl_ms)
{
    free(st->buf);
    st->buf = NULL;
    st->len = st->cap = 0;
    oe_cache_obj_release(st->snap);
    oe_cache_obj_release(st->vary_marker);
    st->snap = st->vary_marker = NULL;
    if (st->pending != NULL)
        finish_leader(st, NULL, pass_ttl_ms != 0 ? pass_marker(oe_cache_pending_key(st->pending), pass_ttl_ms) : NULL);
}

static void capture_do_send(h2o_ostream_t *_self, h2o_req_t *req, h2o_iovec_t *bufs, size_t bufcnt,
                            h2o_send_state_t state)
{
    reqstate_t *st = ((capture_t *)_self)->st;
    if (st->snap != NULL) {
        for (size_t i = 0; i < bufcnt && st->snap != NULL; i++) {
            if (st->len + bufs[i].len > settings.max_object) {
                give_up(st, PASS_TTL_MS); /* too big to keep: the others fetch it themselves */
                break;
            }
            if (st->len + bufs[i].len > st->cap) {
                size_t cap = st->cap != 0 ? st->cap : 16384;
                while (cap < st->len + bufs[i].len)
                    cap *= 2;
                if (cap > settings.max_object)
                    cap = settings.max_object;
                char *nb = realloc(st->buf, cap);
                if (nb == NULL) {
                    give_up(st, 0);
                    break;
                }
                st->buf = nb;
                st->cap = cap;
            }
            memcpy(st->buf + st->len, bufs[i].base, bufs[i].len);
            st->len += bufs[i].len;
        }
        if (state == H2O_SEND_STATE_FINAL && st->snap != NULL) {
            oe_cache_obj_t *o = st->snap;
            o->body = h2o_iovec_init(st->buf, st->len);
            o->charge += st->len;
            o->expires_ms = oe_util_now_ms() + (uint64_t)st->ttl * 1000;
            if (st->vary_marker != NULL)
                st->vary_marker->expires_ms = o->expires_ms;
            oe_cache_obj_t *marker = st->vary_marker;
            st->snap = st->vary_marker = NULL;
            st->buf = NULL;
            st->len = st->cap = 0;
            finish_leader(st, o, marker);
        } else if (state == H2O_SEND_STATE_ERROR) {
            give_up(st, 0); /* the fetch broke: the waiters look again, one of them leading */
        }
    }
    if (st->swallow)
        bufcnt = 0;
    h2o_ostream_send_next(_self, req, bufs, bufcnt, state);
}

/* Headers stored with the object: everything but what is per-response or per-hop. */
static int store_header(const h2o_header_t *h)
{
    return h->name != &H2O_TOKEN_DATE->buf && h->name != &H2O_TOKEN_AGE->buf && h->name != &H2O_TOKEN_CONNECTION->buf &&
           h->name != &H2O_TOKEN_TRANSFER_ENCODING->buf && h->name != &H2O_TOKEN_CONTENT_LENGTH->buf &&
           h->name != &H2O_TOKEN_STRICT_TRANSPORT_SECURITY->buf && h->name != &H2O_TOKEN_KEEP_ALIVE->buf;
}

static oe_cache_obj_t *snapshot(h2o_req_t *req, h2o_iovec_t key, h2o_iovec_t vary)
{
    size_t n = 0, strbytes = vary.len;
    for (size_t i = 0; i < req->res.headers.size; i++)
        if (store_header(&req->res.headers.entries[i])) {
            n++;
            strbytes += req->res.headers.entries[i].name->len + req->res.headers.entries[i].value.len;
        }
    oe_cache_obj_t *o = oe_cache_obj_new(OE_CACHE_OBJ, key.base, key.len, n, strbytes, h2o_iovec_init(NULL, 0));
    if (o == NULL)
        return NULL;
    char *p = o->key.base + o->key.len;
    memcpy(p, vary.base, vary.len);
    o->vary = h2o_iovec_init(p, vary.len);
    p += vary.len;
    n = 0;
    for (size_t i = 0; i < req->res.headers.size; i++) {
        const h2o_header_t *h = &req->res.headers.entries[i];
        if (!store_header(h))
            continue;
        oe_cache_header_t *d = &o->headers[n++];
        d->token = h2o_iovec_is_token(h->name) ? (const h2o_token_t *)h->name : NULL;
        d->name = h2o_iovec_init(memcpy(p, h->name->base, h->name->len), h->name->len);
        p += h->name->len;
        d->value = h2o_iovec_init(memcpy(p, h->value.base, h->value.len), h->value.len);
        p += h->value.len;
        if (d->token == H2O_TOKEN_ETAG)
            o->etag = d->value;
        else if (d->token == H2O_TOKEN_LAST_MODIFIED)
            o->last_modified = d->value;
    }
    ssize_t i = h2o_find_header(&req->res.headers, H2O_TOKEN_AGE, -1);
    int64_t age =
        i != -1 ? (int64_t)h2o_strtosize(req->res.headers.entries[i].value.base, req->res.headers.entries[i].value.len)
                : 0;
    o->age_at_store = age >= 0 && age < (int64_t)(10LL * 365 * 86400) ? age : 0;
    return o;
}

static void on_setup_ostream(h2o_filter_t *self, h2o_req_t *req, h2o_ostream_t **slot)
{
    reqstate_t *st = get_state(req);
    if (st == NULL || st->role != ROLE_LEADER || st->pending == NULL)
        goto Next;

    h2o_iovec_t names = {NULL, 0};
    int64_t ttl = req->res.status == 200 ? oe_cache_response_ttl(&req->res.headers) : 0;
    if (ttl > 0 && vary_names(req, &names) != 0)
        ttl = 0;
    if (ttl <= 0 || (req->res.content_length != SIZE_MAX && req->res.content_length > settings.max_object)) {
        /* not for sharing: wake the others now, and spare later ones the wait */
        give_up(st, req->res.status == 200 ? PASS_TTL_MS : ERROR_PASS_TTL_MS);
        goto Next;
    }
    h2o_iovec_t key = names.len != 0 ? vary_key(req, st->base, names) : st->base;
    st->snap = snapshot(req, key, names);
    if (names.len != 0 && st->snap != NULL) {
        st->vary_marker =
            oe_cache_obj_new(OE_CACHE_VARY, st->base.base, st->base.len, 0, names.len, h2o_iovec_init(NULL, 0));
        if (st->vary_marker != NULL) {
            char *p = st->vary_marker->key.base + st->vary_marker->key.len;
            st->vary_marker->vary = h2o_iovec_init(memcpy(p, names.base, names.len), names.len);
        }
    }
    if (st->snap == NULL) {
        give_up(st, 0);
        goto Next;
    }
    st->ttl = ttl;
    if ((st->inm.base != NULL || st->ims.base != NULL) && not_modified(st->inm, st->ims, st->snap)) {
        /* the leader's client had it already: answer 304, keep the body for the store only */
        st->swallow = 1;
        req->res.status = 304;
        req->res.reason = "Not Modified";
        req->res.content_length = SIZE_MAX;
        for (size_t i = 0; i < req->res.headers.size;) {
            oe_cache_header_t h = {.token = h2o_iovec_is_token(req->res.headers.entries[i].name)
                                                ? (const h2o_token_t *)req->res.headers.entries[i].name
                                                : NULL};
            if (keep_on_304(&h) || h.token == H2O_TOKEN_STRICT_TRANSPORT_SECURITY)
                i++;
            else
                h2o_delete_header(&req->res.headers, (ssize_t)i);
        }
    }
    capture_t *c = (void *)h2o_add_ostream(req, sizeof(*c), slot);
    c->super.do_send = capture_do_send;
    c->st = st;
    slot = &c->super.next;
Next:
    h2o_setup_next_ostream(req, slot);
}

/* ---- metrics and registration ------------------------------------------------------ */

static uint64_t counter(const uint64_t *c)
{
    return __atomic_load_n(c, __ATOMIC_RELAXED);
}

void oe_cache_counters(oe_cache_counters_t *out)
{
    *out = (oe_cache_counters_t){.enabled = store != NULL && settings.enabled};
    if (store == NULL)
        return;
    oe_cache_stats_t s;
    oe_cache_store_stats(store, &s);
    out->hits = counter(&stat_hits);
    out->misses = counter(&stat_misses);
    out->not_modified = counter(&stat_not_modified);
    out->stored_bytes = s.bytes;
    out->objects = s.objects;
}

static void render_metrics(void *data, oe_metrics_out_t *o)
{
    (void)data;
    oe_cache_stats_t s;
    oe_cache_store_stats(store, &s);
    oe_metrics_counter(o, "ott_edge_cache_hits_total", "Requests answered from the edge cache.",
                       (double)counter(&stat_hits));
    oe_metrics_counter(o, "ott_edge_cache_misses_total", "Cache-eligible requests sent on to the upstream.",
                       (double)counter(&stat_misses));
    oe_metrics_counter(o, "ott_edge_cache_coalesced_total", "Misses that waited for another request's fetch.",
                       (double)counter(&stat_coalesced));
    oe_metrics_counter(o, "ott_edge_cache_not_modified_total", "Hits answered 304 Not Modified.",
                       (double)counter(&stat_not_modified));
    oe_metrics_gauge(o, "ott_edge_cache_stored_bytes", "Bytes held by the cache (bounded by cache.max_size).",
                     (double)s.bytes);
    oe_metrics_gauge(o, "ott_edge_cache_objects", "Entries held by the cache.", (double)s.objects);
    oe_metrics_counter(o, "ott_edge_cache_evictions_total", "Entries evicted to stay within cache.max_size.",
                       (double)s.evictions);
    oe_metrics_counter(o, "ott_edge_cache_lock_timeouts_total",
                       "Coalesced misses that stopped waiting after cache.lock_timeout.",
                       (double)counter(&stat_lock_timeouts));
}

int oe_cache_register(h2o_pathconf_t *pc, const oe_config_t *cfg, char *err, size_t errlen)
{
    oe_cache_settings_from_config(cfg, &settings);
    if (!settings.enabled)
        return 0;
    if (store == NULL) {
        if ((store = oe_cache_store_new(settings.max_size, settings.max_object)) == NULL) {
            snprintf(err, errlen, "cache: out of memory creating the store (cache.max_size)");
            return -1;
        }
        oe_metrics_add_section(render_metrics, NULL);
    }
    handler_t *h = (void *)h2o_create_handler(pc, sizeof(*h));
    h->super.on_req = on_req;
    h2o_filter_t *f = h2o_create_filter(pc, sizeof(*f));
    f->on_setup_ostream = on_setup_ostream;
    return 0;
}
