/*
 * run.h — between main.c (arguments, the short commands) and run.c (the serving process).
 */
#ifndef OE_CMD_RUN_H
#define OE_CMD_RUN_H

#include "config/config.h"

#define EXIT_CONFIG 2

typedef struct {
    const char *config;
    const char *command; /* run | check-config | healthcheck | status | reload | config-reference */
    int ready;
    const char *admin;
    char **child_argv;
    char **argv; /* as given: an upgrade starts the new binary with them (minus "-- COMMAND") */
} args_t;

/* What a configuration needs beyond its own text, checked at start, by check-config and
 * before a reload: the files it names (htpasswd files, the admin token) and the libraries
 * its features load (libcrypt, libldns, libhiredis). 0, or -1 with a message naming the key. */
int edge_check_needs(const oe_config_t *cfg, char *err, size_t errlen);

/* Serves with cfg (main's; it outlives the call) until told to stop; returns the exit code. */
int edge_serve(const args_t *a, oe_config_t *cfg);

#endif
