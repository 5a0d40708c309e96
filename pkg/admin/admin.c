/* admin — see admin.h. */
#include "admin/admin.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "admin/internal.h"
#include "cluster/cluster.h"
#include "h2o_compat.h"
#include "log/log.h"
#include "metrics/metrics.h"
#include "proxy/proxy.h"
#include "server/server.h"
#include "tls/tls.h"
#include "upstream/pool.h"
#include "util/util.h"

#define LOOP_MAX_AGE_MS 5000

struct oe_admin {
    const oe_config_t *cfg;
    h2o_globalconf_t gc;
    h2o_context_t ctx;
    h2o_evloop_t *loop;
    h2o_accept_ctx_t accept;
    h2o_socket_t *listener;
    int fd;
    pthread_t thread;
    int stop;
};

/* The admin side lives until the process exits (its h2o context and connections are not
 * torn down); volatile so the compiler keeps this one reference (leak checkers then see it
 * as reachable, not lost), as the server does with its own. */
static oe_admin_t *volatile the_admin;

typedef struct {
    h2o_handler_t super;
    oe_admin_t *admin;
} admin_handler_t;

int oe_admin_ready(const oe_config_t *cfg, const char **reason)
{
    static __thread char why[192]; /* the reason names the site; each thread has its own */
    oe_tls_info_t info;
    if (oe_server_draining()) {
        *reason = "draining: shutting down";
        return 0;
    }
    /* every site: a certificate, not the self-signed fallback while ACME is to replace it */
    for (size_t i = 0; i < cfg->sites_count; i++) {
        const char *name = cfg->sites[i].name;
        oe_tls_info_for(name, &info);
        if (!info.loaded)
            snprintf(why, sizeof(why), "no certificate loaded for site %s", name);
        else if (info.fallback && oe_config_site_acme(cfg, i))
            snprintf(why, sizeof(why), "waiting for a certificate from ACME for site %s (serving a self-signed one)",
                     name);
        else if (info.not_after != 0 && info.not_after < time(NULL))
            snprintf(why, sizeof(why), "the certificate of site %s has expired", name);
        else
            continue;
        *reason = why;
        return 0;
    }
    return oe_upstream_ready(reason);
}

static void send_text(h2o_req_t *req, int status, const char *reason, const char *ctype, const char *body, size_t len)
{
    req->res.status = status;
    req->res.reason = reason;
    req->res.content_length = len;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, ctype, strlen(ctype));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-store"));
    h2o_send_inline(req, body, len);
}

static int on_livez(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    if (oe_server_loops_alive(LOOP_MAX_AGE_MS)) {
        send_text(req, 200, "OK", "application/json", H2O_STRLIT("{\"status\":\"ok\"}\n"));
    } else {
        send_text(req, 503, "Service Unavailable", "application/json",
                  H2O_STRLIT("{\"status\":\"error\",\"reason\":\"a worker event loop is stuck\"}\n"));
    }
    return 0;
}

static int on_readyz(h2o_handler_t *_self, h2o_req_t *req)
{
    admin_handler_t *self = (void *)_self;
    const char *reason = "";
    char body[512];
    oe_cluster_info_t ci;
    oe_cluster_info(&ci); /* cluster mode: serving never depends on Redis, but readiness says how it is */
    if (oe_admin_ready(self->admin->cfg, &reason)) {
        if (ci.enabled && !ci.up) {
            int n =
                snprintf(body, sizeof(body),
                         "{\"status\":\"ready\",\"cluster\":\"redis down\",\"reason\":\"Redis unreachable for %llds: "
                         "serving the local copy of every certificate; no ACME order until it is back\"}\n",
                         (long long)(ci.down_since ? time(NULL) - ci.down_since : 0));
            send_text(req, 200, "OK", "application/json", body,
                      (size_t)n < sizeof(body) ? (size_t)n : sizeof(body) - 1);
        } else if (ci.enabled) {
            send_text(req, 200, "OK", "application/json",
                      H2O_STRLIT("{\"status\":\"ready\",\"cluster\":\"redis up\"}\n"));
        } else {
            send_text(req, 200, "OK", "application/json", H2O_STRLIT("{\"status\":\"ready\"}\n"));
        }
    } else {
        int n = snprintf(body, sizeof(body), "{\"status\":\"not ready\",\"reason\":\"%s\"}\n", reason);
        send_text(req, 503, "Service Unavailable", "application/json", body,
                  (size_t)n < sizeof(body) ? (size_t)n : sizeof(body) - 1);
    }
    return 0;
}

