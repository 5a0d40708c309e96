/*
 * ott-edge — HTTPS for one HTTP application (tuned for OpenTogetherTube).
 *
 * main wires the modules together and owns the process: arguments, configuration,
 * signals (SIGTERM/SIGINT drain, SIGHUP reload, SIGCHLD in entrypoint mode), and the
 * exit code. Everything else lives in pkg/.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "acme/acme.h"
#include "admin/admin.h"
#include "cluster/cluster.h"
#include "config/config.h"
#include "log/log.h"
#include "metrics/metrics.h"
#include "proxy/proxy.h"
#include "server/server.h"
#include "supervise/supervise.h"
#include "tls/tls.h"
#include "tunnel/tunnel.h"
#include "upstream/pool.h"
#include "util/util.h"

#define EXIT_CONFIG 2

static void usage(FILE *out)
{
    fputs("usage: ott-edge [--config FILE] [run] [-- COMMAND [ARGS...]]\n"
          "       ott-edge [--config FILE] check-config\n"
          "       ott-edge [--config FILE] healthcheck [--ready] [--admin HOST:PORT]\n"
          "       ott-edge [--config FILE] status [--admin HOST:PORT]\n"
          "       ott-edge --help | --version\n"
          "\n"
          "Terminates TLS (HTTP/1.1, HTTP/2, WebSocket) for one upstream HTTP application,\n"
          "with certificates from ACME, and proxies to it (default http://127.0.0.1:8080).\n"
          "\n"
          "  --config FILE   YAML configuration (default: $OTT_EDGE_CONFIG, else\n"
          "                  /etc/ott-edge/config.yaml if it exists); every key can also be\n"
          "                  set as OTT_EDGE_<KEY> or OTT_EDGE_<KEY>_FILE in the environment\n"
          "  run             serve (the default)\n"
          "  check-config    validate and print the effective configuration (secrets redacted)\n"
          "  config-reference  print the Markdown table of every configuration key\n"
          "  healthcheck     exit 0 when the admin listener's /livez (or /readyz with --ready)\n"
          "                  answers 200, else 1 (for Docker HEALTHCHECK; needs no curl)\n"
          "  status          print what the admin listener's status page shows (certificates,\n"
          "                  upstream, live counts, ACME events); exit 1 if it cannot be read\n"
          "  -- COMMAND ...  entrypoint mode: start COMMAND as a supervised child\n"
          "\n"
          "Signals: SIGTERM/SIGINT drain and exit, SIGHUP reloads certificate files.\n"
          "Exit codes: 0 ok, 1 runtime error, 2 configuration error.\n",
          out);
}

typedef struct {
    const char *config;
    const char *command; /* run | check-config | healthcheck | status | config-reference */
    int ready;
    const char *admin;
    char **child_argv;
} args_t;

static int parse_args(int argc, char **argv, args_t *a)
{
    *a = (args_t){.command = "run"};
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (strcmp(s, "--") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "ott-edge: '--' must be followed by a command\n");
                return -1;
            }
            a->child_argv = argv + i + 1;
            return 0;
        } else if (strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0) {
            usage(stdout);
            exit(0);
        } else if (strcmp(s, "--version") == 0 || strcmp(s, "-V") == 0) {
            printf("ott-edge %s\n", OE_VERSION);
            exit(0);
        } else if (strcmp(s, "--config") == 0 || strcmp(s, "-c") == 0) {
            if (++i >= argc) {
                fprintf(stderr, "ott-edge: %s needs a file name\n", s);
                return -1;
            }
            a->config = argv[i];
        } else if (strncmp(s, "--config=", 9) == 0) {
            a->config = s + 9;
        } else if (strcmp(s, "--ready") == 0) {
            a->ready = 1;
        } else if (strcmp(s, "--admin") == 0) {
            if (++i >= argc) {
                fprintf(stderr, "ott-edge: --admin needs HOST:PORT\n");
                return -1;
            }
            a->admin = argv[i];
        } else if (strcmp(s, "run") == 0 || strcmp(s, "check-config") == 0 || strcmp(s, "healthcheck") == 0 ||
                   strcmp(s, "config-reference") == 0 || strcmp(s, "status") == 0) {
            a->command = s;
        } else {
            fprintf(stderr, "ott-edge: unknown argument '%s' (see --help)\n", s);
            return -1;
        }
    }
    return 0;
}

