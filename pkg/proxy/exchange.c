/* exchange — one proxied request; see exchange.h. */
#include "proxy/exchange.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "access/access.h"
#include "http1/http1.h"
#include "log/log.h"
#include "loop/loop.h"
#include "metrics/metrics.h"
#include "pages/pages.h"
#include "phr.h"
#include "proxy/internal.h"
#include "tunnel/tunnel.h"

#define MAX_RESPONSE_HEADERS 100

enum state { S_CONNECT, S_HEAD, S_BODY, S_DONE };
enum body { B_NONE, B_LENGTH, B_CHUNKED, B_EOF };

typedef struct exchange {
    h2o_generator_t super;
    h2o_req_t *req;
    const oe_proxy_target_t *target;
    oe_upstream_server_t *srv; /* the server of the current attempt */
    uint64_t key;              /* consistent-hashing key */
    uint64_t tried;            /* servers tried (bit per pool index) */
    oe_upstream_connect_t *connecting;
    h2o_socket_t *sock;
    h2o_timeout_entry_t timeout;
    h2o_iovec_t head; /* the request head for the upstream */
    char *buf;        /* OE_PROXY_BUF bytes read from the upstream */
    size_t off, len;  /* unparsed/undelivered bytes are buf[off, len) */
    size_t parsed;    /* of the response head, for the parser's incremental hint */
    enum state state;
    enum body body;
    uint64_t left; /* B_LENGTH: body bytes still to come */
    struct phr_chunked_decoder chunked;
    unsigned reused : 1;      /* the connection came from the idle pool */
    unsigned retried : 1;     /* already sent once more, to another server */
    unsigned refreshed : 1;   /* already sent once more after a kept-alive connection failed */
    unsigned fresh : 1;       /* the next connection must be a new one, not an idle one */
    unsigned counted : 1;     /* srv's requests-in-flight count includes this one */
    unsigned keepalive : 1;   /* the upstream connection may be reused after this response */
    unsigned websocket : 1;   /* a WebSocket upgrade was asked for */
    unsigned in_flight : 1;   /* buf is with the client side until proceed */
    unsigned in_send : 1;     /* inside h2o_send: a proceed now is handled after it returns */
    unsigned proceed_due : 1; /* proceed came while in_send */
} exchange_t;

static void on_readable(h2o_socket_t *sock, const char *err);
static void start(exchange_t *x, int next_server);

/* A few response buffers kept per worker thread: a proxied request would otherwise malloc
 * and free OE_PROXY_BUF bytes each time (glibc serves that size from its slow path). */
#define SPARE_BUFS 32
static __thread char *spare[SPARE_BUFS];
static __thread size_t nspare;

static char *buf_get(void)
{
    return nspare != 0 ? spare[--nspare] : malloc(OE_PROXY_BUF);
}

void oe_proxy_thread_exit(void)
{
    while (nspare != 0)
        free(spare[--nspare]);
    oe_upstream_thread_exit();
}

static void buf_put(char *b)
{
    if (b == NULL)
        return;
    if (nspare < SPARE_BUFS)
        spare[nspare++] = b;
    else
        free(b);
}

/* ---- endings ---------------------------------------------------------------------------- */

/* Lets go of the upstream connection: back to the pool when the response ended cleanly
 * on its framing, else closed. */
static void release(exchange_t *x, int reusable)
{
    if (h2o_timeout_is_linked(&x->timeout))
        h2o_timeout_unlink(&x->timeout);
    if (x->connecting != NULL) {
        oe_upstream_connect_cancel(x->connecting);
        x->connecting = NULL;
    }
    if (x->sock != NULL) {
        h2o_socket_t *sock = x->sock;
        x->sock = NULL;
        sock->data = NULL;
        if (reusable && x->keepalive)
            oe_upstream_idle_put(x->srv, sock, x->target->keepalive_ms);
        else
            h2o_socket_close(sock);
    }
    if (x->counted) {
        oe_upstream_active(x->srv, -1);
        x->counted = 0;
    }
}

/* The request is disposed (its pool is cleared): nothing may outlive it. */
static void on_dispose(void *p)
{
    exchange_t *x = p;
    release(x, 0);
    buf_put(x->buf);
    x->buf = NULL;
}

/* The client went away (or the request is being disposed mid-response). */
static void on_stop(h2o_generator_t *g, h2o_req_t *req)
{
    (void)req;
    release((exchange_t *)g, 0);
}

