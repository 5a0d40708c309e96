/* test_dns — the dns module against a real authoritative server: Debian's knotd on a free
 * 127.0.0.1 port with TSIG keys, started here. Checked with knot's own kdig, not with the
 * module's lookups: RFC 2136 add/delete (hmac-sha256 and -512; a name and its wildcard's
 * two values side by side), zone by SOA lookup, CNAME delegation, the propagation check at
 * the zone's name servers (NS -> A -> query) and at resolvers, and every failure a user
 * meets: wrong secret (BADSIG), unknown key (BADKEY), key not allowed (REFUSED), server
 * down, CNAME loop; the exec hook: arguments, environment, exit status, output, timeout,
 * stop. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "dns/dns.h"
#include "log/log.h"

#define SECRET256 "c2VjcmV0LWZvci10aGUtb3R0LWVkZ2UtdGVzdHMtMjU2IQ=="
#define SECRET512 "c2VjcmV0LWZvci10aGUtb3R0LWVkZ2UtdGVzdHMtNTEyLXdpdGgtYS1sb25nZXItc2VjcmV0IQ=="
#define OTHER     "b3RoZXItc2VjcmV0LW5vdC10aGUtc2VydmVycy1vbmUtLS0tLS0tLS0tLS0tLS0="

static char dir[256];
static int port;
static pid_t knotd = -1;

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A port free for both UDP and TCP on 127.0.0.1. */
static int free_port(void)
{
    for (int tries = 0; tries < 50; tries++) {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t al = sizeof(a);
        int t = socket(AF_INET, SOCK_STREAM, 0), u = socket(AF_INET, SOCK_DGRAM, 0);
        int ok = bind(t, (struct sockaddr *)&a, sizeof(a)) == 0 && getsockname(t, (struct sockaddr *)&a, &al) == 0 &&
                 bind(u, (struct sockaddr *)&a, sizeof(a)) == 0;
        close(t);
        close(u);
        if (ok)
            return ntohs(a.sin_port);
    }
    return -1;
}

static void write_file(const char *name, const char *text, int mode)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
    chmod(path, (mode_t)mode);
}

/* Runs a shell command, returns its stdout (trimmed) in out. */
static int sh(const char *cmd, char *out, size_t cap)
{
    FILE *p = popen(cmd, "r");
    size_t n = 0;
    if (!p)
        return -1;
    out[0] = '\0';
    while (n + 1 < cap) {
        size_t r = fread(out + n, 1, cap - 1 - n, p);
        if (r == 0)
            break;
        n += r;
    }
    out[n] = '\0';
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == ' '))
        out[--n] = '\0';
    return pclose(p);
}

/* The TXT values at name, as kdig prints them (+short), one line each. */
static void kdig_txt(const char *name, char *out, size_t cap)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "kdig @127.0.0.1 -p %d +short +time=2 +retry=0 %s TXT 2>&1 | sort", port, name);
    sh(cmd, out, cap);
}

