/* dns/ldns_api.c — libldns loaded on first use (see ldns_api.h). */
#define OE_DNS_LDNS_API_TABLE_ONLY
#include "dns/ldns_api.h"

oe_dns_ldns_api_t oe_dns_ldns;

OE_DYNLIB_LOADER(lib, oe_dns_ldns, OE_DNS_LDNS_SYMS, "libldns.so.3", "libldns3");

int oe_dns_ldns_load(char *err, size_t errlen)
{
    return oe_dynlib_load(&lib, err, errlen);
}
