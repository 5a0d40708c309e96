/* compress — see compress.h. */
#include "compress/compress.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "metrics/metrics.h"

typedef struct {
    h2o_filter_t super;
    oe_compress_settings_t s;
} filter_t;

typedef struct {
    h2o_ostream_t super;
    h2o_compress_context_t *compressor;
} encoder_t;

static oe_compress_settings_t active; /* what oe_compress_choose() negotiates with */
static int registered;

static uint64_t stat_encoded[OE_ENC_COUNT];

/* ---- settings ---------------------------------------------------------------------- */

void oe_compress_settings_from_config(const oe_config_t *cfg, oe_compress_settings_t *out)
{
    *out = (oe_compress_settings_t){
        .enabled = cfg->compress.enabled,
        .types = (const char *const *)cfg->compress.types.items,
        .types_count = cfg->compress.types.count,
        .min_size = cfg->compress.min_size,
        .level = cfg->compress.level,
        .offered = OE_ENC_MASK(OE_ENC_GZIP) | OE_ENC_MASK(OE_ENC_BR),
    };
}

const char *oe_compress_name(int enc)
{
    switch (enc) {
    case OE_ENC_GZIP:
        return "gzip";
    case OE_ENC_BR:
        return "br";
    default:
        return "identity";
    }
}

/* ---- negotiation ------------------------------------------------------------------- */

/* Parses a qvalue ("1", "0.5", "0.125"); returns 0..1000, or 1000 when malformed. */
static int parse_q(const char *s, size_t len)
{
    if (len == 0 || (s[0] != '0' && s[0] != '1'))
        return 1000;
    int q = (s[0] - '0') * 1000, scale = 100;
    if (len > 1 && s[1] == '.')
        for (size_t i = 2; i < len && i < 5 && s[i] >= '0' && s[i] <= '9'; i++, scale /= 10)
            q += (s[i] - '0') * scale;
    return q > 1000 ? 1000 : q;
}

static int trim(const char **s, size_t *len)
{
    while (*len > 0 && (**s == ' ' || **s == '\t'))
        (*s)++, (*len)--;
    while (*len > 0 && ((*s)[*len - 1] == ' ' || (*s)[*len - 1] == '\t'))
        (*len)--;
    return *len != 0;
}

int oe_compress_negotiate(const char *ae, size_t len, unsigned offered)
{
    int q[OE_ENC_COUNT] = {-1, -1, -1}, star = -1;
    const char *end = ae + len;

    for (const char *p = ae; p < end;) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *elem_end = comma != NULL ? comma : end;
        const char *semi = memchr(p, ';', (size_t)(elem_end - p));
        const char *name = p;
        size_t nlen = (size_t)((semi != NULL ? semi : elem_end) - p);
        int qv = 1000;
        for (const char *par = semi; par != NULL && par < elem_end;) { /* parameters: only q counts */
            const char *next = memchr(par + 1, ';', (size_t)(elem_end - par - 1));
            const char *a = par + 1;
            size_t alen = (size_t)((next != NULL ? next : elem_end) - a);
            if (trim(&a, &alen) && alen >= 2 && (a[0] == 'q' || a[0] == 'Q')) {
                const char *v = a + 1;
                size_t vlen = alen - 1;
                trim(&v, &vlen);
                if (vlen > 0 && v[0] == '=') {
                    v++, vlen--;
                    trim(&v, &vlen);
                    qv = parse_q(v, vlen);
                }
            }
            par = next;
        }
        if (trim(&name, &nlen)) {
            if (nlen == 1 && name[0] == '*')
                star = qv;
            else if ((nlen == 4 && strncasecmp(name, "gzip", 4) == 0) ||
                     (nlen == 6 && strncasecmp(name, "x-gzip", 6) == 0))
                q[OE_ENC_GZIP] = qv > q[OE_ENC_GZIP] ? qv : q[OE_ENC_GZIP];
            else if (nlen == 2 && strncasecmp(name, "br", 2) == 0)
                q[OE_ENC_BR] = qv;
        }
        p = elem_end + 1;
    }

    int best = OE_ENC_IDENTITY, best_q = 0;
    for (int e = OE_ENC_GZIP; e < OE_ENC_COUNT; e++) {
        if (!(offered & OE_ENC_MASK(e)))
            continue;
        int qe = q[e] >= 0 ? q[e] : star >= 0 ? star : 0;
        if (qe > 0 && qe >= best_q) { /* ">=": a tie goes to the later (denser) coding */
            best = e;
            best_q = qe;
        }
    }
    return best;
}

