/*
 * print.c — writing the effective configuration as YAML (libyaml's emitter, secrets
 * redacted, durations and sizes in readable units, every site with its resolved values),
 * the routing table (as comments), and the Markdown reference tables.
 */
#include "config/internal.h"

#include <arpa/inet.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

/* "16MiB", "1GiB", "1500" (bytes when no binary unit divides it). */
static void fmt_size(uint64_t n, char *buf, size_t len)
{
    static const char *const units[] = {"TiB", "GiB", "MiB", "KiB"};
    size_t i;

    for (i = 0; i < 4 && n != 0; i++) {
        uint64_t mult = 1ull << (10 * (4 - i));
        if (n % mult == 0) {
            snprintf(buf, len, "%llu%s", (unsigned long long)(n / mult), units[i]);
            return;
        }
    }
    snprintf(buf, len, "%llu", (unsigned long long)n);
}

static int emit(yaml_emitter_t *em, yaml_event_t *ev, int ok)
{
    return ok && yaml_emitter_emit(em, ev);
}

static int emit_scalar(yaml_emitter_t *em, const char *s)
{
    yaml_event_t ev;
    yaml_scalar_style_t style = YAML_ANY_SCALAR_STYLE;

    if (s == NULL) {
        s = "null";
        style = YAML_PLAIN_SCALAR_STYLE;
    } else if (*s == '\0' || strcmp(s, "~") == 0 || strcasecmp(s, "null") == 0) {
        style = YAML_DOUBLE_QUOTED_SCALAR_STYLE; /* so that it reads back as a string */
    }
    return emit(em, &ev, yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)s, (int)strlen(s), 1, 1, style));
}

static int emit_value(yaml_emitter_t *em, const oe_config_t *cfg, const keydef *k)
{
    const void *p = (const char *)cfg + k->off;
    char buf[INET6_ADDRSTRLEN + 8];
    yaml_event_t ev;
    size_t i;
    int ok;

    switch (k->type) {
    case T_STR: {
        const char *s = *(char *const *)p;
        return emit_scalar(em, (k->flags & F_SECRET) && s != NULL ? "<redacted>" : s);
    }
    case T_BOOL:
        return emit_scalar(em, *(const int *)p ? "true" : "false");
    case T_INT:
        snprintf(buf, sizeof(buf), "%d", *(const int *)p);
        return emit_scalar(em, buf);
    case T_DURATION:
        oe_config_fmt_duration(*(const uint64_t *)p, buf, sizeof(buf));
        return emit_scalar(em, buf);
    case T_SIZE:
        fmt_size(*(const uint64_t *)p, buf, sizeof(buf));
        return emit_scalar(em, buf);
    case T_ENUM:
        return emit_scalar(em, oe_config_enum_name(k, *(const int *)p));
    case T_LIST:
    case T_CIDRS:
        ok = emit(em, &ev, yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_FLOW_SEQUENCE_STYLE));
        if (k->type == T_LIST) {
            const oe_strlist_t *l = p;
            for (i = 0; ok && i < l->count; i++)
                ok = emit_scalar(em, l->items[i]);
        } else {
            const oe_cidr_t *c = *(oe_cidr_t *const *)p;
            size_t n = *(const size_t *)((const char *)cfg + k->off2);
            for (i = 0; ok && i < n; i++) {
                size_t l;
                inet_ntop(c[i].family, c[i].addr, buf, sizeof(buf));
                l = strlen(buf);
                snprintf(buf + l, sizeof(buf) - l, "/%u", c[i].prefix);
                ok = emit_scalar(em, buf);
            }
        }
        return emit(em, &ev, ok && yaml_sequence_end_event_initialize(&ev));
    }
    return 0;
}

/* Number of leading dot-separated segments a and b share (a segment ends at '.'). */
static size_t common_groups(const char *a, const char *b)
{
    size_t n = 0, i;

    for (i = 0; a[i] != '\0' && a[i] == b[i]; i++)
        if (a[i] == '.')
            n++;
    return n;
}

