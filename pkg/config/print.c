/*
 * print.c — writing the effective configuration as YAML (libyaml's emitter, secrets
 * redacted, durations and sizes in readable units) and the Markdown reference table.
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
    ok = emit(&em, &ev, ok && yaml_mapping_end_event_initialize(&ev));
    ok = emit(&em, &ev, ok && yaml_document_end_event_initialize(&ev, 1));
    if (emit(&em, &ev, ok && yaml_stream_end_event_initialize(&ev)))
        yaml_emitter_flush(&em);
    yaml_emitter_delete(&em);
}

/* One Markdown table row per key, generated from oe_config_keys[] (docs/configuration.md holds the same rows). */
void oe_config_print_reference(FILE *out)
{
    size_t i;

    fprintf(out, "| Key | Environment variable | Type | Default | Meaning |\n|---|---|---|---|---|\n");
    for (i = 0; i < OE_CONFIG_NKEYS; i++) {
        const keydef *k = &oe_config_keys[i];
        char env[96], type[128], def[128];
        oe_config_env_name(k, env, sizeof(env));
        switch (k->type) {
        case T_STR:
            snprintf(type, sizeof(type), "%s",
                     k->flags & F_ADDRESS  ? "address"
                     : k->flags & F_SECRET ? "string (secret)"
                                           : "string");
            break;
        case T_BOOL:
            snprintf(type, sizeof(type), "bool");
            break;
        case T_INT:
            snprintf(type, sizeof(type), "int");
            break;
        case T_DURATION:
            snprintf(type, sizeof(type), "duration");
            break;
        case T_SIZE:
            snprintf(type, sizeof(type), "size");
            break;
        case T_LIST:
            snprintf(type, sizeof(type), "list");
            break;
        case T_CIDRS:
            snprintf(type, sizeof(type), "CIDR list");
            break;
        case T_ENUM: {
            const struct enumval *e;
            size_t used = 0;
            type[0] = '\0';
            for (e = k->enums; e->name != NULL && used < sizeof(type); e++)
                if (strcmp(oe_config_enum_name(k, e->value), e->name) == 0)
                    used += (size_t)snprintf(type + used, sizeof(type) - used, "%s`%s`", used ? " \\| " : "", e->name);
            break;
        }
        }
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
}
