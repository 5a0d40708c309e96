/*
 * dns — the DNS side of ACME DNS-01: writing and removing `_acme-challenge` TXT records
 * through a provider, and waiting until the zone's name servers answer them.
 *
 * Owns: DNS lookups (CNAME, SOA, NS, A/AAAA, TXT) and RFC 2136 dynamic updates signed with
 * TSIG, all built, signed and parsed by libldns (no DNS wire format is written here; the
 * library is loaded at run time only when DNS-01 is configured: ldns_api.h); the
 * `exec` provider's hook processes (posix_spawn, bounded run time, output logged, exit
 * status honoured, no waitpid(-1) race with the entrypoint supervisor).
 * Must not touch: the ACME protocol, files, the live certificate, listeners or event
 * loops. Every call blocks (network, hook) for a bounded time: call it from the ACME
 * thread only. An oe_dns_t is used by one thread at a time.
 */
#ifndef OE_DNS_H
#define OE_DNS_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

#define OE_DNS_NAME_MAX    256 /* a presentation-format name with its final dot, NUL included */
#define OE_DNS_SERVERS_MAX 8   /* name servers (or resolvers) checked per record */
#define OE_DNS_ADDRS_MAX   4   /* addresses tried per name server */

typedef struct oe_dns oe_dns_t;

/* Sleeps ms unless asked to stop; returns non-zero when stopping (the ACME thread's). */
typedef int (*oe_dns_sleep_fn)(void *data, uint64_t ms);

typedef struct oe_dns_opts {
    enum oe_dns_provider provider;
    const char *server;        /* rfc2136: "host", "host:port", "[v6]:port" */
    const char *key_name;      /* rfc2136: TSIG key name; NULL: unsigned updates */
    const char *key_algorithm; /* "hmac-sha256" | "hmac-sha512" */
    const char *key_secret;    /* base64 */
    const char *command;       /* exec: the hook program */
    char *const *resolvers;    /* "ip" or "ip:port" / "[v6]:port"; none: /etc/resolv.conf */
    size_t resolver_count;
    int check_at_resolvers;    /* 1: propagation is checked at the resolvers, 0: at the zone's NS */
    uint16_t ns_port;          /* port of the zone's name servers: 53 (tests use another) */
    uint64_t timeout_ms;       /* propagation timeout; also bounds one hook run */
    uint64_t query_timeout_ms; /* one DNS exchange, retries included */
    const int *stop;           /* set when ott-edge stops: a running hook is cut short */
} oe_dns_opts_t;

/* The options acme.dns.* and acme.dns_propagation_timeout describe. */
void oe_dns_opts_from_config(const oe_config_t *cfg, oe_dns_opts_t *o);

/* Whether what cfg configures for DNS-01 can run here: with ACME on and dns-01 among
 * acme.challenges, libldns (loaded at run time, not linked) must load. Loads it; returns 0,
 * or -1 with a message naming the key and the package to install (a configuration error:
 * exit 2). Without DNS-01 it does nothing, and libldns is never mapped. */
int oe_dns_check_config(const oe_config_t *cfg, char *err, size_t errlen);

/* A provider instance (copies what it needs from opts; loads libldns if not loaded yet).
 * NULL with a message on error. */
oe_dns_t *oe_dns_new(const oe_dns_opts_t *opts, char *err, size_t errlen);
void oe_dns_free(oe_dns_t *d);

/* A server that must answer a record: one of the zone's name servers, or a resolver. */
typedef struct oe_dns_server {
    char label[OE_DNS_NAME_MAX + 80]; /* "ns1.example.com. (192.0.2.1)" or "192.0.2.53:53" */
    char addrs[OE_DNS_ADDRS_MAX][64]; /* numeric addresses, tried in turn */
    size_t addr_count;
    uint16_t port;
    int ok;        /* answered the value */
    char why[128]; /* what the last check saw while not ok */
} oe_dns_server_t;

/* One challenge record and what is known about it. */
typedef struct oe_dns_record {
    char name[OE_DNS_NAME_MAX]; /* the identifier ("example.com"; a wildcard's without "*.") */
    char value[64];             /* TXT value: base64url(SHA-256(key authorization)) */
    char fqdn[OE_DNS_NAME_MAX]; /* where it is written: "_acme-challenge.example.com." or a CNAME's target */
    char zone[OE_DNS_NAME_MAX]; /* the zone holding fqdn ("example.com."), found by SOA lookup */
    int attempted;              /* a write was tried: cleanup is due even if it failed */
    int visible;                /* every server checked answers the value */
    size_t server_count;
    oe_dns_server_t servers[OE_DNS_SERVERS_MAX];
} oe_dns_record_t;

/*
 * Writes the TXT record `value` for the identifier `name` (follows a CNAME on
 * _acme-challenge.<name>, finds the zone by SOA lookup, then adds the record through the
 * provider; other TXT records at that name are kept, so a name and its wildcard can be
 * validated at once). rec is filled in; rec->attempted says whether cleanup is due.
 */
int oe_dns_present(oe_dns_t *d, const char *name, const char *value, oe_dns_record_t *rec, char *err, size_t errlen);

/* Removes exactly the record present wrote (only that value). */
int oe_dns_cleanup(oe_dns_t *d, oe_dns_record_t *rec, char *err, size_t errlen);

/*
 * Waits until every record is answered by every server that counts: the zone's
 * authoritative name servers, or the configured resolvers. Bounded by opts.timeout_ms;
 * sleeps through sleep(data) between rounds. *waited_ms gets the time spent. Returns 0,
 * or -1 with err naming the record and the servers that do not answer it yet.
 */
int oe_dns_wait_visible(oe_dns_t *d, oe_dns_record_t *const *recs, size_t count, oe_dns_sleep_fn sleep, void *data,
                        uint64_t *waited_ms, char *err, size_t errlen);

/* One round of the check above for one record: 1 visible everywhere, 0 not yet, -1 error. */
int oe_dns_check(oe_dns_t *d, oe_dns_record_t *rec, char *err, size_t errlen);

/* The provider's name ("rfc2136", "exec"). */
const char *oe_dns_provider_name(const oe_dns_t *d);

#endif