int oe_compress_type_matches(const char *const *types, size_t count, const char *ct, size_t len)
{
    const char *semi = memchr(ct, ';', len);
    if (semi != NULL)
        len = (size_t)(semi - ct);
    if (!trim(&ct, &len))
        return 0;
    const char *slash = memchr(ct, '/', len);
    if (slash == NULL)
        return 0;
    for (size_t i = 0; i < count; i++) {
        const char *t = types[i];
        size_t tl = strlen(t);
        if (t[0] == '+') { /* structured syntax suffix: "+json" matches application/ld+json */
            if (len > tl && strncasecmp(ct + len - tl, t, tl) == 0)
                return 1;
        } else if (tl >= 2 && t[tl - 2] == '/' && t[tl - 1] == '*') { /* "text/" + star: any subtype */
            if ((size_t)(slash - ct) == tl - 2 && strncasecmp(ct, t, tl - 2) == 0)
                return 1;
        } else if (tl == len && strncasecmp(ct, t, len) == 0) {
            return 1;
        }
    }
    return 0;
}

/* The coding for req among s->offered. load: a response is about to be encoded, so brotli
 * is loaded if it is chosen; once it could not be loaded, br is not offered any more. */
static int request_coding(const oe_compress_settings_t *s, h2o_req_t *req, int load)
{
    ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_ACCEPT_ENCODING, -1);
    if (i == -1)
        return OE_ENC_IDENTITY;
    /* several Accept-Encoding lines: the first decides (browsers send one) */
    const h2o_iovec_t *ae = &req->headers.entries[i].value;
    unsigned offered = s->offered;
    if ((offered & OE_ENC_MASK(OE_ENC_BR)) && oe_compress_brotli_missing())
        offered &= ~OE_ENC_MASK(OE_ENC_BR);
    int enc = oe_compress_negotiate(ae->base, ae->len, offered);
    if (enc == OE_ENC_BR && load && oe_compress_brotli_load() != 0) /* the next best instead */
        enc = oe_compress_negotiate(ae->base, ae->len, offered & ~OE_ENC_MASK(OE_ENC_BR));
    return enc;
}

int oe_compress_choose(h2o_req_t *req)
{
    if (!registered || !active.enabled)
        return OE_ENC_IDENTITY;
    return request_coding(&active, req, 0);
}

/* ---- the filter -------------------------------------------------------------------- */

static void do_send(h2o_ostream_t *_self, h2o_req_t *req, h2o_iovec_t *inbufs, size_t inbufcnt, h2o_send_state_t state)
{
    encoder_t *self = (void *)_self;
    h2o_iovec_t *outbufs;
    size_t outbufcnt;
    self->compressor->transform(self->compressor, inbufs, inbufcnt, state, &outbufs, &outbufcnt);
    h2o_ostream_send_next(&self->super, req, outbufs, outbufcnt, state);
}

static int has_token(const h2o_headers_t *headers, const h2o_token_t *token, const char *value, size_t len)
{
    for (ssize_t i = -1; (i = h2o_find_header(headers, token, i)) != -1;)
        if (h2o_contains_token(headers->entries[i].value.base, headers->entries[i].value.len, value, len, ','))
            return 1;
    return 0;
}

/* A strong validator names exact bytes; the encoded variant gets the weak form, which
 * If-None-Match still matches (weak comparison) and the upstream accepts back. */
static void weaken_etag(h2o_req_t *req)
{
    ssize_t i = h2o_find_header(&req->res.headers, H2O_TOKEN_ETAG, -1);
    if (i == -1)
        return;
    h2o_iovec_t *v = &req->res.headers.entries[i].value;
    if (v->len >= 2 && v->base[0] == 'W' && v->base[1] == '/')
        return;
    *v = h2o_concat(&req->pool, h2o_iovec_init(H2O_STRLIT("W/")), *v);
}

