/*
 * config/internal.h — shared between the files of the config module only (keys.c,
 * config.c, yaml.c, print.c); nothing outside pkg/config/ includes it.
 * Owns: the key table's types and the helpers that set a value from text.
 */
#ifndef OE_CONFIG_INTERNAL_H
#define OE_CONFIG_INTERNAL_H

#include "config/config.h"

#include <stdio.h>

#define MAX_FILE_SIZE  (1024 * 1024) /* for the YAML file and for *_FILE values */
#define MAX_DEPTH      8             /* the schema needs 3 levels of maps */
#define MAX_LIST_ITEMS 1024
#define MAX_PATH_LEN   128
#define ENV_PREFIX     "OTT_EDGE_"

#define SEC       1000ull
#define HOUR      (3600 * SEC)
#define DAY       (24 * HOUR)
#define TIMER_MAX (24 * DAY) /* libh2o's timers overflow beyond int32 milliseconds */

enum type { T_STR, T_BOOL, T_INT, T_DURATION, T_SIZE, T_LIST, T_CIDRS, T_ENUM };

enum {
    F_SECRET = 1,   /* redacted when printed */
    F_OPTIONAL = 2, /* a string whose "" means not set (NULL) */
    F_CPUS = 4,     /* default: number of online CPUs */
    F_ADDRESS = 8,  /* a listener address (only changes the documented type) */
};

struct enumval {
    const char *name;
    int value;
};

typedef struct keydef keydef;

/* Validates (and may normalise) a value once stored. On failure fills msg and, for lists,
 * sets *bad to the index of the offending item. */
typedef int (*check_fn)(oe_config_t *cfg, const keydef *k, char *msg, size_t len, size_t *bad);

struct keydef {
    const char *path;
    enum type type;
    size_t off;      /* of the field in oe_config_t */
    size_t off2;     /* T_CIDRS: of the count */
    const char *def; /* default in the key's own syntax; NULL: not set */
    unsigned flags;
    const struct enumval *enums; /* T_ENUM: names, the first per value is the printed one */
    uint64_t min, max;           /* T_INT, T_DURATION, T_SIZE; max 0 means no limit */
    check_fn check;
    const char *doc; /* one line of Markdown for the reference table */
};

#define OE_CONFIG_NKEYS 84
extern const keydef oe_config_keys[OE_CONFIG_NKEYS];

/* One entry of a `paths` list as read from the file (sites.c resolves it for each site). */
typedef struct path_src {
    char *prefix;
    size_t prefix_line, at;       /* line of `prefix`; of the entry's mapping */
    oe_config_t *over;            /* the access keys the entry sets, parsed by the top-level keys' rules */
    size_t line[OE_CONFIG_NKEYS]; /* YAML line that set the key in this entry; 0: inherited */
} path_src;

/* A `paths` list as read: the entries, and where the list is. */
typedef struct paths_src {
    path_src *items; /* NULL: no `paths` key */
    size_t count;
    size_t line; /* of the `paths` key; 0: none */
} paths_src;

/* One entry of `sites` as read from the file, before inheritance (sites.c resolves it). */
typedef struct site_src {
    oe_config_t *over;            /* the keys the site sets, parsed by the top-level keys' rules */
    size_t line[OE_CONFIG_NKEYS]; /* YAML line that set the key in this site; 0: inherited */
    size_t at;                    /* line of the site's mapping */
    /* the keys only a site has (see oe_config_site_keys) */
    char *name, *balance, *hash_key;
    size_t name_line, balance_line, hash_key_line;
    oe_strlist_t upstreams;
    size_t *upstream_lines; /* per item */
    size_t upstreams_line;  /* 0: not set */
    paths_src paths;        /* the site's own `paths` */
} site_src;

