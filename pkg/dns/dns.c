/*
 * dns.c — lookups, RFC 2136 updates and the propagation check (see dns.h). Every DNS
 * message is built, signed (TSIG), sent and parsed by libldns; this file only decides
 * what to ask and reads the answers.
 */
#define _GNU_SOURCE
#include "dns/dns.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "dns/internal.h"
#include "dns/ldns_api.h" /* libldns, loaded by oe_dns_new(): its calls below go through a table */
#include "log/log.h"
#include "util/util.h"

#define CNAME_HOPS_MAX 8
#define UPDATE_TTL     60
#define LOOKUP_ADDRS   4
#define POLL_FIRST_MS  100
#define POLL_MAX_MS    2000
#define CHECK_TIMEOUT  1000 /* one propagation query: a slow server is asked again next round */
#define DEFAULT_QUERY  4000

/* TSIG error field values (RFC 8945 §5.3; ldns names none of them) */
enum { TSIG_BADSIG = 16, TSIG_BADKEY = 17, TSIG_BADTIME = 18 };

struct addr {
    char host[64]; /* numeric */
    uint16_t port;
};

struct oe_dns {
    enum oe_dns_provider provider;
    char *server; /* rfc2136: as configured */
    char *key_name;
    char *secret;
    char alg[32]; /* ldns' spelling: "hmac-sha256." */
    char *command;
    struct addr resolvers[OE_DNS_SERVERS_MAX];
    size_t resolver_count;
    int check_at_resolvers;
    uint16_t ns_port;
    uint64_t timeout_ms, query_timeout_ms;
    const int *stop;
    int cleanup_failed_stopping; /* a cleanup failed while ott-edge stops: skip the rest */
};

const char *oe_dns_provider_name(const oe_dns_t *d)
{
    return d->provider == OE_DNS_RFC2136 ? "rfc2136" : d->provider == OE_DNS_EXEC ? "exec" : "none";
}

void oe_dns_opts_from_config(const oe_config_t *cfg, oe_dns_opts_t *o)
{
    memset(o, 0, sizeof(*o));
    o->provider = cfg->acme.dns.provider;
    o->server = cfg->acme.dns.rfc2136.server;
    o->key_name = cfg->acme.dns.rfc2136.key_name;
    o->key_algorithm = cfg->acme.dns.rfc2136.key_algorithm == OE_TSIG_HMAC_SHA512 ? "hmac-sha512" : "hmac-sha256";
    o->key_secret = cfg->acme.dns.rfc2136.key_secret;
    o->command = cfg->acme.dns.exec.command;
    o->resolvers = cfg->acme.dns.resolvers.items;
    o->resolver_count = cfg->acme.dns.resolvers.count;
    o->check_at_resolvers = cfg->acme.dns.resolvers.count > 0;
    o->ns_port = 53;
    o->timeout_ms = cfg->acme.dns_propagation_timeout_ms;
    o->query_timeout_ms = DEFAULT_QUERY;
}

int oe_dns_check_config(const oe_config_t *cfg, char *err, size_t errlen)
{
    if (!oe_config_challenge_on(cfg, "dns-01") || !oe_config_acme_enabled(cfg))
        return 0;
    char why[400];
    if (oe_dns_ldns_load(why, sizeof(why)) != 0) {
        snprintf(err, errlen, "config: acme.challenges: dns-01 needs libldns: %s", why);
        return -1;
    }
    return 0;
}

static char *dup_opt(const char *s, int *fail)
{
    char *c = s ? strdup(s) : NULL;
    if (s && !c)
        *fail = 1;
    return c;
}

