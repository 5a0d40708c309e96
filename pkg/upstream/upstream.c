/* upstream — see upstream.h. */
#include "upstream/upstream.h"
#include "upstream/internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loop/loop.h"
#include "metrics/metrics.h"

#define MAX_IDLE_PER_THREAD 1024 /* beyond this a returned connection is closed */
/* The kernel's receive buffer of an upstream socket, fixed (no autotuning to megabytes):
 * when a client stops reading, the upstream feels the backpressure after this much. */
#define UPSTREAM_RCVBUF (128 * 1024)

struct oe_upstream_connect {
    oe_upstream_server_t *srv;
    h2o_context_t *ctx;
    h2o_hostinfo_getaddr_req_t *getaddr;
    h2o_socket_t *sock;
    h2o_timeout_entry_t timeout;
    h2o_timeout_entry_t later; /* reports a failure from the loop, not from inside the call */
    const char *error;
    oe_upstream_connect_cb cb;
    void *data;
};

typedef struct idle_conn {
    h2o_linklist_t link; /* most recently returned last */
    h2o_timeout_entry_t expire;
    h2o_socket_t *sock;
    unsigned server_id;
} idle_conn_t;

typedef struct {
    h2o_loop_t *loop;
    h2o_linklist_t **lists; /* one anchor per server id, made on first use */
    size_t nlists;
    size_t count;
} thread_pool_t;

static oe_tcp_keepalive_t keepalive;
static unsigned next_server_id;
static __thread thread_pool_t tpool;

/* ---- sockets ------------------------------------------------------------------------- */

void oe_upstream_set_keepalive(int fd, const oe_tcp_keepalive_t *ka)
{
    int on = ka->enabled ? 1 : 0;
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
    if (!on)
        return;
    int idle = (int)ka->idle_s, intvl = (int)ka->interval_s, cnt = (int)ka->count;
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
}

void oe_upstream_configure(const oe_tcp_keepalive_t *ka)
{
    keepalive = *ka;
}

oe_upstream_server_t *oe_upstream_server_new(const char *url, const char *host, uint16_t port, char *err, size_t errlen)
{
    oe_upstream_server_t *s = calloc(1, sizeof(*s));
    if (s == NULL || (s->url = strdup(url)) == NULL || (s->host = strdup(host)) == NULL) {
        snprintf(err, errlen, "upstream %s: out of memory", url);
        if (s != NULL)
            free(s->url);
        free(s);
        return NULL;
    }
    s->id = __atomic_fetch_add(&next_server_id, 1, __ATOMIC_RELAXED);
    pthread_mutex_init(&s->lock, NULL);
    s->port = port;
    snprintf(s->port_str, sizeof(s->port_str), "%u", port);
    struct sockaddr_in *v4 = (void *)&s->addr;
    struct sockaddr_in6 *v6 = (void *)&s->addr;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        s->addrlen = sizeof(*v4);
        s->literal = 1;
    } else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        s->addrlen = sizeof(*v6);
        s->literal = 1;
    }
    return s;
}

const char *oe_upstream_server_url(const oe_upstream_server_t *srv)
{
    return srv->url;
}

/* ---- idle connections ---------------------------------------------------------------- */

static h2o_linklist_t *idle_list(unsigned id, h2o_loop_t *loop, int create)
{
    if (tpool.loop != loop) {
        if (!create)
            return NULL;
        tpool.loop = loop;
    }
    if (id >= tpool.nlists) {
        if (!create)
            return NULL;
        size_t n = id + 8;
        h2o_linklist_t **l = realloc(tpool.lists, n * sizeof(h2o_linklist_t *));
        if (l == NULL)
            return NULL;
        for (size_t i = tpool.nlists; i < n; i++)
            l[i] = NULL;
        tpool.lists = l;
        tpool.nlists = n;
    }
    if (tpool.lists[id] == NULL) {
        if (!create)
            return NULL;
        h2o_linklist_t *anchor = malloc(sizeof(*anchor));
        if (anchor == NULL)
            return NULL;
        h2o_linklist_init_anchor(anchor);
        tpool.lists[id] = anchor;
    }
    return tpool.lists[id];
}

