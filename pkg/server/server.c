/* server — see server.h. */
#include "server/server.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "access/access.h"
#include "h2o_compat.h"
#include "handover/handover.h"
#include "http1/http1.h"
#include "log/log.h"
#include "loop/loop.h"
#include "metrics/metrics.h"
#include "pages/pages.h"
#include "proxy/proxy.h"
#include "server/abuse.h"
#include "server/h2guard.h"
#include "server/http_listener.h"
#include "tls/tls.h"
#include "tunnel/tunnel.h"
#include "upstream/upstream.h"
#include "util/util.h"

enum { STATE_RUNNING = 0, STATE_STOP_ACCEPTING = 1, STATE_STOPPING = 2 };
enum { L_HTTPS = 0, L_HTTP = 1 };
#define OE_SERVER_MAX_LISTEN 8 /* listening sockets per worker (more when a handover brings more) */

typedef struct worker {
    h2o_context_t ctx; /* first: handlers find their worker from req->conn->ctx */
    unsigned index;
    oe_server_t *srv;
    h2o_evloop_t *loop;
    h2o_accept_ctx_t accept_https, accept_http;
    int fds[2][OE_SERVER_MAX_LISTEN]; /* [HTTPS or HTTP][i]: listening sockets */
    size_t nfds[2];
    h2o_socket_t *lis[2][OE_SERVER_MAX_LISTEN];
    int listeners_closed;
    int websockets_closed;
    int wake_fd; /* oe_loop_wake: rung when srv->state and the like change */
    h2o_socket_t *wake_sock;
    pthread_t thread;
    int started;
} worker_t;

struct oe_server {
    const oe_config_t *cfg;
    h2o_globalconf_t gc;
    h2o_hostconf_t *hosts_https[2], *hosts_http[2];
    unsigned nworkers;
    worker_t *workers;
    int state;
    int close_websockets;   /* drain: end every WebSocket with 1001 */
    h2o_pathconf_t *router; /* the HTTPS listener's path (generations are built against it) */
};

typedef struct {
    h2o_logger_t super;
    int site_path; /* on a site's path (the request held its generation) */
} account_logger_t;

/* Per-connection record, kept as the socket's on_close data for its whole life. */
typedef struct conn_rec {
    worker_t *w;
    h2o_socket_t *sock;
    h2o_timeout_entry_t hs_timeout;
    struct timeval connected_at;
    h2o_socket_cb h2_read; /* libh2o's HTTP/2 read callback, wrapped by on_h2_read */
    oe_h2guard_t *h2guard; /* HTTP/2 flood budgets (NULL for HTTP/1) */
    char *sni;             /* the TLS server name (kept only when there are several sites) */
    int sni_site;          /* the site it names in generation sni_gen; -1: none */
    uint64_t sni_gen;
    uint32_t access; /* oe_access_conn_open's ticket */
    unsigned in_handshake : 1;
    unsigned websocket : 1;
    unsigned cut : 1;
} conn_rec_t;

/* The connection whose libh2o callback is running, to learn whether it closed. */
static __thread conn_rec_t *watched;
static __thread int watched_closed;

static int draining;
/* The server lives until the process exits; volatile so the compiler keeps this one
 * reference (leak checkers then see it as reachable, not lost). */
static oe_server_t *volatile the_server;

/* ---- binding ----------------------------------------------------------------------- */

static int bind_one(const char *addr, const char *what, char *err, size_t errlen)
{
    char key[32];
    snprintf(key, sizeof(key), "listen.%s", what);
    return oe_util_listen(addr, key, OE_UTIL_LISTEN_REUSEPORT | OE_UTIL_LISTEN_NODELAY, 4096, err, errlen);
}

/*
 * The listening sockets of one listener for every worker: the ones a previous ott-edge
 * handed over (an upgrade: none may be closed, or the connections queued on it would be
 * reset), spread over the workers, then new ones (SO_REUSEPORT) for workers still without.
 */
