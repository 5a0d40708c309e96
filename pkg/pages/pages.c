/* pages — the small 4xx/5xx pages ott-edge writes itself (see pages.h). */
#include "pages/pages.h"

#include <stdio.h>

static int wants_json(h2o_req_t *req)
{
    ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_ACCEPT, -1);
    if (i == -1)
        return 0;
    h2o_iovec_t v = req->headers.entries[i].value;
    return h2o_strstr(v.base, v.len, H2O_STRLIT("json")) != SIZE_MAX &&
           h2o_strstr(v.base, v.len, H2O_STRLIT("text/html")) == SIZE_MAX;
}

static h2o_iovec_t error_body(h2o_req_t *req, int status, const char *reason, const char *message, int *json)
{
    char buf[512];
    int n;
    *json = wants_json(req);
    if (*json)
        n = snprintf(buf, sizeof(buf), "{\"status\":%d,\"error\":\"%s\",\"message\":\"%s\"}\n", status, reason,
                     message);
    else
        n = snprintf(buf, sizeof(buf),
                     "<!doctype html><html><head><meta charset=\"utf-8\"><title>%d %s</title></head>"
                     "<body><h1>%d %s</h1><p>%s</p><hr><p>ott-edge</p></body></html>\n",
                     status, reason, status, reason, message);
    return h2o_strdup(&req->pool, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

void oe_pages_send(h2o_req_t *req, int status, const char *reason, const char *message)
{
    int json;
    h2o_iovec_t body = error_body(req, status, reason, message, &json);
    req->res.status = status;
    req->res.reason = reason;
    req->res.content_length = body.len;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   json ? "application/json" : "text/html; charset=utf-8",
                   json ? sizeof("application/json") - 1 : sizeof("text/html; charset=utf-8") - 1);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-store"));
    h2o_send_inline(req, body.base, body.len);
}