/* State of one oe_config_load() call: where each key got its value, for messages. */
typedef struct loader {
    oe_config_t *cfg;
    const char *file;
    char *err;
    size_t errlen;
    size_t line[OE_CONFIG_NKEYS];  /* YAML line that set the key; 0: not from the file */
    char env[OE_CONFIG_NKEYS][96]; /* variable that set the key; "": not from the environment */
    int env_file[OE_CONFIG_NKEYS]; /* it was the *_FILE form */
    site_src *sites;               /* `sites` as read (nsites entries); NULL without the key */
    size_t nsites;
    size_t sites_line; /* line of the `sites` key; 0: none */
    paths_src paths;   /* top-level `paths` */
} loader;

/* A value a site may set: the top-level key of the same path gives its syntax and checks;
 * off is the field in oe_site_t. inherit: taken from the top level when the site does not
 * set it (domains and the certificate files are the site's own). */
struct site_field {
    const char *path;
    size_t off;
    int inherit;
    size_t off2; /* T_CIDRS: of the count */
};
#define OE_CONFIG_SITE_FIELDS 26
extern const struct site_field oe_config_site_fields[OE_CONFIG_SITE_FIELDS];

/* The keys a site may set, for the reference table: the site's own (type/def/doc given
 * here) and the shared ones (NULL type/doc: from the top-level key of that path). */
struct site_keydoc {
    const char *path, *type, *def, *doc;
};
#define OE_CONFIG_SITE_KEYS 33
extern const struct site_keydoc oe_config_site_keys[OE_CONFIG_SITE_KEYS];

static inline void *oe_config_field(oe_config_t *cfg, const keydef *k)
{
    return (char *)cfg + k->off;
}

static inline int oe_config_nomem(char *msg, size_t len)
{
    snprintf(msg, len, "out of memory");
    return -1;
}

/* config.c */
const keydef *oe_config_find_key(const char *path);
int oe_config_is_group(const char *path);
void oe_config_env_name(const keydef *k, char *buf, size_t len);
const char *oe_config_bad_text(const char *s);
void oe_config_free_list(oe_strlist_t *l);
void oe_config_fmt_duration(uint64_t ms, char *buf, size_t len);
const char *oe_config_enum_name(const keydef *k, int v);
int oe_config_set_scalar(oe_config_t *cfg, const keydef *k, const char *v, char *msg, size_t len, size_t *bad);
int oe_config_set_list(oe_config_t *cfg, const keydef *k, char *const *items, size_t n, char *msg, size_t len,
                       size_t *bad);
int oe_config_fail(loader *ld, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
char *oe_config_read_file(const char *path, size_t *out_len, char *why, size_t whylen);

void oe_config_origin(const loader *ld, size_t i, char *buf, size_t len);

/* yaml.c: reads path into ld->cfg (sets cfg->source) and ld->sites. */
int oe_config_load_file(loader *ld, const char *path);

/* The access keys a site or a paths entry may set (every access.* key but access.ipv6_prefix);
 * bit i of oe_config_path_t.set is entry i. */
#define OE_CONFIG_ACCESS_KEYS 12
extern const char *const oe_config_access_key_paths[OE_CONFIG_ACCESS_KEYS];

/* sites.c */
int oe_config_is_site_key(const char *path); /* 1: shared key, 2: the site's own, 0: not a site key */
int oe_config_resolve_sites(loader *ld);     /* after the environment: builds cfg->sites */
void oe_config_free_site_srcs(loader *ld);
void oe_config_free_sites(oe_config_t *cfg);
void oe_config_free_paths_src(paths_src *p);
void oe_config_free_paths(oe_config_path_t *paths, size_t count);
void oe_config_free_access(oe_config_access_t *a);
/* The top-level paths (cfg->paths, resolved against the top-level access); before the sites. */
int oe_config_resolve_top_paths(loader *ld);
void oe_config_site_view(const oe_site_t *s, oe_config_t *view); /* shallow: the site's values in view */
const char *oe_config_balance_name(enum oe_balance b);
void oe_config_hash_key_text(const oe_site_t *s, char *buf, size_t len);

#endif
