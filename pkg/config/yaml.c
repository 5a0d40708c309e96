/*
 * yaml.c — reading the configuration file with libyaml's event parser, so that every
 * value keeps its line number and hostile input (aliases, deep nesting, several
 * documents) is refused before it costs anything. Only maps of known keys, scalars and
 * lists of scalars are accepted, plus `sites`: a list of maps of the keys a site may set
 * (at most OE_CONFIG_MAX_SITES), each read into its own overrides for sites.c.
 */
#include "config/internal.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

/* Where values go: the top-level configuration, or the overrides of one site. */
typedef struct target {
    oe_config_t *cfg;
    size_t *line;     /* per key: the line that set it */
    site_src *site;   /* NULL at the top level */
    path_src *pathe;  /* a `paths` entry's access block: only access keys */
    const char *name; /* "" or "sites[2]." in front of key names in messages */
} target;

static int next_event(loader *ld, yaml_parser_t *p, yaml_event_t *ev)
{
    if (yaml_parser_parse(p, ev))
        return 0;
    if (p->error == YAML_READER_ERROR)
        return oe_config_fail(ld, "%s: not valid YAML text: %s at byte %zu", ld->file, p->problem ? p->problem : "?",
                              p->problem_offset);
    if (p->error == YAML_MEMORY_ERROR)
        return oe_config_fail(ld, "%s: out of memory reading YAML", ld->file);
    return oe_config_fail(ld, "%s:%zu: invalid YAML: %s%s%s", ld->file, p->problem_mark.line + 1,
                          p->problem ? p->problem : "syntax error", p->context ? " " : "",
                          p->context ? p->context : "");
}

static const char *node_kind(const yaml_event_t *ev)
{
    switch (ev->type) {
    case YAML_SCALAR_EVENT:
        return "a single value";
    case YAML_SEQUENCE_START_EVENT:
        return "a list";
    case YAML_MAPPING_START_EVENT:
        return "a mapping";
    case YAML_ALIAS_EVENT:
        return "an alias";
    default:
        return "something else";
    }
}

static const char *type_name(const keydef *k)
{
    switch (k->type) {
    case T_BOOL:
        return "true or false";
    case T_INT:
        return "a number";
    case T_DURATION:
        return "a duration";
    case T_SIZE:
        return "a size";
    case T_LIST:
    case T_CIDRS:
        return "a list";
    default:
        return "a single value";
    }
}

/* A plain empty, "~" or "null" scalar: the key is given without a value. */
static int is_null(const yaml_event_t *ev)
{
    const char *v = (const char *)ev->data.scalar.value;

    return ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
           (*v == '\0' || strcmp(v, "~") == 0 || strcasecmp(v, "null") == 0);
}

/* The scalar's text, or NULL when it holds a NUL byte ("\0" escape). */
static const char *scalar_text(const yaml_event_t *ev)
{
    const char *v = (const char *)ev->data.scalar.value;

    if (strlen(v) != ev->data.scalar.length)
        return NULL;
    return is_null(ev) ? "" : v;
}

/* Reads the items of a YAML list of scalars (the SEQUENCE_START is consumed) into items/lines
 * (MAX_LIST_ITEMS each, allocated by the caller). what names the key in messages. */
static int read_items(loader *ld, yaml_parser_t *p, const char *label, const char *what, char **items, size_t *lines,
                      size_t *count)
{
    size_t n = 0;

    *count = 0;
    for (;;) {
        yaml_event_t ev;
        const char *v;
        size_t line;
        if (next_event(ld, p, &ev) != 0)
            return -1;
        line = ev.start_mark.line + 1;
        if (ev.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&ev);
            return 0;
        }
        if (ev.type != YAML_SCALAR_EVENT) {
            oe_config_fail(ld, "%s:%zu: %s%s: list items must be single values, not %s", ld->file, line, label, what,
                           node_kind(&ev));
            yaml_event_delete(&ev);
            return -1;
        }
        v = scalar_text(&ev);
        if (v == NULL || *v == '\0' || n == MAX_LIST_ITEMS) {
            oe_config_fail(ld, "%s:%zu: %s%s: %s", ld->file, line, label, what,
                           v == NULL    ? "NUL characters are not allowed"
                           : *v == '\0' ? "empty list item"
                                        : "too many items");
            yaml_event_delete(&ev);
            return -1;
        }
        items[n] = strdup(v);
        lines[n] = line;
        yaml_event_delete(&ev);
        if (items[n] == NULL)
            return oe_config_fail(ld, "out of memory");
        *count = ++n;
    }
}