static int listen_all(oe_server_t *srv, int which, const char *name, const char *addr, const oe_tcp_keepalive_t *ka,
                      char *err, size_t errlen)
{
    int taken[OE_HANDOVER_MAX_FDS];
    size_t n = oe_handover_take(name, addr, taken, OE_HANDOVER_MAX_FDS);
    for (size_t i = 0; i < n; i++) {
        worker_t *w = &srv->workers[i % srv->nworkers];
        if (w->nfds[which] == OE_SERVER_MAX_LISTEN) {
            snprintf(err, errlen, "listen.%s: too many sockets handed over (%zu)", name, n);
            return -1;
        }
        w->fds[which][w->nfds[which]++] = taken[i];
    }
    for (unsigned i = 0; i < srv->nworkers; i++) {
        worker_t *w = &srv->workers[i];
        if (w->nfds[which] != 0)
            continue;
        int fd = bind_one(addr, name, err, errlen);
        if (fd < 0)
            return -1;
        w->fds[which][w->nfds[which]++] = fd;
    }
    /* accepted sockets inherit the listener's keepalive settings: no system call per accept */
    for (unsigned i = 0; i < srv->nworkers; i++)
        for (size_t k = 0; k < srv->workers[i].nfds[which]; k++)
            oe_upstream_set_keepalive(srv->workers[i].fds[which][k], ka);
    return 0;
}

oe_server_t *oe_server_bind(const oe_config_t *cfg, char *err, size_t errlen)
{
    oe_server_t *srv = calloc(1, sizeof(*srv));
    unsigned n = cfg->threads > 0 ? (unsigned)cfg->threads : 1;
    if (n > OE_METRICS_MAX_WORKERS)
        n = OE_METRICS_MAX_WORKERS;
    if (srv == NULL || (srv->workers = calloc(n, sizeof(worker_t))) == NULL) {
        snprintf(err, errlen, "server: out of memory");
        free(srv);
        return NULL;
    }
    oe_tcp_keepalive_t ka = oe_config_tcp_keepalive(cfg);
    srv->cfg = cfg;
    srv->nworkers = n;
    for (unsigned i = 0; i < n; i++) {
        srv->workers[i].index = i;
        srv->workers[i].srv = srv;
    }
    if (listen_all(srv, L_HTTPS, "https", cfg->listen.https, &ka, err, errlen) != 0 ||
        (cfg->listen.http[0] != '\0' && listen_all(srv, L_HTTP, "http", cfg->listen.http, &ka, err, errlen) != 0)) {
        for (unsigned i = 0; i < n; i++)
            for (int l = 0; l < 2; l++)
                for (size_t k = 0; k < srv->workers[i].nfds[l]; k++)
                    close(srv->workers[i].fds[l][k]);
        free(srv->workers);
        free(srv);
        return NULL;
    }
    oe_metrics_set_worker_count(n);
    the_server = srv;
    return srv;
}

size_t oe_server_listen_fds(oe_server_t *srv, oe_handover_fd_t *out, size_t max)
{
    size_t k = 0;
    for (int l = 0; l < 2; l++)
        for (unsigned i = 0; i < srv->nworkers; i++)
            for (size_t j = 0; j < srv->workers[i].nfds[l] && k < max; j++)
                out[k++] = (oe_handover_fd_t){l == L_HTTPS ? "https" : "http", srv->workers[i].fds[l][j]};
    return k;
}

/* ---- accounting handlers on the HTTPS path ------------------------------------------ */

static void on_sock_close(void *data);

static conn_rec_t *conn_rec_of(h2o_req_t *req)
{
    h2o_socket_t *sock = req->conn->callbacks->get_socket(req->conn);
    return sock != NULL && sock->on_close.cb == on_sock_close ? sock->on_close.data : NULL;
}

/* The host part of an authority: "name", "1.2.3.4", "[::1]" (the port dropped). */
static h2o_iovec_t host_of(h2o_iovec_t a)
{
    if (a.len != 0 && a.base[0] == '[') {
        const char *e = memchr(a.base, ']', a.len);
        return h2o_iovec_init(a.base, e != NULL ? (size_t)(e - a.base) + 1 : a.len);
    }
    const char *c = memchr(a.base, ':', a.len);
    return h2o_iovec_init(a.base, c != NULL ? (size_t)(c - a.base) : a.len);
}

