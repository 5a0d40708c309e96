/*
 * dns/internal.h — shared between the files of the dns module only (dns.c, exec.c).
 * Owns: the exec hook runner's signature.
 */
#ifndef OE_DNS_INTERNAL_H
#define OE_DNS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

/*
 * Runs `command action fqdn value` (through /bin/sh, which reports the exit status on a
 * pipe of its own), logging its output line by line. Bounded by timeout_ms; when *stop
 * becomes set a "present" run is stopped at once and a "cleanup" run gets 5 s more. The
 * hook gets the environment minus every OTT_EDGE_* variable. Returns 0 on exit status 0.
 */
int oe_dns_exec_run(const char *command, const char *action, const char *fqdn, const char *value, uint64_t timeout_ms,
                    const int *stop, char *err, size_t errlen);

#endif