static h2o_socket_t *unlink_idle(idle_conn_t *c)
{
    h2o_socket_t *sock = c->sock;
    h2o_linklist_unlink(&c->link);
    if (h2o_timeout_is_linked(&c->expire))
        h2o_timeout_unlink(&c->expire);
    tpool.count--;
    free(c);
    sock->data = NULL;
    return sock;
}

static void on_idle_expired(h2o_timeout_entry_t *entry)
{
    h2o_socket_close(unlink_idle(H2O_STRUCT_FROM_MEMBER(idle_conn_t, expire, entry)));
}

/* Readable while idle: the upstream closed it, or sent bytes nobody asked for (a reused
 * connection would then read them as the next response). Either way it is unusable. */
static void on_idle_read(h2o_socket_t *sock, const char *err)
{
    (void)err;
    h2o_socket_close(unlink_idle(sock->data));
}

h2o_socket_t *oe_upstream_idle_take(oe_upstream_server_t *srv, h2o_loop_t *loop)
{
    h2o_linklist_t *l = idle_list(srv->id, loop, 0);
    if (l == NULL || h2o_linklist_is_empty(l))
        return NULL;
    idle_conn_t *c = H2O_STRUCT_FROM_MEMBER(idle_conn_t, link, l->prev);
    oe_metrics_inc(&oe_metrics_self()->upstream_reused, 1);
    return unlink_idle(c);
}

void oe_upstream_idle_put(oe_upstream_server_t *srv, h2o_socket_t *sock, uint64_t keepalive_ms)
{
    h2o_loop_t *loop = h2o_socket_get_loop(sock);
    h2o_linklist_t *l;
    idle_conn_t *c;
    if (keepalive_ms == 0 || tpool.count >= MAX_IDLE_PER_THREAD || h2o_socket_is_writing(sock) ||
        (l = idle_list(srv->id, loop, 1)) == NULL || (c = calloc(1, sizeof(*c))) == NULL) {
        h2o_socket_close(sock);
        return;
    }
    c->sock = sock;
    c->server_id = srv->id;
    c->expire.cb = on_idle_expired;
    h2o_linklist_insert(l, &c->link);
    h2o_timeout_link(loop, oe_loop_timeout(loop, keepalive_ms), &c->expire);
    tpool.count++;
    sock->data = c;
    h2o_socket_read_start(sock, on_idle_read); /* usually already reading: no epoll change */
}

void oe_upstream_thread_exit(void)
{
    for (size_t i = 0; i < tpool.nlists; i++) {
        h2o_linklist_t *anchor = tpool.lists[i];
        if (anchor == NULL)
            continue;
        h2o_linklist_t *node = anchor->next;
        while (node != anchor) {
            h2o_linklist_t *next = node->next;
            idle_conn_t *c = H2O_STRUCT_FROM_MEMBER(idle_conn_t, link, node);
            h2o_socket_t *sock = c->sock;
            if (h2o_timeout_is_linked(&c->expire))
                h2o_timeout_unlink(&c->expire);
            free(c);
            sock->data = NULL;
            h2o_socket_close(sock);
            node = next;
        }
        free(anchor);
    }
    free(tpool.lists);
    tpool = (thread_pool_t){0};
}

/* ---- connecting ---------------------------------------------------------------------- */

static void connect_done(oe_upstream_connect_t *c, h2o_socket_t *sock, const char *err)
{
    oe_upstream_connect_cb cb = c->cb;
    void *data = c->data;
    if (h2o_timeout_is_linked(&c->timeout))
        h2o_timeout_unlink(&c->timeout);
    if (h2o_timeout_is_linked(&c->later))
        h2o_timeout_unlink(&c->later);
    free(c);
    cb(data, sock, err);
}

static void on_connected(h2o_socket_t *sock, const char *err)
{
    oe_upstream_connect_t *c = sock->data;
    sock->data = NULL;
    c->sock = NULL;
    if (err != NULL) {
        h2o_socket_close(sock);
        connect_done(c, NULL, err == h2o_socket_error_conn_fail ? "connection refused" : err);
        return;
    }
    int fd = h2o_socket_get_fd(sock), one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    oe_upstream_set_keepalive(fd, &keepalive);
    connect_done(c, sock, NULL);
}