/* The admin-listener clients: healthcheck and status (--admin, else listen.admin). */
static int admin_client(const args_t *a)
{
    char err[OE_CONFIG_ERR_MAX] = "";
    const char *addr = a->admin;
    oe_config_t *cfg = NULL;
    if (addr == NULL) {
        if ((cfg = oe_config_load(a->config, NULL, err, sizeof(err))) == NULL) {
            fprintf(stderr, "%s\n", err);
            return EXIT_CONFIG;
        }
        addr = cfg->listen.admin;
    }
    int rc;
    if (strcmp(a->command, "status") == 0)
        rc = oe_admin_status_print(addr, stdout, err, sizeof(err));
    else
        rc = oe_admin_healthcheck(addr, a->ready ? "/readyz" : "/livez", err, sizeof(err));
    if (rc != 0)
        fprintf(stderr, "%s: %s\n", a->command, err);
    oe_config_free(cfg);
    return rc == 0 ? 0 : 1;
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

/* Every site's first certificate: its files, else a self-signed one (ACME replaces it).
 * Returns 0, or the exit code with a message: EXIT_CONFIG for a file that cannot be used. */
static int load_certificates(const oe_config_t *cfg, char *err, size_t errlen)
{
    char e[512] = "";
    if (oe_tls_set_sites(cfg, err, errlen) != 0)
        return 1;
    for (size_t i = 0; i < cfg->sites_count; i++) {
        const oe_site_t *s = &cfg->sites[i];
        if (s->cert_file != NULL) {
            if (oe_tls_load_files_for(s->name, s->cert_file, s->key_file, e, sizeof(e)) != 0) {
                if (cfg->sites_listed) /* "sites[1].tls.cert_file: cannot read ..." */
                    snprintf(err, errlen, "sites[%zu].%s", i, e);
                else
                    snprintf(err, errlen, "%s", e);
                return EXIT_CONFIG;
            }
        } else if (oe_tls_use_selfsigned_for(s->name, s->domains.items, s->domains.count, e, sizeof(e)) != 0) {
            snprintf(err, errlen, "site %s: %s", s->name, e);
            return 1;
        }
    }
    return 0;
}

/* SIGHUP: every site's certificate files are read again; a bad file keeps the old one. */
static void reload(const oe_config_t *cfg)
{
    char err[512] = "";
    int any = 0;
    for (size_t i = 0; i < cfg->sites_count; i++) {
        const oe_site_t *s = &cfg->sites[i];
        if (s->cert_file == NULL || oe_config_site_acme(cfg, i))
            continue;
        any = 1;
        if (oe_tls_load_files_for(s->name, s->cert_file, s->key_file, err, sizeof(err)) != 0)
            oe_log(OE_LOG_ERROR, "reload_failed", "error", err, "msg", "the previous certificate is still served",
                   "site", s->name, NULL);
        else
            oe_log(OE_LOG_INFO, "reloaded", "cert_file", s->cert_file, "site", s->name, NULL);
    }
    if (!any)
        oe_log(OE_LOG_INFO, "reload", "msg", "no tls.cert_file configured: nothing to reload", NULL);
}

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

typedef struct {
    const oe_config_t *cfg;
    oe_server_t *srv;
    pid_t child;
    int child_status;
    int child_exited;
} run_state_t;

/* Handles SIGCHLD: reaps everything; returns 1 when the supervised child is gone. */
static int on_sigchld(run_state_t *st)
{
    if (st->child <= 0 || st->child_exited)
        return 0;
    if (oe_supervise_reap(st->child, &st->child_status)) {
        st->child_exited = 1;
        return 1;
    }
    return 0;
}

/* The drain: readiness off, keep serving for shutdown.delay, stop accepting, let work
 * finish for up to shutdown.grace. Signals keep being handled meanwhile. In entrypoint
 * mode open WebSockets are not waited for: the child (OTT) is told to stop next and
 * closes them itself with 1001, which makes browsers reconnect at once. */
static void drain(run_state_t *st, const sigset_t *set, uint64_t delay_ms)
{
    int count_ws = st->child <= 0 || st->child_exited;
    const oe_config_t *cfg = st->cfg;
    oe_server_set_draining(st->srv);
    char d[32], g[32];
    snprintf(d, sizeof(d), "%llu", (unsigned long long)delay_ms);
    snprintf(g, sizeof(g), "%llu", (unsigned long long)cfg->shutdown.grace_ms);
    oe_log(OE_LOG_INFO, "draining", "delay_ms", d, "grace_ms", g, NULL);

    uint64_t end = oe_util_now_ms() + delay_ms;
    for (uint64_t now; (now = oe_util_now_ms()) < end;) {
        int sig = wait_signal(set, (long)(end - now));
        if (sig == SIGCHLD)
            on_sigchld(st);
        else if (sig == SIGINT && delay_ms > 0)
            break; /* a second Ctrl-C skips the delay */
    }
    oe_server_stop_accepting(st->srv);
    end = oe_util_now_ms() + cfg->shutdown.grace_ms;
    while (oe_util_now_ms() < end && oe_server_busy(st->srv, count_ws) > 0) {
        if (wait_signal(set, 50) == SIGCHLD)
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
            if (wait_signal(set, 20) == SIGCHLD)
                on_sigchld(st);
    }
}

static int run(const args_t *a, oe_config_t *cfg)
{
    char err[1024] = "";
    run_state_t st = {.cfg = cfg};
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGUSR2);
    sigaddset(&set, SIGQUIT);
    /* every thread inherits this mask: only this one receives the signals */
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* every idle WebSocket is a descriptor: take all the kernel allows us */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }

    if (oe_tls_init(err, sizeof(err)) != 0 ||
        oe_tls_set_session_lifetime(cfg->tls.session_lifetime_ms / 1000, err, sizeof(err)) != 0) {
        oe_log(OE_LOG_ERROR, "startup_failed", "error", err, NULL);
        return 1;
    }
    int rc = load_certificates(cfg, err, sizeof(err));
    if (rc != 0) {
        oe_log(OE_LOG_ERROR, "startup_failed", "error", err, NULL);
        return rc;
    }
    if ((st.srv = oe_server_bind(cfg, err, sizeof(err))) == NULL) {
        oe_log(OE_LOG_ERROR, "startup_failed", "error", err, NULL);
        return 1;
    }
    oe_admin_t *admin = NULL;
    if (cfg->listen.admin[0] != '\0' && (admin = oe_admin_start(cfg, err, sizeof(err))) == NULL) {
        oe_log(OE_LOG_ERROR, "startup_failed", "error", err, NULL);
        return 1;
    }
    oe_cluster_t *cluster = NULL; /* cluster.redis: before accepting, so the other replicas already count this one for
                                     their challenges; a configuration that cannot work exits 2 */
    if (cfg->cluster.redis && oe_config_acme_enabled(cfg) &&
        (cluster = oe_cluster_start(cfg, err, sizeof(err))) == NULL) {
        oe_log(OE_LOG_ERROR, "startup_failed", "error", err, NULL);
        return 2;
    }
    if (drop_privileges(cfg, err, sizeof(err)) != 0 || oe_server_start(st.srv, err, sizeof(err)) != 0 ||
        oe_upstream_prober_start(err, sizeof(err)) != 0) {
        oe_log(OE_LOG_ERROR, "startup_failed", "error", err, NULL);
        return 1;
    }
    oe_acme_t *acme = NULL;
    if (oe_config_acme_enabled(cfg) && (acme = oe_acme_start(cfg, err, sizeof(err))) == NULL) {
        oe_log(OE_LOG_ERROR, "startup_failed", "error", err, NULL);
        return 1;
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
        int sig = wait_signal(&set, -1);
        if (sig == SIGHUP) {
            reload(cfg);
            if (st.child > 0 && !st.child_exited)
                oe_supervise_forward(st.child, SIGHUP);
        } else if (sig == SIGUSR1 || sig == SIGUSR2) {
            if (st.child > 0 && !st.child_exited)
                oe_supervise_forward(st.child, sig);
        } else if (sig == SIGCHLD) {
            if (on_sigchld(&st)) {
                char code[16];
                snprintf(code, sizeof(code), "%d", st.child_status);
                oe_log(OE_LOG_ERROR, "child_exited", "status", code, "msg",
                       "the supervised command ended on its own: shutting down", NULL);
                exit_code = st.child_status != 0 ? st.child_status : 1;
                drain(&st, &set, 0);
                break;
            }
        } else if (sig == SIGTERM || sig == SIGINT || sig == SIGQUIT) {
            oe_log(OE_LOG_INFO, "signal", "signal",
                   sig == SIGTERM  ? "SIGTERM"
                   : sig == SIGINT ? "SIGINT"
                                   : "SIGQUIT",
                   NULL);
            drain(&st, &set, sig == SIGQUIT ? 0 : cfg->shutdown.delay_ms);
            if (st.child > 0) {
                int status = st.child_exited ? st.child_status : oe_supervise_stop(st.child, cfg->shutdown.grace_ms);
                exit_code = status;
            }
            break;
        }
    }
    oe_acme_stop(acme);
    oe_cluster_stop(cluster);
    oe_upstream_prober_stop();
    oe_server_stop(st.srv);
    oe_admin_stop(admin);
    char code[16];
    snprintf(code, sizeof(code), "%d", exit_code);
    oe_log(OE_LOG_INFO, "stopped", "exit_code", code, NULL);
    return exit_code;
}