oe_dns_t *oe_dns_new(const oe_dns_opts_t *o, char *err, size_t errlen)
{
    if (o->provider != OE_DNS_RFC2136 && o->provider != OE_DNS_EXEC) {
        snprintf(err, errlen, "dns-01 needs acme.dns.provider (rfc2136 or exec)");
        return NULL;
    }
    if (o->provider == OE_DNS_RFC2136 && (!o->server || !*o->server)) {
        snprintf(err, errlen, "acme.dns.provider rfc2136 needs acme.dns.rfc2136.server");
        return NULL;
    }
    if (o->provider == OE_DNS_EXEC && (!o->command || !*o->command)) {
        snprintf(err, errlen, "acme.dns.provider exec needs acme.dns.exec.command");
        return NULL;
    }
    if (!!o->key_name != !!o->key_secret) {
        snprintf(err, errlen, "acme.dns.rfc2136.key_name and acme.dns.rfc2136.key_secret must be given together");
        return NULL;
    }
    if (o->resolver_count > OE_DNS_SERVERS_MAX) {
        snprintf(err, errlen, "acme.dns.resolvers: at most %d servers", OE_DNS_SERVERS_MAX);
        return NULL;
    }
    /* every provider needs libldns: the lookups of the zone and the propagation checks */
    char why[400];
    if (oe_dns_ldns_load(why, sizeof(why)) != 0) {
        snprintf(err, errlen, "dns-01: %s", why);
        return NULL;
    }
    oe_dns_t *d = calloc(1, sizeof(*d));
    if (!d) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    int fail = 0;
    d->provider = o->provider;
    d->server = dup_opt(o->server, &fail);
    d->secret = dup_opt(o->key_secret, &fail);
    d->command = dup_opt(o->command, &fail);
    if (o->key_name) {
        size_t n = strlen(o->key_name);
        if (asprintf(&d->key_name, "%s%s", o->key_name, n && o->key_name[n - 1] == '.' ? "" : ".") < 0) {
            d->key_name = NULL;
            fail = 1;
        }
    }
    snprintf(d->alg, sizeof(d->alg), "%s.", o->key_algorithm ? o->key_algorithm : "hmac-sha256");
    if (strcmp(d->alg, "hmac-sha256.") != 0 && strcmp(d->alg, "hmac-sha512.") != 0) {
        snprintf(err, errlen, "unsupported TSIG algorithm \"%s\" (use hmac-sha256 or hmac-sha512)", o->key_algorithm);
        oe_dns_free(d);
        return NULL;
    }
    for (size_t i = 0; i < o->resolver_count; i++) {
        char host[256];
        uint16_t port;
        unsigned char bin[16];
        if (oe_config_split_hostport_opt(o->resolvers[i], host, sizeof(host), &port, 53) != 0 ||
            strlen(host) >= sizeof(d->resolvers[i].host) ||
            (inet_pton(AF_INET, host, bin) != 1 && inet_pton(AF_INET6, host, bin) != 1)) {
            snprintf(err, errlen, "acme.dns.resolvers: \"%.64s\" is not an IP address with an optional port",
                     o->resolvers[i]);
            oe_dns_free(d);
            return NULL;
        }
        snprintf(d->resolvers[i].host, sizeof(d->resolvers[i].host), "%s", host);
        d->resolvers[i].port = port;
    }
    d->resolver_count = o->resolver_count;
    d->check_at_resolvers = o->check_at_resolvers && o->resolver_count > 0;
    d->ns_port = o->ns_port ? o->ns_port : 53;
    d->timeout_ms = o->timeout_ms ? o->timeout_ms : 120000;
    d->query_timeout_ms = o->query_timeout_ms ? o->query_timeout_ms : DEFAULT_QUERY;
    d->stop = o->stop;
    if (fail) {
        snprintf(err, errlen, "out of memory");
        oe_dns_free(d);
        return NULL;
    }
    return d;
}

void oe_dns_free(oe_dns_t *d)
{
    if (!d)
        return;
    if (d->secret)
        memset(d->secret, 0, strlen(d->secret));
    free(d->secret);
    free(d->server);
    free(d->key_name);
    free(d->command);
    free(d);
}

/* ---- asking one server ------------------------------------------------------------ */

/* "NOERROR", "REFUSED", ... (ldns' table of RCODE mnemonics). */
static const char *rcode_name(ldns_pkt_rcode rc)
{
    const ldns_lookup_table *t = ldns_lookup_by_id(ldns_rcodes, (int)rc);
    return t && t->name ? t->name : "an unknown code";
}

/* "192.0.2.1:53", "[2001:db8::1]:53", or "the system resolver" for host NULL. */
static void server_label(const char *host, uint16_t port, char *out, size_t cap)
{
    if (!host)
        snprintf(out, cap, "the system resolver (/etc/resolv.conf)");
    else if (strchr(host, ':'))
        snprintf(out, cap, "[%s]:%u", host, (unsigned)port);
    else
        snprintf(out, cap, "%s:%u", host, (unsigned)port);
}

/* A resolver for one numeric address, or the system's (host NULL). */
static ldns_resolver *resolver_for(const char *host, uint16_t port, uint64_t timeout_ms, int rd, char *err,
                                   size_t errlen)
{
    ldns_resolver *r = NULL;
    if (!host) {
        if (ldns_resolver_new_frm_file(&r, NULL) != LDNS_STATUS_OK || !r) {
            snprintf(err, errlen, "cannot read the system resolver's /etc/resolv.conf (or set acme.dns.resolvers)");
            return NULL;
        }
    } else {
        r = ldns_resolver_new();
        ldns_rdf *a = r ? ldns_rdf_new_frm_str(strchr(host, ':') ? LDNS_RDF_TYPE_AAAA : LDNS_RDF_TYPE_A, host) : NULL;
        if (!a || ldns_resolver_push_nameserver(r, a) != LDNS_STATUS_OK) {
            ldns_rdf_deep_free(a);
            if (r)
                ldns_resolver_deep_free(r);
            snprintf(err, errlen, "bad DNS server address \"%s\"", host);
            return NULL;
        }
        ldns_rdf_deep_free(a);
        ldns_resolver_set_port(r, port);
    }
    /* one try per server and per timeout slice: the caller bounds the total */
    uint64_t per = timeout_ms / 2 > 0 ? timeout_ms / 2 : 1;
    struct timeval tv = {.tv_sec = (time_t)(per / 1000), .tv_usec = (suseconds_t)((per % 1000) * 1000)};
    ldns_resolver_set_timeout(r, tv);
    ldns_resolver_set_retry(r, 2);
    ldns_resolver_set_retrans(r, 0);
    ldns_resolver_set_recursive(r, rd ? true : false);
    ldns_resolver_set_dnssec(r, false);
    ldns_resolver_set_defnames(r, false);
    ldns_resolver_set_dnsrch(r, false);
    return r;
}