/* The site the connection's TLS server name names in the configuration of generation gen
 * (looked up again after a reload); -1 for none. */
static int sni_site(const oe_config_t *cfg, conn_rec_t *rec, uint64_t gen)
{
    if (rec->sni == NULL)
        return -1;
    if (rec->sni_gen != gen) {
        rec->sni_site = oe_config_site_for_host(cfg, rec->sni, strlen(rec->sni));
        rec->sni_gen = gen;
    }
    return rec->sni_site;
}

/*
 * Which site serves the request (virtual hosting): its Host / :authority, exact names
 * before wildcards, else the default site. A request no site takes is never proxied: 421
 * on HTTP/2 when the connection's TLS server name named a site, else 404. A request whose
 * site is not the one its connection's server name named gets 421 (no cross-site
 * requests over one connection; browsers retry on a new one). Returns the site or -1.
 */
static int route(const oe_config_t *cfg, h2o_req_t *req, conn_rec_t *rec, uint64_t gen)
{
    int site = -1, sni = rec != NULL ? sni_site(cfg, rec, gen) : -1;
    if (req->input.authority.base != NULL && req->input.authority.base != req->hostconf->authority.hostport.base) {
        h2o_iovec_t host = host_of(req->input.authority);
        site = oe_config_site_for_host(cfg, host.base, host.len);
    }
    if (site < 0)
        site = cfg->default_site;
    if (site < 0 && !(req->version >= 0x200 && sni >= 0)) {
        oe_metrics_inc(&oe_metrics_self()->misrouted, 1);
        oe_pages_send(req, 404, "Not Found", "No site is served under this name.");
        return -1;
    }
    if (site < 0 || (sni >= 0 && site != sni)) {
        oe_metrics_inc(&oe_metrics_self()->misrouted, 1);
        oe_pages_send(req, 421, "Misdirected Request",
                      "This connection was opened for another site; open a new connection.");
        return -1;
    }
    return site;
}

/* First on the HTTPS path: accounting, then the router hands the request to its site's
 * handlers in the configuration in service (the generation is held until the request is
 * done: a reload does not change a request under way). */
static int on_req_route(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    oe_metrics_worker_t *m = oe_metrics_self();
    conn_rec_t *rec = conn_rec_of(req);
    oe_metrics_inc(&m->inflight_started, 1);
    if (rec != NULL && req->version < 0x200 && req->upgrade.base != NULL && !rec->websocket &&
        h2o_lcstris(req->upgrade.base, req->upgrade.len, H2O_STRLIT("websocket"))) {
        rec->websocket = 1;
        oe_metrics_inc(&m->ws_opened, 1);
    }
    oe_proxy_gen_t *gen = oe_proxy_gen_current();
    const oe_config_t *cfg = oe_proxy_gen_config(gen);
    /* the one-site form (OTT's default) takes every name: no lookup */
    int site = cfg->sites_count == 1 && cfg->default_site == 0 ? 0 : route(cfg, req, rec, oe_proxy_gen_number(gen));
    if (site < 0)
        return 0;
    oe_proxy_gen_hold(gen);
    req->pathconf = oe_proxy_gen_site_path(gen, (size_t)site);
    for (size_t i = 0; i < req->pathconf->handlers.size; i++)
        if (req->pathconf->handlers.entries[i]->on_req(req->pathconf->handlers.entries[i], req) == 0)
            return 0;
    oe_pages_send(req, 404, "Not Found", "Not found.");
    return 0;
}

/* Runs when a request is done, on the router's path (requests it answered itself) and on
 * every site's path (the generation it held is let go). */