static void on_setup_ostream(h2o_filter_t *_self, h2o_req_t *req, h2o_ostream_t **slot)
{
    filter_t *self = (void *)_self;
    const oe_compress_settings_t *s = &self->s;
    ssize_t i;

    if (req->res.status != 200 || req->version < 0x101 || req->compress_hint == H2O_COMPRESS_HINT_DISABLE)
        goto Next;
    if (h2o_find_header(&req->res.headers, H2O_TOKEN_CONTENT_ENCODING, -1) != -1 ||
        h2o_find_header(&req->res.headers, H2O_TOKEN_CONTENT_RANGE, -1) != -1 ||
        has_token(&req->res.headers, H2O_TOKEN_CACHE_CONTROL, H2O_STRLIT("no-transform")))
        goto Next; /* encoded by the upstream (passed as is), a part, or marked hands-off */
    if ((i = h2o_find_header(&req->res.headers, H2O_TOKEN_CONTENT_TYPE, -1)) == -1 ||
        !oe_compress_type_matches(s->types, s->types_count, req->res.headers.entries[i].value.base,
                                  req->res.headers.entries[i].value.len))
        goto Next;
    if (req->res.content_length != SIZE_MAX && req->res.content_length < s->min_size)
        goto Next; /* same answer for every Accept-Encoding: no Vary needed */

    /* from here the representation depends on Accept-Encoding */
    h2o_set_header_token(&req->pool, &req->res.headers, H2O_TOKEN_VARY, H2O_STRLIT("accept-encoding"));
    if (h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD")))
        goto Next;
    int enc = request_coding(s, req, 1);
    h2o_compress_context_t *c = NULL;
    if (enc == OE_ENC_BR)
        c = oe_compress_brotli_open(&req->pool, s->level, req->res.content_length);
    if (c == NULL && (enc == OE_ENC_GZIP || (enc == OE_ENC_BR && (s->offered & OE_ENC_MASK(OE_ENC_GZIP))))) {
        c = h2o_compress_gzip_open(&req->pool, s->level);
        enc = OE_ENC_GZIP;
    }
    if (c == NULL)
        goto Next;
    __atomic_fetch_add(&stat_encoded[enc], 1, __ATOMIC_RELAXED);

    req->res.content_length = SIZE_MAX;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_ENCODING, NULL, c->name.base, c->name.len);
    weaken_etag(req);
    if ((i = h2o_find_header(&req->res.headers, H2O_TOKEN_ACCEPT_RANGES, -1)) != -1)
        h2o_delete_header(&req->res.headers, i); /* ranges of the encoded stream are not offered */

    encoder_t *e = (void *)h2o_add_ostream(req, sizeof(*e), slot);
    e->super.do_send = do_send;
    e->compressor = c;
    slot = &e->super.next;
Next:
    h2o_setup_next_ostream(req, slot);
}

/* ---- metrics and registration ------------------------------------------------------ */

static void render_metrics(void *data, oe_metrics_out_t *o)
{
    (void)data;
    if (oe_metrics_family(o, "ott_edge_compressed_responses_total", OE_METRICS_COUNTER,
                          "Responses compressed by ott-edge, by coding.") != 0)
        return;
    oe_metrics_sample(o, (double)__atomic_load_n(&stat_encoded[OE_ENC_GZIP], __ATOMIC_RELAXED), "encoding", "gzip",
                      NULL);
    oe_metrics_sample(o, (double)__atomic_load_n(&stat_encoded[OE_ENC_BR], __ATOMIC_RELAXED), "encoding", "br", NULL);
}

void oe_compress_register(h2o_pathconf_t *pc, const oe_config_t *cfg)
{
    oe_compress_settings_from_config(cfg, &active);
    if (!active.enabled)
        return;
    filter_t *f = (void *)h2o_create_filter(pc, sizeof(*f));
    f->super.on_setup_ostream = on_setup_ostream;
    f->s = active;
    if (!registered)
        oe_metrics_add_section(render_metrics, NULL);
    registered = 1;
}