/* Asks one server (host NULL: the system resolver) one question. */
static ldns_pkt *ask(const char *host, uint16_t port, const char *name, ldns_rr_type type, int rd, uint64_t timeout_ms,
                     char *err, size_t errlen)
{
    char label[128];
    server_label(host, port, label, sizeof(label));
    ldns_resolver *r = resolver_for(host, port, timeout_ms, rd, err, errlen);
    if (!r)
        return NULL;
    ldns_rdf *dn = ldns_dname_new_frm_str(name);
    ldns_pkt *q = NULL, *reply = NULL;
    if (!dn || ldns_resolver_prepare_query_pkt(&q, r, dn, type, LDNS_RR_CLASS_IN, rd ? LDNS_RD : 0) != LDNS_STATUS_OK) {
        snprintf(err, errlen, "cannot build a DNS query for \"%s\"", name);
        goto out;
    }
    ldns_status st = ldns_resolver_send_pkt(&reply, r, q);
    if (st != LDNS_STATUS_OK || !reply) {
        snprintf(err, errlen, "no answer from %s for %s within %llu ms (%s)", label, name,
                 (unsigned long long)timeout_ms, ldns_get_errorstr_by_id(st) ? ldns_get_errorstr_by_id(st) : "?");
        if (reply)
            ldns_pkt_free(reply);
        reply = NULL;
    } else if (ldns_pkt_id(reply) != ldns_pkt_id(q) || !ldns_pkt_qr(reply)) {
        snprintf(err, errlen, "%s sent an answer that does not match the question for %s", label, name);
        ldns_pkt_free(reply);
        reply = NULL;
    }
out:
    if (q)
        ldns_pkt_free(q);
    ldns_rdf_deep_free(dn);
    ldns_resolver_deep_free(r);
    return reply;
}

/* Asks the lookup servers in turn (acme.dns.resolvers, else the system resolver) until one
 * answers NOERROR or NXDOMAIN. */
static ldns_pkt *lookup(const oe_dns_t *d, const char *name, ldns_rr_type type, char *err, size_t errlen)
{
    size_t n = d->resolver_count ? d->resolver_count : 1;
    for (size_t i = 0; i < n; i++) {
        const char *host = d->resolver_count ? d->resolvers[i].host : NULL;
        uint16_t port = d->resolver_count ? d->resolvers[i].port : 53;
        ldns_pkt *p = ask(host, port, name, type, 1, d->query_timeout_ms, err, errlen);
        if (!p)
            continue;
        ldns_pkt_rcode rc = ldns_pkt_get_rcode(p);
        if (rc == LDNS_RCODE_NOERROR || rc == LDNS_RCODE_NXDOMAIN)
            return p;
        char label[128];
        server_label(host, port, label, sizeof(label));
        snprintf(err, errlen, "%s answered %s for %s", label, rcode_name(rc), name);
        ldns_pkt_free(p);
    }
    return NULL;
}

/* The presentation form of a dname ("example.com."), into out. */
static int dname_str(const ldns_rdf *rdf, char *out, size_t cap)
{
    char *s = rdf ? ldns_rdf2str(rdf) : NULL;
    if (!s)
        return -1;
    size_t n = strlen(s);
    int rc = n < cap ? 0 : -1;
    if (rc == 0) {
        for (size_t i = 0; i <= n; i++)
            out[i] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] + 32 : s[i]);
    }
    free(s);
    return rc;
}

static int same_name(const ldns_rdf *a, const char *b)
{
    ldns_rdf *bd = ldns_dname_new_frm_str(b);
    int same = bd && ldns_dname_compare(a, bd) == 0;
    ldns_rdf_deep_free(bd);
    return same;
}

/* ---- CNAME and zone -------------------------------------------------------------- */