/* Before any response: our own 502 or 504 page. */
static void fail(exchange_t *x, int timeout, const char *why)
{
    h2o_req_t *req = x->req;
    oe_metrics_worker_t *m = oe_metrics_self();
    release(x, 0);
    x->state = S_DONE;
    oe_metrics_inc(timeout ? &m->upstream_timeouts : &m->upstream_errors, 1);
    char path[512], st[8];
    snprintf(path, sizeof(path), "%.*s", (int)req->path.len, req->path.base);
    snprintf(st, sizeof(st), "%d", timeout ? 504 : 502);
    oe_log(OE_LOG_WARN, "upstream_error", "status", st, "site", x->target->site->name, "upstream",
           x->srv != NULL ? oe_upstream_server_url(x->srv) : "none", "path", path, "error", why, NULL);
    if (timeout)
        oe_pages_send(req, 504, "Gateway Timeout", "The application did not answer in time. Try again in a moment.");
    else
        oe_pages_send(req, 502, "Bad Gateway", "The application is not reachable right now. Try again in a moment.");
}

/* After the response started: the body cannot be completed. */
static void cut(exchange_t *x, const char *why)
{
    char path[512];
    snprintf(path, sizeof(path), "%.*s", (int)x->req->path.len, x->req->path.base);
    oe_log(OE_LOG_WARN, "upstream_body_error", "site", x->target->site->name, "upstream",
           oe_upstream_server_url(x->srv), "path", path, "error", why, NULL);
    oe_upstream_report(x->srv, 0, why);
    oe_metrics_inc(&oe_metrics_self()->upstream_errors, 1);
    release(x, 0);
    x->state = S_DONE;
    h2o_send(x->req, NULL, 0, H2O_SEND_STATE_ERROR);
}

static int idempotent(h2o_req_t *req)
{
    static const h2o_iovec_t methods[] = {{H2O_STRLIT("GET")}, {H2O_STRLIT("HEAD")},   {H2O_STRLIT("OPTIONS")},
                                          {H2O_STRLIT("PUT")}, {H2O_STRLIT("DELETE")}, {H2O_STRLIT("TRACE")}};
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        if (h2o_memis(req->method.base, req->method.len, methods[i].base, methods[i].len))
            return 1;
    return 0;
}

/* The upstream connection failed before any byte of a response. An idempotent request on a
 * kept-alive connection the upstream had closed just before reuse is sent again once on a
 * fresh connection to the same server; an idempotent request the server took and never
 * answered goes once to another server. Anything else gets 502. */
static void failed_before_response(exchange_t *x, const char *why)
{
    int can_retry = x->len == 0 && idempotent(x->req);
    if (x->reused && can_retry && !x->refreshed) {
        /* not the server's fault yet, and not the one retry on another server either: a
         * dying server can still accept the fresh connection and then reset it */
        release(x, 0);
        x->refreshed = 1;
        x->reused = 0;
        x->fresh = 1; /* the server's other idle connections may be just as dead */
        start(x, 0);
        return;
    }
    oe_upstream_report(x->srv, 0, why);
    if (can_retry && !x->retried) {
        release(x, 0);
        x->retried = 1;
        start(x, 1);
        return;
    }
    fail(x, 0, why);
}

static void on_timeout(h2o_timeout_entry_t *e)
{
    exchange_t *x = H2O_STRUCT_FROM_MEMBER(exchange_t, timeout, e);
    if (x->state == S_BODY) {
        cut(x, "upstream stalled mid-response (proxy.upstream_timeout)");
    } else {
        oe_upstream_report(x->srv, 0, "no response head within proxy.upstream_timeout");
        fail(x, 1, "no response head within proxy.upstream_timeout");
    }
}

static void arm_timeout(exchange_t *x)
{
    h2o_loop_t *loop = x->req->conn->ctx->loop;
    if (h2o_timeout_is_linked(&x->timeout))
        h2o_timeout_unlink(&x->timeout);
    h2o_timeout_link(loop, oe_loop_timeout(loop, x->target->upstream_timeout_ms), &x->timeout);
}

/* ---- the request -------------------------------------------------------------------- */

static char *append(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}
#define APPEND_LIT(p, lit) append((p), (lit), sizeof(lit) - 1)

