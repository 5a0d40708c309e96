/*
 * brotli — a brotli encoder behind libh2o's h2o_compress_context_t (see compress.h).
 *
 * libbrotlienc (with libbrotlicommon and the libm it pulls in, ~400 KiB resident) is not
 * linked: it is loaded (util/dynlib) at the first response about to be br-encoded, and the
 * encoder calls below go through a table. When it cannot be loaded, a warning is logged once
 * and br is no longer offered (gzip or identity instead): no request fails for it.
 */
#include "compress/compress.h"

#include <stdlib.h>
#include <string.h>

#include <brotli/encode.h>

#include "log/log.h"
#include "util/dynlib.h"

#define BROTLI_SYMS(X)                                                                                                 \
    X(BrotliEncoderCreateInstance)                                                                                     \
    X(BrotliEncoderSetParameter)                                                                                       \
    X(BrotliEncoderCompressStream)                                                                                     \
    X(BrotliEncoderHasMoreOutput)                                                                                      \
    X(BrotliEncoderIsFinished)                                                                                         \
    X(BrotliEncoderDestroyInstance)

OE_DYNLIB_DEFINE(brotli_api_t, brotli, lib, BROTLI_SYMS, "libbrotlienc.so.1", "libbrotli1");
static int missing; /* loading failed (warned once) */

/* the encoder's calls below, through the table */
#define BrotliEncoderCreateInstance  (brotli.BrotliEncoderCreateInstance)
#define BrotliEncoderSetParameter    (brotli.BrotliEncoderSetParameter)
#define BrotliEncoderCompressStream  (brotli.BrotliEncoderCompressStream)
#define BrotliEncoderHasMoreOutput   (brotli.BrotliEncoderHasMoreOutput)
#define BrotliEncoderIsFinished      (brotli.BrotliEncoderIsFinished)
#define BrotliEncoderDestroyInstance (brotli.BrotliEncoderDestroyInstance)

int oe_compress_brotli_load(void)
{
    char err[400];
    if (oe_dynlib_load(&lib, err, sizeof(err)) == 0)
        return 0;
    if (!__atomic_exchange_n(&missing, 1, __ATOMIC_RELAXED))
        oe_log(OE_LOG_WARN, "compress_brotli_unavailable", "error", err, "action",
               "br is not offered: responses are gzip-encoded (or sent as they are)", NULL);
    return -1;
}

int oe_compress_brotli_missing(void)
{
    return __atomic_load_n(&missing, __ATOMIC_RELAXED);
}

typedef struct {
    h2o_compress_context_t super;
    BrotliEncoderState *enc;
    h2o_iovec_t outvec; /* what the last transform call returned; valid until the next one */
    char *out;
    size_t out_cap; /* grows to fit one call's output */
} brotli_ctx_t;

static void dispose(void *p)
{
    brotli_ctx_t *self = p;
    if (self->enc != NULL)
        BrotliEncoderDestroyInstance(self->enc);
    free(self->out);
}

/* Runs one encoder operation over (in, len), appending to self->out at *used. */
static int run(brotli_ctx_t *self, BrotliEncoderOperation op, const uint8_t *in, size_t len, size_t *used)
{
    size_t avail_in = len;
    const uint8_t *next_in = in;
    for (;;) {
        if (self->out_cap - *used < 4096) {
            size_t cap = self->out_cap != 0 ? self->out_cap * 2 : 16384;
            char *p = realloc(self->out, cap);
            if (p == NULL)
                return -1;
            self->out = p;
            self->out_cap = cap;
        }
        size_t avail_out = self->out_cap - *used;
        uint8_t *next_out = (uint8_t *)self->out + *used;
        if (!BrotliEncoderCompressStream(self->enc, op, &avail_in, &next_in, &avail_out, &next_out, NULL))
            return -1;
        *used = (size_t)((char *)next_out - self->out);
        if (avail_in == 0 && !BrotliEncoderHasMoreOutput(self->enc) &&
            (op != BROTLI_OPERATION_FINISH || BrotliEncoderIsFinished(self->enc)))
            return 0;
    }
}

static void transform(h2o_compress_context_t *_self, h2o_iovec_t *inbufs, size_t inbufcnt, h2o_send_state_t state,
                      h2o_iovec_t **outbufs, size_t *outbufcnt)
{
    brotli_ctx_t *self = (void *)_self;
    size_t used = 0;
    int ok = self->enc != NULL;

    for (size_t i = 0; ok && i < inbufcnt; i++)
        ok = run(self, BROTLI_OPERATION_PROCESS, (const uint8_t *)inbufs[i].base, inbufs[i].len, &used) == 0;
    /* flush each chunk like libh2o's gzip does (Z_SYNC_FLUSH): streamed bodies are not held back */
    if (ok)
        ok = run(self, h2o_send_state_is_in_progress(state) ? BROTLI_OPERATION_FLUSH : BROTLI_OPERATION_FINISH, NULL, 0,
                 &used) == 0;
    if (!ok) /* out of memory or encoder error: the body ends here (truncated, seen as an error) */
        used = 0;
    self->outvec = h2o_iovec_init(self->out, used);
    *outbufs = &self->outvec;
    *outbufcnt = 1;
    if (!h2o_send_state_is_in_progress(state) && self->enc != NULL) {
        BrotliEncoderDestroyInstance(self->enc);
        self->enc = NULL;
    }
}

h2o_compress_context_t *oe_compress_brotli_open(h2o_mem_pool_t *pool, int quality, size_t size_hint)
{
    if (oe_compress_brotli_load() != 0)
        return NULL;
    brotli_ctx_t *self = h2o_mem_alloc_shared(pool, sizeof(*self), dispose);
    memset(self, 0, sizeof(*self));
    self->super.name = h2o_iovec_init(H2O_STRLIT("br"));
    self->super.transform = transform;
    self->enc = BrotliEncoderCreateInstance(NULL, NULL, NULL);
    if (self->enc == NULL)
        return NULL; /* out of memory: the caller falls back to gzip or identity */
    /* the window need not exceed the body: a smaller one saves memory per response */
    int lgwin = 20;
    if (size_hint != SIZE_MAX) {
        for (lgwin = 16; lgwin < 22 && ((size_t)1 << lgwin) < size_hint; lgwin++)
            ;
        BrotliEncoderSetParameter(self->enc, BROTLI_PARAM_SIZE_HINT,
                                  size_hint > UINT32_MAX ? UINT32_MAX : (uint32_t)size_hint);
    }
    BrotliEncoderSetParameter(self->enc, BROTLI_PARAM_QUALITY, (uint32_t)quality);
    BrotliEncoderSetParameter(self->enc, BROTLI_PARAM_LGWIN, (uint32_t)lgwin);
    BrotliEncoderSetParameter(self->enc, BROTLI_PARAM_MODE, BROTLI_MODE_TEXT);
    return &self->super;
}
