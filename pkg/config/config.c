/*
 * config.c — building the effective configuration: built-in defaults, then the YAML file
 * (yaml.c), then the OTT_EDGE_* environment, plain or *_FILE. Values are parsed and
 * checked through the key table (keys.c); every failure becomes one line naming the key.
 */
#include "config/internal.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

extern char **environ;

/* ---- small helpers ----------------------------------------------------------------- */

const keydef *oe_config_find_key(const char *path)
{
    size_t i;

    for (i = 0; i < OE_CONFIG_NKEYS; i++)
        if (strcmp(oe_config_keys[i].path, path) == 0)
            return &oe_config_keys[i];
    return NULL;
}

/* Whether path names a map of keys ("acme", "acme.eab"). */
int oe_config_is_group(const char *path)
{
    size_t i, len = strlen(path);

    for (i = 0; i < OE_CONFIG_NKEYS; i++)
        if (strncmp(oe_config_keys[i].path, path, len) == 0 && oe_config_keys[i].path[len] == '.')
            return 1;
    return 0;
}

void oe_config_env_name(const keydef *k, char *buf, size_t len)
{
    size_t i, n = strlen(ENV_PREFIX);
    const char *p;

    snprintf(buf, len, "%s", ENV_PREFIX);
    for (p = k->path, i = n; *p != '\0' && i + 1 < len; p++, i++)
        buf[i] = *p == '.' ? '_' : (char)toupper((unsigned char)*p);
    buf[i] = '\0';
}

static const keydef *find_env(const char *name)
{
    char buf[96];
    size_t i;

    for (i = 0; i < OE_CONFIG_NKEYS; i++) {
        oe_config_env_name(&oe_config_keys[i], buf, sizeof(buf));
        if (strcmp(buf, name) == 0)
            return &oe_config_keys[i];
    }
    return NULL;
}

/* NULL when s is printable UTF-8 text, else what is wrong with it. Values end up in
 * headers, logs and the printed YAML, so control characters and broken UTF-8 are refused. */
const char *oe_config_bad_text(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;

    while (*p != '\0') {
        unsigned c = *p, n, i, cp;
        if (c < 0x20 || c == 0x7f)
            return "control characters are not allowed";
        if (c < 0x80) {
            p++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf)
            n = 1, cp = c & 0x1f;
        else if (c >= 0xe0 && c <= 0xef)
            n = 2, cp = c & 0x0f;
        else if (c >= 0xf0 && c <= 0xf4)
            n = 3, cp = c & 0x07;
        else
            return "not valid UTF-8";
        for (i = 1; i <= n; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return "not valid UTF-8";
            cp = (cp << 6) | (p[i] & 0x3f);
        }
        if ((n == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)))
            return "not valid UTF-8";
        p += n + 1;
    }
    return NULL;
}

void oe_config_free_list(oe_strlist_t *l)
{
    size_t i;

    for (i = 0; i < l->count; i++)
        free(l->items[i]);
    free(l->items);
    l->items = NULL;
    l->count = 0;
}

/* Renders a duration the way the parser reads it: "7d", "1h30m", "2s500ms", "0s". */
void oe_config_fmt_duration(uint64_t ms, char *buf, size_t len)
{
    static const struct {
        uint64_t ms;
        const char *unit;
    } units[] = {{DAY, "d"}, {HOUR, "h"}, {60 * SEC, "m"}, {SEC, "s"}, {1, "ms"}};
    size_t i, used = 0;

    buf[0] = '\0';
    if (ms == 0) {
        snprintf(buf, len, "0s");
        return;
    }
    for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        uint64_t n = ms / units[i].ms;
        if (n == 0)
            continue;
        ms -= n * units[i].ms;
        if (used < len)
            used += (size_t)snprintf(buf + used, len - used, "%llu%s", (unsigned long long)n, units[i].unit);
    }
}

const char *oe_config_enum_name(const keydef *k, int v)
{
    const struct enumval *e;

    for (e = k->enums; e->name != NULL; e++)
        if (e->value == v)
            return e->name;
    return "?";
}