static size_t count_dots(const char *s)
{
    size_t n = 0;

    for (; *s != '\0'; s++)
        n += *s == '.';
    return n;
}

static int emit_map_start(yaml_emitter_t *em)
{
    yaml_event_t ev;

    return emit(em, &ev, yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE));
}

static int emit_map_end(yaml_emitter_t *em)
{
    yaml_event_t ev;

    return emit(em, &ev, yaml_mapping_end_event_initialize(&ev));
}

/* Writes the keys paths[0..n) (in table order, so that a group's keys are together) with
 * their values in view, as nested mappings ("access.rate.per" in access: {rate: {per: ..}}). */
static int emit_keys(yaml_emitter_t *em, const oe_config_t *view, const char *const *paths, size_t n)
{
    const char *prev = "";
    size_t i, open = 0;
    int ok = 1;

    for (i = 0; ok && i < n; i++) {
        const char *path = paths[i], *seg;
        size_t keep = common_groups(prev, path), depth = count_dots(path), d;
        if (keep > open)
            keep = open;
        for (; ok && open > keep; open--)
            ok = emit_map_end(em);
        for (seg = path, d = 0; d < depth; d++) {
            const char *dot = strchr(seg, '.');
            if (d >= open) {
                char name[MAX_PATH_LEN];
                snprintf(name, sizeof(name), "%.*s", (int)(dot - seg), seg);
                ok = ok && emit_scalar(em, name) && emit_map_start(em);
                open++;
            }
            seg = dot + 1;
        }
        ok = ok && emit_scalar(em, seg) && emit_value(em, view, oe_config_find_key(path));
        prev = path;
    }
    for (; ok && open > 0; open--)
        ok = emit_map_end(em);
    return ok;
}

/* A paths list: each entry with its prefix and the access keys it sets itself. */
static int emit_paths(yaml_emitter_t *em, const oe_config_path_t *paths, size_t count)
{
    yaml_event_t ev;
    size_t i, a;
    int ok = emit_scalar(em, "paths") &&
             emit(em, &ev, yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_SEQUENCE_STYLE));

    for (i = 0; ok && i < count; i++) {
        const char *own[OE_CONFIG_ACCESS_KEYS];
        oe_config_t view;
        size_t n = 0;
        memset(&view, 0, sizeof(view));
        view.access = paths[i].access;
        for (a = 0; a < OE_CONFIG_ACCESS_KEYS; a++)
            if (paths[i].set & (1u << a))
                own[n++] = oe_config_access_key_paths[a];
        ok = emit_map_start(em) && emit_scalar(em, "prefix") && emit_scalar(em, paths[i].prefix);
        if (n == 0)
            ok = ok && emit_scalar(em, "access") &&
                 emit(em, &ev, yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_FLOW_MAPPING_STYLE)) &&
                 emit_map_end(em);
        else
            ok = ok && emit_keys(em, &view, own, n);
        ok = ok && emit_map_end(em);
    }
    return emit(em, &ev, ok && yaml_sequence_end_event_initialize(&ev));
}

/* One site with every value resolved: the printed file sets them all explicitly. */
static int emit_site(yaml_emitter_t *em, const oe_site_t *s)
{
    const char *shared[OE_CONFIG_SITE_FIELDS];
    oe_config_t view;
    yaml_event_t ev;
    char buf[128];
    size_t i;
    int ok;

    oe_config_site_view(s, &view);
    ok = emit_map_start(em) && emit_scalar(em, "name") && emit_scalar(em, s->name);
    ok = ok && emit_scalar(em, "domains") && emit_value(em, &view, oe_config_find_key("domains"));
    ok = ok && emit_scalar(em, "upstreams") &&
         emit(em, &ev, yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_FLOW_SEQUENCE_STYLE));
    for (i = 0; ok && i < s->upstreams_count; i++)
        ok = emit_scalar(em, s->upstreams[i].url);
    ok = emit(em, &ev, ok && yaml_sequence_end_event_initialize(&ev));
    ok = ok && emit_scalar(em, "balance") && emit_scalar(em, oe_config_balance_name(s->balance));
    if (s->balance == OE_BALANCE_HASH) {
        oe_config_hash_key_text(s, buf, sizeof(buf));
        ok = ok && emit_scalar(em, "hash_key") && emit_scalar(em, buf);
    }
    /* the shared keys, grouped like at the top level (tls, proxy, cache, compress, access) */
    for (i = 1; i < OE_CONFIG_SITE_FIELDS; i++)
        shared[i - 1] = oe_config_site_fields[i].path;
    ok = ok && emit_keys(em, &view, shared, OE_CONFIG_SITE_FIELDS - 1);
    if (s->paths_count > 0)
        ok = ok && emit_paths(em, s->paths, s->paths_count);
    return ok && emit_map_end(em);
}

