/*
 * dns/ldns_api.h — libldns, loaded at run time only when DNS-01 is configured (dns module
 * only: dns.c includes it after <ldns/ldns.h>).
 *
 * libldns costs ~180 KiB of resident memory in every process that maps it, and only DNS-01
 * uses it, so ott-edge is not linked against it: oe_dns_ldns_load() dlopen()s libldns.so.3
 * (through util/dynlib) into the table below, and the macros at the end route dns.c's calls
 * through that table, so its call sites read as plain libldns calls. A call that is not in
 * the list does not link (libldns is not on the link line): add it to OE_DNS_LDNS_SYMS and
 * to the macros.
 *
 * Owns: the table of libldns functions (and the ldns_rcodes table) dns.c uses.
 * Must not touch: DNS semantics (dns.c's).
 */
#ifndef OE_DNS_LDNS_API_H
#define OE_DNS_LDNS_API_H

#include <ldns/ldns.h>
#include <stddef.h>

#include "util/dynlib.h"

/* Every libldns symbol dns.c uses: functions, and one data table (ldns_rcodes). */
#define OE_DNS_LDNS_SYMS(X)                                                                                            \
    X(ldns_dname_compare)                                                                                              \
    X(ldns_dname_is_subdomain)                                                                                         \
    X(ldns_dname_new_frm_str)                                                                                          \
    X(ldns_get_errorstr_by_id)                                                                                         \
    X(ldns_lookup_by_id)                                                                                               \
    X(ldns_pkt_additional)                                                                                             \
    X(ldns_pkt_answer)                                                                                                 \
    X(ldns_pkt_authority)                                                                                              \
    X(ldns_pkt_free)                                                                                                   \
    X(ldns_pkt_get_rcode)                                                                                              \
    X(ldns_pkt_id)                                                                                                     \
    X(ldns_pkt_qr)                                                                                                     \
    X(ldns_pkt_set_random_id)                                                                                          \
    X(ldns_pkt_set_rd)                                                                                                 \
    X(ldns_pkt_tsig)                                                                                                   \
    X(ldns_pkt_tsig_sign)                                                                                              \
    X(ldns_rdf2native_int16)                                                                                           \
    X(ldns_rdf2str)                                                                                                    \
    X(ldns_rdf_data)                                                                                                   \
    X(ldns_rdf_deep_free)                                                                                              \
    X(ldns_rdf_get_type)                                                                                               \
    X(ldns_rdf_new_frm_str)                                                                                            \
    X(ldns_rdf_size)                                                                                                   \
    X(ldns_resolver_deep_free)                                                                                         \
    X(ldns_resolver_new)                                                                                               \
    X(ldns_resolver_new_frm_file)                                                                                      \
    X(ldns_resolver_prepare_query_pkt)                                                                                 \
    X(ldns_resolver_push_nameserver)                                                                                   \
    X(ldns_resolver_send_pkt)                                                                                          \
    X(ldns_resolver_set_defnames)                                                                                      \
    X(ldns_resolver_set_dnsrch)                                                                                        \
    X(ldns_resolver_set_dnssec)                                                                                        \
    X(ldns_resolver_set_port)                                                                                          \
    X(ldns_resolver_set_recursive)                                                                                     \
    X(ldns_resolver_set_retrans)                                                                                       \
    X(ldns_resolver_set_retry)                                                                                         \
    X(ldns_resolver_set_timeout)                                                                                       \
    X(ldns_resolver_set_tsig_algorithm)                                                                                \
    X(ldns_resolver_set_tsig_keydata)                                                                                  \
    X(ldns_resolver_set_tsig_keyname)                                                                                  \
    X(ldns_rr_free)                                                                                                    \
    X(ldns_rr_get_type)                                                                                                \
    X(ldns_rr_list_deep_free)                                                                                          \
    X(ldns_rr_list_new)                                                                                                \
    X(ldns_rr_list_push_rr)                                                                                            \
    X(ldns_rr_list_rr)                                                                                                 \
    X(ldns_rr_list_rr_count)                                                                                           \
    X(ldns_rr_new_frm_str)                                                                                             \
    X(ldns_rr_owner)                                                                                                   \
    X(ldns_rr_rd_count)                                                                                                \
    X(ldns_rr_rdf)                                                                                                     \
    X(ldns_rr_set_class)                                                                                               \
    X(ldns_send)                                                                                                       \
    X(ldns_update_pkt_new)                                                                                             \
    X(ldns_rcodes)

OE_DYNLIB_TABLE(oe_dns_ldns_api_t, OE_DNS_LDNS_SYMS);

/* Filled by oe_dns_ldns_load(); read only after it succeeded. */
extern oe_dns_ldns_api_t oe_dns_ldns;

/* Loads libldns (once; thread-safe). 0, or -1 with "cannot load libldns.so.3 (...): install
 * libldns3" (or a missing symbol) in err. */
int oe_dns_ldns_load(char *err, size_t errlen);

/* dns.c's libldns calls, through the table (the member names are the symbols' own; a macro
 * does not expand inside its own expansion, so the member access stays as written). Not in
 * ldns_api.c, whose table of symbol names must see the plain names. */
