/*
 * proxy/internal.h — shared by the files of the proxy module only (proxy.c: sites and
 * their paths; exchange.c: one proxied request; gen.c: generations; pages.c: error pages).
 * Nothing outside pkg/proxy includes it.
 */
#ifndef OE_PROXY_INTERNAL_H
#define OE_PROXY_INTERNAL_H

#include "proxy/proxy.h"

/* gen.c: a generation made around a payload (proxy.c's sites), freed with free_payload. */
oe_proxy_gen_t *oe_proxy_gen_new(const oe_config_t *cfg, void *payload, void (*free_payload)(void *));
void *oe_proxy_gen_payload(const oe_proxy_gen_t *g);
/* Frees a generation that was never published. */
void oe_proxy_gen_discard(oe_proxy_gen_t *g);
/* Puts g in service and retires the previous generation (main thread). */
void oe_proxy_gen_swap(oe_proxy_gen_t *g, oe_proxy_gen_free_cb free_cfg);

#endif
