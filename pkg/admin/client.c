/*
 * admin/client — the command-line side of the admin listener: which address the
 * `healthcheck` and `status` subcommands ask, and `ott-edge status`, which reads
 * /status.json (the same document the status page draws) and prints a summary.
 * Runs in a separate short-lived process: no server state, no logging.
 */
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin/admin.h"
#include "admin/internal.h"
#include "httpget/httpget.h"

#define STATUS_TIMEOUT_MS   3000
#define STATUS_RESPONSE_MAX (1024 * 1024) /* /status.json is ~20 KiB with a full history */

int oe_admin_target(const char *admin_addr, char *host, size_t hostlen, uint16_t *port, char *err, size_t errlen)
{
    if (admin_addr == NULL || admin_addr[0] == '\0') {
        snprintf(err, errlen, "the admin listener is disabled (listen.admin is empty): nothing to ask");
        return -1;
    }
    if (oe_config_split_hostport(admin_addr, host, hostlen, port) != 0 || *port == 0) {
        snprintf(err, errlen, "bad admin address '%s': expected HOST:PORT, [V6]:PORT or :PORT", admin_addr);
        return -1;
    }
    /* A wildcard listen address is reached over loopback. */
    if (host[0] == '\0' || strcmp(host, "0.0.0.0") == 0 || strcmp(host, "*") == 0)
        snprintf(host, hostlen, "127.0.0.1");
    else if (strcmp(host, "::") == 0)
        snprintf(host, hostlen, "::1");
    return 0;
}

/* ---- printing ---------------------------------------------------------------------------- */

static const char *str(json_t *o, const char *key, const char *dflt)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s != NULL ? s : dflt;
}

static double num(json_t *o, const char *key)
{
    return json_number_value(json_object_get(o, key));
}

/* "2026-11-27 10:00 UTC" */
static const char *when_t(time_t t, char *buf, size_t len)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%d %H:%M UTC", &tm);
    return buf;
}

static const char *when(json_t *v, char *buf, size_t len)
{
    return json_is_integer(v) ? when_t((time_t)json_integer_value(v), buf, len) : "-";
}

/* "3d 4h", "5m 2s" */
static const char *span(long long s, char *buf, size_t len)
{
    const char *sign = s < 0 ? "-" : "";
    if (s < 0)
        s = -s;
    if (s >= 86400)
        snprintf(buf, len, "%s%lldd %lldh", sign, s / 86400, s % 86400 / 3600);
    else if (s >= 3600)
        snprintf(buf, len, "%s%lldh %lldm", sign, s / 3600, s % 3600 / 60);
    else if (s >= 60)
        snprintf(buf, len, "%s%lldm %llds", sign, s / 60, s % 60);
    else
        snprintf(buf, len, "%s%llds", sign, s);
    return buf;
}

static void print_site(FILE *out, json_t *site, long long now)
{
    char a[64], b[64];
    fprintf(out, "\nsite %s\n", str(site, "name", "?"));
    json_t *c = json_object_get(site, "certificate");
    if (!json_is_object(c)) {
        fprintf(out, "  certificate  none loaded\n");
    } else {
        json_t *names = json_object_get(c, "names");
        fprintf(out, "  certificate  ");
        for (size_t i = 0; i < json_array_size(names); i++)
            fprintf(out, "%s%s", i ? ", " : "", json_string_value(json_array_get(names, i)));
        fprintf(out, "  (%s, issuer %s)\n", str(c, "source", "?"), str(c, "issuer", "?"));
        fprintf(out, "               expires %s, %.1f days left\n", when(json_object_get(c, "not_after"), a, sizeof(a)),
                num(c, "days_left"));
        json_t *acme = json_object_get(c, "acme");
        if (json_is_object(acme)) {
            json_t *next = json_object_get(acme, "next_attempt"), *ari = json_object_get(acme, "ari_window");
            fprintf(out, "               next ACME order %s (in %s)", when(next, a, sizeof(a)),
                    span((long long)json_integer_value(next) - now, b, sizeof(b)));
            if (json_is_object(ari))
                fprintf(out, ", ARI window from %s", when(json_object_get(ari, "start"), a, sizeof(a)));
            fprintf(out, "; %d failure(s) in a row\n", (int)num(acme, "consecutive_failures"));
            if (json_is_string(json_object_get(acme, "last_problem")))
                fprintf(out, "               last problem (%s): %s\n",
                        when(json_object_get(acme, "last_problem_at"), a, sizeof(a)), str(acme, "last_problem", ""));
        }
    }
    json_t *ups = json_object_get(site, "upstreams");
    for (size_t i = 0; i < json_array_size(ups); i++) {
        json_t *u = json_array_get(ups, i);
        const char *reason = str(u, "reason", "");
        fprintf(out, "  upstream     %s  %s%s%s\n", str(u, "url", "?"), str(u, "state", "?"), reason[0] ? ": " : "",
                reason);
        fprintf(out, "               502: %lld, 504: %lld in the last %s\n", (long long)num(u, "errors_502"),
                (long long)num(u, "errors_504"), span((long long)num(u, "window_s"), a, sizeof(a)));
        json_t *errs = json_object_get(u, "recent_errors");
        for (size_t j = 0; j < json_array_size(errs); j++) {
            json_t *e = json_array_get(errs, j);
            fprintf(out, "               down at %s: %s\n", when_t((time_t)(num(e, "at_ms") / 1000), a, sizeof(a)),
                    str(e, "error", ""));
        }
    }
}