/* Reads a YAML list into the key (the SEQUENCE_START is consumed). */
static int parse_sequence(loader *ld, yaml_parser_t *p, const target *t, const keydef *k, size_t seqline)
{
    char **items = NULL, msg[OE_CONFIG_ERR_MAX];
    size_t *lines = NULL, n = 0, i, bad;
    int rc = -1;

    if ((items = calloc(MAX_LIST_ITEMS, sizeof(*items))) == NULL ||
        (lines = calloc(MAX_LIST_ITEMS, sizeof(*lines))) == NULL) {
        oe_config_fail(ld, "out of memory");
        goto out;
    }
    if (read_items(ld, p, t->name, k->path, items, lines, &n) != 0)
        goto out;
    if (oe_config_set_list(t->cfg, k, items, n, msg, sizeof(msg), &bad) != 0) {
        oe_config_fail(ld, "%s:%zu: %s%s: %s", ld->file, bad < n ? lines[bad] : seqline, t->name, k->path, msg);
        goto out;
    }
    rc = 0;
out:
    if (items != NULL)
        for (i = 0; i < n; i++)
            free(items[i]);
    free(items);
    free(lines);
    return rc;
}

static int parse_value(loader *ld, yaml_parser_t *p, const target *t, const keydef *k, size_t keyline)
{
    size_t ki = (size_t)(k - oe_config_keys), line, bad;
    char msg[OE_CONFIG_ERR_MAX];
    const char *v;
    yaml_event_t ev;
    int rc;

    if (t->line[ki] != 0)
        return oe_config_fail(ld, "%s:%zu: %s%s: duplicate key (first given on line %zu)", ld->file, keyline, t->name,
                              k->path, t->line[ki]);
    if (next_event(ld, p, &ev) != 0)
        return -1;
    line = ev.start_mark.line + 1;
    t->line[ki] = line;
    if (ev.type == YAML_SEQUENCE_START_EVENT && (k->type == T_LIST || k->type == T_CIDRS)) {
        yaml_event_delete(&ev);
        return parse_sequence(ld, p, t, k, line);
    }
    if (ev.type == YAML_ALIAS_EVENT) {
        yaml_event_delete(&ev);
        return oe_config_fail(ld, "%s:%zu: %s%s: YAML aliases are not supported", ld->file, line, t->name, k->path);
    }
    if (ev.type != YAML_SCALAR_EVENT) {
        oe_config_fail(ld, "%s:%zu: %s%s: expected %s, not %s", ld->file, line, t->name, k->path, type_name(k),
                       node_kind(&ev));
        yaml_event_delete(&ev);
        return -1;
    }
    if ((v = scalar_text(&ev)) == NULL) {
        yaml_event_delete(&ev);
        return oe_config_fail(ld, "%s:%zu: %s%s: NUL characters are not allowed", ld->file, line, t->name, k->path);
    }
    rc = oe_config_set_scalar(t->cfg, k, v, msg, sizeof(msg), &bad);
    yaml_event_delete(&ev);
    if (rc != 0)
        return oe_config_fail(ld, "%s:%zu: %s%s: %s", ld->file, line, t->name, k->path, msg);
    return 0;
}