/* Follows CNAMEs from name (at most CNAME_HOPS_MAX) into out. */
static int follow_cname(const oe_dns_t *d, const char *name, char *out, size_t cap, char *err, size_t errlen)
{
    char cur[OE_DNS_NAME_MAX + 32];
    snprintf(cur, sizeof(cur), "%s", name);
    for (int hop = 0;; hop++) {
        ldns_pkt *p = lookup(d, cur, LDNS_RR_TYPE_CNAME, err, errlen);
        if (!p) {
            size_t n = strlen(err);
            snprintf(err + n, errlen - n, " (looking for a CNAME on %s)", cur);
            return -1;
        }
        ldns_rr_list *ans = ldns_pkt_answer(p);
        char next[OE_DNS_NAME_MAX] = "";
        for (size_t i = 0; ans && i < ldns_rr_list_rr_count(ans); i++) {
            ldns_rr *rr = ldns_rr_list_rr(ans, i);
            if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_CNAME && same_name(ldns_rr_owner(rr), cur) &&
                dname_str(ldns_rr_rdf(rr, 0), next, sizeof(next)) == 0)
                break;
            next[0] = '\0';
        }
        ldns_pkt_free(p);
        if (!next[0])
            break;
        if (hop >= CNAME_HOPS_MAX) {
            snprintf(err, errlen, "more than %d CNAMEs from %s (a loop?)", CNAME_HOPS_MAX, name);
            return -1;
        }
        oe_log(OE_LOG_INFO, "acme_dns_cname", "from", cur, "to", next, NULL);
        snprintf(cur, sizeof(cur), "%s", next);
    }
    if (strlen(cur) >= cap) {
        snprintf(err, errlen, "name too long: %s", cur);
        return -1;
    }
    memcpy(out, cur, strlen(cur) + 1);
    return 0;
}

/* The SOA record's owner in a section, if it is name itself (ans) or an ancestor (auth). */
static int soa_owner(ldns_rr_list *l, const char *name, int must_equal, char *out, size_t cap)
{
    ldns_rdf *nd = ldns_dname_new_frm_str(name);
    int found = 0;
    for (size_t i = 0; nd && l && i < ldns_rr_list_rr_count(l) && !found; i++) {
        ldns_rr *rr = ldns_rr_list_rr(l, i);
        if (ldns_rr_get_type(rr) != LDNS_RR_TYPE_SOA)
            continue;
        const ldns_rdf *o = ldns_rr_owner(rr);
        int eq = ldns_dname_compare(o, nd) == 0;
        if ((must_equal && eq) || (!must_equal && (eq || ldns_dname_is_subdomain(nd, o))))
            found = dname_str(o, out, cap) == 0;
    }
    ldns_rdf_deep_free(nd);
    return found;
}

/* The zone holding fqdn: the closest enclosing name with an SOA record. */
static int find_zone(const oe_dns_t *d, const char *fqdn, char *zone, size_t cap, char *err, size_t errlen)
{
    char cand[OE_DNS_NAME_MAX];
    snprintf(cand, sizeof(cand), "%s", fqdn);
    for (int i = 0; i < 128 && cand[0] && strcmp(cand, ".") != 0; i++) {
        ldns_pkt *p = lookup(d, cand, LDNS_RR_TYPE_SOA, err, errlen);
        if (!p) {
            size_t n = strlen(err);
            snprintf(err + n, errlen - n, " (looking for the zone of %s)", fqdn);
            return -1;
        }
        char owner[OE_DNS_NAME_MAX];
        if (soa_owner(ldns_pkt_answer(p), cand, 1, zone, cap)) {
            ldns_pkt_free(p);
            return 0;
        }
        /* an NXDOMAIN/NODATA answer names the zone in its authority section: confirm it next */
        int jump = soa_owner(ldns_pkt_authority(p), cand, 0, owner, sizeof(owner)) && strcmp(owner, cand) != 0;
        ldns_pkt_free(p);
        if (jump) {
            snprintf(cand, sizeof(cand), "%s", owner);
            continue;
        }
        const char *dot = strchr(cand, '.');
        memmove(cand, dot ? dot + 1 : cand + strlen(cand), strlen(dot ? dot + 1 : "") + 1);
    }
    snprintf(err, errlen, "no zone (SOA record) found for %s%s", fqdn,
             d->resolver_count ? " at acme.dns.resolvers" : " through the system resolver");
    return -1;
}

/* ---- RFC 2136 ---------------------------------------------------------------------- */

