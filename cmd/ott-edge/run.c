/*
 * run — the serving process: startup, the signal loop, configuration reload (SIGHUP),
 * binary upgrade (SIGUSR2), the drains, and the supervisor duties of PID 1 and of the
 * entrypoint mode.
 *
 * Signals:
 *   SIGTERM / SIGINT    drain (readiness off for shutdown.delay, stop accepting, let work
 *                       finish for shutdown.grace, 1001 to WebSockets) and exit
 *   SIGQUIT             the same without the delay
 *   SIGHUP              reload the whole configuration (file + environment)
 *   SIGUSR2             binary upgrade: start the binary (the file at this process's own
 *                       path, so a replaced file is picked up) with the listening sockets;
 *                       once it serves, this process stops accepting and keeps its open
 *                       connections until they end or shutdown.upgrade_grace passes
 *   SIGUSR1             in a process a supervisor started: retire (the same drain as
 *                       after an upgrade, then exit); in entrypoint mode: passed on to
 *                       the application
 * A process whose exit would end the service — PID 1 in a container, or the entrypoint
 * mode's parent of the application — cannot hand over and leave: it stays as the
 * supervisor, starts each new ott-edge as its child (with a copy of the listening sockets
 * kept for later upgrades), retires the previous one, and forwards SIGHUP to the one that
 * serves.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "access/access.h"
#include "acme/acme.h"
#include "admin/admin.h"
#include "cluster/cluster.h"
#include "config/config.h"
#include "dns/dns.h"
#include "handover/handover.h"
#include "log/log.h"
#include "metrics/metrics.h"
#include "proxy/proxy.h"
#include "run.h"
#include "server/server.h"
#include "supervise/supervise.h"
#include "tls/tls.h"
#include "tunnel/tunnel.h"
#include "upstream/pool.h"
#include "util/util.h"

#define UPGRADE_READY_TIMEOUT_MS 30000
#define SUPERVISOR_ENV           "OE_SUPERVISOR_PID" /* not OTT_EDGE_*: those are configuration */
#define RETIRING_MAX             16
#define KEEP_MAX                 (OE_HANDOVER_MAX_FDS + 1)
#define RETIRE_MIN_MS            1500 /* see retire_step() */

typedef struct {
    const args_t *a;
    oe_config_t *cfg0;   /* main's configuration (generation 1's); lives to the end */
    oe_proxy_gen_t *gen; /* held: the generation in service, whose configuration is current */
    oe_server_t *srv;
    oe_admin_t *admin;
    oe_acme_t *acme;
    oe_proxy_gen_t *acme_gen; /* held while ACME runs: its configuration */
    oe_cluster_t *cluster; /* cluster.redis (read at start, for the process's life): state shared with the replicas */
    sigset_t set;

    pid_t child; /* the supervised command (entrypoint mode) */
    int child_status;
    int child_exited;

    int supervisor;      /* PID 1 or entrypoint mode: stays when it hands over */
    pid_t my_supervisor; /* this process was started by a supervisor's upgrade */
    int serving;         /* this process has listeners and workers */
    pid_t edge;          /* supervisor: the ott-edge child that serves (0: none) */
    pid_t retiring[RETIRING_MAX];
    size_t nretiring;
    oe_handover_fd_t keep[KEEP_MAX]; /* supervisor: its copies of the listening sockets */
    size_t nkeep;

    int retiring_self; /* handed over: draining the connections left */
    uint64_t retire_begin, retire_end;
    int ws_closing;
    uint64_t ws_close_end;
} run_state_t;

static const oe_config_t *current(const run_state_t *st)
{
    return st->gen != NULL ? oe_proxy_gen_config(st->gen) : st->cfg0;
}

/* Drops root after the ports are bound, when configured to. */
static int drop_privileges(const oe_config_t *cfg, char *err, size_t errlen)
{
    if (getuid() != 0 || cfg->user == NULL || cfg->user[0] == '\0')
        return 0;
    struct passwd *pw = getpwnam(cfg->user);
    if (pw == NULL) {
        snprintf(err, errlen, "user: no such user \"%s\"", cfg->user);
        return -1;
    }
    if (setgroups(0, NULL) != 0 || setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0) {
        snprintf(err, errlen, "user: cannot switch to \"%s\": %s", cfg->user, strerror(errno));
        return -1;
    }
    oe_log(OE_LOG_INFO, "privileges_dropped", "user", cfg->user, NULL);
    return 0;
}

