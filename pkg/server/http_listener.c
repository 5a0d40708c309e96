/* http_listener — see http_listener.h. */
#include "server/http_listener.h"

#include <stdio.h>
#include <string.h>

#include "challenge/challenge.h"
#include "metrics/metrics.h"
#include "proxy/forwarded.h"

#define ACME_PREFIX "/.well-known/acme-challenge/"

typedef struct {
    h2o_handler_t super;
    unsigned https_port;
} http_handler_t;

int oe_http_listener_location(const char *authority, size_t authority_len, const char *path, size_t path_len,
                              unsigned https_port, char *buf, size_t cap)
{
    /* the host part of the Host header: "name", "name:port", "[v6]" or "[v6]:port" */
    size_t hl;
    if (!oe_forwarded_valid_host(authority, authority_len, &hl))
        return -1;
    if (path_len == 0 || path[0] != '/') {
        path = "/";
        path_len = 1;
    }
    for (size_t i = 0; i < path_len; i++) /* never let a CR/LF or space reach a Location header */
        if ((unsigned char)path[i] <= 0x20 || path[i] == 0x7f)
            return -1;
    char port[8] = "";
    if (https_port != 443)
        snprintf(port, sizeof(port), ":%u", https_port);
    int n = snprintf(buf, cap, "https://%.*s%s%.*s", (int)hl, authority, port, (int)path_len, path);
    return n < 0 || (size_t)n >= cap ? -1 : n;
}

static int on_req(h2o_handler_t *_self, h2o_req_t *req)
{
    http_handler_t *self = (void *)_self;
    oe_metrics_worker_t *m = oe_metrics_self();
    h2o_iovec_t p = req->path_normalized;

    if (p.len > sizeof(ACME_PREFIX) - 1 && memcmp(p.base, ACME_PREFIX, sizeof(ACME_PREFIX) - 1) == 0) {
        char keyauthz[OE_CHALLENGE_KEYAUTHZ_MAX + 1];
        int n = oe_challenge_http01_get(p.base + sizeof(ACME_PREFIX) - 1, p.len - (sizeof(ACME_PREFIX) - 1), keyauthz,
                                        sizeof(keyauthz));
        if (n < 0) {
            h2o_send_error_404(req, "Not Found", "unknown ACME challenge token\n", 0);
            return 0;
        }
        oe_metrics_inc(&m->http01_served, 1);
        req->res.status = 200;
        req->res.reason = "OK";
        req->res.content_length = (size_t)n;
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("text/plain"));
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-store"));
        h2o_send_inline(req, keyauthz, (size_t)n);
        return 0;
    }

    char url[4096];
    int n = oe_http_listener_location(req->authority.base, req->authority.len, req->path.base, req->path.len,
                                      self->https_port, url, sizeof(url));
    if (n < 0) {
        h2o_send_error_400(req, "Bad Request", "invalid Host header\n", H2O_SEND_ERROR_HTTP1_CLOSE_CONNECTION);
        return 0;
    }
    oe_metrics_inc(&m->redirects, 1);
    h2o_send_redirect(req, 308, "Permanent Redirect", url, (size_t)n);
    return 0;
}

void oe_http_listener_register(h2o_hostconf_t *host, const oe_config_t *cfg)
{
    char h[256];
    uint16_t port = 443;
    oe_config_split_hostport(cfg->listen.https, h, sizeof(h), &port);
    h2o_pathconf_t *pc = h2o_config_register_path(host, "/", 0);
    http_handler_t *hd = (void *)h2o_create_handler(pc, sizeof(*hd));
    hd->super.on_req = on_req;
    hd->https_port = port;
}
