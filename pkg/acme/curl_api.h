/*
 * curl_api — libcurl, loaded at run time only when ACME runs.
 *
 * libcurl and the libraries it pulls in (nghttp2, ssh2, rtmp, LDAP, Kerberos, GnuTLS, ...)
 * cost about 4 MiB of resident memory in every process that maps them. Only the ACME
 * client needs an HTTPS client, so ott-edge is not linked against libcurl: the first ACME
 * use dlopen()s libcurl.so.4, runs curl_global_init once and resolves the few functions
 * the ACME transport calls into a table (through util/dynlib). <curl/curl.h> is still used
 * for the types and constants (the libcurl4-*-dev headers at build time; the ABI is stable
 * across .so.4).
 *
 * Owns: the function table and libcurl's version checks and global initialisation (the
 * library is never unloaded: a libcurl transfer abandoned on a timeout can leave a detached
 * resolver thread running libcurl code). Must not touch: ACME semantics, sockets, logging.
 */
#ifndef OE_ACME_CURL_API_H
#define OE_ACME_CURL_API_H

#include <curl/curl.h>
#include <stddef.h>

typedef struct oe_curl_api {
    CURL *(*easy_init)(void);
    void (*easy_cleanup)(CURL *c);
    void (*easy_reset)(CURL *c);
    CURLcode (*easy_setopt)(CURL *c, CURLoption opt, ...);
    CURLcode (*easy_perform)(CURL *c);
    CURLcode (*easy_getinfo)(CURL *c, CURLINFO info, ...);
    const char *(*easy_strerror)(CURLcode rc);
    struct curl_slist *(*slist_append)(struct curl_slist *list, const char *s);
    void (*slist_free_all)(struct curl_slist *list);
    /* used once, when loading */
    CURLcode (*global_init)(long flags);
    curl_version_info_data *(*version_info)(CURLversion v);
} oe_curl_api_t;

/* Loads libcurl.so.4 and initialises it, once per process (thread-safe; later calls
 * return the same table, or the same error). Returns NULL with
 * "cannot load libcurl.so.4 (<why>): install libcurl4" (or another one-line reason) in
 * err when it cannot be loaded; never aborts. */
const oe_curl_api_t *oe_curl_api(char *err, size_t errlen);

#endif