static int dropped_request_header(const h2o_header_t *h, h2o_iovec_t connection)
{
    if (h2o_iovec_is_token(h->name)) {
        const h2o_token_t *t = (const void *)h->name;
        if (t->proxy_should_drop_for_req || t == H2O_TOKEN_HOST || t == H2O_TOKEN_EXPECT || t == H2O_TOKEN_COOKIE)
            return 1;
    } else if (h2o_memis(h->name->base, h->name->len, H2O_STRLIT("proxy-connection"))) {
        return 1;
    }
    /* the headers the client's Connection header names are hop-by-hop too (RFC 9110 §7.6.1) */
    return connection.len != 0 && h2o_contains_token(connection.base, connection.len, h->name->base, h->name->len, ',');
}

/* The upstream request head: request line, Host (the client's), the client's headers
 * without hop-by-hop ones, cookies joined into one line (RFC 9113 §8.2.3), a length. */
static h2o_iovec_t build_head(h2o_req_t *req, int websocket)
{
    h2o_iovec_t connection = {NULL, 0};
    ssize_t ci = h2o_find_header(&req->headers, H2O_TOKEN_CONNECTION, -1);
    if (ci != -1)
        connection = req->headers.entries[ci].value;
    int has_body = req->entity.base != NULL || h2o_memis(req->method.base, req->method.len, H2O_STRLIT("POST")) ||
                   h2o_memis(req->method.base, req->method.len, H2O_STRLIT("PUT"));
    size_t cookies = 0, ncookies = 0;
    size_t cap = req->method.len + req->path.len + req->authority.len +
                 sizeof(" HTTP/1.1\r\nhost: \r\nconnection: upgrade\r\nupgrade: websocket\r\ncontent-length: "
                        "12345678901234567890\r\ncookie: \r\n\r\n");
    for (size_t i = 0; i < req->headers.size; i++) {
        const h2o_header_t *h = req->headers.entries + i;
        if (h->name == &H2O_TOKEN_COOKIE->buf) {
            cookies += h->value.len + 2;
            ncookies++;
        } else {
            cap += h->name->len + h->value.len + 4;
        }
    }
    cap += cookies;
    char *buf = h2o_mem_alloc_pool(&req->pool, cap), *p = buf;
    p = append(p, req->method.base, req->method.len);
    *p++ = ' ';
    p = append(p, req->path.base, req->path.len);
    p = APPEND_LIT(p, " HTTP/1.1\r\nhost: ");
    p = append(p, req->authority.base, req->authority.len);
    p = APPEND_LIT(p, "\r\n");
    if (websocket)
        p = APPEND_LIT(p, "connection: upgrade\r\nupgrade: websocket\r\n");
    if (has_body) {
        char n[24];
        int l = snprintf(n, sizeof(n), "%zu", req->entity.base != NULL ? req->entity.len : (size_t)0);
        p = APPEND_LIT(p, "content-length: ");
        p = append(p, n, (size_t)l);
        p = APPEND_LIT(p, "\r\n");
    }
    for (size_t i = 0; i < req->headers.size; i++) {
        const h2o_header_t *h = req->headers.entries + i;
        if (dropped_request_header(h, connection))
            continue;
        p = append(p, h->orig_name != NULL ? h->orig_name : h->name->base, h->name->len);
        *p++ = ':';
        *p++ = ' ';
        p = append(p, h->value.base, h->value.len);
        *p++ = '\r';
        *p++ = '\n';
    }
    if (ncookies != 0) {
        p = APPEND_LIT(p, "cookie: ");
        size_t k = 0;
        for (size_t i = 0; i < req->headers.size; i++) {
            const h2o_header_t *h = req->headers.entries + i;
            if (h->name != &H2O_TOKEN_COOKIE->buf)
                continue;
            if (k++ != 0)
                p = APPEND_LIT(p, "; ");
            p = append(p, h->value.base, h->value.len);
        }
        p = APPEND_LIT(p, "\r\n");
    }
    p = APPEND_LIT(p, "\r\n");
    return h2o_iovec_init(buf, (size_t)(p - buf));
}

static void on_written(h2o_socket_t *sock, const char *err)
{
    exchange_t *x = sock->data;
    if (err != NULL && x->state == S_HEAD)
        failed_before_response(x, "cannot send the request");
}

static void send_request(exchange_t *x, h2o_socket_t *sock)
{
    x->sock = sock;
    sock->data = x;
    x->state = S_HEAD;
    x->keepalive = 1;
    h2o_iovec_t v[2] = {x->head, x->req->entity};
    h2o_socket_write(sock, v, x->req->entity.len != 0 ? 2 : 1, on_written);
    h2o_socket_read_start(sock, on_readable);
    arm_timeout(x);
}

