/* http1 — see http1.h. */
#include "http1/http1.h"

#include <string.h>
#include <strings.h>

#include "phr.h"

#define SMALL_WRITE (16 * 1024) /* up to this, head + body are copied into one buffer: one TLS record */

enum state {
    ST_HEAD,       /* waiting for (the rest of) a request head; keep-alive idle */
    ST_CONTINUE,   /* writing "100 Continue" */
    ST_BODY,       /* reading the request body */
    ST_PROCESSING, /* the handlers have the request; the response is being written */
};

enum body_kind { BODY_NONE = 0, BODY_LENGTH, BODY_CHUNKED };

typedef struct conn {
    h2o_conn_t super;
    h2o_socket_t *sock;
    h2o_linklist_t link;          /* in the thread's list */
    h2o_timeout_entry_t timeout;  /* head, body, keep-alive idle or send */
    h2o_timeout_t *timeout_owner; /* the h2o_timeout_t the entry is linked into */
    enum state state;
    size_t parsed; /* bytes given to the head parser already (its incremental hint) */
    size_t head_len;
    size_t req_len; /* head + body bytes of this request in sock->input */
    struct {
        enum body_kind kind;
        size_t length;   /* BODY_LENGTH */
        size_t decoded;  /* BODY_CHUNKED: input bytes already decoded */
        int reading_off; /* reading was stopped while the handlers hold the body */
        struct phr_chunked_decoder decoder;
    } body;
    unsigned client_eof : 1; /* the client closed its side while we were busy */
    unsigned sent_head : 1;
    unsigned fresh : 1;       /* accepted, no byte of a first request yet (see oe_http1_fresh) */
    unsigned no_body_out : 1; /* HEAD, 1xx, 204, 304: the response has no body */
    uint64_t req_index;
    struct {
        oe_http1_upgrade_cb cb;
        void *data;
    } upgrade;
    h2o_ostream_t ostr; /* the final ostream: writes to the socket */
    h2o_req_t req;      /* last: large, with its own initialiser */
} conn_t;

static __thread h2o_linklist_t thread_conns;
static __thread size_t thread_count;
static uint64_t fresh_total; /* all workers: connections whose first request has not begun */

static void not_fresh(conn_t *c)
{
    if (c->fresh) {
        c->fresh = 0;
        __atomic_sub_fetch(&fresh_total, 1, __ATOMIC_RELAXED);
    }
}

static void on_read(h2o_socket_t *sock, const char *err);
static void handle_head(conn_t *c);
static void do_send(h2o_ostream_t *self, h2o_req_t *req, h2o_iovec_t *bufs, size_t bufcnt, h2o_send_state_t state);

/* ---- connection life ----------------------------------------------------------------- */

static void set_timeout(conn_t *c, h2o_timeout_t *t)
{
    if (h2o_timeout_is_linked(&c->timeout))
        h2o_timeout_unlink(&c->timeout);
    c->timeout_owner = t;
    if (t != NULL)
        h2o_timeout_link(c->super.ctx->loop, t, &c->timeout);
}

static void init_request(conn_t *c, int reinit)
{
    if (reinit)
        h2o_dispose_request(&c->req);
    h2o_init_request(&c->req, &c->super, NULL);
    c->req_index++;
    c->req._ostr_top = &c->ostr;
    c->ostr.do_send = do_send;
    c->ostr.start_pull = NULL; /* no pull-mode generator is used in ott-edge */
    c->state = ST_HEAD;
    c->parsed = 0;
    c->head_len = 0;
    c->req_len = 0;
    memset(&c->body, 0, sizeof(c->body));
    c->sent_head = 0;
    c->no_body_out = 0;
}

static void close_conn(conn_t *c)
{
    set_timeout(c, NULL);
    not_fresh(c);
    h2o_linklist_unlink(&c->link);
    thread_count--;
    h2o_dispose_request(&c->req); /* stops a generator still running, runs the loggers */
    if (c->sock != NULL)
        h2o_socket_close(c->sock);
    free(c);
}