/* Site i's name for messages: "sites[1]." in the sites form, "" in the one-site form. */
static void site_prefix(const oe_config_t *cfg, size_t i, char *out, size_t len)
{
    if (cfg->sites_listed)
        snprintf(out, len, "sites[%zu].", i);
    else if (len > 0)
        out[0] = '\0';
}

/*
 * Every site's certificate for cfg: its files (read and checked first, all of them, so a bad
 * file changes nothing), else the one it serves already, else a self-signed one (ACME
 * replaces it). Returns 0, or the exit code with a message: EXIT_CONFIG for a file that
 * cannot be used. On failure the sites are as they were.
 */
static int apply_certificates(const oe_config_t *cfg, const oe_config_t *prev, char *err, size_t errlen)
{
    char e[512] = "", where[32];
    oe_tls_cert_t **certs = calloc(cfg->sites_count, sizeof(*certs));
    int rc = 0;
    if (certs == NULL) {
        snprintf(err, errlen, "out of memory");
        return 1;
    }
    for (size_t i = 0; i < cfg->sites_count && rc == 0; i++) {
        const oe_site_t *s = &cfg->sites[i];
        if (s->cert_file != NULL &&
            (certs[i] = oe_tls_cert_from_files(s->cert_file, s->key_file, e, sizeof(e))) == NULL) {
            site_prefix(cfg, i, where, sizeof(where));
            snprintf(err, errlen, "%s%s", where, e); /* "sites[1].tls.cert_file: cannot read ..." */
            rc = EXIT_CONFIG;
        }
    }
    if (rc == 0 && oe_tls_set_sites(cfg, err, errlen) != 0)
        rc = 1;
    for (size_t i = 0; i < cfg->sites_count && rc == 0; i++) {
        const oe_site_t *s = &cfg->sites[i];
        oe_tls_info_t info;
        if (certs[i] != NULL) {
            oe_tls_cert_t *c = certs[i];
            certs[i] = NULL;
            if (oe_tls_cert_install(s->name, c, e, sizeof(e)) != 0) {
                snprintf(err, errlen, "site %s: %s", s->name, e);
                rc = 1;
            }
        } else if ((oe_tls_info_for(s->name, &info) != 0 || !info.loaded) &&
                   oe_tls_use_selfsigned_for(s->name, s->domains.items, s->domains.count, e, sizeof(e)) != 0) {
            snprintf(err, errlen, "site %s: %s", s->name, e);
            rc = 1;
        }
    }
    if (rc != 0 && prev != NULL) {
        char e2[256];
        oe_tls_set_sites(prev, e2, sizeof(e2)); /* the sites as they were (their certificates stayed) */
    }
    for (size_t i = 0; i < cfg->sites_count; i++)
        oe_tls_cert_free(certs[i]);
    free(certs);
    return rc;
}

/* ---- ACME ------------------------------------------------------------------------------ */

static int start_acme(run_state_t *st, char *err, size_t errlen)
{
    const oe_config_t *cfg = current(st);
    if (st->acme != NULL || !oe_config_acme_enabled(cfg))
        return 0;
    st->acme_gen = oe_proxy_gen_acquire(); /* ACME reads this configuration until it stops */
    if ((st->acme = oe_acme_start(cfg, err, errlen)) == NULL) {
        oe_proxy_gen_release(st->acme_gen);
        st->acme_gen = NULL;
        return -1;
    }
    return 0;
}

static void stop_acme(run_state_t *st)
{
    oe_acme_stop(st->acme);
    st->acme = NULL;
    oe_proxy_gen_release(st->acme_gen);
    st->acme_gen = NULL;
}

/* ---- reload (SIGHUP) ------------------------------------------------------------------- */

static void reload_failed(const char *err)
{
    oe_log(OE_LOG_ERROR, "reload_failed", "error", err, "msg", "the configuration in service is unchanged", NULL);
    oe_admin_note_reload(0, err);
}

int edge_check_needs(const oe_config_t *cfg, char *err, size_t errlen)
{
    return oe_access_check(cfg, err, errlen) != 0 || oe_admin_check(cfg, err, errlen) != 0 ||
                   oe_dns_check_config(cfg, err, errlen) != 0 || oe_cluster_check_config(cfg, err, errlen) != 0
               ? -1
               : 0;
}