static void on_connected(void *data, h2o_socket_t *sock, const char *err)
{
    exchange_t *x = data;
    x->connecting = NULL;
    if (sock == NULL) {
        /* nothing was sent: any request may go to the next server */
        char why[200];
        snprintf(why, sizeof(why), "connect: %s", err);
        oe_upstream_report(x->srv, 0, why);
        release(x, 0);
        start(x, 1);
        return;
    }
    send_request(x, sock);
}

/* Sends the request: to the same server on a fresh connection (next_server 0), or to a
 * server not tried yet (1). With no server left, 502 at once. */
static void start(exchange_t *x, int next_server)
{
    h2o_context_t *ctx = x->req->conn->ctx;
    if (next_server || x->srv == NULL) {
        unsigned i;
        x->srv = oe_upstream_pick(x->target->pool, x->key, x->tried, &i);
        if (x->srv == NULL) {
            fail(x, 0, x->tried != 0 ? "no other upstream server could take the request" : "no upstream server is up");
            return;
        }
        x->tried |= 1ull << i;
    }
    oe_upstream_active(x->srv, 1);
    x->counted = 1;
    x->state = S_CONNECT;
    h2o_socket_t *sock = x->fresh ? NULL : oe_upstream_idle_take(x->srv, ctx->loop);
    x->fresh = 0;
    if (sock != NULL) {
        x->reused = 1;
        send_request(x, sock);
        return;
    }
    x->reused = 0;
    x->connecting = oe_upstream_connect(ctx, x->srv, x->target->connect_timeout_ms, on_connected, x);
    if (x->connecting == NULL)
        fail(x, 0, "out of memory");
}

/* ---- the response ------------------------------------------------------------------- */

static void deliver(exchange_t *x);

static void on_proceed(h2o_generator_t *g, h2o_req_t *req)
{
    exchange_t *x = (void *)g;
    (void)req;
    if (x->in_send) {
        x->proceed_due = 1;
        return;
    }
    x->in_flight = 0;
    x->off = x->len = 0; /* the client side is done with buf */
    if (x->sock == NULL)
        return;
    arm_timeout(x);
    if (!h2o_socket_is_reading(x->sock))
        h2o_socket_read_start(x->sock, on_readable);
    on_readable(x->sock, NULL); /* more may be waiting already */
}

/* Hands buf[off, off+n) to the client side. */
static void send_body(exchange_t *x, char *p, size_t n, int final)
{
    h2o_iovec_t v = h2o_iovec_init(p, n);
    if (final) {
        release(x, 1);
        x->state = S_DONE;
        h2o_send(x->req, &v, n != 0 ? 1 : 0, H2O_SEND_STATE_FINAL); /* x may be gone after this */
        return;
    }
    x->in_flight = 1;
    if (h2o_timeout_is_linked(&x->timeout))
        h2o_timeout_unlink(&x->timeout); /* a slow client is not the upstream's fault */
    h2o_socket_read_stop(x->sock);
    x->in_send = 1;
    h2o_send(x->req, &v, 1, H2O_SEND_STATE_IN_PROGRESS);
    x->in_send = 0;
    if (x->proceed_due) {
        x->proceed_due = 0;
        on_proceed(&x->super, x->req);
    }
}

static void deliver(exchange_t *x)
{
    char *p = x->buf + x->off;
    size_t avail = x->len - x->off, n = 0;
    int final = 0;
    switch (x->body) {
    case B_NONE:
        final = 1;
        if (avail != 0)
            x->keepalive = 0; /* bytes after a bodiless response: never trust this connection again */
        break;
    case B_LENGTH:
        n = avail < x->left ? avail : (size_t)x->left;
        x->left -= n;
        final = x->left == 0;
        if (final && avail > n)
            x->keepalive = 0;
        break;
    case B_CHUNKED: {
        size_t sz = avail;
        ssize_t rest = phr_decode_chunked(&x->chunked, p, &sz);
        if (rest == -1) {
            cut(x, "invalid chunked encoding from the upstream");
            return;
        }
        n = sz;
        final = rest >= 0;
        if (rest > 0)
            x->keepalive = 0;
        break;
    }
    case B_EOF:
        n = avail;
        break;
    }
    if (n == 0 && !final) {
        x->off = x->len = 0;
        return;
    }
    send_body(x, p, n, final);
}