static void on_timeout(h2o_timeout_entry_t *entry)
{
    conn_t *c = H2O_STRUCT_FROM_MEMBER(conn_t, timeout, entry);
    c->req.http1_is_persistent = 0;
    close_conn(c);
}

/* ---- errors before the handlers see the request ---------------------------------------- */

static void on_error_sent(h2o_socket_t *sock, const char *err)
{
    (void)err;
    close_conn(sock->data);
}

/* Answers a request that cannot be served (bad framing, too large) and closes: the bytes
 * that follow on this connection cannot be trusted to start a request. */
static void reject(conn_t *c, int status, const char *reason, const char *msg)
{
    char buf[512];
    size_t ml = strlen(msg);
    int n = snprintf(buf, sizeof(buf),
                     "HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\nconnection: close\r\n"
                     "content-length: %zu\r\ncache-control: no-store\r\n\r\n%s",
                     status, reason, ml, msg);
    set_timeout(c, NULL);
    h2o_socket_read_stop(c->sock);
    c->state = ST_PROCESSING;
    c->req.http1_is_persistent = 0;
    h2o_iovec_t v = h2o_strdup(&c->req.pool, buf, n > 0 && (size_t)n < sizeof(buf) ? (size_t)n : 0);
    h2o_socket_write(c->sock, &v, 1, on_error_sent);
}

/* ---- request head ------------------------------------------------------------------- */

static int crlf_only(const char *s, size_t len)
{
    for (; len != 0; s++, len--)
        if (*s != '\r' && *s != '\n')
            return 0;
    return 1;
}

/* Whether every LF in the head ends a CRLF (RFC 9112 §2.2: a bare LF is where two
 * parsers most often disagree about where a header line ends). */