/* Sends a malloc'ed document (h2o_send_inline copies it into the request's pool) and
 * frees it; NULL means the rendering ran out of memory. */
static void send_rendered(h2o_req_t *req, const char *ctype, char *text, size_t len)
{
    if (text == NULL) {
        send_text(req, 500, "Internal Server Error", "text/plain", H2O_STRLIT("out of memory\n"));
        return;
    }
    send_text(req, 200, "OK", ctype, text, len);
    free(text);
}

static int on_metrics(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    size_t len = 0;
    char *text = oe_metrics_render(&len);
    send_rendered(req, "text/plain; version=0.0.4; charset=utf-8", text, len);
    return 0;
}

static int on_status_json(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    size_t len = 0;
    char *text = oe_admin_status_json(&len);
    send_rendered(req, "application/json", text, len);
    return 0;
}

/* GET / : the status page (other paths fall through to a 404). */
static int on_page(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    if (!h2o_memis(req->path_normalized.base, req->path_normalized.len, H2O_STRLIT("/")))
        return -1;
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("content-security-policy"), 0, NULL,
                          H2O_STRLIT("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                                     "connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'"));
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-content-type-options"), 0, NULL,
                          H2O_STRLIT("nosniff"));
    send_text(req, 200, "OK", "text/html; charset=utf-8", oe_admin_status_html, oe_admin_status_html_len);
    return 0;
}

static void register_handler(h2o_hostconf_t *host, const char *path, int (*cb)(h2o_handler_t *, h2o_req_t *),
                             oe_admin_t *admin)
{
    h2o_pathconf_t *pc = h2o_config_register_path(host, path, 0);
    admin_handler_t *h = (void *)h2o_create_handler(pc, sizeof(*h));
    h->super.on_req = cb;
    h->admin = admin;
}

static void on_accept(h2o_socket_t *listener, const char *err)
{
    oe_admin_t *admin = listener->data;
    h2o_socket_t *sock;
    if (err != NULL || (sock = h2o_evloop_socket_accept(listener)) == NULL)
        return;
    h2o_accept(&admin->accept, sock);
}

static void *admin_main(void *arg)
{
    oe_admin_t *admin = arg;
    while (!__atomic_load_n(&admin->stop, __ATOMIC_ACQUIRE)) {
        h2o_evloop_run(admin->loop, 100);
        oe_admin_status_tick();
    }
    return NULL;
}

oe_admin_t *oe_admin_start(const oe_config_t *cfg, char *err, size_t errlen)
{
    oe_admin_t *admin = calloc(1, sizeof(*admin));
    if (admin == NULL) {
        snprintf(err, errlen, "admin: out of memory");
        return NULL;
    }
    admin->cfg = cfg;
    if ((admin->fd = oe_util_listen(cfg->listen.admin, "listen.admin", 0, 128, err, errlen)) < 0) {
        free(admin);
        return NULL;
    }
    h2o_config_init(&admin->gc);
    admin->gc.server_name = h2o_iovec_init(H2O_STRLIT("ott-edge-admin"));
    h2o_hostconf_t *host = h2o_config_register_host(&admin->gc, h2o_iovec_init(H2O_STRLIT("admin")), 65535);
    register_handler(host, "/livez", on_livez, admin);
    register_handler(host, "/readyz", on_readyz, admin);
    register_handler(host, "/metrics", on_metrics, admin);
    register_handler(host, "/status.json", on_status_json, admin);
    register_handler(host, "/", on_page, admin);
    admin->loop = h2o_evloop_create();
    h2o_context_init(&admin->ctx, admin->loop, &admin->gc);
    admin->accept = (h2o_accept_ctx_t){.ctx = &admin->ctx, .hosts = admin->gc.hosts};
    admin->listener = h2o_evloop_socket_create(admin->loop, admin->fd, H2O_SOCKET_FLAG_DONT_READ);
    admin->listener->data = admin;
    h2o_socket_read_start(admin->listener, on_accept);
    the_admin = admin;
    oe_admin_status_init(cfg);
    oe_metrics_add_section(oe_admin_status_metrics, NULL);
    if (pthread_create(&admin->thread, NULL, admin_main, admin) != 0) {
        snprintf(err, errlen, "admin: cannot start the admin thread");
        return NULL;
    }
    oe_log(OE_LOG_INFO, "admin_listening", "addr", cfg->listen.admin, NULL);
    return admin;
}

void oe_admin_stop(oe_admin_t *admin)
{
    if (admin == NULL)
        return;
    __atomic_store_n(&admin->stop, 1, __ATOMIC_RELEASE);
    pthread_join(admin->thread, NULL);
}