static int start_knot(void)
{
    char conf[4096], zone[2048];
    snprintf(conf, sizeof(conf),
             "server:\n    rundir: \"%s\"\n    listen: 127.0.0.1@%d\n    udp-workers: 1\n    tcp-workers: 1\n"
             "    background-workers: 1\n"
             "database:\n    storage: \"%s\"\n"
             "control:\n    listen: \"%s/knot.sock\"\n"
             "log:\n  - target: stderr\n    any: info\n"
             "key:\n  - id: k256.\n    algorithm: hmac-sha256\n    secret: " SECRET256 "\n"
             "  - id: k512.\n    algorithm: hmac-sha512\n    secret: " SECRET512 "\n"
             "  - id: readonly.\n    algorithm: hmac-sha256\n    secret: " SECRET256 "\n"
             "acl:\n  - id: upd\n    key: [k256., k512.]\n    action: update\n"
             "  - id: aonly\n    key: readonly.\n    action: update\n    update-type: [A]\n"
             "template:\n  - id: default\n    storage: \"%s\"\n    zonefile-sync: -1\n    zonefile-load: whole\n"
             "    journal-content: none\n    semantic-checks: off\n"
             "zone:\n  - domain: ott.test\n    acl: [upd, aonly]\n  - domain: delegated.test\n    acl: upd\n"
             "  - domain: locked.test\n",
             dir, port, dir, dir, dir);
    write_file("knot.conf", conf, 0644);
    snprintf(zone, sizeof(zone),
             "$ORIGIN ott.test.\n$TTL 60\n@ SOA ns1.ott.test. hostmaster.ott.test. 1 3600 600 86400 1\n"
             "@ NS ns1.ott.test.\n@ NS ns2.ott.test.\nns1 A 127.0.0.1\nns2 A 127.0.0.1\n"
             "_acme-challenge.sub CNAME _acme-challenge.sub.delegated.test.\n"
             "_acme-challenge.loop CNAME _acme-challenge.loop.ott.test.\n");
    write_file("ott.test.zone", zone, 0644);
    write_file("delegated.test.zone",
               "$ORIGIN delegated.test.\n$TTL 60\n@ SOA ns1.delegated.test. h.delegated.test. 1 3600 600 86400 1\n"
               "@ NS ns1.delegated.test.\nns1 A 127.0.0.1\n",
               0644);
    write_file("locked.test.zone",
               "$ORIGIN locked.test.\n$TTL 60\n@ SOA ns1.locked.test. h.locked.test. 1 3600 600 86400 1\n"
               "@ NS ns1.locked.test.\nns1 A 127.0.0.1\n",
               0644);
    char confpath[512], logpath[512];
    snprintf(confpath, sizeof(confpath), "%s/knot.conf", dir);
    snprintf(logpath, sizeof(logpath), "%s/knotd.log", dir);
    knotd = fork();
    if (knotd == 0) {
        FILE *l = freopen(logpath, "w", stderr);
        (void)l;
        if (access("/usr/sbin/knotd", X_OK) == 0)
            execl("/usr/sbin/knotd", "knotd", "-c", confpath, (char *)NULL);
        execlp("knotd", "knotd", "-c", confpath, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 100; i++) {
        char out[512], cmd[256];
        snprintf(cmd, sizeof(cmd), "kdig @127.0.0.1 -p %d +short +time=1 +retry=0 ott.test SOA 2>/dev/null", port);
        if (sh(cmd, out, sizeof(out)) == 0 && strstr(out, "ns1.ott.test."))
            return 0;
        usleep(50000);
    }
    return -1;
}

static void stop_knot(void)
{
    if (knotd > 0) {
        kill(knotd, SIGTERM);
        waitpid(knotd, NULL, 0);
    }
}

static char server[64], resolver[64];
static char *resolvers[1] = {resolver};

static void opts_rfc2136(oe_dns_opts_t *o, const char *key, const char *alg, const char *secret)
{
    memset(o, 0, sizeof(*o));
    o->provider = OE_DNS_RFC2136;
    o->server = server;
    o->key_name = key;
    o->key_algorithm = alg;
    o->key_secret = secret;
    o->resolvers = resolvers;
    o->resolver_count = 1;
    o->check_at_resolvers = 1;
    o->timeout_ms = 3000;
    o->query_timeout_ms = 2000;
}

static int no_sleep_calls;
static int fake_sleep(void *data, uint64_t ms)
{
    (void)data;
    no_sleep_calls++;
    usleep((useconds_t)ms * 1000);
    return 0;
}

static void test_rfc2136(void)
{
    oe_dns_opts_t o;
    char err[512], txt[1024];
    opts_rfc2136(&o, "k256", "hmac-sha256", SECRET256);
    oe_dns_t *d = oe_dns_new(&o, err, sizeof(err));
    CHECK(d != NULL, "oe_dns_new: %s", err);
    if (!d)
        return;
    CHECK(strcmp(oe_dns_provider_name(d), "rfc2136") == 0);

    /* a name and its wildcard: two values side by side at one name */
    oe_dns_record_t r1, r2;
    CHECK(oe_dns_present(d, "a.b.ott.test", "value-one", &r1, err, sizeof(err)) == 0, "present: %s", err);
    CHECK(strcmp(r1.fqdn, "_acme-challenge.a.b.ott.test.") == 0, "fqdn %s", r1.fqdn);
    CHECK(strcmp(r1.zone, "ott.test.") == 0, "zone by SOA lookup: %s", r1.zone);
    CHECK(r1.attempted == 1);
    CHECK(oe_dns_present(d, "a.b.ott.test.", "value-two", &r2, err, sizeof(err)) == 0, "present 2: %s", err);
    kdig_txt("_acme-challenge.a.b.ott.test", txt, sizeof(txt));
    CHECK(strcmp(txt, "\"value-one\"\n\"value-two\"") == 0, "both values served: [%s]", txt);

    oe_dns_record_t *recs[] = {&r1, &r2};
    uint64_t waited = 99999;
    CHECK(oe_dns_wait_visible(d, recs, 2, fake_sleep, NULL, &waited, err, sizeof(err)) == 0, "visible: %s", err);
    CHECK(waited < 2000, "visible at once, waited %llu ms", (unsigned long long)waited);
    CHECK(r1.server_count == 1 && r1.servers[0].ok && strstr(r1.servers[0].label, "127.0.0.1:"),
          "checked at the resolver: %s", r1.servers[0].label);

    CHECK(oe_dns_cleanup(d, &r1, err, sizeof(err)) == 0, "cleanup: %s", err);
    kdig_txt("_acme-challenge.a.b.ott.test", txt, sizeof(txt));
    CHECK(strcmp(txt, "\"value-two\"") == 0, "only the first value removed: [%s]", txt);
    CHECK(oe_dns_cleanup(d, &r1, err, sizeof(err)) == 0, "a second cleanup does nothing");
    CHECK(oe_dns_cleanup(d, &r2, err, sizeof(err)) == 0, "cleanup 2: %s", err);
    kdig_txt("_acme-challenge.a.b.ott.test", txt, sizeof(txt));
    CHECK(txt[0] == '\0', "no record left: [%s]", txt);

    /* the zone apex itself */
    CHECK(oe_dns_present(d, "ott.test", "apex", &r1, err, sizeof(err)) == 0, "apex: %s", err);
    CHECK(strcmp(r1.zone, "ott.test.") == 0);
    CHECK(oe_dns_cleanup(d, &r1, err, sizeof(err)) == 0, "apex cleanup: %s", err);

    /* CNAME delegation: the record goes to the CNAME's target, in another zone */
    CHECK(oe_dns_present(d, "sub.ott.test", "delegated-value", &r1, err, sizeof(err)) == 0, "cname: %s", err);
    CHECK(strcmp(r1.fqdn, "_acme-challenge.sub.delegated.test.") == 0, "followed the CNAME: %s", r1.fqdn);
    CHECK(strcmp(r1.zone, "delegated.test.") == 0, "target's zone: %s", r1.zone);
    kdig_txt("_acme-challenge.sub.delegated.test", txt, sizeof(txt));
    CHECK(strcmp(txt, "\"delegated-value\"") == 0, "[%s]", txt);
    CHECK(oe_dns_cleanup(d, &r1, err, sizeof(err)) == 0, "cleanup cname: %s", err);
    kdig_txt("_acme-challenge.sub.delegated.test", txt, sizeof(txt));
    CHECK(txt[0] == '\0', "[%s]", txt);

    /* a CNAME loop is refused, not followed forever */
    CHECK(oe_dns_present(d, "loop.ott.test", "x", &r1, err, sizeof(err)) != 0);
    CHECK(strstr(err, "CNAMEs") != NULL, "loop: %s", err);
    CHECK(r1.attempted == 0, "nothing written for a loop");

    /* a name in no zone this server has */
    CHECK(oe_dns_present(d, "www.example.invalid", "x", &r1, err, sizeof(err)) != 0);
    CHECK(strstr(err, "REFUSED") != NULL || strstr(err, "no zone") != NULL, "unknown zone: %s", err);

    /* the zone's authoritative name servers (NS -> A -> ask each), on knot's port */
    oe_dns_free(d);
    o.check_at_resolvers = 0;
    o.ns_port = (uint16_t)port;
    d = oe_dns_new(&o, err, sizeof(err));
    CHECK(d && oe_dns_present(d, "ns.ott.test", "auth-check", &r1, err, sizeof(err)) == 0, "present: %s", err);
    recs[0] = &r1;
    if (d && oe_dns_wait_visible(d, recs, 1, fake_sleep, NULL, &waited, err, sizeof(err)) == 0) {
        CHECK_PASS();
        CHECK(r1.server_count == 2, "both NS checked: %zu", r1.server_count);
        CHECK(strstr(r1.servers[0].label, "ns1.ott.test.") && strstr(r1.servers[1].label, "ns2.ott.test."),
              "labels %s / %s", r1.servers[0].label, r1.servers[1].label);
    } else {
        CHECK(0, "propagation at the name servers: %s", err);
    }
    CHECK(d && oe_dns_cleanup(d, &r1, err, sizeof(err)) == 0);
    oe_dns_free(d);

    /* hmac-sha512 */
    opts_rfc2136(&o, "k512.", "hmac-sha512", SECRET512);
    d = oe_dns_new(&o, err, sizeof(err));
    CHECK(d && oe_dns_present(d, "five.ott.test", "v512", &r1, err, sizeof(err)) == 0, "sha512: %s", err);
    kdig_txt("_acme-challenge.five.ott.test", txt, sizeof(txt));
    CHECK(strcmp(txt, "\"v512\"") == 0, "[%s]", txt);
    CHECK(d && oe_dns_cleanup(d, &r1, err, sizeof(err)) == 0, "sha512 cleanup: %s", err);
    oe_dns_free(d);
}

static void test_rfc2136_failures(void)
{
    oe_dns_opts_t o;
    char err[512], txt[512];
    oe_dns_record_t r;

    opts_rfc2136(&o, "k256", "hmac-sha256", OTHER);
    oe_dns_t *d = oe_dns_new(&o, err, sizeof(err));
    CHECK(d && oe_dns_present(d, "bad.ott.test", "x", &r, err, sizeof(err)) != 0);
    CHECK(strstr(err, "BADSIG") && strstr(err, "key_secret"), "wrong secret: %s", err);
    CHECK(r.attempted == 1, "cleanup still due after a failed write");
    kdig_txt("_acme-challenge.bad.ott.test", txt, sizeof(txt));
    CHECK(txt[0] == '\0', "nothing written: [%s]", txt);
    oe_dns_free(d);

    opts_rfc2136(&o, "nosuchkey", "hmac-sha256", SECRET256);
    d = oe_dns_new(&o, err, sizeof(err));
    CHECK(d && oe_dns_present(d, "bad.ott.test", "x", &r, err, sizeof(err)) != 0);
    CHECK(strstr(err, "BADKEY") && strstr(err, "key_name"), "unknown key: %s", err);
    oe_dns_free(d);

    opts_rfc2136(&o, "k256", "hmac-sha512", SECRET256); /* right name, wrong algorithm */
    d = oe_dns_new(&o, err, sizeof(err));
    CHECK(d && oe_dns_present(d, "bad.ott.test", "x", &r, err, sizeof(err)) != 0);
    CHECK(strstr(err, "BADKEY") || strstr(err, "BADSIG"), "wrong algorithm: %s", err);
    oe_dns_free(d);

    opts_rfc2136(&o, "readonly", "hmac-sha256", SECRET256);
    d = oe_dns_new(&o, err, sizeof(err));
    CHECK(d && oe_dns_present(d, "bad.ott.test", "x", &r, err, sizeof(err)) != 0);
    /* knot answers BADKEY when its ACL does not let the key update this type (BIND: REFUSED) */
    CHECK(strstr(err, "REFUSED") || strstr(err, "BADKEY"), "key not allowed to update TXT records: %s", err);
    oe_dns_free(d);

    opts_rfc2136(&o, NULL, NULL, NULL); /* unsigned */
    d = oe_dns_new(&o, err, sizeof(err));
    CHECK(d && oe_dns_present(d, "bad.ott.test", "x", &r, err, sizeof(err)) != 0);
    CHECK((strstr(err, "NOTAUTH") || strstr(err, "REFUSED")) && strstr(err, "key_name"), "unsigned update: %s", err);
    oe_dns_free(d);

    opts_rfc2136(&o, "k256", "hmac-sha256", SECRET256);
    d = oe_dns_new(&o, err, sizeof(err));
    CHECK(d && oe_dns_present(d, "x.locked.test", "x", &r, err, sizeof(err)) != 0);
    /* knot answers BADKEY for a key the zone's ACL does not name (BIND: REFUSED) */
    CHECK(strstr(err, "REFUSED") || strstr(err, "BADKEY"), "zone without an update ACL: %s", err);
    oe_dns_free(d);

    /* the update server is down (nothing listens there) */
    char down[64];
    snprintf(down, sizeof(down), "127.0.0.1:%d", free_port());
    opts_rfc2136(&o, "k256", "hmac-sha256", SECRET256);
    o.server = down;
    o.query_timeout_ms = 600;
    d = oe_dns_new(&o, err, sizeof(err));
    uint64_t t0 = now_ms();
    CHECK(d && oe_dns_present(d, "down.ott.test", "x", &r, err, sizeof(err)) != 0);
    CHECK(strstr(err, "no answer from acme.dns.rfc2136.server") != NULL, "server down: %s", err);
    CHECK(now_ms() - t0 < 5000, "bounded: %llu ms", (unsigned long long)(now_ms() - t0));
    oe_dns_free(d);

    /* bad options */
    opts_rfc2136(&o, "k256", "hmac-sha384", SECRET256);
    CHECK(oe_dns_new(&o, err, sizeof(err)) == NULL && strstr(err, "hmac-sha256"), "%s", err);
    opts_rfc2136(&o, "k256", "hmac-sha256", NULL);
    CHECK(oe_dns_new(&o, err, sizeof(err)) == NULL && strstr(err, "together"), "%s", err);
}

/* ---- exec ---------------------------------------------------------------------------- */

static char hook[512], hook_log[512];

static oe_dns_t *exec_dns(uint64_t timeout_ms, const int *stop)
{
    oe_dns_opts_t o;
    char err[512];
    memset(&o, 0, sizeof(o));
    o.provider = OE_DNS_EXEC;
    o.command = hook;
    o.resolvers = resolvers;
    o.resolver_count = 1;
    o.check_at_resolvers = 1;
    o.timeout_ms = timeout_ms;
    o.query_timeout_ms = 2000;
    o.stop = stop;
    oe_dns_t *d = oe_dns_new(&o, err, sizeof(err));
    CHECK(d != NULL, "exec provider: %s", err);
    return d;
}

static void test_exec(void)
{
    char script[2048], err[512], out[2048];
    oe_dns_record_t r;
    snprintf(hook, sizeof(hook), "%s/hook.sh", dir);
    snprintf(hook_log, sizeof(hook_log), "%s/hook.log", dir);
    /* a hook like a user's: knsupdate against the server, its arguments and environment noted */
    snprintf(
        script, sizeof(script),
        "#!/bin/sh\n"
        "echo \"$1 $2 $3\" >> %s\n"
        "env | grep -c '^OTT_EDGE_' >> %s\n"
        "case \"$2\" in *fail*) echo 'provider says: no such zone' >&2; exit 3;; esac\n"
        "case \"$2\" in *hang*) sleep 30 & echo $! > %s/hang.pid; wait; exit 0;; esac\n"
        "case \"$1\" in present) op=add;; cleanup) op=delete;; *) exit 2;; esac\n"
        "printf 'server 127.0.0.1 %d\\nzone ott.test.\\nupdate %%s %%s 60 TXT \"%%s\"\\nsend\\n' $op \"$2\" \"$3\" |"
        " knsupdate -y hmac-sha256:k256.:%s\n"
        "echo \"done $1\"\n",
        hook_log, hook_log, dir, port, SECRET256);
    write_file("hook.sh", script, 0755);
    setenv("OTT_EDGE_TEST_SECRET", "must-not-reach-the-hook", 1);

    oe_dns_t *d = exec_dns(3000, NULL);
    if (!d)
        return;
    CHECK(oe_dns_present(d, "e.ott.test", "exec-value", &r, err, sizeof(err)) == 0, "exec present: %s", err);
    kdig_txt("_acme-challenge.e.ott.test", out, sizeof(out));
    CHECK(strcmp(out, "\"exec-value\"") == 0, "written by the hook: [%s]", out);
    oe_dns_record_t *recs[] = {&r};
    uint64_t waited;
    CHECK(oe_dns_wait_visible(d, recs, 1, fake_sleep, NULL, &waited, err, sizeof(err)) == 0, "%s", err);
    CHECK(oe_dns_cleanup(d, &r, err, sizeof(err)) == 0, "exec cleanup: %s", err);
    kdig_txt("_acme-challenge.e.ott.test", out, sizeof(out));
    CHECK(out[0] == '\0', "removed by the hook: [%s]", out);
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "cat %s", hook_log);
    sh(cmd, out, sizeof(out));
    CHECK(strcmp(out, "present _acme-challenge.e.ott.test. exec-value\n0\ncleanup _acme-challenge.e.ott.test. "
                      "exec-value\n0") == 0,
          "lego's arguments, no OTT_EDGE_* variable: [%s]", out);

    /* exit status and output */
    CHECK(oe_dns_present(d, "fail.ott.test", "v", &r, err, sizeof(err)) != 0);
    CHECK(strstr(err, "exited with status 3") && strstr(err, "provider says: no such zone"), "failing hook: %s", err);
    CHECK(r.attempted == 1, "cleanup due after a failed hook");

    /* a hook that hangs is stopped at the timeout, with what it started */
    oe_dns_free(d);
    d = exec_dns(1000, NULL);
    uint64_t t0 = now_ms();
    CHECK(d && oe_dns_present(d, "hang.ott.test", "v", &r, err, sizeof(err)) != 0);
    uint64_t took = now_ms() - t0;
    CHECK(strstr(err, "did not finish within 1 s") != NULL, "hanging hook: %s", err);
    CHECK(took >= 900 && took < 4000, "stopped after %llu ms", (unsigned long long)took);
    snprintf(cmd, sizeof(cmd), "cat %s/hang.pid", dir);
    sh(cmd, out, sizeof(out));
    pid_t sleeper = (pid_t)atoi(out);
    int gone = 0;
    for (int i = 0; i < 100 && sleeper > 0 && !gone; i++) {
        gone = kill(sleeper, 0) != 0 && errno == ESRCH;
        if (!gone) {
            char st[64], path[64];
            snprintf(path, sizeof(path), "/proc/%d/stat", (int)sleeper);
            FILE *f = fopen(path, "r");
            gone = !f || (fgets(st, sizeof(st), f) && strstr(st, ") Z")); /* a zombie waiting for init */
            if (f)
                fclose(f);
        }
        if (!gone)
            usleep(20000);
    }
    CHECK(sleeper > 0 && gone, "the hook's own child (%d) was stopped too", (int)sleeper);

    /* ott-edge stopping: a present run is cut at once */
    int stop = 0;
    oe_dns_free(d);
    d = exec_dns(20000, &stop);
    stop = 1;
    t0 = now_ms();
    CHECK(d && oe_dns_present(d, "hang.ott.test", "v", &r, err, sizeof(err)) != 0);
    CHECK(strcmp(err, "stopped") == 0 && now_ms() - t0 < 3500, "stop: %s after %llu ms", err,
          (unsigned long long)(now_ms() - t0));
    oe_dns_free(d);

    /* a command that does not exist */
    snprintf(hook, sizeof(hook), "%s/no-such-hook", dir);
    d = exec_dns(3000, NULL);
    CHECK(d && oe_dns_present(d, "e.ott.test", "v", &r, err, sizeof(err)) != 0);
    CHECK(strstr(err, "status 127") && strstr(err, "not found"), "missing command: %s", err);
    oe_dns_free(d);

    /* propagation never comes: the hook claims success but writes nothing */
    snprintf(hook, sizeof(hook), "/bin/true");
    oe_dns_opts_t o;
    opts_rfc2136(&o, NULL, NULL, NULL);
    o.provider = OE_DNS_EXEC;
    o.command = hook;
    o.check_at_resolvers = 0; /* at the zone's name servers */
    o.ns_port = (uint16_t)port;
    o.timeout_ms = 1200;
    d = oe_dns_new(&o, err, sizeof(err));
    CHECK(d && oe_dns_present(d, "never.ott.test", "v", &r, err, sizeof(err)) == 0, "%s", err);
    recs[0] = &r;
    no_sleep_calls = 0;
    t0 = now_ms();
    CHECK(d && oe_dns_wait_visible(d, recs, 1, fake_sleep, NULL, &waited, err, sizeof(err)) != 0);
    CHECK(strstr(err, "not answered by ns1.ott.test.") && strstr(err, "acme.dns_propagation_timeout"),
          "propagation timeout: %s", err);
    CHECK(waited >= 1200 && now_ms() - t0 < 4000 && no_sleep_calls >= 2, "bounded wait %llu ms, %d naps",
          (unsigned long long)waited, no_sleep_calls);
    oe_dns_free(d);
}