/*
 * The whole configuration, read again as at start (file + environment) and checked
 * completely before anything changes: certificates from files, sites and their upstream
 * pools, access rules, cache and compression, log settings. Requests and WebSockets under
 * way keep the configuration they started with.
 */
static void reload(run_state_t *st)
{
    char err[OE_CONFIG_ERR_MAX] = "", keys[256], gen[24];
    const oe_config_t *old = current(st);
    oe_log(OE_LOG_INFO, "reloading", "config", st->a->config != NULL ? st->a->config : "(default)", NULL);
    oe_config_t *cfg = oe_config_load(st->a->config, NULL, err, sizeof(err));
    if (cfg == NULL) {
        reload_failed(err);
        return;
    }
    if (edge_check_needs(cfg, err, sizeof(err)) != 0) {
        oe_config_free(cfg);
        reload_failed(err);
        return;
    }
    if (apply_certificates(cfg, old, err, sizeof(err)) != 0) {
        oe_config_free(cfg);
        reload_failed(err);
        return;
    }
    if (oe_server_reload(st->srv, cfg, err, sizeof(err)) != 0) {
        char e2[256];
        oe_tls_set_sites(old, e2, sizeof(e2));
        oe_config_free(cfg);
        reload_failed(err);
        return;
    }
    /* cfg belongs to its generation now */
    oe_proxy_gen_t *prev = st->gen;
    st->gen = oe_proxy_gen_acquire();
    oe_log_setup(cfg->log.format == OE_LOG_FORMAT_JSON, cfg->log.level);
    oe_access_reload(); /* htpasswd files read again */
    oe_admin_reload();  /* admin.token_file read again */
    /* against what this process started with: that is what its sockets and threads are */
    size_t nkeys = oe_config_upgrade_keys(st->cfg0, cfg, keys, sizeof(keys));
    if (nkeys > 0)
        oe_log(OE_LOG_WARN, "reload_needs_upgrade", "keys", keys, "msg",
               "these keys keep their old value until a binary upgrade (SIGUSR2) or a restart", NULL);
    if (!oe_config_acme_same(old, cfg)) {
        stop_acme(st);
        if (start_acme(st, err, sizeof(err)) != 0)
            oe_log(OE_LOG_ERROR, "acme_restart_failed", "error", err, "msg", "no certificates are ordered", NULL);
    }
    oe_proxy_gen_release(prev);
    snprintf(gen, sizeof(gen), "%llu", (unsigned long long)oe_server_generation());
    char nsites[16];
    snprintf(nsites, sizeof(nsites), "%zu", cfg->sites_count);
    oe_log(OE_LOG_INFO, "reloaded", "generation", gen, "sites", nsites, NULL);
    char msg[300];
    snprintf(msg, sizeof(msg), "%s%s", nkeys > 0 ? "needs an upgrade to apply: " : "", nkeys > 0 ? keys : "");
    oe_admin_note_reload(1, msg);
}

/* ---- drains ---------------------------------------------------------------------------- */

/* Waits for a signal for at most ms milliseconds (ms < 0: forever); returns it or 0. */
static int wait_signal(const sigset_t *set, long ms)
{
    siginfo_t info;
    int sig;
    if (ms < 0) {
        sig = sigwaitinfo(set, &info);
    } else {
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
        sig = sigtimedwait(set, &info, &ts);
    }
    return sig > 0 ? sig : 0;
}

static void remove_retiring(run_state_t *st, size_t i)
{
    st->retiring[i] = st->retiring[--st->nretiring];
}

/* Handles SIGCHLD: reaps everything; returns 1 when the supervised command is gone, 2
 * when the ott-edge child that serves is gone. */
