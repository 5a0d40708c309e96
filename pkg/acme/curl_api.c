/*
 * curl_api — dlopen()ed libcurl for the ACME client (see curl_api.h); the loading itself is
 * util/dynlib's, the version checks and curl_global_init are here.
 */
#include "acme/curl_api.h"

#include <stdio.h>

#include "util/dynlib.h"

#define LIBCURL_SONAME "libcurl.so.4"

static oe_curl_api_t api;

#define SYM(member, symbol) OE_DYNLIB_SYM(oe_curl_api_t, member, symbol)
static const oe_dynlib_sym_t syms[] = {
    SYM(easy_init, "curl_easy_init"),           SYM(easy_cleanup, "curl_easy_cleanup"),
    SYM(easy_reset, "curl_easy_reset"),         SYM(easy_setopt, "curl_easy_setopt"),
    SYM(easy_perform, "curl_easy_perform"),     SYM(easy_getinfo, "curl_easy_getinfo"),
    SYM(easy_strerror, "curl_easy_strerror"),   SYM(slist_append, "curl_slist_append"),
    SYM(slist_free_all, "curl_slist_free_all"), SYM(global_init, "curl_global_init"),
    SYM(version_info, "curl_version_info"),
};
#undef SYM

/* Runs once, after every symbol resolved: the version and TLS checks, then curl_global_init. */
static int init(void *table, char *err, size_t errlen)
{
    const oe_curl_api_t *a = table;
    const curl_version_info_data *v = a->version_info(CURLVERSION_NOW);
    if (v == NULL || v->version_num < 0x075500) { /* 7.85: CURLOPT_PROTOCOLS_STR */
        snprintf(err, errlen, "%s is version %s: install libcurl4 7.85 or later", LIBCURL_SONAME,
                 v && v->version ? v->version : "unknown");
        return -1;
    }
    if (!(v->features & CURL_VERSION_SSL)) {
        snprintf(err, errlen, "%s was built without TLS: install libcurl4", LIBCURL_SONAME);
        return -1;
    }
    CURLcode rc = a->global_init(CURL_GLOBAL_DEFAULT);
    if (rc != CURLE_OK) {
        snprintf(err, errlen, "curl_global_init failed (%s)", a->easy_strerror(rc));
        return -1;
    }
    return 0;
}

static oe_dynlib_t lib = OE_DYNLIB_INIT(LIBCURL_SONAME, "libcurl4", syms, &api, init);

const oe_curl_api_t *oe_curl_api(char *err, size_t errlen)
{
    return oe_dynlib_load(&lib, err, errlen) == 0 ? &api : NULL;
}
