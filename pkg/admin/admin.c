/* admin — see admin.h. */
#include "admin/admin.h"

#include <ctype.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "admin/internal.h"
#include "cluster/cluster.h"
#include "h2o_compat.h"
#include "handover/handover.h"
#include "log/log.h"
#include "loop/loop.h"
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
    int wake_fd; /* oe_loop_wake: rung when stop/stop_accepting change */
    h2o_socket_t *wake_sock;
    int stop;
    int stop_accepting; /* handed over: the listener closes, each answer closes its connection */
};

/* The admin side lives until the process exits (its h2o context and connections are not
 * torn down); volatile so the compiler keeps this one reference (leak checkers then see it
 * as reachable, not lost), as the server does with its own. */
static oe_admin_t *volatile the_admin;

typedef struct {
    h2o_handler_t super;
    oe_admin_t *admin;
} admin_handler_t;

/* ---- who may read (admin.allow, admin.token_file) ------------------------------------ */

#define TOKEN_MIN 16
#define TOKEN_MAX 512

static struct {
    pthread_mutex_t lock;
    const char *path; /* admin.token_file; NULL: no token */
    unsigned char digest[SHA256_DIGEST_LENGTH];
} tok = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* Reads the token file: one line of printable characters (a trailing newline is fine). */
static int read_token(const char *path, unsigned char digest[SHA256_DIGEST_LENGTH], char *err, size_t errlen)
{
    char buf[TOKEN_MAX + 2];
    FILE *f = fopen(path, "re");
    size_t n;

    if (f == NULL) {
        snprintf(err, errlen, "cannot read \"%s\": %s", path, strerror(errno));
        return -1;
    }
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (!isgraph((unsigned char)buf[i])) {
            OPENSSL_cleanse(buf, sizeof(buf));
            snprintf(err, errlen, "\"%s\": the token must be one line of printable characters without spaces", path);
            return -1;
        }
    }
    if (n < TOKEN_MIN || n > TOKEN_MAX) {
        OPENSSL_cleanse(buf, sizeof(buf));
        snprintf(err, errlen, "\"%s\": the token must have %d to %d characters (e.g. openssl rand -hex 32)", path,
                 TOKEN_MIN, TOKEN_MAX);
        return -1;
    }
    SHA256((const unsigned char *)buf, n, digest);
    OPENSSL_cleanse(buf, sizeof(buf));
    return 0;
}

int oe_admin_check(const oe_config_t *cfg, char *err, size_t errlen)
{
    unsigned char d[SHA256_DIGEST_LENGTH];
    char why[512];

    if (cfg->admin.token_file == NULL)
        return 0;
    if (read_token(cfg->admin.token_file, d, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "config: admin.token_file: %s", why);
        return -1;
    }
    return 0;
}

void oe_admin_reload(void)
{
    unsigned char d[SHA256_DIGEST_LENGTH];
    char why[512];

    if (tok.path == NULL)
        return;
    if (read_token(tok.path, d, why, sizeof(why)) != 0) {
        oe_log(OE_LOG_ERROR, "admin_token_reload_failed", "error", why, "msg", "the token read before stays", NULL);
        return;
    }
    pthread_mutex_lock(&tok.lock);
    memcpy(tok.digest, d, sizeof(d));
    pthread_mutex_unlock(&tok.lock);
    oe_log(OE_LOG_INFO, "admin_token_reloaded", "file", tok.path, NULL);
}

int oe_admin_refused(h2o_req_t *req, int needs_token)
{
    oe_proxy_gen_t *gen = oe_proxy_gen_acquire(); /* admin.allow as the last reload set it */
    const oe_config_t *cfg = gen != NULL ? oe_proxy_gen_config(gen) : the_admin->cfg;
    int denied = 0;
    if (cfg->admin.allow_count > 0) {
        struct sockaddr_storage ss;
        denied = req->conn->callbacks->get_peername(req->conn, (void *)&ss) == 0 ||
                 !oe_cidr_match(cfg->admin.allow, cfg->admin.allow_count, (void *)&ss);
    }
    oe_proxy_gen_release(gen);
    if (denied) {
        req->res.status = 403;
        req->res.reason = "Forbidden";
        h2o_send_inline(req, H2O_STRLIT("not allowed from this address (admin.allow)\n"));
        return 1;
    }
    if (!needs_token || tok.path == NULL)
        return 0;
    ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
    int ok = 0;
    if (i != -1) {
        h2o_iovec_t v = req->headers.entries[i].value;
        if (v.len > 7 && h2o_lcstris(v.base, 7, H2O_STRLIT("bearer "))) {
            unsigned char d[SHA256_DIGEST_LENGTH], want[SHA256_DIGEST_LENGTH];
            size_t s = 7;
            while (s < v.len && v.base[s] == ' ')
                s++;
            SHA256((const unsigned char *)v.base + s, v.len - s, d);
            pthread_mutex_lock(&tok.lock);
            memcpy(want, tok.digest, sizeof(want));
            pthread_mutex_unlock(&tok.lock);
            ok = CRYPTO_memcmp(d, want, sizeof(d)) == 0;
        }
    }
    if (ok)
        return 0;
    req->res.status = 401;
    req->res.reason = "Unauthorized";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, NULL,
                   H2O_STRLIT("Bearer realm=\"ott-edge admin\""));
    h2o_send_inline(req, H2O_STRLIT("a bearer token is needed (admin.token_file)\n"));
    return 1;
}

