/*
 * acme_parse — pure parsers for what an ACME server sends back: problem documents
 * (RFC 7807 / RFC 8555 §6.7), the directory, Retry-After, Link headers, RFC 3339
 * timestamps and ARI renewalInfo windows (RFC 9773). Also the pure scheduling arithmetic
 * (renewal time, retry backoff).
 * Owns: nothing but its arguments; no I/O, no globals, no logging — safe to call from a
 * fuzzer on hostile bytes (every input is bounded by its length argument).
 * Must not touch: the network, files, keys.
 */
#ifndef OE_ACME_PARSE_H
#define OE_ACME_PARSE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define OE_ACME_URL_MAX 1024

typedef struct oe_acme_problem {
    char type[256];        /* "urn:ietf:params:acme:error:badNonce" ("" when absent) */
    char detail[512];      /* human-readable detail ("" when absent) */
    int status;            /* HTTP status from the document, 0 when absent */
    char subproblems[512]; /* "name: type: detail; ..." summary of subproblems ("" when none) */
} oe_acme_problem_t;

/* Parses a problem document. Returns 0, or -1 when it is not a JSON object. */
int oe_acme_parse_problem(const char *json, size_t len, oe_acme_problem_t *out);
/* The part after "urn:ietf:params:acme:error:" ("badNonce"), or the whole type. */
const char *oe_acme_problem_short(const oe_acme_problem_t *p);

typedef struct oe_acme_directory {
    char new_nonce[OE_ACME_URL_MAX];
    char new_account[OE_ACME_URL_MAX];
    char new_order[OE_ACME_URL_MAX];
    char revoke_cert[OE_ACME_URL_MAX];
    char key_change[OE_ACME_URL_MAX];
    char renewal_info[OE_ACME_URL_MAX]; /* ARI; "" when the server has none */
    char terms_of_service[OE_ACME_URL_MAX];
    int eab_required; /* meta.externalAccountRequired */
} oe_acme_directory_t;

/* Parses the directory object. Returns 0, or -1 with a message (e.g. newOrder missing). */
int oe_acme_parse_directory(const char *json, size_t len, oe_acme_directory_t *out, char *err, size_t errlen);

/* Retry-After (RFC 9110 §10.2.3): delta-seconds or an HTTP-date, relative to now.
 * Stores the delay in seconds (0 for a date in the past; capped at 30 days).
 * Returns 0, or -1 when the value is not understood. */
int oe_acme_parse_retry_after(const char *value, size_t len, time_t now, uint64_t *out_s);

/* Link header (RFC 8288): copies the target of each link whose rel list contains rel
 * (case-insensitive) into urls, at most max of them. Returns the number copied.
 * Targets longer than OE_ACME_URL_MAX - 1 are skipped. */
size_t oe_acme_parse_link(const char *value, size_t len, const char *rel, char (*urls)[OE_ACME_URL_MAX], size_t max);

/* RFC 3339 timestamp ("2025-01-02T03:04:05.123Z", "...+01:00"). Returns 0 or -1. */
int oe_acme_parse_timestamp(const char *s, size_t len, time_t *out);

/* ARI renewalInfo response: the suggestedWindow. Returns 0, or -1 when malformed or
 * when end is before start. */
int oe_acme_parse_renewal_info(const char *json, size_t len, time_t *start, time_t *end);

/* When to renew a certificate valid from not_before to not_after: renew_before_s ahead
 * of not_after, or (renew_before_s == 0, or longer than the lifetime) when one third of
 * the lifetime remains. */
time_t oe_acme_renew_at(time_t not_before, time_t not_after, uint64_t renew_before_s);

/* Delay before retry number `failures` (1 = after the first failure): base doubling per
 * failure up to cap, plus jitter of up to half the delay taken from rnd (so each delay is
 * in [d, 1.5 d) and the sequence still grows). Never more than cap * 1.5. */
uint64_t oe_acme_backoff_ms(unsigned failures, uint64_t base_ms, uint64_t cap_ms, uint32_t rnd);

#endif