static int has_bare_lf(const char *s, size_t len)
{
    const char *p = s, *end = s + len;
    while ((p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        if (p == s || p[-1] != '\r')
            return 1;
        p++;
    }
    return 0;
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

static h2o_iovec_t trim(const char *s, size_t len)
{
    while (len != 0 && (*s == ' ' || *s == '\t'))
        s++, len--;
    while (len != 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    return h2o_iovec_init(s, len);
}

static void dispatch(conn_t *c);
static void handle_body(conn_t *c);

static void on_continue_sent(h2o_socket_t *sock, const char *err)
{
    conn_t *c = sock->data;
    if (err != NULL) {
        close_conn(c);
        return;
    }
    c->state = ST_BODY;
    handle_body(c);
}

/*
 * Parses the head in sock->input. On a complete head: copies it into the request's pool
 * (so that reading on while the handlers run cannot move what the request points at),
 * applies the framing rules, then reads the body or dispatches.
 */
static void handle_head(conn_t *c)
{
    h2o_buffer_t *in = c->sock->input;
    h2o_req_t *req = &c->req;
    if (in->size == 0)
        return;
    not_fresh(c);
    if (req->timestamps.request_begin_at.tv_sec == 0)
        req->timestamps.request_begin_at = *h2o_get_timestamp(c->super.ctx, NULL, NULL);

    size_t avail = in->size < OE_HTTP1_MAX_HEAD_BYTES ? in->size : OE_HTTP1_MAX_HEAD_BYTES;
    struct phr_header hs[OE_HTTP1_MAX_HEADERS];
    size_t nh = OE_HTTP1_MAX_HEADERS;
    const char *method, *path;
    size_t mlen, plen;
    int minor;
    int r = phr_parse_request(in->bytes, avail, &method, &mlen, &path, &plen, &minor, hs, &nh, c->parsed);
    c->parsed = avail;
    if (r == -2) {
        if (avail == OE_HTTP1_MAX_HEAD_BYTES && memchr(in->bytes, '\n', avail) == NULL)
            reject(c, 414, "URI Too Long", "The request line is too long.\n");
        else if (avail == OE_HTTP1_MAX_HEAD_BYTES)
            reject(c, 431, "Request Header Fields Too Large", "The request head is too large.\n");
        return;
    }
    if (r < 0) {
        if (avail <= 4 && crlf_only(in->bytes, avail)) {
            close_conn(c);
            return;
        }
        if (nh == OE_HTTP1_MAX_HEADERS)
            reject(c, 431, "Request Header Fields Too Large", "Too many request header lines.\n");
        else
            reject(c, 400, "Bad Request", "The request could not be parsed.\n");
        return;
    }
    if (has_bare_lf(in->bytes, (size_t)r)) {
        reject(c, 400, "Bad Request", "Lines must end with CRLF (RFC 9112 §2.2).\n");
        return;
    }

    /* from here on the request points into its own copy of the head */
    char *copy = h2o_mem_alloc_pool(&req->pool, (size_t)r);
    memcpy(copy, in->bytes, (size_t)r);
#define REBASE(p) (copy + ((const char *)(p)-in->bytes))
    c->head_len = (size_t)r;
    req->input.method = h2o_iovec_init(REBASE(method), mlen);
    req->input.path = h2o_iovec_init(REBASE(path), plen);
    req->input.scheme = c->sock->ssl != NULL ? &H2O_URL_SCHEME_HTTPS : &H2O_URL_SCHEME_HTTP;
    req->version = 0x100 | (minor != 0);

    h2o_iovec_t host = {NULL, 0}, connection = {NULL, 0}, upgrade = {NULL, 0}, expect = {NULL, 0};
    size_t content_length = 0;
    int has_cl = 0, has_te = 0;
    const char *bad = NULL;
    h2o_vector_reserve(&req->pool, &req->headers, nh);
    for (size_t i = 0; i < nh && bad == NULL; i++) {
        if (hs[i].name == NULL) {
            bad = "Obsolete line folding is not accepted (RFC 9112 §5.2).\n";
            break;
        }
        char *name = REBASE(hs[i].name);
        const char *value = REBASE(hs[i].value);
        size_t vlen = hs[i].value_len;
        h2o_strtolower(name, hs[i].name_len);
        const h2o_token_t *t = h2o_lookup_token(name, hs[i].name_len);
        if (t == NULL) {
            h2o_add_header_by_str(&req->pool, &req->headers, name, hs[i].name_len, 0, NULL, value, vlen);
            continue;
        }
        if (!t->is_init_header_special) {
            h2o_add_header(&req->pool, &req->headers, t, NULL, value, vlen);
            if (t == H2O_TOKEN_CONNECTION)
                connection = req->headers.entries[req->headers.size - 1].value;
        } else if (t == H2O_TOKEN_HOST) {
            if (host.base != NULL)
                bad = "Several Host headers (RFC 9112 §3.2).\n";
            host = h2o_iovec_init(value, vlen);
        } else if (t == H2O_TOKEN_CONTENT_LENGTH) {
            size_t v = 0;
            if (parse_length(value, vlen, &v) != 0)
                bad = "Invalid Content-Length (RFC 9112 §6.3).\n";
            else if (has_cl && v != content_length)
                bad = "Differing Content-Length values (RFC 9112 §6.3).\n";
            content_length = v;
            has_cl = 1;
        } else if (t == H2O_TOKEN_TRANSFER_ENCODING) {
            h2o_iovec_t te = trim(value, vlen);
            if (has_te) {
                bad = "Several Transfer-Encoding headers.\n";
            } else if (!h2o_lcstris(te.base, te.len, H2O_STRLIT("chunked"))) {
                bad = "Only Transfer-Encoding: chunked is accepted in requests.\n";
            }
            has_te = 1;
        } else if (t == H2O_TOKEN_EXPECT) {
            expect = h2o_iovec_init(value, vlen);
        } else if (t == H2O_TOKEN_UPGRADE) {
            upgrade = h2o_iovec_init(value, vlen);
        }
    }
#undef REBASE
    if (bad == NULL && has_te && has_cl)
        bad = "Content-Length and Transfer-Encoding together (RFC 9112 §6.1).\n";
    if (bad == NULL && has_te && req->version < 0x101)
        bad = "Transfer-Encoding in an HTTP/1.0 request (RFC 9112 §6.1).\n";
    if (bad != NULL) {
        reject(c, 400, "Bad Request", bad);
        return;
    }
    if (host.base != NULL)
        req->input.authority = host;

    /* persistence and upgrade (RFC 9112 §9.3) */
    if (connection.base != NULL) {
        if (h2o_contains_token(connection.base, connection.len, H2O_STRLIT("close"), ','))
            req->http1_is_persistent = 0;
        else
            req->http1_is_persistent = req->version >= 0x101 || h2o_contains_token(connection.base, connection.len,
                                                                                   H2O_STRLIT("keep-alive"), ',');
        if (upgrade.base != NULL && h2o_contains_token(connection.base, connection.len, H2O_STRLIT("upgrade"), ','))
            req->upgrade = upgrade;
    } else {
        req->http1_is_persistent = req->version >= 0x101;
    }
    if (c->super.ctx->shutdown_requested)
        req->http1_is_persistent = 0;

    /* the body */
    size_t max = c->super.ctx->globalconf->max_request_entity_size;
    if (has_te) {
        c->body.kind = BODY_CHUNKED;
        c->body.decoded = c->head_len;
        c->body.decoder.consume_trailer = 1;
    } else if (has_cl) {
        if (content_length > max) {
            reject(c, 413, "Payload Too Large", "The request body is too large.\n");
            return;
        }
        c->body.kind = BODY_LENGTH;
        c->body.length = content_length;
    }
    if (c->body.kind == BODY_NONE || (c->body.kind == BODY_LENGTH && content_length == 0)) {
        if (c->body.kind == BODY_LENGTH)
            req->entity = h2o_iovec_init(in->bytes + c->head_len, 0);
        c->req_len = c->head_len;
        dispatch(c);
        return;
    }
    if (expect.base != NULL) {
        if (!h2o_lcstris(expect.base, expect.len, H2O_STRLIT("100-continue"))) {
            reject(c, 417, "Expectation Failed", "Only Expect: 100-continue is understood.\n");
            return;
        }
        if (in->size == c->head_len) { /* nothing of the body yet: the client waits for this */
            static const h2o_iovec_t cont = {H2O_STRLIT("HTTP/1.1 100 Continue\r\n\r\n")};
            c->state = ST_CONTINUE;
            h2o_socket_write(c->sock, (h2o_iovec_t *)&cont, 1, on_continue_sent);
            return;
        }
    }
    c->state = ST_BODY;
    req->timestamps.request_body_begin_at = *h2o_get_timestamp(c->super.ctx, NULL, NULL);
    handle_body(c);
}

/* Reads the body from sock->input; the request's entity points into that buffer, so the
 * socket stops reading until the response is done. */
static void handle_body(conn_t *c)
{
    h2o_buffer_t *in = c->sock->input;
    size_t max = c->super.ctx->globalconf->max_request_entity_size;
    set_timeout(c, &c->super.ctx->http1.req_timeout); /* progress restarts the clock */
    if (c->body.kind == BODY_LENGTH) {
        if (in->size - c->head_len < c->body.length)
            return;
        c->req.entity = h2o_iovec_init(in->bytes + c->head_len, c->body.length);
        c->req_len = c->head_len + c->body.length;
    } else {
        size_t n = in->size - c->body.decoded;
        if (n == 0)
            return;
        ssize_t rest = phr_decode_chunked(&c->body.decoder, in->bytes + c->body.decoded, &n);
        in->size = c->body.decoded + n;
        c->body.decoded = in->size;
        if (in->size - c->head_len > max) {
            reject(c, 413, "Payload Too Large", "The request body is too large.\n");
            return;
        }
        if (rest == -2)
            return;
        if (rest < 0) {
            reject(c, 400, "Bad Request", "Broken chunked encoding.\n");
            return;
        }
        c->req.entity = h2o_iovec_init(in->bytes + c->head_len, in->size - c->head_len);
        c->req_len = in->size;
        in->size += (size_t)rest; /* what followed the body: the next request */
    }
    h2o_socket_read_stop(c->sock);
    c->body.reading_off = 1;
    dispatch(c);
}

static void dispatch(conn_t *c)
{
    set_timeout(c, NULL);
    c->state = ST_PROCESSING;
    c->no_body_out = h2o_memis(c->req.input.method.base, c->req.input.method.len, H2O_STRLIT("HEAD"));
    h2o_process_request(&c->req);
}

static void on_read(h2o_socket_t *sock, const char *err)
{
    conn_t *c = sock->data;
    if (err != NULL) {
        if (c->state == ST_PROCESSING || c->state == ST_CONTINUE) {
            /* a half-close still gets its answer; a gone client shows on the next write */
            c->client_eof = 1;
            h2o_socket_read_stop(sock);
            return;
        }
        close_conn(c);
        return;
    }
    switch (c->state) {
    case ST_HEAD:
        handle_head(c);
        break;
    case ST_BODY:
        handle_body(c);
        break;
    default:
        /* pipelined bytes wait for the current response; bounded */
        if (sock->input->size - c->req_len > OE_HTTP1_MAX_HEAD_BYTES)
            h2o_socket_read_stop(sock);
        break;
    }
}

/* ---- response --------------------------------------------------------------------- */

static void on_send_next(h2o_socket_t *sock, const char *err)
{
    conn_t *c = sock->data;
    set_timeout(c, NULL);
    if (err != NULL) {
        close_conn(c);
        return;
    }
    h2o_proceed_response(&c->req);
}

static void on_send_complete(h2o_socket_t *sock, const char *err)
{
    conn_t *c = sock->data;
    set_timeout(c, NULL);
    c->req.timestamps.response_end_at = *h2o_get_timestamp(c->super.ctx, NULL, NULL);
    if (err != NULL || !c->req.http1_is_persistent || c->client_eof) {
        close_conn(c);
        return;
    }
    /* the next request on this connection */
    h2o_buffer_consume(&sock->input, c->req_len);
    int was_off = c->body.reading_off;
    init_request(c, 1);
    set_timeout(c, &c->super.ctx->http1.req_timeout);
    if (was_off || !h2o_socket_is_reading(sock))
        h2o_socket_read_start(sock, on_read);
    if (sock->input->size != 0)
        handle_head(c);
}

static char *append(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}
#define APPEND_LIT(p, lit) append((p), (lit), sizeof(lit) - 1)

static char *append_u64(char *p, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    while (n != 0)
        *p++ = tmp[--n];
    return p;
}

/* The response head, without sprintf: status line, date, framing, connection, headers. */
static size_t head_size(h2o_req_t *req)
{
    size_t n = sizeof("HTTP/1.1 999 \r\ndate: \r\nconnection: keep-alive\r\ncontent-length: \r\n"
                      "server: \r\n\r\n") +
               H2O_TIMESTR_RFC1123_LEN + 20 + strlen(req->res.reason) + req->conn->ctx->globalconf->server_name.len;
    for (size_t i = 0; i < req->res.headers.size; i++)
        n += req->res.headers.entries[i].name->len + req->res.headers.entries[i].value.len + 4;
    return n;
}

static char *write_head(conn_t *c, char *p, const char *connection, int framing)
{
    h2o_req_t *req = &c->req;
    h2o_timestamp_t ts;
    int status = req->res.status;
    h2o_get_timestamp(c->super.ctx, &req->pool, &ts);
    if (status < 100 || status > 999)
        status = 500;
    p = APPEND_LIT(p, "HTTP/1.1 ");
    *p++ = (char)('0' + status / 100);
    *p++ = (char)('0' + status / 10 % 10);
    *p++ = (char)('0' + status % 10);
    *p++ = ' ';
    p = append(p, req->res.reason, strlen(req->res.reason));
    p = APPEND_LIT(p, "\r\ndate: ");
    p = append(p, ts.str->rfc1123, H2O_TIMESTR_RFC1123_LEN);
    p = APPEND_LIT(p, "\r\n");
    if (connection != NULL) {
        p = APPEND_LIT(p, "connection: ");
        p = append(p, connection, strlen(connection));
        p = APPEND_LIT(p, "\r\n");
    }
    if (framing) { /* not for the upgrade head */
        /* no body on 1xx, 204, 304; an unknown length is chunked by libh2o's chunked filter
         * (registered on every path), or ends with the connection on HTTP/1.0 */
        if (status < 200 || status == 204 || status == 304)
            c->no_body_out = 1;
        if (req->res.content_length != SIZE_MAX && status >= 200 && status != 204) { /* a 304's: the representation's */
            p = APPEND_LIT(p, "content-length: ");
            p = append_u64(p, req->res.content_length);
            p = APPEND_LIT(p, "\r\n");
        }
    }
    h2o_iovec_t server = req->conn->ctx->globalconf->server_name;
    if (server.len != 0) {
        p = APPEND_LIT(p, "server: ");
        p = append(p, server.base, server.len);
        p = APPEND_LIT(p, "\r\n");
    }
    for (size_t i = 0; i < req->res.headers.size; i++) {
        const h2o_header_t *h = req->res.headers.entries + i;
        p = append(p, h->orig_name != NULL ? h->orig_name : h->name->base, h->name->len);
        *p++ = ':';
        *p++ = ' ';
        p = append(p, h->value.base, h->value.len);
        *p++ = '\r';
        *p++ = '\n';
    }
    *p++ = '\r';
    *p++ = '\n';
    return p;
}

static const char *connection_value(h2o_req_t *req)
{
    if (!req->http1_is_persistent)
        return "close";
    return req->version < 0x101 ? "keep-alive" : NULL;
}

static void do_send(h2o_ostream_t *self, h2o_req_t *req, h2o_iovec_t *bufs, size_t bufcnt, h2o_send_state_t state)
{
    conn_t *c = H2O_STRUCT_FROM_MEMBER(conn_t, ostr, self);
    int final = !h2o_send_state_is_in_progress(state);
    if (state == H2O_SEND_STATE_ERROR)
        req->http1_is_persistent = 0;
    if (req->bytes_counted_by_ostream == 0)
        for (size_t i = 0; i < bufcnt; i++)
            req->bytes_sent += bufs[i].len;

    char *head = NULL;
    size_t head_len = 0;
    if (!c->sent_head) {
        req->timestamps.response_start_at = *h2o_get_timestamp(c->super.ctx, NULL, NULL);
        /* HTTP/1.0 without a length: the end of the body is the end of the connection */
        if (req->res.content_length == SIZE_MAX && req->version < 0x101)
            req->http1_is_persistent = 0;
        size_t cap = head_size(req);
        head = h2o_mem_alloc_pool(&req->pool, cap);
        head_len = (size_t)(write_head(c, head, connection_value(req), 1) - head);
        c->sent_head = 1;
    }
    if (c->no_body_out)
        bufcnt = 0;

    size_t body = 0;
    for (size_t i = 0; i < bufcnt; i++)
        body += bufs[i].len;

    h2o_iovec_t one;
    h2o_iovec_t *vec = &one;
    size_t nvec = 0;
    if (head_len + body <= SMALL_WRITE) {
        /* one buffer: one write, one TLS record */
        char *p = h2o_mem_alloc_pool(&req->pool, head_len + body + 1);
        one.base = p;
        if (head_len != 0)
            p = append(p, head, head_len);
        for (size_t i = 0; i < bufcnt; i++)
            p = append(p, bufs[i].base, bufs[i].len);
        one.len = head_len + body;
        nvec = one.len != 0 ? 1 : 0;
    } else {
        vec = h2o_mem_alloc_pool(&req->pool, sizeof(*vec) * (bufcnt + 1));
        if (head_len != 0)
            vec[nvec++] = h2o_iovec_init(head, head_len);
        for (size_t i = 0; i < bufcnt; i++)
            vec[nvec++] = bufs[i];
    }
    set_timeout(c, &c->super.ctx->http2.idle_timeout); /* a client that stops reading is dropped */
    h2o_socket_write(c->sock, vec, nvec, final ? on_send_complete : on_send_next);
}

/* ---- upgrade ------------------------------------------------------------------------ */

static void on_upgrade_sent(h2o_socket_t *sock, const char *err)
{
    conn_t *c = sock->data;
    oe_http1_upgrade_cb cb = c->upgrade.cb;
    void *data = c->upgrade.data;
    set_timeout(c, NULL);
    if (err != NULL) {
        close_conn(c);
        cb(data, NULL);
        return;
    }
    h2o_socket_read_stop(sock);
    h2o_buffer_consume(&sock->input, c->req_len); /* what is left is the new protocol's */
    c->sock = NULL;
    sock->data = NULL;
    close_conn(c);
    cb(data, sock);
}

void oe_http1_upgrade(h2o_req_t *req, oe_http1_upgrade_cb cb, void *data)
{
    conn_t *c = H2O_STRUCT_FROM_MEMBER(conn_t, req, req);
    c->upgrade.cb = cb;
    c->upgrade.data = data;
    req->timestamps.response_start_at = *h2o_get_timestamp(c->super.ctx, NULL, NULL);
    char *head = h2o_mem_alloc_pool(&req->pool, head_size(req));
    h2o_iovec_t v = h2o_iovec_init(head, (size_t)(write_head(c, head, "upgrade", 0) - head));
    c->sent_head = 1;
    set_timeout(c, &c->super.ctx->http2.idle_timeout);
    h2o_socket_write(c->sock, &v, 1, on_upgrade_sent);
}

/* ---- accept --------------------------------------------------------------------------- */

static socklen_t get_sockname(h2o_conn_t *_c, struct sockaddr *sa)
{
    return h2o_socket_getsockname(((conn_t *)_c)->sock, sa);
}

static socklen_t get_peername(h2o_conn_t *_c, struct sockaddr *sa)
{
    return h2o_socket_getpeername(((conn_t *)_c)->sock, sa);
}

static h2o_socket_t *get_socket(h2o_conn_t *_c)
{
    return ((conn_t *)_c)->sock;
}

static const h2o_conn_callbacks_t callbacks = {
    .get_sockname = get_sockname,
    .get_peername = get_peername,
    .get_socket = get_socket,
};

int oe_http1_is_request(h2o_req_t *req)
{
    return req->conn->callbacks == &callbacks;
}

void oe_http1_accept(h2o_accept_ctx_t *ctx, h2o_socket_t *sock, struct timeval connected_at)
{
    conn_t *c = (void *)h2o_create_connection(sizeof(*c), ctx->ctx, ctx->hosts, connected_at, &callbacks);
    memset((char *)c + sizeof(c->super), 0, offsetof(conn_t, req) - sizeof(c->super));
    c->sock = sock;
    c->fresh = 1;
    __atomic_add_fetch(&fresh_total, 1, __ATOMIC_RELAXED);
    c->timeout.cb = on_timeout;
    sock->data = c;
    if (thread_conns.next == NULL)
        h2o_linklist_init_anchor(&thread_conns);
    h2o_linklist_insert(&thread_conns, &c->link);
    thread_count++;
    init_request(c, 0);
    set_timeout(c, &ctx->ctx->http1.req_timeout);
    h2o_socket_read_start(sock, on_read);
    if (sock->input->size != 0)
        handle_head(c);
}

void oe_http1_shutdown(h2o_context_t *ctx)
{
    (void)ctx;
    if (thread_conns.next == NULL)
        return;
    for (h2o_linklist_t *l = thread_conns.next, *next; l != &thread_conns; l = next) {
        next = l->next;
        conn_t *c = H2O_STRUCT_FROM_MEMBER(conn_t, link, l);
        if (c->fresh)
            continue; /* just accepted: its first request is answered (with "connection: close"), as a
                       * client may send it on a connection it has only just opened */
        if (c->state == ST_HEAD && c->sock->input->size == 0)
            close_conn(c); /* idle keep-alive */
        else if (!c->sent_head)
            c->req.http1_is_persistent = 0; /* its response says "connection: close" */
    }
}

uint64_t oe_http1_fresh(void)
{
    return __atomic_load_n(&fresh_total, __ATOMIC_RELAXED);
}

size_t oe_http1_count(void)
{
    return thread_count;
}