static void on_log_account(h2o_logger_t *self, h2o_req_t *req)
{
    oe_metrics_worker_t *m = oe_metrics_self();
    int status = req->res.status;
    int proto = req->version >= 0x200 ? OE_PROTO_HTTP2 : OE_PROTO_HTTP1;
    oe_metrics_inc(&m->requests[proto][status >= 100 && status < 600 ? status / 100 : 0], 1);
    oe_metrics_inc(&m->inflight_done, 1);
    if (((account_logger_t *)self)->site_path)
        oe_proxy_gen_release(oe_proxy_gen_of_path(req->pathconf));
}

/* The server's logger on each site path of a generation. */
static void decorate_site_path(h2o_pathconf_t *pc, void *data)
{
    (void)data;
    account_logger_t *l = (void *)h2o_create_logger(pc, sizeof(*l));
    l->super.log_access = on_log_account;
    l->site_path = 1;
}

/* The TLS server name of a handshake (tls calls this from inside it), kept for routing. In
 * the one-site form nothing is kept: every name goes to the one site. */
static void on_sni(h2o_socket_t *sock, const char *name)
{
    if (sock == NULL || sock->on_close.cb != on_sock_close)
        return;
    conn_rec_t *rec = sock->on_close.data;
    free(rec->sni);
    rec->sni = NULL;
    rec->sni_gen = 0;
    const oe_config_t *cfg = oe_proxy_gen_config(oe_proxy_gen_current());
    if (name != NULL && !(cfg->sites_count == 1 && cfg->default_site == 0))
        rec->sni = strdup(name);
}

/* ---- accept path ------------------------------------------------------------------- */

/* Cuts a connection without touching libh2o's objects: the unread input is dropped and
 * the socket shut down, so libh2o's next read fails and it closes the connection its
 * ordinary way. The peer gets a strike (see abuse.h). */
static void cut_abusive(conn_rec_t *rec, const char *why)
{
    struct sockaddr_storage ss;
    socklen_t sl = h2o_socket_getpeername(rec->sock, (void *)&ss);
    char ip[NI_MAXHOST] = "", headers[16], resets[16];
    if (sl != 0)
        h2o_socket_getnumerichost((void *)&ss, sl, ip);
    rec->cut = 1;
    h2o_buffer_consume(&rec->sock->input, rec->sock->input->size);
    shutdown(h2o_socket_get_fd(rec->sock), SHUT_RDWR);
    oe_metrics_inc(&oe_metrics_self()->abuse_closed, 1);
    /* a trusted proxy in front carries everybody's traffic: cut, but never block it */
    oe_proxy_gen_t *gen = oe_proxy_gen_current(); /* the trust rules in service (a reload may change them) */
    const oe_config_t *cfg = gen != NULL ? oe_proxy_gen_config(gen) : rec->w->srv->cfg;
    int trusted = sl != 0 && oe_cidr_match(cfg->proxy.trusted_proxies, cfg->proxy.trusted_proxies_count, (void *)&ss);
    int blocked = sl != 0 && !trusted && oe_abuse_strike((void *)&ss, oe_now_ms());
    snprintf(headers, sizeof(headers), "%u", rec->h2guard->headers);
    snprintf(resets, sizeof(resets), "%u", rec->h2guard->resets);
    oe_log(OE_LOG_WARN, "abusive_connection_closed", "peer", ip, "reason", why, "streams_in_window", headers,
           "resets_in_window", resets, "peer_blocked", blocked ? "true" : "false", NULL);
}

/* Returns 1 when the connection was cut. */
static int guard_h2(conn_rec_t *rec)
{
    if (rec->cut)
        return 1;
    const char *why =
        oe_h2guard_scan(rec->h2guard, (const uint8_t *)rec->sock->input->bytes, rec->sock->input->size, oe_now_ms());
    if (why == NULL)
        return 0;
    cut_abusive(rec, why);
    return 1;
}

static void on_h2_read(h2o_socket_t *sock, const char *err)
{
    conn_rec_t *rec = sock->on_close.data;
    if (err == NULL)
        guard_h2(rec);
    rec->h2_read(sock, err); /* may close the connection: rec is not touched after this */
}