/* "text or json", "debug, info, warn or error": the printed name of each value. */
static void enum_choices(const keydef *k, char *buf, size_t len)
{
    const struct enumval *e, *f;
    size_t n = 0, total = 0, used = 0;

    for (e = k->enums; e->name != NULL; e++)
        if (strcmp(oe_config_enum_name(k, e->value), e->name) == 0)
            total++;
    buf[0] = '\0';
    for (e = k->enums; e->name != NULL; e++) {
        for (f = k->enums; f != e && f->value != e->value; f++)
            ;
        if (f != e)
            continue;
        n++;
        if (used < len)
            used += (size_t)snprintf(buf + used, len - used, "%s%s", n == 1 ? "" : n == total ? " or " : ", ", e->name);
    }
}

/* ---- setting a value ----------------------------------------------------------------- */

int oe_config_set_list(oe_config_t *cfg, const keydef *k, char *const *items, size_t n, char *msg, size_t len,
                       size_t *bad)
{
    size_t i;

    *bad = SIZE_MAX;
    for (i = 0; i < n; i++) {
        const char *why = oe_config_bad_text(items[i]);
        if (why != NULL) {
            *bad = i;
            snprintf(msg, len, "%s", why);
            return -1;
        }
    }
    if (k->type == T_CIDRS) {
        oe_cidr_t **list = oe_config_field(cfg, k);
        size_t *count = (size_t *)((char *)cfg + k->off2);
        oe_cidr_t *c = calloc(n > 0 ? n : 1, sizeof(*c));
        if (c == NULL)
            return oe_config_nomem(msg, len);
        for (i = 0; i < n; i++) {
            if (oe_config_parse_cidr(items[i], &c[i]) != 0) {
                *bad = i;
                snprintf(msg, len, "invalid CIDR \"%.64s\" (use e.g. 10.0.0.0/8, 192.0.2.7, fd00::/8)", items[i]);
                free(c);
                return -1;
            }
        }
        free(*list);
        *list = c;
        *count = n;
    } else {
        oe_strlist_t *l = oe_config_field(cfg, k), nl;
        nl.count = 0;
        if ((nl.items = calloc(n > 0 ? n : 1, sizeof(char *))) == NULL)
            return oe_config_nomem(msg, len);
        for (i = 0; i < n; i++, nl.count++) {
            if ((nl.items[i] = strdup(items[i])) == NULL) {
                oe_config_free_list(&nl);
                return oe_config_nomem(msg, len);
            }
        }
        oe_config_free_list(l);
        *l = nl;
    }
    return k->check != NULL ? k->check(cfg, k, msg, len, bad) : 0;
}

/* Splits "a, b,c" (or lines) into trimmed, non-empty items, then sets the list. */
static int set_list_string(oe_config_t *cfg, const keydef *k, const char *v, char *msg, size_t len, size_t *bad)
{
    char *copy = strdup(v), **items = NULL, *p, *tok;
    size_t n = 0;
    int rc = -1;

    if (copy == NULL || (items = calloc(MAX_LIST_ITEMS, sizeof(char *))) == NULL) {
        rc = oe_config_nomem(msg, len);
        goto out;
    }
    for (p = copy; p != NULL;) {
        char *end;
        tok = p;
        p = strpbrk(p, ",\n");
        if (p != NULL)
            *p++ = '\0';
        while (isspace((unsigned char)*tok))
            tok++;
        end = tok + strlen(tok);
        while (end > tok && isspace((unsigned char)end[-1]))
            *--end = '\0';
        if (*tok == '\0')
            continue;
        if (n == MAX_LIST_ITEMS) {
            snprintf(msg, len, "too many items (at most %d)", MAX_LIST_ITEMS);
            goto out;
        }
        items[n++] = tok;
    }
    rc = oe_config_set_list(cfg, k, items, n, msg, len, bad);
out:
    free(items);
    free(copy);
    return rc;
}

