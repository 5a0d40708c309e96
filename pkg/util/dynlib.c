/* dynlib — optional shared libraries loaded on first use (see dynlib.h). */
#include "util/dynlib.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

/* POSIX: dlsym's data pointer converts to a function pointer of the same size (the tables
 * hold both kinds) */
_Static_assert(sizeof(void (*)(void)) == sizeof(void *), "function and data pointers differ in size");

/* Called with lib->lock held: one attempt, its outcome in state and error. */
static void load_locked(oe_dynlib_t *lib)
{
    void *h = dlopen(lib->soname, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        const char *why = dlerror();
        snprintf(lib->error, sizeof(lib->error), "cannot load %s (%s): install %s", lib->soname,
                 why != NULL ? why : "unknown error", lib->package);
        __atomic_store_n(&lib->state, -1, __ATOMIC_RELEASE);
        return;
    }
    for (size_t i = 0; i < lib->nsyms; i++) {
        void *sym = dlsym(h, lib->syms[i].name);
        if (sym == NULL) {
            snprintf(lib->error, sizeof(lib->error), "%s has no %s (an older version?): install a current %s",
                     lib->soname, lib->syms[i].name, lib->package);
            dlclose(h); /* none of its functions ran: unloading is safe */
            goto fail;
        }
        memcpy((char *)lib->table + lib->syms[i].offset, &sym, sizeof(sym));
    }
    if (lib->init != NULL && lib->init(lib->table, lib->error, sizeof(lib->error)) != 0)
        goto fail; /* it stays mapped: its code ran */
    __atomic_store_n(&lib->state, 1, __ATOMIC_RELEASE);
    return;
fail:
    memset(lib->table, 0, lib->table_size);
    __atomic_store_n(&lib->state, -1, __ATOMIC_RELEASE);
}

int oe_dynlib_load(oe_dynlib_t *lib, char *err, size_t errlen)
{
    if (__atomic_load_n(&lib->state, __ATOMIC_ACQUIRE) == 1)
        return 0; /* the usual case, without the lock */
    pthread_mutex_lock(&lib->lock);
    if (__atomic_load_n(&lib->state, __ATOMIC_RELAXED) == 0)
        load_locked(lib);
    int ok = __atomic_load_n(&lib->state, __ATOMIC_RELAXED) == 1;
    if (!ok && errlen > 0)
        snprintf(err, errlen, "%s", lib->error);
    pthread_mutex_unlock(&lib->lock);
    return ok ? 0 : -1;
}

int oe_dynlib_loaded(const oe_dynlib_t *lib)
{
    return __atomic_load_n(&lib->state, __ATOMIC_ACQUIRE) == 1;
}