/* Hands an HTTP/2 connection to libh2o with its read callback wrapped by the guard. */
static void accept_h2(worker_t *w, conn_rec_t *rec)
{
    h2o_socket_t *sock = rec->sock;
    rec->h2guard = calloc(1, sizeof(*rec->h2guard));
    if (rec->h2guard == NULL) {
        h2o_socket_close(sock);
        return;
    }
    rec->h2guard->window_start_ms = oe_now_ms();
    if (sock->input->size != 0 && guard_h2(rec)) {
        h2o_socket_close(sock);
        return;
    }
    watched = rec;
    watched_closed = 0;
    h2o_http2_accept(&w->accept_https, sock, rec->connected_at); /* may parse input already read */
    watched = NULL;
    if (watched_closed)
        return;
    rec->h2_read = sock->_cb.read;
    sock->_cb.read = on_h2_read;
}

static void on_sock_close(void *data)
{
    conn_rec_t *rec = data;
    if (rec == watched)
        watched_closed = 1;
    free(rec->h2guard);
    free(rec->sni);
    oe_metrics_worker_t *m = oe_metrics_self();
    if (h2o_timeout_is_linked(&rec->hs_timeout))
        h2o_timeout_unlink(&rec->hs_timeout);
    if (rec->in_handshake)
        oe_metrics_inc(&m->handshakes_done, 1);
    if (rec->websocket)
        oe_metrics_inc(&m->ws_closed, 1);
    oe_metrics_inc(&m->conns_closed, 1);
    oe_access_conn_close(rec->access);
    free(rec);
}

static void on_handshake_timeout(h2o_timeout_entry_t *entry)
{
    conn_rec_t *rec = H2O_STRUCT_FROM_MEMBER(conn_rec_t, hs_timeout, entry);
    oe_metrics_inc(&oe_metrics_self()->tls_handshake_errors, 1);
    h2o_socket_close(rec->sock);
}

static void on_handshake(h2o_socket_t *sock, const char *err)
{
    conn_rec_t *rec = sock->on_close.data;
    worker_t *w = rec->w;
    oe_metrics_worker_t *m = oe_metrics_self();
    if (h2o_timeout_is_linked(&rec->hs_timeout))
        h2o_timeout_unlink(&rec->hs_timeout);
    rec->in_handshake = 0;
    oe_metrics_inc(&m->handshakes_done, 1);
    if (err != NULL) {
        oe_metrics_inc(&m->tls_handshake_errors, 1);
        h2o_socket_close(sock);
        return;
    }
    h2o_iovec_t proto = h2o_socket_ssl_get_selected_protocol(sock);
    if (h2o_memis(proto.base, proto.len, H2O_STRLIT("acme-tls/1"))) {
        /* RFC 8737: the validation is the handshake itself; nothing more is served */
        oe_metrics_inc(&m->acme_tls_alpn_served, 1);
        h2o_socket_close(sock);
    } else if (h2o_memis(proto.base, proto.len, H2O_STRLIT("h2"))) {
        accept_h2(w, rec);
    } else {
        oe_http1_accept(&w->accept_https, sock, rec->connected_at);
    }
}

static conn_rec_t *track(worker_t *w, h2o_socket_t *sock)
{
    struct sockaddr_storage ss;
    if (h2o_socket_getpeername(sock, (void *)&ss) != 0 && oe_abuse_blocked((void *)&ss, oe_now_ms())) {
        oe_metrics_inc(&oe_metrics_self()->abuse_refused, 1);
        return NULL;
    }
    conn_rec_t *rec = calloc(1, sizeof(*rec));
    if (rec == NULL || oe_access_conn_open(sock, &rec->access) != 0) { /* access.max_connections */
        free(rec);
        return NULL;
    }
    rec->w = w;
    rec->sock = sock;
    rec->sni_site = -1;
    rec->connected_at = *h2o_get_timestamp(&w->ctx, NULL, NULL);
    rec->hs_timeout.cb = on_handshake_timeout;
    sock->on_close.cb = on_sock_close;
    sock->on_close.data = rec;
    oe_metrics_inc(&oe_metrics_self()->conns_accepted, 1);
    return rec;
}