/* Parses v in the key's syntax into cfg, then runs the key's check. */
int oe_config_set_scalar(oe_config_t *cfg, const keydef *k, const char *v, char *msg, size_t len, size_t *bad)
{
    void *p = oe_config_field(cfg, k);
    uint64_t n;
    int i;

    *bad = SIZE_MAX;
    if (k->type == T_LIST || k->type == T_CIDRS)
        return set_list_string(cfg, k, v, msg, len, bad);
    if (oe_config_bad_text(v) != NULL) {
        snprintf(msg, len, "%s", oe_config_bad_text(v));
        return -1;
    }
    switch (k->type) {
    case T_STR: {
        char **s = p, *copy = NULL;
        if (!(*v == '\0' && (k->flags & F_OPTIONAL)) && (copy = strdup(v)) == NULL)
            return oe_config_nomem(msg, len);
        free(*s);
        *s = copy;
        break;
    }
    case T_BOOL:
        if (oe_config_parse_bool(v, &i) != 0) {
            snprintf(msg, len, "invalid boolean \"%.64s\" (use true or false)", v);
            return -1;
        }
        *(int *)p = i;
        break;
    case T_INT: {
        char *end;
        unsigned long long ull;
        errno = 0;
        ull = strtoull(v, &end, 10);
        if (!isdigit((unsigned char)*v) || *end != '\0' || errno != 0 || ull < k->min || ull > k->max) {
            snprintf(msg, len, "invalid number \"%.64s\" (use %llu..%llu)", v, (unsigned long long)k->min,
                     (unsigned long long)k->max);
            return -1;
        }
        *(int *)p = (int)ull;
        break;
    }
    case T_DURATION:
        if (oe_config_parse_duration(v, &n) != 0) {
            snprintf(msg, len, "invalid duration \"%.64s\" (use e.g. 30s, 5m, 7d)", v);
            return -1;
        }
        if (n < k->min || (k->max != 0 && n > k->max)) {
            char a[32], b[32];
            oe_config_fmt_duration(k->min, a, sizeof(a));
            oe_config_fmt_duration(k->max, b, sizeof(b));
            snprintf(msg, len, "duration \"%.64s\" is out of range (%s..%s)", v, a, b);
            return -1;
        }
        *(uint64_t *)p = n;
        break;
    case T_SIZE:
        if (oe_config_parse_size(v, &n) != 0) {
            snprintf(msg, len, "invalid size \"%.64s\" (use e.g. 512KiB, 16MiB, 1GiB)", v);
            return -1;
        }
        if (n < k->min || (k->max != 0 && n > k->max)) {
            snprintf(msg, len, "size \"%.64s\" is out of range", v);
            return -1;
        }
        *(uint64_t *)p = n;
        break;
    case T_ENUM: {
        const struct enumval *e;
        for (e = k->enums; e->name != NULL && strcasecmp(e->name, v) != 0; e++)
            ;
        if (e->name == NULL) {
            char choices[128];
            enum_choices(k, choices, sizeof(choices));
            snprintf(msg, len, "invalid value \"%.64s\" (use %s)", v, choices);
            return -1;
        }
        *(int *)p = e->value;
        break;
    }
    default:
        break;
    }
    return k->check != NULL ? k->check(cfg, k, msg, len, bad) : 0;
}

/* ---- errors ---------------------------------------------------------------------------- */