/* A non-blocking connect on a socket set up before connect() (the receive buffer must be
 * fixed before the handshake), handed to libh2o's loop like h2o_socket_connect() does. */
static void start_connect(oe_upstream_connect_t *c, struct sockaddr *sa, socklen_t len)
{
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), rcvbuf = UPSTREAM_RCVBUF;
    if (fd >= 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    if (fd < 0 || (connect(fd, sa, len) != 0 && errno != EINPROGRESS)) {
        if (fd >= 0)
            close(fd);
        c->error = "cannot connect";
        h2o_timeout_link(c->ctx->loop, &c->ctx->zero_timeout, &c->later);
        return;
    }
    c->sock = h2o_evloop_socket_create(c->ctx->loop, fd, H2O_SOCKET_FLAG_IS_CONNECTING);
    /* the owner reads the descriptor itself, so that it decides how much is read */
    h2o_socket_dont_read(c->sock, 1);
    c->sock->data = c;
    h2o_socket_notify_write(c->sock, on_connected);
    oe_metrics_inc(&oe_metrics_self()->upstream_connects, 1);
}

static void on_getaddr(h2o_hostinfo_getaddr_req_t *req, const char *errstr, struct addrinfo *res, void *data)
{
    oe_upstream_connect_t *c = data;
    (void)req;
    c->getaddr = NULL;
    if (errstr != NULL) {
        connect_done(c, NULL, errstr);
        return;
    }
    if (res == NULL) {
        connect_done(c, NULL, "the name resolved to no address");
        return;
    }
    /* one of the addresses at random, so that a name with several spreads the load */
    size_t n = 0;
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next)
        n++;
    struct addrinfo *ai = res;
    for (size_t i = (size_t)rand() % n; i != 0 && ai->ai_next != NULL; i--)
        ai = ai->ai_next;
    start_connect(c, ai->ai_addr, ai->ai_addrlen);
}

static void on_connect_timeout(h2o_timeout_entry_t *entry)
{
    oe_upstream_connect_t *c = H2O_STRUCT_FROM_MEMBER(oe_upstream_connect_t, timeout, entry);
    if (c->getaddr != NULL)
        h2o_hostinfo_getaddr_cancel(c->getaddr);
    if (c->sock != NULL)
        h2o_socket_close(c->sock);
    connect_done(c, NULL, "connection timed out");
}

static void on_later(h2o_timeout_entry_t *entry)
{
    oe_upstream_connect_t *c = H2O_STRUCT_FROM_MEMBER(oe_upstream_connect_t, later, entry);
    connect_done(c, NULL, c->error);
}

oe_upstream_connect_t *oe_upstream_connect(h2o_context_t *ctx, oe_upstream_server_t *srv, uint64_t timeout_ms,
                                           oe_upstream_connect_cb cb, void *data)
{
    oe_upstream_connect_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->srv = srv;
    c->ctx = ctx;
    c->cb = cb;
    c->data = data;
    c->timeout.cb = on_connect_timeout;
    c->later.cb = on_later;
    h2o_timeout_link(ctx->loop, oe_loop_timeout(ctx->loop, timeout_ms), &c->timeout);
    if (srv->literal) {
        struct sockaddr_storage ss = srv->addr;
        start_connect(c, (void *)&ss, srv->addrlen);
    } else {
        c->getaddr =
            h2o_hostinfo_getaddr(&ctx->receivers.hostinfo_getaddr, h2o_iovec_init(srv->host, strlen(srv->host)),
                                 h2o_iovec_init(srv->port_str, strlen(srv->port_str)), AF_UNSPEC, SOCK_STREAM,
                                 IPPROTO_TCP, AI_ADDRCONFIG | AI_NUMERICSERV, on_getaddr, c);
    }
    return c;
}

void oe_upstream_connect_cancel(oe_upstream_connect_t *c)
{
    if (c->getaddr != NULL)
        h2o_hostinfo_getaddr_cancel(c->getaddr);
    if (c->sock != NULL) {
        c->sock->data = NULL;
        h2o_socket_close(c->sock);
    }
    if (h2o_timeout_is_linked(&c->timeout))
        h2o_timeout_unlink(&c->timeout);
    if (h2o_timeout_is_linked(&c->later))
        h2o_timeout_unlink(&c->later);
    free(c);
}
