/* health — upstream health for /readyz: an active prober thread plus what proxied
 * requests observe. See proxy.h. The prober's GET is httpget's plain-socket client: one
 * new connection per probe, 1 s to connect, 2 s in all. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "httpget/httpget.h"
#include "log/log.h"
#include "metrics/metrics.h"
#include "proxy/proxy.h"

#define PROBE_TIMEOUT_MS         2000
#define PROBE_CONNECT_TIMEOUT_MS 1000
#define PROBE_RESPONSE_MAX       1024 /* the status line is all that is looked at */

static uint64_t last_ok_ms, last_fail_ms; /* monotonic ms, atomics */
static uint64_t interval_ms = 5000;
static pthread_t prober;
static int prober_running;
static pthread_mutex_t stop_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t stop_cond = PTHREAD_COND_INITIALIZER;
static int stop_requested;
static char probe_url[1024];
static char probe_host[256];
static uint16_t probe_port;
static char probe_path[1024];

void oe_proxy_health_observe(int ok)
{
    uint64_t now = oe_now_ms();
    uint64_t *slot = ok ? &last_ok_ms : &last_fail_ms;
    /* skip the shared write when it would barely change: keeps the hot path cheap */
    if (now - __atomic_load_n(slot, __ATOMIC_RELAXED) >= 50)
        __atomic_store_n(slot, now, __ATOMIC_RELAXED);
}

int oe_proxy_health_ok(const char **reason)
{
    uint64_t ok = __atomic_load_n(&last_ok_ms, __ATOMIC_RELAXED),
             fail = __atomic_load_n(&last_fail_ms, __ATOMIC_RELAXED);
    uint64_t now = oe_now_ms();
    if (ok == 0) {
        *reason = "upstream has not answered yet";
        return 0;
    }
    if (fail > ok) {
        *reason = "upstream is not answering";
        return 0;
    }
    if (now - ok > 3 * interval_ms + 2000) {
        *reason = "upstream has not answered recently";
        return 0;
    }
    *reason = "";
    return 1;
}

static void probe_once(int *was_ok)
{
    oe_httpget_req_t req = {.host = probe_host,
                            .port = probe_port,
                            .path = probe_path,
                            .user_agent = "ott-edge-health/" OE_VERSION,
                            .head_only = 1,
                            .timeout_ms = PROBE_TIMEOUT_MS,
                            .connect_timeout_ms = PROBE_CONNECT_TIMEOUT_MS};
    oe_httpget_resp_t resp;
    char buf[PROBE_RESPONSE_MAX], e[256];
    int rc = oe_httpget(&req, buf, sizeof(buf), &resp, e, sizeof(e));
    int ok = rc == OE_HTTPGET_OK && resp.status < 500;
    oe_proxy_health_observe(ok);
    if (ok != *was_ok) {
        char st[16];
        snprintf(st, sizeof(st), "%d", resp.status);
        if (ok)
            oe_log(OE_LOG_INFO, "upstream_up", "url", probe_url, "status", st, NULL);
        else
            oe_log(OE_LOG_WARN, "upstream_down", "url", probe_url, "status", st, "error",
                   rc != OE_HTTPGET_OK ? e : "server error", NULL);
        *was_ok = ok;
    }
}

static void *prober_main(void *arg)
{
    (void)arg;
    int was_ok = -1;
    pthread_mutex_lock(&stop_lock);
    while (!stop_requested) {
        pthread_mutex_unlock(&stop_lock);
        probe_once(&was_ok);
        pthread_mutex_lock(&stop_lock);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t ns = (uint64_t)ts.tv_nsec + (interval_ms % 1000) * 1000000;
        ts.tv_sec += (time_t)(interval_ms / 1000 + ns / 1000000000);
        ts.tv_nsec = (long)(ns % 1000000000);
        while (!stop_requested && pthread_cond_timedwait(&stop_cond, &stop_lock, &ts) == 0)
            ;
    }
    pthread_mutex_unlock(&stop_lock);
    return NULL;
}

int oe_proxy_health_start(const oe_config_t *cfg, char *err, size_t errlen)
{
    size_t n = strlen(cfg->upstream);
    while (n > 0 && cfg->upstream[n - 1] == '/')
        n--;
    snprintf(probe_url, sizeof(probe_url), "%.*s%s", (int)n, cfg->upstream, cfg->proxy.health_path);
    /* "http://host:port" (checked by the config): the authority is what follows "http://" */
    char authority[300];
    if (n <= 7 || n - 7 >= sizeof(authority)) {
        snprintf(err, errlen, "proxy: cannot probe the upstream %s", cfg->upstream);
        return -1;
    }
    memcpy(authority, cfg->upstream + 7, n - 7);
    authority[n - 7] = '\0';
    if (oe_config_split_hostport(authority, probe_host, sizeof(probe_host), &probe_port) != 0 ||
        probe_host[0] == '\0') {
        snprintf(err, errlen, "proxy: cannot probe the upstream %s (use http://host:port)", cfg->upstream);
        return -1;
    }
    if (strlen(cfg->proxy.health_path) >= sizeof(probe_path)) {
        snprintf(err, errlen, "proxy: proxy.health_path is too long");
        return -1;
    }
    snprintf(probe_path, sizeof(probe_path), "%s", cfg->proxy.health_path);
    interval_ms = cfg->proxy.health_interval_ms > 0 ? cfg->proxy.health_interval_ms : 5000;
    stop_requested = 0;
    if (pthread_create(&prober, NULL, prober_main, NULL) != 0) {
        snprintf(err, errlen, "proxy: cannot start the upstream health prober thread");
        return -1;
    }
    prober_running = 1;
    return 0;
}

void oe_proxy_health_stop(void)
{
    if (!prober_running)
        return;
    pthread_mutex_lock(&stop_lock);
    stop_requested = 1;
    pthread_cond_broadcast(&stop_cond);
    pthread_mutex_unlock(&stop_lock);
    pthread_join(prober, NULL);
    prober_running = 0;
}
