/* health — upstream health for /readyz: an active prober thread plus what proxied
 * requests observe. See proxy.h. */
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "log/log.h"
#include "metrics/metrics.h"
#include "proxy/proxy.h"

static uint64_t last_ok_ms, last_fail_ms; /* monotonic ms, atomics */
static uint64_t interval_ms = 5000;
static pthread_t prober;
static int prober_running;
static pthread_mutex_t stop_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t stop_cond = PTHREAD_COND_INITIALIZER;
static int stop_requested;
static char probe_url[1024];

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

static size_t discard(char *p, size_t size, size_t n, void *u)
{
    (void)p;
    (void)u;
    return size * n;
}

static void probe_once(CURL *c, int *was_ok)
{
    long status = 0;
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    int ok = rc == CURLE_OK && status > 0 && status < 500;
    oe_proxy_health_observe(ok);
    if (ok != *was_ok) {
        char st[16];
        snprintf(st, sizeof(st), "%ld", status);
        if (ok)
            oe_log(OE_LOG_INFO, "upstream_up", "url", probe_url, "status", st, NULL);
        else
            oe_log(OE_LOG_WARN, "upstream_down", "url", probe_url, "status", st, "error",
                   rc != CURLE_OK ? curl_easy_strerror(rc) : "server error", NULL);
        *was_ok = ok;
    }
}

static void *prober_main(void *arg)
{
    (void)arg;
    CURL *c = curl_easy_init();
    if (c == NULL)
        return NULL;
    curl_easy_setopt(c, CURLOPT_URL, probe_url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 2000L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 1000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "ott-edge-health/" OE_VERSION);
    curl_easy_setopt(c, CURLOPT_FORBID_REUSE, 1L); /* never race the upstream's idle close */
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http");
    int was_ok = -1;
    pthread_mutex_lock(&stop_lock);
    while (!stop_requested) {
        pthread_mutex_unlock(&stop_lock);
        probe_once(c, &was_ok);
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
    curl_easy_cleanup(c);
    return NULL;
}

int oe_proxy_health_start(const oe_config_t *cfg, char *err, size_t errlen)
{
    size_t n = strlen(cfg->upstream);
    while (n > 0 && cfg->upstream[n - 1] == '/')
        n--;
    snprintf(probe_url, sizeof(probe_url), "%.*s%s", (int)n, cfg->upstream, cfg->proxy.health_path);
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