static int on_sigchld(run_state_t *st)
{
    int status, gone = 0;
    char pid[16], code[16];
    if (st->child > 0 && !st->child_exited && oe_supervise_reap(st->child, &st->child_status)) {
        st->child_exited = 1;
        gone = 1;
    } else {
        oe_supervise_reap(-1, NULL); /* whatever else ended (an upgrade that failed) */
    }
    for (size_t i = 0; i < st->nretiring;) {
        if (oe_supervise_reap(st->retiring[i], &status)) {
            snprintf(pid, sizeof(pid), "%d", (int)st->retiring[i]);
            snprintf(code, sizeof(code), "%d", status);
            oe_log(OE_LOG_INFO, "retired_process_exited", "pid", pid, "status", code, NULL);
            remove_retiring(st, i);
        } else {
            i++;
        }
    }
    if (st->edge > 0 && oe_supervise_reap(st->edge, &status)) {
        snprintf(pid, sizeof(pid), "%d", (int)st->edge);
        snprintf(code, sizeof(code), "%d", status);
        oe_log(OE_LOG_ERROR, "serving_process_exited", "pid", pid, "status", code, "msg",
               "the ott-edge that served ended on its own: shutting down", NULL);
        st->edge = 0;
        if (gone == 0)
            gone = 2;
    }
    return gone;
}

/* The drain: readiness off, keep serving for shutdown.delay, stop accepting, let work
 * finish for up to shutdown.grace. Signals keep being handled meanwhile. In entrypoint
 * mode open WebSockets are not waited for: the child (OTT) is told to stop next and
 * closes them itself with 1001, which makes browsers reconnect at once. */
static void drain(run_state_t *st, uint64_t delay_ms)
{
    int count_ws = st->child <= 0 || st->child_exited;
    const oe_config_t *cfg = current(st);
    oe_server_set_draining(st->srv);
    char d[32], g[32];
    snprintf(d, sizeof(d), "%llu", (unsigned long long)delay_ms);
    snprintf(g, sizeof(g), "%llu", (unsigned long long)cfg->shutdown.grace_ms);
    oe_log(OE_LOG_INFO, "draining", "delay_ms", d, "grace_ms", g, NULL);

    uint64_t end = oe_util_now_ms() + delay_ms;
    for (uint64_t now; (now = oe_util_now_ms()) < end;) {
        int sig = wait_signal(&st->set, (long)(end - now));
        if (sig == SIGCHLD)
            on_sigchld(st);
        else if (sig == SIGINT && delay_ms > 0)
            break; /* a second Ctrl-C skips the delay */
    }
    oe_server_stop_accepting(st->srv);
    end = oe_util_now_ms() + cfg->shutdown.grace_ms;
    while (oe_util_now_ms() < end && oe_server_busy(st->srv, count_ws) > 0) {
        if (wait_signal(&st->set, 50) == SIGCHLD)
            on_sigchld(st);
    }
    uint64_t left = oe_server_busy(st->srv, count_ws);
    if (left > 0) {
        char n[32];
        snprintf(n, sizeof(n), "%llu", (unsigned long long)left);
        oe_log(OE_LOG_WARN, "drain_timeout", "still_busy", n, "msg", "closing what is left", NULL);
    }
    /* WebSockets still open end with a close frame (1001 Going Away), not a TCP reset:
     * browsers tell a deploy from a network fault and reconnect at once */
    if (oe_server_websockets(st->srv) > 0) {
        oe_server_close_websockets(st->srv);
        end = oe_now_ms() + OE_TUNNEL_CLOSE_WAIT_MS + 200;
        while (oe_now_ms() < end && oe_server_websockets(st->srv) > 0)
            if (wait_signal(&st->set, 20) == SIGCHLD)
                on_sigchld(st);
    }
}

/* After a hand-over: stop accepting (the new process accepts on the same sockets), keep
 * the open connections until they end or grace_ms passes. retire_step() does the rest. */
static void retire_start(run_state_t *st, uint64_t grace_ms)
{
    char g[32];
    stop_acme(st);
    oe_admin_stop_accepting(st->admin);
    oe_server_stop_accepting(st->srv);
    st->retiring_self = 1;
    st->retire_begin = oe_util_now_ms();
    st->retire_end = st->retire_begin + grace_ms;
    snprintf(g, sizeof(g), "%llu", (unsigned long long)grace_ms);
    oe_log(OE_LOG_INFO, "retiring", "grace_ms", g, "msg",
           "not accepting any more; open connections and WebSockets stay until they end or the grace ends", NULL);
}