static void on_accept_https(h2o_socket_t *listener, const char *err)
{
    worker_t *w = listener->data;
    if (err != NULL)
        return;
    for (int i = 0; i < 32; i++) { /* a bounded batch per wakeup keeps the loop fair */
        h2o_socket_t *sock = h2o_evloop_socket_accept(listener);
        if (sock == NULL)
            return;
        conn_rec_t *rec = track(w, sock);
        if (rec == NULL) {
            h2o_socket_close(sock);
            continue;
        }
        rec->in_handshake = 1;
        oe_metrics_inc(&oe_metrics_self()->handshakes_started, 1);
        sock->data = rec;
        h2o_timeout_link(w->loop, &w->ctx.handshake_timeout, &rec->hs_timeout);
        h2o_socket_ssl_handshake(sock, oe_tls_front_ctx(), NULL, on_handshake);
    }
}

static void on_accept_http(h2o_socket_t *listener, const char *err)
{
    worker_t *w = listener->data;
    if (err != NULL)
        return;
    for (int i = 0; i < 32; i++) {
        h2o_socket_t *sock = h2o_evloop_socket_accept(listener);
        if (sock == NULL)
            return;
        conn_rec_t *rec = track(w, sock);
        if (rec == NULL) {
            h2o_socket_close(sock);
            continue;
        }
        oe_http1_accept(&w->accept_http, sock, rec->connected_at);
    }
}

/* ---- worker threads ---------------------------------------------------------------- */

/* An idle loop turns once a second (the heartbeat /livez reads); state changes wake it at once. */
#define WORKER_TICK_MS 1000

static void wake_workers(oe_server_t *srv)
{
    for (unsigned i = 0; i < srv->nworkers; i++)
        if (srv->workers[i].started)
            oe_loop_wake_ring(srv->workers[i].wake_fd);
}

static void close_listeners(worker_t *w)
{
    for (int l = 0; l < 2; l++)
        for (size_t k = 0; k < w->nfds[l]; k++)
            if (w->lis[l][k] != NULL) {
                h2o_socket_read_stop(w->lis[l][k]);
                h2o_socket_close(w->lis[l][k]);
                w->lis[l][k] = NULL;
            }
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    oe_server_t *srv = w->srv;
    oe_metrics_bind_thread(w->index);
    oe_metrics_worker_t *m = oe_metrics_self();
    w->wake_sock = oe_loop_wake_attach(w->loop, w->wake_fd); /* on this thread: see loop.h */

    while (__atomic_load_n(&srv->state, __ATOMIC_ACQUIRE) < STATE_STOPPING) {
        h2o_evloop_run(w->loop, WORKER_TICK_MS);
        oe_metrics_inc(&m->heartbeat_ms, oe_now_ms() - oe_metrics_get(&m->heartbeat_ms));
        if (!w->listeners_closed && __atomic_load_n(&srv->state, __ATOMIC_ACQUIRE) >= STATE_STOP_ACCEPTING) {
            close_listeners(w);
            h2o_context_request_shutdown(&w->ctx); /* GOAWAY on HTTP/2 */
            oe_http1_shutdown(&w->ctx);            /* idle HTTP/1 closed, busy ones close after */
            w->listeners_closed = 1;
        }
        if (!w->websockets_closed && __atomic_load_n(&srv->close_websockets, __ATOMIC_ACQUIRE)) {
            oe_tunnel_close_all(OE_WS_GOING_AWAY);
            w->websockets_closed = 1;
        }
    }
    close_listeners(w);
    oe_proxy_thread_exit();
    h2o_evloop_run(w->loop, 0); /* lets libh2o free the sockets just closed */
    return NULL;
}