int oe_admin_ready(const oe_config_t *cfg, const char **reason)
{
    static __thread char why[192]; /* the reason names the site; each thread has its own */
    static int was_ready;          /* once ready, a site added by a reload never takes it back */
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
        else if (info.fallback && oe_config_site_acme(cfg, i) && !__atomic_load_n(&was_ready, __ATOMIC_RELAXED))
            snprintf(why, sizeof(why), "waiting for a certificate from ACME for site %s (serving a self-signed one)",
                     name);
        else if (info.not_after != 0 && info.not_after < time(NULL))
            snprintf(why, sizeof(why), "the certificate of site %s has expired", name);
        else
            continue; /* (once ready, a new site waiting for its first certificate is fine too) */
        *reason = why;
        return 0;
    }
    int ready = oe_upstream_ready(reason);
    if (ready)
        __atomic_store_n(&was_ready, 1, __ATOMIC_RELAXED);
    return ready;
}

void oe_admin_send_text(h2o_req_t *req, int status, const char *reason, const char *ctype, const char *body, size_t len)
{
    req->res.status = status;
    req->res.reason = reason;
    req->res.content_length = len;
    if (the_admin != NULL && __atomic_load_n(&the_admin->stop_accepting, __ATOMIC_ACQUIRE))
        req->http1_is_persistent = 0; /* the client's next request goes to the new process */
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, ctype, strlen(ctype));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-store"));
    h2o_send_inline(req, body, len);
}

static int on_livez(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    if (oe_server_loops_alive(LOOP_MAX_AGE_MS)) {
        oe_admin_send_text(req, 200, "OK", "application/json", H2O_STRLIT("{\"status\":\"ok\"}\n"));
    } else {
        oe_admin_send_text(req, 503, "Service Unavailable", "application/json",
                           H2O_STRLIT("{\"status\":\"error\",\"reason\":\"a worker event loop is stuck\"}\n"));
    }
    return 0;
}

static int on_readyz(h2o_handler_t *_self, h2o_req_t *req)
{
    admin_handler_t *self = (void *)_self;
    const char *reason = "";
    char body[512];
    oe_proxy_gen_t *gen = oe_proxy_gen_acquire(); /* the configuration in service */
    int ready = oe_admin_ready(gen != NULL ? oe_proxy_gen_config(gen) : self->admin->cfg, &reason);
    oe_proxy_gen_release(gen);
    oe_cluster_info_t ci;
    oe_cluster_info(&ci); /* cluster mode: serving never depends on Redis, but readiness says how it is */
    if (ready) {
        if (ci.enabled && !ci.up) {
            int n =
                snprintf(body, sizeof(body),
                         "{\"status\":\"ready\",\"cluster\":\"redis down\",\"reason\":\"Redis unreachable for %llds: "
                         "serving the local copy of every certificate; no ACME order until it is back\"}\n",
                         (long long)(ci.down_since ? time(NULL) - ci.down_since : 0));
            oe_admin_send_text(req, 200, "OK", "application/json", body,
                               (size_t)n < sizeof(body) ? (size_t)n : sizeof(body) - 1);
        } else if (ci.enabled) {
            oe_admin_send_text(req, 200, "OK", "application/json",
                               H2O_STRLIT("{\"status\":\"ready\",\"cluster\":\"redis up\"}\n"));
        } else {
            oe_admin_send_text(req, 200, "OK", "application/json", H2O_STRLIT("{\"status\":\"ready\"}\n"));
        }
    } else {
        int n = snprintf(body, sizeof(body), "{\"status\":\"not ready\",\"reason\":\"%s\"}\n", reason);
        oe_admin_send_text(req, 503, "Service Unavailable", "application/json", body,
                           (size_t)n < sizeof(body) ? (size_t)n : sizeof(body) - 1);
    }
    return 0;
}