/* One turn of the retirement; returns 1 once this process serves nothing any more. */
static int retire_step(run_state_t *st)
{
    uint64_t now = oe_util_now_ms();
    if (!st->ws_closing) {
        /* libh2o sends the final GOAWAY (with the last stream it took) to every HTTP/2
         * connection a second after the first one, connections accepted meanwhile included
         * (their TLS handshake was under way): they are not closed before they got it */
        if ((oe_server_busy(st->srv, 1) > 0 || now < st->retire_begin + RETIRE_MIN_MS) && now < st->retire_end)
            return 0;
        uint64_t ws = oe_server_websockets(st->srv);
        if (ws > 0) {
            char n[32];
            snprintf(n, sizeof(n), "%llu", (unsigned long long)ws);
            oe_log(OE_LOG_INFO, "retire_grace_over", "websockets", n, "msg", "closing them with 1001 Going Away", NULL);
            oe_server_close_websockets(st->srv);
            st->ws_closing = 1;
            st->ws_close_end = now + OE_TUNNEL_CLOSE_WAIT_MS + 200;
            return 0;
        }
    } else if (oe_server_websockets(st->srv) > 0 && now < st->ws_close_end) {
        return 0;
    }
    oe_upstream_prober_stop();
    oe_server_stop(st->srv);
    st->srv = NULL;
    oe_admin_stop(st->admin);
    st->admin = NULL;
    st->serving = 0;
    st->retiring_self = 0;
    oe_log(OE_LOG_INFO, "retired", "msg", "every connection handed over or ended", NULL);
    return 1;
}

/* ---- binary upgrade (SIGUSR2) ---------------------------------------------------------- */

/* The sockets a new process gets: this one's listeners, or the supervisor's copies. */
static size_t upgrade_fds(run_state_t *st, oe_handover_fd_t *fds, size_t max)
{
    if (st->nkeep > 0 || !st->serving || st->retiring_self) {
        size_t n = st->nkeep < max ? st->nkeep : max;
        memcpy(fds, st->keep, n * sizeof(*fds));
        return n;
    }
    size_t n = oe_server_listen_fds(st->srv, fds, max - 1);
    int afd = oe_admin_listen_fd(st->admin);
    if (afd >= 0)
        fds[n++] = (oe_handover_fd_t){"admin", afd};
    return n;
}

/* A supervisor that serves keeps a copy of its listening sockets for later upgrades. */
static void keep_fds(run_state_t *st, const oe_handover_fd_t *fds, size_t n)
{
    for (size_t i = 0; i < n && st->nkeep < KEEP_MAX; i++) {
        int fd = fcntl(fds[i].fd, F_DUPFD_CLOEXEC, 3);
        if (fd >= 0)
            st->keep[st->nkeep++] = (oe_handover_fd_t){fds[i].name, fd};
    }
}

static void upgrade(run_state_t *st)
{
    char err[512] = "", extra[64] = "", pidbuf[16];
    oe_handover_fd_t fds[KEEP_MAX];
    if (st->retiring_self && !st->supervisor) {
        oe_log(OE_LOG_WARN, "upgrade_ignored", "msg", "this process has handed over already", NULL);
        return;
    }
    if ((!st->serving || st->retiring_self) && st->edge <= 0) {
        oe_log(OE_LOG_WARN, "upgrade_ignored", "msg", "no ott-edge serves under this supervisor", NULL);
        return;
    }
    /* the new binary gets this one's arguments, without the entrypoint command */
    char *argv[64];
    size_t argc = 0;
    for (char **p = st->a->argv; *p != NULL && strcmp(*p, "--") != 0 && argc < 63; p++)
        argv[argc++] = *p;
    argv[argc] = NULL;
    size_t n = upgrade_fds(st, fds, KEEP_MAX);
    if (st->supervisor)
        snprintf(extra, sizeof(extra), SUPERVISOR_ENV "=%ld", (long)getpid());
    oe_log(OE_LOG_INFO, "upgrade_starting", "binary", oe_handover_exe(), NULL);
    /* two ACME managers must never order at once: this one stops, the new one starts */
    int had_acme = st->acme != NULL;
    stop_acme(st);
    int ready_fd = -1;
    pid_t pid =
        oe_handover_spawn(oe_handover_exe(), argv, extra[0] ? extra : NULL, fds, n, &ready_fd, err, sizeof(err));
    if (pid > 0) {
        oe_supervise_watch(pid);
        if (oe_handover_wait_ready(ready_fd, UPGRADE_READY_TIMEOUT_MS, err, sizeof(err)) != 0) {
            kill(pid, SIGKILL);
            pid = -1;
        }
        close(ready_fd);
    }
    if (pid < 0) {
        oe_log(OE_LOG_ERROR, "upgrade_failed", "error", err, "msg", "this process keeps serving", NULL);
        if (had_acme && start_acme(st, err, sizeof(err)) != 0)
            oe_log(OE_LOG_ERROR, "acme_restart_failed", "error", err, NULL);
        return;
    }
    snprintf(pidbuf, sizeof(pidbuf), "%d", (int)pid);
    oe_log(OE_LOG_INFO, "upgrade_done", "new_pid", pidbuf, "msg", "the new process serves new connections", NULL);
    if (st->supervisor) {
        if (st->serving && !st->retiring_self) {
            if (st->nkeep == 0)
                keep_fds(st, fds, n);
            retire_start(st, current(st)->shutdown.upgrade_grace_ms);
        } else if (st->edge > 0) {
            kill(st->edge, SIGUSR1); /* retire */
            if (st->nretiring < RETIRING_MAX)
                st->retiring[st->nretiring++] = st->edge;
        }
        st->edge = pid;
    } else {
        retire_start(st, current(st)->shutdown.upgrade_grace_ms);
    }
}