typedef struct {
    h2o_socket_t *upstream;
    h2o_context_t *ctx;
    uint64_t idle_ms;
    oe_upstream_server_t *srv;
    oe_proxy_gen_t *gen;
    void *access; /* oe_access_ws_open's ticket */
} ws_handover_t;

static void on_tunnel_closed(void *data)
{
    ws_handover_t *w = data;
    oe_upstream_websockets(w->srv, -1);
    oe_proxy_gen_release(w->gen);
    oe_access_ws_closed(w->access);
    free(w);
}

static void on_client_upgraded(void *data, h2o_socket_t *client)
{
    ws_handover_t *w = data;
    if (client == NULL) {
        h2o_socket_close(w->upstream);
        on_tunnel_closed(w);
        return;
    }
    oe_tunnel_start(w->ctx, client, w->upstream, w->idle_ms, on_tunnel_closed, w);
}

/* 101 to a WebSocket upgrade: the client gets the 101, then both sockets go to a tunnel
 * with whatever the upstream sent after its head. */
static void upgrade(exchange_t *x)
{
    h2o_req_t *req = x->req;
    ws_handover_t *w = malloc(sizeof(*w));
    h2o_socket_t *up = x->sock;
    size_t rest = x->len - x->off;
    if (w == NULL) {
        fail(x, 0, "out of memory");
        return;
    }
    if (h2o_timeout_is_linked(&x->timeout))
        h2o_timeout_unlink(&x->timeout);
    x->sock = NULL;
    x->state = S_DONE;
    up->data = NULL;
    h2o_socket_read_stop(up);
    h2o_socket_dont_read(up, 0); /* the tunnel reads through libh2o's buffers */
    if (rest != 0) {
        h2o_iovec_t dst = h2o_buffer_reserve(&up->input, rest);
        if (dst.base == NULL) {
            h2o_socket_close(up);
            free(w);
            oe_pages_send(req, 502, "Bad Gateway", "Out of memory.");
            return;
        }
        memcpy(dst.base, x->buf + x->off, rest);
        up->input->size += rest;
    }
    *w = (ws_handover_t){.upstream = up,
                         .ctx = req->conn->ctx,
                         .idle_ms = x->target->websocket_idle_ms,
                         .srv = x->srv,
                         .gen = x->target->gen,
                         .access = oe_access_ws_open(req)};
    oe_upstream_websockets(x->srv, 1);
    oe_proxy_gen_hold(w->gen); /* a reload leaves this WebSocket on its configuration */
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_UPGRADE, NULL, H2O_STRLIT("websocket"));
    oe_http1_upgrade(req, on_client_upgraded, w); /* disposes req (and x) before the callback */
}

static int parse_length(const char *s, size_t len, size_t *out)
{
    size_t v = 0;
    if (len == 0 || len > 19)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (size_t)(s[i] - '0');
    }
    *out = v;
    return 0;
}

