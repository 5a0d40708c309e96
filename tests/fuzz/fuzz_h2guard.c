/*
 * fuzz_h2guard — the HTTP/2 flood guard on hostile decrypted bytes: the input is cut into
 * reads (first byte: how many), each scanned as libh2o would leave it, with the clock
 * advancing by a few seconds between reads. Must never crash or read out of bounds, and
 * its counters must never exceed what the bytes can hold.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/h2guard.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    oe_h2guard_t g = {0};
    size_t reads = (size_t)(data[0] % 8) + 1, off = 1;
    uint64_t now = 1000;
    for (size_t r = 0; r < reads && off <= size; r++) {
        size_t len = (size - off) / (reads - r);
        uint8_t *copy = malloc(len ? len : 1); /* exact-size copy: ASan sees any overread */
        if (copy == NULL)
            return 0;
        memcpy(copy, data + off, len);
        (void)oe_h2guard_scan(&g, copy, len, now);
        free(copy);
        if (g.headers > len + 1 && g.headers > size)
            __builtin_trap();
        off += len;
        now += (uint64_t)(data[0] >> 3) * 1000;
    }
    return 0;
}
