/*
 * admin/reload — POST /reload and the record of configuration reloads.
 *
 * Owns: the reload counters and the last result (written by main through
 * oe_admin_note_reload(), read by status.c), the POST /reload handler and the client side
 * of `ott-edge reload`. The reload itself is main's: the handler sends this process a
 * SIGHUP (main waits for signals on its own thread, every other thread blocks them) and
 * answers once main has noted the result, so a reload asked over HTTP and one asked by
 * signal are the same code path.
 * Must not touch: the configuration, the server, certificates.
 */
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin/admin.h"
#include "admin/internal.h"
#include "httpget/httpget.h"
#include "loop/loop.h"
#include "server/server.h"
#include "util/util.h"

#define POLL_MS           50
#define WAIT_MAX_MS       60000
#define RELOAD_TIMEOUT_MS (WAIT_MAX_MS + 5000)

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static oe_admin_reloads_t rec; /* guarded by lock */

void oe_admin_note_reload(int ok, const char *message)
{
    pthread_mutex_lock(&lock);
    if (ok)
        rec.ok++;
    else
        rec.failed++;
    rec.last_at = time(NULL);
    rec.last_ok = ok;
    snprintf(rec.last_message, sizeof(rec.last_message), "%s", message != NULL ? message : "");
    pthread_mutex_unlock(&lock);
}

void oe_admin_reloads(oe_admin_reloads_t *out)
{
    pthread_mutex_lock(&lock);
    *out = rec;
    pthread_mutex_unlock(&lock);
}

static uint64_t reloads_done(void)
{
    oe_admin_reloads_t r;
    oe_admin_reloads(&r);
    return r.ok + r.failed;
}

/* ---- POST /reload ------------------------------------------------------------------------- */

typedef struct {
    h2o_req_t *req;
    h2o_timeout_entry_t poll;
    uint64_t before;   /* reloads done when the request came */
    uint64_t deadline; /* monotonic ms */
} waiter_t;

static void answer(waiter_t *w)
{
    oe_admin_reloads_t r;
    oe_admin_reloads(&r);
    json_t *doc = json_pack("{s:s, s:I, s:s}", "result", r.last_ok ? "ok" : "failed", "generation",
                            (json_int_t)oe_server_generation(), "message", r.last_message);
    char *text = doc != NULL ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (text == NULL) {
        oe_admin_send_text(w->req, 500, "Internal Server Error", "text/plain", H2O_STRLIT("out of memory\n"));
        return;
    }
    /* 422: the new configuration was refused (the old one still serves) */
    if (r.last_ok)
        oe_admin_send_text(w->req, 200, "OK", "application/json", text, strlen(text));
    else
        oe_admin_send_text(w->req, 422, "Unprocessable Entity", "application/json", text, strlen(text));
    free(text);
}

static void on_poll(h2o_timeout_entry_t *entry)
{
    waiter_t *w = H2O_STRUCT_FROM_MEMBER(waiter_t, poll, entry);
    if (reloads_done() > w->before) {
        answer(w);
    } else if (oe_util_now_ms() >= w->deadline) {
        static const char body[] = "{\"result\":\"timeout\",\"message\":\"no reload result within 60 s\"}";
        oe_admin_send_text(w->req, 503, "Service Unavailable", "application/json", body, sizeof(body) - 1);
    } else {
        h2o_timeout_link(w->req->conn->ctx->loop, oe_loop_timeout(w->req->conn->ctx->loop, POLL_MS), &w->poll);
    }
}

/* The request went away (client gone) while waiting. */
static void on_dispose(void *p)
{
    waiter_t *w = p;
    if (h2o_timeout_is_linked(&w->poll))
        h2o_timeout_unlink(&w->poll);
}

static int on_reload(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    if (oe_admin_refused(req, 1)) /* protected like /metrics */
        return 0;
    if (!h2o_memis(req->method.base, req->method.len, H2O_STRLIT("POST"))) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, H2O_STRLIT("POST"));
        oe_admin_send_text(req, 405, "Method Not Allowed", "text/plain", H2O_STRLIT("POST /reload reloads\n"));
        return 0;
    }
    waiter_t *w = h2o_mem_alloc_shared(&req->pool, sizeof(*w), on_dispose);
    *w = (waiter_t){.req = req, .before = reloads_done(), .deadline = oe_util_now_ms() + WAIT_MAX_MS};
    w->poll.cb = on_poll;
    kill(getpid(), SIGHUP);
    h2o_timeout_link(req->conn->ctx->loop, oe_loop_timeout(req->conn->ctx->loop, POLL_MS), &w->poll);
    return 0;
}

void oe_admin_register_reload(h2o_hostconf_t *host)
{
    h2o_pathconf_t *pc = h2o_config_register_path(host, "/reload", 0);
    h2o_handler_t *h = h2o_create_handler(pc, sizeof(*h));
    h->on_req = on_reload;
}

/* ---- the `reload` subcommand ----------------------------------------------------------------- */

int oe_admin_reload_request(const char *admin_addr, const char *token_file, FILE *out, char *err, size_t errlen)
{
    char buf[4096], where[300], why[256];
    oe_httpget_req_t req = {.path = "/reload",
                            .post = 1,
                            .user_agent = "ott-edge-reload",
                            .http10 = 1,
                            .timeout_ms = RELOAD_TIMEOUT_MS,
                            .connect_timeout_ms = 2000};
    oe_httpget_resp_t resp;
    int rc = oe_admin_request(admin_addr, token_file, &req, buf, sizeof(buf), &resp, where, sizeof(where), err, errlen);
    if (rc == 2) {
        snprintf(why, sizeof(why), "%s", err);
        snprintf(err, errlen, "cannot ask %s for a reload: %s", where, why);
    }
    if (rc != 0)
        return 1;
    if (resp.status == 401 || resp.status == 403) {
        snprintf(err, errlen, "the admin listener refused the reload (HTTP %d): %s", resp.status,
                 resp.status == 401 ? "admin.token_file is needed (set it, or OTT_EDGE_ADMIN_TOKEN_FILE)"
                                    : "this address is not in admin.allow");
        return 1;
    }
    const char *body = strstr(buf, "\r\n\r\n");
    json_t *doc = body != NULL ? json_loads(body + 4, 0, NULL) : NULL;
    const char *result = json_string_value(json_object_get(doc, "result"));
    const char *message = json_string_value(json_object_get(doc, "message"));
    json_int_t gen = json_integer_value(json_object_get(doc, "generation"));
    rc = 1;
    if (result == NULL) {
        snprintf(err, errlen, "unexpected answer from %s/reload (HTTP %d)", where, resp.status);
    } else if (strcmp(result, "ok") == 0) {
        fprintf(out, "reloaded: configuration generation %lld%s%s\n", (long long)gen, message && *message ? ": " : "",
                message ? message : "");
        rc = 0;
    } else {
        snprintf(err, errlen, "reload %s: %s (generation %lld still serves)", result, message ? message : "",
                 (long long)gen);
    }
    json_decref(doc);
    return rc;
}