/* ---- startup and the loop -------------------------------------------------------------- */

static int start(run_state_t *st, char *err, size_t errlen)
{
    oe_config_t *cfg = st->cfg0;
    int rc;
    if (oe_handover_init(err, errlen) < 0)
        return 1;
    if (oe_tls_init(err, errlen) != 0 ||
        oe_tls_set_session_lifetime(cfg->tls.session_lifetime_ms / 1000, err, errlen) != 0)
        return 1;
    if ((rc = apply_certificates(cfg, NULL, err, errlen)) != 0)
        return rc;
    if (oe_access_init(cfg, err, errlen) != 0)
        return EXIT_CONFIG;
    if ((st->srv = oe_server_bind(cfg, err, errlen)) == NULL)
        return 1;
    if (cfg->listen.admin[0] != '\0' && (st->admin = oe_admin_start(cfg, err, errlen)) == NULL)
        return 1;
    /* before accepting: the other replicas count this one for their challenges from now on (also
     * with ACME off: a reload may turn it on, and it must then find the cluster) */
    if (cfg->cluster.redis && (st->cluster = oe_cluster_start(cfg, err, errlen)) == NULL)
        return EXIT_CONFIG;
    if (drop_privileges(cfg, err, errlen) != 0 || oe_server_start(st->srv, err, errlen) != 0 ||
        oe_upstream_prober_start(err, errlen) != 0)
        return 1;
    st->serving = 1;
    st->gen = oe_proxy_gen_acquire();
    oe_handover_close_unused();
    if (start_acme(st, err, errlen) != 0)
        return 1;
    oe_handover_ready();
    return 0;
}

/* SIGTERM and friends: every ott-edge under this process drains, then the command stops. */
static int shut_down(run_state_t *st, int sig)
{
    const oe_config_t *cfg = current(st);
    uint64_t delay = sig == SIGQUIT ? 0 : cfg->shutdown.delay_ms;
    oe_log(OE_LOG_INFO, "signal", "signal", sig == SIGTERM ? "SIGTERM" : sig == SIGINT ? "SIGINT" : "SIGQUIT", NULL);
    for (size_t i = 0; i < st->nretiring; i++)
        kill(st->retiring[i], SIGTERM);
    if (st->edge > 0) {
        kill(st->edge, sig);
        if (st->nretiring < RETIRING_MAX) /* its exit is expected now */
            st->retiring[st->nretiring++] = st->edge;
        st->edge = 0;
    }
    if (st->serving && !st->retiring_self) {
        drain(st, delay);
    } else if (st->retiring_self) {
        /* handed over already: what is left gets shutdown.grace, not the upgrade's grace */
        uint64_t end = oe_util_now_ms() + cfg->shutdown.grace_ms;
        if (end < st->retire_end)
            st->retire_end = end;
        while (!retire_step(st))
            if (wait_signal(&st->set, 50) == SIGCHLD)
                on_sigchld(st);
    }
    /* the ott-edge children drain by themselves; wait for them (bounded) */
    uint64_t end = oe_util_now_ms() + delay + cfg->shutdown.grace_ms + OE_TUNNEL_CLOSE_WAIT_MS + 2000;
    while (st->nretiring > 0 && oe_util_now_ms() < end)
        if (wait_signal(&st->set, 50) == SIGCHLD)
            on_sigchld(st);
    if (st->child > 0)
        return st->child_exited ? st->child_status : oe_supervise_stop(st->child, cfg->shutdown.grace_ms);
    return 0;
}