static void setup_globalconf(oe_server_t *srv)
{
    const oe_config_t *cfg = srv->cfg;
    h2o_globalconf_t *gc = &srv->gc;
    h2o_config_init(gc);
    /* no Server header of our own: the upstream's passes (preserve_server_header); one, not two */
    gc->server_name = h2o_iovec_init(H2O_STRLIT(""));
    gc->handshake_timeout = cfg->client.handshake_timeout_ms;
    gc->http1.req_timeout = cfg->client.request_timeout_ms;
    gc->http2.idle_timeout = cfg->client.idle_timeout_ms;
    gc->http2.graceful_shutdown_timeout = cfg->shutdown.grace_ms;
    /* libh2o 2.2.5's proxy reads an upstream body as fast as the upstream sends it,
     * whatever the client's flow-control window: fewer streams per connection bound what
     * one client that never reads can make us hold. Browsers need far fewer. */
    gc->http2.max_concurrent_requests_per_connection = 32;
}

int oe_server_start(oe_server_t *srv, char *err, size_t errlen)
{
    const oe_config_t *cfg = srv->cfg;
    setup_globalconf(srv);

    h2o_hostconf_t *https = h2o_config_register_host(&srv->gc, h2o_iovec_init(H2O_STRLIT("ott-edge-https")), 65535);
    h2o_pathconf_t *pc = h2o_config_register_path(https, "/", 0);
    h2o_handler_t *router = h2o_create_handler(pc, sizeof(*router));
    router->on_req = on_req_route;
    account_logger_t *acct_log = (void *)h2o_create_logger(pc, sizeof(*acct_log));
    acct_log->super.log_access = on_log_account;
    oe_proxy_gen_t *gen = oe_proxy_gen_build(&srv->gc, pc, cfg, decorate_site_path, NULL, err, errlen);
    if (gen == NULL)
        return -1;
    oe_proxy_gen_publish(&srv->gc, gen, NULL); /* the first configuration is main's */
    srv->router = pc;
    oe_tls_set_sni_observer(on_sni);
    srv->hosts_https[0] = https;

    h2o_hostconf_t *http = h2o_config_register_host(&srv->gc, h2o_iovec_init(H2O_STRLIT("ott-edge-http")), 65534);
    oe_http_listener_register(http, cfg);
    srv->hosts_http[0] = http;

    for (unsigned i = 0; i < srv->nworkers; i++) {
        worker_t *w = &srv->workers[i];
        w->loop = h2o_evloop_create();
        h2o_context_init(&w->ctx, w->loop, &srv->gc);
        w->wake_fd = oe_loop_wake_open(); /* -1: the loop still turns every WORKER_TICK_MS */
        w->accept_https = (h2o_accept_ctx_t){.ctx = &w->ctx, .hosts = srv->hosts_https};
        w->accept_http = (h2o_accept_ctx_t){.ctx = &w->ctx, .hosts = srv->hosts_http};
        for (int l = 0; l < 2; l++)
            for (size_t k = 0; k < w->nfds[l]; k++) {
                w->lis[l][k] = h2o_evloop_socket_create(w->loop, w->fds[l][k], H2O_SOCKET_FLAG_DONT_READ);
                w->lis[l][k]->data = w;
                h2o_socket_read_start(w->lis[l][k], l == L_HTTPS ? on_accept_https : on_accept_http);
            }
        oe_metrics_worker(i)->heartbeat_ms = oe_now_ms();
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
            snprintf(err, errlen, "server: cannot start worker thread %u", i);
            return -1;
        }
        w->started = 1;
    }
    oe_log(OE_LOG_INFO, "listening", "https", cfg->listen.https, "http", cfg->listen.http[0] ? cfg->listen.http : "off",
           "upstream", cfg->upstream, NULL);
    return 0;
}