/* A complete response head: becomes req->res. Returns -1 when it answered with an error. */
static int take_head(exchange_t *x, int minor, int status, const char *msg, size_t msg_len, struct phr_header *hs,
                     size_t nh)
{
    h2o_req_t *req = x->req;
    size_t cl = SIZE_MAX;
    int chunked = 0, has_te = 0;
    h2o_iovec_t connection = {NULL, 0}, saved_connection = {NULL, 0};
    req->res.status = status;
    req->res.reason = h2o_strdup(&req->pool, msg, msg_len).base;
    for (size_t i = 0; i < nh; i++) {
        if (hs[i].name == NULL) { /* obs-fold from the upstream */
            fail(x, 0, "invalid response header from the upstream");
            return -1;
        }
        char *name = h2o_strdup(&req->pool, hs[i].name, hs[i].name_len).base;
        h2o_strtolower(name, hs[i].name_len);
        const h2o_token_t *t = h2o_lookup_token(name, hs[i].name_len);
        if (t == H2O_TOKEN_CONTENT_LENGTH) {
            size_t v;
            if (parse_length(hs[i].value, hs[i].value_len, &v) != 0 || (cl != SIZE_MAX && cl != v)) {
                fail(x, 0, "invalid Content-Length from the upstream");
                return -1;
            }
            cl = v;
            continue;
        }
        if (t == H2O_TOKEN_TRANSFER_ENCODING) {
            has_te = 1;
            chunked = hs[i].value_len >= 7 && h2o_lcstris(hs[i].value + hs[i].value_len - 7, 7, H2O_STRLIT("chunked"));
            continue;
        }
        if (t == H2O_TOKEN_CONNECTION) {
            connection = saved_connection = h2o_strdup(&req->pool, hs[i].value, hs[i].value_len);
            continue;
        }
        if (t != NULL && t->proxy_should_drop_for_res)
            continue;
        h2o_iovec_t value = h2o_strdup(&req->pool, hs[i].value, hs[i].value_len);
        if (t != NULL)
            h2o_add_header(&req->pool, &req->res.headers, t, NULL, value.base, value.len);
        else
            h2o_add_header_by_str(&req->pool, &req->res.headers, name, hs[i].name_len, 0, NULL, value.base, value.len);
    }
    /* the Connection header: close / keep-alive, and any other header it names is
     * hop-by-hop too (RFC 9110 §7.6.1) */
    int conn_close = 0, conn_keepalive = 0, conn_names = 0;
    const char *tok;
    size_t toklen;
    while ((tok = h2o_next_token(&connection, ',', &toklen, NULL)) != NULL) {
        if (h2o_lcstris(tok, toklen, H2O_STRLIT("close")))
            conn_close = 1;
        else if (h2o_lcstris(tok, toklen, H2O_STRLIT("keep-alive")))
            conn_keepalive = 1;
        else
            conn_names = 1;
    }
    if (conn_names) {
        for (size_t i = req->res.headers.size; i-- > 0;) {
            h2o_iovec_t *n = req->res.headers.entries[i].name;
            if (h2o_contains_token(saved_connection.base, saved_connection.len, n->base, n->len, ','))
                h2o_delete_header(&req->res.headers, (ssize_t)i);
        }
    }
    if (minor == 0)
        x->keepalive = conn_keepalive;
    else if (conn_close)
        x->keepalive = 0;

    int head = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"));
    if (head || status == 204 || status == 304) {
        x->body = B_NONE;
        req->res.content_length = head || status == 304 ? cl : SIZE_MAX;
    } else if (has_te) {
        x->body = chunked ? B_CHUNKED : B_EOF; /* RFC 9112 §6.3: not chunked-last means until close */
        if (!chunked)
            x->keepalive = 0;
    } else if (cl != SIZE_MAX) {
        x->body = B_LENGTH;
        x->left = cl;
        req->res.content_length = cl;
    } else {
        x->body = B_EOF;
        x->keepalive = 0;
    }
    if (x->body == B_EOF && cl != SIZE_MAX)
        req->res.content_length = SIZE_MAX;
    if (x->websocket)
        x->keepalive = 0; /* the upstream may still think in terms of the upgrade */
    return 0;
}

static void on_head(exchange_t *x)
{
    for (;;) {
        int minor, status;
        const char *msg;
        size_t msg_len, nh = MAX_RESPONSE_HEADERS;
        struct phr_header hs[MAX_RESPONSE_HEADERS];
        int r =
            phr_parse_response(x->buf + x->off, x->len - x->off, &minor, &status, &msg, &msg_len, hs, &nh, x->parsed);
        if (r == -2) {
            x->parsed = x->len - x->off;
            if (x->len == OE_PROXY_BUF) {
                if (x->off == 0) {
                    fail(x, 0, "response head larger than 32 KiB");
                    return;
                }
                memmove(x->buf, x->buf + x->off, x->len - x->off);
                x->len -= x->off;
                x->off = 0;
            }
            return;
        }
        if (r < 0) {
            fail(x, 0, "invalid response from the upstream");
            return;
        }
        x->parsed = 0;
        if (status >= 100 && status < 200 && status != 101) { /* 100 Continue, 103 Early Hints: skipped */
            x->off += (size_t)r;
            continue;
        }
        if (take_head(x, minor, status, msg, msg_len, hs, nh) != 0)
            return;
        x->off += (size_t)r;
        if (status >= 500) {
            char why[64];
            snprintf(why, sizeof(why), "answered %d", status);
            oe_upstream_report(x->srv, 0, why);
        } else {
            oe_upstream_report(x->srv, 1, "");
        }
        if (status == 101) {
            if (x->websocket && oe_http1_is_request(x->req)) {
                upgrade(x);
            } else {
                fail(x, 0, "101 Switching Protocols to a request that asked for no upgrade");
            }
            return;
        }
        x->state = S_BODY;
        h2o_start_response(x->req, &x->super);
        deliver(x);
        return;
    }
}