/* Splits "a, b" into trimmed, non-empty items appended to l (the scalar form of a list). */
static int split_into(oe_strlist_t *l, size_t *lines, size_t line, const char *v)
{
    while (*v != '\0') {
        size_t n = strcspn(v, ","), b = 0, e = n;
        while (b < e && (v[b] == ' ' || v[b] == '\t'))
            b++;
        while (e > b && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        if (e > b) {
            if (l->count == MAX_LIST_ITEMS)
                return -2;
            if ((l->items[l->count] = strndup(v + b, e - b)) == NULL)
                return -1;
            lines[l->count++] = line;
        }
        v += n + (v[n] == ',');
    }
    return 0;
}

/* A key only a site has: name, balance, hash_key (single values) or upstreams (a list). */
static int parse_site_own(loader *ld, yaml_parser_t *p, const target *t, const char *path, size_t keyline)
{
    site_src *s = t->site;
    int is_list = strcmp(path, "upstreams") == 0;
    char **str = strcmp(path, "name") == 0 ? &s->name : strcmp(path, "balance") == 0 ? &s->balance : &s->hash_key;
    size_t *at = is_list                        ? &s->upstreams_line
                 : strcmp(path, "name") == 0    ? &s->name_line
                 : strcmp(path, "balance") == 0 ? &s->balance_line
                                                : &s->hash_key_line;
    yaml_event_t ev;
    size_t line;
    const char *v;
    int rc = 0;

    if (*at != 0)
        return oe_config_fail(ld, "%s:%zu: %s%s: duplicate key (first given on line %zu)", ld->file, keyline, t->name,
                              path, *at);
    if (next_event(ld, p, &ev) != 0)
        return -1;
    line = ev.start_mark.line + 1;
    *at = line;
    if (is_list && (s->upstreams.items = calloc(MAX_LIST_ITEMS, sizeof(char *))) == NULL) {
        yaml_event_delete(&ev);
        return oe_config_fail(ld, "out of memory");
    }
    if (is_list && (s->upstream_lines = calloc(MAX_LIST_ITEMS, sizeof(size_t))) == NULL) {
        yaml_event_delete(&ev);
        return oe_config_fail(ld, "out of memory");
    }
    if (is_list && ev.type == YAML_SEQUENCE_START_EVENT) {
        yaml_event_delete(&ev);
        return read_items(ld, p, t->name, path, s->upstreams.items, s->upstream_lines, &s->upstreams.count);
    }
    if (ev.type != YAML_SCALAR_EVENT) {
        oe_config_fail(ld, "%s:%zu: %s%s: expected %s, not %s", ld->file, line, t->name, path,
                       is_list ? "a list" : "a single value", node_kind(&ev));
        yaml_event_delete(&ev);
        return -1;
    }
    if ((v = scalar_text(&ev)) == NULL || oe_config_bad_text(v) != NULL) {
        oe_config_fail(ld, "%s:%zu: %s%s: %s", ld->file, line, t->name, path,
                       v == NULL ? "NUL characters are not allowed" : oe_config_bad_text(v));
        yaml_event_delete(&ev);
        return -1;
    }
    if (is_list)
        rc = split_into(&s->upstreams, s->upstream_lines, line, v);
    else if ((*str = strdup(v)) == NULL)
        rc = -1;
    yaml_event_delete(&ev);
    if (rc == -2)
        return oe_config_fail(ld, "%s:%zu: %s%s: too many items", ld->file, line, t->name, path);
    return rc == 0 ? 0 : oe_config_fail(ld, "out of memory");
}

static int parse_map(loader *ld, yaml_parser_t *p, const target *t, const char *prefix, int depth);

/* Reads `sites`: a list of mappings, each into a new site_src. */
static int parse_sites(loader *ld, yaml_parser_t *p, size_t keyline, int depth)
{
    yaml_event_t ev;
    size_t line;

    if (ld->sites_line != 0)
        return oe_config_fail(ld, "%s:%zu: sites: duplicate key (first given on line %zu)", ld->file, keyline,
                              ld->sites_line);
    if (next_event(ld, p, &ev) != 0)
        return -1;
    line = ev.start_mark.line + 1;
    ld->sites_line = line;
    if (ev.type != YAML_SEQUENCE_START_EVENT) {
        oe_config_fail(ld, "%s:%zu: sites: expected a list of sites (- name: ...), not %s", ld->file, line,
                       ev.type == YAML_SCALAR_EVENT && is_null(&ev) ? "nothing" : node_kind(&ev));
        yaml_event_delete(&ev);
        return -1;
    }
    yaml_event_delete(&ev);
    if ((ld->sites = calloc(OE_CONFIG_MAX_SITES, sizeof(*ld->sites))) == NULL)
        return oe_config_fail(ld, "out of memory");
    for (;;) {
        char label[32];
        target t;
        site_src *s;
        if (next_event(ld, p, &ev) != 0)
            return -1;
        line = ev.start_mark.line + 1;
        if (ev.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&ev);
            break;
        }
        snprintf(label, sizeof(label), "sites[%zu]", ld->nsites);
        if (ev.type != YAML_MAPPING_START_EVENT || ld->nsites == OE_CONFIG_MAX_SITES) {
            if (ev.type != YAML_MAPPING_START_EVENT)
                oe_config_fail(ld, "%s:%zu: %s: expected a mapping of keys (name, domains, upstreams, ...), not %s",
                               ld->file, line, label, node_kind(&ev));
            else
                oe_config_fail(ld, "%s:%zu: sites: too many sites (at most %d)", ld->file, line, OE_CONFIG_MAX_SITES);
            yaml_event_delete(&ev);
            return -1;
        }
        yaml_event_delete(&ev);
        s = &ld->sites[ld->nsites++];
        s->at = line;
        if ((s->over = calloc(1, sizeof(*s->over))) == NULL)
            return oe_config_fail(ld, "out of memory");
        strcat(label, ".");
        t = (target){.cfg = s->over, .line = s->line, .site = s, .name = label};
        if (parse_map(ld, p, &t, "", depth + 1) != 0)
            return -1;
    }
    if (ld->nsites == 0)
        return oe_config_fail(ld,
                              "%s:%zu: sites: the list is empty (list at least one site, or remove sites and use "
                              "domains + upstream for one)",
                              ld->file, ld->sites_line);
    return 0;
}