static void print_rate(FILE *out, const char *label, json_t *v, const char *unit)
{
    if (json_is_number(v))
        fprintf(out, "%s %.1f%s", label, json_number_value(v), unit);
    else
        fprintf(out, "%s -", label);
}

static void print_status(FILE *out, json_t *doc, const char *where)
{
    char a[64], b[64];
    long long now = (long long)num(doc, "now");
    fprintf(out, "ott-edge %s at %s: %s", str(doc, "version", "?"), where,
            json_is_true(json_object_get(doc, "draining")) ? "draining"
            : json_is_true(json_object_get(doc, "ready"))  ? "ready"
                                                           : "not ready");
    if (json_is_string(json_object_get(doc, "ready_reason")))
        fprintf(out, " (%s)", str(doc, "ready_reason", ""));
    fprintf(out, ", up %s\n", span(now - (long long)num(doc, "started"), a, sizeof(a)));
    json_t *config = json_object_get(doc, "config");
    if (json_is_object(config)) {
        fprintf(out, "config       generation %lld, pid %lld", (long long)num(config, "generation"),
                (long long)num(doc, "pid"));
        if (json_is_string(json_object_get(config, "last_reload_result")))
            fprintf(out, "; last reload %s %s%s%s", when(json_object_get(config, "last_reload"), b, sizeof(b)),
                    str(config, "last_reload_result", "?"), *str(config, "last_reload_message", "") ? ": " : "",
                    str(config, "last_reload_message", ""));
        fprintf(out, "\n");
    }

    json_t *sites = json_object_get(doc, "sites");
    for (size_t i = 0; i < json_array_size(sites); i++)
        print_site(out, json_array_get(sites, i), now);

    json_t *live = json_object_get(doc, "live");
    fprintf(out, "\nlive         connections %lld, WebSockets %lld, in flight %lld\n",
            (long long)num(live, "connections"), (long long)num(live, "websockets"),
            (long long)num(live, "requests_in_flight"));
    fprintf(out, "             ");
    print_rate(out, "requests/s", json_object_get(live, "requests_per_s"), "");
    print_rate(out, ", 4xx/s", json_object_get(live, "r4xx_per_s"), "");
    print_rate(out, ", 5xx/s", json_object_get(live, "r5xx_per_s"), "");
    fprintf(out, "\n");
    json_t *cache = json_object_get(live, "cache"), *ratio = json_object_get(live, "cache_hit_ratio");
    if (json_is_true(json_object_get(cache, "enabled"))) {
        if (json_is_number(ratio))
            snprintf(a, sizeof(a), "%.0f%%", json_number_value(ratio) * 100);
        else
            snprintf(a, sizeof(a), "-");
        fprintf(out, "cache        hit ratio %s (%lld hits, %lld misses, %lld bytes held)\n", a,
                (long long)num(cache, "hits"), (long long)num(cache, "misses"), (long long)num(cache, "stored_bytes"));
    } else {
        fprintf(out, "cache        off\n");
    }
    json_t *fg = json_object_get(live, "flood_guard");
    fprintf(out, "flood guard  %lld connections cut, %lld refused", (long long)num(fg, "cut"),
            (long long)num(fg, "refused"));
    json_t *rl = json_object_get(live, "rate_limited");
    if (json_is_number(rl))
        fprintf(out, "; rate limit refused %lld", (long long)json_number_value(rl));
    fprintf(out, "\n");

    json_t *events = json_object_get(doc, "acme_events");
    if (json_array_size(events) > 0)
        fprintf(out, "\nACME events (newest first)\n");
    for (size_t i = 0; i < json_array_size(events) && i < 10; i++) {
        json_t *e = json_array_get(events, i), *fields = json_object_get(e, "fields");
        fprintf(out, "  %s  %-5s %s", when_t((time_t)(num(e, "at_ms") / 1000), a, sizeof(a)), str(e, "level", ""),
                str(e, "event", ""));
        for (void *it = json_object_iter(fields); it != NULL; it = json_object_iter_next(fields, it)) {
            const char *k = json_object_iter_key(it), *s = json_string_value(json_object_iter_value(it));
            snprintf(b, sizeof(b), "%s", s != NULL ? s : "");
            fprintf(out, " %s=%s%s", k, b, s != NULL && strlen(s) >= sizeof(b) ? "..." : "");
        }
        fprintf(out, "\n");
    }
}

