/*
 * forwarded — the trust rules for X-Forwarded-For and the client address.
 *
 * Owns: deciding, from the peer address and proxy.trusted_proxies, which client-sent
 * forwarding information is believed, and building the X-Forwarded-For value and the
 * client IP that go upstream and into the access log. Pure functions on bounded
 * buffers: no h2o, no allocation, safe on hostile input (it is a fuzz target).
 * Must not touch: request objects or sockets (proxy.c does the header surgery).
 */
#ifndef OE_FORWARDED_H
#define OE_FORWARDED_H

#include <stddef.h>
#include <sys/socket.h>

#include "config/config.h"

#define OE_FWD_XFF_MAX  1024 /* X-Forwarded-For value we send at most */
#define OE_FWD_MAX_HOPS 16   /* client-sent hops kept at most (the rightmost ones) */
#define OE_FWD_IP_MAX   64

typedef struct oe_fwd_input {
    const struct sockaddr *peer; /* the TCP peer */
    const oe_cidr_t *trusted;    /* proxy.trusted_proxies */
    size_t trusted_count;
    const char *xff; /* the client's X-Forwarded-For lines joined by ","; NULL if none */
    size_t xff_len;
    const char *real_ip; /* value of proxy.real_ip_header; NULL if absent/unset */
    size_t real_ip_len;
} oe_fwd_input_t;

typedef struct oe_fwd_result {
    int trusted;                   /* the peer is a trusted proxy */
    char peer_ip[OE_FWD_IP_MAX];   /* numeric peer address */
    char client_ip[OE_FWD_IP_MAX]; /* the client as the trust rules see it */
    char xff[OE_FWD_XFF_MAX];      /* X-Forwarded-For to send upstream */
    size_t xff_len;
} oe_fwd_result_t;

/*
 * Untrusted peer: everything the client said is ignored; X-Forwarded-For = peer.
 * Trusted peer: the client's X-Forwarded-For elements that are IP addresses are kept
 * (the rightmost OE_FWD_MAX_HOPS) and the peer appended; the client IP is the
 * real-IP header's address if present and valid, else the rightmost untrusted
 * X-Forwarded-For element, else the leftmost one, else the peer.
 */
void oe_forwarded_compute(const oe_fwd_input_t *in, oe_fwd_result_t *out);

/* Whether a Host header value is a well-formed "host[:port]" (name, IPv4, or "[v6]"):
 * no spaces, slashes, '@' or control bytes. Stores the host part's length. */
int oe_forwarded_valid_host(const char *authority, size_t len, size_t *host_len);

/* Numeric form of an address ("127.0.0.1", "::1"; IPv4-mapped shown as IPv4). */
void oe_forwarded_ntop(const struct sockaddr *sa, char *buf, size_t cap);

#endif