/* Whether path is a key a paths entry's access block may set. */
static int is_path_access_key(const char *path)
{
    size_t i;

    for (i = 0; i < OE_CONFIG_ACCESS_KEYS; i++)
        if (strcmp(oe_config_access_key_paths[i], path) == 0)
            return 1;
    return 0;
}

/* One `paths` entry: {prefix: /x, access: {...}} (the MAPPING_START is consumed). */
static int parse_path_entry(loader *ld, yaml_parser_t *p, path_src *e, const char *label, int depth)
{
    for (;;) {
        yaml_event_t ev;
        const char *key;
        size_t line;
        int is_prefix, is_access;

        if (next_event(ld, p, &ev) != 0)
            return -1;
        line = ev.start_mark.line + 1;
        if (ev.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&ev);
            break;
        }
        key = ev.type == YAML_SCALAR_EVENT ? scalar_text(&ev) : NULL;
        is_prefix = key != NULL && strcmp(key, "prefix") == 0;
        is_access = key != NULL && strcmp(key, "access") == 0;
        yaml_event_delete(&ev);
        if (!is_prefix && !is_access)
            return oe_config_fail(ld, "%s:%zu: %s: unknown key (a paths entry has prefix and access)", ld->file, line,
                                  label);
        if ((is_prefix && e->prefix_line != 0) || (is_access && e->over != NULL))
            return oe_config_fail(ld, "%s:%zu: %s.%s: duplicate key", ld->file, line, label,
                                  is_prefix ? "prefix" : "access");
        if (next_event(ld, p, &ev) != 0)
            return -1;
        line = ev.start_mark.line + 1;
        if (is_prefix) {
            const char *v = ev.type == YAML_SCALAR_EVENT ? scalar_text(&ev) : NULL;
            const char *why = v == NULL               ? "expected a path such as /admin"
                              : oe_config_bad_text(v) ? oe_config_bad_text(v)
                              : v[0] != '/'           ? "must start with '/'"
                              : strlen(v) > 1024      ? "longer than 1024 characters"
                              : strpbrk(v, "?# ")     ? "a path prefix has no query, fragment or spaces"
                                                      : NULL;
            if (why != NULL) {
                oe_config_fail(ld, "%s:%zu: %s.prefix: \"%.64s\": %s", ld->file, line, label, v != NULL ? v : "", why);
                yaml_event_delete(&ev);
                return -1;
            }
            e->prefix = strdup(v);
            e->prefix_line = line;
            yaml_event_delete(&ev);
            if (e->prefix == NULL)
                return oe_config_fail(ld, "out of memory");
            /* "/admin/" and "/admin" are the same prefix */
            for (size_t n = strlen(e->prefix); n > 1 && e->prefix[n - 1] == '/'; n--)
                e->prefix[n - 1] = '\0';
            continue;
        }
        if ((e->over = calloc(1, sizeof(*e->over))) == NULL) {
            yaml_event_delete(&ev);
            return oe_config_fail(ld, "out of memory");
        }
        if (ev.type == YAML_SCALAR_EVENT && is_null(&ev)) {
            yaml_event_delete(&ev);
            continue;
        }
        if (ev.type != YAML_MAPPING_START_EVENT) {
            oe_config_fail(ld,
                           "%s:%zu: %s.access: expected a mapping of keys (allow, deny, basic_auth, rate, ...), "
                           "not %s",
                           ld->file, line, label, node_kind(&ev));
            yaml_event_delete(&ev);
            return -1;
        }
        yaml_event_delete(&ev);
        {
            char name[112];
            target t;
            snprintf(name, sizeof(name), "%s.", label);
            t = (target){.cfg = e->over, .line = e->line, .site = NULL, .pathe = e, .name = name};
            if (parse_map(ld, p, &t, "access", depth + 1) != 0)
                return -1;
        }
    }
    if (e->prefix == NULL)
        return oe_config_fail(ld, "%s:%zu: %s: no prefix (add prefix: /some/path)", ld->file, e->at, label);
    return 0;
}