/* What a failed update answer means, for the user. */
static void update_problem(const oe_dns_t *d, const oe_dns_record_t *rec, const char *label, ldns_pkt *reply,
                           ldns_status st, char *err, size_t errlen)
{
    ldns_pkt_rcode rc = ldns_pkt_get_rcode(reply);
    ldns_rr *tsig = ldns_pkt_tsig(reply);
    uint16_t terr = 0;
    if (tsig && ldns_rr_rd_count(tsig) > 5 && ldns_rr_rdf(tsig, 5))
        terr = ldns_rdf2native_int16(ldns_rr_rdf(tsig, 5));
    const char *key = d->key_name ? d->key_name : "(none)";
    if (rc == LDNS_RCODE_NOTAUTH && terr == TSIG_BADSIG)
        snprintf(err, errlen,
                 "DNS update of %s at %s refused: the TSIG signature is wrong (BADSIG): acme.dns.rfc2136.key_secret or "
                 "key_algorithm does not match the server's key %s",
                 rec->zone, label, key);
    else if (rc == LDNS_RCODE_NOTAUTH && terr == TSIG_BADKEY)
        snprintf(err, errlen,
                 "DNS update of %s at %s refused: the server does not accept TSIG key %s with %.*s for this zone "
                 "(BADKEY): check acme.dns.rfc2136.key_name and key_algorithm, and that the server lets this key "
                 "update the zone",
                 rec->zone, label, key, (int)strlen(d->alg) - 1, d->alg);
    else if (rc == LDNS_RCODE_NOTAUTH && terr == TSIG_BADTIME)
        snprintf(err, errlen,
                 "DNS update of %s at %s refused: this machine's clock differs from the server's by more than 5 "
                 "minutes (TSIG BADTIME)",
                 rec->zone, label);
    else if (rc == LDNS_RCODE_NOTAUTH)
        snprintf(err, errlen, "DNS update of %s refused by %s (NOTAUTH): %s", rec->zone, label,
                 d->key_name ? "the server is not authoritative for this zone"
                             : "the server wants a signed update (set acme.dns.rfc2136.key_name and key_secret) or "
                               "is not authoritative for this zone");
    else if (rc == LDNS_RCODE_REFUSED)
        snprintf(err, errlen,
                 "DNS update of %s refused by %s (REFUSED): the server's policy does not let %s%s update TXT records "
                 "at %s",
                 rec->zone, label, d->key_name ? "key " : "unsigned updates", d->key_name ? d->key_name : "",
                 rec->fqdn);
    else if (rc != LDNS_RCODE_NOERROR)
        snprintf(err, errlen, "DNS update of %s at %s failed: the server answered %s", rec->zone, label,
                 rcode_name(rc));
    else
        snprintf(err, errlen, "DNS update of %s at %s: the answer's TSIG signature does not verify (%s)", rec->zone,
                 label, ldns_get_errorstr_by_id(st) ? ldns_get_errorstr_by_id(st) : "?");
}

/* Adds (add=1) or deletes exactly (add=0) the record's TXT value by a dynamic update. */
static int rfc2136_update(const oe_dns_t *d, const oe_dns_record_t *rec, int add, char *err, size_t errlen)
{
    char host[256], text[OE_DNS_NAME_MAX + 128];
    uint16_t port;
    if (oe_config_split_hostport_opt(d->server, host, sizeof(host), &port, 53) != 0) {
        snprintf(err, errlen, "acme.dns.rfc2136.server \"%s\" is not host:port", d->server);
        return -1;
    }
    /* the server's addresses (a name is resolved by the system, like any host name) */
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_DGRAM}, *res = NULL;
    int gai = getaddrinfo(host, NULL, &hints, &res);
    if (gai != 0) {
        snprintf(err, errlen, "acme.dns.rfc2136.server: cannot resolve %s: %s", host, gai_strerror(gai));
        return -1;
    }
    snprintf(text, sizeof(text), "%s %d IN TXT \"%s\"", rec->fqdn, add ? UPDATE_TTL : 0, rec->value);
    ldns_rr *rr = NULL;
    ldns_rr_list *up = ldns_rr_list_new();
    ldns_pkt *pkt = NULL;
    int rc = -1;
    if (!up || ldns_rr_new_frm_str(&rr, text, 0, NULL, NULL) != LDNS_STATUS_OK || !rr) {
        snprintf(err, errlen, "cannot build the TXT record for %s", rec->fqdn);
        goto out;
    }
    if (!add)
        ldns_rr_set_class(rr, LDNS_RR_CLASS_NONE); /* RFC 2136 §2.5.4: delete this RR only */
    ldns_rr_list_push_rr(up, rr);
    rr = NULL;
    pkt = ldns_update_pkt_new(ldns_dname_new_frm_str(rec->zone), LDNS_RR_CLASS_IN, NULL, up, NULL);
    if (!pkt) {
        snprintf(err, errlen, "cannot build the DNS update for zone %s", rec->zone);
        goto out;
    }
    ldns_pkt_set_rd(pkt, false);
    ldns_pkt_set_random_id(pkt);
    if (d->key_name && ldns_pkt_tsig_sign(pkt, d->key_name, d->secret, 300, d->alg, NULL) != LDNS_STATUS_OK) {
        snprintf(err, errlen, "cannot sign the DNS update with TSIG key %s (is acme.dns.rfc2136.key_secret base64?)",
                 d->key_name);
        goto out;
    }
    snprintf(err, errlen, "acme.dns.rfc2136.server %s has no address", host);
    int tried = 0;
    for (struct addrinfo *ai = res; ai && tried < LOOKUP_ADDRS; ai = ai->ai_next) {
        char ip[64], label[128];
        const void *a = ai->ai_family == AF_INET6 ? (const void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr
                                                  : (const void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr;
        if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) || !inet_ntop(ai->ai_family, a, ip, sizeof(ip)))
            continue;
        tried++;
        server_label(ip, port, label, sizeof(label));
        ldns_resolver *r = resolver_for(ip, port, d->query_timeout_ms, 0, err, errlen);
        if (!r)
            continue;
        if (d->key_name) { /* ldns_send verifies the answer's signature with these */
            ldns_resolver_set_tsig_keyname(r, d->key_name);
            ldns_resolver_set_tsig_keydata(r, d->secret);
            ldns_resolver_set_tsig_algorithm(r, d->alg);
        }
        ldns_pkt *reply = NULL;
        ldns_status st = ldns_send(&reply, r, pkt);
        ldns_resolver_deep_free(r);
        if (!reply) {
            snprintf(err, errlen,
                     "no answer from acme.dns.rfc2136.server %s within %llu ms (is it running and reachable?)", label,
                     (unsigned long long)d->query_timeout_ms);
            continue;
        }
        if (ldns_pkt_id(reply) != ldns_pkt_id(pkt)) {
            snprintf(err, errlen, "%s sent an answer that does not match the update", label);
        } else if (st == LDNS_STATUS_OK && ldns_pkt_get_rcode(reply) == LDNS_RCODE_NOERROR) {
            rc = 0;
        } else {
            update_problem(d, rec, label, reply, st, err, errlen);
        }
        ldns_pkt_free(reply);
        break; /* an answer, good or bad, is final */
    }