#ifndef OE_DNS_LDNS_API_TABLE_ONLY
#define ldns_dname_compare               (oe_dns_ldns.ldns_dname_compare)
#define ldns_dname_is_subdomain          (oe_dns_ldns.ldns_dname_is_subdomain)
#define ldns_dname_new_frm_str           (oe_dns_ldns.ldns_dname_new_frm_str)
#define ldns_get_errorstr_by_id          (oe_dns_ldns.ldns_get_errorstr_by_id)
#define ldns_lookup_by_id                (oe_dns_ldns.ldns_lookup_by_id)
#define ldns_pkt_additional              (oe_dns_ldns.ldns_pkt_additional)
#define ldns_pkt_answer                  (oe_dns_ldns.ldns_pkt_answer)
#define ldns_pkt_authority               (oe_dns_ldns.ldns_pkt_authority)
#define ldns_pkt_free                    (oe_dns_ldns.ldns_pkt_free)
#define ldns_pkt_get_rcode               (oe_dns_ldns.ldns_pkt_get_rcode)
#define ldns_pkt_id                      (oe_dns_ldns.ldns_pkt_id)
#define ldns_pkt_qr                      (oe_dns_ldns.ldns_pkt_qr)
#define ldns_pkt_set_random_id           (oe_dns_ldns.ldns_pkt_set_random_id)
#define ldns_pkt_set_rd                  (oe_dns_ldns.ldns_pkt_set_rd)
#define ldns_pkt_tsig                    (oe_dns_ldns.ldns_pkt_tsig)
#define ldns_pkt_tsig_sign               (oe_dns_ldns.ldns_pkt_tsig_sign)
#define ldns_rdf2native_int16            (oe_dns_ldns.ldns_rdf2native_int16)
#define ldns_rdf2str                     (oe_dns_ldns.ldns_rdf2str)
#define ldns_rdf_data                    (oe_dns_ldns.ldns_rdf_data)
#define ldns_rdf_deep_free               (oe_dns_ldns.ldns_rdf_deep_free)
#define ldns_rdf_get_type                (oe_dns_ldns.ldns_rdf_get_type)
#define ldns_rdf_new_frm_str             (oe_dns_ldns.ldns_rdf_new_frm_str)
#define ldns_rdf_size                    (oe_dns_ldns.ldns_rdf_size)
#define ldns_resolver_deep_free          (oe_dns_ldns.ldns_resolver_deep_free)
#define ldns_resolver_new                (oe_dns_ldns.ldns_resolver_new)
#define ldns_resolver_new_frm_file       (oe_dns_ldns.ldns_resolver_new_frm_file)
#define ldns_resolver_prepare_query_pkt  (oe_dns_ldns.ldns_resolver_prepare_query_pkt)
#define ldns_resolver_push_nameserver    (oe_dns_ldns.ldns_resolver_push_nameserver)
#define ldns_resolver_send_pkt           (oe_dns_ldns.ldns_resolver_send_pkt)
#define ldns_resolver_set_defnames       (oe_dns_ldns.ldns_resolver_set_defnames)
#define ldns_resolver_set_dnsrch         (oe_dns_ldns.ldns_resolver_set_dnsrch)
#define ldns_resolver_set_dnssec         (oe_dns_ldns.ldns_resolver_set_dnssec)
#define ldns_resolver_set_port           (oe_dns_ldns.ldns_resolver_set_port)
#define ldns_resolver_set_recursive      (oe_dns_ldns.ldns_resolver_set_recursive)
#define ldns_resolver_set_retrans        (oe_dns_ldns.ldns_resolver_set_retrans)
#define ldns_resolver_set_retry          (oe_dns_ldns.ldns_resolver_set_retry)
#define ldns_resolver_set_timeout        (oe_dns_ldns.ldns_resolver_set_timeout)
#define ldns_resolver_set_tsig_algorithm (oe_dns_ldns.ldns_resolver_set_tsig_algorithm)
#define ldns_resolver_set_tsig_keydata   (oe_dns_ldns.ldns_resolver_set_tsig_keydata)
#define ldns_resolver_set_tsig_keyname   (oe_dns_ldns.ldns_resolver_set_tsig_keyname)
#define ldns_rr_free                     (oe_dns_ldns.ldns_rr_free)
#define ldns_rr_get_type                 (oe_dns_ldns.ldns_rr_get_type)
#define ldns_rr_list_deep_free           (oe_dns_ldns.ldns_rr_list_deep_free)
#define ldns_rr_list_new                 (oe_dns_ldns.ldns_rr_list_new)
#define ldns_rr_list_push_rr             (oe_dns_ldns.ldns_rr_list_push_rr)
#define ldns_rr_list_rr                  (oe_dns_ldns.ldns_rr_list_rr)
#define ldns_rr_list_rr_count            (oe_dns_ldns.ldns_rr_list_rr_count)
#define ldns_rr_new_frm_str              (oe_dns_ldns.ldns_rr_new_frm_str)
#define ldns_rr_owner                    (oe_dns_ldns.ldns_rr_owner)
#define ldns_rr_rd_count                 (oe_dns_ldns.ldns_rr_rd_count)
#define ldns_rr_rdf                      (oe_dns_ldns.ldns_rr_rdf)
#define ldns_rr_set_class                (oe_dns_ldns.ldns_rr_set_class)
#define ldns_send                        (oe_dns_ldns.ldns_send)
#define ldns_update_pkt_new              (oe_dns_ldns.ldns_update_pkt_new)
#define ldns_rcodes                      (*oe_dns_ldns.ldns_rcodes)
#endif

#endif