/* Whether a site's value of key k differs from the top level's. */
static int differs(const oe_config_t *top, const oe_config_t *view, const keydef *k)
{
    const void *a = (const char *)top + k->off, *b = (const char *)view + k->off;
    size_t i;

    switch (k->type) {
    case T_STR: {
        const char *x = *(char *const *)a, *y = *(char *const *)b;
        return (x == NULL) != (y == NULL) || (x != NULL && strcmp(x, y) != 0);
    }
    case T_LIST: {
        const oe_strlist_t *x = a, *y = b;
        if (x->count != y->count)
            return 1;
        for (i = 0; i < x->count; i++)
            if (strcmp(x->items[i], y->items[i]) != 0)
                return 1;
        return 0;
    }
    case T_CIDRS: {
        size_t n = *(const size_t *)((const char *)top + k->off2), m = *(const size_t *)((const char *)view + k->off2);
        const oe_cidr_t *x = *(oe_cidr_t *const *)a, *y = *(oe_cidr_t *const *)b;
        return n != m || (n > 0 && memcmp(x, y, n * sizeof(*x)) != 0);
    }
    case T_BOOL:
    case T_INT:
        return *(const int *)a != *(const int *)b;
    default:
        return *(const uint64_t *)a != *(const uint64_t *)b;
    }
}

/* Appends s to buf (at *used), ending with "..." when it does not fit. */
static void append(char *buf, size_t cap, size_t *used, const char *s)
{
    size_t n = strlen(s);

    if (*used + n + 4 >= cap) {
        if (*used + 4 < cap)
            *used += (size_t)snprintf(buf + *used, cap - *used, "...");
        return;
    }
    memcpy(buf + *used, s, n + 1);
    *used += n;
}

/* A value as the configuration file writes it (appended to buf at *used). */
static void value_text(const oe_config_t *view, const keydef *k, char *buf, size_t cap, size_t *used)
{
    const void *p = (const char *)view + k->off;
    char tmp[64];
    size_t i;

    switch (k->type) {
    case T_STR:
        append(buf, cap, used, *(char *const *)p != NULL ? *(char *const *)p : "null");
        return;
    case T_LIST: {
        const oe_strlist_t *l = p;
        append(buf, cap, used, "[");
        for (i = 0; i < l->count; i++) {
            append(buf, cap, used, i ? ", " : "");
            append(buf, cap, used, l->items[i]);
        }
        append(buf, cap, used, "]");
        return;
    }
    case T_CIDRS: {
        const oe_cidr_t *c = *(oe_cidr_t *const *)p;
        size_t n = *(const size_t *)((const char *)view + k->off2);
        append(buf, cap, used, "[");
        for (i = 0; i < n; i++) {
            char ip[INET6_ADDRSTRLEN + 8];
            inet_ntop(c[i].family, c[i].addr, ip, sizeof(ip));
            snprintf(ip + strlen(ip), sizeof(ip) - strlen(ip), "/%u", c[i].prefix);
            append(buf, cap, used, i ? ", " : "");
            append(buf, cap, used, ip);
        }
        append(buf, cap, used, "]");
        return;
    }
    case T_BOOL:
        append(buf, cap, used, *(const int *)p ? "true" : "false");
        return;
    case T_INT:
        snprintf(tmp, sizeof(tmp), "%d", *(const int *)p);
        break;
    case T_DURATION:
        oe_config_fmt_duration(*(const uint64_t *)p, tmp, sizeof(tmp));
        break;
    default:
        fmt_size(*(const uint64_t *)p, tmp, sizeof(tmp));
        break;
    }
    append(buf, cap, used, tmp);
}