/* Sends a malloc'ed document (h2o_send_inline copies it into the request's pool) and
 * frees it; NULL means the rendering ran out of memory. */
static void send_rendered(h2o_req_t *req, const char *ctype, char *text, size_t len)
{
    if (text == NULL) {
        oe_admin_send_text(req, 500, "Internal Server Error", "text/plain", H2O_STRLIT("out of memory\n"));
        return;
    }
    oe_admin_send_text(req, 200, "OK", ctype, text, len);
    free(text);
}

static int on_metrics(h2o_handler_t *_self, h2o_req_t *req)
{
    if (oe_admin_refused(req, 1))
        return 0;
    size_t len = 0;
    char *text = oe_metrics_render(&len);
    send_rendered(req, "text/plain; version=0.0.4; charset=utf-8", text, len);
    return 0;
}

static int on_status_json(h2o_handler_t *_self, h2o_req_t *req)
{
    if (oe_admin_refused(req, 1))
        return 0;
    size_t len = 0;
    char *text = oe_admin_status_json(&len);
    send_rendered(req, "application/json", text, len);
    return 0;
}

/* GET / : the status page (other paths fall through to a 404). */
static int on_page(h2o_handler_t *_self, h2o_req_t *req)
{
    if (!h2o_memis(req->path_normalized.base, req->path_normalized.len, H2O_STRLIT("/")))
        return -1;
    if (oe_admin_refused(req, 0)) /* the page holds no data: it asks for the token */
        return 0;
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("content-security-policy"), 0, NULL,
                          H2O_STRLIT("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                                     "connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'"));
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-content-type-options"), 0, NULL,
                          H2O_STRLIT("nosniff"));
    oe_admin_send_text(req, 200, "OK", "text/html; charset=utf-8", oe_admin_status_html, oe_admin_status_html_len);
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
    admin->wake_sock = oe_loop_wake_attach(admin->loop, admin->wake_fd); /* on this thread: see loop.h */
    while (!__atomic_load_n(&admin->stop, __ATOMIC_ACQUIRE)) {
        if (admin->listener != NULL && __atomic_load_n(&admin->stop_accepting, __ATOMIC_ACQUIRE)) {
            h2o_socket_read_stop(admin->listener);
            h2o_socket_close(admin->listener); /* this copy: the new process has its own */
            admin->listener = NULL;
            admin->fd = -1;
        }
        h2o_evloop_run(admin->loop, (int32_t)oe_admin_status_tick()); /* idle: one turn per status sample */
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
    if (cfg->admin.token_file != NULL) {
        char why[512];
        if (read_token(cfg->admin.token_file, tok.digest, why, sizeof(why)) != 0) {
            snprintf(err, errlen, "admin.token_file: %s", why);
            free(admin);
            return NULL;
        }
        tok.path = cfg->admin.token_file;
    }
    /* in a binary upgrade the old process hands its admin socket over */
    if (oe_handover_take("admin", cfg->listen.admin, &admin->fd, 1) != 1 &&
        (admin->fd = oe_util_listen(cfg->listen.admin, "listen.admin", 0, 128, err, errlen)) < 0) {
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
    oe_admin_register_reload(host);
    register_handler(host, "/", on_page, admin);
    admin->loop = h2o_evloop_create();
    h2o_context_init(&admin->ctx, admin->loop, &admin->gc);
    admin->wake_fd = oe_loop_wake_open(); /* -1: the loop still turns once per status sample */
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

void oe_admin_stop_accepting(oe_admin_t *admin)
{
    if (admin != NULL) {
        __atomic_store_n(&admin->stop_accepting, 1, __ATOMIC_RELEASE);
        oe_loop_wake_ring(admin->wake_fd);
    }
}

int oe_admin_listen_fd(const oe_admin_t *admin)
{
    return admin != NULL ? admin->fd : -1;
}

void oe_admin_stop(oe_admin_t *admin)
{
    if (admin == NULL)
        return;
    __atomic_store_n(&admin->stop, 1, __ATOMIC_RELEASE);
    oe_loop_wake_ring(admin->wake_fd);
    pthread_join(admin->thread, NULL);
}