int oe_config_fail(loader *ld, const char *fmt, ...)
{
    int n = snprintf(ld->err, ld->errlen, "config: ");

    if (n >= 0 && (size_t)n < ld->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(ld->err + n, ld->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* Where key i got its value: "OTT_EDGE_X", "file.yaml:7" or "built-in default". */
void oe_config_origin(const loader *ld, size_t i, char *buf, size_t len)
{
    if (ld->env[i][0] != '\0')
        snprintf(buf, len, "%s", ld->env[i]);
    else if (ld->line[i] != 0)
        snprintf(buf, len, "%s:%zu", ld->file, ld->line[i]);
    else
        snprintf(buf, len, "built-in default");
}

/* ---- files ----------------------------------------------------------------------------- */

char *oe_config_read_file_max(const char *path, size_t max, int regular_only, size_t *out_len, char *why, size_t whylen)
{
    struct stat st;
    char *buf = NULL;
    size_t len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0) {
        snprintf(why, whylen, "%s", strerror(errno));
        return NULL;
    }
    if (fstat(fd, &st) != 0) {
        snprintf(why, whylen, "%s", strerror(errno));
        goto fail;
    }
    if (S_ISDIR(st.st_mode) || (regular_only && !S_ISREG(st.st_mode))) {
        snprintf(why, whylen, "%s", S_ISDIR(st.st_mode) ? "is a directory" : "not a regular file");
        goto fail;
    }
    if ((buf = malloc(max + 1)) == NULL) {
        snprintf(why, whylen, "out of memory");
        goto fail;
    }
    for (;;) {
        ssize_t r = read(fd, buf + len, max + 1 - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(why, whylen, "%s", strerror(errno));
            goto fail;
        }
        if (r == 0)
            break;
        len += (size_t)r;
        if (len > max) {
            snprintf(why, whylen, "larger than %zu bytes", max);
            goto fail;
        }
    }
    close(fd);
    buf[len] = '\0';
    *out_len = len;
    return buf;
fail:
    free(buf);
    close(fd);
    return NULL;
}

/* Reads a whole file of at most MAX_FILE_SIZE bytes, NUL-terminated (a pipe such as
 * --config <(...) is fine; a directory is not). */
char *oe_config_read_file(const char *path, size_t *out_len, char *why, size_t whylen)
{
    return oe_config_read_file_max(path, MAX_FILE_SIZE, 0, out_len, why, whylen);
}

/* ---- environment ----------------------------------------------------------------------- */

static const char *env_get(char *const *envp, const char *name)
{
    size_t n = strlen(name);

    for (; *envp != NULL; envp++)
        if (strncmp(*envp, name, n) == 0 && (*envp)[n] == '=')
            return *envp + n + 1;
    return NULL;
}

/* Two passes: first find every OTT_EDGE_* variable's key (so an unknown name or a plain +
 * _FILE conflict is reported before any value), then apply the values in table order. */
static int load_env(loader *ld, char *const *envp)
{
    static const char *const ignored[] = {"OTT_EDGE_CONFIG", "OTT_EDGE_BIN", "OTT_EDGE_SANITIZE"};
    const char *value[OE_CONFIG_NKEYS] = {0};
    size_t prefix = strlen(ENV_PREFIX), ki;

    for (; *envp != NULL; envp++) {
        const char *e = *envp, *eq = strchr(e, '=');
        const keydef *k;
        char name[96];
        size_t nlen, i;
        int is_file = 0;

        if (strncmp(e, ENV_PREFIX, prefix) != 0 || eq == NULL)
            continue;
        nlen = (size_t)(eq - e);
        if (nlen >= sizeof(name))
            return oe_config_fail(ld, "%.*s...: unknown variable (not a configuration key)", 64, e);
        memcpy(name, e, nlen);
        name[nlen] = '\0';
        for (i = 0; i < sizeof(ignored) / sizeof(ignored[0]) && strcmp(name, ignored[i]) != 0; i++)
            ;
        if (i < sizeof(ignored) / sizeof(ignored[0]))
            continue;
        if ((k = find_env(name)) == NULL && nlen > 5 && strcmp(name + nlen - 5, "_FILE") == 0) {
            name[nlen - 5] = '\0';
            k = find_env(name);
            name[nlen - 5] = '_';
            is_file = 1;
        }
        if (k == NULL)
            return oe_config_fail(ld, "%s: unknown variable (not a configuration key)",
                                  oe_config_bad_text(name) ? "OTT_EDGE_?" : name);
        ki = (size_t)(k - oe_config_keys);
        if (value[ki] != NULL) {
            if (ld->env_file[ki] != is_file) {
                char plain[80];
                oe_config_env_name(k, plain, sizeof(plain));
                return oe_config_fail(ld, "%s and %s_FILE are both set: use only one", plain, plain);
            }
            continue; /* the same name twice: the first wins, as with getenv() */
        }
        snprintf(ld->env[ki], sizeof(ld->env[ki]), "%s", name);
        ld->env_file[ki] = is_file;
        value[ki] = eq + 1;
    }

    for (ki = 0; ki < OE_CONFIG_NKEYS; ki++) {
        const char *v = value[ki], *name = ld->env[ki];
        char msg[OE_CONFIG_ERR_MAX], *content = NULL;
        size_t bad;
        int rc;

        if (v == NULL)
            continue;
        if (ld->env_file[ki]) {
            char why[256];
            size_t len;
            if (*v == '\0')
                return oe_config_fail(ld, "%s: empty file name", name);
            if ((content = oe_config_read_file(v, &len, why, sizeof(why))) == NULL)
                return oe_config_fail(ld, "%s: cannot read \"%.200s\": %s", name, v, why);
            if (strlen(content) != len) {
                free(content);
                return oe_config_fail(ld, "%s: \"%.200s\" holds a NUL byte", name, v);
            }
            while (len > 0 && (content[len - 1] == '\n' || content[len - 1] == '\r'))
                content[--len] = '\0';
            v = content;
        }
        rc = oe_config_set_scalar(ld->cfg, &oe_config_keys[ki], v, msg, sizeof(msg), &bad);
        free(content);
        if (rc != 0)
            return oe_config_fail(ld, "%s: %s", name, msg);
    }
    return 0;
}

/* ---- load / free ----------------------------------------------------------------------- */

static int set_defaults(loader *ld)
{
    char msg[OE_CONFIG_ERR_MAX];
    size_t i, bad;

    for (i = 0; i < OE_CONFIG_NKEYS; i++) {
        const keydef *k = &oe_config_keys[i];
        if (k->flags & F_CPUS) {
            long n = sysconf(_SC_NPROCESSORS_ONLN);
            *(int *)oe_config_field(ld->cfg, k) = n < 1 ? 1 : n > (long)k->max ? (int)k->max : (int)n;
        } else if (k->def != NULL && oe_config_set_scalar(ld->cfg, k, k->def, msg, sizeof(msg), &bad) != 0) {
            return oe_config_fail(ld, "built-in default of %s: %s", k->path, msg);
        }
    }
    return 0;
}

/* DNS-01: wildcards need it, it needs a provider, each provider needs its keys. */
static int check_dns01(loader *ld)
{
    const oe_config_t *cfg = ld->cfg;
    const char *wildcard = NULL, *need = NULL;
    char where[300];
    int dns01 = oe_config_challenge_on(cfg, "dns-01");
    size_t i;

    for (i = 0; i < cfg->domains.count && wildcard == NULL; i++)
        if (cfg->domains.items[i][0] == '*')
            wildcard = cfg->domains.items[i];
    if (wildcard != NULL && oe_config_acme_enabled(cfg) && !dns01) {
        oe_config_origin(ld, (size_t)(oe_config_find_key("domains") - oe_config_keys), where, sizeof(where));
        return oe_config_fail(ld,
                              "%s: domains: \"%.64s\" is a wildcard name, which only DNS-01 can validate: add dns-01 "
                              "to acme.challenges and set acme.dns.provider (rfc2136 or exec)",
                              where, wildcard);
    }
    if (dns01 && cfg->acme.dns.provider == OE_DNS_NONE) {
        oe_config_origin(ld, (size_t)(oe_config_find_key("acme.challenges") - oe_config_keys), where, sizeof(where));
        return oe_config_fail(ld, "%s: acme.challenges: dns-01 needs acme.dns.provider (rfc2136 or exec)", where);
    }
    if (!dns01 && cfg->acme.dns.provider != OE_DNS_NONE) {
        oe_config_origin(ld, (size_t)(oe_config_find_key("acme.dns.provider") - oe_config_keys), where, sizeof(where));
        return oe_config_fail(ld,
                              "%s: acme.dns.provider is set but acme.challenges does not list dns-01 (add it, e.g. "
                              "acme.challenges: [dns-01])",
                              where);
    }
    if (cfg->acme.dns.provider == OE_DNS_RFC2136 && cfg->acme.dns.rfc2136.server == NULL)
        need = "acme.dns.rfc2136.server";
    else if (cfg->acme.dns.provider == OE_DNS_EXEC && cfg->acme.dns.exec.command == NULL)
        need = "acme.dns.exec.command";
    if (need != NULL) {
        oe_config_origin(ld, (size_t)(oe_config_find_key("acme.dns.provider") - oe_config_keys), where, sizeof(where));
        return oe_config_fail(ld, "%s: acme.dns.provider %s needs %s", where,
                              cfg->acme.dns.provider == OE_DNS_RFC2136 ? "rfc2136" : "exec", need);
    }
    return 0;
}

/* Rules that involve more than one key, once every source is applied. */
static int check_together(loader *ld)
{
    static const struct {
        const char *a, *b;
    } pairs[] = {{"tls.cert_file", "tls.key_file"},
                 {"acme.eab.kid", "acme.eab.hmac_key"},
                 {"acme.dns.rfc2136.key_name", "acme.dns.rfc2136.key_secret"}};
    oe_config_t *cfg = ld->cfg;
    char where[300];
    size_t i;

    for (i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
        const keydef *a = oe_config_find_key(pairs[i].a), *b = oe_config_find_key(pairs[i].b), *set;
        int has_a = *(char **)oe_config_field(cfg, a) != NULL, has_b = *(char **)oe_config_field(cfg, b) != NULL;
        if (has_a == has_b)
            continue;
        set = has_a ? a : b;
        oe_config_origin(ld, (size_t)(set - oe_config_keys), where, sizeof(where));
        return oe_config_fail(ld, "%s: %s: %s and %s must be given together", where, set->path, a->path, b->path);
    }
    return 0;
}

/* Rules that need the sites resolved. */
static int check_sites_together(loader *ld)
{
    oe_config_t *cfg = ld->cfg;
    char where[300];
    size_t i;

    if (cfg->acme.enabled == OE_ON) {
        for (i = 0; i < cfg->sites_count && !oe_config_site_acme(cfg, i); i++)
            ;
        if (i == cfg->sites_count) {
            oe_config_origin(ld, (size_t)(oe_config_find_key("acme.enabled") - oe_config_keys), where, sizeof(where));
            if (!cfg->sites_listed)
                return oe_config_fail(
                    ld, "%s: acme.enabled: ACME is on but domains is empty (list the names to certify)", where);
            return oe_config_fail(ld,
                                  "%s: acme.enabled: ACME is on but no site needs it (every site has tls.cert_file "
                                  "or no domains)",
                                  where);
        }
    }
    return check_dns01(ld);
}

oe_config_t *oe_config_load(const char *path, char *const *envp, char *err, size_t errlen)
{
    char dummy[OE_CONFIG_ERR_MAX];
    loader *ld = calloc(1, sizeof(*ld));
    oe_config_t *cfg = calloc(1, sizeof(*cfg));

    if (err == NULL || errlen == 0) {
        err = dummy;
        errlen = sizeof(dummy);
    }
    err[0] = '\0';
    if (ld == NULL || cfg == NULL) {
        snprintf(err, errlen, "config: out of memory");
        goto fail;
    }
    ld->cfg = cfg;
    ld->err = err;
    ld->errlen = errlen;
    if (envp == NULL)
        envp = environ;
    if (set_defaults(ld) != 0)
        goto fail;
    if (path == NULL && (path = env_get(envp, "OTT_EDGE_CONFIG")) != NULL && *path == '\0')
        path = NULL;
    if (path == NULL && access(OE_CONFIG_DEFAULT_PATH, F_OK) == 0)
        path = OE_CONFIG_DEFAULT_PATH;
    if (path != NULL && oe_config_load_file(ld, path) != 0)
        goto fail;
    if (load_env(ld, envp) != 0 || check_together(ld) != 0 || oe_config_resolve_sites(ld) != 0 ||
        check_sites_together(ld) != 0)
        goto fail;
    oe_config_free_site_srcs(ld);
    oe_config_free_paths_src(&ld->paths);
    free(ld);
    return cfg;
fail:
    if (ld != NULL) {
        oe_config_free_site_srcs(ld);
        oe_config_free_paths_src(&ld->paths);
    }
    free(ld);
    oe_config_free(cfg);
    return NULL;
}

void oe_config_free(oe_config_t *cfg)
{
    size_t i;

    if (cfg == NULL)
        return;
    for (i = 0; i < OE_CONFIG_NKEYS; i++) {
        void *p = oe_config_field(cfg, &oe_config_keys[i]);
        if (oe_config_keys[i].type == T_STR)
            free(*(char **)p);
        else if (oe_config_keys[i].type == T_CIDRS)
            free(*(oe_cidr_t **)p);
        else if (oe_config_keys[i].type == T_LIST)
            oe_config_free_list(p);
    }
    oe_config_free_sites(cfg);
    oe_config_free_paths(cfg->paths, cfg->paths_count);
    free(cfg->source);
    free(cfg);
}

int oe_config_challenge_on(const oe_config_t *cfg, const char *type)
{
    for (size_t i = 0; i < cfg->acme.challenges.count; i++)
        if (strcmp(cfg->acme.challenges.items[i], type) == 0)
            return 1;
    return 0;
}

int oe_config_acme_enabled(const oe_config_t *cfg)
{
    size_t i;

    if (cfg->acme.enabled != OE_AUTO)
        return cfg->acme.enabled == OE_ON;
    if (cfg->sites_count == 0) /* not resolved (cannot happen after oe_config_load) */
        return cfg->domains.count > 0 && cfg->tls.cert_file == NULL;
    for (i = 0; i < cfg->sites_count; i++)
        if (cfg->sites[i].domains.count > 0 && cfg->sites[i].cert_file == NULL)
            return 1;
    return 0;
}

int oe_config_site_acme(const oe_config_t *cfg, size_t i)
{
    /* acme.enabled: true in the one-site form replaces a tls.cert_file (as it always did) */
    return i < cfg->sites_count && cfg->sites[i].domains.count > 0 &&
           (cfg->sites[i].cert_file == NULL || (!cfg->sites_listed && cfg->acme.enabled == OE_ON)) &&
           oe_config_acme_enabled(cfg);
}