int oe_admin_bearer(const char *token_file, char *out, size_t cap, char *err, size_t errlen)
{
    char tokenbuf[600] = "";
    FILE *f = fopen(token_file, "re");
    if (f == NULL || fgets(tokenbuf, sizeof(tokenbuf), f) == NULL) {
        snprintf(err, errlen, "cannot read admin.token_file \"%s\"", token_file);
        if (f != NULL)
            fclose(f);
        return -1;
    }
    fclose(f);
    tokenbuf[strcspn(tokenbuf, "\r\n")] = '\0';
    snprintf(out, cap, "Bearer %s", tokenbuf);
    OPENSSL_cleanse(tokenbuf, sizeof(tokenbuf));
    return 0;
}

int oe_admin_request(const char *admin_addr, const char *token_file, oe_httpget_req_t *req, char *buf, size_t cap,
                     oe_httpget_resp_t *resp, char *where, size_t wherelen, char *err, size_t errlen)
{
    char host[256], bearer[620] = "";
    uint16_t port;
    if (oe_admin_target(admin_addr, host, sizeof(host), &port, err, errlen) != 0)
        return 1;
    if (token_file != NULL && oe_admin_bearer(token_file, bearer, sizeof(bearer), err, errlen) != 0)
        return 1;
    snprintf(where, wherelen, strchr(host, ':') ? "[%s]:%u" : "%s:%u", host, (unsigned)port);
    req->host = host;
    req->port = port;
    req->authorization = bearer[0] != '\0' ? bearer : NULL;
    int rc = oe_httpget(req, buf, cap, resp, err, errlen);
    OPENSSL_cleanse(bearer, sizeof(bearer));
    req->host = NULL;
    req->authorization = NULL;
    return rc == OE_HTTPGET_OK ? 0 : 2;
}

int oe_admin_status_print(const char *admin_addr, const char *token_file, FILE *out, char *err, size_t errlen)
{
    char where[300], why[256];
    oe_httpget_req_t req = {
        .path = "/status.json", .user_agent = "ott-edge-status", .http10 = 1, .timeout_ms = STATUS_TIMEOUT_MS};
    oe_httpget_resp_t resp;
    char *buf = malloc(STATUS_RESPONSE_MAX);
    if (buf == NULL) {
        snprintf(err, errlen, "out of memory");
        return 1;
    }
    int rc = oe_admin_request(admin_addr, token_file, &req, buf, STATUS_RESPONSE_MAX, &resp, where, sizeof(where), err,
                              errlen);
    if (rc == 2) {
        snprintf(why, sizeof(why), "%s", err);
        snprintf(err, errlen, "cannot read /status.json from the admin listener at %s: %s", where, why);
    }
    if (rc != 0) {
        free(buf);
        return 1;
    }
    const char *body = strstr(buf, "\r\n\r\n");
    if (resp.status != 200 || body == NULL || resp.timed_out) {
        snprintf(err, errlen, "/status.json at %s answered %d%s", where, resp.status,
                 resp.timed_out       ? " (cut short by the timeout)"
                 : resp.status == 401 ? " (it needs the token of admin.token_file: run with the same configuration)"
                 : resp.status == 403 ? " (this address is not in admin.allow)"
                                      : "");
        free(buf);
        return 1;
    }
    json_error_t je;
    json_t *doc = json_loads(body + 4, 0, &je);
    free(buf);
    if (!json_is_object(doc)) {
        snprintf(err, errlen, "/status.json at %s is not a JSON object: %s", where, je.text);
        json_decref(doc);
        return 1;
    }
    print_status(out, doc, where);
    json_decref(doc);
    return 0;
}
