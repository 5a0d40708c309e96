/*
 * dynlib — shared libraries that only an optional feature needs, loaded when that feature
 * is configured or first used instead of linked.
 *
 * Every library in the binary's NEEDED list costs resident pages in every process, whether
 * its feature runs or not: relocations, IFUNC resolvers and the kernel's fault-around of its
 * text (libcurl with its dependencies ~4 MiB; libldns, libcrypt, libhiredis and libbrotlienc
 * with libm ~0.7 MiB). A module describes such a library with an oe_dynlib_t (its soname,
 * the Debian package to install, the symbols and the table they go into) and calls
 * oe_dynlib_load() before the first call through the table. The headers (types, constants)
 * still come from the -dev package at build time; only the link changes.
 *
 * Owns: the dlopen() of each described library (once per process; thread-safe: the first
 * caller loads, concurrent callers wait and share its result, success or failure), writing
 * the symbols' addresses into the module's table, and a message a user can act on when
 * either fails ("cannot load libldns.so.3 (...): install libldns3"). A library that loaded
 * is never dlclose()d: its table stays valid for the life of the process.
 * Must not touch: logging, configuration, what the library is used for.
 */
#ifndef OE_UTIL_DYNLIB_H
#define OE_UTIL_DYNLIB_H

#include <pthread.h>
#include <stddef.h>

/* One symbol: its name in the library and where its address goes in the table. */
typedef struct oe_dynlib_sym {
    const char *name;
    size_t offset; /* offsetof(table type, member); the member is a function or data pointer */
} oe_dynlib_sym_t;

#define OE_DYNLIB_SYM(type, member, symbol)                                                                            \
    {                                                                                                                  \
        (symbol), offsetof(type, member)                                                                               \
    }

typedef struct oe_dynlib {
    const char *soname;  /* as dlopen() is given it: "libldns.so.3" */
    const char *package; /* what provides it, for the message: "libldns3" */
    const oe_dynlib_sym_t *syms;
    size_t nsyms;
    void *table;       /* the module's struct of pointers; filled before oe_dynlib_load() succeeds */
    size_t table_size; /* zeroed again when loading fails */
    /* Optional, run once after every symbol resolved (version checks, global initialisation):
     * 0, or -1 with a message in err (the library then stays mapped: its code has run). */
    int (*init)(void *table, char *err, size_t errlen);
    /* the loader's own state (zero-initialised by OE_DYNLIB_INIT) */
    pthread_mutex_t lock;
    int state; /* 0 not tried, 1 loaded, -1 failed (final) */
    char error[384];
} oe_dynlib_t;

/* A static initialiser: static oe_dynlib_t lib = OE_DYNLIB_INIT("libx.so.1", "libx1", syms, &table, NULL);
 * syms must be an array (its length is taken here). */
#define OE_DYNLIB_INIT(soname, package, syms, table, init)                                                             \
    {                                                                                                                  \
        (soname), (package), (syms), sizeof(syms) / sizeof((syms)[0]), (table), sizeof(*(table)), (init),              \
            PTHREAD_MUTEX_INITIALIZER, 0, ""                                                                           \
    }

/*
 * The usual case, a table whose members are named after the symbols they hold, from one
 * list macro LIST(X) that calls X(name) for each symbol:
 *
 *   #define ZLIB_SYMS(X) X(zlibVersion) X(crc32)
 *   OE_DYNLIB_DEFINE(zlib_api_t, zlib, zlib_lib, ZLIB_SYMS, "libz.so.1", "zlib1g");
 *   #define crc32 (zlib.crc32)          calls then go through the table, once loaded
 *
 * defines the type zlib_api_t (a member `__typeof__(crc32) *crc32` per symbol), the static
 * table zlib and the static loader zlib_lib. Split, for a table that several files share:
 * OE_DYNLIB_TABLE(type, LIST) in a header, then OE_DYNLIB_LOADER(lib, table, LIST, soname,
 * package) in the one file that defines the table. Either must come before any macro that
 * routes calls through the table (it needs the plain names). The members are all pointers,
 * so member i sits at i pointers (checked at compile time); a symbol can be in one list per
 * file (each gets an enum constant oe_dynlib_index_<name>).
 */
#define OE_DYNLIB_TABLE(type, LIST)                                                                                    \
    typedef struct {                                                                                                   \
        LIST(OE_DYNLIB_MEMBER_)                                                                                        \
    } type
#define OE_DYNLIB_LOADER(lib, table, LIST, soname, package)                                                            \
    enum { LIST(OE_DYNLIB_INDEX_) lib##_count_ };                                                                      \
    _Static_assert(sizeof(table) == lib##_count_ * sizeof(void *), "a member of " #table " is not one pointer");       \
    static const oe_dynlib_sym_t lib##_syms_[] = {LIST(OE_DYNLIB_ENTRY_)};                                             \
    static oe_dynlib_t lib = OE_DYNLIB_INIT(soname, package, lib##_syms_, &(table), NULL)
#define OE_DYNLIB_DEFINE(type, table, lib, LIST, soname, package)                                                      \
    OE_DYNLIB_TABLE(type, LIST);                                                                                       \
    static type table;                                                                                                 \
    OE_DYNLIB_LOADER(lib, table, LIST, soname, package)
/* (their parts) */
#define OE_DYNLIB_MEMBER_(name) __typeof__(name) *(name);
#define OE_DYNLIB_INDEX_(name)  oe_dynlib_index_##name,
#define OE_DYNLIB_ENTRY_(name)  {#name, oe_dynlib_index_##name * sizeof(void *)},

/*
 * Loads lib (the first call; later calls return at once with the same outcome: a failure is
 * not retried). Returns 0 when every symbol is in lib->table, or -1 with a one-line message
 * in err: "cannot load <soname> (<dlerror>): install <package>", "<soname> has no <symbol>
 * (an older version?): install a current <package>", or the init callback's. Never aborts.
 */
int oe_dynlib_load(oe_dynlib_t *lib, char *err, size_t errlen);

/* Whether lib is loaded now (never loads it). */
int oe_dynlib_loaded(const oe_dynlib_t *lib);

#endif
