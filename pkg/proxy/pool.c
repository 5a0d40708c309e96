/*
 * pool — idle upstream connections kept inside each worker's event loop.
 *
 * Why this exists: libh2o 2.2.5 keeps one socket pool shared by all threads, so every
 * idle upstream connection is exported out of the event loop when a response ends
 * (epoll DEL, fcntl) and imported again for the next request (fcntl x2, epoll ADD,
 * recv MSG_PEEK): five system calls per proxied request, and epoll_ctl alone was 12% of
 * ott-edge's CPU under load (tests/bench/README.md). nginx and HAProxy keep idle
 * upstream connections per worker with no such cost.
 *
 * How: libh2o's HTTP/1 client reaches its pool only through h2o_socketpool_connect()
 * and h2o_socketpool_return(), which it calls through the PLT. ott-edge's executable
 * defines both (exported dynamically, see CMakeLists.txt), so those calls come here:
 * - return: the socket stays registered in the worker's loop, reading, on a per-thread
 *   LIFO list with an idle timer (the pool's keep-alive timeout). Bytes or EOF from an
 *   idle upstream close it, as libh2o's MSG_PEEK check would have.
 * - connect: the most recently returned live socket of the same pool, handed over with
 *   no system call; otherwise libh2o's own h2o_socketpool_connect (found with
 *   dlsym(RTLD_NEXT)) opens a new connection, so connection set-up, name resolution,
 *   cancellation and the pool's connection count stay libh2o's.
 * The socket keeps the on_close hook libh2o's pool set when it connected, so closing an
 * idle socket here keeps libh2o's count right. Written against libh2o 2.2.5
 * (lib/common/socketpool.c); CMakeLists.txt pins that version.
 *
 * Owns: the per-thread idle lists. Must not touch: requests, responses, sockets in use.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>

#include "h2o_compat.h"
#include "metrics/metrics.h"
#include <h2o/socketpool.h>

#define OE_POOL_MAX_IDLE 1024 /* per worker thread; beyond this a returned socket is closed */

typedef struct idle_conn {
    h2o_linklist_t link; /* in the thread's idle list, most recently returned last */
    h2o_timeout_entry_t expire;
    h2o_socket_t *sock;
    h2o_socketpool_t *pool;
} idle_conn_t;

typedef struct {
    h2o_loop_t *loop;
    h2o_linklist_t idle;
    size_t count;
    uint64_t timeout_ms;
    h2o_timeout_t timeout;
} thread_pool_t;

typedef void (*socketpool_connect_fn)(h2o_socketpool_connect_request_t **, h2o_socketpool_t *, h2o_loop_t *,
                                      h2o_multithread_receiver_t *, h2o_socketpool_connect_cb, void *);

static __thread thread_pool_t *tpool;

/* The thread's list, made on first use for this loop; NULL when out of memory. */
static thread_pool_t *thread_pool(h2o_loop_t *loop, uint64_t timeout_ms)
{
    if (tpool != NULL)
        return tpool->loop == loop && tpool->timeout_ms == timeout_ms ? tpool : NULL;
    thread_pool_t *tp = calloc(1, sizeof(*tp));
    if (tp == NULL)
        return NULL;
    tp->loop = loop;
    tp->timeout_ms = timeout_ms;
    h2o_linklist_init_anchor(&tp->idle);
    h2o_timeout_init(loop, &tp->timeout, timeout_ms);
    tpool = tp;
    return tp;
}

/* Unlinks an entry and gives its socket back; the caller closes or reuses it. */
static h2o_socket_t *take(idle_conn_t *c)
{
    h2o_socket_t *sock = c->sock;
    h2o_linklist_unlink(&c->link);
    if (h2o_timeout_is_linked(&c->expire))
        h2o_timeout_unlink(&c->expire);
    tpool->count--;
    free(c);
    sock->data = NULL;
    return sock;
}

static void on_idle_expired(h2o_timeout_entry_t *entry)
{
    idle_conn_t *c = H2O_STRUCT_FROM_MEMBER(idle_conn_t, expire, entry);
    h2o_socket_close(take(c)); /* libh2o's on_close hook lowers the pool's count */
}

static void on_idle_read(h2o_socket_t *sock, const char *err)
{
    (void)err; /* EOF, an error or bytes nobody asked for: the connection is unusable */
    h2o_socket_close(take(sock->data));
}

void h2o_socketpool_connect(h2o_socketpool_connect_request_t **req, h2o_socketpool_t *pool, h2o_loop_t *loop,
                            h2o_multithread_receiver_t *getaddr_receiver, h2o_socketpool_connect_cb cb, void *data)
{
    static socketpool_connect_fn libh2o_connect;
    thread_pool_t *tp = tpool != NULL && tpool->loop == loop ? tpool : NULL;
    if (tp != NULL) {
        for (h2o_linklist_t *l = tp->idle.prev; l != &tp->idle; l = l->prev) {
            idle_conn_t *c = H2O_STRUCT_FROM_MEMBER(idle_conn_t, link, l);
            if (c->pool != pool)
                continue;
            h2o_socket_t *sock = take(c);
            h2o_socket_read_stop(sock); /* the client starts reading once its request is out */
            if (req != NULL)
                *req = NULL;
            oe_metrics_inc(&oe_metrics_self()->upstream_reused, 1);
            cb(sock, NULL, data);
            return;
        }
    }
    if (libh2o_connect == NULL) /* benign race: every thread stores the same address */
        libh2o_connect = (socketpool_connect_fn)dlsym(RTLD_NEXT, "h2o_socketpool_connect");
    if (libh2o_connect == NULL) {
        if (req != NULL)
            *req = NULL;
        cb(NULL, "ott-edge: libh2o's h2o_socketpool_connect not found", data);
        return;
    }
    oe_metrics_inc(&oe_metrics_self()->upstream_connects, 1);
    libh2o_connect(req, pool, loop, getaddr_receiver, cb, data);
}

int h2o_socketpool_return(h2o_socketpool_t *pool, h2o_socket_t *sock)
{
    thread_pool_t *tp = thread_pool(h2o_socket_get_loop(sock), pool->timeout == UINT64_MAX ? 0 : pool->timeout);
    idle_conn_t *c = NULL;
    if (tp == NULL || tp->timeout_ms == 0 || tp->count >= OE_POOL_MAX_IDLE || h2o_socket_is_writing(sock) ||
        (c = calloc(1, sizeof(*c))) == NULL) {
        h2o_socket_close(sock);
        return -1;
    }
    c->sock = sock;
    c->pool = pool;
    c->expire.cb = on_idle_expired;
    h2o_linklist_insert(&tp->idle, &c->link);
    h2o_timeout_link(tp->loop, &tp->timeout, &c->expire);
    tp->count++;
    sock->data = c;
    h2o_socket_read_start(sock, on_idle_read);
    return 0;
}