/* Reads a `paths` list (the key is consumed): a list of {prefix, access} mappings. where is
 * "" at the top level, "sites[1]." in a site. */
static int parse_paths(loader *ld, yaml_parser_t *p, paths_src *dst, const char *where, size_t keyline, int depth)
{
    yaml_event_t ev;
    size_t line;

    if (dst->line != 0)
        return oe_config_fail(ld, "%s:%zu: %spaths: duplicate key (first given on line %zu)", ld->file, keyline, where,
                              dst->line);
    if (next_event(ld, p, &ev) != 0)
        return -1;
    line = ev.start_mark.line + 1;
    dst->line = line;
    if (ev.type != YAML_SEQUENCE_START_EVENT) {
        oe_config_fail(ld, "%s:%zu: %spaths: expected a list of {prefix: /path, access: {...}}, not %s", ld->file, line,
                       where, node_kind(&ev));
        yaml_event_delete(&ev);
        return -1;
    }
    yaml_event_delete(&ev);
    if ((dst->items = calloc(OE_CONFIG_MAX_PATHS, sizeof(*dst->items))) == NULL)
        return oe_config_fail(ld, "out of memory");
    for (;;) {
        char label[96];
        path_src *e;
        if (next_event(ld, p, &ev) != 0)
            return -1;
        line = ev.start_mark.line + 1;
        if (ev.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&ev);
            return 0;
        }
        snprintf(label, sizeof(label), "%spaths[%zu]", where, dst->count);
        if (ev.type != YAML_MAPPING_START_EVENT || dst->count == OE_CONFIG_MAX_PATHS) {
            if (ev.type != YAML_MAPPING_START_EVENT)
                oe_config_fail(ld, "%s:%zu: %s: expected a mapping {prefix: /path, access: {...}}, not %s", ld->file,
                               line, label, node_kind(&ev));
            else
                oe_config_fail(ld, "%s:%zu: %spaths: too many entries (at most %d)", ld->file, line, where,
                               OE_CONFIG_MAX_PATHS);
            yaml_event_delete(&ev);
            return -1;
        }
        yaml_event_delete(&ev);
        e = &dst->items[dst->count++];
        e->at = line;
        if (parse_path_entry(ld, p, e, label, depth + 1) != 0)
            return -1;
    }
}

