/*
 * curl_api — dlopen()ed libcurl for the ACME client (see curl_api.h).
 */
#include "acme/curl_api.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define LIBCURL_SONAME "libcurl.so.4"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int tried;
static oe_curl_api_t api;
static const oe_curl_api_t *loaded;
static char load_error[512];

/* Resolves name into *slot; returns 0, or -1 with load_error set. */
static int resolve(void *h, const char *name, void *slot, size_t size)
{
    void *sym = dlsym(h, name);
    if (sym == NULL) {
        snprintf(load_error, sizeof(load_error), "%s has no %s (too old?): install libcurl4 7.85 or later",
                 LIBCURL_SONAME, name);
        return -1;
    }
    /* POSIX: a data pointer from dlsym converts to a function pointer of the same size */
    memcpy(slot, &sym, size);
    return 0;
}

static void load_locked(void)
{
    void *h = dlopen(LIBCURL_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        const char *why = dlerror();
        snprintf(load_error, sizeof(load_error), "cannot load %s (%s): install libcurl4", LIBCURL_SONAME,
                 why ? why : "unknown error");
        return;
    }
    CURLcode (*global_init)(long) = NULL;
    curl_version_info_data *(*version_info)(CURLversion) = NULL;
#define R(field, name)                                                                                                 \
    if (resolve(h, name, &api.field, sizeof(api.field)) != 0)                                                          \
        goto fail;
    R(easy_init, "curl_easy_init")
    R(easy_cleanup, "curl_easy_cleanup")
    R(easy_reset, "curl_easy_reset")
    R(easy_setopt, "curl_easy_setopt")
    R(easy_perform, "curl_easy_perform")
    R(easy_getinfo, "curl_easy_getinfo")
    R(easy_strerror, "curl_easy_strerror")
    R(slist_append, "curl_slist_append")
    R(slist_free_all, "curl_slist_free_all")
#undef R
    if (resolve(h, "curl_global_init", &global_init, sizeof(global_init)) != 0 ||
        resolve(h, "curl_version_info", &version_info, sizeof(version_info)) != 0)
        goto fail;
    const curl_version_info_data *v = version_info(CURLVERSION_NOW);
    if (v == NULL || v->version_num < 0x075500) { /* 7.85: CURLOPT_PROTOCOLS_STR */
        snprintf(load_error, sizeof(load_error), "%s is version %s: install libcurl4 7.85 or later", LIBCURL_SONAME,
                 v && v->version ? v->version : "unknown");
        goto fail;
    }
    if (!(v->features & CURL_VERSION_SSL)) {
        snprintf(load_error, sizeof(load_error), "%s was built without TLS: install libcurl4", LIBCURL_SONAME);
        goto fail;
    }
    CURLcode rc = global_init(CURL_GLOBAL_DEFAULT);
    if (rc != CURLE_OK) { /* it may have initialised some of itself: keep it mapped */
        snprintf(load_error, sizeof(load_error), "curl_global_init failed (%s)", api.easy_strerror(rc));
        memset(&api, 0, sizeof(api));
        return;
    }
    loaded = &api;
    return;
fail:
    memset(&api, 0, sizeof(api));
    dlclose(h); /* nothing but curl_version_info ran: safe to unload */
}

const oe_curl_api_t *oe_curl_api(char *err, size_t errlen)
{
    pthread_mutex_lock(&lock);
    if (!tried) {
        tried = 1;
        load_locked();
    }
    const oe_curl_api_t *a = loaded;
    if (a == NULL)
        snprintf(err, errlen, "%s", load_error);
    pthread_mutex_unlock(&lock);
    return a;
}
