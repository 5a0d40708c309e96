/*
 * upstream/internal.h — shared by the files of the upstream module only (upstream.c:
 * connections; pool.c: pools, health, balancing). Nothing outside pkg/upstream includes it.
 */
#ifndef OE_UPSTREAM_INTERNAL_H
#define OE_UPSTREAM_INTERNAL_H

#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/socket.h>

struct oe_upstream_server {
    unsigned id; /* index into each thread's idle lists */
    char *url;
    char *host;
    char port_str[8];
    uint16_t port;
    int literal; /* addr is resolved */
    struct sockaddr_storage addr;
    socklen_t addrlen;

    /* health (written by any thread: atomics, or the lock for the text) */
    char *site;              /* its site's name: a server is one site's (site + url name it) */
    int up;                  /* 1: requests may go here */
    int answered;            /* 1 once it answered (a probe or a request) */
    unsigned fails, oks;     /* in a row */
    unsigned ejections;      /* in a row: the back-off doubles with each */
    uint64_t eject_until_ms; /* no return before this (monotonic ms) */
    pthread_mutex_t lock;    /* last_error */
    char last_error[160];
    uint64_t last_error_at; /* Unix time */

    /* counters */
    uint64_t requests, errors, active, websockets;

    /* the active prober; the settings change on a reload (under lock) */
    char health_path[256];
    uint64_t health_interval_ms;
    unsigned rise, fall;
    uint64_t next_probe_ms;
    struct oe_upstream_server *next; /* in the registry of every server ever made */
};

#endif