int oe_server_reload(oe_server_t *srv, oe_config_t *cfg, char *err, size_t errlen)
{
    oe_proxy_gen_t *gen = oe_proxy_gen_build(&srv->gc, srv->router, cfg, decorate_site_path, NULL, err, errlen);
    if (gen == NULL)
        return -1;
    if (oe_access_init(cfg, err, errlen) != 0) /* what the accept path checks (out of memory only) */
        oe_log(OE_LOG_WARN, "reload_access_failed", "error", err, "msg",
               "new connections are still counted by the previous access.max_connections", NULL);
    oe_tcp_keepalive_t ka = oe_config_tcp_keepalive(cfg);
    for (unsigned i = 0; i < srv->nworkers; i++)
        for (int l = 0; l < 2; l++)
            for (size_t k = 0; k < srv->workers[i].nfds[l]; k++)
                oe_upstream_set_keepalive(srv->workers[i].fds[l][k], &ka);
    oe_proxy_gen_publish(&srv->gc, gen, oe_config_free);
    return 0;
}

/* Whether every worker has turned its loop since ms (monotonic). */
static uint64_t workers_turned_after(uint64_t ms)
{
    oe_server_t *srv = the_server;
    for (unsigned i = 0; srv != NULL && i < srv->nworkers; i++)
        if (srv->workers[i].started && oe_metrics_get(&oe_metrics_worker(i)->heartbeat_ms) <= ms)
            return 0;
    return 1;
}

size_t oe_server_collect(void)
{
    size_t left = oe_proxy_gen_collect(workers_turned_after);
    if (left != 0 && the_server != NULL)
        wake_workers(the_server); /* idle loops turn now, not at their next tick */
    return left;
}

uint64_t oe_server_generation(void)
{
    oe_proxy_gen_t *g = oe_proxy_gen_current();
    return g != NULL ? oe_proxy_gen_number(g) : 0;
}

void oe_server_set_draining(oe_server_t *srv)
{
    (void)srv;
    __atomic_store_n(&draining, 1, __ATOMIC_RELEASE);
}

int oe_server_draining(void)
{
    return __atomic_load_n(&draining, __ATOMIC_ACQUIRE);
}

void oe_server_stop_accepting(oe_server_t *srv)
{
    __atomic_store_n(&srv->state, STATE_STOP_ACCEPTING, __ATOMIC_RELEASE);
    wake_workers(srv);
}

void oe_server_close_websockets(oe_server_t *srv)
{
    __atomic_store_n(&srv->close_websockets, 1, __ATOMIC_RELEASE);
    wake_workers(srv);
}

uint64_t oe_server_websockets(oe_server_t *srv)
{
    uint64_t n = 0;
    for (unsigned i = 0; i < srv->nworkers; i++) {
        oe_metrics_worker_t *m = oe_metrics_worker(i);
        n += oe_metrics_get(&m->ws_opened) - oe_metrics_get(&m->ws_closed);
    }
    return n;
}

uint64_t oe_server_busy(oe_server_t *srv, int count_websockets)
{
    uint64_t busy = 0;
    for (unsigned i = 0; i < srv->nworkers; i++) {
        oe_metrics_worker_t *m = oe_metrics_worker(i);
        busy += oe_metrics_get(&m->inflight_started) - oe_metrics_get(&m->inflight_done);
        if (count_websockets)
            busy += oe_metrics_get(&m->ws_opened) - oe_metrics_get(&m->ws_closed);
        busy += oe_metrics_get(&m->handshakes_started) - oe_metrics_get(&m->handshakes_done);
    }
    return busy + oe_http1_fresh();
}

void oe_server_stop(oe_server_t *srv)
{
    if (srv == NULL)
        return;
    __atomic_store_n(&srv->state, STATE_STOPPING, __ATOMIC_RELEASE);
    wake_workers(srv);
    for (unsigned i = 0; i < srv->nworkers; i++)
        if (srv->workers[i].started)
            pthread_join(srv->workers[i].thread, NULL);
}

int oe_server_loops_alive(uint64_t max_age_ms)
{
    uint64_t now = oe_now_ms();
    for (unsigned i = 0; i < oe_metrics_worker_count(); i++)
        if (now - oe_metrics_get(&oe_metrics_worker(i)->heartbeat_ms) > max_age_ms)
            return 0;
    return 1;
}