int edge_serve(const args_t *a, oe_config_t *cfg)
{
    char err[1024] = "";
    run_state_t st = {.a = a, .cfg0 = cfg};
    sigemptyset(&st.set);
    int sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGCHLD, SIGUSR1, SIGUSR2, SIGQUIT};
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        sigaddset(&st.set, sigs[i]);
    /* every thread inherits this mask: only this one receives the signals */
    pthread_sigmask(SIG_BLOCK, &st.set, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* every idle WebSocket is a descriptor: take all the kernel allows us */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    const char *sup = getenv(SUPERVISOR_ENV);
    if (sup != NULL && atol(sup) == (long)getppid())
        st.my_supervisor = getppid();
    st.supervisor = getpid() == 1 || a->child_argv != NULL;

    int rc = start(&st, err, sizeof(err));
    if (rc != 0) {
        oe_log(OE_LOG_ERROR, "startup_failed", "error", err, NULL);
        return rc;
    }
    if (a->child_argv != NULL) {
        if ((st.child = oe_supervise_spawn(a->child_argv, err, sizeof(err))) < 0) {
            oe_log(OE_LOG_ERROR, "startup_failed", "error", err, NULL);
            return 1;
        }
        char pid[16];
        snprintf(pid, sizeof(pid), "%d", (int)st.child);
        oe_log(OE_LOG_INFO, "child_started", "command", a->child_argv[0], "pid", pid, NULL);
    }

    int exit_code = 0;
    for (;;) {
        int sig = wait_signal(&st.set, st.retiring_self ? 50 : 1000);
        oe_server_collect();
        if (st.retiring_self && retire_step(&st) && !st.supervisor)
            break; /* handed over and done */
        if (sig == SIGHUP) {
            if (st.serving && !st.retiring_self)
                reload(&st);
            else if (st.edge > 0)
                kill(st.edge, SIGHUP);
        } else if (sig == SIGUSR2) {
            if (st.my_supervisor > 0 && getppid() == st.my_supervisor)
                kill(st.my_supervisor, SIGUSR2); /* the supervisor runs upgrades */
            else
                upgrade(&st);
        } else if (sig == SIGUSR1) {
            if (st.my_supervisor > 0 && st.serving && !st.retiring_self)
                retire_start(&st, current(&st)->shutdown.upgrade_grace_ms);
            else if (st.child > 0 && !st.child_exited)
                oe_supervise_forward(st.child, SIGUSR1); /* the application's own signal */
            else
                oe_log(OE_LOG_INFO, "signal_ignored", "signal", "SIGUSR1", NULL);
        } else if (sig == SIGCHLD) {
            int gone = on_sigchld(&st);
            if (gone == 1) {
                char code[16];
                snprintf(code, sizeof(code), "%d", st.child_status);
                oe_log(OE_LOG_ERROR, "child_exited", "status", code, "msg",
                       "the supervised command ended on its own: shutting down", NULL);
                exit_code = st.child_status != 0 ? st.child_status : 1;
                shut_down(&st, SIGQUIT);
                break;
            }
            if (gone == 2) {
                shut_down(&st, SIGQUIT);
                exit_code = 1;
                break;
            }
        } else if (sig == SIGTERM || sig == SIGINT || sig == SIGQUIT) {
            int status = shut_down(&st, sig);
            if (st.child > 0)
                exit_code = status;
            break;
        }
    }
    stop_acme(&st);
    oe_cluster_stop(st.cluster);
    if (st.srv != NULL) {
        oe_upstream_prober_stop();
        oe_server_stop(st.srv);
    }
    oe_admin_stop(st.admin);
    oe_proxy_gen_release(st.gen);
    char code[16];
    snprintf(code, sizeof(code), "%d", exit_code);
    oe_log(OE_LOG_INFO, "stopped", "exit_code", code, NULL);
    return exit_code;
}