/* Reads the keys of a mapping under prefix (the MAPPING_START is consumed). */
static int parse_map(loader *ld, yaml_parser_t *p, const target *t, const char *prefix, int depth)
{
    for (;;) {
        char path[MAX_PATH_LEN];
        const keydef *k;
        yaml_event_t ev;
        size_t line;
        int n = 0, site_key = 0;

        if (next_event(ld, p, &ev) != 0)
            return -1;
        line = ev.start_mark.line + 1;
        if (ev.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&ev);
            return 0;
        }
        if (ev.type == YAML_SCALAR_EVENT && scalar_text(&ev) != NULL && *scalar_text(&ev) != '\0' &&
            oe_config_bad_text(scalar_text(&ev)) == NULL)
            n = snprintf(path, sizeof(path), "%s%s%s", prefix, *prefix ? "." : "", (const char *)ev.data.scalar.value);
        else
            n = -1;
        if (n < 0 || (size_t)n >= sizeof(path)) {
            oe_config_fail(ld, "%s:%zu: %s%s%sinvalid key (keys are names like listen or https)", ld->file, line,
                           t->name, prefix, *prefix || *t->name ? ": " : "");
            yaml_event_delete(&ev);
            return -1;
        }
        yaml_event_delete(&ev);

        if (t->site == NULL && t->pathe == NULL && strcmp(path, "sites") == 0) {
            if (parse_sites(ld, p, line, depth) != 0)
                return -1;
            continue;
        }
        if (t->pathe == NULL && strcmp(path, "paths") == 0) {
            if (parse_paths(ld, p, t->site != NULL ? &t->site->paths : &ld->paths, t->name, line, depth) != 0)
                return -1;
            continue;
        }
        if (t->pathe != NULL && !is_path_access_key(path) && !oe_config_is_group(path))
            return oe_config_fail(ld, "%s:%zu: %s%s: %s", ld->file, line, t->name, path,
                                  oe_config_find_key(path) != NULL
                                      ? "not a per-path key (set it at the top level)"
                                      : "unknown key (an access block takes allow, deny, basic_auth, pass_credentials, "
                                        "rate, websocket_rate, max_connections, max_websockets)");
        if (t->site != NULL) {
            site_key = oe_config_is_site_key(path);
            if (site_key == 2) {
                if (parse_site_own(ld, p, t, path, line) != 0)
                    return -1;
                continue;
            }
            if (site_key == 0 && oe_config_find_key(path) != NULL)
                return oe_config_fail(ld, "%s:%zu: %s%s: not a per-site key (set it at the top level, for every site)",
                                      ld->file, line, t->name, path);
        }
        if ((k = oe_config_find_key(path)) != NULL) {
            if (parse_value(ld, p, t, k, line) != 0)
                return -1;
            continue;
        }
        if (!oe_config_is_group(path))
            return oe_config_fail(ld, "%s:%zu: %s%s: unknown key", ld->file, line, t->name, path);
        if (next_event(ld, p, &ev) != 0)
            return -1;
        line = ev.start_mark.line + 1;
        if (ev.type == YAML_MAPPING_START_EVENT && depth < MAX_DEPTH) {
            yaml_event_delete(&ev);
            if (parse_map(ld, p, t, path, depth + 1) != 0)
                return -1;
        } else if (ev.type == YAML_SCALAR_EVENT && is_null(&ev)) {
            yaml_event_delete(&ev);
        } else {
            oe_config_fail(ld, "%s:%zu: %s%s: expected a mapping of keys, not %s", ld->file, line, t->name, path,
                           node_kind(&ev));
            yaml_event_delete(&ev);
            return -1;
        }
    }
}

static int parse_yaml(loader *ld, const char *buf, size_t len)
{
    yaml_parser_t p;
    yaml_event_t ev;
    int rc = -1, docs = 0;

    if (!yaml_parser_initialize(&p))
        return oe_config_fail(ld, "%s: out of memory", ld->file);
    yaml_parser_set_input_string(&p, (const unsigned char *)buf, len);
    for (;;) {
        if (next_event(ld, &p, &ev) != 0)
            goto out;
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            yaml_event_delete(&ev);
            rc = 0;
            goto out;
        case YAML_DOCUMENT_START_EVENT:
            if (++docs > 1) {
                oe_config_fail(ld, "%s:%zu: only one YAML document is allowed", ld->file, ev.start_mark.line + 1);
                yaml_event_delete(&ev);
                goto out;
            }
            break;
        case YAML_MAPPING_START_EVENT: {
            target top = {.cfg = ld->cfg, .line = ld->line, .site = NULL, .name = ""};
            yaml_event_delete(&ev);
            if (parse_map(ld, &p, &top, "", 1) != 0)
                goto out;
            continue;
        }
        case YAML_SCALAR_EVENT:
            if (is_null(&ev)) /* an empty document */
                break;
            /* fall through */
        case YAML_SEQUENCE_START_EVENT:
        case YAML_ALIAS_EVENT:
            oe_config_fail(ld,
                           "%s:%zu: the top level must be a mapping of keys (like \"upstream: http://...\"), not %s",
                           ld->file, ev.start_mark.line + 1, node_kind(&ev));
            yaml_event_delete(&ev);
            goto out;
        default: /* stream start, document end */
            break;
        }
        yaml_event_delete(&ev);
    }
out:
    yaml_parser_delete(&p);
    return rc;
}

int oe_config_load_file(loader *ld, const char *path)
{
    char why[256], *buf;
    size_t len;
    int rc;

    if ((buf = oe_config_read_file(path, &len, why, sizeof(why))) == NULL)
        return oe_config_fail(ld, "%s: cannot read the configuration file: %s", path, why);
    if ((ld->cfg->source = strdup(path)) == NULL) {
        free(buf);
        return oe_config_fail(ld, "out of memory");
    }
    ld->file = ld->cfg->source;
    rc = parse_yaml(ld, buf, len);
    free(buf);
    return rc;
}