out:
    if (rr)
        ldns_rr_free(rr);
    if (up)
        ldns_rr_list_deep_free(up);
    if (pkt)
        ldns_pkt_free(pkt);
    freeaddrinfo(res);
    return rc;
}

/* ---- present and cleanup ----------------------------------------------------------- */

int oe_dns_present(oe_dns_t *d, const char *name, const char *value, oe_dns_record_t *rec, char *err, size_t errlen)
{
    memset(rec, 0, sizeof(*rec));
    size_t nl = strlen(name);
    if (nl > 0 && name[nl - 1] == '.')
        nl--;
    if (nl == 0 || nl + sizeof("_acme-challenge..") > sizeof(rec->fqdn) || strlen(value) >= sizeof(rec->value)) {
        snprintf(err, errlen, "dns-01: bad name or value for %s", name);
        return -1;
    }
    snprintf(rec->name, sizeof(rec->name), "%.*s", (int)nl, name);
    snprintf(rec->value, sizeof(rec->value), "%s", value);
    char start[OE_DNS_NAME_MAX + 32];
    snprintf(start, sizeof(start), "_acme-challenge.%s.", rec->name);
    if (follow_cname(d, start, rec->fqdn, sizeof(rec->fqdn), err, errlen) != 0)
        return -1;
    /* the zone: where an update goes, and whose name servers are checked */
    if ((d->provider == OE_DNS_RFC2136 || !d->check_at_resolvers) &&
        find_zone(d, rec->fqdn, rec->zone, sizeof(rec->zone), err, errlen) != 0)
        return -1;
    rec->attempted = 1;
    uint64_t t0 = oe_util_now_ms();
    int rc = d->provider == OE_DNS_RFC2136
                 ? rfc2136_update(d, rec, 1, err, errlen)
                 : oe_dns_exec_run(d->command, "present", rec->fqdn, rec->value, d->timeout_ms, d->stop, err, errlen);
    char ms[24];
    snprintf(ms, sizeof(ms), "%llu", (unsigned long long)(oe_util_now_ms() - t0));
    if (rc == 0)
        oe_log(OE_LOG_INFO, "acme_dns_present", "name", rec->name, "fqdn", rec->fqdn, "zone", rec->zone, "provider",
               oe_dns_provider_name(d), "duration_ms", ms, NULL);
    return rc;
}

int oe_dns_cleanup(oe_dns_t *d, oe_dns_record_t *rec, char *err, size_t errlen)
{
    if (!rec->attempted)
        return 0;
    rec->attempted = 0;
    int stopping = d->stop && __atomic_load_n(d->stop, __ATOMIC_RELAXED);
    if (stopping && d->cleanup_failed_stopping) {
        /* bounded shutdown: one failed cleanup (server down, hook stuck) is enough waiting */
        snprintf(err, errlen, "not removed: ott-edge is stopping and an earlier removal failed");
        return -1;
    }
    int rc = d->provider == OE_DNS_RFC2136
                 ? rfc2136_update(d, rec, 0, err, errlen)
                 : oe_dns_exec_run(d->command, "cleanup", rec->fqdn, rec->value, d->timeout_ms, d->stop, err, errlen);
    if (rc == 0)
        oe_log(OE_LOG_INFO, "acme_dns_cleanup", "name", rec->name, "fqdn", rec->fqdn, "provider",
               oe_dns_provider_name(d), NULL);
    else if (stopping)
        d->cleanup_failed_stopping = 1;
    return rc;
}