/* The routing table, as YAML comments after the document. */
static void print_routes(const oe_config_t *cfg, FILE *out)
{
    size_t i, j, w[4] = {4, 5, 9, 11};
    char(*col)[4][1024] = calloc(cfg->sites_count, sizeof(*col));

    if (col == NULL)
        return;
    for (i = 0; i < cfg->sites_count; i++) {
        const oe_site_t *s = &cfg->sites[i];
        size_t used = 0;
        for (j = 0; j < s->domains.count; j++) {
            append(col[i][0], sizeof(col[i][0]), &used, j ? ", " : "");
            append(col[i][0], sizeof(col[i][0]), &used, s->domains.items[j]);
        }
        if (used == 0)
            append(col[i][0], sizeof(col[i][0]), &used, "(none)");
        used = 0;
        for (j = 0; j < s->upstreams_count; j++) {
            append(col[i][1], sizeof(col[i][1]), &used, j ? ", " : "");
            append(col[i][1], sizeof(col[i][1]), &used, s->upstreams[j].url);
        }
        if (s->balance == OE_BALANCE_HASH) {
            char hk[128];
            oe_config_hash_key_text(s, hk, sizeof(hk));
            snprintf(col[i][2], sizeof(col[i][2]), "hash %s", hk);
        } else {
            snprintf(col[i][2], sizeof(col[i][2]), "%s", oe_config_balance_name(s->balance));
        }
        if (oe_config_site_acme(cfg, i))
            snprintf(col[i][3], sizeof(col[i][3]), "ACME%s", s->cert_file ? " (replacing tls.cert_file)" : "");
        else if (s->cert_file != NULL)
            snprintf(col[i][3], sizeof(col[i][3]), "file %s", s->cert_file);
        else
            snprintf(col[i][3], sizeof(col[i][3]), "self-signed");
        for (j = 0; j < 4; j++)
            if (strlen(col[i][j]) > w[j])
                w[j] = strlen(col[i][j]);
    }
    size_t nw = 4;
    for (i = 0; i < cfg->sites_count; i++)
        if (strlen(cfg->sites[i].name) > nw)
            nw = strlen(cfg->sites[i].name);
    fprintf(out, "# routing table: a name (Host, :authority, SNI) goes to the site listing it, else to the site whose\n"
                 "# *.wildcard matches it (one label), else to the default site\n");
    fprintf(out, "#   %-*s  %-*s  %-*s  %-*s  %s\n", (int)nw, "site", (int)w[0], "names", (int)w[1], "upstreams",
            (int)w[2], "balance", "certificate");
    for (i = 0; i < cfg->sites_count; i++)
        fprintf(out, "#   %-*s  %-*s  %-*s  %-*s  %s\n", (int)nw, cfg->sites[i].name, (int)w[0], col[i][0], (int)w[1],
                col[i][1], (int)w[2], col[i][2], col[i][3]);
    if (cfg->default_site >= 0)
        fprintf(out, "#   any other name: site %s (the default site)\n", cfg->sites[cfg->default_site].name);
    else
        fprintf(out, "#   any other name: not proxied (no default_site)\n");
    if (cfg->sites_listed) {
        fprintf(out, "# per-site settings that differ from the top level:\n");
        for (i = 0; i < cfg->sites_count; i++) {
            oe_config_t view;
            char line[2048] = "";
            size_t used = 0;
            oe_config_site_view(&cfg->sites[i], &view);
            for (j = 0; j < OE_CONFIG_SITE_FIELDS; j++) {
                const keydef *k = oe_config_find_key(oe_config_site_fields[j].path);
                if (!oe_config_site_fields[j].inherit || !differs(cfg, &view, k))
                    continue;
                append(line, sizeof(line), &used, used ? ", " : "");
                append(line, sizeof(line), &used, k->path);
                append(line, sizeof(line), &used, "=");
                value_text(&view, k, line, sizeof(line), &used);
            }
            fprintf(out, "#   %s: %s\n", cfg->sites[i].name, used ? line : "(none)");
        }
    }
    free(col);
}