int main(int argc, char **argv)
{
    args_t a;
    if (parse_args(argc, argv, &a) != 0)
        return EXIT_CONFIG;
    if (strcmp(a.command, "healthcheck") == 0 || strcmp(a.command, "status") == 0)
        return admin_client(&a);
    if (strcmp(a.command, "config-reference") == 0) {
        oe_config_print_reference(stdout);
        return 0;
    }

    char err[OE_CONFIG_ERR_MAX] = "";
    oe_config_t *cfg = oe_config_load(a.config, NULL, err, sizeof(err));
    if (cfg == NULL) {
        fprintf(stderr, "%s\n", err);
        return EXIT_CONFIG;
    }
    if (strcmp(a.command, "check-config") == 0) {
        oe_config_print(cfg, stdout);
        oe_config_free(cfg);
        return 0;
    }
    oe_log_setup(cfg->log.format == OE_LOG_FORMAT_JSON, cfg->log.level);
    /* from here on every stderr line is a log line: what libh2o prints too */
    if (oe_log_capture_stdio() != 0)
        oe_log(OE_LOG_WARN, "stderr_capture_failed", "msg", "library messages will reach stderr as they are", NULL);
    oe_log(OE_LOG_INFO, "starting", "version", OE_VERSION, "config", cfg->source ? cfg->source : "(environment only)",
           NULL);
    int rc = run(&a, cfg);
    oe_config_free(cfg);
    return rc;
}