/* ---- propagation ----------------------------------------------------------------- */

/* Adds the A and AAAA addresses of ns (glue from p first) to server s. */
static void ns_addresses(const oe_dns_t *d, ldns_pkt *p, const ldns_rdf *ns, oe_dns_server_t *s)
{
    static const ldns_rr_type types[] = {LDNS_RR_TYPE_A, LDNS_RR_TYPE_AAAA};
    char nsname[OE_DNS_NAME_MAX];
    if (dname_str(ns, nsname, sizeof(nsname)) != 0)
        return;
    for (int pass = 0; pass < 2; pass++) {
        for (size_t t = 0; t < 2; t++) {
            ldns_pkt *src = p;
            char ignored[256];
            if (pass == 1) {
                if (s->addr_count > 0)
                    return; /* glue was enough */
                src = lookup(d, nsname, types[t], ignored, sizeof(ignored));
                if (!src)
                    continue;
            }
            ldns_rr_list *l = pass == 0 ? ldns_pkt_additional(src) : ldns_pkt_answer(src);
            for (size_t i = 0; l && i < ldns_rr_list_rr_count(l) && s->addr_count < OE_DNS_ADDRS_MAX; i++) {
                ldns_rr *rr = ldns_rr_list_rr(l, i);
                if (ldns_rr_get_type(rr) != types[t] || ldns_dname_compare(ldns_rr_owner(rr), ns) != 0)
                    continue;
                char *a = ldns_rdf2str(ldns_rr_rdf(rr, 0));
                if (a && strlen(a) < sizeof(s->addrs[0])) {
                    int dup = 0;
                    for (size_t k = 0; k < s->addr_count; k++)
                        dup |= strcmp(s->addrs[k], a) == 0;
                    if (!dup)
                        snprintf(s->addrs[s->addr_count++], sizeof(s->addrs[0]), "%s", a);
                }
                free(a);
            }
            if (pass == 1)
                ldns_pkt_free(src);
        }
    }
}

/* Which servers must answer the record: the resolvers, or the zone's name servers. */
static int choose_servers(const oe_dns_t *d, oe_dns_record_t *rec, char *err, size_t errlen)
{
    if (d->check_at_resolvers) {
        for (size_t i = 0; i < d->resolver_count; i++) {
            snprintf(rec->servers[i].addrs[0], sizeof(rec->servers[i].addrs[0]), "%s", d->resolvers[i].host);
            rec->servers[i].addr_count = 1;
            rec->servers[i].port = d->resolvers[i].port;
            server_label(d->resolvers[i].host, d->resolvers[i].port, rec->servers[i].label,
                         sizeof(rec->servers[i].label));
        }
        rec->server_count = d->resolver_count;
        return 0;
    }
    ldns_pkt *p = lookup(d, rec->zone, LDNS_RR_TYPE_NS, err, errlen);
    if (!p) {
        size_t n = strlen(err);
        snprintf(err + n, errlen - n, " (looking for the name servers of %s)", rec->zone);
        return -1;
    }
    ldns_rr_list *ans = ldns_pkt_answer(p);
    size_t skipped = 0;
    for (size_t i = 0; ans && i < ldns_rr_list_rr_count(ans) && rec->server_count < OE_DNS_SERVERS_MAX; i++) {
        ldns_rr *rr = ldns_rr_list_rr(ans, i);
        if (ldns_rr_get_type(rr) != LDNS_RR_TYPE_NS || !same_name(ldns_rr_owner(rr), rec->zone))
            continue;
        oe_dns_server_t *s = &rec->servers[rec->server_count];
        memset(s, 0, sizeof(*s));
        ns_addresses(d, p, ldns_rr_rdf(rr, 0), s);
        char nsname[OE_DNS_NAME_MAX];
        if (dname_str(ldns_rr_rdf(rr, 0), nsname, sizeof(nsname)) != 0)
            continue;
        if (s->addr_count == 0) {
            oe_log(OE_LOG_WARN, "acme_dns_ns_unresolvable", "zone", rec->zone, "ns", nsname, "action",
                   "not checked for propagation", NULL);
            skipped++;
            continue;
        }
        char first[sizeof(s->addrs[0])];
        memcpy(first, s->addrs[0], sizeof(first));
        s->port = d->ns_port;
        snprintf(s->label, sizeof(s->label), "%s (%s)", nsname, first);
        rec->server_count++;
    }
    ldns_pkt_free(p);
    if (rec->server_count == 0) {
        snprintf(err, errlen, "no usable name server for zone %s (%zu NS without an address)", rec->zone, skipped);
        return -1;
    }
    return 0;
}

