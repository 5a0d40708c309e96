/* test_dynlib — pkg/util/dynlib: a library is mapped only when loaded, its symbols land in
 * the table (both forms: explicit offsets, and OE_DYNLIB_DEFINE's list), concurrent first
 * uses load it once, and each failure (no such library, a missing symbol, a failing init)
 * gives the user-actionable message, stays final and leaves the table empty. Real
 * libraries only (zlib, and libbrotlienc whose headers the build has anyway). */
#include <brotli/encode.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "util/dynlib.h"

/* whether a mapping of the process is the library soname (its file: soname or soname.x.y) */
static int mapped(const char *soname)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[1024];
    int found = 0;
    size_t n = strlen(soname);
    while (f && !found && fgets(line, sizeof(line), f)) {
        char *end = strchr(line, '\n');
        if (end)
            *end = '\0';
        char *slash = strrchr(line, '/');
        found = slash && strncmp(slash + 1, soname, n) == 0 && (slash[1 + n] == '\0' || slash[1 + n] == '.');
    }
    if (f)
        fclose(f);
    return found;
}

typedef struct {
    const char *(*version)(void);
    unsigned long (*crc)(unsigned long crc, const unsigned char *buf, unsigned len);
} z_api_t;

static void test_missing_library(void)
{
    static z_api_t t;
    static const oe_dynlib_sym_t syms[] = {OE_DYNLIB_SYM(z_api_t, version, "zlibVersion")};
    static oe_dynlib_t lib = OE_DYNLIB_INIT("libott-edge-no-such.so.7", "ott-edge-no-such7", syms, &t, NULL);
    char err[512] = "", again[512] = "";
    CHECK(oe_dynlib_load(&lib, err, sizeof(err)) == -1);
    CHECK(strncmp(err, "cannot load libott-edge-no-such.so.7 (", 38) == 0, "%s", err);
    CHECK(strstr(err, "No such file") != NULL, "dlerror's reason: %s", err);
    size_t n = strlen(err), tail = strlen("): install ott-edge-no-such7");
    CHECK(n > tail && strcmp(err + n - tail, "): install ott-edge-no-such7") == 0, "%s", err);
    /* final: the same answer without trying again */
    CHECK(oe_dynlib_load(&lib, again, sizeof(again)) == -1 && strcmp(err, again) == 0, "%s", again);
    CHECK(!oe_dynlib_loaded(&lib) && t.version == NULL);
    CHECK(oe_dynlib_load(&lib, NULL, 0) == -1, "no room for a message is fine");
}

/* the list form (OE_DYNLIB_DEFINE), with a symbol libz lacks: declared here for its type */
const char *zlibVersion(void);
unsigned long crc32(unsigned long crc, const unsigned char *buf, unsigned len);
void oe_no_such_symbol(void);
#define PARTLY_SYMS(X) X(crc32) X(oe_no_such_symbol)
OE_DYNLIB_DEFINE(partly_api_t, partly, partly_lib, PARTLY_SYMS, "libz.so.1", "zlib1g");

static void test_missing_symbol(void)
{
    char err[512] = "";
    CHECK(oe_dynlib_load(&partly_lib, err, sizeof(err)) == -1);
    CHECK(strcmp(err, "libz.so.1 has no oe_no_such_symbol (an older version?): install a current zlib1g") == 0, "%s",
          err);
    CHECK(partly.crc32 == NULL && partly.oe_no_such_symbol == NULL, "the slots written before the failure are cleared");
}

static int init_calls, init_fail;
static int z_init(void *table, char *err, size_t errlen)
{
    const z_api_t *t = table;
    __atomic_fetch_add(&init_calls, 1, __ATOMIC_RELAXED);
    if (init_fail) {
        snprintf(err, errlen, "libz.so.1 is version %s: install zlib1g 9.9 or later", t->version());
        return -1;
    }
    return 0;
}