static void on_eof(exchange_t *x, const char *why)
{
    if (x->state == S_HEAD) {
        failed_before_response(x, why);
    } else if (x->state == S_BODY && x->body == B_EOF) {
        x->keepalive = 0;
        send_body(x, NULL, 0, 1);
    } else if (x->state == S_BODY) {
        cut(x, why);
    }
}

static void on_readable(h2o_socket_t *sock, const char *err)
{
    exchange_t *x = sock->data;
    (void)err; /* DONT_READ mode: libh2o only says the descriptor is readable */
    int fd = h2o_socket_get_fd(sock);
    for (;;) {
        if (x->in_flight || (x->state != S_HEAD && x->state != S_BODY))
            return;
        if (x->buf == NULL && (x->buf = buf_get()) == NULL) {
            fail(x, 0, "out of memory");
            return;
        }
        ssize_t r = read(fd, x->buf + x->len, OE_PROXY_BUF - x->len);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                on_eof(x, strerror(errno));
            return;
        }
        if (r == 0) {
            on_eof(x, "the upstream closed the connection");
            return;
        }
        x->len += (size_t)r;
        arm_timeout(x);
        if (x->state == S_HEAD)
            on_head(x);
        else
            deliver(x);
        /* after a final send the request (and x) may be gone: deliver() and on_head()
         * return with x->state S_DONE only when they ended the exchange */
        return;
    }
}

/* The value `hash_key` names in the request, hashed; the client address when it is absent. */
static uint64_t hash_key(h2o_req_t *req, const oe_site_t *site)
{
    h2o_iovec_t v = {NULL, 0};
    ssize_t i;
    switch (site->hash.kind) {
    case OE_HASH_HEADER:
        if ((i = h2o_find_header_by_str(&req->headers, site->hash.name, strlen(site->hash.name), -1)) != -1)
            v = req->headers.entries[i].value;
        break;
    case OE_HASH_COOKIE: {
        size_t nl = strlen(site->hash.name);
        for (i = -1; v.base == NULL && (i = h2o_find_header(&req->headers, H2O_TOKEN_COOKIE, i)) != -1;) {
            h2o_iovec_t iter = req->headers.entries[i].value, val;
            const char *tok;
            size_t toklen;
            while ((tok = h2o_next_token(&iter, ';', &toklen, &val)) != NULL)
                if (toklen == nl && memcmp(tok, site->hash.name, nl) == 0 && val.base != NULL) {
                    v = val;
                    break;
                }
        }
        break;
    }
    case OE_HASH_PATH_SEGMENT: {
        /* "/api/room/abc?x": segment 1 is "api", 3 is "abc" */
        const char *p = req->path_normalized.base, *end = p + req->path_normalized.len;
        for (unsigned n = 0; p < end && v.base == NULL;) {
            if (*p == '/') {
                p++;
                continue;
            }
            const char *e = memchr(p, '/', (size_t)(end - p));
            if (e == NULL)
                e = end;
            if (++n == site->hash.segment)
                v = h2o_iovec_init(p, (size_t)(e - p));
            p = e;
        }
        break;
    }
    case OE_HASH_CLIENT_IP:
        break;
    }
    if (v.base == NULL &&
        (i = h2o_find_header_by_str(&req->headers, H2O_STRLIT("x-real-ip"), -1)) != -1) /* set by the trust rules */
        v = req->headers.entries[i].value;
    return v.base != NULL ? oe_upstream_hash(v.base, v.len) : 0;
}

void oe_proxy_exchange_start(h2o_req_t *req, const oe_proxy_target_t *target)
{
    exchange_t *x = h2o_mem_alloc_shared(&req->pool, sizeof(*x), on_dispose);
    memset(x, 0, sizeof(*x));
    x->super.proceed = on_proceed;
    x->super.stop = on_stop;
    x->req = req;
    x->target = target;
    x->timeout.cb = on_timeout;
    x->websocket = req->upgrade.base != NULL && req->version == 0x101 &&
                   h2o_lcstris(req->upgrade.base, req->upgrade.len, H2O_STRLIT("websocket"));
    x->head = build_head(req, x->websocket);
    if (target->site->balance == OE_BALANCE_HASH)
        x->key = hash_key(req, target->site);
    start(x, 1);
}
