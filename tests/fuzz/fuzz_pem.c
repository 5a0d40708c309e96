/*
 * fuzz_pem — the PEM inputs the ACME and TLS modules take from disk or from the CA:
 * oe_tls_pem_info, oe_tls_pem_pair_matches, oe_acme_key_from_pem, oe_acme_ari_cert_id,
 * oe_acme_chain_top_issuer, and base64url decoding. The input is "chain\0key" (the
 * key part optional); the seed corpus holds real certificates and keys.
 */
#include <openssl/err.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "acme/jws.h"
#include "fuzz_common.h"
#include "tls/tls.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 64 * 1024)
        return 0;
    fuzz_reader_t r = {data, size};
    size_t clen, klen;
    char *chain = fuzz_next_str(&r, '\0', &clen);
    char *key = fuzz_next_str(&r, '\0', &klen);

    oe_tls_info_t info;
    char err[256];
    memset(&info, 0, sizeof(info));
    (void)oe_tls_pem_info(chain, clen, &info, err, sizeof(err));
    (void)oe_tls_pem_pair_matches(chain, clen, key, klen);
    if (klen == 0) /* a lone key in the first part */
        (void)oe_tls_pem_pair_matches(chain, clen, chain, clen);

    EVP_PKEY *k = oe_acme_key_from_pem(klen ? key : chain, klen ? klen : clen);
    EVP_PKEY_free(k);

    char id[512];
    (void)oe_acme_ari_cert_id(chain, clen, id, sizeof(id));
    (void)oe_acme_ari_cert_id(chain, clen, id, 8); /* too small a buffer must fail cleanly */
    char issuer[256];
    (void)oe_acme_chain_top_issuer(chain, clen, issuer, sizeof(issuer));
    (void)oe_acme_chain_top_issuer(chain, clen, issuer, 4);

    unsigned char *dec = NULL;
    size_t declen = 0;
    if (oe_acme_b64url_decode(chain, &dec, &declen) == 0) {
        char *enc = oe_acme_b64url(dec, declen);
        free(enc);
        free(dec);
    }
    ERR_clear_error();
    free(chain);
    free(key);
    return 0;
}