static void test_init_fails(void)
{
    static z_api_t t;
    static const oe_dynlib_sym_t syms[] = {OE_DYNLIB_SYM(z_api_t, version, "zlibVersion")};
    static oe_dynlib_t lib = OE_DYNLIB_INIT("libz.so.1", "zlib1g", syms, &t, z_init);
    char err[512] = "";
    init_calls = 0;
    init_fail = 1;
    CHECK(oe_dynlib_load(&lib, err, sizeof(err)) == -1 && oe_dynlib_load(&lib, err, sizeof(err)) == -1);
    CHECK(strncmp(err, "libz.so.1 is version 1.", 23) == 0 && strstr(err, "install zlib1g 9.9") != NULL, "%s", err);
    CHECK(init_calls == 1, "init ran %d times", init_calls);
    CHECK(t.version == NULL && !oe_dynlib_loaded(&lib));
}

/* ---- concurrent first use: one load, one init, everyone sees the table -------------- */

static z_api_t zt;
static const oe_dynlib_sym_t zsyms[] = {
    OE_DYNLIB_SYM(z_api_t, version, "zlibVersion"),
    OE_DYNLIB_SYM(z_api_t, crc, "crc32"),
};
static oe_dynlib_t zlib = OE_DYNLIB_INIT("libz.so.1", "zlib1g", zsyms, &zt, z_init);
static pthread_barrier_t start;

static void *racer(void *arg)
{
    unsigned long *crc = arg;
    char err[256];
    pthread_barrier_wait(&start);
    if (oe_dynlib_load(&zlib, err, sizeof(err)) == 0)
        *crc = zt.crc(0, (const unsigned char *)"ott-edge", 8);
    return NULL;
}

static void test_concurrent(void)
{
    enum { N = 8 };
    pthread_t th[N];
    unsigned long crc[N] = {0};
    init_calls = 0;
    init_fail = 0;
    pthread_barrier_init(&start, NULL, N);
    for (int i = 0; i < N; i++)
        pthread_create(&th[i], NULL, racer, &crc[i]);
    for (int i = 0; i < N; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&start);
    CHECK(init_calls == 1, "init ran %d times", init_calls);
    CHECK(oe_dynlib_loaded(&zlib));
    for (int i = 0; i < N; i++) /* CRC-32 of "ott-edge", as zlib's crc32() computes it */
        CHECK(crc[i] == 0x896e315eul, "thread %d: crc %#lx", i, crc[i]);
}

/* ---- nothing is mapped before the first load -------------------------------------- */

#define BROTLI_SYMS(X) X(BrotliEncoderCreateInstance) X(BrotliEncoderCompressStream) X(BrotliEncoderDestroyInstance)
OE_DYNLIB_DEFINE(brotli_api_t, brotli, brotli_lib, BROTLI_SYMS, "libbrotlienc.so.1", "libbrotli1");

static void test_mapped_on_load(void)
{
    char err[512] = "";
    CHECK(!mapped("libbrotlienc.so.1"), "libbrotlienc is mapped before any load (linked again?)");
    CHECK(!oe_dynlib_loaded(&brotli_lib) && brotli.BrotliEncoderCreateInstance == NULL);
    CHECK(oe_dynlib_load(&brotli_lib, err, sizeof(err)) == 0, "%s", err);
    CHECK(mapped("libbrotlienc.so.1") && oe_dynlib_loaded(&brotli_lib));
    /* every slot holds its own function: a real encoder round (member i = symbol i) */
    BrotliEncoderState *enc = brotli.BrotliEncoderCreateInstance(NULL, NULL, NULL);
    uint8_t out[64], *next_out = out;
    const uint8_t *next_in = (const uint8_t *)"ott-edge";
    size_t avail_in = 8, avail_out = sizeof(out);
    CHECK(enc != NULL && brotli.BrotliEncoderCompressStream(enc, BROTLI_OPERATION_FINISH, &avail_in, &next_in,
                                                            &avail_out, &next_out, NULL) == BROTLI_TRUE);
    CHECK(avail_in == 0 && next_out > out, "%zu bytes in, %zu out", 8 - avail_in, (size_t)(next_out - out));
    brotli.BrotliEncoderDestroyInstance(enc);
}

int main(void)
{
    test_mapped_on_load();
    test_missing_library();
    test_missing_symbol();
    test_init_fails();
    test_concurrent();
    return CHECK_DONE();
}