/* Keys that belong to the sites when the configuration lists them. */
static int site_owned(const oe_config_t *cfg, const char *path)
{
    return cfg->sites_listed && (strcmp(path, "domains") == 0 || strcmp(path, "upstream") == 0 ||
                                 strcmp(path, "tls.cert_file") == 0 || strcmp(path, "tls.key_file") == 0);
}

void oe_config_print(const oe_config_t *cfg, FILE *out)
{
    yaml_emitter_t em;
    yaml_event_t ev;
    const char *prev = "";
    size_t i, open = 0;
    int ok;

    if (!yaml_emitter_initialize(&em))
        return;
    yaml_emitter_set_output_file(&em, out);
    yaml_emitter_set_unicode(&em, 1);
    yaml_emitter_set_width(&em, -1);
    fprintf(out, "# effective ott-edge configuration (file: %s)\n", cfg->source ? cfg->source : "none");
    ok = emit(&em, &ev, yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING));
    ok = emit(&em, &ev, ok && yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1));
    ok = emit(&em, &ev, ok && yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE));
    for (i = 0; ok && i < OE_CONFIG_NKEYS; i++) {
        const char *path = oe_config_keys[i].path, *seg;
        size_t keep = common_groups(prev, path), depth = count_dots(path), d;
        if (site_owned(cfg, path))
            continue;
        if (keep > open)
            keep = open;
        for (; ok && open > keep; open--)
            ok = emit(&em, &ev, yaml_mapping_end_event_initialize(&ev));
        /* open the groups this key lives in, then write the leaf */
        for (seg = path, d = 0; d < depth; d++) {
            const char *dot = strchr(seg, '.');
            if (d >= open) {
                char name[MAX_PATH_LEN];
                snprintf(name, sizeof(name), "%.*s", (int)(dot - seg), seg);
                ok = ok && emit_scalar(&em, name);
                ok = emit(&em, &ev,
                          ok && yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE));
                open++;
            }
            seg = dot + 1;
        }
        ok = ok && emit_scalar(&em, seg) && emit_value(&em, cfg, &oe_config_keys[i]);
        prev = path;
    }
    for (; ok && open > 0; open--)
        ok = emit(&em, &ev, yaml_mapping_end_event_initialize(&ev));
    if (cfg->paths_count > 0)
        ok = ok && emit_paths(&em, cfg->paths, cfg->paths_count);
    if (cfg->sites_listed) {
        ok = ok && emit_scalar(&em, "sites") &&
             emit(&em, &ev, yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_SEQUENCE_STYLE));
        for (i = 0; ok && i < cfg->sites_count; i++)
            ok = emit_site(&em, &cfg->sites[i]);
        ok = emit(&em, &ev, ok && yaml_sequence_end_event_initialize(&ev));
    }
    ok = emit(&em, &ev, ok && yaml_mapping_end_event_initialize(&ev));
    ok = emit(&em, &ev, ok && yaml_document_end_event_initialize(&ev, 1));
    if (emit(&em, &ev, ok && yaml_stream_end_event_initialize(&ev)))
        yaml_emitter_flush(&em);
    yaml_emitter_delete(&em);
    if (ok && cfg->sites_count > 0)
        print_routes(cfg, out);
}