int main(void)
{
    oe_log_setup(0, getenv("TEST_VERBOSE") ? OE_LOG_DEBUG : OE_LOG_WARN);
    snprintf(dir, sizeof(dir), "/tmp/ott-edge-test-dns-XXXXXX");
    if (!mkdtemp(dir) || (port = free_port()) < 0) {
        CHECK(0, "no temporary directory or port");
        return CHECK_DONE();
    }
    char out[64];
    if (sh("PATH=$PATH:/usr/sbin; for c in knotd kdig knsupdate; do command -v $c; done | wc -l", out, sizeof(out)) !=
            0 ||
        atoi(out) != 3) {
        CHECK(0, "knotd, kdig and knsupdate are needed (Debian knot, knot-dnsutils: tools/deps.sh test)");
        return CHECK_DONE();
    }
    snprintf(server, sizeof(server), "127.0.0.1:%d", port);
    snprintf(resolver, sizeof(resolver), "127.0.0.1:%d", port);
    if (start_knot() != 0) {
        char cmd[600], log[2048];
        snprintf(cmd, sizeof(cmd), "cat %s/knotd.log", dir);
        sh(cmd, log, sizeof(log));
        CHECK(0, "knotd did not start:\n%s", log);
    } else {
        test_rfc2136();
        test_rfc2136_failures();
        test_exec();
    }
    stop_knot();
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    sh(cmd, out, sizeof(out));
    return CHECK_DONE();
}
