/* admin — see admin.h. */
#include "admin/admin.h"

#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "h2o_compat.h"
#include "log/log.h"
#include "metrics/metrics.h"
#include "proxy/proxy.h"
#include "server/server.h"
#include "tls/tls.h"

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

typedef struct {
    h2o_handler_t super;
    oe_admin_t *admin;
} admin_handler_t;

int oe_admin_ready(const oe_config_t *cfg, const char **reason)
{
    oe_tls_info_t info;
    if (oe_server_draining()) {
        *reason = "draining: shutting down";
        return 0;
    }
    oe_tls_info(&info);
    if (!info.loaded) {
        *reason = "no certificate loaded";
        return 0;
    }
    if (info.fallback && oe_config_acme_enabled(cfg)) {
        *reason = "waiting for a certificate from ACME (serving a self-signed one)";
        return 0;
    }
    if (info.not_after != 0 && info.not_after < time(NULL)) {
        *reason = "the certificate has expired";
        return 0;
    }
    return oe_proxy_health_ok(reason);
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
    if (oe_admin_ready(self->admin->cfg, &reason)) {
        send_text(req, 200, "OK", "application/json", H2O_STRLIT("{\"status\":\"ready\"}\n"));
    } else {
        int n = snprintf(body, sizeof(body), "{\"status\":\"not ready\",\"reason\":\"%s\"}\n", reason);
        send_text(req, 503, "Service Unavailable", "application/json", h2o_strdup(&req->pool, body, (size_t)n).base,
                  (size_t)n);
    }
    return 0;
}

static int on_metrics(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    char *text = oe_metrics_render();
    if (text == NULL) {
        send_text(req, 500, "Internal Server Error", "text/plain", H2O_STRLIT("out of memory\n"));
        return 0;
    }
    size_t len = strlen(text);
    h2o_iovec_t copy = h2o_strdup(&req->pool, text, len);
    free(text);
    send_text(req, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", copy.base, copy.len);
    return 0;
}

/* The served certificate, readiness and upstream state as metrics. */
static size_t metrics_section(void *data, char *buf, size_t cap)
{
    oe_admin_t *admin = data;
    oe_tls_info_t info;
    const char *reason;
    size_t len = 0;
    oe_tls_info(&info);
#define OUT(...)                                                                                                       \
    do {                                                                                                               \
        int n_ = snprintf(buf + len, cap - len, __VA_ARGS__);                                                          \
        if (n_ > 0)                                                                                                    \
            len += (size_t)n_ < cap - len ? (size_t)n_ : cap - len - 1;                                                \
    } while (0)
    OUT("# HELP ott_edge_certificate_expiry_seconds Seconds until the served certificate expires, per name.\n"
        "# TYPE ott_edge_certificate_expiry_seconds gauge\n");
    if (info.loaded) {
        long long left = (long long)info.not_after - (long long)time(NULL);
        char names[sizeof(info.names)];
        memcpy(names, info.names, sizeof(names));
        char *save = NULL;
        for (char *n = strtok_r(names, ",", &save); n != NULL; n = strtok_r(NULL, ",", &save))
            OUT("ott_edge_certificate_expiry_seconds{name=\"%s\"} %lld\n", n, left);
    }
    OUT("# HELP ott_edge_certificate_self_signed 1 while the generated self-signed certificate is served.\n"
        "# TYPE ott_edge_certificate_self_signed gauge\nott_edge_certificate_self_signed %d\n",
        info.loaded && info.fallback);
    OUT("# HELP ott_edge_certificate_swaps_total Certificates loaded since start.\n"
        "# TYPE ott_edge_certificate_swaps_total counter\nott_edge_certificate_swaps_total %llu\n",
        (unsigned long long)info.generation);
    OUT("# HELP ott_edge_upstream_up 1 when the upstream answered recently.\n"
        "# TYPE ott_edge_upstream_up gauge\nott_edge_upstream_up %d\n",
        oe_proxy_health_ok(&reason));
    OUT("# HELP ott_edge_ready 1 when /readyz answers 200.\n# TYPE ott_edge_ready gauge\nott_edge_ready %d\n",
        oe_admin_ready(admin->cfg, &reason));
    OUT("# HELP ott_edge_draining 1 once a shutdown has begun.\n# TYPE ott_edge_draining gauge\n"
        "ott_edge_draining %d\n",
        oe_server_draining());
#undef OUT
    return len;
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
    while (!__atomic_load_n(&admin->stop, __ATOMIC_ACQUIRE))
        h2o_evloop_run(admin->loop, 100);
    return NULL;
}

static int admin_listen(const char *addr, char *err, size_t errlen)
{
    char host[256];
    uint16_t port;
    if (oe_config_split_hostport(addr, host, sizeof(host), &port) != 0) {
        snprintf(err, errlen, "listen.admin: cannot parse \"%s\"", addr);
        return -1;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *res;
    char portstr[8];
    snprintf(portstr, sizeof(portstr), "%u", port);
    if (getaddrinfo(host[0] ? host : "0.0.0.0", portstr, &hints, &res) != 0) {
        snprintf(err, errlen, "listen.admin: cannot resolve \"%s\"", addr);
        return -1;
    }
    int one = 1;
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 128) != 0) {
        snprintf(err, errlen, "listen.admin: cannot listen on %s: %m", addr);
        if (fd >= 0)
            close(fd);
        freeaddrinfo(res);
        return -1;
    }
    freeaddrinfo(res);
    return fd;
}

oe_admin_t *oe_admin_start(const oe_config_t *cfg, char *err, size_t errlen)
{
    oe_admin_t *admin = calloc(1, sizeof(*admin));
    admin->cfg = cfg;
    if ((admin->fd = admin_listen(cfg->listen.admin, err, errlen)) < 0) {
        free(admin);
        return NULL;
    }
    h2o_config_init(&admin->gc);
    admin->gc.server_name = h2o_iovec_init(H2O_STRLIT("ott-edge-admin"));
    h2o_hostconf_t *host = h2o_config_register_host(&admin->gc, h2o_iovec_init(H2O_STRLIT("admin")), 65535);
    register_handler(host, "/livez", on_livez, admin);
    register_handler(host, "/readyz", on_readyz, admin);
    register_handler(host, "/metrics", on_metrics, admin);
    admin->loop = h2o_evloop_create();
    h2o_context_init(&admin->ctx, admin->loop, &admin->gc);
    admin->accept = (h2o_accept_ctx_t){.ctx = &admin->ctx, .hosts = admin->gc.hosts};
    admin->listener = h2o_evloop_socket_create(admin->loop, admin->fd, H2O_SOCKET_FLAG_DONT_READ);
    admin->listener->data = admin;
    h2o_socket_read_start(admin->listener, on_accept);
    oe_metrics_add_section(metrics_section, admin);
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
