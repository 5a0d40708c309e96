/*
 * ott-edge — HTTPS for one HTTP application (tuned for OpenTogetherTube).
 *
 * main owns the arguments, the short commands (check-config, healthcheck, status, reload,
 * config-reference), loading the configuration and setting up the log; run.c serves
 * (signals, reload, upgrade, drains). Everything else lives in pkg/.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin.h"
#include "config/config.h"
#include "log/log.h"
#include "run.h"

static void usage(FILE *out)
{
    fputs("usage: ott-edge [--config FILE] [run] [-- COMMAND [ARGS...]]\n"
          "       ott-edge [--config FILE] check-config\n"
          "       ott-edge [--config FILE] healthcheck [--ready] [--admin HOST:PORT]\n"
          "       ott-edge [--config FILE] status [--admin HOST:PORT]\n"
          "       ott-edge [--config FILE] reload [--admin HOST:PORT]\n"
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
          "  reload          make the running ott-edge reload its whole configuration (as\n"
          "                  SIGHUP does) and print the result; exit 1 if it was refused\n"
          "  -- COMMAND ...  entrypoint mode: start COMMAND as a supervised child\n"
          "\n"
          "Signals: SIGTERM/SIGINT drain and exit; SIGHUP reloads the configuration (file and\n"
          "environment); SIGUSR2 upgrades: the binary at the same path is started with the\n"
          "listening sockets, and this process keeps its open connections until they end.\n"
          "Exit codes: 0 ok, 1 runtime error, 2 configuration error.\n",
          out);
}

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
                   strcmp(s, "config-reference") == 0 || strcmp(s, "status") == 0 || strcmp(s, "reload") == 0) {
            a->command = s;
        } else {
            fprintf(stderr, "ott-edge: unknown argument '%s' (see --help)\n", s);
            return -1;
        }
    }
    return 0;
}

/* The admin-listener clients: healthcheck, status and reload (--admin, else listen.admin). */
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
    /* the admin token protects the status and reload endpoints */
    const char *token = cfg != NULL ? cfg->admin.token_file : getenv("OTT_EDGE_ADMIN_TOKEN_FILE");
    if (strcmp(a->command, "status") == 0)
        rc = oe_admin_status_print(addr, token, stdout, err, sizeof(err));
    else if (strcmp(a->command, "reload") == 0)
        rc = oe_admin_reload_request(addr, token, stdout, err, sizeof(err));
    else
        rc = oe_admin_healthcheck(addr, a->ready ? "/readyz" : "/livez", err, sizeof(err));
    if (rc != 0)
        fprintf(stderr, "%s: %s\n", a->command, err);
    oe_config_free(cfg);
    return rc == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    args_t a;
    if (parse_args(argc, argv, &a) != 0)
        return EXIT_CONFIG;
    a.argv = argv;
    if (strcmp(a.command, "healthcheck") == 0 || strcmp(a.command, "status") == 0 || strcmp(a.command, "reload") == 0)
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
    if (edge_check_needs(cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        oe_config_free(cfg);
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
    int rc = edge_serve(&a, cfg);
    oe_config_free(cfg);
    return rc;
}
