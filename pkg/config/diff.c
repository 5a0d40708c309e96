/*
 * config/diff — what a new configuration changes that a reload cannot apply in place
 * (listeners, threads, ...) and whether it changes what ACME manages. Read by main's
 * reload; pure functions of two loaded configurations.
 */
#include "config/config.h"

#include <stdio.h>
#include <string.h>

static int str_eq(const char *a, const char *b)
{
    return (a == NULL || b == NULL) ? a == b : strcmp(a, b) == 0;
}

static int list_eq(const oe_strlist_t *a, const oe_strlist_t *b)
{
    if (a->count != b->count)
        return 0;
    for (size_t i = 0; i < a->count; i++)
        if (!str_eq(a->items[i], b->items[i]))
            return 0;
    return 1;
}

/* Appends key to out (comma-separated); keeps out NUL-terminated when it is full. */
static void add_key(char *out, size_t len, size_t *n, const char *key)
{
    size_t used = strlen(out);
    if (used + 1 < len)
        snprintf(out + used, len - used, "%s%s", used > 0 ? "," : "", key);
    (*n)++;
}

size_t oe_config_upgrade_keys(const oe_config_t *a, const oe_config_t *b, char *out, size_t len)
{
    size_t n = 0;
    if (len > 0)
        out[0] = '\0';
    if (!str_eq(a->listen.https, b->listen.https))
        add_key(out, len, &n, "listen.https");
    if (!str_eq(a->listen.http, b->listen.http))
        add_key(out, len, &n, "listen.http");
    if (!str_eq(a->listen.admin, b->listen.admin))
        add_key(out, len, &n, "listen.admin");
    if (a->threads != b->threads)
        add_key(out, len, &n, "threads");
    if (!str_eq(a->user, b->user))
        add_key(out, len, &n, "user");
    if (a->tls.session_lifetime_ms != b->tls.session_lifetime_ms)
        add_key(out, len, &n, "tls.session_lifetime");
    if (a->client.request_timeout_ms != b->client.request_timeout_ms)
        add_key(out, len, &n, "client.request_timeout");
    if (a->client.idle_timeout_ms != b->client.idle_timeout_ms)
        add_key(out, len, &n, "client.idle_timeout");
    if (a->client.handshake_timeout_ms != b->client.handshake_timeout_ms)
        add_key(out, len, &n, "client.handshake_timeout");
    if (a->cache.max_size != b->cache.max_size)
        add_key(out, len, &n, "cache.max_size");
    if (a->cache.max_object != b->cache.max_object)
        add_key(out, len, &n, "cache.max_object");
    if (!str_eq(a->admin.token_file, b->admin.token_file)) /* the file named at start is re-read */
        add_key(out, len, &n, "admin.token_file");
    /* cluster mode: the Redis connection, the replica's name and its keys are set up at start */
    if (!str_eq(a->cluster.redis, b->cluster.redis))
        add_key(out, len, &n, "cluster.redis");
    if (!str_eq(a->cluster.key_prefix, b->cluster.key_prefix))
        add_key(out, len, &n, "cluster.key_prefix");
    if (a->cluster.lock_ttl_ms != b->cluster.lock_ttl_ms)
        add_key(out, len, &n, "cluster.lock_ttl");
    if (!str_eq(a->cluster.node_id, b->cluster.node_id))
        add_key(out, len, &n, "cluster.node_id");
    if (!str_eq(a->cluster.encryption_key_file, b->cluster.encryption_key_file))
        add_key(out, len, &n, "cluster.encryption_key_file");
    return n;
}

int oe_config_acme_same(const oe_config_t *a, const oe_config_t *b)
{
    const __typeof__(a->acme) *x = &a->acme, *y = &b->acme;
    if (oe_config_acme_enabled(a) != oe_config_acme_enabled(b) || !str_eq(a->state_dir, b->state_dir) ||
        !str_eq(x->directory, y->directory) || !str_eq(x->email, y->email) || !str_eq(x->ca_file, y->ca_file) ||
        !str_eq(x->eab_kid, y->eab_kid) || !str_eq(x->eab_hmac_key, y->eab_hmac_key) ||
        !list_eq(&x->challenges, &y->challenges) || x->key_type != y->key_type ||
        x->renew_before_ms != y->renew_before_ms || x->retry_base_ms != y->retry_base_ms ||
        !str_eq(x->preferred_chain, y->preferred_chain) || x->dns.provider != y->dns.provider ||
        !str_eq(x->dns.rfc2136.server, y->dns.rfc2136.server) ||
        !str_eq(x->dns.rfc2136.key_name, y->dns.rfc2136.key_name) ||
        x->dns.rfc2136.key_algorithm != y->dns.rfc2136.key_algorithm ||
        !str_eq(x->dns.rfc2136.key_secret, y->dns.rfc2136.key_secret) ||
        !str_eq(x->dns.exec.command, y->dns.exec.command) || !list_eq(&x->dns.resolvers, &y->dns.resolvers) ||
        x->dns_propagation_timeout_ms != y->dns_propagation_timeout_ms || a->sites_count != b->sites_count)
        return 0;
    for (size_t i = 0; i < a->sites_count; i++) {
        const oe_site_t *s = &a->sites[i], *t = &b->sites[i];
        if (!str_eq(s->name, t->name) || !list_eq(&s->domains, &t->domains) ||
            oe_config_site_acme(a, i) != oe_config_site_acme(b, i))
            return 0;
    }
    return 1;
}