/* Whether a TXT record of rr (owner fqdn) holds value (its strings joined). */
static int txt_has(const ldns_rr *rr, const char *value)
{
    char joined[512];
    size_t used = 0;
    for (size_t i = 0; i < ldns_rr_rd_count(rr); i++) {
        const ldns_rdf *f = ldns_rr_rdf(rr, i);
        const uint8_t *data = ldns_rdf_data(f);
        size_t size = ldns_rdf_size(f);
        if (ldns_rdf_get_type(f) != LDNS_RDF_TYPE_STR || size < 1 || (size_t)data[0] + 1 > size)
            return 0;
        if (used + data[0] >= sizeof(joined))
            return 0;
        memcpy(joined + used, data + 1, data[0]);
        used += data[0];
    }
    joined[used] = '\0';
    return strcmp(joined, value) == 0;
}

int oe_dns_check(oe_dns_t *d, oe_dns_record_t *rec, char *err, size_t errlen)
{
    if (rec->server_count == 0 && choose_servers(d, rec, err, errlen) != 0)
        return -1;
    int all = 1;
    for (size_t i = 0; i < rec->server_count; i++) {
        oe_dns_server_t *s = &rec->servers[i];
        if (s->ok)
            continue;
        for (size_t k = 0; k < s->addr_count && !s->ok; k++) {
            char why[256];
            ldns_pkt *p = ask(s->addrs[k], s->port, rec->fqdn, LDNS_RR_TYPE_TXT, d->check_at_resolvers, CHECK_TIMEOUT,
                              why, sizeof(why));
            if (!p) {
                snprintf(s->why, sizeof(s->why), "%.120s", why);
                continue;
            }
            ldns_rr_list *ans = ldns_pkt_answer(p);
            size_t txts = 0;
            for (size_t j = 0; ans && j < ldns_rr_list_rr_count(ans); j++) {
                ldns_rr *rr = ldns_rr_list_rr(ans, j);
                if (ldns_rr_get_type(rr) != LDNS_RR_TYPE_TXT || !same_name(ldns_rr_owner(rr), rec->fqdn))
                    continue;
                txts++;
                if (txt_has(rr, rec->value))
                    s->ok = 1;
            }
            if (!s->ok)
                snprintf(s->why, sizeof(s->why), "answered %s with %zu other TXT record(s)",
                         rcode_name(ldns_pkt_get_rcode(p)), txts);
            ldns_pkt_free(p);
        }
        all &= s->ok;
    }
    rec->visible = all;
    return all;
}

int oe_dns_wait_visible(oe_dns_t *d, oe_dns_record_t *const *recs, size_t count, oe_dns_sleep_fn sleep, void *data,
                        uint64_t *waited_ms, char *err, size_t errlen)
{
    uint64_t t0 = oe_util_now_ms(), deadline = t0 + d->timeout_ms, delay = POLL_FIRST_MS;
    size_t rounds = 0;
    *waited_ms = 0;
    for (;;) {
        int all = 1;
        rounds++;
        for (size_t i = 0; i < count; i++) {
            if (recs[i]->visible)
                continue;
            int rc = oe_dns_check(d, recs[i], err, errlen);
            if (rc < 0)
                return -1;
            all &= rc;
        }
        uint64_t now = oe_util_now_ms();
        *waited_ms = now - t0;
        if (all) {
            char ms[24], n[24], r[24];
            snprintf(ms, sizeof(ms), "%llu", (unsigned long long)*waited_ms);
            snprintf(n, sizeof(n), "%zu", count);
            snprintf(r, sizeof(r), "%zu", rounds);
            oe_log(OE_LOG_INFO, "acme_dns_propagated", "records", n, "waited_ms", ms, "rounds", r, "checked_at",
                   d->check_at_resolvers ? "acme.dns.resolvers" : "authoritative name servers", NULL);
            return 0;
        }
        if (now >= deadline) {
            for (size_t i = 0; i < count; i++) {
                const oe_dns_record_t *rec = recs[i];
                for (size_t k = 0; !rec->visible && k < rec->server_count; k++) {
                    if (rec->servers[k].ok)
                        continue;
                    snprintf(err, errlen,
                             "the TXT record %s for %s is not answered by %s after %llu s "
                             "(acme.dns_propagation_timeout): %s",
                             rec->fqdn, rec->name, rec->servers[k].label, (unsigned long long)(d->timeout_ms / 1000),
                             rec->servers[k].why);
                    return -1;
                }
            }
            snprintf(err, errlen, "DNS-01 records not visible after %llu s (acme.dns_propagation_timeout)",
                     (unsigned long long)(d->timeout_ms / 1000));
            return -1;
        }
        uint64_t nap = delay < deadline - now ? delay : deadline - now;
        if (sleep(data, nap)) {
            snprintf(err, errlen, "stopped");
            return -1;
        }
        delay = delay * 3 / 2 > POLL_MAX_MS ? POLL_MAX_MS : delay * 3 / 2; /* 100, 150, 225, ... 2000 ms */
    }
}