static void type_text(const keydef *k, char *type, size_t cap)
{
    switch (k->type) {
    case T_STR:
        snprintf(type, cap, "%s",
                 k->flags & F_ADDRESS  ? "address"
                 : k->flags & F_SECRET ? "string (secret)"
                                       : "string");
        break;
    case T_BOOL:
        snprintf(type, cap, "bool");
        break;
    case T_INT:
        snprintf(type, cap, "int");
        break;
    case T_DURATION:
        snprintf(type, cap, "duration");
        break;
    case T_SIZE:
        snprintf(type, cap, "size");
        break;
    case T_LIST:
        snprintf(type, cap, "list");
        break;
    case T_CIDRS:
        snprintf(type, cap, "CIDR list");
        break;
    case T_ENUM: {
        const struct enumval *e;
        size_t used = 0;
        type[0] = '\0';
        for (e = k->enums; e->name != NULL && used < cap; e++)
            if (strcmp(oe_config_enum_name(k, e->value), e->name) == 0)
                used += (size_t)snprintf(type + used, cap - used, "%s`%s`", used ? " \\| " : "", e->name);
        break;
    }
    }
}

/* One Markdown table row per key, generated from oe_config_keys[], then one per key a site may
 * set (docs/configuration.md and README.md hold the same rows). */
void oe_config_print_reference(FILE *out)
{
    size_t i;

    fprintf(out, "| Key | Environment variable | Type | Default | Meaning |\n|---|---|---|---|---|\n");
    for (i = 0; i < OE_CONFIG_NKEYS; i++) {
        const keydef *k = &oe_config_keys[i];
        char env[96], type[128], def[128];
        if (strcmp(k->path, "access.allow") == 0)
            fprintf(out, "| `paths` | (file only) | list of paths | `[]` | Path prefixes with access rules of their "
                         "own: `[{prefix: /admin, access: {basic_auth: /etc/ott-edge/htpasswd}}]`. Keys an entry's "
                         "`access` does not set come from the site's; the longest matching prefix applies "
                         "(case-insensitive; `/admin` covers `/admin` and `/admin/...`). A `rate` an entry sets is a "
                         "bucket of its own; one it does not set is the site's bucket. |\n");
        if (strcmp(k->path, "default_site") == 0)
            fprintf(out, "| `sites` | (file only) | list of sites | `[]` | Several sites on one ott-edge, each with "
                         "its names, upstreams, certificate and settings: see the site keys below. Without it, "
                         "`domains` + `upstream` + `tls.*` make one site. |\n");
        oe_config_env_name(k, env, sizeof(env));
        type_text(k, type, sizeof(type));
        if (k->flags & F_CPUS) {
            snprintf(def, sizeof(def), "number of CPUs (max %llu)", (unsigned long long)k->max);
        } else if (k->def == NULL) {
            snprintf(def, sizeof(def), "unset");
        } else if (k->type == T_LIST || k->type == T_CIDRS) {
            const char *p;
            size_t used = (size_t)snprintf(def, sizeof(def), "`[");
            for (p = k->def; *p != '\0' && used + 5 < sizeof(def); p++) {
                def[used++] = *p;
                if (*p == ',')
                    def[used++] = ' ';
            }
            snprintf(def + used, sizeof(def) - used, "]`");
        } else {
            snprintf(def, sizeof(def), "`%s`", *k->def == '\0' ? "\"\"" : k->def);
        }
        fprintf(out, "| `%s` | `%s` | %s | %s | %s |\n", k->path, env, type, def, k->doc);
    }
    fprintf(out, "\n| Site key (`sites[]`) | Type | Default | Meaning |\n|---|---|---|---|\n");
    for (i = 0; oe_config_site_keys[i].path != NULL; i++) {
        const struct site_keydoc *d = &oe_config_site_keys[i];
        const keydef *k = oe_config_find_key(d->path);
        char type[128], def[160];
        if (d->type != NULL)
            snprintf(type, sizeof(type), "%s", d->type);
        else
            type_text(k, type, sizeof(type));
        if (d->def != NULL)
            snprintf(def, sizeof(def), "%s", d->def);
        else
            snprintf(def, sizeof(def), "top-level `%s`", d->path);
        fprintf(out, "| `%s` | %s | %s | %s |\n", d->path, type, def, d->doc != NULL ? d->doc : k->doc);
    }
}
